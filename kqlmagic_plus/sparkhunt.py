"""``%%sparkhunt`` without IPython: run KQL, Spark SQL or PySpark on the current Spark session.

    >>> from kqlmagic_plus.sparkhunt import sparkhunt
    >>> r = sparkhunt("SigninLogs | summarize count() by ResultType", connect="local[2]", lake="/data/lake")

KQL goes through the KQL -> Spark SQL compiler (:mod:`kqlmagic_plus.language.compiler`) against the lake's
schemas; its time filter (``where TimeGenerated > ago(7d)``), or ``timespan``/``start``/``end``,
decides which lake files the views read. SQL and PySpark cells see the lake tables as temp views
(PySpark cells also get each table as a DataFrame variable of the same name, and ``spark``).
"""

from __future__ import annotations

import ast
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from kqlmagic_plus.engines.base import Engine
from kqlmagic_plus.engines.spark.progress import ProgressSink
from kqlmagic_plus.engines.spark.sessions import SparkHandle, manager
from kqlmagic_plus.errors import EngineUnavailableError, OptionError
from kqlmagic_plus.request import Request
from kqlmagic_plus.results import Result

MODES = ("kql", "sql", "pyspark")
Say = Callable[[str], None]


class SparkEngine(Engine):
    """One Spark session (and its lake) behind the Engine interface, so results cache like %kql's."""

    name = "spark"

    def __init__(self, session: SparkHandle, *, progress: Callable[[], ProgressSink], say: Say = print):
        self.session = session
        self.progress = progress
        self.say = say

    @property
    def target(self) -> str:
        lake = self.session.lake
        return f"spark:{self.session.target.display}" + (f";lake={lake.display}" if lake is not None else "")

    def tables(self) -> list[str]:
        lake = self.session.lake
        return lake.table_names(self.session) if lake is not None else []

    def cancel(self) -> None:
        self.session.cancel()

    def cache_inputs(self, request: Request) -> Any:
        """The lake files the request reads, with sizes and times: a changed lake is a cache miss."""
        from kqlmagic_plus.cache.key import Unkeyable

        lake = self.session.lake
        if lake is None:
            return ""
        if lake.kind != "local":
            raise Unkeyable("a remote lake")
        reg = lake.registration(self._window(request))
        h = hashlib.sha256()
        for t in reg.spec["tables"]:
            for path in t["json"] + t["parquet"]:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()

    def _window(self, request: Request) -> Any:
        if request.window is not None or request.options.get("mode") != "kql":
            return request.window
        from kqlmagic_plus.lake import window_from_query
        from kqlmagic_plus.language.render import split_render

        return window_from_query(split_render(request.query)[0], now=request.now)

    def _registration(self, window: Any) -> Any:
        lake = self.session.lake
        if lake is None:
            return None
        from kqlmagic_plus.engines.spark.lake import explain_storage_error

        try:
            return lake.registration(window, self.session)
        except Exception as exc:
            from kqlmagic_plus.errors import KqlMagicPlusError

            if isinstance(exc, KqlMagicPlusError):
                raise explain_storage_error(exc, lake.display) from None
            raise

    def run(self, request: Request) -> Result:
        mode = request.options.get("mode", "kql")
        if mode == "kql":
            return self._kql(request)
        if mode == "sql":
            out, reg, elapsed, extra = self._cell("sql", request.query, request, None)
            return self._result(out, reg, elapsed, request, executed=request.query, warnings=extra)
        raise OptionError(f"mode {mode!r}: use kql or sql here (pyspark cells run through run_pyspark)")

    def run_pyspark(self, request: Request) -> Any:
        ns = request.namespace if isinstance(request.namespace, dict) else {}
        out, reg, elapsed, extra = self._cell("pyspark", request.query, request, ns)
        if out.get("stdout"):
            self.say(out["stdout"])
        if out["kind"] == "value":
            for w in extra:
                self.say(f"⚠ {w}")
            return out["value"]
        return self._result(out, reg, elapsed, request, executed=None, warnings=extra)

    def _cell(self, mode: str, code: str, request: Request, ns: dict[str, Any] | None,
              what: str = "") -> tuple[dict[str, Any], Any, float, list[str]]:
        from kqlmagic_plus.engines.spark.lake import explain_storage_error

        started = time.perf_counter()
        reg = self._registration(request.window)
        if reg is not None:
            self.session.lake.check_credentials(self.session)
        try:
            out = self.session.run_cell(mode, code, namespace=ns, limit=_limit(request),
                                        to_lake=request.options.get("to_lake"),
                                        overwrite=bool(request.options.get("overwrite")),
                                        lake_spec=reg.spec if reg is not None else None, progress=self.progress,
                                        what=what, tables=list(reg.schemas) if reg is not None else None)
        except Exception as exc:
            from kqlmagic_plus.errors import KqlMagicPlusError

            if isinstance(exc, KqlMagicPlusError) and self.session.lake is not None \
                    and self.session.lake.kind == "remote":
                raise explain_storage_error(exc, self.session.lake.display) from None
            raise
        extra = list(reg.warnings) if reg is not None else []
        extra.extend(self.session.lake_warnings)
        return out, reg, time.perf_counter() - started, extra

    def _kql(self, request: Request) -> Result:
        from kqlmagic_plus.language.render import split_render

        query, spec = split_render(request.query)
        window = self._window(request)
        reg = self._registration(window)
        schemas = reg.schemas if reg is not None else {}
        try:
            from kqlmagic_plus.language.compiler import compile as kql_compile
        except ImportError as exc:
            raise EngineUnavailableError(
                f"KQL on Spark needs the KQL -> Spark SQL compiler (kqlmagic_plus.language.compiler), which is not "
                f"available in this build ({exc}). Write the cell as Spark SQL (%%sparkhunt --sql) or PySpark "
                "(%%sparkhunt --pyspark) instead.") from None
        if not schemas:
            from kqlmagic_plus.errors import TableNotFoundError
            from kqlmagic_plus.language.aliases import referenced_names

            if self.session.lake is not None:
                raise OptionError(f"the lake {self.session.lake.display} has no tables")
            names = sorted(referenced_names(query)) or ["(none)"]
            err = TableNotFoundError(names[0], [])
            err.hint = "Bind a lake first: %sparkhunt --lake PATH (KQL on Spark reads the lake's tables)."
            raise err
        compiled = kql_compile(query, schemas, dialect="spark", params=dict(request.params))
        if request.dry_run:
            import pyarrow as pa

            return Result(table=pa.table({}), kql_types=[], query=request.query, connection=self.target,
                          engine="spark", executed=compiled.sql, render=spec,
                          stats={"dry_run": True, **({"lake": reg.stats} if reg else {})})
        started = time.perf_counter()
        out = self.session.run_cell("sql", compiled.sql, namespace=None, limit=_limit(request),
                                    to_lake=request.options.get("to_lake"),
                                    overwrite=bool(request.options.get("overwrite")),
                                    lake_spec=reg.spec if reg is not None else None, progress=self.progress,
                                    what="the Spark SQL compiled from the KQL (--show-query shows it)",
                                    tables=list(schemas))
        extra = list(reg.warnings) if reg is not None else []
        extra.extend(self.session.lake_warnings)
        extra.extend(compiled.warnings)
        return self._result(out, reg, time.perf_counter() - started, request, executed=compiled.sql,
                            warnings=extra, kql_types=[t for _, t in compiled.columns], render=spec)

    def _result(self, out: dict[str, Any], reg: Any, elapsed: float, request: Request, *, executed: str | None,
                warnings: list[str], kql_types: list[str] | None = None, render: Any = None) -> Result:
        from kqlmagic_plus.engines.spark.results import to_result

        stats: dict[str, Any] = {"session": self.session.target.display}
        if reg is not None:
            stats["lake"] = reg.stats
        return to_result(out, limit=_limit(request), kql_types=kql_types, query=request.query,
                         connection=self.target, elapsed=elapsed, executed=executed, warnings=warnings,
                         stats=stats, render=render)


