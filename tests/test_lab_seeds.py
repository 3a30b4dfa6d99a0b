"""Pooling independent lab runs: people from every seed behind each rate, and the trend of
detection with the number of injected pairs."""

from __future__ import annotations

import pytest

from idia.lab.seeds import pooled_results, pooled_summary
from idia.lab.trend import detection_trend
from test_evaluation import all_photos, decoys, write_run


def _run(path, seed_offset: int):
    """Members seen 1, 5 or 25 times (the well-seen ones found more often) and non-members."""
    predictions, truth, counts = [], [], []
    for i, count in enumerate([1, 1, 5, 5, 25, 25]):
        found = count == 25 or (count == 5 and i % 2 == seed_offset % 2)
        predictions.append(all_photos(i, 3) if found else decoys(3))
        truth.append(True)
        counts.append(count)
    for _ in range(4):
        predictions.append(decoys(3))
        truth.append(False)
        counts.append(0)
    return write_run(path, predictions, truth, counts, n_candidates=40)


def test_pooled_rules_count_the_people_of_every_seed(tmp_path):
    runs = [_run(tmp_path / f"s{s}", s) for s in (0, 1, 2)]
    pooled = pooled_summary(runs, [0, 1, 2])
    assert (pooled["n_members"], pooled["n_non_members"]) == (18, 12)
    paper = pooled["pooled_rules"]["paper"]
    by_count = paper["tpr_by_count"]
    assert {c: v["n"] for c, v in by_count.items()} == {"1": 6, "5": 6, "25": 6}
    assert by_count["25"]["tpr"] == 1.0 and by_count["1"]["tpr"] == 0.0
    assert by_count["5"]["tpr"] == pytest.approx(3 / 6)
    assert paper["n_non_members"] == 12 and paper["fpr"] == 0.0
    assert len(paper["auc_per_seed"]) == 3
    low, high = by_count["5"]["ci"]
    assert low < 0.5 < high
    # each seed's figures, seed-aware intervals and heterogeneity tests beside the pooled ones
    assert set(paper["per_seed"]) == {"0", "1", "2"} and paper["per_seed"]["1"]["tpr"] == 0.5
    tpr = paper["seed_aware"]["tpr"]
    assert [v["k"] for v in tpr["per_seed"].values()] == [3, 3, 3] and tpr["rate"] == 0.5
    assert tpr["ci"][0] <= paper["tpr_ci"][0] and tpr["heterogeneity"]["p"] == 1.0
    assert paper["seed_aware"]["auc"]["per_seed"] == paper["auc_per_seed"]
    assert by_count["5"]["seed_aware"]["n"] == 6
    trend = pooled["trend"]["paper"]
    assert {"slope", "ci", "p", "method"} <= set(trend) and trend["separation"]
    assert trend["slope"] > 0 and trend["p"] < 0.01


def test_the_trend_rises_with_the_count_and_says_when_it_cannot(tmp_path):
    runs = [_run(tmp_path / f"s{s}", s) for s in (0, 1)]
    members = pooled_results(runs, [0, 1])
    members = members[members["truth"]].copy()
    # make detection rise with the count without separating completely
    members["member"] = members["count"].map({1: 0, 5: 1, 25: 1}).astype(bool)
    members.loc[members.index[0], "member"] = True
    members.loc[members.index[-1], "member"] = False
    trend = detection_trend(members, "member")
    assert trend["slope"] > 0 and trend["ci"][0] < trend["slope"] < trend["ci"][1]
    assert 0 < trend["p"] < 1 and trend["n"] == 12 and not trend["separation"]
    reversed_ = members.assign(member=~members["member"])  # falling with the count
    falling = detection_trend(reversed_, "member")
    assert falling["slope"] == pytest.approx(-trend["slope"], rel=1e-4)  # logit symmetry
    assert falling["ci"] == pytest.approx([-trend["ci"][1], -trend["ci"][0]], rel=1e-4)
    members["member"] = True
    constant = detection_trend(members, "member")
    assert constant["slope"] is None and "does not vary" in constant["reason"]



def test_the_lab_tables_render_the_new_figures(tmp_path, capsys, monkeypatch):
    """The terminal tables of `idia lab` and `idia lab --seeds` from summaries built like the
    commands build them: seed-aware intervals, per-seed rates with the heterogeneity p, the
    p <= 0.01 operating points, the trend with separation, the calibration checks."""
    from idia.cli.render import render_lab, render_seeds
    from idia.evaluation import EvaluationSettings, evaluate_run
    from idia.lab.pipeline import PRESETS, lab_summary

    monkeypatch.setenv("COLUMNS", "400")
    runs = [_run(tmp_path / f"s{s}", s) for s in (0, 1, 2)]
    summary = {"seeds": [0, 1, 2], **pooled_summary(runs, [0, 1, 2]),
               "seconds": {"wall_s_per_seed": [60.0, None, 90.0]}}
    render_seeds(summary, tmp_path)
    text = " ".join(capsys.readouterr().out.split())
    assert "[95% CI over seeds]" in text and "(separation)" in text
    assert "TPR / FPR per seed (heterogeneity p) │ 50%, 50%, 50% (p 1) / 0%, 0%, 0% (p 1)" in text
    evaluation = evaluate_run(runs[0], EvaluationSettings(sizes=[1, 3], draws=2))
    lab = lab_summary(runs[0], PRESETS["quick"], 0, "hand:made", {}, evaluation)
    render_lab(lab, tmp_path)
    text = " ".join(capsys.readouterr().out.split())
    assert "each person's p <= 0.01: TPR / FPR" in text
    assert "Calibration on non-members, name familiarity: p <= 0.05 for" in text
