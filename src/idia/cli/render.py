"""Everything the commands show in the terminal: rich tables and lines (the library itself
prints nothing; it logs through the callables the commands give it)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from idia.engine import CheckResult, IdentityInferenceAttack
from idia.labels import RULE_LABELS, null_description, rule_name
from idia.models import MeteredModel


def percent(value: float | None, digits: int = 1) -> str:
    """``12.3%``, or ``n/a`` for a rate without people."""
    return "n/a" if value is None else f"{value:.{digits}%}"


def log_line(message: str) -> None:
    """A progress line of a long command (``idia lab``, ``idia defence``), as rich prints it."""
    Console().print(message, highlight=False)


def report_usage(attacker: IdentityInferenceAttack, result: CheckResult | None = None) -> None:
    """A remote model's answers cost queries: say how many (on stderr; with --json, also
    under the result's extra)."""
    if not isinstance(attacker.classifier, MeteredModel):
        return
    numbers = attacker.classifier.usage()
    if result is not None:
        result.extra["remote_usage"] = numbers
    duplicated = numbers.get("possibly_duplicated_queries", 0)
    typer.echo(f"remote model {numbers['url']}: {numbers['queries']} queries (photo x template) "
               f"in {numbers['requests']} requests, {numbers['retries']} retries"
               + (f", {duplicated} more possibly answered twice (retried after the server may "
                  "have answered)" if duplicated else ""), err=True)


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
            p += "" if test.p_floor is None else f" (floor {test.p_floor:.2g})"
            detail = f"{test.method}; {test.n_null:,} null values"
        else:
            p, detail = "not tested", test.reason or ""
        tests.add_row(RULE_LABELS[claim].evidence, p, detail)
    console.print(tests)
    null = result.name_null
    if null:
        console.print(f"Name and text-only tests against {null_description(null)}."
                      + (f" Null: {null['null']}." if null["key"] == "full_name" else ""),
                      highlight=False)
        for note in null["notes"]:
            console.print(f"[dim]  {note}[/dim]", highlight=False)
    face = result.claims["face_association"]
    if face.tested and face.reference:
        console.print(f"Face test reference: {face.reference}.\nCompared with {face.matching}."
                      f"\nNull: {face.null}.", highlight=False)
    verdict = result.verdict_sentence
    colour = "red" if result.verdict else "green"
    console.print(f"Verdict: [bold {colour}]{verdict[0].upper() + verdict[1:]}[/bold {colour}]"
                  f" (strongest claim that holds at alpha {result.alpha:g} after "
                  "Benjamini-Hochberg over this person's claims).")
    if not face.tested and result.n_photos:
        console.print("[dim]Face association was not tested: give --reference lfw (or lfw:DIR, "
                      "a local copy of Labeled Faces in the Wild) or --reference DIR with other "
                      "people's photos to test whether the model links your face to the name."
                      "[/dim]")


def render_audit(summary: dict, out: Path) -> None:
    console = Console()

    def interval(values: list | None) -> str:
        return "" if not values else f" [{percent(values[0])}-{percent(values[1])}]"

    rules = summary.get("rules")
    if rules:
        table = Table("rule", "TPR [95% CI]", "FPR [95% CI]", "AUC", title=f"audit: {out}")
        for rule, row in rules.items():
            verdicts = "tpr" in row
            table.add_row(
                rule_name(rule),
                percent(row["tpr"]) + interval(row["tpr_ci"]) if verdicts else "(score only)",
                percent(row["fpr"]) + interval(row["fpr_ci"]) if verdicts else "",
                "n/a" if row.get("auc") is None else f"{row['auc']:.3f}",
            )
        console.print(table)
        first = rules["paper"]
        console.print(f"{first['n_members']} members, {first['n_non_members']} non-members "
                      "with usable photos.")
    else:
        table = Table("TP", "FP", "FN", "TN", "TPR", "FPR", "accuracy", title=f"audit: {out}")
        table.add_row(*(str(summary[k]) for k in ("tp", "fp", "fn", "tn")),
                      *(percent(summary[k]) for k in ("tpr", "fpr", "accuracy")))
        console.print(table)
    verdicts = summary.get("n_verdicts", {})
    console.print(
        f"{summary['n_people']} people, {summary['n_judged']} with known membership and usable "
        f"photos. Paper's rule (threshold {summary['threshold']}): "
        f"{summary['n_predicted_members']} called members. Calibrated tests (alpha "
        f"{summary.get('alpha')}, Benjamini-Hochberg): "
        + ", ".join(f"{n} {RULE_LABELS[c].meaning}" for c, n in verdicts.items())
        + ("" if "n_people_with_a_claim" not in summary else
           f"; one verdict over all claims: the model knows something about "
           f"{summary['n_people_with_a_claim']} people")
        + f". Details: {out / 'results.csv'}"
    )


