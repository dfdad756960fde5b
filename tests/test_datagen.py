"""The synthetic Sentinel generator: layout, types, determinism, and the planted attacks."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from kqlmagic_plus.demo import datagen
from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.lake import Lake, package_schemas

END = "2024-03-05"
PATH = re.compile(
    r"^am-(?P<container>[a-z]+)/WorkspaceResourceId=/subscriptions/[0-9a-f-]{36}/resourcegroups/[^/]+/providers/"
    r"microsoft\.operationalinsights/workspaces/[^/]+/y=(?P<y>\d{4})/m=(?P<mo>\d{2})/d=(?P<d>\d{2})/"
    r"h=(?P<h>\d{2})/m=(?P<mi>\d{2})/(?P<stem>PT05M|PT1H)(?:_(?P<part>\d+))?\.(?P<ext>json|parquet)$")
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$")


def _files(root: str) -> list[str]:
    out = []
    for base, _, names in os.walk(root):
        out.extend(os.path.relpath(os.path.join(base, n), root) for n in names)
    return sorted(out)


def _records(root: str, table: str) -> list[tuple[str, dict]]:
    out = []
    for rel in _files(root):
        if rel.startswith(f"am-{table.lower()}/") and rel.endswith(".json"):
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                out.extend((rel, json.loads(line)) for line in f)
    return out


def _parse_iso(text: str) -> datetime:
    return datetime.strptime(text[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, datagen.DatagenSummary]:
    root = str(tmp_path_factory.mktemp("lake"))
    summary = datagen.generate(root, days=2, end_date=END, events_per_day=20_000, seed=11, late_fraction=0.01)
    return root, summary


def test_export_layout_type_and_timegenerated_on_every_record(lake):
    root, summary = lake
    files = [f for f in _files(root) if f != "_truth.json"]
    assert {f.split("/")[0] for f in files} == {"am-signinlogs", "am-securityevent", "am-commonsecuritylog",
                                                "am-syslog"}
    for rel in files:
        m = PATH.match(rel)
        assert m, rel
        assert m["stem"] == "PT05M" and int(m["mi"]) % 5 == 0 and m["ext"] == "json"
    for table in datagen.TABLES:
        recs = _records(root, table)
        assert len(recs) == summary.rows[table]
        for _, rec in recs:
            assert rec["Type"] == table
            assert ISO.match(rec["TimeGenerated"]), rec["TimeGenerated"]
    assert summary.total_rows == 2 * 20_000
    assert sum(summary.files.values()) == len(files)


def test_every_record_lands_in_the_folder_of_its_arrival(lake):
    """Folders are export time: at or after TimeGenerated (fast clocks: up to 90 s before), late rows later."""
    root, _ = lake
    late = early = 0
    for rel, rec in _records(root, "CommonSecurityLog"):
        m = PATH.match(rel)
        folder = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["mi"]), tzinfo=UTC)
        t = _parse_iso(rec["TimeGenerated"])
        assert t < folder + timedelta(minutes=5, seconds=90), (rel, rec["TimeGenerated"])
        assert folder <= t + timedelta(hours=36, minutes=6)
        late += folder > t + timedelta(minutes=10)
        early += t >= folder + timedelta(minutes=5)
    assert late > 50  # late_fraction=0.01 of 12,000 rows
    assert early >= 1


def test_records_use_only_schema_columns_with_their_kql_types(lake):
    root, _ = lake
    schemas = package_schemas()
    checks = {
        "string": lambda v: isinstance(v, str),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -2**31 <= v < 2**31,
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "real": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "datetime": lambda v: isinstance(v, str) and ISO.match(v) is not None,
        "dynamic": lambda v: isinstance(v, dict | list),
    }
    for table in datagen.TABLES:
        types = dict(schemas[table])
        seen: set[str] = set()
        for _, rec in _records(root, table):
            for col, value in rec.items():
                assert col in types, f"{table}.{col} is not a column of {table}"
                assert checks[types[col]](value), f"{table}.{col}={value!r} is not {types[col]}"
                seen.add(col)
        assert len(seen) >= min(15, len(types) // 2), (table, sorted(seen))


def test_package_schema_matches_the_shared_reference():
    shared = "/work/shared/data/la_table_schemas.json"
    if not os.path.exists(shared):
        pytest.skip("the shared reference is not on this machine")
    with open(shared, encoding="utf-8") as f:
        ref = json.load(f)["tables"]
    for table, cols in package_schemas().items():
        assert [list(c) for c in cols] == ref[table]


@pytest.mark.slow
def test_same_seed_same_bytes_whatever_the_threads(tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    for out, workers, seed in ((a, 1, 5), (b, 2, 5), (c, 2, 6)):
        datagen.generate(out, days=2, end_date=END, events_per_day=3_000, seed=seed, workers=workers)

    def digest(root: str) -> str:
        h = hashlib.sha256()
        for rel in _files(root):
            h.update(rel.encode())
            with open(os.path.join(root, rel), "rb") as f:
                h.update(f.read())
        return h.hexdigest()

    assert digest(a) == digest(b)
    assert digest(a) != digest(c)
    p1, p2 = (str(tmp_path / n) for n in ("p1", "p2"))
    for out, workers in ((p1, 1), (p2, 2)):
        datagen.generate(out, days=1, end_date=END, events_per_day=1_000, seed=5, fmt="parquet", workers=workers)
    assert digest(p1) == digest(p2)


def test_planted_beacon_matches_the_worked_example(lake):
    root, _ = lake
    with open(os.path.join(root, "_truth.json"), encoding="utf-8") as f:
        truth = json.load(f)
    beacon = next(a for a in truth["attacks"] if a["id"] == "beacon")
    pairs: dict[tuple, list[datetime]] = {}
    vendor: dict[tuple, str] = {}
    for _, rec in _records(root, "CommonSecurityLog"):
        key = (rec["SourceIP"], rec["DestinationIP"], rec["DestinationPort"])
        pairs.setdefault(key, []).append(_parse_iso(rec["TimeGenerated"]))
        vendor[key] = rec["DeviceVendor"]
    by_label = {}
    for p in beacon["pairs"]:
        by_label.setdefault(p["label"], []).append(p)
    a = by_label["A"][0]
    times = sorted(pairs[("10.1.1.22", "203.0.113.51", 443)])
    assert len(times) == a["events"] == 240
    assert {(b - a_).total_seconds() for a_, b in itertools.pairwise(times)} == {60.0}
    assert a["expected_row"]["BeaconCount"] == 239 and vendor[("10.1.1.22", "203.0.113.51", 443)] == "Fortinet"
    # B and C check in on A's 60 s grid (offset 7 s / 13 s), each check-in displaced by up to 0.4 s / 5 s.
    grid = times[0]
    b_times = sorted(pairs[("10.1.1.20", "203.0.113.50", 443)])
    b_off = [(t - grid).total_seconds() - 60 * k - 7 for k, t in enumerate(b_times)]
    assert len(b_times) == 240 and all(abs(o) <= 0.4 for o in b_off) and max(b_off) - min(b_off) > 0.4
    c_times = sorted(pairs[("10.1.1.21", "198.51.100.77", 8443)])
    c_off = [(t - grid).total_seconds() - 60 * k - 13 for k, t in enumerate(c_times)]
    assert all(abs(o) <= 5 for o in c_off) and max(c_off) - min(c_off) > 5
    assert ("10.1.1.40", "10.2.2.2", 445) in pairs and by_label["E"][0]["expected"].startswith("dropped: private")
    f_sources = {k[0] for k in pairs if k[1] == "93.184.216.34"}
    assert len(f_sources) == 30 and by_label["F"][0]["expected"].startswith("dropped: destination degree 30")
    d_dests = {k[1] for k in pairs if k[0] == "10.1.1.30"}
    assert len(d_dests) == 3
    # No background traffic touches the planted hosts, so the worked example's numbers hold exactly.
    planted_sources = {"10.1.1.20", "10.1.1.21", "10.1.1.22", "10.1.1.23", "10.1.1.24", "10.1.1.30", "10.1.1.31",
                       "10.1.1.40"} | {f"10.1.2.{i}" for i in range(1, 31)}
    assert {k[0] for k in pairs if k[0].startswith("10.1.")} == planted_sources
    window = [_parse_iso(x) for p in by_label["A"] + by_label["B"] + by_label["C"]
              for x in (p["first_seen"], p["last_seen"])]
    assert max(window) - min(window) < timedelta(hours=4, minutes=1)
    assert min(window).date().isoformat() == END


def test_planted_spray_masquerade_and_rare_process_are_in_the_data(lake):
    root, _ = lake
    with open(os.path.join(root, "_truth.json"), encoding="utf-8") as f:
        attacks = {a["id"]: a for a in json.load(f)["attacks"]}
    spray = attacks["password_spray"]
    failed: dict[str, set[str]] = {}
    ok: dict[str, set[str]] = {}
    for _, rec in _records(root, "SigninLogs"):
        book = failed if rec["ResultType"] == "50126" else ok if rec["ResultType"] == "0" else {}
        book.setdefault(rec["IPAddress"], set()).add(rec["UserPrincipalName"])
        if rec["ResultType"] == "50126":
            assert rec["Status"]["errorCode"] == 50126
    assert len(failed[spray["IPAddress"]]) == spray["failed_signins"] == 58
    assert sorted(ok[spray["IPAddress"]]) == spray["successful_accounts"]
    # The spraying address is the only one failing for more than one account.
    assert max(len(v) for ip, v in failed.items() if ip != spray["IPAddress"]) == 1

    masq, rare = attacks["masquerading_process"], attacks["rare_process"]
    procs: Counter[str] = Counter()
    masq_hosts = set()
    for _, rec in _records(root, "SecurityEvent"):
        if rec["EventID"] == 4688:
            procs[rec["NewProcessName"]] += 1
            if rec["NewProcessName"] == masq["NewProcessName"]:
                masq_hosts.add(rec["Computer"])
        else:
            assert "NewProcessName" not in rec
    assert procs[masq["NewProcessName"]] == masq["count"] == 6
    assert masq_hosts == {masq["Computer"]}
    assert "svch0st.exe" in masq["NewProcessName"] and masq["imitates"].endswith("svchost.exe")
    assert procs[rare["NewProcessName"]] == 1
    assert min(procs.values()) == 1 and [p for p, n in procs.items() if n == 1] == [rare["NewProcessName"]]


def test_hourly_layout_with_overflow_blobs(tmp_path):
    root = str(tmp_path)
    summary = datagen.generate(root, days=1, end_date=END, events_per_day=4_000, seed=2, tables="Syslog",
                               layout="1h", max_rows_per_file=60)
    files = _files(root)
    names = Counter()
    for rel in files:
        if rel == "_truth.json":
            continue
        m = PATH.match(rel)
        assert m and m["stem"] == "PT1H" and m["mi"] == "00"
        names["overflow" if m["part"] else "first"] += 1
    assert names["overflow"] > names["first"] > 20
    assert sum(1 for _ in _records(root, "Syslog")) == summary.rows["Syslog"] == 4_000
    for rel in files:
        if rel.endswith(".json") and rel != "_truth.json":
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                assert sum(1 for _ in f) <= 60


@pytest.mark.slow
def test_parquet_holds_the_same_rows_as_json(tmp_path):
    import duckdb

    js, pq = str(tmp_path / "json"), str(tmp_path / "parquet")
    for out, fmt in ((js, "json"), (pq, "parquet")):
        datagen.generate(out, days=1, end_date=END, events_per_day=2_000, seed=4, fmt=fmt)
    assert any(f.endswith("PT05M.parquet") for f in _files(pq))
    assert not any(f.endswith(".json") and f != "_truth.json" for f in _files(pq))
    tables = {}
    for out in (js, pq):
        con = duckdb.connect()
        Lake(out).register_duckdb(con)
        tables[out] = {t: con.sql(f'SELECT * FROM "{t}" ORDER BY ALL').to_arrow_table() for t in datagen.TABLES}
    for t in datagen.TABLES:
        assert tables[js][t].num_rows > 0
        assert tables[js][t].equals(tables[pq][t]), t


def test_cli_writes_the_tables_asked_for(tmp_path, capsys):
    out = str(tmp_path / "cli")
    code = datagen.datagen_main(["--out", out, "--days", "1", "--end-date", END, "--events-per-day", "600",
                                 "--tables", "syslog,SigninLogs", "--seed", "9"])
    assert code == 0
    text = capsys.readouterr().out
    assert "SigninLogs" in text and "Syslog" in text and "_truth.json" in text
    assert sorted(os.listdir(out)) == ["_truth.json", "am-signinlogs", "am-syslog"]
    assert datagen.datagen_main(["--out", out, "--end-date", END]) == 2
    assert "already holds a lake" in capsys.readouterr().err
    assert datagen.datagen_main(["--out", out, "--tables", "Nope", "--overwrite"]) == 2
    assert "cannot generate 'Nope'" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    ({"fmt": "csv"}, "--format 'csv'"),
    ({"days": 0}, "--days 0"),
    ({"end_date": "2024-13-01"}, "--end-date '2024-13-01'"),
    ({"layout": "15m"}, "--layout '15m'"),
])
def test_bad_arguments_are_short_errors(tmp_path, kwargs, message):
    with pytest.raises(OptionError) as err:
        datagen.generate(str(tmp_path), events_per_day=10, **kwargs)
    assert message in str(err.value)
    assert not os.listdir(tmp_path)
