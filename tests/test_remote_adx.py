"""Azure Data Explorer through the real azure-kusto-data client, against `duckdb-kql serve` on loopback.

Plain tests talk to the server directly; fault tests go through a proxy that forwards to it and
misbehaves on request (tests/servers/kusto.py).
"""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from servers import Fault
from servers.fixtures import (  # noqa: F401  (fixtures)
    APP_ID,
    APP_SECRET,
    TENANT,
    adx_conn,
    home,
    kusto_proxy,
    kusto_proxy_server,
    kusto_serve,
    la,
    la_server,
    secret_free,
)

import kqlmagic_plus as kp
from kqlmagic_plus.errors import (
    OptionError,
    ParameterError,
    QueryCancelledError,
    QueryError,
    QueryTimeoutError,
    RemoteError,
)

pytest.importorskip("azure.kusto.data")


@pytest.fixture
def direct(kusto_serve):
    return adx_conn(kusto_serve.url, kusto_serve.name)


@pytest.fixture
def proxied(kusto_serve, kusto_proxy):
    return adx_conn(kusto_proxy.url, kusto_serve.name)


# -- queries, commands, types --------------------------------------------------------------------------------


def test_query_rows_and_types(direct, kusto_serve):
    r = kp.kql("Events | where N < 3 | project N, Account, TimeGenerated, Duration, Score, Even, "
               "Bag = bag_pack('n', N) | order by N asc", conn=direct)
    assert r.row_count == 3
    assert r.kql_types == ["long", "string", "datetime", "timespan", "real", "bool", "dynamic"]
    df = r.df
    assert list(df["Account"]) == ["user0", "user1", "user2"]
    assert str(df["TimeGenerated"][1]) == "2024-05-01 00:01:00+00:00"
    assert df["Duration"][2].total_seconds() == 2 and df["Bag"][1] == {"n": 1}
    assert r.engine == "adx" and r.connection == f"adx://{kusto_serve.url}/{kusto_serve.name}"


def test_show_commands_run_as_management_commands(direct):
    r = kp.kql(".show tables", conn=direct)
    assert "Events" in list(r.df["TableName"])
    with pytest.raises(ParameterError, match="control commands"):
        kp.kql(".show tables", conn=direct, params={"x": 1})


def test_db_at_cluster_form_and_switching(ip, run_cell, kusto_serve, direct):
    _, err, _out = run_cell(f"%kql --conn {direct.replace('adx://', 'kusto://')}")
    assert err is None, err
    value, err, _ = run_cell(f"%%kql {kusto_serve.name}@{kusto_serve.url}\nEvents | count")
    assert err is None, err  # borrowed `anonymous` from the open connection to the same cluster
    assert value.df["Count"][0] == 200


def test_server_side_parameters_travel_beside_the_text(proxied, kusto_proxy):
    evil = "user1' or 1 == 1 or Account == '"
    r = kp.kql("Events | where Account == who | count", conn=proxied, params={"who": evil})
    assert r.df["Count"][0] == 0
    sent = kusto_proxy.sent[-1]
    assert sent.properties["Parameters"] == {"who": evil}
    assert evil not in sent.body["csl"] and sent.body["csl"].startswith("declare query_parameters(who:string);")
    r = kp.kql("Events | where Account == who and N < maxn | count", conn=proxied,
               params={"who": "user1", "maxn": 30})
    assert r.df["Count"][0] == 10


# -- request properties --------------------------------------------------------------------------------------


def test_plus_properties_and_query_properties_reach_the_server(proxied, kusto_proxy):
    r = kp.kql("+servertimeout=90s\nEvents | count", conn=proxied)
    assert r.df["Count"][0] == 200
    options = kusto_proxy.sent[-1].properties["Options"]
    assert options["servertimeout"] == "0:01:30" and options["deferpartialqueryfailures"] is True
    # duckdb-kql serve refuses options it cannot honour; the refusal proves the option arrived.
    with pytest.raises(QueryError, match="request option 'notruncation'"):
        kp.kql("+notruncation Events | count", conn=proxied)
    assert kusto_proxy.sent[-1].properties["Options"]["notruncation"] is True
    with pytest.raises(QueryError, match="query_datetimescope_column"):
        kp.kql("Events | count", conn=proxied, query_properties={"query_datetimescope_column": "TimeGenerated"})
    with pytest.raises(OptionError, match=r"\+servertimeout"):
        kp.kql("+servertimeout=soon Events | count", conn=proxied)


