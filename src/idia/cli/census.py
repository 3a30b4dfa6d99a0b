"""``idia count-names``: the caption census (thin over :mod:`idia.census`)."""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from idia.census import PartialCensusError, run_census, write_census
from idia.census.readers import DEFAULT_BATCH_SIZE
from idia.cli.errors import fail

app = typer.Typer()


class Engine(StrEnum):
    local = "local"
    spark = "spark"


@app.command("count-names")
def count_names(
    captions: Annotated[
        list[str],
        typer.Argument(
            help="Caption shards: Parquet (TEXT or caption column), CSV/TSV (CC3M's "
            "caption<TAB>url), JSONL; files, globs or folders.",
            show_default=False,
        ),
    ],
    names: Annotated[
        Path,
        typer.Option(
            "--names",
            help="Names: a text file (one per line, aliases as Name|Alias), a CSV with a name "
            "column, or a people folder (one subfolder per person).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="name,count table (.csv, .tsv or .parquet); the membership table, examples "
            "and a summary are written next to it.",
            show_default=False,
        ),
    ],
    column: Annotated[
        str | None, typer.Option("--column", help="Caption column (default: TEXT or caption).")
    ] = None,
    url_column: Annotated[
        str | None, typer.Option("--url-column", help="URL column (default: URL or url).")
    ] = None,
    engine: Annotated[Engine, typer.Option("--engine", help="Where to count.")] = Engine.local,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes (local) or local[N] cores (spark without a "
            "cluster). Default: all CPU cores.",
        ),
    ] = None,
    examples: Annotated[
        int, typer.Option("--examples", min=0, help="Matching rows (url, caption) kept per name.")
    ] = 0,
    membership: Annotated[
        Path | None,
        typer.Option("--membership", help="Membership table path (default: OUT.membership.*)."),
    ] = None,
    case_sensitive: Annotated[
        bool, typer.Option("--case-sensitive", help="Match letter case exactly.")
    ] = False,
    keep_accents: Annotated[
        bool, typer.Option("--keep-accents", help="Do not fold accents (León != Leon).")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Captions per batch (bounds memory).")
    ] = DEFAULT_BATCH_SIZE,
    allow_partial: Annotated[
        bool,
        typer.Option(
            "--allow-partial",
            help="Write the membership table even when shards could not be read, marked "
            "partial (a 'partial' column; the summary says so). Without it, no membership "
            "table is written then: people named only in unread shards would be non-members.",
        ),
    ] = False,
    progress: Annotated[
        bool, typer.Option(help="Show progress (a bar on a terminal, plain lines otherwise).")
    ] = True,
) -> None:
    """Count in how many captions each name occurs, and derive training-set membership."""
    result = run_census(
        captions,
        names,
        column=column,
        url_column=url_column,
        engine=engine.value,
        workers=workers or os.cpu_count() or 1,
        examples=examples,
        case_sensitive=case_sensitive,
        fold_accents=not keep_accents,
        batch_size=batch_size,
        progress=progress,
    )
    for path, reason in result.skipped_shards:
        typer.echo(f"skipped {path}: {reason}", err=True)
    if result.shards_read == 0:
        fail("no shard could be read; nothing written")
    try:
        written = write_census(result, out, membership=membership, allow_partial=allow_partial)
    except PartialCensusError as error:  # what it wrote before refusing the membership table
        for path in error.written:
            typer.echo(f"wrote {path}", err=True)
        raise
    members = int((result.counts["count"] >= 1).sum())
    rate = result.captions / result.seconds if result.seconds else 0.0
    typer.echo(
        f"{result.captions:,} captions ({result.text_bytes / 1e6:,.1f} MB) from "
        f"{result.shards_read} of {len(result.shards)} shards in {result.seconds:.1f} s "
        f"({rate:,.0f} captions/s); {members} of {len(result.counts)} names occur"
    )
    if result.skipped_shards:
        typer.echo(
            f"skipped {len(result.skipped_shards)} unreadable shard(s), listed above; "
            "the tables are marked partial"
        )
    if result.skipped_rows:
        typer.echo(f"{result.skipped_rows:,} malformed rows skipped")
    for path in written:
        typer.echo(f"wrote {path}")
