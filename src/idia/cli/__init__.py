"""The command-line interface: parsing and rendering only; every command calls the library.

``app`` is the typer application, ``main`` the ``idia`` entry point."""

from idia.cli.app import app, main

__all__ = ["app", "main"]
