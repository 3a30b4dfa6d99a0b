"""The report's figures, drawn with matplotlib's Agg canvas (no display, no global pyplot state).

Each function takes plain tables (the rows of evaluation.json as DataFrames) and returns a
:class:`~matplotlib.figure.Figure`; :func:`save_figure` writes it as PNG and PDF and returns
the PNG bytes for embedding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from idia.claims import CLAIMS
from idia.labels import RULE_LABELS, rule_name

RATE_LABELS = {
    "tpr": "TPR (members found)",
    "fnr": "FNR (members missed)",
    "fpr": "FPR (non-members called members)",
    "tnr": "TNR (non-members cleared)",
    "accuracy": "accuracy",
    "called_member": "share called member",
}
SCORE_LABELS = {
    "score": "score (templates correct)",
    "probability": "mean probability of the real name",
    "rank": "mean rank of the real name",
    **{claim: f"{RULE_LABELS[claim].name} (z)" for claim in CLAIMS},
    "face_blind": RULE_LABELS["face_blind"].name,
}
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
SCORE_STYLES = {
    "score": "-",
    "probability": "--",
    "rank": ":",
    "name_familiarity": "--",
    "face_association": "-.",
    "text_only": ":",
    "face_blind": (0, (1, 3)),
}
PAPER_SCORES = ("score", "probability", "rank")
RULE_SCORES = ("score", "name_familiarity", "face_association", "text_only", "face_blind")
CLAIM_RULES = ("paper", *CLAIMS)  # the rules drawn by training frequency


@dataclass(frozen=True)
class SavedFigure:
    name: str
    png: Path
    pdf: Path
    png_bytes: bytes


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, folder: Path, name: str) -> SavedFigure:
    """Write ``name``.png and ``name``.pdf under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    buffer = BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    png, pdf = folder / f"{name}.png", folder / f"{name}.pdf"
    png.write_bytes(buffer.getvalue())
    figure.savefig(pdf, format="pdf")
    return SavedFigure(name, png, pdf, buffer.getvalue())


def _values(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(float)


def metrics_vs_size(runs: Sequence[tuple[str, pd.DataFrame]], rates: Sequence[str]) -> Figure:
    """Paper Fig. 4: each rate vs attack size; line = mean over draws, band = +-1 sd,
    dotted = 95% CI over people. One colour per run."""
    columns = min(3, len(rates))
    rows = int(np.ceil(len(rates) / columns))
    figure = new_figure(4.2 * columns, 3.2 * rows)
    axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axis, rate in zip(axes, rates, strict=False):
        for (label, frame), color in zip(runs, COLORS, strict=False):
            usable = frame[frame["n_included"] > 0]
            sizes = usable["size"].to_numpy()
            mean, sd = _values(usable, f"{rate}_mean"), _values(usable, f"{rate}_sd")
            axis.plot(sizes, mean, "o-", color=color, markersize=3, label=label)
            axis.fill_between(
                sizes,
                mean - np.nan_to_num(sd),
                mean + np.nan_to_num(sd),
                color=color,
                alpha=0.2,
                linewidth=0,
            )
            for bound in ("ci_low", "ci_high"):
                axis.plot(sizes, _values(usable, f"{rate}_{bound}"), ":", color=color, lw=1)
        axis.set_title(RATE_LABELS[rate], fontsize=10)
        axis.set_xlabel("attack size (photos per person)")
        axis.set_ylim(-0.03, 1.03)
        axis.grid(alpha=0.3)
    for axis in axes[len(rates) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize=8, loc="best")
    return figure


def confusion_matrix(row: dict[str, Any], title: str) -> Figure:
    """Counts (mean +- sd over draws) and row percentages at one attack size."""
    figure = new_figure(4.6, 3.8)
    axis = figure.subplots()
    cells = [["tp", "fn"], ["fp", "tn"]]
    totals = [row.get("n_members") or 0, row.get("n_non_members") or 0]
    shares = np.array(
        [
            [(row.get(f"{c}_mean") or 0) / t if t else np.nan for c in line]
            for line, t in zip(cells, totals, strict=True)
        ]
    )
    axis.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0, vmax=1)
    for i, line in enumerate(cells):
        for j, cell in enumerate(line):
            mean, sd = row.get(f"{cell}_mean"), row.get(f"{cell}_sd")
            total = totals[i]
            text = f"{cell.upper()}\n{_fmt(mean, '.1f')} ± {_fmt(sd, '.1f')}"
            if total:
                text += f"\n{_fmt(mean / total * 100 if mean is not None else None, '.1f')}%"
                text += f" ± {_fmt(sd / total * 100 if sd is not None else None, '.1f')}%"
            dark = not np.isnan(shares[i, j]) and shares[i, j] > 0.6
            axis.text(
                j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    axis.set_xticks([0, 1], ["called member", "called non-member"])
    axis.set_yticks([0, 1], [f"member\n(n={totals[0]})", f"non-member\n(n={totals[1]})"])
    axis.set_title(title, fontsize=10)
    return figure


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None or np.isnan(value) else format(value, spec)


def _error_bars(frame: pd.DataFrame, rate: str) -> np.ndarray:
    mean = _values(frame, f"{rate}_mean")
    low, high = _values(frame, f"{rate}_ci_low"), _values(frame, f"{rate}_ci_high")
    return np.nan_to_num(np.vstack([mean - low, high - mean]).clip(min=0))


def frequency_bins(frame: pd.DataFrame, title: str) -> Figure:
    """TPR and FNR per training-frequency bin (95% CI bars) and the people in each bin."""
    figure = new_figure(max(6.0, 0.6 * len(frame) + 2), 5.2)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[2, 1])
    positions = np.arange(len(frame))
    for offset, rate, color in ((-0.2, "tpr", COLORS[0]), (0.2, "fnr", COLORS[1])):
        top.bar(
            positions + offset,
            np.nan_to_num(_values(frame, f"{rate}_mean")),
            0.4,
            yerr=_error_bars(frame, rate),
            capsize=2,
            color=color,
            label=rate.upper(),
        )
    top.set_ylim(0, 1.05)
    top.set_ylabel("rate among members")
    top.legend(fontsize=8)
    top.set_title(title, fontsize=10)
    top.grid(axis="y", alpha=0.3)
    members, non_members = _values(frame, "n_members"), _values(frame, "n_non_members")
    bottom.bar(positions, members, color=COLORS[0], label="members")
    bottom.bar(positions, non_members, bottom=members, color="#aaaaaa", label="non-members")
    bottom.set_ylabel("people")
    bottom.legend(fontsize=8)
    bottom.set_xticks(positions, frame["bin"].tolist(), rotation=45, ha="right")
    bottom.set_xlabel("occurrences in the training data")
    return figure


