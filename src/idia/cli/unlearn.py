"""``idia unlearn``, ``idia certify`` and ``idia defence``: erasing people from a model, and
showing what the attack finds before and after."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from idia.cli.attack import face_reference, validate_person
from idia.cli.errors import fail
from idia.cli.options import (
    AttackOptions,
    CertificateOutOpt,
    CleanCaptionsOpt,
    DefenceMethodOpt,
    DefenceSeedOpt,
    DeviceOpt,
    EncoderOpt,
    EraseNamesOpt,
    JsonOpt,
    LabArg,
    LrOpt,
    ModelOpt,
    NameOpt,
    NeutralOpt,
    OpenClipModelOpt,
    PersonOptions,
    PhotosArg,
    QuietOpt,
    StepsOpt,
    ThreadsOpt,
    UnlearnBatchSizeOpt,
    UnlearnCropOpt,
    UnlearnedOpt,
    UnlearnOutOpt,
    UnlearnPeopleOpt,
    UnlearnSeedOpt,
    expand_option_groups,
)
from idia.cli.render import log_line, render_defence, report_usage
from idia.unlearn.method import ENCODERS, UnlearnSettings, unlearn

app = typer.Typer()


@app.command("unlearn")
def unlearn_people(
    model: OpenClipModelOpt,
    names: EraseNamesOpt,
    out: UnlearnOutOpt,
    encoder: EncoderOpt = "text",
    people: UnlearnPeopleOpt = None,
    neutral: NeutralOpt = "a person",
    captions: CleanCaptionsOpt = None,
    steps: StepsOpt = UnlearnSettings.steps,
    lr: LrOpt = UnlearnSettings.lr,
    batch_size: UnlearnBatchSizeOpt = 64,
    seed: UnlearnSeedOpt = 0,
    crop: UnlearnCropOpt = "face",
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Erase people from an open_clip model (their names, and with --encoder image/both their
    faces) by fine-tuning for minutes; writes a checkpoint and unlearn.json."""
    from idia.names import read_names_file

    if encoder not in ENCODERS:
        fail(f"--encoder must be one of {', '.join(ENCODERS)}, not {encoder!r}")
    settings = UnlearnSettings(encoder=encoder, neutral=neutral, steps=steps, lr=lr,
                               batch_size=batch_size, seed=seed, crop=crop)
    _set_threads(threads)
    result = unlearn(model, read_names_file(names), out, settings, people_dir=people,
                     captions=captions, device=device, progress=not quiet,
                     log=lambda m: typer.echo(m, err=True))
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


@app.command()
@expand_option_groups
def certify(
    photos: PhotosArg,
    name: NameOpt,
    model: ModelOpt,
    unlearned: UnlearnedOpt,
    out: CertificateOutOpt = Path("certificate.html"),
    person: PersonOptions = PersonOptions(),
    attack: AttackOptions = AttackOptions(),
    as_json: JsonOpt = False,
) -> None:
    """An erasure certificate: 'idia check' on the original (--model) and the unlearned model,
    side by side on one page, with the settings that made the new model."""
    from idia.report.compare import certificate_data, conclusion, write_certificate

    validate_person(photos, name, person)
    record_path = unlearned / "unlearn.json"
    if not record_path.is_file():
        fail(f"{unlearned} has no unlearn.json: give the folder 'idia unlearn --out' wrote")
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        new_spec = record["model"]
    except (ValueError, KeyError) as err:
        fail(f"{record_path} is not an unlearn record: {err}")
    attack = replace(attack, quiet=attack.quiet or as_json)
    original = attack.build(model)
    # both models see the same photos: the crop the original's card (or --crop) chose
    attackers = (original, replace(attack, crop=original.crop).build(
        new_spec, face_margin=original.face_margin))
    others = face_reference(original, person.reference)
    results, identities = [], []
    for attacker in attackers:
        results.append(attacker.check(photos, name, reference=others, sex=person.sex,
                                      alpha=person.alpha, origin=person.origin))
        identities.append(attacker.classifier.identity)
    report_usage(original)
    settings = {"crop": original.crop, "alpha": person.alpha,
                "reference people": results[0].n_reference_people}
    written = write_certificate(results[0], results[1], out, tuple(identities), record, settings)
    if as_json:
        typer.echo(json.dumps(certificate_data(results[0], results[1], tuple(identities), record,
                                               settings), ensure_ascii=False))
    else:
        typer.echo(conclusion(name, results[0], results[1]))
    typer.echo(f"certificate: {written}", err=True)


@app.command()
def defence(
    lab: LabArg,
    method: DefenceMethodOpt = "unlearn",
    encoder: EncoderOpt = "text",
    steps: StepsOpt = UnlearnSettings.steps,
    lr: LrOpt = UnlearnSettings.lr,
    seed: DefenceSeedOpt = None,
    threads: ThreadsOpt = None,
) -> None:
    """Certify a defence on a finished lab: erase half of the members, attack again, measure
    utility and what still leaks; figures into LAB/summary.json under "defence"."""
    settings = UnlearnSettings(encoder=encoder, steps=steps, lr=lr)
    _set_threads(threads)
    from idia.lab.defence import run_defence

    render_defence(run_defence(lab, method, seed, settings, log=log_line))
