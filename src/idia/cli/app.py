"""The ``idia`` command: one typer app, each group of commands in a module of its own
(typer's larger-app layout: every module has its ``app``; here they are added in the order
``idia --help`` lists them)."""

from __future__ import annotations

import os

import typer

from idia.cli import attack, cache, census, evaluate, lab, serve, unlearn

app = typer.Typer(
    name="idia",
    help="Identity Inference Attacks: does a CLIP-style model know this face?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for commands in (attack, lab, census, serve, evaluate, unlearn):
    app.add_typer(commands.app)
app.add_typer(cache.app)


def main() -> None:
    """Entry point: user errors are reported by the commands; anything else is a bug, shown
    as one line (set IDIA_DEBUG=1 for the traceback)."""
    try:
        app()
    except Exception as err:  # the last line of defence: never a raw traceback for users
        if os.environ.get("IDIA_DEBUG"):
            raise
        typer.secho(f"internal error: {type(err).__name__}: {err} (set IDIA_DEBUG=1 for the "
                    "traceback, and please report it)", err=True, fg=typer.colors.RED)
        raise SystemExit(1) from None
