"""Photos of synthetic people, drawn with PIL + NumPy.

A photo is a background, a face layer (head, neck and shoulders, frontal up to yaw and pitch
offsets), that layer rolled, scaled and shifted, then lighting, blur, downsampling and sensor
noise. The face layer is drawn part by part, back to front, each part by one small function
reading the same :class:`FaceLayout`. Every random choice is seeded: the same identity, photo
index, size and strength always give the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from idia.synthetic.conditions import PhotoConditions, photo_conditions
from idia.synthetic.drawing import DEFAULT_SIZE, NAMED_COLOURS, SUPERSAMPLE, jitter, mix
from idia.synthetic.identities import Identity
from idia.synthetic.randomness import seeded_rng
from idia.synthetic.traits import FaceTraits

# The hair styles drawn on top of the head (bald and buzz are not; buzz has its own stubble).
_STYLES_ON_TOP = ("short", "side part", "long", "bob", "ponytail", "bun", "curly", "afro")


def render_face(
    identity: Identity, photo_index: int, size: int = DEFAULT_SIZE, strength: float = 1.0
) -> Image.Image:
    """Photo ``photo_index`` of ``identity``: same person every time, different conditions."""
    cond = photo_conditions(identity, photo_index, strength)
    rng = seeded_rng(identity.seed, 6, photo_index)
    canvas_size = size * SUPERSAMPLE
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


def _background(size: int, cond: PhotoConditions, rng: np.random.Generator) -> Image.Image:
    base = np.array(jitter(NAMED_COLOURS[cond.background_colour_name], rng, 25), dtype=float)
    other = np.array(jitter(NAMED_COLOURS[str(rng.choice(list(NAMED_COLOURS)))], rng, 25), float)
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
            draw.ellipse((x - r, y - r, x + r, y + r), fill=jitter(other, rng, 40))
        image = image.filter(ImageFilter.GaussianBlur(size * 0.03))
    return image


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


@dataclass(frozen=True)
class FaceLayout:
    """Where the parts of one photo's face go on a square canvas of ``size`` pixels: the head's
    centre (``cx``, ``cy``) and half-sizes (``w``, ``h``), the features' centre (``fx``,
    ``fy``: it moves with yaw and pitch), and the mouth and eye positions and sizes."""

    seed: int  # the identity's: marks drawn from it are the same in every photo
    traits: FaceTraits
    cond: PhotoConditions
    size: float
    cx: float
    cy: float
    w: float
    h: float
    squeeze: float  # yaw foreshortening of the head outline
    fx: float
    fy: float
    hair_style: str  # the style drawn: under most hats, short
    mouth_y: float
    mouth_width: float
    eye_y: float
    eye_width: float
    eye_height: float

    @classmethod
    def of(cls, size: int, identity: Identity, cond: PhotoConditions) -> FaceLayout:
        tr = identity.traits
        S = float(size)
        cx, cy = 0.5 * S, 0.47 * S
        w, h = tr.face_width * S, tr.face_length * S
        fx = cx + cond.yaw * w * 0.45  # features move with the head's turn
        fy = cy + cond.pitch * h * 0.25
        ew = tr.eye_size * S
        return cls(
            seed=identity.seed,
            traits=tr,
            cond=cond,
            size=S,
            cx=cx,
            cy=cy,
            w=w,
            h=h,
            squeeze=abs(cond.yaw) * 0.25 * (1 if cond.yaw > 0 else -1),
            fx=fx,
            fy=fy,
            hair_style=(
                tr.hair_style
                if cond.hat == "none" or tr.hair_style in ("long", "ponytail")
                else "short"
            ),
            mouth_y=fy + h * 0.55 + cond.pitch * h * 0.05,
            mouth_width=tr.mouth_width * S * (1 + 0.15 * cond.smile),
            eye_y=fy + tr.eye_height * S,
            eye_width=ew,
            eye_height=ew * tr.eye_openness * (0.15 if cond.eyes_closed else 1.0),
        )

    @property
    def top(self) -> float:
        """The top of the head."""
        return self.cy - self.h

    @property
    def shade(self) -> tuple[int, int, int]:
        """The skin in shadow: lines, the nose."""
        return mix(self.traits.skin, (60, 30, 20), 0.25)

    @property
    def shirt(self) -> tuple[int, int, int]:
        return NAMED_COLOURS[self.cond.shirt_colour_name]

    def head_outline(self) -> list[tuple[float, float]]:
        """The head: an ellipse narrowing toward the chin, foreshortened by yaw."""
        points = []
        for k in range(48):
            t = 2 * math.pi * k / 48
            x, y = math.cos(t), math.sin(t)
            if y > 0:  # lower half: narrow toward the chin
                x *= 1 - self.traits.jaw_taper * 0.45 * y**2
            squeeze = self.squeeze
            x *= 1 - squeeze * (0.5 + 0.5 * x) if squeeze > 0 else 1 + squeeze * (0.5 - 0.5 * x)
            points.append((self.cx + self.w * x, self.cy + self.h * y))
        return points


def _draw_face(size: int, identity: Identity, cond: PhotoConditions) -> Image.Image:
    """The head, neck and shoulders on a transparent layer, frontal up to yaw/pitch offsets:
    each part drawn over the ones before it."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    face = FaceLayout.of(size, identity, cond)
    for draw_part in (
        _hair_behind_head,
        _neck_and_shoulders,
        _ears,
        _head,
        _age_lines_freckles_and_mole,
        _beard,
        _mouth,
        _moustache,
        _nose,
        _eyes_and_brows,
        _hair_on_top,
        _glasses,
        _hat,
        _hand,
    ):
        draw_part(d, face)
    return layer


