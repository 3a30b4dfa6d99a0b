"""Benchmark of the caption census (idia count-names).

Builds ``--captions`` captions (default 10,000,000) by resampling the real LAION-400M sample in
../shared/data/captions (or a generated stand-in when that folder is absent) into Parquet shards,
then reports:

1. captions/s and MB/s of the local engine end to end (reading Parquet included) for each
   ``--workers`` count, with peak resident memory of the parent and of a worker process;
2. the paper's per-name ``str.contains`` loop on a ``--baseline-captions`` subset, against the
   matcher on the same in-memory subset and against the end-to-end single-worker rate;
3. matcher time against the number of names (100, 548, 5,000) on ``--scaling-captions``.

Each census run happens in a fresh process so peak-memory figures are its own.

    python benchmarks/bench_census.py --captions 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from idia.census import CountedName, NameMatcher, read_people, run_census

SHARED_CAPTIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "captions"
LAION_SAMPLE = SHARED_CAPTIONS / "laion400m_sample_10000.parquet"
PAPER_NAMES = SHARED_CAPTIONS / "laion400m_name_counts_paper.csv"
BATCH = 65_536


def stand_in_pool(seed: int) -> tuple[pa.Table, list[str]]:
    """10,000 synthetic LAION-like rows and 548 names, for machines without ../shared."""
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    names = list(dict.fromkeys(f"{fake.first_name()} {fake.last_name()}" for _ in range(700)))
    names = names[:548]
    rng = random.Random(seed)
    texts = []
    for _ in range(10_000):
        words = fake.sentence(nb_words=rng.randint(4, 14)).rstrip(".")
        if rng.random() < 0.02:
            words = f"{rng.choice(names)} {words}"
        texts.append(words)
    urls = [f"https://example.com/{index}.jpg" for index in range(len(texts))]
    return pa.table({"URL": urls, "TEXT": texts}), names


def source_pool(seed: int) -> tuple[pa.Table, list[str], str]:
    if LAION_SAMPLE.exists() and PAPER_NAMES.exists():
        table = pq.read_table(LAION_SAMPLE, columns=["URL", "TEXT"])
        names = [person.name for person in read_people(PAPER_NAMES)]
        return table, names, f"resampled from {LAION_SAMPLE.name} (real LAION-400M captions)"
    table, names = stand_in_pool(seed)
    return table, names, "generated stand-in (../shared/data absent)"


def write_shards(pool: pa.Table, captions: int, shards: int, folder: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sizes = [len(part) for part in np.array_split(np.arange(captions), shards)]
    for index, size in enumerate(sizes):
        rows = rng.integers(0, pool.num_rows, size)
        # No dictionary encoding: resampled captions repeat, real LAION shards mostly do not.
        pq.write_table(
            pool.take(rows),
            folder / f"part-{index:05d}.parquet",
            row_group_size=BATCH,
            use_dictionary=False,
        )


def more_names(names: list[str], total: int, seed: int) -> list[str]:
    """The paper's names plus first x last recombinations of them, up to ``total``."""
    firsts = sorted({name.split()[0] for name in names})
    lasts = sorted({name.split()[-1] for name in names})
    rng = random.Random(seed)
    result = list(names)
    seen = set(result)
    while len(result) < total:
        candidate = f"{rng.choice(firsts)} {rng.choice(lasts)}"
        if candidate not in seen:
            seen.add(candidate)
            result.append(candidate)
    return result[:total]


