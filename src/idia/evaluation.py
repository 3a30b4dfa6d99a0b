"""The paper's repeated-sampling evaluation, recomputed from a run folder's stored predictions.

For each attack size k and draw, every person with at least k usable photos gets k of them,
drawn without replacement; the majority vote per template, the score and the verdict are
recomputed from the per-photo predictions that ``idia audit`` stored. No model is touched.

Rates come with their standard deviation over draws (the paper's bands) and with a binomial
95% confidence interval over the people behind them (Wilson or Clopper-Pearson): sampling
photos again and again cannot make eight non-members say more than eight non-members can.
Beyond the single threshold tau: ROC curves and AUC for the ordinal score and for continuous
scores (the real name's mean softmax probability and mean rank), TPR at FPR <= 1% and 0.1%,
TPR by training frequency, and the decoy p-values and analytic chance bound of
:mod:`idia.attack`.

Outputs (see docs/evaluation.md): RUN/evaluation.json, RUN/evaluation.parquet (one row per
size), RUN/evaluation_draws.parquet (per size and draw), RUN/evaluation_bins.parquet.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from idia import __version__, attack
from idia.audit import predictions_grid, write_json, write_parquet
from idia.metrics import confusion_counts, rates, to_json_number

DEFAULT_SIZES: tuple[int, ...] = (*range(1, 30, 2), 30)
DEFAULT_DRAWS = 20
CI_LEVEL = 0.95
CiMethod = Literal["wilson", "clopper-pearson"]
CI_METHODS: tuple[str, ...] = ("wilson", "clopper-pearson")
BinMode = Literal["auto", "exact", "paper"]
BIN_MODES: tuple[str, ...] = ("auto", "exact", "paper")
# The paper's occurrence bins, by upper edge: "0", "1-25", ..., "276-300", ">300".
PAPER_BIN_EDGES: tuple[int, ...] = (0, 25, 50, 75, 100, 125, 150, 200, 225, 250, 275, 300)
# Up to this many distinct counts (e.g. injected 1, 5, 10, 25, 50, 75) get a bin each.
MAX_EXACT_BINS = 12
LOW_FPRS: dict[str, float] = {"1pct": 0.01, "0p1pct": 0.001}
# Continuous per-person scores: column in results.parquet, and +1/-1 so that higher = member.
CONTINUOUS_SCORES: dict[str, tuple[str, int]] = {
    "probability": ("mean_real_probability", 1),
    "rank": ("mean_real_rank", -1),
}
RATES: dict[str, tuple[str, str]] = {  # rate -> (numerator count, denominator people)
    "tpr": ("tp", "n_members"),
    "fnr": ("fn", "n_members"),
    "fpr": ("fp", "n_non_members"),
    "tnr": ("tn", "n_non_members"),
    "accuracy": ("correct", "n_judged"),
    "called_member": ("called", "n_included"),
}
# Memory for one chunk of people in the vectorised vote (bytes).
CHUNK_BYTES = 256 * 2**20


class EvaluationError(ValueError):
    """The evaluation cannot run; the message says what to change."""


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
    raise EvaluationError(f"CI method must be one of {', '.join(CI_METHODS)}, not {method!r}")


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


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (q-values): the false discovery rate if all up to p are called."""
    p = np.asarray(p_values, float)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out


# --- Training-frequency bins ----------------------------------------------------------------


def paper_bin_labels(edges: Sequence[int] = PAPER_BIN_EDGES) -> list[str]:
    labels = [str(edges[0])]
    labels += [f"{low + 1}-{high}" for low, high in zip(edges[:-1], edges[1:], strict=True)]
    return [*labels, f">{edges[-1]}"]


