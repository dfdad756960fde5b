"""The embedded engine: KQL on DuckDB through duckdb-kql.

Tables a query can read: DataFrames (and Arrow tables, and earlier Results) in the caller's
namespace by variable name; files mounted by name (Parquet, CSV, JSON lines; globs); tables of a
DuckDB database file; and an exported Log Analytics lake (see :mod:`kqlmagic_plus.lake`).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.engines import limits
from kqlmagic_plus.engines.base import Engine
from kqlmagic_plus.errors import (
    CANCELLED,
    KqlMagicPlusError,
    OptionError,
    QueryCancelledError,
    QueryError,
    QuerySyntaxError,
    TableNotFoundError,
    UnsupportedQueryError,
)
from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.aliases import Rewritten, referenced_names, rewrite_for_local

if TYPE_CHECKING:
    from kqlmagic_plus.connections.spec import ConnectionSpec
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import Result

#: Engines that run KQL a local refusal can be sent to instead.
_REMOTE_ENGINES = ("Log Analytics / Sentinel", "Azure Data Explorer")

_FILE_READERS = {
    ".parquet": "read_parquet",
    ".pq": "read_parquet",
    ".csv": "read_csv_auto",
    ".tsv": "read_csv_auto",
    ".json": "read_json_auto",
    ".jsonl": "read_json_auto",
    ".ndjson": "read_json_auto",
}


class LocalEngine(Engine):
    name = "local"

    def __init__(self, db: str | None = None, lake: str | None = None, read_only: bool = False,
                 lake_spec: ConnectionSpec | None = None):
        self._db = db
        self._lake_root = lake
        #: The connection string of a lake in Azure Storage (its keys and sign-in; connections/storage.py).
        self._lake_spec = lake_spec
        self._read_only = read_only
        self._con: Any = None
        self._our_refusal: KqlMagicPlusError | None = None
        self._deferred = False
        self._lock = threading.RLock()
        self._mounts: dict[str, str] = {}
        #: Python objects exposed as views (DataFrames named by the query, DataFrame parameters).
        self._registered: dict[str, Any] = {}
        #: Columns of the database's own tables and views; None = read it again. Reading
        #: information_schema costs ~5 ms a query, so it is kept until something changes it.
        self._catalog: dict[str, list[str]] | None = None
        self._lake: Any = None
        self._cancelled = False
        self._namespace_tables: list[str] = []
        #: Runs each query on a worker thread within its --timeout (limits.py); the memory limit applied.
        self._runner = limits.Runner(self._interrupt)
        self._memory: limits.MemoryLimit | None = None
        #: Ingestion commands (.set, .append, ...) run by this engine, and a name for its session: the
        #: cache key of a query holds both once the session's own tables may have changed.
        self._writes = 0
        self._session = os.urandom(8).hex()

    @classmethod
    def from_spec(cls, spec: ConnectionSpec) -> LocalEngine:
        from kqlmagic_plus.lake.storage import is_remote

        remote = is_remote(spec.get("lake") or "")
        unknown = set(spec.props) - {"db", "database", "lake", "readonly", "read_only"}
        if remote:
            from kqlmagic_plus.connections.spec import AUTH_KEYS
            from kqlmagic_plus.connections.storage import LAKE_KEYS

            unknown -= LAKE_KEYS | set(AUTH_KEYS)
        if unknown:
            raise OptionError(f"local:// does not take {', '.join(sorted(unknown))}; "
                              "it takes db='path.duckdb', lake='DIR' and readonly='true'")
        db = spec.get("db") or spec.get("database")
        ro = (spec.get("readonly") or spec.get("read_only") or "").lower() in ("1", "true", "yes")
        return cls(db=db, lake=spec.get("lake"), read_only=ro, lake_spec=spec if remote else None)

    @property
    def target(self) -> str:
        parts = []
        if self._db:
            parts.append(f"db={os.path.abspath(self._db)}")
        if self._lake_root:
            from kqlmagic_plus.lake.storage import is_remote

            if is_remote(self._lake_root):  # the URL without any SAS after it
                from kqlmagic_plus.redaction import redact

                parts.append(f"lake={redact(self._lake_root.split('?', 1)[0])}")
            else:
                parts.append(f"lake={os.path.abspath(self._lake_root)}")
        return "local://" + ";".join(parts)

    # -- session -----------------------------------------------------------------------------------

    @property
    def con(self) -> Any:
        if self._con is None:
            import duckdb
            import duckdb_kql

            if self._db and not os.path.exists(self._db) and self._read_only:
                raise OptionError(f"DuckDB database file {self._db!r} does not exist")
            try:
                self._con = duckdb_kql.connect(self._db or ":memory:", read_only=self._read_only)
            except duckdb.Error as exc:
                raise QueryError(f"cannot open DuckDB database {self._db!r}: {_first_line(exc)}") from None
            self._memory = limits.configure(self._con, None)  # memory limit, spill folder, nesting depth
        return self._con

    def mount(self, name: str, path: str) -> None:
        """Make the files at *path* (a file, a folder of one format, or a glob) readable as table *name*."""
        if not name.isidentifier():
            raise OptionError(f"--mount {name}=...: {name!r} is not a valid table name")
        source = _reader_sql(path)
        with self._lock:
            try:
                self.con.execute(f'CREATE OR REPLACE TEMP VIEW "{name}" AS SELECT * FROM {source}')
                self._catalog = None
            except Exception as exc:
                raise OptionError(f"--mount {name}={path}: {_first_line(exc)}") from None
            # DuckDB names ignore case: "flows" replaced the view of an earlier mount "Flows".
            for other in [m for m in self._mounts if m.lower() == name.lower()]:
                del self._mounts[other]
            self._mounts[name] = path

    @property
    def lake(self) -> Any:
        if self._lake is None and self._lake_root:
            if self._lake_spec is not None:
                from kqlmagic_plus.connections.storage import open_lake

                self._lake = open_lake(self._lake_root, self._lake_spec)
            else:
                from kqlmagic_plus import lake as lake_mod

                self._lake = lake_mod.Lake(self._lake_root)
        return self._lake

    def tables(self) -> list[str]:
        names = set(self._mounts)
        with self._lock:
            rows = self.con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN "
                "('information_schema', 'pg_catalog')").fetchall()
        names.update(r[0] for r in rows)
        if self.lake is not None:
            names.update(self.lake.table_names())
        return sorted(names - {"__kqlmp_dummy"})

    def schema(self) -> dict[str, list[str]]:
        """Table -> columns, as duckdb-kql needs it for joins and column order."""
        if self._catalog is None:
            import duckdb_kql.engine as dk

            raw = dk.schema(self.con)
            # Temp views (mounts, lake tables, registered objects) are listed as "temp.X"; queries name them X.
            for name, cols in list(raw.items()):
                if name.startswith("temp."):
                    raw.setdefault(name[5:], cols)
            self._catalog = {t: c for t, c in raw.items() if t not in self._registered}
        out = dict(self._catalog)
        for name, obj in self._registered.items():
            out[name] = _columns_of(obj)
        return out

    def table_schemas(self, refresh: bool = False) -> dict[str, dict[str, str]]:
        """DuckDB's tables and views (mounts included) with KQL types, read each time (~2 ms: mounts and
        ``.set`` change them), plus the lake's tables (read once; *refresh* reads them again)."""
        rows: list[Any] = []
        if self._con is not None or self._db:  # an in-memory database nothing has used holds no tables yet
            with self._lock:
                rows = self.con.execute(
                    "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema "
                    "NOT IN ('information_schema', 'pg_catalog') ORDER BY table_name, ordinal_position").fetchall()
        out: dict[str, dict[str, str]] = {}
        for table, column, duckdb_type in rows:
            if table in self._registered or table == "__kqlmp_dummy":
                continue  # a namespace DataFrame a query registered: the namespace itself is the truth
            out.setdefault(table, {})[column] = kqltypes_of(duckdb_type)
        if self.lake is not None:
            lake_part = getattr(self, "_lake_schemas", None)
            if lake_part is None or refresh:
                lake_part = {t: dict(self.lake.schema_for(t)) for t in self.lake.table_names()}
                self._lake_schemas = lake_part
            for table, cols in lake_part.items():
                out.setdefault(table, cols)
        return out

    def cached_table_schemas(self) -> dict[str, dict[str, str]] | None:
        return self.table_schemas()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
            limits.release(self._memory)
            self._memory = None

    def cancel(self) -> None:
        self._cancelled = True
        self._runner.cancel()

    def _interrupt(self) -> None:
        if self._con is not None:
            self._con.interrupt()

    # -- running -----------------------------------------------------------------------------------

    def run(self, request: Request) -> Result:
        """The query on a worker thread: --timeout bounds all of it (parse, registration, execution, rows)."""
        from kqlmagic_plus.config import check_timeout

        timeout = check_timeout(request.timeout, "timeout")
        return self._runner.run(functools.partial(self._run_within_limits, request), timeout)

    def _run_within_limits(self, request: Request) -> Result:
        from kqlmagic_plus.language.compiler.syntax import TooDeep, check_depth, deep, too_deep_message

        try:
            nested = check_depth(request.query)
            with self._lock:
                self._memory = limits.configure(self.con, self._memory)  # %config may have changed it
            return deep(functools.partial(self._run, request), nested)  # deeply nested: room to recurse
        except TooDeep:
            raise QueryError(too_deep_message(request.query)) from None

    def _run(self, request: Request) -> Result:
        from kqlmagic_plus import kqltypes
        from kqlmagic_plus.results import Result

        started = time.perf_counter()
        with self._lock:
            self._cancelled = False
            query, spec = _split_render(request.query)
            # Deprecated names renamed, every string literal form (h"...", ```...```, \u...) decoded.
            rewritten = rewrite_for_local(query)
            warnings: list[str] = []
            stats: dict[str, Any] = {}
            names = referenced_names(rewritten.text)
            window = _window_for(request, rewritten.text) if self.lake is not None else None
            report = self._register_lake(window, names)
            self._register_namespace(rewritten.text, request.namespace)
            # One compiler for every engine: ours first (the same translation Spark runs), duckdb-kql for
            # what ours does not translate (control commands among them).
            self._our_refusal = None
            self._deferred = False
            # Parameters travel beside the text as prepared-statement values: duckdb-kql binds them so, and
            # our compiler translates what duckdb-kql refuses.
            compiled = None if request.params else self._compile_ours(rewritten, request)
            tried_ours = not request.params and not self._deferred
            sql = None
            if compiled is None:
                try:
                    sql = self._translate(rewritten, request)
                    stats["translator"] = "duckdb-kql (the kqlmagic_plus compiler does not translate this query)"
                except UnsupportedQueryError:
                    if not tried_ours:
                        compiled = self._compile_ours(rewritten, request, force=True)
                    if compiled is None:
                        if self._our_refusal is not None:
                            raise self._our_refusal from None
                        raise
            if compiled is not None and compiled.external:  # what is (or, for a dry run, would be) fetched
                from kqlmagic_plus.engines.externaldata import urls_shown

                stats["externaldata"] = urls_shown(compiled.external)
            if request.dry_run:
                if report is not None:
                    stats["lake"] = report.summary()
                import pyarrow as pa

                shown = compiled.sql if compiled is not None else self._bound.executed(str(sql))
                return Result(table=pa.table({}), kql_types=[], query=request.query, connection=self.target,
                              engine=self.name, executed=shown,
                              parameters={} if compiled is not None else self._bound.sent(), render=spec,
                              elapsed=time.perf_counter() - started, stats={**stats, "dry_run": True},
                              warnings=warnings)
            from kqlmagic_plus.engines.sqlopt import optimize

            executed = compiled.sql if compiled is not None else optimize(str(sql))
            sql_params = {} if compiled is not None else dict(sql.parameters)
            external = compiled.external if compiled is not None else ()
            if external:  # fetched now, just before the SQL that reads them (never at compile time)
                from kqlmagic_plus.engines import externaldata

                warnings.extend(externaldata.register_duckdb(self.con, external))
            try:
                rel_types, table, compiled, executed, report = self._execute_retrying(
                    executed, sql_params, compiled, rewritten, request, window, names, stats, report)
            finally:
                if external:
                    externaldata.unregister_duckdb(self.con, external)
            if report is not None:
                stats["lake"] = report.summary()
                warnings.extend(report.warnings)
            if compiled is not None:
                kql_types = [t for _, t in compiled.columns]
                shown, sent = compiled.sql, {}
            else:
                kql_types = [kqltypes.kql_type_of_duckdb(t) for t in rel_types]
                shown, sent = self._bound.executed(executed), self._bound.sent()
            return Result(
                table=kqltypes.canonical_table(table, kql_types), kql_types=kql_types, query=request.query,
                connection=self.target, engine=self.name, elapsed=time.perf_counter() - started,
                executed=shown, parameters=sent, render=spec, warnings=warnings, stats=stats)

    def _execute_retrying(self, executed: str, sql_params: dict[str, Any], compiled: Any, rewritten: Rewritten,
                          request: Request, window: Any, names: set[str], stats: dict[str, Any],
                          report: Any) -> Any:
        """Run the SQL: again over a lake whose files changed meanwhile, or as duckdb-kql's where DuckDB
        rejects ours. (rel_types, table, compiled, executed, the lake's last registration report)."""
        from kqlmagic_plus.engines.sqlopt import optimize

        for _attempt in range(_LAKE_ATTEMPTS):
            try:
                rel_types, table = self._execute(executed, sql_params)
                break
            except QueryError as exc:
                # A lake file damaged past the cheap checks: rescan it, report it, run again on the rest.
                # One deleted since it was listed (retention): list the window again and run on what is there.
                if self.lake is not None and (self.lake.recover(str(exc)) or _lake_file_gone(str(exc), self.lake)):
                    if _attempt == _LAKE_ATTEMPTS - 1:
                        raise QueryError(f"the lake's files kept changing while the query read them "
                                         f"({_LAKE_ATTEMPTS} tries): {_first_line(exc)}") from None
                    report = self._register_lake(window, names)
                    continue
                # Where DuckDB rejects our SQL for a query duckdb-kql also translates, its SQL is the answer.
                if compiled is None or type(exc.__context__).__name__ != "BinderException":
                    raise
                try:
                    sql = self._translate(rewritten, request)
                except KqlMagicPlusError:
                    raise exc from None
                compiled, executed = None, optimize(str(sql))
                sql_params = dict(sql.parameters)
                stats["translator"] = "duckdb-kql (DuckDB rejected the kqlmagic_plus compiler's SQL)"
            finally:
                if rewritten.text.lstrip().startswith("."):
                    self._catalog = None  # a control command may have created or changed tables
                    self._writes += not rewritten.text.lstrip()[1:].startswith("show")
        return rel_types, table, compiled, executed, report

    def _compile_ours(self, rewritten: Rewritten, request: Request, force: bool = False) -> Any:
        """The query through kqlmagic_plus's KQL -> DuckDB compiler, or None when it refuses it too."""
        from kqlmagic_plus.language.compiler import compile as kql_compile

        schema: dict[str, list[tuple[str, str]]] = {}
        for name, rows in self._describe(referenced_names(rewritten.text)).items():
            schema[name] = [(r[0], kqltypes_of(r[1])) for r in rows]
            if not force and any(_decimal_scale(r[1]) > 18 for r in rows):
                self._deferred = True  # the compiler holds 18 decimal places; duckdb-kql keeps the column's own
                return None
        from kqlmagic_plus.language.compiler.probe import reading_rows

        try:
            # bag_unpack with no output schema reads its bags' keys through this connection first.
            with reading_rows(self._probe_rows):
                return kql_compile(rewritten.text, schema, "duckdb", params=dict(request.params or {}),
                                   now=request.now)
        except UnsupportedQueryError as exc:  # raised if duckdb-kql refuses too: it names the construct
            self._our_refusal = exc
            return None
        except QueryError as exc:
            if "externaldata" in exc.message:  # duckdb-kql has no externaldata: its refusal would hide what is wrong
                self._our_refusal = exc
            return None
        except Exception:  # duckdb-kql decides (its error names what is wrong as well as ours would)
            return None

    def _describe(self, names: set[str]) -> dict[str, list[tuple[str, str]]]:
        """(column, DuckDB type) of each of *names* that is a table or view here, found as DESCRIBE finds it
        (temporary first, then the current database). One catalog query: most of a query's identifiers are
        columns, functions and keywords, and a DESCRIBE that fails costs up to a millisecond each in DuckDB
        (8 ms a run of a join, 8 % of it)."""
        if not names:
            return {}
        wanted = {n.lower(): n for n in names}
        found: dict[str, tuple[tuple[Any, ...], list[tuple[str, str]]]] = {}
        try:
            rows = self.con.execute(
                "SELECT table_name, column_name, data_type, CASE WHEN database_name = 'temp' THEN 0 ELSE 1 END, "
                "database_name, schema_name FROM duckdb_columns() WHERE list_contains(?, lower(table_name)) "
                "AND (database_name = 'temp' OR (database_name = current_database() AND schema_name = "
                "current_schema())) ORDER BY 4, database_name, schema_name, table_name, column_index",
                [list(wanted)]).fetchall()
        except Exception:  # an older DuckDB: one DESCRIBE a name, as before
            out = {}
            for name in names:
                try:
                    got = self.con.execute(f'DESCRIBE "{name.replace(chr(34), chr(34) * 2)}"').fetchall()
                except Exception:  # not a table here (a let name, a function): the compiler decides
                    continue
                out[name] = [(r[0], r[1]) for r in got]
            return out
        for table, column, dtype, rank, db, sch in rows:
            key = table.lower()
            place = (rank, db, sch, table)
            if key not in found:
                found[key] = (place, [])
            if found[key][0] == place:  # the first place DESCRIBE would look (a temp view hides a table)
                found[key][1].append((column, dtype))
        return {wanted[k]: cols for k, (_place, cols) in found.items()}

    def cache_inputs(self, request: Request) -> Any:
        """The files *request* reads, found as :meth:`run` finds them (for the result cache's key).

        Each table name in the query, resolved as DuckDB resolves it (case-insensitively), maps to the
        files behind it: a lake table's blobs in the query's window (as :meth:`run` plans them,
        skipped files included), a mount's files (every file under a mounted folder, dot files
        included, as DuckDB's glob reads them), and the database file. After an ingestion command
        the session's own tables may differ from any other session's: the session and its write
        count are part of the state then."""
        from kqlmagic_plus.cache.key import InputFiles, Unkeyable

        try:
            query, _ = _split_render(request.query)
            text = rewrite_for_local(query).text
        except KqlMagicPlusError as exc:  # run() raises the same error, with its position
            raise Unkeyable(f"the query ({type(exc).__name__})") from None
        words = {n.lower() for n in referenced_names(text)}
        groups: dict[str, list[str]] = {}
        blobs: dict[str, list[tuple[str, str, int]]] = {}
        with self._lock:
            for name, path in self._mounts.items():
                if name.lower() in words:
                    groups[f"mount:{name}"] = _mount_files(path)
            try:
                lake = self.lake
                window = _window_for(request, text) if lake is not None else None
                for name in lake.table_names() if lake is not None else []:
                    if name.lower() in words and lake.remote is not None:
                        # A lake in Azure Storage: the listed blobs' ETags, listed as run() lists them.
                        blobs[name] = lake.blob_versions(name, window)
                    elif name.lower() in words:
                        plan = lake.plan(name, window)
                        groups[f"lake:{name}"] = [f.path for f in plan.files] + [f.path for f, _ in plan.skipped]
            except Exception as exc:  # the lake cannot be listed now: run() reports why
                raise Unkeyable(f"the lake listing ({type(exc).__name__})") from None
        if self._db:
            groups["db"] = [self._db, self._db + ".wal"]
        state: Any = {"session": self._session, "writes": self._writes} if self._writes else None
        if blobs:
            state = {"engine": state, "lake_blobs": {k: [list(v) for v in vs] for k, vs in sorted(blobs.items())}}
        return InputFiles(groups, state)

    def _register_lake(self, window: Any, names: set[str]) -> Any:
        """(Re)build the views of the lake tables the query names, over the files its window needs."""
        if self.lake is None:
            return None
        report = self.lake.register_duckdb(self.con, window=window, tables=names)
        self._catalog = None
        return report

    def _register_namespace(self, query: str, namespace: Mapping[str, Any] | None) -> None:
        """Expose the DataFrames the query names as views; drop those an earlier query left behind."""
        wanted: dict[str, Any] = {}
        if namespace:
            # DuckDB names ignore case: a mount "Flows" shadows a variable "flows".
            existing = {t.lower() for t in self._real_tables()}
            for name in referenced_names(query):
                if name.lower() in existing or name not in namespace:
                    continue
                value = _as_table(namespace[name])
                if value is not None:
                    wanted[name] = value
        for name in set(self._registered) - set(wanted):
            self.con.unregister(name)
        for name, value in wanted.items():
            self._register(name, _typed(name, value))
        self._registered = dict(wanted)
        self._namespace_tables = sorted(
            k for k, v in (namespace or {}).items() if not k.startswith("_") and _as_table(v) is not None)

    def _register(self, name: str, value: Any) -> None:
        """A DataFrame or Arrow table as view *name*. DuckDB has no tables without columns, so one is
        refused by name instead of failing inside DuckDB."""
        columns = value.num_columns if hasattr(value, "num_columns") else len(getattr(value, "columns", ()))
        if columns == 0:
            raise QueryError(f"table {name!r} has no columns ({type(value).__name__} with "
                             f"{len(value)} rows and no columns): there is nothing to query")
        self.con.register(name, value)

    def _real_tables(self) -> set[str]:
        if self._catalog is None:
            self.schema()
        return set(self._catalog or {})

    def _translate(self, rewritten: Rewritten, request: Request) -> Any:
        import duckdb_kql
        from duckdb_kql import KqlSchemaError, KqlSyntaxError, KqlUnsupportedError

        text = rewritten.text
        _refuse_known_gaps(rewritten)
        try:
            from kqlmagic_plus.language import params

            # Values travel beside the text (prepared-statement parameters), DataFrames as tables.
            bound = params.bind(text, request.params, "declare")
            rewritten = bound.rebase(rewritten)
            self._bound = bound
            for name, df in bound.tables.items():
                self._register(name, df)
                self._registered[name] = df
            schema = self.schema()
            if bound.values:
                return duckdb_kql.to_sql(bound.query, schema=schema, parameters=bound.values,
                                         query_now=request.now)
            # Re-running a cell is the common case: the ANTLR parse (~30 ms) is paid once per text.
            frozen = tuple(sorted((t, tuple(c)) for t, c in schema.items()))
            return _to_sql_cached(bound.query, frozen, request.now)
        except KqlSyntaxError as exc:
            if exc.diagnostics:
                d = exc.diagnostics[0]
                line, col = rewritten.original_position(d.span.line, d.span.column)
                op = _operator_at(rewritten.original, line, col)
                if op is not None:
                    # duckdb-kql's grammar lacks some real operators; a "syntax error" there would
                    # tell the user their valid query is wrong.
                    raise UnsupportedQueryError(op.text, "local", line=line, column=col_of(op, rewritten),
                                                query=rewritten.original, runs_on=_REMOTE_ENGINES) from None
                bad = _operator_after_pipe(rewritten.original, line, col)
                if bad is not None:
                    # ANTLR blames the pipe for any error inside the operator after it; name the operator.
                    raise QuerySyntaxError(f"cannot parse this '{bad.text}' operator", rewritten.original,
                                           line, col_of(bad, rewritten)) from None
                raise QuerySyntaxError(_clean_syntax(d.message), rewritten.original, line, col) from None
            raise QuerySyntaxError(_first_line(exc), rewritten.original, 1, 0) from None
        except KqlUnsupportedError as exc:
            line = col = None
            if exc.span is not None:
                line, col = rewritten.original_position(exc.span.line, exc.span.column)
            construct = exc.construct.split(":", 1)[-1]
            if construct == "EvaluateOperator" and line is not None and col is not None:
                # duckdb-kql names the grammar rule; the user wrote "evaluate <plugin>".
                words = rewritten.original.splitlines()[line - 1][col:].replace("(", " ").split()
                construct = " ".join(words[:2]) if len(words) > 1 else "evaluate"
            reason = exc.hint if exc.hint and "wave" not in exc.hint else None
            raise UnsupportedQueryError(construct, "local", line=line, column=col, query=rewritten.original,
                                        runs_on=_REMOTE_ENGINES, reason=reason) from None
        except KqlSchemaError as exc:
            if exc.hint and "table" in exc.hint.lower() and "not" in exc.hint.lower():
                raise TableNotFoundError(exc.name, self.tables() + self._namespace_tables) from None
            raise QueryError(f"{exc.name}: {exc.hint or 'schema error'}") from None
        except KqlMagicPlusError:
            raise
        except duckdb_kql.KqlError as exc:
            raise QueryError(_first_line(exc)) from None

    def _probe_rows(self, sql: str) -> list[Any]:
        if udfs.PREFIX in sql.lower():
            udfs.register_duckdb(self.con, sql)
        return [r[0] for r in self.con.execute(sql).fetchall()]

    def _execute(self, sql: str, params: dict[str, Any]) -> tuple[list[str], Any]:
        import duckdb

        try:
            if udfs.PREFIX in sql.lower():  # sqlglot writes function names in capitals
                udfs.register_duckdb(self.con, sql)
            rel = self.con.sql(sql, params=params) if params else self.con.sql(sql)
            if rel is None:  # a statement with no rows (a control command that writes)
                import pyarrow as pa

                return [], pa.table({})
            types = [str(t) for t in rel.dtypes]
            return types, limits.fetch_arrow(rel, self.con, self._memory)  # stops at the memory limit
        except (duckdb.InterruptException, RuntimeError) as exc:
            # A Ctrl-C (SIGINT) inside DuckDB surfaces as a bare RuntimeError, not InterruptException.
            if not isinstance(exc, duckdb.InterruptException) and "interrupted" not in str(exc).lower():
                raise
            raise QueryCancelledError(CANCELLED) from None
        except duckdb.OutOfMemoryException as exc:
            raise limits.out_of_memory(exc, self._memory) from None
        except duckdb.CatalogException as exc:
            name = _missing_table(str(exc))
            if name is not None:
                raise TableNotFoundError(name, self.tables() + self._namespace_tables) from None
            raise QueryError(_first_line(exc)) from None
        except duckdb.Error as exc:
            if "max_expression_depth" in str(exc):
                from kqlmagic_plus.language.compiler.syntax import TooDeep

                raise TooDeep() from None
            raise QueryError(_duckdb_message(exc)) from None