TESTED_CLAIMS = ("name_familiarity", "face_association")


def _rate_cell(row: dict, rate: str) -> str:
    """'95.0% ±1.6 [89.3%-97.7%]': mean, sd over draws (points), 95% CI over people."""
    mean, sd = row[f"{rate}_mean"], row[f"{rate}_sd"]
    if mean is None:
        return "n/a"
    spread = "" if sd is None else f" ±{sd * 100:.1f}"
    return (
        f"{mean:.1%}{spread} [{percent(row[f'{rate}_ci_low'])}-{percent(row[f'{rate}_ci_high'])}]"
    )


def calibration_text(fit: dict) -> str:
    """A test's calibration on non-members in words: the share at p <= 0.05 and 0.01 with
    exact intervals and the randomized-PIT p (older evaluations: the KS p); 'n/a' with the
    reason when a figure cannot be computed."""
    if "at_0.05" not in fit:  # an evaluation written before the one-sided checks
        ks = fit.get("ks_p")
        return f"Kolmogorov-Smirnov p = {'n/a' if ks is None else format(ks, '.3g')} " \
            f"(n = {fit['n']})"
    parts = []
    for key in ("at_0.05", "at_0.01"):
        check = fit[key]
        if check["share"] is None:
            parts.append(f"p <= {check['level']:g}: n/a ({check.get('reason', 'no p-values')})")
            continue
        low, high = check["ci"]
        parts.append(f"p <= {check['level']:g} for {check['share']:.1%} [{low:.1%}-{high:.1%}]"
                     + (" (too many)" if check["exceeds"] else ""))
    pit = fit.get("pit", {})
    parts.append("randomized-PIT KS p = " + (
        f"{pit['p']:.3g}" if pit.get("p") is not None else f"n/a ({pit.get('reason', '')})"
    ))
    return f"{', '.join(parts)} (n = {fit['n']}; 95% Clopper-Pearson)"


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
    tested = [c for c in TESTED_CLAIMS if f"{c}_tpr_mean" in (document["sizes"] or [{}])[0]]
    if truth and tested:
        tests = Table(
            "size",
            *(f"{RULE_LABELS[c].short} TPR" for c in tested),
            *(f"{RULE_LABELS[c].short} FPR" for c in tested),
            title=f"calibrated tests (alpha {document['alpha']:g}, Benjamini-Hochberg per draw;"
            " mean ±sd [95% CI])",
        )
        for row in document["sizes"]:
            tests.add_row(
                str(row["size"]),
                *(_rate_cell(row, f"{c}_tpr") for c in tested),
                *(_rate_cell(row, f"{c}_fpr") for c in tested),
            )
        console.print(tests)
    population = document["population"]
    if population["mode"] == "fixed" and population["n_left_out"]:
        console.print(
            f"[yellow]{population['n_left_out']} people with fewer than "
            f"{population['min_photos']} usable photos are left out of every size (fixed "
            "population).[/yellow]"
        )
    for claim, fit in document["claims"].get("null_calibration", {}).items():
        console.print(f"Calibration on non-members, {RULE_LABELS[claim].short}: "
                      f"{calibration_text(fit)}.")
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


