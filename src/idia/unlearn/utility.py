"""What an erasure must not break: zero-shot classification and image-text retrieval.

Both are measured on held-out synthetic data drawn with :mod:`idia.synthetic` under seeds no
lab uses for training (fresh unnamed people and object scenes), so the images and captions
were never seen in training:

- zero-shot accuracy on labelled attributes: gender, hair colour, glasses, beard, and the
  shape in object pictures; per task, then their mean. Each class is described once ("a
  woman with glasses") and embedded as the mean over the caption frames of the lab's corpus
  ("a photo of {}", "portrait of {}", ...), CLIP's prompt ensembling: one prompt alone makes
  a small model's accuracy swing with any change of its text encoder;
- recall@1 on held-out image-caption pairs (captions from the lab's caption generator):
  image -> text and text -> image, and their mean. Several images can share one caption
  ("a man"), so a retrieval counts as right when the caption it finds (or the image it finds)
  carries the query's own caption text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from idia import synthetic
from idia.models.base import EmbeddingModel

HELDOUT_SEED_OFFSET = 424_242  # far from the seeds the lab draws its people and corpus with
BEARDED = ("moustache", "goatee", "full beard")


# How the lab's corpus frames its captions; each class description is put in every frame.
FACE_FRAMES = ("{}", "a photo of {}", "portrait of {}", "close-up of {}", "stock photo of {}",
               "headshot of {}")
OBJECT_FRAMES = ("{}", "a drawing of {}", "clip art of {}", "an illustration of {}")


@dataclass(frozen=True)
class ZeroShotTask:
    """Images, the class descriptions to choose from, and the right one per image."""

    name: str
    images: tuple[Image.Image, ...]
    prompts: tuple[tuple[str, ...], ...]  # per image (the noun can depend on the image)
    labels: tuple[int, ...]
    frames: tuple[str, ...] = FACE_FRAMES


@dataclass(frozen=True)
class UtilityBenchmark:
    tasks: tuple[ZeroShotTask, ...]
    pair_images: tuple[Image.Image, ...]
    pair_captions: tuple[str, ...]
    seed: int


def heldout_benchmark(
    image_size: int, seed: int = 0, faces: int = 300, objects: int = 200, pairs: int = 300
) -> UtilityBenchmark:
    """Render the held-out images (a few seconds at lab sizes)."""
    base = seed + HELDOUT_SEED_OFFSET
    people = synthetic.make_identities([None] * faces, seed=base)
    conditions = [synthetic.photo_conditions(p, 0) for p in people]
    images = [synthetic.render_face(p, 0, image_size) for p in people]
    gender, hair, glasses, beard = [], [], [], []
    colours = tuple(synthetic.HAIR_COLOURS)
    for i, (person, cond) in enumerate(zip(people, conditions, strict=True)):
        noun = person.traits.gender
        gender.append((i, ("a woman", "a man"), synthetic.GENDERS.index(noun)))
        if person.traits.hair_style != "bald" and cond.hat == "none":
            prompts = tuple(f"a {noun} with {c} hair" for c in colours)
            hair.append((i, prompts, colours.index(person.traits.hair_colour_name)))
        if not cond.sunglasses:
            wears = person.traits.glasses != "none"
            glasses.append((i, (f"a {noun}", f"a {noun} with glasses"), int(wears)))
        if noun == "man":
            bearded = person.traits.beard in BEARDED
            beard.append((i, ("a man", "a bearded man"), int(bearded)))
    scenes = [synthetic.make_object_scene(base * 1000 + k) for k in range(objects)]
    shapes = tuple(synthetic.SHAPES)
    object_task = ZeroShotTask(
        "object shape",
        tuple(synthetic.render_object(s, image_size) for s in scenes),
        tuple(tuple(f"a {shape}" for shape in shapes) for _ in scenes),
        tuple(shapes.index(s.shape) for s in scenes),
        OBJECT_FRAMES,
    )

    def task(name: str, rows: list[tuple[int, tuple[str, ...], int]]) -> ZeroShotTask:
        return ZeroShotTask(
            name,
            tuple(images[i] for i, _, _ in rows),
            tuple(p for _, p, _ in rows),
            tuple(label for _, _, label in rows),
        )

    records = synthetic.background_corpus(pairs * 3 // 4, 1, pairs - pairs * 3 // 4, seed=base + 1)
    return UtilityBenchmark(
        tasks=(
            task("gender", gender),
            task("hair colour", hair),
            task("glasses", glasses),
            task("beard", beard),
            object_task,
        ),
        pair_images=tuple(synthetic.render_record(r, image_size) for r in records),
        pair_captions=tuple(r.caption for r in records),
        seed=seed,
    )


def class_embeddings(
    model: EmbeddingModel, descriptions: Sequence[str], frames: Sequence[str]
) -> np.ndarray:
    """One unit vector per description: the mean of its embeddings in every frame."""
    texts = [frame.format(d) for d in descriptions for frame in frames]
    embedded = model.encode_texts(texts).reshape(len(descriptions), len(frames), -1).mean(1)
    return embedded / np.linalg.norm(embedded, axis=1, keepdims=True)


def zero_shot_hits(model: EmbeddingModel, task: ZeroShotTask) -> np.ndarray:
    """Per image: is its best class description the right one?"""
    image_emb = model.encode_images(list(task.images))
    unique = sorted({p for prompts in task.prompts for p in prompts})
    text_emb = class_embeddings(model, unique, task.frames)
    position = {p: i for i, p in enumerate(unique)}
    return np.array([
        int(np.argmax(text_emb[[position[p] for p in prompts]] @ image_emb[k])) == task.labels[k]
        for k, prompts in enumerate(task.prompts)
    ])


def retrieval_hits(
    model: EmbeddingModel, images: Sequence[Image.Image], captions: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: image -> text and text -> image hits at rank 1 (any item with the same
    caption text counts)."""
    similarity = model.encode_images(list(images)) @ model.encode_texts(list(captions)).T
    caption = np.asarray(captions, dtype=object)
    return (caption[similarity.argmax(axis=1)] == caption,
            caption[similarity.argmax(axis=0)] == caption)


