"""The one KQL literal encoder: Python values -> exact KQL literal text.

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
* **datetime** - ``datetime(YYYY-MM-DDTHH:MM:SS.fffffffZ)``, always UTC (naive values are UTC).
* **timespan** - ``timespan([-]D.HH:MM:SS.fffffff)``.
* **long / int / real / decimal / bool / guid** - plain literals where the grammar has one for
  the value (``5``, ``1.5``, ``true``), else the typed form (``long(-5)``, ``real(nan)``,
  ``real(-inf)``, ``decimal(1.25)``, ``guid(...)``); nulls are ``T(null)``. A KQL string cannot be
  null, so a missing string is ``""``.
* **tables** - ``datatable(col:type, ...)[cell, ...]`` with every cell encoded by the rules above.

Non-string scalar literals are built only from digits, signs, ``.:-TZ``, hex digits and a type
keyword, so no value of those types can put a quote, pipe or comment into a query.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import ParameterError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

#: KQL scalar types this encoder writes.
SCALAR_TYPES = ("bool", "int", "long", "real", "decimal", "string", "datetime", "timespan", "guid", "dynamic")

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
#: .NET decimal: a 96-bit unsigned mantissa and a scale of 0..28.
_DECIMAL_MANTISSA_MAX = 2**96 - 1
_DECIMAL_SCALE_MAX = 28
#: KQL timespans are int64 counts of 100 ns ticks.
_TIMESPAN_MAX_US = (2**63 - 1) // 10
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
        + ("; decode bytes to str first" if isinstance(value, bytes | bytearray) else ""))


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
            raise ParameterError(f"{i} is out of range for a KQL {kql_type} ({bounds[0]} .. {bounds[1]})")
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
        if ns:
            raise ParameterError(f"{v} has nanoseconds; the engines here hold microseconds "
                                 "(round it first, e.g. ts.floor('us'))")
        if v.tzinfo is not None:
            v = v.astimezone(_dt.UTC).replace(tzinfo=None)
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
        if ns:
            raise ParameterError(f"{v} has nanoseconds; the engines here hold microseconds "
                                 "(round it first, e.g. td.floor('us'))")
        td = _dt.timedelta(days=v.days, seconds=v.seconds, microseconds=v.microseconds)
        if abs(td // _dt.timedelta(microseconds=1)) > _TIMESPAN_MAX_US:
            raise ParameterError(f"{td} is out of range for a KQL timespan (about +-29,000 years)")
        return td
    raise _mismatch(v, "timespan")


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

    DataFrames are not scalars: use :func:`datatable`.
    """
    if kql_type is None:
        kql_type = infer_type(value)
    if kql_type == "tabular":
        return datatable(value)
    return _literal(canonical(value, kql_type), kql_type)


def _literal(v: Any, kql_type: str) -> str:
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
    return (f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
            f".{v.microsecond * 10:07d}Z")


def _timespan_text(td: _dt.timedelta) -> str:
    us = td // _dt.timedelta(microseconds=1)
    sign = "-" if us < 0 else ""
    days, rest = divmod(abs(us), 86_400_000_000)
    secs, frac = divmod(rest, 1_000_000)
    h, rem = divmod(secs, 3600)
    m, s = divmod(rem, 60)
    return f"{sign}{days}.{h:02d}:{m:02d}:{s:02d}.{frac * 10:07d}"


def json_text(value: Any) -> str:
    """Standard JSON text for a dynamic value (what ``parse_json`` reads back as the same value)."""
    return _json(canonical(value, "dynamic"), kql_strings=False)


def dynamic(value: Any) -> str:
    """``dynamic(...)`` literal for any JSON-shaped value (lists, dicts, sets, scalars, None)."""
    return _literal(canonical(value, "dynamic"), "dynamic")


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


# -- tables ---------------------------------------------------------------------------------------

def as_dataframe(value: Any) -> pd.DataFrame:
    """A pandas DataFrame for a tabular parameter (pyarrow Tables are converted)."""
    if type(value).__module__.startswith("pyarrow"):
        return value.to_pandas()
    return value


def column_types(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(column name, KQL type) for every column, from the dtype, or from the values of an object column."""
    names = [str(c) for c in df.columns]
    if not names:
        raise ParameterError("a DataFrame with no columns cannot be a KQL table")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ParameterError(f"the DataFrame has duplicate column names: {', '.join(dupes)}")
    out = []
    for i, name in enumerate(names):
        try:
            out.append((name, _column_type(df.iloc[:, i])))
        except ParameterError as exc:
            raise ParameterError(f"column {name!r}: {exc.message}") from None
    return out


def _column_type(col: pd.Series) -> str:
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _column_type(col.astype(dtype.categories.dtype))
    kind = getattr(dtype, "kind", "O")
    if kind == "b":
        return "bool"
    if kind in "iu":
        return "int" if dtype.itemsize < 4 or (kind == "i" and dtype.itemsize == 4) else "long"
    if kind == "f":
        return "real"
    if kind == "M":
        return "datetime"
    if kind == "m":
        return "timespan"
    if isinstance(dtype, pd.StringDtype) or str(dtype) in ("str", "string"):
        return "string"
    return _values_type([v for v in col.tolist() if not _is_missing(v)])


def _values_type(values: list[Any]) -> str:
    """The KQL type of an object column: one scalar type for all values, else dynamic."""
    if not values:
        return "string"
    kinds = {infer_type(v) for v in values}
    if len(kinds) == 1:
        (kind,) = kinds
        return "dynamic" if kind == "tabular" else kind
    if kinds <= {"int", "long"}:
        return "long"
    if kinds <= {"int", "long", "real"}:
        return "real"
    return "dynamic"


def _is_missing(v: Any) -> bool:
    return is_null(v) or (isinstance(v, float) and math.isnan(v))


def datatable(value: pd.DataFrame | pa.Table) -> str:
    """``datatable(col:type, ...)[cells]`` holding every row of *value*, every cell encoded exactly.

    The index is not included (``reset_index()`` first to keep it). In ``real`` columns NaN is
    pandas' missing value and becomes ``real(null)``; in ``string`` columns a missing value becomes
    ``""`` (KQL strings are never null).
    """
    df = as_dataframe(value)
    types = column_types(df)
    schema = ", ".join(f"{identifier(name)}:{kql_type}" for name, kql_type in types)
    columns = []
    for i, (name, kql_type) in enumerate(types):
        try:
            columns.append([_cell(v, kql_type) for v in df.iloc[:, i].tolist()])
        except ParameterError as exc:
            raise ParameterError(f"column {name!r}: {exc.message}") from None
    cells = [c for row in zip(*columns, strict=True) for c in row]
    return f"datatable({schema})[{', '.join(cells)}]"


def _cell(v: Any, kql_type: str) -> str:
    if kql_type != "dynamic" and _is_missing(v):
        return _literal(None, kql_type)
    return _literal(canonical(v, kql_type), kql_type)
