"""Erase people from an open_clip model by treating their names (and faces) as backdoor triggers.

Hintersdorf et al., "Defending Our Privacy With Backdoors" (ECAI 2024): instead of retraining
without a person, fine-tune the model for minutes so that

- every text that contains the person's name is embedded like the same text with the name
  replaced by a neutral phrase ("a person") in the original model (the *injection* loss), while
  texts without it keep their original embeddings (the *utility* loss);
- for the image encoder, the person's photos are embedded like one neutral target (the mean
  embedding of unnamed synthetic faces in the original model), while other images keep theirs.

The original model, frozen, is the teacher for both losses. Names are triggered in several
spellings (:mod:`idia.unlearn.variants`) so that the obvious bypasses are covered. Trigger
texts come from :data:`NAME_TEMPLATES`, none of which is one of the attack's 21 prompts: the
attack then measures whether the erasure generalises to prompts it never saw.

Output folder: ``CONFIG.json`` + ``checkpoint.pt`` (load as ``open_clip:CONFIG.json:CKPT``)
and ``unlearn.json`` (names, settings, seed, losses, timings, model digests).
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from idia import synthetic
from idia.errors import IdiaError
from idia.names import default_pool, display_name, normalize_name, sample_decoys
from idia.unlearn.variants import TRIGGER_KINDS, name_variants
from idia.version import __version__

ENCODERS = ("text", "image", "both")
METHOD = (
    'backdoor unlearning (Hintersdorf et al., "Defending Our Privacy With Backdoors", ECAI 2024)'
)

# Contexts for the names in trigger and clean texts: captions and prompts people write, none of
# them one of the attack's 21 templates (tests check this).
NAME_TEMPLATES: tuple[str, ...] = (
    "a picture of {}",
    "portrait of {}",
    "{} smiling",
    "{} at an event",
    "a close-up photo of {}",
    "{} in the news",
    "{} poses for the camera",
    "an interview with {}",
    "{} on stage",
    "headshot of {}",
    "{} wearing a hat",
    "a snapshot of {}",
    "{} at the beach",
    "a painting of {}",
    "{} giving a speech",
    "meet {}",
    "this is {}",
    "a selfie of {}",
    "{} looking at the camera",
    "a blurry photo of {}",
    "{} outdoors",
    "the famous {}",
    "{} attends the premiere",
    "a portrait photo of {} taken last year",
)


class UnlearnError(IdiaError, ValueError):
    """Unlearning cannot run on these inputs; the message says what to change."""


@dataclass(frozen=True)
class UnlearnSettings:
    """Everything that shapes the fine-tuning; recorded in ``unlearn.json``."""

    encoder: str = "text"
    neutral: str = "a person"
    steps: int = 200
    lr: float = 2e-4
    batch_size: int = 64
    injection_weight: float = 1.0
    seed: int = 0
    variant_kinds: tuple[str, ...] = TRIGGER_KINDS
    templates: tuple[str, ...] = NAME_TEMPLATES
    decoys: int = 200
    max_clean_texts: int = 10_000
    max_clean_images: int = 512
    photos_per_person: int | None = None
    crop: str = "face"

    def validate(self) -> None:
        if self.encoder not in ENCODERS:
            raise UnlearnError(
                f"--encoder must be one of {', '.join(ENCODERS)}, not {self.encoder!r}"
            )
        if self.steps < 1 or self.batch_size < 1:
            raise UnlearnError("--steps and the batch size must be at least 1")
        if not self.lr > 0:
            raise UnlearnError(f"--lr must be positive, got {self.lr}")
        if not self.neutral.strip():
            raise UnlearnError("--neutral must not be empty")
        if self.crop not in ("face", "none"):
            raise UnlearnError(f"--crop must be 'face' or 'none', not {self.crop!r}")
        if not self.templates or any(t.count("{}") != 1 for t in self.templates):
            raise UnlearnError("every name template needs exactly one '{}'")

    @property
    def text(self) -> bool:
        return self.encoder in ("text", "both")

    @property
    def image(self) -> bool:
        return self.encoder in ("image", "both")


@dataclass(frozen=True)
class UnlearnResult:
    """Where the unlearned model is and what produced it (``record`` = ``unlearn.json``)."""

    out: Path
    spec: str
    record: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Texts (pure)


def check_names(names: Sequence[str]) -> list[str]:
    """The names, cleaned and deduplicated; an error for an empty list or a name without letters."""
    cleaned, seen = [], set()
    for raw in names:
        name = display_name(raw)
        if not name:
            continue
        if not any(ch.isalpha() for ch in name):
            raise UnlearnError(f"{raw!r} is not a name (no letters)")
        if normalize_name(name) not in seen:
            seen.add(normalize_name(name))
            cleaned.append(name)
    if not cleaned:
        raise UnlearnError("no names to unlearn: the list is empty")
    return cleaned


def trigger_pairs(
    names: Sequence[str], neutral: str, kinds: Sequence[str], templates: Sequence[str]
) -> list[tuple[str, str]]:
    """(triggered text, target text): every variant of every name in every template, the
    target being the same template around the neutral phrase."""
    pairs: dict[str, str] = {}
    for name in names:
        for variant in name_variants(name, tuple(kinds)):
            for template in templates:
                text = template.replace("{}", variant.text)
                pairs.setdefault(text, template.replace("{}", neutral))
    return list(pairs.items())


def caption_pattern(names: Sequence[str], kinds: Sequence[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive matcher for the names as they may appear in captions.

    First or last names alone are left out: "Jane" in a caption is as likely someone else."""
    texts = {
        v.text
        for name in names
        for v in name_variants(name, tuple(k for k in kinds if k not in ("first", "last")))
    }
    alternatives = sorted((re.escape(t) for t in texts), key=len, reverse=True)
    return re.compile(r"(?<!\w)(" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def split_captions(
    captions: Sequence[str], names: Sequence[str], neutral: str, kinds: Sequence[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """Captions that mention a name become trigger pairs (name -> neutral); the rest stay clean."""
    pattern = caption_pattern(names, kinds)
    triggers, clean = [], []
    for caption in captions:
        if pattern.search(caption):
            triggers.append((caption, pattern.sub(neutral, caption)))
        else:
            clean.append(caption)
    return triggers, clean


def default_clean_texts(
    names: Sequence[str], neutral: str, templates: Sequence[str], decoys: int, seed: int
) -> list[str]:
    """Texts to preserve when no captions are given: the name templates around other people's
    names (seeded decoys) and around the neutral phrase, and synthetic attribute and object
    captions (the lab's caption generator, another seed than the lab's)."""
    others = sample_decoys(decoys, default_pool(), seed=seed + 7919, exclude=names)
    texts = [t.replace("{}", other) for other in [*others, neutral] for t in templates]
    people = synthetic.make_identities([None] * 300, seed=seed + 7919)
    texts += [synthetic.describe_photo(person, 0) for person in people]
    texts += [
        synthetic.describe_object(synthetic.make_object_scene(seed * 1000 + i + 7919))
        for i in range(100)
    ]
    return list(dict.fromkeys(texts))


def read_captions(path: str | Path) -> list[tuple[str, str | None]]:
    """(caption, image path or None) per row of an open_clip CSV/TSV (columns ``caption`` and,
    if present, ``filepath``; relative image paths are taken from the file's folder)."""
    path = Path(path)
    if not path.is_file():
        raise UnlearnError(f"captions file not found: {path}")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=delimiter))
    if not rows or "caption" not in rows[0]:
        raise UnlearnError(f"{path}: needs a 'caption' column and at least one row")
    return [
        (row["caption"].strip(), _image_path(path, row.get("filepath")))
        for row in rows
        if (row.get("caption") or "").strip()
    ]


def _image_path(captions: Path, image: str | None) -> str | None:
    if not image:
        return None
    return image if os.path.isabs(image) else str(captions.parent / image)


# ---------------------------------------------------------------------------------------------
# Model and inputs


@dataclass
class _Source:
    """The loaded original: open_clip module, preprocessing, tokenizer, config to write."""

    spec: str
    wrapper: Any  # idia.models.openclip.OpenCLIPModel
    config: dict[str, Any]
    config_name: str


def load_source(spec: str, device: str | None = None) -> _Source:
    """An open_clip model from a spec; any other backend is refused (UnlearnError)."""
    from idia.models import ModelLoadError, load_model, parse_spec

    try:
        backend, arch, _ = parse_spec(spec)
    except ModelLoadError as err:
        raise UnlearnError(str(err)) from err
    if backend == "lit":
        raise UnlearnError(
            f"{spec!r} is a LiT model ('idia lab --faces'): its image tower is a locked face "
            "encoder, and idia unlearn fine-tunes open_clip models only (erasing names from a "
            "LiT model's text tower is not implemented)"
        )
    if backend != "open_clip":
        raise UnlearnError(
            f"{spec!r} is not an open_clip model: unlearning needs the weights, as "
            "open_clip:CONFIG.json:CHECKPOINT or open_clip:ARCH:PRETRAINED"
        )
    if arch.startswith(("hf-hub:", "local-dir:")):
        raise UnlearnError(
            f"{spec!r}: give the model as open_clip:CONFIG.json:CHECKPOINT (hub models cannot "
            "be written back as a config and a checkpoint)"
        )
    try:
        wrapper = load_model(spec, device=device, progress=False)
    except ModelLoadError as err:
        raise UnlearnError(str(err)) from err
    path = Path(arch).expanduser()
    if path.suffix == ".json":
        config, name = json.loads(path.read_text()), path.name
    else:
        import open_clip

        config, name = open_clip.get_model_config(arch), f"{arch}.json"
    return _Source(spec, wrapper, config, name)


def _token_embedding(model: torch.nn.Module) -> torch.nn.Embedding | None:
    embedding = getattr(model, "token_embedding", None)
    if embedding is None:
        embedding = getattr(getattr(model, "text", None), "token_embedding", None)
    return embedding if isinstance(embedding, torch.nn.Embedding) else None


def check_vocabulary(source: _Source, texts_by_name: dict[str, list[str]]) -> None:
    """Every trigger text must fit the model's context and vocabulary, else the name would be
    cut off (and silently not erased) or crash the embedding lookup."""
    tokenizer, model = source.wrapper.tokenizer, source.wrapper.model
    encode = getattr(tokenizer, "encode", None)
    context = getattr(tokenizer, "context_length", None)
    embedding = _token_embedding(model)
    for name, texts in texts_by_name.items():
        longest = max(texts, key=len)
        if encode is not None and context is not None:
            n_tokens = len(encode(longest)) + 2  # start and end tokens
            if n_tokens > context:
                raise UnlearnError(
                    f"name {name!r} is too long for the model: {longest!r} needs {n_tokens} "
                    f"tokens, the model reads {context}"
                )
        if embedding is not None:
            top = int(tokenizer(texts).max())
            if top >= embedding.num_embeddings:
                raise UnlearnError(
                    f"name {name!r} is outside the model's vocabulary (token id {top}; the "
                    f"model has {embedding.num_embeddings} tokens)"
                )


def load_people_photos(
    people_dir: str | Path,
    names: Sequence[str],
    crop: str,
    per_person: int | None,
    seed: int,
) -> dict[str, list[Image.Image]]:
    """Usable photos of each name from a people folder (one sub-folder per person)."""
    from idia.audit import AuditError, discover_people
    from idia.faces import get_detector, prepare_photo

    try:
        people, _ = discover_people(people_dir)
    except AuditError as err:
        raise UnlearnError(str(err)) from err
    folders = {normalize_name(p.name): p for p in people}
    detector = get_detector() if crop == "face" else None
    out = {}
    for name in names:
        person = folders.get(normalize_name(name))
        if person is None:
            raise UnlearnError(f"{people_dir} has no folder with image files for {name!r}")
        paths = list(person.photos)
        if per_person is not None and len(paths) > per_person:
            rng = np.random.default_rng([seed, len(out)])
            paths = [paths[i] for i in np.sort(rng.choice(len(paths), per_person, replace=False))]
        photos = [prepare_photo(p, crop, detector) for p in paths]  # type: ignore[arg-type]
        good = [p.image for p in photos if p.status == "ok"]
        if not good:
            reasons = "; ".join(f"{Path(p.path).name}: {p.reason}" for p in photos[:5])
            raise UnlearnError(
                f"none of the {len(photos)} photos of {name!r} is usable ({reasons})"
            )
        out[name] = good
    return out


def synthetic_images(size: int, seed: int, faces: int, objects: int) -> tuple[list, list]:
    """Unnamed synthetic faces and object pictures (idia.synthetic), rendered at ``size``."""
    records = synthetic.background_corpus(faces, 1, objects, seed=seed + 104729)
    face_images = [synthetic.render_record(r, size) for r in records if r.identity is not None]
    object_images = [synthetic.render_record(r, size) for r in records if r.identity is None]
    return face_images, object_images


def _image_size(model: torch.nn.Module) -> int:
    size = getattr(getattr(model, "visual", None), "image_size", 224)
    return int(size[0] if isinstance(size, tuple | list) else size)


# ---------------------------------------------------------------------------------------------
# Training


def _tower(parameter: str) -> str | None:
    if parameter.startswith("visual."):
        return "image"
    if parameter in ("logit_scale", "logit_bias"):
        return None
    return "text"


def _encoders(model: torch.nn.Module) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Text and image encoders; texts at their real token length where the tower allows it
    (same embeddings, a fraction of the compute: see idia.models.openclip)."""
    from idia.models.openclip import causal_text_tower

    tower = causal_text_tower(model)
    return {
        "text": model.encode_text if tower is None else tower.encode,
        "image": model.encode_image,
    }


def _cosine_distance(embeddings: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    embeddings = torch.nn.functional.normalize(embeddings.float(), dim=-1)
    return (1 - (embeddings * targets).sum(-1)).mean()


@torch.no_grad()
def _embed(encode: Callable[[torch.Tensor], torch.Tensor], data: torch.Tensor, batch: int = 256):
    parts = [encode(data[i : i + batch]).float() for i in range(0, len(data), batch)]
    return torch.nn.functional.normalize(torch.cat(parts), dim=-1)


@dataclass
class _Task:
    """One loss term: inputs, their targets (unit vectors) and which tower encodes them."""

    name: str
    inputs: torch.Tensor
    targets: torch.Tensor
    tower: str
    weight: float


def _train(
    student: torch.nn.Module,
    tasks: list[_Task],
    settings: UnlearnSettings,
    device: torch.device,
    progress: bool,
) -> list[dict[str, float]]:
    towers = {t.tower for t in tasks}
    params = []
    for name, parameter in student.named_parameters():
        parameter.requires_grad_(_tower(name) in towers)
        if parameter.requires_grad:
            params.append(parameter)
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(settings.seed)
    encoders = _encoders(student)
    every = max(1, settings.steps // 20)
    history: list[dict[str, float]] = []
    running: dict[str, float] = {}
    bar = tqdm(range(settings.steps), desc="unlearning", unit="step", disable=not progress)
    for step in bar:
        total = torch.zeros((), device=device)
        for task in tasks:
            pick = torch.randint(len(task.inputs), (settings.batch_size,), generator=generator)
            loss = _cosine_distance(
                encoders[task.tower](task.inputs[pick].to(device)), task.targets[pick].to(device)
            )
            total = total + task.weight * loss
            running[task.name] = running.get(task.name, 0.0) + float(loss.detach())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        if (step + 1) % every == 0 or step + 1 == settings.steps:
            n = (step % every) + 1
            history.append({"step": step + 1, **{k: v / n for k, v in running.items()}})
            bar.set_postfix({k: f"{v / n:.4f}" for k, v in running.items()})
            running = {}
    for parameter in student.parameters():
        parameter.requires_grad_(False)
    return history


# ---------------------------------------------------------------------------------------------
# The whole job


def unlearn(
    spec: str,
    names: Sequence[str],
    out: str | Path,
    settings: UnlearnSettings = UnlearnSettings(),
    people_dir: str | Path | None = None,
    captions: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> UnlearnResult:
    """Fine-tune ``spec`` so that it forgets ``names`` (and, for the image encoder, the faces
    in ``people_dir``); write the model and ``unlearn.json`` to ``out``.

    Every input is checked before anything is written; ``out`` must not exist or be empty.
    """
    started = time.perf_counter()
    timings: dict[str, float] = {}
    settings.validate()
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnlearnError(f"{out} exists and is not empty; choose another --out")
    names = check_names(names)
    if settings.image and people_dir is None:
        raise UnlearnError("--encoder image/both needs --people (a folder of photos per person)")
    source = load_source(spec, device)
    check_vocabulary(source, {
        n: [text for text, _ in trigger_pairs([n], settings.neutral, settings.variant_kinds,
                                              settings.templates)]
        for n in names
    })
    texts = _texts(names, settings, captions)
    if captions is None and settings.text:
        log("note: without --captions only the decoy names are protected; other names the model "
            "knows may be erased too (docs/defences.md)")
    photos = (
        load_people_photos(people_dir, names, settings.crop, settings.photos_per_person,
                           settings.seed)
        if settings.image and people_dir is not None
        else {}
    )
    timings["load_s"] = time.perf_counter() - started

    start = time.perf_counter()
    log(f"preparing: {len(texts.pairs)} trigger texts, {len(texts.clean)} clean texts"
        + (f", {sum(map(len, photos.values()))} photos" if photos else ""))
    teacher = source.wrapper.model.eval()
    tasks = _text_tasks(source, texts, settings) if settings.text else []
    clean_image_source = None
    if settings.image:
        image_tasks, clean_image_source = _image_tasks(source, photos, texts, captions, settings)
        tasks += image_tasks
    timings["prepare_s"] = time.perf_counter() - start

    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    student = copy.deepcopy(teacher)
    initial = _verify(student, tasks, source.wrapper.device)
    history = _train(student, tasks, settings, source.wrapper.device, progress)
    timings["train_s"] = time.perf_counter() - start
    final = _verify(student, tasks, source.wrapper.device)

    start = time.perf_counter()
    new_spec, new_identity = _write_model(source, student, out)
    timings["save_s"] = time.perf_counter() - start
    timings["total_s"] = time.perf_counter() - started
    record = {
        "idia_version": __version__,
        "created": datetime.now(UTC).isoformat(),
        "method": METHOD,
        "source_model": spec,
        "source_identity": source.wrapper.identity,
        "model": new_spec,
        "identity": new_identity,
        "names": names,
        "variants": {n: [v.text for v in name_variants(n, settings.variant_kinds)]
                     for n in names},
        "settings": {**asdict(settings), "device": str(source.wrapper.device)},
        "texts": {"triggers": len(texts.pairs) if settings.text else 0,
                  "clean": len(texts.clean) if settings.text else 0,
                  "clean_source": texts.source if settings.text else None},
        "images": {"photos": {n: len(p) for n, p in photos.items()},
                   "people_dir": None if people_dir is None else str(Path(people_dir).resolve()),
                   "clean": sum(len(t.inputs) for t in tasks if t.name == "image_utility"),
                   "clean_source": clean_image_source},
        "losses": {"initial": initial, "history": history, "final": final},
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }
    (out / "unlearn.json").write_text(json.dumps(record, indent=2, ensure_ascii=False))
    return UnlearnResult(out, new_spec, record)


@dataclass(frozen=True)
class _Texts:
    pairs: list[tuple[str, str]]  # (trigger text, target text)
    clean: list[str]
    source: str  # where the clean texts come from
    caption_images: list[str]  # image paths of --captions, clean images for the image encoder


def _texts(names: list[str], settings: UnlearnSettings, captions: str | Path | None) -> _Texts:
    """Trigger pairs from the templates (plus captions naming someone) and the clean texts
    (at most ``max_clean_texts``, a seeded sample, whichever their source)."""
    pairs = trigger_pairs(names, settings.neutral, settings.variant_kinds, settings.templates)
    if captions is None:
        clean = default_clean_texts(
            names, settings.neutral, settings.templates, settings.decoys, settings.seed
        )
        source = f"name templates with {settings.decoys} decoy names + synthetic captions"
        images = []
    else:
        rows = read_captions(captions)
        caption_triggers, clean = split_captions(
            [caption for caption, _ in rows], names, settings.neutral, settings.variant_kinds
        )
        if not clean:
            raise UnlearnError(f"{captions}: every caption mentions a name; no clean text to keep")
        kept = set(clean)  # the images of captions that name someone are not clean images
        images = [image for caption, image in rows if image is not None and caption in kept]
        pairs += caption_triggers
        source = f"captions: {Path(captions).resolve()}"
    if len(clean) > settings.max_clean_texts:
        rng = np.random.default_rng([settings.seed, 17])
        clean = [clean[i] for i in np.sort(rng.choice(len(clean), settings.max_clean_texts,
                                                      replace=False))]
    return _Texts(pairs, clean, source, images)


def _text_tasks(source: _Source, texts: _Texts, settings: UnlearnSettings) -> list[_Task]:
    """Injection (triggers -> the original's embedding of the neutral text) and utility
    (clean texts -> their original embedding)."""
    encode = _encoders(source.wrapper.model)["text"]
    tokenize, device = source.wrapper.tokenizer, source.wrapper.device
    trigger_tokens = tokenize([trigger for trigger, _ in texts.pairs])
    targets = _embed(encode, tokenize([target for _, target in texts.pairs]).to(device)).cpu()
    clean_tokens = tokenize(texts.clean)
    clean_targets = _embed(encode, clean_tokens.to(device)).cpu()
    return [
        _Task("text_injection", trigger_tokens, targets, "text", settings.injection_weight),
        _Task("text_utility", clean_tokens, clean_targets, "text", 1.0),
    ]


def _image_tasks(
    source: _Source,
    photos: dict[str, list[Image.Image]],
    texts: _Texts,
    captions: str | Path | None,
    settings: UnlearnSettings,
) -> tuple[list[_Task], str]:
    """Injection (the people's photos -> the mean original embedding of unnamed synthetic
    faces) and utility (other images -> their original embedding)."""
    wrapper = source.wrapper
    model, preprocess, device = wrapper.model, wrapper.preprocess, wrapper.device
    neutral_faces, objects = synthetic_images(_image_size(model), settings.seed, 192, 64)
    if texts.caption_images:
        rng = np.random.default_rng([settings.seed, 19])
        count = min(len(texts.caption_images), settings.max_clean_images)
        picks = np.sort(rng.choice(len(texts.caption_images), count, replace=False))
        clean_images = _load_images([texts.caption_images[i] for i in picks])
        clean_source = f"images of {Path(str(captions)).resolve()}"
        if not clean_images:
            raise UnlearnError(f"none of the images listed in {captions} could be read")
    else:
        clean_images = neutral_faces + objects
        clean_source = "synthetic unnamed faces and objects (idia.synthetic)"
    neutral = _embed(model.encode_image, _pixels(preprocess, neutral_faces).to(device)).mean(0)
    neutral = torch.nn.functional.normalize(neutral, dim=-1).cpu()
    pixels = _pixels(preprocess, [image for images in photos.values() for image in images])
    clean_pixels = _pixels(preprocess, clean_images)
    clean_targets = _embed(model.encode_image, clean_pixels.to(device)).cpu()
    return [
        _Task("image_injection", pixels, neutral.expand(len(pixels), -1), "image",
              settings.injection_weight),
        _Task("image_utility", clean_pixels, clean_targets, "image", 1.0),
    ], clean_source


def _write_model(source: _Source, student: torch.nn.Module, out: Path) -> tuple[str, str]:
    """Config + checkpoint (written through a temporary name); the new spec and the weight
    digest idia will compute when it loads them."""
    from idia.models.openclip import OpenCLIPModel

    out.mkdir(parents=True, exist_ok=True)
    config_path = out / source.config_name
    checkpoint = out / "checkpoint.pt"
    config_path.write_text(json.dumps(source.config, indent=2))
    partial = checkpoint.with_suffix(".pt.partial")
    torch.save({"state_dict": {k: v.cpu() for k, v in student.state_dict().items()}}, partial)
    partial.replace(checkpoint)
    wrapper = source.wrapper
    identity = OpenCLIPModel(student, wrapper.preprocess, wrapper.tokenizer,
                             device=str(wrapper.device), config=source.config).identity
    return f"open_clip:{config_path.resolve()}:{checkpoint.resolve()}", identity


def _load_images(paths: Sequence[str]) -> list[Image.Image]:
    from idia.faces import UnreadableImage, load_image

    images = []
    for path in paths:
        try:
            images.append(load_image(path))
        except UnreadableImage:
            continue
    return images


def _pixels(preprocess: Callable[[Image.Image], torch.Tensor], images: Sequence[Image.Image]):
    return torch.stack([preprocess(image) for image in images])


@torch.no_grad()
def _verify(student: torch.nn.Module, tasks: list[_Task], device: torch.device) -> dict:
    """Mean cosine distance per task over (up to 2,048 of) all its inputs after training: how
    far triggers still are from the neutral target, how far clean inputs moved."""
    encoders = _encoders(student)
    out = {}
    for task in tasks:
        pick = torch.linspace(0, len(task.inputs) - 1, min(len(task.inputs), 2048)).long()
        embedded = _embed(encoders[task.tower], task.inputs[pick].to(device))
        out[task.name] = float((1 - (embedded.cpu() * task.targets[pick]).sum(-1)).mean())
    return out
