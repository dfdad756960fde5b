"""Compare a Result with a documented output table, as carefully as a markdown table allows.

Each cell is compared by the KQL type of the result column: numbers at the digits the documentation shows,
datetimes and timespans to 100 ns (a difference only below the microsecond is a "limit": our engines keep
microseconds), dynamic values parsed and compared structurally, guids without case, strings exactly (after the
markdown's own escapes), an empty cell equal to null or the empty string. Rows are compared in order only where the
query orders them; otherwise as a multiset.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import re
from typing import Any

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ORDERED = re.compile(r"\b(sort|order)\s+by\b|\btop\b(?!-nested)|\bserialize\b|\brow_number\s*\(|\bprev\s*\(|"
                      r"\bnext\s*\(|\brow_cumsum\s*\(", re.I)
_UNORDERED_ARRAYS = re.compile(r"\b(make_set|make_set_if|make_list|make_list_if|make_list_with_nulls|make_bag|"
                               r"set_union|set_intersect|set_difference|bag_keys|buildschema)\s*\(", re.I)

_DT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?\s*(Z|UTC|\+00:00)?$")
_TS = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$")
# Some pages show days with a colon, d:hh:mm:ss (bin-function.md's "14:00:00:00" is bin(16d, 7d), 14 days).
_TS_DAYS_COLON = re.compile(r"^(-)?(\d+):(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$")


class Limit(Exception):
    """The values differ only below the microsecond."""


def datetime_ticks(text: str) -> tuple[int, int] | None:
    """(100 ns ticks since the epoch, digits shown) for a documented datetime."""
    m = _DT.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, _ = m.groups()
    try:
        base = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=dt.UTC)
    except ValueError:
        return None
    delta = base - EPOCH
    ticks = (delta.days * 86400 + delta.seconds) * 10_000_000
    digits = len(frac or "")
    if frac:
        ticks += int((frac + "0000000")[:7])
    return ticks, digits


def timespan_ticks(text: str) -> tuple[int, int] | None:
    m = _TS.match(text.strip()) or _TS_DAYS_COLON.match(text.strip())
    if not m:
        return None
    neg, days, h, mi, s, frac = m.groups()
    ticks = ((int(days or 0) * 24 + int(h)) * 3600 + int(mi) * 60 + int(s)) * 10_000_000
    if frac:
        ticks += int((frac + "0000000")[:7])
    return (-ticks if neg else ticks), len(frac or "")


def _ticks_of(value: Any) -> int:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        d = value - EPOCH
        # A pandas Timestamp (a nanosecond column: the local engine keeps 100 ns ticks) has them in .nanosecond.
        return (d.days * 86400 + d.seconds) * 10_000_000 + d.microseconds * 10 + getattr(value, "nanosecond", 0) // 100
    if isinstance(value, dt.timedelta):
        return ((value.days * 86400 + value.seconds) * 10_000_000 + value.microseconds * 10
                + getattr(value, "nanoseconds", 0) // 100)
    raise TypeError


def _close_ticks(got: int, want: int, digits: int) -> bool:
    if got == want:
        return True
    if digits >= 7 and got // 10 == want // 10 and abs(got - want) < 10:
        raise Limit
    if digits < 7:
        unit = 10 ** (7 - digits)
        return abs(got - want) < unit and got // unit == want // unit
    return False


def number_equal(got: float | int | decimal.Decimal, text: str) -> bool:
    t = text.strip().replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", text.strip()) else text.strip()
    if t.lower() in ("nan",):
        return isinstance(got, float) and math.isnan(got)
    if t.lower() in ("infinity", "inf", "+infinity", "∞", "+∞"):
        return got == math.inf
    if t.lower() in ("-infinity", "-inf", "-∞"):
        return got == -math.inf
    try:
        want = decimal.Decimal(t)
    except decimal.InvalidOperation:
        return False
    if isinstance(got, float) and (math.isnan(got) or math.isinf(got)):
        return False
    g = decimal.Decimal(str(got)) if isinstance(got, float) else decimal.Decimal(got)
    if g == want:
        return True
    exp = want.as_tuple().exponent
    if isinstance(exp, int) and exp < 0 and "e" not in t.lower():
        # The documentation shows this many decimals: the value rounds to them (either direction of a tie).
        q = decimal.Decimal(1).scaleb(exp)
        if abs(g - want) <= q / 2 * decimal.Decimal("1.0000001"):
            return True
    if want != 0 and abs((g - want) / want) < decimal.Decimal("1e-9"):
        return True
    # Large or small values the documentation shows with a precision of about 15 significant digits.
    return want != 0 and len(want.as_tuple().digits) >= 15 and abs((g - want) / want) < decimal.Decimal("1e-13")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return _NOT_JSON


_NOT_JSON = object()


def dynamic_equal(got: Any, want: Any, unordered: bool) -> bool:
    if isinstance(want, bool) or isinstance(got, bool):
        return got is want if isinstance(got, bool) and isinstance(want, bool) else False
    if isinstance(want, int | float) and isinstance(got, int | float):
        if isinstance(want, float) and math.isnan(want):
            return isinstance(got, float) and math.isnan(got)
        return number_equal(got, json.dumps(want))
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return False
        if unordered:
            pool = list(got)
            for w in want:
                for i, g in enumerate(pool):
                    if dynamic_equal(g, w, unordered):
                        del pool[i]
                        break
                else:
                    return False
            return True
        return all(dynamic_equal(g, w, unordered) for g, w in zip(got, want, strict=True))
    if isinstance(want, dict) and isinstance(got, dict):
        return set(want) == set(got) and all(dynamic_equal(got[k], want[k], unordered) for k in want)
    return type(got) is type(want) and got == want


def cell_equal(got: Any, kql_type: str, text: str, unordered_arrays: bool) -> bool:
    text = text.strip()
    if got is None or (isinstance(got, float) and math.isnan(got) and text == ""):
        return text in ("", "null") if kql_type in ("dynamic",) or got is None else False
    if kql_type == "string":
        link = re.fullmatch(r"\[([^\]]+)\]\(([^)]+)\)", text)  # a URL the page shows as a markdown link [u](u)
        if link and link.group(1) == link.group(2):
            text = link.group(1)
        return got == text or " ".join(got.split()) == " ".join(text.split())
    if kql_type == "guid":
        return got.lower() == text.lower()
    if kql_type == "bool":
        # Some pages display a bool as 1/0 (how Kusto once rendered it): the same value, not a looser match.
        return text.lower() in (("true", "1") if got else ("false", "0"))
    if kql_type in ("int", "long", "real", "decimal"):
        value = decimal.Decimal(got) if kql_type == "decimal" else got
        return number_equal(value, text)
    if kql_type == "datetime":
        want = datetime_ticks(text)
        return want is not None and _close_ticks(_ticks_of(got), *want)
    if kql_type == "timespan":
        want = timespan_ticks(text)
        return want is not None and _close_ticks(_ticks_of(got), *want)
    if kql_type == "dynamic":
        value = _json(got) if isinstance(got, str) else got
        want = _json(text)
        if want is _NOT_JSON and "'" in text and '"' not in text and text[:1] in "[{":
            want = _json(text.replace("'", '"'))  # the KQL literal form, single-quoted: ['a', 1]
        flat = re.fullmatch(r"\[([^\[\]{}\"']*)\]", text)
        if want is _NOT_JSON and flat and isinstance(value, list):  # a flat array of strings shown unquoted
            items = [w.strip() for w in flat.group(1).split(",")] if flat.group(1).strip() else []
            want = [w if _json(w) is _NOT_JSON else _json(w) for w in items]
            return dynamic_equal(value, want, unordered_arrays)
        # Some pages show a dynamic's strings with their backslashes as they are (parse_path's C:\temp), not
        # JSON-escaped: such a cell is also read with every backslash literal.
        raw = _json(text.replace("\\", "\\\\")) if "\\" in text and '\\"' not in text else _NOT_JSON
        if raw is not _NOT_JSON and value is not None and dynamic_equal(value, raw, unordered_arrays):
            return True
        if want is _NOT_JSON:  # a bare string value shown without quotes
            return isinstance(value, str) and (value == text or " ".join(value.split()) == " ".join(text.split()))
        if value is None:
            return text in ("", "null")
        return dynamic_equal(value, want, unordered_arrays)
    return str(got) == text


def compare(ex: Any, result: Any) -> tuple[str, str]:
    """("pass" | "wrong" | "limit", why) for a Result against the example's documented table."""
    names = list(result.table.column_names)
    types = list(result.kql_types)
    if names != ex.header:
        if [n.lower() for n in names] == [h.lower() for h in ex.header]:
            return "wrong", f"column names differ in case: {names} vs {ex.header}"
        return "wrong", f"columns {names} vs documented {ex.header}"
    got_rows = [list(r.values()) for r in result.table.to_pylist()]
    if len(got_rows) != len(ex.rows):
        return "wrong", f"{len(got_rows)} rows vs {len(ex.rows)} documented"
    unordered = bool(_UNORDERED_ARRAYS.search(ex.query)) and not _ORDERED.search(ex.query)
    limit = False

    def row_equal(g: list[Any], w: list[str]) -> int:
        """0 differs, 1 equal, 2 equal but for digits below the microsecond."""
        below = False
        for value, t, text, name in zip(g, types, w, names, strict=True):
            try:
                if not cell_equal(value, t, text, unordered):
                    if _nanos_below_us(value, t, text, name):
                        below = True
                        continue
                    return 0
            except Limit:
                below = True
        return 2 if below else 1

    if _ORDERED.search(ex.query):
        for i, (g, w) in enumerate(zip(got_rows, ex.rows, strict=True)):
            eq = row_equal(g, w)
            if not eq:
                return "wrong", f"row {i + 1}: got {_show(g)} vs documented {w}"
            limit |= eq == 2
    else:
        pool = list(range(len(got_rows)))
        for w in ex.rows:
            for pos, i in enumerate(pool):
                eq = row_equal(got_rows[i], w)
                if eq:
                    limit |= eq == 2
                    del pool[pos]
                    break
            else:
                return "wrong", f"no row matches documented {w}; got e.g. {_show(got_rows[pool[0]])}"
    if limit:
        return "limit", "differs only below the microsecond"
    return "pass", ""


def _nanos_below_us(got: Any, kql_type: str, text: str, name: str) -> bool:
    """A count of nanoseconds (a column so named) that differs only below the microsecond: a limit."""
    if kql_type not in ("int", "long") or "nanosecond" not in name.lower() or not isinstance(got, int):
        return False
    try:
        return abs(got - int(text.strip().replace(",", ""))) < 1000
    except ValueError:
        return False


def _show(row: list[Any]) -> str:
    return "[" + ", ".join(str(v) for v in row) + "]"
