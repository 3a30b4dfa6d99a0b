"""``idia check`` (one person) and ``idia audit`` (many people with known membership)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import typer

from idia.audit import run_audit
from idia.claims import DEFAULT_ALPHA
from idia.cli.errors import fail
from idia.cli.options import (
    AlphaOpt,
    AttackOptions,
    AuditReferenceOpt,
    CandidatesOpt,
    CheckPhotosArg,
    CheckReportOpt,
    JsonOpt,
    MembershipOpt,
    ModelOpt,
    NameOpt,
    OverwriteOpt,
    PeopleOpt,
    PersonOptions,
    PhotosPerPersonOpt,
    RunOutOpt,
    expand_option_groups,
)
from idia.cli.render import render_audit, render_check, report_usage
from idia.engine import IdentityInferenceAttack, Reference
from idia.face_descriptors import FaceEncoderError
from idia.face_reference import AUDITED_REFERENCE, NO_REFERENCE
from idia.lfw import LFWError, is_lfw_spec

app = typer.Typer()


def validate_person(photos: list[Path], name: str, person: PersonOptions) -> None:
    """What check and certify can tell before loading a model: the photos exist, the sex and
    origin are known codes, the name can be tested (not empty, letters, not too long, in a
    script the decoy pools cover)."""
    from idia.name_null import NameNulls

    missing = [str(p) for p in photos if not p.exists()]
    if missing:
        fail(f"photo(s) not found: {', '.join(missing)}")
    if person.sex is not None and person.sex not in ("f", "m"):
        fail(f"--sex must be 'f' or 'm', not {person.sex!r}")
    if person.reference is not None and not photos:
        fail("--reference needs photos of the person (the face test compares them)")
    NameNulls(None).parse(name, person.origin)


def face_reference(attacker: IdentityInferenceAttack, reference: str | None) -> Reference:
    """The face test's reference for ``reference`` (the option's value; None: the attack's
    default, a lab model's people or LFW), a public one loaded once. One given explicitly
    must load (or the command stops with what to do); the default LFW that cannot be had
    leaves the face test not tested, with the reason."""
    chosen = reference if reference is not None else attacker.default_reference()
    if isinstance(chosen, str) and is_lfw_spec(chosen):
        try:
            return attacker.load_reference(chosen, strict=reference is not None)
        except (LFWError, FaceEncoderError) as err:
            fail(str(err))
    if isinstance(chosen, str) and chosen.strip().lower() == NO_REFERENCE:
        return None
    return chosen


@app.command()
@expand_option_groups
def check(
    name: NameOpt,
    model: ModelOpt,
    photos: CheckPhotosArg = None,
    person: PersonOptions = PersonOptions(),
    attack: AttackOptions = AttackOptions(),
    as_json: JsonOpt = False,
    report: CheckReportOpt = None,
    candidates: CandidatesOpt = None,
) -> None:
    """Does the model know this person? Which claim the evidence supports ("has seen this
    name", "links this face to this name"), with the paper's rule template by template."""
    photos = photos or []
    validate_person(photos, name, person)
    attacker = replace(attack, quiet=attack.quiet or as_json).build(model)
    others = face_reference(attacker, person.reference) if photos else None
    result = attacker.check(photos, name, candidates, reference=others, sex=person.sex,
                            alpha=person.alpha, origin=person.origin)
    if result.extra.get("differs_from_audit"):
        typer.echo(f"note: this check differs from the audit run in "
                   f"{', '.join(result.extra['differs_from_audit'])}; its verdict may differ "
                   "from the audit's", err=True)
    report_usage(attacker, result)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        render_check(result)
    if report is not None:
        from idia.report import write_check_report  # matplotlib is loaded only when asked for

        try:
            written = write_check_report(
                result, report,
                {"crop": attacker.crop,
                 "detector": attack.detector if attacker.crop == "face" else None},
            )
        except OSError as err:
            fail(f"cannot write the report {report}: {err}")
        typer.echo(f"report: {written}", err=True)


@app.command()
@expand_option_groups
def audit(
    people: PeopleOpt,
    model: ModelOpt,
    out: RunOutOpt,
    membership: MembershipOpt = None,
    photos_per_person: PhotosPerPersonOpt = None,
    attack: AttackOptions = AttackOptions(),
    overwrite: OverwriteOpt = False,
    alpha: AlphaOpt = DEFAULT_ALPHA,
    reference: AuditReferenceOpt = AUDITED_REFERENCE,
) -> None:
    """Attack many people with known membership: the paper's rule and the calibrated tests,
    per person and as TP/FP/FN/TN, TPR, FPR with intervals."""
    attacker = attack.build(model)
    summary = run_audit(attacker, people, out, membership, photos_per_person, overwrite,
                        log=lambda m: typer.echo(m, err=True), alpha=alpha,
                        reference=reference)
    report_usage(attacker)
    render_audit(summary, out)