#: KQL tabular operators (KQL reference), to tell an unknown operator from a typo.
KQL_OPERATORS = frozenset({
    "as", "consume", "count", "datatable", "distinct", "evaluate", "extend", "externaldata", "facet", "find",
    "fork", "getschema", "invoke", "join", "limit", "lookup", "make-series", "mv-apply", "mv-expand", "order",
    "parse", "parse-where", "parse-kv", "partition", "print", "project", "project-away", "project-keep",
    "project-rename", "project-reorder", "range", "reduce", "render", "sample", "sample-distinct", "scan",
    "search", "serialize", "sort", "summarize", "take", "top", "top-hitters", "top-nested", "union", "where",
    "filter", "macro-expand", "make-graph", "graph-match", "graph-to-table", "extend-project",
})


def _decimal_scale(duckdb_type: str) -> int:
    t = duckdb_type.replace(" ", "").upper()
    if t.startswith("DECIMAL(") and "," in t:
        return int(t[t.index(",") + 1:t.index(")")])
    return 0


def kqltypes_of(duckdb_type: str) -> str:
    from kqlmagic_plus import kqltypes

    return kqltypes.kql_type_of_duckdb(duckdb_type)


def _operator_after_pipe(text: str, line: int, col: int) -> Any:
    from kqlmagic_plus.language.lexer import offset_of, significant, tokenize

    off = offset_of(text, line, col)
    toks = significant(tokenize(text))
    for i, t in enumerate(toks[:-1]):
        if t.start == off and t.text == "|" and toks[i + 1].kind == "ident":
            return toks[i + 1]
    return None


