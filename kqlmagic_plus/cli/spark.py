"""``kqlmagic-plus hunt NAME --engine spark``: a local Spark session started quietly, our progress lines on stderr.

Spark's own output (log4j lines, the JVM's banner, its console progress bar, PySpark's warnings) stays out of
the terminal (see :mod:`kqlmagic_plus.engines.spark.quiet`); ``--debug`` shows all of it.
"""

from __future__ import annotations

import sys
from typing import Any

from kqlmagic_plus.cli.output import say


def run_spark_hunt(name: str, data: dict[str, Any], params: dict[str, Any]) -> Any:
    """Run hunt *name* on Spark (the active session, else a local one) with progress lines on stderr."""
    from kqlmagic_plus.engines.spark import quiet
    from kqlmagic_plus.engines.spark.progress import ProgressSink, tracked_jobs
    from kqlmagic_plus.hunts import run_hunt
    from kqlmagic_plus.hunts.inputs import spark_session

    if "pyspark" not in sys.modules or _no_session():
        say("Spark: starting a local session (local[2]); this takes 15-40 s...")
    spark = spark_session(None)
    # A line at most every 5 s: a terminal log, not a redraw (stdout stays the rows alone).
    sink = ProgressSink("terminal", stream=sys.stderr, label=f"Spark {name}", interval=5.0)
    with quiet.quiet_warnings(), tracked_jobs(spark.sparkContext, sink):
        return run_hunt(name, engine="spark", session=spark, **data, **params)


def _no_session() -> bool:
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() is None
