"""The calibrated tests of :mod:`idia.claims`, recomputed for every draw of photos, and how
well their p-values fit the uniform distribution on people the model cannot know."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from idia import claims
from idia.evaluation._run import ClaimData
from idia.metrics import wilson_interval

DRAWN_CLAIMS: tuple[str, ...] = ("name_familiarity", "face_association")


def draw_claims(
    data: ClaimData, selected: np.ndarray, included: np.ndarray, alpha: float
) -> dict[str, dict[str, np.ndarray]]:
    """Per claim: ``p``, ``z`` and BH ``verdict`` arrays (draws, people) for the photos in
    ``selected`` (draws, people, photos); people not ``included`` get NaN and no verdict, and
    serve as nobody's face-test reference."""
    n_draws, n_people, _ = selected.shape
    counts = selected.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        weights = np.where(counts > 0, selected / counts, 0.0)
    out: dict[str, dict[str, np.ndarray]] = {}

    name_p = np.full((n_draws, n_people), np.nan)
    name_z = np.full((n_draws, n_people), np.nan)
    for i in np.flatnonzero(included):
        table = data.name[i]
        means = weights[:, i, : len(table)] @ table  # (draws, 1 + D)
        valid = np.broadcast_to(data.same_sex[i], means[:, 1:].shape)
        name_p[:, i], name_z[:, i], _ = claims.rank_p_values(means[:, 0], means[:, 1:], valid)
    out["name_familiarity"] = {"p": name_p, "z": name_z}

    cross = np.nan_to_num(data.cross[:, : selected.shape[2]], nan=0.0)
    matrix = np.einsum("djp,jpi->dij", weights, cross)  # (draws, i, j)
    mask = data.reference & included[None, :] & included[:, None]
    face = claims.face_tests(np.where(mask | np.eye(n_people, dtype=bool), matrix, np.nan), mask)
    out["face_association"] = {
        "p": np.where(included, face.p_value, np.nan),
        "z": np.where(included, face.z, np.nan),
        "face_blind": np.where(included, face.face_blind, np.nan),
    }
    for result in out.values():
        q = claims.benjamini_hochberg(np.where(included, result["p"], np.nan))
        result["verdict"] = np.nan_to_num(q, nan=1.0) <= alpha
    return out


def calibration(p_values: np.ndarray) -> dict[str, Any]:
    """Kolmogorov-Smirnov test of p-values against the uniform distribution, and the
    quantiles for a QQ plot (expected vs observed)."""
    p = np.sort(np.asarray(p_values, float)[~np.isnan(np.asarray(p_values, float))])
    if p.size < 2:
        return {"n": int(p.size), "ks_p": None, "ks_statistic": None,
                "share_at_most_0.05": None, "share_at_most_0.05_ci": None, "qq": []}
    test = stats.kstest(p, "uniform")
    low = int((p <= 0.05).sum())
    expected = (np.arange(1, p.size + 1) - 0.5) / p.size
    return {
        "n": int(p.size),
        "ks_p": float(test.pvalue),
        "ks_statistic": float(test.statistic),
        "share_at_most_0.05": low / p.size,
        "share_at_most_0.05_ci": [float(x) for x in wilson_interval(low, p.size)],
        "qq": [[float(e), float(o)] for e, o in zip(expected, p, strict=True)],
    }
