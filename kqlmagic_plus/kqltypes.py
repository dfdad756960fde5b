"""KQL scalar types and their one canonical Arrow form.

Every engine hands back an Arrow table whose columns are normalised to one physical type per KQL
type. That makes results from DuckDB, Spark and the Azure services interchangeable, lets the cache
store them as Parquet and read back exactly what was computed, and gives ``Result.to_dataframe``
one set of rules:

========  ==========================  ==================================
KQL       Arrow (canonical)           pandas
========  ==========================  ==================================
bool      bool                        boolean (nullable)
int       int32                       Int32 (nullable)
long      int64                       Int64 (nullable)
real      float64                     float64
decimal   string (exact digits)       object (decimal.Decimal)
string    string                      object (str)
datetime  timestamp[us, tz=UTC] (*)   datetime64[us, UTC]
timespan  duration[us]                timedelta64[us]
dynamic   string (JSON text)          object (dict / list / scalars)
guid      string                      object (str)
========  ==========================  ==================================

(*) timestamp[ns, tz=UTC] (datetime64[ns, UTC]) for a column that holds Kusto's 100 ns ticks below the
microsecond (the local engine keeps them); every other datetime column is microseconds, which hold the years
1-9999 that nanoseconds (1677-2262) cannot.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

KQL_TYPES = ("bool", "int", "long", "real", "decimal", "string", "datetime", "timespan", "dynamic", "guid")

#: Spellings the services and the KQL docs use for the same types.
_ALIASES = {
    "boolean": "bool",
    "int32": "int",
    "int64": "long",
    "double": "real",
    "float": "real",
    "date": "datetime",
    "time": "timespan",
    "uniqueidentifier": "guid",
    "sbyte": "int",
    "object": "dynamic",
    "sql_variant": "dynamic",
}


def normalize_type(name: str) -> str:
    """A KQL type name in its canonical spelling (``System.Int64`` and ``int64`` become ``long``)."""
    n = name.strip().lower()
    if n.startswith("system."):
        n = {"system.string": "string", "system.int64": "long", "system.int32": "int",
             "system.double": "real", "system.boolean": "bool", "system.datetime": "datetime",
             "system.timespan": "timespan", "system.object": "dynamic", "system.guid": "guid",
             "system.data.sqltypes.sqldecimal": "decimal", "system.sbyte": "bool"}.get(n, "string")
    n = _ALIASES.get(n, n)
    if n not in KQL_TYPES:
        raise ValueError(f"not a KQL type: {name!r}")
    return n


def arrow_type(kql_type: str) -> pa.DataType:
    import pyarrow as pa

    return {
        "bool": pa.bool_(),
        "int": pa.int32(),
        "long": pa.int64(),
        "real": pa.float64(),
        "decimal": pa.string(),
        "string": pa.string(),
        "datetime": pa.timestamp("us", tz="UTC"),
        "timespan": pa.duration("us"),
        "dynamic": pa.string(),
        "guid": pa.string(),
    }[kql_type]


def is_canonical(t: pa.DataType, kql_type: str) -> bool:
    """*t* is a canonical Arrow form of *kql_type*: :func:`arrow_type`, or for a datetime column that holds 100 ns
    ticks, timestamp[ns, tz=UTC] (:func:`canonical_column` keeps those)."""
    import pyarrow as pa

    return t == arrow_type(kql_type) or (kql_type == "datetime" and t == pa.timestamp("ns", tz="UTC"))


def kql_type_of_duckdb(type_name: str) -> str:
    """The KQL type a DuckDB column type stands for."""
    t = type_name.upper()
    if t in ("BOOLEAN", "BOOL"):
        return "bool"
    if t in ("INTEGER", "INT", "INT4", "SMALLINT", "TINYINT", "UTINYINT", "USMALLINT"):
        return "int"
    if t in ("BIGINT", "INT8", "UINTEGER", "HUGEINT", "UBIGINT", "LONG"):
        return "long"
    if t in ("DOUBLE", "FLOAT", "REAL", "FLOAT8", "FLOAT4"):
        return "real"
    if t.startswith("DECIMAL") or t.startswith("NUMERIC"):
        return "decimal"
    if t.startswith("TIMESTAMP") or t in ("DATE", "DATETIME"):
        return "datetime"
    if t in ("INTERVAL", "TIME"):
        return "timespan"
    if t == "UUID":
        return "guid"
    if t == "JSON" or t.endswith("[]") or t.startswith(("STRUCT", "MAP", "LIST", "UNION")) or "[" in t:
        return "dynamic"
    return "string"


def kql_type_of_arrow(t: pa.DataType) -> str:
    """The KQL type an arbitrary Arrow type stands for (used for DataFrames and Parquet files)."""
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "long" if t.bit_width > 32 or (pa.types.is_unsigned_integer(t) and t.bit_width == 32) else "int"
    if pa.types.is_floating(t):
        return "real"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_duration(t) or pa.types.is_interval(t) or pa.types.is_time(t):
        return "timespan"
    if pa.types.is_nested(t) or pa.types.is_map(t):
        return "dynamic"
    return "string"


def _to_json_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        # DuckDB JSON columns arrive as text already; anything else is a Python object.
        return value
    return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def canonical_column(arr: pa.ChunkedArray | pa.Array, kql_type: str) -> pa.ChunkedArray:
    """Cast one Arrow column to the canonical physical type for *kql_type*."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr], type=arr.type)
    target = arrow_type(kql_type)
    t = arr.type
    if t == target:
        return arr
    if kql_type == "dynamic":
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return arr.cast(pa.string())
        return pa.chunked_array([pa.array([_to_json_text(v) for v in arr.to_pylist()], type=pa.string())])
    if kql_type == "datetime":
        if pa.types.is_timestamp(t):
            if t.unit == "ns" and _below_us(arr):
                # Kusto's 100 ns ticks (a DuckDB TIMESTAMP_NS): kept, as a pandas datetime64[ns] keeps them.
                return arr if t.tz == "UTC" else (pc.assume_timezone(arr, "UTC") if t.tz is None
                                                  else arr.cast(pa.timestamp("ns", tz="UTC")))
            if t.tz is None:
                arr = pc.assume_timezone(arr.cast(pa.timestamp("us")), "UTC")
            return arr.cast(target)
        if pa.types.is_date(t):
            return pc.assume_timezone(arr.cast(pa.timestamp("us")), "UTC").cast(target)
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            parsed = pc.strptime(arr, format="%Y-%m-%dT%H:%M:%S", unit="us", error_is_null=True)
            return pc.assume_timezone(parsed, "UTC").cast(target)
    if kql_type == "timespan":
        if pa.types.is_interval(t):
            vals = [None if v is None else _interval_us(v) for v in arr.to_pylist()]
            return pa.chunked_array([pa.array(vals, type=pa.int64())]).cast(target)
        if pa.types.is_duration(t):
            return arr.cast(target)
        if pa.types.is_time(t):
            return arr.cast(pa.time64("us")).cast(pa.int64()).cast(target)
    if kql_type in ("decimal", "guid", "string") and not (pa.types.is_string(t)):
        return pa.chunked_array([pa.array([None if v is None else str(v) for v in arr.to_pylist()],
                                          type=pa.string())])
    return arr.cast(target)


