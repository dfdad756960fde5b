"""Where a hunt's rows come from: an exported lake (time-pruned to the window), a table of the engine,
or a DataFrame; and the engine sessions a hunt runs in when the caller gives none."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from kqlmagic_plus.errors import EngineUnavailableError, OptionError, QueryError, TableNotFoundError
from kqlmagic_plus.request import TimeWindow

_US = 1_000_000
_DAY_US = 86_400 * _US


@dataclass
class Source:
    """The hunt's input as a relation the plan names ``@src``."""

    relation: str
    #: Column name -> KQL type, as the relation holds them.
    columns: dict[str, str]
    kind: str
    #: The lake's report of files read (lakes only), as plain data.
    lake: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    cleanup: Callable[[], None] | None = None

    def close(self) -> None:
        if self.cleanup is not None:
            try:
                self.cleanup()
            finally:
                self.cleanup = None


def day_window(end_date: date, lookback_days: int) -> tuple[int, int]:
    """``[start, end)`` in microseconds: *lookback_days* whole UTC days ending with *end_date* (inclusive)."""
    end = (end_date.toordinal() - date(1970, 1, 1).toordinal() + 1) * _DAY_US
    return end - lookback_days * _DAY_US, end


def to_dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def pick_input(lake: Any, table: str | None, dataframe: Any) -> str:
    given = [k for k, v in (("lake", lake), ("table", table), ("dataframe", dataframe)) if v is not None]
    if not given:
        raise OptionError("a hunt needs its input: lake=DIR (an exported lake), table=NAME, or dataframe=DF")
    if len(given) > 1:
        raise OptionError(f"give one input, not {' and '.join(given)}")
    return given[0]


def check_columns(columns: dict[str, str], required: tuple[str, ...], hunt: str, where: str) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        have = ", ".join(sorted(columns)[:30]) + (" ..." if len(columns) > 30 else "")
        raise OptionError(f"{hunt}: {where} has no column {', '.join(missing)} (needed: {', '.join(required)})",
                          hint=f"Columns there: {have or 'none'}")


def _open_lake(lake: Any) -> Any:
    from kqlmagic_plus.lake import Lake

    if isinstance(lake, Lake):
        return lake
    from kqlmagic_plus.connections.storage import open_lake

    return open_lake(os.fspath(lake))  # a folder, or a lake in Azure Storage (abfss://...;sas=$NAME)


def _lake_table(lk: Any, table: str) -> str:
    names = lk.table_names()
    for n in names:
        if n.lower() == table.lower():
            return n
    raise TableNotFoundError(table, names)


def _arrow_input(dataframe: Any, time_col: str) -> Any:
    """A pandas DataFrame or Arrow table as Arrow, with *time_col* as timestamp[us, UTC]."""
    import pyarrow as pa

    if isinstance(dataframe, pa.Table):
        table = dataframe
    else:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a dependency
            pd = None
        if pd is None or not isinstance(dataframe, pd.DataFrame):
            raise OptionError(f"dataframe= takes a pandas DataFrame or a pyarrow Table, not {type(dataframe).__name__}")
        df = dataframe
        if time_col in df.columns:
            col = df[time_col]
            if not pd.api.types.is_datetime64_any_dtype(col):
                col = pd.to_datetime(col, utc=True, errors="coerce", format="ISO8601")
            elif col.dt.tz is None:
                col = col.dt.tz_localize("UTC")
            df = df.assign(**{time_col: col.dt.tz_convert("UTC").astype("datetime64[us, UTC]")})
        table = pa.Table.from_pandas(df, preserve_index=False)
    if time_col in table.column_names:
        i = table.column_names.index(time_col)
        t = table.schema.field(i).type
        if pa.types.is_timestamp(t) and t != pa.timestamp("us", tz="UTC"):
            table = table.set_column(i, time_col, table.column(i).cast(pa.timestamp("us", tz="UTC")))
    return table


# -- DuckDB -----------------------------------------------------------------------------------------


