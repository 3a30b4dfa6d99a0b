"""Local engine: shards counted in worker processes, merged as they finish.

A shard is the unit of work and of failure: its counts are merged only when the whole shard was
read, so an unreadable or truncated shard is reported as skipped instead of being half-counted.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from idia.census.matcher import NameMatcher
from idia.census.readers import DEFAULT_BATCH_SIZE, CensusInputError, iter_caption_batches

Example = tuple[int, int, str | None, str]
"""(shard index, row within shard, url, caption): the first two order examples
deterministically whichever engine or worker found them."""


@dataclass(frozen=True)
class ScanOptions:
    """How shards are read and what is kept besides counts."""

    column: str | None = None
    url_column: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    examples: int = 0  # matching rows kept per person


@dataclass
class Tally:
    """Counts and bookkeeping for a set of shards; tallies merge in any order to the same
    result, which lets Spark reduce them as a tree."""

    counts: np.ndarray
    example_limit: int = 0
    captions: int = 0
    text_bytes: int = 0
    shards_read: int = 0
    skipped_rows: int = 0
    skipped_shards: list[tuple[str, str]] = field(default_factory=list)
    examples: dict[int, list[Example]] = field(default_factory=dict)

    @classmethod
    def empty(cls, people: int, example_limit: int = 0) -> Tally:
        return cls(counts=np.zeros(people, dtype=np.int64), example_limit=example_limit)

    def merge(self, other: Tally) -> Tally:
        examples = {
            person: sorted(self.examples.get(person, []) + other.examples.get(person, []))[
                : self.example_limit
            ]
            for person in sorted(self.examples.keys() | other.examples.keys())
        }
        return Tally(
            counts=self.counts + other.counts,
            example_limit=self.example_limit,
            captions=self.captions + other.captions,
            text_bytes=self.text_bytes + other.text_bytes,
            shards_read=self.shards_read + other.shards_read,
            skipped_rows=self.skipped_rows + other.skipped_rows,
            skipped_shards=sorted(self.skipped_shards + other.skipped_shards),
            examples=examples,
        )


def count_shard(matcher: NameMatcher, index: int, path: Path | str, options: ScanOptions) -> Tally:
    """Count one shard. Any failure to read it yields a tally that only records the skip."""
    tally = Tally.empty(len(matcher.people), options.examples)
    try:
        batches = iter_caption_batches(
            path,
            column=options.column,
            url_column=options.url_column,
            with_urls=options.examples > 0,
            batch_size=options.batch_size,
        )
        for batch in batches:
            rows, people = matcher.match_batch(batch.text)
            tally.counts += np.bincount(people, minlength=len(matcher.people))
            if options.examples:
                _keep_examples(tally, index, batch.text, batch.url, rows, people)
            tally.captions += len(batch.text)
            tally.text_bytes += pc.sum(pc.binary_length(batch.text)).as_py() or 0
            tally.skipped_rows += batch.skipped_rows
    except Exception as error:  # any unreadable shard is reported and skipped, never fatal
        skipped = Tally.empty(len(matcher.people), options.examples)
        reason = (
            str(error).removeprefix(f"{path}: ")
            if isinstance(error, CensusInputError)
            else repr(error)
        )
        skipped.skipped_shards.append((str(path), reason))
        return skipped
    tally.shards_read = 1
    return tally


def _keep_examples(
    tally: Tally,
    index: int,
    texts: pa.Array,
    urls: pa.Array | None,
    rows: np.ndarray,
    people: np.ndarray,
) -> None:
    """Keep a shard's first matching rows per person, up to the example limit."""
    first_row = tally.captions
    for row, person in zip(rows.tolist(), people.tolist(), strict=True):
        kept = tally.examples.setdefault(person, [])
        if len(kept) < tally.example_limit:
            url = None if urls is None else urls[row].as_py()
            kept.append((index, first_row + row, url, texts[row].as_py()))


_worker_matcher: NameMatcher | None = None
_worker_options: ScanOptions | None = None


def _start_worker(matcher: NameMatcher, options: ScanOptions) -> None:
    global _worker_matcher, _worker_options
    _worker_matcher, _worker_options = matcher, options


def _count_task(task: tuple[int, str]) -> Tally:
    assert _worker_matcher is not None and _worker_options is not None
    return count_shard(_worker_matcher, task[0], task[1], _worker_options)


def _tallies(
    matcher: NameMatcher, shards: Sequence[Path], options: ScanOptions, workers: int
) -> Iterator[Tally]:
    tasks = [(index, str(path)) for index, path in enumerate(shards)]
    processes = min(workers, len(tasks))
    if processes <= 1:
        yield from (count_shard(matcher, index, path, options) for index, path in tasks)
        return
    # spawn, not fork: the parent may hold Arrow thread pools (or a Spark gateway) that a
    # forked child would inherit in an inconsistent state.
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes, initializer=_start_worker, initargs=(matcher, options)) as pool:
        yield from pool.imap_unordered(_count_task, tasks)


def run_local(
    matcher: NameMatcher,
    shards: Sequence[Path],
    options: ScanOptions,
    *,
    workers: int = 1,
    progress: bool = False,
) -> Tally:
    """Count every shard with ``workers`` processes (one shard per task)."""
    total = Tally.empty(len(matcher.people), options.examples)
    bar = tqdm(total=len(shards), unit="shard", disable=not progress, dynamic_ncols=True)
    with bar:
        for tally in _tallies(matcher, shards, options, workers):
            total = total.merge(tally)
            bar.update(1)
            bar.set_postfix(captions=f"{total.captions:,}", skipped=len(total.skipped_shards))
    return total
