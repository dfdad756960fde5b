"""``beacon --compat notebook``: the Sentinel notebook's own computation, step by step.

The notebook is "Guided Hunting - Detect potential network beaconing using Apache Spark via Azure
Synapse" (Azure-Sentinel-Notebooks, scenario-notebooks). What it does, and what this plan does the
same way:

1. drop rows whose DestinationIP matches its private-address regex (127., 10., 172.16-31., 192.168.;
   not our private-ranges list) or is NULL;
2. keep sources with more than ``daily_event_count_threshold`` (100) rows, destinations with fewer than
   ``degree_of_srcip_threshold`` (25) distinct sources;
3. ``lag(TimeGenerated)`` over each SourceIP's rows in time order (per source, not per pair), then
   ``na.drop()``: a row with any NULL column (SourcePort, Protocol, bytes, vendor, the previous time)
   goes;
4. Timedelta = ``unix_timestamp(t) - unix_timestamp(prev)``: whole seconds of each timestamp, kept
   when greater than ``time_delta_threshold`` (15);
5. count the gaps per (DeviceVendor, SourceIP, DestinationIP, DestinationPort, Protocol, Timedelta);
6. a 3-row running sum (``rowsBetween(-2, 0)``) of those counts over each (vendor, source, destination,
   port); PercentBeacon = that sum / the sum of all those sums of the group x 100, kept when over
   ``percent_beacon_threshold`` (75) and when the sums over (source, destination, port) exceed 100.

One choice the notebook leaves open: its 3-row window is ordered by ``SourceIP`` cast to a long,
which is NULL for every dotted address, so Spark keeps whatever order the rows arrive in. Here the rows
are ordered by Timedelta, then Protocol (the order the window's "neighbouring gap values" reading
needs), the same on every engine. Lag ties (two events of a source in the same microsecond) are broken
by destination and port. The comparison with 75 is made exactly (integers), not in floating point.

Output: one row per surviving notebook row, in the hunt's columns: ModeTimedelta the row's Timedelta,
BeaconCount its 3-row sum, TotalDeltas the group's sum of sums (the notebook's denominator),
TotalEvents the notebook's Totaleventcount, bytes the row's own Timedelta bucket's sums, as the
notebook reports them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kqlmagic_plus.hunts import allowlist
from kqlmagic_plus.hunts.firewall import events_select
from kqlmagic_plus.hunts.sql import Dialect, Plan

_US = 1_000_000
#: The notebook's PrivateIPregex, spelled without backslashes for both engines' full-match helpers.
NOTEBOOK_PRIVATE = "(127|10|172[.]1[6-9]|172[.]2[0-9]|172[.]3[0-1]|192[.]168)[.].*"
#: The columns the notebook's ``select`` keeps and ``na.drop()`` checks (when the input has them).
_NA_DROP = ("SourcePort", "Protocol", "ReceivedBytes", "SentBytes", "DeviceVendor")


def notebook_plan(v: Mapping[str, Any], source: Any, d: Dialect, window: tuple[int, int] | None) -> Plan:
    cols = source.columns
    plan = Plan(d, source=source.relation)

    plan.add("raw", events_select(v, d, cols, window, source_port=True))
    # The notebook's cooked_df: public destinations by its regex (a NULL address fails the filter too).
    allowed = allowlist.predicate(d, sources=v["allow_sources"], destinations=v["allow_destinations"],
                                  ports=v["allow_ports"], rows=v["allowlist"])
    allow = f" AND NOT coalesce({allowed}, FALSE)" if allowed else ""
    plan.add("ev", f"""
        SELECT * FROM @raw WHERE d IS NOT NULL AND NOT {d.full_match('d', NOTEBOOK_PRIVATE)}{allow}""")
    plan.add("srcip", f"SELECT s, count(*) AS cnt FROM @ev GROUP BY s HAVING count(*) > {int(v['min_src_events'])}")
    # Lazy, as the notebook's DataFrames are (its cooked_df is never cached): only the grouped rows are kept.
    plan.add("dstip", f"""
        SELECT d, count(DISTINCT s) AS degree FROM @ev GROUP BY d
        HAVING count(DISTINCT s) < {int(v['max_dst_degree'])}""")
    plan.add("base", """
        SELECT e.* FROM @ev e JOIN @srcip a ON e.s = a.s JOIN @dstip b ON e.d = b.d""")
    present = [c for c in _NA_DROP if c in cols]
    names = {"SourcePort": "sport", "Protocol": "proto", "ReceivedBytes": "recv", "SentBytes": "sent",
             "DeviceVendor": "vendor"}
    na = " AND ".join([f"{names[c]} IS NOT NULL" for c in present] +
                      ["t IS NOT NULL", "prev IS NOT NULL", "p IS NOT NULL"])
    min_delta = round(v["min_delta"] * _US)
    sec = lambda x: d.idiv(x, str(_US))  # noqa: E731  unix_timestamp(): whole seconds of each time
    plan.add("lagged", """
        SELECT *, lag(t) OVER (PARTITION BY s ORDER BY t NULLS FIRST, d, p) AS prev FROM @base""")
    plan.add("deltas", f"""
        SELECT vendor, s, d, p, proto, sent, recv, {sec('t')} - {sec('prev')} AS td FROM @lagged
        WHERE {na} AND ({sec('t')} - {sec('prev')}) * {_US} > {min_delta}""")
    plan.add("ranked", """
        SELECT vendor, s, d, p, proto, td, count(td) AS cnt, CAST(sum(sent) AS BIGINT) AS sent,
               CAST(sum(recv) AS BIGINT) AS recv
        FROM @deltas GROUP BY vendor, s, d, p, proto, td""", materialize=True)
    plan.add("win", """
        SELECT r.*, CAST(sum(r.cnt) OVER (PARTITION BY r.vendor, r.s, r.d, r.p ORDER BY r.td, r.proto
                    ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS BIGINT) AS tdl, b.degree
        FROM @ranked r JOIN @dstip b ON r.d = b.d""")
    plan.add("pct", """
        SELECT *, CAST(sum(tdl) OVER (PARTITION BY s, d, p) AS BIGINT) AS total_events,
               CAST(sum(tdl) OVER (PARTITION BY vendor, s, d, p) AS BIGINT) AS den FROM @win""")
    pct = round(v["percent"] * 10_000)
    plan.add("flag", f"""
        SELECT * FROM @pct WHERE tdl * 1000000 > {pct} * den AND total_events > {int(v['min_pair_deltas'])}""",
             materialize=True)
    plan.add("span", """
        SELECT e.s, e.d, e.p, min(e.t) AS first_t, max(e.t) AS last_t FROM @ev e
        JOIN (SELECT DISTINCT s, d, p FROM @flag) fk ON e.s = fk.s AND e.d = fk.d AND e.p = fk.p
        GROUP BY e.s, e.d, e.p""", materialize=True)
    plan.output("rows", f"""
        SELECT f.s AS SourceIP, f.d AS DestinationIP, f.p AS DestinationPort, f.proto AS Protocol,
               f.vendor AS DeviceVendor, f.td * {_US} AS mode_us, f.tdl AS BeaconCount, f.den AS TotalDeltas,
               f.total_events AS TotalEvents, {d.idiv('f.tdl * 2000 + f.den', '2 * f.den')} AS pct_x10,
               x.first_t AS first_us, x.last_t AS last_us, f.sent AS TotalSentBytes, f.recv AS TotalReceivedBytes,
               f.degree AS DegreeofSourceIps
        FROM @flag f JOIN @span x ON f.s = x.s AND f.d = x.d AND f.p = x.p""")
    plan.output("histograms", """
        SELECT r.s AS SourceIP, r.d AS DestinationIP, r.p AS DestinationPort, r.td AS seconds,
               CAST(sum(r.cnt) AS BIGINT) AS gaps
        FROM @ranked r JOIN (SELECT DISTINCT s, d, p FROM @flag) fk ON r.s = fk.s AND r.d = fk.d AND r.p = fk.p
        GROUP BY r.s, r.d, r.p, r.td""")
    missing = "(s IS NULL OR d IS NULL OR p IS NULL OR s = '' OR d = '')"
    plan.output("stats", f"""
        SELECT CAST(count(*) AS BIGINT) AS rows_read,
               CAST(sum(CASE WHEN {missing} OR t IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS rows_skipped,
               CAST(sum(CASE WHEN {missing} OR t IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS events,
               (SELECT count(*) FROM @ranked) AS notebook_rows,
               (SELECT CAST(sum(cnt) AS BIGINT) FROM @ranked) AS gaps_scored
        FROM @raw""")
    return plan
