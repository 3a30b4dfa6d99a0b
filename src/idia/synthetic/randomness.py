"""Seeded random streams: every choice of the synthetic data comes from an explicit seed, so
the same inputs always give the same people, photos, captions and pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def seeded_rng(*seed_parts: int) -> np.random.Generator:
    """A generator for one purpose, seeded by all of ``seed_parts`` (e.g. identity seed, stream
    number, photo index), so that streams never share draws."""
    return np.random.default_rng([int(p) for p in seed_parts])


def pick(rng: np.random.Generator, options: Sequence[str], weights: Sequence[float]) -> str:
    """One of ``options``, drawn with (unnormalised) ``weights``."""
    p = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]
