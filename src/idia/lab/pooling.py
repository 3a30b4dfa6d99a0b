"""Rates over the people of several independent labs (one per seed): per seed, pooled, with an
interval that accounts for the seeds and a test of whether the seeds agree.

Each seed is a new model trained on a new corpus with new people: the people of one seed share
a model, so a rate pooled over seeds varies more than a binomial count of all their people
would. The seed-aware interval is a random-effects one, Hartung-Knapp: the pooled rate (each
seed weighted by its people) plus or minus the t quantile with (seeds - 1) degrees of freedom
times the standard error estimated from the seeds' own spread, sum n_s (p_s - p)^2 / ((k - 1)
N); it is widened, where narrower, to the pooled Wilson interval, which is what is left when
the seeds agree (and all there is with one seed, or when every seed has rate 0 or 1). Why not
a cluster bootstrap over seeds: with three seeds it has ten distinct resamples and its
percentile interval never reaches beyond the seeds' own range, so it covers too rarely; the t
quantile pays for estimating the between-seed spread from a few seeds.

The heterogeneity test is Pearson's chi-square of the seeds x (hit, miss) table, its p-value
from the exact conditional distribution (seeded Monte Carlo draws of the table with its
margins fixed, multivariate hypergeometric), the asymptotic chi-square p beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

from idia.metrics import to_json_number, wilson_interval

PERMUTATIONS = 9999
CI_METHOD = (
    "Hartung-Knapp random effects over seeds (pooled rate +- t(k - 1) x the seeds' standard "
    "error), at least the pooled Wilson interval"
)
ONE_SEED = "one seed: the Wilson interval of its people"


def seed_rate(
    hits: np.ndarray,
    groups: np.ndarray,
    seeds: Sequence[int],
    seed: int = 0,
    permutations: int = PERMUTATIONS,
) -> dict[str, Any]:
    """One rate (``hits``: bool per person, ``groups``: each person's seed) per seed and
    pooled: ``per_seed`` {seed: k, n, rate, Wilson ci}, ``rate`` and ``n`` pooled, ``ci`` the
    seed-aware 95% interval with ``ci_method``, ``heterogeneity`` (None values and a reason
    when it cannot be computed). ``seed`` draws the Monte Carlo tables."""
    hits, groups = np.asarray(hits, bool), np.asarray(groups)
    k = np.array([int(hits[groups == s].sum()) for s in seeds])
    n = np.array([int((groups == s).sum()) for s in seeds])
    per_seed = {}
    for s, k_s, n_s in zip(seeds, k, n, strict=True):
        low, high = wilson_interval(k_s, n_s)
        per_seed[str(s)] = {"k": int(k_s), "n": int(n_s),
                            "rate": k_s / n_s if n_s else None,
                            "ci": [to_json_number(low), to_json_number(high)]}
    total, people = int(k.sum()), int(n.sum())
    if not people:
        return {"per_seed": per_seed, "rate": None, "n": 0, "ci": None, "ci_method": CI_METHOD,
                "heterogeneity": {"p": None, "reason": "no people"}}
    used = n > 0
    low, high = seed_interval(k[used], n[used])
    return {
        "per_seed": per_seed,
        "rate": total / people,
        "n": people,
        "ci": [low, high],
        "ci_method": CI_METHOD if used.sum() > 1 else ONE_SEED,
        "heterogeneity": heterogeneity(k[used], n[used], seed, permutations),
    }


def seed_interval(k: np.ndarray, n: np.ndarray) -> tuple[float, float]:
    """The seed-aware 95% interval of the pooled rate (see the module's docstring)."""
    rate = k.sum() / n.sum()
    low, high = (float(v) for v in wilson_interval(k.sum(), n.sum()))
    seeds = len(k)
    if seeds < 2:
        return low, high
    spread = float((n * (k / n - rate) ** 2).sum() / ((seeds - 1) * n.sum()))
    half = float(stats.t.ppf(0.975, seeds - 1)) * np.sqrt(spread)
    return float(max(0.0, min(low, rate - half))), float(min(1.0, max(high, rate + half)))


def heterogeneity(
    k: np.ndarray, n: np.ndarray, seed: int = 0, permutations: int = PERMUTATIONS
) -> dict[str, Any]:
    """Do the seeds' rates differ more than binomial noise allows? Pearson's chi-square,
    exact (Monte Carlo, margins fixed) and asymptotic p-values."""
    base = {"method": "Pearson chi-square of the seeds x (hit, miss) table; p from "
            "multivariate-hypergeometric tables with fixed margins (Monte Carlo)",
            "permutations": permutations, "seed": seed}
    if len(k) < 2:
        return {**base, "statistic": None, "df": 0, "p": None, "p_chi2": None,
                "reason": "one seed: nothing to compare"}
    observed = _chi_square(k[None, :], n)[0]
    tables = np.random.default_rng(seed).multivariate_hypergeometric(
        n, int(k.sum()), size=permutations
    )
    null = _chi_square(tables, n)
    at_least = int((null >= observed - 1e-9 * max(observed, 1.0)).sum())
    return {
        **base,
        "statistic": float(observed),
        "df": len(k) - 1,
        "p": (1 + at_least) / (1 + permutations),
        "p_chi2": float(stats.chi2.sf(observed, len(k) - 1)),
    }


def _chi_square(k: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Pearson's chi-square of rows of hit counts ``k`` (..., seeds) over ``n`` people each;
    0 when every person hit or none did."""
    rate = k.sum(axis=-1, keepdims=True) / n.sum()
    spread = rate * (1 - rate)
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (n * (k / n - rate) ** 2).sum(axis=-1, keepdims=True) / spread
    return np.where(spread > 0, value, 0.0)[..., 0]


def seed_mean(values: Sequence[float | None]) -> dict[str, Any]:
    """A figure computed per seed (an AUC): the seeds' mean with a t interval over seeds."""
    finite = np.array([v for v in values if v is not None], float)
    out: dict[str, Any] = {"per_seed": list(values), "mean": None, "ci": None,
                           "ci_method": "mean over seeds +- t(k - 1) x sd / sqrt(k)"}
    if finite.size == 0:
        return {**out, "reason": "no seed has the figure"}
    out["mean"] = float(finite.mean())
    if finite.size < 2:
        return {**out, "reason": "one seed: no interval over seeds"}
    half = float(stats.t.ppf(0.975, finite.size - 1) * finite.std(ddof=1) / np.sqrt(finite.size))
    out["ci"] = [out["mean"] - half, out["mean"] + half]
    return out
