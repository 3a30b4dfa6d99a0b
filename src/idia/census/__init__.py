"""Caption census: in how many training captions does each person's name occur?

The ground truth of an identity inference audit: a person whose name occurs in at least one
caption is a member of the training set, and the paper bins people by how often it occurs.
Matching rules are in ``idia.census.matcher`` and docs/census.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from idia.census.local import CensusWorkerError, ScanOptions, Tally, run_local
from idia.census.matcher import CountedName, NameMatcher, normalize_text
from idia.census.readers import (
    DEFAULT_BATCH_SIZE,
    CensusInputError,
    MissingColumnError,
    check_columns,
    expand_inputs,
    read_people,
)
from idia.membership import PAPER_BIN_EDGES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "BIN_EDGES",
    "CensusInputError",
    "CensusResult",
    "CensusWorkerError",
    "MissingColumnError",
    "NameMatcher",
    "PartialCensusError",
    "CountedName",
    "bin_label",
    "count_names",
    "membership_table",
    "normalize_text",
    "read_people",
    "run_census",
    "write_census",
    "write_table",
]

BIN_EDGES = PAPER_BIN_EDGES
"""Lower edges of the paper's occurrence bins; the last bin is open-ended."""

ENGINES = ("local", "spark")


@dataclass(frozen=True)
class CensusResult:
    """Counts per person plus what was read, skipped and kept as examples."""

    counts: pd.DataFrame  # name, count; sorted by name
    examples: pd.DataFrame  # name, url, caption, source, row
    captions: int
    text_bytes: int
    shards: list[Path]
    shards_read: int
    skipped_shards: list[tuple[str, str]]
    skipped_rows: int
    seconds: float
    settings: dict = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """Whether some shards went unread: a name counted 0 may occur in them."""
        return bool(self.skipped_shards)


class PartialCensusError(CensusInputError):
    """Shards were skipped, so a membership table would call people in them non-members."""

    def __init__(self, message: str, written: list[Path]) -> None:
        super().__init__(message)
        self.written = written


def bin_label(count: int) -> str:
    """The paper's bin of an occurrence count, e.g. ``[150, 200)`` or ``[300, inf)``."""
    position = int(np.searchsorted(BIN_EDGES, count, side="right")) - 1
    upper = BIN_EDGES[position + 1] if position + 1 < len(BIN_EDGES) else "inf"
    return f"[{BIN_EDGES[position]}, {upper})"


def membership_table(counts: pd.DataFrame, *, partial: bool = False) -> pd.DataFrame:
    """Member if the name occurs in at least one caption, with the paper's occurrence bin; the
    columns of the paper's ground truth (name, count, membership, bin) plus a boolean member,
    and a ``partial`` column (true on every row) when shards went unread."""
    table = counts[["name", "count"]].copy()
    table["member"] = table["count"] >= 1
    table["membership"] = np.where(table["member"], "member", "non_member")
    table["bin"] = [bin_label(int(count)) for count in table["count"]]
    return _mark_partial(table, partial)


def _mark_partial(table: pd.DataFrame, partial: bool) -> pd.DataFrame:
    """The table, with a ``partial`` column when it comes from a census that skipped shards:
    it travels with the file, where a summary beside it may not (``idia audit`` warns)."""
    return table.assign(partial=True) if partial else table


def _people(names: str | Path | Sequence[str | CountedName]) -> list[CountedName]:
    if isinstance(names, str | Path):
        return read_people(names)
    return [name if isinstance(name, CountedName) else CountedName(name) for name in names]


def _check_first_readable_shard(
    shards: Sequence[Path], column: str | None, url_column: str | None
) -> None:
    """Fail before any work when the columns are wrong; unreadable shards are left to the scan,
    which reports them."""
    for shard in shards:
        try:
            check_columns(shard, column, url_column)
        except MissingColumnError:
            raise
        except Exception:  # unreadable: the scan reports it as skipped
            continue
        return


