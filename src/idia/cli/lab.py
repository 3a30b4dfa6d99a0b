"""``idia train`` (the controlled membership experiment on real or synthetic data) and
``idia lab`` (the same on synthetic people, end to end)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from idia.cli.errors import fail
from idia.cli.options import (
    FamiliarNonMembersOpt,
    LrOpt,
    PeopleOpt,
    SeedOpt,
    expand_option_groups,
)
from idia.cli.render import log_line, render_defence, render_lab, render_seeds
from idia.lab.train import (
    DEFAULT_INJECT,
    Composition,
    TrainingCard,
    TrainSettings,
    build_train_command,
    ensure_new_run,
    parse_inject,
    prepare_training_set,
    read_base,
    read_hypernyms,
    read_people_folder,
    resolve_model_config,
    train_and_card,
)

app = typer.Typer()

_PROGRESS_MARKERS = ("Start epoch", "Train Epoch", "Error", "error", "Traceback", "Exception")


@dataclass(frozen=True)
class CompositionOptions:
    """How ``idia train`` composes the training set."""

    inject: Annotated[
        str, typer.Option(help="Pairs per member, dealt evenly over the members.")
    ] = ",".join(map(str, DEFAULT_INJECT))
    members: Annotated[
        int | None, typer.Option(help="How many people to inject (default: half of them).")
    ] = None
    attack_photos: Annotated[
        int, typer.Option(help="Photos per person held out for the attack.")
    ] = 10
    seed: Annotated[
        int, typer.Option(help="Seed for member choice, held-out photos and captions.")
    ] = 0
    mask_names: Annotated[
        bool, typer.Option(help="Replace names in captions by a hypernym (CC3M's preprocessing).")
    ] = False
    hypernyms: Annotated[
        Path | None,
        typer.Option(help="CSV name,hypernym for --mask-names (default hypernym: 'person')."),
    ] = None
    familiar_non_members: FamiliarNonMembersOpt = False

    def composition(self) -> Composition:
        return Composition(
            inject=parse_inject(self.inject), members=self.members,
            attack_photos=self.attack_photos, seed=self.seed, mask_names=self.mask_names,
            hypernyms=read_hypernyms(self.hypernyms),
            familiar_non_members=self.familiar_non_members,
        )


@dataclass(frozen=True)
class BaseCsvOptions:
    """How ``idia train`` reads a base CSV."""

    csv_separator: Annotated[
        str | None, typer.Option(help="Base CSV separator (default: by extension).")
    ] = None
    csv_img_key: Annotated[str, typer.Option(help="Base CSV image path column.")] = "filepath"
    csv_caption_key: Annotated[str, typer.Option(help="Base CSV caption column.")] = "caption"


@dataclass(frozen=True)
class TrainingOptions:
    """How ``idia train`` runs open_clip_train."""

    model: Annotated[
        str,
        typer.Option(help="Bundled config name, open_clip model name, or config JSON path."),
    ] = "idia-tiny-vit"
    epochs: Annotated[int, typer.Option(min=1)] = 1
    batch_size: Annotated[int, typer.Option(min=1)] = 64
    lr: LrOpt = 1e-3
    warmup: Annotated[int, typer.Option(min=0)] = 10
    wd: Annotated[float, typer.Option()] = 0.1
    workers: Annotated[int, typer.Option(min=0, help="Data loader workers per process.")] = 1
    device: Annotated[str, typer.Option(help="cpu, cuda, ...")] = "cpu"
    precision: Annotated[str, typer.Option(help="open_clip precision (amp on GPUs).")] = "fp32"
    nproc: Annotated[
        int, typer.Option(min=1, help="Processes on this node (torchrun, DDP).")
    ] = 1
    name: Annotated[str, typer.Option(help="Run name under OUT/logs.")] = "clip"
    open_clip_args: Annotated[
        str, typer.Option(help="More open_clip_train options, quoted.")
    ] = ""

    def settings(self, seed: int) -> TrainSettings:
        return TrainSettings(
            model=self.model, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
            warmup=self.warmup, wd=self.wd, workers=self.workers, device=self.device, seed=seed,
            precision=self.precision, extra_args=tuple(shlex.split(self.open_clip_args)),
        )


@app.command()
@expand_option_groups
def train(
    base: Annotated[
        Path,
        typer.Option(help="Base image-caption data: open_clip CSV/TSV, or webdataset shards "
                     "(a .tar, a folder of .tar, or a brace pattern like "
                     "'shards/{00000..00099}.tar')."),
    ],
    people: PeopleOpt,
    out: Annotated[
        Path, typer.Option(help="Output folder: training set, membership, attack photos, logs.")
    ],
    composing: CompositionOptions = CompositionOptions(),
    base_csv: BaseCsvOptions = BaseCsvOptions(),
    training: TrainingOptions = TrainingOptions(),
    crop: Annotated[
        str,
        typer.Option(help="How photos are to be prepared for this model, written to its model "
                     "card (the default of check, audit and web): 'none' (whole photos, as "
                     "training used the people's photos) or 'face' (the people's photos are "
                     "face crops like idia's)."),
    ] = "none",
    prepare_only: Annotated[
        bool,
        typer.Option(help="Write the training set and print the training command (for SLURM) "
                     "only."),
    ] = False,
    verbose: Annotated[bool, typer.Option(help="Show all of open_clip_train's output.")] = False,
) -> None:
    """Inject people into a caption dataset at known counts, hold out attack photos, train CLIP."""
    if crop not in ("face", "none"):
        fail(f"--crop must be 'face' or 'none', not {crop!r}")
    composition = composing.composition()
    settings = training.settings(composition.seed)
    ensure_new_run(out / "logs", training.name)
    people_list = read_people_folder(people)
    pairs = read_base(base, out / "base_images", base_csv.csv_separator, base_csv.csv_img_key,
                      base_csv.csv_caption_key)
    training_set, files = prepare_training_set(pairs, people_list, out, composition)
    plan = training_set.plan
    typer.echo(
        f"training set: {plan['training_pairs']} pairs ({plan['injected_pairs']} injected for "
        f"{plan['members']} members; {plan['non_members']} non-members held out) -> "
        f"{files.train_csv}"
    )
    typer.echo(f"membership: {files.membership_csv}; attack photos: {files.attack_people}")
    if prepare_only:
        command = build_train_command(files.train_csv, out / "logs", training.name, settings,
                                      len(training_set.pairs), training.nproc)
        typer.echo("train with (prefix with srun for SLURM):\n" + shlex.join(command))
        return

    def show(line: str) -> None:
        if verbose or any(marker in line for marker in _PROGRESS_MARKERS):
            typer.echo(line)

    architecture = resolve_model_config(training.model).stem
    card = TrainingCard(
        name=f"{architecture} trained by idia train ({training.name[:30]})",
        made_by="idia train", crop=crop, membership=files.membership_csv,
        people=files.attack_people,
    )
    result = train_and_card(files, out / "logs", training.name, settings, card,
                            nproc=training.nproc, on_line=show)
    typer.echo(f"checkpoint: {result.checkpoint}")
    typer.echo(f"model spec: {result.model_spec}")
    typer.echo(f"model card: {result.card} (photos: {'face crops' if crop == 'face' else 'whole'})")


@app.command()
def lab(
    out: Annotated[
        Path, typer.Option(help="Folder to create (must not exist or be empty).")
    ] = Path("lab"),
    preset: Annotated[
        str, typer.Option(help="'standard' (the main job, ~10 min on 2 free cores) or 'quick'.")
    ] = "standard",
    seed: SeedOpt = 0,
    defence: Annotated[
        str | None, typer.Option(help="Then certify a defence on half of the members: "
                                 "'unlearn' or 'mask-names' (see 'idia defence').")
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Several independent runs, e.g. 0,1,2 (OUT/seed-N each, kept when "
                     "the command runs again), pooled with intervals and a trend test."),
    ] = None,
    familiar_non_members: FamiliarNonMembersOpt = False,
) -> None:
    """The paper's controlled experiment, offline: synthetic people injected at 1-75 pairs,
    a small CLIP trained on CPU, every person attacked, evaluated and reported."""
    from idia.lab.pipeline import run_lab
    from idia.lab.seeds import run_seeds

    if defence not in (None, "unlearn", "mask-names"):
        fail(f"--defence must be 'unlearn' or 'mask-names', not {defence!r}")
    chosen: list[int] | None = None
    if seeds is not None:
        try:
            chosen = [int(part) for part in seeds.split(",") if part.strip()]
        except ValueError:
            fail(f"--seeds takes integers like 0,1,2, not {seeds!r}")
        if defence is not None:
            fail("--defence certifies one lab: give --seed, not --seeds (or run "
                 "'idia defence OUT/seed-N' on each seed afterwards)")
    if chosen is not None:
        render_seeds(run_seeds(out, preset, chosen, log=log_line,
                               familiar_non_members=familiar_non_members), out)
        return
    render_lab(run_lab(out, preset, seed, log=log_line,
                       familiar_non_members=familiar_non_members), out)
    if defence is not None:
        from idia.lab.defence import run_defence

        render_defence(run_defence(out, defence, seed, log=log_line))
