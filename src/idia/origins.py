"""Decoy pools by origin, with sex, from the ``names-dataset`` package (MIT; first names and
surnames of 105 countries, ranked per country, with each name's country shares and sex share).

Loading the package takes about 2 GB and tens of seconds, so a compact table is extracted
once into idia's cache folder (``$IDIA_CACHE_DIR``, see idia.cache.default_cache_dir), named
by the package's version, and read from there afterwards (:func:`load_origin_table`). It
keeps, per country, the first names and surnames ranked in its top :data:`MAX_RANK`, with
the name's share of its users in that country and (first names) its female share.

- **Origins** of a name (:meth:`OriginTable.origins`): countries weighted by
  ``(share of the given name there + e) x (share of the family name there + e)``, over the
  countries where a part is ranked; a particle narrows them to the countries that use it
  (van: NL, BE, ...), a family-first order to the countries that write names so, a script to
  the countries with a pool in it; a Vietnamese name means VN, which no pool covers.
- **Sex** of a given name (:meth:`OriginTable.given_sex`): "f" when its female share is at
  least :data:`SEX_SHARE`, "m" when at most 1 - SEX_SHARE, else None (the share is the
  package's, over all countries); US names by the SSA lists first, as the lab labels them.
- **Pools** (:meth:`OriginTable.pools`): an origin's most common first names of one sex and
  surnames, in the real name's script, each with at least :data:`MIN_ORIGIN_SHARE` of its
  users in that origin. "US" is the project's pool (idia.names.default_pool: SSA first names
  x Census surnames), so US names keep the lab's decoys. The package lacks one-character
  surnames, so Chinese (Han) and Korean (Hangul) surnames come from the lists below. Where
  surnames differ by sex (Kowalski/Kowalska, Иванов/Иванова, Papadopoulos/Papadopoulou) the
  pool keeps the real surname's form.
"""

from __future__ import annotations

import importlib.metadata
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from idia.cache import default_cache_dir
from idia.errors import IdiaError
from idia.files import write_atomic
from idia.fullname import (
    DEFAULT_DECOYS,
    MATCHED_PER_SIDE,
    Familiarity,
    FullNameDecoys,
    NoComparableDecoys,
    PartPools,
    full_name_decoys,
)
from idia.nameparts import (
    FAMILY_FIRST_COUNTRIES,
    NameInputError,
    ParsedName,
    PartKind,
    fold,
    parse_name,
    script_of,
    word_list,
)
from idia.names import SEXES, default_pool, infer_sex

TABLE_FORMAT = 1  # bump when the extracted columns or rules change
MAX_RANK = 5000
POOL_SIZE = 1000
MIN_ORIGIN_SHARE = 0.05
SEX_SHARE = 0.75
MIN_SCRIPT_SHARE = 0.10  # a script is a country's own when >= 10% of its ranked names use it
ORIGIN_SMOOTHING = 0.01
_NO_SEX = 65535  # the per-mille female share of a surname (none)

# Countries whose names a particle marks (the particle narrows a name's origins to them).
PARTICLE_COUNTRIES: dict[str, frozenset[str]] = {
    particle: frozenset(countries.split())
    for particles, countries in (
        ("van ter ten", "NL BE ZA SR"),
        ("von zu", "DE AT CH"),
        ("della degli di", "IT CH"),
        ("dos das", "PT BR AO MZ"),
        ("du des", "FR BE CH CA LU"),
        ("bin binti bint ibn al- el- ad- as- ash- at- ar- az-", "SA EG AE IQ JO KW LB LY MA "
         "OM PS QA SD SY TN YE BH DZ MY BN"),
        ("ben-", "IL"),
    )
    for particle in particles.split()
}
VIETNAMESE = "VN"  # not among the package's countries: named so, never pooled

