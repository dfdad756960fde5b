"""Spark behind the Engine interface: a KQL, Spark SQL or PySpark cell on one session (and its lake)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kqlmagic_plus.engines.base import Engine
from kqlmagic_plus.engines.spark.handle import Say, SparkHandle
from kqlmagic_plus.engines.spark.progress import ProgressSink
from kqlmagic_plus.errors import EngineUnavailableError, OptionError
from kqlmagic_plus.request import Request
from kqlmagic_plus.results import Result

#: Spark type names (DataType.typeName()) -> KQL types; arrays, maps and structs are dynamic.
_SPARK_TYPES = {"string": "string", "long": "long", "integer": "int", "short": "int", "byte": "int",
                "double": "real", "float": "real", "boolean": "bool", "timestamp": "datetime",
                "timestamp_ntz": "datetime", "date": "datetime", "decimal": "decimal", "binary": "string"}
#: Catalog tables read for a schema: each costs a catalog call.
_CATALOG_TABLES = 200


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

    def _fetch_table_schemas(self) -> dict[str, dict[str, str]]:
        """The bound lake's tables (their schemas come from the lake, no Spark job), then the session
        catalog's tables and temp views (Spark's own types, as KQL types)."""
        out: dict[str, dict[str, str]] = {}
        lake = self.session.lake
        if lake is not None:
            if lake.lake is not None:
                out.update({t: dict(lake.lake.schema_for(t)) for t in lake.lake.table_names()})
            else:
                from kqlmagic_plus.lake.schemas import schema_for

                out.update({t: dict(schema_for(t)) for t in lake.table_names(self.session)})
        spark = self.session.spark
        if spark is not None:
            known = {t.lower() for t in out}
            for table in spark.catalog.listTables()[:_CATALOG_TABLES]:
                # Spark's catalog lower-cases names: the lake's `Syslog` is registered as the view `syslog`.
                if table.name.lower() in known:
                    continue
                fields = spark.table(table.name).schema.fields
                out[table.name] = {f.name: _SPARK_TYPES.get(f.dataType.typeName(), "dynamic") for f in fields}
        return out

    def cache_inputs(self, request: Request) -> Any:
        """The lake files the request reads: fingerprinted by the cache as the local engine's are (path,
        size, times, inode), so a changed lake is a cache miss."""
        from kqlmagic_plus.cache.key import InputFiles, Unkeyable

        lake = self.session.lake
        if lake is None:
            return ""
        if lake.kind != "local":
            raise Unkeyable("a remote lake")
        reg = lake.registration(self._window(request))
        return InputFiles({f"lake:{t['name']}": [*t["json"], *t["parquet"]] for t in reg.spec["tables"]})

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
        if not schemas and self.session.lake is not None:
            raise OptionError(f"the lake {self.session.lake.display} has no tables")
        from kqlmagic_plus.errors import TableNotFoundError

        try:
            # Self-contained KQL (print, datatable, range, let) needs no lake.
            from kqlmagic_plus.language.compiler.probe import reading_rows

            def probe_rows(sql: str) -> list[Any]:
                # bag_unpack with no output schema reads its bags' keys first (one small Spark job).
                from kqlmagic_plus.engines.spark.results import to_result

                got = self.session.run_cell("sql", sql, namespace=None, limit=None, to_lake=None, overwrite=False,
                                            lake_spec=reg.spec if reg is not None else None,
                                            progress=self.progress, what="the bags bag_unpack reads its columns "
                                            "from", tables=list(schemas))
                table = to_result(got, limit=None).table
                return table.column(0).to_pylist() if table.num_columns else []

            with reading_rows(probe_rows):
                compiled = kql_compile(query, schemas, dialect="spark", params=dict(request.params),
                                       now=request.now)
        except TableNotFoundError as err:
            if not schemas:
                err.hint = "Bind a lake first: %sparkhunt --lake PATH (KQL on Spark reads the lake's tables)."
            raise
        if request.dry_run:
            import pyarrow as pa

            return Result(table=pa.table({}), kql_types=[], query=request.query, connection=self.target,
                          engine="spark", executed=compiled.sql, render=spec,
                          stats={"dry_run": True, **({"lake": reg.stats} if reg else {}), **_external_stats(compiled)})
        started = time.perf_counter()
        external = self._register_external(compiled.external)
        try:
            out = self.session.run_cell("sql", compiled.sql, namespace=None, limit=_limit(request),
                                        to_lake=request.options.get("to_lake"),
                                        overwrite=bool(request.options.get("overwrite")),
                                        lake_spec=reg.spec if reg is not None else None, progress=self.progress,
                                        what="the Spark SQL compiled from the KQL (--show-query shows it)",
                                        tables=list(schemas))
        finally:
            for source in compiled.external:  # the rows are collected: the views are done with
                self._drop_view(source.table)
        extra = list(reg.warnings) if reg is not None else []
        extra.extend(self.session.lake_warnings)
        extra.extend(compiled.warnings)
        extra.extend(external)
        return self._result(out, reg, time.perf_counter() - started, request, executed=compiled.sql,
                            warnings=extra, kql_types=[t for _, t in compiled.columns], render=spec,
                            external=_external_stats(compiled))

    def _register_external(self, sources: tuple[Any, ...]) -> list[str]:
        """Fetch the query's externaldata sources here and register each as a temp view made from Arrow (the
        executors never reach the URL); the warnings they gave. A session in another process (Synapse)
        has no DataFrame of ours to build: refused by name."""
        if not sources:
            return []
        spark = self.session.spark if self.session.target.kind != "synapse" else None
        if spark is None:
            from kqlmagic_plus.errors import UnsupportedQueryError

            raise UnsupportedQueryError("externaldata", f"Spark ({self.session.target.kind})",
                                        reason="its driver runs elsewhere; use a local or Spark Connect session",
                                        runs_on=("the local engine", "Log Analytics / Sentinel",
                                                 "Azure Data Explorer"))
        from kqlmagic_plus.engines import externaldata
        from kqlmagic_plus.engines.spark import quiet

        with quiet.quiet_warnings():  # PySpark's own (pandas 3) warning from createDataFrame, not the user's
            return externaldata.register_spark(spark, sources)

    def _drop_view(self, name: str) -> None:
        spark = self.session.spark
        if spark is not None:
            import contextlib

            with contextlib.suppress(Exception):  # a session lost meanwhile holds no view to drop
                spark.catalog.dropTempView(name)

    def _result(self, out: dict[str, Any], reg: Any, elapsed: float, request: Request, *, executed: str | None,
                warnings: list[str], kql_types: list[str] | None = None, render: Any = None,
                external: dict[str, Any] | None = None) -> Result:
        from kqlmagic_plus.engines.spark.results import to_result

        stats: dict[str, Any] = {"session": self.session.target.display, **(external or {})}
        if reg is not None:
            stats["lake"] = reg.stats
        return to_result(out, limit=_limit(request), kql_types=kql_types, query=request.query,
                         connection=self.target, elapsed=elapsed, executed=executed, warnings=warnings,
                         stats=stats, render=render)


def _external_stats(compiled: Any) -> dict[str, Any]:
    """The externaldata URLs a plan reads (their query strings' values hidden), for the Result's stats."""
    if not compiled.external:
        return {}
    from kqlmagic_plus.engines.externaldata import urls_shown

    return {"externaldata": urls_shown(compiled.external)}


def _limit(request: Request) -> int:
    from kqlmagic_plus.config import settings

    value = request.options.get("row_limit")
    return int(value) if value is not None else int(settings().spark_row_limit)
