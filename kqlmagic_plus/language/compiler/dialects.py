"""Everything that differs between Spark SQL and DuckDB SQL, in one place.

The emitter writes KQL semantics once, in terms of the primitives below; each dialect says how a
primitive is spelled. Representations (the same in both):

* ``datetime`` is a TIMESTAMP holding UTC (Spark needs ``spark.sql.session.timeZone=UTC`` and
  DuckDB ``TimeZone='UTC'``, as both engines of this package set);
* ``timespan`` is a BIGINT of microseconds inside the query, turned back into an INTERVAL in the
  final SELECT, so arithmetic and ``bin`` are exact integer operations;
* ``dynamic`` is VARIANT in Spark (4.0+) and JSON in DuckDB, turned into JSON text at the output.
"""

from __future__ import annotations

import datetime as dt
from contextvars import ContextVar
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.literals import format_datetime_iso, format_datetime_ticks, ticks_rest
from kqlmagic_plus.language.compiler.regex_java import java_regex
from kqlmagic_plus.language.compiler.sqlexpr import (
    cast_,
    dtype,
    duckdb_datetime_text,
    fn,
    n,
    paren,
    s,
    timespan_text,
    try_cast_,
)

#: The instant ``now()`` means while one query compiles (None: the engine's clock when it runs).
PINNED_NOW: ContextVar[Any] = ContextVar("kqlmp_pinned_now", default=None)


#: The microseconds since the epoch a DuckDB TIMESTAMP_NS holds (1678-01-01 .. 2262-01-01, inside its range).
_NS_LOW_US, _NS_HIGH_US = -9_214_560_000_000_000, 9_214_646_400_000_000


_NS_RANGE = ("a datetime to 100 ns (endof*, make_datetime) outside the years 1678-2261, which the local engine's "
             "nanosecond timestamps cannot hold")


#: Where format_datetime's ``fffffff`` (100 ns ticks) goes in a DuckDB strftime pattern (DuckDB.format_ts).
TICKS_MARK = "\x00ticks\x00"


def ns_holds(us: int) -> bool:
    """A DuckDB TIMESTAMP_NS holds this datetime (microseconds since the epoch)."""
    return _NS_LOW_US <= us < _NS_HIGH_US


def big_floor(x: exp.Expression) -> exp.Expression:
    return cast_(fn("floor", x), "BIGINT")


#: Padded base64 text, the only form Kusto decodes.
BASE64_TEXT = r"^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"


