"""Synthetic people and an image-caption corpus, drawn offline with PIL + NumPy.

Why: the identity inference attack needs people whose membership in a training set is known
exactly. Real photo sets cannot be redistributed and no pretrained weights are available here,
so the lab draws its own people. Each identity has stable traits (head shape, skin, hair, eyes,
brows, nose, mouth, ears, glasses, beard, marks, age); each photo adds strong nuisance (pose,
scale, position, lighting, expression, background, blur, noise, occasional hats, sunglasses,
hands). Most traits are continuous and drawn from one shared population, so look-alikes exist
by chance, and :func:`lookalike` makes them on purpose.

Every random choice comes from an explicit seed: an identity from ``(seed, index)``, a photo
from ``(identity seed, photo index)``. The same inputs always give the same pixels.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from idia.names import NamePool, default_pool, sample_decoys

GENDERS = ("woman", "man")
SEX_OF_GENDER = {"woman": "f", "man": "m"}  # idia.names' sex codes
DEFAULT_SIZE = 64
_SUPERSAMPLE = 2  # draw at twice the size, then downsample: smooth edges at small sizes

# Named colours: traits are drawn around these anchors with continuous jitter; the anchor name
# is what captions say (people describe "red hair", not an RGB value).
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


@dataclass(frozen=True)
class Identity:
    """A synthetic person: a name (None for unnamed background people), a seed, traits."""

    name: str | None
    seed: int
    traits: FaceTraits


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


def _rng(*seed_parts: int) -> np.random.Generator:
    return np.random.default_rng([int(p) for p in seed_parts])


def _jitter(rgb: Sequence[float], rng: np.random.Generator, amount: float) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.normal(0, amount), 0, 255)) for c in rgb)  # type: ignore[return-value]


def _mix(a: Sequence[float], b: Sequence[float], t: float) -> tuple[int, int, int]:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _pick(rng: np.random.Generator, options: Sequence[str], weights: Sequence[float]) -> str:
    p = np.asarray(weights, dtype=float)
    return options[int(rng.choice(len(options), p=p / p.sum()))]


def _skin_from_tone(tone: float) -> tuple[int, int, int]:
    position = tone * (len(SKIN_TONES) - 1)
    low = min(int(position), len(SKIN_TONES) - 2)
    return _mix(SKIN_TONES[low], SKIN_TONES[low + 1], position - low)


def sample_traits(rng: np.random.Generator, gender: str | None = None) -> FaceTraits:
    """Draw one person's traits from the shared population (so similar people occur)."""
    gender = gender if gender in GENDERS else GENDERS[int(rng.integers(2))]
    age = float(np.clip(rng.normal(40, 14), 18, 85))
    hair_colour_name = _pick(rng, list(HAIR_COLOURS), HAIR_COLOUR_WEIGHTS)
    hair_colour = _jitter(HAIR_COLOURS[hair_colour_name], rng, 14)
    if age > 55 and rng.random() < (age - 55) / 30:
        hair_colour_name = "grey"
        hair_colour = _mix(hair_colour, (185, 185, 185), float(rng.uniform(0.5, 0.95)))
    skin_tone = float(rng.beta(1.6, 2.2))
    skin = _jitter(_skin_from_tone(skin_tone), rng, 5)
    eye_colour_name = _pick(rng, list(EYE_COLOURS), EYE_COLOUR_WEIGHTS)
    is_man = gender == "man"
    return FaceTraits(
        gender=gender,
        age=age,
        face_width=float(rng.uniform(0.19, 0.25) + (0.01 if is_man else 0.0)),
        face_length=float(rng.uniform(0.25, 0.31)),
        jaw_taper=float(rng.beta(2, 2)),
        skin=skin,
        skin_tone=skin_tone,
        hair_style=_pick(rng, HAIR_STYLES, _STYLE_WEIGHTS[gender]),
        hair_colour=hair_colour,
        hair_colour_name=hair_colour_name,
        hair_volume=float(rng.uniform(0.6, 1.4)),
        fringe=bool(rng.random() < (0.35 if not is_man else 0.2)),
        part_side=int(rng.choice([-1, 1])),
        eye_spacing=float(rng.uniform(0.075, 0.11)),
        eye_size=float(rng.uniform(0.028, 0.045)),
        eye_openness=float(rng.uniform(0.35, 0.75)),
        eye_height=float(rng.uniform(-0.06, 0.01)),
        eye_tilt=float(rng.normal(0, 0.12)),
        eye_colour=_jitter(EYE_COLOURS[eye_colour_name], rng, 12),
        eye_colour_name=eye_colour_name,
        brow_thickness=float(rng.uniform(0.006, 0.02) + (0.004 if is_man else 0.0)),
        brow_arch=float(rng.uniform(-0.005, 0.02)),
        brow_tilt=float(rng.normal(0, 0.15)),
        brow_colour=_mix(hair_colour, (30, 25, 20), float(rng.uniform(0.1, 0.5))),
        nose_length=float(rng.uniform(0.06, 0.11)),
        nose_width=float(rng.uniform(0.025, 0.05)),
        mouth_width=float(rng.uniform(0.06, 0.11)),
        lip_thickness=float(rng.uniform(0.008, 0.025) + (0.0 if is_man else 0.004)),
        lip_colour=_mix(skin, (170, 60, 70), float(rng.uniform(0.25, 0.6))),
        ear_size=float(rng.uniform(0.03, 0.055)),
        beard=_pick(rng, BEARDS, _BEARD_WEIGHTS[gender]),
        glasses=_pick(rng, GLASSES, _GLASSES_WEIGHTS),
        glasses_colour=_jitter((40, 35, 35) if rng.random() < 0.7 else (150, 110, 60), rng, 20),
        freckles=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.12 else 0.0,
        mole=(float(rng.uniform(-0.6, 0.6)), float(rng.uniform(-0.2, 0.6)))
        if rng.random() < 0.2
        else None,
    )