def frequency_bins(counts: pd.Series, mode: BinMode = "auto") -> tuple[pd.Series, list[str]]:
    """Bin label per person (None without a count) and the labels in order.

    ``exact``: one bin per distinct count (injection experiments: 1, 5, 10, ...). ``paper``:
    bins by upper edge 0, 25, ..., 300 and above. ``auto``: exact when there are at most
    MAX_EXACT_BINS distinct counts.
    """
    if mode not in BIN_MODES:
        raise EvaluationError(f"bins must be one of {', '.join(BIN_MODES)}, not {mode!r}")
    known = counts.dropna().astype(int)
    if mode == "auto":
        mode = "exact" if known.nunique() <= MAX_EXACT_BINS else "paper"
    labels = pd.Series([None] * len(counts), index=counts.index, dtype=object)
    if mode == "exact":
        values = sorted(known.unique())
        labels[known.index] = known.astype(str).to_numpy()
        return labels, [str(v) for v in values]
    ordered = paper_bin_labels()
    positions = np.searchsorted(np.asarray(PAPER_BIN_EDGES), known.to_numpy(), side="left")
    labels[known.index] = np.asarray(ordered, dtype=object)[positions]
    return labels, ordered


# --- Run folders ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RunData:
    """What a run folder holds, as arrays aligned by person index."""

    path: Path
    config: dict[str, Any]
    results: pd.DataFrame
    grid: np.ndarray  # (people, max photos, templates) candidate index, -1 = no photo
    n_photos: np.ndarray  # (people,)
    real_index: np.ndarray  # (people,); -2 for people without usable photos
    n_candidates: int
    photo_probability: np.ndarray  # (people, max photos) real name's probability, NaN if none
    photo_rank: np.ndarray  # (people, max photos) real name's mean rank over templates

    @property
    def n_templates(self) -> int:
        return self.grid.shape[2]

    @property
    def truth(self) -> pd.Series:
        return self.results["truth"]

    @property
    def has_truth(self) -> bool:
        return bool(self.truth.notna().any())

    @property
    def has_counts(self) -> bool:
        return bool(self.results["count"].notna().any())


REQUIRED_FILES = ("config.json", "candidates.parquet", "predictions.parquet", "results.parquet")


def load_run(run_dir: str | Path) -> RunData:
    """Read a finished ``idia audit`` run folder; EvaluationError if it is not one."""
    path = Path(run_dir)
    if not path.exists():
        raise EvaluationError(f"run folder not found: {path}")
    if not path.is_dir():
        raise EvaluationError(f"{path} is not a folder; give an 'idia audit' run folder")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        what = (
            "not an idia run folder"
            if "config.json" in missing
            else "an unfinished run (rerun the same 'idia audit' command to finish it)"
        )
        raise EvaluationError(f"{path} is {what}: missing {', '.join(missing)}")
    try:
        config = json.loads((path / "config.json").read_text())
        predictions = pd.read_parquet(path / "predictions.parquet")
        results = pd.read_parquet(path / "results.parquet")
        n_candidates = len(pd.read_parquet(path / "candidates.parquet"))
    except (OSError, ValueError) as err:
        raise EvaluationError(f"{path}: cannot read the run folder ({err})") from err
    results = results.sort_values("person").reset_index(drop=True)
    n_people = len(results)
    if not np.array_equal(results["person"].to_numpy(), np.arange(n_people)):
        raise EvaluationError(f"{path}/results.parquet: person indices are not 0..n-1")
    n_templates = len(config.get("templates") or []) or int(predictions["template"].max()) + 1
    grid, n_photos = predictions_grid(predictions, n_people, n_templates)
    real_index = np.full(n_people, -2, dtype=np.int64)
    if len(predictions):
        first = predictions.groupby("person")["real_index"].first()
        real_index[first.index.to_numpy()] = first.to_numpy()
    return RunData(
        path=path,
        config=config,
        results=results,
        grid=grid.astype(np.int32),
        n_photos=n_photos,
        real_index=real_index,
        n_candidates=n_candidates,
        photo_probability=_per_photo_mean(predictions, "real_probability", grid.shape[:2]),
        photo_rank=_per_photo_mean(predictions, "real_rank", grid.shape[:2]),
    )


