"""`kqlmagic-plus query` as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kqlmagic_plus.cli", *args], capture_output=True, text=True,
                          input=stdin, timeout=120)


@pytest.fixture
def flows(tmp_path):
    df = pd.DataFrame({
        "TimeGenerated": pd.date_range("2024-05-01", periods=6, freq="h", tz="UTC"),
        "SourceIP": ["10.0.0.1", "10.0.0.2"] * 3,
        "SentBytes": [10, 20, 30, 40, 50, 60],
    })
    path = tmp_path / "flows.parquet"
    df.to_parquet(path)
    return path


def test_json_is_a_list_of_row_objects_with_utc_z(flows):
    p = cli("query", "--mount", f"Flows={flows}", "--format", "json",
            "Flows | where SentBytes > 40 | project TimeGenerated, SourceIP, SentBytes, d = dynamic({'k': 1}), "
            "gap = 90m")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert rows == [
        {"TimeGenerated": "2024-05-01T04:00:00Z", "SourceIP": "10.0.0.1", "SentBytes": 50, "d": {"k": 1},
         "gap": "01:30:00"},
        {"TimeGenerated": "2024-05-01T05:00:00Z", "SourceIP": "10.0.0.2", "SentBytes": 60, "d": {"k": 1},
         "gap": "01:30:00"},
    ]


def test_csv_jsonl_table_formats(flows):
    p = cli("query", "--mount", f"Flows={flows}", "--format", "csv", "Flows | summarize n = count() by SourceIP "
            "| order by SourceIP asc")
    assert p.returncode == 0 and p.stdout.splitlines() == ["SourceIP,n", "10.0.0.1,3", "10.0.0.2,3"]
    p = cli("query", "--mount", f"Flows={flows}", "--format", "jsonl", "Flows | count")
    assert p.returncode == 0 and json.loads(p.stdout) == {"Count": 6}
    p = cli("query", "--mount", f"Flows={flows}", "Flows | count")
    assert p.returncode == 0 and "Count" in p.stdout and "1 row" in p.stdout


def test_parquet_output_keeps_types(flows, tmp_path):
    out = tmp_path / "out.parquet"
    p = cli("query", "--mount", f"Flows={flows}", "--format", "parquet", "-o", str(out), "Flows")
    assert p.returncode == 0, p.stderr
    t = pq.read_table(out)
    assert t.num_rows == 6
    assert str(t.schema.field("TimeGenerated").type) == "timestamp[us, tz=UTC]"


def test_query_from_stdin_and_file(tmp_path):
    p = cli("query", "--format", "json", "-", stdin="print x = 41 + 1")
    assert p.returncode == 0 and json.loads(p.stdout) == [{"x": 42}]
    qf = tmp_path / "q.kql"
    qf.write_text("print y = 'file'")
    p = cli("query", "--format", "json", f"@{qf}")
    assert json.loads(p.stdout) == [{"y": "file"}]


def test_params_are_json(tmp_path):
    p = cli("query", "--format", "json", "--param", 'who="O\'Brien"',
            "declare query_parameters(who:string); print w = who")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [{"w": "O'Brien"}]
    p = cli("query", "--param", "who=O'Brien", "print 1")
    assert p.returncode == 2 and "is not JSON" in p.stderr


def test_errors_are_one_line_and_nonzero():
    p = cli("query", "print x = ")
    assert p.returncode == 1
    # One line that says what and where, then the source line and a caret under the column (as the notebook).
    lines = p.stderr.splitlines()
    assert len(lines) == 3 and lines[0].startswith("KQL syntax error:") and "line 1" in lines[0]
    assert lines[1] == "1 | print x = " and lines[2].strip() == "^"
    p = cli("query", "NoSuchTable | take 1")
    assert p.returncode == 1 and p.stderr.strip() == (
        "Unknown table: table 'NoSuchTable' does not exist, and no tables are available on this connection")
    p = cli("query", "--format", "xml", "print 1")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "invalid choice" in p.stderr
    p = cli("query", "-c", "nosuch://x", "print 1")
    assert p.returncode == 1 and "unknown scheme 'nosuch'" in p.stderr
    assert "Traceback" not in p.stderr


def test_connection_string_database_file(tmp_path):
    import duckdb

    db = tmp_path / "h.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE T AS SELECT 5 AS v").close()
    p = cli("query", "-c", f"local://db='{db}'", "--format", "json", "T")
    assert p.returncode == 0 and json.loads(p.stdout) == [{"v": 5}]


def test_show_query_goes_to_stderr():
    p = cli("query", "--show-query", "--format", "json", "print x = 1")
    assert p.returncode == 0 and "SELECT" in p.stderr and json.loads(p.stdout) == [{"x": 1}]


def test_console_script_installed():
    import shutil

    exe = shutil.which("kqlmagic-plus")
    assert exe, "pip install -e . should install the kqlmagic-plus console script"
    p = subprocess.run([exe, "query", "--format", "json", "print z = 3"], capture_output=True, text=True)
    assert json.loads(p.stdout) == [{"z": 3}]
