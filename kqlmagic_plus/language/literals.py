"""The one KQL literal encoder: Python values -> exact KQL literal text (and back, for strings).

Everything that has to put a value into query text goes through here (``let x = <literal>;`` for
Log Analytics, declaration defaults, ADX request-parameter text, ``datatable`` cells), so there is
one set of rules to get right and one set of tests proving them.

The rules, from the KQL lexical grammar (Kusto.Language ``LexicalGrammar``) and the string /
dynamic / datetime / timespan reference pages:

* **string** - double-quoted. Inside, only ``\\``, ``"``, CR and LF *must* be escaped (the lexer
  ends a quoted literal at any of them); tab is escaped for readability. Every other character -
  NUL, bidi controls, U+2028, ``//``, ``|``, ``;`` - is an ordinary character of the literal and is
  written as is. Only the escapes every KQL implementation decodes the same way are used
  (``\\u`` is in the grammar but decoded inconsistently, so it is never emitted). Lone UTF-16
  surrogates cannot be sent as UTF-8 and are refused. Verbatim (``@"..."``, quotes doubled, no
  CR/LF) and obfuscated (``h"..."``, hidden from service logs) forms are available on request.
* **dynamic** - ``dynamic(<JSON>)`` where every string inside is written with the string rule
  above (the dynamic payload is lexed as KQL tokens), numbers as JSON numbers, no NaN/Infinity.
* **datetime** - ``datetime(YYYY-MM-DDTHH:MM:SS.fffffffZ)``, always UTC (naive values are UTC), to
  KQL's 100 ns tick (pandas nanoseconds that are not whole ticks are refused, never rounded).
* **timespan** - ``timespan([-]D.HH:MM:SS.fffffff)``, the same ticks.
* **long / int / real / decimal / bool / guid** - plain literals where the grammar has one for
  the value (``5``, ``1.5``, ``true``), else the typed form (``long(-5)``, ``real(nan)``,
  ``real(-inf)``, ``decimal(1.25)``, ``guid(...)``); nulls are ``T(null)``. A KQL string cannot be
  null, so a missing string is ``""``.
* **tables** - ``datatable(col:type, ...)[cell, ...]`` with every cell encoded by the rules above:
  :mod:`kqlmagic_plus.language.tables`, which also holds the form the local engine registers.
* **bytes** - refused: KQL has no binary type (decode them, or base64 them, first).

:func:`decode_string` is the other direction for string literals: what a KQL string literal token
of any form (quoted, verbatim, obfuscated, multi-line, every escape) means.

Non-string scalar literals are built only from digits, signs, ``.:-TZ``, hex digits and a type
keyword, so no value of those types can put a quote, pipe or comment into a query.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import uuid
from decimal import Decimal
from typing import Any

from kqlmagic_plus.errors import ParameterError

#: KQL scalar types this encoder writes.
SCALAR_TYPES = ("bool", "int", "long", "real", "decimal", "string", "datetime", "timespan", "guid", "dynamic")

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
#: .NET decimal: a 96-bit unsigned mantissa and a scale of 0..28.
_DECIMAL_MANTISSA_MAX = 2**96 - 1
_DECIMAL_SCALE_MAX = 28
_MAX_DEPTH = 100

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Words that cannot stand as a bare name in every position (the rest of KQL's keywords can).
RESERVED = frozenset({
    "let", "set", "declare", "alias", "pattern", "restrict", "access", "query_parameters", "true", "false",
    "null", "and", "or", "in", "between", "has", "where", "by", "on", "with", "of", "to", "step", "from",
    "as", "typeof", "datatable", "print", "range", "union", "join", "project", "extend", "summarize",
    "take", "limit", "render", "kind", "bool", "boolean", "int", "long", "real", "double", "decimal",
    "string", "datetime", "date", "time", "timespan", "guid", "uniqueid", "dynamic",
})


# -- strings --------------------------------------------------------------------------------------

def string(value: str, *, verbatim: bool = False, obfuscated: bool = False) -> str:
    """*value* as a KQL string literal that reads back as exactly *value*.

    ``verbatim=True`` writes ``@"..."`` (backslashes stand for themselves, ``"`` is doubled); it
    cannot hold CR or LF. ``obfuscated=True`` prefixes ``h`` so the services keep the value out
    of their logs (duckdb-kql 1.1.2 does not decode ``h``-strings: use it for remote queries).
    """
    if not isinstance(value, str):
        raise ParameterError(f"a KQL string literal needs a str, got {type(value).__name__}")
    _check_unicode(value)
    if verbatim:
        if "\n" in value or "\r" in value:
            raise ParameterError("a verbatim (@) KQL string cannot hold a line break; use the quoted form")
        text = '@"' + value.replace('"', '""') + '"'
    else:
        text = '"' + value.translate(_ESCAPES) + '"'
    return "h" + text if obfuscated else text


def _check_unicode(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ParameterError(
            f"the string holds a lone surrogate (U+{ord(value[exc.start]):04X} at index {exc.start}), "
            "which cannot be sent as UTF-8") from None


class StringLiteralError(ValueError):
    """A string literal token KQL would not accept (an unknown escape, an unterminated quote...)."""

    def __init__(self, message: str, offset: int = 0):
        super().__init__(message)
        self.message = message
        #: Where in the token the problem starts.
        self.offset = offset


_SIMPLE_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r",
                   "t": "\t", "v": "\v"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_FENCES = ("```", "~~~")


def decode_string(token: str) -> str:
    """The value of one KQL string literal token, as Kusto reads it.

    Every form: ``"..."`` / ``'...'`` with backslash escapes (``\\' \\" \\\\ \\a \\b \\f \\n \\r \\t \\v``,
    ``\\xHH``, ``\\uXXXX`` - UTF-16 code units, surrogate pairs combined -, ``\\UXXXXXXXX``, octal ``\\N``,
    ``\\NN``, ``\\NNN``); verbatim ``@"..."`` / ``@'...'`` (backslash is itself, the quote doubled);
    multi-line ```` ```...``` ```` and ``~~~...~~~`` (raw text); and any of them obfuscated with an ``h``
    or ``H`` prefix (``h"..."``, ``h@'...'``, ``h```...```\u0060``): the value is the same, the prefix
    only keeps it out of the service's logs. (The rules are Kusto.Language's TokenParser and
    KustoFacts.GetStringLiteralValue.)

    Raises :class:`StringLiteralError` for what KQL refuses: an escape it does not know, a missing
    closing quote, a line break inside a quoted literal, and (because the value must be sent as
    UTF-8) a lone surrogate.
    """
    i = 0
    if token[:1] in ("h", "H"):
        i = 1
    verbatim = token[i:i + 1] == "@"
    if verbatim:
        i += 1
    for fence in _FENCES:
        if token.startswith(fence, i):
            body_start = i + 3
            if len(token) < body_start + 3 or not token.endswith(fence):
                raise StringLiteralError(f"unterminated multi-line string (no closing {fence})", 0)
            return _checked(token[body_start:-3], body_start)
    quote = token[i:i + 1]
    if quote not in ("'", '"'):
        raise StringLiteralError("not a string literal", 0)
    start = i + 1
    body = token[start:_closing_quote(token, start, quote, verbatim)]
    if verbatim:
        return _checked(body.replace(quote + quote, quote), start)
    if "\\" not in body:
        return _checked(body, start)
    return _checked(_unescape(body, start), start)


def _closing_quote(token: str, start: int, quote: str, verbatim: bool) -> int:
    """The offset of the quote that ends the literal, which must be the token's last character."""
    k, n = start, len(token)
    while k < n:
        c = token[k]
        if c == "\\" and not verbatim:
            k += 2
            continue
        if c in "\r\n":
            raise StringLiteralError("a quoted string cannot hold a line break (write \\n, or use a ``` multi-line "
                                     "string)", k)
        if c == quote:
            if verbatim and token[k + 1:k + 2] == quote:
                k += 2
                continue
            if k != n - 1:
                raise StringLiteralError(f"this string ends at the {quote} before the end of the token", k)
            return k
        k += 1
    raise StringLiteralError(f"unterminated string literal (no closing {quote})", 0)


