"""``%sparkhunt`` / ``%%sparkhunt``: parse the line, call :mod:`kqlmagic_plus.sparkhunt`, display.

Registered by :func:`kqlmagic_plus.magics.load`. Like ``%kql``, IPython's
``{var}``/``$var`` expansion is off: values reach Spark only as parameters or Python objects.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from kqlmagic_plus import errors
from kqlmagic_plus.config import settings
from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.magics.common import line_params, shown_query
from kqlmagic_plus.options import Opt, output_variable, parse_line, parse_name_value

SPARK_OPTIONS: tuple[Opt, ...] = (
    Opt("connect", "str", ("-connect",),
        "local[N] | spark://host:port | sc://host:port/;token=... | synapse://workspace/pool"),
    Opt("lake", "str", ("-lake",), "the exported lake: a folder, file://..., or abfss://container@account..."),
    Opt("pyspark", "flag", ("-pyspark",), "the cell is PySpark code (`spark` and the lake tables are bound)"),
    Opt("sql", "flag", ("-sql",), "the cell is Spark SQL"),
    Opt("kql", "flag", ("-kql",), "the cell is KQL (the default), compiled to Spark SQL"),
    Opt("out", "str", ("-o",), "store the Result (or the PySpark cell's value) in this variable"),
    Opt("to_lake", "str", ("-to_lake",), "write the whole result as Parquet to PATH instead of collecting it"),
    Opt("overwrite", "flag", (), "with --to-lake: replace what is at PATH"),
    Opt("row_limit", "int", ("-row_limit",), "rows collected (default KqlMagicPlus.spark_row_limit)"),
    Opt("conf", "multi", ("-conf",), "KEY=VALUE Spark setting (at session start for static ones)"),
    Opt("status", "flag", ("-status",), "show the Spark sessions"),
    Opt("stop", "flag", ("-stop",), "stop the current session (or the --connect one)"),
    Opt("list", "flag", ("-list",), "list the built-in hunts"),
    Opt("schema", "flag", ("-schema",), "tables -> columns -> types of the session (its lake and catalog)"),
    Opt("timespan", "str", ("-timespan",), "query window ending now (lake files read), e.g. 7d"),
    Opt("start", "str", ("-start",), "window start (ISO-8601 UTC)"),
    Opt("end", "str", ("-end",), "window end (ISO-8601 UTC)"),
    Opt("param", "multi", ("-param",), "NAME=<python expression>, a KQL query parameter"),
    Opt("params", "str", ("-params",), "a dict variable of KQL query parameters"),
    Opt("show_query", "flag", ("-showquery",), "show the Spark SQL that ran"),
    Opt("dry_run", "flag", ("-dryrun",), "compile the KQL, don't run it"),
    Opt("display_limit", "int", ("-displaylimit", "-dl"), "rows shown (the Result keeps all)"),
    Opt("no_progress", "flag", (), "no progress bar"),
    Opt("cache", "str", ("-cache",), "store and reuse the result (TTL like 1h)", optional_value=True),
    Opt("no_cache", "flag", ("-nocache",), "neither read nor write the result cache"),
    Opt("refresh", "flag", ("-refresh",), "re-run and replace the cached entry"),
    Opt("debug", "flag", ("-debug",), "show full tracebacks"),
)

_HUNT_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\s+[A-Za-z_][A-Za-z0-9_]*=\S+)*$")


@magics_class
class SparkHuntMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def sparkhunt(self, line: str, cell: str | None = None) -> Any:
        """Hunt on Spark. ``%sparkhunt --help`` lists the options."""
        if line.strip() in ("--help", "-h", "-help"):
            print(_help())
            return None
        if cell is None and _hunt_name(line) is not None:
            return self._hunt(line)
        opts, rest = parse_line(line, SPARK_OPTIONS)
        output_variable(opts.get("out"))  # before the cell runs, not after a long job
        cfg = settings()
        errors.DEBUG = bool(opts.get("debug") or cfg.debug)
        from kqlmagic_plus import sparkhunt as api
        from kqlmagic_plus.engines.spark.sessions import manager

        if opts.get("status"):
            return _Status(manager().status())
        if opts.get("stop"):
            stopped = manager().stop(opts.get("connect"))
            print("Spark: stopped " + ", ".join(stopped) if stopped else "Spark: no session to stop")
            return None
        if opts.get("list"):
            return _HuntList(api.hunt_catalog())
        if opts.get("schema"):
            return api.schema(connect=opts.get("connect"), lake=opts.get("lake"), refresh=bool(opts.get("refresh")))
        modes = [m for m in ("pyspark", "sql", "kql") if opts.get(m)]
        if len(modes) > 1:
            raise OptionError(f"give one of --pyspark, --sql, --kql, not {' and '.join('--' + m for m in modes)}")
        mode = modes[0] if modes else "kql"
        conf = dict(parse_name_value(c, "--conf") for c in opts.get("conf") or [])
        if cell is not None:
            if rest.strip():
                raise OptionError(f"unexpected text on the %%sparkhunt line: {rest.strip()!r} (the code goes in "
                                  "the cell; --connect TARGET picks the session)")
            code = cell
        else:
            code = rest
            if mode == "kql" and code.strip() and self._is_hunt(code):
                words = code.split()
                return self._show_hunt(api.run_hunt(words[0], api.parse_hunt_params(words[1:]),
                                                    connect=opts.get("connect"), lake=opts.get("lake"),
                                                    progress=self._style(opts)), opts)
        if not code.strip():
            session = api.bind(connect=opts.get("connect"), lake=opts.get("lake"), conf=conf or None)
            if not (opts.get("connect") or opts.get("lake") or conf):
                raise OptionError("no code given. Usage: %%sparkhunt [--pyspark|--sql] [options] with the code in "
                                  "the cell, or %sparkhunt --connect TARGET / --lake PATH / --status / --stop")
            took = f" (started in {session.start_seconds:.1f} s)" if session.start_seconds and session.cells == 0 \
                else ""
            print(f"Spark: {session.target.display} ready{took}.")
            return None
        code, quiet = _strip_quiet(code, mode)
        params = self._params(opts) if mode == "kql" else {}
        style = self._style(opts)
        value = api.sparkhunt(
            code, mode=mode, connect=opts.get("connect"), lake=opts.get("lake"), conf=conf or None,
            namespace=self.shell.user_ns, params=params, timespan=opts.get("timespan"), start=opts.get("start"),
            end=opts.get("end"), row_limit=opts.get("row_limit"), to_lake=opts.get("to_lake"),
            overwrite=bool(opts.get("overwrite")), dry_run=bool(opts.get("dry_run")), progress=style,
            display_limit=opts.get("display_limit"), cache=opts.get("cache") if "cache" in opts else None,
            no_cache=opts.get("no_cache"), refresh=opts.get("refresh"))
        from kqlmagic_plus.results import Result

        if isinstance(value, Result):
            if opts.get("show_query") or cfg.show_query or opts.get("dry_run"):
                print(shown_query(value))
            self.shell.user_ns["_kql_raw_result_"] = value
        if opts.get("out"):
            self.shell.user_ns[opts["out"]] = value
        if quiet or opts.get("dry_run"):
            return None
        return value

    def _hunt(self, line: str) -> Any:
        """``%sparkhunt HUNT [--lake DIR] [--engine duckdb|spark] [--param-name VALUE] [name=value] [-o VAR]``."""
        from kqlmagic_plus import sparkhunt as api

        name, opts, params = parse_hunt_line(line)
        errors.DEBUG = bool(opts.get("debug") or settings().debug)
        if opts.get("help"):
            print(api.describe_hunt(name))
            return None
        result = api.run_hunt(name, params, connect=opts.get("connect"), lake=opts.get("lake"),
                              engine=opts.get("engine"), table=opts.get("table"), progress=self._style(opts))
        return self._show_hunt(result, opts)

    def _style(self, opts: dict[str, Any]) -> str:
        """How Spark progress is drawn: a bar in a notebook, lines in a terminal IPython, none on request."""
        if opts.get("no_progress"):
            return "none"
        return "notebook" if type(self.shell).__name__ == "ZMQInteractiveShell" else "terminal"

    def _show_hunt(self, result: Any, opts: dict[str, Any]) -> Any:
        """The Result (its chart, for hunts that have one, drawn below the table), stored like %kql's."""
        from kqlmagic_plus import sparkhunt as api

        with contextlib.suppress(Exception):  # a chart that cannot be drawn must not lose the rows
            result.chart_below = None if opts.get("no_chart") else api.hunt_figure(result)
        self.shell.user_ns["_kql_raw_result_"] = result
        target = opts.get("out")
        if target:
            self.shell.user_ns[target] = result
        return result

    def _is_hunt(self, line: str) -> bool:
        """``%sparkhunt beacon window=1h``: a hunt name and name=value words, no KQL operators."""
        if not _HUNT_LINE.match(line.strip()):
            return False
        from kqlmagic_plus import sparkhunt as api

        name = line.split()[0]
        known = api.hunt_names()
        if known is not None:
            return name in known
        # Without the hunts module, a bare word that is a lake table is KQL; anything else with
        # parameters, or not a table, is meant as a hunt (and says the hunts are missing).
        from kqlmagic_plus.engines.spark.sessions import manager

        session = manager().peek()
        tables = []
        if session is not None and session.lake is not None:
            try:
                tables = session.lake.table_names(session)
            except Exception:
                tables = []
        return len(line.split()) > 1 or name not in tables

    def _params(self, opts: dict[str, Any]) -> dict[str, Any]:
        # The same rules as %kql: a dict variable, then --param expressions evaluated in the user's namespace.
        exprs = [parse_name_value(item, "--param") for item in opts.get("param") or []]
        return line_params(opts.get("params"), exprs, self.shell.user_ns)


