"""The beacon hunt's Spark plan: candidate pairs picked by a hashed count keep exactly the rows of an exact count,
destination degrees count every event, and the session's settings are left as they were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kqlmagic_plus.errors import QueryError
from kqlmagic_plus.hunts import run_hunt
from kqlmagic_plus.hunts.sql import DIALECTS, SMALL_SPARK_CONF, Plan, run_spark

pytestmark = [pytest.mark.spark, pytest.mark.slow]

_T0 = datetime(2024, 5, 1, tzinfo=UTC)
_BEACON = ("10.0.0.1", "203.0.113.5", 443)


def _events(others: int, beacon_events: int = 60) -> object:
    """A 5-minute beacon and *others* sources with one event each to the same destination and port."""
    import pyarrow as pa

    rows = [(_T0 + timedelta(seconds=300 * i), *_BEACON) for i in range(beacon_events)]
    rows += [(_T0 + timedelta(seconds=7 + 613 * i), f"10.0.1.{i + 1}", _BEACON[1], 443) for i in range(others)]
    # A second beacon-shaped pair one event short of the default bound (12 gaps need 13 events).
    rows += [(_T0 + timedelta(seconds=900 * i), "10.0.0.2", "198.51.100.9", 8443) for i in range(12)]
    t, s, d, p = zip(*rows, strict=True)
    n = len(rows)
    return pa.table({"TimeGenerated": pa.array(t, pa.timestamp("us", tz="UTC")), "SourceIP": list(s),
                     "DestinationIP": list(d), "DestinationPort": pa.array(p, pa.int64()),
                     "Protocol": ["TCP"] * n, "DeviceVendor": ["Fortinet"] * n,
                     "SentBytes": pa.array([100] * n, pa.int64()), "ReceivedBytes": pa.array([50] * n, pa.int64())})


def _both(spark, table, **kw):
    local = run_hunt("beacon", dataframe=table, **kw)
    remote = run_hunt("beacon", engine="spark", session=spark, dataframe=table, **kw)
    assert remote.table.to_pylist() == local.table.to_pylist()
    assert remote.stats["candidate_pairs"] == local.stats["candidate_pairs"]
    return local, remote


def _pairs(result):
    return [(r["SourceIP"], r["DestinationIP"], r["DestinationPort"]) for r in result.table.to_pylist()]


def test_destination_degree_counts_every_source_not_only_candidates(spark_local):
    # 24 one-event sources + the beacon = 25 distinct sources: a popular destination, dropped.
    _, remote = _both(spark_local, _events(24))
    assert _pairs(remote) == []
    assert remote.stats["candidate_pairs"] == 0
    # One fewer: degree 24, the beacon is flagged, with the degree counted over all 24 sources.
    _, remote = _both(spark_local, _events(23))
    assert _pairs(remote) == [_BEACON]
    assert remote.table.to_pylist()[0]["DegreeofSourceIps"] == 24
    assert remote.table.to_pylist()[0]["TotalEvents"] == 60


def test_pairs_at_the_event_bound(spark_local):
    # 12 events (11 gaps) is under min-pair-deltas 12; with the bound lowered to 11 it is a candidate.
    _, remote = _both(spark_local, _events(3))
    assert remote.stats["candidate_pairs"] == 1
    _, remote = _both(spark_local, _events(3), min_pair_deltas=11)
    assert remote.stats["candidate_pairs"] == 2
    assert ("10.0.0.2", "198.51.100.9", 8443) in _pairs(remote)


def test_the_session_settings_are_left_as_they_were(spark_local):
    before = {k: spark_local.conf.get(k) for k in SMALL_SPARK_CONF}
    run_hunt("beacon", engine="spark", session=spark_local, dataframe=_events(3))
    assert {k: spark_local.conf.get(k) for k in SMALL_SPARK_CONF} == before
    # A plan that fails in a small step leaves them too.
    plan = Plan(DIALECTS["spark"])
    plan.small = True
    plan.add("x", "SELECT 1 AS a", materialize=True)
    plan.add("y", "SELECT no_such_column FROM @x", materialize=True)
    with pytest.raises(QueryError, match="Spark failed running the hunt"):
        run_spark(spark_local, plan)
    assert {k: spark_local.conf.get(k) for k in SMALL_SPARK_CONF} == before
