"""``idia evaluate`` and ``idia report``: the paper's experiments from a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from idia.evaluation import (
    BIN_MODES,
    CI_METHODS,
    DEFAULT_DRAWS,
    DEFAULT_SIZES,
    EvaluationError,
    evaluate_run,
    parse_sizes,
)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


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
) -> None:
    """Resample photos per attack size (the paper's protocol): rates with sd and 95% CIs."""
    if draws < 1:
        _fail(f"--draws must be at least 1, got {draws}")
    if ci not in CI_METHODS:
        _fail(f"--ci must be one of {', '.join(CI_METHODS)}, not {ci!r}")
    if bins not in BIN_MODES:
        _fail(f"--bins must be one of {', '.join(BIN_MODES)}, not {bins!r}")
    try:
        chosen = parse_sizes(sizes)
        document = evaluate_run(run, chosen, draws, seed, threshold, ci, bins)  # type: ignore[arg-type]
    except (EvaluationError, OSError) as err:
        _fail(str(err))
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
        _fail(str(err))
    typer.echo(f"report: {written}")


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
