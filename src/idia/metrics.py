"""Confusion counts, the rates derived from them, their binomial intervals and ROC curves
(pure NumPy/SciPy, vectorised over leading axes)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy import stats

CI_LEVEL = 0.95
CiMethod = Literal["wilson", "clopper-pearson"]
CI_METHODS: tuple[str, ...] = ("wilson", "clopper-pearson")


def confusion_counts(predicted: np.ndarray, truth: np.ndarray, axis: int = -1) -> dict:
    """TP, FP, FN, TN of boolean verdicts against boolean truth, summed along ``axis``."""
    predicted, truth = np.asarray(predicted, bool), np.asarray(truth, bool)
    return {
        "tp": (predicted & truth).sum(axis=axis),
        "fp": (predicted & ~truth).sum(axis=axis),
        "fn": (~predicted & truth).sum(axis=axis),
        "tn": (~predicted & ~truth).sum(axis=axis),
    }


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def rates(counts: dict) -> dict:
    """TPR, FNR, FPR, TNR and accuracy; NaN where the denominator is zero."""
    tp, fp, fn, tn = (np.asarray(counts[k]) for k in ("tp", "fp", "fn", "tn"))
    return {
        "tpr": _ratio(tp, tp + fn),
        "fnr": _ratio(fn, tp + fn),
        "fpr": _ratio(fp, fp + tn),
        "tnr": _ratio(tn, fp + tn),
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
    }


def to_json_number(value: float | np.floating | np.integer) -> float | int | None:
    """NaN becomes None (JSON null); NumPy scalars become Python numbers."""
    if isinstance(value, np.integer | int):
        return int(value)
    value = float(value)
    return None if np.isnan(value) else value


# --- Confidence intervals -------------------------------------------------------------------


def wilson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, level: float = CI_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion; NaN where n == 0.

    ``successes`` may be fractional (a mean count over draws); the interval then reflects the
    n people behind the rate, not the number of draws.
    """
    x, n = np.asarray(successes, float), np.asarray(n, float)
    z = _normal_quantile(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = x / n
        denominator = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denominator
        half = z * np.sqrt(np.clip(p * (1 - p), 0, None) / n + z**2 / (4 * n**2)) / denominator
        low = np.where(x <= 0, 0.0, np.clip(centre - half, 0, 1))
        high = np.where(x >= n, 1.0, np.clip(centre + half, 0, 1))
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


@lru_cache(maxsize=8)
def _normal_quantile(q: float) -> float:
    return float(stats.norm.ppf(q))


def clopper_pearson_interval(
    successes: np.ndarray | float, n: np.ndarray | float, level: float = CI_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) interval from beta quantiles; NaN where n == 0."""
    x, n = np.asarray(successes, float), np.asarray(n, float)
    alpha = 1 - level
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.where(x > 0, stats.beta.ppf(alpha / 2, x, n - x + 1), 0.0)
        high = np.where(x < n, stats.beta.ppf(1 - alpha / 2, x + 1, n - x), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def binomial_interval(
    successes: np.ndarray | float, n: np.ndarray | float, method: CiMethod = "wilson"
) -> tuple[np.ndarray, np.ndarray]:
    if method == "wilson":
        return wilson_interval(successes, n)
    if method == "clopper-pearson":
        return clopper_pearson_interval(successes, n)
    raise ValueError(f"CI method must be one of {', '.join(CI_METHODS)}, not {method!r}")


# --- ROC ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Roc:
    """ROC points (one per distinct score, highest first, starting at (0, 0))."""

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray

    @property
    def auc(self) -> float:
        """Area under the curve; ties count one half (the Mann-Whitney statistic)."""
        if np.isnan(self.tpr).any() or np.isnan(self.fpr).any():
            return float("nan")
        return float(np.trapezoid(self.tpr, self.fpr))

    def tpr_at_fpr(self, max_fpr: float) -> float:
        """The best TPR among thresholds whose FPR is at most ``max_fpr``."""
        if np.isnan(self.fpr).any():
            return float("nan")
        return float(self.tpr[self.fpr <= max_fpr].max())


def roc_curve(scores: np.ndarray, truth: np.ndarray) -> Roc:
    """ROC of "member if score >= threshold" over every threshold; NaN if a class is empty."""
    scores, truth = np.asarray(scores, float), np.asarray(truth, bool)
    order = np.argsort(-scores, kind="mergesort")
    ordered, labels = scores[order], truth[order]
    last_of_group = np.r_[ordered[1:] != ordered[:-1], True] if len(ordered) else np.array([])
    last_of_group = last_of_group.astype(bool)
    positives, negatives = labels.sum(), (~labels).sum()
    true_pos = np.cumsum(labels)[last_of_group]
    false_pos = np.cumsum(~labels)[last_of_group]
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.r_[0.0, true_pos / positives] if positives else np.full(len(true_pos) + 1, np.nan)
        fpr = (
            np.r_[0.0, false_pos / negatives] if negatives else np.full(len(false_pos) + 1, np.nan)
        )
    return Roc(fpr=fpr, tpr=tpr, thresholds=np.r_[np.inf, ordered[last_of_group]])