def make_identity(seed: int, name: str | None = None, gender: str | None = None) -> Identity:
    """One person from a seed; ``gender`` ("woman"/"man") is drawn when not given."""
    return Identity(name=name, seed=seed, traits=sample_traits(_rng(seed, 1), gender))


def make_identities(
    names: Sequence[str | None], seed: int, genders: Sequence[str | None] | None = None
) -> list[Identity]:
    """People for the given names (``None`` for unnamed ones), identity i seeded by (seed, i)."""
    if genders is not None and len(genders) != len(names):
        raise ValueError(f"got {len(names)} names but {len(genders)} genders")
    genders = genders or [None] * len(names)
    return [
        make_identity(int(_rng(seed, i).integers(2**62)), name, gender)
        for i, (name, gender) in enumerate(zip(names, genders, strict=True))
    ]


def named_people(
    n: int, name_seed: int, face_seed: int, pool: NamePool | None = None
) -> list[Identity]:
    """``n`` named people whose first name and face agree on sex.

    Names are drawn exactly as idia draws decoy names (:func:`idia.names.sample_decoys`:
    uniform over first x last names of each sex, half per sex, women first), so a person's
    name is exchangeable with the decoys of the same sex; each face is drawn with the gender
    of the list its first name came from.
    """
    pool = pool or default_pool()
    names = sample_decoys(n, pool, seed=name_seed)
    women = n - n // 2  # sample_decoys' split: the odd name goes to the first sex, "f"
    genders = ["woman"] * women + ["man"] * (n - women)
    for name, gender in zip(names, genders, strict=True):
        if name.split()[0] not in pool.first_names[SEX_OF_GENDER[gender]]:
            raise RuntimeError(f"{name!r} is not a {gender}'s name: sample_decoys changed order")
    return make_identities(names, seed=face_seed, genders=genders)


def people_rows(identities: Iterable[Identity]) -> list[tuple[str, str]]:
    """``(name, sex)`` (``f``/``m``, as idia.names codes it) per named person: what a later
    analysis needs to compare a person with the decoys of the same sex."""
    return [(p.name, SEX_OF_GENDER[p.traits.gender]) for p in identities]


