"""The exported lake: discovery, time pruning, DuckDB views, and damaged lakes."""

from __future__ import annotations

import json
import os
import random
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from kqlmagic_plus.demo import datagen
from kqlmagic_plus.errors import OptionError, QueryError, TableNotFoundError
from kqlmagic_plus.lake import SCAN_BELOW, Lake, window_from_query
from kqlmagic_plus.request import TimeWindow

WS = ("WorkspaceResourceId=", "subscriptions", "00000000-0000-0000-0000-000000000000", "resourcegroups", "rg",
      "providers", "microsoft.operationalinsights", "workspaces", "ws")
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def rec(t: datetime, table: str = "Syslog", **fields: object) -> dict:
    return {"TimeGenerated": _iso(t), "Type": table, **fields}


def blob(root, container: str, when: datetime, lines: list, *, stem: str = "PT05M", part: int = 0,
         ext: str = "json", raw: bytes | None = None) -> str:
    """Write one export blob under *root*/*container* in the folder of *when*."""
    folder = os.path.join(str(root), container, *WS, f"y={when:%Y}", f"m={when:%m}", f"d={when:%d}",
                          f"h={when:%H}", f"m={when:%M}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{stem}{f'_{part}' if part else ''}.{ext}")
    if raw is None:
        raw = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()
    with open(path, "wb") as f:
        f.write(raw)
    return path


def views(lake: Lake, window=None, tables=None):
    con = duckdb.connect()
    report = lake.register_duckdb(con, window, tables)
    return con, report


def count(con, sql: str) -> int:
    return con.execute(sql).fetchall()[0][0]


# -- discovery and schemas ---------------------------------------------------------------------------


def test_tables_are_named_by_record_type_with_real_column_types(tmp_path):
    blob(tmp_path, "am-commonsecuritylog", T0, [rec(T0, "CommonSecurityLog", SourceIP="10.0.0.1",
                                                    DestinationPort=443, SentBytes=12)])
    blob(tmp_path, "am-signinlogs", T0, [rec(T0, "SigninLogs", IsInteractive=True, DeviceDetail={"os": "x"})])
    lake = Lake(tmp_path)
    assert lake.table_names() == ["CommonSecurityLog", "SigninLogs"]
    con, report = views(lake)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'CommonSecurityLog'").fetchall())
    assert types["TimeGenerated"] == "TIMESTAMP WITH TIME ZONE"
    assert types["DestinationPort"] == "INTEGER" and types["SentBytes"] == "BIGINT"
    assert types["SourceIP"] == "VARCHAR" and len(types) == 163
    row = con.execute('SELECT epoch_us("TimeGenerated"), SourceIP, DestinationPort FROM CommonSecurityLog'
                      ).fetchall()[0]
    assert row == (int(T0.timestamp()) * 1_000_000, "10.0.0.1", 443)
    assert con.execute("SELECT IsInteractive, DeviceDetail->>'os' FROM SigninLogs").fetchall() == [(True, "x")]
    assert lake.schema_for("CommonSecurityLog")[:2] == [("Activity", "string"), ("AdditionalExtensions", "string")]
    assert report.tables["CommonSecurityLog"].files_read == 1


def test_single_container_unknown_tables_and_strays(tmp_path):
    blob(tmp_path, "am-syslog", T0, [rec(T0, SyslogMessage="hi")])
    blob(tmp_path, "am-mytable_cl", T0, [rec(T0, "MyTable_CL", Score=1.5, Hits=3, Seen=True, Name="x",
                                             Extra={"a": 1})])
    os.makedirs(tmp_path / "am-securityevent")  # a known table with no files yet
    os.makedirs(tmp_path / "am-nothing")  # unknown and empty
    os.makedirs(tmp_path / "insights-logs-audit")  # not an export container
    (tmp_path / "am-syslog" / "README.txt").write_text("x")
    lake = Lake(tmp_path)
    assert lake.table_names() == ["MyTable_CL", "SecurityEvent", "Syslog"]
    con, report = views(lake)
    text = "\n".join(report.warnings)
    assert "insights-logs-audit: not an export container" in text
    assert "am-nothing: no export files and not a known table; ignored" in text
    assert "am-securityevent: no export files; SecurityEvent is empty" in text
    assert "am-syslog/README.txt: not an export blob" in text
    assert count(con, "SELECT count(*) FROM SecurityEvent") == 0
    assert dict(Lake(tmp_path).schema_for("MyTable_CL")) == {
        "TimeGenerated": "datetime", "Type": "string", "Score": "real", "Hits": "long", "Seen": "bool",
        "Name": "string", "Extra": "dynamic"}
    assert con.execute("SELECT Score, Hits, Seen, Name FROM MyTable_CL").fetchall() == [(1.5, 3, True, "x")]
    assert any("not in the package's table schemas" in n for n in report.notes)
    # Mounting one container works the same way.
    one = Lake(tmp_path / "am-syslog")
    assert one.table_names() == ["Syslog"]
    con, _ = views(one)
    assert con.execute("SELECT SyslogMessage FROM Syslog").fetchall() == [("hi",)]
    with pytest.raises(TableNotFoundError) as err:
        one.files_for("Syslogs")
    assert "Syslog" in str(err.value)
    with pytest.raises(OptionError):
        Lake(tmp_path / "missing")