# One-character (and compound) surnames, most common first: the package has none of them.
CHINESE_SURNAMES = word_list(
    "王 李 张 刘 陈 杨 黄 赵 吴 周 徐 孙 马 朱 胡 郭 何 林 罗 高 郑 梁 谢 宋 唐 许 "
    "韩 邓 冯 曹 彭 曾 肖 田 董 潘 袁 蔡 蒋 余 于 杜 叶 程 魏 苏 吕 丁 任 卢 姚 沈 "
    "钟 姜 崔 谭 陆 范 汪 廖 石 金 韦 贾 夏 付 方 邹 熊 白 孟 秦 邱 侯 江 尹 薛 闫 "
    "段 雷 龙 黎 史 陶 贺 毛 郝 顾 龚 邵 万 覃 武 钱 戴 严 莫 孔 向 常 汤 "
    "欧阳 司马 诸葛 上官 东方 皇甫 慕容 司徒 令狐 夏侯"
)
CHINESE_SURNAMES_TRADITIONAL = word_list(
    "陳 林 黃 張 李 王 吳 劉 蔡 楊 許 鄭 謝 郭 洪 曾 邱 廖 賴 周 徐 蘇 葉 莊 呂 江 "
    "何 蕭 羅 高 簡 朱 鍾 施 游 詹 沈 彭 胡 余 盧 潘 顏 梁 趙 柯 翁 魏 方 孫 戴 范 "
    "宋 鄧 杜 侯 曹 薛 傅 丁 溫 紀 蔣 藍 連 石 唐 馬 董 卓 姚 程 康 田 黎 馮 袁 白 "
    "涂 尤 巫 韓 龔 陸 嚴 倪 邵 童 麥 關 歐陽 張簡 司馬 諸葛 上官 范姜"
)
KOREAN_SURNAMES = word_list(
    "김 이 박 최 정 강 조 윤 장 임 한 오 서 신 권 황 안 송 전 홍 유 고 문 양 손 배 "
    "백 허 남 심 노 하 곽 성 차 주 우 구 민 류 나 진 지 엄 채 원 천 방 공 현 함 변 "
    "염 여 추 도 소 석 선 설 마 길 연 위 표 명 기 반 라 왕 금 옥 육 인 맹 제 모 탁 "
    "국 어 은 편 용 예 경 봉 사 부 남궁 황보 제갈 선우 독고 사공 서문"
)
BUILTIN_SHARE = 1 / 3  # a listed surname's share in each of its 3 countries (lists say where only)
BUILTIN_SURNAMES: dict[tuple[str, str], tuple[str, ...]] = {
    **{(c, "Han"): CHINESE_SURNAMES for c in ("CN", "SG", "MY")},
    **{(c, "Han"): CHINESE_SURNAMES_TRADITIONAL for c in ("TW", "HK", "MO")},
    ("KR", "Hangul"): KOREAN_SURNAMES,
}

# Surnames written differently for women and men: folded endings, longest first.
_GENDERED_SURNAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # origin group: (female endings, male endings)
    "slavic": (
        ("skaya", "ova", "eva", "ina", "yna", "aya", "ska", "cka", "dzka", "ская", "цкая",
         "ова", "ева", "ина", "ына", "ая"),
        ("skiy", "skii", "sky", "ski", "cki", "dzki", "ov", "ev", "in", "yn", "oy", "ский",
         "цкий", "ов", "ев", "ин", "ын", "ой"),
    ),
    "czech": (("ova", "ska", "cka"), ("sky", "cky")),
    "lithuanian": (("iene", "aite", "yte", "ute"), ("as", "is", "us", "ys")),
    "greek": (("ou", "ου"), ("os", "is", "as", "ος", "ης", "ας")),
}
_GENDERED_ORIGINS = {
    **{c: "slavic" for c in ("RU", "UA", "BY", "KZ", "BG", "PL", "MK", "RS")},
    **{c: "czech" for c in ("CZ", "SK")},
    "LT": "lithuanian",
    **{c: "greek" for c in ("GR", "CY")},
}


class OriginTableError(IdiaError, ValueError):
    """The origin table cannot be built or an origin is unknown; the message says what to do."""