def test_magic_query_properties_option_and_timeout(ip, run_cell, proxied, kusto_proxy):
    ip.user_ns["props"] = {"request_app_name": "hunt-42"}
    _value, err, _ = run_cell(f"%%kql --query-properties props --timeout 20 {proxied}\nEvents | take 1")
    assert err is None, err
    options = kusto_proxy.sent[-1].properties["Options"]
    assert options["request_app_name"] == "hunt-42" and options["servertimeout"] == "0:00:20"


def test_server_timeout_is_enforced_by_the_server(proxied):
    with pytest.raises(QueryTimeoutError, match="server timeout"):
        kp.kql("+servertimeout=1s range i from 1 to 30000 step 1 | extend k = 1 "
               "| join kind=inner (range j from 1 to 30000 step 1 | extend k = 1) on k | summarize dcount(i * j)",
               conn=proxied)


# -- visualization, truncation, partial failures -------------------------------------------------------------


def test_render_clause_from_the_visualization_table(proxied, kusto_proxy):
    kusto_proxy.inject(Fault("visualization", payload={
        "Visualization": "timechart", "Title": "Logons", "XColumn": "TimeGenerated", "YColumns": "n",
        "Series": None, "Kind": None, "Ymin": "NaN", "Ymax": "NaN", "Accumulate": False}))
    r = kp.kql("Events | summarize n = count() by bin(TimeGenerated, 1h) | render timechart", conn=proxied)
    assert (r.render.chart, r.render.title, r.render.ycolumns) == ("timechart", "Logons", ("n",))


def test_render_clause_read_from_the_query_when_the_service_sends_none(direct):
    r = kp.kql("Events | summarize n = count() by Account | render piechart with (title='Accounts')", conn=direct)
    assert r.render.chart == "piechart" and r.render.title == "Accounts"


def test_truncation_is_announced(proxied, kusto_proxy):
    kusto_proxy.inject(Fault("truncate", rows=7))
    r = kp.kql("Events", conn=proxied)
    assert r.truncated and r.row_count == 7 and "TRUNCATED" in r.summary()
    assert any("E_QUERY_RESULT_SET_TOO_LARGE" in w and "+notruncation" in w for w in r.warnings)


def test_partial_failure_keeps_rows_and_warns_or_fails(proxied, kusto_proxy):
    kusto_proxy.inject(Fault("partial", message="shard 7 of Events is unavailable"))
    r = kp.kql("Events | take 20", conn=proxied)
    assert r.row_count == 20 and any("shard 7 of Events is unavailable" in w for w in r.warnings)
    kusto_proxy.inject(Fault("partial", message="shard 7 of Events is unavailable"))
    with pytest.raises(RemoteError, match="--fail-on-partial"):
        kp.kql("Events | take 20", conn=proxied, fail_on_partial=True)


# -- transport faults ----------------------------------------------------------------------------------------


def test_429_retry_after_is_honoured(proxied, kusto_proxy):
    kusto_proxy.inject(Fault("status", status=429, retry_after="1"))
    started = time.monotonic()
    r = kp.kql("Events | count", conn=proxied)
    assert time.monotonic() - started >= 1.0 and r.df["Count"][0] == 200
    assert kusto_proxy.statuses[-2:] == [429, 200]
    assert any("throttled (429): retried after 1 s as the service asked" in w for w in r.warnings)


@pytest.mark.slow
def test_503_retried_then_exhausted(proxied, kusto_proxy):
    kusto_proxy.inject(Fault("status", status=503))
    assert kp.kql("Events | count", conn=proxied).df["Count"][0] == 200
    kusto_proxy.inject(*[Fault("status", status=503)] * 6)
    with pytest.raises(RemoteError, match=r"503 Service Unavailable\) after 4 attempts") as info:
        kp.kql("Events | count", conn=proxied)
    assert "\n" not in str(info.value)


