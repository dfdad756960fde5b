"""The lake reads real data whole: records shaped like the Azure-Sentinel "Sample Data" Syslog files.

The CiscoISE and JuniperSRX samples (Azure/Azure-Sentinel, ``Sample Data/Syslog/``) are both Syslog,
and spell one column ``ProcessID`` (the table's) and the other ``ProcessId`` (a parser's). The
records here are written for these tests in that shape; no sample content is copied. Every test goes
through real files and the real local engine (``kqlmagic_plus.kql(query, conn="lake://DIR")``).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

import kqlmagic_plus
from kqlmagic_plus.lake import SCAN_BELOW, Lake

WS = ("WorkspaceResourceId=", "subscriptions", "00000000-0000-0000-0000-000000000000", "resourcegroups", "rg",
      "providers", "microsoft.operationalinsights", "workspaces", "ws")
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
TENANT = "11111111-2222-3333-4444-555555555555"


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def blob(root, when: datetime, lines: list, *, container: str = "am-syslog") -> str:
    """One export blob (PT05M.json) in the folder of *when*; *lines* are records or raw text lines."""
    folder = os.path.join(str(root), container, *WS, f"y={when:%Y}", f"m={when:%m}", f"d={when:%d}",
                          f"h={when:%H}", f"m={when:%M}")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "PT05M.json")
    with open(path, "w", encoding="utf-8") as f:
        for x in lines:
            f.write((x if isinstance(x, str) else json.dumps(x)) + "\n")
    return path


def ise(i: int, pid: object = None) -> dict:
    """A Cisco ISE syslog record as Log Analytics stores it: the table's own ``ProcessID``."""
    return {"TenantId": TENANT, "SourceSystem": "Linux", "TimeGenerated": _iso(T0 + timedelta(seconds=i)),
            "Computer": f"ciscoise_psn{i % 3:02d}", "EventTime": _iso(T0 + timedelta(seconds=i)),
            "Facility": "local7", "HostName": f"ciscoise_psn{i % 3:02d}", "SeverityLevel": "notice",
            "SyslogMessage": f"{i:06d} 5400 NOTICE Failed-Attempt: Authentication failed, User-Name=user{i}",
            "ProcessID": 5200 + i if pid is None else pid, "HostIP": "Unknown IP",
            "ProcessName": "CISE_Failed_Attempts", "MG": "00000000-0000-0000-0000-000000000002",
            "Type": "Syslog", "_ResourceId": ""}


def srx(i: int, pid: object = None) -> dict:
    """A Juniper SRX record as its parser writes it: ``ProcessId``, and columns Syslog does not have."""
    return {"SyslogMessage": f"<11>RT_IDS IP spoofing! source: 192.168.7.{i % 250}, action: alarm-without-drop",
            "EventTimestamp": "11/14/2020 6:21", "DvcHostname": "JuniperSRX_FW1", "EventType": "RT_IDS",
            "ProcessId": str(3000 + i) if pid is None else pid, "SrcIpAddr": f"192.168.7.{i % 250}",
            "DstIpAddr": "239.255.255.250", "Computer": "juniper-srx-server01", "TenantId": TENANT,
            "SourceSystem": "Linux", "MG": "00000000-0000-0000-0000-000000000002", "_ResourceId": "/subscriptions/x",
            "Type": "Syslog", "EventTime": _iso(T0 + timedelta(seconds=i)),
            "TimeGenerated": _iso(T0 + timedelta(seconds=i)), "Facility": "local0"}


def kql(query: str, root) -> kqlmagic_plus.results.Result:
    return kqlmagic_plus.kql(query, conn=f"lake://{root}")


def rows(result) -> list[tuple]:
    return [tuple(r.values()) for r in result.table.to_pylist()]


def warned(result, text: str) -> bool:
    return any(text in w for w in result.warnings)


# -- column names that differ only in case -----------------------------------------------------------


