"""A Result as table text, CSV, JSON (a list of row objects), JSON lines, or Parquet bytes.

JSON keeps KQL meanings: datetimes as ISO-8601 UTC with ``Z``, timespans as KQL ``[d.]hh:mm:ss[.fffffff]``
text, dynamic values as JSON values, longs as integers.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from kqlmagic_plus.errors import OptionError


def iso_z(dt: datetime) -> str:
    text = dt.isoformat()
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


def render(result: Any, fmt: str) -> str | bytes:
    if fmt == "json":
        return json.dumps(records(result), ensure_ascii=False, indent=1) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records(result))
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(result.columns)
        for rec in records(result):
            w.writerow(["" if v is None else json.dumps(v) if isinstance(v, (dict, list)) else v
                        for v in rec.values()])
        return buf.getvalue()
    if fmt == "parquet":
        import io

        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(result.table, buf)
        return buf.getvalue()
    if fmt == "table":
        df = result.to_dataframe()
        body = df.to_string(index=False, max_colwidth=80) if len(df.columns) else "(no columns)"
        return f"{body}\n({result.summary()})\n"
    raise OptionError(f"unknown format {fmt!r}; use one of table, csv, json, jsonl, parquet")
