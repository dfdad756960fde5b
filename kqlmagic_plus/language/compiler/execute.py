"""Run a :class:`Compiled` query on a DuckDB connection or a Spark session, canonical Arrow out.

Small on purpose: the engines own sessions, caching and errors; this is the one place that knows
how the compiler's SQL results map back to KQL types.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from kqlmagic_plus.language.compiler import Compiled


def run_duckdb(con: Any, compiled: Compiled) -> pa.Table:
    """Execute on a DuckDB connection whose ``TimeZone`` is UTC."""
    from kqlmagic_plus.kqltypes import canonical_table
    from kqlmagic_plus.language.udfs import register_duckdb

    register_duckdb(con, compiled.sql)
    table = con.sql(compiled.sql).to_arrow_table()
    return canonical_table(table, [t for _, t in compiled.columns])


def run_spark(spark: Any, compiled: Compiled, limit: int | None = None) -> pa.Table:
    """Execute on a Spark session whose ``spark.sql.session.timeZone`` is UTC."""
    from kqlmagic_plus.kqltypes import canonical_table
    from kqlmagic_plus.language.udfs import register_spark

    register_spark(spark, compiled.sql)
    df = spark.sql(compiled.sql)
    if limit is not None:
        df = df.limit(limit)
    table = df.toArrow()
    return canonical_table(table, [t for _, t in compiled.columns])


def spark_schema(columns: list[tuple[str, str]]) -> Any:
    """The Spark schema a table of these KQL columns is expected to have (dynamic as JSON text)."""
    from pyspark.sql import types as st

    kinds = {
        "bool": st.BooleanType(),
        "int": st.IntegerType(),
        "long": st.LongType(),
        "real": st.DoubleType(),
        "decimal": st.DecimalType(38, 18),
        "string": st.StringType(),
        "guid": st.StringType(),
        "datetime": st.TimestampType(),
        "timespan": st.DayTimeIntervalType(0, 3),
        "dynamic": st.StringType(),
    }
    return st.StructType([st.StructField(n, kinds[t], True) for n, t in columns])
