"""Beacon hunt throughput: 1 M / 10 M / 100 M events in a Parquet lake, DuckDB vs local Spark.

    python benchmarks/hunts.py --sizes 1M,10M --engines duckdb,spark,spark-notebook
    python benchmarks/hunts.py --sizes 100M --engines duckdb --memory-limit 8GB

Each size's lake is written once (hourly Parquet blobs in the export layout, one day, with planted
5 min beacons) under --root and reused. Each run is a fresh subprocess, so its peak memory is its own:
the Python process (DuckDB runs inside it) and, for Spark, the JVM's peak resident set (VmHWM).
Prints one line per run and a JSON summary (--json FILE to keep it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

END_DATE = "2024-05-01"


def _size(text: str) -> int:
    t = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(t[-1], 1)
    return int(float(t[:-1] if t[-1] in "KMG" else t) * mult)


def ensure_lake(root: str, events: int, sources: int) -> dict:
    from kqlmagic_plus.hunts.traffic import write_parquet_lake

    path = os.path.join(root, f"lake_{events}_v2")  # v2: planted beacons on servers of their own
    marker = os.path.join(path, "_bench.json")
    if os.path.exists(marker):
        with open(marker) as f:
            return json.load(f)
    os.makedirs(path, exist_ok=True)
    started = time.perf_counter()
    info = write_parquet_lake(path, events, end_date=END_DATE, sources=sources, beacons=50)
    info["write_seconds"] = round(time.perf_counter() - started, 1)
    info["path"] = path
    info["bytes"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    with open(marker, "w") as f:
        json.dump(info, f)
    return info


def _jvm_peak_mb(spark) -> float | None:
    try:
        pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except Exception:
        return None
    return None


def run_one(engine: str, lake: str) -> dict:
    """One hunt run in this process; timing excludes Spark's start-up."""
    from kqlmagic_plus.hunts import run_hunt

    kw = {"compat": "notebook"} if engine == "spark-notebook" else {}
    session = None
    if engine.startswith("spark"):
        from pyspark.sql import SparkSession

        session = (SparkSession.builder.master("local[2]").config("spark.sql.session.timeZone", "UTC")
                   .config("spark.sql.shuffle.partitions", "8").config("spark.ui.enabled", "false")
                   .config("spark.driver.memory", os.environ.get("BENCH_SPARK_MEMORY", "8g")).getOrCreate())
        session.sparkContext.setLogLevel("ERROR")
    started = time.perf_counter()
    r = run_hunt("beacon", engine="spark" if session else "duckdb", session=session, lake=lake,
                 end_date=END_DATE, **kw)
    seconds = time.perf_counter() - started
    out = {"engine": engine, "seconds": round(seconds, 2), "events": r.stats.get("events"),
           "rows": r.row_count, "candidate_pairs": r.stats.get("candidate_pairs"),
           "gaps_scored": r.stats.get("gaps_scored"),
           "python_peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "flagged": sorted((x["SourceIP"], x["DestinationIP"]) for x in r.table.to_pylist())}
    if session is not None:
        out["jvm_peak_mb"] = _jvm_peak_mb(session)
        session.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1M,10M", help="event counts, e.g. 1M,10M,100M")
    p.add_argument("--engines", default="duckdb,spark,spark-notebook")
    p.add_argument("--root", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "kqlmp-hunt-bench"))
    p.add_argument("--sources", type=int, default=20_000, help="internal hosts in the generated traffic")
    p.add_argument("--memory-limit", help="DuckDB memory_limit (e.g. 8GB); it spills past it")
    p.add_argument("--json", help="write the summary here")
    p.add_argument("--run", help=argparse.SUPPRESS)
    p.add_argument("--lake", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run:
        print(json.dumps(run_one(args.run, args.lake)))
        return 0
    env = dict(os.environ)
    if args.memory_limit:
        env["KQLMAGIC_PLUS_DUCKDB_MEMORY"] = args.memory_limit
    here = os.path.dirname(os.path.abspath(__file__))
    env["PYTHONPATH"] = os.path.dirname(here) + os.pathsep + env.get("PYTHONPATH", "")
    summary = []
    for size in [_size(s) for s in args.sizes.split(",")]:
        info = ensure_lake(args.root, size, args.sources)
        print(f"lake {info['events']:,} events, {info['files']} files, {info['bytes'] / 1e9:.2f} GB "
              f"(written in {info.get('write_seconds', '?')} s)", flush=True)
        for engine in args.engines.split(","):
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--run", engine, "--lake",
                                   info["path"]], capture_output=True, text=True, env=env)
            if proc.returncode != 0:
                err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"  {engine:<15} FAILED: {err}", flush=True)
                summary.append({"engine": engine, "events": size, "error": err})
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            planted = {(b["SourceIP"], b["DestinationIP"]) for b in info["beacons"]}
            found = planted & {tuple(f) for f in res.pop("flagged")}
            res["planted_found"] = f"{len(found)}/{len(planted)}"
            res["events_per_s"] = round(res["events"] / res["seconds"]) if res["seconds"] else None
            summary.append(res)
            mem = f"python {res['python_peak_mb']:,.0f} MB" + (
                f", JVM {res['jvm_peak_mb']:,.0f} MB" if res.get("jvm_peak_mb") else "")
            print(f"  {engine:<15} {res['seconds']:>8.1f} s  {res['events_per_s']:>12,} events/s  peak {mem}  "
                  f"flagged {res['rows']} (planted found {res['planted_found']})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(summary, f, indent=1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
