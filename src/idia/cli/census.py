"""``idia count-names``: the caption census (thin over :mod:`idia.census`)."""

from __future__ import annotations

import typer

from idia.census import PartialCensusError, write_census
from idia.cli.errors import fail
from idia.cli.options import (
    AllowPartialOpt,
    CaptionShardsArg,
    CensusNamesOpt,
    CensusOptions,
    CountsOutOpt,
    MembershipOutOpt,
    expand_option_groups,
)

app = typer.Typer()


@app.command("count-names")
@expand_option_groups
def count_names(
    captions: CaptionShardsArg,
    names: CensusNamesOpt,
    out: CountsOutOpt,
    census: CensusOptions = CensusOptions(),
    membership: MembershipOutOpt = None,
    allow_partial: AllowPartialOpt = False,
) -> None:
    """Count in how many captions each name occurs, and derive training-set membership."""
    result = census.run(captions, names)
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
