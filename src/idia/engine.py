"""The attack on one person: photos + name + model -> verdict with its evidence.

:class:`IdentityInferenceAttack` wires the pieces (candidate names, templates, face crops, a
model) and leaves the decision rule to :mod:`idia.attack`; :func:`create_attack` loads what it
needs (model, card, cache) and builds one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from idia import attack, claims
from idia.cache import EmbeddingCache
from idia.claims import Claim, TestResult
from idia.errors import IdiaError
from idia.face_descriptors import FaceEncoderError, describe_images
from idia.face_reference import (
    DEFAULT_REFERENCE,
    NO_REFERENCE,
    PublicReference,
    ReferenceAnswers,
    ReferencePlan,
    UnavailableReference,
)
from idia.faces import (
    CropMode,
    FaceDetector,
    Photo,
    get_detector,
    prepare_image,
    prepare_photo,
    usable,
)
from idia.fullname import DEFAULT_DECOYS
from idia.labels import verdict_label
from idia.lfw import LFWError, is_lfw_spec
from idia.lookalikes import DEFAULT_LOOKALIKES
from idia.models import (
    ClosedBoxModel,
    EmbeddedClassifier,
    EmbeddingModel,
    ScoredModel,
    load_model_and_card,
)
from idia.models.card import CROP_WORDS, ModelCard, photo_settings
from idia.name_null import (
    CLOSED_BOX_REASON,
    NameNull,
    NameNulls,
    check_decoy_count,
    null_from_row,
)
from idia.names import (
    DEFAULT_NUM_CANDIDATES,
    MIN_DECOYS,
    CandidateSet,
    NamePool,
    build_candidates,
    normalize_name,
)
from idia.people import PeopleFolderError, Person, find_people, name_key
from idia.prompts import PAPER_TEMPLATES, render_prompts, validate_templates
from idia.reference import ReferenceSet
from idia.run_folder import RunFolder, RunFolderError
from idia.zeroshot import EmbeddingZeroShot

log = logging.getLogger(__name__)

Reference = (
    str | Path | Sequence[Person] | ReferenceSet | PublicReference | UnavailableReference | None
)
"""What the face test compares a person with: a people folder (or Person records, or a
:class:`ReferenceSet` prepared once), a public reference (``lfw``, ``lfw:DIR``, or a loaded
:class:`PublicReference`), ``none``, or None (the test is not run)."""


class AttackInputError(IdiaError, ValueError):
    """The attack cannot run on these inputs; the message says what to change."""


@dataclass(frozen=True)
class Predictions:
    """What the model said about one person's usable photos.

    ``best``: (P, T) candidate index per photo and template. ``rank`` / ``probability``:
    (P, T) rank and softmax probability of the real name; ``responses``: the per-photo
    responses of :mod:`idia.claims`. All three are None when the model reveals only its top
    answer.
    """

    best: np.ndarray
    rank: np.ndarray | None
    probability: np.ndarray | None
    responses: claims.Responses | None = None


@dataclass(frozen=True)
class TemplateResult:
    template: str
    prediction: str | None
    votes: int
    correct: bool


@dataclass
class CheckResult:
    """The verdict on one person, with the evidence a person can inspect.

    ``claims``: the three tests of :mod:`idia.claims` (name familiarity, face association,
    text only), each tested or not with a reason; ``verdict``: the strongest claim whose test
    rejects its null at ``alpha``, or None. ``score`` / ``member``: the paper's rule (templates
    won >= threshold), kept exactly for reproduction; None when no photo was given.
    ``name_null``: which null the name-familiarity and text-only tests used
    (:meth:`idia.name_null.NameNull.record`: its key, the null in words, origin, sex and the
    decoy counts); the paper's rule keeps its own ``n_candidates``.
    ``chance_member_probability``: P(score >= threshold) for a model guessing at random *if
    the templates were independent*; they share photos and model, so it understates the
    chance for thresholds above 1.
    """

    name: str
    model: str
    n_photos: int
    n_candidates: int
    score: int | None
    threshold: int
    member: bool | None
    chance_member_probability: float
    templates: list[TemplateResult]
    photos: list[dict[str, Any]]
    seed: int
    candidate_source: str
    claims: dict[Claim, TestResult]
    verdict: Claim | None
    alpha: float
    sex: str | None = None
    n_reference_people: int = 0
    mean_real_rank: float | None = None
    mean_real_probability: float | None = None
    name_null: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def verdict_sentence(self) -> str:
        """The verdict in words a person understands."""
        return verdict_label(self.verdict).meaning


def read_run_candidates(path: str | Path) -> tuple[CandidateSet, dict[str, Any]]:
    """The candidate set of an ``idia audit`` run, and the run's settings (config.json).

    ``path``: the run folder (finished or not) or its ``candidates.parquet``."""
    path = Path(path)
    try:
        run = RunFolder(path.parent if path.is_file() else path, finished=False)
        return run.candidates, run.config
    except RunFolderError as err:
        raise AttackInputError(str(err)) from err


def read_run_null(path: str | Path, name: str) -> NameNull | None:
    """The null an ``idia audit`` run gave ``name`` (None when the run has none for it: an
    audit older than the full-name null, or a name it did not cover)."""
    path = Path(path)
    try:
        frame = RunFolder(path.parent if path.is_file() else path, finished=False).name_nulls
    except RunFolderError as err:
        raise AttackInputError(str(err)) from err
    if frame is None:
        return None
    rows = frame[frame["name"].map(normalize_name) == normalize_name(name)]
    return None if rows.empty else null_from_row(rows.iloc[0])


def photo_record(photo: Photo) -> dict[str, Any]:
    box = photo.box
    return {
        "path": photo.path,
        "status": photo.status,
        "reason": photo.reason,
        "n_faces": photo.n_faces,
        "box": None if box is None else [box.x, box.y, box.w, box.h],
    }


def check_settings(
    templates: Sequence[str],
    num_names: int,
    threshold: int,
    crop: str | None,
    name_decoys: int = DEFAULT_DECOYS,
) -> tuple[str, ...]:
    """The attack's settings checked (:class:`AttackInputError` says what to change); returns
    the templates, validated."""
    try:
        check_decoy_count(name_decoys)
    except ValueError as err:
        raise AttackInputError(f"{err} (name_decoys, --name-decoys)") from None
    if threshold < 1:
        raise AttackInputError(f"threshold must be at least 1, got {threshold}")
    if num_names < 1 + MIN_DECOYS:
        raise AttackInputError(
            f"num_names must be at least {1 + MIN_DECOYS} (a real name and {MIN_DECOYS} decoys), "
            f"got {num_names}"
        )
    if crop not in ("face", "none", None):
        raise AttackInputError(f"crop must be 'face' or 'none', not {crop!r}")
    checked = validate_templates(list(templates))
    if threshold > len(checked):
        raise AttackInputError(
            f"threshold {threshold} exceeds the number of templates ({len(checked)})"
        )
    return checked


class IdentityInferenceAttack:
    """Does a CLIP-style model know a person? The paper's attack, reusable across people.

    It holds what it is given; :func:`create_attack` builds one from a spec string (loading
    the model, reading its card, opening the disk cache).
    ``model``: an :class:`~idia.models.EmbeddingModel` (e.g. ``OpenCLIPModel(my_model,
    preprocess, tokenizer)``), answered through :class:`~idia.zeroshot.EmbeddingZeroShot`, or a
    :class:`~idia.models.ClosedBoxModel`, asked as it is.
    ``card``: the model's card (:mod:`idia.models.card`), or None.
    ``cache``: where prompt embeddings are kept on disk; None for none.
    ``cache_images``: also cache the embeddings of the photos (faces: off by default).
    ``crop``, ``face_margin``: how photos are prepared; None: as the card says, else face crops
    with a 0.3 margin. An explicit crop that differs from the card's is warned about.
    ``warnings``: problems met while loading (e.g. a malformed card); logged with the attack's
    own and kept in :attr:`warnings`.
    ``name_decoys``: decoys per name of the full-name null, the name-familiarity and text-only
    tests' candidates beside the paper's (:mod:`idia.name_null`); ``name_nulls``: the builder
    of those nulls (the origin table and the model's part familiarity), to share one between
    attacks on one model (None: the attack's own).
    ``lookalikes``: k, the reference people of the face test against a public reference (the
    smallest p-value it can give is 1 / (1 + k)).
    """

    def __init__(
        self,
        model: EmbeddingModel | ClosedBoxModel,
        *,
        card: ModelCard | None = None,
        cache: EmbeddingCache | None = None,
        cache_images: bool = False,
        templates: Sequence[str] = PAPER_TEMPLATES,
        num_names: int = DEFAULT_NUM_CANDIDATES,
        seed: int = 0,
        threshold: int = 1,
        crop: CropMode | None = None,
        detector: str | FaceDetector = "yunet",
        face_margin: float | None = None,
        decoy_names: Sequence[str] | None = None,
        name_pool: NamePool | None = None,
        name_decoys: int = DEFAULT_DECOYS,
        name_nulls: NameNulls | None = None,
        progress: bool = True,
        warnings: Sequence[str] = (),
        lookalikes: int = DEFAULT_LOOKALIKES,
    ) -> None:
        if isinstance(model, str):
            raise TypeError(
                "IdentityInferenceAttack takes a loaded model; for a spec string use "
                f"idia.create_attack({model!r}, ...)"
            )
        self.templates = check_settings(templates, num_names, threshold, crop, name_decoys)
        self.card = card
        self.warnings = list(warnings)
        crop, face_margin, differs = photo_settings(card, crop, face_margin)
        if differs:
            self.warnings.append(differs)
        for warning in self.warnings:
            log.warning("warning: %s", warning)
        self.num_names = num_names
        self.seed = seed
        self.threshold = threshold
        self.crop = crop
        self.face_margin = face_margin
        self.decoy_names = decoy_names
        self.name_pool = name_pool
        self.name_decoys = name_decoys
        self.progress = progress
        if lookalikes < 1:
            raise AttackInputError(f"lookalikes must be at least 1, got {lookalikes}")
        self.lookalikes = lookalikes
        self._detector = detector
        self._last_groups: tuple[CandidateSet, list[list[str]]] | None = None
        self.cache = cache
        if isinstance(model, EmbeddingModel):
            self.classifier: ClosedBoxModel = EmbeddingZeroShot(model, cache, cache_images)
        elif isinstance(model, ClosedBoxModel):
            self.classifier = model
        else:
            raise AttackInputError(
                f"{type(model).__name__} is neither an EmbeddingModel nor a ClosedBoxModel"
            )
        if name_nulls is None:
            embedded = isinstance(self.classifier, EmbeddedClassifier)
            name_nulls = (NameNulls(self.classifier.text_embeddings,
                                    identity=self.classifier.identity)
                          if embedded else NameNulls(None))
        self.name_nulls = name_nulls

    @property
    def model_name(self) -> str:
        return self.classifier.name

    @property
    def model_label(self) -> str:
        """The model's name for people: its card's, else its spec."""
        return self.card.name if self.card is not None else self.classifier.name

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

    def reference_set(
        self, reference: str | Path | Sequence[Person], encode: bool = True
    ) -> ReferenceSet:
        """Other people's photos for the face test (a folder of person folders, or Person
        records), loaded and prepared once with this attack's crop; with ``encode``, their
        image embeddings are computed now and kept in memory (not in any cache), so that
        :meth:`check` with ``reference=`` this set encodes no reference photo again."""
        if isinstance(reference, str | Path):
            try:
                reference, _ = find_people(reference, "reference")
            except PeopleFolderError as err:
                raise AttackInputError(str(err)) from err
        references = ReferenceSet.build(
            reference, self.prepare, self.crop, self.face_margin, self.name_pool
        )
        if encode:
            references.encode(self.classifier)
        return references

    def default_reference(self) -> str | Path:
        """The face test's reference when none is given: a lab model's own people (its card
        names them), else the public reference (:data:`~idia.face_reference.DEFAULT_REFERENCE`,
        LFW fetched once)."""
        people = self.card.path_of("people") if self.card is not None else None
        return people if people is not None and people.is_dir() else DEFAULT_REFERENCE

    def load_reference(self, reference: Reference, strict: bool = True) -> Reference:
        """``reference`` loaded once for many checks: a people folder prepared (and encoded)
        as a :class:`ReferenceSet`, ``lfw`` / ``lfw:DIR`` as a :class:`PublicReference` (its
        face descriptors from this attack's cache folder, computed there once), ``none`` as
        None; anything loaded already as it is. With ``strict=False`` a public reference that
        cannot be had (LFW absent offline, dlib missing) becomes an
        :class:`UnavailableReference`, whose reason the face test reports, instead of an
        error."""
        if isinstance(reference, str) and reference.strip().lower() == NO_REFERENCE:
            return None
        if isinstance(reference, str) and is_lfw_spec(reference):
            try:
                return PublicReference.load(
                    reference, cache_dir=None if self.cache is None else self.cache.directory,
                    use_cache=self.cache is not None, show_progress=self.progress,
                    name_pool=self.name_pool,
                )
            except (LFWError, FaceEncoderError) as err:
                if strict:
                    raise
                return UnavailableReference(str(err))
        if reference is None or isinstance(
            reference, ReferenceSet | PublicReference | UnavailableReference
        ):
            return reference
        return self.reference_set(reference)

    def predict(
        self,
        images: Sequence[Image.Image],
        candidates: CandidateSet,
        real_index: int | None,
        embeddings: np.ndarray | None = None,
    ) -> Predictions:
        """The model's pick per photo and template, and where the real name ranked.
        ``embeddings``: the images' embeddings, already computed by this model."""
        groups = self.prompt_groups(candidates)
        classifier = self.classifier
        if embeddings is None:
            answer = classifier.zero_shot(images, groups)
        elif isinstance(classifier, EmbeddedClassifier):
            answer = classifier.zero_shot_embedded(embeddings, groups)
        else:
            raise TypeError(f"{type(classifier).__name__} cannot answer from embeddings")
        if answer.scores is None or real_index is None:
            return Predictions(np.asarray(answer.best), None, None)
        scale = (
            classifier.logit_scale
            if isinstance(classifier, ScoredModel)
            else attack.CLIP_LOGIT_SCALE
        )
        rank, probability = attack.real_name_stats(answer.scores, real_index, scale)
        per_photo = claims.responses(
            answer.scores, real_index, np.arange(candidates.n_real), candidates.decoy_indices
        )
        return Predictions(np.asarray(answer.best), rank, probability, per_photo)

    def prompt_groups(self, candidates: CandidateSet) -> list[list[str]]:
        """The prompts per template; the last set's are kept (a check asks for them once per
        reference person)."""
        last = self._last_groups
        if last is None or last[0] is not candidates:
            last = self._last_groups = (
                candidates, [render_prompts([t], candidates.names) for t in self.templates]
            )
        return last[1]

    def text_statistics(
        self, candidates: CandidateSet, real: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The text-only statistics of the real names ``real`` (default: all) and of the
        decoys beside each (see :func:`idia.claims.text_only_statistics`); None for a model
        without a text tower in reach (closed box)."""
        if not isinstance(self.classifier, EmbeddedClassifier):
            return None
        embeddings = self.classifier.group_embeddings(self.prompt_groups(candidates))
        chosen = np.arange(candidates.n_real) if real is None else np.asarray(real)
        return claims.text_only_statistics(embeddings, chosen, candidates.decoy_indices)

    def name_null(
        self, name: str, origin: str | None = None, sex: str | None = None
    ) -> NameNull:
        """The null of ``name``'s name-familiarity and text-only tests: decoys for the full
        name, from its origin and of its sex, matched on this model's familiarity with each
        part alone (:mod:`idia.name_null`); ``origin`` (a country code) and ``sex`` override
        what is inferred. Raises :class:`~idia.nameparts.NameInputError` for a name no test
        can take (empty, no letters, too long, a script no decoy pool covers)."""
        return self.name_nulls.for_name(name, self.templates, self.seed, origin=origin,
                                        sex=sex, total=self.name_decoys)

    def text_only_test(self, null: NameNull) -> TestResult:
        """The text-only test of a name against the decoys of its null."""
        if not isinstance(self.classifier, EmbeddedClassifier):
            return claims.not_tested(
                "text_only", "the model's text encoder is not in reach (closed box)"
            )
        if not null.tested:
            return claims.not_tested("text_only", null.sentence)
        real, decoys = self.text_statistics(null.candidates(), [0])  # type: ignore[misc]
        result = claims.text_test(real[0], decoys[0], np.full(null.n_decoys, None), None)
        return replace(result, null=null.sentence)

    def name_familiarity_test(
        self, null: NameNull, images: Sequence[Image.Image], embeddings: np.ndarray | None
    ) -> TestResult:
        """The name-familiarity test of a name on its photos (``embeddings``: theirs, already
        computed by this model) against the decoys of its null."""
        if not isinstance(self.classifier, EmbeddedClassifier):  # e.g. an audit's decoys
            return claims.not_tested("name_familiarity", CLOSED_BOX_REASON)
        if not null.tested:
            return claims.not_tested("name_familiarity", null.sentence)
        candidates = null.candidates()
        answer = self.predict(images, candidates, 0, embeddings)
        assert answer.responses is not None  # an EmbeddedClassifier gives scores
        result = claims.name_test(answer.responses.name, candidates.decoy_sexes, None)
        return replace(result, null=null.sentence)

    def check(
        self,
        photos: Sequence[str | Path | Image.Image],
        name: str,
        candidates: CandidateSet | str | Path | None = None,
        reference: Reference = None,
        sex: str | None = None,
        alpha: float = claims.DEFAULT_ALPHA,
        origin: str | None = None,
    ) -> CheckResult:
        """Run the attack for one person; raises AttackInputError if no photo is usable.

        ``photos`` may be empty: then only the text-only test runs (nothing about a face).
        ``reference``: the face-association test's other people: a folder of person folders,
        Person records, or a :meth:`reference_set` prepared once for many checks (same-sex
        people); or ``lfw`` / ``lfw:DIR`` / a :class:`PublicReference` loaded once
        (:meth:`load_reference`): the public reference's lookalikes. None: that test is
        reported as not run (:meth:`default_reference` is what ``idia check`` uses).
        ``sex``: "f" or "m", the person's sex, for the decoys of the name tests and for
        matching reference people (default: inferred from the first name, else told from the
        face). ``origin``: the country code of the name's decoys (default: inferred from its
        parts). ``candidates``: None draws the person's own set for the paper's rule (the real
        name + seeded decoys); a :class:`CandidateSet`, or an ``idia audit`` run folder (or its
        ``candidates.parquet``), puts the person among that set instead, so the verdict is the
        audit's for them. The name tests compare the name with its full-name decoys
        (:meth:`name_null`; from the run folder when it holds the person's).
        """
        prepared = self.prepare(photos) if photos else []
        return self.assess(prepared, name, candidates, reference, sex, alpha, origin)

    def assess(
        self,
        prepared: Sequence[Photo],
        name: str,
        candidates: CandidateSet | str | Path | None = None,
        reference: Reference = None,
        sex: str | None = None,
        alpha: float = claims.DEFAULT_ALPHA,
        origin: str | None = None,
    ) -> CheckResult:
        """:meth:`check` on photos already prepared (loaded and cropped by :meth:`prepare`)."""
        if not 0 < alpha < 1:
            raise AttackInputError(f"alpha must be between 0 and 1, got {alpha}")
        if sex not in (None, "f", "m"):
            raise AttackInputError(f"sex must be 'f' or 'm', not {sex!r}")
        run_config, null = None, None
        if isinstance(candidates, str | Path):
            run = Path(candidates)
            candidates, run_config = read_run_candidates(run)
            null = read_run_null(run, name)
        from_run = null is not None
        null = null or self.name_null(name, origin, sex)
        candidates = candidates or self.candidates([name])
        try:
            real = candidates.index_of(name)
        except KeyError:
            raise AttackInputError(
                f"{name!r} is not among the {len(candidates)} candidates (people under test: "
                f"{candidates.n_real}); check someone the audit covered, or draw a set of "
                "their own (no --candidates)"
            ) from None
        if real >= candidates.n_real:
            raise AttackInputError(f"{name!r} is a decoy in this candidate set, not a real name")
        name_sex = candidates.sexes[real]
        results: dict[Claim, TestResult] = {"text_only": self.text_only_test(null)}
        if not prepared:
            for claim in ("name_familiarity", "face_association"):
                results[claim] = claims.not_tested(claim, "no photo given")
            return self._result(name, candidates, None, [], results, alpha, sex or name_sex, 0,
                                null)
        good = usable(prepared)
        if not good:
            reasons = "; ".join(f"{p.path}: {p.reason}" for p in prepared)
            raise AttackInputError(f"none of the {len(prepared)} photos is usable ({reasons})")
        images = [p.image for p in good]
        embeddings = (  # encoded once for both candidate sets
            self.classifier.image_embeddings(images)
            if isinstance(self.classifier, EmbeddedClassifier) else None
        )
        predictions = self.predict(images, candidates, real, embeddings)
        results["name_familiarity"] = self.name_familiarity_test(null, images, embeddings)
        results["face_association"], n_reference = self._face_test(
            name, sex, name_sex, good, predictions, candidates, real, reference
        )
        result = self._result(
            name, candidates, predictions, prepared, results, alpha, sex or name_sex, n_reference,
            null,
        )
        if run_config is not None:
            result.extra["audit_run"] = str(run)
            result.extra["differs_from_audit"] = self.differences_from_run(run_config) + (
                [] if from_run else ["name_null"]
            )
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

    def _face_test(
        self,
        name: str,
        sex: str | None,
        name_sex: str | None,
        good: Sequence[Photo],
        own: Predictions,
        candidates: CandidateSet,
        real: int,
        reference: Reference,
    ) -> tuple[TestResult, int]:
        """The person's name on their photos against the same name on reference people's
        photos: lookalikes of a public reference, or the same-sex people of a folder."""
        if isinstance(reference, str) and (
            is_lfw_spec(reference) or reference.strip().lower() == NO_REFERENCE
        ):
            reference = self.load_reference(reference, strict=False)
        if reference is None:
            return claims.not_tested(
                "face_association",
                "no reference photos of other people given (--reference lfw or DIR)",
            ), 0
        if isinstance(reference, UnavailableReference):
            return claims.not_tested("face_association", reference.reason), 0
        source = "given" if sex is not None else "first name"
        face_candidates, face_real = self.face_candidates(candidates, real)
        if own.responses is None and face_candidates is not candidates:
            own = self.predict([p.image for p in good], face_candidates, face_real)
        if isinstance(reference, PublicReference):
            return self._lookalike_face_test(
                name, sex or name_sex, source, good, own, face_candidates, face_real, reference
            )
        return self._folder_face_test(
            name, sex or name_sex, good, own, face_candidates, face_real, reference
        )

    def face_candidates(self, candidates: CandidateSet, real: int) -> tuple[CandidateSet, int]:
        """The candidates the face test asks reference photos with: the tested name and the
        decoys only (``candidates`` itself when it has no other real name), and the tested
        name's index there. Another real name among them could be a reference person's own
        and take the top slot on their photos, which the tested name then never wins: the
        top-1 statistic would be lower on references than under the null."""
        if candidates.n_real == 1:
            return candidates, real
        keep = [real, *candidates.decoy_indices]
        restricted = CandidateSet(
            names=tuple(candidates.names[i] for i in keep), n_real=1, seed=candidates.seed,
            source=f"{candidates.source}; the tested name and the decoys",
            sexes=tuple(candidates.sexes[i] for i in keep),
        )
        return restricted, 0

    def _folder_face_test(
        self,
        name: str,
        sex: str | None,
        good: Sequence[Photo],
        own: Predictions,
        candidates: CandidateSet,
        real: int,
        reference: str | Path | Sequence[Person] | ReferenceSet,
    ) -> tuple[TestResult, int]:
        """Against the people of a folder of the person's sex (from the name, else told from
        the face), each with as many of their photos as the person has (a seeded subset; all
        of them when they have fewer, which only makes the test conservative)."""
        if not isinstance(reference, ReferenceSet):
            reference = self.reference_set(reference, encode=False)
        elif (reference.crop, reference.face_margin) != (self.crop, self.face_margin):
            return claims.not_tested(
                "face_association",
                f"the reference photos are {CROP_WORDS[reference.crop]} and these are "
                f"{CROP_WORDS[self.crop]} (or another margin): they would not compare",
            ), 0
        try:
            if sex is None:
                sex = reference.sex_of(describe_images([p.image for p in good]).vectors)
            sexes = reference.sexes()
        except (FaceEncoderError, ValueError) as err:  # no dlib, or no face found
            sex, sexes, why = None, [], str(err)
        else:
            why = "the face encoder could not tell it either"
        if sex is None:
            return claims.not_tested(
                "face_association",
                f"this person's sex is unknown (the first name is not in the name lists; {why})"
                ": give --sex f or m",
            ), 0
        key = normalize_name(name)
        others = [p for p, s in zip(reference.people, sexes, strict=True)
                  if s == sex and normalize_name(p.name) != key]
        if not others:
            return claims.not_tested(
                "face_association", f"no reference person of this person's sex ({sex})"
            ), 0
        embedded = reference.encoded_for(self.classifier)
        method = "mean response" if own.responses is not None else "top-1 hits (closed box)"
        n_own = own.best.shape[0]
        values = []
        for person in others:
            rng = np.random.default_rng([self.seed, name_key(person.name)])
            chosen = np.sort(rng.permutation(len(person.photos))[:n_own])
            answer = self.predict(
                [person.photos[i].image for i in chosen],
                candidates,
                real,
                reference.embeddings[person.name][chosen] if embedded else None,
            )
            values.append(self._face_statistic(answer, real))
        ties = None if own.responses is not None else claims.tie_break_draw(
            self.seed, normalize_name(name), "face_top1"
        )
        result = claims.face_test(
            self._face_statistic(own, real), np.array(values),
            f"{method}; reference people of the same sex", ties,
            reference_set=f"{len(reference.people)} people of a reference folder",
            matching=f"the {len(values)} other reference people of this person's sex, "
            f"{n_own} of their photos each (all of them when they have fewer)",
        )
        return result, result.n_null

    def _lookalike_face_test(
        self,
        name: str,
        sex: str | None,
        sex_source: str,
        good: Sequence[Photo],
        own: Predictions,
        candidates: CandidateSet,
        real: int,
        reference: PublicReference,
    ) -> tuple[TestResult, int]:
        """Against the public reference's lookalikes (:mod:`idia.face_reference`): the k
        nearest reference people of the person's sex, m photos each side."""
        plan = self.lookalike_plan(reference, good, name, sex, sex_source)
        if isinstance(plan, str):
            return claims.not_tested("face_association", plan), 0
        answers = self.lookalike_answers(reference, plan, candidates)
        continuous, hits = answers.statistics(real)
        own_values = self._photo_statistics(own, real)[plan.own_photos]
        if own.responses is not None and continuous is not None:
            values, method, ties = continuous, "mean response", None
        else:
            values, method = hits, "top-1 hits (closed box)"
            ties = claims.tie_break_draw(self.seed, normalize_name(name), "face_top1")
        result = claims.face_test(
            float(own_values.mean()), values, f"{method}; lookalike reference people", ties,
            null=claims.LOOKALIKE_NULL, reference_set=reference.describe(),
            matching=plan.rule(answers.used),
        )
        return result, result.n_null

    def lookalike_plan(
        self,
        reference: PublicReference,
        good: Sequence[Photo],
        name: str,
        sex: str | None,
        sex_source: str,
        exclude: Sequence[str] = (),
    ) -> ReferencePlan | str:
        """Whom a person (their usable photos ``good``) is compared with in the public
        reference (see :meth:`~idia.face_reference.PublicReference.plan`), or why they cannot
        be. Their photos are described by dlib in memory; nothing is kept."""
        try:
            descriptors = describe_images([p.image for p in good]).vectors
        except FaceEncoderError as err:
            return str(err)
        return reference.plan(descriptors, name, sex, sex_source, len(good), self.seed,
                              k=self.lookalikes, exclude=exclude)

    def lookalike_answers(
        self,
        reference: PublicReference,
        plan: ReferencePlan,
        candidates: CandidateSet,
        memo: dict[Path, tuple[np.ndarray | None, np.ndarray] | None] | None = None,
    ) -> ReferenceAnswers:
        """The model's answers (``candidates``) on the photos of the first ``plan.k``
        reference people of ``plan`` whose photos all have a usable face. ``memo``: answers
        per photo kept across calls (an audit asks about the same photos for many people)."""
        memo = {} if memo is None else memo
        used: list[int] = []
        position = 0
        while position < len(plan.people) and len(used) < plan.k:
            batch = range(position, min(len(plan.people), position + plan.k - len(used)))
            needed = [p for i in batch for p in plan.photos[i] if p not in memo]
            memo.update(zip(needed, self._answers_on(reference, needed, candidates),
                            strict=True))
            used += [i for i in batch if all(memo[p] is not None for p in plan.photos[i])]
            position = batch.stop
        rows = [[memo[p] for p in plan.photos[i]] for i in used]
        n_templates, width = len(self.templates), candidates.n_real
        best = np.array([[b for _, b in person] for person in rows], np.int64).reshape(
            len(used), plan.n_photos, n_templates)
        scored = all(c is not None for person in rows for c, _ in person)
        cross = np.array([[c for c, _ in person] for person in rows], np.float64).reshape(
            len(used), plan.n_photos, width) if scored else None
        return ReferenceAnswers(np.array(used, np.int64), cross, best)

    def _answers_on(
        self, reference: PublicReference, photos: Sequence[Path], candidates: CandidateSet,
        chunk: int = 256,
    ) -> list[tuple[np.ndarray | None, np.ndarray] | None]:
        """Per photo: (responses of every real name (R,) or None for a closed box, top answer
        per template (T,)), or None without a usable face. The model's embeddings of public
        photos are kept (:class:`~idia.face_reference.ReferenceEmbeddings`); a closed box is
        asked about each photo."""
        out: list[tuple[np.ndarray | None, np.ndarray] | None] = [None] * len(photos)

        def keep(rows: Sequence[int], answer: Predictions) -> None:
            for at, row in enumerate(rows):
                cross = None if answer.responses is None else answer.responses.cross[at]
                out[row] = (cross, answer.best[at])

        if isinstance(self.classifier, EmbeddedClassifier):
            detector = self.detector
            preparation = (f"{self.crop}/{self.face_margin}/"
                           f"{detector.name if detector is not None else '-'}")
            vectors = reference.embeddings.get(
                self.classifier, reference.photo_keys(photos, preparation), photos,
                self.prepare, self.cache,
            )
            ok = np.flatnonzero(~np.isnan(vectors).any(axis=1))
            for start in range(0, len(ok), chunk):
                rows = ok[start : start + chunk]
                keep(rows, self.predict([], candidates, 0, vectors[rows]))
        else:
            for start in range(0, len(photos), chunk):
                prepared = self.prepare(photos[start : start + chunk])
                ok = [i for i, photo in enumerate(prepared) if photo.status == "ok"]
                if ok:
                    answer = self.predict([prepared[i].image for i in ok], candidates, 0)
                    keep([start + i for i in ok], answer)
        return out

    @staticmethod
    def _photo_statistics(predictions: Predictions, real: int) -> np.ndarray:
        """Per photo: the response of the real name, or its top-1 hits over the templates."""
        if predictions.responses is not None:
            return predictions.responses.cross[:, real].astype(np.float64)
        return (predictions.best == real).sum(axis=1).astype(np.float64)

    @classmethod
    def _face_statistic(cls, predictions: Predictions, real: int) -> float:
        """Mean response of the real name over photos, or its top-1 hits per photo."""
        return float(cls._photo_statistics(predictions, real).mean())

    def _result(
        self,
        name: str,
        candidates: CandidateSet,
        predictions: Predictions | None,
        photos: Sequence[Photo],
        results: dict[Claim, TestResult],
        alpha: float,
        sex: str | None,
        n_reference: int,
        null: NameNull,
    ) -> CheckResult:
        real = candidates.index_of(name)
        templates: list[TemplateResult] = []
        person_score: int | None = None
        if predictions is not None:
            winners, votes = attack.majority_votes(predictions.best)
            person_score = int(attack.score(winners, real))
            templates = [
                TemplateResult(
                    template=t,
                    prediction=None if w < 0 else candidates.names[w],
                    votes=int(v),
                    correct=bool(w == real),
                )
                for t, w, v in zip(self.templates, winners, votes, strict=True)
            ]
        ordered = claims.within_person({claim: results[claim] for claim in claims.CLAIMS})
        return CheckResult(
            name=name,
            model=self.model_label,
            n_photos=0 if predictions is None else int(predictions.best.shape[0]),
            n_candidates=len(candidates),
            score=person_score,
            threshold=self.threshold,
            member=None
            if person_score is None
            else bool(attack.is_member(person_score, self.threshold)),
            chance_member_probability=attack.chance_member_probability(
                len(self.templates), len(candidates), self.threshold
            ),
            templates=templates,
            photos=[photo_record(p) for p in photos],
            seed=candidates.seed,
            candidate_source=candidates.source,
            claims=ordered,
            verdict=claims.strongest_claim(ordered, alpha),
            alpha=alpha,
            sex=sex,
            n_reference_people=n_reference,
            mean_real_rank=None
            if predictions is None or predictions.rank is None
            else float(predictions.rank.mean()),
            mean_real_probability=None
            if predictions is None or predictions.probability is None
            else float(predictions.probability.mean()),
            name_null=null.record(),
            extra={} if self.card is None else {"model_spec": self.model_name},
        )


def create_attack(
    model: str | EmbeddingModel | ClosedBoxModel,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    cache_images: bool = False,
    device: str | None = None,
    precision: str | None = None,
    progress: bool = True,
    **settings: Any,
) -> IdentityInferenceAttack:
    """The attack on a model named by a spec string (see :func:`idia.models.load_model`), or
    on a model object: loads the model and its card (:func:`~idia.models.load_model_and_card`)
    and opens the embedding cache.

    ``cache_dir``: the disk cache's folder (None: ``~/.cache/idia``, see
    :func:`idia.cache.default_cache_dir`); ``use_cache=False``: no disk cache at all.
    ``device``, ``precision``: how a spec string is loaded. ``settings``: the attack's own
    (``templates``, ``num_names``, ``seed``, ``threshold``, ``crop``, ``detector``,
    ``face_margin``, ``decoy_names``, ``name_pool``, ``name_decoys``, ``name_nulls``; see
    :class:`IdentityInferenceAttack`).
    """
    if isinstance(cache_dir, bool):
        raise TypeError("cache_dir is a folder or None (the default); use_cache=False: no cache")
    # the settings (with the attack's defaults) are checked before the slow load
    given = inspect.signature(IdentityInferenceAttack).bind(None, **settings)
    given.apply_defaults()
    check_settings(*(given.arguments[k] for k in ("templates", "num_names", "threshold", "crop",
                                                  "name_decoys")))
    card, warnings = None, []
    if isinstance(model, str):
        model, card, warnings = load_model_and_card(
            model, device=device, precision=precision, progress=progress
        )
    elif precision is not None:
        raise AttackInputError(
            "precision applies to a model given as a spec string; set it on the model "
            "object instead (e.g. OpenCLIPModel(..., precision='fp32'))"
        )
    return IdentityInferenceAttack(
        model,
        card=card,
        cache=EmbeddingCache(cache_dir) if use_cache else None,
        cache_images=cache_images,
        progress=progress,
        warnings=warnings,
        **settings,
    )