# -- time pruning ----------------------------------------------------------------------------------


def _pruning_lake(root) -> None:
    blob(root, "am-syslog", T0, [rec(T0 + timedelta(minutes=1))])  # covers [10:00, 10:05)
    blob(root, "am-syslog", T0 + timedelta(hours=3), [rec(T0)], stem="PT1H")  # [13:00, 14:00), a late row


def _read(lake: Lake, start=None, end=None) -> list[str]:
    return [os.path.basename(os.path.dirname(os.path.dirname(p))) + "/" + os.path.basename(p)
            for p in lake.files_for("Syslog", TimeWindow(start, end))]


def test_pruning_boundaries_without_margins(tmp_path):
    _pruning_lake(tmp_path)
    lake = Lake(tmp_path, skew=timedelta(0), max_late=timedelta(0))
    us = timedelta(microseconds=1)
    five = T0 + timedelta(minutes=5)
    assert _read(lake, five - us, None) == ["h=10/PT05M.json", "h=13/PT1H.json"]
    assert _read(lake, five, None) == ["h=13/PT1H.json"]
    assert _read(lake, None, T0) == []  # [F, ...) holds nothing before F
    assert _read(lake, None, T0 + us) == ["h=10/PT05M.json"]
    one_pm = T0 + timedelta(hours=3)
    assert _read(lake, one_pm + timedelta(minutes=59), None) == ["h=13/PT1H.json"]  # an hourly blob: 60 minutes
    assert _read(lake, one_pm + timedelta(hours=1), None) == []
    assert _read(lake) == ["h=10/PT05M.json", "h=13/PT1H.json"]


def test_pruning_keeps_late_data_and_clock_skew(tmp_path):
    """Default margins: TimeGenerated up to 1 h ahead of its folder, up to 2 days 1 h behind it."""
    _pruning_lake(tmp_path)
    lake = Lake(tmp_path)
    # The late row (TimeGenerated 10:00) sits in the 13:00 folder: a window on 10:00-10:05 must read it.
    assert _read(lake, T0, T0 + timedelta(minutes=5)) == ["h=10/PT05M.json", "h=13/PT1H.json"]
    con, _ = views(lake, TimeWindow(T0, T0 + timedelta(minutes=5)))
    assert count(con, "SELECT count(*) FROM Syslog") == 2
    # A fast source clock: rows of 11:04 may sit in the 10:00-10:05 folder, not those of 11:05.
    assert "h=10/PT05M.json" in _read(lake, T0 + timedelta(minutes=64, seconds=59), None)
    assert "h=10/PT05M.json" not in _read(lake, T0 + timedelta(minutes=65), None)
    # Folders more than 2 days 1 h after the window's end cannot hold its rows.
    late = timedelta(days=2, hours=1)
    us = timedelta(microseconds=1)
    assert _read(lake, None, T0 - late) == []
    assert _read(lake, None, T0 - late + us) == ["h=10/PT05M.json"]
    assert _read(lake, None, T0 + timedelta(hours=3) - late) == ["h=10/PT05M.json"]
    assert _read(lake, None, T0 + timedelta(hours=3) - late + us) == ["h=10/PT05M.json", "h=13/PT1H.json"]
    # Trusting no lateness bound, every folder may hold rows of any earlier time.
    assert _read(Lake(tmp_path, max_late=None), None, T0 - timedelta(days=30)) == ["h=10/PT05M.json",
                                                                                 "h=13/PT1H.json"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("gen"))
    datagen.generate(root, days=3, end_date="2024-03-06", events_per_day=6_000, seed=21, tables="CommonSecurityLog",
                     late_fraction=0.03)
    return root