def frequency_heatmap(frame: pd.DataFrame, labels: Sequence[str], title: str) -> Figure:
    """TPR (mean over draws) by training-frequency bin and attack size."""
    table = frame.pivot(index="bin", columns="size", values="tpr_mean").reindex(list(labels))
    table = table.astype(float)
    figure = new_figure(max(5.0, 0.45 * table.shape[1] + 2.5), max(3.0, 0.35 * len(table) + 1.5))
    axis = figure.subplots()
    image = axis.imshow(
        np.ma.masked_invalid(table.to_numpy()), cmap="viridis", vmin=0, vmax=1, aspect="auto"
    )
    for (i, j), value in np.ndenumerate(table.to_numpy()):
        if not np.isnan(value):
            axis.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=6,
                color="black" if value > 0.6 else "white",
            )
    axis.set_xticks(range(table.shape[1]), [str(c) for c in table.columns], fontsize=8)
    axis.set_yticks(range(len(table)), table.index.tolist(), fontsize=8)
    axis.set_xlabel("attack size (photos per person)")
    axis.set_ylabel("occurrences in the training data")
    axis.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axis, label="TPR")
    return figure


def roc_curves(
    runs: Sequence[tuple[str, dict[str, Any]]], scores: Sequence[str] = PAPER_SCORES
) -> Figure:
    """ROC per run and score, linear and log-log (low-FPR regime); AUC in the legend."""
    figure = new_figure(10, 4.2)
    linear, logarithmic = figure.subplots(1, 2)
    smallest = 1.0
    for (label, curves), color in zip(runs, COLORS, strict=False):
        for score, curve in curves.items():
            if score not in scores:
                continue
            fpr = np.array([np.nan if v is None else v for v in curve["fpr"]], float)
            tpr = np.array([np.nan if v is None else v for v in curve["tpr"]], float)
            if np.isnan(fpr).all() or np.isnan(tpr).all():
                continue
            name = f"{label}: {SCORE_LABELS.get(score, score)} (AUC {_fmt(curve['auc'], '.3f')})"
            style = SCORE_STYLES.get(score, "-")
            linear.plot(fpr, tpr, linestyle=style, color=color, label=name)
            logarithmic.plot(fpr, tpr, linestyle=style, color=color)
            if curve.get("n_non_members"):
                smallest = min(smallest, 1 / curve["n_non_members"])
    for axis in (linear, logarithmic):
        axis.set_xlabel("false positive rate")
        axis.set_ylabel("true positive rate")
        axis.grid(alpha=0.3)
    linear.plot([0, 1], [0, 1], color="grey", lw=0.8)
    linear.set_title("ROC", fontsize=10)
    floor = smallest / 2
    logarithmic.plot([floor, 1], [floor, 1], color="grey", lw=0.8)
    logarithmic.set_xscale("log")
    logarithmic.set_yscale("log")
    logarithmic.set_xlim(floor, 1.05)
    logarithmic.set_ylim(floor, 1.05)
    logarithmic.set_title("ROC, log scale (FPR = 0 is off the axis)", fontsize=10)
    if linear.get_legend_handles_labels()[0]:
        linear.legend(fontsize=7, loc="lower right")
    return figure


