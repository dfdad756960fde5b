"""Log Analytics through the real azure-monitor-query client, against a loopback query API over TLS.

Every fault a real workspace can throw is injected at the HTTP level (the SDK is never patched)
and the test asserts what the analyst sees: rows, a warning, or a one-line error.
"""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from servers import Fault, StaticToken
from servers.fixtures import (  # noqa: F401  (fixtures)
    APP_SECRET,
    WORKSPACE,
    WORKSPACE_2,
    home,
    la,
    la_conn,
    la_server,
    secret_free,
)

import kqlmagic_plus as kp
from kqlmagic_plus.errors import (
    AuthError,
    OptionError,
    QueryCancelledError,
    QueryError,
    QuerySyntaxError,
    QueryTimeoutError,
    RemoteError,
)

pytest.importorskip("azure.monitor.query")


@pytest.fixture
def engine(la):
    """An engine with a static token (these tests are not about sign-in)."""
    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    eng = LogAnalyticsEngine(WORKSPACE, credential=StaticToken(la.static_token()), endpoint=la.url)
    yield eng
    eng.close()


def run(engine, query, **kw):
    from kqlmagic_plus.request import Request

    return engine.run(Request(query, **kw))


# -- rows, types, and what is sent ---------------------------------------------------------------------------


def test_rows_and_kql_types_come_back_canonical(engine, la):
    r = run(engine, "SigninLogs | where ResultType == 50126 | project TimeGenerated, UserPrincipalName, "
                    "ResultType, Latency, d = dynamic({'k': [1, 2]}), span = 90s | take 3")
    assert r.row_count == 3
    assert r.kql_types == ["datetime", "string", "long", "real", "dynamic", "timespan"]
    df = r.df
    assert str(df["TimeGenerated"].dtype) == "datetime64[us, UTC]"
    assert df["d"][0] == {"k": [1, 2]}
    assert df["span"][0].total_seconds() == 90
    assert r.engine == "loganalytics" and r.connection == f"loganalytics://workspace={WORKSPACE};endpoint={la.url}"
    seen = la.requests[-1]
    assert seen.authorization.startswith("Bearer static-")
    assert "include-statistics=true" in seen.prefer and "include-render=true" in seen.prefer
    assert r.stats["service"]["query"]["datasetStatistics"][0]["tableRowCount"] == 3