def _operator_at(text: str, line: int, col: int) -> Any:
    """The operator after a ``|`` the parser stopped at, if it is a real KQL operator.

    duckdb-kql's grammar ends the query before a ``|`` whose operator it does not know; the
    grammar, not the user, fell short there, and "unsupported" is the honest message."""
    from kqlmagic_plus.language.lexer import offset_of, significant, tokenize

    off = offset_of(text, line, col)
    toks = significant(tokenize(text))
    for i, t in enumerate(toks):
        if t.end <= off:
            continue
        if t.text == "|" and i + 1 < len(toks):
            nxt = toks[i + 1]
            if nxt.kind == "ident" and nxt.text in KQL_OPERATORS and not _grammar_accepts(nxt.text):
                return nxt
        return None
    return None


#: Aggregates whose size-limit argument duckdb-kql 1.1 drops silently (it would return every value).
#: name -> number of arguments it honours.
_SIZE_LIMITED = {"make_list": 1, "make_set": 1, "make_list_if": 2, "make_set_if": 2, "make_bag": 1,
                 "make_bag_if": 2, "make_list_with_nulls": 1}


def _refuse_known_gaps(rewritten: Rewritten) -> None:
    """Refuse what duckdb-kql would answer wrongly instead of refusing itself."""
    from kqlmagic_plus.language.lexer import line_col, significant, tokenize

    toks = significant(tokenize(rewritten.text))
    for i, t in enumerate(toks[:-1]):
        if t.kind == "ident" and t.text == "decimal" and toks[i + 1].text == "(" and (not i or toks[i - 1].text != "."):
            # duckdb-kql reads decimal(0.1) as a double: 0.1 + 0.2 would not be 0.3. Our compiler holds it exactly.
            line, col = rewritten.original_position(*line_col(rewritten.text, t.start))
            raise UnsupportedQueryError("decimal literal", "local", line=line, column=col, query=rewritten.original,
                                        runs_on=_REMOTE_ENGINES, reason="the local engine would read it as a real")
    for i, t in enumerate(toks[:-1]):
        if t.kind != "ident" or t.text not in _SIZE_LIMITED or toks[i + 1].text != "(":
            continue
        depth, args = 0, 1
        for u in toks[i + 1:]:
            if u.text in "([{":
                depth += 1
            elif u.text in ")]}":
                depth -= 1
                if depth == 0:
                    break
            elif u.text == "," and depth == 1:
                args += 1
        if args > _SIZE_LIMITED[t.text]:
            line, col = rewritten.original_position(*line_col(rewritten.text, t.start))
            raise UnsupportedQueryError(f"{t.text} with a size limit", "local", line=line, column=col,
                                        query=rewritten.original, runs_on=_REMOTE_ENGINES,
                                        reason="the local engine would ignore the limit")
    depth, project_depth = 0, None
    for i, t in enumerate(toks[:-1]):
        if t.text in "([{":
            depth += 1
        elif t.text in ")]}":
            depth -= 1
        elif t.kind == "ident" and t.text == "project":
            project_depth = depth
        elif (t.kind == "ident" and t.text in ("node_degree_in", "node_degree_out") and toks[i + 1].text == "("
              and depth == project_depth and toks[i - 1].text in (",", "project")):
            # duckdb-kql names an unnamed node_degree_out(src) node_degree_out_src; Kusto names it node_degree_out.
            line, col = rewritten.original_position(*line_col(rewritten.text, t.start))
            raise UnsupportedQueryError(f"unnamed {t.text}() in a graph-match project", "local", line=line,
                                        column=col, query=rewritten.original, runs_on=_REMOTE_ENGINES,
                                        reason=f"the local engine would name its column otherwise: name it, "
                                               f"d = {t.text}(...)")