@pytest.mark.slow
def test_pruned_views_return_exactly_what_the_whole_lake_returns(generated):
    """Late rows (3 % here) and early rows must all be found, for any window."""
    lake = Lake(generated)
    full, _ = views(Lake(generated))
    full.execute("CREATE TABLE every_row AS SELECT TimeGenerated FROM CommonSecurityLog")
    rng = random.Random(3)
    day0 = datetime(2024, 3, 4, tzinfo=UTC)
    hour = timedelta(hours=1)
    windows = [(day0 + timedelta(days=1), day0 + timedelta(days=2)), (day0 + timedelta(days=2, hours=23), None),
               (None, day0 + hour), (day0 + 9 * hour, day0 + 9 * hour + timedelta(minutes=1)),
               (day0 + 57 * hour, day0 + 58 * hour)]
    for _ in range(3):
        a = day0 + timedelta(seconds=rng.randrange(0, 3 * 86_400))
        windows.append((a, a + timedelta(seconds=rng.randrange(60, 40_000))))
    con = duckdb.connect()
    total = lake.plan("CommonSecurityLog").files_total
    for start, end in windows:
        report = lake.register_duckdb(con, TimeWindow(start, end))
        cond = " AND ".join(c for c in (
            f"TimeGenerated >= TIMESTAMPTZ '{start.isoformat()}'" if start else "",
            f"TimeGenerated < TIMESTAMPTZ '{end.isoformat()}'" if end else "") if c)
        got = count(con, f"SELECT count(*) FROM CommonSecurityLog WHERE {cond}")
        want = count(full, f"SELECT count(*) FROM every_row WHERE {cond}")
        assert got == want, (start, end)
        if start is not None:
            # Nothing from folders that end more than the 1 h skew before the window.
            plan = lake.plan("CommonSecurityLog", TimeWindow(start, end))
            assert all(f.end > start - timedelta(hours=1) for f in plan.files)
            assert report.tables["CommonSecurityLog"].files_read == len(plan.files) < total


def test_report_counts_files_read_of_total_and_views_are_reused(generated):
    lake = Lake(generated)
    con = duckdb.connect()
    day = datetime(2024, 3, 6, tzinfo=UTC)
    report = lake.register_duckdb(con, TimeWindow(day, None))
    t = report.tables["CommonSecurityLog"]
    assert 288 <= t.files_read < t.files_total and t.files_total == len(lake.files_for("CommonSecurityLog"))
    assert report.summary()["tables"]["CommonSecurityLog"]["files_read"] == t.files_read
    assert f"CommonSecurityLog {t.files_read:,} of {t.files_total:,} files" in report.text()
    con.execute("SELECT 1").fetchall()
    before = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'CommonSecurityLog'").fetchall()
    lake.register_duckdb(con, TimeWindow(day + timedelta(seconds=1), None))  # same files: view kept
    assert con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'CommonSecurityLog'").fetchall() == before
    desc = lake.describe(con)
    (csl,) = desc.tables
    lines = 0
    for base, _, names in os.walk(generated):
        for n in names:
            if n.startswith("PT05M"):
                with open(os.path.join(base, n), "rb") as f:
                    lines += f.read().count(b"\n")
    assert csl.rows == lines > 18_000  # 6,000 a day, plus the beacon case's planted rows on the last day
    assert csl.files == t.files_total and csl.layouts == ["5m"] and csl.formats == ["json"]
    assert csl.min_time.date().isoformat() == "2024-03-04" and csl.max_time.date().isoformat() == "2024-03-06"
    assert "CommonSecurityLog" in str(desc)