def _unescape(body: str, start: int) -> str:
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1] if i + 1 < n else ""
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
            i += 2
        elif e in _HEX_ESCAPES:
            width = _HEX_ESCAPES[e]
            digits = body[i + 2:i + 2 + width]
            if len(digits) != width or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise StringLiteralError(f"\\{e} must be followed by {width} hex digits", start + i)
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise StringLiteralError(f"\\{e}{digits} is beyond the last Unicode code point", start + i)
            out.append(chr(code))
            i += 2 + width
        elif "0" <= e <= "7":
            j = i + 1
            while j < n and j - i <= 3 and "0" <= body[j] <= "7":
                j += 1
            if j - i == 4 and e > "3":  # three octal digits only up to \377
                j -= 1
            out.append(chr(int(body[i + 1:j], 8)))
            i = j
        else:
            shown = repr(e)[1:-1] if e else "the end of the string"
            raise StringLiteralError(f"unknown escape \\{shown} in a string literal (write \\\\ for a backslash, "
                                     "or use a verbatim @\"...\" string)", start + i)
    text = "".join(out)
    # \uD83D\uDE00: UTF-16 surrogate pairs written as two escapes are one character.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass") if _has_surrogate(text) \
        else text


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def _checked(value: str, start: int) -> str:
    if _has_surrogate(value):
        k = next(k for k, c in enumerate(value) if "\ud800" <= c <= "\udfff")
        raise StringLiteralError(f"the string holds a lone surrogate (U+{ord(value[k]):04X}), which is not a "
                                 "character and cannot be sent as UTF-8", start)
    return value


