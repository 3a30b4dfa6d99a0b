"""Does detection rise with the number of injected pairs? A test valid under the lab's design.

The lab deals its injection counts to members at random (a seeded shuffle, counts dealt
evenly: :func:`idia.lab.train.assign_counts`). Under "the count changes nobody's detection",
every way of dealing the same counts among the same members is as likely as the one used, so
permuting the counts among members within each seed gives the exact null distribution of any
statistic, however the people of a seed depend on each other (they share a model, decoys and
reference people). The statistic is the score statistic of a logistic trend with a seed
effect, sum over people of (log count - its seed mean) x detected.

Beside the p-value: the slope of logit(detected) ~ log(count) + seed, fitted with Firth's
penalized likelihood (finite under separation) and its profile penalized-likelihood 95%
interval (Heinze and Schemper 2002). Separation, every detected member dealt a higher count
than every missed one within each seed, is the strongest trend the data can show: the
permutation p-value is then the smallest the design allows, and ``separation`` says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

PERMUTATIONS = 9999
CI_LEVEL = 0.95
MODEL = "logit(detected) ~ log(count) + seed, Firth-penalized"
METHOD = (
    "p: randomization test, counts permuted among members within each seed (two-sided, score "
    "statistic); slope and 95% interval: Firth-penalized logistic regression, profile "
    "penalized likelihood"
)


def detection_trend(
    members: pd.DataFrame, verdict: str, seed: int = 0, permutations: int = PERMUTATIONS
) -> dict[str, Any]:
    """The trend of ``members[verdict]`` (bool) with ``members["count"]`` within
    ``members["seed"]``: ``slope`` (log-odds per e-fold more pairs), ``ci``, ``p``, ``method``,
    ``separation``; ``reason`` instead of numbers when detection or the count does not vary."""
    detected = members[verdict].astype(bool).to_numpy()
    log_count = np.log(members["count"].astype(float).to_numpy())
    groups = members["seed"].to_numpy()
    base: dict[str, Any] = {
        "n": int(len(members)),
        "method": METHOD,
        "model": MODEL,
        "permutations": permutations,
        "seed": seed,
    }
    if len(set(detected)) < 2 or len(set(log_count)) < 2:
        return {**base, "slope": None, "ci": None, "p": None, "separation": False,
                "reason": "detection or the count does not vary: no trend can be measured"}
    p, separation = permutation_p(detected, log_count, groups, seed, permutations)
    design = trend_design(log_count, groups)
    fit = firth_logistic(design, detected)
    low, high = profile_interval(design, detected, fit, column=1)
    return {
        **base,
        "slope": float(fit[1]),
        "ci": [low, high],
        "p": p,
        "separation": separation,
    }


def trend_design(log_count: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Columns: intercept, log count, one indicator per seed but the first."""
    levels = list(dict.fromkeys(groups.tolist()))
    dummies = [(groups == level).astype(float) for level in levels[1:]]
    return np.column_stack([np.ones(len(log_count)), log_count, *dummies])


def permutation_p(
    detected: np.ndarray,
    log_count: np.ndarray,
    groups: np.ndarray,
    seed: int,
    permutations: int = PERMUTATIONS,
) -> tuple[float, bool]:
    """Two-sided randomization p-value of T = sum (x - seed mean of x) y, x permuted within
    each seed, and whether T is at the extreme the seeds allow (separation)."""
    rng = np.random.default_rng(seed)
    y = detected.astype(float)
    observed = 0.0
    extreme_high = extreme_low = 0.0
    null = np.zeros(permutations)
    for level in dict.fromkeys(groups.tolist()):
        rows = groups == level
        x = log_count[rows] - log_count[rows].mean()
        observed += float(x @ y[rows])
        ordered = np.sort(x)
        hits = int(y[rows].sum())
        extreme_high += float(ordered[len(ordered) - hits:].sum()) if hits else 0.0
        extreme_low += float(ordered[:hits].sum())
        null += rng.permuted(np.tile(x, (permutations, 1)), axis=1) @ y[rows]
    tolerance = 1e-9 * max(1.0, abs(extreme_high), abs(extreme_low))
    at_least = int((np.abs(null) >= abs(observed) - tolerance).sum())
    separation = observed >= extreme_high - tolerance or observed <= extreme_low + tolerance
    return (1 + at_least) / (1 + permutations), bool(separation and extreme_high > extreme_low)


