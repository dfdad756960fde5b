"""Conversions between KQL types: ``tostring``, ``toint`` ... ``todatetime``, ``totimespan``, ``parse_json``.

``to_string``, ``parse_json_expr`` and ``convert_text`` are shared with the other families (``bag_pack``
keys, ``extract_json``, ``extract`` and ``parse`` with a typed result), so a value converts the same way
wherever KQL converts it.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import big, lower_str
from kqlmagic_plus.language.compiler.literals import parse_datetime_text
from kqlmagic_plus.language.compiler.sqlexpr import (
    case,
    cast_,
    duckdb_datetime_text,
    fn,
    n,
    paren,
    s,
    timespan_text,
    try_cast_,
)
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


def datetime_text(g: Any, ts: exp.Expression) -> exp.Expression:
    """KQL's ``tostring(datetime)``: ISO 8601, always seven fraction digits, ``Z`` (measured on Kusto)."""
    if g.d.name == "spark":
        return fn("date_format", ts, s("yyyy-MM-dd'T'HH:mm:ss.SSSSSS'0Z'"))
    return duckdb_datetime_text(ts)


def real_text(g: Any, x: exp.Expression) -> exp.Expression:
    """KQL prints whole reals without a fraction (``1``, not ``1.0``)."""
    whole = exp.and_(exp.EQ(this=x, expression=fn("floor", x)), exp.LT(this=fn("abs", x), expression=n(1e15)))
    return case([(whole, cast_(big(x), g.d.string_type))], cast_(x, g.d.string_type))


def to_string(g: Any, arg: ir.Expr) -> exp.Expression:
    """KQL's ``tostring``: never null, the text of a null value (a null dynamic, a missing bag key) is ""."""
    text = _to_string(g, arg)
    if arg.type == T.STRING or isinstance(text, exp.Literal):
        return text  # a string stays as it is: its consumers read a SQL NULL string as ""
    return exp.Coalesce(this=text, expressions=[s("")])


def _to_string(g: Any, arg: ir.Expr) -> exp.Expression:
    if g.d.name == "spark" and arg.type == T.DYNAMIC:
        # Spark's variant keeps an object's keys sorted, Kusto's dynamic keeps them as written: a constant's
        # text is written here (compact JSON, the form Kusto prints), where its keys are still in order.
        import json

        from kqlmagic_plus.language.compiler.functions.geo_approx import constant_value

        known, value = constant_value(arg)
        if known and value is not None and _plain_json(value):
            return exp.Literal.string(json.dumps(value, separators=(",", ":")))
    x = g.e(arg)
    t = arg.type
    if t in (T.STRING, T.GUID):
        return x
    if t == T.NULL:
        return s("")
    if t == T.DYNAMIC:
        return g.d.dyn_as_string(x)
    if t == T.REAL:
        return real_text(g, x)
    if t == T.DATETIME:
        return datetime_text(g, x)
    if t == T.TIMESPAN:
        return timespan_text(g.d, x)
    if t == T.BOOL:
        # .NET's spelling, as Kusto prints it.
        return case([(x, s("True")), (exp.Not(this=x), s("False"))])
    return cast_(x, g.d.string_type)


def _plain_json(v: Any) -> bool:
    """A value whose compact JSON is the same text on every engine: objects, arrays, ASCII strings, integers
    and decimals printed without an exponent."""
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain_json(k) and _plain_json(x) for k, x in v.items())
    if isinstance(v, list):
        return all(_plain_json(x) for x in v)
    if isinstance(v, str):
        return v.isascii() and v.isprintable() and "\\" not in v and '"' not in v
    if isinstance(v, float):
        return v == v and abs(v) != float("inf") and "e" not in repr(v) and abs(v) >= 1e-4
    return v is None or isinstance(v, (bool, int))


@scalar("tostring", 1, T.STRING)
def _tostring(g, c, pred):
    return to_string(g, c.args[0])


