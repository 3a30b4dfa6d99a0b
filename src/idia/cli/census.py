"""``idia count-names``: the caption census (thin over :mod:`idia.census`)."""

from __future__ import annotations

import os

import typer

from idia.census import PartialCensusError, run_census, write_census
from idia.census.readers import DEFAULT_BATCH_SIZE
from idia.cli.errors import fail
from idia.cli.options import (
    AllowPartialOpt,
    CaptionBatchOpt,
    CaptionColumnOpt,
    CaptionShardsArg,
    CaseSensitiveOpt,
    CensusNamesOpt,
    CensusWorkersOpt,
    CountsOutOpt,
    Engine,
    EngineOpt,
    ExamplesOpt,
    KeepAccentsOpt,
    MembershipOutOpt,
    ProgressOpt,
    UrlColumnOpt,
)

app = typer.Typer()


@app.command("count-names")
def count_names(
    captions: CaptionShardsArg,
    names: CensusNamesOpt,
    out: CountsOutOpt,
    column: CaptionColumnOpt = None,
    url_column: UrlColumnOpt = None,
    engine: EngineOpt = Engine.local,
    workers: CensusWorkersOpt = None,
    examples: ExamplesOpt = 0,
    membership: MembershipOutOpt = None,
    case_sensitive: CaseSensitiveOpt = False,
    keep_accents: KeepAccentsOpt = False,
    batch_size: CaptionBatchOpt = DEFAULT_BATCH_SIZE,
    allow_partial: AllowPartialOpt = False,
    progress: ProgressOpt = True,
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
