"""The lab's controls for the calibrated tests' nulls, and the figures that read them.

- **Familiar name parts** (`idia lab --familiar-name-parts`, issue 20): namesakes in the
  corpus share a first name, a surname or both parts (never together) with people under test
  (:mod:`idia.synthetic.namesakes`). :func:`part_kind_figures` reports the name and text-only
  tests' calibration on non-members per kind of name: a test whose null is "a random decoy
  name" calls familiar-part names too often; one about the full name should not.
- **Demographic groups** (`idia lab --demographic-groups`, issue 18): people fall into groups
  with their own face traits and names (:mod:`idia.synthetic.groups`). :func:`group_face_figures`
  recomputes the face test from the run's stored responses twice: against today's references
  (every other person of the same sex) and against a lookalike oracle (the same-sex people
  nearest in the drawn traits), and reports the false-positive rate per group and members'
  power under both.

Pure functions of a finished run folder and the lab's synthetic people; no model is touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from idia import claims
from idia.audit_claims import NULL_SIZES, TEST_COLUMNS, split_responses
from idia.evaluation import calibration, level_check
from idia.metrics import roc_curve, to_json_number
from idia.names import normalize_name
from idia.people import name_key
from idia.run_folder import RunFolder
from idia.synthetic import NAME_PART_KINDS, FaceTraits, name_parts

GROUP_NAMED_SHARE = 0.25  # of the corpus's background people, named from their group's names
PART_KIND_CLAIMS: tuple[str, ...] = ("name_familiarity", "text_only")
PAPER_NULL = "_paper_null"  # the same test against the paper's decoys, in an audit's results
POWER_LEVEL = 0.05  # members' power: the share at p <= 0.05, what a single check says
PART_KIND_RULE = (
    "a part of a person's name is familiar when another named person in the training "
    "captions (a member, a namesake, another named background person) has it; the person's "
    "own full name never counts"
)
# The lookalike oracle's traits: the colours of the face, what a face encoder sees most of a
# small synthetic photo (the groups also differ in hair style and a few features, which the
# oracle leaves out: with them its references came less often from the person's own group).
ORACLE_TRAITS: tuple[str, ...] = (
    "skin_tone", "skin", "lip_colour", "hair_colour", "brow_colour", "eye_colour",
)
ORACLE_RULE = (
    "lookalike oracle: for each person, the same-sex people nearest in the drawn colours of "
    "the face (skin tone; skin, lip, hair, brow and eye colour), each trait standardized over "
    "the lab's people and weighted alike, Euclidean distance; as many as the person's own "
    "group has other same-sex people"
)


# --- Familiar name parts ---------------------------------------------------------------------


def deal_part_kinds(counts: Mapping[str, int], seed: int) -> dict[str, str]:
    """Name -> kind of namesakes (:data:`~idia.synthetic.NAME_PART_KINDS`): a seeded shuffle
    of the members (count > 0) and one of the non-members, the kinds dealt in turn within
    each, so every kind gets the same number of members (±1) and of non-members (±1)."""
    kinds: dict[str, str] = {}
    for stream, member in ((1, True), (2, False)):
        names = sorted(name for name, count in counts.items() if (count > 0) == member)
        order = np.random.default_rng([seed, 71, stream]).permutation(len(names))
        for rank, index in enumerate(order):
            kinds[names[index]] = NAME_PART_KINDS[rank % len(NAME_PART_KINDS)]
    return kinds


def part_exposure(names: Sequence[str], corpus_names: Iterable[str]) -> pd.DataFrame:
    """Per name under test: whether its first name and its surname occur in another name of
    ``corpus_names`` (the named people of the training captions), and its kind: "none",
    "first", "surname" or "both" (see :data:`PART_KIND_RULE`). Real corpora name some people
    with one word (LFW's "Thalia"): such a name may give either part; a one-word name under
    test has no surname to be familiar."""
    firsts: dict[str, set[str]] = {}
    surnames: dict[str, set[str]] = {}
    for full in set(corpus_names):
        if not full.split():
            continue
        first, surname = _first_and_surname(full)
        surname = first if surname is None else surname  # a one-word name gives either part
        firsts.setdefault(normalize_name(first), set()).add(normalize_name(full))
        surnames.setdefault(normalize_name(surname), set()).add(normalize_name(full))
    rows = []
    for name in names:
        first, surname = _first_and_surname(name)
        own = {normalize_name(name)}
        has_first = bool(firsts.get(normalize_name(first), set()) - own)
        has_surname = surname is not None and bool(
            surnames.get(normalize_name(surname), set()) - own)
        kind = NAME_PART_KINDS[int(has_first) + 2 * int(has_surname)]
        rows.append({"name": name, "first_familiar": has_first,
                     "surname_familiar": has_surname, "kind": kind})
    return pd.DataFrame(rows, columns=["name", "first_familiar", "surname_familiar", "kind"])


def _first_and_surname(name: str) -> tuple[str, str | None]:
    """:func:`~idia.synthetic.name_parts`, with no surname for a one-word name."""
    return name_parts(name) if len(name.split()) > 1 else (name.strip(), None)


def part_kind_figures(
    results: pd.DataFrame, kinds: Mapping[str, str], seed: int
) -> dict[str, dict[str, Any]]:
    """Per kind of name (``kinds``: name -> kind) and claim (:data:`PART_KIND_CLAIMS`): the
    non-members' calibration (:func:`idia.evaluation.calibration`: shares at p <= 0.05 and
    0.01 with Clopper-Pearson intervals, one-sided binomial p-values, ``fails``, the
    randomized-PIT test; without the QQ points) and the members' power (share at p <= 0.05
    with its interval), each with n; ``<claim>_paper_null`` beside each, the same test against
    the paper's random decoys (where the run has it: the comparison the control must show
    failing). ``results``: a run's results table."""
    by_key = {normalize_name(name): kind for name, kind in kinds.items()}
    kind_of = results["name"].map(lambda name: by_key.get(normalize_name(name)))
    truth = results["truth"].astype("boolean")
    out: dict[str, dict[str, Any]] = {}
    for kind in NAME_PART_KINDS:
        chosen = (kind_of == kind).to_numpy()
        non_members = chosen & (truth == False).fillna(False).to_numpy()  # noqa: E712
        members = chosen & truth.fillna(False).to_numpy(bool)
        figures: dict[str, Any] = {"n_non_members": int(non_members.sum()),
                                   "n_members": int(members.sum())}
        for claim in PART_KIND_CLAIMS:
            for null in ("", PAPER_NULL):
                column = f"p_{TEST_COLUMNS[claim]}{null}"
                if column not in results or results[column].isna().all():
                    continue
                p = results[column].to_numpy(float)
                size = f"n_{TEST_COLUMNS[claim]}{null}" if null else NULL_SIZES[claim]
                sizes = results[size].to_numpy(float) if size in results else None
                fit = calibration(p[non_members],
                                  None if sizes is None else sizes[non_members], seed)
                fit.pop("qq")
                figures[claim + null] = {"non_members": fit, "members": _power(p[members])}
        out[kind] = figures
    return out