def identifier(name: str) -> str:
    """A column or table name as KQL text: bare when it is a plain identifier, else ``["..."]``."""
    if _IDENT.fullmatch(name) and name.lower() not in RESERVED:
        return name
    return "[" + string(name) + "]"


def is_identifier(name: str) -> bool:
    """True if *name* can be declared as a parameter or ``let`` name as is."""
    return bool(isinstance(name, str) and _IDENT.fullmatch(name) and name.lower() not in RESERVED)


# -- canonical values -----------------------------------------------------------------------------

def infer_type(value: Any) -> str:
    """The KQL type a Python value stands for, or ``"tabular"`` for a DataFrame / Arrow table.

    Raises ParameterError for values KQL has no type for (bytes, objects, ...).
    """
    if value is None:
        return "dynamic"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Decimal):
        return "decimal"
    if isinstance(value, _dt.datetime | _dt.date):  # pandas Timestamp is a datetime subclass
        return "datetime"
    if isinstance(value, _dt.timedelta):  # pandas Timedelta too
        return "timespan"
    if isinstance(value, uuid.UUID):
        return "guid"
    if isinstance(value, list | tuple | set | frozenset | dict):
        return "dynamic"
    mod = type(value).__module__ or ""
    name = type(value).__name__
    if mod.startswith("numpy"):
        return _numpy_type(value)
    if mod.startswith("pandas"):
        if name == "DataFrame":
            return "tabular"
        if name == "Series":
            return "dynamic"
        if name == "NaTType":
            return "datetime"
        if name == "NAType":
            return "dynamic"
    if mod.startswith("pyarrow") and name == "Table":
        return "tabular"
    raise ParameterError(
        f"{name} values cannot be put into a query: use str, int, float, bool, None, datetime, date, "
        "timedelta, uuid.UUID, Decimal, a list/tuple/set/dict of those, or a pandas DataFrame"
        + ("; KQL has no binary type: decode bytes to str first (b.decode('utf-8'), or "
           "base64.b64encode(b).decode() to keep every byte)" if isinstance(value, bytes | bytearray | memoryview)
           else ""))


def _numpy_type(value: Any) -> str:
    import numpy as np

    if isinstance(value, np.bool_):
        return "bool"
    if isinstance(value, np.timedelta64):  # a subclass of np.signedinteger
        return "timespan"
    if isinstance(value, np.integer):
        return "int" if value.dtype.itemsize < 4 or value.dtype in (np.int32, np.uint16) else "long"
    if isinstance(value, np.floating):
        return "real"
    if isinstance(value, np.str_):
        return "string"
    if isinstance(value, np.datetime64):
        return "datetime"
    if isinstance(value, np.ndarray):
        return "dynamic"
    raise ParameterError(f"numpy {type(value).__name__} values cannot be put into a query")


