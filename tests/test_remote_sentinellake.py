"""``sentinellake://`` against a loopback Sentinel data lake KQL endpoint (Kusto REST v2, TLS, 127.0.0.1),
through the real azure-kusto-data client with an azure-identity client-secret sign-in; and ``--pull DIR``
writing the rows into the lake layout so the same hunt re-runs locally (issue #21, part 3)."""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from servers.fixtures import (  # noqa: F401  (fixtures)
    APP_ID,
    APP_SECRET,
    TENANT,
    home,
    la,
    la_server,
    secret_free,
)
from servers.lake import LoopbackLake

import kqlmagic_plus as kp
from kqlmagic_plus.errors import OptionError, QueryError

pytest.importorskip("azure.kusto.data")

WS_NAME, WS_ID = "soc-ws", "5b3c1e0a-1111-4222-8333-944444444444"
START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(days=4)
TABLE = "HuntEvents_CL"


@pytest.fixture(scope="module")
def lake_server(la_server):
    import pyarrow as pa

    srv = LoopbackLake(la_server, f"{WS_NAME}-{WS_ID}").start()
    hours = [START + timedelta(hours=h) for h in range(96)]
    srv.tables[TABLE] = pa.table({
        "TimeGenerated": pa.array(hours, pa.timestamp("us", tz="UTC")),
        "Account": [("alice", "bob", "carol")[h % 3] for h in range(96)],
        "Bytes": pa.array([h * 7 % 50 for h in range(96)], pa.int64()),
    })
    yield srv
    srv.stop()


@pytest.fixture
def lake(lake_server, la, home):
    lake_server.reset()
    yield lake_server
    lake_server.reset()


def conn(lake, la, **extra):
    props = {"workspacename": WS_NAME, "workspaceid": WS_ID, "tenant": TENANT, "clientid": APP_ID,
             "clientsecret": APP_SECRET, "authority": la.url, "endpoint": lake.url, **extra}
    return "sentinellake://" + ";".join(f"{k}='{v}'" for k, v in props.items())


def test_a_query_reaches_the_lake_database_through_external_table(lake, la):
    r = kp.kql(f"{TABLE} | where Bytes > 40 | summarize n = count() by Account | order by Account asc",
               conn=conn(lake, la))
    seen = lake.seen[-1]
    assert seen.database == "soc-ws-" + WS_ID and seen.status == 200
    assert seen.authorization and seen.authorization.startswith("Bearer ")
    assert f'external_table("{TABLE}") | where Bytes > 40' in seen.csl
    expected = [sum(1 for h in range(96) if h % 3 == i and h * 7 % 50 > 40) for i in range(3)]
    assert r.df.to_dict("list") == {"Account": ["alice", "bob", "carol"], "n": expected}
    assert r.engine == "sentinellake" and r.query.startswith(TABLE) and "external_table" in r.executed
    assert secret_free(r, r.connection, repr(r), r.warnings)


def test_a_bare_table_is_what_the_lake_refuses(lake, la):
    """Why the rewrite exists: the endpoint resolves lake tables only through external_table()."""
    r = kp.kql(f"{TABLE} | count", conn=conn(lake, la))
    assert r.df["Count"].tolist() == [96]
    with pytest.raises(QueryError, match="external_table"):
        kp.kql(f"{TABLE} | count", conn=f"adx://cluster='{lake.url}';database='soc-ws-{WS_ID}';tenant='{TENANT}';"
                                         f"clientid='{APP_ID}';clientsecret='{APP_SECRET}';authority='{la.url}'")


@pytest.mark.parametrize(("query", "named"), [
    (f"{TABLE} | where ingestion_time() > ago(1d)", "'ingestion_time' at line 1, column 23"),
    (f"{TABLE}\n| join (adx('https://help.kusto.windows.net/Samples').StormEvents) on $left.Account == $right.State",
     "'adx' at line 2, column 9"),
    ("externaldata (a: string) [@'https://example.invalid/x.csv']", "'externaldata' at line 1, column 1"),
])
def test_what_the_lake_does_not_run_is_named_before_anything_is_sent(lake, la, query, named):
    with pytest.raises(QueryError) as info:
        kp.kql(query, conn=conn(lake, la))
    assert named in info.value.message and "Sentinel data lake" in info.value.message
    assert lake.seen == []


