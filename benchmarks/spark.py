"""Full scan + aggregation of a generated lake: %sparkhunt on local Spark vs the local DuckDB engine vs the
Sentinel notebook's way of reading the lake on Spark (one ``spark.read.json`` per day folder, inferred schema).

    python benchmarks/spark.py --days 30 --events-per-day 200000 --runs 3

Prints one table per lake format (JSON as exported, and Parquet): median seconds over --runs warm runs, rows/s,
and each path's time as a ratio of %sparkhunt's, all measured in the same run. The first (cold) run of each path
is reported separately: it includes Spark's file listing and, for the notebook way, schema inference.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time
from datetime import date, timedelta

QUERY = ("CommonSecurityLog | summarize Events = count(), Sent = sum(SentBytes), Sources = dcount(SourceIP) "
         "by DeviceVendor, bin(TimeGenerated, 1d)")


def make_lake(root: str, days: int, per_day: int, fmt: str, end: date) -> str:
    from kqlmagic_plus.demo.datagen import generate

    path = os.path.join(root, f"lake-{fmt}-{days}d-{per_day}")
    if not os.path.exists(os.path.join(path, "_truth.json")):
        print(f"generating {path} ...", file=sys.stderr)
        generate(path, days=days, end_date=end.isoformat(), events_per_day=per_day, seed=7, fmt=fmt, layout="1h",
                 tables=["CommonSecurityLog"])
    return path


def timed(fn, runs: int) -> tuple[float, float, object]:
    t = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t
    warm = []
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        warm.append(time.perf_counter() - t)
    return cold, statistics.median(warm), out


def notebook_way(spark, lake: str, days: int, end: date, fmt: str):
    """What the Sentinel notebook does: a read per day folder, schema inferred, unioned, then aggregated."""
    from pyspark.sql import functions as F

    container = glob.glob(os.path.join(lake, "am-commonsecuritylog", "WorkspaceResourceId=*"))[0]
    ws = glob.glob(os.path.join(container, "**", "workspaces", "*"), recursive=True)[0]
    frames = []
    for i in range(days):
        d = end - timedelta(days=days - 1 - i)
        folder = os.path.join(ws, f"y={d.year}", f"m={d.month:02d}", f"d={d.day:02d}")
        pattern = os.path.join(folder, "h=*", "m=*", "*.json" if fmt == "json" else "*.parquet")
        frames.append(spark.read.json(pattern) if fmt == "json" else spark.read.parquet(pattern))
    df = frames[0]
    for f in frames[1:]:
        df = df.unionByName(f, allowMissingColumns=True)
    agg = (df.withColumn("day", F.date_trunc("day", F.to_timestamp("TimeGenerated")))
           .groupBy("DeviceVendor", "day")
           .agg(F.count("*").alias("Events"), F.sum("SentBytes").alias("Sent"),
                F.countDistinct("SourceIP").alias("Sources")))
    return agg.toPandas()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--events-per-day", type=int, default=200_000, help="over the one table generated")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default="/tmp/kqlmp-spark-bench")
    ap.add_argument("--formats", default="json,parquet")
    args = ap.parse_args()

    import kqlmagic_plus
    from kqlmagic_plus.engines.spark.sessions import manager
    from kqlmagic_plus.sparkhunt import sparkhunt

    end = date(2024, 5, 1)
    start = end - timedelta(days=args.days - 1)
    window = dict(start=f"{start.isoformat()}T00:00:00Z", end=f"{(end + timedelta(days=1)).isoformat()}T00:00:00Z")
    spark = None
    for fmt in args.formats.split(","):
        lake = make_lake(args.out, args.days, args.events_per_day, fmt, end)
        rows_total = None

        def on_spark(lake=lake):
            return sparkhunt(QUERY, connect="local[2]", lake=lake, progress="none", no_cache=True,
                             say=lambda _m: None, **window)

        def on_duckdb(lake=lake):
            return kqlmagic_plus.kql(QUERY, conn=f"lake://{lake}", no_cache=True, **window)

        results = {}
        cold, warm, out = timed(on_spark, args.runs)
        results["%sparkhunt (local Spark, lake views)"] = (cold, warm, out)
        spark = manager().current().spark
        rows_total = int(out.df["Events"].sum())
        results["%kql (local DuckDB engine)"] = timed(on_duckdb, args.runs)
        results["notebook way (read per day, inferred)"] = timed(
            lambda lake=lake, fmt=fmt, spark=spark: notebook_way(spark, lake, args.days, end, fmt), args.runs)

        nb_rows = int(results["notebook way (read per day, inferred)"][2]["Events"].sum())
        duck_rows = int(results["%kql (local DuckDB engine)"][2].df["Events"].sum())
        base = results["%sparkhunt (local Spark, lake views)"][1]
        print(f"\n{fmt.upper()} lake: {args.days} days, {rows_total:,} CommonSecurityLog rows "
              f"(DuckDB counted {duck_rows:,}, notebook way {nb_rows:,}); median of {args.runs} warm runs")
        print(f"{'path':<42} {'cold s':>8} {'warm s':>8} {'rows/s':>12} {'vs %sparkhunt':>14}")
        for name, (cold, warm, _) in results.items():
            print(f"{name:<42} {cold:>8.2f} {warm:>8.2f} {rows_total / warm:>12,.0f} {warm / base:>13.2f}x")


if __name__ == "__main__":
    main()
