"""``idia cache info`` and ``idia cache purge``: what the embedding cache holds, and deleting
it."""

from __future__ import annotations

import json

import typer

from idia.cache import cache_info, default_cache_dir, purge_cache
from idia.cli.errors import fail
from idia.cli.options import (
    CacheDirOpt,
    JsonOpt,
)

app = typer.Typer(
    name="cache",
    help="The embedding cache: what it holds (prompts; photos only with --cache-images), "
    "and deleting it.",
    no_args_is_help=True,
)


@app.command("info")
def info(cache_dir: CacheDirOpt = None, as_json: JsonOpt = False) -> None:
    """Where the cache is, its size, and how many prompt and photo embeddings it holds."""
    summary = cache_info(cache_dir)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    typer.echo(
        f"{summary['path']}: {summary['bytes']:,} bytes, {summary['texts']:,} prompt embeddings, "
        f"{summary['images']:,} photo embeddings, {summary['reference_images']:,} embeddings of "
        "public reference photos"
    )


@app.command("purge")
def purge(cache_dir: CacheDirOpt = None) -> None:
    """Delete the cache (the database and its SQLite side files; nothing else)."""
    try:
        files, size = purge_cache(cache_dir)
    except OSError as err:
        fail(f"cannot delete the cache: {err}")
    where = cache_dir if cache_dir is not None else default_cache_dir()
    if not files:
        typer.echo(f"nothing to purge in {where}")
        return
    typer.echo(f"deleted {', '.join(f.name for f in files)} ({size:,} bytes) in {where}")