def _limit(request: Request) -> int:
    from kqlmagic_plus.config import settings

    value = request.options.get("row_limit")
    return int(value) if value is not None else int(settings().spark_row_limit)


def sparkhunt(code: str = "", *, mode: str = "kql", connect: str | None = None, lake: str | None = None,
              conf: Mapping[str, str] | None = None, namespace: dict[str, Any] | None = None,
              params: Mapping[str, Any] | None = None, timespan: str | None = None, start: str | None = None,
              end: str | None = None, row_limit: int | None = None, to_lake: str | None = None,
              overwrite: bool = False, dry_run: bool = False, progress: str = "terminal", say: Say = print,
              display_limit: int | None = None, **cache_options: Any) -> Any:
    """Run one ``%%sparkhunt`` cell: a Result for KQL/SQL (and PySpark cells ending in a DataFrame),
    the value of a PySpark cell's last line otherwise, or None when only connecting/binding a lake."""
    from kqlmagic_plus.api import make_window, run
    from kqlmagic_plus.config import settings
    from kqlmagic_plus.engines.spark.progress import sink_factory

    if mode not in MODES:
        raise OptionError(f"mode {mode!r}: use one of {', '.join(MODES)}")
    session = bind(connect=connect, lake=lake, conf=conf, say=say)
    if not code.strip():
        return None
    engine = SparkEngine(session, progress=sink_factory(progress), say=say)
    window = make_window(timespan, start, end)
    options: dict[str, Any] = {"mode": mode, "row_limit": row_limit, "to_lake": to_lake,
                               "overwrite": overwrite or None}
    options.update({k: v for k, v in cache_options.items() if v is not None})
    if mode == "pyspark" or to_lake:
        options["no_cache"] = True
    request = Request(query=code, params=dict(params or {}), namespace=namespace, window=window,
                      now=window.end if timespan and window is not None else None, dry_run=dry_run,
                      options={k: v for k, v in options.items() if v is not None})
    value = engine.run_pyspark(request) if mode == "pyspark" else run(engine, request)
    if isinstance(value, Result):
        cfg = settings()
        value.display_limit = display_limit if display_limit is not None else cfg.display_limit
        value.show_chart = cfg.show_chart
    return value


