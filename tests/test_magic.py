"""%kql / %%kql through a real IPython InteractiveShell, on the embedded engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

HEAVY = ("pandas", "duckdb", "pyspark", "plotly", "azure")


def _heavy_after(code: str) -> list[str]:
    probe = (
        f"{code}\nimport sys, json\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_is_light():
    assert _heavy_after("import kqlmagic_plus") == []


def test_load_ext_is_light():
    code = ("from IPython.core.interactiveshell import InteractiveShell\n"
            "ip = InteractiveShell.instance()\nip.run_line_magic('load_ext', 'kqlmagic_plus')\n"
            "assert 'kql' in ip.magics_manager.magics['cell']")
    assert _heavy_after(code) == []


@pytest.fixture
def events(ip):
    df = pd.DataFrame({
        "TimeGenerated": pd.date_range("2024-05-01", periods=300, freq="min", tz="UTC"),
        "SourceIP": [f"10.0.0.{i % 7}" for i in range(300)],
        "SentBytes": list(range(300)),
    })
    ip.user_ns["events"] = df
    return df


def test_cell_magic_reads_dataframe_by_name(run_cell, events):
    value, err, _ = run_cell("%%kql\nevents\n| where SentBytes >= 290\n| summarize n = count() by SourceIP")
    assert err is None
    df = value.df
    assert df["n"].sum() == 10
    assert str(df["n"].dtype) == "Int64"


def test_blank_line_inside_cell_is_part_of_query(run_cell, events):
    value, err, _ = run_cell("%%kql\nevents\n\n| where SentBytes < 5\n\n| project SentBytes")
    assert err is None
    assert value.df["SentBytes"].tolist() == [0, 1, 2, 3, 4]


def test_let_and_statements(run_cell, events):
    value, err, _ = run_cell(
        "%%kql\nlet lo = 10;\nlet small = events | where SentBytes < lo;\nsmall | count")
    assert err is None
    assert value.df.iloc[0, 0] == 10


def test_declare_query_parameters(run_cell, events):
    value, err, _ = run_cell(
        "%%kql --param who='10.0.0.3'\ndeclare query_parameters(who:string);\n"
        "events | where SourceIP == who | count")
    assert err is None
    assert value.df.iloc[0, 0] == len([i for i in range(300) if i % 7 == 3])


def test_line_magic(run_cell, events):
    value, err, _ = run_cell("%kql events | count")
    assert err is None and value.df.iloc[0, 0] == 300


def test_out_variable_and_raw_result(ip, run_cell, events):
    _, err, _ = run_cell("%%kql -o r\nevents | take 3")
    assert err is None
    assert ip.user_ns["r"].row_count == 3
    assert ip.user_ns["_kql_raw_result_"] is ip.user_ns["r"]
    _, err, _ = run_cell("%%kql --out r2\nevents | take 2")
    assert ip.user_ns["r2"].row_count == 2


def test_result_can_be_queried_again(ip, run_cell, events):
    run_cell("%%kql -o early\nevents | where SentBytes < 50")
    value, err, _ = run_cell("%kql early | count")
    assert err is None and value.df.iloc[0, 0] == 50


def test_display_limit_keeps_all_rows(run_cell, events):
    value, err, _ = run_cell("%%kql --display-limit 5\nevents")
    assert err is None
    assert value.row_count == 300
    html = value._repr_html_()
    assert html.count("<tr") == 6  # header + 5 rows
    assert "Showing the first 5 of 300 rows" in html


def test_display_limit_from_config(ip, run_cell, events):
    ip.run_line_magic("config", "KqlMagicPlus.display_limit = 7")
    value, _, _ = run_cell("%kql events")
    assert value.display_limit == 7


def test_kqlmagic_option_spellings(run_cell, events):
    value, err, out = run_cell("%%kql -displaylimit 4 -showquery\nevents | take 10")
    assert err is None
    assert value.display_limit == 4
    assert "SELECT" in out


def test_show_query_prints_sql(run_cell, events):
    _, err, out = run_cell("%%kql --show-query\nevents | take 1")
    assert err is None
    assert "LIMIT" in out and '"events"' in out


def test_dry_run_translates_without_running(run_cell, events):
    value, err, out = run_cell("%%kql --dry-run\nevents | where SentBytes > 1")
    assert err is None and value is None
    assert "SELECT" in out


def test_trailing_semicolon_suppresses_display(ip, run_cell, events):
    value, err, _ = run_cell("%%kql -o quiet\nevents | take 2;")
    assert err is None and value is None
    assert ip.user_ns["quiet"].row_count == 2


def test_timeout_cancels_long_query(run_cell):
    import time

    slow = ("range i from 1 to 30000 step 1 | extend k = 1 | join kind=inner "
            "(range j from 1 to 30000 step 1 | extend k = 1) on k | summarize count()")
    started = time.perf_counter()
    value, err, out = run_cell(f"%kql --timeout 0.5 {slow}")
    assert time.perf_counter() - started < 10
    assert err is not None
    assert "Query timed out" in out and "0.5 s" in out
    # The engine is still usable afterwards.
    value, err, _ = run_cell("%kql print ok = 1")
    assert err is None and value.df.iloc[0, 0] == 1


def test_mount_files(tmp_path, run_cell, events):
    events.to_parquet(tmp_path / "a.parquet")
    events.head(10).to_csv(tmp_path / "b.csv", index=False)
    (tmp_path / "c.jsonl").write_text('{"k": 1}\n{"k": 2}\n')
    value, err, _ = run_cell(f"%kql --mount Net={tmp_path / 'a.parquet'} Net | count")
    assert err is None and value.df.iloc[0, 0] == 300
    value, err, _ = run_cell(f"%kql --mount Csv={tmp_path / 'b.csv'} Csv | count")
    assert err is None and value.df.iloc[0, 0] == 10
    value, err, _ = run_cell(f"%kql --mount J={tmp_path / '*.jsonl'} J | summarize s = sum(k)")
    assert err is None and value.df.iloc[0, 0] == 3


def test_duckdb_database_file(tmp_path, run_cell):
    import duckdb

    path = tmp_path / "hunt.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE Alerts AS SELECT i AS Id, 'High' AS Severity FROM range(5) t(i)")
    con.close()
    value, err, _ = run_cell(f"%%kql local://db='{path}'\nAlerts | where Id > 2 | count")
    assert err is None and value.df.iloc[0, 0] == 2


def test_connection_switch_and_listing(ip, run_cell, tmp_path):
    import duckdb

    path = tmp_path / "x.duckdb"
    duckdb.connect(str(path)).execute("CREATE TABLE X AS SELECT 1 AS a").close()
    _, err, out = run_cell(f"%kql --conn local://db='{path}';alias='xdb'")
    assert err is None and "Connected" in out
    value, _, _ = run_cell("%kql X | count")
    assert value.df.iloc[0, 0] == 1
    listing, _, _ = run_cell("%kql --conn")
    assert "xdb" in repr(listing)


def test_deprecated_names_run(run_cell, events):
    value, err, _ = run_cell("%%kql\nevents | summarize ips = makeset(SourceIP), l = makelist(SentBytes)")
    assert err is None
    assert sorted(value.df["ips"][0]) == [f"10.0.0.{i}" for i in range(7)]
    assert len(value.df["l"][0]) == 300


def test_size_limit_the_engine_would_ignore_is_kept(run_cell, events):
    # duckdb-kql drops make_list's limit and would return all 300 values: our compiler runs it instead.
    value, err, out = run_cell("%%kql\nevents | summarize l = makelist(SentBytes, 3), s = make_set(SourceIP, 2)")
    assert err is None, out
    assert len(value.df["l"][0]) == 3 and len(value.df["s"][0]) == 2


def test_deprecated_name_in_string_untouched(run_cell, events):
    value, err, _ = run_cell('%kql print s = "makeset(x)" // makeset(')
    assert err is None and value.df["s"][0] == "makeset(x)"


def test_unknown_option_is_an_error(run_cell):
    _, err, out = run_cell("%kql --dispaly-limit 3 print 1")
    assert err is not None
    assert "unknown option '--dispaly-limit'" in out
    assert "--display-limit" in out
    assert "Traceback" not in out


def test_ipython_expansion_does_not_reach_the_query(ip, run_cell):
    # IPython's text expansion is off: `$y` stays text. `{y}` has Kqlmagic's meaning (#18), but as a bound
    # parameter, never as text spliced into the query.
    ip.user_ns["y"] = 'INJECTED" | union *'
    value, err, _ = run_cell('%kql print s = "{y}$y"')
    assert err is None
    assert value.df["s"][0] == 'INJECTED" | union *$y'
    assert "INJECTED" not in value.query and "union" not in value.query


def test_syntax_error_shows_line_and_caret(run_cell, events):
    _, err, out = run_cell("%%kql\nevents\n| where SentBytes > > 3")
    assert err is not None
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines[0].startswith("KQL syntax error:") and "line 2, column 21" in lines[0]
    assert lines[1] == "2 | | where SentBytes > > 3"
    assert lines[2].index("^") == len("2 | ") + 20
    assert "Traceback" not in out


def test_syntax_error_position_survives_deprecated_rename(run_cell, events):
    _, err, out = run_cell("%%kql\nevents\n| summarize makeset(SourceIP), makelist(SourceIP) | where = 1")
    assert err is not None
    first = out.splitlines()[0]
    # Two renames on the line each add a character; the caret must still point at the user's text.
    assert first == "KQL syntax error: cannot parse this 'where' operator at line 2, column 53", first
    caret_line = next(ln for ln in out.splitlines() if ln.strip() == "^")
    src_line = next(ln for ln in out.splitlines() if ln.startswith("2 | "))
    assert src_line[caret_line.index("^"):].startswith("where")


def test_unsupported_construct_names_it_and_engines(run_cell, events):
    _, err, out = run_cell("%%kql\nevents\n| evaluate autocluster()")
    assert err is not None
    assert out.startswith("Unsupported KQL: 'evaluate autocluster' at line 2, column 3 cannot run on the local engine")
    assert "Log Analytics" in out and "Azure Data Explorer" in out


def test_missing_table_lists_tables_closest_first(ip, run_cell, events):
    ip.user_ns["SigninLogs"] = pd.DataFrame({"a": [1]})
    ip.user_ns["SecurityEvent"] = pd.DataFrame({"a": [1]})
    _, err, out = run_cell("%kql SigninLog | take 1")
    assert err is not None
    assert out.startswith("Unknown table: table 'SigninLog' does not exist. Tables: SigninLogs, ")


def test_debug_shows_traceback(run_cell):
    _, err, out = run_cell("%kql --debug NoSuchTable")
    assert err is not None and "Traceback" in out


def test_env_override(monkeypatch):
    from kqlmagic_plus.config import KqlMagicPlus

    monkeypatch.setenv("KQLMAGIC_PLUS_DISPLAY_LIMIT", "12")
    monkeypatch.setenv("KQLMAGIC_PLUS_CONNECTION", "local://db='x.duckdb'")
    cfg = KqlMagicPlus()
    assert cfg.display_limit == 12
    assert cfg.connection == "local://db='x.duckdb'"


def test_bad_env_override_names_variable(monkeypatch):
    from kqlmagic_plus.config import KqlMagicPlus
    from kqlmagic_plus.errors import OptionError

    monkeypatch.setenv("KQLMAGIC_PLUS_DISPLAY_LIMIT", "lots")
    with pytest.raises(OptionError, match="KQLMAGIC_PLUS_DISPLAY_LIMIT"):
        KqlMagicPlus()
