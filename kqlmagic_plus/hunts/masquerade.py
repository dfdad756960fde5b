"""``masquerade``: rare process names that are near-duplicates of common ones (``svch0st.exe``).

From SecurityEvent 4688 (process creation): the file name of NewProcessName (lowercased), its
number of executions in the window, and the quantiles of those counts over all names. A name is
common above the ``common-quantile`` and rare below the ``rare-quantile``; a rare name whose
Levenshtein similarity to a common one (1 - distance / longer length) is at least
``min-similarity`` is reported with both names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.hunts.base import Column, Hunt, HuntRun, Param, ordered, typed_output
from kqlmagic_plus.hunts.sql import Dialect, Plan, time_filter

if TYPE_CHECKING:
    from kqlmagic_plus.hunts.inputs import Source

COLUMNS = (
    Column("RareProcess", "string"), Column("CommonProcess", "string"), Column("Similarity", "real"),
    Column("RareCount", "long"), Column("CommonCount", "long"), Column("RareHostCount", "long"),
    Column("RareHosts", "string"), Column("RarePaths", "string"), Column("FirstSeen", "datetime"),
    Column("LastSeen", "datetime"),
)


class Masquerade(Hunt):
    name = "masquerade"
    title = "process masquerading: rare process names that imitate common ones"
    description = (
        "Finds process names that are rare in the window yet nearly identical to a common one (svch0st.exe "
        "for svchost.exe), a way malware hides in process lists (MITRE T1036.005). Reads process creation "
        "events (SecurityEvent 4688), takes the file name of NewProcessName in lower case, counts executions "
        "per name, and compares every rare name with every common name by Levenshtein similarity."
    )
    table = "SecurityEvent"
    required = ("TimeGenerated", "EventID", "NewProcessName")
    optional = ("Computer",)
    columns = COLUMNS
    order = (("Similarity", True), ("RareCount", False), ("RareProcess", False), ("CommonProcess", False))
    params = (
        Param("end_date", "date", None, "Last day analysed (UTC), inclusive. Default: today for a lake; the last "
              "day in the data for a table or DataFrame.", metavar="DATE"),
        Param("lookback_days", "int", 7, "Days analysed, ending at end-date (a longer baseline makes 'common' "
              "more reliable).", minimum=1, maximum=3660),
        Param("min_similarity", "float", 0.85, "Report a rare name whose similarity to a common one is at "
              "least this (1 - Levenshtein distance / longer name length).", minimum=0.5, maximum=1.0),
        Param("common_quantile", "float", 0.8, "A name is common when its execution count is above this "
              "quantile of the counts of all names.", minimum=0.0, maximum=1.0),
        Param("rare_quantile", "float", 0.2, "A name is rare when its execution count is below this quantile.",
              minimum=0.0, maximum=1.0),
        Param("event_id", "int", 4688, "The process creation event ID.", minimum=0),
    )

    def adjust(self, values: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
        if values["rare_quantile"] >= values["common_quantile"]:
            raise OptionError("masquerade: --rare-quantile must be below --common-quantile")
        return values

    def plan(self, values: Mapping[str, Any], source: Source, d: Dialect,  # type: ignore[override]
             window: tuple[int, int] | None) -> Plan:
        v = values
        cols = source.columns
        plan = Plan(d, source=source.relation)
        t, where = time_filter(d, cols, window)
        path = d.ident("NewProcessName")
        bs = d.lit("\\")
        # The file name: what follows the last backslash (or slash).
        fname = f"lower(reverse(split_part(reverse(replace({path}, '/', {bs})), {bs}, 1)))"
        host = d.ident("Computer") if "Computer" in cols else "CAST(NULL AS STRING)"
        plan.add("ev", f"""
            SELECT {t} AS t, {fname} AS name, {path} AS path, {host} AS host FROM @src
            WHERE {' AND '.join(where)} AND TRY_CAST({d.ident('EventID')} AS BIGINT) = {int(v['event_id'])}
              AND {path} IS NOT NULL AND {path} <> ''""")
        plan.add("names", "SELECT name, count(*) AS n FROM @ev WHERE name <> '' GROUP BY name", materialize=True)
        plan.add("q", f"""
            SELECT {d.quantile('n', v['common_quantile'])} AS q_common, {d.quantile('n', v['rare_quantile'])}
                   AS q_rare FROM @names""", materialize=True)
        sim_ppm = round(v["min_similarity"] * 1_000_000)
        plan.add("pairs", f"""
            SELECT r.name AS rare, c.name AS common, r.n AS rare_n, c.n AS common_n,
                   levenshtein(r.name, c.name) AS dist, greatest(length(r.name), length(c.name)) AS len
            FROM @names r CROSS JOIN @names c CROSS JOIN @q q
            WHERE r.n < q.q_rare AND c.n > q.q_common AND r.name <> c.name
              AND abs(length(r.name) - length(c.name)) * 1000000
                  <= (1000000 - {sim_ppm}) * greatest(length(r.name), length(c.name))""")
        plan.add("hits", f"""
            SELECT * FROM @pairs WHERE (len - dist) * 1000000 >= {sim_ppm} * len""", materialize=True)
        plan.output("rows", f"""
            SELECT h.rare AS RareProcess, h.common AS CommonProcess,
                   {d.idiv('2000 * (h.len - h.dist) + h.len', '2 * h.len')} AS sim_x1000,
                   h.rare_n AS RareCount, h.common_n AS CommonCount, e.host_n AS RareHostCount,
                   e.hosts AS RareHosts, e.paths AS RarePaths, e.first_t AS first_us, e.last_t AS last_us
            FROM @hits h JOIN (
                SELECT name, count(DISTINCT host) AS host_n, {d.distinct_list('host')} AS hosts,
                       {d.distinct_list('path')} AS paths, min(t) AS first_t, max(t) AS last_t
                FROM @ev WHERE name IN (SELECT rare FROM @hits) GROUP BY name) e ON e.name = h.rare""")
        plan.output("stats", """
            SELECT (SELECT CAST(sum(n) AS BIGINT) FROM @names) AS events, (SELECT count(*) FROM @names) AS names,
                   q.q_common, q.q_rare FROM @q q""")
        return plan

    def finish(self, run: HuntRun, values: Mapping[str, Any]) -> HuntRun:
        run.table = ordered(typed_output(run.table, _OUTPUT), self.order)
        return run


#: (output column, raw column, kind): see base.typed_output.
_OUTPUT = (
    ('RareProcess', 'RareProcess', 'string'),
    ('CommonProcess', 'CommonProcess', 'string'),
    ('Similarity', 'sim_x1000', '/1000'),
    ('RareCount', 'RareCount', 'long'),
    ('CommonCount', 'CommonCount', 'long'),
    ('RareHostCount', 'RareHostCount', 'long'),
    ('RareHosts', 'RareHosts', 'string'),
    ('RarePaths', 'RarePaths', 'string'),
    ('FirstSeen', 'first_us', 'time'),
    ('LastSeen', 'last_us', 'time'),
)

HUNT = Masquerade()