def test_timespan_and_start_end_windows_reach_the_service(engine, la):
    from datetime import timedelta

    from kqlmagic_plus.request import TimeWindow

    now = la.now
    r = run(engine, "SigninLogs | count", window=TimeWindow(now - timedelta(hours=5, minutes=30),
                                                              now + timedelta(minutes=1)))
    assert r.df["Count"][0] == 6  # rows at now, now-1h ... now-5h
    start, _, _end = la.requests[-1].body["timespan"].partition("/")
    assert start.startswith((now - timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M"))
    assert r.stats["timespan"]


def test_magic_timespan_option(ip, la, run_cell):
    value, err, _ = run_cell(f"%%kql --timespan 150m {la_conn(la)}\nSigninLogs | count")
    assert err is None, err
    assert value.df["Count"][0] == 3  # now, -1h, -2h


def test_additional_workspaces_union_their_rows(ip, la, run_cell):
    value, err, _ = run_cell(f"%%kql --workspaces {WORKSPACE_2} {la_conn(la)}\n"
                             "SigninLogs | where UserPrincipalName startswith 'mallory' | count")
    assert err is None, err
    assert value.df["Count"][0] == 5
    assert la.requests[-1].body["workspaces"] == [WORKSPACE_2]


def test_parameters_are_bound_as_literals_not_spliced(engine, la):
    evil = "alice@contoso.example' or 1==1 //"
    r = run(engine, "SigninLogs | where UserPrincipalName == user | count", params={"user": evil})
    assert r.df["Count"][0] == 0
    r = run(engine, "SigninLogs | where UserPrincipalName == user | count",
            params={"user": "alice@contoso.example"})
    assert r.df["Count"][0] == 16
    assert r.executed.startswith("let user = ") and r.executed.endswith("| count")
    assert la.requests[-1].body["query"] == r.executed


def test_syntax_error_points_at_the_users_line_despite_bound_parameters(engine, la):
    with pytest.raises(QuerySyntaxError) as info:
        run(engine, "SigninLogs\n| where UserPrincipalName == user\n| where", params={"user": "x"})
    err = info.value
    assert err.line == 3  # the user's line 3, although a `let` line went in front of it
    assert "| where" in str(err)


def test_unknown_table_and_unknown_workspace_are_one_line_errors(engine, la):
    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    with pytest.raises(QueryError, match="'SignInLog' could not be resolved"):
        run(engine, "SignInLog | take 1")
    other = LogAnalyticsEngine("00000000-dead-beef-0000-000000000000", credential=StaticToken(la.static_token()),
                               endpoint=la.url)
    with pytest.raises(RemoteError, match="workspace 00000000-dead-beef-0000-000000000000 was not found") as info:
        run(other, "SigninLogs | take 1")
    assert "\n" not in str(info.value)


def test_server_timeout_is_sent(engine, la):
    run(engine, "SigninLogs | take 1", timeout=45)
    assert "wait=45" in la.requests[-1].prefer
    run(engine, "+servertimeout=2m SigninLogs | take 1")
    assert "wait=120" in la.requests[-1].prefer
    with pytest.raises(OptionError, match="notruncation are ADX's"):
        run(engine, "+notruncation SigninLogs | take 1")
    with pytest.raises(OptionError, match="600 s"):
        run(engine, "SigninLogs | take 1", timeout=900)


def test_dry_run_sends_nothing(engine, la):
    r = run(engine, "SigninLogs | where UserPrincipalName == u", params={"u": "bob"}, dry_run=True)
    assert r.row_count == 0 and "let u = " in r.executed
    assert la.requests == []


# -- render and statistics -----------------------------------------------------------------------------------


def test_render_clause_comes_back_as_the_services_visualization(engine, la):
    r = run(engine, "SigninLogs | summarize n = count() by bin(TimeGenerated, 1h) "
                    "| render timechart with (title='Sign-ins', ytitle='count')")
    assert r.render is not None
    assert (r.render.chart, r.render.title, r.render.ytitle) == ("timechart", "Sign-ins", "count")


def test_injected_visualization_block_is_read(engine, la):
    la.inject(Fault("visualization", payload={"visualization": "columnchart", "title": "By user",
                                               "xColumn": "UserPrincipalName", "yColumns": "n", "kind": "stacked",
                                               "yMin": "NaN", "accumulate": False}))
    r = run(engine, "SigninLogs | summarize n = count() by UserPrincipalName")
    assert r.render.chart == "columnchart" and r.render.kind == "stacked"
    assert r.render.xcolumn == "UserPrincipalName" and r.render.ycolumns == ("n",)


# -- faults: what the analyst sees ---------------------------------------------------------------------------


def test_throttled_429_waits_the_retry_after_and_succeeds(engine, la):
    la.inject(Fault("status", status=429, retry_after="1"))
    started = time.monotonic()
    r = run(engine, "SigninLogs | count")
    assert time.monotonic() - started >= 1.0
    assert r.df["Count"][0] == 48
    assert [s.status for s in la.requests] == [429, 200]
    assert any("429 Too Many Requests" in w for w in r.warnings)


def test_503_is_retried_with_backoff(engine, la):
    la.inject(Fault("status", status=503), Fault("status", status=503))
    r = run(engine, "SigninLogs | count")
    assert r.df["Count"][0] == 48 and [s.status for s in la.requests] == [503, 503, 200]


@pytest.mark.slow
def test_persistent_503_is_a_one_line_error(engine, la):
    la.inject(*[Fault("status", status=503)] * 8)
    with pytest.raises(RemoteError) as info:
        run(engine, "SigninLogs | count")
    msg = str(info.value)
    assert "503 Service Unavailable" in msg and "Try again" in msg and "\n" not in msg


@pytest.mark.slow
def test_persistent_throttling_says_to_wait(engine, la):
    la.inject(*[Fault("status", status=429, retry_after="0")] * 8)
    with pytest.raises(RemoteError, match=r"throttling .*\(429\).*Wait a minute"):
        run(engine, "SigninLogs | count")


def test_slow_query_is_stopped_by_the_server_timeout(engine, la):
    la.inject(Fault("delay", seconds=5))
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="server timeout"):
        run(engine, "SigninLogs | count", timeout=1)
    assert time.monotonic() - started < 3
    assert [s.status for s in la.requests] == [504]  # a timed-out query is not run again


@pytest.mark.slow
def test_hung_service_hits_the_client_timeout(engine, la):
    la.inject(Fault("hang", seconds=8))
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"no answer from 127.0.0.1:.* within 1 s"):
        run(engine, "SigninLogs | count", timeout=1)
    assert time.monotonic() - started < 4.5


