"""``idia train``: the controlled membership experiment on real or synthetic data (thin CLI)."""

from __future__ import annotations

import csv
import shlex
from pathlib import Path

import typer

from idia.lab.train import (
    DEFAULT_INJECT,
    TrainDataError,
    TrainingFailed,
    TrainSettings,
    build_train_command,
    compose_training_set,
    ensure_new_run,
    parse_inject,
    read_caption_csv,
    read_people_folder,
    read_webdataset,
    train_clip,
    write_training_set,
)
from idia.models.card import write_training_card

_PROGRESS_MARKERS = ("Start epoch", "Train Epoch", "Error", "error", "Traceback", "Exception")


def _webdataset_shards(base: Path) -> list[str] | None:
    """Shard paths when ``base`` names webdataset shards (a .tar, a brace pattern, a folder)."""
    text = str(base)
    if "{" in text and text.endswith(".tar"):
        from braceexpand import braceexpand

        return list(braceexpand(text))
    if base.is_dir():
        return sorted(str(p) for p in base.glob("*.tar")) or None
    return [text] if base.suffix == ".tar" else None


def _read_hypernyms(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    if not path.is_file():
        raise TrainDataError(f"hypernyms file not found: {path}")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not {"name", "hypernym"} <= set(rows[0]):
        raise TrainDataError(f"{path}: needs columns name,hypernym")
    return {row["name"]: row["hypernym"] for row in rows}


def train_command(
    base: Path = typer.Option(
        ...,
        help="Base image-caption data: open_clip CSV/TSV, or webdataset shards "
        "(a .tar, a folder of .tar, or a brace pattern like 'shards/{00000..00099}.tar').",
    ),
    people: Path = typer.Option(
        ..., help="People folder: one sub-folder per person, named after them."
    ),
    out: Path = typer.Option(
        ..., help="Output folder: training set, membership, attack photos, logs."
    ),
    inject: str = typer.Option(
        ",".join(map(str, DEFAULT_INJECT)), help="Pairs per member, dealt evenly over the members."
    ),
    members: int | None = typer.Option(
        None, help="How many people to inject (default: half of them)."
    ),
    attack_photos: int = typer.Option(10, help="Photos per person held out for the attack."),
    seed: int = typer.Option(0, help="Seed for member choice, held-out photos and captions."),
    mask_names: bool = typer.Option(
        False, help="Replace names in captions by a hypernym (CC3M's preprocessing)."
    ),
    hypernyms: Path | None = typer.Option(
        None, help="CSV name,hypernym for --mask-names (default hypernym: 'person')."
    ),
    familiar_non_members: bool = typer.Option(
        False, help="Confound control: non-members' names also appear in as many captions, "
        "each beside a random base image (never anyone under test)."
    ),
    csv_separator: str | None = typer.Option(
        None, help="Base CSV separator (default: by extension)."
    ),
    csv_img_key: str = typer.Option("filepath", help="Base CSV image path column."),
    csv_caption_key: str = typer.Option("caption", help="Base CSV caption column."),
    model: str = typer.Option(
        "idia-tiny-vit", help="Bundled config name, open_clip model name, or config JSON path."
    ),
    epochs: int = typer.Option(1, min=1),
    batch_size: int = typer.Option(64, min=1),
    lr: float = typer.Option(1e-3),
    warmup: int = typer.Option(10, min=0),
    wd: float = typer.Option(0.1),
    workers: int = typer.Option(1, min=0, help="Data loader workers per process."),
    device: str = typer.Option("cpu", help="cpu, cuda, ..."),
    precision: str = typer.Option("fp32", help="open_clip precision (amp on GPUs)."),
    nproc: int = typer.Option(1, min=1, help="Processes on this node (torchrun, DDP)."),
    name: str = typer.Option("clip", help="Run name under OUT/logs."),
    open_clip_args: str = typer.Option("", help="More open_clip_train options, quoted."),
    crop: str = typer.Option(
        "none",
        help="How photos are to be prepared for this model, written to its model card (the "
        "default of check, audit and web): 'none' (whole photos, as training used the people's "
        "photos) or 'face' (the people's photos are face crops like idia's).",
    ),
    prepare_only: bool = typer.Option(
        False, help="Write the training set and print the training command (for SLURM) only."
    ),
    verbose: bool = typer.Option(False, help="Show all of open_clip_train's output."),
) -> None:
    """Inject people into a caption dataset at known counts, hold out attack photos, train CLIP."""
    settings = TrainSettings(
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        warmup=warmup,
        wd=wd,
        workers=workers,
        device=device,
        seed=seed,
        precision=precision,
        extra_args=tuple(shlex.split(open_clip_args)),
    )
    try:
        if crop not in ("face", "none"):
            raise TrainDataError(f"--crop must be 'face' or 'none', not {crop!r}")
        counts = parse_inject(inject)
        ensure_new_run(out / "logs", name)
        people_list = read_people_folder(people)
        shards = _webdataset_shards(base)
        if shards is not None:
            pairs = read_webdataset(shards, out / "base_images")
        else:
            pairs = read_caption_csv(base, csv_separator, csv_img_key, csv_caption_key)
        training_set = compose_training_set(
            pairs,
            people_list,
            inject=counts,
            members=members,
            attack_photos=attack_photos,
            seed=seed,
            mask_names=mask_names,
            hypernyms=_read_hypernyms(hypernyms),
            familiar_non_members=familiar_non_members,
        )
        files = write_training_set(training_set, out)
        plan = training_set.plan
        typer.echo(
            f"training set: {plan['training_pairs']} pairs ({plan['injected_pairs']} injected for "
            f"{plan['members']} members; {plan['non_members']} non-members held out) -> "
            f"{files.train_csv}"
        )
        typer.echo(f"membership: {files.membership_csv}; attack photos: {files.attack_people}")
        if prepare_only:
            command = build_train_command(
                files.train_csv, out / "logs", name, settings, len(training_set.pairs), nproc
            )
            typer.echo("train with (prefix with srun for SLURM):\n" + shlex.join(command))
            return

        def show(line: str) -> None:
            if verbose or any(marker in line for marker in _PROGRESS_MARKERS):
                typer.echo(line)

        result = train_clip(files.train_csv, out / "logs", name, settings, nproc, on_line=show)
        card = write_training_card(
            result.checkpoint, result.model_config, files.plan_json,
            name=f"{result.model_config.stem} trained by idia train ({name[:30]})",
            made_by="idia train", crop=crop, membership=files.membership_csv,
            people=files.attack_people, epochs=epochs,
        )
    except TrainDataError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from None
    except TrainingFailed as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"checkpoint: {result.checkpoint}")
    typer.echo(f"model spec: {result.model_spec}")
    typer.echo(f"model card: {card} (photos: {'face crops' if crop == 'face' else 'whole'})")
