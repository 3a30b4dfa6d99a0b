"""Self-contained HTML reports: one page, figures embedded as base64 PNG, no network.

Every user string (names, paths, templates, model specs) goes through Jinja2's autoescape.
The figures are also written next to the page as PNG and PDF, for papers and slides.
"""

from __future__ import annotations

import base64
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from idia import attack
from idia.audit_claims import EMPIRICAL_LOW_FPRS
from idia.claims import NULLS
from idia.engine import CheckResult
from idia.evaluation import (
    DEFAULT_SIZES,
    EvaluationError,
    EvaluationSettings,
    RunData,
    evaluate,
    load_run,
    summary_size,
)
from idia.fullname import FULL_NAME_NULL
from idia.labels import NULL_LABELS, RULE_LABELS, null_description
from idia.report import figures
from idia.run_folder import RunFolder, RunFolderError
from idia.version import __version__

SMALL_GROUP = 30  # below this many people a rate's CI is wide enough to say so on the page
SUMMARY_RATES = ("tpr", "fnr", "fpr", "tnr", "accuracy")


@dataclass
class RunReport:
    """One run folder with its evaluation, ready for the page."""

    label: str
    run: RunData
    evaluation: dict[str, Any]
    computed_now: bool

    @property
    def sizes(self) -> pd.DataFrame:
        return pd.DataFrame(self.evaluation["sizes"])

    @property
    def bins(self) -> pd.DataFrame:
        return pd.DataFrame(self.evaluation["bins"]["rows"])

    @property
    def summary_row(self) -> dict[str, Any] | None:
        """The size row the page summarises: the largest size that keeps the most people."""
        return summary_size(self.evaluation["sizes"])


def load_report_run(path: Path) -> tuple[RunData, dict[str, Any], bool]:
    """The run and its evaluation.json; evaluated in memory when there is none (the default
    sizes up to the most photos anyone has)."""
    try:
        folder = RunFolder(path)
        run, stored = load_run(folder), folder.evaluation
    except RunFolderError as err:
        raise EvaluationError(str(err)) from err
    if stored is not None:
        return run, stored, False
    most = int(run.n_photos.max(initial=0))
    sizes = [s for s in DEFAULT_SIZES if s <= most] or [1]
    document, _ = evaluate(run, EvaluationSettings(sizes=sizes))
    return run, document, True


def _labels(runs: Sequence[RunData]) -> list[str]:
    """Run folder names, made unique; the model in brackets when runs are compared."""
    labels = [r.path.name or str(r.path) for r in runs]
    if len(runs) > 1:
        labels = [
            f"{label} [{r.config.get('model', '?')}]" for label, r in zip(labels, runs, strict=True)
        ]
    seen: dict[str, int] = {}
    unique = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        unique.append(label if seen[label] == 1 else f"{label} #{seen[label]}")
    return unique


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["pct"] = _pct
    environment.filters["num"] = _num
    return environment


def _template() -> jinja2.Template:
    text = resources.files("idia.report").joinpath("template.html").read_text(encoding="utf-8")
    return _environment().from_string(text)


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    return f"{float(value) * 100:.{digits}f}%"


def _num(value: Any, spec: str = ".3g") -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return format(value, spec) if isinstance(value, int | float | np.number) else str(value)


def _figure_entry(saved: figures.SavedFigure, caption: str) -> dict[str, str]:
    folder = saved.png.parent.name
    return {
        "name": saved.name,
        "caption": caption,
        "data_uri": "data:image/png;base64," + base64.b64encode(saved.png_bytes).decode("ascii"),
        "png": quote(f"{folder}/{saved.png.name}"),
        "pdf": quote(f"{folder}/{saved.pdf.name}"),
    }


def _figures_folder(out: Path) -> Path:
    return out.parent / f"{out.stem}_figures"


