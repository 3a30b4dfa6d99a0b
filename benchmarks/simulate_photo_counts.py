"""Reference people with fewer photos than the person: size and power of three rules.

    python benchmarks/simulate_photo_counts.py --lfw lfw:../shared/data/faces/lfw \
        [--k 1000] [--trials 4000] [--seed 0]

The face test ranks the name's mean response over the person's P photos among the same mean
over each reference person's photos. LFW's people have 1 to 530 photos (71% have one). A
random-effects model stands in for the responses: photo response = identity effect (sd tau)
+ photo noise (sd sigma), tau^2 + sigma^2 = 1, ICC = tau^2; under the alternative the
person's identity effect is shifted by ``--shift``. Reference photo counts are drawn from
LFW's people. Rules:

- ``fewer ok``: every reference uses min(P, n_j) of its photos (idia's matched_means today);
- ``enough only``: only references with n_j >= P (fewer of them: a coarser p floor);
- ``cap``: the person and every reference use m photos, m = min(P, the largest count that
  at least k LFW people reach), so both sides are exchangeable exactly.

Prints P(p <= alpha) under the null (size; valid when at most alpha) and under the
alternative (power) for alpha 0.05, 0.01 and 0.001, per P and ICC.
"""

from __future__ import annotations

import argparse

import numpy as np

from idia.lfw import load_lfw

ALPHAS = (0.05, 0.01, 0.001)


def rates(own: np.ndarray, refs: np.ndarray) -> list[float]:
    p = (1 + (refs >= own[:, None]).sum(1)) / (1 + refs.shape[1])
    return [float(np.mean(p <= a)) for a in ALPHAS]


def simulate(counts: np.ndarray, photos: int, icc: float, shift: float, k: int, trials: int,
             rng: np.random.Generator) -> dict[str, tuple[int, list[float], list[float]]]:
    tau, sigma = np.sqrt(icc), np.sqrt(1 - icc)
    m_star = max(m for m in range(1, photos + 1) if (counts >= m).sum() >= k)
    rules = {
        "fewer ok": (counts, np.minimum(photos, counts), photos),
        "enough only": (counts[counts >= photos], np.full((counts >= photos).sum(), photos),
                        photos),
        "cap": (counts[counts >= m_star], np.full((counts >= m_star).sum(), m_star), m_star),
    }
    out = {}
    for rule, (pool, _, own_photos) in rules.items():
        n_refs = min(k, len(pool))
        picks = np.stack([rng.choice(len(pool), n_refs, replace=False) for _ in range(trials)])
        used = np.minimum(own_photos, pool[picks]) if rule == "fewer ok" else np.full(
            picks.shape, own_photos)
        refs = tau * rng.normal(size=picks.shape) + sigma * rng.normal(size=picks.shape) / np.sqrt(
            used)
        base = tau * rng.normal(size=trials) + sigma * rng.normal(size=trials) / np.sqrt(
            own_photos)
        out[rule] = (n_refs, rates(base, refs), rates(base + shift * tau, refs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lfw", default="lfw")
    parser.add_argument("--k", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--shift", type=float, default=2.0,
                        help="the member's identity effect, in identity-effect sds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = np.array([len(p.photos) for p in load_lfw(args.lfw).people])
    rng = np.random.default_rng(args.seed)
    print(f"alpha = {ALPHAS}; size = P(p <= alpha | null), power at shift {args.shift} tau")
    for icc in (0.2, 0.5, 0.8):
        for photos in (1, 2, 3, 5, 10):
            results = simulate(counts, photos, icc, args.shift, args.k, args.trials, rng)
            line = "; ".join(
                f"{rule} (k={n}): size {'/'.join(f'{s:.3f}' for s in size)} power "
                f"{'/'.join(f'{p:.2f}' for p in power)}"
                for rule, (n, size, power) in results.items()
            )
            print(f"ICC {icc}, P={photos}: {line}")


if __name__ == "__main__":
    main()