def _power(p: np.ndarray) -> dict[str, Any]:
    """The share of ``p`` at most :data:`POWER_LEVEL` (NaN: not tested, left out)."""
    check = level_check(p[~np.isnan(p)], POWER_LEVEL)
    return {key: check[key] for key in ("level", "count", "n", "share", "ci")}


# --- Demographic groups ----------------------------------------------------------------------


@dataclass(frozen=True)
class FaceStatistics:
    """What the face test needs from a run folder, in the run's person order: ``matrix``
    (N, N), entry (i, j) person i's name's mean response on person j's photos (as many photos
    as i has; the diagonal on i's own), and each person's name, sex, truth and whether they
    have photos."""

    matrix: np.ndarray
    names: tuple[str, ...]
    sexes: tuple[str | None, ...]
    truth: np.ndarray  # bool; False also where unknown (see known)
    known: np.ndarray
    has_photos: np.ndarray


def face_statistics(folder: RunFolder) -> FaceStatistics:
    """The face test's statistics recomputed from a run's stored responses exactly as the
    audit computed them (:func:`idia.claims.matched_means` with the run's seed), so any
    reference mask can be tried on them (:func:`idia.claims.face_tests`)."""
    results = folder.results.sort_values("person").reset_index(drop=True)
    if folder.responses is None:
        raise ValueError(f"{folder.path} has no responses (a closed-box model): the face test "
                         "cannot be recomputed")
    names = [str(name) for name in results["name"]]
    _, cross = split_responses(folder.responses, len(names))
    real_index = np.array([folder.candidates.index_of(name) for name in names])
    seed = int(folder.config.get("seed", 0))
    matrix = claims.matched_means(cross, real_index, seed, [name_key(n) for n in names])
    truth = results["truth"].astype("boolean")
    return FaceStatistics(
        matrix=matrix,
        names=tuple(names),
        sexes=tuple(None if pd.isna(s) else str(s) for s in results["sex"]),
        truth=truth.fillna(False).to_numpy(bool),
        known=truth.notna().to_numpy(bool),
        has_photos=(results["n_photos"] > 0).to_numpy(bool),
    )


def trait_features(traits: Sequence[FaceTraits]) -> np.ndarray:
    """(N, F): the oracle's view of each face (:data:`ORACLE_TRAITS`): every column
    standardized over the people (constant ones dropped), each trait's block scaled to weigh
    the same whatever its width (skin tone 1 column, a colour 3)."""
    blocks = []
    for trait in ORACLE_TRAITS:
        values = [getattr(person, trait) for person in traits]
        block = np.asarray([v if isinstance(v, tuple) else (v,) for v in values], float)
        spread = block.std(axis=0)
        keep = spread > 0
        if keep.any():
            block = (block[:, keep] - block[:, keep].mean(axis=0)) / spread[keep]
            blocks.append(block / np.sqrt(block.shape[1]))
    return np.hstack(blocks) if blocks else np.zeros((len(traits), 0))