#: The smallest valid use of each operator: parsing it tells whether duckdb-kql's grammar has it.
_OPERATOR_PROBES = {
    "serialize": "T | serialize", "where": "T | where x", "filter": "T | filter x", "extend": "T | extend y = 1",
    "project": "T | project x", "project-away": "T | project-away x", "project-keep": "T | project-keep x",
    "project-rename": "T | project-rename y = x", "project-reorder": "T | project-reorder x",
    "summarize": "T | summarize count()", "take": "T | take 1", "limit": "T | limit 1", "top": "T | top 1 by x",
    "sort": "T | sort by x", "order": "T | order by x", "count": "T | count", "distinct": "T | distinct x",
    "join": "T | join (U) on x", "lookup": "T | lookup (U) on x", "union": "T | union U",
    "mv-expand": "T | mv-expand x", "mv-apply": "T | mv-apply x on (take 1)", "parse": 'T | parse x with "a" y',
    "parse-where": 'T | parse-where x with "a" y', "parse-kv": "T | parse-kv x as (a:string)",
    "make-series": "T | make-series c = count() on t step 1h", "render": "T | render table",
    "sample": "T | sample 1", "sample-distinct": "T | sample-distinct 1 of x", "evaluate": "T | evaluate bag_unpack(x)",
    "top-nested": "T | top-nested 1 of x by count()", "search": 'T | search "x"', "as": "T | as U",
    "getschema": "T | getschema", "facet": "T | facet by x", "invoke": "T | invoke f()",
    "partition": "T | partition by x (take 1)", "scan": "T | scan with (step s: true;)",
    "top-hitters": "T | top-hitters 1 of x", "reduce": "T | reduce by x", "consume": "T | consume",
    "fork": "T | fork (take 1)", "find": 'T | find "x"', "print": "print 1", "range": "range i from 1 to 2 step 1",
}


