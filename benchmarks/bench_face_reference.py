"""The face test's public reference: what it costs, once and per check.

    python benchmarks/bench_face_reference.py --lfw lfw:../shared/data/faces/lfw \
        [--workers 2] [--cache-dir DIR] [--detect] [--model open_clip:ViT-B-32:random] \
        [--person "Tony Blair"] [--photos 4] [--k 1000] [--num-names 1000] [--skip-baseline]

Two parts, printed side by side.

1. The reference's face descriptors (once per set and encoder): reads LFW's people (``lfw``
   fetches it through scikit-learn), describes every photo with dlib's ResNet (the fixed LFW
   box, or ``--detect``) in ``--workers`` processes, caches them in ``--cache-dir`` (default: a
   new temporary folder, so the first pass is cold; give the folder of an earlier run to skip
   the 9 minutes), then loads them again.
2. One ``idia check`` with the public reference on ``--photos`` photos of ``--person`` (an LFW
   person: left out of their own reference by name), with a ViT-B-32-sized open_clip model
   (random weights: the cost does not depend on them), face crops: the first check (the
   reference photos' embeddings computed and cached), a later check in a new process's state
   (the embeddings from the disk cache) and one in the same process (from memory). Baseline:
   the old same-folder reference (``--reference DIR``) holding the same reference photos: the
   time to prepare and encode them, which every check with it spends again.

Wall clock and CPU seconds of this process and its workers are printed: on a shared machine
the CPU time is what an idle one would need.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from idia.engine import create_attack
from idia.face_descriptors import LFW_FUNNELED_BOX
from idia.face_reference import PublicReference
from idia.lfw import load_lfw
from idia.reference_faces import cache_path, reference_faces


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                      resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Timer:
    def __enter__(self) -> Timer:
        self.wall, self.cpu = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *_) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, cpu_seconds() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:7.1f} s wall, {self.cpu:7.1f} s CPU"


def describe_reference(args: argparse.Namespace, cache_dir: str) -> None:
    box = None if args.detect else LFW_FUNNELED_BOX
    with Timer() as listed:
        lfw = load_lfw(args.lfw)
    print(f"{lfw.describe()}: listed in {listed.wall:.2f} s")
    with Timer() as cold:
        faces = reference_faces(lfw.people, lfw.key, box=box, cache_dir=cache_dir,
                                workers=args.workers)
    n = len(faces.found)
    print(f"descriptors ({faces.encoder}), {args.workers} worker(s): {cold} for {n:,} photos "
          f"= {cold.wall / n:.4f} s a photo; CPU {cold.cpu / n:.4f} s a photo; face in "
          f"{faces.found.mean():.2%}")
    with Timer() as warm:
        again = reference_faces(lfw.people, lfw.key, box=box, cache_dir=cache_dir)
    path = cache_path(lfw.key, faces.encoder, cache_dir)
    print(f"from the cache {path} ({path.stat().st_size / 1e6:.1f} MB, mode "
          f"{path.stat().st_mode & 0o777:o}): {warm.wall * 1000:.0f} ms; identical: "
          f"{bool((again.vectors[again.found] == faces.vectors[faces.found]).all())}")


def checks(args: argparse.Namespace, cache_dir: str) -> None:
    embeddings = tempfile.mkdtemp(prefix="idia-bench-embeddings-")

    def attack():
        torch.manual_seed(0)  # the same random weights (and model identity) every time
        return create_attack(args.model, cache_dir=embeddings, progress=False, seed=0,
                             num_names=args.num_names, lookalikes=args.k)

    with Timer() as loading:
        public = PublicReference.load(args.lfw, cache_dir=cache_dir)
    person = next(p for p in public.lfw.people if p.name == args.person)
    photos = list(person.photos[: args.photos])
    print(f"\nper check: {args.model}, face crops, {len(photos)} photos of {person.name}, "
          f"{args.num_names} candidate names, k = {args.k} lookalikes; public reference loaded "
          f"(descriptors from the cache, sexes by face) in {loading.wall:.1f} s")
    attacker = attack()
    attacker.check(photos, person.name, reference="none")  # prompts encoded and cached
    rows = []
    for label, fresh in (("first check (reference embeddings computed, cached)", False),
                         ("later check, new process state (disk cache)", True),
                         ("later check, same process (memory)", False)):
        if fresh:
            attacker = attack()
            public = PublicReference.load(args.lfw, cache_dir=cache_dir)
        with Timer() as timer:
            result = attacker.check(photos, person.name, reference=public)
        face = result.claims["face_association"]
        rows.append((label, timer, face))
    if not args.skip_baseline:
        folder = Path(tempfile.mkdtemp(prefix="idia-bench-folder-"))
        plan = attacker.lookalike_plan(public, attacker.prepare(photos), person.name, None,
                                       "first name")
        for j, chosen in zip(plan.people[: plan.k], plan.photos[: plan.k], strict=True):
            target = folder / public.lfw.people[j].folder.name
            target.mkdir()
            for photo in chosen:
                (target / photo.name).symlink_to(photo)
        with Timer() as timer:  # what the old check paid for its reference, every time
            prepared = attacker.reference_set(folder)
        rows.append((f"old same-folder reference: preparing and encoding its "
                     f"{prepared.n_photos:,} photos (every check)", timer, None))
    width = max(len(label) for label, _, _ in rows)
    for label, timer, face in rows:
        if face is None:
            tested = ""
        elif face.tested:
            tested = (f"p = {face.p_value:.3g}, floor {face.p_floor:.2g}, {face.n_null:,} "
                      "reference people")
        else:
            tested = f"not tested: {face.reason}"
        print(f"  {label:<{width}}  {timer}  {tested}")
    first = rows[0][2]
    if first is not None and first.tested:
        print(f"reference: {first.reference}\nmatching: {first.matching}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", default="lfw")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--detect", action="store_true", help="detect faces (no fixed box)")
    parser.add_argument("--model", default="open_clip:ViT-B-32:random")
    parser.add_argument("--person", default="Tony Blair")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--k", type=int, default=1000, help="lookalike reference people")
    parser.add_argument("--num-names", type=int, default=1000, help="candidate names")
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="idia-bench-faces-")
    describe_reference(args, cache_dir)
    checks(args, cache_dir)


if __name__ == "__main__":
    main()
