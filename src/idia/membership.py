"""Ground truth: which people are in a model's training data, and how often.

Accepted tables (CSV/TSV/Parquet): ``name,member[,count][,sex]`` where member is true/false,
1/0, yes/no or member/non_member; the paper's ``name,count,membership,bin`` file; or
``name,count`` alone (member when count >= 1). ``sex`` (f/m, female/male, woman/man) is the
sex of the person's face, used to match reference people in the face-association test. A
table with a true ``partial`` column (what ``idia count-names --allow-partial`` writes when
shards went unread) is read with a PartialMembershipWarning: its non-members may occur in the
captions it did not count.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from idia.errors import IdiaError
from idia.names import display_name, normalize_name

PAPER_BIN_EDGES: tuple[int, ...] = (0, 25, 50, 75, 100, 125, 150, 200, 225, 250, 275, 300)
"""Lower edges of the paper's occurrence bins, left-closed: [0, 25), ..., [150, 200), ...,
[300, inf) (the edges of its ``pd.cut(..., right=False)``; it has no 175 edge). One source for
``idia count-names`` and ``idia evaluate --bins paper``."""

SEX_WORDS = {"f": "f", "female": "f", "woman": "f", "w": "f", "m": "m", "male": "m", "man": "m"}
TRUE_WORDS = {"true", "1", "yes", "y", "member", "in", "t"}
FALSE_WORDS = {"false", "0", "no", "n", "non_member", "non-member", "nonmember", "out", "f"}


class MembershipError(IdiaError, ValueError):
    """The membership table cannot be read; the message says what is wrong."""


class PartialMembershipWarning(UserWarning):
    """The table comes from a caption census that skipped shards."""


def read_membership(path: str | Path) -> pd.DataFrame:
    """A table with columns ``name`` (display form), ``key`` (normalised), ``member`` (bool),
    ``count`` (nullable int), ``sex`` ("f", "m" or missing) and ``origin`` (a two-letter
    country code in upper case, or missing: the origin of the name's decoy pools, which the
    name tables otherwise infer)."""
    path = Path(path)
    if not path.is_file():
        raise MembershipError(f"membership file not found: {path}")
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, sep=None, engine="python", dtype=str)
    except Exception as err:  # pandas raises many types for malformed files
        raise MembershipError(f"{path}: cannot read as a table ({err})") from err
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if "name" not in frame:
        raise MembershipError(f"{path}: needs a 'name' column; found {list(frame.columns)}")
    flag_column = next((c for c in ("member", "membership", "is_member") if c in frame), None)
    if flag_column is None and "count" not in frame:
        raise MembershipError(
            f"{path}: needs a 'member' (or 'membership') column or a 'count' column; "
            f"found {list(frame.columns)}"
        )
    counts = (
        pd.to_numeric(frame["count"], errors="coerce").astype("Int64")
        if "count" in frame
        else pd.Series(pd.NA, index=frame.index, dtype="Int64")
    )
    if flag_column is not None:
        words = frame[flag_column].astype(str).str.strip().str.lower()
        unknown = sorted(set(words) - TRUE_WORDS - FALSE_WORDS)
        if unknown:
            raise MembershipError(
                f"{path}: column '{flag_column}' has values {unknown[:5]} that are neither "
                "true/1/yes/member nor false/0/no/non_member"
            )
        member = words.isin(TRUE_WORDS)
    else:
        if counts.isna().any():
            raise MembershipError(f"{path}: some 'count' values are not numbers")
        member = counts >= 1
    names = frame["name"].astype(str).map(display_name)
    table = pd.DataFrame(
        {
            "name": names,
            "key": names.map(normalize_name),
            "member": member.astype(bool),
            "count": counts,
            "sex": _sexes(frame, path),
            "origin": _origins(frame, path),
        }
    )
    duplicated = table[table["key"].duplicated(keep=False)]
    if not duplicated.empty:
        raise MembershipError(
            f"{path}: people listed more than once: {sorted(set(duplicated['name']))[:10]}"
        )
    if table.empty:
        raise MembershipError(f"{path}: no rows")
    if _is_partial(frame):
        warnings.warn(
            f"{path} is marked partial: the caption census behind it skipped shards, so some "
            "people it calls non-members may be members; see its summary JSON",
            PartialMembershipWarning,
            stacklevel=2,
        )
    return table.reset_index(drop=True)


def read_sex_table(path: str | Path) -> dict[str, str]:
    """Declared sexes from a ``name,sex`` table (a people folder's ``people.csv``, as ``idia
    lab`` writes one): normalised name -> "f" or "m" (rows without a sex left out)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep=None, engine="python", dtype=str)
    except Exception as err:  # pandas raises many types for malformed files
        raise MembershipError(f"{path}: cannot read as a table ({err})") from err
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    if not {"name", "sex"} <= set(frame.columns):
        raise MembershipError(f"{path}: needs columns name,sex; found {list(frame.columns)}")
    sexes = _sexes(frame, path)
    keys = frame["name"].astype(str).map(display_name).map(normalize_name)
    return {key: str(sex) for key, sex in zip(keys, sexes, strict=True) if not pd.isna(sex)}


def _sexes(frame: pd.DataFrame, path: Path) -> pd.Series:
    if "sex" not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    words = frame["sex"].astype("string").str.strip().str.lower()
    unknown = sorted(set(words.dropna()) - set(SEX_WORDS) - {""})
    if unknown:
        raise MembershipError(
            f"{path}: column 'sex' has values {unknown[:5]}; use f/m (or female/male)"
        )
    return words.map(lambda w: SEX_WORDS.get(w, pd.NA) if isinstance(w, str) else pd.NA).astype(
        "string"
    )


def _origins(frame: pd.DataFrame, path: Path) -> pd.Series:
    if "origin" not in frame:
        return pd.Series(pd.NA, index=frame.index, dtype="string")
    codes = frame["origin"].astype("string").str.strip().str.upper().replace("", pd.NA)
    bad = sorted({c for c in codes.dropna() if len(c) != 2 or not c.isalpha()})
    if bad:
        raise MembershipError(
            f"{path}: column 'origin' has values {bad[:5]}; use two-letter country codes "
            "(DE, PL, CN, ...) or leave a cell empty to infer the origin from the name"
        )
    return codes


def _is_partial(frame: pd.DataFrame) -> bool:
    if "partial" not in frame:
        return False
    return bool(frame["partial"].astype(str).str.strip().str.lower().isin(TRUE_WORDS).any())