def test_hourly_layout_overflow_and_column_modes(tmp_path):
    datagen.generate(str(tmp_path), days=1, end_date="2024-03-06", events_per_day=3_000, seed=5,
                     tables="SecurityEvent", layout="1h", max_rows_per_file=40)
    counts = {}
    for mode in ("auto", "all", "seen"):
        lake = Lake(tmp_path, columns=mode)
        con, report = views(lake, TimeWindow(datetime(2024, 3, 6, 12, tzinfo=UTC), datetime(2024, 3, 6, 13,
                                                                                              tzinfo=UTC)))
        counts[mode] = con.execute("SELECT count(*), count(NewProcessName), count(DISTINCT Computer) FROM "
                                   "SecurityEvent WHERE TimeGenerated >= '2024-03-06 12:00:00+00' AND "
                                   "TimeGenerated < '2024-03-06 13:00:00+00'").fetchall()
        files = lake.files_for("SecurityEvent", report.window)
        assert any(f.endswith("PT1H_1.json") for f in files) and all("/m=00/" in f for f in files)
    assert counts["auto"] == counts["all"] == counts["seen"] and counts["auto"][0][0] > 100
    plan = Lake(tmp_path).plan("SecurityEvent")
    assert plan.files == plan.scanned and 20 < len(plan.scanned_columns) < 80  # small files: exact keys
    assert Lake(tmp_path, columns="all").plan("SecurityEvent").scanned_columns is None


# -- damaged lakes -----------------------------------------------------------------------------------


def _good(n: int, start: datetime = T0) -> list[dict]:
    return [rec(start + timedelta(seconds=i), SyslogMessage=f"m{i}", ProcessID=i) for i in range(n)]


def test_empty_folders_and_files_are_harmless(tmp_path):
    blob(tmp_path, "am-syslog", T0, _good(3))
    empty = blob(tmp_path, "am-syslog", T0 + timedelta(minutes=5), [], raw=b"")
    os.makedirs(os.path.join(os.path.dirname(empty), "..", "..", "h=11", "m=20"))
    os.makedirs(os.path.join(str(tmp_path), "am-syslog", *WS, "y=2024", "m=04"))
    con, report = views(Lake(tmp_path))
    assert count(con, "SELECT count(*) FROM Syslog") == 3
    assert report.warnings == []
    assert any("1 empty file(s)" in n and "PT05M.json" in n for n in report.notes)


def test_truncated_last_line_is_skipped_and_named(tmp_path):
    lines = [json.dumps(r) for r in _good(4)]
    raw = ("\n".join(lines) + "\n" + lines[0][:30]).encode()
    path = blob(tmp_path, "am-syslog", T0, [], raw=raw)
    con, report = views(Lake(tmp_path))
    assert count(con, "SELECT count(*) FROM Syslog") == 4
    assert report.skipped == [(path, 5, "truncated record at the end of the file")]
    (warning,) = report.warnings
    assert "d=04/h=10/m=00/PT05M.json" in warning and "1 line(s) skipped (line 5: truncated record" in warning
    assert report.tables["Syslog"].lines_skipped == 1


def test_non_json_files_are_skipped_whole(tmp_path):
    blob(tmp_path, "am-syslog", T0, _good(2))
    bad = blob(tmp_path, "am-syslog", T0 + timedelta(minutes=5), [], raw=b"hello world\nthis is not json\n")
    gz = blob(tmp_path, "am-syslog", T0 + timedelta(minutes=10), [], raw=b"\x1f\x8b\x08\x00rest")
    trunc_pq = blob(tmp_path, "am-syslog", T0 + timedelta(minutes=15), [], ext="parquet", raw=b"PAR1xxxx")
    con, report = views(Lake(tmp_path))
    assert count(con, "SELECT count(*) FROM Syslog") == 2
    text = "\n".join(report.warnings)
    assert "m=05/PT05M.json: not JSON lines (starts with 'hello world this is not ')" in text
    assert "m=10/PT05M.json: gzip-compressed, not JSON lines; file skipped" in text
    assert "m=15/PT05M.parquet: truncated Parquet file (no footer); file skipped" in text
    assert {(p, line) for p, line, _ in report.skipped} == {(bad, None), (gz, None), (trunc_pq, None)}
    assert report.tables["Syslog"].files_skipped == 3