class UncoveredScriptError(NameInputError):
    """A name written in a script no decoy pool covers."""


@dataclass(frozen=True)
class Origin:
    country: str
    weight: float


@dataclass(frozen=True)
class ExtractionStats:
    path: Path
    seconds: float
    rows: int
    bytes: int
    version: str


def names_dataset_version() -> str:
    try:
        return importlib.metadata.version("names-dataset")
    except importlib.metadata.PackageNotFoundError as err:
        raise OriginTableError(
            "the names-dataset package is not installed: pip install 'names-dataset>=3.3'"
        ) from err


def table_path(cache_dir: str | Path | None = None) -> Path:
    """Where the compact table of this names-dataset version lives."""
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    return folder / f"origins-names-dataset-{names_dataset_version()}-v{TABLE_FORMAT}.parquet"


def extract_origin_table(path: str | Path) -> ExtractionStats:
    """Read the package once (first names, then surnames, one at a time to bound memory) and
    write the compact table to ``path`` atomically."""
    from names_dataset import NameDataset  # 2 GB when loaded: only here

    start = time.perf_counter()
    frames = []
    for kind in ("given", "family"):
        dataset = NameDataset(load_first_names=kind == "given", load_last_names=kind == "family")
        entries = dataset.first_names if kind == "given" else dataset.last_names
        frames.append(_rows(entries, kind))
        del dataset, entries
    table = pd.concat(frames, ignore_index=True)
    unique = table["name"].unique()
    keys = dict(zip(unique, map(fold, unique), strict=True))
    scripts = dict(zip(unique, map(script_of, unique), strict=True))
    table["key"] = table["name"].map(keys)
    table["script"] = table["name"].map(scripts).astype("category")
    for column in ("kind", "country"):
        table[column] = table[column].astype("category")
    table = table.sort_values(["kind", "key", "name", "country"], kind="stable")
    # The display name is stored only where it is not the key in title case (7% of rows).
    table["name"] = table["name"].where(table["name"] != table["key"].str.title(), None)
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    write_atomic(path, lambda tmp: table.to_parquet(tmp, compression="zstd",
                                                    compression_level=19, index=False))
    return ExtractionStats(path, time.perf_counter() - start, len(table), path.stat().st_size,
                           names_dataset_version())


def _rows(entries: Mapping[str, dict], kind: PartKind) -> pd.DataFrame:
    names, countries, ranks, shares, females = [], [], [], [], []
    for name, info in entries.items():
        if not _usable(name):
            continue
        gender = info.get("gender") or {}
        female = round(1000 * gender.get("F", 0.0)) if kind == "given" and gender else _NO_SEX
        share_of = info.get("country") or {}
        for country, rank in (info.get("rank") or {}).items():
            if rank is not None and rank <= MAX_RANK:
                names.append(name)
                countries.append(country)
                ranks.append(rank)
                shares.append(round(1000 * share_of.get(country, 0.0)))
                females.append(female)
    return pd.DataFrame(
        {
            "kind": kind,
            "name": names,
            "country": countries,
            "rank": np.asarray(ranks, np.int16),
            "share": np.asarray(shares, np.uint16),
            "female": np.asarray(females, np.uint16),
        }
    )


def _usable(name: str) -> bool:
    """A name as people write one: 2 to 40 letters (with their marks), spaces, hyphens or
    apostrophes, at most three words."""
    return (
        name == name.strip()
        and 2 <= len(name) <= 40
        and name.count(" ") <= 2
        and all(ch.isalpha() or ch in " -'" or unicodedata.category(ch)[0] == "M" for ch in name)
    )


@lru_cache(maxsize=2)
def _open_table(path: Path) -> OriginTable:
    return OriginTable(pd.read_parquet(path), names_dataset_version())


