"""KQL on Spark (``%%sparkhunt``: our compiler's Spark SQL, run and collected) vs hand-written Spark SQL of the
same query on the same lake views, on one local Spark session, in one run.

    python benchmarks/spark_kql_vs_sql.py [--lake DIR] [--days 3] [--events-per-day 400000] [--runs 5]
                                          [--master local[2]] [--show-sql] [--plan]

Without --lake a Parquet lake (CommonSecurityLog, SigninLogs) is generated under --out first. Each query runs
once to warm up, then --runs times alternating the two sides; the table shows the medians, the ratio
(KQL / hand-written; target <= 1.2x each) and whether both sides returned the same rows (``=``), or the same
number of rows where the answer is approximate or unordered (``#``).

``--plan`` adds where a query's time goes before Spark runs it, medians of --runs: ``prep`` (ours only:
lake plan and KQL compile, what a dry run does) and Spark's planning of each side's SQL (analysis,
optimization and the physical plan, no job run), so a ratio can be told apart as planning or execution.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

#: name -> (KQL, hand-written Spark SQL, how the rows are compared: "rows" | "count").
QUERIES: dict[str, tuple[str, str, str]] = {
    "filter+count": (
        'CommonSecurityLog | where DeviceVendor == "Fortinet" and DestinationPort == 443 | count',
        "SELECT count(*) AS Count FROM CommonSecurityLog WHERE DeviceVendor = 'Fortinet' AND DestinationPort = 443",
        "rows"),
    "contains+take": (
        'CommonSecurityLog | where Activity contains "deny" | project TimeGenerated, SourceIP, DestinationIP '
        "| take 1000",
        "SELECT TimeGenerated, SourceIP, DestinationIP FROM CommonSecurityLog WHERE lower(Activity) LIKE '%deny%' "
        "LIMIT 1000",
        "count"),
    "bin+summarize": (
        "CommonSecurityLog | summarize n = count(), bytes = sum(SentBytes) by bin(TimeGenerated, 1h)",
        "SELECT date_trunc('hour', TimeGenerated) AS TimeGenerated, count(*) AS n, sum(SentBytes) AS bytes "
        "FROM CommonSecurityLog GROUP BY date_trunc('hour', TimeGenerated)",
        "rows"),
    "dcount by key": (
        "CommonSecurityLog | summarize dsts = dcount(DestinationIP) by SourceIP",
        # dcount() is exact on both engines (DuckDB and Spark give the same rows): so is the hand-written one.
        "SELECT SourceIP, count(DISTINCT DestinationIP) AS dsts FROM CommonSecurityLog GROUP BY SourceIP",
        "rows"),
    "where+summarize 2 keys": (
        'SigninLogs | where ResultType != "0" | summarize failures = count() by UserPrincipalName, IPAddress '
        "| where failures > 5",
        "SELECT UserPrincipalName, IPAddress, count(*) AS failures FROM SigninLogs WHERE ResultType <> '0' "
        "GROUP BY UserPrincipalName, IPAddress HAVING count(*) > 5",
        "rows"),
    "join": (
        "CommonSecurityLog | where DestinationPort == 443 | summarize tls = count() by SourceIP "
        "| join kind=inner (CommonSecurityLog | where DestinationPort == 53 | summarize dns = count() by SourceIP) "
        "on SourceIP | project SourceIP, tls, dns",
        "SELECT a.SourceIP, a.tls, b.dns FROM (SELECT SourceIP, count(*) AS tls FROM CommonSecurityLog "
        "WHERE DestinationPort = 443 GROUP BY SourceIP) a JOIN (SELECT SourceIP, count(*) AS dns FROM "
        "CommonSecurityLog WHERE DestinationPort = 53 GROUP BY SourceIP) b ON a.SourceIP = b.SourceIP",
        "rows"),
    "top": (
        "CommonSecurityLog | top 100 by SentBytes desc | project TimeGenerated, SourceIP, SentBytes",
        "SELECT TimeGenerated, SourceIP, SentBytes FROM CommonSecurityLog ORDER BY SentBytes DESC NULLS LAST "
        "LIMIT 100",
        "count"),
    "top-nested": (
        "CommonSecurityLog | top-nested 3 of DeviceVendor by n = count(), top-nested 5 of DestinationPort "
        "by m = count()",
        "WITH c AS (SELECT DeviceVendor, DestinationPort, count(*) AS m FROM CommonSecurityLog "
        "GROUP BY DeviceVendor, DestinationPort), v AS (SELECT DeviceVendor, sum(m) AS n FROM c GROUP BY DeviceVendor "
        "ORDER BY n DESC LIMIT 3), r AS (SELECT c.DeviceVendor, v.n, c.DestinationPort, c.m, row_number() OVER "
        "(PARTITION BY c.DeviceVendor ORDER BY c.m DESC) AS k FROM c JOIN v ON c.DeviceVendor = v.DeviceVendor) "
        "SELECT DeviceVendor, n, DestinationPort, m FROM r WHERE k <= 5",
        "count"),
    "make-series": (
        "CommonSecurityLog | make-series n = count() default = 0 on TimeGenerated from datetime(2024-04-29) "
        "to datetime(2024-05-02) step 1h by DeviceVendor",
        "WITH g AS (SELECT explode(sequence(TIMESTAMP'2024-04-29 00:00:00', TIMESTAMP'2024-05-01 23:00:00', "
        "INTERVAL 1 HOUR)) AS t), k AS (SELECT DISTINCT DeviceVendor FROM CommonSecurityLog WHERE TimeGenerated >= "
        "TIMESTAMP'2024-04-29' AND TimeGenerated < TIMESTAMP'2024-05-02'), c AS (SELECT DeviceVendor, "
        "date_trunc('hour', TimeGenerated) AS t, count(*) AS n FROM CommonSecurityLog WHERE TimeGenerated >= "
        "TIMESTAMP'2024-04-29' AND TimeGenerated < TIMESTAMP'2024-05-02' GROUP BY 1, 2) "
        "SELECT k.DeviceVendor, transform(array_sort(collect_list(struct(g.t, coalesce(c.n, 0L) AS n))), x -> x.n) "
        "AS n, transform(array_sort(collect_list(struct(g.t))), x -> x.t) AS TimeGenerated FROM k CROSS JOIN g "
        "LEFT JOIN c ON c.DeviceVendor = k.DeviceVendor AND c.t = g.t GROUP BY k.DeviceVendor",
        "count"),
    "extend+where+avg": (
        "CommonSecurityLog | extend total = SentBytes + ReceivedBytes | where total > 50000 "
        "| summarize avg_total = avg(total) by DeviceVendor",
        "SELECT DeviceVendor, avg(SentBytes + ReceivedBytes) AS avg_total FROM CommonSecurityLog "
        "WHERE SentBytes + ReceivedBytes > 50000 GROUP BY DeviceVendor",
        "rows"),
    "distinct": (
        "SigninLogs | distinct UserPrincipalName, AppDisplayName",
        "SELECT DISTINCT UserPrincipalName, AppDisplayName FROM SigninLogs",
        "rows"),
    "arg_max": (
        "SigninLogs | summarize arg_max(TimeGenerated, IPAddress) by UserPrincipalName",
        "SELECT UserPrincipalName, max(TimeGenerated) AS TimeGenerated, max_by(IPAddress, TimeGenerated) AS IPAddress "
        "FROM SigninLogs GROUP BY UserPrincipalName",
        "count"),
}


def make_lake(out: str, days: int, per_day: int) -> str:
    from kqlmagic_plus.demo.datagen import generate

    path = os.path.join(out, f"lake-parquet-{days}d-{per_day}")
    if not os.path.exists(os.path.join(path, "_truth.json")):
        print(f"generating {path} ...", file=sys.stderr)
        generate(path, days=days, end_date="2024-05-01", events_per_day=per_day, seed=7, fmt="parquet",
                 layout="1h", tables=["CommonSecurityLog", "SigninLogs"])
    return path


def _canon(table) -> list[tuple]:
    rows = [tuple(str(v) for v in r.values()) for r in table.to_pylist()]
    return sorted(rows)


def planning_seconds(spark, sql: str) -> float:
    """Spark's analysis, optimization and physical planning of *sql*, without running it (classic sessions)."""
    t = time.perf_counter()
    spark.sql(sql)._jdf.queryExecution().executedPlan()
    return time.perf_counter() - t


