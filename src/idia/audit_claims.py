"""The tests of :mod:`idia.claims` over an audit's people: what the run folder stores for them,
and the per-person p-values, q-values and verdicts computed from it.

Per person the audit stores the responses of :class:`idia.claims.Responses` (``parts/
NNNNNN.responses.parquet``, merged into ``RUN/responses.parquet``): per photo, the own name and
every decoy of the paper's candidates ranked within {own name} + decoys (the name test against
the paper's decoys, kept as a comparison: ``*_paper_null`` columns), and every real name of
the audit ranked against the decoys (the face test's references: each person's name on every
other person's photos). The name test itself compares the name with the person's own
full-name decoys (:mod:`idia.name_null`): ``parts/NNNNNN.name_responses.parquet``, merged
into ``RUN/name_responses.parquet``, holds per photo the responses of the name and each of
those decoys and the top answer among them per template. ``RUN/text_only.parquet`` holds the
text-only test of every real name, against its full-name decoys and against the paper's.
Closed-box models reveal no scores: then only the top-1 counting versions run, and a name test
needs the text tower (idia.name_null's ``closed_box``): not tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from idia import claims
from idia.metrics import binomial_interval, confusion_counts, rates, roc_curve, to_json_number
from idia.names import CandidateSet, normalize_name
from idia.people import Person, name_key

# results.parquet columns per test: p-value, z (continuous score), BH q-value, verdict.
TEST_COLUMNS: dict[str, str] = {
    "name_familiarity": "name",
    "face_association": "face",
    "text_only": "text",
}
# The size of each test's null sample per person (results columns): the randomized PIT of the
# calibration check needs it.
NULL_SIZES: dict[str, str] = {
    "name_familiarity": "n_name_null",
    "face_association": "n_face_reference",
    "text_only": "n_text_null",
}
# The best TPR among thresholds whose FPR on these very non-members is at most 1% / 0.1%: the
# threshold is chosen on the people it is reported on, so the figure is optimistic (labelled
# empirical; the pre-set operating points below are the ones whose FPR bound holds).
EMPIRICAL_LOW_FPRS: dict[str, float] = {
    "empirical_tpr_at_1pct_fpr": 0.01,
    "empirical_tpr_at_0.1pct_fpr": 0.001,
}
# Pre-set operating points of the calibrated tests: each person's p <= level. A valid p-value
# keeps the expected FPR at most the level by construction (rules.<rule>.at_p_0.01).
AT_P_LEVELS: tuple[float, ...] = (0.01, 0.001)
# The p-value behind each p-based rule ("any_claim": Simes over the person's claims).
RULE_P_COLUMNS: dict[str, str] = {
    **{claim: f"p_{short}" for claim, short in TEST_COLUMNS.items()},
    "any_claim": "p_person",
}

def at_p_key(level: float) -> str:
    """'at_p_0.01' for 0.01: the key of a pre-set operating point."""
    return f"at_p_{level:g}"


def responses_table(person: int, responses: claims.Responses) -> pa.Table:
    """One person's per-photo responses: person, photo, name (list), cross (list)."""
    n_photos = responses.name.shape[0]
    return pa.table(
        {
            "person": pa.array(np.full(n_photos, person, np.int64)),
            "photo": pa.array(np.arange(n_photos, dtype=np.int64)),
            "name": _list_array(responses.name),
            "cross": _list_array(responses.cross),
        }
    )


def _list_array(values: np.ndarray) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, np.float32).ravel())
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def read_responses(paths: Sequence[Path]) -> pa.Table | None:
    """The responses tables that exist, concatenated (None if there are none)."""
    tables = [pq.read_table(path) for path in paths if path.exists()]
    return pa.concat_tables(tables) if tables else None


def _values(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    width = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).reshape(-1, width).astype(np.float32)


def name_responses_table(person: int, answer: Any) -> pa.Table:
    """One person's photos against their full-name decoys (:class:`idia.engine.Predictions`
    on the candidate set {name} + decoys): person, photo, name (the responses of the name and
    each decoy, a list as long as 1 + decoys), best (the top answer per template)."""
    name = np.ascontiguousarray(answer.responses.name, np.float32)
    best = np.ascontiguousarray(answer.best, np.int32)
    n_photos = name.shape[0]
    return pa.table(
        {
            "person": pa.array(np.full(n_photos, person, np.int64)),
            "photo": pa.array(np.arange(n_photos, dtype=np.int64)),
            "name": _variable_list(name),
            "best": _variable_list(best),
        }
    )


