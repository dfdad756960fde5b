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
import contextlib
from collections.abc import Mapping
from typing import Any

from kqlmagic_plus.engines.spark.engine import SparkEngine
from kqlmagic_plus.engines.spark.handle import Say, SparkHandle
from kqlmagic_plus.engines.spark.sessions import manager
from kqlmagic_plus.errors import EngineUnavailableError, OptionError
from kqlmagic_plus.request import Request
from kqlmagic_plus.results import Result

MODES = ("kql", "sql", "pyspark")


def sparkhunt(code: str = "", *, mode: str = "kql", connect: str | None = None, lake: str | None = None,
              conf: Mapping[str, str] | None = None, namespace: dict[str, Any] | None = None,
              params: Mapping[str, Any] | None = None, timespan: str | None = None, start: str | None = None,
              end: str | None = None, row_limit: int | None = None, to_lake: str | None = None,
              overwrite: bool = False, dry_run: bool = False, progress: str = "terminal", say: Say = print,
              display_limit: int | None = None, **cache_options: Any) -> Any:
    """Run one ``%%sparkhunt`` cell: a Result for KQL/SQL (and PySpark cells ending in a DataFrame),
    the value of a PySpark cell's last line otherwise, or None when only connecting/binding a lake."""
    from kqlmagic_plus.api import run
    from kqlmagic_plus.config import settings
    from kqlmagic_plus.engines.spark.progress import sink_factory
    from kqlmagic_plus.request import make_window

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


def schema(*, connect: str | None = None, lake: str | None = None, refresh: bool = False, say: Say = print) -> Any:
    """``{table: {column: KQL type}}`` of the session (started if need be): its lake's tables and its catalog's
    tables and views, as a :class:`~kqlmagic_plus.display.schema.SchemaView`. Kept per session; *refresh*
    reads it again."""
    from kqlmagic_plus.display.schema import SchemaView

    session = bind(connect=connect, lake=lake, say=say)
    engine = schema_engine(session)
    tables = engine.table_schemas(refresh=refresh or bool(lake))
    return SchemaView(dict(sorted(tables.items())), connection=engine.target)


_schema_engines: dict[int, SparkEngine] = {}


def schema_engine(session: SparkHandle) -> SparkEngine:
    """The engine that keeps *session*'s schema (one per session, shared by --schema and completion)."""
    from kqlmagic_plus.engines.spark.progress import sink_factory

    engine = _schema_engines.get(id(session))
    if engine is None or engine.session is not session:
        engine = _schema_engines[id(session)] = SparkEngine(session, progress=sink_factory("none"),
                                                            say=lambda *_: None)
    return engine


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
             engine: str | None = None, table: str | None = None, say: Say = print,
             progress: str = "none") -> Any:
    """``%sparkhunt NAME ...``: a built-in hunt through :func:`kqlmagic_plus.hunts.run_hunt`.

    *progress* is the style of the progress shown for the hunt's Spark jobs on a local or standalone session
    (``notebook``, ``terminal`` or ``none``; see :mod:`kqlmagic_plus.engines.spark.progress`).

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
    from kqlmagic_plus.engines.spark import quiet
    from kqlmagic_plus.engines.spark.progress import ProgressSink, tracked_jobs

    with contextlib.ExitStack() as stack:
        stack.enter_context(quiet.quiet_warnings())  # PySpark's own warnings (pandas 3), not the user's
        if session.kind in ("local", "standalone") and progress != "none":
            stack.enter_context(tracked_jobs(session.spark.sparkContext, ProgressSink(progress, label=f"Spark {name}")))
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