def to_number(g: Any, arg: ir.Expr, target: str) -> exp.Expression:
    x = g.e(arg)
    t = arg.type
    if t == target or (t == T.INT and target == T.LONG):
        return x if t == target else big(x)
    if t == T.NULL:
        return g.d.typed_null(target)
    if t == T.DYNAMIC:
        return g.d.dyn_as(x, target)
    if t in (T.STRING, T.GUID):
        x = fn("trim", x)
        if target in T.INTEGRAL:
            # toint("1.5") is 1 in KQL: parse as a number first, then truncate.
            return try_cast_(this=g.d.trunc(try_cast_(this=x, to=g.d.sql_type(T.REAL))), to=g.d.sql_type(target))
        return try_cast_(this=x, to=g.d.sql_type(target))
    if t == T.BOOL:
        return g.d.cast(case([(x, n(1)), (exp.Not(this=x), n(0))]), target)
    if t == T.DATETIME:
        # tolong(datetime) is ticks (100 ns) since 0001-01-01.
        ticks = exp.Add(this=exp.Mul(this=g.d.ts_to_us(x), expression=n(10)), expression=n(621355968000000000))
        if g.d.keeps_ticks:  # and the ticks below the microsecond
            ticks = exp.Add(this=ticks, expression=exp.IntDiv(this=g.d.sub_us_ns(x.copy()), expression=n(100)))
        return g.d.cast(ticks, target)
    if t == T.TIMESPAN:
        return g.d.cast(exp.Mul(this=x, expression=n(10)), target)
    if target in T.INTEGRAL and t in (T.REAL, T.DECIMAL):
        return try_cast_(this=g.d.trunc(x), to=g.d.sql_type(target))
    return try_cast_(this=x, to=g.d.sql_type(target))


@scalar("toint", 1, T.INT)
def _toint(g, c, pred):
    return to_number(g, c.args[0], T.INT)


@scalar("tolong", 1, T.LONG)
def _tolong(g, c, pred):
    return to_number(g, c.args[0], T.LONG)


@scalar("toreal", 1, T.REAL, aliases=("todouble",))
def _toreal(g, c, pred):
    return to_number(g, c.args[0], T.REAL)


@scalar("todecimal", 1, T.DECIMAL)
def _todecimal(g, c, pred):
    return to_number(g, c.args[0], T.DECIMAL)


@scalar("tobool", 1, T.BOOL, aliases=("toboolean",))
def _tobool(g, c, pred):
    a = c.args[0]
    x = g.e(a)
    if a.type == T.BOOL:
        return x
    if a.type == T.DYNAMIC:
        return g.d.dyn_as(x, T.BOOL)
    if a.type in (T.STRING,):
        low = lower_str(fn("trim", x))
        return case(
            [
                (exp.In(this=low, expressions=[s("true"), s("1")]), exp.true()),
                (exp.In(this=low, expressions=[s("false"), s("0")]), exp.false()),
            ]
        )
    if a.type in T.NUMERIC:
        return exp.NEQ(this=x, expression=n(0))
    raise Refusal(f"tobool({a.type})")


def to_datetime(g: Any, a: ir.Expr) -> exp.Expression:
    x = g.e(a)
    if a.type == T.DATETIME:
        return x
    if a.type == T.DYNAMIC:
        return g.d.dyn_as(x, T.DATETIME)
    if a.type == T.STRING:
        if isinstance(a, ir.Lit) and isinstance(a.value, str):
            # Text known now reads as the datetime literal of the same text does (todatetime('12-02-2022')
            # == datetime('12-02-2022')), including the month-first forms neither SQL cast takes.
            us = parse_datetime_text(a.value)
            if us is not None:
                return g.e(ir.Lit(T.DATETIME, us))
        return g.d.parse_ts(x)
    if a.type in T.INTEGRAL:
        # todatetime(long) reads ticks.
        return g.d.us_to_ts(exp.IntDiv(this=exp.Sub(this=x, expression=n(621355968000000000)), expression=n(10)))
    if a.type == T.NULL:
        return g.d.typed_null(T.DATETIME)
    raise Refusal(f"todatetime({a.type})")


@scalar("todatetime", 1, T.DATETIME)
def _todatetime(g, c, pred):
    return to_datetime(g, c.args[0])


@scalar("totimespan", 1, T.TIMESPAN, aliases=("time",))
def _totimespan(g, c, pred):
    a = c.args[0]
    x = g.e(a)
    if a.type == T.TIMESPAN:
        return x
    if a.type in T.INTEGRAL:
        return exp.IntDiv(this=x, expression=n(10))  # ticks
    if a.type in (T.STRING, T.DYNAMIC):
        text = to_string(g, a)
        pat = s(r"^\s*(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*$")

        def part(i: int) -> exp.Expression:
            return try_cast_(this=fn("NULLIF", g.d.regex_extract(text, pat, i), s("")), to=g.d.sql_type(T.LONG))

        frac = try_cast_(
            this=fn("rpad", fn("NULLIF", g.d.regex_extract(text, pat, 6), s("")), n(7), s("0")), to=g.d.sql_type(T.LONG)
        )
        total = exp.Add(
            this=exp.Mul(
                this=exp.Add(
                    this=exp.Add(
                        this=exp.Add(
                            this=exp.Mul(this=exp.Coalesce(this=part(2), expressions=[n(0)]), expression=n(86400)),
                            expression=exp.Mul(this=part(3), expression=n(3600)),
                        ),
                        expression=exp.Mul(this=part(4), expression=n(60)),
                    ),
                    expression=exp.Coalesce(this=part(5), expressions=[n(0)]),
                ),
                expression=n(1_000_000),
            ),
            expression=exp.IntDiv(this=exp.Coalesce(this=frac, expressions=[n(0)]), expression=n(10)),
        )
        signed = case(
            [(exp.EQ(this=g.d.regex_extract(text, pat, 1), expression=s("-")), exp.Neg(this=paren(total)))], total
        )
        return case([(g.d.regex_match(text, pat), signed)])
    raise Refusal(f"totimespan({a.type})")


