"""KQL literal tokens -> Python values (datetimes and timespans as integer microseconds; a datetime's 100 ns
ticks below the microsecond ride along on it, see :class:`Micros`)."""

from __future__ import annotations

import calendar
import decimal
import math
import re
from typing import Any

from kqlmagic_plus.language.compiler.parsetree import children, collapse, is_token, rule, rule_children
from kqlmagic_plus.language.literals import StringLiteralError, decode_string

_MICRO = {
    "d": 86_400_000_000,
    "day": 86_400_000_000,
    "days": 86_400_000_000,
    "h": 3_600_000_000,
    "hr": 3_600_000_000,
    "hrs": 3_600_000_000,
    "hour": 3_600_000_000,
    "hours": 3_600_000_000,
    "m": 60_000_000,
    "min": 60_000_000,
    "minute": 60_000_000,
    "minutes": 60_000_000,
    "s": 1_000_000,
    "sec": 1_000_000,
    "second": 1_000_000,
    "seconds": 1_000_000,
    "ms": 1_000,
    "milli": 1_000,
    "millis": 1_000,
    "millisecond": 1_000,
    "milliseconds": 1_000,
    "microsecond": 1,
    "microseconds": 1,
    "tick": 0.1,
    "ticks": 0.1,
}
_SPAN_UNIT = re.compile(r"^([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]+)$")
_CLOCK = re.compile(r"^(-)?(?:(\d+)\.)?(\d+):(\d+)(?::(\d+)(?:\.(\d+))?)?$")


class LiteralError(ValueError):
    pass


def string_value(ctx: Any) -> str:
    """The value of a ``stringLiteralExpression`` (adjacent literals concatenate)."""
    toks = [c.getText() for c in children(ctx) if is_token(c)] if not is_token(ctx) else [ctx.getText()]
    return "".join(string_token(t) for t in toks)


def string_token(tok: str) -> str:
    """The value of one string literal token of any KQL form (quoted with escapes, verbatim,
    obfuscated ``h"..."``, multi-line): :func:`kqlmagic_plus.language.literals.decode_string`,
    the one decoder the local engine's rewrite uses too."""
    try:
        return decode_string(tok)
    except StringLiteralError as exc:
        raise LiteralError(exc.message) from None


def _inner(tok: str) -> str | None:
    """``long(5)`` -> ``5``; a bare token -> None."""
    p = tok.find("(")
    if p > 0 and tok.endswith(")"):
        return tok[p + 1 : -1].strip()
    return None


def long_value(tok: str) -> int | None:
    inner = _inner(tok)
    t = inner if inner is not None else tok
    if t.lower() == "null":
        return None
    t = t.replace("_", "")
    if t.lower().startswith(("0x", "-0x", "+0x")):
        return int(t, 16)
    return int(t)


def real_value(tok: str) -> float | None:
    inner = _inner(tok)
    t = (inner if inner is not None else tok).lower()
    if t == "null":
        return None
    if t in ("nan",):
        return math.nan
    if t in ("+inf", "inf"):
        return math.inf
    if t == "-inf":
        return -math.inf
    return float(t)


#: The SQL engines' decimal type is DECIMAL(38, 18) (dialects.py): more places would be rounded away.
DECIMAL_PLACES = 18


def decimal_value(tok: str) -> decimal.Decimal | None:
    t = _inner(tok) or tok
    if t.lower() == "null":
        return None
    d = decimal.Decimal(t)
    places = -d.normalize().as_tuple().exponent if d.is_finite() else 0
    if places > DECIMAL_PLACES:
        raise LiteralError(f"it has {places} decimal places, and the SQL engines here hold "
                           f"{DECIMAL_PLACES} (the rest would be rounded away)")
    return d


def bool_value(tok: str) -> bool | None:
    t = (_inner(tok) or tok).lower()
    if t == "null":
        return None
    if t in ("true", "1"):
        return True
    if t in ("false", "0"):
        return False
    raise LiteralError(f"not a bool: {tok}")


def guid_value(tok: str) -> str | None:
    t = _inner(tok) or tok
    return None if t.lower() == "null" else t.lower()


