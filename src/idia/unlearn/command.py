"""``idia unlearn``, ``idia certify`` and ``idia defence``: thin CLI layers over the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from idia.cli_errors import fail
from idia.models import SPEC_HELP, ModelLoadError
from idia.unlearn.method import ENCODERS, UnlearnError, UnlearnSettings, unlearn


def unlearn_command(
    model: Annotated[str, typer.Option("--model", "-m", help=f"open_clip model: {SPEC_HELP}.")],
    names: Annotated[Path, typer.Option(help="Names to erase: one per line, or CSV with 'name'.")],
    out: Annotated[Path, typer.Option(help="Folder to write (must not exist or be empty).")],
    encoder: Annotated[str, typer.Option(help="text, image or both.")] = "text",
    people: Annotated[
        Path | None,
        typer.Option(help="Photos for the image encoder: one sub-folder per person."),
    ] = None,
    neutral: Annotated[str, typer.Option(help="What the names become.")] = "a person",
    captions: Annotated[
        Path | None,
        typer.Option(help="open_clip CSV of clean texts (and images) to preserve; captions naming "
                     "a person become triggers. Default: generated from templates, decoy names "
                     "and synthetic captions."),
    ] = None,
    steps: Annotated[int, typer.Option(min=1, help="Optimiser steps.")] = UnlearnSettings.steps,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW).")] = UnlearnSettings.lr,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts (or images) per loss term.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed for batches and decoy names.")] = 0,
    crop: Annotated[str, typer.Option(help="'face' or 'none' (photos under --people).")] = "face",
    device: Annotated[str | None, typer.Option(help="'cpu', 'cuda'; default: auto.")] = None,
    threads: Annotated[
        int | None, typer.Option(min=1, help="CPU threads (default: PyTorch's; on cores shared "
                                 "with other jobs, 1 can be several times faster).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Erase people from an open_clip model (their names, and with --encoder image/both their
    faces) by fine-tuning for minutes; writes a checkpoint and unlearn.json."""
    from idia.names import NameSourceError, read_names_file

    if encoder not in ENCODERS:
        fail(f"--encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
    settings = UnlearnSettings(encoder=encoder, neutral=neutral, steps=steps, lr=lr,
                               batch_size=batch_size, seed=seed, crop=crop)
    _set_threads(threads)
    try:
        name_list = read_names_file(names)
        result = unlearn(model, name_list, out, settings, people_dir=people, captions=captions,
                         device=device, progress=not quiet,
                         log=lambda m: typer.echo(m, err=True))
    except (UnlearnError, NameSourceError, ModelLoadError, OSError) as err:
        fail(str(err))
    losses = result.record["losses"]
    typer.echo(f"unlearned {len(result.record['names'])} name(s) in "
               f"{result.record['seconds']['total_s']:.0f} s; cosine distance to the targets "
               f"{losses['initial']} -> {losses['final']}")
    typer.echo(f"record: {out / 'unlearn.json'}")
    typer.echo(f"model spec: {result.spec}")


def _set_threads(threads: int | None) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def certify_command(
    photos: Annotated[list[Path], typer.Argument(help="Photos of the person.")],
    name: Annotated[str, typer.Option("--name", "-n", help="The person's real name.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The original model's spec.")],
    unlearned: Annotated[
        Path, typer.Option(help="The folder 'idia unlearn' wrote (unlearn.json, checkpoint).")
    ],
    out: Annotated[Path, typer.Option(help="HTML page to write.")] = Path("certificate.html"),
    crop: Annotated[str, typer.Option(help="'face' or 'none'.")] = "face",
    num_names: Annotated[int, typer.Option(help="Candidate names in total.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed for the decoy names.")] = 0,
    threshold: Annotated[int, typer.Option(help="tau.")] = 1,
    reference: Annotated[
        Path | None,
        typer.Option(help="Other people's photos, one subfolder per person, for the "
                     "face-association test on both models (without it, that test is not run)."),
    ] = None,
    sex: Annotated[
        str | None, typer.Option(help="'f' or 'm' for matching reference people.")
    ] = None,
    alpha: Annotated[float, typer.Option(min=0.0, max=1.0, help="Level of the calibrated "
                                         "tests' verdicts.")] = 0.05,
    device: Annotated[str | None, typer.Option(help="'cpu', 'cuda'; default: auto.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Also print the data as JSON.")] = False,
) -> None:
    """An erasure certificate: 'idia check' on the original and the unlearned model, side by
    side on one page, with the settings that made the new model."""
    from idia.engine import AttackInputError, create_attack
    from idia.report.compare import certificate_data, conclusion, write_certificate

    missing = [str(p) for p in photos if not p.exists()]
    if missing:
        fail(f"photo(s) not found: {', '.join(missing)}")
    record_path = unlearned / "unlearn.json"
    if not record_path.is_file():
        fail(f"{unlearned} has no unlearn.json: give the folder 'idia unlearn --out' wrote")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        new_spec = record["model"]
    except (ValueError, KeyError) as err:
        fail(f"{record_path} is not an unlearn record: {err}")
    if crop not in ("face", "none"):
        fail(f"--crop must be 'face' or 'none', not {crop!r}")
    try:
        results, identities = [], []
        for spec in (model, new_spec):
            attacker = create_attack(spec, num_names=num_names, seed=seed, threshold=threshold,
                                     crop=crop, device=device, progress=False, use_cache=False)
            results.append(attacker.check(photos, name, reference=reference, sex=sex,
                                          alpha=alpha))
            identities.append(attacker.classifier.identity)
    except (AttackInputError, ValueError, ModelLoadError) as err:
        fail(str(err))
    settings = {"crop": crop, "alpha": alpha, "reference people": results[0].n_reference_people}
    written = write_certificate(results[0], results[1], out, tuple(identities), record, settings)
    if as_json:
        typer.echo(json.dumps(certificate_data(results[0], results[1], tuple(identities), record,
                                               settings), ensure_ascii=False))
    else:
        typer.echo(conclusion(name, results[0], results[1]))
    typer.echo(f"certificate: {written}", err=True)


def defence_command(
    lab: Annotated[Path, typer.Argument(help="A finished 'idia lab' folder.")],
    method: Annotated[str, typer.Option(help="unlearn or mask-names.")] = "unlearn",
    encoder: Annotated[str, typer.Option(help="For unlearn: text, image or both.")] = "text",
    steps: Annotated[int, typer.Option(min=1)] = UnlearnSettings.steps,
    lr: Annotated[float, typer.Option()] = UnlearnSettings.lr,
    seed: Annotated[int | None, typer.Option(help="Default: the lab's seed.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads (see unlearn).")] = None,
) -> None:
    """Certify a defence on a finished lab: erase half of the members, attack again, measure
    utility and what still leaks; figures into LAB/summary.json under "defence"."""
    settings = UnlearnSettings(encoder=encoder, steps=steps, lr=lr)
    _set_threads(threads)
    render_defence(run_lab_defence(lab, method, seed, settings))


def run_lab_defence(lab: Path, method: str, seed: int | None,
                    settings: UnlearnSettings | None = None) -> dict:
    """The defence on ``lab`` with user errors as one line (shared with ``idia lab --defence``)."""
    from idia.lab.defence import DefenceError, run_defence
    from idia.lab.train import TrainDataError, TrainingFailed

    console = Console()
    try:
        return run_defence(lab, method, seed, settings,
                           log=lambda m: console.print(m, highlight=False))
    except (DefenceError, UnlearnError, TrainDataError, ModelLoadError) as err:
        fail(str(err))
    except TrainingFailed as err:
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


def render_defence(defence: dict) -> None:
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.0%}"

    table = Table("group", "n", "before", "after", title=f"defence: {defence['method']}")
    for key, label, rate in (("unlearned", "erased members", "tpr"),
                             ("kept", "kept members", "tpr"),
                             ("non_members", "non-members", "fpr")):
        g = defence[key]
        table.add_row(label, str(g["n"]), f"{rate.upper()} {pct(g[f'{rate}_before'])}",
                      f"{rate.upper()} {pct(g[f'{rate}_after'])}")
    for test, figures in defence.get("calibrated", {}).items():
        for key, label, rate in (("unlearned", "erased", "tpr"), ("kept", "kept", "tpr"),
                                 ("non_members", "non-members", "fpr")):
            g = figures[key]
            table.add_row(f"{test} test ({figures['rule']}): {label}", str(g["n"]),
                          f"{rate.upper()} {pct(g[f'{rate}_before'])}",
                          f"{rate.upper()} {pct(g[f'{rate}_after'])}")
    utility = defence["utility"]
    table.add_row("zero-shot accuracy", "", pct(utility["zero_shot_before"]),
                  pct(utility["zero_shot_after"]))
    table.add_row("recall@1", "", pct(utility["recall_at_1_before"]),
                  pct(utility["recall_at_1_after"]))
    for kind, v in defence["variants"].items():
        table.add_row(f"leak: {kind}", str(v["n"]), f"TPR {pct(v['tpr_before'])}",
                      f"TPR {pct(v['tpr_after'])}")
    console = Console()
    console.print(table)
    console.print(f"Seconds: {defence['seconds']}")