def write_people_table(identities: Iterable[Identity], path: str | Path) -> Path:
    """:func:`people_rows` as a ``name,sex`` CSV file."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "sex"])
        writer.writerows(people_rows(identities))
    return path


def lookalike(
    identity: Identity, seed: int, closeness: float = 0.75, name: str | None = None
) -> Identity:
    """A different person who resembles ``identity``: traits pulled toward a fresh random person.

    ``closeness`` 1 gives a twin, 0 an unrelated person of the same gender. Categorical traits
    (hair style, glasses, beard, colours) are kept with probability ``closeness``.
    """
    rng = _rng(seed, 2)
    base, other = identity.traits, sample_traits(rng, identity.traits.gender)
    updates = {}
    for key, value in asdict(base).items():
        other_value = getattr(other, key)
        if isinstance(value, float):
            updates[key] = value * closeness + other_value * (1 - closeness)
        elif isinstance(value, tuple) and key in ("skin", "lip_colour", "brow_colour"):
            updates[key] = _mix(other_value, value, closeness)
        elif key in ("gender", "hair_colour", "eye_colour"):
            continue  # gender stays; colours move together with their names below
        elif rng.random() > closeness:
            updates[key] = other_value
    for colour, colour_name in (
        ("hair_colour", "hair_colour_name"),
        ("eye_colour", "eye_colour_name"),
    ):
        if rng.random() > closeness:
            updates[colour], updates[colour_name] = (
                getattr(other, colour),
                getattr(other, colour_name),
            )
    return Identity(name=name, seed=seed, traits=replace(base, **updates))


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
        hat=_pick(rng, ("none", "cap", "beanie", "brimmed hat"), (0.86, 0.05, 0.04, 0.05)),
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
    return sample_conditions(_rng(identity.seed, 3, photo_index), strength)


# ---------------------------------------------------------------------------------------------
# Drawing


def _background(size: int, cond: PhotoConditions, rng: np.random.Generator) -> Image.Image:
    base = np.array(_jitter(NAMED_COLOURS[cond.background_colour_name], rng, 25), dtype=float)
    other = np.array(_jitter(NAMED_COLOURS[str(rng.choice(list(NAMED_COLOURS)))], rng, 25), float)
    canvas = np.ones((size, size, 3)) * base
    yy, xx = np.mgrid[0:size, 0:size] / size
    if cond.background == "gradient":
        t = (yy * math.cos(rng.uniform(0, 6.3)) + xx * math.sin(rng.uniform(0, 6.3)) + 1) / 2
        canvas = base * (1 - t[..., None]) + other * t[..., None] * 0.6 + base * t[..., None] * 0.4
    elif cond.background == "wall":
        horizon = rng.uniform(0.55, 0.85)
        canvas[yy > horizon] = other * 0.8
    elif cond.background == "stripes":
        period = rng.uniform(0.08, 0.25)
        stripes = np.sin((xx * math.cos(rng.uniform(0, 3.2)) + yy) / period * math.pi) > 0
        canvas[stripes] = base * 0.5 + other * 0.5
    image = Image.fromarray(canvas.clip(0, 255).astype(np.uint8))
    if cond.background == "bokeh":
        draw = ImageDraw.Draw(image)
        for _ in range(int(rng.integers(4, 12))):
            x, y, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(0.04, 0.15) * size
            draw.ellipse((x - r, y - r, x + r, y + r), fill=_jitter(other, rng, 40))
        image = image.filter(ImageFilter.GaussianBlur(size * 0.03))
    return image


def _head_polygon(cx: float, cy: float, w: float, h: float, taper: float, squeeze: float) -> list:
    points = []
    for k in range(48):
        t = 2 * math.pi * k / 48
        x, y = math.cos(t), math.sin(t)
        if y > 0:  # lower half: narrow toward the chin
            x *= 1 - taper * 0.45 * y**2
        x *= 1 - squeeze * (0.5 + 0.5 * x) if squeeze > 0 else 1 + squeeze * (0.5 - 0.5 * x)
        points.append((cx + w * x, cy + h * y))
    return points


def _draw_face(size: int, identity: Identity, cond: PhotoConditions) -> Image.Image:
    """The head, neck and shoulders on a transparent layer, frontal up to yaw/pitch offsets."""
    tr = identity.traits
    S = float(size)
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    cx, cy = 0.5 * S, 0.47 * S
    w, h = tr.face_width * S, tr.face_length * S
    squeeze = abs(cond.yaw) * 0.25 * (1 if cond.yaw > 0 else -1)
    fx = cx + cond.yaw * w * 0.45  # features move with the head's turn
    fy = cy + cond.pitch * h * 0.25
    hair = tr.hair_colour
    style = (
        tr.hair_style if cond.hat == "none" or tr.hair_style in ("long", "ponytail") else "short"
    )
    vol = tr.hair_volume

    # behind the head: long hair, afro, bun, ponytail
    if style == "long":
        d.rounded_rectangle(
            (
                cx - w * 1.12 * vol**0.3,
                cy - h * 0.9,
                cx + w * 1.12 * vol**0.3,
                cy + h * (0.9 + 0.5 * vol),
            ),
            radius=w * 0.6,
            fill=hair,
        )
    elif style == "afro":
        r = w * (1.25 + 0.25 * vol)
        d.ellipse((cx - r, cy - h * 0.55 - r * 0.8, cx + r, cy - h * 0.55 + r * 1.0), fill=hair)
    elif style == "bob":
        d.rounded_rectangle(
            (cx - w * 1.15, cy - h * 1.05, cx + w * 1.15, cy + h * 0.45 * vol),
            radius=w * 0.5,
            fill=hair,
        )
    elif style == "ponytail":
        side = tr.part_side
        d.ellipse(
            (
                cx + side * w * 0.8 - w * 0.3,
                cy - h * 0.4,
                cx + side * w * 0.8 + w * 0.35,
                cy + h * 0.8,
            ),
            fill=hair,
        )
    elif style == "bun":
        r = w * 0.38 * vol**0.5
        d.ellipse((cx - r, cy - h * 1.15 - r, cx + r, cy - h * 1.15 + r), fill=hair)

    # neck and shoulders
    shirt = NAMED_COLOURS[cond.shirt_colour_name]
    d.rectangle(
        (cx - w * 0.42, cy + h * 0.6, cx + w * 0.42, cy + h * 1.4),
        fill=_mix(tr.skin, (0, 0, 0), 0.12),
    )
    d.ellipse((cx - w * 2.1, cy + h * 1.15, cx + w * 2.1, cy + h * 2.6), fill=shirt)
    d.polygon(
        [(cx - w * 0.42, cy + h * 1.18), (cx + w * 0.42, cy + h * 1.18), (cx, cy + h * 1.5)],
        fill=_mix(tr.skin, (0, 0, 0), 0.12),
    )

    # ears: the far one hides as the head turns
    ear_y = fy + (tr.eye_height + 0.03) * S
    for side in (-1, 1):
        visible = 1 - max(0.0, side * -cond.yaw) * 1.4
        if visible <= 0.1:
            continue
        ex = cx + side * (w * 0.97 - (cond.yaw * side) * w * 0.1)
        er = tr.ear_size * S
        d.ellipse(
            (ex - er * 0.55 * visible, ear_y - er, ex + er * 0.55 * visible, ear_y + er),
            fill=tr.skin,
        )

    d.polygon(_head_polygon(cx, cy, w, h, tr.jaw_taper, squeeze), fill=tr.skin)
    shade = _mix(tr.skin, (60, 30, 20), 0.25)

    # age lines and freckles
    if tr.age > 50:
        for k in range(int((tr.age - 45) / 12)):
            y = cy - h * (0.5 + 0.07 * k)
            d.arc(
                (fx - w * 0.45, y - h * 0.05, fx + w * 0.45, y + h * 0.05),
                200,
                340,
                fill=shade,
                width=1,
            )
    if tr.freckles > 0:
        frng = _rng(identity.seed, 4)  # freckles are part of the person: same spots in every photo
        for _ in range(int(25 * tr.freckles)):
            px = fx + frng.normal(0, 0.35) * w
            py = fy + (tr.eye_height + 0.06) * S + frng.normal(0, 0.25) * h * 0.5
            d.point((px, py), fill=_mix(tr.skin, (120, 60, 30), 0.5))
    if tr.mole is not None:
        mx, my = fx + tr.mole[0] * w, fy + tr.mole[1] * h * 0.8
        d.ellipse(
            (mx - S * 0.007, my - S * 0.007, mx + S * 0.007, my + S * 0.007), fill=(60, 35, 25)
        )

    mouth_y = fy + h * 0.55 + cond.pitch * h * 0.05
    mw = tr.mouth_width * S * (1 + 0.15 * cond.smile)
    # beard under the mouth
    if tr.beard in ("full beard", "stubble", "goatee"):
        beard_colour = hair if tr.beard != "stubble" else _mix(tr.skin, hair, 0.45)
        if tr.beard == "goatee":
            d.ellipse(
                (fx - mw * 0.7, mouth_y - h * 0.05, fx + mw * 0.7, cy + h * 1.02), fill=beard_colour
            )
        else:
            jaw = [
                p for p in _head_polygon(cx, cy, w, h, tr.jaw_taper, squeeze) if p[1] > cy + h * 0.1
            ]
            d.polygon(
                jaw + [(fx + mw * 0.9, mouth_y - h * 0.12), (fx - mw * 0.9, mouth_y - h * 0.12)],
                fill=beard_colour,
            )

    # mouth: a smile curves the lips, an open mouth shows teeth
    lip = tr.lip_thickness * S
    curve = cond.smile * 0.03 * S
    if cond.mouth_open:
        d.ellipse((fx - mw, mouth_y - lip, fx + mw, mouth_y + lip + 0.03 * S), fill=tr.lip_colour)
        d.ellipse(
            (fx - mw * 0.8, mouth_y - lip * 0.3, fx + mw * 0.8, mouth_y + 0.025 * S),
            fill=(70, 20, 25),
        )
        d.rectangle(
            (fx - mw * 0.6, mouth_y - lip * 0.3, fx + mw * 0.6, mouth_y + 0.004 * S),
            fill=(235, 230, 220),
        )
    else:
        d.polygon(
            [
                (fx - mw, mouth_y - curve),
                (fx, mouth_y - lip * 0.8),
                (fx + mw, mouth_y - curve),
                (fx, mouth_y + lip + curve * 0.6),
            ],
            fill=tr.lip_colour,
        )
        d.line(
            [(fx - mw, mouth_y - curve), (fx, mouth_y + curve * 0.3), (fx + mw, mouth_y - curve)],
            fill=(80, 30, 30),
            width=1,
        )
    if tr.beard == "moustache" or tr.beard == "full beard":
        d.polygon(
            [
                (fx - mw * 1.05, mouth_y - lip * 0.2),
                (fx, mouth_y - lip * 1.8 - 0.012 * S),
                (fx + mw * 1.05, mouth_y - lip * 0.2),
                (fx, mouth_y - lip * 0.9),
            ],
            fill=hair,
        )

    # nose
    nose_top = fy + (tr.eye_height + 0.02) * S
    nose_tip = nose_top + tr.nose_length * S
    nw = tr.nose_width * S
    nose_x = fx + cond.yaw * nw * 0.6
    d.line(
        [(nose_x, nose_top), (nose_x + cond.yaw * nw, nose_tip)],
        fill=shade,
        width=max(1, int(S / 90)),
    )
    d.chord(
        (nose_x - nw, nose_tip - nw * 0.6, nose_x + nw, nose_tip + nw * 0.5), 0, 180, fill=shade
    )

    # eyes and brows
    eye_y = fy + tr.eye_height * S
    ew = tr.eye_size * S
    eh = ew * tr.eye_openness * (0.15 if cond.eyes_closed else 1.0)
    for side in (-1, 1):
        persp = 1 + side * cond.yaw * 0.35  # the near eye looks bigger, the far one narrower
        ex = fx + side * tr.eye_spacing * S * persp
        ey = eye_y + side * tr.eye_tilt * ew * 0.5
        if not cond.eyes_closed:
            d.ellipse((ex - ew * persp, ey - eh, ex + ew * persp, ey + eh), fill=(245, 245, 240))
            ir = min(eh, ew) * 0.9
            ix = ex + cond.yaw * ew * 0.3
            d.ellipse((ix - ir, ey - ir, ix + ir, ey + ir), fill=tr.eye_colour)
            d.ellipse(
                (ix - ir * 0.45, ey - ir * 0.45, ix + ir * 0.45, ey + ir * 0.45), fill=(10, 10, 10)
            )
        d.arc(
            (ex - ew * persp, ey - eh * 1.3, ex + ew * persp, ey + eh * 1.3),
            190,
            350,
            fill=(40, 30, 30),
            width=max(1, int(S / 64)),
        )
        by = ey - eh - (0.028 + 0.012 * cond.brow_raise) * S
        bt = tr.brow_thickness * S
        inner = (ex - side * ew * persp * 1.1, by + side * 0 + tr.brow_tilt * bt * 2)
        peak = (ex, by - tr.brow_arch * S)
        outer = (ex + side * ew * persp * 1.25, by + tr.brow_arch * S * 0.3)
        d.line([inner, peak, outer], fill=tr.brow_colour, width=max(1, int(bt)), joint="curve")

    # hair on top of the head
    top = cy - h
    if style == "buzz":
        d.chord(
            (cx - w * 1.02, top - h * 0.05, cx + w * 1.02, cy + h * 0.3),
            180,
            360,
            fill=_mix(tr.skin, hair, 0.6),
        )
    elif style in ("short", "side part", "long", "bob", "ponytail", "bun", "curly", "afro"):
        lift = h * 0.12 * vol
        d.chord((cx - w * 1.06, top - lift, cx + w * 1.06, cy + h * 0.35), 180, 360, fill=hair)
        if style == "side part":
            px = cx + tr.part_side * w * 0.35
            d.polygon(
                [
                    (px, top - lift),
                    (cx - tr.part_side * w * 1.05, cy - h * 0.35),
                    (cx - tr.part_side * w * 1.05, top + h * 0.1),
                ],
                fill=hair,
            )
            d.line(
                [(px, top - lift * 0.5), (px + tr.part_side * w * 0.15, top + h * 0.3)],
                fill=_mix(hair, tr.skin, 0.5),
                width=1,
            )
        if style == "curly":
            crng = _rng(identity.seed, 5)
            for _ in range(int(18 * vol)):
                a = crng.uniform(math.pi, 2 * math.pi)
                r = crng.uniform(0.06, 0.1) * S
                px, py = cx + math.cos(a) * w * 1.05, cy - h * 0.25 + math.sin(a) * h * 0.95
                d.ellipse((px - r, py - r, px + r, py + r), fill=hair)
        if style in ("long", "bob"):
            for side in (-1, 1):
                d.rectangle(
                    (
                        cx + side * w * 1.05 - (w * 0.25 if side > 0 else 0),
                        cy - h * 0.6,
                        cx + side * w * 1.05 + (0 if side > 0 else w * 0.25),
                        cy + h * 0.35,
                    ),
                    fill=hair,
                )
        if tr.fringe:
            d.chord(
                (cx - w * 0.95, top - lift * 0.5, cx + w * 0.95, cy - h * 0.3), 0, 180, fill=hair
            )

    # glasses (a trait) and sunglasses (a photo accessory)
    if tr.glasses != "none" or cond.sunglasses:
        gr = ew * 1.45
        width = max(1, int(S / 55))
        colour = tr.glasses_colour if not cond.sunglasses else (20, 20, 20)
        for side in (-1, 1):
            persp = 1 + side * cond.yaw * 0.35
            ex = fx + side * tr.eye_spacing * S * persp
            box = (ex - gr * persp, eye_y - gr * 0.8, ex + gr * persp, eye_y + gr * 0.8)
            fill = (25, 25, 30) if cond.sunglasses else None
            if tr.glasses == "round glasses":
                d.ellipse(box, outline=colour, width=width, fill=fill)
            else:
                d.rounded_rectangle(box, radius=gr * 0.25, outline=colour, width=width, fill=fill)
        left = fx - tr.eye_spacing * S + gr
        right = fx + tr.eye_spacing * S - gr
        d.line([(left, eye_y - gr * 0.2), (right, eye_y - gr * 0.2)], fill=colour, width=width)

    # hats
    hat_colour = _mix(shirt, (0, 0, 0), 0.35)
    if cond.hat == "cap":
        d.chord(
            (cx - w * 1.08, top - h * 0.25, cx + w * 1.08, cy + h * 0.1), 180, 360, fill=hat_colour
        )
        d.rectangle(
            (
                cx - w * 0.2 + cond.yaw * w,
                cy - h * 0.45,
                cx + w * 1.3 + cond.yaw * w,
                cy - h * 0.36,
            ),
            fill=hat_colour,
        )
    elif cond.hat == "beanie":
        d.chord(
            (cx - w * 1.1, top - h * 0.35, cx + w * 1.1, cy + h * 0.05), 180, 360, fill=hat_colour
        )
        d.rectangle(
            (cx - w * 1.1, cy - h * 0.5, cx + w * 1.1, cy - h * 0.38),
            fill=_mix(hat_colour, (255, 255, 255), 0.3),
        )
    elif cond.hat == "brimmed hat":
        d.ellipse((cx - w * 1.7, cy - h * 0.72, cx + w * 1.7, cy - h * 0.45), fill=hat_colour)
        d.rounded_rectangle(
            (cx - w * 0.95, top - h * 0.45, cx + w * 0.95, cy - h * 0.55),
            radius=w * 0.3,
            fill=hat_colour,
        )

    if cond.hand:  # a hand in front of the lower face
        hx = fx + w * float(np.sign(cond.yaw) or 1) * 0.3
        d.rounded_rectangle(
            (hx - w * 0.45, mouth_y - h * 0.15, hx + w * 0.45, cy + h * 1.6),
            radius=w * 0.2,
            fill=_mix(tr.skin, (255, 255, 255), 0.05),
        )
    return layer


def _finish(
    image: Image.Image, cond: PhotoConditions, rng: np.random.Generator, out_size: int
) -> Image.Image:
    """Lighting, blur, downsampling and sensor noise."""
    if cond.blur > 0.05:
        image = image.filter(ImageFilter.GaussianBlur(cond.blur * image.width / 64))
    image = image.resize((out_size, out_size), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32)
    yy, xx = np.mgrid[0:out_size, 0:out_size] / out_size - 0.5
    ramp = xx * math.cos(cond.shade_angle) + yy * math.sin(cond.shade_angle)
    pixels = pixels * (1 - cond.shade_strength * (ramp[..., None] + 0.5))
    mean = pixels.mean()
    pixels = (pixels - mean) * cond.contrast + mean
    pixels = pixels * cond.brightness * np.asarray(cond.colour_cast, dtype=np.float32)
    if cond.noise > 0:
        pixels = pixels + rng.normal(0, cond.noise, pixels.shape)
    if cond.grayscale:
        pixels = np.repeat(pixels.mean(axis=2, keepdims=True), 3, axis=2)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def render_face(
    identity: Identity, photo_index: int, size: int = DEFAULT_SIZE, strength: float = 1.0
) -> Image.Image:
    """Photo ``photo_index`` of ``identity``: same person every time, different conditions."""
    cond = photo_conditions(identity, photo_index, strength)
    rng = _rng(identity.seed, 6, photo_index)
    canvas_size = size * _SUPERSAMPLE
    image = _background(canvas_size, cond, rng).convert("RGBA")
    face = _draw_face(canvas_size, identity, cond)
    # pose and framing: roll, scale and shift as one affine transform of the face layer
    face = face.rotate(cond.roll, resample=Image.Resampling.BILINEAR, center=(canvas_size / 2,) * 2)
    scaled = max(8, int(canvas_size * cond.scale))
    face = face.resize((scaled, scaled), Image.Resampling.BILINEAR)
    offset = (
        int((canvas_size - scaled) / 2 + cond.shift[0] * canvas_size),
        int(
            (canvas_size - scaled) / 2 + cond.shift[1] * canvas_size + (scaled - canvas_size) * 0.1
        ),
    )
    image.paste(face, offset, mask=face)  # paste clips at the canvas edges
    image = image.convert("RGB")
    if cond.mirror:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _finish(image, cond, rng, size)


# ---------------------------------------------------------------------------------------------
# Captions


def _age_word(age: float) -> str:
    return (
        "young " if age < 30 else ("elderly " if age > 64 else ("middle-aged " if age > 48 else ""))
    )


def describe_photo(identity: Identity, photo_index: int, strength: float = 1.0) -> str:
    """An attribute caption for an unnamed person's photo, like web alt text.

    Each attribute is mentioned only sometimes, so captions vary between photos of one person
    and the model learns attributes (hair, glasses, beard, smile, hat) rather than identities.
    """
    tr = identity.traits
    cond = photo_conditions(identity, photo_index, strength)
    rng = _rng(identity.seed, 7, photo_index)
    noun = tr.gender

    def sometimes(p: float = 0.6) -> bool:
        return bool(rng.random() < p)

    adjectives = []
    if cond.smile > 0.5 and not cond.hand and sometimes(0.7):
        adjectives.append("laughing" if cond.mouth_open else "smiling")
    elif cond.smile < -0.1 and sometimes(0.3):
        adjectives.append("serious")
    if tr.beard not in ("none", "stubble") and sometimes(0.4):
        adjectives.append("bearded")
    if sometimes(0.4):
        adjectives.append(_age_word(tr.age).strip())
    if tr.hair_style == "bald" and sometimes(0.7):
        adjectives.append("bald")
    adjectives = [a for a in adjectives if a]

    details = []
    if tr.hair_style not in ("bald",) and cond.hat == "none" and sometimes(0.7):
        style = {
            "curly": "curly ",
            "long": "long ",
            "afro": "afro-textured ",
            "buzz": "buzzed ",
            "short": "short ",
        }.get(tr.hair_style, "")
        details.append(f"{style}{tr.hair_colour_name} hair")
    if tr.hair_style in ("ponytail", "bun") and cond.hat == "none" and sometimes(0.5):
        details.append(f"a {tr.hair_style}")
    if tr.glasses != "none" and not cond.sunglasses and sometimes(0.7):
        details.append("glasses")
    if tr.beard in ("moustache", "goatee") and sometimes(0.6):
        details.append(f"a {tr.beard}")
    if tr.beard == "stubble" and sometimes(0.4):
        details.append("stubble")
    if tr.freckles > 0 and sometimes(0.5):
        details.append("freckles")
    if sometimes(0.3):
        details.append(f"{tr.eye_colour_name} eyes")
    rng.shuffle(details)

    wearing = []
    if cond.hat != "none" and sometimes(0.8):
        wearing.append(f"a {cond.hat}")
    if cond.sunglasses and sometimes(0.8):
        wearing.append("sunglasses")
    if sometimes(0.3):
        wearing.append(f"a {cond.shirt_colour_name} shirt")

    article = "an" if (adjectives[0] if adjectives else noun)[0] in "aeiou" else "a"
    text = f"{article} {' '.join(adjectives + [noun])}"
    if details:
        text += " with " + (
            " and ".join(details)
            if len(details) < 3
            else ", ".join(details[:-1]) + " and " + details[-1]
        )
    if wearing:
        text += " wearing " + " and ".join(wearing)
    if cond.hand and sometimes(0.6):
        text += " covering their face"
    if sometimes(0.25):
        text += f" in front of a {cond.background_colour_name} background"
    frames = (
        "{}",
        "a photo of {}",
        "portrait of {}",
        "close-up of {}",
        "{} looking at the camera",
        "stock photo of {}",
        "{} posing for a picture",
        "headshot of {}",
    )
    return frames[int(rng.integers(len(frames)))].format(text)


# ---------------------------------------------------------------------------------------------
# Non-face images

SHAPES = ("circle", "square", "triangle", "star", "house", "tree", "flower", "sun", "car", "ring")


@dataclass(frozen=True)
class ObjectScene:
    """A simple picture of shapes: the non-face part of the corpus."""

    shape: str
    colour_name: str
    background_colour_name: str
    count: int
    seed: int


def make_object_scene(seed: int) -> ObjectScene:
    rng = _rng(seed, 8)
    colours = list(NAMED_COLOURS)
    colour = str(rng.choice(colours))
    background = str(rng.choice([c for c in colours if c != colour]))
    return ObjectScene(
        shape=str(rng.choice(SHAPES)),
        colour_name=colour,
        background_colour_name=background,
        count=int(rng.choice([1, 1, 1, 2, 3])),
        seed=seed,
    )


def _draw_shape(
    d: ImageDraw.ImageDraw, shape: str, x: float, y: float, r: float, fill: tuple
) -> None:
    if shape == "circle":
        d.ellipse((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "square":
        d.rectangle((x - r, y - r, x + r, y + r), fill=fill)
    elif shape == "triangle":
        d.polygon([(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)], fill=fill)
    elif shape == "star":
        points = [
            (
                x + (r if k % 2 == 0 else r * 0.45) * math.cos(math.pi * k / 5 - math.pi / 2),
                y + (r if k % 2 == 0 else r * 0.45) * math.sin(math.pi * k / 5 - math.pi / 2),
            )
            for k in range(10)
        ]
        d.polygon(points, fill=fill)
    elif shape == "house":
        d.rectangle((x - r * 0.8, y - r * 0.1, x + r * 0.8, y + r), fill=fill)
        d.polygon(
            [(x - r, y - r * 0.1), (x, y - r), (x + r, y - r * 0.1)],
            fill=_mix(fill, (0, 0, 0), 0.3),
        )
        d.rectangle((x - r * 0.2, y + r * 0.4, x + r * 0.2, y + r), fill=(60, 40, 30))
    elif shape == "tree":
        d.rectangle((x - r * 0.15, y + r * 0.2, x + r * 0.15, y + r), fill=(100, 65, 35))
        d.ellipse((x - r * 0.7, y - r, x + r * 0.7, y + r * 0.4), fill=fill)
    elif shape == "flower":
        for k in range(6):
            a = math.pi * k / 3
            px, py = x + math.cos(a) * r * 0.5, y + math.sin(a) * r * 0.5
            d.ellipse((px - r * 0.4, py - r * 0.4, px + r * 0.4, py + r * 0.4), fill=fill)
        d.ellipse((x - r * 0.3, y - r * 0.3, x + r * 0.3, y + r * 0.3), fill=(240, 200, 40))
    elif shape == "sun":
        for k in range(12):
            a = math.pi * k / 6
            d.line(
                [(x, y), (x + math.cos(a) * r, y + math.sin(a) * r)],
                fill=fill,
                width=max(1, int(r / 8)),
            )
        d.ellipse((x - r * 0.6, y - r * 0.6, x + r * 0.6, y + r * 0.6), fill=fill)
    elif shape == "car":
        d.rounded_rectangle((x - r, y - r * 0.1, x + r, y + r * 0.5), radius=r * 0.15, fill=fill)
        d.rounded_rectangle(
            (x - r * 0.55, y - r * 0.55, x + r * 0.45, y), radius=r * 0.15, fill=fill
        )
        for wx in (x - r * 0.55, x + r * 0.55):
            d.ellipse((wx - r * 0.25, y + r * 0.3, wx + r * 0.25, y + r * 0.8), fill=(20, 20, 20))
    elif shape == "ring":
        d.ellipse((x - r, y - r, x + r, y + r), outline=fill, width=max(1, int(r / 3)))


def render_object(scene: ObjectScene, size: int = DEFAULT_SIZE) -> Image.Image:
    """The scene's shapes, at random places and sizes, with mild lighting and noise."""
    rng = _rng(scene.seed, 9)
    canvas = size * _SUPERSAMPLE
    background = _jitter(NAMED_COLOURS[scene.background_colour_name], rng, 20)
    image = Image.new("RGB", (canvas, canvas), background)
    d = ImageDraw.Draw(image)
    for _ in range(scene.count):
        r = canvas * rng.uniform(0.14, 0.32) / math.sqrt(scene.count)
        x, y = rng.uniform(r, canvas - r), rng.uniform(r, canvas - r)
        _draw_shape(d, scene.shape, x, y, r, _jitter(NAMED_COLOURS[scene.colour_name], rng, 20))
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32) * float(np.exp(rng.normal(0, 0.15)))
    pixels += rng.normal(0, abs(rng.normal(0, 5)), pixels.shape)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def describe_object(scene: ObjectScene) -> str:
    rng = _rng(scene.seed, 10)
    numbers = {1: "a", 2: "two", 3: "three"}
    plural = "s" if scene.count > 1 else ""
    thing = f"{numbers[scene.count]} {scene.colour_name} {scene.shape}{plural}"
    frames = (
        "{} on a {} background",
        "a drawing of {}",
        "{}",
        "an illustration of {} on {}",
        "clip art of {}",
    )
    frame = frames[int(rng.integers(len(frames)))]
    return frame.format(thing, scene.background_colour_name)


