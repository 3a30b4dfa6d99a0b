"""The Spark engine gives exactly the local engine's results (one local[2] session per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from idia.census import CensusResult, run_census
from idia.cli import app

pytest.importorskip("pyspark")

SHARED_CAPTIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "captions"


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    from idia.census.spark import SparkUnavailableError, start_session

    try:
        session = start_session(workers=2)
    except SparkUnavailableError as error:
        pytest.skip(str(error))
    yield session
    session.stop()


def assert_same_result(local: CensusResult, spark: CensusResult) -> None:
    pd.testing.assert_frame_equal(local.counts, spark.counts)
    pd.testing.assert_frame_equal(local.examples, spark.examples)
    assert (local.captions, local.text_bytes, local.shards_read, local.skipped_rows) == (
        spark.captions,
        spark.text_bytes,
        spark.shards_read,
        spark.skipped_rows,
    )
    assert local.skipped_shards == spark.skipped_shards


def test_crafted_shards_with_a_broken_one(tmp_path: Path, spark: object) -> None:
    captions = [
        "Brad Pitt and ANGELINA JOLIE",
        "Adrianne Leon",
        "Ann Leeds",
        "Mary Kate Olsen",
        None,
        "Robert Downey Jr",
    ]
    for index in range(5):
        rotated = captions[index:] + captions[:index]
        urls = [f"https://example.com/{index}/{row}" for row in range(len(rotated))]
        pq.write_table(pa.table({"URL": urls, "TEXT": rotated}), tmp_path / f"{index}.parquet")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    (tmp_path / "extra.jsonl").write_text('{"caption": "Ann Lee"}\nnot json\n')
    (tmp_path / "export.json").write_text('[{"caption": "Kate Olsen"},\n {"caption": "Ann Lee"}]')
    names = [
        "Brad Pitt",
        "Angelina Jolie",
        "Adrianne León",
        "Ann Lee",
        "Mary Kate",
        "Kate Olsen",
        "Robert Downey Jr.",
    ]
    local = run_census(tmp_path, names, engine="local", workers=2, examples=2)
    distributed = run_census(tmp_path, names, engine="spark", spark=spark, examples=2)
    assert_same_result(local, distributed)
    assert len(local.skipped_shards) == 1 and local.skipped_rows == 1
    assert local.shards_read == 7 and local.captions == 5 * len(captions) + 3
    assert (local.counts["count"] > 0).all()


@pytest.mark.parametrize("shard", ["laion400m_sample_10000.parquet", "cc3m_validation.tsv"])
def test_real_captions_with_the_papers_people(shard: str, spark: object) -> None:
    captions, names = SHARED_CAPTIONS / shard, SHARED_CAPTIONS / "laion400m_name_counts_paper.csv"
    if not (captions.exists() and names.exists()):
        pytest.skip(f"reference data absent: {SHARED_CAPTIONS}")
    local = run_census(captions, names, engine="local", examples=3)
    distributed = run_census(captions, names, engine="spark", spark=spark, examples=3)
    assert_same_result(local, distributed)


def test_cli_spark_engine_writes_the_local_engines_counts(tmp_path: Path, spark: object) -> None:
    pq.write_table(pa.table({"TEXT": ["Brad Pitt", "brad pitt!", "Ann Leeds"]}), tmp_path / "a.pq")
    names = tmp_path / "names.txt"
    names.write_text("Brad Pitt\nAnn Lee\n")
    outputs = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"{engine}.csv"
        result = CliRunner().invoke(
            app,
            [
                "count-names",
                str(tmp_path / "a.pq"),
                "--names",
                str(names),
                "--out",
                str(out),
                "--engine",
                engine,
                "--workers",
                "2",
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
        outputs[engine] = pd.read_csv(out)
    pd.testing.assert_frame_equal(outputs["local"], outputs["spark"])
    assert outputs["spark"]["count"].tolist() == [0, 2]
