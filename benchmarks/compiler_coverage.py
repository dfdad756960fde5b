"""KQL compiler coverage on real hunting queries (the M365 Defender hunting corpus, 364 queries) with the real
Log Analytics table schemas: how many parse, compile, and run against empty tables, on Spark and DuckDB, next to
duckdb-kql alone; and the local engine's coverage with its fallback (duckdb-kql first, our DuckDB emission when
duckdb-kql refuses or DuckDB rejects its SQL). Also the compile time per query.

    python benchmarks/compiler_coverage.py                 # all of it (starts a local Spark)
    python benchmarks/compiler_coverage.py --no-spark      # DuckDB only
    python benchmarks/compiler_coverage.py --reasons 25    # the most common refusals, to know what to build next
    python benchmarks/compiler_coverage.py --queries DIR   # another corpus: every *.kql file and every YAML
                                                           # file's `query:` under DIR (Sentinel rules, hunting
                                                           # queries); rates over the queries whose tables the
                                                           # schemas know

The Defender tables' ``Timestamp`` column is added to the Defender advanced-hunting tables (``DEFENDER_TABLES``)
whose schema has ``TimeGenerated`` but no ``Timestamp`` (Sentinel's copies of them carry both; the corpus queries
use ``Timestamp``); no other table gets it. ``_ItemId`` (string), a standard column of every Log Analytics table
as ``_ResourceId`` and ``_BilledSize`` are, is added to each table whose schema lacks it (``TenantId`` is not
universal and is not added).

A query that calls an ASIM parser (``imDns(...)``, ``_Im_Dns(...)``, ``ASimDns(...)``, ``vimDnsAzureFirewall``...:
functions deployed in a workspace, which no schema file describes) counts as "schema unknown", as a query reading
an unknown table or function by its bare name does.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import time

SHARED = os.environ.get("KQLMP_SHARED", os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
DUCK_TYPES = {"bool": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "real": "DOUBLE", "decimal": "DECIMAL(38,18)",
              "string": "VARCHAR", "guid": "VARCHAR", "datetime": "TIMESTAMP", "timespan": "INTERVAL",
              "dynamic": "JSON"}


# The Microsoft 365 Defender advanced-hunting tables that Sentinel copies: in Defender they carry ``Timestamp``,
# in Log Analytics ``TimeGenerated`` as well. Only these get the extra column: on any other table it would be
# invented, and a query's own `extend timestamp = ...` would then clash with it (Spark's names are
# case-insensitive).
DEFENDER_TABLES = frozenset({
    "AlertEvidence", "AlertInfo", "CloudAppEvents", "DeviceEvents", "DeviceFileCertificateInfo", "DeviceFileEvents",
    "DeviceImageLoadEvents", "DeviceInfo", "DeviceLogonEvents", "DeviceNetworkEvents", "DeviceNetworkInfo",
    "DeviceProcessEvents", "DeviceRegistryEvents", "DeviceTvmSecureConfigurationAssessment",
    "DeviceTvmSoftwareInventory", "DeviceTvmSoftwareVulnerabilities", "EmailAttachmentInfo", "EmailEvents",
    "EmailPostDeliveryEvents", "EmailUrlInfo", "IdentityDirectoryEvents", "IdentityInfo", "IdentityLogonEvents",
    "IdentityQueryEvents", "UrlClickEvents",
})


def load(shared: str) -> tuple[list[dict], dict[str, list[tuple[str, str]]]]:
    with open(os.path.join(shared, "data", "la_table_schemas.json"), encoding="utf-8") as f:
        tables = json.load(f)["tables"]
    schema: dict[str, list[tuple[str, str]]] = {}
    for name, cols in tables.items():
        cols = [(c, t) for c, t in cols]
        names = {c.lower() for c, _ in cols}
        if name in DEFENDER_TABLES and "timegenerated" in names and "timestamp" not in names:
            cols.append(("Timestamp", "datetime"))
        if "_itemid" not in names:
            cols.append(("_ItemId", "string"))  # every Log Analytics table has it; the file lists it on some
        schema[name] = cols
    with open(os.path.join(shared, "corpus", "m365d_hunting_queries.jsonl"), encoding="utf-8") as f:
        queries = [json.loads(line) for line in f if line.strip()]
    return [dict(q, id=q["id"] if len(ps) == 1 else f"{q['id']}#{k + 1}", query=p)
            for q in queries for ps in [split_queries(q["query"])] for k, p in enumerate(ps)], schema


def load_dir(folder: str) -> list[dict]:
    """Every *.kql file's text and every YAML file's ``query`` under *folder*, with its path as the id."""
    import yaml

    out = []
    for root, _, files in os.walk(folder):
        for fname in sorted(files):
            path = os.path.join(root, fname)
            rel = os.path.relpath(path, folder)
            try:
                if fname.lower().endswith((".kql", ".csl")):
                    with open(path, encoding="utf-8-sig") as f:
                        text = f.read()
                elif fname.lower().endswith((".yaml", ".yml")):
                    with open(path, encoding="utf-8-sig") as f:
                        doc = yaml.safe_load(f)
                    text = doc.get("query") if isinstance(doc, dict) else None
                else:
                    continue
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                continue
            if isinstance(text, str) and text.strip():
                pieces = split_queries(text)
                for k, piece in enumerate(pieces):
                    out.append({"id": rel if len(pieces) == 1 else f"{rel}#{k + 1}", "query": piece})
    return out


_NEXT_QUERY = re.compile(r"expecting \{<EOF>, ';'\}")


def split_queries(text: str) -> list[str]:
    """A file holding several queries one after another (a Sentinel version and an Advanced Hunting version,
    say) as the queries it holds: split where the parser finds a complete query followed by a new statement at
    the start of a line, as the Log Analytics editor runs the query under the cursor. Anything else stays whole."""
    from kqlmagic_plus.language.compiler.syntax import ParseFailure, parse

    pieces: list[str] = []
    while True:
        try:
            parse(text)
        except ParseFailure as e:
            lines = text.splitlines(keepends=True)
            at = e.pos.line - 1
            head = "".join(lines[:at])
            rest = "".join(lines[at:]).lstrip()
            # a line going on with `|` or `)` continues the query: the parse error is the query's own, no split
            if _NEXT_QUERY.search(e.message) and e.pos.column in (0, 1) and head.strip() and _parses(head) \
                    and rest[:1] not in ("|", ")", ",", "]", "}"):
                pieces.append(head)
                text = "".join(lines[at:])
                continue
        except Exception:
            pass
        pieces.append(text)
        return pieces


def _parses(text: str) -> bool:
    from kqlmagic_plus.language.compiler.syntax import ParseFailure, parse

    try:
        parse(text)
    except ParseFailure:
        return False
    return True


#: Defender columns the Log Analytics schema file does not describe (renamed since, or Defender-only) -> what the
#: file has: a query reading one cannot be measured against the file, as a query reading an unknown table cannot.
SCHEMA_GAP_COLUMNS = {
    "EmailAddress": "IdentityInfo: MailAddress",
    "OnPremSid": "IdentityInfo: AccountSID",
    "PhishFilterVerdict": "EmailEvents: ThreatTypes / DetectionMethods",
    "AccountUpn": "IdentityInfo: AccountUPN (Defender's IdentityInfo spells it AccountUpn)",
}


#: The ASIM parser functions (``imDns``, ``_Im_Dns``, ``ASimDns``, ``_ASim_Dns``, ``vimDnsAzureFirewall``): deployed
#: in a workspace, described by no schema file.
ASIM_PARSER = re.compile(r"(?:_?im|_Im_|_?ASim|_ASim_|vim)[A-Z]\w*\(\)")


def asim_parser(exc: Exception) -> str | None:
    """The ASIM parser a compile error is about (the compiler refuses a call of a function it does not know)."""
    construct = getattr(exc, "construct", None)
    return construct if isinstance(construct, str) and ASIM_PARSER.fullmatch(construct) else None


def schema_unknown(text: str, schema: dict[str, list[tuple[str, str]]]) -> str | None:
    """What the query reads that the schema file lacks (a table, an ASIM parser, or one of
    ``SCHEMA_GAP_COLUMNS``), or None. Such a query is counted apart ("schema unknown"), never hidden: the rates are
    given with and without it."""
    from kqlmagic_plus.errors import QueryError, TableNotFoundError, UnsupportedQueryError
    from kqlmagic_plus.language.compiler import compile as kcompile

    try:
        kcompile(text, schema, "duckdb")
    except TableNotFoundError as exc:
        return str(exc).split(" does not exist")[0]
    except UnsupportedQueryError as exc:
        parser = asim_parser(exc)
        if parser:
            return f"ASIM parser {parser}"
    except QueryError as exc:
        m = re.match(r"no column named '([^']+)'", str(exc))
        if m and m.group(1) in SCHEMA_GAP_COLUMNS:
            return f"column {m.group(1)!r} (the file: {SCHEMA_GAP_COLUMNS[m.group(1)]})"
    except Exception:  # any other outcome is the compiler's, counted as it is
        pass
    return None


def duck_db(schema: dict[str, list[tuple[str, str]]]):
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, cols in schema.items():
        seen: set[str] = set()  # DuckDB's names are case-insensitive; a few LA tables differ only in case
        body = ", ".join(f'"{c}" {DUCK_TYPES.get(t, "VARCHAR")}' for c, t in cols
                         if not (c.lower() in seen or seen.add(c.lower())))
        con.execute(f'CREATE TABLE "{name}" ({body})')
    return con


class _NeedsNetwork(Exception):
    """A compiled query that reads externaldata: it runs only where its URLs are reachable."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=SHARED)
    ap.add_argument("--no-spark", action="store_true")
    ap.add_argument("--reasons", type=int, default=12)
    ap.add_argument("--queries", help="a folder of .kql / YAML rule files instead of the M365D corpus")
    ap.add_argument("--list", action="store_true", help="every query that failed somewhere, with its reasons")
    args = ap.parse_args()

    import duckdb_kql

    from kqlmagic_plus.errors import KqlMagicPlusError, QuerySyntaxError, UnsupportedQueryError
    from kqlmagic_plus.language.compiler import compile as kcompile

    queries, schema = load(args.shared)
    unknown_tables = n_slow = 0
    if args.queries:
        import signal

        from kqlmagic_plus.errors import TableNotFoundError

        queries = load_dir(args.queries)
        known, slow = [], []

        def too_slow(*_: object) -> None:
            raise TimeoutError

        signal.signal(signal.SIGALRM, too_slow)
        for q in queries:
            signal.alarm(30)
            try:
                kcompile(q["query"], schema, "duckdb")
            except TableNotFoundError:
                unknown_tables += 1  # a table or a parser function (ASIM, watchlists) no schema describes
                continue
            except UnsupportedQueryError as exc:
                if asim_parser(exc):  # an ASIM parser called with arguments: a workspace function too
                    unknown_tables += 1
                    continue
            except TimeoutError:
                slow.append(q["id"])  # `union *` over every Log Analytics schema: counted as not compiled
            except Exception:  # counted below as what it is
                pass
            finally:
                signal.alarm(0)
            known.append(q)
        print(f"{len(queries)} queries under {args.queries}; {unknown_tables} read a table or function no schema "
              f"knows (left out); the rates below are over the other {len(known)}")
        if slow:
            print(f"{len(slow)} took over 30 s to compile and count as failures: {', '.join(slow)}")
        queries = [q for q in known if q["id"] not in slow]
        n_slow = len(slow)
    con = duck_db(schema)
    dk_schema = {t: [c for c, _ in cols] for t, cols in schema.items()}
    spark = None
    if not args.no_spark:
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[2]").appName("compiler-coverage")
                 .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false").getOrCreate())
        spark.sparkContext.setLogLevel("OFF")
    views: set[str] = set()

    def spark_view(name: str) -> None:
        from kqlmagic_plus.language.compiler.execute import spark_schema

        if name not in views:
            spark.createDataFrame([], spark_schema(schema[name])).createOrReplaceTempView(name)
            views.add(name)

    n = len(queries) + n_slow  # a query too slow to compile is one that did not compile
    c = collections.Counter()
    times: list[tuple[float, str]] = []
    reasons: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    dk_reasons: collections.Counter = collections.Counter()
    from kqlmagic_plus.language.compiler.probe import reading_rows
    from kqlmagic_plus.language.udfs import register_duckdb, register_spark

    def duck_rows(sql: str) -> list:
        register_duckdb(con, sql)
        return [r[0] for r in con.execute(sql).fetchall()]

    def spark_rows_for(text: str):
        """The engines read rows at compile time for the operators whose columns depend on the data (pivot,
        bag_unpack). With a Spark session the reading runs there; without one, the Spark compilation is given
        what the same readings read from the DuckDB copy of the tables (the data is the data)."""
        if spark is not None:
            def read(sql: str) -> list:
                import re

                for name in set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", sql)) & set(schema):
                    spark_view(name)
                register_spark(spark, sql)  # as the Spark engine does before it runs SQL (remote.run_cell)
                return [r[0] for r in spark.sql(sql).collect()]
            return read
        got: list[list] = []

        def record(sql: str) -> list:
            got.append(duck_rows(sql))
            return got[-1]
        try:
            with reading_rows(record):
                kcompile(text, schema, "duckdb")
        except Exception:  # the DuckDB compilation's own outcome is counted below
            pass
        reads = iter(got)
        return lambda sql: next(reads, [])

    by_file: dict[str, list[bool]] = {}  # file -> [every query compiled for Spark, every query ran locally]
    outcome: dict[str, tuple[bool, bool, bool]] = {}  # query -> (compiled for Spark, ran on Spark, ran locally)
    network: set[str] = set()  # queries that compiled and read externaldata: running them needs the internet
    why: dict[str, str] = {}  # query -> why it did not compile or run on Spark
    local_why: dict[str, str] = {}  # query -> why our DuckDB emission did not run (duckdb-kql may still have)
    for q in queries:
        text, qid = q["query"], q["id"]
        # duckdb-kql alone
        dk_ok = False
        try:
            sql = duckdb_kql.to_sql(text, schema=dk_schema)
            c["dk_translated"] += 1
            con.execute(str(sql), list(getattr(sql, "parameters", None) or [])).fetchall()
            c["dk_ran"] += 1
            dk_ok = True
        except Exception as exc:
            dk_reasons[type(exc).__name__] += 1
        # ours
        parsed = spark_sql = False
        spark_reader = spark_rows_for(text)  # before the clock: it may compile the query for DuckDB first
        t = time.perf_counter()
        try:
            with reading_rows(spark_reader):
                compiled = kcompile(text, schema, "spark")
            parsed = spark_sql = True
        except QuerySyntaxError as exc:
            key = f"syntax: {str(exc).splitlines()[0][:90]}"
        except UnsupportedQueryError as exc:
            parsed = True
            key = f"unsupported: {exc.construct}" if hasattr(exc, "construct") else str(exc).splitlines()[0][:90]
        except KqlMagicPlusError as exc:
            parsed = True
            key = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
        except Exception as exc:
            parsed = True
            key = f"CRASH {type(exc).__name__}: {str(exc)[:90]}"
        times.append((time.perf_counter() - t, qid))
        c["parsed"] += parsed
        spark_ran = False
        if not spark_sql:
            reasons[key] += 1
            examples.setdefault(key, qid)
            why[qid] = key
        elif compiled.external:
            # externaldata: compiled (the plan lists its URLs); running it needs the internet, not reachable here
            c["spark_needs_network"] += 1
            network.add(qid)
            why[qid] = "needs network: externaldata " + ", ".join(u for s in compiled.external for u in s.urls)[:90]
        elif spark is not None:
            try:
                import re

                for name in set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", compiled.sql)) & set(schema):
                    spark_view(name)
                register_spark(spark, compiled.sql)  # the Python UDFs the SQL calls, as the Spark engine does
                spark.sql(compiled.sql).collect()
                c["spark_ran"] += 1
                spark_ran = True
            except Exception as exc:
                key = f"spark rejected: {str(exc).splitlines()[0][:90]}"
                reasons[key] += 1
                examples.setdefault(key, qid)
                why[qid] = key
        c["spark_compiled"] += spark_sql
        base = qid.split("#")[0]
        by_file.setdefault(base, [True, True])[0] &= bool(spark_sql)
        ours_duck = False
        try:
            with reading_rows(duck_rows):
                dcomp = kcompile(text, schema, "duckdb")
            c["duck_compiled"] += 1
            if dcomp.external:
                c["duck_needs_network"] += 1
                network.add(qid)
                raise _NeedsNetwork("needs network: externaldata (compiled, not run)")
            register_duckdb(con, dcomp.sql)  # the Python UDFs the SQL calls, as the local engine registers them
            con.execute(dcomp.sql).fetchall()
            c["duck_ran"] += 1
            ours_duck = True
        except Exception as exc:
            local_why[qid] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
            if not isinstance(exc, KqlMagicPlusError | _NeedsNetwork) and spark_sql:
                key = f"duckdb rejected: {str(exc).splitlines()[0][:90]}"
                reasons[key] += 1
                examples.setdefault(key, qid)
        c["local_with_fallback"] += dk_ok or ours_duck
        by_file[base][1] &= bool(dk_ok or ours_duck)
        outcome[qid] = (bool(spark_sql), spark_ran or spark is None, bool(dk_ok or ours_duck))

    pct = lambda k: f"{c[k]:>4}/{n}  {100 * c[k] / n:5.1f} %"  # noqa: E731
    print(f"KQL compiler coverage on {n} real hunting queries ({len(schema)} table schemas)\n")
    print(f"{'':42} {'count':>16}")
    print(f"{'parsed (our parser)':42} {pct('parsed'):>16}")
    print(f"{'compiled to Spark SQL':42} {pct('spark_compiled'):>16}")
    if spark is not None:
        print(f"{'ran on Spark (empty tables)':42} {pct('spark_ran'):>16}")
    print(f"{'compiled to DuckDB SQL':42} {pct('duck_compiled'):>16}")
    print(f"{'ran on DuckDB (empty tables)':42} {pct('duck_ran'):>16}")
    print(f"{'duckdb-kql: translated':42} {pct('dk_translated'):>16}")
    print(f"{'duckdb-kql: ran on DuckDB':42} {pct('dk_ran'):>16}")
    print(f"{'local engine with fallback: ran':42} {pct('local_with_fallback'):>16}")
    if network:  # compiled, and their plans list the URLs; this machine has no internet to run them
        print(f"{'needs network (externaldata URLs; in':42} {len(network):>4} queries")
        print(f"{'  compiled, not in ran: not reachable here)':42} "
              f"{'Spark ' + str(c['spark_needs_network']) + ', DuckDB ' + str(c['duck_needs_network']):>16}")
    files = len(by_file)
    if files != n:
        sp, lo = sum(v[0] for v in by_file.values()), sum(v[1] for v in by_file.values())
        print(f"by file ({files} files of {n} queries; a file counts when every query in it does):")
        print(f"{'  compiled to Spark SQL':42} {f'{sp:>4}/{files}  {100 * sp / files:5.1f} %':>16}")
        print(f"{'  local engine with fallback: ran':42} {f'{lo:>4}/{files}  {100 * lo / files:5.1f} %':>16}")
    print_schema_unknown(queries, schema, outcome, why, local_why, args.list)
    secs = sorted(t for t, _ in times)
    slowest = max(times)
    print(f"\ncompile time (Spark): median {1000 * statistics.median(secs):.1f} ms, p95 "
          f"{1000 * secs[int(0.95 * (len(secs) - 1))]:.1f} ms, max {1000 * slowest[0]:.0f} ms ({slowest[1]})")
    print(f"\nmost common reasons a query did not compile/run on Spark (top {args.reasons}):")
    for key, count in reasons.most_common(args.reasons):
        print(f"  {count:>3}  {key}   e.g. {examples[key]}")
    print(f"\nduckdb-kql failures by kind: {dict(dk_reasons.most_common())}")
    sys.stdout.flush()


