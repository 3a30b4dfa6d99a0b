"""Name parsing: given and family parts of names from anywhere, written back unchanged, and one
clear error for input that is not a name."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from idia.nameparts import (
    MAX_NAME_LENGTH,
    NameInputError,
    fold,
    is_initials,
    parse_name,
    script_of,
)


class Ranks:
    """PartEvidence from a few words' ranks, copied from names-dataset 3.3.1 (the real table is
    checked on the same names in test_origins.py): country -> rank as a first name ("given")
    or surname ("family")."""

    TABLE = {
        ("xi", "given"): {"CN": 121, "SG": 897, "HK": 1291},
        ("xi", "family"): {"CN": 157, "HK": 676, "SG": 749},
        ("jinping", "given"): {"CN": 1702},
        ("jinping", "family"): {"CN": 4187},
        ("orban", "given"): {"HU": 460},
        ("orban", "family"): {"HU": 128, "BE": 499},
        ("viktor", "given"): {"HU": 55, "SE": 79, "CZ": 121, "RU": 203},
        ("viktor", "family"): {"HU": 132, "DE": 3670, "CZ": 4339},
        ("park", "given"): {"PH": 340, "SG": 1432},
        ("park", "family"): {"KR": 2, "CA": 81, "US": 291, "GB": 376},
        ("jisung", "given"): {"KR": 4613},
        ("garcia", "given"): {"AO": 48, "GT": 244, "MX": 785},
        ("garcia", "family"): {"ES": 1, "US": 1, "MX": 2, "CO": 5},
        ("marquez", "given"): {"MX": 3470},
        ("marquez", "family"): {"UY": 54, "MX": 77, "ES": 94, "US": 129},
        ("gabriel", "given"): {"BR": 8, "MX": 59, "CO": 117},
        ("gabriel", "family"): {"NG": 74, "BR": 75, "MX": 589},
        ("martin", "given"): {"CZ": 2, "DE": 10, "GB": 35, "MX": 41},
        ("martin", "family"): {"FR": 1, "ES": 10, "GB": 21, "US": 42},
        ("luther", "given"): {"AO": 520, "US": 3119},
        ("luther", "family"): {"DE": 1331, "US": 4108},
        ("king", "given"): {"GH": 63, "HK": 97},
        ("king", "family"): {"GB": 34, "US": 59},
        ("andrew", "given"): {"CA": 7, "GB": 9, "US": 33},
        ("lloyd", "given"): {"JM": 46, "GB": 467, "US": 1146},
        ("lloyd", "family"): {"GB": 102, "US": 837},
        ("webber", "family"): {"GB": 639, "US": 2178, "BR": 4318},
        ("wang", "given"): {"CN": 4, "TW": 14},
        ("wang", "family"): {"CN": 1, "TW": 5},
        ("wei", "given"): {"TW": 8, "CN": 10},
        ("wei", "family"): {"CN": 32, "TW": 36},
        ("john", "given"): {"CA": 1, "GB": 3, "US": 5},
        ("smith", "given"): {"US": 2287, "GB": 2317},
        ("smith", "family"): {"GB": 1, "US": 7},
        ("shinzo", "given"): {"JP": 3152},
        ("abe", "given"): {"MY": 297, "US": 1435},
        ("abe", "family"): {"JP": 22},
        ("jose", "given"): {"ES": 1, "MX": 1},
        ("jose", "family"): {"BR": 76, "ES": 200},
        ("luis", "given"): {"ES": 5, "MX": 3},
        ("luis", "family"): {"PT": 125, "ES": 225},
        ("rodriguez", "given"): {"MX": 1193},
        ("rodriguez", "family"): {"ES": 2, "MX": 3},
        ("zapatero", "family"): {"ES": 2981},
        ("田中", "family"): {"JP": 35},
    }

    def ranks(self, part: str, kind: str) -> dict[str, int]:
        return dict(self.TABLE.get((fold(part), kind), {}))


EVIDENCE = Ranks()

# name -> (given, middle, family, order, script, particles, flags that must be set)
CASES = {
    "Robin van Persie": ("Robin", (), "van Persie", "given_first", "Latin", ("van",),
                         {"particle"}),
    "Ludwig van Beethoven": ("Ludwig", (), "van Beethoven", "given_first", "Latin", ("van",),
                             {"particle"}),
    "Ursula von der Leyen": ("Ursula", (), "von der Leyen", "given_first", "Latin",
                             ("von", "der"), {"particle"}),
    "Charles de Gaulle": ("Charles", (), "de Gaulle", "given_first", "Latin", ("de",),
                          {"particle"}),
    "Mohammed bin Salman": ("Mohammed", (), "bin Salman", "given_first", "Latin", ("bin",),
                            {"particle", "patronymic"}),
    "Bashar al-Assad": ("Bashar", (), "al-Assad", "given_first", "Latin", ("al-",),
                        {"particle"}),
    "Gabriel García Márquez": ("Gabriel", (), "García Márquez", "given_first", "Latin", (),
                               {"double_surname", "diacritics"}),
    "José Luis Rodríguez Zapatero": ("José", ("Luis",), "Rodríguez Zapatero", "given_first",
                                     "Latin", (), {"double_surname"}),
    "Jean-Pierre Jeunet": ("Jean-Pierre", (), "Jeunet", "given_first", "Latin", (),
                           {"hyphenated_given"}),
    "Andrew Lloyd-Webber": ("Andrew", (), "Lloyd-Webber", "given_first", "Latin", (),
                            {"hyphenated_family"}),
    # Unhyphenated, "Lloyd" reads as a middle name (see the family= override below).
    "Andrew Lloyd Webber": ("Andrew", ("Lloyd",), "Webber", "given_first", "Latin", (), set()),
    "J. K. Rowling": ("J.", ("K.",), "Rowling", "given_first", "Latin", (), {"initials"}),
    "J.R.R. Tolkien": ("J.R.R.", (), "Tolkien", "given_first", "Latin", (), {"initials"}),
    "Martin Luther King Jr.": ("Martin", ("Luther",), "King", "given_first", "Latin", (),
                               {"suffix"}),
    "Sir Elton John": ("Elton", (), "John", "given_first", "Latin", (), {"title"}),
    "Xi Jinping": ("Jinping", (), "Xi", "family_first", "Latin", (), {"order:evidence"}),
    "Wang Wei": ("Wei", (), "Wang", "family_first", "Latin", (), {"order:evidence"}),
    "习近平": ("近平", (), "习", "family_first", "Han", (),
            {"split:single_character_surname", "order:script"}),
    "欧阳娜娜": ("娜娜", (), "欧阳", "family_first", "Han", (),
             {"split:compound_surname", "order:script"}),
    "田中角栄": ("角栄", (), "田中", "family_first", "Han", (), {"split:japanese_surname"}),
    "木村カエラ": ("カエラ", (), "木村", "family_first", "Japanese", (),
              {"split:script_boundary"}),
    "Park Ji-sung": ("Ji-sung", (), "Park", "family_first", "Latin", (),
                     {"order:evidence", "hyphenated_given"}),
    "박지성": ("지성", (), "박", "family_first", "Hangul", (),
            {"split:single_character_surname"}),
    "남궁민수": ("민수", (), "남궁", "family_first", "Hangul", (), {"split:compound_surname"}),
    "Nguyễn Văn An": ("An", ("Văn",), "Nguyễn", "family_first", "Latin", (),
                      {"order:vietnamese", "diacritics"}),
    "Nguyen Van An": ("An", ("Van",), "Nguyen", "family_first", "Latin", (),
                      {"order:vietnamese"}),
    "Orbán Viktor": ("Viktor", (), "Orbán", "family_first", "Latin", (), {"order:evidence"}),
    "Viktor Orbán": ("Viktor", (), "Orbán", "given_first", "Latin", (), {"order:evidence"}),
    "Shinzo Abe": ("Shinzo", (), "Abe", "given_first", "Latin", (), {"order:evidence"}),
    "Abe Shinzo": ("Shinzo", (), "Abe", "family_first", "Latin", (), {"order:evidence"}),
    "Martin Smith": ("Martin", (), "Smith", "given_first", "Latin", (), {"order:evidence"}),
    "Владимир Путин": ("Владимир", (), "Путин", "given_first", "Cyrillic", (), set()),
    "Путин Владимир Владимирович": ("Владимир", ("Владимирович",), "Путин", "family_first",
                                    "Cyrillic", (), {"order:patronymic"}),
    "Αλέξης Τσίπρας": ("Αλέξης", (), "Τσίπρας", "given_first", "Greek", (), set()),
    "محمد بن سلمان": ("محمد", (), "بن سلمان", "given_first", "Arabic", ("بن",),
                      {"patronymic"}),
    "דוד בן-גוריון": ("דוד", (), "בן-גוריון", "given_first", "Hebrew", ("בן-",),
                      {"particle"}),
    "नरेंद्र मोदी": ("नरेंद्र", (), "मोदी", "given_first", "Devanagari", (), set()),
    "ジョン・スミス": ("ジョン", (), "スミス", "given_first", "Kana", (), {"order:foreign"}),
    "Rowling, J. K.": ("J.", ("K.",), "Rowling", "family_first", "Latin", (),
                       {"comma", "initials"}),
    "Madonna": ("Madonna", (), "", "given_first", "Latin", (), {"mononym"}),
    "Dr. Dre": ("Dre", (), "", "given_first", "Latin", (), {"mononym", "title"}),
}


@pytest.mark.parametrize("text", list(CASES))
def test_every_form_parses_as_expected(text):
    given_name, middle, family, order, script, particles, flags = CASES[text]
    parsed = parse_name(text, evidence=EVIDENCE)
    assert (parsed.given, parsed.middle, parsed.family) == (given_name, middle, family)
    assert (parsed.order, parsed.script, parsed.particles) == (order, script, particles)
    assert flags <= set(parsed.flags), parsed.flags
    assert parsed.with_parts(parsed.given, parsed.family) == text
    assert parsed.is_mononym == (family == "")


def test_without_evidence_alphabetic_names_are_read_given_name_first():
    parsed = parse_name("Xi Jinping")
    assert (parsed.given, parsed.family, parsed.order) == ("Xi", "Jinping", "given_first")
    assert "order:default" in parsed.flags
    assert "double_surname" not in parse_name("Gabriel García Márquez").flags


def test_family_first_needs_a_country_that_writes_names_so():
    # Martin ranks first among French surnames and Smith is a first name somewhere, but
    # France writes the given name first: the evidence cannot turn the order.
    assert parse_name("Martin Smith", evidence=EVIDENCE).order == "given_first"
    assert parse_name("John Smith", evidence=EVIDENCE).order == "given_first"


def test_overrides_win_over_the_rules():
    forced = parse_name("Xi Jinping", order="family_first")
    assert (forced.given, forced.family) == ("Jinping", "Xi")
    assert "order:override" in forced.flags
    webber = parse_name("Andrew Lloyd Webber", family="Lloyd Webber")
    assert (webber.given, webber.middle, webber.family) == ("Andrew", (), "Lloyd Webber")
    assert "family_override" in webber.flags
    han = parse_name("司马相如", family="司马")
    assert (han.family, han.given, han.separator) == ("司马", "相如", "")
    with pytest.raises(NameInputError, match="neither the first nor the last"):
        parse_name("Andrew Lloyd Webber", family="Lloyd")
    with pytest.raises(NameInputError, match="order must be one of"):
        parse_name("Jane Doe", order="last_first")


def test_decoys_are_written_like_the_real_name():
    assert parse_name("Xi Jinping", evidence=EVIDENCE).with_parts("Wei", "Wang") == "Wang Wei"
    assert parse_name("习近平").with_parts("小明", "王") == "王小明"
    assert parse_name("Nguyễn Văn An").with_parts("Bình", "Trần") == "Trần Văn Bình"
    assert parse_name("Martin Luther King, Jr.").with_parts("John", "Smith") == (
        "John Luther Smith, Jr."
    )
    assert parse_name("Sir Elton John").with_parts("Paul", "Young") == "Sir Paul Young"
    # A particle takes the real name's case ("De Jong" in the pool, "de Jong" beside "van").
    assert parse_name("Robin van Persie").with_parts("Jan", "De Jong") == "Jan de Jong"
    assert parse_name("Rowling, J. K.").with_parts("A.", "Smith") == "Smith, A. K."
    assert parse_name("Dr. 박지성").with_parts("민수", "김") == "Dr. 김민수"


def test_family_core_drops_particles():
    assert parse_name("Ursula von der Leyen").family_core == "Leyen"
    assert parse_name("Bashar al-Assad").family_core == "Assad"
    assert parse_name("Jan Kowalski").family_core == "Kowalski"


def test_diacritics_are_kept_for_display_and_folded_for_lookup():
    parsed = parse_name("  Gabriel   García  Márquez ")
    assert parsed.text == "Gabriel García Márquez"
    assert fold("García Márquez") == fold("garcia marquez") == "garcia marquez"
    assert fold("Orbán") == fold("ORBAN")
    assert fold("O’Brien") == fold("O'Brien")
    # Marks that change a word in other scripts stay: kana voicing, Hangul syllables.
    assert fold("が") != fold("か")
    assert fold("박지성") == "박지성"


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("Jane Doe", "Latin"),
        ("Владимир", "Cyrillic"),
        ("Αλέξης", "Greek"),
        ("محمد", "Arabic"),
        ("דוד", "Hebrew"),
        ("नरेंद्र", "Devanagari"),
        ("习近平", "Han"),
        ("박지성", "Hangul"),
        ("スミス", "Kana"),
        ("木村カエラ", "Japanese"),
        ("ทักษิณ", "Thai"),
        ("Ivan Иванов", "Mixed"),
    ],
)
def test_scripts_are_detected(text, script):
    assert script_of(text) == script


def test_a_mixed_script_name_is_flagged():
    assert "mixed_scripts" in parse_name("Ivan Иванов").flags


def test_initials_are_capital_letters_not_one_character_names():
    assert is_initials("J.") and is_initials("J.R.R.") and is_initials("K")
    assert not is_initials("习") and not is_initials("Jo") and not is_initials("j")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the name is empty"),
        ("   \t ", "the name is empty"),
        ("!!! --- ???", "has no letters"),
        ("12345", "has no letters"),
        ("a" * 10_000, f"10,000 characters; at most {MAX_NAME_LENGTH}"),
        ("Jane\nDoe", r"control character \(U\+000A at position 4\)"),
        ("Jane\x00Doe", r"control character \(U\+0000"),
        ("Jane, Doe, Smith", "one comma"),
        ("Jane , Doe", "a comma must follow a word"),
    ],
)
def test_bad_input_raises_one_clear_error(text, message):
    with pytest.raises(NameInputError, match=message):
        parse_name(text)


def test_the_length_limit_is_inclusive():
    assert parse_name("A" + "a" * (MAX_NAME_LENGTH - 1)).given
    with pytest.raises(NameInputError, match="201 characters"):
        parse_name("A" + "a" * MAX_NAME_LENGTH)


def test_a_name_must_be_text():
    with pytest.raises(NameInputError, match="must be text"):
        parse_name(None)  # type: ignore[arg-type]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("AbcJ .,-'’éß习近欧阳박지성カエ・·Вла محمد7\u0301")),
               min_size=1, max_size=30))
def test_any_text_is_parsed_and_written_back_or_refused_with_one_error(text):
    try:
        parsed = parse_name(text)
    except NameInputError:
        return
    assert parsed.with_parts(parsed.given, parsed.family) == parsed.text
