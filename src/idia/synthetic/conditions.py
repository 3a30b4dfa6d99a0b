"""What changes from photo to photo of one person (the nuisance): pose, framing, expression,
background, accessories, lighting and image degradation.

The conditions of photo ``k`` of an identity come from ``(identity seed, k)`` alone, so
captions (:mod:`idia.synthetic.captions`) and pixels (:mod:`idia.synthetic.faces`) agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from idia.synthetic.drawing import NAMED_COLOURS
from idia.synthetic.identities import Identity
from idia.synthetic.randomness import pick, seeded_rng


@dataclass(frozen=True)
class PhotoConditions:
    """What changes from photo to photo (the nuisance), kept so captions can describe it."""

    yaw: float
    pitch: float
    roll: float
    scale: float
    shift: tuple[float, float]
    smile: float
    mouth_open: bool
    eyes_closed: bool
    brow_raise: float
    background: str
    background_colour_name: str
    shirt_colour_name: str
    hat: str  # "none", "cap", "beanie", "brimmed hat"
    sunglasses: bool
    hand: bool  # a hand partly covering the face
    brightness: float
    contrast: float
    colour_cast: tuple[float, float, float]
    shade_angle: float
    shade_strength: float
    blur: float
    noise: float
    grayscale: bool
    mirror: bool



def sample_conditions(rng: np.random.Generator, strength: float = 1.0) -> PhotoConditions:
    """Per-photo nuisance; ``strength`` scales pose, framing and image degradation."""
    s = strength
    return PhotoConditions(
        yaw=float(np.clip(rng.normal(0, 0.35 * s), -0.8, 0.8)),
        pitch=float(np.clip(rng.normal(0, 0.25 * s), -0.6, 0.6)),
        roll=float(rng.normal(0, 9 * s)),
        scale=float(np.exp(rng.normal(0, 0.12 * s))),
        shift=(float(rng.normal(0, 0.06 * s)), float(rng.normal(0, 0.05 * s))),
        smile=float(rng.uniform(-0.3, 1.0)),
        mouth_open=bool(rng.random() < 0.2),
        eyes_closed=bool(rng.random() < 0.06),
        brow_raise=float(rng.uniform(-0.5, 1.0)),
        background=str(rng.choice(["plain", "gradient", "wall", "bokeh", "stripes"])),
        background_colour_name=str(rng.choice(list(NAMED_COLOURS))),
        shirt_colour_name=str(rng.choice(list(NAMED_COLOURS))),
        hat=pick(rng, ("none", "cap", "beanie", "brimmed hat"), (0.86, 0.05, 0.04, 0.05)),
        sunglasses=bool(rng.random() < 0.06),
        hand=bool(rng.random() < 0.05 * s),
        brightness=float(np.exp(rng.normal(0, 0.22 * s))),
        contrast=float(np.exp(rng.normal(0, 0.2 * s))),
        colour_cast=tuple(float(np.exp(rng.normal(0, 0.08 * s))) for _ in range(3)),  # type: ignore[arg-type]
        shade_angle=float(rng.uniform(0, 2 * math.pi)),
        shade_strength=float(rng.uniform(0, 0.5 * s)),
        blur=float(abs(rng.normal(0, 0.6 * s))),
        noise=float(abs(rng.normal(0, 7 * s))),
        grayscale=bool(rng.random() < 0.08),
        mirror=bool(rng.random() < 0.5),
    )


def photo_conditions(
    identity: Identity, photo_index: int, strength: float = 1.0
) -> PhotoConditions:
    """The nuisance of photo ``photo_index`` of ``identity`` (a pure function of both)."""
    return sample_conditions(seeded_rng(identity.seed, 3, photo_index), strength)
