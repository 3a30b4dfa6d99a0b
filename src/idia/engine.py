"""The attack on one person: photos + name + model -> verdict with its evidence.

:class:`IdentityInferenceAttack` wires the pieces (candidate names, templates, face crops, a
model) and leaves the decision rule to :mod:`idia.attack`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from idia import attack
from idia.cache import EmbeddingCache
from idia.faces import (
    CropMode,
    FaceDetector,
    Photo,
    get_detector,
    prepare_image,
    prepare_photo,
    usable,
)
from idia.models import ClosedBoxModel, EmbeddingModel, load_model
from idia.names import DEFAULT_NUM_CANDIDATES, CandidateSet, NamePool, build_candidates
from idia.prompts import PAPER_TEMPLATES, render_prompts, validate_templates
from idia.zeroshot import EmbeddingZeroShot


class AttackInputError(ValueError):
    """The attack cannot run on these inputs; the message says what to change."""


@dataclass(frozen=True)
class Predictions:
    """What the model said about one person's usable photos.

    ``best``: (P, T) candidate index per photo and template. ``rank`` / ``probability``:
    (P, T) rank and softmax probability of the real name, or None when the model reveals
    only its top answer.
    """

    best: np.ndarray
    rank: np.ndarray | None
    probability: np.ndarray | None


@dataclass(frozen=True)
class TemplateResult:
    template: str
    prediction: str | None
    votes: int
    correct: bool


@dataclass
class CheckResult:
    """The verdict on one person, with the evidence a person can inspect."""

    name: str
    model: str
    n_photos: int
    n_candidates: int
    score: int
    threshold: int
    member: bool
    p_value: float
    chance_member_probability: float
    templates: list[TemplateResult]
    photos: list[dict[str, Any]]
    seed: int
    candidate_source: str
    mean_real_rank: float | None = None
    mean_real_probability: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_run_candidates(path: str | Path) -> tuple[CandidateSet, dict[str, Any]]:
    """The candidate set of an ``idia audit`` run, and the run's settings (config.json).

    ``path``: the run folder or its ``candidates.parquet``."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    table, config_file = folder / "candidates.parquet", folder / "config.json"
    if not table.is_file() or not config_file.is_file():
        raise AttackInputError(
            f"{path} is not an idia audit run: expected candidates.parquet and config.json in "
            f"{folder}"
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
        frame = pd.read_parquet(table, columns=["index", "name", "is_real"])
    except (ValueError, OSError) as err:
        raise AttackInputError(f"cannot read the audit run {folder}: {err}") from err
    source = f"audit run {folder} ({config.get('candidate_source', 'unknown source')})"
    return CandidateSet.from_frame(frame, int(config.get("seed", 0)), source), config


def photo_record(photo: Photo) -> dict[str, Any]:
    box = photo.box
    return {
        "path": photo.path,
        "status": photo.status,
        "reason": photo.reason,
        "n_faces": photo.n_faces,
        "box": None if box is None else [box.x, box.y, box.w, box.h],
    }


class IdentityInferenceAttack:
    """Does a CLIP-style model know a person? The paper's attack, reusable across people.

    ``model``: a spec string (see :func:`idia.models.load_model`), an
    :class:`~idia.models.EmbeddingModel` (e.g. ``OpenCLIPModel(my_model, preprocess,
    tokenizer)``) or a :class:`~idia.models.ClosedBoxModel`.
    ``cache_dir``: where embeddings are cached; None for the default, False for no cache.
    ``device``, ``precision``: how a spec string is loaded (see :func:`~idia.models.load_model`).
    """

    def __init__(
        self,
        model: str | EmbeddingModel | ClosedBoxModel,
        *,
        templates: Sequence[str] = PAPER_TEMPLATES,
        num_names: int = DEFAULT_NUM_CANDIDATES,
        seed: int = 0,
        threshold: int = 1,
        crop: CropMode = "face",
        detector: str | FaceDetector = "yunet",
        face_margin: float = 0.3,
        decoy_names: Sequence[str] | None = None,
        name_pool: NamePool | None = None,
        cache_dir: str | Path | None | bool = None,
        device: str | None = None,
        precision: str | None = None,
        progress: bool = True,
    ) -> None:
        if threshold < 1:
            raise AttackInputError(f"threshold must be at least 1, got {threshold}")
        if num_names < 2:
            raise AttackInputError(f"num_names must be at least 2, got {num_names}")
        if crop not in ("face", "none"):
            raise AttackInputError(f"crop must be 'face' or 'none', not {crop!r}")
        self.templates = validate_templates(list(templates))
        if threshold > len(self.templates):
            raise AttackInputError(
                f"threshold {threshold} exceeds the number of templates ({len(self.templates)})"
            )
        self.num_names = num_names
        self.seed = seed
        self.threshold = threshold
        self.crop = crop
        self.face_margin = face_margin
        self.decoy_names = decoy_names
        self.name_pool = name_pool
        self.progress = progress
        self._detector = detector
        if isinstance(model, str):
            model = load_model(model, device=device, precision=precision, progress=progress)
        elif precision is not None:
            raise AttackInputError(
                "precision applies to a model given as a spec string; set it on the model "
                "object instead (e.g. OpenCLIPModel(..., precision='fp32'))"
            )
        self.cache = (
            None
            if cache_dir is False
            else EmbeddingCache(None if cache_dir in (None, True) else cache_dir)
        )
        if isinstance(model, EmbeddingModel):
            self.classifier: ClosedBoxModel = EmbeddingZeroShot(model, self.cache)
        elif isinstance(model, ClosedBoxModel):
            self.classifier = model
        else:
            raise AttackInputError(
                f"{type(model).__name__} is neither an EmbeddingModel nor a ClosedBoxModel"
            )

    @property
    def model_name(self) -> str:
        return self.classifier.name

    @property
    def detector(self) -> FaceDetector | None:
        if self.crop == "none":
            return None
        if isinstance(self._detector, str):
            self._detector = get_detector(self._detector)
        return self._detector

    def candidates(self, real_names: Sequence[str]) -> CandidateSet:
        return build_candidates(
            real_names, self.num_names, self.seed, pool=self.name_pool, decoys=self.decoy_names
        )

    def prepare(self, photos: Sequence[str | Path | Image.Image]) -> list[Photo]:
        """Load (paths) and crop photos; PIL images are taken as already loaded."""
        detector = self.detector
        return [
            prepare_image(
                item.convert("RGB"), f"<image {i}>", self.crop, detector, self.face_margin
            )
            if isinstance(item, Image.Image)
            else prepare_photo(item, self.crop, detector, self.face_margin)
            for i, item in enumerate(photos)
        ]

    def predict(
        self, images: Sequence[Image.Image], candidates: CandidateSet, real_index: int | None
    ) -> Predictions:
        """The model's pick per photo and template, and where the real name ranked."""
        groups = [render_prompts([t], candidates.names) for t in self.templates]
        answer = self.classifier.zero_shot(images, groups)
        if answer.scores is None or real_index is None:
            return Predictions(np.asarray(answer.best), None, None)
        scale = getattr(self.classifier, "logit_scale", 100.0)
        rank, probability = attack.real_name_stats(answer.scores, real_index, scale)
        return Predictions(np.asarray(answer.best), rank, probability)

    def check(
        self,
        photos: Sequence[str | Path | Image.Image],
        name: str,
        candidates: CandidateSet | str | Path | None = None,
    ) -> CheckResult:
        """Run the attack for one person; raises AttackInputError if no photo is usable.

        ``candidates``: None draws the person's own set (the real name + seeded decoys); a
        :class:`CandidateSet`, or an ``idia audit`` run folder (or its ``candidates.parquet``),
        puts the person among that set instead, so the verdict is the audit's for them.
        """
        if not name or not name.strip():
            raise AttackInputError("the person's name is empty")
        if not photos:
            raise AttackInputError("no photos given")
        run_config = None
        if isinstance(candidates, (str, Path)):
            run = Path(candidates)
            candidates, run_config = read_run_candidates(run)
        candidates = candidates or self.candidates([name])
        try:
            real = candidates.index_of(name)
        except KeyError:
            raise AttackInputError(
                f"{name!r} is not among the {len(candidates)} candidates (people under test: "
                f"{candidates.n_real}); check someone the audit covered, or draw a set of "
                "their own (no --candidates)"
            ) from None
        prepared = self.prepare(photos)
        good = usable(prepared)
        if not good:
            reasons = "; ".join(f"{p.path}: {p.reason}" for p in prepared)
            raise AttackInputError(f"none of the {len(prepared)} photos is usable ({reasons})")
        predictions = self.predict([p.image for p in good], candidates, real)
        result = self.verdict(name, predictions, candidates, real, prepared)
        if run_config is not None:
            result.extra["audit_run"] = str(run)
            result.extra["differs_from_audit"] = self.differences_from_run(run_config)
        return result

    def differences_from_run(self, config: dict[str, Any]) -> list[str]:
        """Settings of an audit run (its config.json) that this attack does not share: any
        of them can give a person another verdict here than in the audit."""
        mine = {
            "model_identity": self.classifier.identity,
            "templates": list(self.templates),
            "threshold": self.threshold,
            "crop": self.crop,
        }
        return [key for key, value in mine.items() if config.get(key) != value]

    def verdict(
        self,
        name: str,
        predictions: Predictions,
        candidates: CandidateSet,
        real_index: int,
        photos: Sequence[Photo],
    ) -> CheckResult:
        winners, votes = attack.majority_votes(predictions.best)
        person_score = int(attack.score(winners, real_index))
        templates = [
            TemplateResult(
                template=t,
                prediction=None if w < 0 else candidates.names[w],
                votes=int(v),
                correct=bool(w == real_index),
            )
            for t, w, v in zip(self.templates, winners, votes, strict=True)
        ]
        return CheckResult(
            name=name,
            model=self.model_name,
            n_photos=int(predictions.best.shape[0]),
            n_candidates=len(candidates),
            score=person_score,
            threshold=self.threshold,
            member=bool(attack.is_member(person_score, self.threshold)),
            p_value=attack.decoy_p_value(winners, real_index, len(candidates)),
            chance_member_probability=attack.chance_member_probability(
                len(self.templates), len(candidates), self.threshold
            ),
            templates=templates,
            photos=[photo_record(p) for p in photos],
            seed=candidates.seed,
            candidate_source=candidates.source,
            mean_real_rank=None if predictions.rank is None else float(predictions.rank.mean()),
            mean_real_probability=None
            if predictions.probability is None
            else float(predictions.probability.mean()),
        )