def _below_us(arr: pa.ChunkedArray) -> bool:
    """A nanosecond timestamp column with a value that is not a whole microsecond."""
    import pyarrow.compute as pc

    ns = arr.cast("int64")
    return bool(pc.any(pc.not_equal(pc.subtract(ns, pc.multiply(pc.divide(ns, 1000), 1000)), 0)).as_py())


def _interval_us(v: Any) -> int:
    # DuckDB intervals arrive as MonthDayNano; KQL timespans have no months, so 30-day months are
    # what Kusto itself would never produce - they only come from SQL written by hand.
    months, days, nanos = v.months, v.days, v.nanoseconds
    return ((months * 30 + days) * 86_400_000_000) + nanos // 1000


def canonical_table(table: pa.Table, kql_types: list[str]) -> pa.Table:
    """The table with every column in its canonical Arrow type, KQL types kept in the field metadata."""
    import pyarrow as pa

    cols, fields = [], []
    for name, col, kt in zip(table.column_names, table.columns, kql_types, strict=True):
        c = canonical_column(col, kt)
        cols.append(c)
        fields.append(pa.field(name, c.type, metadata={b"kql_type": kt.encode()}))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def kql_types_of(table: pa.Table) -> list[str]:
    """Read the KQL types back from a canonical table's field metadata (inferring where absent)."""
    out = []
    for field in table.schema:
        meta = field.metadata or {}
        kt = meta.get(b"kql_type")
        out.append(kt.decode() if kt else kql_type_of_arrow(field.type))
    return out


def to_pandas(table: pa.Table, kql_types: list[str]) -> pd.DataFrame:
    """Convert a canonical table to pandas with the documented dtype rules."""
    import decimal

    import pandas as pd

    data: dict[str, Any] = {}
    for name, col, kt in zip(table.column_names, table.columns, kql_types, strict=True):
        if kt == "bool":
            data[name] = pd.array(col.to_pylist(), dtype="boolean")
        elif kt == "int":
            data[name] = pd.array(col.to_pylist(), dtype="Int32")
        elif kt == "long":
            data[name] = pd.array(col.to_pylist(), dtype="Int64")
        elif kt == "real":
            data[name] = col.to_pandas().astype("float64")
        elif kt == "datetime":
            s = col.to_pandas()
            data[name] = s if len(s) else pd.Series([], dtype="datetime64[us, UTC]")
        elif kt == "timespan":
            data[name] = col.to_pandas()
        elif kt == "dynamic":
            data[name] = pd.Series([None if v is None else _loads_or_text(v) for v in col.to_pylist()],
                                   dtype=object)
        elif kt == "decimal":
            data[name] = pd.Series([None if v is None else decimal.Decimal(v) for v in col.to_pylist()],
                                   dtype=object)
        else:
            data[name] = pd.Series(col.to_pylist(), dtype=object)
    df = pd.DataFrame(data)
    if not data:
        df = pd.DataFrame(index=range(table.num_rows))
    df.columns = list(table.column_names)
    return df


def _loads_or_text(v: str) -> Any:
    """A dynamic cell's value; text that is not JSON (an older cache entry) stays the text."""
    try:
        return json.loads(v)
    except ValueError:
        return v
