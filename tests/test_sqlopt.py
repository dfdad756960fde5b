"""The bin() rewrite gives exactly the rows duckdb-kql's own SQL gives."""

from __future__ import annotations

import duckdb_kql
import pytest

from kqlmagic_plus.engines.sqlopt import optimize


@pytest.fixture(scope="module")
def con():
    c = duckdb_kql.connect()
    c.execute("""CREATE TABLE T AS SELECT
        TIMESTAMPTZ '1969-12-25 00:00:00+00' + i * INTERVAL '37 minutes 13.123457 seconds' AS tz,
        TIMESTAMP '1601-01-01 00:00:00' + i * INTERVAL '977 hours 1 second' AS naive,
        i FROM range(20000) t(i)""")
    return c


@pytest.mark.parametrize("col", ["tz", "naive"])
@pytest.mark.parametrize("size", ["1s", "90s", "5m", "1h", "7h", "1d", "7d", "30d", "1.5h"])
def test_bin_rewrite_is_exact(con, col, size):
    sql = str(duckdb_kql.to_sql(f"T | summarize n = count(), s = sum(i) by b = bin({col}, {size})"))
    fast = optimize(sql)
    assert fast != sql and "epoch_us" in fast
    slow_rows = sorted(con.sql(sql).fetchall())
    fast_rows = sorted(con.sql(fast).fetchall())
    assert slow_rows == fast_rows


def test_strings_and_other_sql_untouched():
    sql = "SELECT 'to_timestamp(floor(epoch(x) / epoch(y)) * epoch(y)) AT TIME ZONE ''UTC''' AS s"
    assert optimize(sql) == sql
    other = "SELECT to_timestamp(floor(epoch(x) / 3600) * 3600) FROM t"
    assert optimize(other) == other


def test_magic_end_to_end_uses_fast_form():
    import pandas as pd

    import kqlmagic_plus as kp

    df = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=100, freq="17min", tz="UTC")})
    r = kp.kql("df | summarize n = count() by bin(t, 1h)", namespace={"df": df})
    assert r.df["n"].sum() == 100
    assert r.df["t"].dt.minute.eq(0).all()
