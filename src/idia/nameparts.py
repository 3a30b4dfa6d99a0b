"""A person's full name split into its given and family parts, for names from anywhere.

The full-name null (idia.fullname) swaps a name's parts for other parts, so it must know which
word is the given name and which the family name, and write a decoy the way the real name is
written. The rules, in the order they apply:

- **Input.** One line of text, at most :data:`MAX_NAME_LENGTH` characters, with at least one
  letter; NFC form, runs of spaces collapsed. Anything else raises :class:`NameInputError`.
- **Script** of the letters (Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Han, Hangul,
  Kana, Thai, ...); Han mixed with Kana is "Japanese"; any other mix is "Mixed".
- **Titles** before the name (Dr., Sir, ...) and **suffixes** after it (Jr., III, ...) are kept
  apart, and kept in every decoy.
- **Han, Hangul and Japanese** names are family name first. Written without spaces they are
  split after a known two-character surname (欧阳, 司马, 남궁, ...), after a Japanese surname
  the evidence knows, at the boundary between Han and Kana, or else after the first character.
- **Vietnamese** names (Vietnamese letters, or a common family name then Van or Thi) are
  family name first, the given name last (Nguyễn Văn An).
- **Latin and other alphabetic scripts**: the given name first, unless the evidence (ranks of
  each word as a first name and as a surname in one country, :class:`PartEvidence`) makes
  family-first :data:`FAMILY_FIRST_MARGIN` times as likely in a country that writes names so
  (Xi Jinping, Orbán Viktor), or a patronymic ends a three-word name (Путин Владимир
  Владимирович). A particle (van, de la, bin, al-, ...) after the first word starts the family
  name; in a Spanish- or Portuguese-speaking origin a middle word that is more a surname than
  a first name joins the family name (García Márquez); other middle words are middle names.
  "Family, Given" (one comma) is read so.
- **Initials** (J. K., J.R.R.) are given names; a single word is a mononym.
- ``order=`` and ``family=`` override what the rules decide.

Diacritics are kept for display and folded for lookup (:func:`fold`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal, Protocol

from idia.errors import IdiaError

PartKind = Literal["given", "family"]
Order = Literal["given_first", "family_first"]
ORDERS: tuple[Order, ...] = ("given_first", "family_first")

MAX_NAME_LENGTH = 200
# Family-first must be this many times as likely as given-first (the product of the words'
# inverse ranks in one country) to overturn the alphabetic scripts' default, and only in a
# country that writes names family name first.
FAMILY_FIRST_MARGIN = 1.5
UNKNOWN_RANK = 10_000  # the rank a word unknown in a role counts as

SURNAME_FIRST_SCRIPTS = frozenset({"Han", "Hangul", "Japanese", "Kana"})
UNSPACED_SCRIPTS = SURNAME_FIRST_SCRIPTS  # written without spaces between words
# Letters whose accents are spelling variants a user may omit; other scripts keep their marks
# when folded (a Devanagari virama or a kana voicing mark changes the word).
_FOLDED_SCRIPTS = frozenset({"Latin", "Greek", "Cyrillic", "Arabic", "Hebrew"})
_SCRIPT_WORDS = {
    "CJK": "Han",
    "IDEOGRAPHIC": "Han",
    "HIRAGANA": "Kana",
    "KATAKANA": "Kana",
    "KATAKANA-HIRAGANA": "Kana",
    "HANGUL": "Hangul",
}


def word_list(text: str) -> tuple[str, ...]:
    """The words of a text (for the word lists below)."""
    return tuple(text.split())


TITLES = frozenset(
    word_list(
        "dr mr mrs ms mx miss sir dame lord lady prof professor rev reverend hon sen gov pres "
        "mme mlle herr frau sheikh shaikh"
    )
)
SUFFIXES = frozenset(word_list("jr sr ii iii iv phd md esq"))
# Words that start a family name when they follow the first word ("van der", "de la" chain).
PARTICLES = frozenset(
    word_list(
        "van von de del della delle degli dei der den di da das do dos du des le la lo ter ten "
        "zu und y bin binti bint ibn ben bat ap af al el "
        "بن ابن بنت آل בן בת"  # bin, ibn, bint, Al (Arabic); ben, bat (Hebrew)
    )
)
# Patronymic particles: the "family" they start is a father's name (nasab).
PATRONYMIC_PARTICLES = frozenset(word_list("bin binti bint ibn ben bat بن ابن بنت בן בת"))
# Particles written onto the family word: al-Assad, d'Estaing, ad-Din.
ATTACHED_PARTICLES = (
    "al-", "el-", "ad-", "ar-", "as-", "ash-", "at-", "az-", "ben-", "d'", "l'", "בן-"
)
# Two-character family names of Chinese (simplified and traditional) and Korean.
COMPOUND_SURNAMES = frozenset(
    word_list(
        "欧阳 歐陽 司马 司馬 诸葛 諸葛 上官 东方 東方 皇甫 尉迟 尉遲 公孙 "
        "公孫 慕容 令狐 长孙 長孫 宇文 司徒 夏侯 轩辕 軒轅 端木 独孤 獨孤 "
        "南宫 南宮 西门 西門 澹台 呼延 公冶 太史 申屠 闻人 聞人 赫连 赫連 "
        "钟离 鍾離 万俟 萬俟 濮阳 濮陽 淳于 单于 單于 拓跋 百里 东郭 東郭 "
        "第五 张简 張簡 范姜 남궁 황보 제갈 선우 독고 사공 서문 동방"
    )
)
# Countries where two family names are the rule (García Márquez, Rodríguez Zapatero).
DOUBLE_SURNAME_COUNTRIES = frozenset(
    word_list("ES MX CO AR CL PE VE BO EC UY PY GT CR PA HN SV NI DO PR CU PT BR")
)
FAMILY_FIRST_COUNTRIES = frozenset(word_list("CN TW HK MO SG KR KP JP HU VN KH"))
VIETNAMESE_SURNAMES = frozenset(
    word_list("nguyen tran le pham hoang huynh phan vu vo dang bui do ho ngo duong ly")
)
PATRONYMIC_ENDINGS = ("ovich", "evich", "ovna", "evna", "ович", "евич", "овна", "евна", "ична")
_VIETNAMESE_LETTERS = frozenset("ơưƠƯ") | {chr(c) for c in range(0x1EA0, 0x1EFA)}
_INITIALS = re.compile(r"^(?:[^\W\d_]\.?|(?:[^\W\d_]\.){2,}[^\W\d_]?)$")
_SEPARATORS = ("・", "·")  # Japanese and Chinese name dots, between words of a foreign name


class NameInputError(IdiaError, ValueError):
    """A name that cannot be parsed; the message says what to change."""


class PartEvidence(Protocol):
    """Where a word is used as a first name or as a surname (idia.origins.OriginTable)."""

    def ranks(self, part: str, kind: PartKind) -> Mapping[str, int]:
        """Country code -> the word's rank among that country's first names (``kind``
        "given") or surnames ("family"); empty when the word is unknown."""
        ...


Role = Literal["title", "given", "middle", "family", "suffix", ","]


@dataclass(frozen=True)
class ParsedName:
    """A full name in parts; ``flags`` say what was decided, ``notes`` why, in words.

    ``family`` includes its particles ("van Persie"); ``particles`` lists them. ``layout`` is
    the order the parts are written in ("," attaches a comma), ``separator`` what stands
    between them ("" for Han or Hangul written without spaces).
    """

    text: str
    given: str
    family: str
    order: Order
    script: str
    middle: tuple[str, ...] = ()
    particles: tuple[str, ...] = ()
    title: str = ""
    suffix: str = ""
    separator: str = " "
    layout: tuple[Role, ...] = ("given", "family")
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return fold(self.text)

    @property
    def is_mononym(self) -> bool:
        return not self.family

    @property
    def family_core(self) -> str:
        """The family name without its particles ("Persie" of "van Persie")."""
        words = self.family.split()
        core = words[len(self.particles) :] if len(self.particles) < len(words) else words[-1:]
        text = " ".join(core)
        for prefix in ATTACHED_PARTICLES:
            if fold(text).startswith(prefix) and len(text) > len(prefix):
                return text[len(prefix) :]
        return text

    def with_parts(self, given: str, family: str) -> str:
        """A name written like this one (order, separator, title, middle names, suffix) with
        another given and/or family name; a particle is lower-cased when this name's is."""
        if family != self.family and self.particles and self.particles[0][:1].islower():
            family = _lower_particles(family)
        values = {"title": self.title, "given": given, "family": family, "suffix": self.suffix}
        pieces: list[tuple[Role, str]] = []
        for role in self.layout:
            if role == ",":
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + ",")
            elif role == "middle":
                pieces.extend(("middle", word) for word in self.middle)
            else:
                pieces.append((role, values[role]))
        text = pieces[0][1]
        for (before, _), (role, value) in zip(pieces, pieces[1:], strict=False):
            inside = {before, role} <= {"given", "middle", "family"}
            text += (self.separator if inside else " ") + value  # "Dr. 박지성"
        return text


