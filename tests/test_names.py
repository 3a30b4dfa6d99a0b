"""Candidate names: the paper's sources, seeded sampling, real names never duplicated."""

from __future__ import annotations

import pandas as pd
import pytest

from idia import names
from idia.names import NameSourceError, build_candidates, normalize_name


def test_normalize_folds_accents_case_and_spaces():
    assert normalize_name("Adrianne  León") == normalize_name("adrianne leon")
    assert normalize_name("Conan O'Brien") != normalize_name("Conan OBrien")


def test_default_pool_has_1000_names_per_sex_and_1000_surnames():
    pool = names.default_pool()
    assert len(pool.first_names["f"]) == len(pool.first_names["m"]) == 1000
    assert len(pool.surnames) == 1000
    assert pool.surnames[:3] == ("Smith", "Johnson", "Williams")
    assert pool.first_names["m"][0] == "John" and pool.first_names["f"][0] == "Mary"


def test_candidates_hold_real_names_first_then_seeded_decoys():
    real = ["Adrianne León", "Lin-Manuel Miranda", "Conan O'Brien"]
    a = build_candidates(real, total=1000, seed=7)
    b = build_candidates(real, total=1000, seed=7)
    c = build_candidates(real, total=1000, seed=8)
    assert len(a) == 1000 and a.n_real == 3 and a.real_names == tuple(real)
    assert a.names == b.names
    assert a.names != c.names
    keys = [normalize_name(n) for n in a.names]
    assert len(set(keys)) == 1000, "no name appears twice"
    assert a.index_of("adrianne leon") == 0


def test_decoys_are_split_equally_between_sexes():
    pool = names.default_pool()
    decoys = names.sample_decoys(200, pool, seed=3)
    female = set(pool.first_names["f"])
    male = set(pool.first_names["m"])
    only_f = sum(d.split()[0] in female - male for d in decoys)
    only_m = sum(d.split()[0] in male - female for d in decoys)
    # unisex first names can fall either way; the rest split close to 100 / 100
    assert abs(only_f - only_m) < 40 and only_f > 60 and only_m > 60


def test_a_decoy_never_equals_a_real_name_even_with_other_accents():
    pool = names.NamePool({"f": ("Zoe", "Ann"), "m": ("Zoë", "Bo")}, ("Smith", "Lee"), "tiny")
    cands = build_candidates(["ZOE SMITH", "Ann Lee"], total=5, seed=0, pool=pool)
    keys = [normalize_name(n) for n in cands.names]
    assert len(set(keys)) == 5
    assert keys.count("zoe smith") == 1


def test_duplicate_real_names_count_once_and_too_many_real_names_fail():
    cands = build_candidates(["Jane Doe", "jane  doe", "Jane_Doe"], total=10, seed=0)
    assert cands.n_real == 1
    with pytest.raises(NameSourceError, match="raise --num-names"):
        build_candidates(["A B", "C D", "E F"], total=2)


def test_an_odd_decoy_count_below_two_draws_no_more_names_than_asked():
    """One decoy once left the other sex's draw unbounded: a million names (idia check
    --num-names 2 ran for minutes in 9 GB)."""
    pool = names.default_pool()
    assert len(names.sample_decoys(1, pool, seed=0)) == 1
    assert names.sample_decoys(0, pool, seed=0) == []


def test_candidates_hold_at_least_two_decoys_or_say_how_many_to_ask_for():
    """The tests standardise a real name by its decoys' spread: two at the least."""
    assert len(build_candidates(["Jane Doe"], total=3, seed=0)) == 3
    for real, total in ((["Jane Doe"], 2), (["Jane Doe", "Max Mustermann"], 3)):
        with pytest.raises(NameSourceError, match=f"to at least {len(real) + 2}$"):
            build_candidates(real, total=total)


def test_user_names_file(tmp_path):
    path = tmp_path / "decoys.txt"
    path.write_text("# my names\nAnna Berg\nBo Chen\n\nCara Diaz\nJane Doe\n")
    decoys = names.read_names_file(path)
    cands = build_candidates(["Jane Doe"], total=4, seed=1, decoys=decoys)
    assert sorted(cands.names[1:]) == ["Anna Berg", "Bo Chen", "Cara Diaz"]
    with pytest.raises(NameSourceError, match="usable names"):
        build_candidates(["Jane Doe"], total=10, decoys=decoys)
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(NameSourceError, match="empty"):
        names.read_names_file(tmp_path / "empty.txt")


def test_hadley_baby_names_format(tmp_path):
    path = tmp_path / "baby-names.csv"
    path.write_text(
        '"year","name","percent","sex"\n1880,"John",0.081541,"boy"\n1880,"Mary",0.072381,"girl"\n'
        '1880,"Anna",0.026678,"girl"\n1881,"John",0.080511,"boy"\n1881,"Linda",0.09,"girl"\n'
    )
    first = names.read_baby_names_csv(path)
    assert first["m"] == ("John",)
    assert first["f"] == ("Linda", "Mary", "Anna")  # sorted by share


def test_first_names_reproduce_the_papers_list(shared_data):
    reference = pd.read_csv(shared_data / "names" / "ssa_first_names_top1000_by_sex.csv")
    pool = names.default_pool()
    for sex in ("f", "m"):
        expected = set(reference.loc[reference["sex"] == sex, "first_name"])
        overlap = len(expected & set(pool.first_names[sex]))
        assert overlap >= 990, f"{sex}: only {overlap}/1000 names match the paper's list"


def test_census_surname_file_and_embedded_surnames(shared_data):
    census = names.read_census_surnames(shared_data / "names" / "census2010_surnames_top1000.csv")
    assert len(census) == 1000
    assert census[:2] == ("Smith", "Johnson") and census[-1] == "Archer"
    overlap = len(set(census) & set(names.default_pool().surnames))
    assert overlap >= 940, "faker's Census surnames should be close to the 2010 list"
    pool = names.NamePool(names.default_pool().first_names, census, "census-2010")
    assert len(build_candidates(["Jane Doe"], 100, seed=0, pool=pool)) == 100
