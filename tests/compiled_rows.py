"""Expected-rows cases for the compiler: a KQL query compiled for DuckDB or Spark and run there, its rows as
tuples in the engine's order (the cases order their rows or return one)."""

from __future__ import annotations

from typing import Any


def rows(table: Any) -> list[tuple]:
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*cols, strict=True))


def duckdb_rows(query: str) -> list[tuple]:
    import duckdb

    from kqlmagic_plus.language.compiler import compile as kcompile
    from kqlmagic_plus.language.compiler.execute import run_duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # datetimes print as KQL's UTC whatever the machine's zone
    return rows(run_duckdb(con, kcompile(query, {}, "duckdb")))


def spark_rows(spark: Any, query: str) -> list[tuple]:
    from kqlmagic_plus.language.compiler import compile as kcompile
    from kqlmagic_plus.language.compiler.execute import run_spark

    return rows(run_spark(spark, kcompile(query, {}, "spark")))


def expected_rows_tests(cases: list[tuple[str, list[tuple]]]) -> tuple[Any, Any]:
    """(test_duckdb, test_spark) for a module's (query, expected rows) *cases*: each case on DuckDB, all of
    them on one local Spark session. Assign both at module level for pytest to collect."""
    import pytest

    @pytest.mark.parametrize(("query", "want"), cases)
    def test_duckdb(query: str, want: list[tuple]) -> None:
        assert duckdb_rows(query) == want

    @pytest.mark.spark
    def test_spark(spark_local: Any) -> None:
        got = {q: spark_rows(spark_local, q) for q, _ in cases}
        assert got == {q: w for q, w in cases}

    return test_duckdb, test_spark
