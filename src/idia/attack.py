"""The identity inference attack's decision rule: predictions -> votes -> score -> verdict.

Pure NumPy, no I/O, vectorised over any leading axes so that the same code serves one person
(``idia check``), an audit, and thousands of resampled draws (``idia evaluate``).

Conventions: a prediction is a candidate index; ``-1`` marks a missing photo (in
predictions) or "no prediction" (a tie for the top count, or no photos, in winners).
"""

from __future__ import annotations

import numpy as np

NO_PREDICTION = -1


def majority_votes(predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per template, the name predicted for the most photos, and its vote count.

    ``predictions``: int array (..., P, T): the candidate each of P photos picked under each
    of T templates (``-1`` = no photo). Returns ``(winners, votes)``, both (..., T); a tie
    for the top count gives ``winners == -1`` (the paper's rule: no prediction).
    """
    predictions = np.asarray(predictions)
    if predictions.ndim < 2:
        raise ValueError("predictions must have shape (..., photos, templates)")
    lead, (n_photos, n_templates) = predictions.shape[:-2], predictions.shape[-2:]
    if n_photos == 0:
        empty = np.full(lead + (n_templates,), NO_PREDICTION)
        return empty, np.zeros_like(empty)
    rows = np.moveaxis(predictions, -1, -2).reshape(-1, n_photos)  # (R, P), R = lead x T
    ordered = np.sort(rows, axis=1)
    # Runs of equal values in each sorted row; label each element by its run.
    starts = np.ones_like(ordered, dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    run = np.cumsum(starts, axis=1) - 1
    valid = ordered >= 0
    n_rows = rows.shape[0]
    flat_run = (np.arange(n_rows)[:, None] * n_photos + run)[valid]
    counts = np.bincount(flat_run, minlength=n_rows * n_photos).reshape(n_rows, n_photos)
    top = counts.max(axis=1)
    tied = (counts == top[:, None]).sum(axis=1) > 1
    element_counts = np.take_along_axis(counts, run, axis=1) * valid
    winner = ordered[np.arange(n_rows), element_counts.argmax(axis=1)]
    winner = np.where(tied | (top == 0), NO_PREDICTION, winner)
    shape = lead + (n_templates,)
    return winner.reshape(shape), np.where(top > 0, top, 0).reshape(shape)


def score(winners: np.ndarray, real_index: np.ndarray | int) -> np.ndarray:
    """Number of templates whose prediction is the real name; winners (..., T)."""
    real = np.asarray(real_index)[..., None]
    return (np.asarray(winners) == real).sum(axis=-1)


def is_member(scores: np.ndarray, threshold: int = 1) -> np.ndarray:
    """The paper's verdict: the model knows the person if score >= threshold (tau)."""
    return np.asarray(scores) >= threshold


CLIP_LOGIT_SCALE = 100.0  # CLIP's learned temperature (capped at 100), when a model tells none


def chance_member_probability(n_templates: int, n_candidates: int, threshold: int = 1) -> float:
    """Probability that a model guessing uniformly at random is called a member, *if the
    templates' majority votes were independent*: the score is then Binomial(T, 1/K) and this
    is P(score >= tau). The templates share photos and model, so for tau > 1 the true chance
    is larger; the calibrated tests of :mod:`idia.claims` do not rely on this bound.
    """
    from scipy.stats import binom

    return float(binom.sf(threshold - 1, n_templates, 1.0 / n_candidates))


def real_name_stats(
    scores: np.ndarray, real_index: int, logit_scale: float = CLIP_LOGIT_SCALE
) -> tuple[np.ndarray, np.ndarray]:
    """Rank (0 = best) and softmax probability of the real name, per photo and template.

    ``scores``: similarities (..., K). The continuous counterparts of the top-1 rule, for
    ROC curves and thresholds other than tau.
    """
    real = scores[..., real_index : real_index + 1]
    rank = (scores > real).sum(axis=-1)
    logits = logit_scale * (scores - scores.max(axis=-1, keepdims=True))
    probabilities = np.exp(logits)
    probability = probabilities[..., real_index] / probabilities.sum(axis=-1)
    return rank, probability
