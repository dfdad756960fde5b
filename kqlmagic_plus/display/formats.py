"""A Result as table text, CSV, JSON (a list of row objects), JSON lines, or Parquet bytes.

JSON keeps KQL meanings: datetimes as ISO-8601 UTC with ``Z``, timespans as KQL ``[d.]hh:mm:ss[.fffffff]``
text, dynamic values as JSON values, longs as integers.

Data is hostile: table text shows control characters as escapes (``\x1b``), so an escape sequence in a
log line cannot drive the terminal; CSV cells that a spreadsheet would run as a formula (``=``, ``+``,
``-``, ``@``, tab, carriage return first) get a leading ``'`` unless *keep_formulas*.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from kqlmagic_plus.errors import OptionError


def iso_z(dt: datetime) -> str:
    text = dt.isoformat()
    # A pandas Timestamp of a 100 ns column prints nine digits: Kusto's seven (its ticks), as tostring() shows.
    text = re.sub(r"(\.\d{7})00(?=[+-]|$)", r"\1", text)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def kql_timespan(td: timedelta) -> str:
    """A timedelta in KQL's text form (``1.02:03:04.5000000``, ``-00:00:01``)."""
    sign = "-" if td < timedelta(0) else ""
    td = abs(td)
    total_us = td.days * 86_400_000_000 + td.seconds * 1_000_000 + td.microseconds
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, us = divmod(rem, 1_000_000)
    head = f"{days}." if days else ""
    frac = f".{us * 10:07d}" if us else ""
    return f"{sign}{head}{hours:02d}:{minutes:02d}:{seconds:02d}{frac}"


def records(result: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts."""
    out = []
    types = result.kql_types
    names = result.columns
    for row in result.table.to_pylist():
        rec = {}
        for name, kt in zip(names, types, strict=True):
            v = row[name]
            if v is None:
                rec[name] = None
            elif kt == "datetime":
                rec[name] = iso_z(v)
            elif kt == "timespan":
                rec[name] = kql_timespan(v)
            elif kt == "dynamic":
                rec[name] = json.loads(v)
            elif kt == "real" and v != v:  # NaN has no JSON form
                rec[name] = None
            else:
                rec[name] = v
        out.append(rec)
    return out


#: C0 and C1 control characters and DEL: shown as escapes in table text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def visible(text: str) -> str:
    """*text* with every control character shown as an escape (``\x1b``, ``\n``), for a terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _csv_cell(value: Any, keep_formulas: bool) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    if isinstance(value, str) and not keep_formulas and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def render(result: Any, fmt: str, *, keep_formulas: bool = False) -> str | bytes:
    if fmt == "json":
        return json.dumps(records(result), ensure_ascii=False, indent=1) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(result))
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow([_csv_cell(c, keep_formulas) for c in result.columns])
        for rec in records(result):
            w.writerow([_csv_cell(v, keep_formulas) for v in rec.values()])
        return buf.getvalue()
    if fmt == "parquet":
        import io

        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(result.table, buf)
        return buf.getvalue()
    if fmt == "table":
        df = result.to_dataframe()
        if not len(df.columns):
            return f"(no columns)\n({result.summary()})\n"
        from pandas.api.types import is_object_dtype, is_string_dtype

        df = df.rename(columns=lambda c: visible(str(c)))
        for col in df.columns:
            if is_object_dtype(df[col].dtype) or is_string_dtype(df[col].dtype):
                df[col] = df[col].map(lambda v: visible(v) if isinstance(v, str) else v)
        return f"{df.to_string(index=False, max_colwidth=80)}\n({visible(result.summary())})\n"
    raise OptionError(f"unknown format {fmt!r}; use one of table, csv, json, jsonl, parquet")
