"""Datetime functions: ``now``, ``ago``, ``startof*``/``endof*``, ``datetime_part``/``_add``/``_diff``,
``make_datetime``, ``format_datetime``, ``format_timespan`` ...

Offsets up to a week are exact integer arithmetic on microseconds since the epoch; months, quarters
and years go through the dialect's ``add_months`` and ``date_part``.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.dialects import TICKS_MARK
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import big, lit_str, may_carry_ticks
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, fn, n, paren, s
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


@scalar("now", (0, 1), T.DATETIME)
def _now(g, c, pred):
    if c.args:
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(g.d.current_time()), expression=g.e(c.args[0])))
    return g.d.current_time()


@scalar("ago", 1, T.DATETIME, coerce="timespan")
def _ago(g, c, pred):
    return g.d.us_to_ts(exp.Sub(this=g.d.ts_to_us(g.d.current_time()), expression=g.e(c.args[0])))


def _day_us(k: exp.Expression) -> exp.Expression:
    return exp.Mul(this=k, expression=n(86_400_000_000))


def start_of(g: Any, unit: str, ts: exp.Expression) -> exp.Expression:
    if unit == "week":
        day = g.d.date_trunc("day", ts)
        return g.d.us_to_ts(exp.Sub(this=g.d.ts_to_us(day), expression=_day_us(big(g.d.date_part("dayofweek", ts)))))
    return g.d.date_trunc(unit, ts)


def _offset(g: Any, unit: str, start: exp.Expression, k: exp.Expression) -> exp.Expression:
    if unit == "day":
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(start), expression=_day_us(k)))
    if unit == "week":
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(start), expression=_day_us(exp.Mul(this=k, expression=n(7)))))
    months = k if unit == "month" else exp.Mul(this=k, expression=n(12))
    return g.d.add_months(start, months)


def _startof(unit: str):
    def emit(g, c, pred):
        st = start_of(g, unit, g.e(c.args[0]))
        return _offset(g, unit, st, g.e(c.args[1])) if len(c.args) == 2 else st

    return emit


def _endof(unit: str):
    def emit(g, c, pred):
        st = start_of(g, unit, g.e(c.args[0]))
        k = exp.Add(this=g.e(c.args[1]), expression=n(1)) if len(c.args) == 2 else n(1)
        nxt = _offset(g, unit, st, k)
        # One 100 ns tick before the next period (.9999999), as Kusto has it; .999999 where the engine keeps
        # microseconds.
        return g.d.ts_plus_ticks(nxt, n(-1))

    return emit


for _u in ("day", "week", "month", "year"):
    scalar(f"startof{_u}", (1, 2), T.DATETIME, coerce=("datetime", "long"))(_startof(_u))
    scalar(f"endof{_u}", (1, 2), T.DATETIME, coerce=("datetime", "long"))(_endof(_u))


@scalar("dayofweek", 1, T.TIMESPAN, coerce="datetime")
def _dayofweek(g, c, pred):
    return _day_us(big(g.d.date_part("dayofweek", g.e(c.args[0]))))


def _part(name: str, part: str):
    @scalar(name, 1, T.INT, coerce="datetime")
    def emit(g, c, pred):
        return cast_(g.d.date_part(part, g.e(c.args[0])), "INT")

    return emit


for _k, _v in {
    "dayofmonth": "day",
    "dayofyear": "dayofyear",
    "hourofday": "hour",
    "getmonth": "month",
    "monthofyear": "month",
    "getyear": "year",
    "weekofyear": "week",
    "week_of_year": "week",
}.items():
    _part(_k, _v)

_PARTS = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week_of_year": "week",
    "week": "week",
    "day": "day",
    "dayofyear": "dayofyear",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
}


@scalar("datetime_part", 2, T.INT, coerce=("string", "datetime"), aliases=("datepart",))
def _datetime_part(g, c, pred):
    part = (lit_str(c.args[0]) or "").lower()
    ts = g.e(c.args[1])
    if part in _PARTS:
        return cast_(g.d.date_part(_PARTS[part], ts), "INT")
    # The fraction of the second, never negative (before 1970 too: -1 us is the second's 999999th).
    frac = g.d.pmod(g.d.ts_to_us(ts), n(1_000_000))
    if part == "millisecond":
        return cast_(exp.IntDiv(this=frac, expression=n(1000)), "INT")
    if part == "microsecond":
        return cast_(frac, "INT")
    if part == "nanosecond":
        return cast_(exp.Add(this=exp.Mul(this=frac, expression=n(1000)), expression=g.d.sub_us_ns(ts)), "INT")
    raise Refusal(f"datetime_part({part!r})")


_UNIT_US = {
    "week": 7 * 86_400_000_000,
    "day": 86_400_000_000,
    "hour": 3_600_000_000,
    "minute": 60_000_000,
    "second": 1_000_000,
    "millisecond": 1000,
    "microsecond": 1,
}


@scalar("datetime_add", 3, T.DATETIME, coerce=("string", "long", "datetime"))
def _datetime_add(g, c, pred):
    part = (lit_str(c.args[0]) or "").lower()
    k, ts = g.e(c.args[1]), g.e(c.args[2])
    if part in ("year", "quarter", "month"):
        months = exp.Mul(this=k, expression=n({"year": 12, "quarter": 3, "month": 1}[part]))
        return g.d.add_months(ts, months)
    if part in _UNIT_US:
        us = exp.Mul(this=k, expression=n(_UNIT_US[part]))
        if g.d.keeps_ticks and may_carry_ticks(c.args[2], g.tick_cols):
            return g.d.ts_plus_us(ts, us)
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(ts), expression=us))
    raise Refusal(f"datetime_add({part!r})")


@scalar("datetime_diff", 3, T.LONG, coerce=("string", "datetime", "datetime"))
def _datetime_diff(g, c, pred):
    part = (lit_str(c.args[0]) or "").lower()
    a, b = g.e(c.args[1]), g.e(c.args[2])
    if part in ("year", "quarter", "month"):

        def months(x):
            return exp.Add(
                this=exp.Mul(this=g.d.date_part("year", x), expression=n(12)),
                expression=exp.Sub(this=g.d.date_part("month", x), expression=n(1)),
            )

        if part == "year":
            return big(exp.Sub(this=g.d.date_part("year", a), expression=g.d.date_part("year", b)))
        diff = exp.Sub(this=months(a), expression=months(b))
        if part == "quarter":

            def q(x):
                return exp.Add(
                    this=exp.Mul(this=g.d.date_part("year", x), expression=n(4)), expression=g.d.date_part("quarter", x)
                )

            return big(exp.Sub(this=q(a), expression=q(b)))
        return big(diff)
    if part == "week":
        wa, wb = start_of(g, "week", a), start_of(g, "week", b)
        return exp.IntDiv(
            this=exp.Sub(this=g.d.ts_to_us(wa), expression=g.d.ts_to_us(wb)), expression=n(_UNIT_US["week"])
        )
    if part in _UNIT_US:
        unit = n(_UNIT_US[part])
        ua, ub = g.d.ts_to_us(a), g.d.ts_to_us(b)
        fa = exp.Sub(this=ua, expression=g.d.pmod(ua, unit))
        fb = exp.Sub(this=ub, expression=g.d.pmod(ub, unit))
        return exp.IntDiv(this=exp.Sub(this=fa, expression=fb), expression=unit)
    if part == "nanosecond":
        # Exact to the 100 ns where the engine holds them (DuckDB), to the microsecond where it does not (Spark).
        us = exp.Mul(this=exp.Sub(this=g.d.ts_to_us(a), expression=g.d.ts_to_us(b)), expression=n(1000))
        return exp.Add(this=us, expression=paren(exp.Sub(this=g.d.sub_us_ns(a), expression=g.d.sub_us_ns(b))))
    raise Refusal(f"datetime_diff({part!r})")


def _unix(name: str, scale: int):
    @scalar(name, 1, T.DATETIME, coerce="real")
    def emit(g, c, pred):
        a = c.args[0]
        x = g.e(a)
        us = (
            exp.Mul(this=x, expression=n(scale))
            if a.type in T.INTEGRAL
            else big(fn("round", exp.Mul(this=x, expression=n(float(scale)))))
        )
        if scale < 1:
            us = (
                exp.IntDiv(this=x, expression=n(1000))
                if a.type in T.INTEGRAL
                else big(fn("floor", exp.Div(this=x, expression=n(1000.0))))
            )
        return g.d.us_to_ts(us)

    return emit


_unix("unixtime_seconds_todatetime", 1_000_000)
_unix("unixtime_milliseconds_todatetime", 1000)
_unix("unixtime_microseconds_todatetime", 1)
_unix("unixtime_nanoseconds_todatetime", 0)


@scalar("make_datetime", (3, 7), T.DATETIME, coerce="real")
def _make_datetime(g, c, pred):
    args = [g.e(a) for a in c.args] + [n(0)] * (6 - len(c.args))
    if len(c.args) == 7:
        raise Refusal("make_datetime with 7 arguments")
    ints = [cast_(a, "INT") for a in args[:5]]
    # The seconds are rounded to 100 ns ticks (as Kusto holds them), which the engine keeps (DuckDB) or cuts to
    # the microsecond (Spark: 0.1234567 s is .123456, not the .123457 make_timestamp's own rounding gives).
    sec = cast_(args[5], "DOUBLE")
    ticks = big(fn("round", exp.Mul(this=sec, expression=n(10_000_000.0))))
    base = fn("make_timestamp", *ints, cast_(n(0), "DOUBLE"))
    valid = exp.and_(exp.GTE(this=sec, expression=n(0)), exp.LT(this=sec, expression=n(60)))
    if len(c.args) < 6 or (isinstance(c.args[5], ir.Lit) and _whole_us(c.args[5].value)):
        # No ticks below the microsecond: a TIMESTAMP, which holds every year (a TIMESTAMP_NS holds 1677-2262).
        us = big(fn("floor", exp.Div(this=ticks, expression=n(10.0))))
        return case([(valid, g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(base), expression=us)))])
    return case([(valid, g.d.ts_plus_ticks(base, ticks))])


def _whole_us(seconds: Any) -> bool:
    """A constant number of seconds that is whole microseconds once rounded to 100 ns ticks (null counts)."""
    try:
        return seconds is None or round(float(seconds) * 10_000_000) % 10 == 0
    except (TypeError, ValueError):
        return False


@scalar("make_timespan", (2, 5), T.TIMESPAN, coerce="real")
def _make_timespan(g, c, pred):
    a = [g.e(x) for x in c.args]
    if len(a) == 2:
        a = [n(0), a[0], a[1], n(0)]
    elif len(a) == 3:
        a = [n(0), *a]
    while len(a) < 4:
        a.append(n(0))
    secs = exp.Add(
        this=exp.Add(
            this=exp.Add(
                this=exp.Mul(this=a[0], expression=n(86400)), expression=exp.Mul(this=a[1], expression=n(3600))
            ),
            expression=exp.Mul(this=a[2], expression=n(60)),
        ),
        expression=a[3],
    )
    return big(fn("round", exp.Mul(this=secs, expression=n(1_000_000.0))))


# KQL format specifiers -> (Spark pattern, strftime pattern)
_FMT = {
    "yyyy": ("yyyy", "%Y"),
    "yy": ("yy", "%y"),
    "MM": ("MM", "%m"),
    "M": ("M", "%-m"),
    "dd": ("dd", "%d"),
    "d": ("d", "%-d"),
    "HH": ("HH", "%H"),
    "H": ("H", "%-H"),
    "hh": ("hh", "%I"),
    "h": ("h", "%-I"),
    "mm": ("mm", "%M"),
    "m": ("m", "%-M"),
    "ss": ("ss", "%S"),
    "s": ("s", "%-S"),
    "tt": ("a", "%p"),
    "fff": ("SSS", "%g"),
    "ffffff": ("SSSSSS", "%f"),
    "fffffff": ("SSSSSSS", TICKS_MARK),
    "MMM": ("MMM", "%b"),
    "MMMM": ("MMMM", "%B"),
    "ddd": ("EEE", "%a"),
    "dddd": ("EEEE", "%A"),
}


def translate_datetime_format(fmt: str, dialect: str) -> str:
    out = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch.isalpha():
            j = i
            while j < len(fmt) and fmt[j] == ch:
                j += 1
            tok = fmt[i:j]
            if tok not in _FMT:
                raise Refusal(f"format_datetime specifier {tok!r}")
            out.append(_FMT[tok][0 if dialect == "spark" else 1])
            i = j
            continue
        if dialect == "spark":
            out.append("'" + ch + "'" if ch not in " -:/.," else ch)
        else:
            out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out)


@scalar("format_datetime", 2, T.STRING, coerce=("datetime", "string"))
def _format_datetime(g, c, pred):
    fmt = lit_str(c.args[1])
    if fmt is None:
        raise Refusal("format_datetime with a computed format")
    ts = g.e(c.args[0])
    pieces = _year_runs(fmt)
    if "y" not in pieces:
        return g.d.format_ts(ts, translate_datetime_format(fmt, g.d.name))
    # `y` (the year modulo 100, unpadded) has no Spark pattern letter: that piece is the number itself, and the
    # text between is formatted as usual. `||` keeps a null datetime null (DuckDB's concat() would not).
    out: exp.Expression | None = None
    for piece in pieces:
        part = (cast_(exp.Mod(this=fn("year", ts), expression=n(100)), "VARCHAR") if piece == "y"
                else g.d.format_ts(ts, translate_datetime_format(piece, g.d.name)))
        out = part if out is None else exp.DPipe(this=out, expression=part, safe=True)
    return out


def _year_runs(fmt: str) -> list[str]:
    """*fmt* split around each lone `y` specifier (a run of exactly one `y`)."""
    return [p for p in re.split(r"(?<!y)(y)(?!y)", fmt) if p]


@scalar("format_timespan", 2, T.STRING, coerce=("timespan", "string"))
def _format_timespan(g, c, pred):
    fmt = lit_str(c.args[1])
    if fmt is None:
        raise Refusal("format_timespan with a computed format")
    us = g.e(c.args[0])
    a = fn("abs", us)
    fields = {
        "d": exp.IntDiv(this=a, expression=n(86_400_000_000)),
        "h": exp.IntDiv(this=exp.Mod(this=a, expression=n(86_400_000_000)), expression=n(3_600_000_000)),
        "m": exp.IntDiv(this=exp.Mod(this=a, expression=n(3_600_000_000)), expression=n(60_000_000)),
        "s": exp.IntDiv(this=exp.Mod(this=a, expression=n(60_000_000)), expression=n(1_000_000)),
    }
    parts: list[exp.Expression] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        j = i
        while j < len(fmt) and fmt[j] == ch:
            j += 1
        run = fmt[i:j]
        if ch in "dhHms":
            val = fields["h" if ch == "H" else ch]
            parts.append(fn("lpad", cast_(val, g.d.string_type), n(len(run)), s("0")))
        elif ch in "fF":
            frac = exp.Mod(this=a, expression=n(1_000_000))
            digits = fn("substring", fn("lpad", cast_(frac, g.d.string_type), n(6), s("0")), n(1), n(min(len(run), 6)))
            parts.append(fn("rpad", digits, n(len(run)), s("0")))
        elif ch == "'":
            k = fmt.find("'", i + 1)
            parts.append(s(fmt[i + 1 : k]))
            j = k + 1
        elif ch == "\\":
            parts.append(s(fmt[i + 1 : i + 2]))
            j = i + 2
        else:
            parts.append(s(run))
        i = j
    return exp.Concat(expressions=parts)