def run_census(
    captions: str | Path | Sequence[str | Path],
    names: str | Path | Sequence[str | CountedName],
    *,
    column: str | None = None,
    url_column: str | None = None,
    engine: str = "local",
    workers: int = 1,
    examples: int = 0,
    case_sensitive: bool = False,
    fold_accents: bool = True,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = False,
    spark: SparkSession | None = None,
) -> CensusResult:
    """Count, for every person, the captions that mention them (at most once per caption).

    ``captions``: shard files, globs or folders. ``names``: a names file, CSV, people folder, or
    the names themselves.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    sources = [captions] if isinstance(captions, str | Path) else list(captions)
    shards = expand_inputs(sources)
    matcher = NameMatcher(_people(names), case_sensitive=case_sensitive, fold_accents=fold_accents)
    _check_first_readable_shard(shards, column, url_column)
    options = ScanOptions(column, url_column, batch_size, examples)
    started = time.perf_counter()
    if engine == "spark":
        from idia.census.spark import run_spark

        tally = run_spark(matcher, shards, options, spark=spark, workers=workers)
    else:
        tally = run_local(matcher, shards, options, workers=workers, progress=progress)
    return _result(tally, matcher, shards, time.perf_counter() - started, engine, workers)


def _result(
    tally: Tally,
    matcher: NameMatcher,
    shards: list[Path],
    seconds: float,
    engine: str,
    workers: int,
) -> CensusResult:
    counts = pd.DataFrame({"name": matcher.names, "count": tally.counts.astype(np.int64)})
    counts = counts.sort_values("name", kind="stable", ignore_index=True)
    rows = [
        (matcher.people[person].name, url, caption, str(shards[shard]), row)
        for person, found in tally.examples.items()
        for shard, row, url, caption in found
    ]
    examples = pd.DataFrame(rows, columns=["name", "url", "caption", "source", "row"])
    examples = examples.sort_values(["name", "source", "row"], kind="stable", ignore_index=True)
    return CensusResult(
        counts=counts,
        examples=examples,
        captions=tally.captions,
        text_bytes=tally.text_bytes,
        shards=shards,
        shards_read=tally.shards_read,
        skipped_shards=tally.skipped_shards,
        skipped_rows=tally.skipped_rows,
        seconds=seconds,
        settings={
            "engine": engine,
            "workers": workers,
            "case_sensitive": matcher.case_sensitive,
            "fold_accents": matcher.fold_accents,
            "examples": tally.example_limit,
        },
    )


def count_names(
    captions: str | Path | Sequence[str | Path],
    names: str | Path | Sequence[str | CountedName],
    **options: object,
) -> pd.DataFrame:
    """``name, count`` per person, sorted by name; options as for ``run_census``."""
    return run_census(captions, names, **options).counts  # type: ignore[arg-type]


TABLE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def write_table(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write CSV, TSV or Parquet according to the file extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise CensusInputError(f"{path}: output must end in {', '.join(TABLE_SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".parquet", ".pq"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    return path


def companion_path(out: Path | str, role: str, suffix: str | None = None) -> Path:
    """``counts.csv`` -> ``counts.<role>.csv``: where the membership table, examples and summary
    go unless told otherwise."""
    out = Path(out)
    return out.with_name(f"{out.stem}.{role}{suffix or out.suffix}")


def write_census(
    result: CensusResult,
    out: Path | str,
    *,
    membership: Path | str | None = None,
    allow_partial: bool = False,
) -> list[Path]:
    """Write counts to ``out``, the membership table, examples (when any were asked for) and a
    JSON summary of what was read and skipped next to it; returns the paths written.

    When shards were skipped the tables are marked partial, and the membership table is written
    only with ``allow_partial``: otherwise the counts, examples and summary are written and
    PartialCensusError is raised (it lists them), since people named only in the unread shards
    would become non-members of the ground truth.
    """
    out = Path(out)
    if out.suffix.lower() not in TABLE_SUFFIXES:
        raise CensusInputError(f"{out}: output must end in {', '.join(TABLE_SUFFIXES)}")
    partial = result.partial
    written = [write_table(_mark_partial(result.counts, partial), out)]
    membership_path = None
    if allow_partial or not partial:
        membership_path = write_table(
            membership_table(result.counts, partial=partial),
            membership or companion_path(out, "membership"),
        )
        written.append(membership_path)
    if result.settings.get("examples"):
        written.append(write_table(result.examples, companion_path(out, "examples")))
    summary_path = companion_path(out, "summary", ".json")
    summary = {
        "partial": partial,
        "membership": None if membership_path is None else str(membership_path),
        "captions": result.captions,
        "text_bytes": result.text_bytes,
        "shards": len(result.shards),
        "shards_read": result.shards_read,
        "shards_skipped": [{"path": p, "reason": r} for p, r in result.skipped_shards],
        "rows_skipped": result.skipped_rows,
        "names": len(result.counts),
        "members": int((result.counts["count"] >= 1).sum()),
        "seconds": round(result.seconds, 3),
        **result.settings,
    }
    summary_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    written.append(summary_path)
    if membership_path is None:
        skipped = len(result.skipped_shards)
        raise PartialCensusError(
            f"{skipped} of {len(result.shards)} shards could not be read, so no membership "
            "table was written: people named only in them would count as non-members. Fix or "
            "remove those shards, or pass --allow-partial to write it marked partial",
            written,
        )
    return written
