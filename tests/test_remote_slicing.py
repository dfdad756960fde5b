"""``--split-by``: a query over a long window run as time slices on the loopback Log Analytics (real
azure-monitor-query client, TLS), merged, with each slice's fate in the Result (issue #21, part 2).

Faults are injected into one slice only (the loopback server matches a fault to the request whose
timespan starts at that slice's start): a 429, a truncated answer, a connection dropped every time."""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from servers import Fault
from servers.fixtures import WORKSPACE, home, la, la_conn, la_server  # noqa: F401  (fixtures)

import kqlmagic_plus as kp
from kqlmagic_plus.errors import KqlMagicPlusError, OptionError, RemoteError

pytest.importorskip("azure.monitor.query")

START = datetime(2024, 5, 1, tzinfo=UTC)
END = START + timedelta(days=4)
#: The second slice of a 1d split: the fault targets it alone.
SLICE_2 = "2024-05-02T00:00:00"


@pytest.fixture
def hunt(la, home):
    """96 hourly rows over 4 days in table Hunt, and a connection string."""
    import pyarrow as pa

    hours = [START + timedelta(hours=h) for h in range(96)]
    la.load(WORKSPACE, Hunt=pa.table({
        "TimeGenerated": pa.array(hours, pa.timestamp("us", tz="UTC")),
        "User": [("alice", "bob", "carol")[h % 3] for h in range(96)],
        "Bytes": [h * 7 % 50 for h in range(96)],
    }))
    return la_conn(la)


def q(conn, query, **kw):
    return kp.kql(query, conn=conn, start=START.isoformat(), end=END.isoformat(), **kw)


def _slice_requests(la):
    return sorted(r.body.get("timespan") for r in la.requests if "Hunt" in str(r.body.get("query")))


def test_row_wise_query_sliced_equals_the_whole_window(hunt, la):
    whole = q(hunt, "Hunt | where Bytes > 10 | project TimeGenerated, User, Bytes")
    la.reset()
    sliced = q(hunt, "Hunt | where Bytes > 10 | project TimeGenerated, User, Bytes", split_by="1d")
    assert len(_slice_requests(la)) == 4  # one request per day, each with its own timespan
    assert [s["status"] for s in sliced.stats["slices"]] == ["complete"] * 4
    assert sorted(sliced.df.itertuples(index=False)) == sorted(whole.df.itertuples(index=False))
    assert sliced.row_count == whole.row_count > 0 and not sliced.truncated
    assert sliced.warnings[0].startswith("Ran as 4 slices") and "4 complete" in sliced.warnings[0]


def test_summarize_is_re_aggregated_across_slices(hunt):
    query = ("Hunt | summarize n = count(), total = sum(Bytes), earliest = min(TimeGenerated), top_bytes = max(Bytes)"
             " by User | top 2 by total desc")
    whole = q(hunt, query)
    sliced = q(hunt, query, split_by="1d")
    assert sliced.df.to_dict("list") == whole.df.to_dict("list")
    assert sliced.df["n"].tolist() == [32, 32] and sliced.row_count == 2
    # count across days: 24 rows a day, 4 days
    assert q(hunt, "Hunt | count", split_by="1d").df["Count"].tolist() == [96]
    assert sorted(q(hunt, "Hunt | distinct User", split_by="12h").df["User"]) == ["alice", "bob", "carol"]


@pytest.mark.parametrize(("query", "named"), [
    ("Hunt | summarize dcount(User) by bin(TimeGenerated, 1d)", "dcount() at line 1, column 18"),
    ("Hunt | summarize avg(Bytes)", "avg() at line 1, column 18"),
    ("Hunt | summarize percentiles(Bytes, 50, 95)", "percentiles()"),
    ("Hunt | take 10", "'take' at line 1, column 8"),
    ("Hunt | summarize n = count() by User | where n > 3", "'where' at line 1, column 40 runs after 'summarize'"),
    ("Hunt\n| extend p = prev(Bytes)", "'prev()' at line 2, column 14"),
])
def test_unmergeable_queries_are_refused_by_name_before_any_slice_runs(hunt, la, query, named):
    la.reset()
    with pytest.raises(KqlMagicPlusError) as info:
        q(hunt, query, split_by="1d")
    assert named in info.value.message and "\n" not in info.value.message
    assert _slice_requests(la) == []  # nothing ran: no silently wrong answer


def test_a_throttled_slice_is_retried_and_the_result_is_complete(hunt, la):
    la.inject(Fault("status", status=429, retry_after="0", match=SLICE_2))
    r = q(hunt, "Hunt | project TimeGenerated, Bytes", split_by="1d")
    assert r.row_count == 96 and [s["status"] for s in r.stats["slices"]] == ["complete"] * 4
    assert 429 in [x.status for x in la.requests]
    assert any("429" in w for w in r.warnings)


