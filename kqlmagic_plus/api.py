"""The Python API: everything the magics do, without IPython.

    >>> import kqlmagic_plus as kp
    >>> r = kp.kql("print x = 1")
    >>> r.df
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.config import settings
from kqlmagic_plus.engines.registry import connections
from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.request import Request, make_window

if TYPE_CHECKING:
    from kqlmagic_plus.cache.commands import Report
    from kqlmagic_plus.display.schema import SchemaView
    from kqlmagic_plus.engines.base import Engine
    from kqlmagic_plus.options import KqlLine
    from kqlmagic_plus.results import Result


def kql(
    query: str,
    conn: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    namespace: Mapping[str, Any] | None = None,
    mounts: Mapping[str, str] | None = None,
    timeout: float | None = None,
    timespan: str | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    dry_run: bool = False,
    display_limit: int | None = None,
    **options: Any,
) -> Result:
    """Run a KQL query and return a :class:`~kqlmagic_plus.results.Result`.

    *conn* is a connection string or alias (default: the current connection, else ``local://``).
    *namespace* maps names to DataFrames the query may read as tables; *mounts* maps table names to
    files (Parquet, CSV, JSON; globs). *params* are bound as query parameters, never spliced as text.
    """
    cfg = settings()
    given_query, given_params = query, params
    _, engine = connections().resolve(conn, namespace=namespace)
    from kqlmagic_plus.cache import modes as cache

    if cache.replay_folder(options) is None:  # in replay no query reaches an engine, not even a mount
        for name, path in (mounts or {}).items():
            _mount(engine, name, path)
    if namespace is not None:
        from kqlmagic_plus.language.params import merge_params, resolve_python_lets

        # Kqlmagic's `let x = pyvar;`: the value is bound as parameter x, never spliced as text.
        query, from_lets = resolve_python_lets(query, namespace)
        params = merge_params(from_lets, params)
    window = make_window(timespan, start, end)
    pull_to = options.pop("pull", None)
    request = Request(
        query=query,
        params=dict(params or {}),
        namespace=namespace,
        window=window,
        # A --timespan window ends at "now": ago()/now() in the query must resolve to that same instant.
        now=window.end if timespan and window is not None else None,
        timeout=timeout if timeout is not None else (cfg.timeout or None),
        dry_run=dry_run,
        options={k: v for k, v in options.items() if v is not None},
    )
    from kqlmagic_plus.engines import slicing

    if request.options.get("split_by"):
        result = slicing.run_sliced(engine, request, request.options["split_by"], run)
    else:
        result = run(engine, request)
        slicing.offer(result, request, engine.name)  # a capped answer names the --split-by remedy
    if pull_to and not dry_run:
        _pull(result, str(pull_to), query)
    result.display_limit = display_limit if display_limit is not None else cfg.display_limit
    result.show_chart = cfg.show_chart
    result.source_params = dict(params or {})
    # Kqlmagic's result.refresh(): the same call, past the cache.
    again = {**options, "refresh": True} if not options.get("no_cache") else options
    result.rerun = lambda: kql(given_query, conn, given_params, namespace=namespace, mounts=mounts, timeout=timeout,
                               timespan=timespan, start=start, end=end, dry_run=dry_run,
                               display_limit=display_limit, **again)
    return result


def run(engine: Engine, request: Request) -> Result:
    """Run *request* on *engine*: the single path every entry point takes (cache hooks live here).

    A Ctrl-C while the engine works cancels the engine's query and leaves the session usable.
    """
    from kqlmagic_plus.cache import modes as cache

    def compute(req: Request) -> Result:
        if threading.current_thread() is not threading.main_thread():
            return engine.run(req)
        try:
            return engine.run(req)
        except KeyboardInterrupt:
            engine.cancel()
            from kqlmagic_plus.errors import QueryCancelledError

            raise QueryCancelledError("cancelled (Ctrl-C); the connection is still usable") from None

    return cache.run(engine, request, compute)


def _pull(result: Result, target: str, query: str) -> None:
    """``--pull [TABLE=]DIR``: the rows into the lake layout under DIR, as TABLE (default: the table the
    query reads, when it reads one)."""
    from kqlmagic_plus.engines.sentinellake import table_names
    from kqlmagic_plus.lake.pull import pull

    name, eq, folder = target.partition("=")
    if not eq:
        name, folder = "", target
    name = name.strip()
    if not name:
        read = table_names(query)
        if len(read) != 1:
            raise OptionError(f"--pull {folder}: name the table to write (--pull TABLE={folder}); the query reads "
                              + (", ".join(read) if read else "no table by name"))
        name = read[0]
    if result.truncated:
        result.warnings.append("--pull wrote a truncated result: the lake copy misses the same rows.")
    done = pull(result.table, result.kql_types, folder.strip(), name)
    result.warnings.append(done.note())
    result.stats["pulled"] = {"folder": done.folder, "table": done.table, "rows": done.rows, "files": done.files}


def _mount(engine: Engine, name: str, path: str) -> None:
    mount = getattr(engine, "mount", None)
    if mount is None:
        raise OptionError(f"--mount works with the local engine; the current connection is {engine.name}")
    mount(name, path)


def schema(conn: str | None = None, *, namespace: Mapping[str, Any] | None = None,
           refresh: bool = False) -> SchemaView:
    """``{table: {column: KQL type}}`` of a connection (default: the current one), Kqlmagic's ``--schema``
    shape; it shows itself as a tree in a notebook. Remote schemas are fetched once per connection.

    For the local engine the DataFrames of *namespace* are tables too, and are listed.
    """
    from kqlmagic_plus.display.schema import SchemaView

    registry = connections()
    current = registry.current
    try:
        _, engine = registry.resolve(conn, namespace=namespace)
    finally:
        if conn is not None:
            registry.current = current  # looking at a connection's schema does not switch to it
    tables = dict(engine.table_schemas(refresh=refresh))
    if engine.name == "local" and namespace is not None:
        from kqlmagic_plus.engines.schemas import namespace_schemas

        for name, cols in namespace_schemas(namespace).items():
            tables.setdefault(name, cols)
    return SchemaView(dict(sorted(tables.items())), connection=engine.target)


def run_line(line: KqlLine, *, namespace: Mapping[str, Any] | None = None,
             params: Mapping[str, Any] | None = None,
             query_properties: Mapping[str, Any] | None = None) -> Result | Report | SchemaView | str | None:
    """Do what a parsed ``%kql`` line asks: a cache command, a connection (and mounts), or a query.

    *params* (from ``--params VAR`` and ``--param NAME=EXPR``) and *query_properties* (from
    ``--query-properties VAR``) are resolved by the caller, which owns the namespace they come from.
    Returns the query's Result, a cache command's Report, the text to show for a connection, or None.
    """
    report = None
    if line.cache.given:
        from kqlmagic_plus.cache import commands

        c = line.cache
        report = commands.command(c.command, export_to=c.export_to, older_than=c.older_than, replay=c.replay,
                                  ttl=c.ttl)
    action = line.action
    if action == "cache":
        return report
    if action == "schema":
        return schema(line.conn, namespace=namespace, refresh=line.cache.refresh)
    if action == "connect":
        _, engine = connections().resolve(line.conn, namespace=namespace if line.conn is not None else None)
        for name, path in line.mounts:
            _mount(engine, name, path)
        if line.conn is not None:
            return f"Connected: {engine.target}"
        return "Mounted: " + ", ".join(name for name, _ in line.mounts)
    options: dict[str, Any] = {}
    if line.workspaces:
        options["workspaces"] = list(line.workspaces)
    if line.fail_on_partial:
        options["fail_on_partial"] = True
    if line.split_by:
        options["split_by"] = line.split_by
    if line.pull:
        options["pull"] = line.pull
    if query_properties:
        options["query_properties"] = dict(query_properties)
    if line.cache.ttl is not None:
        options["cache"] = line.cache.ttl
    if line.cache.no_cache:
        options["no_cache"] = True
    if line.cache.refresh:
        options["refresh"] = True
    result = kql(line.query, conn=line.conn, params=params, namespace=namespace, mounts=dict(line.mounts),
                 timeout=line.timeout, timespan=line.timespan, start=line.start, end=line.end,
                 dry_run=line.dry_run, display_limit=line.display_limit, **options)
    if line.no_chart:
        result.show_chart = False
    return result

