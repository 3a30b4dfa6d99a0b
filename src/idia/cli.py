"""Command-line interface: each command is a thin call into the Python API."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="idia",
    help="Identity Inference Attacks: does a CLIP-style model know this face?",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Commands are registered below, one block per module (keep blocks independent).

from idia.lab.command import train_command  # noqa: E402

app.command("train")(train_command)
