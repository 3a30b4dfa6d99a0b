"""``idia web``: a page where anyone can ask "does this model know my face?".

The paper offered this as a Hugging Face Space; here it runs offline on any model idia can
load (a local checkpoint, the lab's trained model, or a closed-box API), shows the evidence
(the face crops the model saw, the name each template picked) and says in plain words what
the verdict means and what it does not.

:class:`WebDemo` holds the logic (testable without a browser); :func:`create_web_app` lays it
out with Gradio; :func:`launch_web` serves it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from idia.engine import AttackInputError, CheckResult, IdentityInferenceAttack
from idia.faces import FaceDetector, get_detector, usable
from idia.models import ClosedBoxModel, EmbeddingModel, ModelLoadError, load_model
from idia.zeroshot import EmbeddingZeroShot

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # offline: no calls home

log = logging.getLogger(__name__)

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors", ".bin")
RECOMMENDED_PHOTOS = 3
TABLE_HEADERS = ["template", "name the model picked", "photos agreeing", "your name?"]
_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".cache"}
_MAX_DIRS_SCANNED = 5_000

NO_MODEL_HELP = (
    "No model to attack yet. Start the page with `idia web --model SPEC` (for example "
    "`open_clip:ViT-B-32:laion400m_e32`, a local `open_clip:config.json:checkpoint.pt`, or a "
    "served model `http://127.0.0.1:8000`), or train the lab model with `idia lab` and start "
    "`idia web` in the same folder (or pass `--lab-dir`). You can also type a spec above."
)


def find_local_models(roots: Sequence[Path], max_depth: int = 4) -> list[str]:
    """open_clip specs for model-config JSONs with a checkpoint beside them (or in a
    ``checkpoints/`` folder beside them), as ``idia lab`` and ``idia train`` write them;
    newest checkpoint first. The search is bounded in depth and folders visited."""
    found: dict[str, float] = {}
    visited = 0
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        base_depth = len(root.resolve().parts)
        for folder, dirs, files in os.walk(root.resolve()):
            visited += 1
            if visited > _MAX_DIRS_SCANNED:
                break
            depth = len(Path(folder).parts) - base_depth
            dirs[:] = (
                []
                if depth >= max_depth
                else sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
            )
            for name in files:
                if name.endswith(".json") and _is_model_config(Path(folder) / name):
                    checkpoint = _newest_checkpoint(Path(folder))
                    if checkpoint is not None:
                        spec = f"open_clip:{Path(folder) / name}:{checkpoint}"
                        found[spec] = checkpoint.stat().st_mtime
    return sorted(found, key=lambda spec: found[spec], reverse=True)


def _is_model_config(path: Path) -> bool:
    try:
        if path.stat().st_size > 100_000:
            return False
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"embed_dim", "vision_cfg", "text_cfg"} <= data.keys()


def _newest_checkpoint(folder: Path) -> Path | None:
    candidates = [
        p
        for where in (folder, folder / "checkpoints")
        if where.is_dir()
        for p in where.iterdir()
        if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


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

    def outputs(self) -> tuple[str, list[tuple[Image.Image, str]], pd.DataFrame, str]:
        return self.verdict, self.crops, self.table, self.explanation


def problem(message: str) -> WebAnswer:
    return WebAnswer(f"### ⚠️ {message}", [], pd.DataFrame(columns=TABLE_HEADERS), "")


class WebDemo:
    """The page's logic: models are loaded once per spec and shared between visitors, and so
    are prompt embeddings (:class:`PromptMemory`, bounded); each run gets its own attack
    object, so memory does not grow with the number of people checked."""

    def __init__(
        self,
        models: Sequence[str] = (),
        num_names: int = 1000,
        device: str | None = None,
        prompt_memory: int = 100_000,
    ) -> None:
        self.models = list(dict.fromkeys(models))
        self.num_names = num_names
        self.device = device
        self.prompts = PromptMemory(prompt_memory)
        self._loaded: dict[str, EmbeddingModel | ClosedBoxModel] = {}
        self._lock = threading.Lock()
        self._detector: FaceDetector | None = None

    def model(self, spec: str) -> EmbeddingModel | ClosedBoxModel:
        with self._lock:
            if spec not in self._loaded:
                self._loaded[spec] = load_model(spec, device=self.device, progress=False)
            return self._loaded[spec]

    def detector(self) -> FaceDetector:
        with self._lock:
            if self._detector is None:
                self._detector = get_detector("yunet")
            return self._detector

    def run(
        self,
        spec: str | None,
        name: str | None,
        photos: Sequence[str] | None,
        num_names: float | None = None,
        seed: float | None = 0,
        crop: str = "face",
    ) -> WebAnswer:
        """One attack, or a message saying what to fix; never raises."""
        name = (name or "").strip()
        if not spec or not spec.strip():
            return problem(NO_MODEL_HELP)
        if not name:
            return problem("Type the person's full name (as it would appear in a caption).")
        if not photos:
            return problem(
                "Too few photos: upload at least one photo of the person (several are better; "
                "drag and drop them all at once)."
            )
        try:
            return self._attack(spec.strip(), name, list(photos), num_names, seed, crop)
        except (AttackInputError, ModelLoadError, ValueError) as err:
            return problem(str(err))
        except Exception:  # a visitor gets a message, the log gets the traceback
            log.exception("web attack failed")
            return problem("Something went wrong on the server; the log has the details.")

    def _attack(
        self,
        spec: str,
        name: str,
        photos: list[str],
        num_names: float | None,
        seed: float | None,
        crop: str,
    ) -> WebAnswer:
        model = self.model(spec)
        classifier = (
            EmbeddingZeroShot(model, self.prompts) if isinstance(model, EmbeddingModel) else model
        )
        attacker = IdentityInferenceAttack(
            classifier,
            num_names=int(num_names or self.num_names),
            seed=int(seed or 0),
            crop="none" if crop == "none" else "face",
            detector=self.detector() if crop != "none" else "yunet",
            cache_dir=False,
            progress=False,
        )
        prepared = attacker.prepare(photos)
        labels = {p.path: Path(p.path).name for p in prepared}
        skipped = [f"{labels[p.path]}: {p.reason}" for p in prepared if p.status != "ok"]
        good = usable(prepared)
        if not good:
            what = "No face found" if crop != "none" else "No usable photo"
            return problem(
                f"{what} in the {len(prepared)} photo(s) ({'; '.join(skipped)}). Use photos "
                "where the face is clearly visible, or choose 'whole photo' under Settings."
            )
        queries_before = getattr(model, "queries", None)
        candidates = attacker.candidates([name])
        real = candidates.index_of(name)
        predictions = attacker.predict([p.image for p in good], candidates, real)
        result = attacker.verdict(name, predictions, candidates, real, prepared)
        notes = [f"Skipped {s}" for s in skipped]
        if len(good) < RECOMMENDED_PHOTOS:
            notes.append(
                f"Only {len(good)} usable photo(s): the majority vote is more reliable with "
                f"{RECOMMENDED_PHOTOS} or more."
            )
        if queries_before is not None:
            notes.append(
                f"The model was queried through its API: {model.queries - queries_before} "
                "queries (photo x template)."
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


def verdict_markdown(result: CheckResult, notes: Sequence[str] = ()) -> str:
    n_templates = len(result.templates)
    headline = (
        f"## YES: the model appears to know {result.name}"
        if result.member
        else f"## NO: no sign that the model knows {result.name}"
    )
    parts = [
        headline,
        f"**Score: {result.score} of {n_templates}** templates picked the name "
        f"(threshold {result.threshold}), from {result.n_photos} photo(s) and "
        f"{result.n_candidates} candidate names.",
        f"**p-value: {result.p_value:.3g}** (the share of decoy names doing at least as well).",
    ]
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)


def explanation_markdown(result: CheckResult) -> str:
    k, t = result.n_candidates, len(result.templates)
    how = (
        f"The model was shown your photos and asked, in {t} different phrasings (templates, "
        f'like "a photo of NAME"), which of {k} names fits best: yours and {k - 1} random '
        "decoy names. For each template, the name picked for most photos wins. A model that "
        f"never learned your face and name together picks your name for a template about once "
        f"in {k} times; reaching a score of {result.threshold} by luck has a probability of "
        f"{result.chance_member_probability:.2%}."
    )
    if result.member:
        means = (
            "**What it means.** The model links your face to your name far more often than "
            "chance. The likeliest explanation is that photos of you, captioned with your name, "
            "were in its training data: the privacy leak the paper *Does CLIP Know My Face?* "
            "measures."
        )
        not_means = (
            "**What it does not mean.** It is statistical evidence, not proof. It does not say "
            "which photos were used or where they came from. A famous namesake or a lookalike "
            "can also produce a YES, and the result is about this model only."
        )
    else:
        means = (
            "**What it means.** The model did not link these photos to your name more often "
            "than the threshold requires."
        )
        not_means = (
            "**What it does not mean.** A NO is not proof that you are absent from the training "
            "data: people who appear in only a few training images are often not detected, and "
            "other photos, more photos or another spelling of your name may give another "
            "answer. It also says nothing about other models."
        )
    return "\n\n".join([f"**How the test works.** {how}", means, not_means])


def create_web_app(demo: WebDemo, default_model: str | None = None) -> Any:
    """The Gradio page for ``demo`` (a ``gradio.Blocks``)."""
    import gradio as gr

    choices = list(dict.fromkeys([*([default_model] if default_model else []), *demo.models]))
    with gr.Blocks(
        title="Does this model know my face?",
        analytics_enabled=False,
        delete_cache=(1800, 3600),  # uploaded photos are deleted within the hour
    ) as page:
        gr.Markdown(
            "# Does this model know my face?\n"
            "The identity inference attack from *Does CLIP Know My Face?*: upload a few photos "
            "of a person, type their name, and find out whether a CLIP-style model has learned "
            "to connect the two. Photos stay on this server, are used only for this check and are "
            "deleted within the hour."
        )
        with gr.Row():
            with gr.Column(scale=1):
                model = gr.Dropdown(
                    choices=choices,
                    value=default_model,
                    allow_custom_value=True,
                    label="Model",
                    info="A found model, or type any spec (open_clip:..., hf:..., http://...).",
                    elem_id="model",
                )
                if not choices:
                    gr.Markdown(NO_MODEL_HELP, elem_id="model-help")
                name = gr.Textbox(
                    label="Full name", placeholder="e.g. Ada Lovelace", elem_id="name"
                )
                photos = gr.File(
                    file_count="multiple",
                    file_types=["image"],
                    type="filepath",
                    label="Photos of the person (drag and drop several at once)",
                    elem_id="photos",
                )
                with gr.Accordion("Settings", open=False):
                    num_names = gr.Slider(
                        10, 1000, value=demo.num_names, step=10, label="Candidate names"
                    )
                    seed = gr.Number(value=0, precision=0, label="Seed for the decoy names")
                    crop = gr.Radio(
                        [("crop the face", "face"), ("whole photo", "none")],
                        value="face",
                        label="What the model sees",
                    )
                run = gr.Button("Run the attack", variant="primary", elem_id="run")
            with gr.Column(scale=1):
                verdict = gr.Markdown(elem_id="verdict")
                crops = gr.Gallery(label="Face crops the model saw", columns=4, elem_id="crops")
                table = gr.Dataframe(
                    headers=TABLE_HEADERS,
                    interactive=False,
                    wrap=True,
                    label="The name each template picked",
                    elem_id="templates",
                )
        explanation = gr.Markdown(elem_id="explanation")

        def attack(*inputs: Any) -> tuple:
            return demo.run(*inputs).outputs()

        run.click(
            attack,
            inputs=[model, name, photos, num_names, seed, crop],
            outputs=[verdict, crops, table, explanation],
            api_name="attack",
        )
    return page


def launch_web(
    page: Any, host: str = "127.0.0.1", port: int = 7860, block: bool = True
) -> tuple[Any, str, str]:
    """Serve the page offline (system fonts, no analytics, no share link, no SSR)."""
    import gradio as gr

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
        prevent_thread_lock=not block,
        quiet=not block,
    )