def test_dropped_connection_is_retried(engine, la):
    la.inject(Fault("drop"))
    r = run(engine, "SigninLogs | count")
    assert r.df["Count"][0] == 48 and la.counts["query"] == 2


@pytest.mark.slow
def test_connection_dropped_every_time_is_a_one_line_error(engine, la):
    la.inject(*[Fault("drop")] * 8)
    with pytest.raises(RemoteError, match="dropped before the answer arrived") as info:
        run(engine, "SigninLogs | count")
    assert "\n" not in str(info.value)


def test_connection_cut_while_the_answer_streams_is_retried(engine, la):
    la.inject(Fault("cut"))
    r = run(engine, "SigninLogs | count")
    assert r.df["Count"][0] == 48 and la.counts["query"] == 2
    assert any("retried" in w or "retry" in w for w in r.warnings), r.warnings


def test_connection_cut_every_time_is_a_one_line_error(engine, la, capfd):
    la.inject(*[Fault("cut")] * 8)
    with pytest.raises(RemoteError, match=r"dropped before the whole answer arrived \(the server closed the "
                                          r"connection\), also on retry") as info:
        run(engine, "SigninLogs | count")
    assert "\n" not in str(info.value) and "IncompleteRead" not in str(info.value)
    out, err = capfd.readouterr()
    assert "Incomplete download" not in out + err  # the SDK's log line stays out of the cell


@pytest.mark.parametrize("answer", [
    {"tables": [{"name": "PrimaryResult", "columns": [{"name": "a", "type": "long"}, {"name": "b", "type": "string"}],
                 "rows": [[1, "x"], [2]]}]},                                       # a short row
    {"tables": [{"name": "PrimaryResult", "columns": [{"name": "a", "type": "long"}], "rows": [["many"]]}]},
    {"tables": [{"name": "PrimaryResult", "columns": [{"name": "a", "type": "long"}], "rows": 5}]},
    {"tables": "none"},
    [1, 2, 3],
])
def test_json_answer_of_the_wrong_shape_is_one_line(engine, la, answer):
    la.inject(Fault("answer", payload=answer))
    with pytest.raises(RemoteError, match=r"answer .*cannot be read") as info:
        run(engine, "SigninLogs | count")
    assert "\n" not in str(info.value)
    assert run(engine, "SigninLogs | count").df["Count"][0] == 48  # the connection is fine


def test_malformed_json_is_named(engine, la):
    la.inject(Fault("malformed"))
    with pytest.raises(RemoteError, match="not valid JSON"):
        run(engine, "SigninLogs | count")


def test_partial_result_keeps_rows_and_warns(engine, la):
    la.inject(Fault("partial", message="Failed to resolve table 'OldLogs' in workspace ws-2"))
    r = run(engine, "SigninLogs | project UserPrincipalName")
    assert r.row_count == 48 and not r.truncated
    assert any("Partial result" in w and "Failed to resolve table 'OldLogs'" in w for w in r.warnings)
    assert "Partial result" in r._repr_html_() and "Partial result" in repr(r)


