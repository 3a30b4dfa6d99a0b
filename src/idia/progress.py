"""Progress of long stages: a redrawn bar on a terminal, whole lines everywhere else.

A bar redraws itself with carriage returns; a log file, a pipe or a CI log keeps every frame,
hundreds of partial lines per stage. Off a terminal a stage therefore writes plain lines instead:
one when it ends (``encoding prompts: 21,000/21,000 done in 12.3 s``) and, while it runs, one
every ``PLAIN_INTERVAL_S`` seconds. ``enabled=False`` (``--quiet``) writes nothing at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from types import TracebackType
from typing import Protocol, TextIO, TypeVar

from tqdm.std import tqdm

PLAIN_INTERVAL_S = 30.0
"""Seconds between the lines a running stage writes off a terminal."""

T = TypeVar("T")


class Progress(Protocol):
    """What call sites use: the part of tqdm's interface that both displays implement."""

    def update(self, n: int = 1) -> object: ...

    def set_postfix(self, **values: object) -> object: ...

    def close(self) -> None: ...

    def __enter__(self) -> Progress: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal (closed or odd streams are not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class _Silent:
    """The display of a disabled stage."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, **values: object) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


class PlainLines:
    """Whole lines for logs: a stage's count and time when it ends, and at intervals before."""

    def __init__(
        self, total: int | None, desc: str, stream: TextIO, interval_s: float = PLAIN_INTERVAL_S
    ) -> None:
        self.total, self.desc, self.stream, self.interval_s = total, desc, stream, interval_s
        self.n = 0
        self.postfix = ""
        self.started = self.last_line = time.monotonic()
        self.closed = False

    def _count(self) -> str:
        return f"{self.n:,}" if self.total is None else f"{self.n:,}/{self.total:,}"

    def _write(self, text: str) -> None:
        self.stream.write(f"{self.desc}: {text}{self.postfix}\n")
        self.stream.flush()

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self.last_line >= self.interval_s and not self._finished():
            self.last_line = now
            share = f" ({self.n / self.total:.0%})" if self.total else ""
            self._write(f"{self._count()}{share} after {now - self.started:.1f} s")

    def set_postfix(self, **values: object) -> None:
        shown = ", ".join(f"{key}={value}" for key, value in values.items())
        self.postfix = f" ({shown})" if shown else ""

    def _finished(self) -> bool:
        return self.total is not None and self.n >= self.total

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.total == 0:  # nothing to do: nothing worth a line
            return
        elapsed = time.monotonic() - self.started
        ending = "done in" if self.total is None or self._finished() else "stopped after"
        self._write(f"{self._count()} {ending} {elapsed:.1f} s")

    def __enter__(self) -> PlainLines:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def progress(
    total: int | None,
    desc: str,
    unit: str = "it",
    *,
    enabled: bool = True,
    leave: bool = True,
    stream: TextIO | None = None,
) -> Progress:
    """A display for one stage of ``total`` items (None: unknown) on ``stream`` (stderr): a
    tqdm bar on a terminal, :class:`PlainLines` elsewhere, nothing when not ``enabled``.
    ``leave``: whether the bar stays on the terminal once the stage ends."""
    stream = sys.stderr if stream is None else stream
    if not enabled:
        return _Silent()
    if is_terminal(stream):
        return tqdm(
            total=total, desc=desc, unit=unit, file=stream, leave=leave, dynamic_ncols=True
        )
    return PlainLines(total, desc, stream)


def track(
    items: Iterable[T],
    desc: str,
    unit: str = "it",
    *,
    enabled: bool = True,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """``items`` one by one, shown as a stage (like ``tqdm(items)``)."""
    total = len(items) if isinstance(items, Sized) else None
    with progress(total, desc, unit, enabled=enabled, stream=stream) as bar:
        for item in items:
            yield item
            bar.update(1)
