"""Spark engine: the local engine's shard counting, distributed over a Spark cluster.

Like img2dataset and clip-retrieval, the driver distributes shard paths, not rows: each Spark task
reads one shard with the same readers and matcher as the local engine, so both engines give
identical counts, and shard tallies are reduced as a tree on the executors. Shard paths must be
readable from every executor (a shared filesystem).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from idia.census.local import ScanOptions, Tally, count_shard
from idia.census.matcher import NameMatcher
from idia.errors import IdiaError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


class SparkUnavailableError(IdiaError, RuntimeError):
    """PySpark is not installed or Spark could not start."""


def _spark_session_class() -> type[SparkSession]:
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise SparkUnavailableError(
            "the spark engine needs PySpark: pip install 'idia[spark]' (and Java 17+)"
        ) from error
    return SparkSession


def start_session(workers: int) -> SparkSession:
    """A Spark session: the cluster configured by spark-submit when there is one, otherwise
    ``local[workers]``."""
    session_class = _spark_session_class()
    from pyspark import SparkConf

    # Python workers of a local session must run this interpreter, where idia is installed.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = session_class.builder.appName("idia count-names")
    if not SparkConf().contains("spark.master"):
        builder = builder.master(f"local[{max(workers, 1)}]")
    try:
        with warnings.catch_warnings():
            # Only RDDs of Python objects are used, none of PySpark's pandas support.
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
            session = builder.getOrCreate()
    except Exception as error:  # Java missing, gateway failure: say so instead of a JVM trace
        raise SparkUnavailableError(f"Spark could not start: {error}") from error
    session.sparkContext.setLogLevel("WARN")
    return session


def run_spark(
    matcher: NameMatcher,
    shards: Sequence[Path],
    options: ScanOptions,
    *,
    spark: SparkSession | None = None,
    workers: int = 2,
) -> Tally:
    """Count every shard as one Spark task, in ``spark``, else the active session, else a new
    session that is stopped afterwards."""
    session, owned = spark, False
    if session is None:
        session = _spark_session_class().getActiveSession()
    if session is None:
        session, owned = start_session(workers), True
    try:
        tasks = [(index, str(path)) for index, path in enumerate(shards)]
        rdd = session.sparkContext.parallelize(tasks, numSlices=len(tasks))
        return rdd.map(lambda task: count_shard(matcher, task[0], task[1], options)).treeReduce(
            Tally.merge
        )
    finally:
        if owned:
            session.stop()
