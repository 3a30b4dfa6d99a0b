"""The calibrated tests of :mod:`idia.claims`, recomputed for every draw of photos, and how
well their p-values fit a valid test on people the model cannot know: one-sided checks at
0.05 and 0.01 with exact intervals (fit for discrete p-values), and a randomized-PIT
uniformity test."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from idia import claims
from idia.evaluation._run import ClaimData
from idia.metrics import clopper_pearson_interval

DRAWN_CLAIMS: tuple[str, ...] = ("name_familiarity", "face_association")
CALIBRATION_LEVELS: tuple[float, ...] = (0.05, 0.01)  # summary keys at_0.05, at_0.01


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
        if table is None:  # a name not tested (no comparable decoys)
            continue
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


def calibration(
    p_values: np.ndarray, n_null: np.ndarray | None = None, seed: int = 0
) -> dict[str, Any]:
    """How p-values of people for whom the null holds (non-members) fit a valid test.

    ``at_0.05``, ``at_0.01``: the share of p <= level with its 95% Clopper-Pearson interval,
    the exact one-sided binomial p-value of "share <= level" (``p_excess``) and ``exceeds``:
    the interval lies wholly above the level (too many small p-values beyond chance). These
    checks fit discrete p-values: a valid test, however coarse or tied, has share <= level.
    ``fails``: some level exceeds (None without p-values).

    ``pit``: with ``n_null`` (each p-value's null size), the randomized probability integral
    transform u = p - V / (1 + n_null), V uniform (seeded): exactly uniform when p is uniform
    on {1, ..., 1 + n} / (1 + n) (a rank test with no ties or ties broken at random), tested
    with Kolmogorov-Smirnov (``p``: two-sided, any departure, conservative ones included;
    ``p_excess``: one-sided, too many small values). ``qq``: points for a QQ plot.
    """
    values = np.asarray(p_values, float)
    keep = ~np.isnan(values)
    p = values[keep]
    out: dict[str, Any] = {"n": int(p.size)}
    for level in CALIBRATION_LEVELS:
        out[f"at_{level:g}"] = level_check(p, level)
    out["fails"] = None if not p.size else any(
        out[f"at_{level:g}"]["exceeds"] for level in CALIBRATION_LEVELS
    )
    out["pit"] = randomized_pit_test(p, None if n_null is None else np.asarray(n_null)[keep],
                                     seed)
    ordered = np.sort(p)
    expected = (np.arange(1, p.size + 1) - 0.5) / max(p.size, 1)
    out["qq"] = [[float(e), float(o)] for e, o in zip(expected, ordered, strict=True)]
    return out


def level_check(p: np.ndarray, level: float) -> dict[str, Any]:
    """The share of ``p`` at most ``level``: count, n, share, 95% Clopper-Pearson interval,
    one-sided exact binomial p-value against share <= level, and whether it exceeds it."""
    n, count = int(p.size), int((p <= level).sum())
    if not n:
        return {"level": level, "count": 0, "n": 0, "share": None, "ci": None,
                "p_excess": None, "exceeds": None, "reason": "no p-values"}
    low, high = clopper_pearson_interval(count, n)
    return {
        "level": level,
        "count": count,
        "n": n,
        "share": count / n,
        "ci": [float(low), float(high)],
        "p_excess": float(stats.binom.sf(count - 1, n, level)),
        "exceeds": bool(low > level),
    }


def randomized_pit_test(p: np.ndarray, n_null: np.ndarray | None, seed: int) -> dict[str, Any]:
    """Kolmogorov-Smirnov tests of the randomized PIT of rank p-values (see
    :func:`calibration`); says why when it cannot run."""
    method = ("randomized PIT u = p - V / (1 + n_null), V ~ U(0, 1) from "
              "numpy.random.default_rng(seed); Kolmogorov-Smirnov against U(0, 1)")
    base: dict[str, Any] = {"method": method, "seed": seed, "n": int(p.size)}
    if n_null is None:
        return {**base, "p": None, "reason": "the null sizes are not in the run (an audit "
                "older than idia's randomized checks: rerun it)"}
    if not p.size:
        return {**base, "p": None, "reason": "no p-values"}
    spread = np.random.default_rng(seed).random(p.size) / (1 + np.asarray(n_null, float))
    pit = np.clip(p - spread, 0.0, 1.0)
    two_sided = stats.kstest(pit, "uniform")
    excess = stats.kstest(pit, "uniform", alternative="greater")
    return {**base, "statistic": float(two_sided.statistic), "p": float(two_sided.pvalue),
            "p_excess": float(excess.pvalue)}
