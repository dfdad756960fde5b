"""Per-query overhead of ``%kql`` over the bare SDK call, on the loopback endpoints the tests use.

    python benchmarks/remote_overhead.py [--repeat 50] [--big-repeat 10] [--big-rows 100000] [--skip-adx]

Log Analytics: the loopback query API over TLS (tests/servers/loganalytics.py). ``bare`` is
``LogsQueryClient.query_workspace`` with a ClientSecretCredential signed in at the loopback identity
provider (its token cached after the first call); ``%kql`` is ``%kql`` in a real IPython shell with
the same kind of connection string, through the magic, the API, the cache layer (off) and the
engine, up to the Result (rows in canonical Arrow; the DataFrame is built on first use, so neither
side pays for one). ADX: the same against ``duckdb-kql serve`` with ``KustoClient.execute``.

Runs alternate (bare, %kql, bare, ...) so drift on a shared machine hits both sides alike; medians
are reported. Target: %kql within 10 % of the bare call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

SMALL = "SigninLogs | take 10"
BIG = "Big"


def big_table(rows: int):
    import pyarrow as pa

    now = datetime.now(UTC)
    return pa.table({
        "TimeGenerated": pa.array([now - timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")),
        "UserPrincipalName": [f"user{i % 977}@contoso.example" for i in range(rows)],
        "IPAddress": [f"10.{i % 256}.{i // 256 % 256}.{i % 7}" for i in range(rows)],
        "ResultType": [i % 5 for i in range(rows)],
        "Latency": [i * 0.25 for i in range(rows)],
    })


def measure(label: str, bare, magic, repeat: int) -> dict:
    bare(), magic()  # warm: sign-in, connections, first-query costs on the server
    b, m = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        bare()
        b.append(time.perf_counter() - t)
        t = time.perf_counter()
        magic()
        m.append(time.perf_counter() - t)
    mb, mm = statistics.median(b), statistics.median(m)
    return {"label": label, "bare": mb, "magic": mm, "over": mm - mb, "pct": 100 * (mm - mb) / mb, "n": repeat}


def loganalytics(args) -> list[dict]:
    from azure.identity import ClientSecretCredential
    from azure.monitor.query import LogsQueryClient
    from IPython.core.interactiveshell import InteractiveShell
    from servers.fixtures import APP_ID, APP_SECRET, TENANT, WORKSPACE, signin_rows
    from servers.loganalytics import LoopbackLogAnalytics

    srv = LoopbackLogAnalytics().start()
    os.environ["REQUESTS_CA_BUNDLE"] = srv.ca_path
    srv.load(WORKSPACE, SigninLogs=signin_rows(datetime.now(UTC)), Big=big_table(args.big_rows))
    srv.register_app(APP_ID, secret=APP_SECRET)
    cred = ClientSecretCredential(TENANT, APP_ID, APP_SECRET, authority=srv.url, disable_instance_discovery=True)
    client = LogsQueryClient(cred, endpoint=srv.url)
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kqlmagic_plus")
    conn = (f"loganalytics://workspace='{WORKSPACE}';tenant='{TENANT}';clientid='{APP_ID}';"
            f"clientsecret='{APP_SECRET}';authority='{srv.url}';endpoint='{srv.url}';alias='bench'")
    shell.run_line_magic("kql", conn)

    def bare(q):
        return lambda: client.query_workspace(WORKSPACE, q, timespan=None)

    def magic(q):
        return lambda: shell.run_line_magic("kql", f"--conn bench {q}")

    assert len(magic(BIG)()) == args.big_rows == len(bare(BIG)().tables[0].rows)
    out = [measure("Log Analytics, 10 rows", bare(SMALL), magic(SMALL), args.repeat),
           measure(f"Log Analytics, {args.big_rows:,} rows", bare(BIG), magic(BIG), args.big_repeat)]
    srv.stop()
    return out


def adx(args) -> list[dict]:
    import duckdb_kql
    import pyarrow as pa  # noqa: F401  (duckdb reads the Arrow table by name)
    from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
    from IPython.core.interactiveshell import InteractiveShell
    from servers.fixtures import signin_rows
    from servers.kusto import KustoServe

    folder = tempfile.mkdtemp(prefix="kqlmp-bench-")
    path = os.path.join(folder, "bench.duckdb")
    con = duckdb_kql.connect(path)
    small = signin_rows(datetime.now(UTC))  # noqa: F841
    big = big_table(args.big_rows)  # noqa: F841
    # Plain TIMESTAMP: duckdb-kql serve needs pytz (not installed) to send a TIMESTAMPTZ column.
    for name in ("small", "big"):
        table = "SigninLogs" if name == "small" else "Big"
        con.execute(f"CREATE TABLE {table} AS SELECT * REPLACE (timezone('UTC', TimeGenerated) AS TimeGenerated) "
                    f"FROM {name}")
    con.close()
    srv = KustoServe(path).start()
    client = KustoClient(KustoConnectionStringBuilder.with_no_authentication(srv.url))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kqlmagic_plus")
    shell.run_line_magic("kql", f"adx://cluster='{srv.url}';database='{srv.name}';anonymous;alias='benchadx'")

    # The request %kql sends (same options, same size): duckdb-kql serve writes headers and body in
    # separate packets, and request size decides whether Nagle + delayed ACK add ~40 ms to a reply.
    crp = ClientRequestProperties()
    crp.application = "kqlmagic_plus"
    crp.set_option("deferpartialqueryfailures", True)

    def bare(q):
        return lambda: client.execute(srv.name, q, crp)

    def magic(q):
        return lambda: shell.run_line_magic("kql", f"--conn benchadx {q}")

    try:
        return [measure("ADX (duckdb-kql serve), 10 rows", bare(SMALL), magic(SMALL), args.repeat),
                measure(f"ADX (duckdb-kql serve), {args.big_rows:,} rows", bare(BIG), magic(BIG), args.big_repeat)]
    finally:
        srv.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--big-repeat", type=int, default=10)
    p.add_argument("--big-rows", type=int, default=100_000)
    p.add_argument("--skip-adx", action="store_true")
    args = p.parse_args()
    rows = loganalytics(args)
    if not args.skip_adx:
        rows += adx(args)
    print(f"{'query':<38} {'runs':>4} {'bare SDK':>10} {'%kql':>10} {'overhead':>10} {'':>7}")
    for r in rows:
        print(f"{r['label']:<38} {r['n']:>4} {r['bare'] * 1000:>8.1f}ms {r['magic'] * 1000:>8.1f}ms "
              f"{r['over'] * 1000:>+8.1f}ms {r['pct']:>+6.1f}%")


if __name__ == "__main__":
    main()
