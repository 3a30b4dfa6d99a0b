"""``idia evaluate`` and ``idia report``: the paper's experiments from a run folder."""

from __future__ import annotations

import typer

from idia.cli.errors import fail
from idia.cli.options import (
    BinsOpt,
    CiOpt,
    DrawSeedOpt,
    DrawsOpt,
    PopulationOpt,
    ProtocolOpt,
    ReportOutOpt,
    RunAlphaOpt,
    RunArg,
    RunsArg,
    RunThresholdOpt,
    SizesOpt,
)
from idia.cli.render import render_evaluation
from idia.evaluation import (
    BIN_MODES,
    CI_METHODS,
    DEFAULT_DRAWS,
    DEFAULT_SIZES,
    POPULATIONS,
    PROTOCOLS,
    EvaluationSettings,
    evaluate_run,
    parse_sizes,
)

app = typer.Typer()


@app.command()
def evaluate(
    run: RunArg,
    sizes: SizesOpt = ",".join(map(str, DEFAULT_SIZES)),
    draws: DrawsOpt = DEFAULT_DRAWS,
    seed: DrawSeedOpt = 0,
    threshold: RunThresholdOpt = None,
    ci: CiOpt = "wilson",
    bins: BinsOpt = "auto",
    population: PopulationOpt = "fixed",
    alpha: RunAlphaOpt = None,
    protocol: ProtocolOpt = None,
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
    settings = EvaluationSettings(
        sizes=parse_sizes(sizes), draws=draws, seed=seed, threshold=threshold,
        ci_method=ci, bins=bins, population=population,  # type: ignore[arg-type]
        alpha=alpha, protocol=protocol,  # type: ignore[arg-type]
    )
    document = evaluate_run(run, settings)
    render_evaluation(document, run)


@app.command()
def report(
    runs: RunsArg,
    out: ReportOutOpt = None,
) -> None:
    """One self-contained HTML page: the paper's figures, CIs, ROC, people, settings."""
    from idia.report import write_report  # matplotlib only when a report is asked for

    written = write_report(runs, out if out is not None else runs[0] / "report.html")
    typer.echo(f"report: {written}")