def bind(*, connect: str | None = None, lake: str | None = None, conf: Mapping[str, str] | None = None,
         say: Say = print) -> SparkHandle:
    """The session cells run on (connected to *connect*, with *lake* bound, when given)."""
    mgr = manager()
    session = mgr.connect(connect, conf=conf, say=say) if (connect or conf) else mgr.current(say=say)
    if lake:
        from kqlmagic_plus.engines.spark.lake import SparkLake

        bound = SparkLake(lake)
        bound.check_credentials(session)
        session.lake = bound
        names = bound.table_names(session)
        say(f"Spark: lake {bound.display} bound: {len(names)} table(s)"
            + (f" ({', '.join(names[:8])}{' ...' if len(names) > 8 else ''})" if names else ""))
    return session


# -- built-in hunts ---------------------------------------------------------------------------------


def _hunts() -> Any:
    try:
        from kqlmagic_plus import hunts
    except ImportError as exc:
        raise EngineUnavailableError(f"the built-in hunts (kqlmagic_plus.hunts) are not available in this build "
                                     f"({exc}); write the hunt as KQL, SQL or PySpark in a %%sparkhunt cell") from None
    return hunts


def hunt_names() -> list[str] | None:
    """Names of the built-in hunts, or None when the hunts module is not there."""
    try:
        hunts = _hunts()
    except EngineUnavailableError:
        return None
    for attr in ("list_hunts", "names", "hunt_names"):
        fn = getattr(hunts, attr, None)
        if callable(fn):
            items = fn()
            return [getattr(h, "name", h) if not isinstance(h, str) else h for h in items]
    registry = getattr(hunts, "HUNTS", None)
    return sorted(registry) if registry is not None else []


def hunt_catalog() -> list[dict[str, str]]:
    """Each built-in hunt's name, what it finds and the table it reads (:func:`kqlmagic_plus.hunts.catalog`)."""
    return _hunts().catalog()


def run_hunt(name: str, params: Mapping[str, Any], *, connect: str | None = None, lake: str | None = None,
             engine: str | None = None, table: str | None = None, say: Say = print) -> Any:
    """``%sparkhunt NAME ...``: a built-in hunt through :func:`kqlmagic_plus.hunts.run_hunt`.

    Engine ``spark`` runs on the current (or *connect*) session; ``duckdb`` on the embedded engine. The
    default is spark when a Spark session is connected in this kernel (or *connect* is given), else duckdb.
    The lake is *lake*, else the one bound to the Spark session.
    """
    hunts = _hunts()
    hunts.get_hunt(name).resolve(params)  # bad parameters fail here, before a session starts
    mgr = manager()
    if engine is None:
        engine = "spark" if (connect or mgr.peek() is not None) else "duckdb"
    engine = engine.lower()
    if engine == "duckdb":
        if connect:
            raise OptionError("--connect picks a Spark session; with --engine duckdb leave it out")
        if lake is None and table is None:
            current = mgr.peek()
            if current is not None and current.lake is not None and current.lake.kind == "local":
                lake = current.lake.lake.root
        return hunts.run_hunt(name, engine="duckdb", lake=lake, table=table, **dict(params))
    session = bind(connect=connect, lake=lake, say=say)
    if session.spark is None:
        raise OptionError(f"--engine spark: the hunts run on a local or Spark Connect session, not on "
                          f"{session.target.display}; use --engine duckdb or connect local[N] / sc://...")
    hunt_lake = None
    if table is None and session.lake is not None:
        if session.lake.kind != "local":
            raise OptionError(f"the hunts read a local lake folder; {session.lake.display} is remote "
                              "(write the hunt as %%sparkhunt --sql over the lake's views instead)")
        hunt_lake = session.lake.lake.root
    return hunts.run_hunt(name, engine="spark", session=session.spark, lake=hunt_lake, table=table,
                          **dict(params))


def describe_hunt(name: str) -> str:
    return _hunts().describe(name)


def hunt_figure(result: Any) -> Any:
    return _hunts().figure(result)


def parse_hunt_params(words: list[str]) -> dict[str, Any]:
    """``k=v`` words: Python literals where they parse (numbers, quoted strings, lists), text otherwise."""
    out: dict[str, Any] = {}
    for w in words:
        k, eq, v = w.partition("=")
        if not eq or not k.isidentifier():
            raise OptionError(f"hunt parameter {w!r}: write name=value")
        try:
            out[k] = ast.literal_eval(v)
        except (ValueError, SyntaxError):
            out[k] = v
    return out
