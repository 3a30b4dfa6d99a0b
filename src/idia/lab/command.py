"""``idia train`` (the controlled membership experiment on real or synthetic data) and
``idia lab`` (the same on synthetic people, end to end): thin CLI layers."""

from __future__ import annotations

import csv
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from idia.audit_claims import RULE_LABELS
from idia.cli_errors import USER_ERRORS, fail
from idia.eval_command import calibration_text
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
        fail(str(err))
    except TrainingFailed as err:  # its message keeps the training log's last lines
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"checkpoint: {result.checkpoint}")
    typer.echo(f"model spec: {result.model_spec}")
    typer.echo(f"model card: {card} (photos: {'face crops' if crop == 'face' else 'whole'})")


def lab_command(
    out: Annotated[
        Path, typer.Option(help="Folder to create (must not exist or be empty).")
    ] = Path("lab"),
    preset: Annotated[
        str, typer.Option(help="'standard' (the main job, ~10 min on 2 free cores) or 'quick'.")
    ] = "standard",
    seed: Annotated[
        int, typer.Option(help="Seed for the random candidate names and sampling.")
    ] = 0,
    defence: Annotated[
        str | None, typer.Option(help="Then certify a defence on half of the members: "
                                 "'unlearn' or 'mask-names' (see 'idia defence').")
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Several independent runs, e.g. 0,1,2 (OUT/seed-N each, kept when "
                     "the command runs again), pooled with intervals and a trend test."),
    ] = None,
    familiar_non_members: Annotated[
        bool,
        typer.Option(help="Confound control: non-members' names also occur in the captions "
                     "(with photos of unrelated people), so only the face-name link separates "
                     "members from non-members."),
    ] = False,
) -> None:
    """The paper's controlled experiment, offline: synthetic people injected at 1-75 pairs,
    a small CLIP trained on CPU, every person attacked, evaluated and reported."""
    from idia.lab.pipeline import LabError, run_lab
    from idia.lab.seeds import run_seeds
    from idia.lab.train import TrainDataError, TrainingFailed

    if defence not in (None, "unlearn", "mask-names"):
        fail(f"--defence must be 'unlearn' or 'mask-names', not {defence!r}")
    console = Console()

    def log(message: str) -> None:
        console.print(message, highlight=False)

    chosen: list[int] | None = None
    if seeds is not None:
        try:
            chosen = [int(part) for part in seeds.split(",") if part.strip()]
        except ValueError:
            fail(f"--seeds takes integers like 0,1,2, not {seeds!r}")
        if defence is not None:
            fail("--defence certifies one lab: give --seed, not --seeds (or run "
                 "'idia defence OUT/seed-N' on each seed afterwards)")
    try:
        if chosen is not None:
            summary = run_seeds(out, preset, chosen, log=log,
                                familiar_non_members=familiar_non_members)
        else:
            summary = run_lab(out, preset, seed, log=log,
                              familiar_non_members=familiar_non_members)
    except (LabError, TrainDataError, TrainingFailed, *USER_ERRORS) as err:
        fail(str(err))
    if chosen is not None:
        render_seeds(summary, out)
        return
    render_lab(summary, out)
    if defence is not None:
        from idia.unlearn.command import render_defence, run_lab_defence

        render_defence(run_lab_defence(out, defence, seed))


