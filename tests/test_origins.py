"""Decoy pools by origin from names-dataset: the compact table (extracted once per test session
into a temporary folder, conftest.origin_table_dir), origins, sex, pools by script, and
full-name decoys from them."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from idia import origins
from idia.fullname import FullNameDecoys, NoComparableDecoys
from idia.nameparts import NameInputError, fold, parse_name, script_of
from idia.names import default_pool
from idia.origins import (
    OriginTableError,
    UncoveredScriptError,
    decoys_for,
    load_origin_table,
    require_covered_script,
    surname_form,
    table_path,
)

pytestmark = pytest.mark.slow  # the session's first use extracts the table (over a minute)


@pytest.fixture(scope="session")
def table_dir(origin_table_dir):
    load_origin_table(origin_table_dir)
    return origin_table_dir


@pytest.fixture(scope="session")
def table(origin_table):
    return origin_table


def hashed(parts, kind):
    """A familiarity that is a fixed pseudo-random number per part."""
    digest = [hashlib.blake2b(fold(p).encode(), digest_size=4).digest() for p in parts]
    return np.array([int.from_bytes(d, "little") / 2**32 for d in digest])


def parse(text, table):
    return parse_name(text, evidence=table)


def test_the_table_is_extracted_once_per_package_version_and_reused(table_dir, monkeypatch):
    path = table_path(table_dir)
    assert path.is_file() and origins.names_dataset_version() in path.name
    assert path.stat().st_size < 10_000_000
    monkeypatch.setattr(origins, "extract_origin_table", lambda _: pytest.fail("re-extracted"))
    assert load_origin_table(table_dir).version == origins.names_dataset_version()


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("Jan Kowalski", "PL"),
        ("Matti Virtanen", "FI"),
        ("Xi Jinping", "CN"),
        ("Ahmed Hassan", "EG"),
        ("Mohammed bin Salman", "SA"),
        ("Jan de Vries", "NL"),
        ("John Smith", "US"),
        ("Владимир Путин", "RU"),
        ("박지성", "KR"),  # neither part in the package: Hangul pools are Korean only
    ],
)
def test_origins_come_from_where_the_parts_occur(table, text, country):
    found = table.origins(parse(text, table))
    assert found[0].country == country
    assert sum(o.weight for o in found) == pytest.approx(1.0)


def test_a_vietnamese_name_is_from_vietnam_and_unknown_parts_have_no_origin(table):
    assert table.origins(parse_name("Nguyễn Văn An"))[0].country == "VN"
    assert table.origins(parse_name("Zqxw Vbnmk")) == ()


def test_the_real_table_decides_the_orders_the_stub_does(table):
    assert parse("Xi Jinping", table).family == "Xi"
    assert parse("Orbán Viktor", table).order == "family_first"
    assert parse("Viktor Orbán", table).order == "given_first"
    assert parse("Park Ji-sung", table).family == "Park"
    assert parse("Abe Shinzo", table).family == "Abe"
    assert parse("Gabriel García Márquez", table).family == "García Márquez"
    assert parse("Martin Luther King Jr.", table).family == "King"


def test_the_sex_of_a_given_name(table):
    assert table.given_sex("Anna") == "f" and table.given_sex("Jan") == "m"
    assert table.given_sex("Ji-sung") == "m", "found as Jisung"
    assert table.given_sex("Jinping") is None, "used by both sexes"
    assert table.given_sex("Zqxw") is None
    assert table.given_sex("Luella") is None and table.given_sex("Luella", "US") == "f"


def test_us_pools_are_the_labs_pool(table):
    pools = table.pools(parse("John Smith", table), "US", "m")
    lab = default_pool()
    assert pools.given == lab.first_names and pools.family == lab.surnames
    assert pools.source == lab.source


def test_pools_hold_the_origins_names_in_the_real_names_script(table):
    pools = table.pools(parse("Jan Nowak", table), "PL", "m")
    assert {"Nowak", "Kowalski"} <= set(pools.family) and "Kowalska" not in pools.family
    assert "Jan" in pools.given["m"] and "Anna" in pools.given["f"]
    assert len(pools.family) > 500 and len(pools.given["f"]) > 500
    cyrillic = table.pools(parse("Владимир Путин", table), "RU", "m")
    assert {script_of(n) for n in cyrillic.family} == {"Cyrillic"}
    hangul = table.pools(parse_name("박지성"), "KR", "m")
    assert hangul.family[:3] == ("김", "이", "박")


def test_surnames_keep_the_real_surnames_form_where_sexes_differ(table):
    women = table.pools(parse("Anna Kowalska", table), "PL", "f").family
    men = table.pools(parse("Jan Kowalski", table), "PL", "m").family
    assert women and {surname_form(f, "PL") for f in women} == {"f"}
    assert men and {surname_form(f, "PL") for f in men} == {"m"}
    assert surname_form("Иванова", "RU") == "f" and surname_form("Путин", "RU") == "m"
    assert surname_form("Nowak", "PL") is None and surname_form("Kowalska", "US") is None


def test_scripts_the_pools_cover(table):
    covered = table.covered_scripts()
    assert {"Latin", "Cyrillic", "Greek", "Arabic", "Hebrew", "Han", "Hangul"} <= covered
    assert "Thai" not in covered
    with pytest.raises(UncoveredScriptError, match="Thai script") as error:
        require_covered_script(parse_name("ทักษิณ ชินวัตร"), table)
    assert isinstance(error.value, NameInputError)
    require_covered_script(parse_name("Jan Kowalski"), table)


def test_decoys_from_an_origin(table):
    name = parse("Jan Kowalski", table)
    result = decoys_for(name, table, hashed, seed=0)
    assert isinstance(result, FullNameDecoys)
    assert (result.origin, result.sex, len(result)) == ("PL", "m", 2000)
    pools = table.pools(name, "PL", "m")
    assert set(result.family_parts) - {"Kowalski"} <= set(pools.family)
    assert set(result.given_parts) - {"Jan"} <= set(pools.given["m"])
    assert fold("Jan Kowalski") not in {fold(n) for n in result.names}
    assert decoys_for(name, table, hashed, seed=0).names == result.names
    assert decoys_for(name, table, hashed, seed=1).names != result.names


def test_decoys_are_written_in_the_real_names_order_and_script(table):
    chinese = decoys_for(parse("Xi Jinping", table), table, hashed, seed=0)
    assert chinese.tested and chinese.origin == "CN"
    assert all(n == f"{f} {g}" for n, g, f in zip(chinese.names, chinese.given_parts,
                                                  chinese.family_parts, strict=True))
    korean = decoys_for(parse_name("박지성"), table, hashed, seed=0)
    assert korean.tested and all(" " not in n and script_of(n) == "Hangul" for n in korean.names)
    han = decoys_for(parse_name("习近平"), table, hashed, origin="CN", sex="m", seed=0)
    assert han.tested and all(" " not in n and script_of(n) == "Han" for n in han.names)
    kept = [n for n, k in zip(han.names, han.kinds, strict=True) if k == "given_kept"]
    assert kept and all(len(n) == 3 and n.endswith("近平") for n in kept), "习 is one character"
    assert "surnames from idia's list" in han.source
    # Sex unknown: only the ~110 common surnames can vary, too few once matched.
    unknown = decoys_for(parse_name("习近平"), table, hashed, origin="CN", seed=0)
    assert unknown.code == "too_few_decoys" and "sex unknown" in unknown.reason


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Madonna", "mononym"),
        ("Nguyễn Văn An", "uncovered_origin"),
        ("J.R.R. Tolkien", "unknown_origin"),
        ("习近平", "unknown_origin"),
        ("ทักษิณ ชินวัตร", "unknown_origin"),
    ],
)
def test_names_without_comparable_decoys_say_why(table, text, code):
    result = decoys_for(parse(text, table), table, hashed, seed=0)
    assert isinstance(result, NoComparableDecoys) and result.code == code
    assert result.message.startswith("not tested: no comparable decoy names (")


def test_origin_and_sex_overrides(table):
    name = parse("Jan Kowalski", table)
    finnish = decoys_for(name, table, hashed, origin="fi", seed=0)
    assert finnish.origin == "FI" and "Virtanen" in table.pools(name, "FI", "m").family
    women = decoys_for(name, table, hashed, sex="f", seed=0)
    given = {g for g, k in zip(women.given_parts, women.kinds, strict=True) if k != "given_kept"}
    assert given and given <= set(table.pools(name, "PL", "f").given["f"])
    with pytest.raises(OriginTableError, match="unknown origin 'XX'"):
        decoys_for(name, table, hashed, origin="XX")
    with pytest.raises(NameInputError, match="sex must be one of"):
        decoys_for(name, table, hashed, sex="x")