class Dialect:
    name = "?"
    sqlglot = "?"
    #: The engine name errors use ("cannot run on the Spark engine").
    engine = "?"

    # -- types -------------------------------------------------------------------------------------
    def sql_type(self, t: str) -> exp.DataType:
        return dtype(
            {
                T.BOOL: "BOOLEAN",
                T.INT: "INT",
                T.LONG: "BIGINT",
                T.REAL: "DOUBLE",
                T.DECIMAL: "DECIMAL(38, 18)",
                T.STRING: self.string_type,
                T.GUID: self.string_type,
                T.DATETIME: "TIMESTAMP",
                T.TIMESPAN: "BIGINT",
                T.DYNAMIC: self.dynamic_type,
                T.NULL: self.string_type,
            }[t],
            dialect=self.sqlglot,
        )

    string_type = "VARCHAR"
    dynamic_type = "JSON"

    def cast(self, e: exp.Expression, t: str) -> exp.Expression:
        return exp.Cast(this=e, to=self.sql_type(t))

    def try_cast(self, e: exp.Expression, t: str) -> exp.Expression:
        return try_cast_(this=e, to=self.sql_type(t))

    def typed_null(self, t: str) -> exp.Expression:
        return exp.Cast(this=exp.null(), to=self.sql_type(t))

    # -- arithmetic --------------------------------------------------------------------------------
    def int_div(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """Integer division truncating toward zero, null on a zero divisor."""
        return exp.IntDiv(this=a, expression=fn("NULLIF", b, n(0)))

    def real_div(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        return exp.Div(this=a, expression=fn("NULLIF", b, cast_(n(0), "DOUBLE")))

    def ieee_div(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """KQL's real ``/``: a zero divisor gives +-infinity or NaN (as IEEE 754 does), not null."""
        return exp.Div(this=a, expression=b)

    def pmod(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        """A modulo that is never negative (KQL's ``%``)."""
        raise NotImplementedError

    # -- strings -----------------------------------------------------------------------------------
    def regex_match(self, value: exp.Expression, pattern: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def regex_extract(self, value: exp.Expression, pattern: exp.Expression, group: int) -> exp.Expression:
        return fn("regexp_extract", value, pattern, n(group))

    def regex_extract_all(self, value: exp.Expression, pattern: exp.Expression, group: int) -> exp.Expression:
        raise NotImplementedError

    def regex_replace(self, value: exp.Expression, pattern: exp.Expression, repl: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def contains(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        return fn("contains", a, b)

    def starts_with(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def ends_with(self, a: exp.Expression, b: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def str_index(self, hay: exp.Expression, needle: exp.Expression) -> exp.Expression:
        """1-based position of *needle* in *hay*, 0 when absent."""
        raise NotImplementedError

    def split(self, value: exp.Expression, sep: exp.Expression) -> exp.Expression:
        """An array of strings (split on a literal separator)."""
        raise NotImplementedError

    def trunc(self, x: exp.Expression) -> exp.Expression:
        """A number truncated toward zero (then cast to an integer type by the caller)."""
        return fn("trunc", x)

    def sequence1(self, count: exp.Expression) -> exp.Expression:
        """The integers 1..count as an array (empty when count is 0)."""
        raise NotImplementedError

    def repeat(self, value: exp.Expression, count: exp.Expression) -> exp.Expression:
        return fn("repeat", value, count)

    def reverse(self, value: exp.Expression) -> exp.Expression:
        return fn("reverse", value)

    def base64_encode(self, value: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def base64_decode(self, value: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def url_decode(self, value: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def url_encode(self, value: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def hash_md5(self, value: exp.Expression) -> exp.Expression:
        return fn("md5", value)

    def hash_sha256(self, value: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def new_guid(self) -> exp.Expression:
        return fn("uuid")

    def rand(self) -> exp.Expression:
        raise NotImplementedError

    # -- time --------------------------------------------------------------------------------------
    def ts_to_us(self, ts: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def us_to_ts(self, us: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    # Kusto's datetimes hold 100 ns ticks. Spark's TIMESTAMP holds microseconds, so there the methods below cut
    # to the microsecond (a named limit, docs/support-matrix.md); DuckDB's TIMESTAMP_NS holds the ticks.
    keeps_ticks = False

    def datetime_literal(self, us: int) -> exp.Expression:
        """A datetime literal (*us*: microseconds, a literals.Micros when a 7th fraction digit was written)."""
        return cast_(s(format_datetime_iso(int(us))), "TIMESTAMP")

    def ts_plus_us(self, ts: exp.Expression, us: exp.Expression) -> exp.Expression:
        """*ts* moved by *us* microseconds (keeping the 100 ns ticks of *ts* where the engine holds them)."""
        return self.us_to_ts(exp.Add(this=self.ts_to_us(ts), expression=us))

    def sub_us_ns(self, ts: exp.Expression) -> exp.Expression:
        """The nanoseconds of *ts* below its microsecond (0..900, in 100 ns ticks)."""
        return n(0)

    def ts_plus_ticks(self, ts: exp.Expression, ticks: exp.Expression) -> exp.Expression:
        """*ts* moved by *ticks* (100 ns; an integer, possibly negative): cut down to the microsecond here."""
        return self.us_to_ts(exp.Add(this=self.ts_to_us(ts),
                                     expression=big_floor(exp.Div(this=ticks, expression=n(10.0)))))

    def now(self) -> exp.Expression:
        raise NotImplementedError

    def current_time(self) -> exp.Expression:
        """``now()``: the instant the compile was pinned to, else the engine's clock."""
        pinned = PINNED_NOW.get()
        if pinned is None:
            return self.now()
        if pinned.tzinfo is None:
            pinned = pinned.replace(tzinfo=dt.UTC)
        delta = pinned - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        us = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        return self.us_to_ts(exp.Literal.number(us))

    def date_trunc(self, unit: str, ts: exp.Expression) -> exp.Expression:
        return fn("date_trunc", s(unit), ts)

    def date_part(self, part: str, ts: exp.Expression) -> exp.Expression:
        """An integer part (``year``, ``month``, ``day``, ``hour``, ``minute``, ``second``,
        ``dayofyear``, ``week``, ``dayofweek`` (0 = Sunday), ``quarter``)."""
        raise NotImplementedError

    def add_months(self, ts: exp.Expression, months: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def format_ts(self, ts: exp.Expression, fmt: str) -> exp.Expression:
        """Format with a strftime-like pattern translated from KQL's (see functions)."""
        raise NotImplementedError

    def parse_ts(self, text: exp.Expression) -> exp.Expression:
        """A string -> TIMESTAMP, null when it is not a datetime."""
        raise NotImplementedError

    def span_to_interval(self, us: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def interval_to_span(self, iv: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    # -- dynamic -----------------------------------------------------------------------------------
    def dyn_from_json_text(self, text: exp.Expression) -> exp.Expression:
        """A JSON text -> dynamic; null when the text is not JSON."""
        raise NotImplementedError

    def dyn_source_column(self, col: exp.Expression) -> exp.Expression:
        """A table's dynamic column (JSON text, or already structured) -> dynamic."""
        return self.dyn_from_json_text(col)

    def dyn_to_json_text(self, v: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def dyn_from_scalar(self, e: exp.Expression, t: str) -> exp.Expression:
        raise NotImplementedError

    def dyn_path(self, v: exp.Expression, path: str) -> exp.Expression:
        """The element at a constant JSON path (``$.a[0]``), as dynamic; null when absent."""
        raise NotImplementedError

    def dyn_index(self, v: exp.Expression, index: exp.Expression) -> exp.Expression:
        """The element at a computed array index (negative counts from the end)."""
        raise NotImplementedError

    def dyn_key(self, v: exp.Expression, key: exp.Expression) -> exp.Expression:
        """The property of a computed name."""
        raise NotImplementedError

    def dyn_kind(self, v: exp.Expression) -> exp.Expression:
        """One of 'null', 'string', 'long', 'real', 'bool', 'array', 'object' ('decimal' -> 'real')."""
        raise NotImplementedError

    def dyn_is(self, v: exp.Expression, kind: str) -> exp.Expression:
        """True when *v* is of *kind* ('null', 'array', 'object', 'string'); smaller SQL than comparing
        :meth:`dyn_kind`."""
        raise NotImplementedError

    def dyn_as(self, v: exp.Expression, t: str) -> exp.Expression:
        """A dynamic scalar converted to a KQL scalar type, null when it does not convert."""
        raise NotImplementedError

    def dyn_as_string(self, v: exp.Expression) -> exp.Expression:
        """KQL ``tostring(dynamic)``: a string's own text, JSON text for anything else."""
        raise NotImplementedError

    def dyn_array_length(self, v: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def dyn_array(self, items: list[exp.Expression]) -> exp.Expression:
        """A dynamic array of dynamic values."""
        raise NotImplementedError

    def dyn_object(self, pairs: list[tuple[str, exp.Expression]]) -> exp.Expression:
        """A property bag with constant keys and dynamic values."""
        raise NotImplementedError

    def dyn_object_computed(self, pairs: list[tuple[exp.Expression, exp.Expression]]) -> exp.Expression:
        """A property bag with computed keys and dynamic values."""
        raise NotImplementedError

    def dyn_array_elements(self, v: exp.Expression) -> exp.Expression:
        """A SQL array of the dynamic elements of a dynamic array (null when not an array)."""
        raise NotImplementedError

    def dyn_array_from_sql_array(self, arr: exp.Expression) -> exp.Expression:
        """A SQL array (of scalars or of dynamic values) -> dynamic array."""
        raise NotImplementedError

    def dyn_keys(self, v: exp.Expression) -> exp.Expression:
        """A SQL array of the keys of a property bag."""
        raise NotImplementedError

    # -- arrays (SQL arrays, used inside dynamic functions) ---------------------------------------
    def array_contains(self, arr: exp.Expression, value: exp.Expression) -> exp.Expression:
        return fn("array_contains", arr, value)

    def array_distinct(self, arr: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def array_sort(self, arr: exp.Expression, desc: bool) -> exp.Expression:
        raise NotImplementedError

    def array_join(self, arr: exp.Expression, sep: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def array_size(self, arr: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def array_element(self, arr: exp.Expression, one_based: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def array_slice(self, arr: exp.Expression, start0: exp.Expression, length: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    # -- aggregates --------------------------------------------------------------------------------
    def collect_list(self, e: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def collect_set(self, e: exp.Expression) -> exp.Expression:
        raise NotImplementedError

    def arg_pick(self, kind: str, value: exp.Expression, by: exp.Expression) -> exp.Expression:
        """The *value* on the row where *by* is largest (``max``) or smallest (``min``)."""
        raise NotImplementedError

    def percentile(self, e: exp.Expression, fraction: float) -> exp.Expression:
        """Nearest-rank percentile (KQL's, not interpolated)."""
        raise NotImplementedError

    def struct(self, fields: list[tuple[str, exp.Expression]]) -> exp.Expression:
        raise NotImplementedError

    def struct_field(self, st: exp.Expression, name: str) -> exp.Expression:
        return exp.Dot(this=st, expression=exp.to_identifier(name, quoted=True))

    def count_if(self, pred: exp.Expression) -> exp.Expression:
        return exp.Count(this=exp.Case(ifs=[exp.If(this=pred, true=n(1))]))

    # -- tables ------------------------------------------------------------------------------------
    def range_table(self, count: exp.Expression, column: str) -> exp.Expression:
        """A FROM-clause source of integers 0..count-1 in *column*."""
        raise NotImplementedError

    def serial_ordinal(self) -> exp.Expression:
        """A value that follows the current row order, for ``serialize`` without a sort."""
        raise NotImplementedError


class Spark(Dialect):
    name = "spark"
    sqlglot = "spark"
    engine = "Spark"
    string_type = "STRING"
    dynamic_type = "VARIANT"

    def sql_type(self, t: str) -> exp.DataType:
        if t == T.DYNAMIC:
            return exp.DataType(this=exp.DataType.Type.VARIANT)
        return super().sql_type(t)

    def int_div(self, a, b):
        return exp.IntDiv(this=a, expression=fn("NULLIF", b, n(0)))

    def trunc(self, x):
        return x  # Spark's cast of a fraction to an integer truncates toward zero

    def sequence1(self, count):
        return fn("slice", fn("sequence", n(1), fn("greatest", count, n(1))), n(1), count)

    def real_div(self, a, b):
        return fn("try_divide", a, b)

    def ieee_div(self, a, b):
        # Spark's double division by zero is null (or an error under ANSI): spell IEEE 754 out.
        def inf(text: str) -> exp.Expression:
            return cast_(s(text), "DOUBLE")

        by_zero = exp.Case(ifs=[exp.If(this=exp.GT(this=a, expression=n(0)), true=inf("Infinity")),
                                exp.If(this=exp.LT(this=a, expression=n(0)), true=inf("-Infinity")),
                                exp.If(this=exp.Not(this=exp.Is(this=a, expression=exp.null())), true=inf("NaN"))])
        return exp.Case(ifs=[exp.If(this=exp.EQ(this=b, expression=n(0)), true=by_zero)],
                        default=fn("try_divide", a, b))

    def pmod(self, a, b):
        return fn("pmod", a, fn("abs", b))

    # KQL's patterns are RE2's; a constant one is respelled where Java's engine reads it otherwise (regex_java.py).
    def regex_match(self, value, pattern):
        return exp.RegexpLike(this=value, expression=_java(pattern))

    def regex_extract(self, value, pattern, group):
        return super().regex_extract(value, _java(pattern), group)

    def regex_extract_all(self, value, pattern, group):
        return fn("regexp_extract_all", value, _java(pattern), n(group))

    def regex_replace(self, value, pattern, repl):
        return fn("regexp_replace", value, _java(pattern), repl)

    def starts_with(self, a, b):
        return fn("startswith", a, b)

    def ends_with(self, a, b):
        return fn("endswith", a, b)

    def str_index(self, hay, needle):
        return fn("locate", needle, hay)

    def split(self, value, sep):
        # Spark's split takes a regex; a literal separator is quoted so it matches as text.
        return fn("split", value, exp.Concat(expressions=[s("\\Q"), sep, s("\\E")]), n(-1))

    def base64_encode(self, value):
        return fn("base64", fn("encode", value, s("utf-8")))

    def base64_decode(self, value):
        # Bytes that are not UTF-8 decode to null (Spark's decode() would fail the query), and Spark's
        # lenient base64 reader is held to the padded alphabet Kusto (and DuckDB) accept.
        text = fn("try_validate_utf8", cast_(fn("try_to_binary", value, s("base64")), "STRING"))
        return exp.Case(ifs=[exp.If(this=exp.RegexpLike(this=value, expression=s(BASE64_TEXT)), true=text)])

    def url_decode(self, value):
        return fn("try_url_decode", value)

    def url_encode(self, value):
        return fn("url_encode", value)

    def hash_sha256(self, value):
        return fn("sha2", value, n(256))

    def rand(self):
        return fn("rand")

    def ts_to_us(self, ts):
        return fn("unix_micros", ts)

    def us_to_ts(self, us):
        return fn("timestamp_micros", us)

    def now(self):
        return fn("current_timestamp")

    def date_part(self, part, ts):
        if part == "dayofweek":
            return exp.Sub(this=fn("dayofweek", ts), expression=n(1))
        if part == "week":
            return fn("weekofyear", ts)
        return fn(
            {
                "year": "year",
                "month": "month",
                "day": "day",
                "hour": "hour",
                "minute": "minute",
                "second": "second",
                "dayofyear": "dayofyear",
                "quarter": "quarter",
            }[part],
            ts,
        )

    def add_months(self, ts, months):
        return fn("timestampadd", exp.Var(this="MONTH"), months, ts)

    def format_ts(self, ts, fmt):
        return fn("date_format", ts, s(fmt))

    def parse_ts(self, text):
        return fn("try_to_timestamp", text)

    def span_to_interval(self, us):
        return exp.Mul(this=us, expression=exp.Interval(this=s("0.000001"), unit=exp.Var(this="SECOND")))

    def interval_to_span(self, iv):
        return fn("unix_micros", exp.Add(this=fn("timestamp_micros", n(0)), expression=iv))

    def dyn_from_json_text(self, text):
        return fn("try_parse_json", text)

    def dyn_to_json_text(self, v):
        return fn("to_json", v)

    def dyn_from_scalar(self, e, t):
        if t == T.DYNAMIC:
            return e
        if t == T.DATETIME:
            e = fn("date_format", e, s("yyyy-MM-dd'T'HH:mm:ss.SSSSSS'0Z'"))
        elif t == T.TIMESPAN:
            return self.dyn_from_scalar(timespan_text(self, e), T.STRING)
        elif t == T.DECIMAL:
            e = cast_(e, "DOUBLE")
        return exp.Cast(this=e, to=exp.DataType(this=exp.DataType.Type.VARIANT))

    def dyn_path(self, v, path):
        return fn("variant_get", v, s(path))

    def dyn_index(self, v, index):
        arr = self.dyn_array_elements(v)
        one_based = exp.Case(
            ifs=[exp.If(this=exp.GTE(this=index, expression=n(0)), true=exp.Add(this=index, expression=n(1)))],
            default=index,
        )
        return fn("try_element_at", arr, cast_(one_based, "INT"))  # element_at takes no BIGINT index

    def dyn_key(self, v, key):
        return fn(
            "try_element_at", try_cast_(this=v, to=dtype("MAP<STRING, VARIANT>", dialect="spark")), key
        )

    def dyn_kind(self, v):
        sch = fn("schema_of_variant", v)
        return exp.Case(
            ifs=[
                exp.If(this=exp.Is(this=v, expression=exp.null()), true=s("null")),
                exp.If(this=exp.EQ(this=sch, expression=s("VOID")), true=s("null")),
                exp.If(this=exp.EQ(this=sch, expression=s("STRING")), true=s("string")),
                exp.If(this=exp.EQ(this=sch, expression=s("BOOLEAN")), true=s("bool")),
                exp.If(
                    this=exp.In(this=sch, expressions=[s("BIGINT"), s("INT"), s("SMALLINT"), s("TINYINT")]),
                    true=s("long"),
                ),
                exp.If(this=exp.Like(this=sch, expression=s("ARRAY%")), true=s("array")),
                exp.If(this=exp.Like(this=sch, expression=s("OBJECT%")), true=s("object")),
                exp.If(this=exp.Like(this=sch, expression=s("TIMESTAMP%")), true=s("datetime")),
            ],
            default=s("real"),
        )

    def dyn_is(self, v, kind):
        sch = fn("schema_of_variant", v)
        if kind == "null":
            return exp.or_(exp.Is(this=v, expression=exp.null()), exp.EQ(this=sch, expression=s("VOID")))
        pattern = {"array": "ARRAY%", "object": "OBJECT%", "string": "STRING"}[kind]
        return exp.Like(this=sch, expression=s(pattern))

    def dyn_as(self, v, t):
        if t == T.DYNAMIC:
            return v
        if t == T.STRING:
            return self.dyn_as_string(v)
        if t == T.DATETIME:
            return fn("try_to_timestamp", fn("try_variant_get", v, s("$"), s("string")))
        if t == T.TIMESPAN:
            raise NotImplementedError
        target = {
            T.BOOL: "boolean",
            T.INT: "int",
            T.LONG: "bigint",
            T.REAL: "double",
            T.DECIMAL: "decimal(38,18)",
            T.GUID: "string",
        }[t]
        return fn("try_variant_get", v, s("$"), s(target))

    def dyn_as_string(self, v):
        return exp.Cast(this=v, to=dtype("STRING"))

    def dyn_array_length(self, v):
        return fn("array_size", try_cast_(this=v, to=dtype("ARRAY<VARIANT>", dialect="spark")))

    def dyn_array(self, items):
        return fn("to_variant_object", fn("array", *items)) if items else fn("parse_json", s("[]"))

    def dyn_object(self, pairs):
        if not pairs:
            return fn("parse_json", s("{}"))
        args: list[exp.Expression] = []
        for k, v in pairs:
            args += [s(k), v]
        return fn("to_variant_object", fn("named_struct", *args))

    def dyn_object_computed(self, pairs):
        args: list[exp.Expression] = []
        for k, v in pairs:
            args += [k, v]
        return fn("to_variant_object", fn("map", *args))

    def dyn_array_elements(self, v):
        return try_cast_(this=v, to=dtype("ARRAY<VARIANT>", dialect="spark"))

    def dyn_array_from_sql_array(self, arr):
        return fn("to_variant_object", arr)

    def dyn_keys(self, v):
        return fn("map_keys", try_cast_(this=v, to=dtype("MAP<STRING, VARIANT>", dialect="spark")))

    def array_distinct(self, arr):
        return fn("array_distinct", arr)

    def array_sort(self, arr, desc):
        srt = fn("array_sort", arr)
        return fn("reverse", srt) if desc else srt

    def array_join(self, arr, sep):
        return fn("array_join", arr, sep)

    def array_size(self, arr):
        return fn("array_size", arr)

    def array_element(self, arr, one_based):
        return fn("try_element_at", arr, cast_(one_based, "INT"))

    def array_slice(self, arr, start0, length):
        return fn("slice", arr, exp.Add(this=start0, expression=n(1)), length)

    def collect_list(self, e):
        return fn("collect_list", e)

    def collect_set(self, e):
        return fn("collect_set", e)

    def arg_pick(self, kind, value, by):
        return fn("max_by" if kind == "max" else "min_by", value, by)

    def percentile(self, e, fraction):
        # Nearest rank: the smallest value whose cumulative share reaches the fraction.
        return exp.WithinGroup(
            this=fn("percentile_disc", n(fraction)), expression=exp.Order(expressions=[exp.Ordered(this=e)])
        )

    def struct(self, fields):
        args: list[exp.Expression] = []
        for k, v in fields:
            args += [s(k), v]
        return fn("named_struct", *args)

    def range_table(self, count, column):
        return exp.Table(
            this=fn("range", n(0), count),
            alias=exp.TableAlias(this=exp.to_identifier("_r"), columns=[exp.to_identifier(column)]),
        )

    def serial_ordinal(self):
        return fn("monotonically_increasing_id")


class DuckDB(Dialect):
    name = "duckdb"
    sqlglot = "duckdb"
    engine = "local"

    def sequence1(self, count):
        return fn("range", n(1), exp.Add(this=count, expression=n(1)))

    def pmod(self, a, b):
        return exp.Mod(
            this=paren(exp.Add(this=paren(exp.Mod(this=a, expression=fn("NULLIF", b, n(0)))), expression=fn("abs", b))),
            expression=fn("NULLIF", fn("abs", b), n(0)),
        )

    def regex_match(self, value, pattern):
        return fn("regexp_matches", value, pattern)

    def regex_extract(self, value, pattern, group):
        if group <= 9 or not (isinstance(pattern, exp.Literal) and pattern.is_string):
            return super().regex_extract(value, pattern, group)
        # DuckDB numbers groups 0-9 only; its struct form names every group, so group 10+ is a field of it.
        if _capture_groups(pattern.this) < group:
            return s("")  # as regexp_extract answers for a group 1-9 the pattern lacks
        names = exp.Array(expressions=[s(f"g{k}") for k in range(1, group + 1)])
        return fn("struct_extract", fn("regexp_extract", value, pattern, names), s(f"g{group}"))

    def regex_extract_all(self, value, pattern, group):
        return fn("regexp_extract_all", value, pattern, n(group))

    def regex_replace(self, value, pattern, repl):
        return fn("regexp_replace", value, pattern, repl, s("g"))

    def starts_with(self, a, b):
        return fn("starts_with", a, b)

    def ends_with(self, a, b):
        return fn("ends_with", a, b)

    def str_index(self, hay, needle):
        return fn("strpos", hay, needle)

    def split(self, value, sep):
        return fn("string_split", value, sep)

    def base64_encode(self, value):
        return fn("to_base64", fn("encode", value))

    def base64_decode(self, value):
        return fn("TRY", fn("decode", fn("from_base64", value)))

    def url_decode(self, value):
        return fn("url_decode", value)

    def url_encode(self, value):
        return fn("url_encode", value)

    def hash_sha256(self, value):
        return fn("sha256", value)

    def new_guid(self):
        return cast_(fn("uuid"), "VARCHAR")

    def rand(self):
        return fn("random")

    def ts_to_us(self, ts):
        return fn("epoch_us", ts)

    def us_to_ts(self, us):
        return fn("make_timestamp", us)

    keeps_ticks = True

    def datetime_literal(self, us):
        # A literal with a 7th digit is a TIMESTAMP_NS (which holds 1677-2262 only; outside that the digit is cut,
        # as on Spark); every other literal stays a TIMESTAMP, which holds Kusto's whole range (years 1-9999).
        if ticks_rest(us) and ns_holds(us):
            return cast_(s(format_datetime_ticks(us)), dtype("TIMESTAMP_NS", dialect="duckdb"))
        return super().datetime_literal(us)

    def ts_plus_us(self, ts, us):
        # TIMESTAMP_NS + INTERVAL keeps the ticks; on a TIMESTAMP it is the same exact sum of microseconds.
        return exp.Add(this=ts, expression=self.span_to_interval(us))

    def sub_us_ns(self, ts):
        # strftime's %n is the fraction's nanoseconds of a TIMESTAMP (whole microseconds) and of a TIMESTAMP_NS
        # alike, and never overflows (epoch_ns of a TIMESTAMP after 2262 fails).
        return exp.Mod(this=cast_(fn("strftime", ts, s("%n")), "BIGINT"), expression=n(1000))

    def ts_plus_ticks(self, ts, ticks):
        # A TIMESTAMP_NS, which holds 1677-2262: outside that the query fails saying so, never cut or wrapped.
        moved = exp.Add(this=fn("epoch_ns", ts), expression=exp.Mul(this=ticks, expression=n(100)))
        ns = fn("make_timestamp_ns", moved)
        inside = exp.and_(exp.GTE(this=ts.copy(), expression=fn("make_timestamp", n(_NS_LOW_US))),
                          exp.LT(this=ts.copy(), expression=fn("make_timestamp", n(_NS_HIGH_US))))
        return exp.Case(ifs=[exp.If(this=exp.or_(exp.Is(this=ts.copy(), expression=exp.null()), inside), true=ns)],
                        default=fn("error", s(_NS_RANGE)))

    def now(self):
        return exp.AtTimeZone(this=fn("get_current_timestamp"), zone=s("UTC"))

    def date_part(self, part, ts):
        if part == "dayofweek":
            return fn("dayofweek", ts)
        return fn(
            {
                "year": "year",
                "month": "month",
                "day": "day",
                "hour": "hour",
                "minute": "minute",
                "second": "second",
                "dayofyear": "dayofyear",
                "quarter": "quarter",
                "week": "weekofyear",
            }[part],
            ts,
        )

    def add_months(self, ts, months):
        return exp.Add(this=ts, expression=fn("to_months", cast_(months, "INTEGER")))

    def format_ts(self, ts, fmt):
        if TICKS_MARK not in fmt:
            return fn("strftime", ts, s(fmt))
        # fffffff: seven digits of the fraction, from %n's nine (strftime has no 100 ns specifier).
        ticks = fn("substr", fn("strftime", ts.copy(), s("%n")), n(1), n(7))
        out: exp.Expression | None = None
        for i, piece in enumerate(fmt.split(TICKS_MARK)):
            part = [ticks.copy()] if i else []
            if piece:
                part.append(fn("strftime", ts.copy(), s(piece)))
            for p in part:
                out = p if out is None else exp.DPipe(this=out, expression=p)
        return out

    def parse_ts(self, text):
        return exp.AtTimeZone(this=try_cast_(this=text, to=dtype("TIMESTAMPTZ")), zone=s("UTC"))

    def span_to_interval(self, us):
        return fn("to_microseconds", us)

    def interval_to_span(self, iv):
        return fn("epoch_us", iv)

    def dyn_from_json_text(self, text):
        return try_cast_(this=text, to=dtype("JSON", dialect="duckdb"))

    def dyn_source_column(self, col):
        return try_cast_(this=col, to=dtype("JSON", dialect="duckdb"))

    def dyn_to_json_text(self, v):
        return cast_(v, "VARCHAR")

    def dyn_from_scalar(self, e, t):
        if t == T.DYNAMIC:
            return e
        if t == T.DATETIME:
            e = duckdb_datetime_text(e)
        elif t == T.TIMESPAN:
            e = timespan_text(self, e)
        elif t == T.DECIMAL:
            e = cast_(e, "DOUBLE")
        return fn("to_json", e)

    def dyn_path(self, v, path):
        return fn("json_extract", v, s(path))

    def dyn_index(self, v, index):
        return fn(
            "json_extract",
            v,
            exp.Case(
                ifs=[
                    exp.If(
                        this=exp.GTE(this=index, expression=n(0)),
                        true=exp.DPipe(
                            this=exp.DPipe(this=s("$["), expression=cast_(index, "VARCHAR")), expression=s("]")
                        ),
                    )
                ],
                default=exp.DPipe(
                    this=exp.DPipe(this=s("$[#"), expression=cast_(index, "VARCHAR")), expression=s("]")
                ),
            ),
        )

    def dyn_key(self, v, key):
        return fn("json_extract", v, exp.DPipe(this=exp.DPipe(this=s('$."'), expression=key), expression=s('"')))

    def dyn_kind(self, v):
        t = fn("json_type", v)
        return exp.Case(
            ifs=[
                exp.If(this=exp.Is(this=v, expression=exp.null()), true=s("null")),
                exp.If(this=exp.EQ(this=t, expression=s("NULL")), true=s("null")),
                exp.If(this=exp.EQ(this=t, expression=s("VARCHAR")), true=s("string")),
                exp.If(this=exp.EQ(this=t, expression=s("BOOLEAN")), true=s("bool")),
                exp.If(this=exp.In(this=t, expressions=[s("BIGINT"), s("UBIGINT")]), true=s("long")),
                exp.If(this=exp.EQ(this=t, expression=s("ARRAY")), true=s("array")),
                exp.If(this=exp.EQ(this=t, expression=s("OBJECT")), true=s("object")),
            ],
            default=s("real"),
        )

    def dyn_is(self, v, kind):
        jt = fn("json_type", v)
        if kind == "null":
            return exp.or_(exp.Is(this=v, expression=exp.null()), exp.EQ(this=jt, expression=s("NULL")))
        return exp.EQ(this=jt, expression=s({"array": "ARRAY", "object": "OBJECT", "string": "VARCHAR"}[kind]))

    def dyn_as(self, v, t):
        if t == T.DYNAMIC:
            return v
        if t == T.STRING:
            return self.dyn_as_string(v)
        text = fn("json_extract_string", v, s("$"))
        if t == T.DATETIME:
            return self.parse_ts(text)
        if t in (T.INT, T.LONG):
            return try_cast_(this=try_cast_(this=text, to=dtype("DOUBLE")), to=self.sql_type(t))
        return try_cast_(this=text, to=self.sql_type(t))

    def dyn_as_string(self, v):
        return fn("json_extract_string", v, s("$"))

    def dyn_array_length(self, v):
        return exp.Case(
            ifs=[exp.If(this=exp.EQ(this=fn("json_type", v), expression=s("ARRAY")), true=fn("json_array_length", v))]
        )

    def dyn_array(self, items):
        if not items:
            return cast_(s("[]"), "JSON")
        return cast_(fn("to_json", fn("list_value", *items)), "JSON")

    def dyn_object(self, pairs):
        args: list[exp.Expression] = []
        for k, v in pairs:
            args += [s(k), v]
        return fn("json_object", *args)

    def dyn_object_computed(self, pairs):
        args: list[exp.Expression] = []
        for k, v in pairs:
            args += [k, v]
        return fn("json_object", *args)

    def dyn_array_elements(self, v):
        return exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=fn("json_type", v), expression=s("ARRAY")),
                    true=exp.Cast(this=v, to=dtype("JSON[]", dialect="duckdb")),
                )
            ]
        )

    def dyn_array_from_sql_array(self, arr):
        return fn("to_json", arr)

    def dyn_keys(self, v):
        return exp.Case(
            ifs=[exp.If(this=exp.EQ(this=fn("json_type", v), expression=s("OBJECT")), true=fn("json_keys", v))]
        )

    def array_distinct(self, arr):
        return fn("list_distinct", arr)

    def array_sort(self, arr, desc):
        return fn("list_sort", arr, s("DESC" if desc else "ASC"), s("NULLS FIRST" if not desc else "NULLS LAST"))

    def array_join(self, arr, sep):
        return fn("array_to_string", arr, sep)

    def array_size(self, arr):
        return fn("len", arr)

    def array_element(self, arr, one_based):
        return fn("list_extract", arr, one_based)

    def array_slice(self, arr, start0, length):
        return fn("list_slice", arr, exp.Add(this=start0, expression=n(1)), exp.Add(this=start0, expression=length))

    def collect_list(self, e):
        return fn("list", e)

    def collect_set(self, e):
        return fn("list_distinct", fn("list", e))

    def arg_pick(self, kind, value, by):
        return fn("arg_max" if kind == "max" else "arg_min", value, by)

    def percentile(self, e, fraction):
        return fn("quantile_disc", e, n(fraction))

    def struct(self, fields):
        return fn(
            "struct_pack", *[exp.PropertyEQ(this=exp.to_identifier(k, quoted=True), expression=v) for k, v in fields]
        )

    def range_table(self, count, column):
        return exp.Table(
            this=fn("range", n(0), count),
            alias=exp.TableAlias(this=exp.to_identifier("_r"), columns=[exp.to_identifier(column)]),
        )

    def serial_ordinal(self):
        return exp.Window(this=fn("row_number"))


DIALECTS = {"spark": Spark(), "duckdb": DuckDB()}


def _java(pattern: exp.Expression) -> exp.Expression:
    return s(java_regex(pattern.this)) if isinstance(pattern, exp.Literal) and pattern.is_string else pattern


def _capture_groups(pattern: str) -> int:
    """Capturing groups of a constant RE2 pattern (Python's parser counts them alike); 0 if it cannot parse."""
    import re

    try:
        return re.compile(pattern).groups
    except re.error:
        return 0
