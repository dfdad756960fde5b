"""Per-query overhead of ``%kql`` over the bare SDK call, on the loopback endpoints the tests use.

    python benchmarks/remote_overhead.py [--repeat 50] [--big-repeat 10] [--big-rows 100000] [--skip-adx]

Log Analytics: the loopback query API over TLS (tests/servers/loganalytics.py), in its own process. ``bare`` is
``LogsQueryClient.query_workspace`` with a ClientSecretCredential signed in at the loopback identity
provider (its token cached after the first call); ``%kql`` is ``%kql`` in a real IPython shell with
the same kind of connection string, through the magic, the API, the cache layer (off) and the
engine, up to the Result (rows in canonical Arrow; the DataFrame is built on first use, so neither
side pays for one). ADX: the same against ``duckdb-kql serve`` (through the tests' pass-through
proxy, which sends each reply in one write) with ``KustoClient.execute`` and the request options
%kql sends.

Why %kql beats the bare call on 100 k Log Analytics rows: LogsQueryClient builds a Python object per
row and parses every datetime with isodate; %kql takes the same client's 200 answer raw (the
operation's ``stream``/``cls`` keywords) and converts it to Arrow column-wise. Network settings
(proxies, CA bundle) are read once per connection instead of by requests on every call.

Runs alternate (bare, %kql, bare, ...) so drift on a shared machine hits both sides alike; medians
are reported, of wall time and of this process's CPU time (which the client's own work decides,
not the server or other load on the machine). Target: %kql within 10 % of the bare call.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

SMALL = "SigninLogs | take 10"
BIG = "Big"


def measure(label: str, bare, magic, repeat: int) -> dict:
    bare(), magic()  # warm: sign-in, connections, first-query costs on the server
    b, m, bc, mc = [], [], [], []
    for _ in range(repeat):
        for fn, wall, cpu in ((bare, b, bc), (magic, m, mc)):
            c, t = time.process_time(), time.perf_counter()
            fn()
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    mb, mm = statistics.median(b), statistics.median(m)
    cb, cm = statistics.median(bc), statistics.median(mc)
    return {"label": label, "bare": mb, "magic": mm, "over": mm - mb, "pct": 100 * (mm - mb) / mb, "n": repeat,
            "cpu_bare": cb, "cpu_magic": cm}


def loganalytics(args) -> list[dict]:
    import json
    import subprocess

    from azure.identity import ClientSecretCredential
    from azure.monitor.query import LogsQueryClient
    from IPython.core.interactiveshell import InteractiveShell
    from servers.fixtures import APP_ID, APP_SECRET, TENANT, WORKSPACE

    # The service runs in its own process, as a real one would: it must not compete with the
    # client for this interpreter's GIL.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(HERE, "..", "tests"), os.path.join(HERE, "..")]))
    proc = subprocess.Popen([sys.executable, "-m", "servers.loganalytics", "--big-rows", str(args.big_rows)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        info = json.loads(proc.stdout.readline())
        url = info["url"]
        os.environ["REQUESTS_CA_BUNDLE"] = info["ca_path"]
        cred = ClientSecretCredential(TENANT, APP_ID, APP_SECRET, authority=url, disable_instance_discovery=True)
        client = LogsQueryClient(cred, endpoint=url)
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "kqlmagic_plus")
        conn = (f"loganalytics://workspace='{WORKSPACE}';tenant='{TENANT}';clientid='{APP_ID}';"
                f"clientsecret='{APP_SECRET}';authority='{url}';endpoint='{url}';alias='bench'")
        shell.run_line_magic("kql", conn)

        def bare(q):
            return lambda: client.query_workspace(WORKSPACE, q, timespan=None)

        def magic(q):
            return lambda: shell.run_line_magic("kql", f"--conn bench {q}")

        assert len(magic(BIG)()) == args.big_rows == len(bare(BIG)().tables[0].rows)
        return [measure("Log Analytics, 10 rows", bare(SMALL), magic(SMALL), args.repeat),
                measure(f"Log Analytics, {args.big_rows:,} rows", bare(BIG), magic(BIG), args.big_repeat)]
    finally:
        proc.stdin.close()
        proc.wait(30)


def adx(args) -> list[dict]:
    import duckdb_kql
    import pyarrow as pa  # noqa: F401  (duckdb reads the Arrow table by name)
    from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
    from IPython.core.interactiveshell import InteractiveShell
    from servers.fixtures import big_table, signin_rows
    from servers.kusto import KustoProxy, KustoServe

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
    # Both sides through the tests' proxy: it writes each reply in one piece (duckdb-kql serve writes
    # headers and body apart, and Nagle + delayed ACK then add ~40 ms to some replies and not others).
    proxy = KustoProxy(srv.url).start()
    client = KustoClient(KustoConnectionStringBuilder.with_no_authentication(proxy.url))
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "kqlmagic_plus")
    shell.run_line_magic("kql", f"adx://cluster='{proxy.url}';database='{srv.name}';anonymous;alias='benchadx'")

    # The request %kql sends (same options).
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
        proxy.stop()
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
    print(f"{'query':<38} {'runs':>4} {'bare SDK':>10} {'%kql':>10} {'overhead':>10} {'':>7}   "
          f"{'CPU bare':>9} {'CPU %kql':>9} {'CPU over':>9}")
    for r in rows:
        print(f"{r['label']:<38} {r['n']:>4} {r['bare'] * 1000:>8.1f}ms {r['magic'] * 1000:>8.1f}ms "
              f"{r['over'] * 1000:>+8.1f}ms {r['pct']:>+6.1f}%   {r['cpu_bare'] * 1000:>7.1f}ms "
              f"{r['cpu_magic'] * 1000:>7.1f}ms {(r['cpu_magic'] - r['cpu_bare']) * 1000:>+7.2f}ms")


if __name__ == "__main__":
    main()
