"""The paper's repeated-sampling evaluation, recomputed from a run folder's stored predictions.

For each attack size k and draw, every person with at least k usable photos gets k of them,
drawn without replacement; the majority vote per template, the score and the verdict are
recomputed from the per-photo predictions that ``idia audit`` stored. No model is touched.

Rates come with their standard deviation over draws (the paper's bands) and with a binomial
95% confidence interval over the people behind them (Wilson or Clopper-Pearson): sampling
photos again and again cannot make eight non-members say more than eight non-members can.
Beyond the single threshold tau: ROC curves and AUC for the ordinal score and for continuous
scores (the real name's mean softmax probability and mean rank), the empirical TPR at FPR <=
1% and 0.1% (threshold chosen on the same non-members: optimistic, labelled so),
TPR by training frequency, and the decoy p-values and analytic chance bound of
:mod:`idia.attack`.

Outputs (see docs/evaluation.md): RUN/evaluation.json, RUN/evaluation.parquet (one row per
size), RUN/evaluation_draws.parquet (per size and draw), RUN/evaluation_bins.parquet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from idia import attack
from idia.audit import rule_table, write_json, write_parquet
from idia.audit_claims import NULL_SIZES, TEST_COLUMNS
from idia.claims import DEFAULT_ALPHA, NULLS, VERDICT_PROCEDURE
from idia.evaluation._bins import BIN_MODES, BinMode, frequency_bins
from idia.evaluation._claims import calibration, draw_claims
from idia.evaluation._run import EvaluationError, RunData, load_run
from idia.evaluation._sampling import (
    draw_means,
    draw_scores,
    sample_photo_indices,
    selection_mask,
    size_rng,
    vote_tables,
)
from idia.fullname import FULL_NAME_NULL
from idia.metrics import (
    CI_LEVEL,
    CI_METHODS,
    CiMethod,
    binomial_interval,
    confusion_counts,
    rates,
    roc_curve,
    to_json_number,
)
from idia.run_folder import EVALUATION
from idia.version import __version__

DEFAULT_SIZES: tuple[int, ...] = (*range(1, 30, 2), 30)
Population = Literal["fixed", "per-size"]
POPULATIONS: tuple[str, ...] = ("fixed", "per-size")
Protocol = Literal["paper"]
PROTOCOLS: tuple[str, ...] = ("paper",)
# The paper's notebooks (02_idia_laion_multiprompt.ipynb): sizes 1, 3, ..., 29, 30; 20 draws;
# only people with at least 30 images and (LAION) fewer than 300 caption occurrences, the same
# people at every size.
PAPER_PROTOCOL: dict[str, Any] = {
    "sizes": DEFAULT_SIZES,
    "draws": 20,
    "min_photos": 30,
    "max_count": 300,
}
# Per claim, the size-table columns kept: rates with their spread and intervals, and AUC.
CLAIM_ROW_KEYS: tuple[str, ...] = ("tpr_", "fpr_", "auc_z")
DEFAULT_DRAWS = 20
# TPR at FPR <= 1% / 0.1% with the threshold chosen on the non-members it is reported on:
# optimistic, so every key says "empirical" (the tests' pre-set operating points are in
# claims.rules.<rule>.at_p_0.01)
LOW_FPRS: dict[str, float] = {"1pct": 0.01, "0p1pct": 0.001}
# Continuous per-person scores: column in results.parquet, and +1/-1 so that higher = member.
CONTINUOUS_SCORES: dict[str, tuple[str, int]] = {
    "probability": ("mean_real_probability", 1),
    "rank": ("mean_real_rank", -1),
    # the calibrated tests' continuous scores (z against their nulls) and the face-blind
    # baseline (the name's response on other people's photos)
    "name_familiarity": ("z_name", 1),
    "face_association": ("z_face", 1),
    "text_only": ("z_text", 1),
    "face_blind": ("face_blind", 0),  # 0: the distance from 0, either direction
}
RATES: dict[str, tuple[str, str]] = {  # rate -> (numerator count, denominator people)
    "tpr": ("tp", "n_members"),
    "fnr": ("fn", "n_members"),
    "fpr": ("fp", "n_non_members"),
    "tnr": ("tn", "n_non_members"),
    "accuracy": ("correct", "n_judged"),
    "called_member": ("called", "n_included"),
}


@dataclass(frozen=True)
class EvaluationSettings:
    """How a run is evaluated (``idia evaluate``'s options), checked when made.

    ``sizes``: attack sizes (photos drawn per person), kept sorted and unique; ``draws`` per
    size; ``seed`` of the draws; ``threshold``: tau (None: the run's own); ``ci_method``:
    the binomial interval; ``bins``: training-frequency bins; ``population``: ``fixed``
    judges the same people at every size (those with at least as many usable photos as the
    largest size), ``per-size`` everyone with enough photos for each size; ``alpha``: the
    level of the calibrated tests' verdicts (None: the run's own); ``protocol="paper"``
    applies :data:`PAPER_PROTOCOL` (its sizes, draws, fixed population and the paper's bins,
    overriding those given) and leaves out the people the paper's notebooks left out.
    """

    sizes: Sequence[int] = DEFAULT_SIZES
    draws: int = DEFAULT_DRAWS
    seed: int = 0
    threshold: int | None = None
    ci_method: CiMethod = "wilson"
    bins: BinMode = "auto"
    population: Population = "fixed"
    alpha: float | None = None
    protocol: Protocol | None = None

    def __post_init__(self) -> None:
        if self.protocol is not None:
            if self.protocol not in PROTOCOLS:
                raise EvaluationError(f"protocol must be one of {', '.join(PROTOCOLS)}")
            object.__setattr__(self, "sizes", PAPER_PROTOCOL["sizes"])
            object.__setattr__(self, "draws", PAPER_PROTOCOL["draws"])
            object.__setattr__(self, "population", "fixed")
            object.__setattr__(self, "bins", "paper")
        sizes = sorted(set(int(s) for s in self.sizes))
        if not sizes or sizes[0] < 1:
            raise EvaluationError(f"sizes must be positive integers, got {sizes}")
        object.__setattr__(self, "sizes", tuple(sizes))
        if self.population not in POPULATIONS:
            raise EvaluationError(
                f"population must be one of {', '.join(POPULATIONS)}, not {self.population!r}"
            )
        if self.alpha is not None and not 0 < self.alpha < 1:
            raise EvaluationError(f"alpha must be between 0 and 1, got {self.alpha}")
        if self.draws < 1:
            raise EvaluationError(f"draws must be at least 1, got {self.draws}")
        if self.ci_method not in CI_METHODS:
            raise EvaluationError(
                f"CI method must be one of {', '.join(CI_METHODS)}, not {self.ci_method!r}"
            )
        if self.bins not in BIN_MODES:
            raise EvaluationError(f"bins must be one of {', '.join(BIN_MODES)}, not {self.bins!r}")


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
            row[f"empirical_tpr_at_fpr_{key}_{score_name}_mean"] = at.mean()
            row[f"empirical_tpr_at_fpr_{key}_{score_name}_sd"] = _sd(at)
            per_draw[f"empirical_tpr_at_fpr_{key}_{score_name}"] = at
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
        if column not in results:
            continue
        values = results[column].to_numpy(float)
        if labelled.any() and not np.isnan(values[labelled]).all():
            scores[name] = sign * values if sign else np.abs(values)
    out = {}
    for name, values in scores.items():
        scored = ~np.isnan(values[labelled])
        roc = roc_curve(values[labelled][scored], truth[scored])
        out[name] = {
            "fpr": [to_json_number(v) for v in roc.fpr],
            "tpr": [to_json_number(v) for v in roc.tpr],
            "thresholds": [
                None if np.isinf(v) else to_json_number(sign_back(name, v)) for v in roc.thresholds
            ],
            "auc": to_json_number(roc.auc),
            **{
                f"empirical_tpr_at_fpr_{k}": to_json_number(roc.tpr_at_fpr(f))
                for k, f in LOW_FPRS.items()
            },
            "n_members": int(truth[scored].sum()),
            "n_non_members": int((~truth[scored]).sum()),
        }
    return out


def sign_back(score_name: str, value: float) -> float:
    """A threshold in the score's own units (ranks are negated for the ROC)."""
    return -value if score_name == "rank" else value


def evaluate(
    run: RunData, settings: EvaluationSettings | None = None
) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Repeated sampling over attack sizes; returns (evaluation.json content, tables).
    ``settings``: see :class:`EvaluationSettings` (default: its defaults)."""
    settings = settings or EvaluationSettings()
    sizes, draws, seed = list(settings.sizes), settings.draws, settings.seed
    ci_method, bins, population = settings.ci_method, settings.bins, settings.population
    alpha = float(run.config.get("alpha", DEFAULT_ALPHA) if settings.alpha is None
                  else settings.alpha)
    if not 0 < alpha < 1:
        raise EvaluationError(f"alpha must be between 0 and 1, got {alpha}")
    threshold = int(
        run.config.get("threshold", 1) if settings.threshold is None else settings.threshold
    )
    if not 1 <= threshold <= run.n_templates:
        raise EvaluationError(
            f"threshold must be between 1 and the number of templates ({run.n_templates}), "
            f"got {threshold}"
        )
    known_members = (run.truth == True).fillna(False).to_numpy(bool)  # noqa: E712
    known_non_members = (run.truth == False).fillna(False).to_numpy(bool)  # noqa: E712
    tables = vote_tables(run.grid, run.real_index)
    continuous = available_continuous_scores(run)
    bin_labels, bin_order = (
        frequency_bins(run.results["count"], bins) if run.has_counts else (None, [])
    )
    left_out = (
        too_frequent(run, PAPER_PROTOCOL["max_count"])
        if settings.protocol is not None
        else np.zeros(len(run.n_photos), bool)
    )
    fixed = (run.n_photos >= sizes[-1]) & ~left_out
    if population == "fixed" and not fixed.any():
        raise EvaluationError(
            f"nobody has {sizes[-1]} usable photos (at most {int(run.n_photos.max(initial=0))}):"
            " choose smaller sizes, or --population per-size"
        )
    size_rows, draw_frames, bin_rows = [], [], []
    for size in sizes:
        indices, enough = sample_photo_indices(run.n_photos, size, draws, size_rng(seed, size))
        included = enough & (fixed if population == "fixed" else ~left_out)
        indices = np.where(included[None, :, None], indices, -1)
        selected = selection_mask(indices, run.grid.shape[1])
        scores = draw_scores(tables, selected)
        verdicts = attack.is_member(scores, threshold) & included
        judged = _judged(run, included)
        draw_continuous = {}  # ROC scores need both groups
        if judged.member.any() and judged.non_member.any():
            draw_continuous = {"score": scores.astype(float)}
            draw_continuous |= {k: draw_means(v, selected) for k, v in continuous.items()}
        row, per_draw = _size_summary(verdicts, judged, draw_continuous, ci_method)
        if run.claims is not None:
            tests = draw_claims(run.claims, selected, included, alpha)
            for claim, values in tests.items():
                scores_ = {"z": values["z"]} if draw_continuous else {}
                claim_row, claim_draws = _size_summary(
                    values["verdict"] & included, judged, scores_, ci_method
                )
                row |= {
                    f"{claim}_{key}": value
                    for key, value in claim_row.items()
                    if key.startswith(CLAIM_ROW_KEYS)
                }
                per_draw |= {
                    f"{claim}_{key}": value
                    for key, value in claim_draws.items()
                    if key in ("tpr", "fpr", "auc_z")
                }
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
        "population": {
            "mode": population,
            "min_photos": sizes[-1] if population == "fixed" else None,
            "n_in_population": int(fixed.sum()) if population == "fixed" else None,
            "n_left_out": int(((run.n_photos > 0) & ~fixed).sum())
            if population == "fixed"
            else None,
            "n_left_out_by_count": int(((run.n_photos > 0) & left_out).sum()),
        },
        "has_truth": run.has_truth,
        "has_counts": run.has_counts,
        "chance": {
            "assumption": "a model guessing uniformly at random, with the templates' majority "
            "votes independent of each other; they share photos and model, so for thresholds "
            "above 1 this understates the chance (the calibrated tests do not rely on it)",
            "n_templates": run.n_templates,
            "n_candidates": run.n_candidates,
            "threshold": threshold,
            "member_probability": chance,
            "expected_false_members": chance * n_non_members,
        },
        "alpha": alpha,
        "claims": claims_summary(run, seed),
        "continuous_scores": sorted(continuous),
        "excluded_sizes": [r["size"] for r in size_rows if r["n_included"] == 0],
        "sizes": _records(sizes_frame),
        "bins": {"labels": bin_order, "rows": _records(frames["evaluation_bins"])},
        "roc": full_data_roc(run),
    }
    if settings.protocol is not None:
        document["settings"]["protocol"] = {"name": settings.protocol, **PAPER_PROTOCOL}
    return document, frames


def too_frequent(run: RunData, max_count: int) -> np.ndarray:
    """People whose training count is known and at least ``max_count``."""
    counts = run.results["count"]
    return (counts.notna() & (counts >= max_count)).to_numpy(bool)


def claims_summary(run: RunData, seed: int = 0) -> dict[str, Any]:
    """On all of each person's photos: every rule's TPR/FPR/AUC (from the audit), the
    calibration of each test's p-values on non-members (its randomized PIT seeded by
    ``seed``), and the share of each verdict."""
    results = run.results
    has_photos = run.n_photos > 0
    out: dict[str, Any] = {"assumptions": dict(NULLS)}
    if "null" in results:  # the name tests' null is each person's full-name decoys
        out["assumptions"] |= {"name_familiarity": f"{FULL_NAME_NULL}, on these photos",
                               "text_only": f"{FULL_NAME_NULL} (no photo used)"}
    if "p_name" not in results:
        return out
    judged = results[results["truth"].notna() & has_photos]
    if len(judged) and judged["truth"].nunique() == 2:
        out["rules"] = rule_table(judged, float(run.config.get("alpha", DEFAULT_ALPHA)))
    non_members = results[(results["truth"] == False) & has_photos]  # noqa: E712
    out["null_calibration"] = {
        claim: calibration(
            non_members[f"p_{short}"].to_numpy(float),
            non_members[NULL_SIZES[claim]].to_numpy(float)
            if NULL_SIZES[claim] in non_members else None,
            seed,
        )
        for claim, short in TEST_COLUMNS.items()
        if non_members[f"p_{short}"].notna().any()
    }
    out["n_verdicts"] = {
        claim: int(results[f"{short}_verdict"].sum()) for claim, short in TEST_COLUMNS.items()
    }
    if "p_person" in results:
        out["n_people_with_a_claim"] = int(results["verdict"].notna().sum())
        out["verdict_procedure"] = VERDICT_PROCEDURE
    return out


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
    run_dir: str | Path, settings: EvaluationSettings | None = None
) -> dict[str, Any]:
    """Evaluate a run folder (:func:`evaluate`); write RUN/evaluation.json and the Parquet
    tables; return the JSON content."""
    run = load_run(run_dir)
    document, frames = evaluate(run, settings)
    for name, frame in frames.items():
        write_parquet(run.path / f"{name}.parquet", frame)
    write_json(run.path / EVALUATION, document)
    return document
