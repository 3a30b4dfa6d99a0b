"""``idia evaluate`` and ``idia report``: the paper's experiments from a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idia.cli.errors import fail
from idia.cli.render import render_evaluation
from idia.evaluation import (
    BIN_MODES,
    CI_METHODS,
    DEFAULT_DRAWS,
    DEFAULT_SIZES,
    POPULATIONS,
    PROTOCOLS,
    evaluate_run,
    parse_sizes,
)

app = typer.Typer()


@app.command()
def evaluate(
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
    document = evaluate_run(
        run, parse_sizes(sizes), draws=draws, seed=seed, threshold=threshold,
        ci_method=ci, bins=bins, population=population,  # type: ignore[arg-type]
        alpha=alpha, protocol=protocol,  # type: ignore[arg-type]
    )
    render_evaluation(document, run)


@app.command()
def report(
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

    written = write_report(runs, out if out is not None else runs[0] / "report.html")
    typer.echo(f"report: {written}")