def test_record_without_timegenerated_is_kept_and_reported(tmp_path):
    lines = _good(3)
    lines.insert(1, {"Type": "Syslog", "SyslogMessage": "no time"})
    lines.append({"SyslogMessage": "neither Type nor time"})
    lines.append({"Type": "Syslog", "TimeGenerated": _iso(T0), "ProcessID": "abc"})
    blob(tmp_path, "am-syslog", T0, lines)
    con, report = views(Lake(tmp_path))
    rows = con.execute("SELECT SyslogMessage, TimeGenerated IS NULL, ProcessID FROM Syslog ORDER BY ALL"
                       ).fetchall()
    assert rows == [("m0", False, 0), ("m1", False, 1), ("m2", False, 2), ("no time", True, None),
                    (None, False, None)]
    (warning,) = report.warnings
    assert "1 line(s) skipped (line 5: no TimeGenerated and no Type)" in warning
    assert "line 2: no TimeGenerated (kept with an empty TimeGenerated)" in warning
    assert 'line 6: ProcessID "abc" is not an int (read as empty)' in warning
    with_window = views(Lake(tmp_path), TimeWindow(T0 - timedelta(hours=1), None))[0]
    assert count(with_window, "SELECT count(*) FROM Syslog WHERE TimeGenerated >= TIMESTAMPTZ '2024-03-04 09:00+00'"
                 ) == 4


def test_damage_in_the_middle_of_a_big_file_is_recovered(tmp_path):
    """Big files get the cheap checks and a census of every record (malformed lines, keys, TimeGenerated);
    a value DuckDB cannot convert shows only when it reads it: its error names the file, which is then scanned."""
    lines = [json.dumps(r) for r in _good(8000)]
    lines[2500] = '{"TimeGenerated": "' + _iso(T0) + '", "Type": "Syslog", "SyslogMessage": oops}'
    path = blob(tmp_path, "am-syslog", T0, [], raw=("\n".join(lines) + "\n").encode())
    assert os.path.getsize(path) > SCAN_BELOW
    con, report = views(Lake(tmp_path))
    assert count(con, "SELECT count(*) FROM Syslog") == 7999
    assert report.skipped == [(path, 2501, "not valid JSON")]
    assert "1 line(s) skipped (line 2501: not valid JSON)" in report.warnings[0]

    lines[2500] = json.dumps(rec(T0, SyslogMessage="bad", ProcessID="abc"))
    blob(tmp_path, "am-syslog", T0, [], raw=("\n".join(lines) + "\n").encode())
    lake = Lake(tmp_path)
    con = duckdb.connect()
    lake.register_duckdb(con)
    with pytest.raises(duckdb.Error) as err:
        con.execute("SELECT count(ProcessID) FROM Syslog").fetchall()
    assert path in str(err.value)

    def run() -> int:
        try:
            return count(con, "SELECT count(ProcessID) FROM Syslog")
        except duckdb.Error as exc:  # what an engine does: a short error that still names the file
            raise QueryError(str(exc).splitlines()[0]) from None

    n, report = lake.run_duckdb(con, run)
    assert n == 7999 and report.skipped == []
    assert '1 line(s) read with gaps (line 2501: ProcessID "abc" is not an int (read as empty))' in report.warnings[0]


def test_mixed_schemas_across_days(tmp_path):
    day1, day2 = T0, T0 + timedelta(days=1)
    blob(tmp_path, "am-syslog", day1, _good(2, day1))
    blob(tmp_path, "am-syslog", day2, [rec(day2, SyslogMessage="new", Tier="gold", Score=7)])
    lake = Lake(tmp_path)
    con, report = views(lake)
    rows = con.execute("SELECT SyslogMessage, Tier, Score FROM Syslog ORDER BY TimeGenerated").fetchall()
    assert rows == [("m0", None, None), ("m1", None, None), ("new", "gold", 7)]
    assert any("column Tier (in 1 file(s)) is not in the table schema; read as string" in n for n in report.notes)
    assert ("Score", "long") in lake.schema_for("Syslog")
    # Columns outside the schema come from the files a window reads.
    con1, _ = views(Lake(tmp_path, max_late=timedelta(0)), TimeWindow(None, day1 + timedelta(hours=1)))
    assert "Tier" not in [c[0] for c in con1.execute("DESCRIBE Syslog").fetchall()]


