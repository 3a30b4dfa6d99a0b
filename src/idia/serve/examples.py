"""Ready examples for a lab model on the web page: people of the lab, picked by what the
lab's own audit found, each with the held-out photos the model never saw.

The examples come from the lab folder the model's card names (its ``people`` and
``audit_run``), never from uploads. They are chosen by the audit's verdicts so that the page
shows the effect honestly: members injected many times whose face the audit linked to their
name, a member injected only a few times (whatever the audit found), and members of neither
kind: people kept out of training in whom the audit found nothing. The page says, for each,
what the audit found and how often such verdicts occurred in the lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from idia.faces import list_images
from idia.models.card import ModelCard
from idia.names import display_name, normalize_name

VERDICT_WORDS = {
    "face_association": "links face and name",
    "name_familiarity": "has seen the name",
    "text_only": "knows the name as text",
    None: "no evidence",
}
SHORT_WORDS = {
    "face_association": "face linked to name",
    "name_familiarity": "name seen",
    "text_only": "name known as text",
    None: "nothing found",
}
RESULT_COLUMNS = {"name", "truth", "count", "verdict", "face_verdict", "score"}


@dataclass(frozen=True)
class Example:
    """One lab person offered as an example, with what the lab's audit found for them."""

    name: str
    count: int
    photos: tuple[Path, ...]
    audit_verdict: str | None
    audit_score: int
    audit_face_p: float | None
    audit_face_q: float | None

    @property
    def member(self) -> bool:
        return self.count > 0

    @property
    def label(self) -> str:
        """The example's line on the page (short: Gradio cuts labels at 60 characters)."""
        how = f"{self.count} pair{'s' if self.count != 1 else ''}" if self.member else "never"
        return f"{self.name} (in training: {how}): {SHORT_WORDS[self.audit_verdict]}"

    def note(self, n_people: int) -> str:
        """What the page adds to this example's verdict: who the person is and what the
        audit found."""
        group = (
            f"whose photos and name were in {self.count} of the model's training pairs"
            if self.member
            else "who was kept out of the model's training data"
        )
        face = ""
        if self.audit_face_p is not None:
            face = f" (face test p = {self.audit_face_p:.2g}"
            face += f", q = {self.audit_face_q:.2g})" if self.audit_face_q is not None else ")"
        return (
            f"Lab example: {self.name} is a synthetic person {group}; these are "
            f"{len(self.photos)} held-out photos the model never saw. The lab's audit ({n_people} "
            f"people in one candidate set, Benjamini-Hochberg across them) found: "
            f"{VERDICT_WORDS[self.audit_verdict]}{face}; paper's rule: the name won "
            f"{self.audit_score} templates."
        )


@dataclass(frozen=True)
class LabExamples:
    """A lab's people folder (the face test's reference people), the examples, and the
    audit's overall findings in one line."""

    people_dir: Path
    examples: tuple[Example, ...]
    overview: str
    n_people: int

    def find(self, name: str) -> Example | None:
        key = normalize_name(name)
        return next((e for e in self.examples if normalize_name(e.name) == key), None)


def lab_examples(card: ModelCard) -> tuple[LabExamples | None, str | None]:
    """The examples of the lab a model's card names: (examples, None), or (None, why not)."""
    people, run = card.path_of("people"), card.path_of("audit_run")
    if people is None or run is None:
        return None, "its card names no lab people folder and audit run"
    table = run / "results.parquet"
    if not people.is_dir() or not table.is_file():
        return None, f"the lab's people folder or audit results ({table.name}) are missing"
    try:
        results = pd.read_parquet(table)
    except (OSError, ValueError) as err:
        return None, f"the lab's audit results are unreadable ({str(err)[:100]})"
    missing = RESULT_COLUMNS - set(results.columns)
    if missing:
        return None, f"the lab's audit results lack {', '.join(sorted(missing))}"
    examples = choose_examples(results, people, int(card.trained_on.get("seed", 0) or 0))
    if not examples:
        return None, "no lab person with photos and a known membership"
    return LabExamples(people, tuple(examples), overview(results), len(results)), None


def _verdict(value: object) -> str | None:
    return value if isinstance(value, str) and value in VERDICT_WORDS else None