@functools.lru_cache(maxsize=256)
def _to_sql_cached(query: str, schema: tuple[tuple[str, tuple[str, ...]], ...], now: Any) -> Any:
    import duckdb_kql

    return duckdb_kql.to_sql(query, schema={t: list(c) for t, c in schema}, query_now=now)


@functools.lru_cache(maxsize=64)
def _grammar_accepts(operator: str) -> bool:
    """Whether duckdb-kql's parser takes the smallest valid use of *operator* (see _OPERATOR_PROBES)."""
    import duckdb_kql

    probe = _OPERATOR_PROBES.get(operator)
    if probe is None:
        return True  # unknown to us: leave it a syntax error rather than guess
    try:
        duckdb_kql.parse(probe)
    except duckdb_kql.KqlSyntaxError:
        return False
    return True


def col_of(tok, rewritten: Rewritten) -> int:
    from kqlmagic_plus.language.lexer import line_col

    return line_col(rewritten.original, tok.start)[1]


def _split_render(query: str) -> tuple[str, Any]:
    from kqlmagic_plus.language.render import split_render

    return split_render(query)


def _window_for(request: Request, query: str) -> Any:
    """The query window: options first, else the query's own leading TimeGenerated filter."""
    if request.window is not None:
        return request.window
    from kqlmagic_plus import lake as lake_mod

    return lake_mod.window_from_query(query, now=request.now)