def test_cisco_ise_and_juniper_srx_syslog_keep_both_process_columns(tmp_path):
    blob(tmp_path, T0, [ise(0), ise(1), ise(2, pid="")])  # the ISE sample's ProcessID is often ""
    blob(tmp_path, T0 + timedelta(minutes=5), [srx(0), srx(1), srx(2, pid="")])
    assert rows(kql("Syslog | count", tmp_path)) == [(6,)]
    by_id = kql("Syslog | where ProcessID == 5201 | project ProcessName, Computer", tmp_path)
    assert rows(by_id) == [("CISE_Failed_Attempts", "ciscoise_psn01")]
    srx_rows = kql("Syslog | where ProcessId_1 == '3001' | project DvcHostname, EventType, ProcessID", tmp_path)
    assert rows(srx_rows)[0][:2] == ("JuniperSRX_FW1", "RT_IDS") and srx_rows.row_count == 1
    both = kql("Syslog | summarize ise = countif(isnotnull(ProcessID)), srx = countif(isnotempty(ProcessId_1)), "
               "srx_empty = countif(isnotnull(ProcessId_1) and isempty(ProcessId_1))", tmp_path)
    # KQL strings are never null (isnull("") is false): the three ISE records that lack ProcessId read it as
    # empty, like the SRX record whose ProcessId is "".
    assert rows(both) == [(2, 2, 4)]
    assert warned(both, "columns ProcessID and ProcessId differ only in case; ProcessId is read as ProcessId_1")
    # The ISE record whose ProcessID is "" is counted, as every value read as empty is.
    assert warned(both, 'ProcessID "" is not an int (read as empty)')
    # DuckDB names ignore case: a query naming ProcessId would read ProcessID, so it is refused by name.
    from kqlmagic_plus.errors import QueryError

    with pytest.raises(QueryError, match=r"columns ProcessID and ProcessId, which differ only in case.*"
                                         r"write ProcessId_1 for the values of ProcessId"):
        kql("Syslog | where ProcessId == '3001'", tmp_path)


def test_one_record_holding_both_spellings_keeps_both_values(tmp_path):
    rec = {**ise(0), "ProcessId": "777"}
    blob(tmp_path, T0, [rec, ise(1)])
    r = kql("Syslog | where isnotempty(ProcessId_1) | project ProcessID, ProcessId_1", tmp_path)
    assert rows(r) == [(5200, "777")]


def test_case_variant_in_the_middle_of_a_big_file_is_not_lost(tmp_path):
    lines = [ise(i) for i in range(6000)]
    lines[3000:3003] = [srx(i) for i in range(3)]
    path = blob(tmp_path, T0, lines)
    assert os.path.getsize(path) > SCAN_BELOW
    r = kql("Syslog | where isnotempty(ProcessId_1) | project ProcessId_1, DvcHostname | order by ProcessId_1 asc",
            tmp_path)
    assert rows(r) == [("3000", "JuniperSRX_FW1"), ("3001", "JuniperSRX_FW1"), ("3002", "JuniperSRX_FW1")]
    assert rows(kql("Syslog | summarize count(), countif(isnotnull(ProcessID))", tmp_path)) == [(6000, 5997)]
    assert warned(r, "ProcessId is read as ProcessId_1")


def test_custom_table_case_variants_first_spelling_keeps_its_name(tmp_path):
    base = {"Type": "MyApp_CL", "TimeGenerated": _iso(T0)}
    blob(tmp_path, T0, [{**base, "UserName": "alice"}], container="am-myapp_cl")
    blob(tmp_path, T0 + timedelta(minutes=5), [{**base, "username": "bob", "USERNAME": "carol"}],
         container="am-myapp_cl")
    r = kql("MyApp_CL | project UserName, username_1, USERNAME_2", tmp_path)
    # a record that lacks a string column reads it as "" (KQL strings are never null)
    assert sorted(rows(r), key=str) == sorted([("alice", "", ""), ("", "bob", "carol")], key=str)
    assert warned(r, "columns UserName, username and USERNAME differ only in case; username is read as username_1, "
                     "USERNAME as USERNAME_2")


# -- big files are read whole ----------------------------------------------------------------------


