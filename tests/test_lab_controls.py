"""The lab's controls for the calibrated tests' nulls: namesakes that make name parts familiar
(issue 20) and demographic groups that tie names to faces (issue 18): the people and corpus
they draw, and the per-kind and per-group figures the lab's summary reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from idia import synthetic
from idia.cli.render import render_groups, render_name_parts
from idia.lab import controls
from idia.lab.pipeline import LabError, run_lab
from idia.names import default_pool, normalize_name
from idia.run_folder import RunFolder

INJECT = (1, 5, 10, 25, 50, 75)


# --- demographic groups: people, names, corpus ------------------------------------------------


def test_group_name_pools_are_disjoint_slices_of_the_pool() -> None:
    pools = synthetic.group_name_pools(3)
    pool = default_pool()
    for sex in ("f", "m"):
        slices = [set(p.first_names[sex]) for p in pools]
        assert [len(s) for s in slices] == [synthetic.GROUP_FIRST_NAMES] * 3
        assert not (slices[0] & slices[1] or slices[0] & slices[2] or slices[1] & slices[2])
        assert all(s <= set(pool.first_names[sex]) for s in slices)
    surnames = [set(p.surnames) for p in pools]
    assert [len(s) for s in surnames] == [synthetic.GROUP_SURNAMES] * 3
    assert not (surnames[0] & surnames[1] or surnames[0] & surnames[2])


def test_grouped_people_pair_group_names_with_group_faces() -> None:
    people = synthetic.grouped_people(60, name_seed=5, face_seed=6)
    assert people == synthetic.grouped_people(60, name_seed=5, face_seed=6)
    assert [p.name for p in people] != [p.name for p in synthetic.grouped_people(60, 7, 6)]
    assert [p.group for p in people] == ["A"] * 20 + ["B"] * 20 + ["C"] * 20
    assert len({normalize_name(p.name) for p in people}) == 60
    pools = dict(zip("ABC", synthetic.group_name_pools(3), strict=True))
    for person in people:
        first, surname = synthetic.name_parts(person.name)
        sex = synthetic.SEX_OF_GENDER[person.traits.gender]
        assert first in pools[person.group].first_names[sex], person
        assert surname in pools[person.group].surnames, person
    # the groups' faces differ: skin tone rises from A to C, every person on their side
    tone = {g: [p.traits.skin_tone for p in people if p.group == g] for g in "ABC"}
    assert max(tone["A"]) < np.mean(tone["B"]) < min(tone["C"])
    assert np.mean(tone["A"]) < 0.25 and np.mean(tone["C"]) > 0.75
    # half per sex within each group, as the decoys are drawn
    for group in "ABC":
        genders = [p.traits.gender for p in people if p.group == group]
        assert genders.count("woman") == genders.count("man") == 10


def test_grouped_background_excludes_the_people_under_test() -> None:
    people = synthetic.grouped_people(30, 1, 2)
    background = synthetic.grouped_people(300, 3, 4, exclude=[p.name for p in people])
    assert not {normalize_name(p.name) for p in people} & {
        normalize_name(p.name) for p in background
    }


def test_the_corpus_draws_unnamed_people_by_group_and_names_the_named_ones() -> None:
    named = synthetic.grouped_people(6, 1, 2)
    corpus = synthetic.background_corpus(
        9, 1, 3, seed=4, profiles=synthetic.GROUPS, named=[(p, 2) for p in named]
    )
    assert corpus == synthetic.background_corpus(
        9, 1, 3, seed=4, profiles=synthetic.GROUPS, named=[(p, 2) for p in named]
    )
    people = [r for r in corpus if r.identity is not None]
    assert len(people) == 9 + 12 and sum(r.scene is not None for r in corpus) == 3
    unnamed = [r for r in people if r.identity.name is None]
    assert sorted(r.identity.group for r in unnamed) == ["A"] * 3 + ["B"] * 3 + ["C"] * 3
    for record in people:
        if record.identity.name is None:
            assert not any(p.name in record.caption for p in named)
        else:
            assert record.identity.name + ", a" in record.caption, record.caption
            assert record.identity.traits.gender in record.caption
    # without the new options the corpus is what it always was (the lab's figures)
    assert synthetic.background_corpus(5, 1, 2, seed=4) == synthetic.background_corpus(
        5, 1, 2, seed=4, profiles=(), named=()
    )


def test_a_named_caption_needs_a_name() -> None:
    with pytest.raises(ValueError, match="needs a person with a name"):
        synthetic.describe_photo(synthetic.make_identity(1), 0, named=True)


# --- familiar name parts: namesakes and kinds ---------------------------------------------------


def _people(n: int = 24) -> list[tuple[str, str]]:
    return synthetic.people_rows(synthetic.named_people(n, name_seed=100, face_seed=0))


def test_kinds_are_dealt_evenly_among_members_and_non_members() -> None:
    names = [name for name, _ in _people(26)]
    counts = {name: (INJECT[i % 6] if i < 13 else 0) for i, name in enumerate(names)}
    kinds = controls.deal_part_kinds(counts, seed=3)
    assert kinds == controls.deal_part_kinds(counts, seed=3) != controls.deal_part_kinds(counts, 4)
    for member in (True, False):
        dealt = [kinds[n] for n in names if (counts[n] > 0) == member]
        tally = [dealt.count(kind) for kind in synthetic.NAME_PART_KINDS]
        assert sum(tally) == 13 and max(tally) - min(tally) <= 1, tally


def test_namesakes_share_exactly_the_parts_of_their_kind() -> None:
    people = _people()
    kinds = {name: synthetic.NAME_PART_KINDS[i % 4] for i, (name, _) in enumerate(people)}
    namesakes = synthetic.make_namesakes(people, kinds, seed=9)
    assert namesakes == synthetic.make_namesakes(people, kinds, seed=9)
    assert [n.person.name for n in namesakes] != [
        n.person.name for n in synthetic.make_namesakes(people, kinds, seed=10)
    ]
    per_kind = {"none": 0, "first": 1, "surname": 1, "both": 2}
    sexes = dict(people)
    under_test = {normalize_name(name) for name, _ in people}
    firsts = {normalize_name(synthetic.name_parts(n)[0]) for n, _ in people}
    surnames = {normalize_name(synthetic.name_parts(n)[1]) for n, _ in people}
    for name, kind in kinds.items():
        mine = [n for n in namesakes if n.shares_with == name]
        assert len(mine) == per_kind[kind]
        assert sorted(n.part for n in mine) == sorted({"none": [], "first": ["first"],
                                                       "surname": ["surname"],
                                                       "both": ["first", "surname"]}[kind])
    for namesake in namesakes:
        first, surname = synthetic.name_parts(namesake.person.name)
        shared_first, shared_surname = synthetic.name_parts(namesake.shares_with)
        assert normalize_name(namesake.person.name) not in under_test
        if namesake.part == "first":
            assert first == shared_first and normalize_name(surname) not in surnames
            sex = synthetic.SEX_OF_GENDER[namesake.person.traits.gender]
            assert sex == sexes[namesake.shares_with]
        else:
            assert surname == shared_surname and normalize_name(first) not in firsts
    names = [normalize_name(n.person.name) for n in namesakes]
    assert len(set(names)) == len(names)


def test_part_exposure_counts_other_people_only() -> None:
    table = controls.part_exposure(
        ["Tom Baker", "Ann Lee", "Bob Stone", "Eve Hart"],
        ["Tom Ellis", "Sarah Baker", "Ann Price", "Bob Stone", "Jo Hart", "Tom Baker"],
    ).set_index("name")
    assert table.loc["Tom Baker", "kind"] == "both"  # Tom Ellis and Sarah Baker, not itself
    assert table.loc["Ann Lee", "kind"] == "first"
    assert table.loc["Bob Stone", "kind"] == "none"  # only its own full name
    assert table.loc["Eve Hart", "kind"] == "surname"
    assert list(table.columns) == ["first_familiar", "surname_familiar", "kind"]


def test_part_exposure_takes_one_word_names_of_real_corpora() -> None:
    """LFW names some people with one word ("Thalia"): it may give either part, and a one-word
    name under test has no surname to be familiar."""
    table = controls.part_exposure(
        ["Thalia Baker", "Ann Thalia", "Madonna", "Bob Stone"],
        ["Thalia", "Madonna", "Ann Lee", "Bob"],
    ).set_index("name")
    assert table.loc["Thalia Baker", "kind"] == "first"
    assert table.loc["Ann Thalia", "kind"] == "both"
    assert table.loc["Madonna", "kind"] == "none"  # only its own name
    assert table.loc["Bob Stone", "kind"] == "first"


def _results(kinds: dict[str, str], p_name: dict[str, float], members: set[str]) -> pd.DataFrame:
    names = list(kinds)
    return pd.DataFrame({
        "name": names,
        "truth": pd.array([n in members for n in names], dtype="boolean"),
        "p_name": [p_name[n] for n in names],
        "n_name_null": [999] * len(names),
        "p_text": [0.5] * len(names),
        "n_text_null": [999] * len(names),
        # the paper's decoys: every familiar-part non-member small, the others uniform
        "p_name_paper_null": [0.001 if kinds[n] == "first" else p_name[n] for n in names],
        "n_name_paper_null": [999] * len(names),
    })


def test_part_kind_figures_flag_the_kind_whose_p_values_are_too_small() -> None:
    rng = np.random.default_rng(0)
    kinds, p_name = {}, {}
    for i in range(200):
        kinds[f"Uniform {i}"] = "none"
        p_name[f"Uniform {i}"] = float((1 + rng.integers(1000)) / 1000)
        kinds[f"Familiar {i}"] = "first"
        p_name[f"Familiar {i}"] = 0.03 if i < 60 else 0.5  # 30% at p <= 0.05
    kinds.update({"Member 0": "first", "Member 1": "first"})
    p_name.update({"Member 0": 0.001, "Member 1": 0.2})
    figures = controls.part_kind_figures(
        _results(kinds, p_name, {"Member 0", "Member 1"}), kinds, seed=0
    )
    assert set(figures) == set(synthetic.NAME_PART_KINDS)
    familiar = figures["first"]["name_familiarity"]["non_members"]
    assert familiar["n"] == 200 and familiar["at_0.05"]["share"] == pytest.approx(0.3)
    assert familiar["at_0.05"]["exceeds"] and familiar["fails"]
    assert familiar["at_0.05"]["p_excess"] < 1e-6 and "qq" not in familiar
    uniform = figures["none"]["name_familiarity"]["non_members"]
    assert not uniform["at_0.05"]["exceeds"] and not uniform["at_0.01"]["exceeds"]
    assert uniform["pit"]["p"] > 0.01
    power = figures["first"]["name_familiarity"]["members"]
    assert (power["n"], power["count"], power["share"]) == (2, 1, 0.5)
    assert figures["first"]["n_members"] == 2 and figures["first"]["n_non_members"] == 200
    assert figures["both"]["n_non_members"] == 0
    assert figures["both"]["text_only"]["non_members"]["fails"] is None
    paper = figures["first"]["name_familiarity_paper_null"]["non_members"]
    assert paper["at_0.01"]["share"] == 1.0 and paper["fails"]
    assert not figures["none"]["name_familiarity_paper_null"]["non_members"]["fails"]
    assert "text_only_paper_null" not in figures["first"]  # not in these results
    console = Console(width=300, record=True)
    render_name_parts({"namesakes": 3, "namesake_captions": 40, "kind_rule": "as dealt",
                       "by_kind": figures}, console)
    text = " ".join(console.export_text().split())
    assert "first name familiar │ 200 │ 30% [24%-37%] (too many) /" in text
    assert "name familiarity, paper decoys" in text
    assert "│ 100% [98%-100%] (too many) / 100% [98%-100%] (too" in text  # the paper's decoys
    assert ("both, never together │ 0 │ n/a / n/a │ n/a / n/a │ n/a / n/a │ 0 │ n/a │ n/a │ "
            "n/a") in text


# --- demographic groups: the face test against two kinds of references ---------------------------


def test_nearest_references_keep_the_nearest_candidates() -> None:
    features = np.array([[0.0], [1.0], [2.5], [10.0], [0.2]])
    candidates = ~np.eye(5, dtype=bool)
    candidates[0, 4] = False  # not a candidate for person 0, however near
    chosen = controls.nearest_references(candidates, features, np.array([2, 1, 5, 1, 0]))
    assert np.flatnonzero(chosen[0]).tolist() == [1, 2]
    assert np.flatnonzero(chosen[1]).tolist() == [4]
    assert chosen[2].sum() == 4  # fewer candidates than asked: all of them
    assert np.flatnonzero(chosen[3]).tolist() == [2]
    assert not chosen[4].any()
    assert not (chosen & ~candidates).any()


def test_trait_features_weigh_each_trait_alike() -> None:
    people = synthetic.grouped_people(30, 1, 2)
    features = controls.trait_features([p.traits for p in people])
    assert features.shape == (30, 1 + 3 * 5)
    np.testing.assert_allclose(features.mean(axis=0), 0, atol=1e-9)
    assert features[:, 0].std() == pytest.approx(1.0)  # skin tone: one column
    assert features[:, 1:4].var(axis=0).sum() == pytest.approx(1.0)  # skin colour: three


@pytest.mark.slow  # the session's quick lab
def test_group_face_figures_recompute_the_audits_face_test(quick_lab) -> None:
    """On the session's quick lab, with groups given by skin-tone thirds: the sex-only
    recomputation is the audit's face test exactly, and the trait-matched references are
    as many as each person's group has other same-sex people, mostly from that group."""
    people = synthetic.named_people(24, name_seed=100, face_seed=0)
    tones = np.array([p.traits.skin_tone for p in people])
    thirds = np.searchsorted(np.quantile(tones, [1 / 3, 2 / 3]), tones)
    groups = {p.name: "ABC"[t] for p, t in zip(people, thirds, strict=True)}
    figures = controls.group_face_figures(
        RunFolder(quick_lab / "run"), groups, {p.name: p.traits for p in people}
    )
    assert figures["sex_only_matches_audit"] is True
    assert figures["groups"] == ["A", "B", "C"]
    results = RunFolder(quick_lab / "run").results
    non_members = results[results["truth"] == False]  # noqa: E712
    everyone = figures["references"]["sex_only"]["by_group"]["all"]
    assert everyone["non_members"]["n"] == len(non_members) == 12
    assert everyone["non_members"]["at_0.05"]["count"] == int((non_members["p_face"] <= 0.05)
                                                              .sum())
    assert everyone["members"]["n"] == 12
    sizes = figures["references"]["sex_only"]["n_references"]
    assert sizes["median"] == 11  # every other person of the same sex (12 per sex)
    matched = figures["references"]["trait_matched"]
    sex = {n: s for n, s in zip(results["name"], results["sex"], strict=True)}
    expected = [sum(groups[m] == groups[n] and sex[m] == sex[n] for m in groups) - 1
                for n in groups]
    assert matched["n_references"]["median"] == np.median(expected)
    assert matched["same_group_share"] > figures["references"]["sex_only"]["same_group_share"]
    assert matched["p_floor"] == pytest.approx(1 / (1 + np.median(expected)))
    by_group = matched["by_group"]
    assert sum(by_group[g]["non_members"]["n"] for g in "ABC") == 12
    z = everyone["non_members"]["mean_z"]
    assert z is not None and abs(z) < 3 and everyone["non_members"]["mean_z_se"] > 0
    responses = figures["non_member_response_by_group"]
    assert set(responses) == {"A", "B", "C"} and set(responses["A"]) == {"A", "B", "C"}
    console = Console(width=300, record=True)
    render_groups(figures, console)
    text = " ".join(console.export_text().split())
    assert "│ all │ 12 │" in text and "of 12 │" in text
    assert "sex-only references: median 11 per person (p floor 0.083)" in text
    assert "Non-members' names on each group's faces" in text and "A names: A " in text


def test_the_two_controls_are_run_one_at_a_time(tmp_path) -> None:
    out = tmp_path / "lab"
    with pytest.raises(LabError, match="separate controls"):
        run_lab(out, "quick", familiar_name_parts=True, demographic_groups=True)
    assert not out.exists()


def test_the_face_statistics_need_responses(tmp_path) -> None:
    from test_evaluation import all_photos, write_run

    run = write_run(tmp_path / "run", [all_photos(0, 2), all_photos(1, 2)], [True, False],
                    [5, 0])
    with pytest.raises(ValueError, match="no responses"):
        controls.face_statistics(RunFolder(run))