def render_seeds(summary: dict, out: Path) -> None:
    console = Console()
    rules = {r: summary["pooled_rules"][r] for r in LAB_RULES if r in summary["pooled_rules"]}
    counts = list(rules["paper"]["tpr_by_count"])
    table = Table("injected pairs", *(RULE_LABELS[r].name for r in rules),
                  title=f"idia lab ({lab_people(summary)}), seeds "
                  f"{', '.join(map(str, summary['seeds']))} pooled: "
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
    table = Table("injected pairs", *(RULE_LABELS[r].name for r in rules),
                  title=f"idia lab ({lab_people(summary)}): share of people called member "
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
        console.print(f"Calibration on non-members, {RULE_LABELS[claim].name}: "
                      f"{calibration_text(fit)}.")
    if summary.get("familiar_name_parts"):
        render_name_parts(summary["familiar_name_parts"], console)
    if summary.get("demographic_groups"):
        render_groups(summary["demographic_groups"], console)
    console.print(
        f"{summary['n_members']} members, {summary['n_non_members']} non-members, "
        f"{summary['attack_photos']} held-out photos each; tests at alpha {summary.get('alpha')} "
        "(Benjamini-Hochberg). Paper (CC3M): TPR 24.9% at 1 pair, ~2/3 at 10, >95% at 75, "
        "FPR <1.8%.\n"
        f"Report: {out / 'report.html'}   Summary: {out / 'summary.json'}\n"
        f"Reproduce the verdicts: idia audit --people {out / 'people'} --model "
        f"{summary['model']} --membership {out / 'membership.csv'} --out RUN\n"
        + ("Try it on the web page (the lab's people as examples): idia web"
           if summary.get("synthetic", True) else
           "Try it on the web page (no examples: real people's photos are not shown): idia web")
        + ("" if out == Path("lab") else f" --lab-dir {out}")
    )


def _share_cell(check: dict | None) -> str:
    """'4% [1-12%]' (95% Clopper-Pearson), '(too many)' when the interval lies above the
    level; 'n/a' without p-values."""
    if not check or check.get("share") is None:
        return "n/a"
    low, high = check["ci"]
    flag = " (too many)" if check.get("exceeds") else ""
    return f"{check['share']:.0%} [{low:.0%}-{high:.0%}]{flag}"


PART_KIND_LABELS = {"none": "none familiar", "first": "first name familiar",
                    "surname": "surname familiar", "both": "both, never together"}


def render_name_parts(figures: dict, console: Console) -> None:
    """The familiar-name-parts control: the name tests on non-members per kind of name, with
    the full-name null and, beside it, the paper's random decoys."""
    tests = [(c, null) for c in ("name_familiarity", "text_only") for null in ("", "_paper_null")
             if any(c + null in row for row in figures["by_kind"].values())]

    def head(claim: str, null: str) -> str:
        return f"{RULE_LABELS[claim].name}{', paper decoys' if null else ''}"

    table = Table("kind of name", "non-members",
                  *(f"{head(c, n)}: p <= 0.05 / p <= 0.01" for c, n in tests),
                  "members", *(f"members, {head(c, n)}: p <= 0.05" for c, n in tests),
                  title="familiar name parts: non-members' p-values per kind of name, 95% "
                  "Clopper-Pearson (a valid test stays at the level)")
    for kind, row in figures["by_kind"].items():
        cells = [" / ".join(_share_cell(row.get(c + n, {}).get("non_members", {}).get(key))
                            for key in ("at_0.05", "at_0.01")) for c, n in tests]
        power = [_share_cell(row.get(c + n, {}).get("members")) for c, n in tests]
        table.add_row(PART_KIND_LABELS.get(kind, kind), str(row["n_non_members"]), *cells,
                      str(row["n_members"]), *power)
    console.print(table)
    console.print(f"{figures['namesakes']} namesakes in {figures['namesake_captions']} "
                  f"captions; kind: {figures['kind_rule']}.")


def _mean_z(figures: dict) -> str:
    if figures.get("mean_z") is None:
        return "n/a"
    se = figures.get("mean_z_se")
    return f"{figures['mean_z']:+.2f}" + ("" if se is None else f" ± {se:.2f}")


def render_groups(figures: dict, console: Console) -> None:
    """The demographic-groups control: the face test per group, two kinds of references."""
    kinds = {"sex_only": "sex-only references", "trait_matched": "trait-matched references"}
    table = Table("group", "non-members",
                  *(f"FPR at p <= {level}: sex-only / trait-matched" for level in ("0.05", "0.01")),
                  "non-members' mean z (± se): sex-only / trait-matched",
                  "members at p <= 0.05: sex-only / trait-matched",
                  title="demographic groups: the face test per group, 95% Clopper-Pearson")
    references = figures["references"]
    for group in [*figures["groups"], "all"]:
        rows = {kind: references[kind]["by_group"][group] for kind in kinds}
        cells = [" / ".join(_share_cell(rows[kind]["non_members"][f"at_{level}"])
                            for kind in kinds) for level in ("0.05", "0.01")]
        power = " / ".join(_share_cell(rows[kind]["members"]) for kind in kinds)
        table.add_row(group, str(rows["sex_only"]["non_members"]["n"]), *cells,
                      " / ".join(_mean_z(rows[kind]["non_members"]) for kind in kinds),
                      f"{power} of {rows['sex_only']['members']['n']}")
    console.print(table)
    responses = figures.get("non_member_response_by_group", {})
    if responses:
        rows = "; ".join(
            f"{name_group} names: " + ", ".join(
                f"{face_group} {'n/a' if v is None else format(v, '+.2f')}"
                for face_group, v in row.items())
            for name_group, row in responses.items())
        console.print(f"Non-members' names on each group's faces (mean response, same sex, "
                      f"other people): {rows}.")
    for kind, label in kinds.items():
        ref = references[kind]
        auc = "n/a" if ref["auc"] is None else f"{ref['auc']:.3f}"
        console.print(f"{label}: median {ref['n_references']['median']:g} per person (p floor "
                      f"{ref['p_floor']:.3f}), {ref['same_group_share']:.0%} from the person's "
                      f"own group; AUC {auc}.")
    console.print(f"Trait-matched: {figures['oracle']}.")


def lab_people(summary: dict) -> str:
    """Who a lab's people are, for its tables' titles."""
    faces = summary.get("faces")
    if not faces:
        return "synthetic people"
    source = "LFW" if faces.get("source") == "lfw" else "a people folder"
    return f"real people from {source}, LiT model"


def render_origin_names(summary: dict) -> None:
    """The names-from-anywhere control: the name tests' p-values on never-seen names, per
    origin."""
    console = Console()
    claims = ("name_familiarity", "text_only")
    what = f"{len(summary['by_origin'])} origins" + (
        ", names of the members' parts" if summary.get("by_member_parts") else "")
    table = Table("origin or kind", "names",
                  *(f"{RULE_LABELS[c].name}: p <= 0.05 / p <= 0.01" for c in claims),
                  title=f"never-seen names ({what}) on "
                  f"{summary['model']}: share of small p-values, 95% Clopper-Pearson (a valid "
                  "test stays at the level)")
    groups = [*summary["by_origin"].items(), *summary.get("by_member_parts", {}).items()]
    for origin, row in [*groups, ("all", summary["all"])]:
        table.add_row(origin, str(row["n"]), *(
            " / ".join(_share_cell(row[c].get(key)) for key in ("at_0.05", "at_0.01"))
            + ("" if not row[c]["not_tested"] else f" ({sum(row[c]['not_tested'].values())} "
               "not tested)")
            for c in claims))
    console.print(table)
    console.print(f"{summary['n_names']} names, {summary['settings']['name_decoys']} full-name "
                  f"decoys each, shown with the photos of {summary['n_non_members_shown']} "
                  f"non-members; {summary['seconds']:.0f} s. Per name: "
                  f"{summary['lab']}/origin_names/names.csv")


def render_defence(defence: dict) -> None:
    table = Table("group", "n", "before", "after", title=f"defence: {defence['method']}")
    for key, label, rate in (("unlearned", "erased members", "tpr"),
                             ("kept", "kept members", "tpr"),
                             ("non_members", "non-members", "fpr")):
        g = defence[key]
        table.add_row(label, str(g["n"]), f"{rate.upper()} {percent(g[f'{rate}_before'], 0)}",
                      f"{rate.upper()} {percent(g[f'{rate}_after'], 0)}")
    for test, figures in defence.get("calibrated", {}).items():
        for key, label, rate in (("unlearned", "erased", "tpr"), ("kept", "kept", "tpr"),
                                 ("non_members", "non-members", "fpr")):
            g = figures[key]
            table.add_row(f"{test} test ({figures['rule']}): {label}", str(g["n"]),
                          f"{rate.upper()} {percent(g[f'{rate}_before'], 0)}",
                          f"{rate.upper()} {percent(g[f'{rate}_after'], 0)}")
    utility = defence["utility"]
    table.add_row("zero-shot accuracy", "", percent(utility["zero_shot_before"], 0),
                  percent(utility["zero_shot_after"], 0))
    table.add_row("recall@1", "", percent(utility["recall_at_1_before"], 0),
                  percent(utility["recall_at_1_after"], 0))
    for kind, v in defence["variants"].items():
        table.add_row(f"leak: {kind}", str(v["n"]), f"TPR {percent(v['tpr_before'], 0)}",
                      f"TPR {percent(v['tpr_after'], 0)}")
    console = Console()
    console.print(table)
    console.print(f"Seconds: {defence['seconds']}")
