"""The Python API (no IPython) and the Result type."""

from __future__ import annotations

import datetime as dt
import decimal
import sys
import threading
import time

import pandas as pd
import pytest

import kqlmagic_plus as kp
from kqlmagic_plus.errors import (
    OptionError,
    QueryCancelledError,
    QuerySyntaxError,
    TableNotFoundError,
    UnsupportedQueryError,
)


def test_api_needs_no_ipython():
    import subprocess

    code = ("import sys, kqlmagic_plus as kp\n"
            "r = kp.kql('print a = 1, b = \"x\"')\n"
            "assert r.df.iloc[0].tolist() == [1, 'x']\n"
            "assert 'IPython' not in sys.modules, sorted(m for m in sys.modules if 'IPython' in m)[:3]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_kql_type_converts_as_documented():
    r = kp.kql(
        'print b = true, i = toint(7), l = 9007199254740993, r = 1.5, s = "text", '
        "t = datetime(2024-05-01 12:30:00.123456), ts = 1d + 2h + 3.5s, "
        'd = dynamic({"a": [1, 2, {"b": null}]}), g = toguid("0f8fad5b-d9cb-469f-a165-70867728950e"), '
        "nl = tolong(int(null))")
    df = r.df
    assert r.kql_types == ["bool", "int", "long", "real", "string", "datetime", "timespan", "dynamic", "guid",
                           "long"]
    assert str(df["b"].dtype) == "boolean"
    assert str(df["i"].dtype) == "Int32"
    assert str(df["l"].dtype) == "Int64" and df["l"][0] == 9007199254740993  # exact, no float rounding
    assert df["r"].dtype == "float64"
    assert df["s"][0] == "text"
    assert str(df["t"].dtype) == "datetime64[us, UTC]"
    assert df["t"][0] == pd.Timestamp("2024-05-01 12:30:00.123456", tz="UTC")
    assert df["ts"][0] == pd.Timedelta(days=1, hours=2, seconds=3.5)
    assert df["d"][0] == {"a": [1, 2, {"b": None}]}
    assert df["g"][0] == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert df["nl"][0] is pd.NA


def test_naive_dataframe_datetimes_are_utc():
    df = pd.DataFrame({"t": pd.to_datetime(["2024-01-01 10:00"])})
    r = kp.kql("df | where t > datetime(2024-01-01 09:59)", namespace={"df": df})
    assert r.row_count == 1
    assert r.df["t"][0] == pd.Timestamp("2024-01-01 10:00", tz="UTC")


def test_result_metadata_and_html():
    df = pd.DataFrame({"x": range(250)})
    r = kp.kql("df | where x >= 0", namespace={"df": df}, display_limit=10)
    assert r.row_count == 250 and len(r) == 250
    assert r.query == "df | where x >= 0"
    assert r.connection == "local://" and r.engine == "local"
    assert r.elapsed > 0 and not r.truncated and not r.from_cache
    html = r._repr_html_()
    assert "250 rows" in html and "Showing the first 10 of 250 rows" in html
    bundle = r._repr_mimebundle_()
    assert "text/html" in bundle and "text/plain" in bundle
    assert "240 more rows" in repr(r)


def test_truncated_result_is_announced():
    import pyarrow as pa

    from kqlmagic_plus.results import result_from_arrow

    r = result_from_arrow(pa.table({"x": [1, 2]}), ["long"], truncated=True, total_rows=500_000)
    assert "TRUNCATED" in r.summary() and "500,000" in r.summary()
    assert "truncated this result" in r._repr_html_()


def test_connection_repr_redacts_secrets():
    from kqlmagic_plus.connections.spec import parse

    spec = parse("loganalytics://workspace='w1';tenant='t1';clientid='app';clientsecret='Sup3r$ecret'")
    for text in (repr(spec), str(spec), spec.redacted(), spec.identity()):
        assert "Sup3r$ecret" not in text
    assert spec.get("clientsecret") == "Sup3r$ecret"


def test_connection_env_values(monkeypatch):
    from kqlmagic_plus.connections.spec import parse
    from kqlmagic_plus.errors import ConnectionStringError

    monkeypatch.setenv("MY_WS", "abc-123")
    assert parse("loganalytics://workspace=$MY_WS;code").get("workspace") == "abc-123"
    with pytest.raises(ConnectionStringError, match=r"\$NOPE_NOT_SET"):
        parse("loganalytics://workspace=$NOPE_NOT_SET")
    with pytest.raises(ConnectionStringError, match="unknown scheme 'postgres'"):
        parse("postgres://x")
    with pytest.raises(ConnectionStringError, match="unterminated quote"):
        parse("adx://cluster='abc")


def test_mount_errors_are_clear(tmp_path):
    with pytest.raises(OptionError, match="no file matches"):
        kp.kql("X | take 1", mounts={"X": str(tmp_path / "missing*.parquet")})
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(OptionError, match="use Parquet, CSV or JSON"):
        kp.kql("X | take 1", mounts={"X": str(tmp_path / "notes.txt")})
    with pytest.raises(OptionError, match="not a valid table name"):
        kp.kql("X | take 1", mounts={"bad name": str(tmp_path / "notes.txt")})


def test_mount_folder_of_parquet(tmp_path):
    for day in range(3):
        sub = tmp_path / f"d={day}"
        sub.mkdir()
        pd.DataFrame({"day": [day] * 4}).to_parquet(sub / "part.parquet")
    r = kp.kql("Days | summarize n = count() by day | order by day asc", mounts={"Days": str(tmp_path)})
    assert r.df["n"].tolist() == [4, 4, 4]


def test_schema_follows_dataframe_changes():
    # duckdb-kql needs columns to keep `extend` in place; a cached schema must not go stale.
    ns = {"df": pd.DataFrame({"a": [1], "b": [2]})}
    assert kp.kql("df | extend a = a * 10", namespace=ns).columns == ["a", "b"]
    ns["df"] = pd.DataFrame({"b": [2], "a": [1], "c": [3]})
    r = kp.kql("df | extend a = a * 10", namespace=ns)
    assert r.columns == ["b", "a", "c"] and r.df["a"][0] == 10


def test_tables_created_by_commands_are_seen(tmp_path):
    conn = f"local://db='{tmp_path / 'w.duckdb'}'"
    kp.kql(".set-or-replace Seen <| datatable(x: long)[1, 2, 3]", conn=conn)
    assert kp.kql("Seen | extend x = x + 1 | summarize s = sum(x)", conn=conn).df["s"][0] == 9


def test_dry_run_returns_sql_without_rows():
    r = kp.kql("print x = 1", dry_run=True)
    assert r.row_count == 0 and "SELECT" in r.executed


def test_window_options_validate():
    with pytest.raises(OptionError, match="either --timespan or --start/--end"):
        kp.kql("print 1", timespan="1d", start="2024-01-01")
    with pytest.raises(OptionError, match="must be before --end"):
        kp.kql("print 1", start="2024-01-02", end="2024-01-01")
    with pytest.raises(OptionError, match="not a duration"):
        kp.kql("print 1", timespan="yesterday")
    with pytest.raises(OptionError, match="not an ISO-8601"):
        kp.kql("print 1", start="May 1st")


def test_error_classes():
    ns = {"df": pd.DataFrame({"x": [1]})}
    with pytest.raises(QuerySyntaxError) as e:
        kp.kql("df | where x ==", namespace=ns)
    assert (e.value.line, e.value.column) == (1, 15)
    with pytest.raises(TableNotFoundError) as t:
        kp.kql("dg | take 1", namespace=ns)
    assert t.value.available[0] == "df"
    with pytest.raises(UnsupportedQueryError) as u:
        kp.kql("df | evaluate autocluster()", namespace=ns)
    assert u.value.construct == "evaluate autocluster" and "Azure Data Explorer" in u.value.runs_on


def test_local_engine_runs_our_compiler_and_duckdb_kql_only_for_what_it_does_not_translate():
    ns = {"ev": pd.DataFrame({"h": ["a", "a", "b", "b"], "n": [1, 2, 3, 10]})}
    r = kp.kql("ev | serialize | extend prev_n = prev(n), rn = row_number() | project h, n, prev_n, rn", namespace=ns)
    assert r.df.to_dict("list") == {"h": ["a", "a", "b", "b"], "n": [1, 2, 3, 10], "prev_n": [None, 1, 2, 3],
                                    "rn": [1, 2, 3, 4]}
    # the compiler Spark runs is the local engine's translator too: one translation, one answer
    assert "translator" not in r.stats
    p = kp.kql("ev | summarize percentiles(n, 50, 100) by h | order by h asc", namespace=ns)
    assert p.df.iloc[:, 1:].values.tolist() == [[1, 2], [3, 10]]
    t = kp.kql("ev | extend d = n * 1m | summarize total = sum(d)", namespace=ns)
    assert str(t.df["total"][0]) == "0 days 00:16:00"
    # control commands are duckdb-kql's
    shown = kp.kql(".show tables", namespace=ns)
    assert "duckdb-kql" in shown.stats["translator"]
    # with parameters duckdb-kql binds them; what it refuses still runs through our compiler
    q = kp.kql("ev | serialize | extend prev_n = prev(n) | where n > lim | project n, prev_n", namespace=ns,
               params={"lim": 2})
    assert q.df.to_dict("list") == {"n": [3, 10], "prev_n": [2, 3]}
    # where both refuse, the refusal names the KQL operator (not a grammar rule such as 'ForkOperator')
    with pytest.raises(UnsupportedQueryError) as u:
        kp.kql("ev | fork (count) (take 1)", namespace=ns)
    assert u.value.construct == "fork"


def test_cancel_from_another_thread_keeps_engine_usable():
    from kqlmagic_plus.engines.registry import connections

    _, engine = connections().resolve("local://")
    slow = ("range i from 1 to 40000 step 1 | extend k = 1 | join kind=inner "
            "(range j from 1 to 40000 step 1 | extend k = 1) on k | summarize count()")
    threading.Timer(0.4, engine.cancel).start()
    started = time.perf_counter()
    with pytest.raises(QueryCancelledError):
        kp.kql(slow, conn="local://")
    assert time.perf_counter() - started < 5
    assert kp.kql("print ok = 1").df["ok"][0] == 1


def test_decimal_and_date_columns_from_dataframes():
    df = pd.DataFrame({"d": [dt.date(2024, 1, 2)], "m": [decimal.Decimal("1.25")]})
    r = kp.kql("df", namespace={"df": df})
    assert r.kql_types[0] == "datetime"
    assert r.df["d"][0] == pd.Timestamp("2024-01-02", tz="UTC")
    assert r.df["m"][0] == decimal.Decimal("1.25")


def test_join_against_a_dataframe_and_a_mount(tmp_path):
    iocs = pd.DataFrame({"Ip": ["10.0.0.2"], "Tag": ["c2"]})
    pd.DataFrame({"SourceIP": ["10.0.0.1", "10.0.0.2", "10.0.0.2"]}).to_parquet(tmp_path / "f.parquet")
    r = kp.kql("Flows | join kind=inner (iocs) on $left.SourceIP == $right.Ip | summarize n = count() by Tag",
               namespace={"iocs": iocs}, mounts={"Flows": str(tmp_path / "f.parquet")})
    assert r.df.to_dict("records") == [{"Tag": "c2", "n": 2}]


def test_join_with_a_mounted_table_and_a_same_named_variable(tmp_path):
    pd.DataFrame({"a": [1, 1, 2]}).to_parquet(tmp_path / "t.parquet")
    r = kp.kql("T | join kind=inner (T | summarize n = count() by a) on a | summarize s = sum(n)",
               mounts={"T": str(tmp_path / "t.parquet")}, namespace={"t": pd.DataFrame({"z": [0]})})
    assert r.df["s"][0] == 5  # 1,1 each match n=2 -> 4; 2 matches n=1 -> 1