def test_fail_on_partial_turns_it_into_an_error(ip, la, run_cell):
    la.inject(Fault("partial", message="shard unavailable"))
    _, err, out = run_cell(f"%%kql --fail-on-partial {la_conn(la)}\nSigninLogs | take 5")
    assert isinstance(err, RemoteError) and "shard unavailable" in str(err)
    assert "Traceback" not in out


def test_truncation_is_always_announced(engine, la):
    la.inject(Fault("truncate", rows=10))
    r = run(engine, "SigninLogs")
    assert r.truncated and r.row_count == 10
    assert "TRUNCATED" in r.summary()
    assert any("truncated this result" in w and "E_QUERY_RESULT_SET_TOO_LARGE" in w for w in r.warnings)
    assert "truncated this result" in r._repr_html_()


def test_unreachable_endpoint_and_untrusted_certificate(la, monkeypatch):
    from servers.kusto import free_port

    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    dead = LogAnalyticsEngine(WORKSPACE, credential=StaticToken("t"), endpoint=f"https://127.0.0.1:{free_port()}",
                              retries=1)
    with pytest.raises(RemoteError, match=r"cannot reach 127.0.0.1:.*connection refused"):
        run(dead, "SigninLogs | count")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    untrusted = LogAnalyticsEngine(WORKSPACE, credential=StaticToken("t"), endpoint=la.url, retries=1)
    with pytest.raises(RemoteError, match=r"TLS certificate is not trusted.*REQUESTS_CA_BUNDLE"):
        run(untrusted, "SigninLogs | count")


def test_https_proxy_and_no_proxy_from_the_environment_are_honoured(la, monkeypatch):
    """Read once per connection (not per request), and re-read when they change."""
    from servers.proxy import ConnectProxy

    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    proxy = ConnectProxy().start()
    try:
        for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        eng = LogAnalyticsEngine(WORKSPACE, credential=StaticToken(la.static_token()), endpoint=la.url, retries=1)
        assert run(eng, "SigninLogs | count").df.iloc[0, 0] > 0
        host = la.url.removeprefix("https://")
        assert proxy.tunnels == [host]
        run(eng, "SigninLogs | take 1")  # the same client: its pooled tunnel carries the second query
        assert proxy.tunnels == [host]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        run(eng, "SigninLogs | take 1")
        assert proxy.tunnels == [host], "NO_PROXY set after the first query must be honoured by the next"
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_closed_port()}")
        with pytest.raises(RemoteError, match=r"cannot reach"):
            run(eng, "SigninLogs | count")
        eng.close()
    finally:
        proxy.stop()


def _closed_port() -> int:
    from servers.kusto import free_port

    return free_port()


def test_setting_the_ca_bundle_after_a_tls_error_fixes_the_next_query(la, monkeypatch):
    """What the TLS error tells the user to do must work without reconnecting."""
    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    ca = os.environ["REQUESTS_CA_BUNDLE"]
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    eng = LogAnalyticsEngine(WORKSPACE, credential=StaticToken(la.static_token()), endpoint=la.url, retries=1)
    with pytest.raises(RemoteError, match=r"TLS certificate is not trusted"):
        run(eng, "SigninLogs | count")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
    assert run(eng, "SigninLogs | count").df.iloc[0, 0] > 0
    eng.close()


def test_service_refusing_the_token_is_an_auth_error(la):
    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    eng = LogAnalyticsEngine(WORKSPACE, credential=StaticToken("not-a-token-it-issued"), endpoint=la.url)
    with pytest.raises(AuthError, match=r"refused the token .*\(401\)"):
        run(eng, "SigninLogs | count")


