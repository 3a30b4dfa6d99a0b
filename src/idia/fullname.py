"""Decoys for a full name whose parts the model knows as well as the real name's parts, so that
the name test and the text-only test ask about the combination only.

A model that saw "Tom Smith" and "Ann Baker" has seen "Tom" and "Baker"; against random decoys
"Tom Baker" then looks familiar although the model never saw it. Here the decoys of a real
name G F are, from the real name's origin, in its script and written in its order:

- ``given_kept``: G with other family names F' (the given name, and so its sex, held fixed);
- ``family_kept``: other given names G' of the same sex with F;
- ``recombined``: G' F' (a seeded sample of the matched given x matched family names).

Other parts have the real part's script and shape (:func:`part_shape`: words, particle), and
each is **matched on the model's own familiarity with that part alone**
(:func:`part_familiarity`, given to the builder as a callable): of the pool's parts, the
``per_side`` nearest below and the ``per_side`` nearest above the real part's familiarity, so
the real part sits at the middle of its matched parts. A part that cannot be matched so (the
real part is more, or less, familiar than nearly every pool part; an unknown sex; initials)
drops the kinds that vary it, and the remaining kinds hold it fixed. A name left with fewer
than ``min_decoys`` decoys is not tested (:class:`NoComparableDecoys`), never compared with
unlike names. Everything is deterministic given the seed.

Exchangeability: under the null the real name's statistic is one more draw from the decoys'
distribution. It holds when the pool parts that match a real part in familiarity are like it
in every other way the model can read (origin, script, sex, written form); matching is on
one number per part, so what that number misses (e.g. a rare spelling of a common sound)
stays an assumption.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from idia.nameparts import (
    ATTACHED_PARTICLES,
    PARTICLES,
    UNSPACED_SCRIPTS,
    ParsedName,
    PartKind,
    fold,
    is_initials,
    script_of,
)

DecoyKind = Literal["given_kept", "family_kept", "recombined"]
DECOY_KINDS: tuple[DecoyKind, ...] = ("given_kept", "family_kept", "recombined")
Familiarity = Callable[[Sequence[str], PartKind], np.ndarray]
"""``familiarity([part, *pool], kind)`` -> one value per part: the real part first, then the
pool it is matched in (which may hold the real part too). Every value is measured against the
same pool, each part never against itself, so the pool's values do not depend on the real part
and can be computed once for all the names matched in it."""

FULL_NAME_NULL = (
    "the model treats this full name like names made of parts it knows as well, from the same "
    "origin and of the same sex (the same given name with other family names, other given "
    "names with the same family name, and recombinations): it has not seen this combination"
)
NOT_TESTED = "not tested: no comparable decoy names"

DEFAULT_DECOYS = 2000  # p can reach 1/2,001
MATCHED_PER_SIDE = 100  # parts matched below and above the real part's familiarity
MIN_PER_SIDE = 10  # fewer on either side: the part cannot be matched
MIN_DECOYS = 99  # fewer decoys in all: p could not reach 0.01, the name is not tested
FAMILIARITY_NEIGHBOURS = 10
POOLS_REMEMBERED = 8  # pools whose own familiarity values one familiarity keeps


@dataclass(frozen=True)
class PartPools:
    """Other parts to build decoys from, most common first: given names per sex ("f", "m")
    and family names, with their origin and where they came from."""

    origin: str
    given: Mapping[str, tuple[str, ...]]
    family: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class PartMatch:
    """How one part of the real name was matched: its familiarity, how many pool parts were
    taken on each side and the range of their familiarity; ``reason`` when it was not."""

    kind: PartKind
    part: str
    familiarity: float | None
    per_side: int = 0
    low: float | None = None
    high: float | None = None
    reason: str | None = None

    @property
    def matched(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class FullNameDecoys:
    """Decoys for one real name: ``names[i]`` is of kind ``kinds[i]``, made of
    ``given_parts[i]`` and ``family_parts[i]``."""

    real: str
    names: tuple[str, ...]
    kinds: tuple[DecoyKind, ...]
    given_parts: tuple[str, ...]
    family_parts: tuple[str, ...]
    origin: str
    sex: str | None
    seed: int
    source: str
    matches: tuple[PartMatch, ...]
    null: str = FULL_NAME_NULL
    tested: bool = field(default=True, init=False)

    def __len__(self) -> int:
        return len(self.names)

    def counts(self) -> dict[DecoyKind, int]:
        return {kind: self.kinds.count(kind) for kind in DECOY_KINDS}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "name": list(self.names),
                "kind": list(self.kinds),
                "given": list(self.given_parts),
                "family": list(self.family_parts),
            }
        )


@dataclass(frozen=True)
class NoComparableDecoys:
    """A name the full-name null cannot test, and why (``code`` for tables, ``reason`` in
    words)."""

    real: str
    code: str
    reason: str
    tested: bool = field(default=False, init=False)

    @property
    def message(self) -> str:
        return f"{NOT_TESTED} ({self.reason})"


def part_familiarity(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int = FAMILIARITY_NEIGHBOURS,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """How much the text tower sets each part apart from a crowd of parts, as
    claims.text_only_statistics does for full names.

    ``queries`` (T, Q, E) and ``reference`` (T, R, E): L2-normalised prompt embeddings of
    the parts under T templates. A part's value is 1 - the mean cosine similarity of its
    prompt to its ``k`` nearest reference prompts, averaged over templates; ``exclude``
    (Q, R) marks reference parts a query must not count (itself).
    """
    queries, reference = np.asarray(queries, np.float64), np.asarray(reference, np.float64)
    if queries.ndim != 3 or reference.ndim != 3 or queries.shape[::2] != reference.shape[::2]:
        raise ValueError("queries (T, Q, E) and reference (T, R, E) need the same T and E")
    allowed = reference.shape[1] - (0 if exclude is None else int(np.max(exclude.sum(1))))
    k = min(k, allowed)
    if k < 1:
        raise ValueError("part familiarity needs at least one reference part")
    out = np.zeros(queries.shape[1])
    for template in range(queries.shape[0]):
        similarity = queries[template] @ reference[template].T  # (Q, R)
        if exclude is not None:
            similarity = np.where(exclude, -np.inf, similarity)
        nearest = np.partition(similarity, -k, axis=1)[:, -k:]
        out += 1.0 - nearest.mean(axis=1)
    return out / queries.shape[0]


def familiarity_from_encoder(
    encode: Callable[[list[str]], np.ndarray],
    templates: Sequence[str],
    reference: Mapping[PartKind, Sequence[str]] | None = None,
    k: int = FAMILIARITY_NEIGHBOURS,
) -> Familiarity:
    """A :data:`Familiarity` from a text encoder (``encode(prompts) -> (N, E)``, normalised):
    each part alone in every template ("a photo of {}."), scored by :func:`part_familiarity`
    against the ``reference`` parts of its kind, or, without a reference, against the pool of
    the call (every part after the first). Each part's prompts are encoded once, and a pool's
    own values are computed once (the last pools are kept), so matching many names in one pool
    costs one pool-by-pool comparison, then one row per name."""
    embedded: dict[str, np.ndarray] = {}
    pool_values: OrderedDict[tuple, np.ndarray] = OrderedDict()

    def embed(parts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(p for p in parts if p not in embedded))
        if missing:
            prompts = [template.format(part) for part in missing for template in templates]
            vectors = np.asarray(encode(prompts), np.float32)
            vectors = vectors.reshape(len(missing), len(templates), -1)
            embedded.update(zip(missing, vectors, strict=True))
        return np.stack([embedded[p] for p in parts], axis=1)  # (T, N, E)

    def against(parts: Sequence[str], others: Sequence[str]) -> np.ndarray:
        keys = np.asarray([fold(p) for p in parts])
        exclude = keys[:, None] == np.asarray([fold(p) for p in others])[None, :]
        return part_familiarity(embed(parts), embed(others), k, exclude)

    def familiarity(parts: Sequence[str], kind: PartKind) -> np.ndarray:
        if not parts:
            return np.zeros(0)
        first, pool = parts[0], tuple(parts[1:])
        others = pool if reference is None else tuple(dict.fromkeys(reference[kind]))
        if not pool:
            return against([first], others)
        key = (kind, pool)
        if key in pool_values:
            pool_values.move_to_end(key)
        else:
            pool_values[key] = against(pool, others)
            while len(pool_values) > POOLS_REMEMBERED:
                pool_values.popitem(last=False)
        return np.concatenate([against([first], others), pool_values[key]])

    return familiarity


def match_parts(
    real: float, values: np.ndarray, per_side: int, min_per_side: int = MIN_PER_SIDE
) -> np.ndarray | None:
    """Indices of the ``per_side`` values nearest below (or equal to) ``real`` and the
    ``per_side`` nearest above it, fewer on both sides alike when one side is short; None
    when a side has fewer than ``min_per_side``."""
    values = np.asarray(values, np.float64)
    difference = values - real
    below = np.flatnonzero(difference <= 0)
    above = np.flatnonzero(difference > 0)
    below = below[np.argsort(-difference[below], kind="stable")]
    above = above[np.argsort(difference[above], kind="stable")]
    size = min(per_side, len(below), len(above))
    if size < min_per_side:
        return None
    return np.concatenate([below[:size], above[:size]])


def full_name_decoys(
    name: ParsedName,
    pools: PartPools,
    familiarity: Familiarity,
    *,
    sex: str | None,
    seed: int,
    total: int = DEFAULT_DECOYS,
    per_side: int = MATCHED_PER_SIDE,
    min_per_side: int = MIN_PER_SIDE,
    min_decoys: int = MIN_DECOYS,
    exclude: Iterable[str] = (),
) -> FullNameDecoys | NoComparableDecoys:
    """Decoys for ``name`` from ``pools`` (see the module's rules); ``sex`` of the given name
    ("f", "m", or None: given names are then held fixed); ``exclude``: full names that must
    not be decoys (the other real names of an audit)."""
    if min_per_side < 1 or per_side < min_per_side or total < 4 * per_side:
        raise ValueError(
            "need 1 <= min_per_side <= per_side and total >= 4 x per_side (the two kinds that "
            "keep a part are kept whole, recombinations fill up to total)"
        )
    if name.is_mononym:
        return NoComparableDecoys(name.text, "mononym", "a single-word name has no parts to "
                                  "recombine")
    family_match, families = _match(name.family, "family", pools.family, familiarity,
                                    per_side, min_per_side)
    if sex is None:
        given_match, givens = PartMatch("given", name.given, None, reason="sex unknown"), []
    elif "initials" in name.flags:
        given_match, givens = PartMatch("given", name.given, None, reason="initials"), []
    else:
        given_match, givens = _match(name.given, "given", pools.given.get(sex, ()),
                                     familiarity, per_side, min_per_side)
    taken = {fold(n) for n in exclude} | {name.key}
    out: dict[DecoyKind, list[tuple[str, str, str]]] = {kind: [] for kind in DECOY_KINDS}

    def add(kind: DecoyKind, given: str, family: str) -> None:
        full = name.with_parts(given, family)
        key = fold(full)
        if key not in taken:
            taken.add(key)
            out[kind].append((full, given, family))

    for family in families:
        add("given_kept", name.given, family)
    for given in givens:
        add("family_kept", given, name.family)
    wanted = total - len(out["given_kept"]) - len(out["family_kept"])
    if givens and families and wanted > 0:
        rng = np.random.default_rng([seed, _stable_int(name.key)])
        for flat in rng.permutation(len(givens) * len(families)):
            add("recombined", givens[flat // len(families)], families[flat % len(families)])
            if len(out["recombined"]) == wanted:
                break
    rows = [(kind, *row) for kind in DECOY_KINDS for row in out[kind]]
    if len(rows) < min_decoys:
        why = "; ".join(f"{m.kind} name {m.part!r}: {m.reason}" for m in
                        (given_match, family_match) if m.reason)
        return NoComparableDecoys(
            name.text,
            "too_few_decoys",
            f"{len(rows)} comparable decoys from {pools.origin} ({pools.source}), "
            f"{min_decoys} needed" + (f"; {why}" if why else ""),
        )
    return FullNameDecoys(
        real=name.text,
        names=tuple(r[1] for r in rows),
        kinds=tuple(r[0] for r in rows),
        given_parts=tuple(r[2] for r in rows),
        family_parts=tuple(r[3] for r in rows),
        origin=pools.origin,
        sex=sex,
        seed=seed,
        source=pools.source,
        matches=(given_match, family_match),
    )


def _match(
    part: str,
    kind: PartKind,
    pool: Sequence[str],
    familiarity: Familiarity,
    per_side: int,
    min_per_side: int,
) -> tuple[PartMatch, list[str]]:
    """The real part's familiarity and its matched pool parts (same script and shape, never
    itself)."""
    script, key, shape = script_of(part), fold(part), part_shape(part, kind)
    seen: set[str] = set()
    comparable = []  # the pool the part is measured in: same script and shape, may hold it
    for other in pool:
        other_key = fold(other)
        if (
            other_key in seen
            or is_initials(other)
            or script_of(other) != script
            or part_shape(other, kind) != shape
        ):
            continue
        seen.add(other_key)
        comparable.append(other)
    keep = np.asarray([fold(other) != key for other in comparable], bool)
    candidates = [other for other, kept in zip(comparable, keep, strict=True) if kept]
    if len(candidates) < 2 * min_per_side:
        return PartMatch(kind, part, None, reason=f"{len(candidates)} {script} {kind} names "
                         "in the pool"), []
    values = np.asarray(familiarity([part, *comparable], kind), np.float64)
    if values.shape != (len(comparable) + 1,) or not np.isfinite(values).all():
        raise ValueError(f"familiarity must return one finite value per part ({kind} names)")
    values = np.concatenate([values[:1], values[1:][keep]])
    chosen = match_parts(values[0], values[1:], per_side, min_per_side)
    if chosen is None:
        below = int((values[1:] <= values[0]).sum())
        return PartMatch(
            kind, part, float(values[0]),
            reason=f"{below} of {len(candidates)} pool parts are as familiar or less: too "
            f"few on one side to match",
        ), []
    matched = values[1:][chosen]
    size = len(chosen) // 2
    return PartMatch(kind, part, float(values[0]), size, float(matched.min()),
                     float(matched.max())), [candidates[i] for i in chosen]


def part_shape(part: str, kind: PartKind) -> tuple[int, bool]:
    """What a decoy part must share with the real one besides its script: the number of
    words (particles aside; characters in Han, Hangul and kana) and, for a family name,
    whether it has a particle ("van Persie" is matched with "de Jong", "Kowalski" with
    "Nowak", "García Márquez" with two words, 习 with 王 but not with 欧阳)."""
    if script_of(part) in UNSPACED_SCRIPTS:
        return len(part.replace(" ", "")), False  # characters: 习 is not matched with 欧阳
    words = part.split()
    particles = 0
    if kind == "family":
        while particles < len(words) - 1 and fold(words[particles]) in PARTICLES:
            particles += 1
        attached = any(fold(words[-1]).startswith(p) for p in ATTACHED_PARTICLES)
        return len(words) - particles, particles > 0 or attached
    return len(words), False


def people_part_pools(
    people: Sequence[ParsedName], sexes: Sequence[str | None], source: str = "audited people"
) -> PartPools:
    """Pools made of an audit's own people: their given names by sex and their family names,
    so that decoys recombine parts the model may know exactly as well. Every person's decoys
    then lie in one grid (given names x family names), encoded once for the whole audit."""
    if len(people) != len(sexes):
        raise ValueError("one sex (or None) per person is needed")
    given: dict[str, list[str]] = {"f": [], "m": []}
    family: list[str] = []
    for person, sex in zip(people, sexes, strict=True):
        if person.is_mononym:
            continue
        if sex in given and "initials" not in person.flags:
            given[sex].append(person.given)
        family.append(person.family)
    return PartPools(
        origin="audit",
        given={sex: tuple(dict.fromkeys(names)) for sex, names in given.items()},
        family=tuple(dict.fromkeys(family)),
        source=source,
    )


def union_candidates(
    real_names: Sequence[str], decoys: Sequence[FullNameDecoys | NoComparableDecoys]
) -> tuple[tuple[str, ...], list[np.ndarray | None]]:
    """One candidate list for many people (real names first, then every decoy once) and,
    per person, the positions of their decoys in it (None when not tested): the prompts of an
    audit are encoded once."""
    if len(real_names) != len(decoys):
        raise ValueError("one decoy set per real name is needed")
    names = list(real_names)
    position = {fold(n): i for i, n in enumerate(names)}
    indices: list[np.ndarray | None] = []
    for result in decoys:
        if not isinstance(result, FullNameDecoys):
            indices.append(None)
            continue
        own = []
        for decoy in result.names:
            key = fold(decoy)
            if key not in position:
                position[key] = len(names)
                names.append(decoy)
            own.append(position[key])
        indices.append(np.asarray(own, dtype=np.int64))
    return tuple(names), indices


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")