def template_votes(
    templates: Sequence[str], votes: Sequence[int], correct: Sequence[bool], n_photos: int
) -> Figure:
    """One person: the winning name's share of photos per template, green if it is the
    real name."""
    figure = new_figure(7, 0.28 * len(templates) + 1.4)
    axis = figure.subplots()
    positions = np.arange(len(templates))
    shares = np.asarray(votes, float) / max(n_photos, 1)
    axis.barh(positions, shares, color=[COLORS[2] if c else "#aaaaaa" for c in correct])
    axis.set_yticks(
        positions, [t if len(t) <= 48 else t[:45] + "..." for t in templates], fontsize=7
    )
    axis.invert_yaxis()
    axis.set_xlim(0, 1)
    axis.set_xlabel("share of photos voting for the template's winner (green: the real name)")
    axis.grid(axis="x", alpha=0.3)
    return figure


def claims_vs_size(frame: pd.DataFrame, title: str) -> Figure:
    """TPR and FPR of the paper's rule and the calibrated tests vs attack size, one run:
    mean over draws with the 95% CI over people."""
    figure = new_figure(9, 3.4)
    axes = figure.subplots(1, 2)
    usable = frame[frame["n_included"] > 0]
    sizes = usable["size"].to_numpy()
    for axis, rate in zip(axes, ("tpr", "fpr"), strict=True):
        for claim, color in zip(CLAIM_RULES, COLORS, strict=False):
            label = RULE_LABELS[claim].name
            prefix = "" if claim == "paper" else f"{claim}_"
            mean = _values(usable, f"{prefix}{rate}_mean")
            if np.isnan(mean).all():
                continue
            axis.plot(sizes, mean, "o-", color=color, markersize=3, label=label)
            axis.fill_between(
                sizes,
                _values(usable, f"{prefix}{rate}_ci_low"),
                _values(usable, f"{prefix}{rate}_ci_high"),
                color=color,
                alpha=0.12,
                linewidth=0,
            )
        axis.set_title(f"{title}: {RATE_LABELS[rate]}", fontsize=9)
        axis.set_xlabel("attack size (photos per person)")
        axis.set_ylim(-0.03, 1.03)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    return figure


def calibration_qq(calibration: dict[str, Any], title: str) -> Figure:
    """QQ plot of each test's p-values on non-members against the uniform distribution: on
    the diagonal when the test is calibrated; below it when it calls too many."""
    figure = new_figure(4.6, 4.2)
    axis = figure.subplots()
    axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
    for (claim, fit), color in zip(calibration.items(), COLORS[1:], strict=False):
        points = np.asarray(fit.get("qq") or [], float)
        if not len(points):
            continue
        if "at_0.05" in fit:  # share at p <= 0.05 and the randomized-PIT p
            detail = (f"p<=0.05: {_fmt(fit['at_0.05']['share'], '.1%')}, PIT p "
                      f"{_fmt(fit.get('pit', {}).get('p'), '.2g')}")
        else:  # an evaluation written before the one-sided checks
            detail = f"KS p {_fmt(fit.get('ks_p'), '.2g')}"
        axis.plot(points[:, 0], points[:, 1], ".", color=color, markersize=3,
                  label=f"{rule_name(claim)} (n {fit['n']}, {detail})")
    axis.set_xlabel("uniform quantile")
    axis.set_ylabel("p-value quantile (non-members)")
    axis.set_title(title, fontsize=9)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left")
    return figure