def is_null(value: Any) -> bool:
    """None, pandas NA/NaT and numpy NaT (NaN is a real value, not a null, for scalars)."""
    if value is None:
        return True
    name = type(value).__name__
    if name in ("NAType", "NaTType"):
        return True
    if name in ("datetime64", "timedelta64"):
        import numpy as np

        return bool(np.isnat(value))
    return False


def canonical(value: Any, kql_type: str) -> Any:
    """*value* as the one Python form used for *kql_type* (None for a null).

    bool -> bool, int/long -> int (range-checked), real -> float, decimal -> Decimal, string -> str,
    datetime -> naive UTC datetime, timespan -> timedelta, guid -> UUID, dynamic -> plain JSON-shaped
    Python (dict/list/str/int/float/bool/None, and Decimal for exact numbers). Raises ParameterError
    when the value is not of that type or cannot be held exactly.
    """
    if is_null(value):
        return None
    try:
        fn = _CANONICAL[kql_type]
    except KeyError:
        raise ParameterError(f"{kql_type!r} is not a KQL scalar type") from None
    return fn(value)


def _mismatch(value: Any, kql_type: str, why: str = "") -> ParameterError:
    return ParameterError(f"a {type(value).__name__} value cannot be a KQL {kql_type}{why}")


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool) or _numpy_kind(v) == "b"


def _numpy_kind(v: Any) -> str:
    """The numpy dtype kind of a numpy scalar ("" for anything else)."""
    if (type(v).__module__ or "").startswith("numpy"):
        dtype = getattr(v, "dtype", None)
        if dtype is not None:
            return dtype.kind
    return ""


def _to_bool(v: Any) -> bool:
    if _is_bool(v):
        return bool(v)
    raise _mismatch(v, "bool")


def _to_integer(v: Any, kql_type: str, bounds: tuple[int, int]) -> int:
    if _is_bool(v):
        raise _mismatch(v, kql_type)
    if isinstance(v, int) or _numpy_kind(v) in ("i", "u"):
        i = int(v)
        if not bounds[0] <= i <= bounds[1]:
            hint = "; KQL has no unsigned 64-bit type: pass it as a Decimal (a KQL decimal) or a float" \
                if i > INT64[1] and _numpy_kind(v) == "u" else ""
            raise ParameterError(f"{i} is out of range for a KQL {kql_type} ({bounds[0]} .. {bounds[1]}){hint}")
        return i
    raise _mismatch(v, kql_type)


def _to_real(v: Any) -> float:
    if _is_bool(v):
        raise _mismatch(v, "real")
    if isinstance(v, int | float) or _numpy_kind(v) in ("i", "u", "f"):
        try:
            return float(v)
        except OverflowError:
            raise ParameterError(f"{v} is out of range for a KQL real") from None
    raise _mismatch(v, "real")


def _to_decimal(v: Any) -> Decimal:
    if isinstance(v, bool):
        raise _mismatch(v, "decimal")
    if isinstance(v, int):
        d = Decimal(v)
    elif isinstance(v, Decimal):
        d = v
    elif isinstance(v, str):
        try:
            d = Decimal(v.strip())
        except ArithmeticError:
            raise _mismatch(v, "decimal", f" ({v!r:.40} is not a number)") from None
    else:
        raise _mismatch(v, "decimal", " (floats are inexact: pass a Decimal or a str)")
    if not d.is_finite():
        raise ParameterError(f"KQL decimals have no {d}")
    _, digits, exp = d.as_tuple()
    mantissa = int("".join(map(str, digits)) or "0") * (10 ** exp if exp > 0 else 1)
    scale = -exp if exp < 0 else 0
    if mantissa > _DECIMAL_MANTISSA_MAX or scale > _DECIMAL_SCALE_MAX:
        raise ParameterError(f"{d} does not fit a KQL decimal (at most 28 decimal places and "
                             f"a magnitude below 7.9e28)")
    return d


def _to_string(v: Any) -> str:
    if isinstance(v, str):
        _check_unicode(v)
        return str(v)
    raise _mismatch(v, "string")


