"""The magic end to end vs hand-written DuckDB SQL, on 5 M synthetic CommonSecurityLog rows.

    python benchmarks/local_engine.py [--rows 5000000] [--runs 7]

Both sides read the same DuckDB database file and produce an Arrow table; the magic side is a real
IPython shell running `%kql` (parse, translate, execute, canonicalise, Result). Prints medians and
the ratio per query (target: <= 1.2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

QUERIES = {
    "bin+count/sum/dcount": (
        'CommonSecurityLog | where DeviceVendor == "Fortinet" '
        "| summarize n = count(), bytes = sum(SentBytes), dsts = dcount(DestinationIP) by bin(TimeGenerated, 1h)",
        "SELECT time_bucket(INTERVAL '1 hour', TimeGenerated) AS TimeGenerated, count(*) AS n, "
        "sum(SentBytes) AS bytes, count(DISTINCT DestinationIP) AS dsts FROM CommonSecurityLog "
        "WHERE DeviceVendor = 'Fortinet' GROUP BY 1",
    ),
    "join": (
        "CommonSecurityLog | where DestinationPort == 443 | summarize n = count() by SourceIP "
        "| join kind=inner (Assets) on $left.SourceIP == $right.Ip | summarize total = sum(n) by Owner",
        "SELECT a.Owner, sum(c.n) AS total FROM (SELECT SourceIP, count(*) AS n FROM CommonSecurityLog "
        "WHERE DestinationPort = 443 GROUP BY SourceIP) c JOIN Assets a ON c.SourceIP = a.Ip GROUP BY a.Owner",
    ),
    "top": (
        "CommonSecurityLog | top 100 by SentBytes desc",
        "SELECT * FROM CommonSecurityLog ORDER BY SentBytes DESC NULLS LAST LIMIT 100",
    ),
}


def build(path: str, rows: int) -> None:
    import duckdb

    con = duckdb.connect(path)
    con.execute("SET TimeZone='UTC'")
    con.execute(f"""CREATE TABLE CommonSecurityLog AS SELECT
        TIMESTAMPTZ '2024-05-01 00:00:00+00' + (i * INTERVAL '17 millisecond') AS TimeGenerated,
        '10.0.' || (i % 250) || '.' || (i % 13) AS SourceIP,
        '203.0.' || (i % 97) || '.' || (i % 211) AS DestinationIP,
        (i % 5)::BIGINT * 100 + 43 AS DestinationPort,
        CASE WHEN i % 3 = 0 THEN 'Fortinet' ELSE 'Palo Alto Networks' END AS DeviceVendor,
        (hash(i) % 100000)::BIGINT AS SentBytes, (hash(i + 1) % 5000)::BIGINT AS ReceivedBytes
        FROM range({rows}) t(i)""")
    con.execute("""CREATE TABLE Assets AS SELECT DISTINCT '10.0.' || (i % 250) || '.' || (i % 13) AS Ip,
        'team' || (i % 9) AS Owner FROM range(3250) t(i)""")
    con.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    from IPython.core.interactiveshell import InteractiveShell

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.duckdb")
        t0 = time.perf_counter()
        build(path, args.rows)
        print(f"built {args.rows:,} rows in {time.perf_counter() - t0:.1f} s")
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "kqlmagic_plus")
        ip.run_line_magic("kql", f"--conn local://db='{path}'")
        print(f"\n{'query':<24}{'%kql med s':>13}{'SQL med s':>13}{'ratio':>8}{'first parse ms':>16}")
        for name, (kql, sql) in QUERIES.items():
            magic_t, sql_t = [], []
            import duckdb_kql

            from kqlmagic_plus.engines.registry import connections

            schema = connections().resolve(None)[1].schema()
            t = time.perf_counter()
            duckdb_kql.to_sql(kql, schema=schema)
            parse = time.perf_counter() - t  # paid once per distinct query text (then cached)
            ip.run_line_magic("kql", kql)  # warm-up: both sides then read a warm buffer cache
            for _ in range(args.runs):
                t = time.perf_counter()
                res = ip.run_line_magic("kql", kql)
                magic_t.append(time.perf_counter() - t)
            rows = res.row_count
            # The hand-written side uses the engine's own connection (a DuckDB file admits one writer).
            con = connections().resolve(None)[1].con
            for _ in range(args.runs):
                t = time.perf_counter()
                tbl = con.sql(sql).to_arrow_table()
                sql_t.append(time.perf_counter() - t)
            assert tbl.num_rows == rows, (name, tbl.num_rows, rows)
            m, s = statistics.median(magic_t), statistics.median(sql_t)
            print(f"{name:<24}{m:>13.4f}{s:>13.4f}{m / s:>8.2f}{parse * 1000:>16.1f}")


if __name__ == "__main__":
    main()
