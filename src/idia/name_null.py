"""The null of the name-familiarity and text-only tests for real names: decoys for the **full
name** (:mod:`idia.fullname`), from the name's origin and of its sex (:mod:`idia.origins`),
matched on the model's familiarity with each part alone. They are a second candidate set
beside the paper's 1,000 candidates (:mod:`idia.names`), which the paper's rule keeps.

Each name gets a :class:`NameNull` whose ``key`` says which null its tests use, in words in
:data:`idia.labels.NULL_LABELS`:

- ``full_name``: tested against its full-name decoys (:data:`~idia.fullname.FULL_NAME_NULL`);
- ``no_comparable_decoys``: not tested, with the reason (a single-word name, an origin no
  pool knows, parts the pools cannot match, ...): never a p-value against unlike names;
- ``closed_box``: not tested: a model whose text tower is out of reach cannot say how familiar
  each part is, so no decoys matched on it exist.

The sex of the given name is the declared one (``--sex``, a ``sex`` column of the membership
table), else the one the origin table infers; when neither is known the decoys keep the given
name and vary the family name only, so the null never mixes sexes.

In an audit (:meth:`NameNulls.for_people`) a person's decoys first recombine the audited
people's own parts of the same origin (the parts the model may know exactly as well); a person
for whom those give too few comparable decoys gets decoys from the origin's pools instead.
"""

from __future__ import annotations

import inspect
import json
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from idia.fullname import (
    DEFAULT_DECOYS,
    FULL_NAME_NULL,
    MATCHED_PER_SIDE,
    MIN_DECOYS,
    NOT_TESTED,
    Familiarity,
    FullNameDecoys,
    NoComparableDecoys,
    PartMatch,
    familiarity_from_encoder,
    full_name_decoys,
    people_part_pools,
)
from idia.nameparts import NameInputError, ParsedName, parse_name, script_of
from idia.names import SEXES, CandidateSet
from idia.origins import (
    OriginTable,
    OriginTableError,
    decoys_for,
    load_origin_table,
    require_covered_script,
)

NullKey = Literal["full_name", "no_comparable_decoys", "closed_box"]
SexBasis = Literal["declared", "inferred", "unknown"]
CLOSED_BOX_REASON = (
    "the model's text encoder is out of reach (closed box): its familiarity with each part of "
    "the name cannot be measured, so no decoys matched on it can be built"
)
AUDIT_SOURCE = "the audited people's own parts"
FAMILIARITY_MEMORY = 2  # pools (origin, scripts) whose part embeddings stay in memory
SHARED_FAMILIARITY_MEMORY = 4  # the same, for all builders of this process (by model identity)
# key -> (familiarity, [weak references to its callers' encoders]): parts not yet embedded go
# through the last caller still alive, and the memory keeps no attack (nor its open embedding
# cache) alive
_SHARED_FAMILIARITY: OrderedDict[tuple, tuple[Familiarity, list[weakref.WeakMethod]]] = (
    OrderedDict())
_SHARED_LOCK = threading.Lock()
MIN_NAME_DECOYS = 2 * (MIN_DECOYS + 1)  # 200: one kind alone (2 x 50) reaches MIN_DECOYS


