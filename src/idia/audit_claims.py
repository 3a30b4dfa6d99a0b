"""The tests of :mod:`idia.claims` over an audit's people: what the run folder stores for them,
and the per-person p-values, q-values and verdicts computed from it.

Per person the audit stores the responses of :class:`idia.claims.Responses` (``parts/
NNNNNN.responses.parquet``, merged into ``RUN/responses.parquet``): per photo, the own name and
every decoy ranked within {own name} + decoys (the name test's null), and every real name of
the audit ranked against the decoys (the face test's references: each person's name on every
other person's photos). ``RUN/text_only.parquet`` holds the text-only test of every real name.
Closed-box models reveal no scores: then only the top-1 counting versions run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from idia import claims
from idia.metrics import binomial_interval, confusion_counts, rates, roc_curve, to_json_number
from idia.names import CandidateSet
from idia.people import Person, name_key

# results.parquet columns per test: p-value, z (continuous score), BH q-value, verdict.
TEST_COLUMNS: dict[str, str] = {
    "name_familiarity": "name",
    "face_association": "face",
    "text_only": "text",
}
LOW_FPRS: dict[str, float] = {"tpr_at_1pct_fpr": 0.01, "tpr_at_0.1pct_fpr": 0.001}

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
    statistics: tuple[np.ndarray, np.ndarray] | None, candidates: CandidateSet
) -> pd.DataFrame | None:
    """The text-only test of every real name (None for a closed-box model)."""
    if statistics is None:
        return None
    real_stats, decoy_stats = statistics
    rows = []
    for index in range(candidates.n_real):
        result = claims.text_test(
            real_stats[index], decoy_stats[index], candidates.decoy_sexes, candidates.sexes[index]
        )
        rows.append(
            {
                "real_index": index,
                "text_statistic": result.statistic,
                "p_text": result.p_value,
                "z_text": result.z,
                "n_text_null": result.n_null,
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
) -> pd.DataFrame:
    """Per person: the three tests (continuous where the model gave scores, top-1 counts
    otherwise and beside them), BH q-values across the audit, verdicts at ``alpha``."""
    n = len(people)
    has_photos = n_photos > 0
    keys = [name_key(p.name) for p in people]
    mask = claims.reference_mask(face_sexes, has_photos)
    decoys, decoy_sexes = candidates.decoy_indices, candidates.decoy_sexes
    name_sexes = [candidates.sexes[r] if r >= 0 else None for r in real_index]
    out: dict[str, Any] = {}

    # top-1 counting versions (any model)
    hit_table = np.stack(
        [claims.hit_counts(grid[i, : max(n_photos[i], 0)], len(candidates)) for i in range(n)]
    )
    p_hit = np.full(n, np.nan)
    z_hit = np.full(n, np.nan)
    for i in np.flatnonzero(has_photos):
        result = claims.name_hit_test(hit_table[i], real_index[i], decoys, decoy_sexes,
                                      name_sexes[i])
        p_hit[i], z_hit[i] = result.p_value, np.nan if result.z is None else result.z
    real_hits = [
        None if not has_photos[i] else (grid[i, : n_photos[i], :, None] == np.arange(
            candidates.n_real)).sum(axis=1).astype(np.float64)
        for i in range(n)
    ]
    face_hits = claims.face_tests(
        claims.matched_means(real_hits, real_index, seed, keys), mask
    )
    out["p_name_top1"], out["z_name_top1"] = p_hit, z_hit
    out["p_face_top1"], out["z_face_top1"] = _masked(face_hits.p_value, has_photos), _masked(
        face_hits.z, has_photos
    )

    continuous = all(name_tables[i] is not None for i in np.flatnonzero(has_photos))
    if continuous and has_photos.any():
        name_p, name_z, name_stat = (np.full(n, np.nan) for _ in range(3))
        for i in np.flatnonzero(has_photos):
            result = claims.name_test(name_tables[i], decoy_sexes, name_sexes[i])
            name_p[i], name_stat[i] = result.p_value, result.statistic
            name_z[i] = np.nan if result.z is None else result.z
        face = claims.face_tests(
            claims.matched_means(list(cross_tables), real_index, seed, keys), mask
        )
        out |= {"name_statistic": name_stat, "p_name": name_p, "z_name": name_z}
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
        n_reference = face_hits.n_reference
        method = "top1"
    out["n_face_reference"] = np.where(has_photos, n_reference, 0)
    out["face_reference_same_sex"] = _same_sex_rows(mask, face_sexes)
    if text is not None:
        by_index = text.set_index("real_index")
        for column in ("text_statistic", "p_text", "z_text"):
            out[column] = by_index[column].reindex(real_index).to_numpy(float)
    else:
        out["p_text"] = np.full(n, np.nan)
        out["z_text"] = np.full(n, np.nan)
    frame = pd.DataFrame(out)
    for short in TEST_COLUMNS.values():
        frame[f"q_{short}"] = claims.benjamini_hochberg(frame[f"p_{short}"].to_numpy(float))
        frame[f"{short}_verdict"] = (frame[f"q_{short}"] <= alpha).fillna(False).astype(bool)
    frame["verdict"] = [_strongest(row) for row in frame.itertuples()]
    frame.attrs["method"] = method
    return frame


def _masked(values: np.ndarray, keep: np.ndarray) -> np.ndarray:
    return np.where(keep, values, np.nan)


def _same_sex_rows(mask: np.ndarray, sexes: Sequence[str | None]) -> np.ndarray:
    sex = np.asarray([s if s in ("f", "m") else "" for s in sexes], dtype=object)
    matched = (~mask | (sex[None, :] == sex[:, None])).all(axis=1)
    return matched & (sex != "")


def _strongest(row: Any) -> str | None:
    for claim in ("face_association", "name_familiarity", "text_only"):
        if getattr(row, f"{TEST_COLUMNS[claim]}_verdict"):
            return claim
    return None


def rule_summary(
    verdict: np.ndarray | None,
    score: np.ndarray | None,
    truth: np.ndarray,
    counts: np.ndarray | None,
    ci_method: str = "wilson",
) -> dict[str, Any]:
    """TPR, FPR with their people and 95% intervals, AUC of a continuous score (higher =
    member) and TPR at low FPR, TPR by training count, for one rule over people with known
    truth. A rule without verdicts (a baseline score) gets only the ROC figures."""
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
        out |= {key: to_json_number(roc.tpr_at_fpr(f)) for key, f in LOW_FPRS.items()}
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