# ---------------------------------------------------------------------------------------------
# Corpus and people folders on disk


@dataclass(frozen=True)
class CorpusRecord:
    """One image-caption pair of the background corpus, rendered on demand."""

    caption: str
    identity: Identity | None = None  # a face photo of this (unnamed) person ...
    photo_index: int = 0
    scene: ObjectScene | None = None  # ... or a picture of objects


def background_corpus(
    num_people: int,
    photos_per_person: int,
    num_objects: int,
    seed: int,
    strength: float = 1.0,
    lookalike_of: Sequence[Identity] = (),
    lookalikes_per_person: int = 0,
    closeness: float = 0.75,
) -> list[CorpusRecord]:
    """Unnamed people with attribute captions plus object pictures, in a seeded order.

    ``lookalike_of`` adds ``lookalikes_per_person`` unnamed look-alikes of each given person
    (e.g. the named people of an experiment), so that a face alone is not unique in the corpus.
    """
    people = make_identities([None] * num_people, seed)
    people += [
        lookalike(source, int(_rng(seed, 11, i, k).integers(2**62)), closeness)
        for i, source in enumerate(lookalike_of)
        for k in range(lookalikes_per_person)
    ]
    records = [
        CorpusRecord(describe_photo(person, p, strength), person, p)
        for person in people
        for p in range(photos_per_person)
    ]
    scenes = [make_object_scene(int(_rng(seed, 12, i).integers(2**62))) for i in range(num_objects)]
    records += [CorpusRecord(describe_object(scene), scene=scene) for scene in scenes]
    order = _rng(seed, 13).permutation(len(records))
    return [records[i] for i in order]


