"""``kqlmagic-plus hunt``: list the hunts, describe one, or run one over a lake or a file.

    kqlmagic-plus hunt                                  # the hunts
    kqlmagic-plus hunt beacon --help                    # what beacon finds, its parameters
    kqlmagic-plus hunt beacon --lake DIR --end-date 2024-05-01 --format json -o beacons.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from kqlmagic_plus.cli.output import report_error, say, write_result
from kqlmagic_plus.errors import KqlMagicPlusError, OptionError

FORMATS = ("table", "csv", "json")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise OptionError(f"{self.prog}: {message}")


def _listing() -> str:
    from kqlmagic_plus.hunts import catalog

    lines = ["Hunts (kqlmagic-plus hunt NAME --help for parameters):"]
    lines += [f"  {h['name']:<12} {h['title']}  [{h['table']}]" for h in catalog()]
    return "\n".join(lines)


def build_parser(name: str) -> argparse.ArgumentParser:
    from kqlmagic_plus.hunts import get_hunt

    hunt = get_hunt(name)
    p = _Parser(prog=f"kqlmagic-plus hunt {hunt.name}", add_help=False)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--lake", metavar="DIR|URL", help="an exported lake (read only in the window's day folders): "
                     "a folder, or abfss://<container>@<account>.dfs.core.windows.net/[;sas=$NAME]")
    src.add_argument("--input", metavar="FILE", help="a Parquet, CSV or JSON-lines file of the hunt's table")
    src.add_argument("--table", metavar="NAME", help="a table of the Spark catalog (with --engine spark)")
    p.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("-o", "--output", metavar="FILE")
    p.add_argument("--keep-formulas", action="store_true", help="CSV: cells starting with = + - @ as they are")
    p.add_argument("--show-query", action="store_true", help="print the SQL that ran (to stderr)")
    p.add_argument("--debug", action="store_true",
                   help="tracebacks, and Spark's own output (JVM, log4j, warnings) unfiltered")
    p.add_argument("-h", "--help", action="store_true")
    for prm in hunt.params:
        p.add_argument(prm.cli, dest=f"param_{prm.name}", metavar=prm.metavar or prm.type.upper(),
                       default=None)
    return p


def _read_file(path: str) -> Any:
    import pyarrow as pa

    low = path.lower()
    try:
        if low.endswith((".parquet", ".pq")):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if low.endswith(".csv"):
            import pyarrow.csv as pacsv

            return pacsv.read_csv(path)
        import pyarrow.json as pajson

        return pajson.read_json(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise OptionError(f"--input {path!r}: cannot read it ({str(exc).splitlines()[0]})") from None


def run(argv: Sequence[str]) -> int:
    from kqlmagic_plus.hunts import describe, run_hunt

    argv = list(argv)
    if not argv or argv[0] in ("--list", "-l", "list"):
        print(_listing())
        return 0
    if argv[0] in ("-h", "--help"):
        print(_listing())
        return 0
    name, rest = argv[0], argv[1:]
    args = build_parser(name).parse_args(rest)
    if args.help:
        print(describe(name))
        return 0
    params = {k[len("param_"):]: v for k, v in vars(args).items() if k.startswith("param_") and v is not None}
    if args.input:
        data = {"dataframe": _read_file(args.input)}
    elif args.table:
        if args.engine != "spark":
            raise OptionError("--table names a Spark catalog table: add --engine spark (or use --lake/--input)")
        data = {"table": args.table}
    elif args.lake:
        data = {"lake": args.lake}
    else:
        raise OptionError(f"kqlmagic-plus hunt {name}: give the input: --lake DIR or --input FILE")
    if args.engine == "spark":
        from kqlmagic_plus.cli.spark import run_spark_hunt

        result = run_spark_hunt(name, data, params)
    else:
        result = run_hunt(name, engine=args.engine, **data, **params)
    if args.show_query:
        say(result.executed or "")
    for w in result.warnings:
        say(f"warning: {w}")
    lake = (result.stats.get("lake") or {}).get("text")
    say(f"{name}: {result.summary()}" + (f" · {lake}" if lake else ""))
    write_result(result, args.format, args.output, keep_formulas=args.keep_formulas)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for ``kqlmagic-plus hunt ...``; exit 0 on success, 2 on a usage error, 1 otherwise."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--debug" in argv:
        from kqlmagic_plus import errors

        errors.DEBUG = True  # also: Spark's own output shown, unfiltered
    try:
        return run(argv)
    except KqlMagicPlusError as exc:
        if "--debug" in argv:
            raise
        code = report_error(exc)
        if exc.hint:
            say(exc.hint)
        return code