def _per_photo_mean(predictions: pd.DataFrame, column: str, shape: tuple[int, int]) -> np.ndarray:
    """Mean of a per-(photo, template) column over templates, as (people, photos)."""
    out = np.full(shape, np.nan)
    if len(predictions) and column in predictions:
        means = predictions.groupby(["person", "photo"])[column].mean()
        people, photos = (means.index.get_level_values(i).to_numpy() for i in (0, 1))
        out[people, photos] = means.to_numpy()
    return out


# --- Sampling and vectorised votes ----------------------------------------------------------


def size_rng(seed: int, size: int) -> np.random.Generator:
    """The generator for one attack size: a size's draws do not depend on the other sizes."""
    return np.random.default_rng([seed, size])


def sample_photo_indices(
    n_photos: np.ndarray, size: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``size`` distinct photo indices per draw and person, uniformly without replacement.

    Returns ``(indices (draws, people, size), included (people,))``; people with fewer than
    ``size`` photos are not included and their indices are -1.
    """
    n_photos = np.asarray(n_photos)
    if size < 1 or draws < 1:
        raise EvaluationError(f"size and draws must be at least 1 (got {size}, {draws})")
    width = max(int(n_photos.max(initial=0)), size)
    keys = rng.random((draws, len(n_photos), width))
    keys[:, np.arange(width)[None, :] >= n_photos[:, None]] = np.inf
    indices = np.argpartition(keys, size - 1, axis=-1)[..., :size]
    included = n_photos >= size
    return np.where(included[None, :, None], indices, -1), included


def selection_mask(indices: np.ndarray, width: int) -> np.ndarray:
    """(draws, people, k) indices -> (draws, people, width) 0/1 float32 mask; -1 selects none."""
    mask = np.zeros(indices.shape[:2] + (width + 1,), dtype=np.float32)
    np.put_along_axis(mask, np.where(indices < 0, width, indices), 1.0, axis=-1)
    return mask[..., :width]


@dataclass(frozen=True)
class VoteTables:
    """Per person, everything a draw needs, prepared once, so that a draw's vote counts are
    batched matrix products: the real name's hits, and the other names as one-hot codes.

    Code 0 gathers the names a person's photos pick only once under a template: each of them
    can get at most one vote, so "any of them selected" is all the rule needs. Codes 1.. are
    the names picked at least twice. This keeps the codes few (often one or two).
    """

    real_hits: np.ndarray  # (people, photos, templates) float32: photo picked the real name
    other_codes: np.ndarray  # (people, photos, codes * templates) float32 one-hot
    n_codes: int


def vote_tables(grid: np.ndarray, real_index: np.ndarray) -> VoteTables:
    """Encode, per person and template, the other names their photos picked (see VoteTables)."""
    hits = grid == np.asarray(real_index)[:, None, None]
    others = np.where(hits | (grid < 0), -1, grid).transpose(0, 2, 1)  # (people, T, photos)
    n_people, n_templates, n_slots = others.shape
    order = np.argsort(others, axis=-1, kind="stable")
    ordered = np.take_along_axis(others, order, axis=-1)
    new_value = np.ones(ordered.shape, dtype=bool)
    new_value[..., 1:] = ordered[..., 1:] != ordered[..., :-1]
    group = np.cumsum(new_value, axis=-1) - 1  # per row: 0, 0, 1, 2, 2, 2, ...
    rows = np.arange(n_people * n_templates).reshape(n_people, n_templates, 1)
    flat_group = (rows * n_slots + group).ravel()
    group_size = np.bincount(flat_group, minlength=rows.size * n_slots)[flat_group]
    repeated = (group_size.reshape(ordered.shape) > 1) & (ordered >= 0)
    repeated_rank = np.cumsum(new_value & repeated, axis=-1)  # 1.. for repeated names
    sorted_codes = np.where(ordered < 0, -1, np.where(repeated, repeated_rank, 0))
    codes = np.empty_like(sorted_codes)
    np.put_along_axis(codes, order, sorted_codes, axis=-1)
    codes = codes.transpose(0, 2, 1)  # (people, photos, T)
    n_codes = max(int(codes.max(initial=0)) + 1, 1)
    one_hot = (codes[..., None, :] == np.arange(n_codes)[:, None]).astype(np.float32)
    return VoteTables(
        real_hits=hits.astype(np.float32),
        other_codes=one_hot.reshape(n_people, n_slots, n_codes * n_templates),
        n_codes=n_codes,
    )


def draw_scores(tables: VoteTables, selected: np.ndarray) -> np.ndarray:
    """Scores (draws, people) of the photo subsets in ``selected`` (draws, people, photos).

    Under the majority rule the real name is a template's prediction exactly when it gets
    more of the selected photos' votes than any other name (a tie at the top is no
    prediction), so a score needs only vote counts: batched products, no sorting.
    Equal to ``attack.score(attack.majority_votes(...))`` on the same photos (tested).
    """
    n_people, _, n_templates = tables.real_hits.shape
    per_person = selected.transpose(1, 0, 2)  # (people, draws, photos)
    row_bytes = 4 * (selected.shape[0] * n_templates * tables.n_codes + tables.other_codes[0].size)
    chunk = max(1, CHUNK_BYTES // max(row_bytes, 1))
    scores = np.empty((n_people, selected.shape[0]), dtype=np.int64)
    for start in range(0, n_people, chunk):
        part = slice(start, start + chunk)
        real_votes = np.matmul(per_person[part], tables.real_hits[part])  # (p, draws, T)
        other_votes = np.matmul(per_person[part], tables.other_codes[part])
        other_votes = other_votes.reshape(real_votes.shape[:2] + (tables.n_codes, n_templates))
        top_other = np.minimum(other_votes[:, :, 0], 1)  # names picked once: one vote at most
        for code in range(1, tables.n_codes):  # few codes: elementwise beats a reduction
            np.maximum(top_other, other_votes[:, :, code], out=top_other)
        scores[part] = np.count_nonzero(real_votes > top_other, axis=-1)
    return scores.T


def draw_means(values: np.ndarray, selected: np.ndarray) -> np.ndarray:
    """Mean of per-photo values (people, photos) over each draw's photos: (draws, people)."""
    counts = selected.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.einsum("dnp,np->dn", selected, np.nan_to_num(values)) / counts