def type_value(tok: str) -> str:
    return (_inner(tok) or tok).lower()


def timespan_value(tok: str) -> int | None:
    """Microseconds in a timespan literal: ``1.5h``, ``10ms``, ``time(1.02:03:04)``, ``timespan(null)``."""
    inner = _inner(tok)
    t = (inner if inner is not None else tok).strip()
    if t.lower() == "null":
        return None
    parsed = parse_timespan_text(t, bare_number_days=inner is not None)
    if parsed is None:
        raise LiteralError(f"not a timespan: {tok}")
    return parsed


def parse_timespan_text(t: str, bare_number_days: bool = False) -> int | None:
    t = t.strip()
    neg = t.startswith("-")
    body = t[1:].strip() if neg else t
    m = _SPAN_UNIT.match(body)
    if m and m.group(2).lower() in _MICRO:
        us = round(float(m.group(1)) * _MICRO[m.group(2).lower()])
        return -us if neg else us
    m = _CLOCK.match(t)
    if m:
        sign, days, hh, mm, ss, frac = m.groups()
        us = (int(days or 0) * 86_400 + int(hh) * 3600 + int(mm) * 60 + int(ss or 0)) * 1_000_000
        if frac:
            us += int((frac + "000000")[:6])
        return -us if sign else us
    if bare_number_days and re.fullmatch(r"-?\d+(\.\d+)?", t):
        return round(float(t) * _MICRO["d"])
    return None


_DT = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})"
    r"(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}


def datetime_value(tok: str) -> int | None:
    inner = _inner(tok)
    t = (inner if inner is not None else tok).strip()
    if t.lower() == "null":
        return None
    us = parse_datetime_text(t)
    if us is None:
        us = _comma_date(t)
    if us is None:
        raise LiteralError(f"not a datetime: {tok}")
    return us


_COMMA_DATE = re.compile(r"^(\d{4})\s*,\s*(\d{1,2})\s*,\s*(\d{1,2})$")


def _comma_date(t: str) -> int | None:
    """``datetime(2025, 6, 14)``: a date given as year, month, day (the reference's pages write it so)."""
    m = _COMMA_DATE.match(t)
    return parse_datetime_text("{}-{}-{}".format(*m.groups())) if m else None


def parse_datetime_text(t: str) -> int | None:
    """Microseconds since the epoch (UTC) of the datetime formats KQL accepts in literals."""
    t = t.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        t = t[1:-1].strip()
    # US month-first dates, with slashes or dashes (.NET's invariant parse reads 01-31-2022 too).
    m = re.match(r"^(\d{1,2})([/-])(\d{1,2})\2(\d{4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?$", t)
    if m:
        mo, _, d, y, hh, mi, ss, frac = m.groups()
        if not (1 <= int(mo) <= 12 and 1 <= int(d) <= 31):
            return None
        secs = calendar.timegm((int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0)))
        return with_ticks(secs * 1_000_000, frac)
    m = _DT.match(t)
    if m:
        y, mo, d, hh, mi, ss, frac, tz = m.groups()
        secs = calendar.timegm((int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0)))
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            secs -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
        return with_ticks(secs * 1_000_000, frac)
    # RFC 822 / 850 style: "Sat, 8 Nov 2014 15:05:02 GMT", "8 Nov 2014 15:05:02"
    m = re.match(
        r"^(?:\w+,\s*)?(\d{1,2})[ -](\w{3})\w*[ -](\d{2,4})(?:\s+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
        r"(?:\s*(GMT|UTC|Z))?$",
        t,
    )
    if m and m.group(2).lower() in _MONTHS:
        d, mon, y, hh, mi, ss, _ = m.groups()
        year = int(y) + (2000 if len(y) == 2 else 0)
        secs = calendar.timegm((year, _MONTHS[mon.lower()], int(d), int(hh or 0), int(mi or 0), int(ss or 0)))
        return secs * 1_000_000
    return None


