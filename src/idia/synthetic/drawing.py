"""What every synthetic picture shares: its default size, the supersampling that smooths
edges at small sizes, the named colours captions mention, and colour arithmetic."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_SIZE = 64
SUPERSAMPLE = 2  # draw at twice the size, then downsample: smooth edges at small sizes

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (200, 40, 40),
    "orange": (235, 130, 30),
    "yellow": (235, 210, 50),
    "green": (50, 150, 60),
    "blue": (45, 85, 200),
    "purple": (120, 60, 160),
    "pink": (235, 140, 180),
    "brown": (120, 80, 45),
    "black": (25, 25, 25),
    "white": (240, 240, 240),
    "grey": (128, 128, 128),
    "teal": (30, 140, 140),
}


def jitter(rgb: Sequence[float], rng: np.random.Generator, amount: float) -> tuple[int, int, int]:
    """``rgb`` with Gaussian noise of ``amount`` per channel, clipped to 0..255."""
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in rgb)  # type: ignore[return-value]


def mix(a: Sequence[float], b: Sequence[float], t: float) -> tuple[int, int, int]:
    """The colour a fraction ``t`` of the way from ``a`` to ``b``."""
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]