def test_column_only_in_the_middle_of_a_big_file_is_read(tmp_path):
    lines = [ise(i) for i in range(6000)]
    for i in range(2500, 2505):
        lines[i] = {**ise(i), "EventType": "RT_IDS"}
    path = blob(tmp_path, T0, lines)
    assert os.path.getsize(path) > SCAN_BELOW
    custom = [{"Type": "MyApp_CL", "TimeGenerated": _iso(T0 + timedelta(seconds=i)), "Msg": "x" * 100}
              for i in range(6000)]
    custom[3000]["Severity"] = 9
    blob(tmp_path, T0, custom, container="am-myapp_cl")
    assert rows(kql("Syslog | where EventType == 'RT_IDS' | count", tmp_path)) == [(5,)]
    assert rows(kql("MyApp_CL | where Severity > 5 | count", tmp_path)) == [(1,)]


def test_missing_timegenerated_in_a_big_file_is_reported(tmp_path):
    lines = [ise(i) for i in range(6000)]
    no_time = ise(2000)
    del no_time["TimeGenerated"]
    lines[2000] = no_time
    lines[4000] = {"SyslogMessage": "neither Type nor time"}
    path = blob(tmp_path, T0, lines)
    assert os.path.getsize(path) > SCAN_BELOW
    lines = [ise(i) for i in range(6000)]
    lines[3000] = {**ise(3000), "TimeGenerated": None}  # in a file of its own: a null is found apart
    blob(tmp_path, T0 + timedelta(minutes=5), lines)
    r = kql("Syslog | summarize count(), countif(isnull(TimeGenerated))", tmp_path)
    assert rows(r) == [(11999, 2)]
    assert warned(r, "m=00/PT05M.json: 1 line(s) skipped (line 4001: no TimeGenerated and no Type), 1 line(s) "
                     "read with gaps (line 2001: no TimeGenerated (kept with an empty TimeGenerated))")
    assert warned(r, "m=05/PT05M.json: 1 line(s) read with gaps (line 3001: no TimeGenerated (kept with an empty "
                     "TimeGenerated))")
    assert r.stats["lake"]["tables"]["Syslog"]["lines_skipped"] == 1


@pytest.mark.slow
def test_record_over_32_mb_keeps_the_table_queryable(tmp_path):
    """DuckDB refuses JSON records past twice its 16 MB maximum_object_size, for the whole read."""
    huge = {**ise(1), "SyslogMessage": "x" * (33 * 1024 * 1024)}
    blob(tmp_path, T0, [ise(i) for i in range(2000)] + [huge] + [ise(i) for i in range(2001, 4000)])
    blob(tmp_path, T0 + timedelta(minutes=5), [ise(4001)])
    r = kql("Syslog | summarize n = count(), longest = max(strlen(SyslogMessage))", tmp_path)
    assert rows(r) == [(4001, 33 * 1024 * 1024)]


def test_deeply_nested_record_keeps_the_table_queryable(tmp_path):
    """Python's JSON reader stops at about 1,000 levels; DuckDB reads deeper, and so must the checks."""
    deep = json.dumps({**ise(9), "SyslogMessage": "deep"})[:-1] + ', "Extra": ' + "[" * 5000 + "]" * 5000 + "}"
    blob(tmp_path, T0, [ise(i) for i in range(3)] + [deep])  # a small file: every line checked
    big = [json.dumps(ise(i)) for i in range(6000)] + [deep]  # a big file: its last record checked
    path = blob(tmp_path, T0 + timedelta(minutes=5), big)
    assert os.path.getsize(path) > SCAN_BELOW
    r = kql("Syslog | summarize n = count(), deep = countif(SyslogMessage == 'deep' and isnotnull(Extra))", tmp_path)
    assert rows(r) == [(6005, 2)]
    assert not r.warnings