def _rate_cells(row: dict[str, Any] | None, rate: str) -> dict[str, Any]:
    if row is None:
        return {"mean": None, "sd": None, "low": None, "high": None}
    return {
        "mean": row.get(f"{rate}_mean"),
        "sd": row.get(f"{rate}_sd"),
        "low": row.get(f"{rate}_ci_low"),
        "high": row.get(f"{rate}_ci_high"),
    }


def _summary(report: RunReport) -> dict[str, Any]:
    row = report.summary_row
    roc = report.evaluation.get("roc", {})
    return {
        "label": report.label,
        "size": None if row is None else row["size"],
        "n_members": None if row is None else row["n_members"],
        "n_non_members": None if row is None else row["n_non_members"],
        "n_included": None if row is None else row["n_included"],
        "rates": {rate: _rate_cells(row, rate) for rate in (*SUMMARY_RATES, "called_member")},
        "auc_score": roc.get("score", {}).get("auc"),
        "auc_probability": roc.get("probability", {}).get("auc"),
        **{  # evaluations written before the figures were labelled empirical: old keys
            f"tpr_at_fpr_{key}": roc.get("score", {}).get(
                f"empirical_tpr_at_fpr_{key}", roc.get("score", {}).get(f"tpr_at_fpr_{key}")
            )
            for key in ("1pct", "0p1pct")
        },
    }


def _rules(report: RunReport) -> dict[str, Any]:
    """Every rule side by side on all photos of each person, and each test's calibration."""
    block = report.evaluation.get("claims", {})
    rows = [
        {"rule": rule, "label": RULE_LABELS[rule].explained if rule in RULE_LABELS else rule,
         **values,
         **{  # evaluations written before the figures were labelled empirical: old keys
             key: values.get(key, values.get(key.removeprefix("empirical_")))
             for key in EMPIRICAL_LOW_FPRS
         }}
        for rule, values in block.get("rules", {}).items()
    ]
    calibration = [
        {"claim": claim, "label": RULE_LABELS[claim].name, **fit}
        for claim, fit in block.get("null_calibration", {}).items()
    ]
    return {
        "label": report.label,
        "alpha": report.evaluation.get("alpha"),
        "rows": rows,
        "calibration": calibration,
        "nulls": block.get("assumptions", {}),
    }


def _notices(report: RunReport) -> list[str]:
    """What a reader must know before trusting the numbers."""
    evaluation, label = report.evaluation, report.label
    notices = []
    if report.computed_now:
        notices.append(
            f"{label}: no evaluation.json in the run folder; evaluated now with the "
            "defaults (run 'idia evaluate' to choose sizes, draws and seed)."
        )
    if not evaluation["has_truth"]:
        notices.append(
            f"{label}: the run has no membership truth, so TPR, FPR and accuracy "
            "cannot be computed; the page shows the share of people called member."
        )
    row = report.summary_row
    if evaluation["has_truth"] and row is not None:
        for group, rate in (("n_non_members", "fpr"), ("n_members", "tpr")):
            n = row[group]
            if n < SMALL_GROUP:
                cells = _rate_cells(row, rate)
                who = "non-member" if group == "n_non_members" else "member"
                who += "" if n == 1 else "s"
                notices.append(
                    f"{label}: the {rate.upper()} of {_pct(cells['mean'])} at size {row['size']} "
                    f"rests on {n} {who} only: its 95% CI is {_pct(cells['low'])} to "
                    f"{_pct(cells['high'])}."
                )
    if evaluation["excluded_sizes"]:
        notices.append(
            f"{label}: no person has enough photos for attack sizes "
            f"{evaluation['excluded_sizes']} (at most "
            f"{evaluation['people']['photos_max']} photos per person)."
        )
    population = evaluation.get("population", {})
    if population.get("mode") == "fixed" and population.get("n_left_out"):
        notices.append(
            f"{label}: {population['n_left_out']} people with fewer than "
            f"{population['min_photos']} usable photos (or left out by the protocol) are left "
            "out of every attack size, so that every size judges the same people."
        )
    partly = [r for r in evaluation["sizes"] if r["n_excluded"] and r["n_included"]]
    if partly and population.get("mode") != "fixed":
        notices.append(
            f"{label}: people with fewer photos than an attack size are left out of "
            "that size: " + ", ".join(f"size {r['size']}: {r['n_excluded']}" for r in partly) + "."
        )
    return notices


