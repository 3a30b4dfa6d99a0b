"""How every command reports a problem: what the user can fix (an :class:`IdiaError`, a file
that cannot be read or written) as one ``error:`` line and exit 2; anything else as a bug, a
short message with how to see the traceback, and exit 1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from idia.errors import IdiaError
from idia.lab.train import TrainingFailed

DEBUG_ENV = "IDIA_DEBUG"
USER_ERRORS: tuple[type[Exception], ...] = (IdiaError, OSError)


def fail(message: str) -> NoReturn:
    """One line (a library's multi-line message is joined), no traceback, exit 2."""
    typer.secho(f"error: {' '.join(message.split())}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Around every command (see ``cli/app.py``): user errors as :func:`fail`; a failed
    training run with the last lines of its log, exit 1; any other exception is a bug: one
    line and the hint to rerun with ``IDIA_DEBUG=1``, exit 1 (with it set, the traceback)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
        raise  # typer's own exits and usage errors; a closed pipe ends quietly
    except TrainingFailed as err:  # not the user's input: its message is the training's log
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    except USER_ERRORS as err:
        fail(str(err))
    except Exception as err:
        if os.environ.get(DEBUG_ENV):
            raise
        summary = " ".join(str(err).split())
        summary = summary if len(summary) <= 200 else summary[:197] + "..."
        typer.secho(f"internal error: {type(err).__name__}: {summary}", err=True,
                    fg=typer.colors.RED)
        typer.echo(f"This is a bug in idia, not a mistake in your input: rerun with "
                   f"{DEBUG_ENV}=1 for the traceback, and please report it.", err=True)
        raise typer.Exit(1) from None
