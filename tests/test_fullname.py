"""The full-name null's decoys: kinds as promised, parts matched on familiarity, the real name
never a decoy, determinism, and 'not tested' rather than unlike names."""

from __future__ import annotations

import numpy as np
import pytest

from idia.fullname import (
    DEFAULT_DECOYS,
    FULL_NAME_NULL,
    NOT_TESTED,
    FullNameDecoys,
    NoComparableDecoys,
    PartPools,
    familiarity_from_encoder,
    full_name_decoys,
    match_parts,
    part_familiarity,
    part_shape,
    people_part_pools,
    union_candidates,
)
from idia.nameparts import fold, parse_name

GIVEN_F = tuple(f"Anna{i:03d}".replace("0", "o").title() for i in range(300))
GIVEN_M = tuple(f"Bert{i:03d}".replace("0", "o").title() for i in range(300))
FAMILY = tuple(f"Smit{i:03d}".replace("0", "o").title() for i in range(400))
POOLS = PartPools("XX", {"f": GIVEN_F, "m": GIVEN_M}, FAMILY, "test pools")


def numbered(part: str) -> float:
    """A familiarity that is the part's number in the pool (the real parts sit mid-pool)."""
    digits = "".join(ch for ch in part.lower().replace("o", "0") if ch.isdigit())
    return float(digits) if digits else 150.5


def familiarity(parts, kind):
    return np.array([numbered(p) for p in parts])


def decoys(text="Bert Smit", **kwargs) -> FullNameDecoys:
    options = {"sex": "m", "seed": 0} | kwargs
    result = full_name_decoys(parse_name(text), POOLS, familiarity, **options)
    assert isinstance(result, FullNameDecoys), result
    return result


def test_three_kinds_as_promised_and_the_real_name_is_never_a_decoy():
    result = decoys()
    counts = result.counts()
    assert counts == {"given_kept": 200, "family_kept": 200, "recombined": DEFAULT_DECOYS - 400}
    assert len(result) == DEFAULT_DECOYS and len(set(map(fold, result.names))) == len(result)
    assert fold("Bert Smit") not in set(map(fold, result.names))
    for name, kind, given, family in zip(result.names, result.kinds, result.given_parts,
                                         result.family_parts, strict=True):
        assert name == f"{given} {family}"
        assert (given == "Bert") == (kind == "given_kept")
        assert (family == "Smit") == (kind == "family_kept")
        if kind != "given_kept":
            assert given in GIVEN_M, "other given names have the real name's sex"
    assert result.null == FULL_NAME_NULL and result.tested


def test_matching_takes_the_nearest_parts_on_both_sides():
    result = decoys()  # the real parts score 150.5: the 100 just below and just above
    kept = {numbered(f) for f, k in zip(result.family_parts, result.kinds, strict=True)
            if k == "given_kept"}
    assert kept == set(map(float, range(51, 251)))
    family = result.matches[1]
    assert (family.per_side, family.low, family.high, family.familiarity) == (100, 51, 250, 150.5)
    values = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 4.0, 6.0])
    assert sorted(values[match_parts(4.5, values, per_side=2, min_per_side=1)]) == [3, 4, 5, 6]
    # One side short: both sides shrink alike; shorter than the minimum: no match.
    assert sorted(values[match_parts(8.0, values, per_side=3, min_per_side=1)]) == [7, 9]
    assert match_parts(9.5, values, per_side=3, min_per_side=1) is None


def test_a_part_more_familiar_than_its_pool_is_held_fixed_instead():
    def famous_surname(parts, kind):
        values = familiarity(parts, kind)
        return np.where([fold(p) == "smit" for p in parts], 10_000.0, values)

    result = full_name_decoys(parse_name("Bert Smit"), POOLS, famous_surname, sex="m", seed=0)
    assert result.counts() == {"given_kept": 0, "family_kept": 200, "recombined": 0}
    assert "too few on one side" in result.matches[1].reason


def test_an_unknown_sex_or_initials_keep_the_given_name():
    unknown = decoys(sex=None)
    assert unknown.counts() == {"given_kept": 200, "family_kept": 0, "recombined": 0}
    assert unknown.matches[0].reason == "sex unknown"
    initials = decoys("B. K. Smit")
    assert set(initials.kinds) == {"given_kept"}
    assert all(name.startswith("B. K. ") for name in initials.names)


def test_the_seed_decides_the_recombinations_and_nothing_else():
    a, b, c = decoys(seed=1), decoys(seed=1), decoys(seed=2)
    assert a.names == b.names
    assert a.names != c.names
    assert {n for n, k in zip(a.names, a.kinds, strict=True) if k != "recombined"} == {
        n for n, k in zip(c.names, c.kinds, strict=True) if k != "recombined"
    }


def test_sizes_that_cannot_hold_both_kept_kinds_are_refused():
    with pytest.raises(ValueError, match="total >= 4 x per_side"):
        full_name_decoys(parse_name("Bert Smit"), POOLS, familiarity, sex="m", seed=0,
                         total=300, per_side=100)


def test_excluded_names_are_never_decoys():
    banned = [f"{GIVEN_M[151]} {FAMILY[149]}", f"Bert {FAMILY[152]}"]
    result = decoys(exclude=banned)
    assert not {fold(n) for n in banned} & {fold(n) for n in result.names}