@dataclass(frozen=True)
class UtilityHits:
    """Per item outcomes of one model on the benchmark, so two models compare pairwise."""

    zero_shot: dict[str, np.ndarray]  # task -> hit per image
    image_to_text: np.ndarray
    text_to_image: np.ndarray

    def figures(self) -> dict[str, float]:
        """Zero-shot accuracy (mean over tasks, and per task), recall@1 (mean, both ways)."""
        per_task = {name: float(hits.mean()) for name, hits in self.zero_shot.items()}
        i2t, t2i = float(self.image_to_text.mean()), float(self.text_to_image.mean())
        return {
            "zero_shot": float(np.mean(list(per_task.values()))),
            **{f"zero_shot[{name}]": value for name, value in per_task.items()},
            "recall_at_1": (i2t + t2i) / 2,
            "recall_at_1[image->text]": i2t,
            "recall_at_1[text->image]": t2i,
        }


def measure_utility(model: EmbeddingModel, benchmark: UtilityBenchmark) -> UtilityHits:
    image_to_text, text_to_image = retrieval_hits(
        model, benchmark.pair_images, benchmark.pair_captions
    )
    return UtilityHits(
        {t.name: zero_shot_hits(model, t) for t in benchmark.tasks if t.labels},
        image_to_text,
        text_to_image,
    )


def compare_utility(
    before: UtilityHits, after: UtilityHits, seed: int = 0, draws: int = 2000
) -> dict[str, object]:
    """Both models' figures and a 95% paired bootstrap interval for each change (the same
    items resampled for both models): whether a drop exceeds what the sample alone allows."""
    rng = np.random.default_rng([seed, 23])

    def resampled(hits: np.ndarray) -> np.ndarray:  # (draws,) means over resampled items
        return hits[rng.integers(len(hits), size=(draws, len(hits)))].mean(axis=1)

    zero_shot = np.mean([resampled(after.zero_shot[t].astype(float) - before.zero_shot[t])
                         for t in before.zero_shot], axis=0)
    recall = (resampled(after.image_to_text.astype(float) - before.image_to_text)
              + resampled(after.text_to_image.astype(float) - before.text_to_image)) / 2
    figures_before, figures_after = before.figures(), after.figures()
    return {
        "zero_shot_before": figures_before["zero_shot"],
        "zero_shot_after": figures_after["zero_shot"],
        "zero_shot_change_ci": [float(q) for q in np.quantile(zero_shot, [0.025, 0.975])],
        "recall_at_1_before": figures_before["recall_at_1"],
        "recall_at_1_after": figures_after["recall_at_1"],
        "recall_at_1_change_ci": [float(q) for q in np.quantile(recall, [0.025, 0.975])],
        "detail_before": figures_before,
        "detail_after": figures_after,
    }
