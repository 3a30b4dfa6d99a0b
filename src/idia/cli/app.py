"""The ``idia`` command: one typer app, each group of commands in a module of its own
(typer's larger-app layout: every module has its ``app``; here they are added in the order
``idia --help`` lists them), every command run inside :func:`~idia.cli.errors.reported_errors`."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from idia.cli import attack, cache, census, evaluate, lab, serve, unlearn
from idia.cli.errors import reported_errors


class Commands(TyperGroup):
    """The root group: whichever command runs, its errors are reported one way."""

    def invoke(self, ctx: typer.Context) -> Any:
        with reported_errors():
            return super().invoke(ctx)


app = typer.Typer(
    name="idia",
    help="Identity Inference Attacks: does a CLIP-style model know this face?",
    cls=Commands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for commands in (attack, lab, census, serve, evaluate, unlearn, cache):
    app.add_typer(commands.app)


def main() -> None:
    """The ``idia`` entry point."""
    app()