@lru_cache(maxsize=2**12)
def fold(text: str) -> str:
    """The lookup form of a name: case folded, accents removed from alphabetic scripts,
    typographic apostrophes straightened, spaces collapsed. Remembered for the last 4,096
    texts: a name null folds the same name parts over and over, and a check folds 1,200 to
    6,000 distinct texts (quick-lab checks), so a server forgets a checked name within a check
    or two, as its prompt memory does."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", text.replace("’", "'")):
        if unicodedata.combining(ch) and out and script_of_char(out[-1]) in _FOLDED_SCRIPTS:
            continue
        out.append(ch)
    return " ".join(unicodedata.normalize("NFC", "".join(out)).casefold().split())


@lru_cache(maxsize=2**14)
def script_of_char(ch: str) -> str | None:
    """The script of a letter ("Latin", "Han", ...); None for anything that is not a letter.
    Remembered per character (a text has few distinct ones, and a name null asks millions of
    times)."""
    if not unicodedata.category(ch).startswith("L") or unicodedata.category(ch) == "Lm":
        return None
    words = unicodedata.name(ch, "UNKNOWN").split()
    if words[0] in ("FULLWIDTH", "HALFWIDTH") and len(words) > 1:
        words = words[1:]
    return _SCRIPT_WORDS.get(words[0], words[0].title())


def script_of(text: str) -> str:
    """The script of a text's letters: one script, "Japanese" for Han with Kana, "Mixed" for
    any other mix, "None" without letters."""
    scripts = {s for s in map(script_of_char, text) if s is not None}
    if scripts == {"Han", "Kana"}:
        return "Japanese"
    if len(scripts) == 1:
        return scripts.pop()
    return "Mixed" if scripts else "None"


def validate_name(text: object) -> str:
    """The name in NFC with spaces collapsed, or :class:`NameInputError` saying what is
    wrong: not text, empty, too long, control characters, no letters."""
    if not isinstance(text, str):
        raise NameInputError(f"a name must be text, not {type(text).__name__}")
    stripped = text.strip()
    if not stripped:
        raise NameInputError("the name is empty: give a person's full name, e.g. 'Jane Doe'")
    if len(stripped) > MAX_NAME_LENGTH:
        raise NameInputError(
            f"the name has {len(stripped):,} characters; at most {MAX_NAME_LENGTH} are allowed"
        )
    for position, ch in enumerate(stripped):
        if unicodedata.category(ch) in ("Cc", "Cs", "Co", "Zl", "Zp"):
            raise NameInputError(
                f"the name contains a control character (U+{ord(ch):04X} at position "
                f"{position}); a name is one line of text"
            )
    normal = " ".join(unicodedata.normalize("NFC", stripped).split())
    if not any(unicodedata.category(ch).startswith("L") for ch in normal):
        raise NameInputError(f"the name {normal!r} has no letters; give a person's name")
    return normal


def is_initials(token: str) -> bool:
    """Capital letters each with a dot (J., J.R.R.) or one capital letter alone (J); a
    one-character Han or Hangul name is not an initial."""
    return bool(_INITIALS.match(token)) and all(ch.isupper() for ch in token if ch.isalpha())


def parse_name(
    text: str,
    *,
    order: Order | None = None,
    family: str | None = None,
    evidence: PartEvidence | None = None,
) -> ParsedName:
    """Split a full name into parts (see the module's rules).

    ``order``: force given-first or family-first. ``family``: the family name as written,
    the first or last words of the name (or the first or last characters of a name written
    without spaces); it fixes the order too. ``evidence``: ranks of words as first names and
    surnames by country, used to decide the order and double surnames.
    """
    if order is not None and order not in ORDERS:
        raise NameInputError(f"order must be one of {ORDERS}, not {order!r}")
    normal = validate_name(text)
    script = script_of(normal)
    flags: list[str] = []
    notes: list[str] = []
    if script == "Mixed":
        flags.append("mixed_scripts")
        notes.append("the name mixes scripts")
    if fold(normal) != normal.casefold():
        flags.append("diacritics")

    separator = " "
    tokens = normal.split(" ")
    if "," in tokens:
        raise NameInputError(f"cannot read {normal!r}: a comma must follow a word")
    if len(tokens) == 1:
        for dot in _SEPARATORS:
            words = normal.split(dot)
            if len(words) > 1 and all(words):
                separator, tokens = dot, words
                break
    title, tokens = _take_title(tokens)
    suffix, suffix_comma, tokens = _take_suffix(tokens)
    if title:
        flags.append("title")
    if suffix:
        flags.append("suffix")
    base = ParsedName(normal, "", "", "given_first", script, title=title, suffix=suffix,
                      separator=separator)

    commas = [i for i, t in enumerate(tokens) if t.endswith(",")]
    if len(commas) > 1 or (commas and (commas[0] == len(tokens) - 1 or tokens[commas[0]] == ",")):
        raise NameInputError(
            f"cannot read {normal!r}: write 'Given Family' or 'Family, Given' (one comma)"
        )
    if commas:
        cut = commas[0] + 1
        flags += ["comma", "order:comma"]
        notes.append("'Family, Given': the family name before the comma")
        family_words = [*tokens[: cut - 1], tokens[cut - 1][:-1]]
        rest = tokens[cut:]
        parsed = _assign(base, rest[0], rest[1:], family_words, "family_first", flags)
    elif family is not None:
        parsed = _with_family_override(base, tokens, family, flags, notes)
    elif len(tokens) == 1:
        parsed = _single_token(base, tokens[0], order, evidence, flags, notes)
    else:
        parsed = _several_tokens(base, tokens, order, evidence, flags, notes)
    parsed = replace(parsed, flags=tuple(flags), notes=tuple(notes))
    parsed = replace(parsed, layout=_layout(parsed, suffix_comma))
    if parsed.with_parts(parsed.given, parsed.family) != normal:
        raise AssertionError(f"cannot write {normal!r} back from its parts")  # a parser bug
    return parsed


def _take_title(tokens: list[str]) -> tuple[str, list[str]]:
    if len(tokens) > 1 and fold(tokens[0]).rstrip(".") in TITLES:
        return tokens[0], tokens[1:]
    return "", tokens


def _take_suffix(tokens: list[str]) -> tuple[str, bool, list[str]]:
    if len(tokens) > 2 and fold(tokens[-1]).rstrip(".").replace(".", "") in SUFFIXES:
        rest = tokens[:-1]
        comma = rest[-1].endswith(",")
        if comma:
            rest = [*rest[:-1], rest[-1][:-1]]
        return tokens[-1], comma, rest
    return "", False, tokens


def _layout(parsed: ParsedName, suffix_comma: bool) -> tuple[Role, ...]:
    if "comma" in parsed.flags:
        core: tuple[Role, ...] = ("family", ",", "given", "middle")
    elif parsed.order == "family_first":
        vietnamese = "order:vietnamese" in parsed.flags
        core = ("family", "middle", "given") if vietnamese else ("family", "given", "middle")
    else:
        core = ("given", "middle", "family")
    out: list[Role] = ["title"] if parsed.title else []
    out += [r for r in core
            if (r != "middle" or parsed.middle) and (r != "family" or parsed.family)]
    if parsed.suffix:
        out += [",", "suffix"] if suffix_comma else ["suffix"]
    return tuple(out)


def _with_family_override(
    base: ParsedName, tokens: list[str], family: str, flags: list[str], notes: list[str]
) -> ParsedName:
    wanted = fold(family)
    flags.append("family_override")
    notes.append(f"family name {family!r} as given")
    words = [fold(t) for t in tokens]
    for size in range(1, len(tokens)):
        if " ".join(words[-size:]) == wanted:
            rest = tokens[:-size]
            return _assign(base, rest[0], rest[1:], tokens[-size:], "given_first", flags)
        if " ".join(words[:size]) == wanted:
            rest = tokens[size:]
            return _assign(base, rest[0], rest[1:], tokens[:size], "family_first", flags)
    if len(tokens) == 1:
        word = tokens[0]
        cut = len(family)
        if 0 < cut < len(word) and fold(word[:cut]) == wanted:
            return replace(base, given=word[cut:], family=word[:cut], order="family_first",
                           separator="")
        if 0 < cut < len(word) and fold(word[-cut:]) == wanted:
            return replace(base, given=word[:-cut], family=word[-cut:], separator="")
    raise NameInputError(
        f"the family name {family!r} is neither the first nor the last part of {base.text!r}"
    )


def _single_token(
    base: ParsedName,
    word: str,
    order: Order | None,
    evidence: PartEvidence | None,
    flags: list[str],
    notes: list[str],
) -> ParsedName:
    script = script_of(word)
    if script in ("Han", "Hangul", "Japanese") and len(word) >= 2:  # kana alone: a mononym
        cut, reason = _cjk_split(word, script, evidence)
        flags.append(f"split:{reason}")
        notes.append(f"written without spaces: the family name is {word[:cut]!r} ({reason})")
        if order == "given_first":  # rare (a romanised habit), but the user said so
            flags.append("order:override")
            return replace(base, given=word[: len(word) - cut], family=word[len(word) - cut :],
                           separator="")
        flags.append("order:script" if order is None else "order:override")
        return replace(base, given=word[cut:], family=word[:cut], order="family_first",
                       separator="")
    flags.append("mononym")
    notes.append("a single word: a mononym, no family name")
    if is_initials(word):
        flags.append("initials")
    return replace(base, given=word, family="")


def _cjk_split(word: str, script: str, evidence: PartEvidence | None) -> tuple[int, str]:
    """Where the family name of a Han, Hangul or Japanese name without spaces ends."""
    if word[:2] in COMPOUND_SURNAMES and len(word) >= 3:
        return 2, "compound_surname"
    if script == "Japanese":
        kana_at = next(i for i, ch in enumerate(word) if script_of_char(ch) == "Kana")
        if kana_at > 0 and all(script_of_char(ch) == "Kana" for ch in word[kana_at:]):
            return kana_at, "script_boundary"
    if script in ("Han", "Japanese") and evidence is not None and len(word) >= 3:
        for size in (3, 2):
            if len(word) > size and "JP" in evidence.ranks(word[:size], "family"):
                return size, "japanese_surname"
    return 1, "single_character_surname"


def _several_tokens(
    base: ParsedName,
    tokens: list[str],
    order: Order | None,
    evidence: PartEvidence | None,
    flags: list[str],
    notes: list[str],
) -> ParsedName:
    script = script_of(" ".join(tokens))
    given_first = _given_first_split(tokens, evidence, flags, notes)
    patronymic = [i for i, t in enumerate(tokens) if i > 0 and _is_patronymic(t)]
    if order is not None:
        flags.append("order:override")
        chosen: Order = order
    elif script == "Kana" and base.separator in _SEPARATORS:
        flags.append("order:foreign")
        notes.append("a foreign name in kana, words split by a dot: given name first")
        chosen = "given_first"
    elif script in SURNAME_FIRST_SCRIPTS:
        flags.append("order:script")
        notes.append(f"{script} names are written family name first")
        chosen = "family_first"
    elif _is_vietnamese(tokens):
        flags.append("order:vietnamese")
        notes.append("a Vietnamese name: family name first, given name last")
        chosen = "family_first"
    elif len(tokens) == 3 and patronymic:
        flags.append("order:patronymic")
        chosen = "family_first" if patronymic == [2] else "given_first"
        notes.append(f"{tokens[patronymic[0]]!r} is a patronymic: it follows the given name")
    elif evidence is not None and not any(map(is_initials, tokens)):
        chosen = _order_from_evidence(tokens, given_first, evidence, flags, notes)
    else:
        flags.append("order:default")
        chosen = "given_first"
    if chosen == "given_first":
        given, middle, family = given_first
        return _assign(base, given, middle, family, "given_first", flags)
    if "order:vietnamese" in flags:
        return _assign(base, tokens[-1], tokens[1:-1], tokens[:1], "family_first", flags)
    return _assign(base, tokens[1], tokens[2:], tokens[:1], "family_first", flags)


def _is_vietnamese(tokens: list[str]) -> bool:
    """Vietnamese letters (ễ, ơ, ...), or a common Vietnamese family name followed by the
    middle name Văn or Thị written without accents (Nguyen Van An)."""
    if any(ch in _VIETNAMESE_LETTERS for ch in "".join(tokens)):
        return True
    return (
        len(tokens) >= 3
        and fold(tokens[0]) in VIETNAMESE_SURNAMES
        and fold(tokens[1]) in ("van", "thi")
    )


def _is_patronymic(token: str) -> bool:
    return fold(token).endswith(PATRONYMIC_ENDINGS) and len(token) > 6


def _given_first_split(
    tokens: list[str], evidence: PartEvidence | None, flags: list[str], notes: list[str]
) -> tuple[str, list[str], list[str]]:
    """(given, middle names, family words) when the name is written given name first."""
    for i in range(1, len(tokens) - 1):
        if fold(tokens[i]) in PARTICLES:
            return tokens[0], tokens[1:i], tokens[i:]
    last = tokens[-1]
    start = len(tokens) - 1
    if evidence is not None and len(tokens) > 2:
        double = set(evidence.ranks(last, "family")) & DOUBLE_SURNAME_COUNTRIES
        while double and start > 1 and _more_family_than_given(tokens[start - 1], double,
                                                               evidence):
            start -= 1
        if start < len(tokens) - 1:
            flags.append("double_surname")
            notes.append(
                f"{' '.join(tokens[start:])!r}: two family names, as in "
                f"{', '.join(sorted(double)[:3])}"
            )
    return tokens[0], tokens[1:start], tokens[start:]


def _more_family_than_given(word: str, countries: set[str], evidence: PartEvidence) -> bool:
    family, given = evidence.ranks(word, "family"), evidence.ranks(word, "given")
    best_family = min((family[c] for c in countries if c in family), default=None)
    best_given = min((given[c] for c in countries if c in given), default=None)
    return best_family is not None and (best_given is None or best_family < best_given)


def _order_from_evidence(
    tokens: list[str],
    given_first: tuple[str, list[str], list[str]],
    evidence: PartEvidence,
    flags: list[str],
    notes: list[str],
) -> Order:
    """Family-first when that reading is FAMILY_FIRST_MARGIN times as likely as given-first
    in a country that writes names family name first, where the first word ranks as a
    surname and the second as a first name."""
    flags.append("order:evidence")
    given, middle, family_words = given_first
    forward, _ = _reading_strength(_given_first_roles(given, middle, family_words), evidence)
    if fold(tokens[1]) in PARTICLES:
        return "given_first"
    roles: list[tuple[str, PartKind]] = [(tokens[0], "family")]
    roles += [(t, "given") for t in tokens[1:]]
    backward, country = _reading_strength(roles, evidence)
    known = (
        country in _ranks_with_variants(tokens[0], "family", evidence)
        and country in _ranks_with_variants(tokens[1], "given", evidence)
    )
    if known and country in FAMILY_FIRST_COUNTRIES and backward >= FAMILY_FIRST_MARGIN * forward:
        notes.append(
            f"family name first: {tokens[0]!r} as a surname and {' '.join(tokens[1:])!r} as "
            f"given names rank best in {country}, "
            + (f"{backward / forward:.1f} times the other order" if forward else
               "the other order is unknown")
        )
        return "family_first"
    return "given_first"


def _given_first_roles(
    given: str, middle: list[str], family_words: list[str]
) -> list[tuple[str, PartKind]]:
    roles: list[tuple[str, PartKind]] = [(given, "given")] + [(m, "given") for m in middle]
    if len(family_words) > 1 and fold(family_words[0]) in PARTICLES:
        return [*roles, (" ".join(family_words), "family")]  # "van Persie" as one name
    return roles + [(word, "family") for word in family_words]


def _reading_strength(
    roles: list[tuple[str, PartKind]], evidence: PartEvidence
) -> tuple[float, str]:
    """How likely a reading is: the best country's product over the words of 1 / rank (as
    the role the reading gives them), 1 / UNKNOWN_RANK for a word unknown in that role."""
    ranks = [_ranks_with_variants(word, kind, evidence) for word, kind in roles]
    best, where = 0.0, ""
    for country in sorted(set().union(*ranks)):
        value = math.prod(1.0 / r.get(country, UNKNOWN_RANK) for r in ranks)
        if value > best:
            best, where = value, country
    return best, where


def _ranks_with_variants(word: str, kind: PartKind, evidence: PartEvidence) -> dict[str, int]:
    """Ranks of a word, its unhyphenated spellings and (a family name with particles) its
    last word: the best rank per country."""
    variants = [word, word.replace("-", ""), word.replace("-", " ")]
    if kind == "family" and " " in word:
        variants.append(word.split(" ")[-1])
    out: dict[str, int] = {}
    for variant in dict.fromkeys(variants):
        for country, rank in evidence.ranks(variant, kind).items():
            out[country] = min(rank, out.get(country, rank))
    return out


def _assign(
    base: ParsedName,
    given: str,
    middle: list[str],
    family_words: list[str],
    order: Order,
    flags: list[str],
) -> ParsedName:
    particles = _particles(family_words)
    if particles:
        flags.append("particle")
        if fold(particles[0]).rstrip("-") in PATRONYMIC_PARTICLES:
            flags.append("patronymic")
    if "-" in given.strip("-"):
        flags.append("hyphenated_given")
    core = family_words[-1]
    if "-" in core.strip("-") and not any(fold(core).startswith(p) for p in ATTACHED_PARTICLES):
        flags.append("hyphenated_family")
    if is_initials(given) or (middle and all(map(is_initials, [given, *middle]))):
        flags.append("initials")
    return replace(base, given=given, middle=tuple(middle),
                   family=base.separator.join(family_words),
                   particles=particles, order=order, flags=tuple(flags))


def _particles(family_words: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for word in family_words[:-1]:
        if fold(word) not in PARTICLES:
            break
        out.append(word)
    last = fold(family_words[-1])
    if not out:
        for prefix in ATTACHED_PARTICLES:
            if last.startswith(prefix) and len(last) > len(prefix):
                out.append(family_words[-1][: len(prefix)])
                break
    return tuple(out)


def _lower_particles(family: str) -> str:
    words = family.split(" ")
    for i, word in enumerate(words[:-1]):
        if fold(word) not in PARTICLES:
            break
        words[i] = word.lower()
    return " ".join(words)