def _to_datetime(v: Any) -> _dt.datetime:
    if isinstance(v, str):
        text = v.strip()
        try:
            v = _dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" and text else text)
        except ValueError:
            raise _mismatch(v, "datetime", f" ({v!r:.40} is not ISO-8601)") from None
    if type(v).__name__ == "datetime64":
        import pandas as pd

        v = pd.Timestamp(v)
    if isinstance(v, _dt.datetime):
        ns = getattr(v, "nanosecond", 0)
        if ns % 100:
            raise ParameterError(f"{v} has nanoseconds, and KQL datetimes hold 100 ns ticks "
                                 "(round it first, e.g. ts.floor('100ns'))")
        if v.tzinfo is not None:
            v = v.astimezone(_dt.UTC).replace(tzinfo=None)
        if ns:  # a pandas Timestamp: it keeps the ticks below the microsecond
            return v
        return _dt.datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)
    if isinstance(v, _dt.date):
        return _dt.datetime(v.year, v.month, v.day)
    raise _mismatch(v, "datetime")


def _to_timespan(v: Any) -> _dt.timedelta:
    if type(v).__name__ == "timedelta64":
        import pandas as pd

        v = pd.Timedelta(v)
    if isinstance(v, _dt.timedelta):
        ns = getattr(v, "nanoseconds", 0)
        if ns % 100:
            raise ParameterError(f"{v} has nanoseconds, and KQL timespans hold 100 ns ticks "
                                 "(round it first, e.g. td.floor('100ns'))")
        td = v if ns else _dt.timedelta(days=v.days, seconds=v.seconds, microseconds=v.microseconds)
        if abs(_ticks(td)) > INT64[1]:
            raise ParameterError(f"{td} is out of range for a KQL timespan (about +-29,000 years)")
        return td
    raise _mismatch(v, "timespan")


def _ticks(td: _dt.timedelta) -> int:
    """A timespan in 100 ns ticks (exact for pandas Timedeltas with nanoseconds too)."""
    value = getattr(td, "value", None)  # pandas: integer nanoseconds
    if isinstance(value, int) and type(td).__name__ == "Timedelta":
        return value // 100
    return ((td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds) * 10


def sub_microsecond(value: Any) -> bool:
    """True for a canonical datetime or timespan with ticks below the microsecond (the embedded
    engine, DuckDB, holds microseconds; the services and their literals hold the 100 ns ticks)."""
    return bool(getattr(value, "nanosecond", 0) or getattr(value, "nanoseconds", 0))


def _to_guid(v: Any) -> uuid.UUID:
    if isinstance(v, uuid.UUID):
        return v
    if isinstance(v, str):
        try:
            return uuid.UUID(v.strip())
        except ValueError:
            raise _mismatch(v, "guid", f" ({v!r:.40} is not a GUID)") from None
    raise _mismatch(v, "guid")


def _to_dynamic(v: Any, depth: int = 0) -> Any:
    """A JSON-shaped copy of *v*: dict[str, ...], list, str, int, float, bool, None."""
    if depth > _MAX_DEPTH:
        raise ParameterError(f"a dynamic value nested deeper than {_MAX_DEPTH} levels")
    if is_null(v):
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        return _to_string(v)
    if isinstance(v, dict):
        out: dict[str, Any] = {}
        for k, item in v.items():
            if not isinstance(k, str):
                raise ParameterError(f"dynamic property bags need str keys, got {type(k).__name__} {k!r:.40}")
            out[_to_string(k)] = _to_dynamic(item, depth + 1)
        return out
    if isinstance(v, list | tuple):
        return [_to_dynamic(x, depth + 1) for x in v]
    if isinstance(v, set | frozenset):
        return [_to_dynamic(x, depth + 1) for x in _ordered(v)]
    kind = infer_type(v)
    if kind == "dynamic":  # numpy arrays, pandas Series
        return [_to_dynamic(x, depth + 1) for x in v.tolist()]
    if kind in ("int", "long"):
        return _to_integer(v, "long", INT64)
    if kind == "real":
        f = _to_real(v)
        if not math.isfinite(f):
            raise ParameterError(f"JSON (a KQL dynamic) has no {f}: pass None, or the value as a string")
        return f
    if kind == "decimal":
        return _to_decimal(v)  # written as a JSON number with its exact digits
    if kind == "datetime":
        return _datetime_text(_to_datetime(v))
    if kind == "timespan":
        return _timespan_text(_to_timespan(v))
    if kind == "guid":
        return str(v)
    if kind == "string":
        return _to_string(str(v))
    if kind == "bool":
        return bool(v)
    raise ParameterError(f"a {type(v).__name__} cannot be held in a dynamic value")


def _ordered(values: set | frozenset) -> list[Any]:
    # Sets have no order; a stable one keeps the query text (and so its cache key) stable.
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=lambda x: (type(x).__name__, repr(x)))