def render_seeds(summary: dict, out: Path) -> None:
    console = Console()
    rules = {r: summary["pooled_rules"][r] for r in LAB_RULES if r in summary["pooled_rules"]}
    counts = list(rules["paper"]["tpr_by_count"])
    table = Table("injected pairs", *(RULE_LABELS[r] for r in rules),
                  title=f"idia lab, seeds {', '.join(map(str, summary['seeds']))} pooled: "
                  "share called member [95% CI over seeds] of n")

    def seed_ci(cell: dict) -> list:  # summaries written before the seed-aware intervals
        return cell.get("seed_aware", {}).get("ci") or cell["ci"]

    for count in counts:
        table.add_row(count, *(
            "{:.0%} [{:.0%}-{:.0%}] of {}".format(
                r["tpr_by_count"][count]["tpr"], *seed_ci(r["tpr_by_count"][count]),
                r["tpr_by_count"][count]["n"])
            if count in r["tpr_by_count"] else "" for r in rules.values()
        ))
    table.add_row("0 (non-members: FPR)", *(
        "{:.1%} [{:.1%}-{:.1%}] of {}".format(
            r["fpr"], *(r.get("seed_aware", {}).get("fpr", {}).get("ci") or r["fpr_ci"]),
            r["n_non_members"])
        for r in rules.values()
    ))
    table.add_row("TPR / FPR per seed (heterogeneity p)", *(
        "" if "tpr" not in r.get("seed_aware", {}) else " / ".join(
            ", ".join("n/a" if v["rate"] is None else f"{v['rate']:.0%}"
                      for v in r["seed_aware"][rate]["per_seed"].values())
            + " (p {})".format(_number(r["seed_aware"][rate]["heterogeneity"]["p"]))
            for rate in ("tpr", "fpr"))
        for r in rules.values()
    ))
    table.add_row("each person's p <= 0.01: TPR / FPR", *(
        "" if "at_p_0.01" not in r else "{:.0%} / {:.1%}".format(
            r["at_p_0.01"]["tpr"], r["at_p_0.01"]["fpr"])
        for r in rules.values()
    ))
    table.add_row("each person's p <= alpha: TPR / FPR", *(
        "" if "unadjusted" not in r else
        "{:.0%} [{:.0%}-{:.0%}] / {:.1%} [{:.1%}-{:.1%}]".format(
            r["unadjusted"]["tpr"], *r["unadjusted"]["tpr_ci"],
            r["unadjusted"]["fpr"], *r["unadjusted"]["fpr_ci"])
        for r in rules.values()
    ))
    table.add_row("AUC per seed", *(
        ", ".join("n/a" if a is None else f"{a:.3f}" for a in r["auc_per_seed"])
        for r in rules.values()
    ))
    def trend(t: dict | None) -> str:
        if t is None or t.get("slope") is None:
            return "n/a" if t is None else f"n/a ({t.get('reason', '')})"
        return (f"{t['slope']:.2f} [{_number(t['ci'][0])}, {_number(t['ci'][1])}], p "
                f"{_number(t.get('p', t.get('p_value')))}"
                + (" (separation)" if t.get("separation") else ""))

    table.add_row("trend: log-odds per e-fold pairs [95% CI]",
                  *(trend(summary["trend"].get(r)) for r in rules))
    table.add_row("the same, each person's p <= alpha",
                  *(trend(summary["trend"].get(f"{r}_unadjusted")) if r != "paper" else ""
                    for r in rules))
    console.print(table)
    walls = ", ".join(
        "n/a" if w is None else f"{w / 60:.1f} min" for w in summary["seconds"]["wall_s_per_seed"]
    )
    console.print(
        f"{summary['n_members']} members, {summary['n_non_members']} non-members in all. "
        f"Wall time per seed: {walls}. Summary: {out / 'summary.json'}"
    )


LAB_RULES = ("paper", "name_familiarity", "face_association", "text_only", "any_claim")


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2g}"


def render_lab(summary: dict, out: Path) -> None:
    console = Console()
    rules = {r: summary["rules"][r] for r in LAB_RULES if r in summary.get("rules", {})}
    counts = list(summary["tpr_by_count"])
    table = Table("injected pairs", *(RULE_LABELS[r] for r in rules),
                  title="idia lab (synthetic people): share of people called member "
                  "[95% CI]")
    for count in counts:
        cells = []
        for rule in rules.values():
            cell = rule.get("tpr_by_count", {}).get(count)
            cells.append("" if cell is None else f"{cell['tpr']:.0%} [{cell['ci'][0]:.0%}-"
                         f"{cell['ci'][1]:.0%}] of {cell['n']}")
        table.add_row(count, *cells)
    table.add_row("0 (non-members: FPR)", *(
        f"{r['fpr']:.1%} [{r['fpr_ci'][0]:.0%}-{r['fpr_ci'][1]:.0%}] of {r['n_non_members']}"
        for r in rules.values()
    ))
    table.add_row("AUC", *(f"{r['auc']:.3f}" if r.get("auc") is not None else "" for r in
                           rules.values()))
    table.add_row("each person's p <= alpha (as a single check): TPR / FPR", *(
        "" if "unadjusted" not in r else
        f"{r['unadjusted']['tpr']:.0%} / {r['unadjusted']['fpr']:.1%}" for r in rules.values()
    ))
    table.add_row("each person's p <= 0.01: TPR / FPR", *(
        "" if "at_p_0.01" not in r else
        f"{r['at_p_0.01']['tpr']:.0%} / {r['at_p_0.01']['fpr']:.1%}" for r in rules.values()
    ))
    console.print(table)
    blind = summary.get("rules", {}).get("face_blind")
    if blind and blind.get("auc") is not None:
        console.print(f"Face-blind baseline (the name on other people's photos): AUC "
                      f"{blind['auc']:.3f}: what the name alone explains.")
    for claim, fit in summary.get("null_calibration", {}).items():
        console.print(f"Calibration on non-members, {RULE_LABELS[claim]}: "
                      f"{calibration_text(fit)}.")
    console.print(
        f"{summary['n_members']} members, {summary['n_non_members']} non-members, "
        f"{summary['attack_photos']} held-out photos each; tests at alpha {summary.get('alpha')} "
        "(Benjamini-Hochberg). Paper (CC3M): TPR 24.9% at 1 pair, ~2/3 at 10, >95% at 75, "
        "FPR <1.8%.\n"
        f"Report: {out / 'report.html'}   Summary: {out / 'summary.json'}\n"
        f"Reproduce the verdicts: idia audit --people {out / 'people'} --model "
        f"{summary['model']} --membership {out / 'membership.csv'} --out RUN\n"
        "Try it on the web page (the lab's people as examples): idia web"
        + ("" if out == Path("lab") else f" --lab-dir {out}")
    )