def test_a_truncated_slice_is_a_red_notice_and_an_error_under_fail_on_partial(hunt, la):
    la.inject(Fault("truncate", rows=3, match=SLICE_2))
    r = q(hunt, "Hunt | project TimeGenerated, Bytes", split_by="1d")
    statuses = [s["status"] for s in r.stats["slices"]]
    assert statuses == ["complete", "truncated", "complete", "complete"]
    assert r.row_count == 72 + 3 and r.truncated
    assert any(w.startswith("Slice 2024-05-02T00:00:00+00:00 .. 2024-05-03T00:00:00+00:00 TRUNCATED")
               for w in r.warnings)
    page = r._repr_mimebundle_()["text/html"]
    assert 'class="kqlmp-slices-bad" style="color:#b00020' in page and "TRUNCATED" in page
    la.inject(Fault("truncate", rows=3, match=SLICE_2))
    with pytest.raises(RemoteError, match=r"1 of 4 slices .* --fail-on-partial .*2024-05-02T00:00:00\+00:00"):
        q(hunt, "Hunt | project TimeGenerated, Bytes", split_by="1d", fail_on_partial=True)


def test_a_slice_whose_connection_always_drops_fails_alone(hunt, la):
    la.inject(*[Fault("drop", match=SLICE_2)] * 8)
    r = q(hunt, "Hunt | summarize n = count() by User", split_by="1d")
    statuses = [s["status"] for s in r.stats["slices"]]
    assert statuses == ["complete", "failed", "complete", "complete"]
    assert r.df["n"].sum() == 72 and r.truncated  # the other three days, and the loss said out loud
    bad = [w for w in r.warnings if "FAILED" in w]
    assert len(bad) == 1 and "2024-05-02" in bad[0] and "closed the connection" in bad[0]
    assert "kqlmp-slices-bad" in r._repr_mimebundle_()["text/html"]


def test_split_by_needs_a_window_and_a_service_that_applies_it(hunt):
    with pytest.raises(OptionError, match="--split-by needs the query's time window"):
        kp.kql("Hunt | count", conn=hunt, split_by="1d")
    with pytest.raises(OptionError, match="does not apply"):
        kp.kql("print 1", conn="local://", start=START.isoformat(), end=END.isoformat(), split_by="1d")
    with pytest.raises(OptionError, match="adx connection does not apply"):  # refused before any request
        kp.kql("T | count", conn="adx://cluster='http://127.0.0.1:9';database='x';anonymous",
               start=START.isoformat(), end=END.isoformat(), split_by="1d")
    with pytest.raises(OptionError, match="slices"):
        q(hunt, "Hunt | count", split_by="1s")


def test_a_capped_answer_names_the_split_by_remedy(hunt, la):
    la.inject(Fault("truncate", rows=5))
    r = q(hunt, "Hunt | project TimeGenerated")
    assert r.truncated and any("--split-by 1d" in w for w in r.warnings)


def test_the_magic_line_takes_split_by():
    from kqlmagic_plus.options import parse_kql_line

    line = parse_kql_line("--split-by 1d --timespan 30d --fail-on-partial", "T | count")
    assert line.split_by == "1d" and line.fail_on_partial


def test_each_slice_has_its_own_cache_entry(hunt, la, cache_dir):
    query = "Hunt | project TimeGenerated, Bytes"
    first = q(hunt, query, split_by="1d", cache="1h")
    assert [s["from_cache"] for s in first.stats["slices"]] == [False] * 4
    la.reset()
    again = q(hunt, query, split_by="1d", cache="1h")
    assert [s["from_cache"] for s in again.stats["slices"]] == [True] * 4 and _slice_requests(la) == []
    # A longer window re-uses the four cached days and asks the service only for the new one.
    longer = kp.kql(query, conn=hunt, start=START.isoformat(), end=(END + timedelta(days=1)).isoformat(),
                    split_by="1d", cache="1h")
    assert [s["from_cache"] for s in longer.stats["slices"]] == [True] * 4 + [False]
    assert len(_slice_requests(la)) == 1 and longer.row_count == first.row_count == 96


def test_ctrl_c_stops_every_slice_within_a_second(hunt, la):
    import os
    import signal
    import threading
    import time

    from kqlmagic_plus.errors import QueryCancelledError

    q(hunt, "Hunt | count")  # signed in
    la.inject(*[Fault("hang", seconds=6)] * 4)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    try:
        timer.start()
        with pytest.raises(QueryCancelledError, match="slices"):
            q(hunt, "Hunt | count", split_by="1d")
        waited = time.monotonic() - started
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert waited < 0.5 + 1.0
    la.reset()
    assert q(hunt, "Hunt | count", split_by="1d").df["Count"].tolist() == [96]


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_top_across_slices_places_nulls_as_kql_does(hunt, direction):
    query = f"Hunt | extend B = iff(Bytes > 40, long(null), Bytes) | top 90 by B {direction}"
    whole = q(hunt, query)
    sliced = q(hunt, query, split_by="1d")
    assert sliced.df["B"].tolist() == whole.df["B"].tolist()
    assert sliced.df["B"].isna().any()  # nulls among the 90: first for asc, last for desc, as the service


def test_a_partial_slice_keeps_its_rows_and_says_so(hunt, la):
    la.inject(Fault("partial", message="Partial query failure: a shard was unavailable", match=SLICE_2))
    r = q(hunt, "Hunt | project TimeGenerated, Bytes", split_by="1d")
    assert [s["status"] for s in r.stats["slices"]] == ["complete", "partial", "complete", "complete"]
    assert any(w.startswith("Slice 2024-05-02T00:00:00+00:00") and "PARTIAL" in w and "shard" in w
               for w in r.warnings)
    assert "PARTIAL" in r._repr_mimebundle_()["text/html"]