def print_schema_unknown(queries: list[dict], schema: dict[str, list[tuple[str, str]]],
                         outcome: dict[str, tuple[bool, bool, bool]], why: dict[str, str], local_why: dict[str, str],
                         listing: bool) -> None:
    """The queries that read what the schema file lacks, as a separate count, and the rates over the others
    (the measurable queries); with *listing*, every query that failed on some engine and why."""
    failed = [q for q in queries if q["id"] in outcome and not all(outcome[q["id"]])]
    unknown = {q["id"]: what for q in failed for what in [schema_unknown(q["query"], schema)] if what}
    rest = [qid for qid in outcome if qid not in unknown]
    files: dict[str, list[bool]] = {}
    for qid in rest:
        sp, _, lo = outcome[qid]
        f = files.setdefault(qid.split("#")[0], [True, True])
        f[0] &= sp
        f[1] &= lo
    rate = lambda k, of: f"{k:>4}/{of}  {100 * k / max(of, 1):5.1f} %"  # noqa: E731
    print(f"{'schema unknown (reads a table or column':42} {len(unknown):>4} queries")
    print(f"{'  the schema file lacks; left out below)':42}")
    print(f"over the other {len(rest)} queries ({len(files)} files):")
    print(f"{'  compiled to Spark SQL':42} {rate(sum(outcome[q][0] for q in rest), len(rest)):>16}")
    print(f"{'  ran on Spark (empty tables)':42} {rate(sum(outcome[q][1] for q in rest), len(rest)):>16}")
    print(f"{'  local engine with fallback: ran':42} {rate(sum(outcome[q][2] for q in rest), len(rest)):>16}")
    print(f"{'  by file: compiled to Spark SQL':42} {rate(sum(v[0] for v in files.values()), len(files)):>16}")
    print(f"{'  by file: local engine with fallback':42} {rate(sum(v[1] for v in files.values()), len(files)):>16}")
    if listing:
        print("\nevery query that failed (S: compiled for Spark, R: ran on Spark, L: ran locally; - where not):")
        for q in failed:
            qid = q["id"]
            flags = "".join(f if ok else "-" for f, ok in zip("SRL", outcome[qid], strict=True))
            reason = f"schema unknown: {unknown[qid]}" if qid in unknown else why.get(qid) or local_why.get(qid, "")
            local = f"  | local: {local_why[qid]}" if not outcome[qid][2] and qid not in unknown else ""
            print(f"  {flags} {qid}: {reason}{local}")


if __name__ == "__main__":
    main()