def plan_table(spark, names: list[str], runs: int, quiet) -> None:
    from kqlmagic_plus.sparkhunt import sparkhunt

    if not hasattr(spark.sql("SELECT 1"), "_jdf"):
        print("\n--plan needs a classic Spark session (local mode), not Spark Connect")
        return
    print(f"\n{'planning, median s':<24}{'KQL prep':>9}{'KQL plan':>10}{'hand plan':>11}{'ratio':>8}")
    for name in names:
        kql, sql, _ = QUERIES[name]
        prep, ours, hand = [], [], []
        for _ in range(runs):
            t = time.perf_counter()
            compiled = sparkhunt(kql, progress="none", no_cache=True, say=quiet, dry_run=True).executed
            prep.append(time.perf_counter() - t)
            ours.append(planning_seconds(spark, compiled))
            hand.append(planning_seconds(spark, sql))
        p, o, h = statistics.median(prep), statistics.median(ours), statistics.median(hand)
        print(f"{name:<24}{p:>9.3f}{o:>10.3f}{h:>11.3f}{(p + o) / h:>8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lake", help="an exported lake folder (default: generate one under --out)")
    ap.add_argument("--out", default="/tmp/kqlmp-spark-kql-bench")
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--events-per-day", type=int, default=400_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--only", help="comma-separated query names")
    ap.add_argument("--show-sql", action="store_true", help="print the compiled Spark SQL of each query")
    ap.add_argument("--plan", action="store_true",
                    help="also time KQL compile and Spark's planning of both sides (no execution)")
    args = ap.parse_args()

    from kqlmagic_plus.engines.spark.sessions import manager
    from kqlmagic_plus.sparkhunt import sparkhunt

    lake = args.lake or make_lake(args.out, args.days, args.events_per_day)
    quiet = lambda _m: None  # noqa: E731
    sparkhunt("", connect=args.master, lake=lake, say=quiet)
    spark = manager().current().spark
    names = args.only.split(",") if args.only else list(QUERIES)
    print(f"lake {lake}; {args.master}; median of {args.runs} runs after one warm-up, sides alternating "
          "(the machine may be loaded: compare ratios, not seconds)")
    print(f"\n{'query':<24}{'KQL s':>9}{'hand SQL s':>12}{'ratio':>8}{'rows':>8}  same")
    worst = 0.0
    for name in names:
        kql, sql, compare = QUERIES[name]

        def ours(kql=kql):
            return sparkhunt(kql, progress="none", no_cache=True, say=quiet).table

        def hand(sql=sql):
            return spark.sql(sql).toArrow()

        a, b = ours(), hand()
        if args.show_sql:
            r = sparkhunt(kql, progress="none", no_cache=True, say=quiet, dry_run=True)
            print(f"-- {name}\n{r.executed}\n")
        same = (_canon(a) == _canon(b)) if compare == "rows" else (a.num_rows == b.num_rows)
        ts_ours, ts_hand = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            ours()
            ts_ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            hand()
            ts_hand.append(time.perf_counter() - t)
        mo, mh = statistics.median(ts_ours), statistics.median(ts_hand)
        worst = max(worst, mo / mh)
        mark = ("=" if compare == "rows" else "#") if same else "DIFFERENT"
        print(f"{name:<24}{mo:>9.3f}{mh:>12.3f}{mo / mh:>8.2f}{a.num_rows:>8}  {mark}")
    print(f"\nworst ratio {worst:.2f}x (target <= 1.2x)")
    if args.plan:
        plan_table(spark, names, args.runs, quiet)
    manager().stop_all()


if __name__ == "__main__":
    main()