_HUNT_OPTIONS = {"--lake": "lake", "--connect": "connect", "--engine": "engine", "--table": "table",
                 "-o": "out", "--out": "out"}
_HUNT_FLAGS = {"--help": "help", "-h": "help", "--no-chart": "no_chart", "--debug": "debug"}


def _hunt_name(line: str) -> str | None:
    """The hunt a line names when it is ``HUNT --option ...`` (the name=value form is found later)."""
    words = line.split()
    if len(words) < 1 or not words[0].isidentifier():
        return None
    if len(words) > 1 and not any(w.startswith("-") for w in words[1:]):
        return None
    from kqlmagic_plus import sparkhunt as api

    known = api.hunt_names()
    return words[0] if known and words[0] in known else None


def parse_hunt_line(line: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(hunt, magic options, hunt parameters) from ``HUNT --lake DIR --end-date 2024-05-01 -o r k=v``.

    Hunt parameters stay text here; the hunt converts them by its declared types and names the bad ones.
    """
    import shlex

    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise OptionError(f"cannot split the %sparkhunt line: {exc}") from None
    name, rest = words[0], words[1:]
    opts: dict[str, Any] = {}
    params: dict[str, Any] = {}
    i = 0
    while i < len(rest):
        word = rest[i]
        key, eq, inline = word.partition("=")
        if word.startswith("-") and key in _HUNT_FLAGS and not eq:
            opts[_HUNT_FLAGS[key]] = True
        elif word.startswith("-"):
            if eq:
                value = inline
            elif i + 1 < len(rest):
                i += 1
                value = rest[i]
            else:
                raise OptionError(f"{name}: {key} needs a value")
            if key in _HUNT_OPTIONS:
                opts[_HUNT_OPTIONS[key]] = value
            elif key.startswith("--") and len(key) > 2:
                params[key[2:].replace("-", "_")] = value
            else:
                raise OptionError(f"{name}: unknown option {key!r} (hunt parameters are --name value)")
        elif eq and key.isidentifier():
            params[key] = inline
        else:
            raise OptionError(f"{name}: unexpected {word!r}; write --parameter VALUE or parameter=VALUE")
        i += 1
    output_variable(opts.get("out"))
    if opts.get("engine") and str(opts["engine"]).lower() not in ("duckdb", "spark"):
        raise OptionError(f"--engine {opts['engine']!r}: use duckdb or spark")
    return name, opts, params


def _strip_quiet(code: str, mode: str) -> tuple[str, bool]:
    """A trailing ``;`` on the last line suppresses display (as in Python cells)."""
    stripped = code.rstrip()
    if mode == "pyspark" or not stripped.endswith(";"):
        return code, False
    return stripped[:-1], True


class _HuntList:
    """``%sparkhunt --list``: the built-in hunts, what each finds and the table it reads."""

    def __init__(self, rows: list[dict[str, str]]):
        self.rows = rows

    def __iter__(self):  # the names, as the list this used to be
        return iter(r["name"] for r in self.rows)

    def __repr__(self) -> str:
        if not self.rows:
            return "No built-in hunts in this build."
        width = max(len(r["name"]) for r in self.rows)
        lines = [f"{r['name']:<{width}}  {r['title']}  (reads {r['table']})" for r in self.rows]
        return "\n".join([*lines, "", "%sparkhunt HUNT --help shows a hunt's parameters and output columns."])

    def _repr_html_(self) -> str:
        import html

        head = "<tr><th>hunt</th><th>finds</th><th>reads</th></tr>"
        body = "".join(f"<tr><td><code>{html.escape(r['name'])}</code></td><td>{html.escape(r['title'])}</td>"
                       f"<td>{html.escape(r['table'])}</td></tr>" for r in self.rows)
        return (f"<table class='kqlmp-hunts'>{head}{body}</table>"
                "<p><code>%sparkhunt HUNT --help</code> shows a hunt's parameters and output columns.</p>")


class _Status:
    """``%sparkhunt --status``: one row per session (no secrets: targets are shown redacted)."""

    def __init__(self, rows: list[dict[str, Any]]):
        self.rows = rows

    def __repr__(self) -> str:
        if not self.rows:
            return "No Spark sessions (cells start local[*] unless --connect says otherwise)."
        lines = []
        for r in self.rows:
            mark = "*" if r.get("current") else " "
            extra = [f"{k}={r[k]}" for k in ("spark_version", "master", "app_id", "livy_session", "livy_state",
                                              "session_id", "cells", "uptime_s", "lake") if r.get(k) is not None]
            lines.append(f"{mark} {r['kind']:<8} {r['target']}  [{r['state']}]  " + " ".join(extra))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        head = "<tr><th></th><th>kind</th><th>target</th><th>state</th><th>details</th></tr>"
        body = "".join(
            f"<tr><td>{'*' if r.get('current') else ''}</td><td>{html.escape(str(r['kind']))}</td>"
            f"<td>{html.escape(str(r['target']))}</td><td>{html.escape(str(r['state']))}</td>"
            f"<td>{html.escape(', '.join(f'{k}={v}' for k, v in r.items() if k not in ('kind', 'target', 'state', 'current') and v is not None))}</td></tr>"  # noqa: E501
            for r in self.rows)
        return f"<table class='kqlmp-spark-status'>{head}{body}</table>" if self.rows else html.escape(repr(self))


def _help() -> str:
    lines = ["%%sparkhunt [--pyspark | --sql] [options]    (the cell: KQL by default)",
             "%sparkhunt --connect local[2] | spark://host:7077 | sc://host:15002/;token=... | "
             "synapse://workspace/pool",
             "%sparkhunt --lake PATH | --status | --stop | --list | HUNT name=value ...", "", "Options:"]
    for o in SPARK_OPTIONS:
        alias = f" ({', '.join(o.aliases)})" if o.aliases else ""
        lines.append(f"  {o.long:<16} {o.help}{alias}")
    return "\n".join(lines)