def duckdb_connection(session: Any) -> tuple[Any, bool]:
    """(connection, owned): the caller's connection, or a new one set up to spill rather than fail."""
    try:
        import duckdb
    except ImportError:  # pragma: no cover
        raise EngineUnavailableError("duckdb is not installed") from None
    if session is not None:
        if not isinstance(session, duckdb.DuckDBPyConnection):
            raise OptionError(f"session= for the duckdb engine takes a duckdb connection, not "
                              f"{type(session).__name__}")
        return session, False
    con = duckdb.connect()
    spill = os.environ.get("KQLMAGIC_PLUS_SPILL_DIR") or os.path.join(tempfile.gettempdir(), "kqlmagic_plus_spill")
    os.makedirs(spill, exist_ok=True)
    con.execute(f"SET temp_directory = '{spill.replace(chr(39), chr(39) * 2)}'")
    # Hash tables and sorts over 100 M events: spill instead of failing, and do not keep input order.
    con.execute("SET preserve_insertion_order = false")
    limit = os.environ.get("KQLMAGIC_PLUS_DUCKDB_MEMORY")
    if limit:
        con.execute(f"SET memory_limit = '{limit.replace(chr(39), '')}'")
    return con, True


def _duck_columns(con: Any, relation: str) -> dict[str, str]:
    from kqlmagic_plus.kqltypes import kql_type_of_duckdb

    rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return {r[0]: kql_type_of_duckdb(str(r[1])) for r in rows}


def duckdb_source(con: Any, hunt: Any, *, lake: Any, table: str | None, dataframe: Any,
                  window: tuple[int, int] | None) -> Source:
    from kqlmagic_plus.hunts.sql import DIALECTS

    d = DIALECTS["duckdb"]
    kind = pick_input(lake, table, dataframe)
    if kind == "lake":
        lk = _open_lake(lake)
        name = _lake_table(lk, hunt.table)
        tw = None if window is None else TimeWindow(to_dt(window[0]), to_dt(window[1]))
        report = lk.register_duckdb(con, window=tw, tables=[name])
        relation = d.ident(name)
        cols = _duck_columns(con, relation)
        src = Source(relation, cols, "lake", lake=report.summary(), warnings=list(report.warnings))
    elif kind == "table":
        relation = table if "(" in table or "." in table else d.ident(table)
        try:
            cols = _duck_columns(con, relation)
        except Exception as exc:
            raise TableNotFoundError(table, [r[0] for r in con.execute("SHOW TABLES").fetchall()]) from exc
        src = Source(relation, cols, "table")
    else:
        arrow = _arrow_input(dataframe, "TimeGenerated")
        name = f"_kmp_input_{uuid.uuid4().hex[:8]}"
        con.register(name, arrow)
        src = Source(d.ident(name), _duck_columns(con, d.ident(name)), "dataframe",
                     cleanup=lambda: con.unregister(name))
    check_columns(src.columns, hunt.required, hunt.name, f"the {kind}")
    return src


# -- Spark ------------------------------------------------------------------------------------------


def spark_session(session: Any) -> Any:
    """The caller's SparkSession, else the active one, else a local one (UTC, small shuffles)."""
    if session is not None:
        return session
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise EngineUnavailableError("pyspark is not installed (pip install 'pyspark[connect]')") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    from kqlmagic_plus.engines.spark import quiet

    conf = quiet.session_conf({"spark.master": "local[2]", "spark.app.name": "kqlmagic_plus-hunt",
                               "spark.sql.session.timeZone": "UTC", "spark.sql.shuffle.partitions": "4",
                               "spark.ui.enabled": "false"})
    builder = SparkSession.builder
    for k, v in conf.items():
        builder = builder.config(k, v)
    try:
        return quiet.get_or_create(builder, conf)
    except EngineUnavailableError:
        raise
    except Exception as exc:
        raise EngineUnavailableError(f"cannot start local Spark: {str(exc).splitlines()[0] if str(exc) else exc}",
                                     hint="Spark needs Java 17 (java on PATH or JAVA_HOME)") from None


def _spark_kql_type(dt: Any) -> str:
    name = dt.typeName()
    return {"timestamp": "datetime", "timestamp_ntz": "datetime", "date": "datetime", "string": "string",
            "long": "long", "integer": "int", "short": "int", "byte": "int", "double": "real", "float": "real",
            "boolean": "bool", "decimal": "decimal"}.get(name, "string")


def _spark_type(kql_type: str) -> Any:
    from pyspark.sql import types as T

    return {"bool": T.BooleanType(), "int": T.IntegerType(), "long": T.LongType(), "real": T.DoubleType(),
            "string": T.StringType(), "guid": T.StringType(), "dynamic": T.StringType(),
            "decimal": T.StringType(), "timespan": T.StringType(),
            # Export JSON writes seven fractional digits; read the text and parse it in the plan.
            "datetime": T.StringType()}[kql_type]


