"""Confusion counts and the rates derived from them (vectorised over leading axes)."""

from __future__ import annotations

import numpy as np


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
