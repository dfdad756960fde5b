"""``kqlmagic-plus``: query, hunt, datagen and demo from a terminal.

Exit 0 on success; on failure a one-line error on stderr and a non-zero exit (2 for usage errors,
1 for everything else). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any

from kqlmagic_plus.cli.output import report_error, say, write_result
from kqlmagic_plus.errors import KqlMagicPlusError, OptionError

FORMATS = ("table", "csv", "json", "jsonl", "parquet")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, no usage dump
        raise OptionError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="kqlmagic-plus", description="KQL hunting from the terminal: local DuckDB, "
                "Log Analytics, Azure Data Explorer, and Spark over the exported lake.")
    p.add_argument("--debug", action="store_true",
                   help="show tracebacks on errors, and Spark's own output (JVM, log4j, warnings) unfiltered")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    q = sub.add_parser("query", help="run a KQL query and print or save its rows")
    q.add_argument("kql", help="the query text, or @FILE to read it from a file, or - for stdin")
    q.add_argument("-c", "--conn", help="connection string (default: local://)")
    q.add_argument("--mount", action="append", default=[], metavar="NAME=PATH",
                   help="files (Parquet, CSV, JSON lines; globs) as table NAME; repeatable")
    q.add_argument("--format", choices=FORMATS, default="table")
    q.add_argument("-o", "--output", metavar="FILE", help="write the rows here instead of stdout")
    q.add_argument("--keep-formulas", action="store_true",
                   help="CSV: write cells that start with = + - @ as they are (by default they get a leading ' "
                        "so a spreadsheet shows them as text instead of running them)")
    q.add_argument("--show-query", action="store_true", help="print what ran (to stderr)")
    q.add_argument("--timeout", type=float, help="seconds before the query is cancelled")
    q.add_argument("--timespan", help="query window ending now, e.g. 7d")
    q.add_argument("--start", help="window start (ISO-8601 UTC)")
    q.add_argument("--end", help="window end (ISO-8601 UTC)")
    q.add_argument("--param", action="append", default=[], metavar="NAME=JSON",
                   help="a query parameter; the value is JSON (strings quoted); repeatable")

    d = sub.add_parser("demo", help="generate a small lake, run the hunting tour notebook, write HTML")
    d.add_argument("--out", default="kqlmagic-plus-demo", help="output folder (default: ./kqlmagic-plus-demo)")
    d.add_argument("--days", type=int, default=2)
    d.add_argument("--events-per-day", type=int, default=50_000)
    d.add_argument("--seed", type=int, default=7)

    dg = sub.add_parser("datagen", help="write synthetic Sentinel tables in the export layout")
    from kqlmagic_plus.demo.datagen import add_datagen_arguments

    add_datagen_arguments(dg)

    m = sub.add_parser("migrate", help="make a Kqlmagic notebook load kqlmagic_plus; list lines needing a hand edit")
    m.add_argument("notebook", help="the .ipynb file")
    m.add_argument("--in-place", action="store_true", help="rewrite the notebook itself (default: NAME.migrated.ipynb)")
    m.add_argument("-o", "--output", metavar="FILE", help="write the migrated notebook here")

    h = sub.add_parser("hunt", help="run a built-in hunt (beacon, spray, masquerade)")
    h.add_argument("name", nargs="?", help="hunt name; omit to list hunts")
    h.add_argument("--format", choices=("table", "csv", "json"), default="table")
    h.add_argument("-o", "--output", metavar="FILE")
    return p


def console_main() -> int:
    """The ``kqlmagic-plus`` command: :func:`main`, and a prompt exit after a cancel.

    A cancelled local query may still be winding down inside DuckDB on its worker thread; letting the
    interpreter finalize then kills that native thread mid-C++ (glibc aborts: "FATAL: exception not
    rethrown"). Once the answer is written and the streams flushed, nothing is left to lose, so the
    process exits at once instead.
    """
    code = main()
    if code == 130:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.flush()
        os._exit(code)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if debug:
        from kqlmagic_plus import errors

        errors.DEBUG = True  # also: Spark's own output (JVM, log4j, PySpark warnings) shown, unfiltered
    try:
        rest = argv[1:] if argv[:1] == ["--debug"] else argv  # `kqlmagic-plus --debug hunt ...` too
        if rest and rest[0] == "hunt":
            return _hunt(rest[1:] + (["--debug"] if rest is not argv else []))
        args = build_parser().parse_args(argv)
        return {"query": _query, "demo": _demo, "datagen": _datagen, "migrate": _migrate}[args.command](args)
    except KqlMagicPlusError as exc:
        if debug:
            raise
        return report_error(exc)
    except KeyboardInterrupt:
        say("Cancelled.")
        return 130
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):  # no "Exception ignored" when the interpreter flushes
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        return 0
    except Exception as exc:  # last line of defence: never a traceback from a dependency
        if debug:
            raise
        say(f"Error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
            "(run with --debug for details)")
        return 1


def _read_query(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as fh:
                return fh.read()
        except OSError as exc:
            raise OptionError(f"cannot read query file {text[1:]!r}: {exc.strerror}") from None
    return text


def _query(args: argparse.Namespace) -> int:
    import json

    from kqlmagic_plus import api
    from kqlmagic_plus.options import parse_name_value

    params: dict[str, Any] = {}
    for item in args.param:
        name, raw = parse_name_value(item, "--param")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            raise OptionError(f"--param {name}: {raw!r} is not JSON (quote strings: {name}='\"text\"')"
                              ) from None
    mounts = dict(parse_name_value(m, "--mount") for m in args.mount)
    result = api.kql(_read_query(args.kql), conn=args.conn, params=params, mounts=mounts,
                     timeout=args.timeout, timespan=args.timespan, start=args.start, end=args.end)
    if args.show_query:
        say(str(result.executed or result.query))
    for w in result.warnings:
        say(f"warning: {w}")
    if result.truncated:
        say(f"warning: result truncated ({result.row_count} rows returned)")
    write_result(result, args.format, args.output, keep_formulas=args.keep_formulas)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from kqlmagic_plus.demo.runner import run_demo

    run_demo(out=args.out, days=args.days, events_per_day=args.events_per_day, seed=args.seed)
    return 0


def _datagen(args: argparse.Namespace) -> int:
    from kqlmagic_plus.demo.datagen import run_datagen

    run_datagen(args)
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from kqlmagic_plus.cli.migrate import migrate_notebook, summary

    if args.in_place and args.output:
        raise OptionError("migrate: give --in-place or -o FILE, not both")
    target, changes = migrate_notebook(args.notebook, in_place=args.in_place, out=args.output)
    print(summary(args.notebook, target, changes))
    return 0


def _hunt(argv: list[str]) -> int:
    from kqlmagic_plus.cli.hunt import main as hunt_main

    return hunt_main(argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