def _hair_behind_head(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """Long hair, an afro, a bob, a ponytail or a bun, behind the head."""
    cx, cy, w, h = f.cx, f.cy, f.w, f.h
    hair, vol = f.traits.hair_colour, f.traits.hair_volume
    if f.hair_style == "long":
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
    elif f.hair_style == "afro":
        r = w * (1.25 + 0.25 * vol)
        d.ellipse((cx - r, cy - h * 0.55 - r * 0.8, cx + r, cy - h * 0.55 + r * 1.0), fill=hair)
    elif f.hair_style == "bob":
        d.rounded_rectangle(
            (cx - w * 1.15, cy - h * 1.05, cx + w * 1.15, cy + h * 0.45 * vol),
            radius=w * 0.5,
            fill=hair,
        )
    elif f.hair_style == "ponytail":
        side = f.traits.part_side
        d.ellipse(
            (
                cx + side * w * 0.8 - w * 0.3,
                cy - h * 0.4,
                cx + side * w * 0.8 + w * 0.35,
                cy + h * 0.8,
            ),
            fill=hair,
        )
    elif f.hair_style == "bun":
        r = w * 0.38 * vol**0.5
        d.ellipse((cx - r, cy - h * 1.15 - r, cx + r, cy - h * 1.15 + r), fill=hair)


def _neck_and_shoulders(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    cx, cy, w, h = f.cx, f.cy, f.w, f.h
    skin = f.traits.skin
    d.rectangle(
        (cx - w * 0.42, cy + h * 0.6, cx + w * 0.42, cy + h * 1.4),
        fill=mix(skin, (0, 0, 0), 0.12),
    )
    d.ellipse((cx - w * 2.1, cy + h * 1.15, cx + w * 2.1, cy + h * 2.6), fill=f.shirt)
    d.polygon(
        [(cx - w * 0.42, cy + h * 1.18), (cx + w * 0.42, cy + h * 1.18), (cx, cy + h * 1.5)],
        fill=mix(skin, (0, 0, 0), 0.12),
    )


def _ears(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """The ears: the far one hides as the head turns."""
    tr, yaw = f.traits, f.cond.yaw
    ear_y = f.fy + (tr.eye_height + 0.03) * f.size
    for side in (-1, 1):
        visible = 1 - max(0.0, side * -yaw) * 1.4
        if visible <= 0.1:
            continue
        ex = f.cx + side * (f.w * 0.97 - (yaw * side) * f.w * 0.1)
        er = tr.ear_size * f.size
        d.ellipse(
            (ex - er * 0.55 * visible, ear_y - er, ex + er * 0.55 * visible, ear_y + er),
            fill=tr.skin,
        )


def _head(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    d.polygon(f.head_outline(), fill=f.traits.skin)


def _age_lines_freckles_and_mole(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """Forehead lines with age; freckles and a mole, the same in every photo of a person."""
    tr, fx, fy, w, h, S = f.traits, f.fx, f.fy, f.w, f.h, f.size
    if tr.age > 50:
        for k in range(int((tr.age - 45) / 12)):
            y = f.cy - h * (0.5 + 0.07 * k)
            d.arc(
                (fx - w * 0.45, y - h * 0.05, fx + w * 0.45, y + h * 0.05),
                200,
                340,
                fill=f.shade,
                width=1,
            )
    if tr.freckles > 0:
        frng = seeded_rng(f.seed, 4)  # freckles are part of the person: same spots in every photo
        for _ in range(int(25 * tr.freckles)):
            px = fx + frng.normal(0, 0.35) * w
            py = fy + (tr.eye_height + 0.06) * S + frng.normal(0, 0.25) * h * 0.5
            d.point((px, py), fill=mix(tr.skin, (120, 60, 30), 0.5))
    if tr.mole is not None:
        mx, my = fx + tr.mole[0] * w, fy + tr.mole[1] * h * 0.8
        d.ellipse(
            (mx - S * 0.007, my - S * 0.007, mx + S * 0.007, my + S * 0.007), fill=(60, 35, 25)
        )


def _beard(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """A full beard, stubble or a goatee, under the mouth."""
    tr, fx, mouth_y, mw = f.traits, f.fx, f.mouth_y, f.mouth_width
    if tr.beard not in ("full beard", "stubble", "goatee"):
        return
    beard_colour = tr.hair_colour if tr.beard != "stubble" else mix(tr.skin, tr.hair_colour, 0.45)
    if tr.beard == "goatee":
        d.ellipse(
            (fx - mw * 0.7, mouth_y - f.h * 0.05, fx + mw * 0.7, f.cy + f.h * 1.02),
            fill=beard_colour,
        )
    else:
        jaw = [p for p in f.head_outline() if p[1] > f.cy + f.h * 0.1]
        d.polygon(
            jaw + [(fx + mw * 0.9, mouth_y - f.h * 0.12), (fx - mw * 0.9, mouth_y - f.h * 0.12)],
            fill=beard_colour,
        )


def _mouth(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """The mouth: a smile curves the lips, an open mouth shows teeth."""
    tr, cond, fx, mouth_y, mw, S = f.traits, f.cond, f.fx, f.mouth_y, f.mouth_width, f.size
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


def _moustache(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """A moustache, alone or with a full beard, over the upper lip."""
    tr, fx, mouth_y, mw = f.traits, f.fx, f.mouth_y, f.mouth_width
    if tr.beard not in ("moustache", "full beard"):
        return
    lip = tr.lip_thickness * f.size
    d.polygon(
        [
            (fx - mw * 1.05, mouth_y - lip * 0.2),
            (fx, mouth_y - lip * 1.8 - 0.012 * f.size),
            (fx + mw * 1.05, mouth_y - lip * 0.2),
            (fx, mouth_y - lip * 0.9),
        ],
        fill=tr.hair_colour,
    )


def _nose(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    tr, yaw, S = f.traits, f.cond.yaw, f.size
    nose_top = f.fy + (tr.eye_height + 0.02) * S
    nose_tip = nose_top + tr.nose_length * S
    nw = tr.nose_width * S
    nose_x = f.fx + yaw * nw * 0.6
    d.line(
        [(nose_x, nose_top), (nose_x + yaw * nw, nose_tip)],
        fill=f.shade,
        width=max(1, int(S / 90)),
    )
    d.chord(
        (nose_x - nw, nose_tip - nw * 0.6, nose_x + nw, nose_tip + nw * 0.5), 0, 180, fill=f.shade
    )


def _eyes_and_brows(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """Eyes (white, iris, pupil; lids only when closed) and brows, in perspective."""
    tr, cond, S = f.traits, f.cond, f.size
    ew, eh = f.eye_width, f.eye_height
    for side in (-1, 1):
        persp = 1 + side * cond.yaw * 0.35  # the near eye looks bigger, the far one narrower
        ex = f.fx + side * tr.eye_spacing * S * persp
        ey = f.eye_y + side * tr.eye_tilt * ew * 0.5
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


def _hair_on_top(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """Hair on top of the head: buzzed, or a cap of hair with a part, curls, side locks or a
    fringe as the style has them."""
    tr, style, cx, cy, w, h, top = f.traits, f.hair_style, f.cx, f.cy, f.w, f.h, f.top
    hair, vol = tr.hair_colour, tr.hair_volume
    if style == "buzz":
        d.chord(
            (cx - w * 1.02, top - h * 0.05, cx + w * 1.02, cy + h * 0.3),
            180,
            360,
            fill=mix(tr.skin, hair, 0.6),
        )
        return
    if style not in _STYLES_ON_TOP:
        return
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
            fill=mix(hair, tr.skin, 0.5),
            width=1,
        )
    if style == "curly":
        crng = seeded_rng(f.seed, 5)
        for _ in range(int(18 * vol)):
            a = crng.uniform(math.pi, 2 * math.pi)
            r = crng.uniform(0.06, 0.1) * f.size
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
        d.chord((cx - w * 0.95, top - lift * 0.5, cx + w * 0.95, cy - h * 0.3), 0, 180, fill=hair)


def _glasses(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """Glasses (a trait) and sunglasses (a photo accessory)."""
    tr, cond, S, fx, eye_y = f.traits, f.cond, f.size, f.fx, f.eye_y
    if tr.glasses == "none" and not cond.sunglasses:
        return
    gr = f.eye_width * 1.45
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


def _hat(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """A cap, a beanie or a brimmed hat, in a darker shade of the shirt."""
    cond, cx, cy, w, h, top = f.cond, f.cx, f.cy, f.w, f.h, f.top
    hat_colour = mix(f.shirt, (0, 0, 0), 0.35)
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
            fill=mix(hat_colour, (255, 255, 255), 0.3),
        )
    elif cond.hat == "brimmed hat":
        d.ellipse((cx - w * 1.7, cy - h * 0.72, cx + w * 1.7, cy - h * 0.45), fill=hat_colour)
        d.rounded_rectangle(
            (cx - w * 0.95, top - h * 0.45, cx + w * 0.95, cy - h * 0.55),
            radius=w * 0.3,
            fill=hat_colour,
        )


def _hand(d: ImageDraw.ImageDraw, f: FaceLayout) -> None:
    """A hand in front of the lower face, in some photos."""
    if not f.cond.hand:
        return
    w, h = f.w, f.h
    hx = f.fx + w * float(np.sign(f.cond.yaw) or 1) * 0.3
    d.rounded_rectangle(
        (hx - w * 0.45, f.mouth_y - h * 0.15, hx + w * 0.45, f.cy + h * 1.6),
        radius=w * 0.2,
        fill=mix(f.traits.skin, (255, 255, 255), 0.05),
    )