def nearest_references(
    candidates: np.ndarray, features: np.ndarray, neighbours: np.ndarray
) -> np.ndarray:
    """(N, N): for each person i, the ``neighbours[i]`` people nearest to i in ``features``
    among i's ``candidates`` (a reference mask, e.g. :func:`idia.claims.reference_mask`);
    all of them when there are fewer."""
    distances = np.linalg.norm(features[:, None, :] - features[None, :, :], axis=-1)
    distances = np.where(candidates, distances, np.inf)
    order = np.argsort(distances, axis=1, kind="stable")
    ranks = np.empty_like(order)
    ranks[np.arange(len(order))[:, None], order] = np.arange(order.shape[1])
    return candidates & (ranks < np.asarray(neighbours)[:, None])


def group_face_figures(
    folder: RunFolder, groups: Mapping[str, str], traits: Mapping[str, FaceTraits]
) -> dict[str, Any]:
    """The face test per demographic group, against today's sex-only references and against
    the lookalike oracle (:data:`ORACLE_RULE`): per group (and "all"), non-members' shares at
    p <= 0.05 and 0.01 (false positives of a single check; Clopper-Pearson intervals,
    one-sided binomial p-values) and their mean z (about 0 under the null, with its standard
    error: a continuous sign of bias where p-values are coarse), members' power at p <= 0.05,
    AUC over everyone; and ``non_member_response_by_group``: the mean response of a group's
    non-member names on each group's faces (same sex, other people), which shows whether the
    model learned the groups' pairing at all. ``groups``, ``traits``: per name of the run's
    people."""
    stats = face_statistics(folder)
    keys = [normalize_name(name) for name in stats.names]
    groups_by_key = {normalize_name(n): g for n, g in groups.items()}
    traits_by_key = {normalize_name(n): t for n, t in traits.items()}
    missing = [n for n, k in zip(stats.names, keys, strict=True) if k not in groups_by_key
               or k not in traits_by_key]
    if missing:
        raise ValueError(f"no group or traits for {len(missing)} people, e.g. {missing[0]!r}")
    group = np.array([groups_by_key[k] for k in keys], dtype=object)
    sex_only = claims.reference_mask(list(stats.sexes), stats.has_photos)
    own_group = sex_only & (group[:, None] == group[None, :])
    matched = nearest_references(
        sex_only, trait_features([traits_by_key[k] for k in keys]), own_group.sum(axis=1)
    )
    labels = sorted(set(group))
    out: dict[str, Any] = {
        "groups": labels,
        "oracle": ORACLE_RULE,
        "references": {},
    }
    for kind, mask in (("sex_only", sex_only), ("trait_matched", matched)):
        tests = claims.face_tests(stats.matrix, mask)
        p = np.where(stats.has_photos, tests.p_value, np.nan)
        sizes = mask.sum(axis=1)[stats.has_photos]
        by_group = {}
        for label in [*labels, "all"]:
            chosen = stats.known & (group == label if label != "all" else True)
            non_members = chosen & ~stats.truth
            tested = non_members & ~np.isnan(p)
            z = tests.z[tested & ~np.isnan(tests.z)]
            by_group[label] = {
                "non_members": {
                    "n": int(tested.sum()),
                    **{f"at_{level:g}": level_check(p[tested], level) for level in (0.05, 0.01)},
                    "mean_z": to_json_number(z.mean()) if z.size else None,
                    "mean_z_se": to_json_number(z.std(ddof=1) / np.sqrt(z.size))
                    if z.size > 1 else None,
                },
                "members": _power(p[chosen & stats.truth]),
            }
        scored = stats.known & ~np.isnan(tests.z)
        same_group = (mask & (group[:, None] == group[None, :])).sum(axis=1)[stats.has_photos]
        out["references"][kind] = {
            "n_references": {"min": int(sizes.min()), "median": float(np.median(sizes)),
                             "max": int(sizes.max())},
            "p_floor": to_json_number(1 / (1 + np.median(sizes))),
            "same_group_share": to_json_number(same_group.sum() / max(sizes.sum(), 1)),
            "auc": to_json_number(roc_curve(tests.z[scored], stats.truth[scored]).auc),
            "by_group": by_group,
        }
    out["non_member_response_by_group"] = {
        name_group: {
            face_group: to_json_number(np.nanmean(stats.matrix[
                (group == name_group)[:, None] & (stats.known & ~stats.truth)[:, None]
                & (group == face_group)[None, :] & sex_only
            ])) if ((group == name_group) & stats.known & ~stats.truth).any() else None
            for face_group in labels
        }
        for name_group in labels
    }
    audit_p = folder.results.sort_values("person")["p_face"].to_numpy(float)
    recomputed = np.where(stats.has_photos,
                          claims.face_tests(stats.matrix, sex_only).p_value, np.nan)
    out["sex_only_matches_audit"] = bool(np.allclose(recomputed, audit_p, equal_nan=True))
    return out