def load_origin_table(cache_dir: str | Path | None = None) -> OriginTable:
    """The compact table, extracted from the package on first use and read from the cache
    folder afterwards (once per process). Processes that share a cache folder extract it
    once: the others wait for the first (the extraction takes about 40 s and 2 GB)."""
    path = table_path(cache_dir)
    if not path.is_file():
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # for the lock file
            with FileLock(path.with_name(path.name + ".lock")):
                if not path.is_file():
                    extract_origin_table(path)
        except OSError as err:
            raise OriginTableError(
                f"cannot write the origin table to {path.parent} ({err}); set $IDIA_CACHE_DIR "
                "to a writable folder"
            ) from err
    try:
        return _open_table(path)
    except (OSError, ValueError, KeyError) as err:
        raise OriginTableError(
            f"{path} is not a readable origin table ({err}); delete it and it will be rebuilt"
        ) from err


class OriginTable:
    """Lookups over the compact table: ranks and shares of a word by country, origins of a
    name, the sex of a given name, and decoy pools by origin and script."""

    def __init__(self, frame: pd.DataFrame, version: str) -> None:
        self.version = version
        self._frame = frame
        self._keys: dict[str, np.ndarray] = {}
        self._starts: dict[str, np.ndarray] = {}
        keys = frame["key"]
        first = (keys != keys.shift()) | (frame["kind"] != frame["kind"].shift())
        for kind in ("given", "family"):
            rows = np.flatnonzero((frame["kind"] == kind).to_numpy())
            if not len(rows):
                continue
            starts = np.flatnonzero(first.to_numpy()[rows[0] : rows[-1] + 1]) + rows[0]
            self._keys[kind] = keys.iloc[starts].to_numpy(dtype=object)
            self._starts[kind] = np.r_[starts, rows[-1] + 1]
        self.countries: tuple[str, ...] = tuple(frame["country"].cat.categories)
        self._country_codes = frame["country"].cat.codes.to_numpy()
        self._ranks = frame["rank"].to_numpy()
        self._shares = frame["share"].to_numpy()
        self._females = frame["female"].to_numpy()
        self._pools: dict[tuple, tuple[str, ...]] = {}
        self._scripts: dict[tuple[str, str], tuple[str, ...]] = {}
        self._covered: frozenset[str] | None = None
        self._script_counts = frame.groupby(["kind", "country", "script"], observed=True).size()

    # --- words --------------------------------------------------------------------------

    def _rows(self, part: str, kind: PartKind) -> slice | None:
        keys = self._keys.get(kind)
        if keys is None:
            return None
        key = fold(part)
        at = int(np.searchsorted(keys, key))
        if at == len(keys) or keys[at] != key:
            return None
        return slice(self._starts[kind][at], self._starts[kind][at + 1])

    def ranks(self, part: str, kind: PartKind) -> dict[str, int]:
        """Country -> the word's best rank there as a first name or surname (accents and
        case folded), plus the Chinese and Korean surname lists."""
        out: dict[str, int] = {}
        rows = self._rows(part, kind)
        if rows is not None:
            for code, rank in zip(self._country_codes[rows], self._ranks[rows], strict=True):
                country = self.countries[code]
                out[country] = min(int(rank), out.get(country, int(rank)))
        if kind == "family":
            for (country, _), names in BUILTIN_SURNAMES.items():
                if part in names:
                    out[country] = min(names.index(part) + 1, out.get(country, 10**6))
        return out

    def shares(self, part: str, kind: PartKind) -> dict[str, float]:
        """Country -> the share of the word's users who live there, where it is ranked."""
        out: dict[str, float] = {}
        rows = self._rows(part, kind)
        if rows is not None:
            for code, share in zip(self._country_codes[rows], self._shares[rows], strict=True):
                country = self.countries[code]
                out[country] = max(share / 1000.0, out.get(country, 0.0))
        if kind == "family":
            for (country, _), names in BUILTIN_SURNAMES.items():
                if part in names:
                    out[country] = max(out.get(country, 0.0), BUILTIN_SHARE)
        return out

    def female_share(self, given: str) -> float | None:
        """The share of women among a first name's users (its best-ranked spelling, also
        without hyphens: Ji-sung as Jisung)."""
        for variant in dict.fromkeys([given, given.replace("-", ""), given.replace("-", " ")]):
            rows = self._rows(variant, "given")
            if rows is None:
                continue
            ranks, females = self._ranks[rows], self._females[rows]
            known = females != _NO_SEX
            if known.any():
                return float(females[known][np.argmin(ranks[known])]) / 1000.0
        return None

    # --- names ---------------------------------------------------------------------------

    def origins(self, name: ParsedName) -> tuple[Origin, ...]:
        """Countries the name may come from, most likely first, weights summing to 1; empty
        when no part is known.

        Candidates are the countries where a part ranks and has at least MIN_ORIGIN_SHARE of
        its users; the name's form narrows them when that leaves any: a particle to the
        countries that use it, a family-first order to the countries that write names so, a
        script to the countries with pools in it. A name no part of which is known gets the
        one origin whose pools cover its script, if only one does (Hangul: KR).
        """
        if "order:vietnamese" in name.flags:
            return (Origin(VIETNAMESE, 1.0),)
        given = _best_shares(self, [name.given, name.given.replace("-", "")], "given")
        family = {}
        if name.family:
            family = _best_shares(self, [name.family, name.family_core], "family")
        countries = set(given) | set(family)
        narrowing = []
        if name.particles:
            narrowing.append(PARTICLE_COUNTRIES.get(fold(name.particles[0]), frozenset()))
        if name.order == "family_first" and not {"order:override", "order:comma"} & set(
            name.flags
        ):
            narrowing.append(FAMILY_FIRST_COUNTRIES)
        narrowing.append({c for c in countries if self.covers(c, name.script)})
        for allowed in narrowing:
            if countries & allowed:
                countries &= allowed
        if not countries:
            only = [c for c in (*self.countries, "US") if self.covers(c, name.script)]
            return (Origin(only[0], 1.0),) if len(only) == 1 else ()
        eps = ORIGIN_SMOOTHING
        weights = {
            c: (given.get(c, 0.0) + eps) * ((family.get(c, 0.0) + eps) if name.family else 1.0)
            for c in countries
        }
        total = sum(weights.values())
        ranked = sorted(weights.items(), key=lambda item: (-item[1], item[0]))
        return tuple(Origin(c, w / total) for c, w in ranked)

    def given_sex(self, given: str, origin: str | None = None,
                  threshold: float = SEX_SHARE) -> str | None:
        """"f" or "m" when the first name's female share is at least ``threshold`` or at most
        1 - threshold; None when it is in between or unknown. US names are labelled as the
        lab labels them: by the SSA lists (idia.names.infer_sex), the share where SSA lacks
        the name."""
        if origin == "US":
            known = infer_sex(given)
            if known is not None:
                return known
        share = self.female_share(given)
        if share is None:
            return None
        if share >= threshold:
            return "f"
        if share <= 1 - threshold:
            return "m"
        return None

    # --- pools ---------------------------------------------------------------------------

    def pool_scripts(self, origin: str, kind: PartKind) -> tuple[str, ...]:
        """The scripts an origin's pool of ``kind`` covers: those of at least
        MIN_SCRIPT_SHARE of its ranked names (plus the built-in surname lists). Remembered:
        every parsed name asks (:func:`require_covered_script`)."""
        if (origin, kind) not in self._scripts:
            self._scripts[(origin, kind)] = self._pool_scripts(origin, kind)
        return self._scripts[(origin, kind)]

    def _pool_scripts(self, origin: str, kind: PartKind) -> tuple[str, ...]:
        if origin == "US":
            return ("Latin",)
        try:
            counts = self._script_counts.loc[(kind, origin)]
        except KeyError:
            counts = pd.Series(dtype=int)
        scripts = {str(s) for s, n in counts.items() if n >= MIN_SCRIPT_SHARE * counts.sum()}
        if kind == "family":
            scripts |= {script for (c, script) in BUILTIN_SURNAMES if c == origin}
        return tuple(sorted(scripts - {"Mixed", "None"}))

    def covers(self, origin: str, script: str) -> bool:
        """Whether an origin has both first names and surnames in a script."""
        return script in self.pool_scripts(origin, "given") and script in self.pool_scripts(
            origin, "family"
        )

    def covered_scripts(self) -> frozenset[str]:
        """Scripts some origin has both first names and surnames in."""
        if self._covered is None:
            self._covered = frozenset(
                script
                for origin in (*self.countries, "US")
                for script in self.pool_scripts(origin, "given")
                if self.covers(origin, script)
            )
        return self._covered

    def names_of(self, origin: str, kind: PartKind, script: str,
                 sex: str | None = None) -> tuple[str, ...]:
        """The origin's most common names of ``kind`` in ``script`` (first names of ``sex``),
        at most POOL_SIZE, each with at least MIN_ORIGIN_SHARE of its users there and ranking
        better there as ``kind`` than as the other kind (the package's users often swap the
        fields: Wang as a first name, Eunjung as a surname)."""
        cache_key = (origin, kind, script, sex)
        if cache_key not in self._pools:
            self._pools[cache_key] = self._names_of(origin, kind, script, sex)
        return self._pools[cache_key]

    def _names_of(self, origin: str, kind: PartKind, script: str,
                  sex: str | None) -> tuple[str, ...]:
        if origin == "US" and script == "Latin":
            pool = default_pool()
            return pool.first_names[sex] if kind == "given" and sex else pool.surnames
        if kind == "family" and (origin, script) in BUILTIN_SURNAMES:
            return BUILTIN_SURNAMES[(origin, script)]
        if script not in self.pool_scripts(origin, kind):
            return ()
        frame = self._frame
        rows = frame[
            (frame["kind"] == kind)
            & (frame["country"] == origin)
            & (frame["script"] == script)
            & (frame["share"] >= 1000 * MIN_ORIGIN_SHARE)
        ]
        if kind == "given":
            if sex not in SEXES:
                return ()
            female = rows["female"].astype(float)
            keep = female >= 1000 * SEX_SHARE if sex == "f" else female <= 1000 * (1 - SEX_SHARE)
            rows = rows[keep & (rows["female"] != _NO_SEX)]
        other = frame[(frame["kind"] != kind) & (frame["country"] == origin)]
        other_rank = rows["key"].map(other.groupby("key", observed=True)["rank"].min())
        rows = rows[other_rank.isna() | (rows["rank"] < other_rank)]
        rows = rows.sort_values("rank", kind="stable").drop_duplicates("key")
        names = rows["name"].fillna(rows["key"].str.title())
        return tuple(names)[:POOL_SIZE]

    def pools(self, name: ParsedName, origin: str, sex: str | None) -> PartPools | str:
        """Pools for ``name`` from ``origin`` in the scripts of its parts; a reason (str) when
        no pool covers them."""
        given_script, family_script = script_of(name.given), script_of(name.family)
        family = self.names_of(origin, "family", family_script)
        if not family:
            return f"no {origin} surnames in {family_script} script"
        form = surname_form(name.family, origin)
        if form is not None or origin in _GENDERED_ORIGINS:
            family = tuple(f for f in family if surname_form(f, origin) in _forms_like(form, sex))
        given = {s: self.names_of(origin, "given", given_script, s) for s in SEXES}
        if origin == "US" and family_script == "Latin":
            source = default_pool().source
        else:
            source = f"names-dataset {self.version}, {origin}"
            if (origin, family_script) in BUILTIN_SURNAMES:
                source += f"; {family_script} surnames from idia's list"
        return PartPools(origin=origin, given=given, family=family, source=source)


