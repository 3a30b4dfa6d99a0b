"""Face descriptors of a whole reference set: computed once (cold), then from the cache.

    python benchmarks/bench_face_reference.py --lfw lfw:../shared/data/faces/lfw \
        [--workers 2] [--cache-dir DIR] [--detect]

Reads LFW's people (``lfw`` fetches it through scikit-learn), describes every photo with
dlib's ResNet (the fixed LFW box, or ``--detect``) in ``--workers`` processes, caches the
descriptors in ``--cache-dir`` (default: a new temporary folder, so the first pass is cold),
then loads them again. Prints the listing time, the cold time (whole set and per photo, wall
clock and CPU seconds of all processes: on a shared machine the CPU time is what an idle one
would need), the share of photos with a face and the cached load time.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from idia.face_descriptors import LFW_FUNNELED_BOX
from idia.lfw import load_lfw
from idia.reference_faces import cache_path, reference_faces


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                      resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", default="lfw")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--detect", action="store_true", help="detect faces (no fixed box)")
    args = parser.parse_args()
    box = None if args.detect else LFW_FUNNELED_BOX
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="idia-bench-faces-")

    start = time.perf_counter()
    lfw = load_lfw(args.lfw)
    listed = time.perf_counter() - start
    print(f"{lfw.describe()}: listed in {listed:.2f} s")

    start, cpu = time.perf_counter(), cpu_seconds()
    faces = reference_faces(lfw.people, lfw.key, box=box, cache_dir=cache_dir,
                            workers=args.workers)
    cold, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    n = len(faces.found)
    print(f"descriptors ({faces.encoder}), {args.workers} worker(s): {cold:.1f} s for "
          f"{n:,} photos = {cold / n:.4f} s a photo; CPU {cpu / n:.4f} s a photo; face in "
          f"{faces.found.mean():.2%}")

    start = time.perf_counter()
    again = reference_faces(lfw.people, lfw.key, box=box, cache_dir=cache_dir)
    warm = time.perf_counter() - start
    path = cache_path(lfw.key, faces.encoder, cache_dir)
    print(f"from the cache {path} ({path.stat().st_size / 1e6:.1f} MB, mode "
          f"{path.stat().st_mode & 0o777:o}): {warm * 1000:.0f} ms; identical: "
          f"{bool((again.vectors[again.found] == faces.vectors[faces.found]).all())}")


if __name__ == "__main__":
    main()