# --- Firth's penalized logistic regression --------------------------------------------------


def _penalized(design: np.ndarray, y: np.ndarray, beta: np.ndarray):
    """Penalized log-likelihood l + log|I| / 2, its Firth-modified score and information."""
    eta = design @ beta
    prob = special.expit(eta)
    weight = prob * (1 - prob)
    information = design.T @ (weight[:, None] * design)
    sign, logdet = np.linalg.slogdet(information)
    if sign <= 0:
        return -np.inf, np.zeros_like(beta), information
    loglik = float(y @ eta - np.logaddexp(0.0, eta).sum())
    inverse = np.linalg.inv(information)
    leverage = weight * np.einsum("ij,jk,ik->i", design, inverse, design)
    score = design.T @ (y - prob + leverage * (0.5 - prob))
    return loglik + 0.5 * logdet, score, information


def firth_logistic(
    design: np.ndarray,
    y: np.ndarray,
    fixed: dict[int, float] | None = None,
    start: np.ndarray | None = None,
    iterations: int = 200,
    tolerance: float = 1e-9,
) -> np.ndarray:
    """Coefficients maximizing the Firth-penalized likelihood (finite under separation);
    ``fixed``: coefficients held at given values (for the profile). Newton steps on the
    modified score, halved until the penalized likelihood does not fall."""
    y = np.asarray(y, float)
    beta = np.zeros(design.shape[1]) if start is None else np.array(start, float)
    fixed = fixed or {}
    for index, value in fixed.items():
        beta[index] = value
    free = np.array([j for j in range(design.shape[1]) if j not in fixed])
    value, score, information = _penalized(design, y, beta)
    for _ in range(iterations):
        step = np.zeros_like(beta)
        step[free] = np.linalg.solve(information[np.ix_(free, free)], score[free])
        step *= min(1.0, 5.0 / max(np.abs(step).max(), 1e-12))  # no wild first steps
        for _ in range(60):
            candidate = beta + step
            new_value, new_score, new_information = _penalized(design, y, candidate)
            if new_value >= value - 1e-12:
                break
            step /= 2
        beta, value, score, information = candidate, new_value, new_score, new_information
        if np.abs(step).max() < tolerance:
            break
    return beta


def profile_interval(
    design: np.ndarray, y: np.ndarray, fit: np.ndarray, column: int, level: float = CI_LEVEL
) -> tuple[float | None, float | None]:
    """Profile penalized-likelihood interval of one coefficient: where twice the drop of the
    penalized likelihood, the others refitted, reaches the chi-square(1) quantile. None for a
    bound beyond +-50 (no finite bound found)."""
    y = np.asarray(y, float)
    best = _penalized(design, y, fit)[0]
    limit = stats.chi2.ppf(level, 1) / 2

    def drop(value: float) -> float:
        refit = firth_logistic(design, y, {column: value}, start=fit)
        return best - _penalized(design, y, refit)[0] - limit

    bounds: list[float | None] = []
    for direction in (-1.0, 1.0):
        width = 1.0
        while drop(fit[column] + direction * width) < 0 and width < 50:
            width *= 2
        far = fit[column] + direction * min(width, 50)
        if drop(far) < 0:
            bounds.append(None)
            continue
        bounds.append(float(optimize.brentq(drop, *sorted((fit[column], far)), xtol=1e-6)))
    return bounds[0], bounds[1]