def _best_shares(table: OriginTable, variants: list[str], kind: PartKind) -> dict[str, float]:
    """A part's share by country (best over its spellings), where it is at least
    MIN_ORIGIN_SHARE: the same bar a pool name must clear."""
    out: dict[str, float] = {}
    for variant in dict.fromkeys(v for v in variants if v):
        for country, share in table.shares(variant, kind).items():
            if share >= MIN_ORIGIN_SHARE:
                out[country] = max(share, out.get(country, 0.0))
    return out


def sex_of_name(text: str, table: OriginTable) -> str | None:
    """The sex a full name's given name is given to, where the tables know it: its share in
    the name's most likely origin (names-dataset; SSA for US names), else SSA's lists; None
    when neither knows it or it is given to both."""
    try:
        name = parse_name(text, evidence=table)
    except NameInputError:
        return None
    found = table.origins(name)
    sex = table.given_sex(name.given, found[0].country if found else None)
    return sex if sex is not None else infer_sex(text)


def surname_form(family: str, origin: str) -> str | None:
    """"f" or "m" for a surname written in its women's or men's form in an origin where
    surnames have both (Kowalska / Kowalski); None for a form both use or other origins."""
    group = _GENDERED_ORIGINS.get(origin)
    if group is None:
        return None
    female, male = _GENDERED_SURNAMES[group]
    word = fold(family).split(" ")[-1]
    if any(word.endswith(ending) for ending in female):
        return "f"
    if any(word.endswith(ending) for ending in male):
        return "m"
    return None


