"""Time pruning and scan speed over the exported lake, JSON and Parquet.

Writes (or reuses) a lake of ``--days`` days of CommonSecurityLog, ``--events-per-day`` events a
day, in the export layout, plus one-day lakes; then times, on DuckDB through
:meth:`kqlmagic_plus.lake.Lake.register_duckdb`:

- a one-day KQL query (summarize over the day, window from its ``between`` filter) over the long lake
  and over a one-day lake: with pruning the two should be within 1.2x. Measured for the lake's last
  day (a window at the lake's end, as ``ago(1d)`` is) and for a day in the middle, where the late-data
  margin (folders up to 2 days 1 hour after the window can hold its rows) is read too;
- a full scan of the long lake, rows/s, JSON vs Parquet.

    python benchmarks/lake.py                                # 30 days x 1 M events/day (~20 GB of JSON)
    python benchmarks/lake.py --events-per-day 100000        # a tenth of that
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date, datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from kqlmagic_plus.demo import datagen
from kqlmagic_plus.lake import Lake, window_from_query

TABLE = "CommonSecurityLog"
QUERY = ("CommonSecurityLog | where TimeGenerated >= datetime({day}) and TimeGenerated < datetime({next}) "
         "| summarize Events = count(), Sources = dcount(SourceIP), Sent = sum(SentBytes) by DeviceVendor")
SCAN = "SELECT count(*), count(DISTINCT DestinationIP), sum(SentBytes), sum(ReceivedBytes) FROM CommonSecurityLog"


def ensure_lake(path: str, *, days: int, end: date, per_day: int, seed: int, fmt: str) -> tuple[float | None, int]:
    """Generate the lake unless one with the same parameters is there; (seconds taken or None, rows)."""
    truth = os.path.join(path, "_truth.json")
    if os.path.exists(truth):
        with open(truth, encoding="utf-8") as f:
            g = json.load(f)["generator"]
        if (g["days"], g["events_per_day"], g["seed"], g["format"], g["end"][:10]) == (
                days, per_day, seed, fmt, (end + timedelta(days=1)).isoformat()):
            return None, days * per_day
    summary = datagen.generate(path, days=days, end_date=end, events_per_day=per_day, seed=seed, tables=TABLE,
                               fmt=fmt, overwrite=True)
    return summary.elapsed, summary.total_rows


def connect(threads: int):
    import duckdb_kql

    con = duckdb_kql.connect(":memory:")
    con.execute(f"SET threads = {threads}")
    return con


def run_query(lake: Lake, con, kql: str) -> tuple[float, object, list]:
    """Register the views for the query's window, translate and run it: (seconds, report, rows)."""
    import duckdb_kql

    started = time.perf_counter()
    report = lake.register_duckdb(con, window_from_query(kql), tables=[TABLE])
    sql = duckdb_kql.to_sql(kql)
    rows = con.execute(str(sql)).fetchall()
    return time.perf_counter() - started, report, rows


def timed(lake_path: str, kql: str, repeat: int, threads: int) -> dict:
    lake = Lake(lake_path)
    con = connect(threads)
    first, report, rows = run_query(lake, con, kql)  # checks every file it reads, once
    warm = [run_query(lake, con, kql)[0] for _ in range(repeat)]
    t = report.tables[TABLE]
    return {"first": first, "warm": statistics.median(warm), "read": t.files_read, "total": t.files_total,
            "rows": sum(r[1] for r in rows)}


def full_scan(lake_path: str, repeat: int, threads: int) -> dict:
    lake = Lake(lake_path)
    con = connect(threads)
    started = time.perf_counter()
    report = lake.register_duckdb(con, None, tables=[TABLE])
    register = time.perf_counter() - started
    times = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = con.execute(SCAN).fetchall()[0][0]
        times.append(time.perf_counter() - started)
    best = min(times)
    return {"register": register, "scan": best, "rows": rows, "rows_per_s": rows / best,
            "files": report.tables[TABLE].files_read}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--events-per-day", type=int, default=1_000_000)
    p.add_argument("--end-date", default="2024-03-30")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--formats", default="json,parquet")
    p.add_argument("--out", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "kqlmp-lake-bench"))
    p.add_argument("--repeat", type=int, default=5, help="warm runs per query (median reported)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    end = date.fromisoformat(args.end_date)
    mid = end - timedelta(days=args.days // 2)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]

    print(f"lake benchmark: {args.days} days x {args.events_per_day:,} {TABLE} events/day, formats {formats}, "
          f"DuckDB threads {args.threads}, data in {args.out}")
    gen_lines = []
    results = []
    scans = []
    for fmt in formats:
        long_path = os.path.join(args.out, f"{fmt}-{args.days}d")
        secs, rows = ensure_lake(long_path, days=args.days, end=end, per_day=args.events_per_day, seed=args.seed,
                                 fmt=fmt)
        if secs is not None:
            gen_lines.append(f"  datagen {fmt:<7} {args.days} days: {rows:,} rows in {secs:,.1f} s "
                             f"({rows / secs:,.0f} rows/s)")
        for label, day in (("last day", end), ("middle day", mid)):
            one_path = os.path.join(args.out, f"{fmt}-1d-{day.isoformat()}")
            secs, rows = ensure_lake(one_path, days=1, end=day, per_day=args.events_per_day, seed=args.seed,
                                     fmt=fmt)
            if secs is not None:
                gen_lines.append(f"  datagen {fmt:<7} 1 day:  {rows:,} rows in {secs:,.1f} s "
                                 f"({rows / secs:,.0f} rows/s)")
            kql = QUERY.format(day=day.isoformat(), next=(day + timedelta(days=1)).isoformat())
            long = timed(long_path, kql, args.repeat, args.threads)
            short = timed(one_path, kql, args.repeat, args.threads)
            results.append((fmt, label, day, long, short))
        scans.append((fmt, full_scan(long_path, 1, args.threads)))

    if gen_lines:
        print("\n".join(gen_lines))
    print()
    print("one-day query: " + QUERY.format(day="D", next="D+1"))
    head = (f"{'format':<8}{'window':<22}{'lake':<9}{'files read/total':>18}{'rows':>12}"
            f"{'first s':>9}{'warm s':>9}{'ratio':>7}")
    print(head)
    print("-" * len(head))
    for fmt, label, day, long, short in results:
        ratio = long["warm"] / short["warm"]
        for name, r in ((f"{args.days} days", long), ("1 day", short)):
            files = f"{r['read']:,}/{r['total']:,}"
            cell = f"{ratio:>6.2f}x" if name == "1 day" else ""
            print(f"{fmt:<8}{label + ' ' + day.isoformat():<22}{name:<9}{files:>18}{r['rows']:>12,}"
                  f"{r['first']:>9.2f}{r['warm']:>9.2f}{cell:>7}")
    print()
    print(f"full scan of the {args.days}-day lake: {SCAN}")
    for fmt, s in scans:
        print(f"  {fmt:<8} {s['rows']:>12,} rows, {s['files']:,} files: register {s['register']:.2f} s, "
              f"scan {s['scan']:.2f} s = {s['rows_per_s']:,.0f} rows/s")
    print(f"\nfinished {datetime.now():%Y-%m-%d %H:%M}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
