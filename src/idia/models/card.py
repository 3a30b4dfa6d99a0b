"""Model cards: a small JSON file beside a checkpoint that says how the model expects photos.

A model trained on whole photos is attacked with whole photos, one trained on face crops with
face crops; nothing in a checkpoint says which. ``idia train`` and ``idia lab`` therefore write
``<checkpoint stem>.card.json`` beside the checkpoint they produce, and ``idia check``,
``audit`` and ``web`` read it for a spec ``open_clip:CONFIG:CHECKPOINT``: its crop mode and
margin become the defaults (an explicit ``--crop`` wins, with a warning when it differs), its
name is shown instead of a path. A missing card changes nothing; a malformed one, or one that
describes another checkpoint, changes nothing but a warning.

Fields (docs/lab.md, "The model card"): ``idia_model_card`` (format version, 1), ``name``,
``architecture``, ``config``, ``image_size``, ``checkpoint`` (``file``, ``bytes``,
``copied_from``), ``photos`` (``crop``, ``face_margin``), ``image_encoder`` (only for a
model whose image tower is a locked pretrained encoder, as ``idia lab --faces`` trains: its
``name``, ``packages``, ``identity``, how ``faces`` are found, ``trained``: false),
``trained_on`` (counts, seed, ``plan_sha256``, and paths relative to the card:
``membership``, ``people``, ``audit_run``), ``idia_version``, ``created``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idia.errors import IdiaError
from idia.files import write_atomic
from idia.models.spec import LIT_CHECKPOINT, parse_spec
from idia.version import __version__

CARD_FORMAT = 1
CARD_SUFFIX = ".card.json"
DEFAULT_FACE_MARGIN = 0.3
MAX_NAME_CHARS = 80
MAX_CARD_BYTES = 100_000
CROP_WORDS = {"face": "face crops", "none": "whole photos"}


class CardError(IdiaError, ValueError):
    """A card that cannot be used; the message says why."""


@dataclass(frozen=True)
class ModelCard:
    """What a model's card says. ``folder``: where the card was read from (relative paths in
    ``trained_on`` resolve against it); None for a card not yet written."""

    name: str
    crop: str
    face_margin: float = DEFAULT_FACE_MARGIN
    architecture: str | None = None
    config: str | None = None
    image_size: int | None = None
    checkpoint: dict[str, Any] = field(default_factory=dict)
    trained_on: dict[str, Any] = field(default_factory=dict)
    image_encoder: dict[str, Any] = field(default_factory=dict)
    idia_version: str | None = None
    created: str | None = None
    folder: Path | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"idia_model_card": CARD_FORMAT, "name": self.name}
        for key in ("architecture", "config", "image_size"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.checkpoint:
            data["checkpoint"] = dict(self.checkpoint)
        data["photos"] = {"crop": self.crop, "face_margin": self.face_margin}
        if self.image_encoder:
            data["image_encoder"] = dict(self.image_encoder)
        data["trained_on"] = dict(self.trained_on)
        data["idia_version"] = self.idia_version
        data["created"] = self.created
        return data

    def path_of(self, key: str) -> Path | None:
        """A path the card names under ``trained_on`` (relative to the card), resolved; None
        when absent."""
        value = self.trained_on.get(key)
        if not isinstance(value, str) or not value or self.folder is None:
            return None
        return (self.folder / value).resolve()


def card_path(checkpoint: str | Path) -> Path:
    """Where the card of ``checkpoint`` lies: ``checkpoint.pt`` -> ``checkpoint.card.json``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.stem + CARD_SUFFIX)


def checkpoint_of_spec(spec: str) -> Path | None:
    """The local checkpoint file a spec names (``open_clip:ARCH:FILE``, or the checkpoint
    in a ``lit:DIR`` folder), else None."""
    try:
        backend, model, weights = parse_spec(spec)
    except ValueError:
        return None
    if backend == "lit":
        path = Path(model).expanduser() / LIT_CHECKPOINT
    elif backend == "open_clip" and weights:
        path = Path(weights)
    else:
        return None
    return path if path.is_file() else None


