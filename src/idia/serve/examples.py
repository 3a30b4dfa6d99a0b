"""Ready examples for a lab model on the web page: people of the lab, picked by what the
lab's own audit found, each with the held-out photos the model never saw.

The examples come from the lab folder the model's card names (its ``people`` and
``audit_run``), never from uploads. They are chosen by the audit's tests of each person, so
that the page shows the effect honestly: members injected many times whose face the audit's
face test linked to their name, a member injected only once or a few times (whatever the
audit found), and people kept out of training in whom it found nothing.

Only a lab of synthetic people (its card says so) brings examples. A lab of real people
(``idia lab --faces``: Labeled Faces in the Wild or a people folder) brings none: LFW's photos
are news photos from the web, published for research without a licence to show them again,
and a people folder's licence is unknown. Its people still serve as the face test's reference,
in memory and never shown, as the synthetic lab's do.

A check on the page tests one person, as the audit's per-person p-values do; the audit's
verdicts also correct for having tested every lab person at once (Benjamini-Hochberg), which
a single check does not. The examples are chosen by the per-person tests, and the page shows
both: each example's p-values and q-values, and how often each held in the lab.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from idia.claims import DEFAULT_ALPHA
from idia.faces import list_images
from idia.labels import RULE_LABELS, verdict_label
from idia.models.card import ModelCard
from idia.names import display_name, normalize_name
from idia.run_folder import RunFolder, RunFolderError

CLAIM_COLUMNS = {  # claim -> (p-value, BH verdict, q-value) columns of the audit's results
    "face_association": ("p_face", "face_verdict", "q_face"),
    "name_familiarity": ("p_name", "name_verdict", "q_name"),
    "text_only": ("p_text", "text_verdict", "q_text"),
}
RESULT_COLUMNS = {"name", "truth", "count", "score", "verdict", "p_face", "face_verdict"}
STRENGTH = {"face_association": 0, "name_familiarity": 1, "text_only": 2, None: 3}


@dataclass(frozen=True)
class Example:
    """One lab person offered as an example, with what the lab's audit found for them:
    ``finding``, the strongest claim whose test held for this person alone (p <= alpha);
    ``verdict``, the audit's verdict after correcting across all its people; ``tests``:
    claim -> (p, q)."""

    name: str
    count: int
    photos: tuple[Path, ...]
    finding: str | None
    verdict: str | None
    tests: dict[str, tuple[float | None, float | None]]
    score: int

    @property
    def member(self) -> bool:
        return self.count > 0

    @property
    def label(self) -> str:
        """The example's line on the page."""
        how = f"{self.count} pair{'s' if self.count != 1 else ''}" if self.member else "never"
        return f"{self.name} (in training: {how}): {verdict_label(self.finding).tag}"

    def note(self, n_people: int) -> str:
        """What the page adds to this example's verdict: who the person is and what the
        audit found."""
        group = (
            f"whose photos and name were in {self.count} of the model's training pairs"
            if self.member
            else "who was kept out of the model's training data"
        )
        tested = [(claim, p, q) for claim, (p, q) in self.tests.items() if p is not None]
        p_values = ", ".join(
            f"{RULE_LABELS[claim].short} test p = {p:.2g}" for claim, p, _ in tested
        )
        q_values = ", ".join("n/a" if q is None else f"{q:.2g}" for _, _, q in tested)
        finding, verdict = verdict_label(self.finding).finding, verdict_label(self.verdict).finding
        return (
            f"Lab example: {self.name}, a synthetic person {group}; these are "
            f"{len(self.photos)} held-out photos the model never saw. The lab's audit, for this "
            f"person alone: {finding} ({p_values}); across all {n_people} "
            f"people at once (Benjamini-Hochberg q-values {q_values}): "
            f"{verdict}. Paper's rule: the name won {self.score} templates."
        )


@dataclass(frozen=True)
class LabExamples:
    """A lab's people folder (the face test's reference people), the examples (none for a
    lab of real people: ``real_people``), and the audit's overall findings in one line."""

    people_dir: Path
    examples: tuple[Example, ...]
    overview: str
    n_people: int
    real_people: bool = False

    def find(self, name: str) -> Example | None:
        key = normalize_name(name)
        return next((e for e in self.examples if normalize_name(e.name) == key), None)


def lab_examples(card: ModelCard) -> tuple[LabExamples | None, str | None]:
    """The examples of the lab a model's card names: (examples, None), or (None, why not)."""
    people, run = card.path_of("people"), card.path_of("audit_run")
    if people is None or run is None:
        return None, "its card names no lab people folder and audit run"
    if not people.is_dir():
        return None, f"the lab's people folder {people} is missing"
    try:
        audit = RunFolder(run)
        results, config = audit.results, audit.config
    except RunFolderError as err:
        return None, f"the lab's audit is missing or unreadable ({str(err)[:160]})"
    missing = RESULT_COLUMNS - set(results.columns)
    if missing:
        return None, f"the lab's audit results lack {', '.join(sorted(missing))}"
    alpha = float(config.get("alpha") or DEFAULT_ALPHA)
    table = judged(results, people, alpha)
    if table.empty:
        return None, "no lab person with photos and a known membership"
    real = card.trained_on.get("synthetic") is not True
    examples = [] if real else choose_examples(table, int(card.trained_on.get("seed", 0) or 0))
    return LabExamples(people, tuple(examples), overview(table, alpha), len(results), real), None