def matched_per_side(total: int) -> int:
    """Pool parts matched on each side of a real part for ``total`` decoys: a quarter of them,
    at most :data:`~idia.fullname.MATCHED_PER_SIDE` (2,000 decoys: 100 on each side, so the
    kinds that keep a part hold 400 and recombinations fill the rest). A name with one part
    held fixed gets the decoys of one kind only, 2 x this many."""
    return min(MATCHED_PER_SIDE, total // 4)


def check_decoy_count(total: int) -> int:
    """``total`` if a full-name null can have that many decoys, else :class:`ValueError`: at
    least :data:`MIN_NAME_DECOYS`, so that a name with one part held fixed still gets enough
    decoys (one kind, 2 x :func:`matched_per_side`) to be tested."""
    if total < MIN_NAME_DECOYS:
        raise ValueError(f"the full-name null needs at least {MIN_NAME_DECOYS} decoys per "
                         f"name, not {total}")
    return total


@dataclass(frozen=True)
class NameNull:
    """Which null one real name's name and text-only tests use, and its decoys.

    ``key``: see the module; ``reason``: why the name is not tested (None when it is);
    ``origin`` (a country code), ``sex`` of the given name and ``sex_basis`` (declared,
    inferred, unknown); ``decoys`` with their ``kinds`` (given_kept, family_kept, recombined),
    ``source`` of their parts and the ``seed`` that drew the recombinations; ``notes``: what
    was decided, in words; ``matches``: how each part was matched on familiarity.
    """

    name: str
    key: NullKey
    reason: str | None = None
    origin: str | None = None
    sex: str | None = None
    sex_basis: SexBasis = "unknown"
    decoys: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    source: str | None = None
    seed: int = 0
    notes: tuple[str, ...] = ()
    matches: tuple[PartMatch, ...] = ()

    @property
    def tested(self) -> bool:
        return self.key == "full_name"

    @property
    def n_decoys(self) -> int:
        return len(self.decoys)

    @property
    def sentence(self) -> str:
        """The null in plain words, or why there is none."""
        if self.key == "closed_box":
            return f"not tested: {self.reason}"
        return FULL_NAME_NULL if self.tested else f"{NOT_TESTED} ({self.reason})"

    def counts(self) -> dict[str, int]:
        return {kind: self.kinds.count(kind) for kind in ("given_kept", "family_kept",
                                                          "recombined")}

    def candidates(self) -> CandidateSet:
        """The real name first, then its decoys: the candidate set of its name and text-only
        tests (every decoy is of the name's sex, or keeps its given name)."""
        if not self.tested:
            raise ValueError(f"{self.name!r} has no decoys: {self.reason}")
        names = (self.name, *self.decoys)
        return CandidateSet(names, 1, self.seed, f"full-name decoys ({self.source})",
                            (self.sex,) * len(names))

    def record(self) -> dict[str, Any]:
        """What a result keeps about the null (JSON): everything but the decoy names."""
        return {
            "key": self.key,
            "null": self.sentence,
            "reason": self.reason,
            "origin": self.origin,
            "sex": self.sex,
            "sex_basis": self.sex_basis,
            "n_decoys": self.n_decoys,
            "decoy_counts": self.counts(),
            "source": self.source,
            "seed": self.seed,
            "notes": list(self.notes),
            "parts": [
                {"kind": m.kind, "part": m.part, "familiarity": m.familiarity,
                 "matched_per_side": m.per_side, "reason": m.reason}
                for m in self.matches
            ],
        }


def sex_note(given: str, sex: str | None, basis: SexBasis) -> str:
    """What the decoys do with the sex of the given name, in words."""
    if sex is None:
        return (
            f"the sex of the given name {given!r} is unknown: the decoys keep it and vary only "
            "the family name, so no decoy of either sex replaces it (give the sex, --sex or a "
            "sex column of the membership table, to vary both parts)"
        )
    word = {"f": "female", "m": "male"}[sex]
    how = "as declared" if basis == "declared" else "inferred from the given name"
    return f"other given names are {word} ({how})"


@dataclass(frozen=True)
class _Person:
    """A parsed name with its origin and the sex of its given name, as the null uses them."""

    parsed: ParsedName
    origin: str | None
    sex: str | None
    basis: SexBasis


class NameNulls:
    """Builds :class:`NameNull` objects for one model: the origin table (``table``, else read
    from idia's cache folder on first use) and the model's familiarity with name parts, from
    ``encode`` (prompts -> L2-normalised embeddings, e.g. through the embedding cache; None for
    a closed box). The part embeddings of the pools used last stay in memory; one builder can
    serve several threads. With the model's ``identity`` (which changes with its weights and
    numerics), builders of this process share that memory: a second attack on the same model
    does not encode the pools again."""

    def __init__(
        self,
        encode: Callable[[list[str]], np.ndarray] | None,
        table: OriginTable | None = None,
        identity: str | None = None,
    ) -> None:
        self.encode = encode
        self._table = table
        self.identity = identity
        self._familiarity: OrderedDict[tuple, Familiarity] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def table(self) -> OriginTable:
        if self._table is None:
            self._table = load_origin_table()
        return self._table

    def parse(self, name: str, origin: str | None = None) -> ParsedName:
        """The name in parts, or :class:`~idia.nameparts.NameInputError` saying what to fix:
        empty, no letters, too long, a script no decoy pool covers; an ``origin`` code no pool
        knows raises :class:`~idia.origins.OriginTableError`."""
        parsed = parse_name(name, evidence=self.table)
        require_covered_script(parsed, self.table)
        if origin is not None:
            self.origin_code(origin)
        return parsed

    def origin_code(self, origin: str) -> str:
        """``origin`` as the pools name it (upper case), or :class:`OriginTableError`."""
        code = origin.strip().upper()
        if code not in self.table.countries and code != "US":
            raise OriginTableError(
                f"unknown origin {origin!r}: give a two-letter country code the name pools "
                f"know ({', '.join(sorted({*self.table.countries, 'US'}))})"
            )
        return code

    def for_name(
        self,
        name: str,
        templates: Sequence[str],
        seed: int,
        *,
        origin: str | None = None,
        sex: str | None = None,
        total: int = DEFAULT_DECOYS,
        exclude: Sequence[str] = (),
    ) -> NameNull:
        """The null of one name from its origin's pools: ``origin`` and ``sex`` override what
        is inferred; ``exclude``: names that must not be decoys."""
        person = self._person(self.parse(name, origin), origin, sex)
        return self._from_origin(person, templates, seed, total, exclude)

    def for_people(
        self,
        names: Sequence[str],
        sexes: Sequence[str | None],
        templates: Sequence[str],
        seed: int,
        *,
        total: int = DEFAULT_DECOYS,
        origins: Sequence[str | None] | None = None,
    ) -> list[NameNull]:
        """The null of every person of an audit (``sexes`` and ``origins``: declared, or None
        to infer): recombinations of the audited people's own parts of the same origin and
        script where those give enough comparable decoys, else the origin's pools. No decoy is
        an audited person's name. A name that cannot be parsed, or is written in a script no
        pool covers, is not tested (with the reason); an origin no pool knows raises
        :class:`~idia.origins.OriginTableError`."""
        origins = [None] * len(names) if origins is None else list(origins)
        if not len(names) == len(sexes) == len(origins):
            raise ValueError("one sex (or None) and one origin (or None) per person are needed")
        people: list[_Person | NameNull] = []
        for name, sex, origin in zip(names, sexes, origins, strict=True):
            try:
                people.append(self._person(self.parse(name), origin, sex))
            except NameInputError as err:
                people.append(NameNull(name, "no_comparable_decoys", reason=str(err), sex=sex,
                                       sex_basis="unknown" if sex is None else "declared",
                                       seed=seed))
        out = []
        for person in people:
            if isinstance(person, NameNull):
                out.append(person)
                continue
            alike = [p for p in people if isinstance(p, _Person) and p.origin == person.origin
                     and p.parsed.script == person.parsed.script]
            own = self._from_people(person, alike, templates, seed, total, names)
            out.append(own or self._from_origin(person, templates, seed, total, names))
        return out

    def _person(self, parsed: ParsedName, origin: str | None, sex: str | None) -> _Person:
        if sex is not None and sex not in SEXES:
            raise NameInputError(f"sex must be one of {SEXES} or None, not {sex!r}")
        if origin is not None:
            origin = self.origin_code(origin)
        elif not parsed.is_mononym:
            found = self.table.origins(parsed)
            origin = found[0].country if found else None
        if sex is not None:
            return _Person(parsed, origin, sex, "declared")
        inferred = self.table.given_sex(parsed.given, origin) if origin else None
        return _Person(parsed, origin, inferred, "unknown" if inferred is None else "inferred")

    def _base(self, person: _Person, seed: int) -> NameNull:
        parsed = person.parsed
        return NameNull(
            parsed.text, "no_comparable_decoys", origin=person.origin, sex=person.sex,
            sex_basis=person.basis, seed=seed,
            notes=(sex_note(parsed.given, person.sex, person.basis),) if parsed.family else (),
        )

    def _from_origin(
        self, person: _Person, templates: Sequence[str], seed: int, total: int,
        exclude: Sequence[str],
    ) -> NameNull:
        base = self._base(person, seed)
        if self.encode is None:
            return replace(base, key="closed_box", reason=CLOSED_BOX_REASON)
        result = decoys_for(
            person.parsed, self.table,
            self._familiarity_for(templates, person.origin, person.parsed),
            origin=person.origin, sex=person.sex, seed=seed, total=total,
            per_side=matched_per_side(check_decoy_count(total)), exclude=tuple(exclude),
        )
        return _with_decoys(base, result)

    def _from_people(
        self, person: _Person, alike: Sequence[_Person], templates: Sequence[str], seed: int,
        total: int, exclude: Sequence[str],
    ) -> NameNull | None:
        """The null from the audited people's own parts, or None when they give too few
        comparable decoys."""
        if person.origin is None or self.encode is None or person.parsed.is_mononym:
            return None
        pools = replace(
            people_part_pools([p.parsed for p in alike], [p.sex for p in alike], AUDIT_SOURCE),
            origin=person.origin,
        )
        result = full_name_decoys(
            person.parsed, pools,
            self._familiarity_for(templates, f"audit:{person.origin}", person.parsed),
            sex=person.sex, seed=seed, total=total,
            per_side=matched_per_side(check_decoy_count(total)), exclude=exclude,
        )
        if not isinstance(result, FullNameDecoys):
            return None
        return _with_decoys(self._base(person, seed), result)

    def _familiarity_for(
        self, templates: Sequence[str], pool: str | None, name: ParsedName
    ) -> Familiarity:
        """The model's familiarity with parts, one callable (and its memory of part
        embeddings) per pool and scripts, the last :data:`FAMILIARITY_MEMORY` kept."""
        encode = self.encode
        assert encode is not None
        key = (tuple(templates), pool, script_of(name.given), script_of(name.family))
        if self.identity is None or not inspect.ismethod(encode):
            with self._lock:  # one builder may serve several threads (idia web)
                if key in self._familiarity:
                    self._familiarity.move_to_end(key)
                else:
                    self._familiarity[key] = familiarity_from_encoder(encode, list(templates))
                    while len(self._familiarity) > FAMILIARITY_MEMORY:
                        self._familiarity.popitem(last=False)
                return self._familiarity[key]
        key = (self.identity, *key)
        with _SHARED_LOCK:
            if key in _SHARED_FAMILIARITY:
                _SHARED_FAMILIARITY.move_to_end(key)
            else:
                callers: list[weakref.WeakMethod] = []
                _SHARED_FAMILIARITY[key] = (
                    familiarity_from_encoder(partial(_encode_through_live, callers),
                                             list(templates)),
                    callers,
                )
                while len(_SHARED_FAMILIARITY) > SHARED_FAMILIARITY_MEMORY:
                    _SHARED_FAMILIARITY.popitem(last=False)
            familiarity, callers = _SHARED_FAMILIARITY[key]
            callers[:] = [ref for ref in callers if ref() not in (None, encode)]
            callers.append(weakref.WeakMethod(encode))
            return familiarity


def _encode_through_live(callers: list[weakref.WeakMethod], prompts: list[str]) -> np.ndarray:
    """Encode with the most recent caller whose attack is still alive (same model identity, so
    any of them gives the same embeddings)."""
    for ref in reversed(callers):
        encode = ref()
        if encode is not None:
            return encode(prompts)
    raise RuntimeError("every attack that shared this model's part memory is gone")


def forget_shared_familiarity() -> None:
    """Empty this process's shared memory of part embeddings (e.g. before counting what an
    attack encodes)."""
    with _SHARED_LOCK:
        _SHARED_FAMILIARITY.clear()


def _with_decoys(base: NameNull, result: FullNameDecoys | NoComparableDecoys) -> NameNull:
    if isinstance(result, NoComparableDecoys):
        return replace(base, reason=result.reason)
    notes = base.notes + tuple(
        f"{m.kind} name {m.part!r} held fixed: {m.reason}" for m in result.matches if m.reason
    )
    return replace(base, key="full_name", decoys=result.names, kinds=result.kinds,
                   source=result.source, notes=notes, matches=result.matches,
                   origin=result.origin)


def null_table_rows(nulls: Sequence[NameNull]) -> list[dict[str, Any]]:
    """Per person, what results.parquet/csv say about their null."""
    return [
        {
            "null": null.key,
            "null_reason": null.reason,
            "origin": null.origin,
            "decoy_sex": null.sex,
            "decoy_sex_basis": null.sex_basis,
            "n_decoys": null.n_decoys,
            **{f"n_{kind}": n for kind, n in null.counts().items()},
            "decoy_source": null.source,
        }
        for null in nulls
    ]


def null_summary(nulls: Sequence[NameNull]) -> dict[str, Any]:
    """How many people each null served (summary.json), the full-name null in words, the
    reasons the others were not tested, and the origins."""
    tested = [null.n_decoys for null in nulls if null.tested]
    return {
        "null": FULL_NAME_NULL,
        "people": dict(Counter(null.key for null in nulls)),
        "not_tested_reasons": dict(Counter(n.reason for n in nulls if not n.tested and n.reason)),
        "origins": dict(sorted(Counter(n.origin or "unknown" for n in nulls).items())),
        "decoys_per_person": [min(tested), max(tested)] if tested else None,
    }


def nulls_frame(nulls: Sequence[NameNull], people: Sequence[int]) -> pd.DataFrame:
    """The nulls of an audit's people as a table (RUN/name_null.parquet): one row per person
    with the decoy names and kinds, so a check of one of them uses the audit's very decoys."""
    return pd.DataFrame(
        {
            "person": np.asarray(people, np.int64),
            "name": [n.name for n in nulls],
            "null": [n.key for n in nulls],
            "reason": [n.reason for n in nulls],
            "origin": [n.origin for n in nulls],
            "sex": [n.sex for n in nulls],
            "sex_basis": [n.sex_basis for n in nulls],
            "source": [n.source for n in nulls],
            "seed": np.asarray([n.seed for n in nulls], np.int64),
            "decoys": [list(n.decoys) for n in nulls],
            "kinds": [list(n.kinds) for n in nulls],
            "notes": [list(n.notes) for n in nulls],
            "matches": [json.dumps([asdict(m) for m in n.matches], ensure_ascii=False)
                        for n in nulls],
        }
    )


def null_from_row(row: Mapping[str, Any]) -> NameNull:
    """One row of :func:`nulls_frame` back as a :class:`NameNull`."""

    def text(value: Any) -> str | None:
        return None if value is None or (isinstance(value, float) and np.isnan(value)) else str(
            value
        )

    return NameNull(
        name=str(row["name"]),
        key=row["null"],
        reason=text(row["reason"]),
        origin=text(row["origin"]),
        sex=text(row["sex"]),
        sex_basis=row["sex_basis"],
        decoys=tuple(row["decoys"]),
        kinds=tuple(row["kinds"]),
        source=text(row["source"]),
        seed=int(row["seed"]),
        notes=tuple(row["notes"]),
        matches=tuple(PartMatch(**m) for m in json.loads(row["matches"])),
    )