def _people_rows(report: RunReport) -> list[dict[str, Any]]:
    results = report.run.results
    threshold = report.evaluation["settings"]["threshold"]
    has_photos = results["n_photos"].to_numpy() > 0
    rows = []
    for i, person in enumerate(results.to_dict("records")):
        member = bool(attack.is_member(person["score"], threshold)) and has_photos[i]
        truth, verdict = person.get("truth"), person.get("verdict")
        rows.append(
            {
                "name": person["name"],
                "n_photos": person["n_photos"],
                "n_skipped": person.get("n_skipped"),
                "score": person["score"],
                "p_name": _present(person.get("p_name")),
                "p_face": _present(person.get("p_face")),
                "p_text": _present(person.get("p_text")),
                "decoys": _person_null(person),
                "claim": RULE_LABELS[verdict].meaning if verdict in RULE_LABELS else "",
                "verdict": "no photos"
                if not has_photos[i]
                else ("member" if member else "not member"),
                "truth": None
                if truth is None or pd.isna(truth)
                else ("member" if truth else "non-member"),
                "count": None if pd.isna(person.get("count")) else int(person["count"]),
                "wrong": truth is not None
                and not pd.isna(truth)
                and has_photos[i]
                and bool(truth) != member,
            }
        )
    return rows


def _null_words(report: RunReport) -> str | None:
    """What the name tests of a run compared each name with, in words (None for a run older
    than the full-name null)."""
    results = report.run.results
    if "null" not in results:
        return None
    counts = results["null"].value_counts()
    served = ", ".join(f"{NULL_LABELS[key]}: {n}" for key, n in counts.items())
    return (f"The name-familiarity and text-only tests compare each name with its own decoy "
            f"names; their null: {FULL_NAME_NULL}. People per null: {served}.")


def _person_null(person: Mapping[str, Any]) -> str:
    """A person's decoys in a few words: "US, 2,000" or why the name was not tested."""
    key = person.get("null")
    if not isinstance(key, str):
        return ""
    if key == "full_name":
        return f"{person['origin']}, {int(person['n_decoys']):,}"
    reason = person.get("null_reason")
    return NULL_LABELS[key] + (f" ({reason})" if isinstance(reason, str) else "")


