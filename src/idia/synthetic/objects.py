"""Pictures of simple objects (shapes on a background), the non-face part of a corpus, and
their captions."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from idia.synthetic.drawing import DEFAULT_SIZE, NAMED_COLOURS, SUPERSAMPLE, jitter, mix
from idia.synthetic.randomness import seeded_rng

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
    """A scene drawn from ``seed``: one shape, its colour, a different background, a count."""
    rng = seeded_rng(seed, 8)
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
            fill=mix(fill, (0, 0, 0), 0.3),
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
    rng = seeded_rng(scene.seed, 9)
    canvas = size * SUPERSAMPLE
    background = jitter(NAMED_COLOURS[scene.background_colour_name], rng, 20)
    image = Image.new("RGB", (canvas, canvas), background)
    d = ImageDraw.Draw(image)
    for _ in range(scene.count):
        r = canvas * rng.uniform(0.14, 0.32) / math.sqrt(scene.count)
        x, y = rng.uniform(r, canvas - r), rng.uniform(r, canvas - r)
        _draw_shape(d, scene.shape, x, y, r, jitter(NAMED_COLOURS[scene.colour_name], rng, 20))
    image = image.resize((size, size), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32) * float(np.exp(rng.normal(0, 0.15)))
    pixels += rng.normal(0, abs(rng.normal(0, 5)), pixels.shape)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def describe_object(scene: ObjectScene) -> str:
    """A caption for the scene (in one of a few seeded phrasings)."""
    rng = seeded_rng(scene.seed, 10)
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

