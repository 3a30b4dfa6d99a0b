"""Namesakes: background people who share one part of a name under test.

Why: real people share first names and surnames. A model that has seen other Toms responds to
"Tom" in any name, so a never-seen "Tom Baker" can look familiar to a test whose decoys are
random names. The lab's control (`idia lab --familiar-name-parts`) names such people in its
corpus: a person under test may share only the first name with a namesake, only the surname,
or both parts with two different namesakes ("Tom Ellis" and "Sarah Baker" for "Tom Baker"),
never the whole name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from idia.names import SEXES, NamePool, default_pool, normalize_name
from idia.synthetic.identities import Identity, make_identity
from idia.synthetic.randomness import seeded_rng
from idia.synthetic.traits import SEX_OF_GENDER

# Which parts of a name under test namesakes share: none, the first name, the surname, or
# both (with two namesakes, so the two parts never occur together).
NAME_PART_KINDS: tuple[str, ...] = ("none", "first", "surname", "both")
_PARTS_OF_KIND = {"none": (), "first": ("first",), "surname": ("surname",),
                  "both": ("first", "surname")}
_GENDER_OF_SEX = {sex: gender for gender, sex in SEX_OF_GENDER.items()}


@dataclass(frozen=True)
class Namesake:
    """A named background person sharing the ``part`` ("first" or "surname") of the name
    ``shares_with`` (a person under test)."""

    person: Identity
    shares_with: str
    part: str


def name_parts(name: str) -> tuple[str, str]:
    """(first name, surname) of a "first last" name, as the lab and the decoys write them."""
    words = name.split()
    if len(words) < 2:
        raise ValueError(f"{name!r} is not a 'first last' name")
    return words[0], " ".join(words[1:])


def make_namesakes(
    people: Sequence[tuple[str, str]],
    kinds: Mapping[str, str],
    seed: int,
    pool: NamePool | None = None,
) -> list[Namesake]:
    """Namesakes for ``people`` ((name, sex) of everyone under test, sex "f"/"m"), by each
    one's kind in ``kinds`` (:data:`NAME_PART_KINDS`; a person not in it gets none).

    A first-name namesake has the person's first name and sex; a surname namesake the
    person's surname and a first name of a random sex. The other part comes from ``pool``,
    never a part of any name under test and never used by two namesakes, so each shared part
    is the only link between a person and their namesakes. Faces are fresh people of the
    namesake's sex. Everything is drawn from ``seed``.
    """
    pool = pool or default_pool()
    unknown = set(kinds.values()) - set(NAME_PART_KINDS)
    if unknown:
        raise ValueError(f"unknown kinds {sorted(unknown)}; choose from {NAME_PART_KINDS}")
    parts = [name_parts(name) for name, _ in people]
    taken_firsts = {normalize_name(first) for first, _ in parts}
    taken_surnames = {normalize_name(surname) for _, surname in parts}
    rng = seeded_rng(seed, 61)
    free = {
        "surname": [s for s in pool.surnames if normalize_name(s) not in taken_surnames],
        **{sex: [f for f in pool.first_names[sex] if normalize_name(f) not in taken_firsts]
           for sex in SEXES},
    }
    orders = {key: iter(rng.permutation(len(names))) for key, names in free.items()}
    used: set[str] = set()

    def other_part(key: str) -> str:
        """An unused free surname (key "surname") or first name of sex ``key``."""
        for index in orders[key]:
            part = free[key][index]
            if normalize_name(part) not in used:
                used.add(normalize_name(part))
                return part
        raise ValueError(f"the name pool has too few free names ({key}) for the namesakes")

    out: list[Namesake] = []
    for (name, sex), (first, surname) in zip(people, parts, strict=True):
        for part in _PARTS_OF_KIND[kinds.get(name, "none")]:
            if part == "first":
                namesake_sex = sex
                full = f"{first} {other_part('surname')}"
            else:
                namesake_sex = SEXES[int(rng.integers(len(SEXES)))]
                full = f"{other_part(namesake_sex)} {surname}"
            face_seed = int(seeded_rng(seed, 62, len(out)).integers(2**62))
            person = make_identity(face_seed, full, _GENDER_OF_SEX[namesake_sex])
            out.append(Namesake(person=person, shares_with=name, part=part))
    return out

