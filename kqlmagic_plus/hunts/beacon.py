"""``beacon``: internal hosts that call the same external endpoint at a regular interval.

The method (shared/hunts/beacon.md), for each (SourceIP, DestinationIP, DestinationPort):

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

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.hunts.base import Column, Hunt, HuntRun, Param, ordered
from kqlmagic_plus.hunts.iprange import DEFAULT_PRIVATE, parse_ranges, private_select
from kqlmagic_plus.hunts.sql import Dialect, Plan, time_filter

if TYPE_CHECKING:
    from kqlmagic_plus.hunts.inputs import Source
    from kqlmagic_plus.results import Result

_US = 1_000_000

#: What compat=notebook sets (the Sentinel notebook's method and numbers).
NOTEBOOK = {"scope": "source", "jitter": 0.0, "jitter_pct": 0.0, "missed": 1, "min_pair_deltas": 100,
            "min_src_events": 100, "max_dst_degree": 25, "percent": 75.0, "min_delta": 15.0}

COLUMNS = (
    Column("SourceIP", "string"), Column("DestinationIP", "string"), Column("DestinationPort", "long"),
    Column("Protocol", "string"), Column("DeviceVendor", "string"), Column("ModeTimedelta", "real"),
    Column("BeaconCount", "long"), Column("TotalDeltas", "long"), Column("TotalEvents", "long"),
    Column("PercentBeacon", "real"), Column("FirstSeen", "datetime"), Column("LastSeen", "datetime"),
    Column("TotalSentBytes", "long"), Column("TotalReceivedBytes", "long"), Column("DegreeofSourceIps", "long"),
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
        "percent. Private destinations and destinations many sources talk to are left out.\n\n"
        "Defaults differ from the Sentinel notebook where the notebook misses real beacons: gaps are per pair, "
        "not per source (the notebook's per-source gaps break as soon as a host talks to anything else); the "
        "mode has a tolerance and counts missed check-ins (the notebook's whole-second buckets score a 60 s "
        "beacon with 0.4 s jitter at 37 %); min-src-events and min-pair-deltas are low enough for a 1 h beacon "
        "(24 check-ins a day, fewer with missed ones). compat=notebook runs the notebook's own method."
    )
    table = "CommonSecurityLog"
    required = ("TimeGenerated", "SourceIP", "DestinationIP", "DestinationPort")
    optional = ("Protocol", "SentBytes", "ReceivedBytes", "DeviceVendor", "Activity")
    columns = COLUMNS
    order = (("PercentBeacon", True), ("SourceIP", False), ("DestinationIP", False), ("DestinationPort", False))
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
        Param("scope", "choice", "pair", "pair: gaps per (SourceIP, DestinationIP, DestinationPort); source: "
              "gaps per SourceIP as the notebook computes them, each gap counted for the pair of its later "
              "event.", choices=("pair", "source")),
        Param("private_ranges", "list", DEFAULT_PRIVATE, "Destinations in these ranges (comma-separated CIDRs) "
              "are dropped.", metavar="CIDRS"),
        Param("compat", "choice", "off", "notebook: the Sentinel notebook's method and defaults (source scope, "
              "whole-second gaps, exact-value mode, min-pair-deltas 100, min-src-events 100) for comparison; "
              "parameters given explicitly still win.", choices=("off", "notebook")),
    )

    def adjust(self, values: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
        if values["compat"] == "notebook":
            for k, v in NOTEBOOK.items():
                if k not in explicit:
                    values[k] = v
        parse_ranges(values["private_ranges"], "beacon --private-ranges")
        return values

    # -- the plan -----------------------------------------------------------------------------------

    def plan(self, values: Mapping[str, Any], source: Source, d: Dialect,  # type: ignore[override]
             window: tuple[int, int] | None) -> Plan:
        v = values
        cols = source.columns
        plan = Plan(d, source=source.relation)
        seconds = v["compat"] == "notebook"
        min_delta = round(v["min_delta"] * _US)
        jit = round(v["jitter"] * _US)
        ppm = round(v["jitter_pct"] * 10_000)
        pct_ppm = round(v["percent"] * 10_000)
        missed = int(v["missed"])
        K = d.key

        def col(name: str, cast: str | None = None) -> str:
            if name not in cols:
                return f"CAST(NULL AS {cast or 'STRING'})"
            ref = d.ident(name)
            return f"TRY_CAST({ref} AS {cast})" if cast else ref

        t, where = time_filter(d, cols, window, keep_null=True)
        for param, column in (("vendor", "DeviceVendor"), ("activity", "Activity")):
            if v[param] is not None:
                if column not in cols:
                    raise OptionError(f"beacon --{param}: the input has no {column} column")
                where.append(f"lower({d.ident(column)}) = lower({d.lit(v[param])})")
        plan.add("ev", f"""
            SELECT {t} AS t, {col('SourceIP')} AS s, {col('DestinationIP')} AS d,
                   TRY_CAST({d.ident('DestinationPort')} AS BIGINT) AS p,
                   {col('Protocol')} AS proto, {col('DeviceVendor')} AS vendor,
                   {col('SentBytes', 'BIGINT')} AS sent, {col('ReceivedBytes', 'BIGINT')} AS recv
            FROM @src {'WHERE ' + ' AND '.join(where) if where else ''}""")
        live = "t IS NOT NULL"
        plan.add("pairs", f"""
            SELECT s, d, p, count(*) AS rows_all, count(t) AS n, min(t) AS first_t, max(t) AS last_t,
                   CAST(sum(CASE WHEN {live} THEN sent END) AS BIGINT) AS sent,
                   CAST(sum(CASE WHEN {live} THEN recv END) AS BIGINT) AS recv
            FROM @ev GROUP BY s, d, p""", materialize=True)
        missing = "(s IS NULL OR d IS NULL OR p IS NULL OR s = '' OR d = '')"
        plan.add("okpairs", f"SELECT * FROM @pairs WHERE NOT {missing} AND n > 0")
        plan.add("dst", private_select("SELECT d, count(*) AS degree FROM (SELECT DISTINCT d, s FROM @okpairs) ds "
                                       "GROUP BY d", "d", v["private_ranges"], d, keep="d, degree"),
                 materialize=True)
        plan.add("srcs", """
            SELECT o.s, sum(o.n) AS src_n FROM @okpairs o JOIN @dst x ON o.d = x.d
            WHERE NOT x.private GROUP BY o.s""")
        # A pair of n events has at most n - 1 gaps per pair, n per source: prune before sorting events.
        bound = v["min_pair_deltas"] + (1 if v["scope"] == "pair" else 0)
        plan.add("cand", f"""
            SELECT {d.row_id('o.s, o.d, o.p')} AS pid, o.s, o.d, o.p, o.n, o.first_t, o.last_t, o.sent, o.recv,
                   x.degree
            FROM @okpairs o JOIN @dst x ON o.d = x.d JOIN @srcs y ON o.s = y.s
            WHERE NOT x.private AND x.degree < {int(v['max_dst_degree'])} AND y.src_n > {int(v['min_src_events'])}
              AND o.n >= {int(bound)}""", materialize=True)

        def stamp(expr: str) -> str:
            # compat=notebook: whole seconds of each timestamp, as the notebook's unix_timestamp() does.
            return f"({d.idiv(expr, str(_US))} * {_US})" if seconds else expr

        if v["scope"] == "pair":
            plan.add("pev", f"""
                SELECT {d.key_select('c')}, e.t FROM @ev e
                JOIN @cand c ON e.s = c.s AND e.d = c.d AND e.p = c.p WHERE e.t IS NOT NULL""")
            plan.add("gaps", f"""
                SELECT {K}, {stamp('t')} - lag({stamp('t')}) OVER (PARTITION BY {K} ORDER BY t) AS g
                FROM @pev""")
        else:
            plan.add("sev", """
                SELECT e.s, e.d, e.p, e.t FROM @ev e JOIN @dst x ON e.d = x.d
                JOIN (SELECT DISTINCT s FROM @cand) cs ON e.s = cs.s
                WHERE NOT x.private AND e.t IS NOT NULL AND e.p IS NOT NULL""")
            plan.add("sgaps", f"""
                SELECT s, d, p, {stamp('t')} - lag({stamp('t')}) OVER (PARTITION BY s ORDER BY t, d, p) AS g
                FROM @sev""")
            plan.add("gaps", f"""
                SELECT {d.key_select('c')}, x.g FROM @sgaps x
                JOIN @cand c ON x.s = c.s AND x.d = c.d AND x.p = c.p""")
        plan.add("hist", f"SELECT {K}, g, count(*) AS n FROM @gaps WHERE g > {min_delta} GROUP BY {K}, g",
                 materialize=True)
        plan.add("tot", f"""
            SELECT {K}, CAST(sum(n) AS BIGINT) AS total FROM @hist GROUP BY {K}
            HAVING sum(n) >= {int(v['min_pair_deltas'])}""", materialize=True)
        plan.add("h2", f"""
            SELECT {d.key_select('h')}, h.g, h.n FROM @hist h JOIN @tot x ON {d.key_join('h', 'x')}""",
                 materialize=True)

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
        plan.add("flag", f"SELECT * FROM @score WHERE beacon * 1000000 > {pct_ppm} * total", materialize=True)
        # Protocol and vendor lists only for the flagged pairs: sorted distinct lists cost a sort per group.
        plan.add("labels", f"""
            SELECT c.s, c.d, c.p, {d.distinct_list('e.proto')} AS proto, {d.distinct_list('e.vendor')} AS vendor
            FROM @ev e JOIN (SELECT c.s, c.d, c.p FROM @flag f JOIN @cand c ON {d.key_join('f', 'c')}) c
              ON e.s = c.s AND e.d = c.d AND e.p = c.p WHERE e.t IS NOT NULL
            GROUP BY c.s, c.d, c.p""", materialize=True)
        plan.output("rows", f"""
            SELECT c.s AS SourceIP, c.d AS DestinationIP, c.p AS DestinationPort, l.proto AS Protocol,
                   l.vendor AS DeviceVendor, f.mode AS mode_us, f.beacon AS BeaconCount, f.total AS TotalDeltas,
                   c.n AS TotalEvents, {d.idiv('f.beacon * 2000 + f.total', '2 * f.total')} AS pct_x10,
                   c.first_t AS first_us, c.last_t AS last_us, c.sent AS TotalSentBytes,
                   c.recv AS TotalReceivedBytes, c.degree AS DegreeofSourceIps
            FROM @flag f JOIN @cand c ON {d.key_join('f', 'c')}
            JOIN @labels l ON l.s = c.s AND l.d = c.d AND l.p = c.p""")
        plan.output("histograms", f"""
            SELECT c.s AS SourceIP, c.d AS DestinationIP, c.p AS DestinationPort,
                   {d.idiv('h.g + 500000', '1000000')} AS seconds, CAST(sum(h.n) AS BIGINT) AS gaps
            FROM @h2 h JOIN @flag f ON {d.key_join('h', 'f')} JOIN @cand c ON {d.key_join('h', 'c')}
            GROUP BY c.s, c.d, c.p, {d.idiv('h.g + 500000', '1000000')}""")
        plan.output("stats", f"""
            SELECT a.*, (SELECT count(*) FROM @cand) AS candidate_pairs,
                   (SELECT CAST(sum(total) AS BIGINT) FROM @tot) AS gaps_scored,
                   (SELECT count(*) FROM @tot) AS pairs_scored
            FROM (SELECT CAST(sum(rows_all) AS BIGINT) AS rows_read,
                   CAST(sum(CASE WHEN {missing} THEN rows_all ELSE rows_all - n END) AS BIGINT) AS rows_skipped,
                   CAST(sum(CASE WHEN {missing} THEN 0 ELSE n END) AS BIGINT) AS events,
                   CAST(sum(CASE WHEN NOT {missing} AND n > 0 THEN 1 ELSE 0 END) AS BIGINT) AS pairs
                  FROM @pairs) a""")
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
        }
        table = ordered(pa.table(out), self.order)
        run.table = table
        hist = run.stats.pop("_histograms", None)
        if hist is not None:
            run.stats["gap_histograms"] = _histograms(table, hist)
        return run

    def figure(self, result: Result) -> Any:
        return gap_figure(result)


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
