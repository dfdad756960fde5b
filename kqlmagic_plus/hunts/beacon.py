"""``beacon``: internal hosts that call the same external endpoint at a regular interval.

A pair is flagged by the mode (below) or by the relative timing score of
:mod:`kqlmagic_plus.hunts.periodicity` (C2 jitter up to 50 % of the period); ``compat=notebook`` runs the
Sentinel notebook's own computation instead (:mod:`kqlmagic_plus.hunts.beacon_notebook`).

The mode (shared/hunts/beacon.md), for each (SourceIP, DestinationIP, DestinationPort):

1. gaps between consecutive events, in integer microseconds; keep gaps > min-delta;
2. the mode: the gap value ``c`` (one of the gaps) around which most gaps fall within the tolerance
   ``tol(c) = max(jitter, jitter-pct % of c)``; ties go to more exact matches, then the smaller gap;
3. a gap matches when it lies within ``k * tol(c)`` of ``k * c`` for some k in 1..missed (a missed
   check-in doubles a gap, and the jitter of the two check-ins adds up);
4. PercentBeacon = matching gaps / gaps * 100; flagged when strictly greater than ``percent``.

Every quantity is an integer (microseconds, parts per million) until the last division, so DuckDB and
Spark produce the same rows. Counting the gaps around each candidate mode is one sorted pass: each
gap value is joined by two probes (``c - tol``, ``c + tol``) and a running count of gaps over the
sorted probes and gaps gives every window count; no self-join, no per-pair Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.hunts import allowlist
from kqlmagic_plus.hunts.base import Column, Hunt, HuntRun, Param, ordered
from kqlmagic_plus.hunts.beacon_notebook import notebook_plan
from kqlmagic_plus.hunts.firewall import events_select
from kqlmagic_plus.hunts.iprange import DEFAULT_PRIVATE, parse_ranges, private_select
from kqlmagic_plus.hunts.periodicity import (
    FLAGGED_BY,
    evidence_verdict,
    likelihood,
    relative,
    score_verdict,
    size_score,
)
from kqlmagic_plus.hunts.sql import DIALECTS, Dialect, Plan

if TYPE_CHECKING:
    from kqlmagic_plus.hunts.inputs import Source
    from kqlmagic_plus.results import Result

_US = 1_000_000
_HOUR = 3600 * _US
DIALECTS_CHECK = DIALECTS["duckdb"]

#: What compat=notebook sets (the Sentinel notebook's method and numbers).
NOTEBOOK = {"scope": "source", "jitter": 0.0, "jitter_pct": 0.0, "missed": 1, "min_pair_deltas": 100,
            "min_src_events": 100, "max_dst_degree": 25, "percent": 75.0, "min_delta": 15.0}

COLUMNS = (
    Column("SourceIP", "string"), Column("DestinationIP", "string"), Column("DestinationPort", "long"),
    Column("Protocol", "string"), Column("DeviceVendor", "string"), Column("ModeTimedelta", "real"),
    Column("BeaconCount", "long"), Column("TotalDeltas", "long"), Column("TotalEvents", "long"),
    Column("PercentBeacon", "real"), Column("FirstSeen", "datetime"), Column("LastSeen", "datetime"),
    Column("TotalSentBytes", "long"), Column("TotalReceivedBytes", "long"), Column("DegreeofSourceIps", "long"),
    # The sub-scores (shared/hunts/beacon.md's columns come first): why a pair was flagged.
    Column("FlaggedBy", "string"), Column("Period", "real"), Column("JitterPct", "real"), Column("Skew", "real"),
    Column("MisfitPct", "real"), Column("TimingScore", "real"), Column("Evidence", "real"),
    Column("SizeScore", "real"),
    Column("ActiveHours", "long"), Column("CoveragePct", "real"),
)


class Beacon(Hunt):
    name = "beacon"
    title = "network beaconing: hosts calling an external endpoint at a regular interval (C2 check-ins)"
    description = (
        "Finds internal hosts that call the same external endpoint at a regular interval, such as a command-"
        "and-control implant checking in, in firewall logs (CommonSecurityLog). For each (SourceIP, "
        "DestinationIP, DestinationPort) it takes the gaps between consecutive events, finds the gap value most "
        "gaps lie near (within max(jitter, jitter-pct % of it)), counts the gaps near 1x..missed x that value "
        "(a missed check-in doubles a gap), and flags the pair when that share of gaps (PercentBeacon) is over "
        "percent. It also scores the gaps relative to their own period (median gap; MAD/median, Bowley skew, "
        "gaps fitting no check-in count, short bursts) and the hours of the window the pair is active, and "
        "flags a pair whose TimingScore and coverage pass min-timing and min-coverage, or whose Evidence (the "
        "log-likelihood ratio of its gaps under a jittered beacon with missed check-ins against random timing) "
        "is over what random traffic with as many gaps reaches once in 10 million: C2 implants jitter "
        "their sleep by 20-50 % of it, which no tolerance around one gap value sees. Private destinations, "
        "allowlisted pairs and destinations many sources talk to are left out.\n\n"
        "Defaults differ from the Sentinel notebook where the notebook misses real beacons: gaps are per pair, "
        "not per source (the notebook's per-source gaps break as soon as a host talks to anything else); the "
        "mode has a tolerance and counts missed check-ins (the notebook's whole-second buckets score a 60 s "
        "beacon with 0.4 s jitter at 49.9 %, the spec's host B); min-src-events and min-pair-deltas are low "
        "enough for a 1 h beacon (24 check-ins a day, fewer with missed ones). compat=notebook runs the "
        "notebook's own computation as written (its 3-row running sum over whole-second per-source gaps)."
    )
    table = "CommonSecurityLog"
    required = ("TimeGenerated", "SourceIP", "DestinationIP", "DestinationPort")
    optional = ("Protocol", "SentBytes", "ReceivedBytes", "DeviceVendor", "Activity", "SourcePort")
    columns = COLUMNS
    # compat=notebook can give a pair several rows (one per vendor / Timedelta): the last keys keep the order.
    order = (("PercentBeacon", True), ("SourceIP", False), ("DestinationIP", False), ("DestinationPort", False),
             ("DeviceVendor", False), ("ModeTimedelta", False), ("Protocol", False))
    params = (
        Param("end_date", "date", None, "Last day analysed (UTC), inclusive. Default: today for a lake; the last "
              "day in the data for a table or DataFrame.", metavar="DATE"),
        Param("lookback_days", "int", 1, "Days analysed, ending at end-date.", minimum=1, maximum=3660),
        Param("vendor", "str", None, "Only rows whose DeviceVendor equals this (case-insensitive)."),
        Param("activity", "str", None, "Only rows whose Activity equals this (case-insensitive); Palo Alto "
              "traffic logs: TRAFFIC."),
        Param("min_delta", "float", 15.0, "Only gaps strictly greater than this many seconds count (the "
              "notebook's 15 s: a 10 s beacon shows only through doubled gaps).", minimum=0, metavar="SECONDS"),
        Param("percent", "float", 75.0, "Flag a pair when PercentBeacon is strictly greater than this.",
              minimum=0, maximum=100),
        Param("min_src_events", "int", 0, "Sources with at most this many events (to public destinations) in "
              "the window are ignored. Default 0, not the notebook's 100: a 1 h beacon on a quiet host logs 24 "
              "events a day, and the per-pair min-pair-deltas already decides when a pair has enough evidence.",
              minimum=0),
        Param("max_dst_degree", "int", 25, "Destinations contacted by this many distinct sources or more are "
              "ignored (popular services).", minimum=1),
        Param("min_pair_deltas", "int", 12, "A pair needs at least this many gaps (over min-delta). Default 12, "
              "not the spec's 20: a 1 h beacon with 20 % missed check-ins leaves ~18 gaps in a day, often fewer "
              "than 20 (the notebook's 100 rules out every beacon slower than ~15 min in a one-day window). "
              "Measured on labelled data, 12 keeps Poisson pairs with few gaps unflagged.", minimum=2),
        Param("jitter", "float", 1.0, "Absolute tolerance around the mode, in seconds.", minimum=0,
              metavar="SECONDS"),
        Param("jitter_pct", "float", 10.0, "Relative tolerance: a gap matches when within max(jitter, "
              "jitter-pct % of the mode) of it (k times that around k times the mode).", minimum=0, maximum=30),
        Param("missed", "int", 3, "A gap near 2x or 3x (up to this) the mode also matches: missed check-ins. "
              "1 turns this off.", minimum=1, maximum=10),
        Param("method", "choice", "both", "both: a pair is flagged by the mode (PercentBeacon over percent) or "
              "by the relative timing score (TimingScore at least min-timing and CoveragePct at least "
              "min-coverage) or the Evidence, which see C2 jitter of up to 50 % of the period; mode: the mode "
              "alone (the spec's method; the default when jitter or jitter-pct is given); score: the timing "
              "score and the Evidence alone.",
              choices=("both", "mode", "score")),
        Param("min_timing", "float", 50.0, "Relative score: flag when TimingScore (100 x (1 - MAD/median - "
              "0.1 x |Bowley skew| - 2 x misfit share - burst share)) is at least this. Measured over 20 "
              "seeds of labelled traffic: beacons with up to 50 % jitter score 70-100, Poisson pairs at most "
              "~62, bursty browsing ~0 (its short gaps); see docs/hunts.md.", minimum=0, maximum=100),
        Param("min_coverage", "float", 50.0, "Relative score: the pair must be active in at least this "
              "percentage of the window's UTC hours (browsing sessions cover 30-60 % of a day; a 1 h beacon "
              "with 20 % missed check-ins ~70 %).", minimum=0, maximum=100),
        Param("scope", "choice", "pair", "pair: gaps per (SourceIP, DestinationIP, DestinationPort); source: "
              "gaps per SourceIP as the notebook computes them, each gap counted for the pair of its later "
              "event.", choices=("pair", "source")),
        Param("private_ranges", "list", DEFAULT_PRIVATE, "Destinations in these ranges (comma-separated CIDRs) "
              "are dropped.", metavar="CIDRS"),
        Param("allow_sources", "list", (), "Allowlisted sources: addresses or CIDRs, comma-separated; @FILE "
              "reads them from a file, one a line. Their pairs are dropped before anything is scored.",
              metavar="CIDRS"),
        Param("allow_destinations", "list", (), "Allowlisted destinations (addresses, CIDRs or @FILE), dropped "
              "before scoring and before destination degrees are counted.", metavar="CIDRS"),
        Param("allow_ports", "list", (), "Allowlisted destination ports (or @FILE).", metavar="PORTS"),
        Param("allowlist", "str", None, "A table of allowed pairs: a CSV file's path, or (from Python) a "
              "DataFrame / Arrow table, with any of the columns SourceIP, DestinationIP (addresses or CIDRs), "
              "DestinationPort; each row allows the pairs matching all of its non-empty cells.", metavar="CSV"),
        Param("compat", "choice", "off", "notebook: the Sentinel notebook's computation and defaults (its "
              "private regex, per-source whole-second gaps, counts per Timedelta, a 3-row running sum over the "
              "sum of running sums, percent 75, more than 100 events and gaps); one row per notebook row; "
              "parameters given explicitly still win.", choices=("off", "notebook")),
    )

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        # The allowlist table may be a DataFrame: read into rows here, before the text parameters are parsed.
        given = dict(given)
        table = given.pop("allowlist", None)
        values = super().resolve(given)
        values["allowlist"] = allowlist.table_rows(table)
        allowlist.predicate(DIALECTS_CHECK, sources=values["allow_sources"],  # bad entries fail here, early
                            destinations=values["allow_destinations"], ports=values["allow_ports"],
                            rows=values["allowlist"])
        return values

    def adjust(self, values: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
        if values["compat"] == "notebook":
            for k, v in NOTEBOOK.items():
                if k not in explicit:
                    values[k] = v
        if values["method"] == "both" and "method" not in explicit and explicit & {"jitter", "jitter_pct"}:
            # An explicit tolerance asks for the mode's judgement (the spec's worked example, host C).
            values["method"] = "mode"
        parse_ranges(values["private_ranges"], "beacon --private-ranges")
        return values

    # -- the plan -----------------------------------------------------------------------------------

    def plan(self, values: Mapping[str, Any], source: Source, d: Dialect,  # type: ignore[override]
             window: tuple[int, int] | None) -> Plan:
        v = values
        if v["compat"] == "notebook":
            return notebook_plan(v, source, d, window)
        cols = source.columns
        plan = Plan(d, source=source.relation)
        seconds = v["compat"] == "notebook"
        min_delta = round(v["min_delta"] * _US)
        jit = round(v["jitter"] * _US)
        ppm = round(v["jitter_pct"] * 10_000)
        pct_ppm = round(v["percent"] * 10_000)
        missed = int(v["missed"])
        K = d.key

        plan.add("ev", events_select(v, d, cols, window))
        missing = "(s IS NULL OR d IS NULL OR p IS NULL OR s = '' OR d = '')"
        allowed = allowlist.predicate(d, sources=v["allow_sources"], destinations=v["allow_destinations"],
                                      ports=v["allow_ports"], rows=v["allowlist"])
        allow = f" AND NOT coalesce({allowed}, FALSE)" if allowed else ""
        plan.add("okev", f"SELECT * FROM @ev WHERE t IS NOT NULL AND NOT {missing}{allow}")
        # A pair of n events has at most n - 1 gaps per pair, n per source: prune before sorting events.
        bound = v["min_pair_deltas"] + (1 if v["scope"] == "pair" else 0)
        # Where the later steps read a candidate pair's events: all events, or the few already picked out.
        pair_events = "@ev"
        if v["scope"] == "pair" and int(v["min_src_events"]) == 0:
            _pair_candidates(plan, v, d, bound)
            pair_events = "@pairev"
            plan.small = True  # from here on only the candidate pairs' few events (17 k of 10 M)
        else:
            _source_candidates(plan, v, d, bound)

        def stamp(expr: str) -> str:
            # compat=notebook: whole seconds of each timestamp, as the notebook's unix_timestamp() does.
            return f"({d.idiv(expr, str(_US))} * {_US})" if seconds else expr

        hour = d.idiv("t", str(_HOUR))
        if v["scope"] == "pair":
            plan.add("pev", f"""
                SELECT {d.broadcast('c')} {d.key_select('c')}, e.t FROM {pair_events} e
                JOIN @cand c ON e.s = c.s AND e.d = c.d AND e.p = c.p WHERE e.t IS NOT NULL""")
            # One window pass: each gap, and whether the event opens a new UTC hour of the pair (coverage).
            plan.add("gaps", f"""
                SELECT {K}, {stamp('t')} - lag({stamp('t')}) OVER w AS g,
                       CASE WHEN lag({hour}) OVER w = {hour} THEN 0 ELSE 1 END AS nh
                FROM @pev WINDOW w AS (PARTITION BY {K} ORDER BY t)""")
        else:
            plan.add("sev", """
                SELECT e.s, e.d, e.p, e.t FROM @okev e JOIN @dst x ON e.d = x.d
                JOIN (SELECT DISTINCT s FROM @cand) cs ON e.s = cs.s
                WHERE NOT x.private""")
            plan.add("sgaps", f"""
                SELECT s, d, p, {stamp('t')} - lag({stamp('t')}) OVER (PARTITION BY s ORDER BY t, d, p) AS g,
                       CASE WHEN lag({hour}) OVER (PARTITION BY s, d, p ORDER BY t) = {hour} THEN 0 ELSE 1 END
                           AS nh
                FROM @sev""")
            plan.add("gaps", f"""
                SELECT {d.key_select('c')}, x.g, x.nh FROM @sgaps x
                JOIN @cand c ON x.s = c.s AND x.d = c.d AND x.p = c.p""")
        # Every gap (NULL for a pair's first event) by value: the scored ones (> min-delta), the short ones
        # (how much of the pair is bursts), the hours the pair is active.
        plan.add("hist", f"""
            SELECT {K}, g, count(*) AS n, CAST(sum(nh) AS BIGINT) AS nh FROM @gaps GROUP BY {K}, g""",
                 materialize=True)
        plan.small = True  # the candidate pairs' gap histograms
        plan.add("tot", f"""
            SELECT {K}, CAST(sum(CASE WHEN g > {min_delta} THEN n ELSE 0 END) AS BIGINT) AS total,
                   CAST(sum(CASE WHEN g IS NOT NULL THEN n ELSE 0 END) AS BIGINT) AS all_gaps,
                   CAST(sum(nh) AS BIGINT) AS hours
            FROM @hist GROUP BY {K}
            HAVING sum(CASE WHEN g > {min_delta} THEN n ELSE 0 END) >= {int(v['min_pair_deltas'])}""",
                 materialize=True)
        plan.add("h2", f"""
            SELECT {d.key_select('h')}, h.g, h.n FROM @hist h JOIN @tot x ON {d.key_join('h', 'x')}
            WHERE h.g > {min_delta}""", materialize=True)
        relative(plan, d, v, window)
        likelihood(plan, d, v, min_delta)

        def tol(x: str) -> str:
            return f"greatest(CAST({jit} AS BIGINT), {d.idiv(f'{x} * {ppm}', '1000000')})"

        # Probes: kind 0 sorts before a gap of equal value (count gaps < lo), kind 2 after (gaps <= hi).
        plan.add("probes", f"""
            SELECT {K}, g AS v, 1 AS kind, n AS w, g AS c FROM @h2
            UNION ALL SELECT {K}, g - {tol('g')} AS v, 0 AS kind, CAST(0 AS BIGINT) AS w, g AS c FROM @h2
            UNION ALL SELECT {K}, g + {tol('g')} AS v, 2 AS kind, CAST(0 AS BIGINT) AS w, g AS c FROM @h2""")
        plan.add("cum", f"""
            SELECT {K}, c, kind, CAST(sum(w) OVER (PARTITION BY {K} ORDER BY v, kind
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cum
            FROM @probes""")
        plan.add("win", f"""
            SELECT {K}, c, CAST(sum(CASE WHEN kind = 2 THEN cum ELSE -cum END) AS BIGINT) AS cnt
            FROM @cum WHERE kind <> 1 GROUP BY {K}, c""")
        plan.add("modes", f"""
            SELECT {K}, c, {tol('c')} AS tol FROM (
                SELECT {d.key_select('w')}, w.c, row_number() OVER (PARTITION BY {d.key_select('w')}
                    ORDER BY w.cnt DESC, h.n DESC, w.c ASC) AS rk
                FROM @win w JOIN @h2 h ON {d.key_join('w', 'h')} AND h.g = w.c) ranked
            WHERE rk = 1""", materialize=True)
        match = " OR ".join(f"abs(h.g - {k} * m.c) <= {k} * m.tol" for k in range(1, missed + 1))
        plan.add("score", f"""
            SELECT {d.key_select('h')}, m.c AS mode, CAST(sum(h.n) AS BIGINT) AS total,
                   CAST(sum(CASE WHEN {match} THEN h.n ELSE 0 END) AS BIGINT) AS beacon
            FROM @h2 h JOIN @modes m ON {d.key_join('h', 'm')}
            GROUP BY {d.key_select('h')}, m.c""")
        by_mode = "FALSE" if v["method"] == "score" else (
            f"s0.beacon * 1000000 > {pct_ppm} * s0.total AND s0.beacon >= {_few_gaps_needed('s0.total')}")
        by_score = score_verdict(v)
        by_lr = evidence_verdict(v)
        plan.add("flag", f"""
            SELECT s0.*, r.q2, r.mad, r.skew_bp, r.out_bp, r.timing_bp, r.hours, r.cov_bp, r.lr_mn,
                   CASE WHEN {by_mode} THEN 1 ELSE 0 END + CASE WHEN {by_score} THEN 2 ELSE 0 END
                       + CASE WHEN {by_lr} THEN 4 ELSE 0 END AS why
            FROM @score s0 JOIN (SELECT x.*, y.lr_mn FROM @rel x LEFT JOIN @lr y ON {d.key_join('x', 'y')}) r
              ON {d.key_join('s0', 'r')}
            WHERE ({by_mode}) OR ({by_score}) OR ({by_lr})""", materialize=True)
        # Protocol and vendor lists only for the flagged pairs: sorted distinct lists cost a sort per group.
        plan.small = pair_events != "@ev"
        plan.add("labels", f"""
            SELECT {d.broadcast('c')} c.s, c.d, c.p, {d.distinct_list('e.proto')} AS proto,
                   {d.distinct_list('e.vendor')} AS vendor,
                   count(e.sent) AS size_n, CAST(sum(CAST(e.sent AS DECIMAL(38, 0))) AS DECIMAL(38, 0)) AS size_s1,
                   CAST(sum(CAST(e.sent AS DECIMAL(38, 0)) * CAST(e.sent AS DECIMAL(38, 0))) AS DECIMAL(38, 0))
                       AS size_s2
            FROM {pair_events} e JOIN (SELECT c.s, c.d, c.p FROM @flag f JOIN @cand c ON {d.key_join('f', 'c')}) c
              ON e.s = c.s AND e.d = c.d AND e.p = c.p WHERE e.t IS NOT NULL
            GROUP BY c.s, c.d, c.p""", materialize=True)
        plan.small = True
        plan.output("rows", f"""
            SELECT c.s AS SourceIP, c.d AS DestinationIP, c.p AS DestinationPort, l.proto AS Protocol,
                   l.vendor AS DeviceVendor, f.mode AS mode_us, f.beacon AS BeaconCount, f.total AS TotalDeltas,
                   c.n AS TotalEvents, {d.idiv('f.beacon * 2000 + f.total', '2 * f.total')} AS pct_x10,
                   c.first_t AS first_us, c.last_t AS last_us, c.sent AS TotalSentBytes,
                   c.recv AS TotalReceivedBytes, c.degree AS DegreeofSourceIps,
                   f.q2 AS period_us, f.mad AS mad_us, f.skew_bp, f.out_bp, f.timing_bp, f.hours, f.cov_bp, f.why,
                   f.lr_mn,
                   l.size_n, l.size_s1, l.size_s2
            FROM @flag f JOIN @cand c ON {d.key_join('f', 'c')}
            JOIN @labels l ON l.s = c.s AND l.d = c.d AND l.p = c.p""")
        plan.output("histograms", f"""
            SELECT c.s AS SourceIP, c.d AS DestinationIP, c.p AS DestinationPort,
                   {d.idiv('h.g + 500000', '1000000')} AS seconds, CAST(sum(h.n) AS BIGINT) AS gaps
            FROM @h2 h JOIN @flag f ON {d.key_join('h', 'f')} JOIN @cand c ON {d.key_join('h', 'c')}
            GROUP BY c.s, c.d, c.p, {d.idiv('h.g + 500000', '1000000')}""")
        plan.small = False
        plan.output("stats", f"""
            SELECT a.*, (SELECT count(*) FROM @cand) AS candidate_pairs,
                   (SELECT CAST(sum(total) AS BIGINT) FROM @tot) AS gaps_scored,
                   (SELECT count(*) FROM @tot) AS pairs_scored
            FROM (SELECT CAST(count(*) AS BIGINT) AS rows_read,
                   CAST(sum(CASE WHEN {missing} OR t IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS rows_skipped,
                   CAST(sum(CASE WHEN {missing} OR t IS NULL THEN 0 ELSE 1 END) AS BIGINT) AS events
                  FROM @ev) a""")
        return plan

    # -- output -------------------------------------------------------------------------------------

    def finish(self, run: HuntRun, values: Mapping[str, Any]) -> HuntRun:
        import pyarrow as pa
        import pyarrow.compute as pc

        raw = run.table
        mode = pc.divide(raw.column("mode_us").cast(pa.float64()), pa.scalar(1e6))
        pct = pc.divide(raw.column("pct_x10").cast(pa.float64()), pa.scalar(10.0))
        ts = pa.timestamp("us", tz="UTC")
        out = {
            "SourceIP": raw.column("SourceIP").cast(pa.string()),
            "DestinationIP": raw.column("DestinationIP").cast(pa.string()),
            "DestinationPort": raw.column("DestinationPort").cast(pa.int64()),
            "Protocol": raw.column("Protocol").cast(pa.string()),
            "DeviceVendor": raw.column("DeviceVendor").cast(pa.string()),
            "ModeTimedelta": mode,
            "BeaconCount": raw.column("BeaconCount").cast(pa.int64()),
            "TotalDeltas": raw.column("TotalDeltas").cast(pa.int64()),
            "TotalEvents": raw.column("TotalEvents").cast(pa.int64()),
            "PercentBeacon": pct,
            "FirstSeen": raw.column("first_us").cast(pa.int64()).cast(ts),
            "LastSeen": raw.column("last_us").cast(pa.int64()).cast(ts),
            "TotalSentBytes": raw.column("TotalSentBytes").cast(pa.int64()),
            "TotalReceivedBytes": raw.column("TotalReceivedBytes").cast(pa.int64()),
            "DegreeofSourceIps": raw.column("DegreeofSourceIps").cast(pa.int64()),
            **_subscores(raw, "notebook" if values["compat"] == "notebook" else None),
        }
        table = ordered(pa.table(out), self.order)
        run.table = table
        hist = run.stats.pop("_histograms", None)
        if hist is not None:
            run.stats["gap_histograms"] = _histograms(table, hist)
        return run

    def figure(self, result: Result) -> Any:
        return gap_figure(result)


#: The mode on few gaps: (fewer than this many gaps, at most this many may miss the mode). Random pairs of
#: 12-17 gaps reach 76-85 % by chance about 4 times in a million (6 of 1.6 M pairs on a 100 M-event day);
#: drawn random pairs (same tolerances) show each further matched gap cuts that about tenfold, so these
#: keep it under 1 in 10 million. From 20 gaps on, `percent` alone decides.
MODE_FEW_GAPS = ((16, 0), (20, 2))


def _few_gaps_needed(total: str) -> str:
    whens = " ".join(f"WHEN {total} < {below} THEN {total} - {misses}" for below, misses in MODE_FEW_GAPS)
    return f"CASE {whens} ELSE 0 END"


def _candidate_select(v: Mapping[str, Any], d: Dialect, pairs: str, bound: int) -> str:
    """``@cand``: the pairs (an integer id, counts, span, bytes, destination degree) worth sorting, of
    *pairs* (SQL of per-pair aggregates of the events, ``n`` events each) joined with ``@dst``."""
    return f"""
            SELECT {d.row_id('s, d, p')} AS pid, * FROM (
                SELECT {d.broadcast('x')} pa.s, pa.d, pa.p, pa.n, pa.first_t, pa.last_t, pa.sent, pa.recv, x.degree
                FROM ({pairs}) pa JOIN @dst x ON pa.d = x.d
                WHERE NOT x.private AND x.degree < {int(v['max_dst_degree'])} AND pa.n >= {int(bound)}) pc"""


_PAIR_AGG = """count(*) AS n, min(e.t) AS first_t, max(e.t) AS last_t, CAST(sum(e.sent) AS BIGINT) AS sent,
                       CAST(sum(e.recv) AS BIGINT) AS recv"""


def _pair_candidates(plan: Plan, v: Mapping[str, Any], d: Dialect, bound: int) -> None:
    """``@pairev`` (every event of the pairs with at least *bound* events) and ``@cand``, scope=pair.

    One day of 10 M events has 5.7 M pairs and 17 k events in pairs of 13 or more: grouping the events by
    a 64-bit hash of the pair (one integer to shuffle, not two strings and a port) finds the few pairs
    worth a look, one broadcast join picks their events, and only their destinations' degrees (an exact
    count of distinct sources over all events) and private ranges are computed. A hash collision can only
    keep a pair that is then dropped by the exact count, so the rows are exactly those of grouping by the
    pair itself."""
    h = d.pair_hash("s, d, p")
    plan.add("hc", f"SELECT {h} AS h FROM @okev GROUP BY {h} HAVING count(*) >= {int(bound)}", materialize=True)
    plan.add("pairev", f"""
        SELECT {d.broadcast('x')} e.t, e.s, e.d, e.p, e.proto, e.vendor, e.sent, e.recv
        FROM @okev e JOIN @hc x ON {d.pair_hash('e.s, e.d, e.p')} = x.h""", materialize=True)
    pairs = f"SELECT e.s, e.d, e.p, {_PAIR_AGG} FROM @pairev e GROUP BY e.s, e.d, e.p"
    plan.add("pre", f"{pairs} HAVING count(*) >= {int(bound)}", materialize=True)
    plan.add("cdst", "SELECT DISTINCT d FROM @pre", materialize=True)
    plan.add("dst", private_select(f"""
        SELECT {d.broadcast('x')} e.d, count(DISTINCT e.s) AS degree FROM @okev e JOIN @cdst x ON e.d = x.d
        GROUP BY e.d""", "d", v["private_ranges"], d, keep="d, degree"), materialize=True)
    plan.add("cand", _candidate_select(v, d, "SELECT * FROM @pre", bound), materialize=True)


def _source_candidates(plan: Plan, v: Mapping[str, Any], d: Dialect, bound: int) -> None:
    """``@dst`` (every destination's degree), ``@srcs`` (sources over min-src-events) and ``@cand`` straight
    from the events: scope=source needs every public destination's events, min-src-events every source's."""
    # Never a table of every pair: one day of 10 M events has 5.7 M pairs, and materializing them and joining
    # them twice was most of the time on Spark (70 s of 220 s).
    plan.add("dst", private_select("SELECT d, count(DISTINCT s) AS degree FROM @okev GROUP BY d", "d",
                                   v["private_ranges"], d, keep="d, degree"), materialize=True)
    src_join = ""
    if int(v["min_src_events"]) > 0:
        plan.add("srcs", f"""
            SELECT {d.broadcast('x')} e.s, count(*) AS src_n FROM @okev e JOIN @dst x ON e.d = x.d
            WHERE NOT x.private GROUP BY e.s HAVING count(*) > {int(v['min_src_events'])}""", materialize=True)
        src_join = " JOIN @srcs y ON e.s = y.s"
    pairs = f"""
                SELECT {d.broadcast('x')} e.s, e.d, e.p, {_PAIR_AGG}
                FROM @okev e JOIN @dst x ON e.d = x.d{src_join}
                WHERE NOT x.private AND x.degree < {int(v['max_dst_degree'])}
                GROUP BY e.s, e.d, e.p HAVING count(*) >= {int(bound)}"""
    plan.add("cand", _candidate_select(v, d, pairs, bound), materialize=True)


def _subscores(raw: Any, label: str | None) -> dict[str, Any]:
    """The sub-score columns from the engine's integers (microseconds, basis points), in Python, so every
    engine shows the same numbers."""
    import pyarrow as pa

    def num(name: str) -> list[Any]:
        return raw.column(name).to_pylist() if name in raw.column_names else [None] * raw.num_rows

    period, mad, skew, out, timing = num("period_us"), num("mad_us"), num("skew_bp"), num("out_bp"), num("timing_bp")
    hours, cov, why = num("hours"), num("cov_bp"), num("why")
    sizes = zip(num("size_n"), num("size_s1"), num("size_s2"), strict=True)

    def scaled(xs: list[Any], div: float, digits: int) -> pa.Array:
        return pa.array([None if x is None else round(int(x) / div, digits) for x in xs], pa.float64())

    return {
        "FlaggedBy": pa.array([label if w is None else FLAGGED_BY.get(int(w)) for w in why], pa.string()),
        "Period": scaled(period, 1e6, 3),
        "JitterPct": pa.array([None if m is None or not p else round(200 * int(m) / int(p), 1)
                               for m, p in zip(mad, period, strict=True)], pa.float64()),
        "Skew": scaled(skew, 1e4, 2), "MisfitPct": scaled(out, 100, 1),
        "TimingScore": pa.array([None if t is None else round(max(0, int(t)) / 100, 1) for t in timing],
                                pa.float64()),
        "Evidence": scaled(num("lr_mn"), 1000, 1),
        "SizeScore": pa.array([size_score(*x) for x in sizes], pa.float64()),
        "ActiveHours": pa.array([None if h is None else int(h) for h in hours], pa.int64()),
        "CoveragePct": scaled(cov, 100, 1),
    }


def _histograms(rows: Any, hist: Any) -> list[dict[str, Any]]:
    """Per flagged pair, in the result's row order: its gaps counted per whole second."""
    by_pair: dict[tuple, list[tuple[int, int]]] = {}
    for r in hist.to_pylist():
        key = (r["SourceIP"], r["DestinationIP"], int(r["DestinationPort"]))
        by_pair.setdefault(key, []).append((int(r["seconds"]), int(r["gaps"])))
    out = []
    for r in rows.select(["SourceIP", "DestinationIP", "DestinationPort", "ModeTimedelta",
                          "PercentBeacon"]).to_pylist():
        key = (r["SourceIP"], r["DestinationIP"], int(r["DestinationPort"]))
        bins = sorted(by_pair.get(key, []))
        out.append({"SourceIP": key[0], "DestinationIP": key[1], "DestinationPort": key[2],
                    "ModeTimedelta": r["ModeTimedelta"], "PercentBeacon": r["PercentBeacon"],
                    "seconds": [b[0] for b in bins], "gaps": [b[1] for b in bins]})
    return out


def gap_figure(result: Result, max_pairs: int = 12) -> Any:
    """A plotly figure: one gap histogram per flagged pair (the first *max_pairs* in result order), with
    the mode and its multiples marked. None when nothing was flagged."""
    hists = (result.stats or {}).get("gap_histograms") or []
    if not hists:
        return None
    import math

    from plotly.subplots import make_subplots

    shown = hists[:max_pairs]
    ncols = 1 if len(shown) == 1 else 2 if len(shown) <= 4 else 3
    nrows = math.ceil(len(shown) / ncols)
    titles = [f"{h['SourceIP']} → {h['DestinationIP']}:{h['DestinationPort']} ({h['PercentBeacon']:.1f} %)"
              for h in shown]
    fig = make_subplots(rows=nrows, cols=ncols, subplot_titles=titles, horizontal_spacing=0.06,
                        vertical_spacing=min(0.12, 0.5 / max(nrows, 1)))
    for i, h in enumerate(shown):
        row, c = i // ncols + 1, i % ncols + 1
        fig.add_bar(x=h["seconds"], y=h["gaps"], row=row, col=c, name=titles[i], showlegend=False,
                    marker_color="#1f77b4", hovertemplate="gap %{x} s: %{y} gaps<extra></extra>")
        mode = h["ModeTimedelta"]
        for k in (1, 2, 3):
            if h["seconds"] and k * mode <= max(h["seconds"]) + 1:
                fig.add_vline(x=k * mode, line_dash="dot" if k > 1 else "solid", line_color="#d62728",
                              line_width=1, row=row, col=c)
    more = f" (first {len(shown)} of {len(hists)})" if len(hists) > len(shown) else ""
    fig.update_layout(title=f"Beacon gap histograms{more}: gaps per second, mode in red",
                      height=max(320, 260 * nrows), margin={"t": 80, "l": 40, "r": 20, "b": 40},
                      template="plotly_white")
    fig.update_xaxes(title_text="gap (s)")
    return fig


HUNT = Beacon()
