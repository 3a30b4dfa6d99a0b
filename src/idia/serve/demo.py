"""The logic of ``idia web``, testable without a browser: :class:`WebDemo` checks every
input (the page's API accepts any value), loads only the operator's models, runs one attack
per click and turns the outcome into what the page shows (:mod:`idia.serve.markdown`).

Every visitor is treated as hostile (docs/security.md): they pick a model from the operator's
list by its name (checked for every call, the Gradio API included), never a spec; limits are
checked before any work; their uploads are deleted when their check ends
(:mod:`idia.serve.uploads`); nothing derived from their face is kept or written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from idia.attack import chance_member_probability
from idia.engine import IdentityInferenceAttack
from idia.errors import IdiaError
from idia.face_descriptors import FaceEncoderError
from idia.face_reference import (
    DEFAULT_REFERENCE,
    NO_REFERENCE,
    PublicReference,
    UnavailableReference,
)
from idia.faces import FaceDetector, get_detector, usable
from idia.lfw import LFWError
from idia.models import (
    ClosedBoxModel,
    EmbeddingModel,
    MeteredModel,
    ModelLoadError,
    load_model,
)
from idia.models.card import CROP_WORDS, ModelCard, find_card
from idia.name_null import NameNulls
from idia.reference import ReferenceSet
from idia.serve.catalog import is_remote, offered_models
from idia.serve.examples import LabExamples, lab_examples
from idia.serve.markdown import (
    NO_MODEL_HELP,
    NOT_OFFERED,
    SERVER_ERROR,
    WebAnswer,
    explanation_markdown,
    privacy_markdown,
    problem,
    template_table,
    verdict_markdown,
    visitor_text,
)
from idia.serve.uploads import delete_uploads, photo_sizes_problem, uploaded_photos
from idia.zeroshot import EmbeddingZeroShot

log = logging.getLogger(__name__)

RECOMMENDED_PHOTOS = 3
MAX_PHOTOS = 20
MIN_NAMES, MAX_NAMES = 10, 1000  # candidate names a visitor may ask for (or the operator's)
MAX_NAME_CHARS = 200  # a visitor's name goes into every prompt and the shared prompt memory


class WebDemo:
    """The page's logic. ``models``: label -> spec (or ``[NAME=]SPEC`` entries; or a model
    object, from Python), the only models a visitor can pick; each is loaded once, on first
    use, and shared between visitors, and so are its prompt embeddings (:meth:`classifier`:
    the candidate sets of recent checks, at most ``prompt_memory`` prompts, or the latest set
    when it is larger); each run gets its own attack object, so memory does not grow with the
    number of people checked. ``api_key``: for the listed ``http(s)://`` models (never taken
    from the environment here). ``upload_dir``: where uploads live; photos given from inside it
    are deleted after the run.

    ``cards``: label -> :class:`~idia.models.card.ModelCard`; by default each spec's
    card is read from beside its checkpoint. A card sets the default crop; a lab model's card
    (``idia lab``) also brings the lab's people: ready examples (:mod:`idia.serve.examples`)
    and the reference people of the face test, prepared and encoded once and kept in memory.
    Every other model's face test uses ``public_reference`` (the operator's choice, never a
    visitor's: ``lfw``, ``lfw:DIR`` or ``none``): each visitor's lookalikes there, the model's
    embeddings of their photos kept in memory for the next visitors.
    """

    def __init__(
        self,
        models: Mapping[str, str | EmbeddingModel | ClosedBoxModel] | Sequence[str] = (),
        num_names: int = 1000,
        device: str | None = None,
        prompt_memory: int = 100_000,
        api_key: str | None = None,
        upload_dir: Path | None = None,
        cards: Mapping[str, ModelCard] | None = None,
        public_reference: str = DEFAULT_REFERENCE,
    ) -> None:
        self.models = dict(models) if isinstance(models, Mapping) else offered_models(models)
        self.num_names = num_names
        self.device = device
        self.api_key = api_key
        self.upload_dir = upload_dir
        self.prompt_memory = prompt_memory
        self._loaded: dict[str, EmbeddingModel | ClosedBoxModel] = {}
        self._classifiers: dict[str, ClosedBoxModel] = {}
        self._loading: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._lock = threading.Lock()
        self._detector: FaceDetector | None = None
        self.cards: dict[str, ModelCard] = {}
        for label, spec in self.models.items():
            card = (cards or {}).get(label)
            if card is None and isinstance(spec, str):
                card, why = find_card(spec)
                if why:
                    log.warning("warning: %s", why)
            if card is not None:
                self.cards[label] = card
        self.labs: dict[str, LabExamples] = {}
        for label, card in self.cards.items():
            lab, why = lab_examples(card)
            if lab is not None:
                self.labs[label] = lab
            elif card.path_of("audit_run") is not None:
                log.warning("warning: no examples for %s: %s", label, why)
        self._references: dict[str, ReferenceSet] = {}
        self._name_nulls: dict[str, NameNulls] = {}
        self.public_spec = public_reference
        self._public: PublicReference | UnavailableReference | None = None

    def model(self, label: str) -> EmbeddingModel | ClosedBoxModel:
        """The model offered as ``label`` (KeyError for anything else), loaded once."""
        spec = self.models[label]
        if not isinstance(spec, str):
            return spec
        with self._lock:
            loading = self._loading[label]
        with loading:  # one model loading does not hold up visitors of the others
            if label not in self._loaded:
                if is_remote(spec):
                    self._loaded[label] = load_model(spec, api_key=self.api_key or "")
                else:
                    self._loaded[label] = load_model(spec, device=self.device, progress=False)
            return self._loaded[label]

    def classifier(self, label: str) -> ClosedBoxModel:
        """What answers for the model offered as ``label``: an embedding model behind one
        :class:`~idia.zeroshot.EmbeddingZeroShot` for all visitors (prompt embeddings kept in
        its memory and shared, photo embeddings never kept, nothing on disk), or the closed
        box itself."""
        model = self.model(label)
        if not isinstance(model, EmbeddingModel):
            return model
        with self._lock:
            if label not in self._classifiers:
                self._classifiers[label] = EmbeddingZeroShot(
                    model, max_groups=None, max_texts=self.prompt_memory
                )
            return self._classifiers[label]

    def name_nulls(self, label: str) -> NameNulls:
        """The builder of the name tests' decoys for the model offered as ``label``, shared by
        its visitors: the parts of the name pools a check needed stay encoded in memory (they
        are public names, never a visitor's photo)."""
        classifier = self.classifier(label)
        with self._lock:
            if label not in self._name_nulls:
                embedded = isinstance(classifier, EmbeddingZeroShot)
                self._name_nulls[label] = (
                    NameNulls(classifier.text_embeddings, identity=classifier.identity)
                    if embedded else NameNulls(None)
                )
            return self._name_nulls[label]

    def default_crop(self, label: str | None) -> str:
        """How photos are prepared for this model unless the visitor chooses: its card's crop,
        else face crops."""
        card = self.cards.get(label or "")
        return card.crop if card is not None else "face"

    def public_reference(self) -> PublicReference | UnavailableReference | None:
        """The public reference (None with ``none``), loaded once for every model and
        visitor: its face descriptors from idia's cache folder (public photos), computed there
        on the first start. When it cannot be had, the face test says so and the server runs
        on."""
        if self.public_spec.strip().lower() == NO_REFERENCE:
            return None
        with self._lock:
            loading = self._loading["reference:public"]
        with loading:
            if self._public is None:
                try:
                    self._public = PublicReference.load(self.public_spec)
                except (LFWError, FaceEncoderError) as err:
                    log.warning("warning: no public reference for the face test: %s", err)
                    self._public = UnavailableReference(
                        "the public reference people are not available on this server")
            return self._public

    def reference(
        self, label: str, attacker: IdentityInferenceAttack
    ) -> ReferenceSet | PublicReference | UnavailableReference | None:
        """The face test's reference for the model offered as ``label``: a lab model's own
        people (loaded, prepared as the card says and encoded once, then kept in memory: the
        lab's people, synthetic or real ones never shown, never a visitor), else the public
        reference."""
        lab = self.labs.get(label)
        if lab is None:
            return self.public_reference()
        with self._lock:
            loading = self._loading[f"reference:{label}"]
        with loading:
            if label not in self._references:
                self._references[label] = attacker.reference_set(lab.people_dir)
            return self._references[label]

    def prepare(self, label: str, log: Callable[[str], None] = print) -> None:
        """Do before the first visitor what every check of ``label`` needs: load the model,
        encode the prompts of the default candidate names (kept in the :meth:`classifier`'s
        memory) and, for a lab model, prepare and encode the lab's people; ``log`` gets a line
        per stage."""
        classifier = self.classifier(label)
        if not isinstance(classifier, EmbeddingZeroShot):
            return
        attacker = self._attacker(label, self.num_names, 0, self.default_crop(label))
        lab = self.labs.get(label)
        if lab is None:
            start = time.perf_counter()
            public = self.public_reference()
            if isinstance(public, PublicReference):
                log(f"{label}: face test against {public.describe()}, loaded in "
                    f"{time.perf_counter() - start:.1f} s")
        name = lab.examples[0].name if lab and lab.examples else "Jane Doe"
        groups = attacker.prompt_groups(attacker.candidates([name]))
        start = time.perf_counter()
        log(f"{label}: encoding {sum(map(len, groups)):,} prompts ({len(groups)} templates x "
            f"{len(groups[0]):,} candidate names), once for all visitors ...")
        classifier.group_embeddings(groups)
        chance_member_probability(len(groups), len(groups[0]))  # imports SciPy now (2 s)
        log(f"{label}: prompts encoded in {time.perf_counter() - start:.1f} s")
        start = time.perf_counter()
        null = attacker.name_null(name)  # the model's familiarity with its pools' parts
        if lab is not None and null.tested:  # the first example's click encodes nothing
            classifier.group_embeddings(attacker.prompt_groups(null.candidates()))
        log(f"{label}: name parts of the decoy pools of {name!r}"
            + (f" and its {null.n_decoys:,} full-name decoys" if lab and null.tested else "")
            + f" encoded in {time.perf_counter() - start:.1f} s")
        if lab is not None:
            start = time.perf_counter()
            log(f"{label}: preparing the lab's people (the face test's reference) ...")
            references = self.reference(label, attacker)
            assert references is not None
            log(f"{label}: {references.n_photos:,} photos of {len(references.people)} lab people "
                f"encoded in {time.perf_counter() - start:.1f} s; {len(lab.examples)} examples")

    def _attacker(
        self, label: str, num_names: int, seed: int, crop: str
    ) -> IdentityInferenceAttack:
        card = self.cards.get(label)
        # no disk cache: nothing derived from a face is written
        return IdentityInferenceAttack(
            self.classifier(label),
            num_names=num_names,
            seed=seed,
            crop="none" if crop == "none" else "face",
            face_margin=card.face_margin if card is not None else None,
            detector=self.detector() if crop != "none" else "yunet",
            name_nulls=self.name_nulls(label),
            progress=False,
        )

    def detector(self) -> FaceDetector:
        with self._lock:
            if self._detector is None:
                self._detector = get_detector("yunet")
            return self._detector

    def privacy_markdown(self) -> str:
        """Where a visitor's photos go, truthfully, for the models on offer."""
        return privacy_markdown(self.models)

    def run(
        self,
        model: str | None,
        name: str | None,
        photos: Sequence[str | Mapping[str, Any]] | None,
        num_names: Any = None,
        seed: Any = 0,
        crop: Any = None,
    ) -> WebAnswer:
        """One attack, or a message saying what to fix; never raises. Every input is checked
        here (the page's API accepts anything). The uploaded photos are deleted when it ends,
        whatever the outcome. ``crop``: None for the model's default (its card's)."""
        labels = uploaded_photos(photos)
        try:
            return self._run(model, name, labels, num_names, seed, crop)
        finally:
            delete_uploads(list(labels), self.upload_dir)

    def _run(
        self, model: Any, name: Any, labels: dict[str, str], num_names: Any, seed: Any, crop: Any
    ) -> WebAnswer:
        if not self.models:
            return problem(NO_MODEL_HELP)
        label = model.strip() if isinstance(model, str) else ""
        if label not in self.models:
            return problem(NOT_OFFERED)
        name = name.strip() if isinstance(name, str) else ""
        if len(name) > MAX_NAME_CHARS:
            return problem(f"A name has at most {MAX_NAME_CHARS} characters.")
        most = max(MAX_NAMES, self.num_names)
        try:
            n_names = int(num_names or self.num_names)
            seed = int(seed or 0)
        except (TypeError, ValueError, OverflowError):
            n_names = seed = -1
        if not MIN_NAMES <= n_names <= most or not 0 <= seed < 2**32:
            return problem(
                f"Settings: the number of candidate names must be {MIN_NAMES} to {most}, the "
                "seed a whole number from 0."
            )
        if crop is None:
            crop = self.default_crop(label)
        if crop not in ("face", "none"):
            return problem("Settings: choose 'crop the face' or 'whole photo'.")
        photos = list(labels)
        if not name:
            return problem("Type the person's full name (as it would appear in a caption).")
        if not photos:
            return problem(
                "Too few photos: upload at least one photo of the person (several are better; "
                "drag and drop them all at once)."
            )
        if len(photos) > MAX_PHOTOS:
            return problem(f"Too many photos: {len(photos)}; upload at most {MAX_PHOTOS}.")
        return self._guarded(label, labels, name, photos, n_names, seed, crop)

    def run_example(self, model: Any, name: Any) -> WebAnswer:
        """One of the page's lab examples: the lab person's held-out photos, from the lab
        folder (never an upload), checked as an upload of them would be, with what the lab's
        audit found. Only the examples on the page can be asked for."""
        label = model.strip() if isinstance(model, str) else ""
        lab = self.labs.get(label)
        example = lab.find(name) if lab is not None and isinstance(name, str) else None
        if lab is None or example is None:
            return problem("Choose one of the examples on this page.")
        labels = {str(path): f"{path.parent.name}/{path.name}" for path in example.photos}
        return self._guarded(
            label, labels, example.name, list(labels), self.num_names, 0,
            self.default_crop(label), [example.note(lab.n_people)],
        )

    def _guarded(self, label: str, labels: dict[str, str], *args: Any) -> WebAnswer:
        """:meth:`_attack`, its failures turned into messages for a visitor."""
        try:
            return self._attack(label, *args, labels=labels)
        except ModelLoadError:  # the model, or its API, failed: the operator's problem
            log.exception("web: model %s failed", label)
            return problem(f"The model {label} is not available right now; try again later.")
        except IdiaError as err:
            return problem(visitor_text(str(err), labels))
        except Exception:  # a visitor gets a message, the log gets the traceback
            log.exception("web attack failed")
            return problem(SERVER_ERROR)

    def _attack(
        self,
        label: str,
        name: str,
        photos: list[str],
        num_names: int,
        seed: int,
        crop: str,
        notes: Sequence[str] = (),
        *,
        labels: dict[str, str],
    ) -> WebAnswer:
        oversized = photo_sizes_problem(photos, labels)
        if oversized:
            return problem(oversized)
        model = self.model(label)
        attacker = self._attacker(label, num_names, seed, crop)
        reference = self.reference(label, attacker)
        prepared = attacker.prepare(photos)
        skipped = [
            f"{labels[p.path]}: {visitor_text(p.reason, labels)}"
            for p in prepared
            if p.status != "ok"
        ]
        good = usable(prepared)
        if not good:
            what = "No face found" if crop != "none" else "No usable photo"
            return problem(
                f"{what} in the {len(prepared)} photo(s) ({'; '.join(skipped)}). Use photos "
                "where the face is clearly visible, or choose 'whole photo' under Settings."
            )
        metered = model if isinstance(model, MeteredModel) else None  # a model behind an API
        usage_before = metered.usage() if metered is not None else None
        result = attacker.assess(prepared, name, reference=reference)
        notes = [*notes, *(f"Skipped {s}" for s in skipped)]
        card = self.cards.get(label)
        if card is not None and crop != card.crop:
            notes.append(
                f"{label} expects {CROP_WORDS[card.crop]} (its model card); you chose "
                f"{CROP_WORDS[crop]}, so its answers may be less reliable."
            )
        if result.n_reference_people:
            face = result.claims["face_association"]
            others = (f"{result.n_reference_people} other people of this model's lab"
                      if label in self.labs else
                      f"the {result.n_reference_people:,} people of a public face set (Labeled "
                      "Faces in the Wild) who look most like these photos (same sex; chosen by "
                      "a face-recognition encoder in memory, nothing kept)")
            notes.append(
                f"Face test: the name on these photos against the same name on the photos of "
                f"{others}; the smallest p-value it can give is {face.p_floor:.2g}."
            )
        if len(good) < RECOMMENDED_PHOTOS:
            notes.append(
                f"Only {len(good)} usable photo(s): the majority vote is more reliable with "
                f"{RECOMMENDED_PHOTOS} or more."
            )
        if metered is not None and usage_before is not None:
            usage_after = metered.usage()
            queries = usage_after["queries"] - usage_before["queries"]
            duplicated = usage_after.get("possibly_duplicated_queries", 0) - usage_before.get(
                "possibly_duplicated_queries", 0
            )
            notes.append(
                f"Your face crops were sent to {label}, a model behind an API: {queries} "
                "queries (photo x template)"
                + (f", and {duplicated} possibly answered twice (retried)." if duplicated else ".")
            )
        return WebAnswer(
            verdict=verdict_markdown(result, notes),
            crops=[(p.image, labels[p.path]) for p in good],
            table=template_table(result),
            explanation=explanation_markdown(result),
        )