def test_dropped_connection_retried_and_malformed_json_named(proxied, kusto_proxy):
    kusto_proxy.inject(Fault("drop"))
    r = kp.kql("Events | count", conn=proxied)
    assert r.df["Count"][0] == 200 and any("connection failed" in w for w in r.warnings)
    # Two: an answer the streaming reader cannot parse is read once more whole (long's minimum
    # overflows the streaming parser), so a broken body is named when both reads fail.
    kusto_proxy.inject(Fault("malformed"), Fault("malformed"))
    with pytest.raises(RemoteError, match="not valid JSON"):
        kp.kql("Events | count", conn=proxied)


def test_connection_cut_mid_answer_is_retried_then_a_one_line_error(proxied, kusto_proxy, capfd):
    kusto_proxy.inject(Fault("cut"))
    r = kp.kql("Events | count", conn=proxied)
    assert r.df["Count"][0] == 200 and r.warnings
    kusto_proxy.inject(*[Fault("cut")] * 8)
    with pytest.raises(RemoteError) as info:
        kp.kql("Events | count", conn=proxied)
    msg = str(info.value)
    assert "\n" not in msg and "IncompleteRead" not in msg and "closed the connection" in msg, msg
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


@pytest.mark.slow
def test_hung_endpoint_hits_the_client_timeout(proxied, kusto_proxy):
    kusto_proxy.inject(Fault("hang", seconds=8))
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"no answer from 127.0.0.1:.* within 1 s"):
        kp.kql("Events | count", conn=proxied, timeout=1)
    assert time.monotonic() - started < 4.5


@pytest.mark.slow
def test_unreachable_cluster(kusto_serve):
    from servers.kusto import free_port

    with pytest.raises(RemoteError, match=r"cannot reach 127.0.0.1:.*connection refused"):
        kp.kql("Events | count", conn=adx_conn(f"http://127.0.0.1:{free_port()}", "db"))


def test_ctrl_c_cancels_within_a_second(proxied, kusto_proxy):
    kp.kql("Events | take 1", conn=proxied)
    kusto_proxy.inject(Fault("hang", seconds=6))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(QueryCancelledError):
            kp.kql("Events | count", conn=proxied)
        waited = time.monotonic() - started
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert waited < 1.5
    assert kp.kql("Events | count", conn=proxied).df["Count"][0] == 200


# -- sign-in -------------------------------------------------------------------------------------------------


def test_client_secret_token_is_sent_to_the_cluster(la, home, kusto_serve, kusto_proxy):
    """The KustoClient gets its token from an azure-identity credential signing in at the loopback
    identity provider, and sends it."""
    conn = adx_conn(kusto_proxy.url, kusto_serve.name, tenant=TENANT, clientid=APP_ID, clientsecret=APP_SECRET,
                    authority=la.url)
    r = kp.kql("Events | count", conn=conn)
    assert r.df["Count"][0] == 200
    assert la.counts["token:client_credentials"] == 1
    auth_header = kusto_proxy.sent[-1].headers.get("Authorization", "")
    assert auth_header.startswith("Bearer at-")
    kp.kql("Events | count", conn=conn)
    assert la.counts["token:client_credentials"] == 1  # the token is reused
    assert secret_free(repr(r), r.connection, str(r.stats))


def test_anonymous_needs_plain_http():
    with pytest.raises(OptionError, match="anonymous works with a plain http://"):
        kp.kql("T | count", conn="adx://cluster='https://help.kusto.windows.net';database='Samples';anonymous")


def test_cli_query_against_adx(direct, capsys):
    from kqlmagic_plus.cli import app as cli

    code = cli.main(["query", "-c", direct, "Events | summarize n = count() by Account | order by Account asc",
                     "--format", "csv"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.splitlines()[1:] == ["user0,67", "user1,67", "user2,66"]
