"""What dlib's descriptors do on Labeled Faces in the Wild: the figures in docs/faces.md.

    python benchmarks/measure_lfw_faces.py --lfw lfw:../shared/data/faces/lfw \
        [--cache-dir DIR] [--workers 2] [--detection] [--compare-box 200]

Uses the cached descriptors of the whole set (computed first when absent; see
bench_face_reference.py) with the fixed LFW box. Prints:

- people by photo count (how many have at least m photos, m = 1..10);
- 1-nearest-neighbour identification over every photo of people with >= 2 photos (gallery:
  all other LFW photos), and nearest-mean identification;
- same-person vs different-person distances between mean descriptors (the duplicate
  threshold), and how often the threshold would drop another person among the lookalikes;
- how well lookalikes match sex (from first names, where the SSA lists know them), among all
  people, among people with >= 2 photos, and among people of the same sex by face;
- ``--detection``: HOG detection rates (first pass, upsampled, none; several faces);
- ``--compare-box N``: on N seeded people with >= 2 photos (up to 8 photos each), detected
  vs fixed-box descriptors (time per photo, 1-NN accuracy both ways, their distance).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from idia.face_descriptors import LFW_FUNNELED_BOX, describe_paths
from idia.lfw import load_lfw
from idia.lookalikes import (
    DEFAULT_LOOKALIKES,
    DUPLICATE_DISTANCE,
    SEX_NEIGHBOURS,
    choose_lookalikes,
    sex_by_face,
)
from idia.names import infer_sex
from idia.reference_faces import reference_faces


def pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances (len(a), len(b)) in float64."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(squared, 0))


def counts_by_photos(counts: np.ndarray) -> None:
    row = ", ".join(f">={m}: {int((counts >= m).sum()):,}" for m in range(1, 11))
    print(f"people with at least m photos: {row} (of {len(counts):,}; most: {counts.max()})")


def identification(vectors: np.ndarray, owner: np.ndarray, counts: np.ndarray) -> None:
    probes = np.flatnonzero(counts[owner] >= 2)
    hits = nearest_mean_hits = 0
    sums = np.zeros((counts.size, vectors.shape[1]))
    np.add.at(sums, owner, vectors)
    for start in range(0, len(probes), 1000):
        chunk = probes[start : start + 1000]
        d = pairwise(vectors[chunk], vectors)
        d[np.arange(len(chunk)), chunk] = np.inf
        hits += int((owner[d.argmin(1)] == owner[chunk]).sum())
        # nearest mean: the probe's own person is the mean of their other photos
        means = sums / counts[:, None]
        dm = pairwise(vectors[chunk], means)
        own = owner[chunk]
        rest = (sums[own] - vectors[chunk]) / (counts[own] - 1)[:, None]
        dm[np.arange(len(chunk)), own] = np.linalg.norm(vectors[chunk] - rest, axis=1)
        nearest_mean_hits += int((dm.argmin(1) == own).sum())
    n = len(probes)
    print(f"1-NN identification, {n:,} photos of {int((counts >= 2).sum()):,} people with >= 2 "
          f"photos against all {len(vectors) - 1:,} other photos: {hits / n:.1%}; "
          f"nearest person mean: {nearest_mean_hits / n:.1%}")


def distances(vectors: np.ndarray, owner: np.ndarray, counts: np.ndarray, seed: int) -> None:
    """Same person: a single photo vs the mean of the person's other photos, and one half of
    the photos vs the other half; different people: mean vs mean."""
    rng = np.random.default_rng(seed)
    single, halves = [], []
    for person in np.flatnonzero(counts >= 2):
        photos = vectors[owner == person][rng.permutation(counts[person])]
        single.append(np.linalg.norm(photos[0] - photos[1:].mean(0)))
        half = len(photos) // 2
        halves.append(np.linalg.norm(photos[:half].mean(0) - photos[half:].mean(0)))
    sums = np.zeros((counts.size, vectors.shape[1]))
    np.add.at(sums, owner, vectors)
    means = sums / counts[:, None]
    between = pairwise(means, means)[np.triu_indices(len(means), 1)]
    q = (1, 5, 50, 95, 99)
    for label, values in (("same person, 1 photo vs the rest's mean", single),
                          ("same person, half vs half (means)", halves),
                          ("different people, mean vs mean", between)):
        values = np.asarray(values)
        print(f"{label} (n={len(values):,}): percentiles {q}: "
              + ", ".join(f"{np.percentile(values, p):.3f}" for p in q))
    single, halves = np.asarray(single), np.asarray(halves)
    for threshold in (0.40, 0.45, DUPLICATE_DISTANCE, 0.55, 0.60):
        print(f"  threshold {threshold:.2f}: same person caught {np.mean(single < threshold):.1%}"
              f" (1 photo) / {np.mean(halves < threshold):.1%} (halves); different people "
              f"below it {np.mean(between < threshold):.3%} of pairs")


def sexes_by_face(means: np.ndarray, sexes: np.ndarray) -> np.ndarray:
    """Every person's sex by :func:`sex_by_face` (the person's own label does not vote);
    prints its agreement with the first-name sex where that is known."""
    by_face = np.array([sex_by_face(means[i : i + 1], means, sexes) for i in range(len(means))],
                       dtype=object)
    agreement = "; ".join(
        f"{label} {np.mean(by_face[sexes == sex] == sex):.1%} of {int((sexes == sex).sum()):,}"
        for sex, label in (("f", "women"), ("m", "men"))
    )
    print(f"sex by face ({SEX_NEIGHBOURS} nearest people with a first-name sex vote) agrees "
          f"with the first name's: {agreement}; first name unknown for "
          f"{int((sexes == '').sum()):,} of {len(sexes):,}")
    return by_face


def lookalike_effects(means: np.ndarray, names: tuple[str, ...], k: int,
                      eligible: np.ndarray, pool: str, face_sexes: np.ndarray | None = None,
                      ) -> None:
    """For every LFW person with a sex known from the first name: the share of their k
    lookalikes (other LFW people, among the ``eligible``; with ``face_sexes``, only those of
    the person's sex by face) of the same known sex, against the share among all eligible;
    and how many people the duplicate rule drops per person."""
    sexes = np.array([infer_sex(n) or "" for n in names], dtype=object)
    known = np.flatnonzero(sexes != "")
    matched: dict[str, list[float]] = {"f": [], "m": []}
    base: dict[str, list[float]] = {"f": [], "m": []}
    dropped, farthest = [], []
    sizes = []
    for i in known:
        allowed = eligible if face_sexes is None else eligible & (face_sexes == face_sexes[i])
        sizes.append(int(allowed.sum()))
        chosen = choose_lookalikes(means[i : i + 1], means, names, name=names[i], k=k,
                                   eligible=allowed)
        others = chosen.indices[sexes[chosen.indices] != ""]
        everyone = np.setdiff1d(known[eligible[known]], [i])
        matched[sexes[i]].append(np.mean(sexes[others] == sexes[i]))
        base[sexes[i]].append(np.mean(sexes[everyone] == sexes[i]))
        dropped.append(len(chosen.duplicates) - allowed[i])  # the person themselves is dropped
        farthest.append(chosen.distances[-1])
    shares = "; ".join(
        f"{label} ({len(matched[sex]):,}): {np.mean(matched[sex]):.1%} same sex "
        f"(all eligible: {np.mean(base[sex]):.1%})"
        for sex, label in (("f", "women"), ("m", "men"))
    )
    print(f"lookalikes k={k} among {pool} (pool: {min(sizes):,} to {max(sizes):,}), people "
          f"whose sex the first-name lists know: {shares}; other people dropped as duplicates "
          f"per person: mean {np.mean(dropped):.3f}, max {max(dropped)}; distance of the k-th: "
          f"median {np.median(farthest):.3f}")


def detection_rates(paths: list) -> None:
    import dlib
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    first = upsampled = several = 0
    start = time.perf_counter()
    for path in paths:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        found = detector(rgb, 0)
        if found:
            first += 1
        else:
            found = detector(rgb, 1)
            upsampled += bool(found)
        several += len(found) > 1
    n = len(paths)
    print(f"HOG detection on {n:,} photos: first pass {first / n:.2%}, upsampled "
          f"{upsampled / n:.2%}, none {(n - first - upsampled) / n:.2%}; several faces "
          f"{several / n:.2%}; {(time.perf_counter() - start) / n * 1000:.1f} ms a photo")


def compare_box(people: tuple, n_people: int, seed: int) -> None:
    multi = [p for p in people if len(p.photos) >= 2]
    chosen = [multi[i] for i in sorted(np.random.default_rng(seed).choice(len(multi), n_people,
                                                                          replace=False))]
    paths = [photo for p in chosen for photo in p.photos[:8]]
    owner = np.repeat(np.arange(len(chosen)), [len(p.photos[:8]) for p in chosen])
    described = {}
    for label, box in (("detected", None), ("fixed box", LFW_FUNNELED_BOX)):
        start = time.perf_counter()
        described[label] = describe_paths(paths, box=box, workers=1)
        print(f"{label}: {(time.perf_counter() - start) / len(paths):.3f} s a photo (one "
              f"process), face in {described[label].found.mean():.2%}")

    def accuracy(vectors: np.ndarray, rows: np.ndarray) -> float:
        d = pairwise(vectors[rows], vectors[rows])
        np.fill_diagonal(d, np.inf)
        return float(np.mean(owner[rows][d.argmin(1)] == owner[rows]))

    found = np.flatnonzero(described["detected"].found)
    every = np.arange(len(paths))
    detected, boxed = described["detected"].vectors, described["fixed box"].vectors
    mixed = np.where(described["detected"].found[:, None], detected, boxed)
    gap = np.linalg.norm(detected[found] - boxed[found], axis=1)
    print(f"{len(chosen)} people, {len(paths)} photos; 1-NN among them: detected "
          f"{accuracy(detected, found):.1%} and fixed box {accuracy(boxed, found):.1%} on the "
          f"{len(found)} photos with a detected face; fixed box on all {accuracy(boxed, every):.1%}"
          f", detected with the box where none {accuracy(mixed, every):.1%}; distance detected "
          f"vs fixed, same photo: median {np.median(gap):.3f}, 90th percentile "
          f"{np.percentile(gap, 90):.3f}, max {gap.max():.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", default="lfw")
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=DEFAULT_LOOKALIKES)
    parser.add_argument("--detection", action="store_true")
    parser.add_argument("--compare-box", type=int, default=0, metavar="N_PEOPLE")
    args = parser.parse_args()

    lfw = load_lfw(args.lfw)
    print(lfw.describe())
    faces = reference_faces(lfw.people, lfw.key, box=LFW_FUNNELED_BOX,
                            cache_dir=args.cache_dir, workers=args.workers)
    counts = faces.counts
    assert faces.found.all(), "the fixed box gives every photo a descriptor"
    counts_by_photos(counts)
    identification(faces.vectors, faces.owner, counts)
    distances(faces.vectors, faces.owner, counts, args.seed)
    means = faces.means()
    everyone = np.ones(len(counts), bool)
    lookalike_effects(means, faces.names, args.k, everyone, "all people")
    lookalike_effects(means, faces.names, args.k, counts >= 2, "people with >= 2 photos")
    by_face = sexes_by_face(means, np.array([infer_sex(n) or "" for n in faces.names], object))
    for sex, label in (("f", "women"), ("m", "men")):
        print(f"  {label} by face: {int((by_face == sex).sum()):,} people, "
              f"{int(((by_face == sex) & (counts >= 2)).sum()):,} with >= 2 photos")
    lookalike_effects(means, faces.names, args.k, everyone, "people of the same sex by face",
                      by_face)
    if args.detection:
        detection_rates([photo for p in lfw.people for photo in p.photos])
    if args.compare_box:
        compare_box(lfw.people, args.compare_box, args.seed)


if __name__ == "__main__":
    main()
