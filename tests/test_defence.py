"""Certifying a defence: who is erased, the rates before and after, the report pages, and the
quick lab end to end with --defence unlearn (and mask-names), plus one person's certificate."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from idia import claims
from idia.cli import app
from idia.engine import CheckResult, TemplateResult
from idia.lab.defence import (
    PAPER_RULE,
    Lab,
    Rule,
    calibrated_rules,
    certify,
    choose_unlearned,
    detection_rate,
    run_defence,
    unlearning_photos,
    variant_people,
)
from idia.report.compare import (
    certificate_data,
    splice_defence_section,
    write_certificate,
    write_defence_report,
)
from idia.unlearn.variants import HELD_OUT_KINDS


def membership(counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame({"name": list(counts), "member": [c > 0 for c in counts.values()],
                         "count": list(counts.values())})


def test_half_of_every_count_is_erased_seeded():
    table = membership({f"P{i}": [1, 5, 10][i % 3] for i in range(18)} | {"N1": 0, "N2": 0})
    chosen = choose_unlearned(table, seed=0)
    by_count = table.set_index("name").loc[chosen, "count"].value_counts().to_dict()
    assert by_count == {1: 3, 5: 3, 10: 3}
    assert chosen == choose_unlearned(table, seed=0) != choose_unlearned(table, seed=1)
    odd = membership({"A": 1, "B": 1, "C": 1, "D": 5, "E": 5, "F": 5, "N": 0})
    assert len(choose_unlearned(odd, seed=0)) == 3  # 1 + 2 or 2 + 1, never 2 + 2


def results(rows: list[tuple[str, bool, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["name", "member", "score", "p_name"]).assign(n_photos=5)


def test_rates_under_the_paper_rule_and_a_calibrated_test():
    before = results([("A", True, 3, 0.01), ("B", True, 2, 0.02), ("C", True, 1, 0.2),
                      ("D", True, 4, 0.001), ("N", False, 0, 0.9)])
    after = results([("A", False, 0, 0.8), ("B", False, 0, 0.5), ("C", True, 1, 0.2),
                     ("D", True, 5, 0.001), ("N", False, 0, 0.7)])
    table = membership({"A": 1, "B": 5, "C": 1, "D": 5, "N": 0})
    figures = certify(before, after, table, ["A", "B"])
    assert figures["unlearned"]["tpr_before"] == 1.0 and figures["unlearned"]["tpr_after"] == 0.0
    assert figures["unlearned"]["mean_score_before"] == 2.5
    assert figures["kept"]["n"] == 2 and figures["kept"]["tpr_after"] == 1.0
    assert figures["non_members"]["fpr_after"] == 0.0
    low, high = figures["unlearned"]["ci_after"]
    assert low == 0.0 and 0.5 < high < 0.9  # two people: a wide interval
    assert set(figures["calibrated"]) == {"name_unadjusted"}  # no verdict column: p only
    calibrated = figures["calibrated"]["name_unadjusted"]
    assert calibrated["rule"] == "p_name <= 0.05"
    assert calibrated["kept"]["tpr_before"] == 0.5  # C's p = 0.2 is not significant
    assert calibrated["unlearned"]["tpr_after"] == 0.0
    assert detection_rate(after, ["C", "D"], Rule("p_name", 0.01))["detected"] == 1
    assert set(calibrated_rules(before.drop(columns="p_name"), after)) == set()
    with_verdicts = [f.assign(name_verdict=f["p_name"] < 0.015) for f in (before, after)]
    assert calibrated_rules(*with_verdicts)["name"] == Rule("name_verdict")  # the audit's own
    assert calibrated_rules(*with_verdicts)["name_unadjusted"] == Rule("p_name", 0.05)
    assert detection_rate(before, [], PAPER_RULE)["rate"] is None


def tiny_lab(tmp_path, people: dict[str, int]) -> Lab:
    """A lab folder with only what the variant and photo helpers read: held-out photos in
    people/, all photos in data/people/ (the first two of each person are held out)."""
    for name in people:
        folder = name.replace(" ", "_")
        (tmp_path / "people" / folder).mkdir(parents=True)
        (tmp_path / "data" / "people" / folder).mkdir(parents=True)
        for k in range(5):
            (tmp_path / "data" / "people" / folder / f"{k}.png").write_bytes(b"png")
        for k in range(2):
            (tmp_path / "people" / folder / f"{k}.png").write_bytes(b"png")
    return Lab(tmp_path, {}, None, 0, "spec", membership(people), pd.DataFrame())  # type: ignore[arg-type]


def test_variant_people_folders_and_collisions(tmp_path):
    lab = tiny_lab(tmp_path, {"Jane Miller": 5, "John Miller": 10, "Ann Lee": 0})
    out = tmp_path / "initial"
    out.mkdir()
    people, table, mapping = variant_people(lab, ["Jane Miller", "John Miller"], "initial", out)
    assert mapping == {"Jane Miller": "J. Miller"}  # John would be "J. Miller" too: left out
    assert sorted(p.name for p in (people / "J._Miller").iterdir()) == ["0.png", "1.png"]
    assert pd.read_csv(table).to_dict("list") == {"name": ["J. Miller"], "member": [True],
                                                  "count": [5]}


def test_image_unlearning_uses_only_photos_the_attack_never_sees(tmp_path):
    lab = tiny_lab(tmp_path, {"Jane Miller": 5, "Ann Lee": 0})
    folder = unlearning_photos(lab, ["Jane Miller"], tmp_path / "unlearn", seed=0)
    assert sorted(p.name for p in (folder / "Jane_Miller").iterdir()) == ["2.png", "3.png",
                                                                          "4.png"]
    assert not (folder / "Ann_Lee").exists()


def defence_figures() -> dict:
    group = {"n": 2, "tpr_before": 1.0, "tpr_after": 0.0, "ci_before": [0.3, 1.0],
             "ci_after": [0.0, 0.7], "mean_score_before": 2.0, "mean_score_after": 0.0}
    return {
        "method": "unlearn", "encoder": "text", "seed": 0, "model": "open_clip:a.json:b.pt",
        "unlearned": group, "kept": group,
        "non_members": {**{k: v for k, v in group.items() if not k.startswith("tpr")},
                        "fpr_before": 0.0, "fpr_after": 0.0},
        "utility": {"zero_shot_before": 0.5, "zero_shot_after": 0.49, "recall_at_1_before": 0.1,
                    "recall_at_1_after": 0.1, "detail_before": {"zero_shot[gender]": 0.8},
                    "detail_after": {"zero_shot[gender]": 0.79}},
        "variants": {"reversed": {**group, "example": ["<b>Ann Lee</b>", "Lee Ann"]}},
        "seconds": {"defence_s": 1.0},
    }


def test_the_defence_section_is_spliced_once_and_escaped(tmp_path):
    report = tmp_path / "report.html"
    report.write_text("<html><body><h1>lab</h1></body></html>")
    splice_defence_section(report, defence_figures())
    splice_defence_section(report, defence_figures())  # a second run replaces the first
    html = report.read_text()
    assert html.count('<section id="idia-defence">') == 1 and html.endswith("</body></html>")
    assert "&lt;b&gt;Ann Lee&lt;/b&gt;" in html and "<b>Ann" not in html
    assert "-1.0" in html  # the zero-shot change in points
    page = write_defence_report(defence_figures(), tmp_path / "defence.html").read_text()
    assert "erased members" in page and "100.0%" in page


def check_result(name: str, score: int, p_value: float, model: str) -> CheckResult:
    templates = [TemplateResult(f"t{i} {{}}", name if i < score else "Someone Else", 3, i < score)
                 for i in range(21)]
    tests = {
        "name_familiarity": claims.TestResult("name_familiarity", True, p_value=p_value),
        "face_association": claims.TestResult("face_association", False, reason="no reference"),
        "text_only": claims.TestResult("text_only", True, p_value=min(1.0, p_value * 10)),
    }
    return CheckResult(name=name, model=model, n_photos=3, n_candidates=1000, score=score,
                       threshold=1, member=score >= 1, chance_member_probability=0.02,
                       templates=templates, photos=[{"path": "a.png", "status": "ok",
                                                     "reason": ""}],
                       seed=0, candidate_source="test", claims=tests,
                       verdict="name_familiarity" if p_value <= 0.05 else None, alpha=0.05)


def test_certificate_shows_both_verdicts_and_never_lists_other_erased_people(tmp_path):
    record = {"names": ["<i>Ann</i> Lee", "Secret Other"], "identity": "new", "source_identity":
              "old", "variants": {"<i>Ann</i> Lee": ["<i>Ann</i> Lee", "Ms. Lee"]},
              "settings": {"encoder": "text", "steps": 200, "seed": 0}, "losses": {}}
    name = "<i>Ann</i> Lee"
    original = check_result(name, 6, 0.001, "open_clip:orig")
    unlearned = check_result(name, 0, 1.0, "open_clip:new")
    page = write_certificate(original, unlearned, tmp_path / "c.html", ("old", "new"), record)
    html = page.read_text()
    assert "&lt;i&gt;Ann&lt;/i&gt; Lee" in html and "<i>Ann</i>" not in html
    assert "0.001" in html and "6 / 21" in html and "0 / 21" in html
    assert "the model has seen this name" in html and "no evidence that the model knows" in html
    assert "not tested" in html  # face association without reference people
    assert "Secret Other" not in html and "Ms. Lee" in html
    data = certificate_data(original, unlearned, ("old", "new"), record)
    assert data["notices"] == [] and "not identified" in data["conclusion"]
    wrong = certificate_data(original, unlearned, ("old", "other"), record)
    assert any("do not match" in notice for notice in wrong["notices"])
    stranger = check_result("Bob Roe", 0, 1.0, "m")
    assert any("not among" in n for n in certificate_data(stranger, stranger, ("old", "new"),
                                                          record)["notices"])


def test_defence_refuses_a_folder_that_is_not_a_finished_lab(tmp_path):
    result = CliRunner().invoke(app, ["defence", str(tmp_path)])
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert "not a finished lab folder" in result.output
    bad = CliRunner().invoke(app, ["lab", "--out", str(tmp_path / "x"), "--defence", "forget"])
    assert bad.exit_code == 2 and not (tmp_path / "x").exists()


# --- the quick lab, end to end ----------------------------------------------------------------


# defended_lab (conftest.py): `idia lab --preset quick --defence unlearn`, shared and read
# only; the test that runs a second defence works on a copy of it.


@pytest.mark.slow
def test_quick_lab_with_defence_unlearn(defended_lab):
    summary = json.loads((defended_lab / "summary.json").read_text())
    defence = summary["defence"]
    assert defence["method"] == "unlearn"
    erased, kept, others = defence["unlearned"], defence["kept"], defence["non_members"]
    assert erased["n"] == kept["n"] == 6 and others["n"] == 12
    assert erased["mean_score_before"] > 0  # the model knew some of them ...
    assert erased["mean_score_after"] < erased["mean_score_before"] / 2  # ... and forgot
    assert erased["tpr_after"] <= others["ci_after"][1]  # down to the non-members' level
    assert kept["ci_before"][0] <= kept["tpr_after"] <= kept["ci_before"][1]
    utility = defence["utility"]
    assert abs(utility["zero_shot_after"] - utility["zero_shot_before"]) < 0.05
    assert set(defence["variants"]) == set(HELD_OUT_KINDS)
    assert all(v["n"] > 0 for v in defence["variants"].values())
    folder = defended_lab / "defence" / "unlearn"
    names = pd.read_csv(folder / "names.csv")
    assert sorted(names["name"]) == sorted(defence["unlearned_names"])
    assert json.loads((folder / "model" / "unlearn.json").read_text())["names"] == sorted(
        names["name"])
    assert '<section id="idia-defence">' in (defended_lab / "report.html").read_text()


@pytest.mark.slow
def test_certificate_for_an_erased_person(defended_lab, tmp_path):
    defence = json.loads((defended_lab / "summary.json").read_text())["defence"]
    before = pd.read_parquet(defended_lab / "run" / "results.parquet").set_index("name")
    name = max(defence["unlearned_names"], key=lambda n: before.loc[n, "score"])
    photos = sorted((defended_lab / "people" / name.replace(" ", "_")).glob("*.png"))
    model = json.loads((defended_lab / "summary.json").read_text())["model"]
    result = CliRunner().invoke(app, [
        "certify", *map(str, photos), "--name", name, "--model", model, "--unlearned",
        str(defended_lab / "defence" / "unlearn" / "model"), "--no-cache", "--num-names",
        "300", "--name-decoys", "200", "--out", str(tmp_path / "certificate.html"), "--json",
        "--reference", str(defended_lab / "people")])
    assert result.exit_code == 0, result.output
    data = json.loads(next(line for line in result.output.splitlines() if line.startswith("{")))
    assert data["original"]["score"] > 0  # its own candidates: 1 real name + 299 decoys
    assert data["unlearned"]["score"] < data["original"]["score"]
    assert data["notices"] == []
    assert data["original"]["n_reference_people"] > 0  # face association tested on both
    assert data["unlearned"]["claims"]["face_association"]["tested"]
    html = (tmp_path / "certificate.html").read_text()
    assert name in html and "How the unlearned model was made" in html


@pytest.mark.slow
def test_mask_names_defence_on_the_same_lab(defended_lab, lab_copy):
    """On a copy: the second defence rewrites the lab's summary.json and report.html, which
    the other tests read as the unlearn defence left them."""
    lab = lab_copy(defended_lab)
    defence = run_defence(lab, "mask-names", log=lambda m: None)
    folder = lab / "defence" / "mask-names"
    masked = pd.read_csv(folder / "trainset" / "train.csv")["caption"]
    for name in defence["unlearned_names"]:
        assert not masked.str.contains(name, regex=False).any()
    kept = set(pd.read_csv(lab / "membership.csv").query("member")["name"])
    kept -= set(defence["unlearned_names"])
    assert any(masked.str.contains(n, regex=False).any() for n in kept)
    summary = json.loads((lab / "summary.json").read_text())
    assert summary["defence"]["method"] == "mask-names"
    assert defence["unlearned"]["n"] == 6 and defence["encoder"] is None
