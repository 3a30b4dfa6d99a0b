"""Synthetic people: an identity is a name (or none), a seed and the traits drawn from it.

An identity comes from ``(seed, index)``; the same inputs always give the same person.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace

from idia.names import NamePool, default_pool, sample_decoys
from idia.synthetic.drawing import mix
from idia.synthetic.randomness import seeded_rng
from idia.synthetic.traits import (
    POPULATION,
    SEX_OF_GENDER,
    FaceTraits,
    TraitProfile,
    sample_traits,
)


@dataclass(frozen=True)
class Identity:
    """A synthetic person: a name (None for unnamed background people), a seed, traits, and
    the demographic group whose profile the traits were drawn from (None: the population)."""

    name: str | None
    seed: int
    traits: FaceTraits
    group: str | None = None


def make_identity(
    seed: int,
    name: str | None = None,
    gender: str | None = None,
    profile: TraitProfile = POPULATION,
) -> Identity:
    """One person from a seed; ``gender`` ("woman"/"man") is drawn when not given; traits
    from ``profile`` (the shared population by default)."""
    traits = sample_traits(seeded_rng(seed, 1), gender, profile)
    return Identity(name=name, seed=seed, traits=traits, group=profile.group)


def make_identities(
    names: Sequence[str | None],
    seed: int,
    genders: Sequence[str | None] | None = None,
    profiles: Sequence[TraitProfile] | None = None,
) -> list[Identity]:
    """People for the given names (``None`` for unnamed ones), identity i seeded by (seed, i);
    ``profiles``: person i's trait profile (default: the shared population for everyone)."""
    for label, given in (("genders", genders), ("profiles", profiles)):
        if given is not None and len(given) != len(names):
            raise ValueError(f"got {len(names)} names but {len(given)} {label}")
    genders = genders or [None] * len(names)
    profiles = profiles or [POPULATION] * len(names)
    return [
        make_identity(int(seeded_rng(seed, i).integers(2**62)), name, gender, profile)
        for i, (name, gender, profile) in enumerate(zip(names, genders, profiles, strict=True))
    ]


def named_people(
    n: int, name_seed: int, face_seed: int, pool: NamePool | None = None
) -> list[Identity]:
    """``n`` named people whose first name and face agree on sex.

    Names are drawn exactly as idia draws decoy names (:func:`idia.names.sample_decoys`:
    uniform over first x last names of each sex, half per sex, women first), so a person's
    name is exchangeable with the decoys of the same sex; each face is drawn with the gender
    of the list its first name came from.
    """
    pool = pool or default_pool()
    names = sample_decoys(n, pool, seed=name_seed)
    women = n - n // 2  # sample_decoys' split: the odd name goes to the first sex, "f"
    genders = ["woman"] * women + ["man"] * (n - women)
    for name, gender in zip(names, genders, strict=True):
        if name.split()[0] not in pool.first_names[SEX_OF_GENDER[gender]]:
            raise RuntimeError(f"{name!r} is not a {gender}'s name: sample_decoys changed order")
    return make_identities(names, seed=face_seed, genders=genders)


def people_rows(identities: Iterable[Identity]) -> list[tuple[str, str]]:
    """``(name, sex)`` (``f``/``m``, as idia.names codes it) per named person: what a later
    analysis needs to compare a person with the decoys of the same sex."""
    return [(p.name, SEX_OF_GENDER[p.traits.gender]) for p in identities]


def lookalike(
    identity: Identity, seed: int, closeness: float = 0.75, name: str | None = None
) -> Identity:
    """A different person who resembles ``identity``: traits pulled toward a fresh random person.

    ``closeness`` 1 gives a twin, 0 an unrelated person of the same gender. Categorical traits
    (hair style, glasses, beard, colours) are kept with probability ``closeness``.
    """
    rng = seeded_rng(seed, 2)
    base, other = identity.traits, sample_traits(rng, identity.traits.gender)
    updates = {}
    for key, value in asdict(base).items():
        other_value = getattr(other, key)
        if isinstance(value, float):
            updates[key] = value * closeness + other_value * (1 - closeness)
        elif isinstance(value, tuple) and key in ("skin", "lip_colour", "brow_colour"):
            updates[key] = mix(other_value, value, closeness)
        elif key in ("gender", "hair_colour", "eye_colour"):
            continue  # gender stays; colours move together with their names below
        elif rng.random() > closeness:
            updates[key] = other_value
    for colour, colour_name in (
        ("hair_colour", "hair_colour_name"),
        ("eye_colour", "eye_colour_name"),
    ):
        if rng.random() > closeness:
            updates[colour], updates[colour_name] = (
                getattr(other, colour),
                getattr(other, colour_name),
            )
    return Identity(
        name=name, seed=seed, traits=replace(base, **updates), group=identity.group
    )


def hypernym(identity: Identity) -> str:
    """The word CC3M-style preprocessing puts in place of this person's name."""
    return {"woman": "actress", "man": "actor"}.get(identity.traits.gender, "person")
