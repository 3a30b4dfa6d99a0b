"""Does dlib's face encoder see the lab's synthetic faces? The figures in docs/faces.md.

    python benchmarks/measure_synthetic_faces.py [--people 90] [--photos 4] [--sizes 64 128] \
        [--boxes full central]

Renders ``--people`` seeded identities of ``idia.lab.synth`` (``--photos`` photos each) at
each size and prints, per size: how often dlib's HOG detector finds a face (first pass,
upsampled); per fixed face box (``full``: the whole photo; ``central``: its central 60%),
1-nearest-neighbour identification among the synthetic photos; and whether descriptors
separate people by trait (skin tone in thirds, dark vs light hair, gender): leave-one-out
5-nearest-neighbour accuracy over identity means against the majority share, and the rank
correlation of descriptor distance with skin-tone difference. The same on the colours of an
8x8 thumbnail is the baseline a descriptor must beat to add anything over raw colour.
"""

from __future__ import annotations

import argparse
import time

import dlib
import numpy as np
from scipy.stats import spearmanr

from idia.face_descriptors import FULL_IMAGE, FaceBox, FaceDescriptorEncoder, describe_images
from idia.synthetic import make_identities, render_face

DARK_HAIR = {"black", "dark brown", "brown"}
BOXES = {"full": FULL_IMAGE, "central": FaceBox(0.2, 0.2, 0.8, 0.8)}


def traits(identities) -> dict[str, np.ndarray]:
    tone = np.array([p.traits.skin_tone for p in identities])
    return {
        "skin tone (thirds)": np.digitize(tone, [1 / 3, 2 / 3]),
        "hair dark/light": np.array([p.traits.hair_colour_name in DARK_HAIR for p in identities],
                                    dtype=int),
        "gender": np.array([p.traits.gender == "man" for p in identities], dtype=int),
    }


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1, kind="stable")[:, :k]
    votes = np.array([np.bincount(labels[row], minlength=labels.max() + 1).argmax()
                      for row in nearest])
    return float(np.mean(votes == labels))


def separation(label: str, per_identity: np.ndarray, groups: dict[str, np.ndarray],
               tone: np.ndarray) -> None:
    parts = []
    for name, labels in groups.items():
        majority = np.bincount(labels).max() / len(labels)
        parts.append(f"{name} {knn_accuracy(per_identity, labels):.0%} (majority {majority:.0%})")
    iu = np.triu_indices(len(per_identity), 1)
    d = np.linalg.norm(per_identity[:, None] - per_identity[None], axis=-1)[iu]
    rho = spearmanr(d, np.abs(tone[:, None] - tone[None])[iu]).statistic
    print(f"  {label}: 5-NN by trait: " + "; ".join(parts)
          + f"; rank correlation of distance with skin-tone difference {rho:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=90)
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--boxes", nargs="+", choices=list(BOXES), default=list(BOXES))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    identities = make_identities([None] * args.people, seed=args.seed)
    groups = traits(identities)
    tone = np.array([p.traits.skin_tone for p in identities])
    owner = np.repeat(np.arange(args.people), args.photos)
    detector = dlib.get_frontal_face_detector()
    for size in args.sizes:
        photos = [render_face(p, i, size) for p in identities for i in range(args.photos)]
        rgb = [np.asarray(photo) for photo in photos]
        first = [bool(detector(x, 0)) for x in rgb]
        upsampled = sum(bool(detector(x, 1)) for x, found in zip(rgb, first, strict=True)
                        if not found)
        print(f"{size} px, {len(photos)} photos of {args.people} synthetic people: HOG finds a "
              f"face in {np.mean(first):.1%} (first pass) + {upsampled / len(rgb):.1%}"
              " (upsampled)")
        for box in args.boxes:
            start = time.perf_counter()
            vectors = describe_images(photos, encoder=FaceDescriptorEncoder(BOXES[box])).vectors
            seconds = (time.perf_counter() - start) / len(photos)
            d = np.linalg.norm(vectors[:, None] - vectors[None], axis=-1)
            np.fill_diagonal(d, np.inf)
            same = d[owner[:, None] == owner[None]]
            other = d[owner[:, None] != owner[None]]
            print(f"  {box} box: {seconds:.3f} s a photo; 1-NN identification "
                  f"{np.mean(owner[d.argmin(1)] == owner):.1%} (chance {1 / args.people:.1%}); "
                  f"distance same person median {np.median(same[np.isfinite(same)]):.3f}, "
                  f"different people {np.median(other):.3f}")
            means = vectors.reshape(args.people, args.photos, -1).mean(1)
            separation(f"{box} box descriptors", means, groups, tone)
        thumbs = np.stack([np.asarray(p.resize((8, 8)), np.float64).ravel() / 255 for p in photos])
        separation("8x8 colour baseline", thumbs.reshape(args.people, args.photos, -1).mean(1),
                   groups, tone)


if __name__ == "__main__":
    main()
