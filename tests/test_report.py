"""idia report and check --report: self-contained pages whose figures all exist."""

from __future__ import annotations

import base64
import io
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from idia import IdentityInferenceAttack, claims
from idia.audit import run_audit
from idia.cli import app
from idia.engine import CheckResult, TemplateResult
from idia.evaluation import EvaluationSettings, evaluate_run, summary_size
from idia.report import write_check_report, write_report
from test_evaluation import T, all_photos, decoys, write_run

runner = CliRunner()
VOID = {"meta", "img", "br", "hr", "link", "input", "source", "col", "area", "base", "wbr"}
EVIL = "<script>alert('x')</script> & Co"


class Page(HTMLParser):
    """Parses a page strictly enough to catch unbalanced tags; collects what it references."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[str] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        if tag == "img":
            self.images.append(values["src"] or "")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        if tag in ("script", "link", "iframe"):
            raise AssertionError(f"a self-contained page has no <{tag}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert page.stack == [], f"unclosed: {page.stack}"
    return page


def assert_figures_exist(page: Page, html: Path, expected: set[str]) -> None:
    """Every embedded figure is a real PNG; every linked file exists next to the page."""
    assert page.images, "no figures"
    for source in page.images:
        assert source.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).verify()
    files = [link for link in page.links if not link.startswith("#")]
    assert not [link for link in files if "://" in link], "the page must not need the network"
    for link in files:
        target = html.parent / unquote(link)
        assert target.is_file(), link
        assert target.read_bytes()[:4] == (b"%PDF" if link.endswith(".pdf") else b"\x89PNG")
    stems = {Path(link).stem for link in files}
    assert expected <= stems, expected - stems
    assert len(files) == 2 * len(page.images)  # a PNG and a PDF per figure


def make_run_with_counts(folder: Path) -> Path:
    """Three members seen 5, 5 and 50 times (one weakly known), two non-members, an evil name."""
    predictions = [
        all_photos(0, 4),
        np.array([[1, 1, 1], [1, 1, 1], [11, 12, 13], [14, 15, 16]]),
        all_photos(2, 3),
        decoys(4),
        decoys(3),
    ]
    path = write_run(
        folder / "run-a", predictions, [True, True, True, False, False], [5, 5, 50, 0, 0]
    )
    people = json.loads((path / "config.json").read_text())
    results = pd.read_parquet(path / "results.parquet")
    results.loc[4, "name"] = EVIL
    results.to_parquet(path / "results.parquet", index=False)
    people["model"] = f"model {EVIL}"
    (path / "config.json").write_text(json.dumps(people))
    evaluate_run(path, EvaluationSettings(sizes=[1, 3, 4], draws=6, seed=2))
    return path


@pytest.fixture
def run_with_counts(tmp_path):
    return make_run_with_counts(tmp_path)


@pytest.fixture(scope="module")
def report_of_counts(tmp_path_factory) -> tuple[Path, Path]:
    """(run, page): the report of a run with counts, written once for the tests that only
    read it; in a folder whose name needs quoting in links."""
    root = tmp_path_factory.mktemp("report")
    run = make_run_with_counts(root)
    return run, write_report([run], root / "pages" / "my report #1.html")


def test_report_is_self_contained_and_every_figure_exists(report_of_counts):
    _, out = report_of_counts
    page = parse(out)
    assert_figures_exist(
        page,
        out,
        {"metrics_vs_size", "confusion_1", "frequency_bins_1", "frequency_heatmap_1", "roc"},
    )
    assert (out.parent / "my report #1_figures" / "roc.pdf").is_file()


def test_report_escapes_user_strings(report_of_counts):
    _, out = report_of_counts
    raw = out.read_text()
    assert "<script>" not in raw and "&lt;script&gt;" in raw
    assert EVIL in parse(out).plain  # shown as text, exactly


def test_report_shows_statistics_people_and_settings(report_of_counts):
    run_with_counts, out = report_of_counts
    text = parse(out).plain
    evaluation = json.loads((run_with_counts / "evaluation.json").read_text())
    # The paper's weakness made visible: FPR on one non-member (the fixed population at 4
    # photos keeps people 0, 1 and 3; 2 and 4 have 3 photos).
    assert "rests on 1 non-member only" in text
    assert "2 people with fewer than 4 usable photos" in text
    row = summary_size(evaluation["sizes"])
    assert row is not None and row["n_non_members"] == 1
    assert f"{row['fpr_ci_high'] * 100:.1f}%" in text
    assert "chance bound" in text and "if the templates' majority votes were independent" in text
    assert f"{evaluation['chance']['member_probability'] * 100:.3f}%" in text
    # every rule side by side, with the people behind each rate
    assert "Which claim does the evidence support?" in text
    rules = evaluation["claims"]["rules"]
    assert "paper's rule (templates won >= tau)" in text and "name familiarity:" in text
    assert f"{rules['paper']['tpr'] * 100:.1f}%" in text
    for name in ("Person 0", "Person 1", "Person 2", "Person 3"):
        assert name in text
    for setting in ("candidate_source", "hand-made", "crop", "template 2: {}", "seed"):
        assert setting in text
    assert "idia evaluate" in text and "--sizes 1,3,4 --draws 6 --seed 2" in text
    results = pd.read_parquet(run_with_counts / "results.parquet")
    assert f"{results.loc[0, 'p_name']:.3g}" in text


def test_report_overlays_runs_and_evaluates_in_memory_without_touching_the_run(
    run_with_counts, tmp_path
):
    other = write_run(tmp_path / "run-b", [all_photos(0, 2), decoys(2)], [True, False])
    out = write_report([run_with_counts, other], tmp_path / "both.html")
    page = parse(out)
    text = page.plain
    assert "run-a [model" in text and "run-b [hand:made]" in text
    assert "no evaluation.json in the run folder" in text
    assert not (other / "evaluation.json").exists()
    assert_figures_exist(page, out, {"confusion_1", "confusion_2", "roc"})


def test_report_without_truth_says_so(tmp_path):
    run = write_run(tmp_path / "run", [all_photos(0, 3), decoys(3)])
    out = write_report([run], tmp_path / "r.html")
    page = parse(out)
    assert "Truth is missing" in page.plain and "share of people called member" in page.plain
    assert_figures_exist(page, out, {"metrics_vs_size"})


def test_cli_report(run_with_counts, tmp_path):
    result = runner.invoke(app, ["report", str(run_with_counts)])
    assert result.exit_code == 0, result.output
    parse(run_with_counts / "report.html")
    outcome = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert outcome.exit_code == 2 and "error: run folder not found" in outcome.output
    assert "Traceback" not in outcome.output


def check_result(name: str) -> CheckResult:
    templates = [
        TemplateResult(f"a photo of {{}} #{t}", name if t < 2 else None, 2, t < 2) for t in range(T)
    ]
    return CheckResult(
        name=name,
        model="open_clip:tiny",
        n_photos=3,
        n_candidates=50,
        score=2,
        threshold=1,
        member=True,
        chance_member_probability=0.0594,
        templates=templates,
        photos=[
            {"path": "a.png", "status": "ok", "reason": None, "box": [1, 2, 3, 4]},
            {"path": "b.png", "status": "no_face", "reason": "no face found", "box": None},
        ],
        seed=7,
        candidate_source="embedded",
        claims={
            "name_familiarity": claims.TestResult(
                "name_familiarity", True, p_value=0.02, statistic=1.5, z=2.1, n_null=24,
                method="mean response", null=claims.NULLS["name_familiarity"],
            ),
            "face_association": claims.not_tested("face_association", "no reference photos"),
            "text_only": claims.TestResult("text_only", True, p_value=0.4, n_null=24,
                                           method="distance"),
        },
        verdict="name_familiarity",
        alpha=0.05,
    )


def test_check_report(tmp_path):
    out = write_check_report(check_result(EVIL), tmp_path / "me.html", {"crop": "face"})
    raw = out.read_text()
    assert "<script>" not in raw
    page = parse(out)
    assert_figures_exist(page, out, {"template_votes"})
    text = page.plain
    assert EVIL in text and "Yes: the model has seen this name" in text
    assert "0.02" in text and "5.94%" in text and "no reference photos" in text
    assert claims.NULLS["name_familiarity"] in text
    assert "(tie: no prediction)" in text and "no face found" in text
    assert "crop face" in text and "candidate source embedded" in text


def test_end_to_end_audit_evaluate_report(knowing_model, tmp_path):
    """A real audit (a model that knows half of the people) -> evaluate -> report."""
    people = tmp_path / "people"
    for person in knowing_model.people:
        for variant in range(5):
            folder = people / person.replace(" ", "_")
            folder.mkdir(parents=True, exist_ok=True)
            knowing_model.photo(person, variant).save(folder / f"{variant}.png")
    membership = tmp_path / "m.csv"
    pd.DataFrame(
        {
            "name": knowing_model.people,
            "member": [p in knowing_model.known for p in knowing_model.people],
            "count": [25 if p in knowing_model.known else 0 for p in knowing_model.people],
        }
    ).to_csv(membership, index=False)
    attacker = IdentityInferenceAttack(
        knowing_model, crop="none", num_names=60, name_decoys=200, seed=1, progress=False
    )
    run_audit(attacker, people, tmp_path / "run", membership, log=lambda m: None)
    settings = EvaluationSettings(sizes=[1, 3, 5, 7], draws=5, population="per-size")
    document = evaluate_run(tmp_path / "run", settings)
    # Size 5 takes all five photos: the same verdicts as the audit, in every draw.
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    everything = document["sizes"][2]
    for cell in ("tp", "fp", "fn", "tn"):
        assert (everything[f"{cell}_mean"], everything[f"{cell}_sd"]) == (summary[cell], 0)
    assert summary["tp"] == 3
    assert document["excluded_sizes"] == [7]
    assert document["roc"]["probability"]["auc"] == 1.0
    out = write_report([tmp_path / "run"], tmp_path / "report.html")
    page = parse(out)
    assert_figures_exist(page, out, {"metrics_vs_size", "confusion_1", "roc"})
    assert "Conan O'Brien" in page.plain and "test:knowing" in page.plain


def test_cli_check_report(tiny_open_clip, tmp_path):
    config, checkpoint = tiny_open_clip
    photo = tmp_path / "me" / "1.png"
    photo.parent.mkdir()
    Image.new("RGB", (48, 48), (200, 150, 120)).save(photo)
    out = tmp_path / "check.html"
    result = runner.invoke(
        app,
        [
            "check", str(photo), "--name", "Jane Doe", "--model",
            f"open_clip:{config}:{checkpoint}", "--crop", "none", "--num-names", "30",
            "--name-decoys", "200", "--cache-dir", str(tmp_path / "c"), "--json", "--report",
            str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["name"] == "Jane Doe"  # stdout stays one JSON object
    page = parse(out)
    assert_figures_exist(page, out, {"template_votes"})
    payload = json.loads(result.stdout)
    p_name = payload["claims"]["name_familiarity"]["p_value"]
    assert "Jane Doe" in page.plain and f"{p_name:.3g}" in page.plain
    assert "null hypothesis" in page.plain
