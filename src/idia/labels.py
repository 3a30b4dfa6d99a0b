"""How the rules and claims are named to people: the one table the terminal, the reports and
the web page take their words from.

A rule decides about a person: the paper's rule (templates won), the three calibrated tests
of :mod:`idia.claims` (each a claim about the model) and the face-blind baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RuleLabel:
    """The words for one rule, or for no verdict.

    ``name``: in tables and legends ("name familiarity"); ``short``: in narrow columns and
    lists of p-values ("name"); ``meaning``: what a claim holding says about the model ("the
    model has seen this name"), or ``how`` a procedure decides ("templates won >= tau").
    For the claims (and no verdict) also ``evidence``: a check's test as a table row after
    "the model ..."; ``finding``: a lab example's verdict in a few words, and ``tag``, the
    same in at most 20 characters (Gradio cuts example labels); ``headline``: the web page's
    verdict about ``{name}``.
    """

    name: str
    short: str
    meaning: str = ""
    how: str = ""
    evidence: str = ""
    finding: str = ""
    tag: str = ""
    headline: str = ""

    @property
    def explained(self) -> str:
        """The name with what it means: "name familiarity: the model has seen this name",
        "paper's rule (templates won >= tau)"."""
        return f"{self.name}: {self.meaning}" if self.meaning else f"{self.name} ({self.how})"


RULE_LABELS: dict[str, RuleLabel] = {
    "paper": RuleLabel("paper's rule", "paper", how="templates won >= tau"),
    "name_familiarity": RuleLabel(
        "name familiarity",
        "name",
        meaning="the model has seen this name",
        evidence="has seen this name (your photos vs decoy names whose parts it knows as "
        "well)",
        finding="has seen the name",
        tag="name seen",
        headline="The model has seen the name {name}",
    ),
    "face_association": RuleLabel(
        "face association",
        "face",
        meaning="the model links this face to this name",
        evidence="links your face to your name (your photos vs other people's)",
        finding="links face and name",
        tag="face linked to name",
        headline="YES: the model links this face to the name {name}",
    ),
    "text_only": RuleLabel(
        "text only",
        "text only",
        meaning="the model's text encoder knows this name",
        evidence="knows the name as text (vs the same decoy names; no photo used)",
        finding="knows the name as text",
        tag="name known as text",
        headline="The model's text encoder knows the name {name}",
    ),
    "any_claim": RuleLabel(
        "any claim",
        "any",
        meaning="the model knows something about this person (one FDR over people and claims)",
    ),
    "face_blind": RuleLabel(
        "face-blind baseline", "face-blind", how="the name on other people's photos"
    ),
}

NO_VERDICT = RuleLabel(
    "no verdict",
    "none",
    meaning="no evidence that the model knows this name or links it to this face",
    finding="no evidence",
    tag="nothing found",
    headline="NO: no evidence that the model knows {name}",
)


def verdict_label(verdict: str | None) -> RuleLabel:
    """The words for a verdict: the strongest claim that held, or None."""
    return NO_VERDICT if verdict is None else RULE_LABELS[verdict]


def rule_name(rule: str) -> str:
    """A rule's name in tables and legends; an unknown rule (from a newer run) as stored."""
    return RULE_LABELS[rule].name if rule in RULE_LABELS else rule


# Which null the name-familiarity and text-only tests used (idia.name_null), in a few words.
NULL_LABELS: dict[str, str] = {
    "full_name": "decoy names made of parts the model knows as well",
    "no_comparable_decoys": "not tested: no comparable decoy names",
    "closed_box": "not tested: the model's text encoder is out of reach",
}
DECOY_KIND_WORDS: dict[str, str] = {
    "given_kept": "the same given name with other family names",
    "family_kept": "other given names with the same family name",
    "recombined": "recombinations of both",
}
SEX_WORDS: dict[str | None, str] = {"f": "female", "m": "male", None: "unknown"}


def null_description(record: Mapping[str, Any]) -> str:
    """The null of a result's name tests in one sentence (``record``: a
    :meth:`idia.name_null.NameNull.record`): what the decoys are, how many of each kind, from
    where and of which sex; or why the name was not tested."""
    if not record:
        return "the paper's random decoy names"
    if record["key"] != "full_name":
        return f"{NULL_LABELS[record['key']]} ({record['reason']})"
    counts = ", ".join(
        f"{DECOY_KIND_WORDS[kind]} ({n:,})" for kind, n in record["decoy_counts"].items() if n
    )
    return (
        f"{record['n_decoys']:,} {NULL_LABELS['full_name']}, from {record['origin']} "
        f"({record['source']}), given names {SEX_WORDS[record['sex']]}: {counts}"
    )