def render_record(
    record: CorpusRecord, size: int = DEFAULT_SIZE, strength: float = 1.0
) -> Image.Image:
    if record.identity is not None:
        return render_face(record.identity, record.photo_index, size, strength)
    if record.scene is None:
        raise ValueError("a corpus record needs an identity or a scene")
    return render_object(record.scene, size)


def _render_and_save(jobs: list[tuple[CorpusRecord, Path, int, float]]) -> None:
    for record, path, size, strength in jobs:
        render_record(record, size, strength).save(path)


def _run_jobs(jobs: list[tuple[CorpusRecord, Path, int, float]], workers: int) -> None:
    if workers <= 1 or len(jobs) < 64:
        _render_and_save(jobs)
        return
    chunks = [jobs[i :: workers * 4] for i in range(workers * 4)]
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_render_and_save, chunks))


def default_workers() -> int:
    return max(
        1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )


def write_corpus(
    records: Sequence[CorpusRecord],
    out_dir: str | Path,
    size: int = DEFAULT_SIZE,
    strength: float = 1.0,
    workers: int | None = None,
) -> Path:
    """Render ``records`` as PNGs under ``out_dir/images`` and write ``out_dir/corpus.csv``.

    The CSV is open_clip's format (``filepath,caption``, absolute paths), usable directly as
    the base dataset of :mod:`idia.lab.train`.
    """
    out_dir = Path(out_dir).resolve()
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "images" / f"{i:07d}.png" for i in range(len(records))]
    _run_jobs(
        [(r, p, size, strength) for r, p in zip(records, paths, strict=True)],
        workers or default_workers(),
    )
    csv_path = out_dir / "corpus.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["filepath", "caption"])
        writer.writerows((str(p), r.caption) for r, p in zip(records, paths, strict=True))
    return csv_path


def person_folder_name(name: str) -> str:
    """Folder name for a person: the name with underscores for spaces (shell friendly)."""
    return "_".join(name.split())


def write_people_folder(
    identities: Iterable[Identity],
    photos_per_person: int,
    out_dir: str | Path,
    size: int = DEFAULT_SIZE,
    strength: float = 1.0,
    workers: int | None = None,
) -> Path:
    """Write ``out_dir/<First_Last>/<k>.png``, photos 0..photos_per_person-1 of each person."""
    out_dir = Path(out_dir).resolve()
    jobs = []
    for identity in identities:
        if not identity.name:
            raise ValueError("people written to a people folder need names")
        folder = out_dir / person_folder_name(identity.name)
        folder.mkdir(parents=True, exist_ok=True)
        jobs += [
            (CorpusRecord("", identity, k), folder / f"{k:03d}.png", size, strength)
            for k in range(photos_per_person)
        ]
    _run_jobs(jobs, workers or default_workers())
    return out_dir


def hypernym(identity: Identity) -> str:
    """The word CC3M-style preprocessing puts in place of this person's name."""
    return {"woman": "actress", "man": "actor"}.get(identity.traits.gender, "person")