def _claim(value: object) -> str | None:
    return value if isinstance(value, str) and value in CLAIM_COLUMNS else None


def _float(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def judged(results: pd.DataFrame, people_dir: Path, alpha: float) -> pd.DataFrame:
    """The audit's people with photos and known membership: their folder and ``finding``
    (the strongest claim whose per-person test holds at ``alpha``)."""
    folders = {normalize_name(display_name(f.name)): f for f in people_dir.iterdir()
               if f.is_dir()}
    table = results.copy()
    table["folder"] = [folders.get(normalize_name(str(n))) for n in table["name"]]
    table = table[table["folder"].notna() & table["truth"].notna() & table["count"].notna()]
    table = table.assign(count=table["count"].astype(int), truth=table["truth"].astype(bool))
    findings = []
    for _, row in table.iterrows():
        held = [c for c, (p, _, _) in CLAIM_COLUMNS.items()
                if p in row and _float(row[p]) is not None and row[p] <= alpha]
        findings.append(min(held, key=STRENGTH.__getitem__) if held else None)
    return table.assign(finding=pd.Series(findings, index=table.index, dtype=object))


def choose_examples(table: pd.DataFrame, seed: int = 0) -> list[Example]:
    """Up to five examples from :func:`judged` people, in this order: a member at the highest
    count whose face the face test linked to the name, a non-member in whom no test found
    anything, a member at the count nearest 25 with a face finding, a member at the lowest
    count (whatever was found), another non-member with nothing found. Where no one fits a
    slot's finding, the slot takes someone of its group and count (the strongest finding for
    the members at high counts, the weakest for the others). Ties are broken by a seeded draw,
    not by the best result."""
    table = table.iloc[np.random.default_rng(seed).permutation(len(table))]
    members = table[table["truth"] & (table["count"] > 0)]
    outsiders = table[~table["truth"]]
    chosen: list[pd.Series] = []

    def pick(pool: pd.DataFrame, want: str | None, strongest: bool) -> None:
        pool = pool[~pool["name"].isin([row["name"] for row in chosen])]
        if pool.empty:
            return
        exact = pool[[f == want for f in pool["finding"]]]
        if exact.empty:
            ranks = [STRENGTH[f] for f in pool["finding"]]
            best = min(ranks) if strongest else max(ranks)
            exact = pool[[r == best for r in ranks]]
        chosen.append(exact.iloc[0])

    counts = sorted(members["count"].unique())
    if counts:
        top = counts[-1]
        linked = set(members.loc[[f == "face_association" for f in members["finding"]], "count"])
        middle = min(sorted(linked - {top}) or counts, key=lambda c: (abs(c - 25), -c))
        pick(members[members["count"] == top], "face_association", True)
        pick(outsiders, None, False)
        if middle != top:
            pick(members[members["count"] == middle], "face_association", True)
        if counts[0] not in (top, middle):
            pick(members[members["count"] == counts[0]], None, False)
    pick(outsiders, None, False)
    return [_example(row) for row in chosen]


def _example(row: pd.Series) -> Example:
    return Example(
        name=str(row["name"]),
        count=int(row["count"]) if row["truth"] else 0,
        photos=tuple(list_images(row["folder"])),
        finding=row["finding"],
        verdict=_claim(row["verdict"]),
        tests={
            claim: (_float(row.get(p)), _float(row.get(q)))
            for claim, (p, _, q) in CLAIM_COLUMNS.items()
        },
        score=int(row["score"]) if pd.notna(row["score"]) else 0,
    )


def overview(table: pd.DataFrame, alpha: float) -> str:
    """One line: how often the audit's face test linked face and name, by injected count and
    for non-members, for each person alone and after the correction across people."""
    alone = table["p_face"].fillna(1.0) <= alpha
    corrected = table["face_verdict"].fillna(False).astype(bool)
    groups = [(f"at {c} pairs", table["truth"] & (table["count"] == c))
              for c in sorted(table.loc[table["truth"], "count"].unique(), reverse=True)]
    groups.append(("non-members", ~table["truth"]))
    parts = [f"{int(alone[rows].sum())} of {int(rows.sum())} {what}" for what, rows in groups]
    after = ", ".join(str(int(corrected[rows].sum())) for _, rows in groups)
    return (
        f"In the lab's audit, the face test linked face and name (p ≤ {alpha:g}, each person "
        f"alone, as a check here does) for {', '.join(parts)}; after correcting for testing "
        f"all {len(table)} people at once (Benjamini-Hochberg): {after}."
    )