@scalar("toguid", 1, T.GUID)
def _toguid(g, c, pred):
    # Kusto drops the hyphens, reads the first 32 hex digits and ignores the rest of the text, so
    # "0123456789ab-cdef-0123-456789abcdef" and the bare 32-digit form are both guids.
    hexes = lower_str(fn("replace", to_string(g, c.args[0]), s("-"), s("")))
    groups = [fn("substring", hexes, n(start), n(length)) for start, length in _GUID_GROUPS]
    dashed: list[exp.Expression] = []
    for i, part in enumerate(groups):
        if i:
            dashed.append(s("-"))
        dashed.append(part)
    return case([(g.d.regex_match(hexes, s("^[0-9a-f]{32}")), exp.Concat(expressions=dashed))])


_GUID_GROUPS = ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))


def parse_json_expr(g: Any, a: ir.Expr) -> exp.Expression:
    x = g.e(a)
    if a.type == T.DYNAMIC:
        return x
    if a.type == T.STRING:
        # Text that is not JSON becomes a dynamic string holding the text (KQL's parse_json).
        return exp.Coalesce(this=g.d.dyn_from_json_text(x), expressions=[g.d.dyn_from_scalar(x, T.STRING)])
    return g.d.dyn_from_scalar(x, a.type)


@scalar("parse_json", 1, T.DYNAMIC, aliases=("todynamic", "parsejson", "toobject"))
def _parse_json(g, c, pred):
    return parse_json_expr(g, c.args[0])


def dynamic_of(g: Any, a: ir.Expr) -> exp.Expression:
    """A scalar as a dynamic value (an element of pack_array, a bag_pack value); a SQL NULL string is KQL's ""
    and becomes the dynamic "", not a JSON null."""
    x = g.e(a)
    if a.type == T.DYNAMIC:
        return x
    if a.type == T.STRING:
        x = exp.Coalesce(this=x, expressions=[s("")])
    return g.d.dyn_from_scalar(x, a.type)


@scalar("__to_dynamic", 1, T.DYNAMIC, category="internal")
def _to_dynamic(g, c, pred):
    return dynamic_of(g, c.args[0])


@scalar("__dyn_as", 1, lambda a: a[0].type, category="internal")
def _dyn_as(g, c, pred):
    raise AssertionError("typed by lowering")


def convert_text(g: Any, text: exp.Expression, t: str) -> exp.Expression:
    """*text* (a regex capture) as KQL type *t*: the typed result of ``extract`` and of ``parse``'s columns."""
    if t == T.STRING:
        return text
    if t == T.DATETIME:
        # A capture often keeps a separator's blank or newline; Kusto's documented parse outputs also read
        # month/day/year text ("02/17/2016 08:40:01"), which neither SQL cast takes.
        text = g.d.regex_replace(text, s(r"^\s+|\s+$"), s(""))
        us = (
            fn("try_to_timestamp", text, s("M/d/yyyy H:mm:ss"))
            if g.d.name == "spark"
            else fn("try_strptime", text, s("%m/%d/%Y %H:%M:%S"))
        )
        return exp.Coalesce(this=g.d.parse_ts(text), expressions=[us])
    if t == T.DYNAMIC:
        return exp.Coalesce(this=g.d.dyn_from_json_text(text), expressions=[g.d.dyn_from_scalar(text, T.STRING)])
    if t in T.INTEGRAL:
        return try_cast_(this=g.d.trunc(try_cast_(this=text, to=g.d.sql_type(T.REAL))), to=g.d.sql_type(t))
    if t == T.BOOL:
        low = lower_str(text)
        return case(
            [
                (exp.In(this=low, expressions=[s("true"), s("1")]), exp.true()),
                (exp.In(this=low, expressions=[s("false"), s("0")]), exp.false()),
            ]
        )
    return try_cast_(this=text, to=g.d.sql_type(t))