def test_mixed_json_and_parquet_in_one_table(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    blob(tmp_path, "am-syslog", T0, _good(2))
    path = blob(tmp_path, "am-syslog", T0 + timedelta(minutes=5), [], ext="parquet", raw=b"")
    table = pa.table({"TimeGenerated": pa.array([T0 + timedelta(minutes=6)], pa.timestamp("us", tz="UTC")),
                      "Type": ["Syslog"], "SyslogMessage": ["from parquet"], "ProcessID": pa.array([7], pa.int64())})
    pq.write_table(table, path)
    con, report = views(Lake(tmp_path))
    assert con.execute("SELECT SyslogMessage, ProcessID FROM Syslog ORDER BY TimeGenerated").fetchall() == [
        ("m0", 0), ("m1", 1), ("from parquet", 7)]
    assert report.tables["Syslog"].files_read == 2


# -- the window a query asks for ----------------------------------------------------------------------

NOW = datetime(2024, 3, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("query, start, end", [
    ("SecurityEvent | where TimeGenerated > ago(7d)", NOW - timedelta(days=7), None),
    ("SecurityEvent | where TimeGenerated >= ago(1h) and EventID == 4688 | summarize count()",
     NOW - timedelta(hours=1), None),
    ("T | where TimeGenerated between (datetime(2024-03-01) .. datetime(2024-03-02 10:00))",
     datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, 10, 0, 0, 1, tzinfo=UTC)),
    ("T | where TimeGenerated < now(-1d) | where TimeGenerated > datetime('2024-02-01T00:00:00Z')",
     datetime(2024, 2, 1, tzinfo=UTC), NOW - timedelta(days=1)),
    ("T | where ago(2h) <= TimeGenerated", NOW - timedelta(hours=2), None),
    ("T | where EventID == 1 | where TimeGenerated <= datetime(2024-03-05T01:02:03.1234567Z) | take 5",
     None, datetime(2024, 3, 5, 1, 2, 3, 123457, tzinfo=UTC)),
    ("T\n// comment | where TimeGenerated > ago(1d)\n| where TimeGenerated > ago(90m)", NOW - timedelta(minutes=90),
     None),
])
def test_window_from_query(query, start, end):
    assert window_from_query(query, now=NOW) == TimeWindow(start, end)


@pytest.mark.parametrize("query", [
    "T | where TimeGenerated > ago(1d) or EventID == 4688",
    "T | where TimeGenerated > ago(1d) | join (U) on Key",
    "T | where TimeGenerated > ago(1d) | union U",
    "let x = 1; T | where TimeGenerated > ago(1d)",
    "T | summarize by Computer | where TimeGenerated > ago(1d)",
    "T | where EventID == 4688",
    "T | where TimeGenerated > startofday(ago(1d))",
    "T | where TimeGenerated !between (ago(2d) .. ago(1d))",
    "T | where Time > ago(1d)",
    "T | where TimeGenerated > ago(1d) | lookup U on Key",
])
def test_window_from_query_gives_up_rather_than_prune_wrongly(query):
    assert window_from_query(query, now=NOW) is None


@pytest.mark.slow
def test_big_files_read_strictly_give_the_same_rows_as_parquet(tmp_path):
    """Files over SCAN_BELOW take the strict read_json path; small ones the scanned path; Parquet its own."""
    js, pq = tmp_path / "json", tmp_path / "parquet"
    for out, fmt in ((js, "json"), (pq, "parquet")):
        datagen.generate(str(out), days=1, end_date="2024-03-06", events_per_day=80_000, seed=8,
                         tables="CommonSecurityLog", layout="1h", fmt=fmt)
    lake = Lake(js)
    plan = lake.plan("CommonSecurityLog")
    assert len(plan.strict) >= 20 and plan.scanned  # big hourly blobs, and small late-data blobs
    rows = []
    for root in (js, pq):
        con, _ = views(Lake(root))
        rows.append(con.sql("SELECT * FROM CommonSecurityLog ORDER BY ALL").to_arrow_table())
    assert rows[0].num_rows == 80_000 and rows[0].equals(rows[1])


def test_full_validation_finds_what_cheap_checks_cannot(tmp_path):
    """A big file's middle is not read by the cheap checks: the census, validate='full' and check() read it."""
    lines = _good(8000)
    lines[1234] = {"Type": "Syslog", "SyslogMessage": "no time here"}
    path = blob(tmp_path, "am-syslog", T0, lines)
    assert os.path.getsize(path) > SCAN_BELOW
    expected = "line 1235: no TimeGenerated (kept with an empty TimeGenerated)"
    con, quick = views(Lake(tmp_path))  # the census of big files sees it too
    assert any(expected in w for w in quick.warnings)
    assert count(con, "SELECT count(*) FROM Syslog WHERE TimeGenerated IS NULL") == 1
    audit = Lake(tmp_path).check()
    assert any(expected in w for w in audit.warnings)
    con, full = views(Lake(tmp_path, validate="full"))
    assert any(expected in w for w in full.warnings)
    assert count(con, "SELECT count(*) FROM Syslog") == 8000
