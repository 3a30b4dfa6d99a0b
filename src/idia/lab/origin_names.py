"""The names-from-anywhere control (`idia lab-origins LAB`, issue 20): never-seen names of
several origins, drawn from the name tables (:mod:`idia.origins`), checked on a lab's model.

The lab's corpus names US people only, so a name drawn from another origin's pools is one the
model never saw, though some of its parts may be familiar (a "Maria" or a "Martin" is common
in many countries). Each name is checked as an individual would check it
(:meth:`idia.engine.IdentityInferenceAttack.check`: its full-name null from the origin's own
pools, the declared origin and sex) on the held-out photos of a lab non-member, dealt in
turn; the name-familiarity and text-only tests' p-values are then valid exactly when, per
origin, the share at p <= 0.05 (and 0.01) stays within its Clopper-Pearson interval of the
level.

With ``member_parts`` it also checks never-seen names made of the lab's **members' parts**
(the issue's "Tom <unused surname>"): a member's first name with a surname no lab name has, a
first name no lab name has with a member's surname, and one member's first name with another
member's surname (both parts seen, never together). These ask the full-name null the
question the paper's decoys answered wrongly: the model knows the part, not the name.

Writes ``LAB/origin_names/names.csv`` (one row per name: its group (an origin code or a kind
of member-part name), origin, script, sex, the face it was shown with, each test's p-value and
null) and ``summary.json``; reads the lab folder only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from idia.evaluation import calibration
from idia.lab.pipeline import LabError
from idia.nameparts import script_of
from idia.names import NamePool, default_pool, normalize_name
from idia.people import find_people

# Eight origins from four continents (Europe, Asia, Africa, South America), their names in
# Latin script (romanized for Japan and China): given names of both sexes and surnames from
# names-dataset.
DEFAULT_ORIGINS: tuple[str, ...] = ("DE", "PL", "TR", "IN", "JP", "CN", "NG", "BR")
DEFAULT_PER_ORIGIN = 30
DEFAULT_NAME_DECOYS = 200  # p floor 1/201: fine enough for the shares at 0.05 and 0.01
CLAIMS: tuple[str, ...] = ("name_familiarity", "text_only")
FOLDER = "origin_names"
# Never-seen names from the members' parts: a member's first name + an unused surname, an
# unused first name + a member's surname, one member's first name + another's surname.
MEMBER_PART_KINDS: tuple[str, ...] = ("member-first", "member-surname", "members-both")
NAME_COLUMNS = ["group", "origin", "name", "sex", "script"]  # group: an origin or a kind


@dataclass(frozen=True)
class OriginNamesSettings:
    origins: tuple[str, ...] = DEFAULT_ORIGINS
    per_origin: int = DEFAULT_PER_ORIGIN
    name_decoys: int = DEFAULT_NAME_DECOYS
    seed: int = 0
    member_parts: int = 0  # never-seen names per kind of MEMBER_PART_KINDS (0: none)


def draw_names(
    table: Any, origins: Sequence[str], per_origin: int, seen: set[str], seed: int
) -> pd.DataFrame:
    """``per_origin`` full names per origin, half of each sex: a given name of that sex and a
    surname, each drawn uniformly from the origin's pools (Latin script), never a name in
    ``seen`` (normalized), never twice. Seeded per origin."""
    rows = []
    for origin in origins:
        rng = np.random.default_rng([seed, *origin.encode()])
        family = table.names_of(origin, "family", "Latin")
        given = {sex: table.names_of(origin, "given", "Latin", sex) for sex in ("f", "m")}
        if not family or not all(given.values()):
            raise LabError(f"the name tables have no Latin-script pools of both sexes for "
                           f"{origin}; choose other --origins")
        drawn: set[str] = set()
        for i in range(per_origin):
            sex = ("f", "m")[i % 2]
            name, _ = _new_name(partial(_pool_name, rng, given[sex], family, sex), seen, drawn,
                                f"{per_origin} new names for {origin}")
            rows.append({"group": origin, "origin": origin, "name": name, "sex": sex,
                         "script": script_of(name)})
    return pd.DataFrame(rows, columns=NAME_COLUMNS)


def _pool_name(
    rng: np.random.Generator, given: Sequence[str], family: Sequence[str], sex: str
) -> tuple[str, str]:
    return f"{given[rng.integers(len(given))]} {family[rng.integers(len(family))]}", sex


def _new_name(
    draw: Callable[[], tuple[str, str]], seen: set[str], drawn: set[str], what: str
) -> tuple[str, str]:
    """(name, sex) from ``draw`` whose name is neither in ``seen`` nor already in ``drawn``
    (normalized; added to ``drawn``), or :class:`LabError` after 1,000 tries."""
    for _ in range(1000):
        name, sex = draw()
        key = normalize_name(name)
        if key not in seen and key not in drawn:
            drawn.add(key)
            return name, sex
    raise LabError(f"could not draw {what}")


def draw_member_part_names(
    lab_people: pd.DataFrame, per_kind: int, seen: set[str], seed: int,
    pool: NamePool | None = None,
) -> pd.DataFrame:
    """``per_kind`` never-seen names of each kind of :data:`MEMBER_PART_KINDS`, from the lab's
    people (``lab_people``: ``name``, ``member``, ``sex``; "first last" names) and ``pool``
    (the lab's US pool): a member's first name (their sex) + a pool surname that is no part of
    any lab name; a pool first name of no lab name (sexes in turn) + a member's surname; a
    member's first name + another member's surname (the first name's sex). Never a name in
    ``seen`` (normalized), never twice; seeded."""
    pool = pool or default_pool()
    parts = [str(n).split(maxsplit=1) for n in lab_people["name"]]
    if any(len(p) != 2 for p in parts):
        raise LabError("--member-parts needs the lab's 'first last' names")
    used_first = {normalize_name(f) for f, _ in parts}
    used_last = {normalize_name(last) for _, last in parts}
    members = [(f, last, str(sex)) for (f, last), member, sex in
               zip(parts, lab_people["member"].astype(bool), lab_people["sex"], strict=True)
               if member]
    if len(members) < 2:
        raise LabError("--member-parts needs a lab with at least two members")
    free_last = [x for x in pool.surnames if normalize_name(x) not in used_last]
    free_first = {sex: [x for x in pool.first_names[sex] if normalize_name(x) not in used_first]
                  for sex in ("f", "m")}
    rng = np.random.default_rng([seed, 83])
    drawn: set[str] = set()
    rows = []

    def one(kind: str, i: int) -> tuple[str, str]:
        first, _, sex = members[rng.integers(len(members))]
        if kind == "member-first":
            return f"{first} {free_last[rng.integers(len(free_last))]}", sex
        if kind == "member-surname":
            sex = ("f", "m")[i % 2]
            _, last, _ = members[rng.integers(len(members))]
            return f"{free_first[sex][rng.integers(len(free_first[sex]))]} {last}", sex
        _, last, _ = members[rng.integers(len(members))]
        return f"{first} {last}", sex

    for kind in MEMBER_PART_KINDS:
        for i in range(per_kind):
            name, sex = _new_name(lambda kind=kind, i=i: one(kind, i), seen, drawn,
                                  f"{per_kind} new names of kind {kind}")
            rows.append({"group": kind, "origin": None, "name": name, "sex": sex,
                         "script": script_of(name)})
    return pd.DataFrame(rows, columns=NAME_COLUMNS)


def _seen_text(lab: Path) -> tuple[set[str], str]:
    """The lab's names under test and its training captions as one normalized text: a drawn
    name in either is one the model may have seen, and is redrawn or dropped."""
    from idia.lab.train import read_caption_csv

    names = {normalize_name(n) for n in pd.read_csv(lab / "membership.csv")["name"]}
    captions = lab / "trainset" / "train.csv"
    text = (" | ".join(normalize_name(pair.caption) for pair in read_caption_csv(captions))
            if captions.is_file() else "")
    return names, text


def run_origin_names(
    lab: str | Path,
    settings: OriginNamesSettings = OriginNamesSettings(),
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Draw the names, check each on the lab's model with a non-member's held-out photos, and
    write and return the per-origin calibration of the name tests."""
    from idia.engine import create_attack
    from idia.name_null import NameNulls

    if not (settings.origins and settings.per_origin) and not settings.member_parts:
        raise LabError("nothing to check: give --origins with --per-origin N, or "
                       "--member-parts N")
    if not settings.per_origin:
        settings = replace(settings, origins=())
    lab = Path(lab).resolve()
    summary_path = lab / "summary.json"
    if not summary_path.is_file() or not (lab / "membership.csv").is_file():
        raise LabError(f"{lab} is not a finished lab folder (no summary.json or "
                       "membership.csv); run 'idia lab' first")
    lab_summary = json.loads(summary_path.read_text())
    membership = pd.read_csv(lab / "membership.csv")
    outsiders = set(membership.loc[~membership["member"].astype(bool), "name"])
    people = [p for p in find_people(lab / "people")[0] if p.name in outsiders and p.photos]
    if not people:
        raise LabError(f"{lab} has no non-member with photos to show the names with")
    start = time.perf_counter()
    attacker = create_attack(
        lab_summary["model"], num_names=lab_summary["preset"]["num_names"],
        seed=settings.seed, crop="none", cache_dir=lab / "cache", progress=False,
        name_decoys=settings.name_decoys,
    )
    nulls: NameNulls = attacker.name_nulls
    seen, captions = _seen_text(lab)
    names = pd.concat([
        draw_names(nulls.table, settings.origins, settings.per_origin, seen, settings.seed),
        draw_member_part_names(membership, settings.member_parts, seen, settings.seed)
        if settings.member_parts else None,
    ], ignore_index=True)
    names = names[[normalize_name(n) not in captions for n in names["name"]]]
    kinds = f"{len(settings.origins)} origins" + (
        ", names of the members' parts" if settings.member_parts else "")
    log(f"checking {len(names)} never-seen names ({kinds}) on "
        f"{lab_summary['model']} ({settings.name_decoys} full-name decoys each), with the "
        f"photos of {len(people)} non-members in turn")
    rows = []
    for i, row in enumerate(names.itertuples(index=False)):
        person = people[i % len(people)]
        origin = row.origin if isinstance(row.origin, str) else None  # members': inferred
        result = attacker.check(person.photos, row.name, sex=row.sex, origin=origin,
                                alpha=lab_summary.get("alpha") or 0.05)
        out = {**row._asdict(), "photos_of": person.name, "n_photos": len(person.photos),
               "null": (result.name_null or {}).get("key")}
        for claim in CLAIMS:
            test = result.claims[claim]
            out[f"p_{claim}"] = test.p_value if test.tested else np.nan
            out[f"n_null_{claim}"] = test.n_null if test.tested else 0
            out[f"reason_{claim}"] = None if test.tested else test.reason
        rows.append(out)
        if (i + 1) % 20 == 0:
            log(f"  {i + 1}/{len(names)} names checked")
    table = pd.DataFrame(rows)
    summary = {
        "lab": str(lab),
        "model": lab_summary["model"],
        "settings": asdict(settings),
        "n_names": len(table),
        "n_non_members_shown": len(people),
        "seconds": round(time.perf_counter() - start, 1),
        "by_origin": {
            origin: _figures(table[table["group"] == origin], settings.seed)
            for origin in settings.origins
        },
        "by_member_parts": {
            kind: _figures(table[table["group"] == kind], settings.seed)
            for kind in (MEMBER_PART_KINDS if settings.member_parts else ())
        },
        "all": _figures(table, settings.seed),
    }
    folder = lab / FOLDER
    folder.mkdir(exist_ok=True)
    table.to_csv(folder / "names.csv", index=False)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _figures(rows: pd.DataFrame, seed: int) -> dict[str, Any]:
    """Per claim: names tested, those not (with the reasons), and the calibration of the
    tested names' p-values (shares at 0.05 and 0.01, Clopper-Pearson, one-sided)."""
    out: dict[str, Any] = {"n": len(rows)}
    for claim in CLAIMS:
        p = rows[f"p_{claim}"].to_numpy(float)
        tested = ~np.isnan(p)
        checks = calibration(p[tested], rows[f"n_null_{claim}"].to_numpy(float)[tested], seed)
        out[claim] = {
            "n_tested": int(tested.sum()),
            "not_tested": rows.loc[~tested, f"reason_{claim}"].value_counts().to_dict(),
            "at_0.05": checks["at_0.05"],
            "at_0.01": checks["at_0.01"],
            "fails": checks["fails"],
        }
    return out
