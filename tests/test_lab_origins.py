"""The names-from-anywhere control (issue 20): never-seen names of several origins, drawn from
the name tables, checked on a lab's model; the name tests' p-values per origin."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from idia.cli import app
from idia.lab.origin_names import MEMBER_PART_KINDS, draw_member_part_names, draw_names
from idia.lab.pipeline import LabError
from idia.names import normalize_name

runner = CliRunner()


def test_names_are_drawn_per_origin_and_sex_never_seen_and_seeded(origin_table) -> None:
    given = origin_table.names_of("PL", "given", "Latin", "f")[:30]
    seen = {normalize_name(f"{g} {f}") for g in given
            for f in origin_table.names_of("PL", "family", "Latin")[:30]}
    names = draw_names(origin_table, ["PL", "JP"], 6, seen, seed=3)
    assert names.equals(draw_names(origin_table, ["PL", "JP"], 6, seen, seed=3))
    assert not names.equals(draw_names(origin_table, ["PL", "JP"], 6, seen, seed=4))
    assert names.groupby("origin").size().to_dict() == {"JP": 6, "PL": 6}
    assert names.groupby(["origin", "sex"]).size().tolist() == [3, 3, 3, 3]
    assert names["name"].map(normalize_name).is_unique
    assert not set(names["name"].map(normalize_name)) & seen
    for row in names.itertuples():
        given, family = row.name.rsplit(" ", 1)
        assert given in origin_table.names_of(row.origin, "given", "Latin", row.sex)
        assert family in origin_table.names_of(row.origin, "family", "Latin")


def test_a_name_the_model_may_have_seen_is_redrawn(origin_table) -> None:
    first = draw_names(origin_table, ["PL"], 6, set(), seed=3)
    seen = set(first["name"].map(normalize_name))
    again = draw_names(origin_table, ["PL"], 6, seen, seed=3)
    assert len(again) == 6 and not set(again["name"].map(normalize_name)) & seen, (
        "the same seed draws the same names first: each must be redrawn")


def test_an_origin_without_pools_is_refused(origin_table) -> None:
    with pytest.raises(LabError, match="no Latin-script pools of both sexes for ZZ"):
        draw_names(origin_table, ["ZZ"], 2, set(), seed=0)


def test_member_part_names_hold_exactly_the_parts_their_kind_names() -> None:
    lab = pd.DataFrame({
        "name": ["Tom Baker", "Ann Lee", "Bob Stone", "Eve Hart", "Jim Cole", "Sue Ford"],
        "member": [True, True, True, False, False, False],
        "sex": ["m", "f", "m", "f", "m", "f"],
    })
    seen = set(lab["name"].map(normalize_name))
    names = draw_member_part_names(lab, 5, seen, seed=2)
    assert names.equals(draw_member_part_names(lab, 5, seen, seed=2))
    assert names.groupby("group").size().to_dict() == dict.fromkeys(MEMBER_PART_KINDS, 5)
    assert names["name"].map(normalize_name).is_unique and not set(
        names["name"].map(normalize_name)) & seen
    member_first = {"Tom": "m", "Ann": "f", "Bob": "m"}
    member_last = {"Baker", "Lee", "Stone"}
    lab_first = {n.split()[0] for n in lab["name"]}
    lab_last = {n.split()[1] for n in lab["name"]}
    for row in names.itertuples():
        first, last = row.name.split()
        if row.group == "member-first":
            assert member_first.get(first) == row.sex and last not in lab_last
        elif row.group == "member-surname":
            assert first not in lab_first and last in member_last
        else:
            assert member_first.get(first) == row.sex and last in member_last
        assert pd.isna(row.origin), "inferred, as an individual's check would"


@pytest.mark.slow
def test_lab_origins_checks_never_seen_names_on_the_lab_model(quick_lab, lab_copy) -> None:
    lab = lab_copy(quick_lab)
    result = runner.invoke(app, ["lab-origins", str(lab), "--origins", "JP,PL",
                                 "--per-origin", "2", "--member-parts", "1"])
    assert result.exit_code == 0, result.output
    names = pd.read_csv(lab / "origin_names" / "names.csv")
    assert names["group"].tolist() == ["JP", "JP", "PL", "PL", *MEMBER_PART_KINDS]
    non_members = pd.read_csv(lab / "membership.csv").query("not member")["name"]
    assert set(names["photos_of"]) <= set(non_members)
    assert (names["null"] == "full_name").all()
    for claim in ("name_familiarity", "text_only"):
        assert names[f"p_{claim}"].between(1 / 201, 1).all()
        n_null = names[f"n_null_{claim}"]
        assert (n_null[:4] == 200).all()
        # a member's part may be too familiar to match: held fixed, one kind of decoys only
        assert n_null[4:].between(99, 200).all()
    summary = json.loads((lab / "origin_names" / "summary.json").read_text())
    assert summary["by_origin"]["JP"]["name_familiarity"]["n_tested"] == 2
    assert summary["all"]["text_only"]["at_0.05"]["n"] == 7
    assert summary["by_member_parts"]["members-both"]["n"] == 1
    assert "2 origins" in result.output and "members-both" in result.output


def test_lab_origins_with_nothing_to_check_is_refused(tmp_path) -> None:
    result = runner.invoke(app, ["lab-origins", str(tmp_path), "--per-origin", "0"])
    assert result.exit_code == 2 and "--member-parts" in result.output


def test_lab_origins_refuses_a_folder_that_is_not_a_lab(tmp_path) -> None:
    result = runner.invoke(app, ["lab-origins", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not a finished lab folder" in result.output
    assert not (tmp_path / "origin_names").exists()
