"""``idia web``: a page where anyone can ask "does this model know my face?".

The paper offered this as a Hugging Face Space; here it runs offline on the models the
operator lists (a local checkpoint, the lab's trained model, or a closed-box API), shows the
evidence (the face crops the model saw, the name each template picked) and says in plain
words what the verdict means and what it does not.

Every visitor is treated as hostile (docs/security.md): they pick a model from the operator's
list by its name (checked on the server for every call, the Gradio API included), never a
spec; they see no filesystem path and no unbounded error text; their uploads live in this
process's private temporary folder and are deleted when their check ends; crops are shown
inline and never written to disk; nothing derived from their face is cached.

:class:`WebDemo` holds the logic (testable without a browser); :func:`create_web_app` lays it
out with Gradio; :func:`launch_web` serves it.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import hmac
import html
import io
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from idia.attack import chance_member_probability
from idia.engine import AttackInputError, CheckResult, IdentityInferenceAttack
from idia.faces import IMAGE_FORMATS, FaceDetector, get_detector, usable
from idia.models import ClosedBoxModel, EmbeddingModel, ModelLoadError, load_model, parse_spec
from idia.models.card import CROP_WORDS, ModelCard, find_card
from idia.reference import ReferenceSet
from idia.serve.catalog import offered_models
from idia.serve.examples import LabExamples, lab_examples
from idia.zeroshot import EmbeddingZeroShot

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no calls home

log = logging.getLogger(__name__)

RECOMMENDED_PHOTOS = 3
MAX_PHOTOS = 20
MAX_PHOTO_PIXELS = 50_000_000
MAX_CHECK_PIXELS = 250_000_000  # all photos of one check; one check runs at a time
MIN_NAMES, MAX_NAMES = 10, 1000  # candidate names a visitor may ask for (or the operator's)
MAX_MESSAGE_CHARS = 300
MAX_NAME_CHARS = 200  # a visitor's name goes into every prompt and the shared prompt memory
THUMBNAIL_SIDE = 256
MIN_THUMBNAIL_SIDE = 96
UNCHECKED_UPLOAD_AGE_S = 600  # uploads never checked: Gradio deletes them after this...
UNCHECKED_UPLOAD_SWEEP_S = 60  # ...looking every this many seconds
UPLOAD_DIR_PREFIX = "idia-web-"
EMPTY_FOLDER_AGE_S = 60
TABLE_HEADERS = ["template", "name the model picked", "photos agreeing", "your name?"]

NO_MODEL_HELP = (
    "No model to attack yet. Start the page with `idia web --model SPEC` (for example "
    "`open_clip:ViT-B-32:laion400m_e32`, a local `open_clip:config.json:checkpoint.pt`, or a "
    "served model `http://127.0.0.1:8000`), or train the lab model with `idia lab` and start "
    "`idia web` in the same folder (or pass `--lab-dir`)."
)
NOT_OFFERED = "Choose one of the models offered on this page."
SERVER_ERROR = "Something went wrong on the server; the log has the details."

_PATH = re.compile(r"(?<![\w.])(?:[A-Za-z]:)?[/\\][^\s'\"<>:,;()]*")

_upload_dir: Path | None = None


def private_upload_dir(base: Path | None = None) -> Path:
    """This process's own folder for Gradio's uploads and cache (``GRADIO_TEMP_DIR``, mode
    0700), removed at exit; folders that crashed runs left behind are removed first. Call it
    before any Gradio component is created: they read the folder when built."""
    global _upload_dir
    if _upload_dir is None or not _upload_dir.is_dir():
        base = Path(base or tempfile.gettempdir())
        remove_stale_upload_dirs(base)
        _upload_dir = Path(tempfile.mkdtemp(prefix=f"{UPLOAD_DIR_PREFIX}{os.getpid()}-", dir=base))
        atexit.register(shutil.rmtree, _upload_dir, True)
    os.environ["GRADIO_TEMP_DIR"] = str(_upload_dir)
    return _upload_dir


def remove_stale_upload_dirs(base: Path) -> list[Path]:
    """Remove the upload folders of ``idia web`` processes that no longer run (a crash or a
    kill skips the removal at exit); only folders of this user, never a symlink."""
    removed = []
    for folder in base.glob(f"{UPLOAD_DIR_PREFIX}*"):
        pid = folder.name.removeprefix(UPLOAD_DIR_PREFIX).partition("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _running(int(pid)):
            continue
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def delete_uploads(paths: Sequence[str], upload_dir: Path | None) -> None:
    """Delete uploaded files, and their folders once empty; only inside ``upload_dir`` (a
    caller's own files, passed from Python, are never touched). Empty folders left by
    Gradio's cleanup of uploads never checked go too: their names are digests of photos."""
    if upload_dir is None:
        return
    root = upload_dir.resolve()
    for name in paths:
        path = Path(name).resolve()
        if not path.is_relative_to(root) or path == root:
            continue
        path.unlink(missing_ok=True)
        folder = path.parent
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                break
            folder = folder.parent
    settled = time.time() - EMPTY_FOLDER_AGE_S  # a newer one may be about to get its upload
    for folder in root.iterdir():
        with contextlib.suppress(OSError):
            if folder.is_dir() and not folder.is_symlink() and folder.stat().st_mtime < settled:
                folder.rmdir()  # fails, harmlessly, when not empty


def uploaded_photos(photos: Sequence[str | Mapping[str, Any]] | None) -> dict[str, str]:
    """Path -> the name to show, for photos given as paths (from Python) or as Gradio's file
    records (``{"path": ..., "orig_name": ...}``, from the page)."""
    found = {}
    for photo in photos or []:
        if isinstance(photo, Mapping):
            path = str(photo.get("path") or "")
            shown = Path(str(photo.get("orig_name") or path)).name
        else:
            path, shown = str(photo), Path(str(photo)).name
        if path:
            found[path] = shown
    return found


def visitor_text(message: str, labels: Mapping[str, str] | None = None) -> str:
    """An error message fit for a visitor: uploaded paths shown as their file names, any other
    path hidden, at most MAX_MESSAGE_CHARS characters."""
    for path, label in (labels or {}).items():
        message = message.replace(path, label)
    message = _PATH.sub("[path]", message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message


def read_logins(lines: Sequence[str]) -> dict[str, str]:
    """``user:password`` lines (blank lines and ``#`` comments skipped) -> {user: password}."""
    logins = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        user, sep, password = line.strip().partition(":")
        if not sep or not user or not password:
            raise ValueError(f"line {number} is not user:password")
        logins[user] = password
    return logins


def login_check(logins: Mapping[str, str]) -> Callable[[str, str], bool]:
    """Gradio's ``auth`` callable: compares SHA-256 digests in constant time, and does as much
    work for an unknown user as for a known one."""
    digests = {
        user: hashlib.sha256(password.encode()).digest() for user, password in logins.items()
    }
    nobody = hashlib.sha256(os.urandom(16)).digest()

    def check(user: str, password: str) -> bool:
        given = hashlib.sha256((password or "").encode()).digest()
        return hmac.compare_digest(digests.get(user, nobody), given) and user in digests

    return check


class PromptMemory:
    """Prompt embeddings in memory (least recently used dropped beyond ``max_texts``), shared by
    all visitors: most decoy prompts repeat from one check to the next. Image embeddings are
    never kept, so nothing derived from a visitor's face outlives their request."""

    def __init__(self, max_texts: int = 100_000) -> None:
        self.max_texts = max_texts
        self._vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, model: str, kind: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        if kind != "text":
            return {}
        with self._lock:
            found = {}
            for key in keys:
                vector = self._vectors.get((model, key))
                if vector is not None:
                    self._vectors.move_to_end((model, key))
                    found[key] = vector
            return found

    def put(self, model: str, kind: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        if kind != "text":
            return
        with self._lock:
            for key, vector in zip(keys, vectors, strict=True):
                self._vectors[(model, key)] = vector
            while len(self._vectors) > self.max_texts:
                self._vectors.popitem(last=False)

    def __len__(self) -> int:
        return len(self._vectors)

    def __bool__(self) -> bool:  # an empty memory is still a cache to fill
        return True


@dataclass
class WebAnswer:
    """What the page shows after a click: verdict (or the problem), crops, table, explanation."""

    verdict: str
    crops: list[tuple[Image.Image, str]]
    table: pd.DataFrame
    explanation: str

    def outputs(self) -> tuple[str, str, pd.DataFrame, str, None]:
        """For the page: the crops inline (never written to disk) and the photo upload
        emptied, since the uploads are deleted."""
        return self.verdict, crops_html(self.crops), self.table, self.explanation, None


def problem(message: str) -> WebAnswer:
    return WebAnswer(f"### ⚠️ {message}", [], pd.DataFrame(columns=TABLE_HEADERS), "")


def crops_html(crops: Sequence[tuple[Image.Image, str]]) -> str:
    """Thumbnails of the crops as data: URLs, so they reach the browser without a file."""
    figures = []
    for image, label in crops:
        thumbnail = image.copy()
        thumbnail.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        if max(thumbnail.size) < MIN_THUMBNAIL_SIDE:  # a tiny photo (the lab's), shown larger
            scale = MIN_THUMBNAIL_SIDE / max(thumbnail.size)
            thumbnail = thumbnail.resize(
                (round(thumbnail.width * scale), round(thumbnail.height * scale)),
                Image.Resampling.NEAREST,
            )
        buffer = io.BytesIO()
        thumbnail.save(buffer, format="PNG")
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        caption = html.escape(label)
        figures.append(
            f'<figure style="margin:0"><img src="data:image/png;base64,{data}" alt="{caption}" '
            f'style="max-width:{THUMBNAIL_SIDE}px"><figcaption>{caption}</figcaption></figure>'
        )
    return (
        '<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(figures) + "</div>"
        if figures
        else ""
    )


def is_remote(spec: str | EmbeddingModel | ClosedBoxModel) -> bool:
    return isinstance(spec, str) and parse_spec(spec)[0] == "remote"


class WebDemo:
    """The page's logic. ``models``: display name -> spec (or ``[NAME=]SPEC`` entries; or a
    model object, from Python), the only models a visitor can pick; each is loaded once, on
    first use, and shared between visitors, and so are prompt embeddings (:class:`PromptMemory`,
    bounded); each run gets its own attack object, so memory does not grow with the number of
    people checked. ``api_key``: for the listed ``http(s)://`` models (never taken from the
    environment here). ``upload_dir``: where uploads live; photos given from inside it are
    deleted after the run.

    ``cards``: display name -> :class:`~idia.models.card.ModelCard`; by default each spec's
    card is read from beside its checkpoint. A card sets the default crop; a lab model's card
    (``idia lab``) also brings the lab's people: ready examples (:mod:`idia.serve.examples`)
    and the reference people of the face test, prepared and encoded once and kept in memory.
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
    ) -> None:
        self.models = dict(models) if isinstance(models, Mapping) else offered_models(models)
        self.num_names = num_names
        self.device = device
        self.api_key = api_key
        self.upload_dir = upload_dir
        self.prompts = PromptMemory(prompt_memory)
        self._loaded: dict[str, EmbeddingModel | ClosedBoxModel] = {}
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

    def default_crop(self, label: str | None) -> str:
        """How photos are prepared for this model unless the visitor chooses: its card's crop,
        else face crops."""
        card = self.cards.get(label or "")
        return card.crop if card is not None else "face"

    def reference(self, label: str, attacker: IdentityInferenceAttack) -> ReferenceSet | None:
        """The lab's people, the face test's reference for a lab model (None for others):
        loaded, prepared as the card says and encoded once, then kept in memory. They are the
        lab's synthetic people, never a visitor."""
        lab = self.labs.get(label)
        if lab is None:
            return None
        with self._lock:
            loading = self._loading[f"reference:{label}"]
        with loading:
            if label not in self._references:
                self._references[label] = attacker.reference_set(lab.people_dir)
            return self._references[label]

    def prepare(self, label: str, log: Callable[[str], None] = print) -> None:
        """Do before the first visitor what every check of ``label`` needs: load the model,
        encode the prompts of the default candidate names (kept in :attr:`prompts`) and, for
        a lab model, prepare and encode the lab's people; ``log`` gets a line per stage."""
        model = self.model(label)
        if not isinstance(model, EmbeddingModel):
            return
        attacker = self._attacker(label, model, self.num_names, 0, self.default_crop(label))
        lab = self.labs.get(label)
        groups = attacker.prompt_groups(
            attacker.candidates([lab.examples[0].name if lab else "Jane Doe"])
        )
        start = time.perf_counter()
        log(f"{label}: encoding {sum(map(len, groups)):,} prompts ({len(groups)} templates x "
            f"{len(groups[0]):,} candidate names), once for all visitors ...")
        attacker.classifier.group_embeddings(groups)  # type: ignore[attr-defined]
        chance_member_probability(len(groups), len(groups[0]))  # imports SciPy now (2 s)
        log(f"{label}: prompts encoded in {time.perf_counter() - start:.1f} s")
        if lab is not None:
            start = time.perf_counter()
            log(f"{label}: preparing the lab's people (the face test's reference) ...")
            references = self.reference(label, attacker)
            assert references is not None
            log(f"{label}: {references.n_photos:,} photos of {len(references.people)} lab people "
                f"encoded in {time.perf_counter() - start:.1f} s; {len(lab.examples)} examples")

    def _attacker(
        self,
        label: str,
        model: EmbeddingModel | ClosedBoxModel,
        num_names: int,
        seed: int,
        crop: str,
    ) -> IdentityInferenceAttack:
        card = self.cards.get(label)
        return IdentityInferenceAttack(
            EmbeddingZeroShot(model, self.prompts) if isinstance(model, EmbeddingModel) else model,
            num_names=num_names,
            seed=seed,
            crop="none" if crop == "none" else "face",
            face_margin=card.face_margin if card is not None else None,
            detector=self.detector() if crop != "none" else "yunet",
            cache_dir=False,  # no disk cache: nothing derived from a face is written
            progress=False,
        )

    def detector(self) -> FaceDetector:
        with self._lock:
            if self._detector is None:
                self._detector = get_detector("yunet")
            return self._detector

    def privacy_markdown(self) -> str:
        """Where a visitor's photos go, truthfully, for the models on offer."""
        minutes = (UNCHECKED_UPLOAD_AGE_S + UNCHECKED_UPLOAD_SWEEP_S) // 60
        text = (
            "**Where your photos go.** They are uploaded to this server's private temporary "
            "folder, used for your check only and deleted when it ends (photos you upload but "
            f"never check: within {minutes} minutes). The face crops the model sees stay in the "
            "server's memory during the check; nothing derived from your face is written to "
            "disk or kept afterwards."
        )
        remote = [label for label, spec in self.models.items() if is_remote(spec)]
        if remote:
            local = len(remote) < len(self.models)
            text += (
                f" **{', '.join(remote)}** {'is a model' if len(remote) == 1 else 'are models'} "
                "behind an API: with it, your face crops and the candidate names are sent to "
                "that API, whose operator may keep them"
                + ("; with the other models nothing leaves this server." if local else ".")
            )
        return text

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
        except (AttackInputError, ValueError) as err:
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
        attacker = self._attacker(label, model, num_names, seed, crop)
        reference = self.reference(label, attacker) if label in self.labs else None
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
        usage = getattr(model, "usage", None)  # a model behind an API counts its queries
        usage_before = usage() if callable(usage) else None
        result = attacker.assess(prepared, name, reference=reference)
        notes = [*notes, *(f"Skipped {s}" for s in skipped)]
        card = self.cards.get(label)
        if card is not None and crop != card.crop:
            notes.append(
                f"{label} expects {CROP_WORDS[card.crop]} (its model card); you chose "
                f"{CROP_WORDS[crop]}, so its answers may be less reliable."
            )
        if result.n_reference_people:
            notes.append(
                f"Face test: the name on these photos against the same name on the photos of "
                f"{result.n_reference_people} other people of this model's lab."
            )
        if len(good) < RECOMMENDED_PHOTOS:
            notes.append(
                f"Only {len(good)} usable photo(s): the majority vote is more reliable with "
                f"{RECOMMENDED_PHOTOS} or more."
            )
        if usage_before is not None:
            usage_after = usage()
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
            table=pd.DataFrame(
                [
                    [
                        t.template,
                        t.prediction or "(tie: no prediction)",
                        f"{t.votes}/{result.n_photos}",
                        "yes" if t.correct else "no",
                    ]
                    for t in result.templates
                ],
                columns=TABLE_HEADERS,
            ),
            explanation=explanation_markdown(result),
        )


def photo_sizes_problem(photos: Sequence[str], labels: Mapping[str, str]) -> str | None:
    """Refuse photos too large to decode, from their headers (nothing is decoded here)."""
    total = 0
    for path in photos:
        try:
            with Image.open(path, formats=IMAGE_FORMATS) as image:
                pixels = image.width * image.height
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            continue  # unreadable: prepare() reports it with its reason
        if pixels > MAX_PHOTO_PIXELS:
            return (
                f"{labels[path]} has {pixels / 1e6:.0f} million pixels; the limit is "
                f"{MAX_PHOTO_PIXELS / 1e6:.0f} million a photo."
            )
        total += pixels
    if total > MAX_CHECK_PIXELS:
        return (
            f"The photos have {total / 1e6:.0f} million pixels in all; the limit is "
            f"{MAX_CHECK_PIXELS / 1e6:.0f} million a check. Upload fewer or smaller photos."
        )
    return None


HEADLINES = {
    "face_association": "## YES: the model links this face to the name {name}",
    "name_familiarity": "## The model has seen the name {name}",
    "text_only": "## The model's text encoder knows the name {name}",
    None: "## NO: no evidence that the model knows {name}",
}
CLAIM_ROWS = {
    "name_familiarity": "has seen this name (your photos vs random names)",
    "face_association": "links your face to your name (your photos vs other people's)",
    "text_only": "knows the name as text (no photo used)",
}


def verdict_markdown(result: CheckResult, notes: Sequence[str] = ()) -> str:
    n_templates = len(result.templates)
    rows = []
    for claim, test in result.claims.items():
        if test.tested:
            mark = " **(holds)**" if test.holds(result.alpha) else ""
            cell = f"p = {test.p_value:.3g}{mark}"
        else:
            cell = f"not tested: {test.reason}"
        rows.append(f"| {CLAIM_ROWS[claim]} | {cell} |")
    parts = [
        HEADLINES[result.verdict].format(name=result.name),
        "| the model ... | evidence |\n|---|---|\n" + "\n".join(rows),
        f"Paper's rule: **{result.score} of {n_templates}** templates picked the name "
        f"(threshold {result.threshold}: {'member' if result.member else 'not member'}), from "
        f"{result.n_photos} photo(s) and {result.n_candidates} candidate names. A claim holds "
        f"when its p-value, adjusted over your claims (Benjamini-Hochberg), is at most "
        f"{result.alpha:g}.",
    ]
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)


def explanation_markdown(result: CheckResult) -> str:
    k, t = result.n_candidates, len(result.templates)
    how = (
        f"The model was shown your photos and asked, in {t} different phrasings (templates, "
        f'like "a photo of NAME"), which of {k} names fits best: yours and {k - 1} random '
        "decoy names. Two questions are tested apart. *Has the model seen your name?* Your "
        "name is compared with the random names on your photos: a name the model never saw "
        "scores like any of them. *Does it link your face to your name?* Your name on your "
        "photos is compared with your name on other people's photos: a model that knows the "
        "name only as text responds to it on every face alike."
    )
    if result.verdict == "face_association":
        means = (
            "**What it means.** The model responds to your name on your face more than on "
            "other people's faces. The likeliest explanation is that photos of you, captioned "
            "with your name, were in its training data: the privacy leak the paper *Does CLIP "
            "Know My Face?* measures."
        )
    elif result.verdict is not None:
        means = (
            "**What it means.** The model treats your name differently from names it never "
            "saw: the name (or a namesake's) was most likely in its training captions. That "
            "alone does not show that it learned your face"
            + (
                "; the face test did not find that it did."
                if result.claims["face_association"].tested
                else "; the face test needs photos of other people and was not run here."
            )
        )
    else:
        means = (
            "**What it means.** Neither your name nor the link between your face and your name "
            "stands out from random names and other people's faces."
        )
    not_means = (
        "**What it does not mean.** A YES is statistical evidence, not proof: it does not say "
        "which photos were used, and a famous namesake or a lookalike can produce it. A NO is "
        "not proof of absence: people in only a few training images are often not detected, "
        "and other photos or another spelling may answer otherwise. Either way it is about this "
        "model only."
    )
    return "\n\n".join([f"**How the test works.** {how}", means, not_means])


def create_web_app(demo: WebDemo, default_model: str | None = None) -> Any:
    """The Gradio page for ``demo`` (a ``gradio.Blocks``). ``default_model``: the name of the
    model chosen at first (default: the first offered). Gradio's uploads and cache go to this
    process's private folder (:func:`private_upload_dir`), whose uploads ``demo`` deletes."""
    demo.upload_dir = private_upload_dir()
    import gradio as gr

    choices = list(demo.models)
    if default_model is not None and default_model not in demo.models:
        raise ValueError(f"the default model {default_model!r} is not among the offered ones")
    default_model = default_model or (choices[0] if choices else None)
    with gr.Blocks(
        title="Does this model know my face?",
        analytics_enabled=False,
        delete_cache=(UNCHECKED_UPLOAD_SWEEP_S, UNCHECKED_UPLOAD_AGE_S),
    ) as page:
        gr.Markdown(
            "# Does this model know my face?\n"
            "The identity inference attack from *Does CLIP Know My Face?*: upload a few photos "
            "of a person, type their name, and find out whether a CLIP-style model has learned "
            "to connect the two.\n\n" + demo.privacy_markdown(),
            elem_id="privacy",
        )
        # Built first and placed below: the examples at the top need them.
        model = gr.Dropdown(
            choices=choices,
            value=default_model,
            allow_custom_value=False,
            label="Model",
            info="The models this server offers.",
            elem_id="model",
            render=False,
        )
        name = gr.Textbox(
            label="Full name", placeholder="e.g. Ada Lovelace", elem_id="name", render=False
        )
        photos = gr.File(
            file_count="multiple",
            file_types=["image"],
            type="filepath",
            label="Photos of the person (drag and drop several at once)",
            elem_id="photos",
            render=False,
        )
        verdict = gr.Markdown(elem_id="verdict", render=False)
        crops = gr.HTML(label="Face crops the model saw", elem_id="crops", render=False)
        table = gr.Dataframe(
            headers=TABLE_HEADERS,
            interactive=False,
            wrap=True,
            label="The name each template picked",
            elem_id="templates",
            render=False,
        )
        explanation = gr.Markdown(elem_id="explanation", render=False)
        for label, lab in demo.labs.items():
            gr.Markdown(examples_markdown(label, lab), elem_id="examples-help")
            gr.Examples(
                examples=[[label, example.name] for example in lab.examples],
                inputs=[model, name],
                outputs=[verdict, crops, table, explanation, photos],
                fn=lambda chosen, person: demo.run_example(chosen, person).outputs(),
                run_on_click=True,
                cache_examples=False,
                example_labels=[example.label for example in lab.examples],
                label=f"Examples: people of {label}'s lab, and what its audit found",
                elem_id="examples",
                api_name="example",
            )
        with gr.Row():
            with gr.Column(scale=1):
                model.render()
                if not choices:
                    gr.Markdown(NO_MODEL_HELP, elem_id="model-help")
                name.render()
                photos.render()
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    num_names = gr.Slider(
                        MIN_NAMES,
                        max(MAX_NAMES, demo.num_names),
                        value=demo.num_names,
                        step=10,
                        label="Candidate names",
                    )
                    seed = gr.Number(value=0, precision=0, label="Seed for the decoy names")
                    crop = gr.Radio(
                        [("crop the face", "face"), ("whole photo", "none")],
                        value=demo.default_crop(default_model),
                        label="What the model sees",
                        info="The default is what the model's card says its photos are.",
                        elem_id="crop",
                    )
                run = gr.Button("Run the attack", variant="primary", elem_id="run")
            with gr.Column(scale=1):
                verdict.render()
                crops.render()
                table.render()
        explanation.render()
        model.change(
            lambda chosen: gr.Radio(value=demo.default_crop(chosen)),
            inputs=[model],
            outputs=[crop],
            api_visibility="private",
        )

        def attack(*inputs: Any) -> tuple:
            return demo.run(*inputs).outputs()

        run.click(
            attack,
            inputs=[model, name, photos, num_names, seed, crop],
            outputs=[verdict, crops, table, explanation, photos],
            api_name="attack",
            # Gradio's own preprocessing would leave an empty temporary file per photo behind;
            # WebDemo.run takes the raw values and checks every one of them itself.
            preprocess=False,
        )
    return page


def examples_markdown(label: str, lab: LabExamples) -> str:
    """What the examples are, above them."""
    return (
        f"**Try it with the lab's people.** {label} was trained by `idia lab` on synthetic "
        "people: members were in its training captions 1 to 75 times, the others never. One "
        "click checks a person's held-out photos (photos the model never saw), exactly as if "
        "you dropped them below; the face test compares them with the lab's other people. "
        + lab.overview
    )


def launch_web(
    page: Any,
    host: str = "127.0.0.1",
    port: int = 7860,
    block: bool = True,
    auth: Callable[[str, str], bool] | None = None,
) -> tuple[Any, str, str]:
    """Serve the page offline (system fonts, no analytics, no share link, no SSR), behind a
    login when ``auth`` is given. Blocking, SIGTERM exits like Ctrl+C, so the upload folder is
    removed at exit either way."""
    import gradio as gr

    if block and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    theme = gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "monospace"],
    )
    return page.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        theme=theme,
        max_file_size="50mb",
        auth=auth,
        auth_message="This page is for invited people only." if auth else None,
        prevent_thread_lock=not block,
        quiet=not block,
    )
