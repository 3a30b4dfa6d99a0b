"""What a visitor of ``idia web`` reads: the verdict and its evidence, what it means and does
not mean, where their photos go, and messages that say what to fix. Nothing here shows a
filesystem path or unbounded error text (docs/security.md)."""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd
from PIL import Image

from idia.engine import CheckResult
from idia.labels import RULE_LABELS, null_description, verdict_label
from idia.serve.catalog import is_remote
from idia.serve.examples import LabExamples
from idia.serve.uploads import UNCHECKED_UPLOAD_AGE_S, UNCHECKED_UPLOAD_SWEEP_S

MAX_MESSAGE_CHARS = 300
THUMBNAIL_SIDE = 256
MIN_THUMBNAIL_SIDE = 96
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


def visitor_text(message: str, labels: Mapping[str, str] | None = None) -> str:
    """An error message fit for a visitor: uploaded paths shown as their file names, any other
    path hidden, at most MAX_MESSAGE_CHARS characters."""
    for path, label in (labels or {}).items():
        message = message.replace(path, label)
    message = _PATH.sub("[path]", message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message


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
    """The answer that says what to fix instead of a verdict."""
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


def template_table(result: CheckResult) -> pd.DataFrame:
    """The name each template picked, and whether it was the visitor's."""
    return pd.DataFrame(
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
    )


def verdict_markdown(result: CheckResult, notes: Sequence[str] = ()) -> str:
    """The headline, each claim's evidence, the paper's rule, and ``notes`` as a list."""
    n_templates = len(result.templates)
    rows = []
    for claim, test in result.claims.items():
        if test.tested:
            mark = " **(holds)**" if test.holds(result.alpha) else ""
            cell = f"p = {test.p_value:.3g}{mark}"
        else:
            cell = f"not tested: {test.reason}"
        rows.append(f"| {RULE_LABELS[claim].evidence} | {cell} |")
    parts = [
        "## " + verdict_label(result.verdict).headline.format(name=result.name),
        "| the model ... | evidence |\n|---|---|\n" + "\n".join(rows),
        f"Paper's rule: **{result.score} of {n_templates}** templates picked the name "
        f"(threshold {result.threshold}: {'member' if result.member else 'not member'}), from "
        f"{result.n_photos} photo(s) and {result.n_candidates} candidate names. A claim holds "
        f"when its p-value, adjusted over your claims (Benjamini-Hochberg), is at most "
        f"{result.alpha:g}.",
    ]
    if result.name_null:
        parts.append(f"Your name was compared with {null_description(result.name_null)}"
                     + (f". The test's assumption: {result.name_null['null']}."
                        if result.name_null["key"] == "full_name" else "."))
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    return "\n\n".join(parts)


def explanation_markdown(result: CheckResult) -> str:
    """How the test works, what the verdict means, and what it does not mean."""
    k, t = result.n_candidates, len(result.templates)
    how = (
        f"The model was shown your photos and asked, in {t} different phrasings (templates, "
        f'like "a photo of NAME"), which of {k} names fits best: yours and {k - 1} random '
        "decoy names. Two questions are tested apart. *Has the model seen your name?* Your "
        "full name is compared, on your photos, with decoy names made of parts the model "
        "knows as well as yours (your first name with other surnames, other first names with "
        "your surname, and recombinations, from where your name comes from): a full name the "
        "model never saw scores like any of them, even if it has seen your first name or your "
        "surname on someone else. *Does it link your face to your name?* Your name on your "
        "photos is compared with your name on the photos of other people who look like you "
        "(same sex, similar age and origin): a model that knows the name only as text, or "
        "only as a name of your group, responds to it on their faces alike."
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


def privacy_markdown(models: Mapping[str, object]) -> str:
    """Where a visitor's photos go, truthfully, for the models on offer (label -> spec)."""
    minutes = (UNCHECKED_UPLOAD_AGE_S + UNCHECKED_UPLOAD_SWEEP_S) // 60
    text = (
        "**Where your photos go.** They are uploaded to this server's private temporary "
        "folder, used for your check only and deleted when it ends (photos you upload but "
        f"never check: within {minutes} minutes). The face crops the model sees stay in the "
        "server's memory during the check (a face-recognition encoder also describes them "
        "there, to find the reference people who look like you); nothing derived from your "
        "face is written to disk or kept afterwards."
    )
    remote = [label for label, spec in models.items() if is_remote(spec)]
    if remote:
        local = len(remote) < len(models)
        text += (
            f" **{', '.join(remote)}** {'is a model' if len(remote) == 1 else 'are models'} "
            "behind an API: with it, your face crops and the candidate names are sent to "
            "that API, whose operator may keep them"
            + ("; with the other models nothing leaves this server." if local else ".")
        )
    return text


def examples_markdown(label: str, lab: LabExamples) -> str:
    """What the examples are, above them; for a lab of real people, why there are none."""
    if lab.real_people:
        return (
            f"**This model's lab.** {label} was trained by `idia lab --faces` on real people: "
            "members were in its training captions 1 to 75 times, the others never. Their "
            "photos are not shown here: showing a real person's photo again needs its licence, "
            "and Labeled Faces in the Wild's news photos, published for research, come with "
            "none; so this page offers no examples: check a person with photos of your own. "
            "The face test compares them with the lab's people, in memory, never shown. "
            + lab.overview
        )
    return (
        f"**Try it with the lab's people.** {label} was trained by `idia lab` on synthetic "
        "people: members were in its training captions 1 to 75 times, the others never. One "
        "click checks a person's held-out photos (photos the model never saw), exactly as if "
        "you dropped them below; the face test compares them with the lab's other people. "
        + lab.overview
    )