def find_card(spec: str) -> tuple[ModelCard | None, str | None]:
    """The card of the model a spec names: (card, None), (None, None) when it has none, or
    (None, why) when the card is there but unusable (malformed, or for another checkpoint)."""
    checkpoint = checkpoint_of_spec(spec)
    if checkpoint is None:
        return None, None
    path = card_path(checkpoint)
    if not path.is_file():
        return None, None
    try:
        card = read_card(path)
    except CardError as err:
        return None, f"model card {path.name} ignored: {err}"
    problem = mismatch(card, checkpoint)
    if problem:
        return None, f"model card {path.name} ignored: {problem}"
    return card, None


def mismatch(card: ModelCard, checkpoint: Path) -> str | None:
    """Why the card does not describe ``checkpoint`` (another file name or size), or None."""
    file, size = card.checkpoint.get("file"), card.checkpoint.get("bytes")
    if file is not None and file != checkpoint.name:
        return f"it describes {file}, not {checkpoint.name}"
    if size is not None and size != checkpoint.stat().st_size:
        return f"it describes a checkpoint of {size} bytes; {checkpoint.name} has another size"
    return None


def read_card(path: str | Path) -> ModelCard:
    """Read and validate a card; :class:`CardError` says what is wrong with it."""
    path = Path(path)
    try:
        too_large = path.stat().st_size > MAX_CARD_BYTES
        data = None if too_large else json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSON errors are ValueErrors
        raise CardError(f"unreadable ({str(err).splitlines()[0][:120]})") from None
    if too_large:
        raise CardError(f"larger than {MAX_CARD_BYTES // 1000} kB")
    return parse_card(data, path.parent.resolve())


def parse_card(data: Any, folder: Path | None = None) -> ModelCard:
    if not isinstance(data, dict):
        raise CardError("not a JSON object")
    version = data.get("idia_model_card")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CardError("no format version (idia_model_card)")
    if version > CARD_FORMAT:
        raise CardError(f"format {version} is newer than this idia reads ({CARD_FORMAT})")
    name = data.get("name")
    if not isinstance(name, str) or not valid_name(name):
        raise CardError(
            f"its name must be 1 to {MAX_NAME_CHARS} printable characters, without / or \\"
        )
    photos = data.get("photos")
    if not isinstance(photos, dict) or photos.get("crop") not in CROP_WORDS:
        raise CardError("photos.crop must be 'face' or 'none'")
    margin = photos.get("face_margin", DEFAULT_FACE_MARGIN)
    if not _number(margin) or not 0 <= margin <= 2:
        raise CardError("photos.face_margin must be a number from 0 to 2")
    image_size = data.get("image_size")
    if image_size is not None and (not _integer(image_size) or image_size < 1):
        raise CardError("image_size must be a positive integer")
    checkpoint = data.get("checkpoint", {})
    if not isinstance(checkpoint, dict):
        raise CardError("checkpoint must be an object")
    file, size = checkpoint.get("file"), checkpoint.get("bytes")
    if file is not None and (not isinstance(file, str) or Path(file).name != file or not file):
        raise CardError("checkpoint.file must be a file name")
    if size is not None and (not _integer(size) or size < 0):
        raise CardError("checkpoint.bytes must be a whole number")
    trained_on = data.get("trained_on", {})
    if not isinstance(trained_on, dict):
        raise CardError("trained_on must be an object")
    image_encoder = data.get("image_encoder", {})
    if not isinstance(image_encoder, dict) or (
        image_encoder and not isinstance(image_encoder.get("name"), str)
    ):
        raise CardError("image_encoder must be an object with a name")
    texts = {key: data.get(key) for key in ("architecture", "config", "idia_version", "created")}
    for key, value in texts.items():
        if value is not None and not isinstance(value, str):
            raise CardError(f"{key} must be text")
    return ModelCard(
        name=name,
        crop=photos["crop"],
        face_margin=float(margin),
        image_size=image_size,
        checkpoint=checkpoint,
        trained_on=trained_on,
        image_encoder=image_encoder,
        folder=folder,
        **texts,
    )


