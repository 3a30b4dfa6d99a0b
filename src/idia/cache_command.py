"""``idia cache info`` and ``idia cache purge``: what the embedding cache holds, and deleting
it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from idia.cache import CacheError, cache_info, default_cache_dir, purge_cache
from idia.cli_errors import fail

cache_app = typer.Typer(
    help="The embedding cache: what it holds (prompts; photos only with --cache-images), "
    "and deleting it.",
    no_args_is_help=True,
)

CacheDirOpt = Annotated[
    Path | None,
    typer.Option(help="Cache folder (default: $IDIA_CACHE_DIR, else ~/.cache/idia)."),
]


@cache_app.command("info")
def info_command(
    cache_dir: CacheDirOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"path", "bytes", "texts", "images"}.')
    ] = False,
) -> None:
    """Where the cache is, its size, and how many prompt and photo embeddings it holds."""
    try:
        info = cache_info(cache_dir)
    except (CacheError, OSError) as err:
        fail(str(err))
    if as_json:
        typer.echo(json.dumps(info))
        return
    typer.echo(
        f"{info['path']}: {info['bytes']:,} bytes, {info['texts']:,} prompt embeddings, "
        f"{info['images']:,} photo embeddings"
    )


@cache_app.command("purge")
def purge_command(cache_dir: CacheDirOpt = None) -> None:
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
