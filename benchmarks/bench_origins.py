"""The origin table: extraction from names-dataset (once per package version), its size, the
time and memory to load it, and full-name decoys per name.

    python benchmarks/bench_origins.py [--keep DIR]

Extraction and loading each run in a fresh child process, so that their peak memory (max RSS)
is their own. The familiarity is a fixed pseudo-random number per part (no model): the
decoy timings are the pools' and the builder's, without any text encoding.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

NAMES = ["Jan Kowalski", "Matti Virtanen", "Xi Jinping", "박지성", "Владимир Путин",
         "Gabriel García Márquez", "Robin van Persie", "John Smith"]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def extract(folder: str, out) -> None:
    from idia.origins import extract_origin_table, table_path

    before = peak_mib()
    stats = extract_origin_table(table_path(folder))
    out.put((stats.seconds, stats.rows, stats.bytes, stats.version, before, peak_mib()))


def load_and_use(folder: str, out) -> None:
    from idia.nameparts import fold, parse_name
    from idia.origins import decoys_for, load_origin_table

    def familiarity(parts, kind):
        digests = [hashlib.blake2b(fold(p).encode(), digest_size=4).digest() for p in parts]
        return np.array([int.from_bytes(d, "little") / 2**32 for d in digests])

    import pandas  # noqa: F401  (imported before the baseline, as any idia process has it)

    before = peak_mib()
    start = time.perf_counter()
    table = load_origin_table(folder)
    load_seconds = time.perf_counter() - start
    loaded = peak_mib()
    rows = []
    for text in NAMES:
        start = time.perf_counter()
        name = parse_name(text, evidence=table)
        result = decoys_for(name, table, familiarity, seed=0)
        rows.append((text, time.perf_counter() - start, getattr(result, "origin", "-"),
                     len(result) if result.tested else result.code))
    out.put((load_seconds, before, loaded, rows))


def child(target, folder: str):
    queue = multiprocessing.get_context("spawn").Queue()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(folder, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keep", type=Path, help="extract into this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = str(args.keep or scratch)
        seconds, rows, size, version, base, peak = child(extract, folder)
        print(f"names-dataset {version}: extraction {seconds:.1f} s, {rows:,} rows, "
              f"table {size / 2**20:.1f} MiB, peak memory {peak:.0f} MiB "
              f"(+{peak - base:.0f} MiB over the interpreter)")
        load_seconds, before, loaded, timings = child(load_and_use, folder)
        print(f"load: {load_seconds:.2f} s, +{loaded - before:.0f} MiB (peak {loaded:.0f} MiB)")
        for text, took, origin, count in timings:
            print(f"  {text:24s} origin {origin:3s} decoys {count!s:>16s} {took * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