def test_parquet_blobs_with_both_spellings_are_not_merged(tmp_path):
    """DuckDB's read_parquet(union_by_name) merges ProcessID and ProcessId into one column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    blob(tmp_path, T0, [ise(0)])
    tg = pa.array([T0 + timedelta(minutes=6)], pa.timestamp("us", tz="UTC"))
    int32 = pa.int32()
    for minutes, cols in ((5, {"SyslogMessage": ["ise"], "ProcessID": pa.array([7], int32)}),
                          (10, {"SyslogMessage": ["srx"], "ProcessId": ["88"]}),
                          (15, {"SyslogMessage": ["both"], "ProcessId": ["99"], "ProcessID": pa.array([9], int32)})):
        path = blob(tmp_path, T0 + timedelta(minutes=minutes), [])
        os.remove(path)
        pq.write_table(pa.table({"TimeGenerated": tg, "Type": ["Syslog"], **cols}), path[:-len("json")] + "parquet")
    r = kql("Syslog | project SyslogMessage, ProcessID, ProcessId_1 | order by SyslogMessage asc", tmp_path)
    assert rows(r) == [(ise(0)["SyslogMessage"], 5200, ""), ("both", 9, "99"), ("ise", 7, ""), ("srx", None, "88")]


def test_lake_api_names_the_json_key_of_a_renamed_column(tmp_path):
    blob(tmp_path, T0, [ise(0), srx(0)])
    plan = Lake(tmp_path).plan("Syslog")
    assert ("ProcessId_1", "string") in plan.schema and plan.keys == {"ProcessId_1": "ProcessId"}


# -- Spark reads the same names --------------------------------------------------------------------


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_case_variant_columns_as_duckdb_does(tmp_path, spark_local):
    from kqlmagic_plus.engines.spark.lake import SparkLake
    from kqlmagic_plus.engines.spark.remote import register_lake

    long = {**ise(8), "SyslogMessage": "y" * 21_000_000}  # past Jackson's default 20 M characters a string
    blob(tmp_path, T0, [ise(0), ise(1), {**ise(2), "ProcessId": "777"}, long])
    big = [ise(i) for i in range(6000)]
    big[3000] = srx(5)
    blob(tmp_path, T0 + timedelta(minutes=5), big)
    # Past Jackson's default 1,000 levels, in a table read by Spark's JSON reader (no renamed key).
    deep = json.dumps({"Type": "MyApp_CL", "TimeGenerated": _iso(T0), "Msg": "deep"})[:-1] + ', "Extra": ' + (
        "[" * 2000 + "]" * 2000 + "}")
    blob(tmp_path, T0, [{"Type": "MyApp_CL", "TimeGenerated": _iso(T0), "Msg": "flat"}, deep,
                        {**long, "Type": "MyApp_CL"}], container="am-myapp_cl")
    reg = SparkLake(str(tmp_path)).registration(None)
    register_lake(spark_local, reg.spec)
    whole = spark_local.sql("SELECT count(*), max(length(SyslogMessage)) FROM Syslog").collect()
    assert [tuple(r) for r in whole] == rows(kql("Syslog | summarize count(), max(strlen(SyslogMessage))",
                                                 tmp_path)) == [(6004, 21_000_000)]
    custom = spark_local.sql("SELECT count(*), count(Extra), max(length(SyslogMessage)) FROM MyApp_CL").collect()
    assert [tuple(r) for r in custom] == rows(kql("MyApp_CL | summarize count(), countif(isnotnull(Extra)), "
                                                  "max(strlen(SyslogMessage))", tmp_path)) == [(3, 1, 21_000_000)]
    query = ("SELECT SyslogMessage, ProcessID, ProcessId_1, DvcHostname FROM Syslog "
             "WHERE ProcessId_1 IS NOT NULL OR ProcessID < 5202 ORDER BY SyslogMessage, ProcessID")
    # KQL strings are never null (isnotnull is true for every string): a value is present when not empty, and a
    # missing string reads "" in a KQL result where the plain SQL reads NULL
    spark_rows = [(m, pid, pid1 or "", host or "") for m, pid, pid1, host in spark_local.sql(query).collect()]
    local = kql("Syslog | where isnotempty(ProcessId_1) or ProcessID < 5202 "
                "| project SyslogMessage, ProcessID, ProcessId_1, DvcHostname | order by SyslogMessage asc, "
                "ProcessID asc nulls first", tmp_path)
    assert len(spark_rows) == 6 and spark_rows == rows(local)
    assert ("000002 5400 NOTICE Failed-Attempt: Authentication failed, User-Name=user2", 5202, "777", "") in (
        spark_rows)
    assert any(r[2] == "3005" and r[3] == "JuniperSRX_FW1" for r in spark_rows)
