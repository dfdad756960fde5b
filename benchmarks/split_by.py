"""``--split-by``: a 28-day window as 28 one-day slices, against the loopback Log Analytics query API (TLS,
the real azure-monitor-query client), with a service latency per query.

    python benchmarks/split_by.py [--days 28] [--latency 0.25] [--repeat 3]

Rows: one unsliced query (the baseline a capped answer cannot use), the slices one after the other (how
msticpy's ``split_query_by`` runs them), and ``--split-by`` with its bounded concurrency. Each query waits
``--latency`` seconds at the server (an injected delay, as a busy workspace answers), so the table shows what
concurrency buys when the service's time dominates. Medians of wall time; ratios are against the sequential
slices of the same run (the machine may be loaded by other work: read the ratios, not the seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

QUERY = "Events | summarize n = count(), total = sum(Bytes), latest = max(TimeGenerated) by User | top 5 by total desc"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--latency", type=float, default=0.25)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    import pyarrow as pa
    from servers import Fault, LoopbackLogAnalytics
    from servers.fixtures import APP_ID, APP_SECRET, TENANT, WORKSPACE

    import kqlmagic_plus as kp
    from kqlmagic_plus.engines import slicing

    srv = LoopbackLogAnalytics().start()
    start = datetime(2024, 5, 1, tzinfo=UTC)
    hours = args.days * 24
    srv.load(WORKSPACE, Events=pa.table({
        "TimeGenerated": pa.array([start + timedelta(hours=h) for h in range(hours)], pa.timestamp("us", tz="UTC")),
        "User": [f"user{h % 17}" for h in range(hours)],
        "Bytes": pa.array([(h * 7919) % 10_000 for h in range(hours)], pa.int64()),
    }))
    srv.register_app(APP_ID, secret=APP_SECRET)
    os.environ["REQUESTS_CA_BUNDLE"] = srv.ca_path
    conn = (f"loganalytics://workspace='{WORKSPACE}';tenant='{TENANT}';clientid='{APP_ID}';"
            f"clientsecret='{APP_SECRET}';authority='{srv.url}';endpoint='{srv.url}'")
    window = {"start": start.isoformat(), "end": (start + timedelta(days=args.days)).isoformat()}
    kp.kql("Events | count", conn=conn, **window)  # sign-in, first-query costs

    def one(split: bool, concurrency: int) -> tuple[float, object]:
        slicing.CONCURRENCY = concurrency
        srv.inject(*[Fault("delay", seconds=args.latency)] * (args.days if split else 1))
        t = time.perf_counter()
        r = kp.kql(QUERY, conn=conn, split_by="1d" if split else None, **window)
        return time.perf_counter() - t, r

    runs: dict[str, list[float]] = {"unsliced (1 query)": [], "sequential slices (msticpy's way)": [],
                                    f"--split-by 1d ({4} at a time)": []}
    answers = {}
    for _ in range(args.repeat):  # alternate, so drift on a shared machine hits every row alike
        for label, split, conc in (("unsliced (1 query)", False, 1), ("sequential slices (msticpy's way)", True, 1),
                                   (f"--split-by 1d ({4} at a time)", True, 4)):
            seconds, r = one(split, conc)
            runs[label].append(seconds)
            answers[label] = r.df.to_dict("list")
    srv.stop()
    same = len({repr(a) for a in answers.values()}) == 1
    base = statistics.median(runs["sequential slices (msticpy's way)"])
    print(f"{args.days} days, {hours} rows, {args.latency:g} s service latency per query, {args.repeat} runs each")
    print(f"{'how':38} {'median s':>9} {'vs sequential':>14}")
    for label, values in runs.items():
        m = statistics.median(values)
        print(f"{label:38} {m:9.2f} {base / m:13.2f}x")
    print(f"same rows from all three: {same}")


if __name__ == "__main__":
    main()
