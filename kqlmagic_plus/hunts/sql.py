"""One SQL plan, two engines: the steps of a hunt written once, run on DuckDB or Spark SQL.

A :class:`Plan` is a list of named steps (``SELECT`` statements that may name earlier steps as
``@step``) and the outputs to fetch. The few spots where DuckDB and Spark SQL spell the same thing
differently go through a :class:`Dialect`; everything that decides rows (integer microsecond
arithmetic, comparisons, window frames) is the same text on both.

Steps marked ``materialize`` become a DuckDB temp table (spilled to ``temp_directory`` past the
memory limit) or a persisted Spark DataFrame (memory and disk); the others are views. Spark never
brings anything to the driver but the outputs, which hunts keep small (flagged rows).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import QueryError

if TYPE_CHECKING:
    import pyarrow as pa


class Dialect:
    """How one engine spells the handful of things DuckDB and Spark SQL write differently."""

    name = ""
    #: Columns that key a pair inside the big steps: an integer id (one BIGINT to hash, shuffle and sort
    #: instead of two strings and a port). Only unique, never shown: on Spark it is
    #: monotonically_increasing_id() of a checkpointed step, so no single-partition numbering is needed.
    pair_key: tuple[str, ...] = ()

    def ident(self, name: str) -> str:
        raise NotImplementedError

    def lit(self, text: str) -> str:
        raise NotImplementedError

    def idiv(self, a: str, b: str) -> str:
        """Integer division truncating toward zero (both engines do, for BIGINT)."""
        raise NotImplementedError

    def epoch_us(self, col: str, kql_type: str) -> str:
        """Microseconds since the epoch (UTC) of a datetime or ISO-8601 text column; NULL if unreadable."""
        raise NotImplementedError

    def ts_ge(self, col: str, us: int) -> str:
        """``col >= that instant`` for a datetime column, in a form the engine pushes into file scans."""
        raise NotImplementedError

    def ts_lt(self, col: str, us: int) -> str:
        raise NotImplementedError

    def full_match(self, col: str, pattern: str) -> str:
        """*col* matches the whole regular expression (write patterns without backslashes)."""
        raise NotImplementedError

    def hex_int(self, col: str) -> str:
        """A hex digit string as BIGINT (callers check it is hex first)."""
        raise NotImplementedError

    def distinct_list(self, expr: str) -> str:
        """Aggregate: the distinct non-NULL values, sorted (binary), joined by ', '; NULL when none."""
        raise NotImplementedError

    def row_id(self, order: str) -> str:
        """A unique BIGINT per row of a materialized step."""
        raise NotImplementedError

    def quantile(self, expr: str, q: float) -> str:
        """Aggregate: the exact *q* quantile, interpolated linearly between the two nearest values."""
        raise NotImplementedError

    def pair_hash(self, cols: str) -> str:
        """A 64-bit hash of *cols*, only ever used to narrow rows down before an exact comparison (a collision
        keeps a row it need not, never drops one), so the engines may hash differently."""
        raise NotImplementedError

    def broadcast(self, alias: str) -> str:
        """A join hint: *alias* (a small step) is copied to every task instead of shuffling the big side."""
        return ""

    def key_select(self, alias: str) -> str:
        return ", ".join(f"{alias}.{k}" for k in self.pair_key)

    def key_join(self, a: str, b: str) -> str:
        return " AND ".join(f"{a}.{k} = {b}.{k}" for k in self.pair_key)

    @property
    def key(self) -> str:
        return ", ".join(self.pair_key)


class DuckDialect(Dialect):
    name = "duckdb"
    pair_key = ("pid",)

    def ident(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def lit(self, text: str) -> str:
        return "'" + text.replace("'", "''") + "'"

    def idiv(self, a: str, b: str) -> str:
        return f"(({a}) // ({b}))"

    def epoch_us(self, col: str, kql_type: str) -> str:
        if kql_type == "datetime":
            return f"epoch_us({col})"
        return f"epoch_us(TRY_CAST({col} AS TIMESTAMPTZ))"

    def ts_ge(self, col: str, us: int) -> str:
        return f"{col} >= make_timestamptz(CAST({us} AS BIGINT))"

    def ts_lt(self, col: str, us: int) -> str:
        return f"{col} < make_timestamptz(CAST({us} AS BIGINT))"

    def full_match(self, col: str, pattern: str) -> str:
        return f"regexp_full_match({col}, {self.lit(pattern)})"

    def hex_int(self, col: str) -> str:
        return f"TRY_CAST(('0x' || {col}) AS BIGINT)"

    def distinct_list(self, expr: str) -> str:
        return f"string_agg(DISTINCT {expr}, ', ' ORDER BY {expr})"

    def row_id(self, order: str) -> str:
        return f"row_number() OVER (ORDER BY {order})"

    def quantile(self, expr: str, q: float) -> str:
        return f"quantile_cont({expr}, {float(q)!r})"

    def pair_hash(self, cols: str) -> str:
        return f"hash({cols})"


class SparkDialect(Dialect):
    name = "spark"
    pair_key = ("pid",)

    def ident(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def lit(self, text: str) -> str:
        # Spark SQL string literals treat backslash as an escape character.
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    def idiv(self, a: str, b: str) -> str:
        return f"(({a}) div ({b}))"

    def epoch_us(self, col: str, kql_type: str) -> str:
        if kql_type == "datetime":
            return f"unix_micros({col})"
        return f"unix_micros(try_cast({col} AS TIMESTAMP))"

    def ts_ge(self, col: str, us: int) -> str:
        return f"{col} >= timestamp_micros(CAST({us} AS BIGINT))"

    def ts_lt(self, col: str, us: int) -> str:
        return f"{col} < timestamp_micros(CAST({us} AS BIGINT))"

    def full_match(self, col: str, pattern: str) -> str:
        return f"({col} RLIKE {self.lit('^(' + pattern + ')$')})"

    def hex_int(self, col: str) -> str:
        return f"try_cast(conv({col}, 16, 10) AS BIGINT)"

    def distinct_list(self, expr: str) -> str:
        return f"nullif(array_join(array_sort(collect_set({expr})), ', '), '')"

    def row_id(self, order: str) -> str:
        return "monotonically_increasing_id()"

    def pair_hash(self, cols: str) -> str:
        return f"xxhash64({cols})"

    def broadcast(self, alias: str) -> str:
        # A checkpointed step has no size estimate, so Spark would sort-merge join it with the events.
        return f"/*+ BROADCAST({alias}) */"

    def quantile(self, expr: str, q: float) -> str:
        return f"percentile({expr}, {float(q)!r})"


DIALECTS = {"duckdb": DuckDialect(), "spark": SparkDialect()}


@dataclass
class Step:
    name: str
    sql: str
    materialize: bool = False
    #: Reads only small steps (a few thousand rows): see :data:`SMALL_SPARK_CONF`.
    small: bool = False


@dataclass
class Plan:
    """Named steps and the outputs a hunt fetches (each output small)."""

    dialect: Dialect
    steps: list[Step] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    #: The source relation's name inside the steps: ``@src``.
    source: str = ""
    #: Steps and outputs added while this is set are marked small.
    small: bool = False
    small_outputs: set[str] = field(default_factory=set)

    def add(self, name: str, sql: str, *, materialize: bool = False) -> None:
        self.steps.append(Step(name, sql, materialize, self.small))

    def output(self, name: str, sql: str) -> None:
        self.outputs[name] = sql
        if self.small:
            self.small_outputs.add(name)

    def text(self, names: dict[str, str]) -> str:
        """The whole plan as readable SQL (``--show-query``)."""
        parts = [f"-- {s.name}{' (materialized)' if s.materialize else ''}\n{_bind(s.sql, names)};"
                 for s in self.steps]
        parts += [f"-- output {k}\n{_bind(v, names)};" for k, v in self.outputs.items()]
        return "\n".join(parts)


def _bind(sql: str, names: dict[str, str]) -> str:
    return re.sub(r"@(\w+)", lambda m: names.get(m.group(1), m.group(0)), sql)


def _names(plan: Plan, dialect: Dialect) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    names = {s.name: f"_kmp_{tag}_{s.name}" for s in plan.steps}
    names["src"] = plan.source
    return names


def run_duckdb(con: Any, plan: Plan) -> tuple[dict[str, pa.Table], str]:
    """Run *plan* on a DuckDB connection; the outputs as Arrow tables, and the SQL that ran."""
    import duckdb

    names = _names(plan, plan.dialect)
    created: list[tuple[str, str]] = []
    try:
        for step in plan.steps:
            kind = "TABLE" if step.materialize else "VIEW"
            con.execute(f"CREATE OR REPLACE TEMP {kind} {names[step.name]} AS {_bind(step.sql, names)}")
            created.append((kind, names[step.name]))
        out = {k: con.sql(_bind(sql, names)).to_arrow_table() for k, sql in plan.outputs.items()}
    except duckdb.Error as exc:
        raise QueryError(f"DuckDB failed running the hunt: {str(exc).splitlines()[0]}") from None
    finally:
        for kind, name in reversed(created):
            try:
                con.execute(f"DROP {kind} IF EXISTS {name}")
            except Exception:  # a failed step can leave the connection unusable; nothing to clean then
                break
    return out, plan.text(names)


#: Spark settings for the small steps: a few thousand rows, where compiling a stage's Java code and
#: running one job per shuffle stage (adaptive execution) cost seconds and the work itself milliseconds.
#: Measured on the 1 M-event benchmark lake (local[2], loaded machine, one run each): the beacon's scoring
#: steps 55 s -> 34 s, its labels 9.6 s -> 4.3 s.
SMALL_SPARK_CONF = {"spark.sql.codegen.wholeStage": "false", "spark.sql.adaptive.enabled": "false",
                    "spark.sql.shuffle.partitions": "1"}


@contextlib.contextmanager
def _spark_conf(spark: Any, conf: dict[str, str], on: bool) -> Any:
    """*conf* set on *spark* while the block runs (when *on*), the session's own values back after it."""
    if not on:
        yield
        return
    before = {}
    for k, v in conf.items():
        before[k] = spark.conf.get(k, None)
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            with contextlib.suppress(Exception):
                if v is None:
                    spark.conf.unset(k)
                else:
                    spark.conf.set(k, v)