def _as_table(value: Any) -> Any:
    """A namespace value usable as a table (DataFrame, Arrow table, Result), else None."""
    cls = type(value)
    mod = cls.__module__
    if cls.__name__ == "DataFrame" and mod.startswith(("pandas", "polars")):
        return value
    if cls.__name__ in ("Table", "RecordBatch") and mod.startswith("pyarrow"):
        return value
    if cls.__name__ == "Result" and mod.startswith("kqlmagic_plus"):
        return value.table
    return None


def _typed(name: str, value: Any) -> Any:
    """A namespace table in the form a table parameter takes (language/tables.py), so a DataFrame read
    by name and the same DataFrame passed as a parameter hold the same values. One with no columns
    is left as it is, for _register to refuse."""
    from kqlmagic_plus.language.tables import typed_table

    columns = value.num_columns if hasattr(value, "num_columns") else len(getattr(value, "columns", ()))
    return value if columns == 0 else typed_table(value, name)


def _columns_of(obj: Any) -> list[str]:
    if hasattr(obj, "column_names"):
        return [str(c) for c in obj.column_names]
    return [str(c) for c in obj.columns]


def _reader_sql(path: str) -> str:
    """A DuckDB table function reading *path* by its extension (the first match of a glob)."""
    import glob

    expanded = os.path.expanduser(path)
    probe = expanded
    if os.path.isdir(expanded):
        for ext in _FILE_READERS:
            if glob.glob(os.path.join(expanded, "**", "*" + ext), recursive=True):
                probe = os.path.join(expanded, "**", "*" + ext)
                break
        else:
            raise OptionError(f"no Parquet, CSV or JSON files under {path!r}")
        expanded = probe
    matches = glob.glob(expanded, recursive=True)
    if not matches:
        raise OptionError(f"no file matches {path!r}")
    ext = os.path.splitext(matches[0])[1].lower()
    reader = _FILE_READERS.get(ext)
    if reader is None:
        raise OptionError(f"cannot read {matches[0]!r}: use Parquet, CSV or JSON (lines) files")
    lit = "'" + expanded.replace("'", "''") + "'"
    extra = ", union_by_name=true" if reader != "read_json_auto" else ", format='auto', union_by_name=true"
    return f"{reader}({lit}{extra})"


