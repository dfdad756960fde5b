"""A one-day query on a lake in Azure Storage (Azurite on loopback) vs the same lake on disk.

Writes (or reuses) a ``--days``-day CommonSecurityLog lake with ``kqlmagic-plus datagen``, uploads it to
Azurite (npm; ``.ci/run`` installs it into ``.ci/node``, or give ``--azurite PATH/azurite-blob``), then
times the same one-day KQL query (a day in the middle: its late-arrival margin is read too) through
the local engine:

- ``disk``: ``lake://DIR``, the folder (warm: the files' checks and views are kept between runs);
- ``azure cold``: ``lake://abfss://...`` with an empty local blob cache and a new connection each run:
  every blob of the window listed and read;
- ``azure warm``: the same connection again: the window's day folders listed, every blob read from
  its local copy (ETag unchanged).

Prints the median of ``--runs`` runs of each, the ratios to ``disk`` in the same run, and what each
asked of the storage account (listings, blob reads, bytes).

    python benchmarks/lake_azure.py                       # 30 days x 20,000 events/day, 5-minute blobs
    python benchmarks/lake_azure.py --days 7 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import kqlmagic_plus  # noqa: E402
from kqlmagic_plus.demo import datagen  # noqa: E402
from kqlmagic_plus.engines.registry import connections  # noqa: E402

QUERY = ("CommonSecurityLog | where TimeGenerated >= datetime({day}) and TimeGenerated < datetime({next}) "
         "| summarize Events = count(), Sources = dcount(SourceIP), Sent = sum(SentBytes) by DeviceVendor "
         "| order by DeviceVendor asc")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--events-per-day", type=int, default=20_000)
    p.add_argument("--end-date", default="2024-03-30")
    p.add_argument("--layout", choices=("5m", "1h"), default="5m")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", default=os.path.join(HERE, "out", "lake_azure"), help="where the lake is written")
    p.add_argument("--azurite", help="the azurite-blob executable (default: .ci/node, then PATH)")
    args = p.parse_args(argv)
    if args.azurite:
        os.environ["AZURITE_BIN"] = args.azurite
    from servers.azurite import ACCOUNT, KEY, Azurite, upload_lake

    lake_dir = os.path.join(args.out, f"lake-{args.days}d-{args.events_per_day}-{args.layout}")
    if not os.path.exists(os.path.join(lake_dir, "_truth.json")):
        s = datagen.generate(lake_dir, days=args.days, end_date=args.end_date, events_per_day=args.events_per_day,
                             seed=7, tables="CommonSecurityLog", layout=args.layout, overwrite=True)
        print(f"wrote {s.total_rows:,} events, {s.bytes / 1e6:,.1f} MB in {s.elapsed:.0f} s", file=sys.stderr)
    end = date.fromisoformat(args.end_date)
    day = end - timedelta(days=args.days // 2)
    query = QUERY.format(day=day.isoformat(), next=(day + timedelta(days=1)).isoformat())

    work = tempfile.mkdtemp(prefix="lake_azure_")
    az = Azurite(os.path.join(work, "azurite")).start()
    try:
        t = time.perf_counter()
        counts = upload_lake(az.service(), lake_dir)
        print(f"uploaded {sum(counts.values()):,} blobs in {time.perf_counter() - t:.0f} s", file=sys.stderr)
        os.environ["KQLMP_BENCH_KEY"] = KEY
        os.environ["KQLMAGIC_PLUS_LAKE_PROGRESS"] = "off"
        cache = os.path.join(work, "blobs")
        remote = (f"lake://abfss://am-commonsecuritylog@{ACCOUNT}.dfs.core.windows.net/;accountkey=$KQLMP_BENCH_KEY;"
                  f"endpoint='{az.url}';cache='{cache}'")
        disk = f"lake://{lake_dir}"

        want = kqlmagic_plus.kql(query, conn=disk)  # the first run checks every file: not timed
        rows: dict[str, list[float]] = {"disk": [], "azure cold": [], "azure warm": []}
        asked: dict[str, dict] = {}
        for _ in range(args.runs):
            rows["disk"].append(_timed(query, disk)[0])
        for _ in range(args.runs):
            shutil.rmtree(cache, ignore_errors=True)
            connections().close_all()
            took, r = _timed(query, remote)
            assert r.df.equals(want.df), "the lake in Azurite answered differently from the folder"
            rows["azure cold"].append(took)
            asked["azure cold"] = r.stats["lake"]["storage"]
        for _ in range(args.runs):
            took, r = _timed(query, remote)
            assert r.df.equals(want.df)
            rows["azure warm"].append(took)
            asked["azure warm"] = r.stats["lake"]["storage"]
    finally:
        az.stop()
        shutil.rmtree(work, ignore_errors=True)

    base = statistics.median(rows["disk"])
    files = want.stats["lake"]["files_read"]
    print(f"\none-day query ({day}) on a {args.days}-day lake, {args.events_per_day:,} events/day, {args.layout} "
          f"blobs; {files:,} blobs in the window; median of {args.runs} runs")
    print(f"{'where':<12} {'median s':>9} {'vs disk':>8}  {'listings':>8} {'blob reads':>10} {'MB read':>8} "
          f"{'from copy':>9}")
    for name, times in rows.items():
        med = statistics.median(times)
        a = asked.get(name)
        extra = (f"{a['lists']:>8,} {a['gets']:>10,} {a['bytes_read'] / 1e6:>8,.1f} {a['cache_hits']:>9,}" if a
                 else f"{'-':>8} {'-':>10} {'-':>8} {'-':>9}")
        print(f"{name:<12} {med:>9.3f} {med / base:>7.2f}x  {extra}")
    print(json.dumps({k: [round(x, 4) for x in v] for k, v in rows.items()}), file=sys.stderr)
    return 0


def _timed(query: str, conn: str):
    t = time.perf_counter()
    r = kqlmagic_plus.kql(query, conn=conn)
    return time.perf_counter() - t, r


if __name__ == "__main__":
    sys.exit(main())