class Micros(int):
    """Microseconds since the epoch that also remember the 100 ns ticks below the microsecond (``rest``, 0-9)
    a literal wrote (``datetime(2020-01-01 12:00:00.1234567)``). It is an int of the microseconds everywhere
    (arithmetic on it gives a plain int, as cut to the microsecond as before); the local engine's emitter reads
    ``rest`` to write a nanosecond timestamp, so the 7th digit reaches the result there."""

    rest: int

    def __new__(cls, us: int, rest: int) -> Micros:
        obj = super().__new__(cls, us)
        obj.rest = rest
        return obj

    def __reduce__(self) -> tuple[Any, ...]:  # the compile cache pickles plans: keep the ticks
        return (Micros, (int(self), self.rest))


def with_ticks(us: int, frac: str | None) -> int:
    """*us* plus a fraction of a second written with up to 9 digits: the microseconds (cut, never rounded up:
    .1234567 is .123456), as a :class:`Micros` when a 100 ns tick is left over. Digits below 100 ns are cut,
    as Kusto's 100 ns ticks cut them."""
    if not frac:
        return us
    ticks = int((frac + "0000000")[:7])
    us += ticks // 10
    return Micros(us, ticks % 10) if ticks % 10 else us


def ticks_rest(value: Any) -> int:
    """The 100 ns ticks below the microsecond a datetime literal's value carries (0 for a plain int)."""
    return getattr(value, "rest", 0)


def format_datetime_ticks(us: int) -> str:
    """:func:`format_datetime_iso` with the 7th fraction digit a :class:`Micros` carries."""
    text = format_datetime_iso(us)
    rest = ticks_rest(us)
    if not rest:
        return text
    frac = us % 1_000_000
    return (text.split(".")[0]) + f".{frac:06d}{rest}"


def format_datetime_iso(us: int) -> str:
    """``2020-01-01 10:00:00.123456`` (the form both SQL engines read as a TIMESTAMP literal)."""
    secs, frac = divmod(us, 1_000_000)
    import datetime as _dt

    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=secs)
    return d.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac:06d}" if frac else "")


def json_value(ctx: Any) -> Any:
    """The Python value of a ``jsonValue`` parse tree (inside ``dynamic(...)``)."""
    c = collapse(ctx)
    r = rule(c) if not _is_tok(c) else "Token"
    if r == "JsonObject":
        out = {}
        for pair in rule_children(c):
            key = string_token(pair.Name.text)
            out[key] = json_value(pair.Value)
        return out
    if r == "JsonArray":
        return [json_value(v) for v in rule_children(c)]
    if r == "DynamicLiteralExpression":
        return json_value(c.Value)
    text = c.getText()
    if r in ("JsonString",):
        return "".join(string_token(t) for t in [x.getText() for x in (c.children or [])])
    if r == "JsonNull":
        return None
    if r == "JsonBoolean":
        return bool_value(text)
    if r == "JsonLong":
        return long_value(text)
    if r == "JsonReal":
        return real_value(text)
    if r == "JsonDateTime":
        us = datetime_value(text)
        return None if us is None else format_datetime_ticks(us).replace(" ", "T") + "Z"
    if r == "JsonTimeSpan":
        us = timespan_value(text)
        return None if us is None else format_timespan(us)
    if r == "JsonGuid":
        return guid_value(text)
    # A single string token collapses to the terminal itself.
    if text[:1] in "\"'@hH":
        return string_token(text)
    raise LiteralError(f"unsupported dynamic literal: {text}")


def _is_tok(node: Any) -> bool:
    return not hasattr(node, "getRuleIndex")


def format_timespan(us: int) -> str:
    """KQL's text form of a timespan: ``[-][d.]hh:mm:ss[.fffffff]``."""
    sign = "-" if us < 0 else ""
    us = abs(us)
    days, rem = divmod(us, 86_400_000_000)
    secs, frac = divmod(rem, 1_000_000)
    h, rem2 = divmod(secs, 3600)
    m, s = divmod(rem2, 60)
    text = f"{sign}{str(days) + '.' if days else ''}{h:02d}:{m:02d}:{s:02d}"
    if frac:
        text += f".{frac * 10:07d}"
    return text