#: Runs of one query while the lake changes under it (a file deleted, damaged or written again since the
#: listing): each failure lists the window again; then one clear line, never a dependency's error.
_LAKE_ATTEMPTS = 5


def _lake_file_gone(message: str, lake: Any) -> bool:
    """DuckDB could not find a lake file the plan listed: it was deleted meanwhile (retention). The file
    may be back by the time we look (deleted and written again): the listing moved on either way, so the
    window is listed again (the caller's attempts are bounded)."""
    import re

    m = re.search(r'No files found that match the pattern "([^"]+)"', message)
    if m is None:
        return False
    return os.path.abspath(m.group(1)).startswith(lake.root + os.sep)


def _mount_files(path: str) -> list[str]:
    """Every file a mount of *path* can read: all files under a folder, or a glob's matches (dot files
    included: DuckDB's glob reads them)."""
    import glob

    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        return sorted(os.path.join(d, f) for d, _, files in os.walk(expanded) for f in files)
    return sorted(glob.glob(expanded, recursive=True, include_hidden=True))


def _missing_table(message: str) -> str | None:
    marker = "Table with name "
    if marker in message:
        rest = message.split(marker, 1)[1]
        return rest.split(" does not exist", 1)[0].strip().strip('"')
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _duckdb_message(exc: BaseException) -> str:
    text = str(exc).strip()
    lines = text.splitlines()
    first = lines[0] if lines else type(exc).__name__
    if "Referenced column" in first:
        col = first.split('"')[1] if '"' in first else "?"
        candidates = next((ln for ln in lines[1:] if ln.startswith("Candidate bindings")), "")
        hint = f" ({candidates.strip()})" if candidates else ""
        return f"column {col!r} does not exist{hint}"
    for prefix in ("Binder Error: ", "Conversion Error: ", "Invalid Input Error: ", "Out of Range Error: "):
        if first.startswith(prefix):
            return first[len(prefix):]
    return first


def _clean_syntax(message: str) -> str:
    # ANTLR lists every token it could have accepted; a person needs the first half of the sentence.
    if " expecting " in message:
        head, _, tail = message.partition(" expecting ")
        if len(tail) > 60:
            return head
    return message
