"""Before/after pages: an erasure certificate for one person, and a lab defence's figures.

The certificate answers an erasure request with evidence: the same photos and name attacked on
the original and on the unlearned model (same candidates, same templates), both verdicts and
p-values, and the settings that produced the new model, bound to it by the weight digest.
It names only the person it is about: other people erased in the same run are counted, never
listed (an erasure request is personal data too).

Every user string goes through Jinja2's autoescape; the pages load nothing from the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from idia.engine import CheckResult
from idia.labels import RULE_LABELS
from idia.names import normalize_name
from idia.version import __version__

_STYLE = """
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
         max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
  h1 { font-size: 1.5em; }
  h2 { font-size: 1.25em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
  table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
  th, td { border: 1px solid #ddd; padding: 0.25em 0.55em; text-align: left;
           vertical-align: top; }
  th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .yes { color: #b00020; font-weight: bold; } .no { color: #1b7a2f; font-weight: bold; }
  .notice { background: #fff8e1; border-left: 4px solid #f0b400; padding: 0.4em 0.8em; }
  .small { font-size: 0.85em; color: #555; } code { background: #f6f6f6; padding: 0 0.3em; }
"""

_CERTIFICATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Erasure certificate: {{ name }}</title>
<style>{{ style }}</style></head><body>
<h1>Erasure certificate: {{ name }}</h1>
<p class="small">Generated {{ generated }} by idia {{ version }}.</p>
<p>{{ conclusion }}</p>
{% for notice in notices %}<div class="notice">{{ notice }}</div>{% endfor %}
<h2>Both verdicts</h2>
<table>
<tr><th></th><th>original model</th><th>unlearned model</th></tr>
<tr><td>model</td>
  {% for r in (original, unlearned) %}<td><code>{{ r.model }}</code></td>{% endfor %}</tr>
<tr><td>weights digest</td>
  {% for i in identities %}<td><code>{{ i }}</code></td>{% endfor %}</tr>
<tr><td>knows {{ name }}?</td>{% for r in (original, unlearned) %}
  <td class="{{ 'yes' if r.member else 'no' }}">{{ 'YES' if r.member else 'NO' }}</td>
  {% endfor %}</tr>
<tr><td>score (templates naming the person)</td>{% for r in (original, unlearned) %}
  <td class="num">{{ r.score }} / {{ r.templates | length }} (threshold {{ r.threshold }})</td>
  {% endfor %}</tr>
<tr><td>calibrated verdict (alpha {{ original.alpha }})</td>{% for r in (original, unlearned) %}
  <td class="{{ 'yes' if r.verdict else 'no' }}">{{ r.verdict_sentence }}</td>{% endfor %}</tr>
{% for label, p_before, p_after in p_values %}<tr><td>{{ label }}</td>
  {% for p in (p_before, p_after) %}<td class="num">{{ p | pvalue }}</td>{% endfor %}</tr>
{% endfor %}
<tr><td>mean rank of the real name (0 = first)</td>{% for r in (original, unlearned) %}
  <td class="num">{{ r.mean_real_rank | num }}</td>{% endfor %}</tr>
<tr><td>photos used</td>
  {% for r in (original, unlearned) %}<td class="num">{{ r.n_photos }}</td>{% endfor %}</tr>
</table>
<p class="small">Same photos, same {{ original.n_candidates }} candidate names (seed
{{ original.seed }}, {{ original.candidate_source }}), same {{ original.templates | length }}
templates. A small p-value means the model singles the person out. A model guessing at random
calls a person a member with probability {{ original.chance_member_probability | pct }}.</p>
<h2>Template by template</h2>
<table><tr><th>template</th><th>original: predicted name (votes)</th>
<th>unlearned: predicted name (votes)</th></tr>
{% for pair in rows %}<tr><td>{{ pair[0].template }}</td>
{% for t, r in ((pair[0], original), (pair[1], unlearned)) %}
<td class="{{ 'yes' if t.correct else '' }}">{{ t.prediction or '(tie)' }}
({{ t.votes }}/{{ r.n_photos }})</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>Photos</h2>
<table><tr><th>photo</th><th>status</th></tr>
{% for p in original.photos %}<tr><td>{{ p.path }}</td>
<td>{{ p.status }}{{ ': ' ~ p.reason if p.reason else '' }}</td></tr>{% endfor %}
</table>
{% if record %}
<h2>How the unlearned model was made</h2>
<table>
{% for key, value in record_rows %}<tr><td>{{ key }}</td><td>{{ value }}</td></tr>
{% endfor %}</table>
{% endif %}
<h2>Attack settings</h2>
<table>{% for key, value in settings %}<tr><td>{{ key }}</td><td>{{ value }}</td></tr>
{% endfor %}</table>
</body></html>
"""

_DEFENCE_SECTION = """<section id="idia-defence">
<h2>Defence: {{ d.method }}{{ ' (' ~ d.encoder ~ ' encoder)' if d.encoder else '' }},
before and after</h2>
<p>A seeded half of the members of every injected count was erased; everyone was then attacked
again with the same photos, candidates and templates. Rates under the paper's rule (score &ge;
tau) with 95% Wilson intervals over the people in each group.</p>
<table><tr><th>group</th><th>n</th><th>before</th><th>after</th>
<th>mean score before / after</th></tr>
{% for key, label, rate in groups %}{% set g = d[key] %}
<tr><td>{{ label }}</td><td class="num">{{ g.n }}</td>
{% for when in ('before', 'after') %}{% set ci = g['ci_' ~ when] %}
<td class="num">{{ g[rate ~ '_' ~ when] | pct }} [{{ ci[0] | pct }}, {{ ci[1] | pct }}]</td>
{% endfor %}
<td class="num">{{ g.mean_score_before | num }} / {{ g.mean_score_after | num }}</td></tr>
{% endfor %}</table>
{% if d.get('calibrated') %}<h3>Calibrated tests</h3>
<table><tr><th>test</th><th>group</th><th>n</th><th>before</th><th>after</th></tr>
{% for test, c in d.calibrated.items() %}{% for key, label, rate in groups %}{% set g = c[key] %}
<tr><td>{{ test }} ({{ c.rule }})</td><td>{{ label }}</td><td class="num">{{ g.n }}</td>
<td class="num">{{ g[rate ~ '_before'] | pct }}</td>
<td class="num">{{ g[rate ~ '_after'] | pct }}</td></tr>
{% endfor %}{% endfor %}</table>{% endif %}
<h3>Utility on held-out synthetic data</h3>
<table><tr><th>measure</th><th>before</th><th>after</th>
<th>change (points) [95% paired bootstrap]</th></tr>
{% for key, before, after, ci in utility %}<tr><td>{{ key }}</td>
<td class="num">{{ before | pct }}</td><td class="num">{{ after | pct }}</td>
<td class="num">{{ '%+.1f' % (100 * (after - before)) }}{% if ci %}
[{{ '%+.1f' % (100 * ci[0]) }}, {{ '%+.1f' % (100 * ci[1]) }}]{% endif %}</td></tr>
{% endfor %}</table>
<h3>What still leaks (the erased people, attacked another way)</h3>
<table><tr><th>attack</th><th>example</th><th>n</th><th>TPR before</th><th>TPR after</th></tr>
{% for kind, v in d.variants.items() %}<tr><td>{{ kind }}</td>
<td>{% if v.get('example') %}{{ v.example[0] }} &rarr; {{ v.example[1] }}{% endif %}</td>
<td class="num">{{ v.n }}</td>
{% for when in ('before', 'after') %}{% set ci = v['ci_' ~ when] %}
<td class="num">{{ v['tpr_' ~ when] | pct }} [{{ ci[0] | pct }}, {{ ci[1] | pct }}]</td>
{% endfor %}</tr>
{% endfor %}</table>
<p class="small">New model: <code>{{ d.model }}</code>; seed {{ d.seed }};
seconds: {{ d.seconds }}.</p>
</section>"""

_DEFENCE_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>idia lab defence: {{ d.method }}</title>
<style>{{ style }}</style></head><body>
<h1>idia lab defence: {{ d.method }}</h1>
<p class="small">Generated {{ generated }} by idia {{ version }}.</p>
{{ section }}
</body></html>"""

_MARK_START, _MARK_END = "<!-- idia-defence:start -->", "<!-- idia-defence:end -->"


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{100 * float(value):.1f}%"


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"


def _pvalue(value: Any) -> str:
    return "not tested" if value is None else f"{float(value):.4g}"


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters["pct"] = _pct
    environment.filters["num"] = _num
    environment.filters["pvalue"] = _pvalue
    return environment


# ---------------------------------------------------------------------------------------------
# The certificate


def p_values(result: CheckResult) -> list[tuple[str, float | None]]:
    """The p-values a check reports, labelled: each calibrated claim of :mod:`idia.claims`
    (None where it was not tested, e.g. face association without reference people)."""
    return [(f"{RULE_LABELS[claim].name} p-value", test.p_value if test.tested else None)
            for claim, test in result.claims.items()]


def conclusion(name: str, original: CheckResult, unlearned: CheckResult) -> str:
    """One sentence a provider can send: what the attack found before and after, by the
    paper's rule and by the calibrated tests (at each check's alpha)."""
    label, p_before = p_values(original)[0]
    p_after = p_values(unlearned)[0][1]
    before = (
        f"the original model named {name} under {original.score} of "
        f"{len(original.templates)} templates "
        f"({'identified' if original.member else 'not identified'}"
        f"; {label} {_pvalue(p_before)}: {original.verdict_sentence})"
    )
    after = (
        f"the unlearned model under {unlearned.score} "
        f"({'still identified' if unlearned.member else 'not identified'}"
        f"; {label} {_pvalue(p_after)}: {unlearned.verdict_sentence})"
    )
    return f"With {original.n_photos} photos, {before}; {after}."


def _record_rows(record: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
    settings = record.get("settings", {})
    names = record.get("names", [])
    ours = next((n for n in names if normalize_name(n) == normalize_name(name)), None)
    losses = record.get("losses", {})
    return [
        ("method", record.get("method")),
        ("made", record.get("created")),
        ("source model", record.get("source_model")),
        ("source weights digest", record.get("source_identity")),
        ("unlearned weights digest", record.get("identity")),
        ("this name among the erased", "yes" if ours else "NO"),
        ("spellings erased for this name", ", ".join(record.get("variants", {}).get(ours, []))
         if ours else "none"),
        ("people erased in the same run", len(names)),
        ("encoder", settings.get("encoder")),
        ("neutral phrase", settings.get("neutral")),
        ("steps, learning rate, batch", f"{settings.get('steps')}, {settings.get('lr')}, "
         f"{settings.get('batch_size')}"),
        ("seed", settings.get("seed")),
        ("texts", record.get("texts")),
        ("loss before / after (cosine distance)",
         f"{losses.get('initial')} / {losses.get('final')}"),
        ("seconds", record.get("seconds")),
        ("idia version", record.get("idia_version")),
    ]


def certificate_notices(
    name: str, identities: tuple[str | None, str | None], record: Mapping[str, Any] | None
) -> list[str]:
    """What makes the evidence weaker: a record that does not match, a name not erased."""
    notices = []
    if record is None:
        notices.append("No unlearn.json was given: the page cannot show how the model was made.")
        return notices
    if record.get("identity") and identities[1] and record["identity"] != identities[1]:
        notices.append(
            "The unlearned model's weights do not match the digest in unlearn.json: the record "
            "describes another model."
        )
    source = record.get("source_identity")
    if source and identities[0] and source != identities[0]:
        notices.append(
            "The original model's weights do not match the source digest in unlearn.json."
        )
    if not any(normalize_name(n) == normalize_name(name) for n in record.get("names", [])):
        notices.append(f"{name} is not among the names this model was unlearned for.")
    return notices


def certificate_data(
    original: CheckResult,
    unlearned: CheckResult,
    identities: tuple[str | None, str | None],
    record: Mapping[str, Any] | None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (``idia certify --json``)."""
    name = original.name
    return {
        "name": name,
        "conclusion": conclusion(name, original, unlearned),
        "notices": certificate_notices(name, identities, record),
        "original": {**original.to_dict(), "identity": identities[0]},
        "unlearned": {**unlearned.to_dict(), "identity": identities[1]},
        "unlearning": None if record is None else dict(_record_rows(record, name)),
        "settings": dict(settings or {}),
    }


def write_certificate(
    original: CheckResult,
    unlearned: CheckResult,
    out: str | Path,
    identities: tuple[str | None, str | None] = (None, None),
    record: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """One self-contained page: both checks side by side and how the new model was made."""
    out = Path(out)
    data = certificate_data(original, unlearned, identities, record, settings)
    html = _environment().from_string(_CERTIFICATE).render(
        style=_STYLE,
        name=original.name,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        conclusion=data["conclusion"],
        notices=data["notices"],
        original=original,
        unlearned=unlearned,
        identities=[i or "n/a" for i in identities],
        rows=list(zip(original.templates, unlearned.templates, strict=True)),
        p_values=[(label, p, dict(p_values(unlearned)).get(label))
                  for label, p in p_values(original)],
        record=record,
        record_rows=[] if record is None else _record_rows(record, original.name),
        settings=[
            ("candidate names", original.n_candidates),
            ("candidate seed", original.seed),
            ("threshold (tau)", original.threshold),
            *((str(k), v) for k, v in (settings or {}).items()),
        ],
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


# ---------------------------------------------------------------------------------------------
# The lab defence


def defence_section_html(defence: Mapping[str, Any]) -> str:
    """The before/after section (HTML fragment) for a lab's ``summary["defence"]``."""
    utility = defence["utility"]
    rows = [
        ("zero-shot accuracy (mean over tasks)", utility["zero_shot_before"],
         utility["zero_shot_after"], utility.get("zero_shot_change_ci")),
        *(
            (_measure_label(key), value, utility["detail_after"][key], None)
            for key, value in utility.get("detail_before", {}).items()
            if key.startswith(("zero_shot[", "recall_at_1["))
        ),
        ("recall@1 (mean of both directions)", utility["recall_at_1_before"],
         utility["recall_at_1_after"], utility.get("recall_at_1_change_ci")),
    ]
    return _environment().from_string(_DEFENCE_SECTION).render(
        d=defence,
        groups=[("unlearned", "erased members", "tpr"), ("kept", "kept members", "tpr"),
                ("non_members", "non-members", "fpr")],
        utility=rows,
    )


def _measure_label(key: str) -> str:
    """'zero_shot[hair colour]' -> 'zero-shot: hair colour'."""
    measure, _, detail = key.partition("[")
    return f"{'zero-shot' if measure == 'zero_shot' else 'recall@1'}: {detail.rstrip(']')}"


def write_defence_report(defence: Mapping[str, Any], out: str | Path) -> Path:
    out = Path(out)
    html = _environment().from_string(_DEFENCE_PAGE).render(
        style=_STYLE,
        d=defence,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        section=Markup(defence_section_html(defence)),
    )
    out.write_text(html, encoding="utf-8")
    return out


def splice_defence_section(report: str | Path, defence: Mapping[str, Any]) -> None:
    """Put the before/after section into an existing report page (replacing an earlier one)."""
    report = Path(report)
    html = report.read_text(encoding="utf-8")
    if _MARK_START in html and _MARK_END in html:
        head, rest = html.split(_MARK_START, 1)
        html = head + rest.split(_MARK_END, 1)[1]
    block = f"{_MARK_START}\n{defence_section_html(defence)}\n{_MARK_END}\n"
    position = html.rfind("</body>")
    html = html[:position] + block + html[position:] if position >= 0 else html + block
    report.write_text(html, encoding="utf-8")
