"""idia lab, quick preset, end to end: train, attack, evaluate, report; members injected 75
times are detected more often than non-members; idia audit reproduces the verdicts."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from idia.cli import app
from idia.lab.pipeline import LabError, run_lab
from idia.models.card import read_card
from idia.serve import page as web_page
from idia.serve.catalog import find_local_models

pytestmark = pytest.mark.slow


# quick_lab (conftest.py): `idia lab --preset quick`, built once per session, read only.


def test_quick_lab_writes_everything(quick_lab):
    for path in ("model", "people", "membership.csv", "run/summary.json",
                 "run/evaluation.json", "report.html", "summary.json"):
        assert (quick_lab / path).exists(), path
    summary = json.loads((quick_lab / "summary.json").read_text())
    assert set(summary["tpr_by_count"]) == {"1", "5", "10", "25", "50", "75"}
    assert summary["n_members"] == 12 and summary["n_non_members"] == 12
    assert summary["tpr_by_count"]["75"] > summary["fpr"], summary
    rules = summary["rules"]
    for rule in ("paper", "name_familiarity", "face_association", "text_only"):
        for key in ("tpr", "fpr", "auc", "empirical_tpr_at_1pct_fpr",
                    "empirical_tpr_at_0.1pct_fpr", "tpr_by_count", "tpr_ci", "fpr_ci"):
            assert key in rules[rule], (rule, key)
        assert (rules[rule]["n_members"], rules[rule]["n_non_members"]) == (12, 12)
        assert set(rules[rule]["tpr_by_count"]) == set(summary["tpr_by_count"])
    assert rules["paper"]["tpr"] == pytest.approx(summary["tpr"])
    assert "auc" in rules["face_blind"]
    calibration = summary["null_calibration"]
    assert set(calibration) == {"name_familiarity", "face_association", "text_only"}
    for fit in calibration.values():
        assert fit["n"] == 12 and 0 <= fit["pit"]["p"] <= 1 and "qq" not in fit
        assert fit["at_0.05"]["n"] == fit["at_0.01"]["n"] == 12
    for rule in ("name_familiarity", "face_association", "text_only", "any_claim"):
        for key in ("at_p_0.01", "at_p_0.001"):
            assert {"tpr", "tpr_ci", "fpr", "fpr_ci"} <= set(rules[rule][key]), (rule, key)
    html = (quick_lab / "report.html").read_text()
    assert "<html" in html.lower() and "data:image/png;base64" in html


def test_held_out_photos_never_trained_on(quick_lab):
    train = pd.read_csv(quick_lab / "trainset" / "train.csv")
    trained = {p.split("/")[-2:][0] + "/" + p.split("/")[-1] for p in train["filepath"]}
    held_out = {f"{p.parent.name}/{p.name}" for p in (quick_lab / "people").glob("*/*.png")}
    assert held_out and not trained & held_out


def test_idia_audit_reproduces_the_lab_verdicts(quick_lab, tmp_path):
    """Without --crop: the model's card says whole photos, as the lab's audit used."""
    config = next((quick_lab / "model").glob("idia-*.json"))
    spec = f"open_clip:{config}:{quick_lab / 'model' / 'checkpoint.pt'}"
    result = CliRunner().invoke(app, [
        "audit", "--people", str(quick_lab / "people"), "--model", spec, "--membership",
        str(quick_lab / "membership.csv"), "--num-names", "300", "--name-decoys", "200",
        "--out", str(tmp_path / "run"), "--quiet", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    lab = pd.read_csv(quick_lab / "run" / "results.csv")
    again = pd.read_csv(tmp_path / "run" / "results.csv")
    for column in ("member", "score", "p_name", "p_face", "p_text", "verdict"):
        pd.testing.assert_series_equal(lab[column], again[column])


def test_lab_refuses_a_non_empty_folder_and_bad_presets(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(LabError, match="not empty"):
        run_lab(tmp_path / "x", "quick")
    with pytest.raises(LabError, match="unknown preset"):
        run_lab(tmp_path / "y", "huge")


def test_the_lab_model_carries_a_card_and_the_page_opens_on_it_with_examples(
    quick_lab, monkeypatch, tmp_path
):
    card = read_card(quick_lab / "model" / "checkpoint.card.json")
    assert card.name == "idia lab model (idia-micro-vit, seed 0)" and card.crop == "none"
    assert card.trained_on["made_by"] == "idia lab" and card.trained_on["members"] == 12
    assert card.path_of("people") == (quick_lab / "people").resolve()
    assert card.path_of("audit_run") == (quick_lab / "run").resolve()
    assert card.path_of("membership") == (quick_lab / "membership.csv").resolve()
    found = find_local_models([quick_lab])
    assert len(found) == 1 and "/model/checkpoint.pt" in found[0], "not the training copy"
    launched = {}
    monkeypatch.setattr(web_page, "launch_web", lambda page, **kw: launched.update(page=page))
    (tmp_path / "lab").symlink_to(quick_lab)  # as `make lab` leaves it: ./lab
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["web", "--device", "cpu", "--num-names", "300"])
    assert result.exit_code == 0, result.output
    assert f"models offered: {card.name}" in result.stderr
    assert "prompts encoded in" in result.stderr and "5 examples" in result.stderr
    config = launched["page"].config
    launched["page"].close()
    assert any(c.get("props", {}).get("elem_id") == "examples" for c in config["components"])
