"""A synthetic person's face traits: what stays the same in every photo of them.

Most traits are continuous and drawn from one shared population, so look-alikes exist by
chance (:func:`idia.synthetic.identities.lookalike` makes them on purpose). Colours are drawn
around named anchors with continuous jitter; the anchor's name is what captions say (people
describe "red hair", not an RGB value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from idia.synthetic.drawing import jitter, mix
from idia.synthetic.randomness import pick

GENDERS = ("woman", "man")
SEX_OF_GENDER = {"woman": "f", "man": "m"}  # idia.names' sex codes

HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (25, 22, 22),
    "dark brown": (60, 40, 28),
    "brown": (105, 70, 40),
    "auburn": (130, 55, 30),
    "red": (175, 70, 35),
    "blond": (215, 180, 110),
    "platinum": (235, 225, 200),
    "grey": (150, 150, 150),
}
HAIR_COLOUR_WEIGHTS = (0.28, 0.22, 0.18, 0.07, 0.06, 0.12, 0.03, 0.04)
EYE_COLOURS: dict[str, tuple[int, int, int]] = {
    "brown": (90, 55, 30),
    "dark": (45, 30, 20),
    "blue": (70, 120, 190),
    "green": (70, 130, 80),
    "hazel": (130, 100, 50),
    "grey": (120, 130, 140),
}
EYE_COLOUR_WEIGHTS = (0.4, 0.2, 0.18, 0.08, 0.09, 0.05)
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (255, 226, 204),
    (241, 200, 160),
    (224, 172, 125),
    (198, 140, 92),
    (150, 100, 62),
    (96, 62, 40),
)
HAIR_STYLES = (
    "bald",
    "buzz",
    "short",
    "side part",
    "curly",
    "long",
    "bob",
    "ponytail",
    "bun",
    "afro",
)
# P(style | gender): shared styles make look-alikes across genders possible.
_STYLE_WEIGHTS = {
    "woman": (0.0, 0.02, 0.08, 0.05, 0.12, 0.33, 0.17, 0.12, 0.07, 0.04),
    "man": (0.1, 0.18, 0.3, 0.18, 0.09, 0.05, 0.02, 0.02, 0.01, 0.05),
}
BEARDS = ("none", "stubble", "moustache", "goatee", "full beard")
_BEARD_WEIGHTS = {"woman": (1.0, 0, 0, 0, 0), "man": (0.5, 0.15, 0.08, 0.09, 0.18)}
GLASSES = ("none", "round glasses", "square glasses")
_GLASSES_WEIGHTS = (0.72, 0.14, 0.14)


@dataclass(frozen=True)
class TraitProfile:
    """The distributions a person's traits are drawn from. The default is the shared
    population; a demographic group (:mod:`idia.synthetic.groups`) shifts skin tone, colours,
    hair styles and a few features. Every profile consumes the same random draws in the same
    order, so the default profile draws exactly the traits idia always drew. ``group``: the
    label of the group it describes (None: the shared population)."""

    group: str | None = None
    skin_beta: tuple[float, float] = (1.6, 2.2)  # skin tone ~ Beta(a, b), 0 lightest
    hair_colour_weights: tuple[float, ...] = HAIR_COLOUR_WEIGHTS  # over HAIR_COLOURS
    eye_colour_weights: tuple[float, ...] = EYE_COLOUR_WEIGHTS  # over EYE_COLOURS
    style_weights: tuple[tuple[float, ...], ...] = (  # over HAIR_STYLES, per GENDERS
        _STYLE_WEIGHTS["woman"],
        _STYLE_WEIGHTS["man"],
    )
    face_width_shift: float = 0.0  # added to the drawn value (canvas units)
    eye_size_shift: float = 0.0
    nose_width_shift: float = 0.0
    lip_thickness_shift: float = 0.0


POPULATION = TraitProfile()


@dataclass(frozen=True)
class FaceTraits:
    """What stays the same in every photo of one person (continuous values are unit-free)."""

    gender: str
    age: float  # years; greys hair, adds lines
    face_width: float  # half-width of the head relative to the canvas
    face_length: float  # half-height of the head relative to the canvas
    jaw_taper: float  # 0 = round jaw, 1 = pointed chin
    skin: tuple[int, int, int]
    skin_tone: float  # 0 = lightest, 1 = darkest (for captions)
    hair_style: str
    hair_colour: tuple[int, int, int]
    hair_colour_name: str
    hair_volume: float
    fringe: bool
    part_side: int  # -1 left, +1 right
    eye_spacing: float
    eye_size: float
    eye_openness: float  # height/width of the eye
    eye_height: float  # vertical position of the eyes on the head
    eye_tilt: float
    eye_colour: tuple[int, int, int]
    eye_colour_name: str
    brow_thickness: float
    brow_arch: float
    brow_tilt: float
    brow_colour: tuple[int, int, int]
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_thickness: float
    lip_colour: tuple[int, int, int]
    ear_size: float
    beard: str
    glasses: str
    glasses_colour: tuple[int, int, int]
    freckles: float  # density, 0 for most people
    mole: tuple[float, float] | None  # position on the face, a distinctive mark


def _skin_from_tone(tone: float) -> tuple[int, int, int]:
    """The skin colour at ``tone`` (0 lightest, 1 darkest), between the listed tones."""
    position = tone * (len(SKIN_TONES) - 1)
    low = min(int(position), len(SKIN_TONES) - 2)
    return mix(SKIN_TONES[low], SKIN_TONES[low + 1], position - low)


def sample_traits(
    rng: np.random.Generator, gender: str | None = None, profile: TraitProfile = POPULATION
) -> FaceTraits:
    """Draw one person's traits from ``profile`` (the shared population unless a group's), so
    similar people occur."""
    gender = gender if gender in GENDERS else GENDERS[int(rng.integers(2))]
    age = float(np.clip(rng.normal(40, 14), 18, 85))
    hair_colour_name = pick(rng, list(HAIR_COLOURS), profile.hair_colour_weights)
    hair_colour = jitter(HAIR_COLOURS[hair_colour_name], rng, 14)
    if age > 55 and rng.random() < (age - 55) / 30:
        hair_colour_name = "grey"
        hair_colour = mix(hair_colour, (185, 185, 185), float(rng.uniform(0.5, 0.95)))
    skin_tone = float(rng.beta(*profile.skin_beta))
    skin = jitter(_skin_from_tone(skin_tone), rng, 5)
    eye_colour_name = pick(rng, list(EYE_COLOURS), profile.eye_colour_weights)
    is_man = gender == "man"
    return FaceTraits(
        gender=gender,
        age=age,
        face_width=float(
            rng.uniform(0.19, 0.25) + (0.01 if is_man else 0.0) + profile.face_width_shift
        ),
        face_length=float(rng.uniform(0.25, 0.31)),
        jaw_taper=float(rng.beta(2, 2)),
        skin=skin,
        skin_tone=skin_tone,
        hair_style=pick(rng, HAIR_STYLES, profile.style_weights[GENDERS.index(gender)]),
        hair_colour=hair_colour,
        hair_colour_name=hair_colour_name,
        hair_volume=float(rng.uniform(0.6, 1.4)),
        fringe=bool(rng.random() < (0.35 if not is_man else 0.2)),
        part_side=int(rng.choice([-1, 1])),
        eye_spacing=float(rng.uniform(0.075, 0.11)),
        eye_size=float(rng.uniform(0.028, 0.045) + profile.eye_size_shift),
        eye_openness=float(rng.uniform(0.35, 0.75)),
        eye_height=float(rng.uniform(-0.06, 0.01)),
        eye_tilt=float(rng.normal(0, 0.12)),
        eye_colour=jitter(EYE_COLOURS[eye_colour_name], rng, 12),
        eye_colour_name=eye_colour_name,
        brow_thickness=float(rng.uniform(0.006, 0.02) + (0.004 if is_man else 0.0)),
        brow_arch=float(rng.uniform(-0.005, 0.02)),
        brow_tilt=float(rng.normal(0, 0.15)),
        brow_colour=mix(hair_colour, (30, 25, 20), float(rng.uniform(0.1, 0.5))),
        nose_length=float(rng.uniform(0.06, 0.11)),
        nose_width=float(rng.uniform(0.025, 0.05) + profile.nose_width_shift),
        mouth_width=float(rng.uniform(0.06, 0.11)),
        lip_thickness=float(
            rng.uniform(0.008, 0.025) + (0.0 if is_man else 0.004) + profile.lip_thickness_shift
        ),
        lip_colour=mix(skin, (170, 60, 70), float(rng.uniform(0.25, 0.6))),
        ear_size=float(rng.uniform(0.03, 0.055)),
        beard=pick(rng, BEARDS, _BEARD_WEIGHTS[gender]),
        glasses=pick(rng, GLASSES, _GLASSES_WEIGHTS),
        glasses_colour=jitter((40, 35, 35) if rng.random() < 0.7 else (150, 110, 60), rng, 20),
        freckles=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.12 else 0.0,
        mole=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.2, 0.6)))
        if rng.random() < 0.2
        else None,
    )