_CANONICAL = {
    "bool": _to_bool,
    "int": lambda v: _to_integer(v, "int", INT32),
    "long": lambda v: _to_integer(v, "long", INT64),
    "real": _to_real,
    "decimal": _to_decimal,
    "string": _to_string,
    "datetime": _to_datetime,
    "timespan": _to_timespan,
    "guid": _to_guid,
    "dynamic": _to_dynamic,
}


# -- literals -------------------------------------------------------------------------------------

def encode(value: Any, kql_type: str | None = None) -> str:
    """*value* as a KQL literal of *kql_type* (inferred when None).

    DataFrames are not scalars: use :func:`kqlmagic_plus.language.tables.datatable`.
    """
    if kql_type is None:
        kql_type = infer_type(value)
    if kql_type == "tabular":
        raise ParameterError("a table is not a scalar literal: write it with tables.datatable(...)")
    return literal(canonical(value, kql_type), kql_type)


def literal(v: Any, kql_type: str) -> str:
    """The literal for an already-canonical value."""
    if v is None:
        return '""' if kql_type == "string" else f"{kql_type}(null)"
    if kql_type == "string":
        return string(v)
    if kql_type == "bool":
        return "true" if v else "false"
    if kql_type == "long":
        return str(v) if v >= 0 else f"long({v})"
    if kql_type == "int":
        return f"int({v})"
    if kql_type == "real":
        if math.isnan(v):
            return "real(nan)"
        if math.isinf(v):
            return "real(+inf)" if v > 0 else "real(-inf)"
        text = repr(v)
        return text if not text.startswith("-") else f"real({text})"
    if kql_type == "decimal":
        return f"decimal({_decimal_text(v)})"
    if kql_type == "datetime":
        return f"datetime({_datetime_text(v)})"
    if kql_type == "timespan":
        return f"timespan({_timespan_text(v)})"
    if kql_type == "guid":
        return f"guid({v})"
    if kql_type == "dynamic":
        return f"dynamic({_json(v, kql_strings=True)})"
    raise ParameterError(f"{kql_type!r} is not a KQL scalar type")


def _decimal_text(d: Decimal) -> str:
    text = format(d, "f")
    return "0" if text in ("-0", "0") else text


def _datetime_text(v: _dt.datetime) -> str:
    ticks = v.microsecond * 10 + getattr(v, "nanosecond", 0) // 100
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
            f".{ticks:07d}Z")


def _timespan_text(td: _dt.timedelta) -> str:
    ticks = _ticks(td)
    sign = "-" if ticks < 0 else ""
    days, rest = divmod(abs(ticks), 864_000_000_000)
    secs, frac = divmod(rest, 10_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{days}.{h:02d}:{m:02d}:{s:02d}.{frac:07d}"


def json_text(value: Any) -> str:
    """Standard JSON text for a dynamic value (what ``parse_json`` reads back as the same value)."""
    return _json(canonical(value, "dynamic"), kql_strings=False)


def dynamic(value: Any) -> str:
    """``dynamic(...)`` literal for any JSON-shaped value (lists, dicts, sets, scalars, None)."""
    return literal(canonical(value, "dynamic"), "dynamic")


def _json(v: Any, *, kql_strings: bool) -> str:
    import json

    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Decimal):
        return _decimal_text(v)
    if isinstance(v, str):
        return string(v) if kql_strings else json.dumps(v, ensure_ascii=False)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ",".join(_json(x, kql_strings=kql_strings) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(_json(k, kql_strings=kql_strings) + ":" + _json(x, kql_strings=kql_strings)
                              for k, x in v.items()) + "}"
    raise ParameterError(f"a {type(v).__name__} cannot be held in a dynamic value")


def is_missing(v: Any) -> bool:
    """A null (:func:`is_null`), or NaN: in a pandas column NaN is the missing value."""
    return is_null(v) or (isinstance(v, float) and math.isnan(v))
