"""How every command reports a problem the user can fix: one ``error:`` line on stderr, exit 2;
and a warning: one ``warning:`` line."""

from __future__ import annotations

from typing import NoReturn

import typer

from idia.models import ModelLoadError

# exceptions whose message is a complete, user-fixable explanation
USER_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError, ModelLoadError)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line (a library's multi-line message is joined), no traceback."""
    typer.secho(f"error: {' '.join(message.split())}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def warn(message: str) -> None:
    typer.secho(f"warning: {message}", err=True, fg=typer.colors.YELLOW)