def _forms_like(form: str | None, sex: str | None) -> set[str | None]:
    """Surname forms a decoy may take: the real one; for a form both sexes use, also the
    person's sex's own form when the sex is known."""
    if form is not None:
        return {form}
    return {None} if sex is None else {None, sex}


def require_covered_script(name: ParsedName, table: OriginTable) -> None:
    """Raise :class:`UncoveredScriptError` when no pool covers the name's script."""
    covered = table.covered_scripts()
    if name.script not in covered:
        raise UncoveredScriptError(
            f"no decoy names exist in the {name.script} script of {name.text!r} (pools cover "
            f"{', '.join(sorted(covered))}); write the name in one of those scripts"
        )


def decoys_for(
    name: ParsedName,
    table: OriginTable,
    familiarity: Familiarity,
    *,
    origin: str | None = None,
    sex: str | None = None,
    seed: int = 0,
    total: int = DEFAULT_DECOYS,
    per_side: int = MATCHED_PER_SIDE,
    exclude: tuple[str, ...] = (),
) -> FullNameDecoys | NoComparableDecoys:
    """The full-name null's decoys for one name: ``origin`` (a country code) and ``sex``
    ("f"/"m") override what is inferred (--origin, --sex)."""
    if sex is not None and sex not in SEXES:
        raise NameInputError(f"sex must be one of {SEXES} or None, not {sex!r}")
    if origin is not None:
        origin = origin.upper()
        if origin not in table.countries and origin != "US":
            raise OriginTableError(
                f"unknown origin {origin!r}: give an ISO country code the pools know "
                f"({', '.join(table.countries)})"
            )
    if name.is_mononym:
        return NoComparableDecoys(name.text, "mononym", "a single-word name has no parts to "
                                  "recombine")
    if origin is None:
        found = table.origins(name)
        if not found:
            return NoComparableDecoys(
                name.text, "unknown_origin",
                "no pool knows its parts, so its origin is unknown: give the origin "
                "(--origin, a country code)",
            )
        origin = found[0].country
    if origin == VIETNAMESE:
        return NoComparableDecoys(name.text, "uncovered_origin",
                                  "no pool holds Vietnamese names")
    if sex is None:
        sex = table.given_sex(name.given, origin)
    pools = table.pools(name, origin, sex)
    if isinstance(pools, str):
        return NoComparableDecoys(name.text, "uncovered_script", pools)
    return full_name_decoys(name, pools, familiarity, sex=sex, seed=seed, total=total,
                            per_side=per_side, exclude=exclude)