def _present(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _settings(report: RunReport) -> dict[str, Any]:
    config, evaluation = report.run.config, report.evaluation["settings"]
    audit_command = [
        "idia",
        "audit",
        "--people",
        str(config.get("people_dir", "PEOPLE")),
        "--model",
        str(config.get("model", "MODEL")),
        "--out",
        str(report.run.path),
        "--seed",
        str(config.get("seed", 0)),
        "--num-names",
        str(config.get("num_names", 1000)),
        "--threshold",
        str(config.get("threshold", 1)),
        "--crop",
        str(config.get("crop", "face")),
    ]
    if config.get("membership"):
        audit_command += ["--membership", str(config["membership"])]
    if config.get("photos_per_person"):
        audit_command += ["--photos-per-person", str(config["photos_per_person"])]
    if config.get("crop") == "face" and config.get("detector"):
        audit_command += ["--detector", str(config["detector"])]
    evaluate_command = [
        "idia",
        "evaluate",
        str(report.run.path),
        "--sizes",
        ",".join(map(str, evaluation["sizes"])),
        "--draws",
        str(evaluation["draws"]),
        "--seed",
        str(evaluation["seed"]),
        "--threshold",
        str(evaluation["threshold"]),
        "--ci",
        str(evaluation["ci_method"]),
        "--bins",
        str(evaluation["bins"]),
    ]
    shown = (
        "model",
        "model_identity",
        "seed",
        "num_names",
        "candidate_source",
        "threshold",
        "crop",
        "detector",
        "face_margin",
        "photos_per_person",
        "people_dir",
        "membership",
        "idia_version",
        "created",
    )
    return {
        "label": report.label,
        "path": str(report.run.path.resolve()),
        "run": [(key, config.get(key)) for key in shown if key in config],
        "evaluation": [
            (key, evaluation.get(key))
            for key in (
                "sizes",
                "draws",
                "seed",
                "threshold",
                "ci_method",
                "ci_level",
                "bins",
                "sd_ddof",
                "sampling",
            )
        ],
        "templates": config.get("templates") or [],
        "commands": [shlex.join(audit_command), shlex.join(evaluate_command)],
    }


def _statistics(report: RunReport) -> dict[str, Any]:
    evaluation = report.evaluation
    return {
        "label": report.label,
        "chance": evaluation["chance"],
        "people": evaluation["people"],
    }


def write_report(runs: Sequence[str | Path], out: str | Path) -> Path:
    """The evaluation of one or more run folders (overlaid) as one HTML page, plus the
    figures as PNG and PDF in ``<out stem>_figures/``."""
    if not runs:
        raise EvaluationError("give at least one run folder")
    out = Path(out)
    loaded = [load_report_run(Path(r)) for r in runs]
    labels = _labels([run for run, _, _ in loaded])
    reports = [
        RunReport(label, run, document, now)
        for label, (run, document, now) in zip(labels, loaded, strict=True)
    ]
    folder = _figures_folder(out)
    page_figures = _run_figures(reports, folder)
    context = {
        "kind": "runs",
        "title": "idia report: " + ", ".join(labels),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "notices": [n for r in reports for n in _notices(r)],
        "summaries": [_summary(r) for r in reports],
        "any_truth": any(r.evaluation["has_truth"] for r in reports),
        "figures": page_figures,
        "rules": [_rules(r) for r in reports],
        "statistics": [_statistics(r) for r in reports],
        "people": [
            {
                "label": r.label,
                "threshold": r.evaluation["settings"]["threshold"],
                "n_templates": r.run.n_templates,
                "rows": _people_rows(r),
                "null": _null_words(r),
            }
            for r in reports
        ],
        "settings": [_settings(r) for r in reports],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_template().render(**context), encoding="utf-8")
    return out


def _run_figures(reports: Sequence[RunReport], folder: Path) -> list[dict[str, str]]:
    entries = []

    def add(figure: Figure, name: str, caption: str) -> None:
        entries.append(_figure_entry(figures.save_figure(figure, folder, name), caption))

    truth = any(r.evaluation["has_truth"] for r in reports)
    rates = SUMMARY_RATES if truth else ("called_member",)
    add(
        figures.metrics_vs_size([(r.label, r.sizes) for r in reports], rates),
        "metrics_vs_size",
        "Rates vs attack size (paper Fig. 4): mean over draws, shaded +-1 sd over draws, "
        "dotted 95% confidence interval over the people behind each rate.",
    )
    for index, report in enumerate(reports, start=1):
        row, label = report.summary_row, report.label
        if not report.evaluation["has_truth"] or row is None:
            continue
        size, draws = row["size"], report.evaluation["settings"]["draws"]
        add(
            figures.confusion_matrix(row, f"{label}: size {size} ({draws} draws)"),
            f"confusion_{index}",
            f"{label}: confusion matrix at size {size}, the largest attack size that keeps the "
            "most people: mean count +- sd over draws, and the share of the row (members or "
            "non-members).",
        )
        bins = report.bins
        if bins.empty:
            continue
        add(
            figures.frequency_bins(bins[bins["size"] == size], f"{label}: size {size}"),
            f"frequency_bins_{index}",
            f"{label}: TPR and FNR by number of occurrences in the training data (size {size}; "
            "bars: 95% CI), and how many people each bin holds.",
        )
        usable_sizes = [r["size"] for r in report.evaluation["sizes"] if r["n_included"]]
        add(
            figures.frequency_heatmap(
                bins[bins["size"].isin(usable_sizes)],
                report.evaluation["bins"]["labels"],
                f"{label}: TPR by occurrences and attack size",
            ),
            f"frequency_heatmap_{index}",
            f"{label}: TPR (mean over draws) by training frequency and attack size; blank "
            "cells hold no members.",
        )
        if any("name_familiarity_tpr_mean" in r for r in report.evaluation["sizes"]):
            add(
                figures.claims_vs_size(report.sizes, label),
                f"claims_vs_size_{index}",
                f"{label}: TPR and FPR vs attack size for the paper's rule and the calibrated "
                "tests (verdicts at alpha with Benjamini-Hochberg per draw); bands: 95% CI over "
                "the people behind each rate.",
            )
        calibration = report.evaluation.get("claims", {}).get("null_calibration")
        if calibration:
            add(
                figures.calibration_qq(calibration, f"{label}: p-values of non-members"),
                f"calibration_{index}",
                f"{label}: each test's p-values on non-members (people the model cannot know) "
                "against the uniform distribution, with the share at p <= 0.05 and the "
                "randomized-PIT uniformity p-value. A valid test stays on or above the "
                "diagonal (coarse or tied p-values step above it); points below it mean too "
                "many small p-values, i.e. false claims.",
            )
    curves = [(r.label, r.evaluation["roc"]) for r in reports if r.evaluation["has_truth"]]
    if curves:
        add(
            figures.roc_curves(curves),
            "roc",
            "ROC over all photos of each person: the ordinal score (solid) and, where the "
            "model exposes similarities, the real name's mean probability (dashed) and mean "
            "rank (dotted). The log-scale panel shows the low-FPR regime that "
            "membership-inference evaluations report.",
        )
        if any("name_familiarity" in roc for _, roc in curves):
            add(
                figures.roc_curves(curves, figures.RULE_SCORES),
                "roc_rules",
                "ROC of every rule on all photos of each person: the paper's score, the "
                "calibrated tests' z against their nulls, and the face-blind baseline (the "
                "name's response on other people's photos only). Whatever the face-blind "
                "baseline reaches, the name alone explains; only the face-association test "
                "speaks for the face.",
            )
    return entries


def write_check_report(
    result: CheckResult, out: str | Path, settings: Mapping[str, Any] | None = None
) -> Path:
    """One person's verdict with its evidence as a self-contained HTML page (and the figure
    as PNG and PDF next to it). ``settings``: what the result does not record (e.g. crop)."""
    out = Path(out)
    folder = _figures_folder(out)
    entries = []
    if result.templates:
        figure = figures.template_votes(
            [t.template for t in result.templates],
            [t.votes for t in result.templates],
            [t.correct for t in result.templates],
            result.n_photos,
        )
        entries.append(
            _figure_entry(
                figures.save_figure(figure, folder, "template_votes"),
                "Per template: the share of photos that voted for the template's winning name "
                "(green when the winner is the real name; a tie for the top gives no "
                "prediction).",
            )
        )
    skipped = [p for p in result.photos if p["status"] != "ok"]
    tests = [
        {
            "claim": claim,
            "label": RULE_LABELS[claim].explained,
            "test": test,
            "holds": test.holds(result.alpha),
            "null": test.null or NULLS[claim],
        }
        for claim, test in result.claims.items()
    ]
    context = {
        "kind": "check",
        "tests": tests,
        "title": f"idia check: {result.name}",
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "result": result,
        "n_skipped": len(skipped),
        "figures": entries,
        "settings": [
            ("model", result.model),
            ("seed", result.seed),
            ("candidate names", result.n_candidates),
            ("candidate source", result.candidate_source),
            ("threshold (tau)", result.threshold),
            ("alpha (calibrated tests)", result.alpha),
            ("sex used for matching", result.sex or "unknown"),
            ("decoys of the name tests", null_description(result.name_null)),
            ("reference people", result.n_reference_people),
            *((str(k), v) for k, v in (settings or {}).items()),
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(_template().render(**context), encoding="utf-8")
    return out