def run_spark(spark: Any, plan: Plan) -> tuple[dict[str, pa.Table], str]:
    """Run *plan* on a Spark session; only the outputs come to the driver."""
    from pyspark import StorageLevel

    names = _names(plan, plan.dialect)
    persisted: list[Any] = []
    views: list[str] = []
    try:
        for step in plan.steps:
            with _spark_conf(spark, SMALL_SPARK_CONF, step.small):
                df = spark.sql(_bind(step.sql, names))
                if step.materialize:
                    # A checkpoint, not persist(): it also cuts the lineage. Each step reads the views before
                    # it, and with persist() every later query carries (and re-analyses, re-matches against the
                    # cache) the whole plan so far: 186 s -> 48 s for one day of 439 k events on local[2].
                    df = df.localCheckpoint(eager=True, storageLevel=StorageLevel.MEMORY_AND_DISK)
                    persisted.append(df)
            df.createOrReplaceTempView(names[step.name])
            views.append(names[step.name])
        out = {}
        for k, sql in plan.outputs.items():
            with _spark_conf(spark, SMALL_SPARK_CONF, k in plan.small_outputs):
                out[k] = _to_arrow(spark.sql(_bind(sql, names)))
    except Exception as exc:
        if type(exc).__module__.startswith("pyspark"):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise QueryError(f"Spark failed running the hunt: {first}") from None
        raise
    finally:
        for df in persisted:
            with contextlib.suppress(Exception):
                df.unpersist()
        for name in views:
            with contextlib.suppress(Exception):
                spark.catalog.dropTempView(name)
    return out, plan.text(names)


def _to_arrow(df: Any) -> pa.Table:
    if hasattr(df, "toArrow"):
        return df.toArrow()
    import pyarrow as pa

    return pa.Table.from_pandas(df.toPandas(), preserve_index=False)


def time_filter(d: Dialect, columns: dict[str, str], window: tuple[int, int] | None,
                keep_null: bool = False) -> tuple[str, list[str]]:
    """(TimeGenerated as epoch microseconds, WHERE conditions for *window*). A datetime column is compared
    as a timestamp, so file scans can skip row groups outside the window."""
    tg = d.ident("TimeGenerated")
    t = d.epoch_us(tg, columns["TimeGenerated"])
    if window is None:
        return t, ([] if keep_null else [f"{t} IS NOT NULL"])
    lo, hi = window
    if columns["TimeGenerated"] == "datetime":
        cond = f"({d.ts_ge(tg, lo)} AND {d.ts_lt(tg, hi)})"
        null = f"{tg} IS NULL"
    else:
        cond = f"({t} >= {lo} AND {t} < {hi})"
        null = f"{t} IS NULL"
    return t, [f"({null} OR {cond})" if keep_null else cond]