def _variable_list(values: np.ndarray) -> pa.ListArray:
    """Rows of a 2-D array as a list column whose width may differ between people."""
    offsets = pa.array(np.arange(values.shape[0] + 1, dtype=np.int32) * values.shape[1])
    return pa.ListArray.from_arrays(offsets, pa.array(values.ravel()))


def split_name_responses(
    table: pa.Table | None, n_people: int
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """Per person: the full-name responses (P, 1 + D) and top answers (P, T) of
    :func:`name_responses_table`, None without them (no photos, or not tested)."""
    names: list[np.ndarray | None] = [None] * n_people
    best: list[np.ndarray | None] = [None] * n_people
    if table is None or table.num_rows == 0:
        return names, best
    table = table.sort_by([("person", "ascending"), ("photo", "ascending")])
    people = table["person"].to_numpy()
    name_rows = table["name"].to_pylist()
    best_rows = table["best"].to_pylist()
    for person in np.unique(people):
        rows = np.flatnonzero(people == person)
        names[person] = np.asarray([name_rows[r] for r in rows], np.float32)
        best[person] = np.asarray([best_rows[r] for r in rows], np.int64)
    return names, best


def split_responses(
    table: pa.Table | None, n_people: int
) -> tuple[list[np.ndarray | None], list[np.ndarray | None]]:
    """Per person: the name-test table (P, 1 + D) and the cross table (P, R), None without
    photos or without scores."""
    names: list[np.ndarray | None] = [None] * n_people
    cross: list[np.ndarray | None] = [None] * n_people
    if table is None or table.num_rows == 0:
        return names, cross
    table = table.sort_by([("person", "ascending"), ("photo", "ascending")])
    name_values, cross_values = _values(table["name"]), _values(table["cross"])
    people = table["person"].to_numpy()
    for person in np.unique(people):
        rows = people == person
        names[person], cross[person] = name_values[rows], cross_values[rows]
    return names, cross


def text_only_table(
    statistics: tuple[np.ndarray, np.ndarray] | None,
    candidates: CandidateSet,
    full_name: Mapping[int, claims.TestResult],
) -> pd.DataFrame | None:
    """The text-only test of every real name (None for a closed-box model): against its
    full-name decoys (``full_name``: by real name index, see
    :meth:`idia.engine.IdentityInferenceAttack.text_only_test`; NaN where not tested) and,
    as a comparison, against the paper's same-sex decoys (``statistics``, the ``*_paper_null``
    columns)."""
    if statistics is None:
        return None
    real_stats, decoy_stats = statistics
    rows = []
    for index in range(candidates.n_real):
        paper = claims.text_test(
            real_stats[index], decoy_stats[index], candidates.decoy_sexes, candidates.sexes[index]
        )
        own = full_name.get(index)
        tested = own is not None and own.tested
        rows.append(
            {
                "real_index": index,
                "text_statistic": own.statistic if tested else np.nan,
                "p_text": own.p_value if tested else np.nan,
                "z_text": (np.nan if own.z is None else own.z) if tested else np.nan,
                "n_text_null": own.n_null if tested else 0,
                "text_statistic_paper_null": paper.statistic,
                "p_text_paper_null": paper.p_value,
                "z_text_paper_null": paper.z,
                "n_text_paper_null": paper.n_null,
            }
        )
    return pd.DataFrame(rows)


def claim_columns(
    grid: np.ndarray,
    n_photos: np.ndarray,
    real_index: np.ndarray,
    people: Sequence[Person],
    candidates: CandidateSet,
    face_sexes: Sequence[str | None],
    name_tables: Sequence[np.ndarray | None],
    cross_tables: Sequence[np.ndarray | None],
    text: pd.DataFrame | None,
    seed: int,
    alpha: float,
    full_name_tables: Sequence[np.ndarray | None] | None = None,
    full_name_best: Sequence[np.ndarray | None] | None = None,
    public_face: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per person: the three tests (continuous where the model gave scores, top-1 counts
    otherwise and beside them, their ties broken at random with draws seeded by ``seed`` and
    the person's name, the conservative p-values beside them), BH q-values across the audit
    per claim, and one verdict over all claims (:func:`idia.claims.hierarchical_verdicts`).

    The name test compares each person's name with their full-name decoys
    (``full_name_tables``, ``full_name_best``: :func:`split_name_responses`; None for a person
    not tested); the same test against the paper's decoys (``name_tables``) is kept beside it
    (``p_name_paper_null``, ``z_name_paper_null``). A run without full-name nulls (older than
    them: ``full_name_best`` None) keeps the paper's decoys as the name test's null.
    ``public_face``: the face tests against a public reference (rows of the run's ``face``
    parts), which replace those against the audited people."""
    n = len(people)
    has_photos = n_photos > 0
    legacy = full_name_best is None
    full_tables = list(full_name_tables or [None] * n)
    full_best = list(full_name_best or [None] * n)
    keys = [name_key(p.name) for p in people]
    names = [normalize_name(p.name) for p in people]
    mask = claims.reference_mask(face_sexes, has_photos)
    decoys, decoy_sexes = candidates.decoy_indices, candidates.decoy_sexes
    name_sexes = [candidates.sexes[r] if r >= 0 else None for r in real_index]
    out: dict[str, Any] = {}

    # top-1 counting versions (any model): the name test against the full-name decoys, the
    # same against the paper's decoys (a comparison), and the face test
    hit_table = np.stack(
        [claims.hit_counts(grid[i, : max(n_photos[i], 0)], len(candidates)) for i in range(n)]
    )
    p_paper_hit, z_paper_hit, p_paper_hit_conservative, n_paper_null = (
        np.full(n, np.nan) for _ in range(4)
    )
    p_hit, p_hit_conservative, z_hit, n_name_null = (np.full(n, np.nan) for _ in range(4))
    for i in np.flatnonzero(has_photos):
        paper = claims.name_hit_test(hit_table[i], real_index[i], decoys, decoy_sexes,
                                     name_sexes[i],
                                     claims.tie_break_draw(seed, names[i], "name_top1"))
        p_paper_hit[i], z_paper_hit[i] = paper.p_value, _number(paper.z)
        p_paper_hit_conservative[i], n_paper_null[i] = paper.p_conservative, paper.n_null
        if full_best[i] is None or full_tables[i] is None:
            continue
        width = full_tables[i].shape[1]  # the name and its decoys
        result = claims.name_hit_test(claims.hit_counts(full_best[i], width), 0,
                                      np.arange(1, width), np.full(width - 1, None), None,
                                      claims.tie_break_draw(seed, names[i], "name_top1"))
        p_hit[i], p_hit_conservative[i] = result.p_value, result.p_conservative
        z_hit[i], n_name_null[i] = _number(result.z), result.n_null
    real_hits = [
        None if not has_photos[i] else (grid[i, : n_photos[i], :, None] == np.arange(
            candidates.n_real)).sum(axis=1).astype(np.float64)
        for i in range(n)
    ]
    face_hits = claims.face_tests(
        claims.matched_means(real_hits, real_index, seed, keys), mask,
        np.array([claims.tie_break_draw(seed, name, "face_top1") for name in names]),
    )
    if legacy:
        p_hit, z_hit, p_hit_conservative = p_paper_hit, z_paper_hit, p_paper_hit_conservative
        n_name_null = n_paper_null
    out["p_name_top1"], out["z_name_top1"] = p_hit, z_hit
    out["p_name_top1_conservative"] = p_hit_conservative
    out["p_face_top1"], out["z_face_top1"] = _masked(face_hits.p_value, has_photos), _masked(
        face_hits.z, has_photos
    )
    out["p_face_top1_conservative"] = _masked(face_hits.p_conservative, has_photos)

    continuous = all(name_tables[i] is not None for i in np.flatnonzero(has_photos))
    if continuous and has_photos.any():
        name_p, name_z, name_stat = (np.full(n, np.nan) for _ in range(3))
        paper_p, paper_z = np.full(n, np.nan), np.full(n, np.nan)
        for i in np.flatnonzero(has_photos):
            paper = claims.name_test(name_tables[i], decoy_sexes, name_sexes[i])
            paper_p[i], paper_z[i] = paper.p_value, _number(paper.z)
            if legacy:
                name_p[i], name_stat[i], name_z[i] = paper_p[i], paper.statistic, paper_z[i]
                continue
            if full_tables[i] is None:
                continue
            width = full_tables[i].shape[1] - 1
            result = claims.name_test(full_tables[i], np.full(width, None), None)
            name_p[i], name_stat[i], name_z[i] = result.p_value, result.statistic, _number(
                result.z)
            n_name_null[i] = result.n_null
        face = claims.face_tests(
            claims.matched_means(list(cross_tables), real_index, seed, keys), mask
        )
        out |= {"name_statistic": name_stat, "p_name": name_p, "z_name": name_z}
        out |= {"p_name_paper_null": paper_p, "z_name_paper_null": paper_z}
        out |= {
            "face_statistic": _masked(face.statistic, has_photos),
            "p_face": _masked(face.p_value, has_photos),
            "z_face": _masked(face.z, has_photos),
            "face_blind": _masked(face.face_blind, has_photos),
        }
        n_reference = face.n_reference
        method = "response"
    else:
        out |= {"p_name": p_hit, "z_name": z_hit, "p_face": out["p_face_top1"],
                "z_face": out["z_face_top1"]}
        out |= {"p_name_paper_null": p_paper_hit, "z_name_paper_null": z_paper_hit}
        n_reference = face_hits.n_reference
        method = "top1"
    out["n_name_null"] = np.where(has_photos, np.nan_to_num(n_name_null), 0).astype(np.int64)
    out["n_face_reference"] = np.where(has_photos, n_reference, 0)
    out["face_reference_same_sex"] = _same_sex_rows(mask, face_sexes)
    if public_face is not None:
        out |= _public_face_columns(public_face, n, has_photos, method)
    text_columns = ("text_statistic", "p_text", "z_text", "n_text_null", "p_text_paper_null",
                    "z_text_paper_null")
    if text is not None:
        by_index = text.set_index("real_index")
        for column in text_columns:
            if column in by_index:  # runs older than the full-name null lack the last two
                out[column] = by_index[column].reindex(real_index).to_numpy(float)
    else:
        out["p_text"] = np.full(n, np.nan)
        out["z_text"] = np.full(n, np.nan)
    frame = pd.DataFrame(out)
    for short in TEST_COLUMNS.values():
        frame[f"q_{short}"] = claims.benjamini_hochberg(frame[f"p_{short}"].to_numpy(float))
        frame[f"{short}_verdict"] = (frame[f"q_{short}"] <= alpha).fillna(False).astype(bool)
    frame = pd.concat([frame, verdict_columns(frame, alpha)], axis=1)
    frame.attrs["method"] = method
    return frame


def _number(value: float | None) -> float:
    return np.nan if value is None else float(value)
PUBLIC_FACE_COLUMNS = ("face_statistic", "z_face", "face_blind", "p_face_top1", "z_face_top1",
                       "p_face_top1_conservative")


def _public_face_columns(
    rows: pd.DataFrame, n: int, has_photos: np.ndarray, method: str
) -> dict[str, np.ndarray]:
    """The face-test columns of results from the public reference's rows (one per person
    with photos; NaN where a person's test could not run, with ``face_reason``)."""
    table = rows.set_index("person").reindex(range(n))

    def column(name: str) -> np.ndarray:
        values = table[name].to_numpy(float) if name in table else np.full(n, np.nan)
        return _masked(values, has_photos)

    out = {name: column(name) for name in PUBLIC_FACE_COLUMNS}
    out["p_face"] = column("p_face") if method == "response" else out["p_face_top1"]
    if method != "response":
        out["z_face"] = out["z_face_top1"]
    out["n_face_reference"] = np.nan_to_num(column("n_face_reference")).astype(np.int64)
    out["face_reference_same_sex"] = out["n_face_reference"] > 0
    for text in ("face_sex", "face_matching", "face_reason"):
        out[text] = table[text].to_numpy(object) if text in table else np.full(n, None)
    out["face_photos"] = column("face_photos")
    return out


def verdict_columns(frame: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """One verdict per person over all claims (Benjamini-Bogomolov): ``p_person`` (Simes),
    ``q_person`` (BH over people), ``{short}_holds`` (the claims that hold for the people
    selected) and ``verdict``, the strongest of them (None: no evidence)."""
    order = list(TEST_COLUMNS)
    p = np.column_stack([frame[f"p_{TEST_COLUMNS[c]}"].to_numpy(float) for c in order])
    result = claims.hierarchical_verdicts(p, alpha)
    out = pd.DataFrame({"p_person": result.p_person, "q_person": result.q_person},
                       index=frame.index)
    for j, claim in enumerate(order):
        out[f"{TEST_COLUMNS[claim]}_holds"] = result.holds[:, j]
    strength = [order.index(claim) for claim in claims.STRENGTH]
    out["verdict"] = [
        next((order[j] for j in strength if row[j]), None) for row in result.holds
    ]
    return out


def _masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, values, np.nan)


def _same_sex_rows(mask: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    sex = np.asarray([s if s in ("f", "m") else "" for s in sexes], dtype=object)
    matched = (~mask | (sex[None, :] == sex[:, None])).all(axis=1)
    return matched & (sex != "")


def rule_verdicts(judged: pd.DataFrame, alpha: float) -> dict[str, dict[str, Any]]:
    """Every rule the results rows ``judged`` allow: its verdicts (``verdict``; None for a
    baseline score), its continuous score (``score``, higher = member, or None) and, for the
    rules with a p-value, the per-person operating points ``unadjusted`` (p <= alpha, what a
    single check says) and ``at_p_0.01``, ``at_p_0.001`` (boolean arrays)."""

    def column(name: str) -> np.ndarray | None:
        return judged[name].to_numpy(float) if name in judged else None

    def operating_points(p: np.ndarray) -> dict[str, np.ndarray]:
        return {"unadjusted": p <= alpha} | {at_p_key(level): p <= level for level in AT_P_LEVELS}

    rules: dict[str, dict[str, Any]] = {
        "paper": {"verdict": judged["member"].to_numpy(bool), "score": column("score")}
    }
    for claim, short in TEST_COLUMNS.items():
        if f"p_{short}" in judged and judged[f"p_{short}"].notna().any():
            rules[claim] = {
                "verdict": judged[f"{short}_verdict"].to_numpy(bool),
                "score": column(f"z_{short}"),
                **operating_points(judged[f"p_{short}"].to_numpy(float)),
            }
    if "p_person" in judged and judged["p_person"].notna().any():
        p_person = judged["p_person"].to_numpy(float)
        rules["any_claim"] = {
            "verdict": judged["verdict"].notna().to_numpy(bool),
            "score": -p_person,
            **operating_points(p_person),
        }
    if "face_blind" in judged:
        rules["face_blind"] = {"verdict": None, "score": np.abs(column("face_blind"))}
    return rules


def rule_summary(
    verdict: np.ndarray | None,
    score: np.ndarray | None,
    truth: np.ndarray,
    counts: np.ndarray | None,
    ci_method: str = "wilson",
) -> dict[str, Any]:
    """TPR, FPR with their people and 95% intervals, AUC of a continuous score (higher =
    member) and the empirical TPR at low FPR (threshold chosen on these non-members), TPR by
    training count, for one rule over people with known truth. A rule without verdicts (a
    baseline score) gets only the ROC figures."""
    truth = np.asarray(truth, bool)
    n_members, n_non = int(truth.sum()), int((~truth).sum())
    out: dict[str, Any] = {"n_members": n_members, "n_non_members": n_non}
    if verdict is not None:
        verdict = np.asarray(verdict, bool)
        counts_ = confusion_counts(verdict, truth)
        rate = rates(counts_)
        tpr_low, tpr_high = binomial_interval(int(counts_["tp"]), n_members, ci_method)
        fpr_low, fpr_high = binomial_interval(int(counts_["fp"]), n_non, ci_method)
        out |= {k: int(v) for k, v in counts_.items()}
        out |= {
            "tpr": to_json_number(rate["tpr"]),
            "tpr_ci": [to_json_number(tpr_low), to_json_number(tpr_high)],
            "fpr": to_json_number(rate["fpr"]),
            "fpr_ci": [to_json_number(fpr_low), to_json_number(fpr_high)],
        }
    if score is not None:
        valid = ~np.isnan(np.asarray(score, float))
        roc = roc_curve(np.asarray(score, float)[valid], truth[valid])
        out["auc"] = to_json_number(roc.auc)
        out |= {key: to_json_number(roc.tpr_at_fpr(f)) for key, f in EMPIRICAL_LOW_FPRS.items()}
        out["n_scored"] = int(valid.sum())
    if counts is not None and verdict is not None:
        by_count: dict[str, Any] = {}
        known = ~pd.isna(counts)
        for value in sorted({int(c) for c, k in zip(counts, known, strict=True) if k}):
            members = truth & known & (np.asarray(counts, dtype=object) == value)
            if not members.any():
                continue
            n = int(members.sum())
            hits = int(verdict[members].sum())
            low, high = binomial_interval(hits, n, ci_method)
            by_count[str(value)] = {
                "n": n,
                "tpr": hits / n,
                "ci": [to_json_number(low), to_json_number(high)],
            }
        out["tpr_by_count"] = by_count
    return out