def _spark_lake_frame(spark: Any, lk: Any, table: str, window: tuple[int, int] | None,
                      wanted: tuple[str, ...]) -> tuple[Any, Any, TimeWindow | None]:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    tw = None if window is None else TimeWindow(to_dt(window[0]), to_dt(window[1]))
    plan = lk.plan(table, tw)
    schema = dict(plan.schema)
    cols = [c for c in wanted if c in schema]

    def typed(df: Any) -> Any:
        present = set(df.columns)
        out = []
        for c in cols:
            if c not in present:
                out.append(F.lit(None).cast(_spark_type(schema[c]) if schema[c] != "datetime"
                                            else T.TimestampType()).alias(c))
            elif schema[c] == "datetime":
                # Export JSON writes seven fractional digits as text; Spark keeps microseconds.
                out.append(F.expr(f"try_cast(`{c}` AS TIMESTAMP)").alias(c))
            else:
                out.append(F.col(c).cast(_spark_type(schema[c])).alias(c))
        return df.select(*out)

    frames = []
    json_files = [f.path for f in plan.files if f.fmt == "json"]
    pq_files = [f.path for f in plan.files if f.fmt == "parquet"]
    if json_files:
        st = T.StructType([T.StructField(c, _spark_type(schema[c])) for c in cols])
        frames.append(typed(spark.read.schema(st).option("mode", "PERMISSIVE").json(json_files)))
    if pq_files:
        frames.append(typed(spark.read.option("mergeSchema", "true").parquet(*pq_files)))
    if not frames:
        st = T.StructType([T.StructField(c, _spark_type(schema[c]) if schema[c] != "datetime"
                                         else T.TimestampType()) for c in cols])
        frames.append(spark.createDataFrame([], st))
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out, plan, tw


def _lake_summary(plan: Any, tw: TimeWindow | None) -> dict[str, Any]:
    return {"window": None if tw is None else str(tw), "files_read": plan.files_read,
            "files_total": plan.files_total,
            "text": f"lake{'' if tw is None else f' for {tw}'}: {plan.table} {plan.files_read:,} of "
                    f"{plan.files_total:,} files"}


def _runs_here(spark: Any) -> bool:
    """Whether a Spark session reads this machine's files: a classic session with a local master."""
    try:
        return str(spark.sparkContext.master).startswith("local")
    except Exception:  # Spark Connect has no SparkContext: its server may be anywhere
        return False


def spark_source(spark: Any, hunt: Any, *, lake: Any, table: str | None, dataframe: Any,
                 window: tuple[int, int] | None) -> Source:
    kind = pick_input(lake, table, dataframe)
    wanted = tuple(hunt.required) + tuple(hunt.optional)
    name = f"_kmp_input_{uuid.uuid4().hex[:8]}"
    report = None
    warnings: list[str] = []
    try:
        if kind == "lake":
            lk = _open_lake(lake)
            if lk.remote is not None and not _runs_here(spark):
                # The window's blobs are copied to this machine; a session elsewhere cannot read those copies.
                raise OptionError(f"lake {lk.display}: this Spark session does not run on this machine and cannot "
                                  "read the local copies of the lake's blobs; run the hunt with --engine duckdb, or "
                                  "bind the lake to the session as abfss:// (%sparkhunt --lake, hadoop-azure)")
            tname = _lake_table(lk, hunt.table)
            df, plan, tw = _spark_lake_frame(spark, lk, tname, window, wanted)
            report = _lake_summary(plan, tw)
            warnings = list(plan.warnings)
        elif kind == "table":
            df = spark.table(table)
        elif _is_spark_frame(dataframe):
            df = dataframe
        else:
            arrow = _arrow_input(dataframe, "TimeGenerated")
            keep = [c for c in arrow.column_names if c in wanted]
            df = spark.createDataFrame(arrow.select(keep))
    except (OptionError, TableNotFoundError):
        raise
    except Exception as exc:
        if type(exc).__module__.startswith("pyspark"):
            raise QueryError(f"Spark cannot read the {kind}: {str(exc).strip().splitlines()[0]}") from None
        raise
    cols = {f.name: _spark_kql_type(f.dataType) for f in df.schema.fields}
    check_columns(cols, hunt.required, hunt.name, f"the {kind}")
    df.createOrReplaceTempView(name)
    return Source(f"`{name}`", cols, kind, lake=report, warnings=warnings,
                  cleanup=lambda: spark.catalog.dropTempView(name))


def _is_spark_frame(obj: Any) -> bool:
    mod = type(obj).__module__
    return mod.startswith("pyspark.sql") and type(obj).__name__ == "DataFrame"