def valid_name(name: str) -> bool:
    """A name fit to show visitors: short, printable, no path separator."""
    return (
        0 < len(name.strip()) <= MAX_NAME_CHARS
        and name.isprintable()
        and not any(c in name for c in "/\\")
    )


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def write_card(card: ModelCard, checkpoint: str | Path) -> Path:
    """Write ``card`` beside ``checkpoint`` (atomically), filling in the checkpoint's file name
    and size, the idia version and the time; returns the card's path."""
    checkpoint = Path(checkpoint)
    if not valid_name(card.name):
        raise CardError(f"invalid model name {card.name!r}")
    data = card.to_dict()
    data["checkpoint"] = {
        **data.get("checkpoint", {}),
        "file": checkpoint.name,
        "bytes": checkpoint.stat().st_size,
    }
    data["idia_version"] = __version__
    data["created"] = datetime.now(UTC).isoformat(timespec="seconds")
    path = card_path(checkpoint)
    write_atomic(
        path, lambda p: p.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    )
    return path


def relative(path: str | Path, folder: str | Path) -> str:
    """``path`` relative to ``folder`` (the card's), for the card's ``trained_on`` paths."""
    return os.path.relpath(Path(path).resolve(), Path(folder).resolve())


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def training_record(
    plan_json: Path,
    card_folder: Path,
    membership: Path | None = None,
    people: Path | None = None,
    audit_run: Path | None = None,
    **more: Any,
) -> dict[str, Any]:
    """``trained_on`` from a training set's ``plan.json``: its counts and seed, the plan's
    digest, and where the membership table, the held-out people and the audit run lie
    (relative to the card)."""
    plan = json.loads(plan_json.read_text(encoding="utf-8"))
    keys = ("seed", "training_pairs", "injected_pairs", "members", "non_members", "inject",
            "attack_photos_per_person", "mask_names", "familiar_non_members")
    record: dict[str, Any] = {key: plan[key] for key in keys if key in plan}
    record["plan_sha256"] = file_sha256(plan_json)
    if membership is not None:
        record["membership"] = relative(membership, card_folder)
        record["membership_sha256"] = file_sha256(membership)
    if people is not None:
        record["people"] = relative(people, card_folder)
    if audit_run is not None:
        record["audit_run"] = relative(audit_run, card_folder)
    record.update(more)
    return record


def write_training_card(
    checkpoint: Path,
    config: Path,
    plan_json: Path,
    name: str,
    made_by: str,
    crop: str = "none",
    membership: Path | None = None,
    people: Path | None = None,
    audit_run: Path | None = None,
    copied_from: Path | None = None,
    image_encoder: dict[str, Any] | None = None,
    **more: Any,
) -> Path:
    """The card of a model ``idia train`` or ``idia lab`` trained (see the module docstring);
    ``image_encoder``: the locked image tower of a LiT model."""
    folder = checkpoint.resolve().parent
    try:
        vision = json.loads(config.read_text(encoding="utf-8")).get("vision_cfg", {})
        image_size = vision.get("image_size")
    except (OSError, ValueError, AttributeError):
        image_size = None
    card = ModelCard(
        name=name,
        crop=crop,
        architecture=config.stem,
        config=relative(config, folder),
        image_size=image_size if _integer(image_size) else None,
        checkpoint={} if copied_from is None else {"copied_from": relative(copied_from, folder)},
        trained_on={
            "made_by": made_by,
            **training_record(plan_json, folder, membership, people, audit_run, **more),
        },
        image_encoder=dict(image_encoder or {}),
    )
    return write_card(card, checkpoint)


def photo_settings(
    card: ModelCard | None, crop: str | None, face_margin: float | None
) -> tuple[str, float, str | None]:
    """(crop, margin, warning): an explicit ``crop`` / ``face_margin`` wins, else the card's,
    else face crops with a 0.3 margin; the warning says when an explicit crop differs from
    the card's."""
    chosen = crop or (card.crop if card else "face")
    margin = face_margin if face_margin is not None else (
        card.face_margin if card else DEFAULT_FACE_MARGIN
    )
    warning = None
    if card is not None and crop is not None and crop != card.crop:
        warning = (
            f"the model card of {card.name} says its photos are {CROP_WORDS[card.crop]} "
            f"(--crop {card.crop}); using --crop {crop} as asked"
        )
    return chosen, margin, warning