# --- The evaluation -------------------------------------------------------------------------


def parse_sizes(text: str) -> list[int]:
    """'1,3,5' -> [1, 3, 5]; EvaluationError unless all are positive integers."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise EvaluationError(f"sizes must be positive integers like 1,3,5 (got {text!r})")
    return sorted({int(p) for p in parts})


def _sd(values: np.ndarray) -> np.ndarray:
    """Sample standard deviation over draws (axis 0); NaN with a single draw."""
    if values.shape[0] < 2:
        return np.full(values.shape[1:], np.nan)
    return np.std(values, axis=0, ddof=1)


@dataclass(frozen=True)
class _Judged:
    """Which people a size's statistics are about (all (people,) bool)."""

    included: np.ndarray  # enough photos for this size
    excluded: np.ndarray  # usable photos, but fewer than this size
    member: np.ndarray  # included and known member
    non_member: np.ndarray  # included and known non-member


def _judged(run: RunData, included: np.ndarray) -> _Judged:
    truth = run.truth
    known = truth.notna().to_numpy()
    member = known & truth.fillna(False).to_numpy(bool)
    excluded = ~included & (run.n_photos > 0)
    return _Judged(included, excluded, member & included, known & ~member & included)


def _size_summary(
    verdicts: np.ndarray,
    judged: _Judged,
    continuous: dict[str, np.ndarray],
    ci_method: CiMethod,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Per-size statistics (mean, sd, CI) and the per-draw values behind them."""
    labelled = judged.member | judged.non_member
    counts = confusion_counts(verdicts[:, labelled], judged.member[labelled], axis=-1)
    per_draw: dict[str, np.ndarray] = {k: np.asarray(v) for k, v in counts.items()}
    per_draw["correct"] = per_draw["tp"] + per_draw["tn"]
    per_draw["called"] = verdicts[:, judged.included].sum(axis=-1)
    people = {
        "n_members": int(judged.member.sum()),
        "n_non_members": int(judged.non_member.sum()),
        "n_judged": int(labelled.sum()),
        "n_included": int(judged.included.sum()),
    }
    row: dict[str, Any] = dict(people)
    for name in ("tp", "fp", "fn", "tn"):
        row[f"{name}_mean"] = float(per_draw[name].mean())
        row[f"{name}_sd"] = float(_sd(per_draw[name].astype(float)))
    draw_rates = rates(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        draw_rates["called_member"] = np.where(
            people["n_included"] > 0, per_draw["called"] / max(people["n_included"], 1), np.nan
        )
    for rate, (numerator, denominator) in RATES.items():
        values = np.asarray(draw_rates[rate], float)
        low, high = binomial_interval(per_draw[numerator].mean(), people[denominator], ci_method)
        row[f"{rate}_mean"] = float(values.mean())
        row[f"{rate}_sd"] = float(_sd(values))
        row[f"{rate}_ci_low"], row[f"{rate}_ci_high"] = float(low), float(high)
        per_draw[rate] = values
    for score_name, values in continuous.items():
        rocs = [roc_curve(v[labelled], judged.member[labelled]) for v in values]
        aucs = np.array([r.auc for r in rocs])
        row[f"auc_{score_name}_mean"], row[f"auc_{score_name}_sd"] = aucs.mean(), _sd(aucs)
        per_draw[f"auc_{score_name}"] = aucs
        for key, max_fpr in LOW_FPRS.items():
            at = np.array([r.tpr_at_fpr(max_fpr) for r in rocs])
            row[f"tpr_at_fpr_{key}_{score_name}_mean"] = at.mean()
            row[f"tpr_at_fpr_{key}_{score_name}_sd"] = _sd(at)
            per_draw[f"tpr_at_fpr_{key}_{score_name}"] = at
    return row, per_draw


def _bin_rows(
    size: int,
    verdicts: np.ndarray,
    judged: _Judged,
    bins: pd.Series,
    labels: list[str],
    ci_method: CiMethod,
) -> list[dict[str, Any]]:
    """TPR (members) and FPR (non-members) per training-frequency bin, for one size."""
    rows = []
    for label in labels:
        in_bin = (bins == label).to_numpy()
        row: dict[str, Any] = {"size": size, "bin": label}
        for group, rate, miss in (("member", "tpr", "fnr"), ("non_member", "fpr", "tnr")):
            people = in_bin & getattr(judged, group)
            n = int(people.sum())
            called = verdicts[:, people].sum(axis=-1).astype(float)
            share = called / n if n else np.full(len(called), np.nan)
            low, high = binomial_interval(called.mean(), n, ci_method)
            low_miss, high_miss = binomial_interval(n - called.mean(), n, ci_method)
            row[f"n_{group}s"] = n
            row[f"{rate}_mean"], row[f"{rate}_sd"] = float(share.mean()), float(_sd(share))
            row[f"{rate}_ci_low"], row[f"{rate}_ci_high"] = float(low), float(high)
            row[f"{miss}_mean"], row[f"{miss}_sd"] = float((1 - share).mean()), float(_sd(share))
            row[f"{miss}_ci_low"], row[f"{miss}_ci_high"] = float(low_miss), float(high_miss)
        row["n_excluded"] = int((in_bin & judged.excluded).sum())
        rows.append(row)
    return rows


def available_continuous_scores(run: RunData) -> dict[str, np.ndarray]:
    """Per-photo values of the continuous scores the model exposed (higher = member)."""
    has_photos = run.n_photos > 0
    out = {}
    for name, values in (("probability", run.photo_probability), ("rank", -run.photo_rank)):
        valid = np.arange(values.shape[1])[None, :] < run.n_photos[:, None]
        if has_photos.any() and not np.isnan(values[valid]).any():
            out[name] = values
    return out


def full_data_roc(run: RunData) -> dict[str, Any]:
    """ROC over all of each person's photos, for the ordinal and continuous scores."""
    results = run.results
    labelled = results["truth"].notna().to_numpy() & (run.n_photos > 0)
    truth = results["truth"].fillna(False).to_numpy(bool)[labelled]
    scores = {"score": results["score"].to_numpy(float)}
    for name, (column, sign) in CONTINUOUS_SCORES.items():
        values = results[column].to_numpy(float)
        if labelled.any() and not np.isnan(values[labelled]).any():
            scores[name] = sign * values
    out = {}
    for name, values in scores.items():
        roc = roc_curve(values[labelled], truth)
        out[name] = {
            "fpr": [to_json_number(v) for v in roc.fpr],
            "tpr": [to_json_number(v) for v in roc.tpr],
            "thresholds": [
                None if np.isinf(v) else to_json_number(sign_back(name, v)) for v in roc.thresholds
            ],
            "auc": to_json_number(roc.auc),
            **{f"tpr_at_fpr_{k}": to_json_number(roc.tpr_at_fpr(f)) for k, f in LOW_FPRS.items()},
            "n_members": int(truth.sum()),
            "n_non_members": int((~truth).sum()),
        }
    return out


def sign_back(score_name: str, value: float) -> float:
    """A threshold in the score's own units (ranks are negated for the ROC)."""
    return -value if score_name == "rank" else value


def p_value_summary(run: RunData) -> dict[str, Any]:
    """How many people the decoy test singles out, raw and after Benjamini-Hochberg."""
    tested = run.results[run.n_photos > 0]
    p = tested["p_value"].to_numpy(float)
    q = benjamini_hochberg(p)
    summary: dict[str, Any] = {
        "n_tested": int(len(p)),
        "smallest_possible": 1 / run.n_candidates,
        "n_p_at_most_0.05": int((p <= 0.05).sum()),
        "n_bh_q_at_most_0.05": int((q <= 0.05).sum()),
    }
    truth = tested["truth"]
    if truth.notna().any():
        for label, mask in (("members", truth == True), ("non_members", truth == False)):  # noqa: E712
            summary[f"n_{label}_p_at_most_0.05"] = int(
                (p[mask.fillna(False).to_numpy()] <= 0.05).sum()
            )
    return summary


def evaluate(
    run: RunData,
    sizes: Sequence[int] = DEFAULT_SIZES,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    threshold: int | None = None,
    ci_method: CiMethod = "wilson",
    bins: BinMode = "auto",
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Repeated sampling over attack sizes; returns (evaluation.json content, tables)."""
    sizes = sorted(set(int(s) for s in sizes))
    if not sizes or sizes[0] < 1:
        raise EvaluationError(f"sizes must be positive integers, got {sizes}")
    if draws < 1:
        raise EvaluationError(f"draws must be at least 1, got {draws}")
    threshold = int(run.config.get("threshold", 1) if threshold is None else threshold)
    if not 1 <= threshold <= run.n_templates:
        raise EvaluationError(
            f"threshold must be between 1 and the number of templates ({run.n_templates}), "
            f"got {threshold}"
        )
    binomial_interval(0, 1, ci_method)  # validates the method before any work
    if bins not in BIN_MODES:
        raise EvaluationError(f"bins must be one of {', '.join(BIN_MODES)}, not {bins!r}")
    known_members = (run.truth == True).fillna(False).to_numpy(bool)  # noqa: E712
    known_non_members = (run.truth == False).fillna(False).to_numpy(bool)  # noqa: E712
    tables = vote_tables(run.grid, run.real_index)
    continuous = available_continuous_scores(run)
    bin_labels, bin_order = (
        frequency_bins(run.results["count"], bins) if run.has_counts else (None, [])
    )
    size_rows, draw_frames, bin_rows = [], [], []
    for size in sizes:
        indices, included = sample_photo_indices(run.n_photos, size, draws, size_rng(seed, size))
        selected = selection_mask(indices, run.grid.shape[1])
        scores = draw_scores(tables, selected)
        verdicts = attack.is_member(scores, threshold) & included
        judged = _judged(run, included)
        draw_continuous = {"score": scores.astype(float)}
        draw_continuous |= {k: draw_means(v, selected) for k, v in continuous.items()}
        if not (judged.member.any() and judged.non_member.any()):
            draw_continuous = {}
        row, per_draw = _size_summary(verdicts, judged, draw_continuous, ci_method)
        row = {
            "size": size,
            "n_excluded": int(judged.excluded.sum()),
            "n_excluded_members": int((judged.excluded & known_members).sum()),
            "n_excluded_non_members": int((judged.excluded & known_non_members).sum()),
            **row,
        }
        size_rows.append(row)
        draw_frames.append(pd.DataFrame({"size": size, "draw": np.arange(draws), **per_draw}))
        if bin_labels is not None:
            bin_rows += _bin_rows(size, verdicts, judged, bin_labels, bin_order, ci_method)
    sizes_frame = pd.DataFrame(size_rows)
    frames = {
        "evaluation": sizes_frame,
        "evaluation_draws": pd.concat(draw_frames, ignore_index=True),
        "evaluation_bins": pd.DataFrame(bin_rows),
    }
    n_non_members = int((run.truth == False).sum())  # noqa: E712
    has_photos = bool((run.n_photos > 0).any())
    chance = attack.chance_member_probability(run.n_templates, run.n_candidates, threshold)
    document = {
        "idia_version": __version__,
        "run": str(run.path.resolve()),
        "settings": {
            "sizes": sizes,
            "draws": draws,
            "seed": seed,
            "threshold": threshold,
            "ci_method": ci_method,
            "ci_level": CI_LEVEL,
            "bins": bins,
            "sd_ddof": 1,
            "sampling": "for size k, numpy.random.default_rng([seed, k]) draws k photos per "
            "person uniformly without replacement, independently per draw",
        },
        "run_settings": {
            key: run.config.get(key)
            for key in (
                "model",
                "model_identity",
                "seed",
                "num_names",
                "candidate_source",
                "threshold",
                "crop",
                "detector",
                "photos_per_person",
                "membership",
            )
        },
        "people": {
            "n_people": int(len(run.results)),
            "n_with_photos": int((run.n_photos > 0).sum()),
            "n_members": int((run.truth == True).sum()),  # noqa: E712
            "n_non_members": n_non_members,
            "n_without_truth": int(run.truth.isna().sum()),
            "photos_min": int(run.n_photos[run.n_photos > 0].min()) if has_photos else 0,
            "photos_max": int(run.n_photos.max(initial=0)),
        },
        "has_truth": run.has_truth,
        "has_counts": run.has_counts,
        "chance": {
            "n_templates": run.n_templates,
            "n_candidates": run.n_candidates,
            "threshold": threshold,
            "member_probability": chance,
            "expected_false_members": chance * n_non_members,
        },
        "p_values": p_value_summary(run),
        "continuous_scores": sorted(continuous),
        "excluded_sizes": [r["size"] for r in size_rows if r["n_included"] == 0],
        "sizes": _records(sizes_frame),
        "bins": {"labels": bin_order, "rows": _records(frames["evaluation_bins"])},
        "roc": full_data_roc(run),
    }
    return document, frames


def summary_size(rows: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The size row to summarise a run by: the largest size that keeps the most people
    (sizes beyond some people's photo count judge fewer people, and their rates say less)."""
    usable = [row for row in rows if row["n_included"]]
    if not usable:
        return None
    return max(usable, key=lambda row: (row["n_included"], row["n_judged"], row["size"]))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts: NaN -> null, NumPy scalars -> Python numbers."""
    return [
        {k: v if isinstance(v, str) else to_json_number(v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def evaluate_run(
    run_dir: str | Path,
    sizes: Sequence[int] = DEFAULT_SIZES,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    threshold: int | None = None,
    ci_method: CiMethod = "wilson",
    bins: BinMode = "auto",
) -> dict[str, Any]:
    """Evaluate a run folder; write RUN/evaluation.json and the Parquet tables; return the
    JSON content."""
    run = load_run(run_dir)
    document, frames = evaluate(run, sizes, draws, seed, threshold, ci_method, bins)
    for name, frame in frames.items():
        write_parquet(run.path / f"{name}.parquet", frame)
    write_json(run.path / "evaluation.json", document)
    return document
