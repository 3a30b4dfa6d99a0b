"""Find people's names in captions: one Aho-Corasick pass per batch of captions.

Rules (see docs/census.md): text and names go through the same normalization (Unicode NFKD,
accents dropped, case folded, every run of characters that are not letters or digits becomes one
space), and a name matches where its words occur as consecutive whole words of a caption. Names
are literal text, never regular expressions.

Speed comes from doing the per-character work in Arrow and NumPy kernels over a whole batch and
running the automaton once over the batch's concatenated text, so no Python code runs per caption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from idia.errors import IdiaError


class CensusInputError(IdiaError, ValueError):
    """Input the census cannot use; the message says what to change."""


CAPTION_END = 0x0A
"""Byte put between captions in a batch's text; normalization removes every other control byte,
so a match can never span two captions."""

SPECIAL_LETTERS: dict[str, str] = {
    "ß": "ss",
    "ẞ": "SS",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ø": "o",
    "Ø": "O",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "TH",
    "ħ": "h",
    "Ħ": "H",
    "ı": "i",
}
"""Latin letters that Unicode decomposition leaves alone but readers treat as accented or
ligature forms of plain letters ("Skarsgård" decomposes by itself, "Søren" needs this table)."""

FINAL_SIGMA = "ς"

_NON_ASCII_SEPARATORS = r"[^\p{L}\p{N}\p{M}\x00-\x7f]+"
_FORMAT_CHARACTERS = r"\p{Cf}+"  # soft hyphens, zero-width joiners, direction marks
_FORMAT_OR_COMBINING = r"[\p{Cf}\p{Mn}]+"  # the above plus accents once decomposed


def _ascii_table(case_sensitive: bool) -> bytes:
    """Byte lookup table: ASCII letters and digits kept (lower-cased unless case-sensitive), every
    other ASCII byte becomes a space; bytes of multi-byte UTF-8 sequences pass through."""
    table = np.arange(256, dtype=np.uint8)
    for code in range(128):
        char = chr(code)
        if not char.isalnum():
            table[code] = ord(" ")
        elif not case_sensitive:
            table[code] = ord(char.lower())
    return table.tobytes()


_ASCII_TABLES = {flag: _ascii_table(flag) for flag in (False, True)}


@dataclass(frozen=True)
class CountedName:
    """A name to count: the name the results show, plus alternative spellings that count as
    it (a person's aliases)."""

    name: str
    aliases: tuple[str, ...] = ()

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class NormalizedBatch:
    """A batch's normalized captions as one string, one character per UTF-8 byte (latin-1
    decoding), each caption framed by spaces and followed by ``CAPTION_END``."""

    text: str
    caption_ends: np.ndarray  # position of each caption's CAPTION_END, ascending

    def caption_of(self, positions: np.ndarray) -> np.ndarray:
        """Index of the caption containing each character position."""
        return np.searchsorted(self.caption_ends, positions, side="left")


def _as_text_array(texts: pa.Array | pa.ChunkedArray | Iterable[str | None]) -> pa.Array:
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if not isinstance(texts, pa.Array):
        texts = pa.array(list(texts), type=pa.large_string())
    if pa.types.is_dictionary(texts.type):
        texts = texts.dictionary_decode()
    return pc.fill_null(texts.cast(pa.large_string()), "")


def _fold_unicode(texts: pa.Array, *, case_sensitive: bool, fold_accents: bool) -> pa.Array:
    """Unicode-aware part of normalization, run only on captions that contain non-ASCII text."""
    texts = pc.utf8_normalize(texts, "NFKD" if fold_accents else "NFC")
    if not case_sensitive:
        # final sigma is a case form of sigma: Python's lower() picks it by context, Arrow never
        texts = pc.replace_substring(pc.utf8_lower(texts), FINAL_SIGMA, "σ")
    texts = pc.replace_substring_regex(
        texts, _FORMAT_OR_COMBINING if fold_accents else _FORMAT_CHARACTERS, ""
    )
    if fold_accents:
        for letter, replacement in SPECIAL_LETTERS.items():
            texts = pc.replace_substring(texts, letter, replacement)
    return pc.replace_substring_regex(texts, _NON_ASCII_SEPARATORS, " ")


def normalize_batch(
    texts: pa.Array | pa.ChunkedArray | Iterable[str | None],
    *,
    case_sensitive: bool = False,
    fold_accents: bool = True,
) -> NormalizedBatch:
    """Normalize captions (nulls read as empty) into one searchable string."""
    texts = _as_text_array(texts)
    if len(texts) == 0:
        return NormalizedBatch(text="", caption_ends=np.empty(0, dtype=np.int64))
    non_ascii = pc.invert(pc.string_is_ascii(texts))
    if pc.any(non_ascii).as_py():
        folded = _fold_unicode(
            pc.filter(texts, non_ascii), case_sensitive=case_sensitive, fold_accents=fold_accents
        )
        texts = pc.replace_with_mask(texts, non_ascii, folded)
    framed = pc.binary_join_element_wise(
        pa.scalar(" ", pa.large_string()),
        texts,
        pa.scalar(" \n", pa.large_string()),
        pa.scalar("", pa.large_string()),
    )
    offsets = np.frombuffer(framed.buffers()[1], dtype=np.int64)
    offsets = offsets[framed.offset : framed.offset + len(framed) + 1]
    raw = memoryview(framed.buffers()[2])[offsets[0] : offsets[-1]]
    data = np.frombuffer(bytearray(raw).translate(_ASCII_TABLES[case_sensitive]), dtype=np.uint8)
    data[offsets[1:] - offsets[0] - 1] = CAPTION_END
    spaces = data == ord(" ")
    keep = np.ones(len(data), dtype=bool)
    keep[1:] = ~(spaces[1:] & spaces[:-1])
    data = data[keep]
    return NormalizedBatch(
        text=data.tobytes().decode("latin-1"), caption_ends=np.flatnonzero(data == CAPTION_END)
    )


def normalize_text(text: str, *, case_sensitive: bool = False, fold_accents: bool = True) -> str:
    """The normalized form of one text, as readable words (for documentation and debugging)."""
    batch = normalize_batch([text], case_sensitive=case_sensitive, fold_accents=fold_accents)
    return batch.text.encode("latin-1").decode("utf-8").strip()


class NameMatcher:
    """Finds which people occur in captions.

    Picklable (the automaton is rebuilt after unpickling) so that worker processes and Spark
    executors receive only the people and options.
    """

    def __init__(
        self,
        people: Sequence[CountedName | str],
        *,
        case_sensitive: bool = False,
        fold_accents: bool = True,
    ) -> None:
        self.people: tuple[CountedName, ...] = tuple(
            person if isinstance(person, CountedName) else CountedName(person) for person in people
        )
        if not self.people:
            raise CensusInputError("no names to look for")
        self.case_sensitive = case_sensitive
        self.fold_accents = fold_accents
        self._build()

    @property
    def names(self) -> list[str]:
        return [person.name for person in self.people]

    def _build(self) -> None:
        owners = [index for index, person in enumerate(self.people) for _ in person.spellings]
        spellings = [spelling for person in self.people for spelling in person.spellings]
        normalized = normalize_batch(
            spellings, case_sensitive=self.case_sensitive, fold_accents=self.fold_accents
        ).text.split("\n")[: len(spellings)]
        people_by_pattern: dict[str, set[int]] = {}
        for spelling, owner, pattern in zip(spellings, owners, normalized, strict=True):
            words = pattern.strip()
            if not words:
                raise CensusInputError(f"name {spelling!r} has no letters or digits to match")
            people_by_pattern.setdefault(f" {words} ", set()).add(owner)
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
        self._pattern_people: list[tuple[int, ...]] = []
        for pattern, owners_of_pattern in people_by_pattern.items():
            self._automaton.add_word(pattern, len(self._pattern_people))
            self._pattern_people.append(tuple(sorted(owners_of_pattern)))
        self._automaton.make_automaton()

    def __getstate__(self) -> dict:
        return {
            "people": self.people,
            "case_sensitive": self.case_sensitive,
            "fold_accents": self.fold_accents,
        }

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build()

    def match_batch(
        self, texts: pa.Array | pa.ChunkedArray | Iterable[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Every (caption index, person index) pair where the person occurs, each pair once,
        sorted by caption then person."""
        batch = normalize_batch(
            texts, case_sensitive=self.case_sensitive, fold_accents=self.fold_accents
        )
        ends: list[int] = []
        owners: list[int] = []
        for end, pattern_id in self._automaton.iter(batch.text):
            for owner in self._pattern_people[pattern_id]:
                ends.append(end)
                owners.append(owner)
        if not ends:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        captions = batch.caption_of(np.asarray(ends, dtype=np.int64))
        pairs = np.unique(captions * len(self.people) + np.asarray(owners, dtype=np.int64))
        return pairs // len(self.people), pairs % len(self.people)

    def count(self, texts: pa.Array | pa.ChunkedArray | Iterable[str | None]) -> np.ndarray:
        """Per person, how many of the captions mention them."""
        _, people = self.match_batch(texts)
        return np.bincount(people, minlength=len(self.people)).astype(np.int64)

    def names_in(self, text: str) -> list[str]:
        """The names of the people one text mentions, in the matcher's order."""
        _, people = self.match_batch([text])
        return [self.people[index].name for index in people]