def test_the_window_is_a_time_filter_and_split_by_slices_it(lake, la):
    window = {"start": START.isoformat(), "end": END.isoformat()}
    whole = kp.kql(f"{TABLE} | summarize n = count(), total = sum(Bytes) by Account", conn=conn(lake, la),
                   start=(START + timedelta(days=1)).isoformat(), end=END.isoformat())
    assert whole.df["n"].sum() == 72  # the window's three days, not the table's four
    lake.reset()
    sliced = kp.kql(f"{TABLE} | summarize n = count(), total = sum(Bytes) by Account", conn=conn(lake, la),
                    split_by="1d", **window)
    assert len(lake.seen) == 4 and all("TimeGenerated >= datetime(2024-05-0" in s.csl for s in lake.seen)
    assert [s["status"] for s in sliced.stats["slices"]] == ["complete"] * 4
    assert sliced.df["n"].sum() == 96
    full = kp.kql(f"{TABLE} | summarize n = count(), total = sum(Bytes) by Account", conn=conn(lake, la), **window)
    assert sliced.df.sort_values("Account").to_dict("list") == full.df.sort_values("Account").to_dict("list")


def test_the_caps_are_explained_with_the_split_by_remedy(lake, la):
    lake.faults.append(("truncate", 3))
    r = kp.kql(f"{TABLE} | project TimeGenerated, Bytes", conn=conn(lake, la), start=START.isoformat(),
               end=END.isoformat())
    assert r.truncated and r.row_count == 3
    assert any("500,000 rows" in w for w in r.warnings)
    assert any("--split-by" in w for w in r.warnings)


def test_pull_writes_the_lake_layout_and_the_hunt_reruns_locally(lake, la, tmp_path):
    hunt = f"{TABLE} | where Bytes > 20 | summarize n = count(), top_bytes = max(Bytes) by Account"
    pulled = kp.kql(f"{TABLE} | where TimeGenerated >= datetime(2024-05-02)", conn=conn(lake, la),
                    pull=str(tmp_path / "lake"))
    assert pulled.stats["pulled"]["rows"] == 72 and pulled.stats["pulled"]["files"] == 72
    assert any("lake://" in w for w in pulled.warnings)
    blob = (tmp_path / "lake" / "am-huntevents_cl" / "WorkspaceResourceId=").rglob("PT1H.parquet")
    assert len(list(blob)) == 72
    remote = kp.kql(hunt, conn=conn(lake, la), start="2024-05-02T00:00:00Z", end=END.isoformat())
    local = kp.kql(hunt, conn=f"lake://{tmp_path / 'lake'}")
    assert local.df.sort_values("Account").to_dict("list") == remote.df.sort_values("Account").to_dict("list")
    # Pulled again: the same hours are replaced, never doubled.
    again = kp.kql(f"{TABLE} | where TimeGenerated >= datetime(2024-05-02)", conn=conn(lake, la),
                   pull=str(tmp_path / "lake"))
    assert any("72 replaced" in w for w in again.warnings)
    assert kp.kql(f"{TABLE} | count", conn=f"lake://{tmp_path / 'lake'}").df["Count"].tolist() == [72]


def test_pull_needs_a_time_column_and_a_table_name(lake, la, tmp_path):
    with pytest.raises(OptionError, match="TimeGenerated"):
        kp.kql(f"{TABLE} | summarize n = count() by Account", conn=conn(lake, la), pull=str(tmp_path))
    with pytest.raises(OptionError, match="name the table"):
        kp.kql("print TimeGenerated = datetime(2024-05-01)", conn="local://", pull=str(tmp_path))
    r = kp.kql("print TimeGenerated = datetime(2024-05-01), X = 1", conn="local://", pull=f"Mine_CL={tmp_path}")
    assert r.stats["pulled"]["table"] == "Mine_CL"


def test_connection_string_errors_are_one_line_and_secret_free(la):
    with pytest.raises(OptionError, match="workspaceid") as info:
        kp.kql("T | count", conn=f"sentinellake://workspacename='{WS_NAME}';clientid='{APP_ID}';"
                                 f"clientsecret='{APP_SECRET}';tenant='{TENANT}'")
    assert "\n" not in info.value.message and secret_free(info.value)


def test_the_magic_line_takes_pull():
    from kqlmagic_plus.options import parse_kql_line

    line = parse_kql_line("--pull HuntEvents_CL=/tmp/x --timespan 7d", "T | take 1")
    assert line.pull == "HuntEvents_CL=/tmp/x"


def test_schema_of_a_lake_connection_says_why_there_is_none(lake, la):
    from kqlmagic_plus import api

    with pytest.raises(QueryError, match="fetches no schema"):
        api.schema(conn(lake, la))
    assert lake.seen == []