def test_names_without_comparable_decoys_are_not_tested():
    mononym = full_name_decoys(parse_name("Madonna"), POOLS, familiarity, sex="f", seed=0)
    assert isinstance(mononym, NoComparableDecoys) and mononym.code == "mononym"
    assert mononym.message.startswith(NOT_TESTED) and not mononym.tested
    small = PartPools("XX", {"f": GIVEN_F[:15], "m": GIVEN_M[:15]}, FAMILY[:15], "tiny")
    few = full_name_decoys(parse_name("Bert Smit"), small, familiarity, sex="m", seed=0)
    assert isinstance(few, NoComparableDecoys) and few.code == "too_few_decoys"
    assert "0 comparable decoys" in few.reason and "15 Latin family names" in few.reason
    # A script the pools do not hold: never Latin parts in a Cyrillic name.
    cyrillic = full_name_decoys(parse_name("Берт Смит"), POOLS, familiarity, sex="m", seed=0)
    assert isinstance(cyrillic, NoComparableDecoys)


def test_decoy_parts_have_the_real_parts_shape():
    assert part_shape("van Persie", "family") == (1, True)
    assert part_shape("al-Assad", "family") == (1, True)
    assert part_shape("García Márquez", "family") == (2, False)
    assert part_shape("Jean-Pierre", "given") == (1, False)
    assert part_shape("欧阳", "family") == (2, False) != part_shape("习", "family")
    pools = PartPools("NL", {"m": GIVEN_M}, FAMILY + tuple(f"De {f}" for f in FAMILY), "t")
    result = full_name_decoys(parse_name("Bert van Smit"), pools, familiarity, sex="m", seed=0)
    for name, family, kind in zip(result.names, result.family_parts, result.kinds, strict=True):
        if kind == "family_kept":
            assert name.endswith(" van Smit")
        else:
            assert family.startswith("De ") and " de " in name, "the real name's particle case"


def test_part_familiarity_is_the_distance_to_the_nearest_reference_parts():
    rng = np.random.default_rng(0)
    crowd = rng.normal(size=(2, 50, 16)) + 4.0  # two templates, 50 parts close together
    crowd /= np.linalg.norm(crowd, axis=-1, keepdims=True)
    outlier = rng.normal(size=(2, 1, 16))
    outlier /= np.linalg.norm(outlier, axis=-1, keepdims=True)
    queries = np.concatenate([crowd[:, :1], outlier], axis=1)
    exclude = np.zeros((2, 50), bool)
    exclude[0, 0] = True  # the first query is the first reference part: not its own neighbour
    values = part_familiarity(queries, crowd, k=5, exclude=exclude)
    assert values[1] > values[0] > 0
    with_self = part_familiarity(queries, crowd, k=5)
    assert with_self[0] < values[0]


def test_familiarity_from_an_encoder_encodes_each_prompt_once():
    calls: list[str] = []

    def encode(prompts):
        calls.extend(prompts)
        out = np.stack([np.random.default_rng(abs(hash(p)) % 2**32).normal(size=8)
                        for p in prompts])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    score = familiarity_from_encoder(encode, ["a photo of {}.", "{}"], k=3)
    first = score(["Anna", "Berta", "Carla", "Dora", "Emma"], "given")
    again = score(["Anna", "Berta", "Carla", "Dora", "Emma"], "given")
    assert np.allclose(first, again) and len(calls) == 10
    referenced = familiarity_from_encoder(encode, ["{}"], {"given": ["Anna", "Berta", "Carla"]},
                                          k=2)
    alone, together = referenced(["Dora"], "given"), referenced(["Dora", "Emma"], "given")
    assert alone[0] == pytest.approx(together[0]), "against a reference, a part has one value"


def test_a_pools_familiarity_is_computed_once_and_does_not_depend_on_the_name(monkeypatch):
    def encode(prompts):
        out = np.stack([np.random.default_rng(abs(hash(p)) % 2**32).normal(size=8)
                        for p in prompts])
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    import idia.fullname as fullname

    rows: list[int] = []
    real = fullname.part_familiarity

    def counted(queries, reference, k=10, exclude=None):
        rows.append(queries.shape[1])
        return real(queries, reference, k, exclude)

    monkeypatch.setattr(fullname, "part_familiarity", counted)
    score = familiarity_from_encoder(encode, ["{}"], k=2)
    pool = ["Berta", "Carla", "Dora", "Emma", "Anna"]
    first = score(["Anna", *pool], "given")
    second = score(["Zelda", *pool], "given")
    assert np.allclose(first[1:], second[1:]), "the pool's values do not depend on the name"
    assert rows == [5, 1, 1], "the pool is compared with itself once, then one row per name"
    assert first[0] == pytest.approx(first[5]), "a part in its own pool is never its neighbour"


def test_an_audit_recombines_its_own_people_in_one_shared_grid():
    people = [parse_name(f"{g} {f}") for g, f in zip(GIVEN_F[:60] + GIVEN_M[:60],
                                                      FAMILY[:120], strict=True)]
    sexes = ["f"] * 60 + ["m"] * 60
    pools = people_part_pools(people, sexes)
    assert len(pools.given["f"]) == 60 and len(pools.family) == 120
    real = [p.text for p in people]
    results = [
        full_name_decoys(p, pools, familiarity, sex=s, seed=0, per_side=20, min_per_side=5,
                         exclude=real)
        for p, s in zip(people, sexes, strict=True)
    ]
    # People whose parts are the least or most familiar of all cannot be matched.
    untested = [r for r in results if not r.tested]
    assert 0 < len(untested) <= 20 and all("one side" in r.reason for r in untested)
    names, positions = union_candidates(real, results)
    assert names[:120] == tuple(real)
    assert len(names) - 120 <= 120 * 60, "at most the grid of given x family names"
    for result, where in zip(results, positions, strict=True):
        if where is None:
            assert not result.tested
            continue
        assert [names[i] for i in where] == list(result.names)
        assert where.min() >= 120, "no real name is anyone's decoy"