def test_ctrl_c_cancels_within_a_second_and_the_connection_stays_usable(ip, la, home):
    conn = la_conn(la)
    kp.kql("SigninLogs | take 1", conn=conn)  # signed in, connection open
    la.inject(Fault("hang", seconds=6))
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(QueryCancelledError):
            kp.kql("SigninLogs | count", conn=conn)
        waited = time.monotonic() - started
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert waited < 0.5 + 1.0
    r = kp.kql("SigninLogs | count", conn=conn)
    assert r.df["Count"][0] == 48


def test_cancel_from_another_thread(engine, la):
    from kqlmagic_plus.request import Request

    la.inject(Fault("hang", seconds=6))
    threading.Timer(0.3, engine.cancel).start()
    started = time.monotonic()
    with pytest.raises(QueryCancelledError):
        engine.run(Request("SigninLogs | count"))
    assert time.monotonic() - started < 1.3
    assert run(engine, "SigninLogs | count").df["Count"][0] == 48


# -- the same path from the magic and the CLI ----------------------------------------------------------------


def test_magic_with_kqlmagic_connection_string_signs_in_and_shows_rows(ip, la, home, run_cell):
    value, err, out = run_cell(f"%%kql {la_conn(la)}\nSigninLogs | summarize n = count() by UserPrincipalName")
    assert err is None, err
    assert sorted(value.df["n"]) == [16, 16, 16]
    assert la.counts["token:client_credentials"] == 1
    value, err, out = run_cell("%kql --conn")
    assert err is None
    assert "loganalytics://" in repr(value) and "clientsecret='***'" in repr(value)
    assert secret_free(repr(value), out)


def test_cli_query_with_a_connection_string(la, home, capsys):
    from kqlmagic_plus.cli import app as cli

    la.inject(Fault("truncate", rows=4))
    code = cli.main(["query", "-c", la_conn(la), "SigninLogs | project UserPrincipalName", "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.count("@contoso.example") == 4
    assert "warning: Log Analytics truncated this result" in err
    assert secret_free(out, err)
    code = cli.main(["query", "-c", la_conn(la, clientsecret="wrong-" + APP_SECRET[::-1][:8]), "SigninLogs | count"])
    out, err = capsys.readouterr()
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "AADSTS7000215" in err and "Authentication failed" in err


@pytest.mark.parametrize("rows", [3, 300])
def test_rows_are_those_the_sdk_itself_parses(engine, la, rows):
    """The JSON answer goes to Arrow without the SDK's per-row objects: every value must still be
    what LogsQueryClient's own parsing gives (datetimes to the microsecond, timespans, dynamics)."""
    from datetime import UTC, timedelta

    from azure.monitor.query import LogsQueryClient

    query = (f"range i from 1 to {rows} step 1 "
             "| extend t = datetime(2024-05-01T10:00:00.1234567Z) + i * 1h, s = strcat('u', i), b = i % 2 == 0, "
             "r = i / 7.0, span = i * 1s + 5ms, d = bag_pack('k', i), n = iff(i % 3 == 0, long(null), i * 1000000007)")
    gzipped = la.counts["gzip"]
    ours = run(engine, query)
    assert la.counts["gzip"] > gzipped, "the answer should come gzipped, as the real service sends it"
    client = LogsQueryClient(StaticToken(la.static_token()), endpoint=la.url)
    sdk = client.query_workspace(WORKSPACE, query, timespan=None).tables[0]
    assert ours.columns == sdk.columns and ours.row_count == len(sdk.rows) == rows
    from kqlmagic_plus.engines.remote import _timespan_us

    for got, row in zip(ours.table.to_pylist(), sdk.rows, strict=True):
        want = dict(zip(sdk.columns, row, strict=True))
        assert got["t"] == want["t"].astimezone(UTC)
        assert got["span"] == timedelta(microseconds=_timespan_us(want["span"]))
        assert got["d"] == want["d"]  # dynamic stays the service's JSON text
        for name in ("i", "s", "b", "r", "n"):
            assert got[name] == want[name], name
    assert ours.kql_types == ["long", "datetime", "string", "bool", "real", "timespan", "dynamic", "long"]
