"""Shorthands for building sqlglot expressions, shared by the dialects, the function tables and the emitter.

Nothing here differs between Spark and DuckDB (what does is in :mod:`.dialects`, built on these), so
every module that writes SQL can import them without importing the dialects.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlglot import exp


def fn(name: str, *args: exp.Expression) -> exp.Expression:
    """A function call rendered as written (no transpilation surprises)."""
    return exp.Anonymous(this=name, expressions=list(args))


@functools.lru_cache(maxsize=256)
def _dtype(text: str, dialect: str | None) -> exp.DataType:
    return exp.DataType.build(text, dialect=dialect)


def dtype(text: str, dialect: str | None = None) -> exp.DataType:
    """A SQL type node; parsing type text is slow in sqlglot, so parse each spelling once."""
    return _dtype(text, dialect).copy()


def cast_(e: exp.Expression, to: str | exp.DataType) -> exp.Expression:
    return exp.Cast(this=e, to=dtype(to) if isinstance(to, str) else to)


def try_cast_(this: exp.Expression, to: exp.DataType) -> exp.Expression:
    """TRY_CAST in every dialect (sqlglot prints a plain CAST for Spark unless told it is safe)."""
    return exp.TryCast(this=this, to=to, safe=True)


def s(text: str) -> exp.Literal:
    return exp.Literal.string(text)


def n(value: int | float) -> exp.Expression:
    if isinstance(value, float) or value >= 0:
        return exp.Literal.number(value)
    return exp.Neg(this=exp.Literal.number(-value))


def paren(e: exp.Expression) -> exp.Expression:
    return exp.Paren(this=e)


def case(whens: list[tuple[exp.Expression, exp.Expression]], default: exp.Expression | None = None) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=c, true=v) for c, v in whens], default=default)


def timespan_text(d: Any, us: exp.Expression) -> exp.Expression:
    """KQL's text of a timespan, ``[-][d.]hh:mm:ss[.fffffff]``, from microseconds."""
    a = fn("abs", us)
    days = exp.IntDiv(this=a, expression=n(86_400_000_000))
    rem = exp.Mod(this=a, expression=n(86_400_000_000))
    hh = exp.IntDiv(this=rem, expression=n(3_600_000_000))
    mm = exp.IntDiv(this=exp.Mod(this=rem, expression=n(3_600_000_000)), expression=n(60_000_000))
    ss = exp.IntDiv(this=exp.Mod(this=rem, expression=n(60_000_000)), expression=n(1_000_000))
    frac = exp.Mod(this=rem, expression=n(1_000_000))

    def pad(x: exp.Expression, width: int) -> exp.Expression:
        return fn("lpad", cast_(x, d.string_type), n(width), s("0"))

    parts = [
        case([(exp.LT(this=us, expression=n(0)), s("-"))], s("")),
        case(
            [(exp.GT(this=days, expression=n(0)), exp.Concat(expressions=[cast_(days, d.string_type), s(".")]))],
            s(""),
        ),
        pad(hh, 2),
        s(":"),
        pad(mm, 2),
        s(":"),
        pad(ss, 2),
        case(
            [
                (
                    exp.GT(this=frac, expression=n(0)),
                    exp.Concat(expressions=[s("."), pad(exp.Mul(this=frac, expression=n(10)), 7)]),
                )
            ],
            s(""),
        ),
    ]
    return case([(exp.Is(this=us, expression=exp.null()), exp.null())], exp.Concat(expressions=parts))


def ident(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


def table(name: str, alias: str | None = None) -> exp.Table:
    t = exp.Table(this=ident(name))
    if alias:
        t.set("alias", exp.TableAlias(this=ident(alias)))
    return t


def alias(e: exp.Expression, name: str) -> exp.Expression:
    return exp.Alias(this=e, alias=ident(name))


def duckdb_datetime_text(ts: exp.Expression) -> exp.Expression:
    """KQL's text of a datetime (``2020-01-01T12:00:00.1234567Z``) in DuckDB: seven fraction digits, from the
    nanoseconds ``%n`` gives (a TIMESTAMP_NS keeps its 100 ns ticks; ``%f`` would cut them)."""
    head = fn("strftime", ts, s("%Y-%m-%dT%H:%M:%S."))
    ticks = fn("substr", fn("strftime", ts, s("%n")), n(1), n(7))
    return exp.DPipe(this=exp.DPipe(this=head, expression=ticks), expression=s("Z"))
