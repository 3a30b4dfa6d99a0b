"""Local engine: shards counted in worker processes, merged as they finish.

A shard is the unit of work and of failure: its counts are merged only when the whole shard was
read, so an unreadable or truncated shard is reported as skipped instead of being half-counted.
A worker process that dies (the out-of-memory killer, a crash in native code) stops the census
with CensusWorkerError: its shard's fate is unknown, and waiting for it would wait forever.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from idia.census.matcher import NameMatcher
from idia.census.readers import DEFAULT_BATCH_SIZE, CensusInputError, iter_caption_batches
from idia.errors import IdiaError
from idia.progress import progress as stage_progress

Example = tuple[int, int, str | None, str]
"""(shard index, row within shard, url, caption): the first two order examples
deterministically whichever engine or worker found them."""


class CensusWorkerError(IdiaError, RuntimeError):
    """A worker process died before it reported its shard."""


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
    # forked child would inherit in an inconsistent state. A process pool executor, not a
    # multiprocessing.Pool: the latter replaces a killed worker and waits forever for its task.
    pool = ProcessPoolExecutor(
        processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(matcher, options),
    )
    try:
        futures = [pool.submit(_count_task, task) for task in tasks]
        for done, future in enumerate(as_completed(futures)):
            try:
                tally = future.result()
            except BrokenProcessPool as error:
                raise CensusWorkerError(
                    f"a worker process died before reporting its shard; {len(tasks) - done} of "
                    f"{len(tasks)} shards are not counted. Was it killed for lack of memory? "
                    "Try fewer --workers or a smaller --batch-size"
                ) from error
            yield tally
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
    with stage_progress(len(shards), "counting names", "shard", enabled=progress) as bar:
        for tally in _tallies(matcher, shards, options, workers):
            total = total.merge(tally)
            bar.update(1)
            bar.set_postfix(captions=f"{total.captions:,}", skipped=len(total.skipped_shards))
    return total
