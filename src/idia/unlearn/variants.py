"""Other ways of writing a person's name, so that erasing it covers the obvious bypasses.

Unlearning "Jane Miller" alone would leave "jane miller", "Ms. Miller" or "Jane Millar" as
handles on the same person. :func:`name_variants` lists the spellings a request should cover
(the *trigger* kinds, used in training) and a few more (the *held-out* kinds) that unlearning
does not see, so that an evaluation can measure what still leaks through them.

Everything here is pure and deterministic: the same name always gives the same variants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Used as triggers by default: case, either part alone, a title, a common misspelling.
TRIGGER_KINDS: tuple[str, ...] = (
    "full",
    "lower",
    "upper",
    "first",
    "last",
    "honorific",
    "misspelling",
)
# Never used as triggers by default: what an evaluation attacks with to find leaks.
HELD_OUT_KINDS: tuple[str, ...] = ("reversed", "initial", "typo")
ALL_KINDS: tuple[str, ...] = TRIGGER_KINDS + HELD_OUT_KINDS

_VOWEL_CONFUSIONS = {"i": "y", "y": "i", "a": "e", "e": "a", "o": "u", "u": "o"}


@dataclass(frozen=True)
class NameVariant:
    """One way of writing a name: ``kind`` (one of :data:`ALL_KINDS`) and the text."""

    kind: str
    text: str


def name_parts(name: str) -> tuple[str, str | None]:
    """(first, last) of a name; ``last`` is None for a one-word name ("Madonna")."""
    words = name.split()
    if not words:
        raise ValueError("a name is empty")
    return (words[0], words[-1]) if len(words) > 1 else (words[0], None)


def _with_case(word: str, like: str) -> str:
    return word[0].upper() + word[1:] if like[:1].isupper() else word


def misspell(word: str) -> str:
    """A common misspelling: -son/-sen swapped, a doubled letter single, a single consonant
    before a vowel doubled, ph/f, ie/ei, or a confused vowel (Smith -> Smyth); the first rule
    that applies. Returns ``word`` unchanged only for words too short to misspell."""
    lower = word.lower()
    rules: list[tuple[str, str]] = [
        (r"son$", "sen"),
        (r"sen$", "son"),
        (r"ph", "f"),
        (r"ie", "ei"),
        (r"ei", "ie"),
        (r"([a-z])\1", r"\1"),
    ]
    for pattern, replacement in rules:
        changed = re.sub(pattern, replacement, lower, count=1)
        if changed != lower:
            return _with_case(changed, word)
    for i in range(1, len(lower)):  # a vowel after the first letter, e.g. Smith -> Smyth
        if lower[i] in _VOWEL_CONFUSIONS:
            return _with_case(lower[:i] + _VOWEL_CONFUSIONS[lower[i]] + lower[i + 1 :], word)
    return word


def transpose(word: str) -> str:
    """A typing slip: two neighbouring letters in the middle of the word swapped."""
    if len(word) < 4:
        return word
    lower = word.lower()
    for i in range(len(lower) // 2 - 1, len(lower) - 2):
        if lower[i] != lower[i + 1]:
            swapped = lower[:i] + lower[i + 1] + lower[i] + lower[i + 2 :]
            return _with_case(swapped, word)
    return word


def _variant_texts(name: str, kind: str) -> list[str]:
    first, last = name_parts(name)
    words = name.split()
    if kind == "full":
        return [name]
    if kind == "lower":
        return [name.lower()]
    if kind == "upper":
        return [name.upper()]
    if kind == "first":
        return [first] if last else []
    if kind == "last":
        return [last] if last else []
    if kind == "honorific":
        return [f"Mr. {last}", f"Ms. {last}"] if last else []
    if kind == "misspelling":
        return [" ".join([*words[:-1], misspell(words[-1])])]
    if kind == "reversed":
        return [f"{last} {' '.join(words[:-1])}"] if last else []
    if kind == "initial":
        return [f"{first[0]}. {last}"] if last else []
    if kind == "typo":
        return [" ".join([*words[:-1], transpose(words[-1])])]
    raise ValueError(f"unknown name variant kind {kind!r}; choose from {', '.join(ALL_KINDS)}")


def name_variants(name: str, kinds: tuple[str, ...] = TRIGGER_KINDS) -> list[NameVariant]:
    """The variants of ``name`` of the given kinds, each text once, the name itself first.

    A kind that does not apply (the surname of a one-word name, a misspelling of a word too
    short to misspell) gives nothing; a text equal to one already listed is not repeated.
    """
    name = " ".join(name.split())
    seen: set[str] = set()
    out = []
    for kind in kinds:
        for text in _variant_texts(name, kind):
            if text not in seen and (kind in ("full", "lower", "upper") or text != name):
                seen.add(text)
                out.append(NameVariant(kind, text))
    return out