def status_kib(pid: int | str, field: str) -> int:
    """A memory field of /proc/PID/status in KiB (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def child_pids() -> list[str]:
    return [
        pid
        for children in Path("/proc/self/task").glob("*/children")
        for pid in children.read_text().split()
    ]


class PeakMemory(threading.Thread):
    """Samples the resident memory of this process and its worker processes. (ru_maxrss would
    not do: Linux carries it over fork and exec from the benchmark's own, larger process.)"""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval, self.stopped = interval, threading.Event()
        self.total_kib = self.worker_kib = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            workers = [status_kib(pid, "VmHWM") for pid in child_pids()]
            self.worker_kib = max([self.worker_kib, *workers])
            current = status_kib("self", "VmRSS") + sum(
                status_kib(p, "VmRSS") for p in child_pids()
            )
            self.total_kib = max(self.total_kib, current)


def measure(folder: Path, names_file: Path, workers: int) -> dict:
    """One census run in this (fresh) process; prints its figures as JSON."""
    names = names_file.read_text(encoding="utf-8").splitlines()
    sampler = PeakMemory()
    sampler.start()
    result = run_census(folder, names, workers=workers)
    sampler.stopped.set()
    sampler.join()
    return {
        "seconds": result.seconds,
        "captions": result.captions,
        "text_bytes": result.text_bytes,
        "members": int((result.counts["count"] > 0).sum()),
        "process_peak_mb": status_kib("self", "VmHWM") / 1024,
        "worker_peak_mb": sampler.worker_kib / 1024,
        "total_peak_mb": max(sampler.total_kib, status_kib("self", "VmHWM")) / 1024,
    }


def measure_in_subprocess(folder: Path, names_file: Path, workers: int) -> dict:
    command = [sys.executable, __file__, "--measure", str(folder), str(names_file), str(workers)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def best_seconds(work: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` runs: other processes on a shared machine only add time."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def paper_loop_rate(captions: pd.Series, names: list[str], repeats: int) -> float:
    """Captions/s of the paper's search: one ``str.contains`` (regex, case-sensitive) per name
    over a DataFrame of captions, keeping the matching rows as the paper did."""
    frame = pd.DataFrame({"caption": captions})
    seconds = best_seconds(
        lambda: [frame[frame["caption"].str.contains(name)] for name in names], repeats
    )
    return len(frame) / seconds


def matcher_seconds(texts: pa.Array, names: list[str], repeats: int) -> float:
    """Matching time over in-memory captions, without the one-off automaton build."""
    matcher = NameMatcher([CountedName(name) for name in names])
    batches = [texts.slice(start, BATCH) for start in range(0, len(texts), BATCH)]
    return best_seconds(lambda: [matcher.match_batch(batch) for batch in batches], repeats)


def read_captions(folder: Path, limit: int) -> pa.Array:
    """The first ``limit`` captions of the shards, in memory."""
    parts, total = [], 0
    for path in sorted(folder.iterdir()):
        if total >= limit:
            break
        parts.append(pq.read_table(path, columns=["TEXT"]).column("TEXT").combine_chunks())
        total += len(parts[-1])
    return pa.concat_arrays(parts).slice(0, limit)


def load_average() -> str:
    """Other processes compete for the CPUs; worker scaling means little under load."""
    return ", ".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--captions", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--baseline-captions", type=int, default=BATCH)
    parser.add_argument("--scaling-captions", type=int, default=1_000_000)
    parser.add_argument("--scaling-names", default="100,548,5000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="in-memory timings: best of N")
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        folder, names_file, workers = args.measure
        print(json.dumps(measure(Path(folder), Path(names_file), int(workers))))
        return

    pool, names, origin = source_pool(args.seed)
    print(f"captions: {args.captions:,} in {args.shards} Parquet shards, {origin}")
    print(f"names: {len(names)}; {os.cpu_count()} CPUs, load average {load_average()}")
    with tempfile.TemporaryDirectory(prefix="bench_census_") as temporary:
        folder = Path(temporary) / "shards"
        folder.mkdir()
        started = time.perf_counter()
        write_shards(pool, args.captions, args.shards, folder, args.seed)
        size_mb = sum(path.stat().st_size for path in folder.iterdir()) / 1e6
        print(f"wrote shards in {time.perf_counter() - started:.1f} s ({size_mb:,.0f} MB on disk)")
        names_file = Path(temporary) / "names.txt"
        names_file.write_text("\n".join(names) + "\n", encoding="utf-8")

        print("\n1. local engine, end to end (read Parquet + match)")
        single_rate = None
        for workers in (int(value) for value in args.workers.split(",")):
            run = measure_in_subprocess(folder, names_file, workers)
            rate = run["captions"] / run["seconds"]
            single_rate = rate if workers == 1 else single_rate
            memory = (
                f"peak RSS {run['total_peak_mb']:,.0f} MB in all "
                f"({run['worker_peak_mb']:,.0f} MB per worker)"
                if workers > 1
                else f"peak RSS {run['process_peak_mb']:,.0f} MB"
            )
            print(
                f"   workers={workers}: {run['seconds']:.1f} s, {rate:,.0f} captions/s, "
                f"{run['text_bytes'] / 1e6 / run['seconds']:,.1f} MB/s of caption text, "
                f"{memory}; {run['members']} names found"
            )

        texts = read_captions(folder, max(args.baseline_captions, args.scaling_captions))
        baseline = texts.slice(0, args.baseline_captions)
        print(
            f"\n2. the paper's per-name str.contains loop, {len(baseline):,} captions "
            f"(best of {args.repeats})"
        )
        in_memory_rate = len(baseline) / matcher_seconds(baseline, names, args.repeats)
        object_strings = pd.Series(baseline.to_pylist(), dtype=object)
        object_rate = paper_loop_rate(object_strings, names, args.repeats)
        arrow_rate = paper_loop_rate(baseline.to_pandas(), names, args.repeats)
        print(f"   paper loop, object strings (pandas of the paper): {object_rate:,.0f} captions/s")
        print(
            f"   paper loop, pandas {pd.__version__} default strings: {arrow_rate:,.0f} captions/s"
        )
        print(f"   census matcher, same in-memory captions: {in_memory_rate:,.0f} captions/s")
        print(
            f"   speed-up in memory: {in_memory_rate / object_rate:,.0f}x (object), "
            f"{in_memory_rate / arrow_rate:,.0f}x (default strings)"
        )
        if single_rate:
            print(
                f"   speed-up of 1 worker end to end (with Parquet reading): "
                f"{single_rate / object_rate:,.0f}x (object), "
                f"{single_rate / arrow_rate:,.0f}x (default strings)"
            )

        scaling = min(args.scaling_captions, len(texts))
        texts = texts.slice(0, scaling)
        print(
            f"\n3. matcher time against number of names, {scaling:,} in-memory captions "
            f"(best of {args.repeats})"
        )
        reference = None
        for count in (int(value) for value in args.scaling_names.split(",")):
            seconds = matcher_seconds(texts, more_names(names, count, args.seed), args.repeats)
            reference = reference or seconds
            print(
                f"   {count:>6,} names: {seconds:.2f} s, {scaling / seconds:,.0f} captions/s "
                f"({seconds / reference:.2f}x the time for {args.scaling_names.split(',')[0]})"
            )
    print(f"\nload average at the end: {load_average()}")


if __name__ == "__main__":
    main()
