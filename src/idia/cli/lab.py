"""``idia train`` (the controlled membership experiment on real or synthetic data) and
``idia lab`` (the same on synthetic people, end to end)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer

from idia.cli.errors import fail, warn
from idia.cli.options import (
    BaseCsvOptions,
    BaseOpt,
    CardCropOpt,
    CompositionOptions,
    DemographicGroupsOpt,
    FacesOpt,
    FamiliarNamePartsOpt,
    FamiliarNonMembersOpt,
    LabArg,
    LabDefenceOpt,
    LabOutOpt,
    LabThreadsOpt,
    MemberPartsOpt,
    NameDecoysOpt,
    OriginsOpt,
    PeopleOpt,
    PerOriginOpt,
    PrepareOnlyOpt,
    PresetOpt,
    SeedOpt,
    SeedsOpt,
    TrainingOptions,
    TrainOutOpt,
    VerboseOpt,
    expand_option_groups,
)
from idia.cli.render import (
    log_line,
    render_defence,
    render_lab,
    render_origin_names,
    render_seeds,
)
from idia.lab.origin_names import DEFAULT_NAME_DECOYS, DEFAULT_ORIGINS, DEFAULT_PER_ORIGIN
from idia.lab.train import (
    TrainingCard,
    build_train_command,
    ensure_new_run,
    prepare_training_set,
    read_base,
    resolve_model_config,
    train_and_card,
)
from idia.people import find_people

app = typer.Typer()

_PROGRESS_MARKERS = ("Start epoch", "Train Epoch", "Error", "error", "Traceback", "Exception")


@app.command()
@expand_option_groups
def train(
    base: BaseOpt,
    people: PeopleOpt,
    out: TrainOutOpt,
    composing: CompositionOptions = CompositionOptions(),
    base_csv: BaseCsvOptions = BaseCsvOptions(),
    training: TrainingOptions = TrainingOptions(),
    crop: CardCropOpt = "none",
    prepare_only: PrepareOnlyOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Inject people into a caption dataset at known counts, hold out attack photos, train CLIP."""
    if crop not in ("face", "none"):
        fail(f"--crop must be 'face' or 'none', not {crop!r}")
    composition = composing.composition()
    settings = training.settings(composition.seed)
    ensure_new_run(out / "logs", training.name)
    people_list, skipped = find_people(people)
    for warning in skipped:
        warn(warning)
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
    out: LabOutOpt = Path("lab"),
    preset: PresetOpt = "standard",
    seed: SeedOpt = 0,
    defence: LabDefenceOpt = None,
    seeds: SeedsOpt = None,
    familiar_non_members: FamiliarNonMembersOpt = False,
    familiar_name_parts: FamiliarNamePartsOpt = False,
    demographic_groups: DemographicGroupsOpt = False,
    faces: FacesOpt = None,
    threads: LabThreadsOpt = None,
) -> None:
    """The paper's controlled experiment, offline: synthetic people injected at 1-75 pairs,
    a small CLIP trained on CPU, every person attacked, evaluated and reported. With --faces:
    real people, and a LiT model (a locked face encoder, a text tower trained here)."""
    from idia.lab.faces import run_faces_lab
    from idia.lab.pipeline import run_lab
    from idia.lab.seeds import run_seeds

    if defence not in (None, "unlearn", "mask-names"):
        fail(f"--defence must be 'unlearn' or 'mask-names', not {defence!r}")
    if threads is not None and faces is None:
        fail("--threads sets the LiT training's threads: give it with --faces (the synthetic "
             "lab trains with open_clip_train in its own process)")
    if faces is not None and demographic_groups:
        fail("--demographic-groups is a control of the synthetic lab (its groups are drawn "
             "face traits); give it without --faces")
    if defence is not None and faces is not None:
        fail("--defence runs on synthetic labs only: with --faces the image tower is a locked "
             "face encoder that 'idia unlearn' does not fine-tune")
    chosen: list[int] | None = None
    if seeds is not None:
        try:
            chosen = [int(part) for part in seeds.split(",") if part.strip()]
        except ValueError:
            fail(f"--seeds takes integers like 0,1,2, not {seeds!r}")
        if defence is not None:
            fail("--defence certifies one lab: give --seed, not --seeds (or run "
                 "'idia defence OUT/seed-N' on each seed afterwards)")
    controls = {"familiar_non_members": familiar_non_members,
                "familiar_name_parts": familiar_name_parts,
                "demographic_groups": demographic_groups}
    if chosen is not None:
        render_seeds(run_seeds(out, preset, chosen, log=log_line, faces=faces, threads=threads,
                               **controls), out)
        return
    if faces is not None:
        render_lab(run_faces_lab(out, faces, preset, seed, log=log_line,
                                 familiar_non_members=familiar_non_members, threads=threads,
                                 familiar_name_parts=familiar_name_parts),
                   out)
        return
    render_lab(run_lab(out, preset, seed, log=log_line, **controls), out)
    if defence is not None:
        from idia.lab.defence import run_defence

        render_defence(run_defence(out, defence, seed, log=log_line))


@app.command("lab-origins")
def lab_origins(
    lab: LabArg,
    origins: OriginsOpt = ",".join(DEFAULT_ORIGINS),
    per_origin: PerOriginOpt = DEFAULT_PER_ORIGIN,
    name_decoys: NameDecoysOpt = DEFAULT_NAME_DECOYS,
    seed: SeedOpt = 0,
    member_parts: MemberPartsOpt = 0,
) -> None:
    """Control for the name tests: never-seen names of several origins (from the name tables)
    and, with --member-parts, made of the members' parts, checked on a lab's model with
    non-members' photos; their p-values' shares per group. Figures into LAB/origin_names/."""
    from idia.lab.origin_names import OriginNamesSettings, run_origin_names

    codes = tuple(code.strip().upper() for code in origins.split(",") if code.strip())
    if not codes and per_origin:
        fail("--origins takes country codes like DE,PL,JP (or --per-origin 0)")
    settings = OriginNamesSettings(origins=codes, per_origin=per_origin,
                                   name_decoys=name_decoys, seed=seed, member_parts=member_parts)
    render_origin_names(run_origin_names(lab, settings, log=log_line))