def _float(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def choose_examples(results: pd.DataFrame, people_dir: Path, seed: int = 0) -> list[Example]:
    """Up to five examples, in this order: a member at the highest count whose face the audit
    linked to the name, a non-member in whom it found nothing, a member at the count nearest
    25 with a face verdict, a member at the lowest count, another non-member. Where no one
    fits a slot's verdict, the slot takes the person of its group and count with the
    strongest audit verdict. Ties are broken by a seeded draw, not by the best result."""
    folders = {normalize_name(display_name(f.name)): f for f in people_dir.iterdir()
               if f.is_dir()}
    table = results.copy()
    table["folder"] = [folders.get(normalize_name(str(n))) for n in table["name"]]
    table = table[table["folder"].notna() & table["truth"].notna() & table["count"].notna()]
    table["count"] = table["count"].astype(int)
    order = np.random.default_rng(seed).permutation(len(table))
    table = table.iloc[order]
    members = table[table["truth"].astype(bool) & (table["count"] > 0)]
    outsiders = table[~table["truth"].astype(bool)]
    chosen: list[str] = []
    strength = {"face_association": 0, "name_familiarity": 1, "text_only": 2, None: 3}

    def pick(pool: pd.DataFrame, want: str | None, prefer_strong: bool) -> pd.Series | None:
        pool = pool[~pool["name"].isin(chosen)]
        if pool.empty:
            return None
        exact = pool[[_verdict(v) == want for v in pool["verdict"]]]
        if not exact.empty:
            return exact.iloc[0]
        ranks = [strength[_verdict(v)] for v in pool["verdict"]]
        best = min(ranks) if prefer_strong else max(ranks)
        return pool[[r == best for r in ranks]].iloc[0]

    picks: list[pd.Series | None] = []
    counts = sorted(members["count"].unique())
    if counts:
        face = members[members["face_verdict"].fillna(False).astype(bool)]
        top = counts[-1]
        picks.append(pick(members[members["count"] == top], "face_association", True))
        _remember(picks, chosen)
        picks.append(pick(outsiders, None, False))
        _remember(picks, chosen)
        linked = sorted(set(face["count"]) - {top}, key=lambda c: (abs(c - 25), -c))
        middle = linked[0] if linked else min(counts, key=lambda c: (abs(c - 25), -c))
        if middle != top:
            picks.append(pick(members[members["count"] == middle], "face_association", True))
            _remember(picks, chosen)
        if counts[0] not in (top, middle):
            picks.append(pick(members[members["count"] == counts[0]], None, False))
            _remember(picks, chosen)
    picks.append(pick(outsiders, None, False))
    _remember(picks, chosen)
    return [_example(row) for row in picks if row is not None]


def _remember(picks: list[pd.Series | None], chosen: list[str]) -> None:
    if picks and picks[-1] is not None:
        chosen.append(picks[-1]["name"])


def _example(row: pd.Series) -> Example:
    return Example(
        name=str(row["name"]),
        count=int(row["count"]) if bool(row["truth"]) else 0,
        photos=tuple(list_images(row["folder"])),
        audit_verdict=_verdict(row["verdict"]),
        audit_score=int(row["score"]) if pd.notna(row["score"]) else 0,
        audit_face_p=_float(row.get("p_face")),
        audit_face_q=_float(row.get("q_face")),
    )


def overview(results: pd.DataFrame) -> str:
    """One line: how often the audit linked face and name, by injected count and for
    non-members."""
    judged = results[results["truth"].notna() & results["count"].notna()]
    face = judged["face_verdict"].fillna(False).astype(bool)
    truth = judged["truth"].astype(bool)
    parts = []
    for count in sorted(judged.loc[truth, "count"].astype(int).unique(), reverse=True):
        rows = truth & (judged["count"].astype(int) == count)
        parts.append(f"{int(face[rows].sum())} of {int(rows.sum())} at {count} pairs")
    outsiders = ~truth
    parts.append(f"{int(face[outsiders].sum())} of {int(outsiders.sum())} non-members")
    return "In the lab's audit, the face test linked face and name for " + ", ".join(parts) + "."
