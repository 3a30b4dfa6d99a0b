"""``idia evaluate`` and ``idia report``: the paper's experiments from a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from idia.cli_errors import fail
from idia.evaluation import (
    BIN_MODES,
    CI_METHODS,
    DEFAULT_DRAWS,
    DEFAULT_SIZES,
    POPULATIONS,
    PROTOCOLS,
    EvaluationError,
    evaluate_run,
    parse_sizes,
)


def evaluate_command(
    run: Annotated[Path, typer.Argument(help="Run folder written by 'idia audit'.")],
    sizes: Annotated[
        str, typer.Option(help="Attack sizes: photos sampled per person, comma-separated.")
    ] = ",".join(map(str, DEFAULT_SIZES)),
    draws: Annotated[int, typer.Option(help="Random draws per size.")] = DEFAULT_DRAWS,
    seed: Annotated[int, typer.Option(help="Seed for the photo draws.")] = 0,
    threshold: Annotated[
        int | None, typer.Option(help="tau (default: the run's own threshold).")
    ] = None,
    ci: Annotated[
        str, typer.Option(help=f"Confidence interval: {' or '.join(CI_METHODS)}.")
    ] = "wilson",
    bins: Annotated[
        str,
        typer.Option(
            help="Training-frequency bins: 'exact' (one per count), 'paper' (0, 25, "
            "..., 300, above) or 'auto' (exact for at most 12 distinct counts)."
        ),
    ] = "auto",
    population: Annotated[
        str,
        typer.Option(help="'fixed': the same people at every size (those with at least as "
                     "many photos as the largest size); 'per-size': everyone with enough "
                     "photos for each size."),
    ] = "fixed",
    alpha: Annotated[
        float | None,
        typer.Option(help="Level of the calibrated tests' verdicts (default: the run's)."),
    ] = None,
    protocol: Annotated[
        str | None,
        typer.Option(help="'paper': the paper notebooks' rules (sizes 1,3,...,29,30, 20 "
                     "draws, only people with >= 30 photos and, where counts are known, "
                     "fewer than 300 occurrences; the paper's bins). Overrides --sizes, "
                     "--draws, --population, --bins."),
    ] = None,
) -> None:
    """Resample photos per attack size (the paper's protocol): rates with sd and 95% CIs, for
    the paper's rule and the calibrated tests."""
    if draws < 1:
        fail(f"--draws must be at least 1, got {draws}")
    if ci not in CI_METHODS:
        fail(f"--ci must be one of {', '.join(CI_METHODS)}, not {ci!r}")
    if bins not in BIN_MODES:
        fail(f"--bins must be one of {', '.join(BIN_MODES)}, not {bins!r}")
    if population not in POPULATIONS:
        fail(f"--population must be one of {', '.join(POPULATIONS)}, not {population!r}")
    if protocol is not None and protocol not in PROTOCOLS:
        fail(f"--protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    try:
        chosen = parse_sizes(sizes)
        document = evaluate_run(run, chosen, draws, seed, threshold, ci, bins,  # type: ignore[arg-type]
                                population, alpha, protocol)  # type: ignore[arg-type]
    except (EvaluationError, OSError) as err:
        fail(str(err))
    render_evaluation(document, run)


def report_command(
    runs: Annotated[list[Path], typer.Argument(help="One or more run folders (overlaid).")],
    out: Annotated[
        Path | None,
        typer.Option(
            help="HTML file to write (default: report.html in the first run folder); "
            "the figures go next to it as PNG and PDF."
        ),
    ] = None,
) -> None:
    """One self-contained HTML page: the paper's figures, CIs, ROC, people, settings."""
    from idia.report import write_report  # matplotlib only when a report is asked for

    target = out if out is not None else runs[0] / "report.html"
    try:
        written = write_report(runs, target)
    except (EvaluationError, OSError) as err:
        fail(str(err))
    typer.echo(f"report: {written}")


TESTED_CLAIMS = ("name_familiarity", "face_association")
CLAIM_NAMES = {
    "name_familiarity": "name",
    "face_association": "face",
    "text_only": "text only",
}


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _rate_cell(row: dict, rate: str) -> str:
    """'95.0% ±1.6 [89.3%-97.7%]': mean, sd over draws (points), 95% CI over people."""
    mean, sd = row[f"{rate}_mean"], row[f"{rate}_sd"]
    if mean is None:
        return "n/a"
    spread = "" if sd is None else f" ±{sd * 100:.1f}"
    return (
        f"{mean:.1%}{spread} [{_percent(row[f'{rate}_ci_low'])}-{_percent(row[f'{rate}_ci_high'])}]"
    )


def calibration_text(fit: dict) -> str:
    """A test's calibration on non-members in words: the share at p <= 0.05 and 0.01 with
    exact intervals and the randomized-PIT p (older evaluations: the KS p); 'n/a' with the
    reason when a figure cannot be computed."""
    if "at_0.05" not in fit:  # an evaluation written before the one-sided checks
        ks = fit.get("ks_p")
        return f"Kolmogorov-Smirnov p = {'n/a' if ks is None else format(ks, '.3g')} " \
            f"(n = {fit['n']})"
    parts = []
    for key in ("at_0.05", "at_0.01"):
        check = fit[key]
        if check["share"] is None:
            parts.append(f"p <= {check['level']:g}: n/a ({check.get('reason', 'no p-values')})")
            continue
        low, high = check["ci"]
        parts.append(f"p <= {check['level']:g} for {check['share']:.1%} [{low:.1%}-{high:.1%}]"
                     + (" (too many)" if check["exceeds"] else ""))
    pit = fit.get("pit", {})
    parts.append("randomized-PIT KS p = " + (
        f"{pit['p']:.3g}" if pit.get("p") is not None else f"n/a ({pit.get('reason', '')})"
    ))
    return f"{', '.join(parts)} (n = {fit['n']}; 95% Clopper-Pearson)"


def render_evaluation(document: dict, run: Path) -> None:
    console = Console()
    settings, people, truth = document["settings"], document["people"], document["has_truth"]
    counts = ("n_members", "n_non_members") if truth else ("n_included",)
    rates = ("tpr", "fpr", "accuracy") if truth else ("called_member",)
    table = Table(
        "size",
        *(("members", "non-members") if truth else ("people",)),
        "excluded",
        *(("TPR", "FPR", "accuracy") if truth else ("called member",)),
        title=f"evaluate: {run} ({settings['draws']} draws, seed {settings['seed']}, "
        f"tau {settings['threshold']}; mean ±sd [95% CI])",
    )
    for row in document["sizes"]:
        table.add_row(
            str(row["size"]),
            *(str(row[c]) for c in counts),
            str(row["n_excluded"]),
            *(_rate_cell(row, r) for r in rates),
        )
    console.print(table)
    tested = [c for c in TESTED_CLAIMS if f"{c}_tpr_mean" in (document["sizes"] or [{}])[0]]
    if truth and tested:
        tests = Table(
            "size",
            *(f"{CLAIM_NAMES[c]} TPR" for c in tested),
            *(f"{CLAIM_NAMES[c]} FPR" for c in tested),
            title=f"calibrated tests (alpha {document['alpha']:g}, Benjamini-Hochberg per draw;"
            " mean ±sd [95% CI])",
        )
        for row in document["sizes"]:
            tests.add_row(
                str(row["size"]),
                *(_rate_cell(row, f"{c}_tpr") for c in tested),
                *(_rate_cell(row, f"{c}_fpr") for c in tested),
            )
        console.print(tests)
    population = document["population"]
    if population["mode"] == "fixed" and population["n_left_out"]:
        console.print(
            f"[yellow]{population['n_left_out']} people with fewer than "
            f"{population['min_photos']} usable photos are left out of every size (fixed "
            "population).[/yellow]"
        )
    for claim, fit in document["claims"].get("null_calibration", {}).items():
        console.print(f"Calibration on non-members, {CLAIM_NAMES[claim]}: "
                      f"{calibration_text(fit)}.")
    if truth:
        console.print(
            f"{people['n_members']} members, {people['n_non_members']} non-members: "
            "the CIs reflect how many people stand behind each rate."
        )
    else:
        console.print(
            "[yellow]No membership truth in this run: only the share called member "
            "is reported.[/yellow]"
        )
    if document["excluded_sizes"]:
        console.print(
            f"[yellow]No person has enough photos for sizes {document['excluded_sizes']} "
            f"(at most {people['photos_max']}).[/yellow]"
        )
    console.print(f"Written: {run / 'evaluation.json'}, {run / 'evaluation.parquet'}")
