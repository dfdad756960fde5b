"""Tables into queries: one conversion, whichever way a table arrives.

A table reaches a query two ways: **read by name** (a DataFrame, Arrow table, polars DataFrame or
earlier Result in the namespace, which the local engine registers) and **passed as a parameter**
(``params={"t": df}``: registered the same way locally, written as ``datatable(...)`` for the
services). Both go through this module, so the same DataFrame binds the same values either way:
:func:`typed_table` is what the local engine registers, :func:`datatable` writes the same column
types and the same cells as KQL text.

=====================================  ==========  =============================================
column                                 KQL type    registered as (Arrow)
=====================================  ==========  =============================================
bool, boolean                          bool        bool
int8/16/32, uint8/16                   int         int32
int64, uint32, uint64                  long        int64; uint64 above 2**63-1 is refused (KQL has
                                                   no unsigned 64-bit type: use Decimals)
float16/32/64                          real        float64; in a numpy float column NaN is pandas'
                                                   missing value and is null (Arrow keeps NaN)
decimal.Decimal objects, decimal128    decimal     decimal128(38, s), s = the column's largest
                                                   scale (at most 28): exact, never a float
str, string dtypes, categorical        string      string; missing is "" (KQL strings are never null)
datetime64 (any unit, any tz), dates   datetime    timestamp[us, UTC] (naive means UTC). DuckDB
                                                   holds microseconds: a value with ticks below
                                                   the microsecond is refused, never rounded
                                                   (``datatable`` keeps KQL's 100 ns ticks)
timedelta64                            timespan    duration[us], the same rule
uuid.UUID                              guid        uuid
dict / list / mixed objects            dynamic     JSON: standard JSON text (never Python repr);
                                                   a missing cell is null
bytes                                  -           refused, naming the column: KQL has no binary
                                                   type (decode the column, or base64 it)
=====================================  ==========  =============================================

An Arrow table carrying ``kql_type`` field metadata (a :class:`~kqlmagic_plus.results.Result`'s
table) keeps those types: its decimals, guids and dynamics, stored as text there, become decimals,
guids and dynamics again.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import ParameterError
from kqlmagic_plus.language import literals

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

INT64_MAX = literals.INT64[1]
_MAX_SCALE = 28


def as_dataframe(value: Any) -> pd.DataFrame:
    """A pandas DataFrame for a tabular value (Arrow tables, polars DataFrames and Results are converted)."""
    arrow = _arrow_of(value)
    if arrow is not None:
        return arrow.to_pandas()
    return value


def _arrow_of(value: Any) -> pa.Table | None:
    """The Arrow table behind *value* if it is not a pandas DataFrame (None for a pandas one)."""
    cls = type(value)
    mod, name = cls.__module__ or "", cls.__name__
    if mod.startswith("pyarrow") and name == "Table":
        return value
    if mod.startswith("pyarrow") and name == "RecordBatch":
        import pyarrow as pa

        return pa.Table.from_batches([value])
    if mod.startswith("polars") and name == "DataFrame":
        return value.to_arrow()
    if mod.startswith("kqlmagic_plus") and name == "Result":
        return value.table
    return None


# -- column types ----------------------------------------------------------------------------------

def column_types(df: pd.DataFrame) -> list[tuple[str, str]]:
    """(column name, KQL type) for every column, from the dtype, or from the values of an object column."""
    names = _names(df.columns)
    out = []
    for i, name in enumerate(names):
        try:
            out.append((name, _column_type(df.iloc[:, i])))
        except ParameterError as exc:
            raise ParameterError(f"column {name!r}: {exc.message}") from None
    return out


def _names(columns: Any) -> list[str]:
    names = [str(c) for c in columns]
    if not names:
        raise ParameterError("a DataFrame with no columns cannot be a KQL table")
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ParameterError(f"the DataFrame has duplicate column names: {', '.join(dupes)}")
    return names


def _column_type(col: pd.Series) -> str:
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _column_type(_decategorized(col))
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
    if pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):  # C speed for the common case
        return "string"
    present = col.notna().to_numpy()
    if present.any() and isinstance(col.iloc[int(present.argmax())], dict | list | tuple | set | frozenset):
        # One JSON-shaped value makes the column dynamic whatever the others are (each cell is still
        # checked when it is converted): no need to type a million bags one by one.
        return "dynamic"
    return _values_type([v for v in col.tolist() if not literals.is_missing(v)])


def _decategorized(col: pd.Series) -> pd.Series:
    """A categorical column as its values (as objects when some are missing: ints cannot hold NaN)."""
    target = col.dtype.categories.dtype
    if col.isna().any() and getattr(target, "kind", "O") in "iub":
        return col.astype(object)
    return col.astype(target)


def _values_type(values: list[Any]) -> str:
    """The KQL type of an object column: one scalar type for all values, else dynamic."""
    if not values:
        return "string"
    kinds = {literals.infer_type(v) for v in values}
    if len(kinds) == 1:
        (kind,) = kinds
        return "dynamic" if kind == "tabular" else kind
    if kinds <= {"int", "long"}:
        return "long"
    if kinds <= {"int", "long", "real"}:
        return "real"
    return "dynamic"


# -- the registered form ---------------------------------------------------------------------------

def typed_table(value: Any, name: str | None = None) -> pa.Table:
    """*value* (pandas/polars DataFrame, Arrow table or batch, Result) as an Arrow table whose columns
    carry their KQL types exactly (the table in the module docstring), for an engine to register.

    Every cell passes the checks a scalar parameter does. *name* (the table's name in the query)
    prefixes the messages of the ParameterError raised for a value that has no faithful form.
    """
    import pyarrow as pa

    try:
        arrow = _arrow_of(value)
        columns: list[tuple[str, str, Any]] = []
        if arrow is not None:
            for col_name, field, col in zip(_names(arrow.column_names), arrow.schema, arrow.columns, strict=True):
                try:
                    columns.append((col_name, *_from_arrow(col, field)))
                except ParameterError as exc:
                    raise ParameterError(f"column {col_name!r}: {exc.message}") from None
        else:
            for i, (col_name, kql_type) in enumerate(column_types(value)):
                try:
                    columns.append((col_name, kql_type, _from_pandas(value.iloc[:, i], kql_type)))
                except ParameterError as exc:
                    raise ParameterError(f"column {col_name!r}: {exc.message}") from None
    except ParameterError as exc:
        if name is None:
            raise
        raise ParameterError(f"table {name!r}: {exc.message}", hint=exc.hint) from None
    fields = [pa.field(n, a.type, metadata={b"kql_type": t.encode()}) for n, t, a in columns]
    return pa.Table.from_arrays([a for _, _, a in columns], schema=pa.schema(fields))


def _local_type(kql_type: str, scale: int = 0) -> pa.DataType:
    import pyarrow as pa

    return {
        "bool": pa.bool_(), "int": pa.int32(), "long": pa.int64(), "real": pa.float64(),
        "decimal": pa.decimal128(38, scale), "string": pa.string(), "datetime": pa.timestamp("us", tz="UTC"),
        "timespan": pa.duration("us"), "guid": pa.uuid(), "dynamic": pa.json_(pa.string()),
    }[kql_type]


def _from_pandas(col: pd.Series, kql_type: str) -> Any:
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if isinstance(col.dtype, pd.CategoricalDtype):
        col = _decategorized(col)
    kind = getattr(col.dtype, "kind", "O")
    if kql_type in ("int", "long") and kind in "iu":
        if kind == "u" and col.dtype.itemsize == 8 and len(col) and col.max() > INT64_MAX:
            literals.canonical(np.uint64(col.max()), kql_type)  # raises, naming the value and the way out
        return pa.array(col, from_pandas=True).cast(_local_type(kql_type))
    if kql_type == "real" and kind == "f":
        return pa.array(col.astype("float64"), from_pandas=True)
    if kql_type == "bool" and kind == "b":
        return pa.array(col, from_pandas=True)
    if kql_type in ("datetime", "timespan") and kind in "Mm":
        return _from_numpy_time(col, kql_type)
    if kql_type == "string":  # every value is a str or missing (column_types decided so)
        try:
            arr = pa.array(col, type=pa.string(), from_pandas=True)
        except UnicodeEncodeError:
            arr = None  # a lone surrogate somewhere: the per-value path names it
        if arr is not None:
            return arr.fill_null("")
    return _from_values(col.tolist(), kql_type)


def _from_numpy_time(col: pd.Series, kql_type: str) -> Any:
    """datetime64 / timedelta64 columns, vectorised: UTC, microseconds, nothing below them lost."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    if kql_type == "datetime" and isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    data = col.to_numpy()
    if data.dtype.kind not in "Mm":  # an Arrow-backed pandas column: value by value
        return _from_values(col.tolist(), kql_type)
    unit = np.datetime_data(data.dtype)[0]
    if unit == "ns":
        ticks = data.view("int64")
        below = (ticks % 1000 != 0) & ~np.isnat(data)
        if below.any():
            raise _below_microsecond(col.iloc[int(np.argmax(below))], kql_type)
    arr = pa.array(data, from_pandas=True)
    if kql_type == "timespan":
        return arr.cast(pa.duration("us"))
    return arr.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))


def _below_microsecond(value: Any, kql_type: str) -> ParameterError:
    how = "ts.floor('us')" if kql_type == "datetime" else "td.floor('us')"
    return ParameterError(f"{value} has ticks below the microsecond, which the local engine (DuckDB) cannot "
                          f"hold: round the column first (e.g. {how}); Log Analytics and ADX hold KQL's "
                          "100 ns ticks")


def _from_values(cells: list[Any], kql_type: str) -> Any:
    """Any column, value by value, through the scalar rules (:func:`literals.canonical`)."""
    import pyarrow as pa

    if kql_type == "dynamic":
        return pa.array(_json_texts(cells), type=pa.json_(pa.string()))
    values = [None if literals.is_missing(v) else literals.canonical(v, kql_type) for v in cells]
    if kql_type == "string":
        return pa.array(["" if v is None else v for v in values], type=pa.string())
    if kql_type == "guid":
        return pa.array([None if v is None else v.bytes for v in values], type=pa.uuid())
    if kql_type == "decimal":
        return _decimal_array(values)
    if kql_type in ("datetime", "timespan"):
        for v in values:
            if v is not None and literals.sub_microsecond(v):
                raise _below_microsecond(v, kql_type)
        if kql_type == "datetime":
            return pa.array(values, type=pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    return pa.array(values, type=_local_type(kql_type))


def _json_texts(cells: list[Any]) -> list[str | None]:
    """``literals.json_text`` of every cell (None for a missing one), at C speed where that is provably
    the same text: a million bags take about a second, not ten.

    The C JSON encoder writes some values json_text refuses or writes otherwise (``{1: x}`` as
    ``{"1": x}``, a numpy int, NaN, a 20-digit int, a lone surrogate, nesting past json_text's
    limit). So its text is only used when the whole column reads back as the cells themselves and
    holds nothing suspect; otherwise every cell takes the exact path (which names what is wrong).
    """
    plain = _PLAIN
    present = [(i, v) for i, v in enumerate(cells) if type(v) in plain or not literals.is_missing(v)]
    out: list[str | None] = [None] * len(cells)
    try:
        texts = ["".join(_C_ENCODE(v, 0)) for _, v in present]
        joined = "[" + ",".join(texts) + "]"
        deepest = max((t.count("[") + t.count("{") for t in texts if len(t) > 200), default=0)
        trusted = not _SUSPECT.search(joined) and deepest < 100 and json.loads(joined) == [v for _, v in present]
        joined.encode("utf-8")
    except (TypeError, ValueError, RecursionError, UnicodeEncodeError):
        trusted = False
    for k, (i, v) in enumerate(present):
        out[i] = texts[k] if trusted else literals.json_text(v)
    return out


_PLAIN = frozenset({dict, list, str, int, bool})


def _refuse_unknown(o: Any) -> Any:
    raise TypeError(type(o).__name__)


#: The stdlib's C JSON encoder, made once: compact separators, no NaN, str values unescaped but for
#: JSON's own escapes (what ``json.dumps(v, ensure_ascii=False)``, json_text's string rule, writes).
_C_ENCODE = c_make_encoder(None, _refuse_unknown, encode_basestring, None, ":", ",", False, False, False) \
    if c_make_encoder is not None else (lambda v, _: json.JSONEncoder(
        ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_refuse_unknown).iterencode(v))
#: 19+ digit runs: a number beyond a KQL long could be among them (json_text refuses those).
_SUSPECT = re.compile(r"\d{19}")


def _decimal_array(values: list[Decimal | None]) -> Any:
    import pyarrow as pa

    present = [v for v in values if v is not None]
    scale = max((max(0, -v.as_tuple().exponent) for v in present), default=0)
    digits = max((max(0, len(v.as_tuple().digits) + v.as_tuple().exponent) for v in present), default=0)
    if scale + digits > 38:
        raise ParameterError(f"the decimals need {digits} digits before the point and {scale} after it, more "
                             "than the 38 the local engine holds in one column")
    return pa.array(values, type=pa.decimal128(38, scale))


def _from_arrow(col: pa.ChunkedArray, field: pa.Field) -> tuple[str, Any]:
    """(KQL type, registered column) for one Arrow column."""
    import pyarrow as pa

    from kqlmagic_plus.kqltypes import kql_type_of_arrow

    t = col.type
    meta = (field.metadata or {}).get(b"kql_type")
    if pa.types.is_dictionary(t):
        col, t = col.cast(t.value_type), t.value_type
    if meta is not None and meta.decode() in ("decimal", "guid", "dynamic") and pa.types.is_string(t):
        # A Result's canonical text form of these three types: their values again.
        kql_type = meta.decode()
        if kql_type == "dynamic":  # already JSON text: the same buffers, typed as JSON
            json_type = pa.json_(pa.string())
            return kql_type, pa.chunked_array(
                [pa.ExtensionArray.from_storage(json_type, c.cast(pa.string())) for c in col.chunks], type=json_type)
        cells = col.to_pylist()
        if kql_type == "decimal":
            return kql_type, _decimal_array([None if v is None else literals.canonical(Decimal(v), kql_type)
                                             for v in cells])
        return kql_type, _from_values(cells, kql_type)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        raise ParameterError("the column holds bytes, which KQL has no type for: decode it to text first "
                             "(b.decode('utf-8')), or to base64 (base64.b64encode(b).decode()) to keep every byte")
    if isinstance(t, pa.UuidType):
        return "guid", col
    if isinstance(t, pa.JsonType):
        return "dynamic", col
    if pa.types.is_null(t):
        return "string", pa.array([""] * len(col), type=pa.string())
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime", _arrow_time(col, "datetime")
    if pa.types.is_duration(t):
        return "timespan", _arrow_time(col, "timespan")
    if pa.types.is_decimal(t):
        if t.scale > _MAX_SCALE:
            raise ParameterError(f"decimal({t.precision}, {t.scale}) has more than the {_MAX_SCALE} decimal places "
                                 "a KQL decimal holds")
        if t.precision <= 38:
            return "decimal", col.cast(pa.decimal128(t.precision, t.scale))
        return "decimal", _decimal_array(col.to_pylist())
    if pa.types.is_interval(t):
        raise ParameterError(f"{t} columns have no KQL type (months are not a fixed length): convert them to "
                             "durations first")
    if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
        import numpy as np
        import pyarrow.compute as pc

        top = pc.max(col).as_py()
        if top is not None and top > INT64_MAX:
            literals.canonical(np.uint64(top), "long")  # raises, with the way out
    kql_type = kql_type_of_arrow(t)
    if kql_type == "dynamic":
        return kql_type, _from_values(col.to_pylist(), kql_type)
    if kql_type == "string":
        if not (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)):
            return kql_type, _from_values(col.to_pylist(), kql_type)
        return kql_type, col.cast(pa.string()).fill_null("")
    if kql_type == "timespan":  # time of day
        return kql_type, _from_values([None if v is None else _time_of_day(v) for v in col.to_pylist()], kql_type)
    return kql_type, col.cast(_local_type(kql_type))


def _arrow_time(col: pa.ChunkedArray, kql_type: str) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    t = col.type
    if pa.types.is_date(t):
        return col.cast(pa.timestamp("us")).cast(pa.timestamp("us", tz="UTC"))
    if t.unit == "ns":
        import numpy as np

        ticks = pc.fill_null(col.cast(pa.int64()), 0).to_numpy()
        below = ticks % 1000 != 0
        if below.any():
            raise _below_microsecond(col[int(np.argmax(below))].as_py(), kql_type)
    if kql_type == "timespan":
        return col.cast(pa.duration("us"))
    # Arrow timestamps are UTC instants whatever their zone; a naive one is read as UTC.
    return col.cast(pa.timestamp("us", tz=t.tz)).cast(pa.timestamp("us", tz="UTC"))


def _time_of_day(v: Any) -> Any:
    import datetime as _dt

    return _dt.timedelta(hours=v.hour, minutes=v.minute, seconds=v.second, microseconds=v.microsecond)


# -- as KQL text -----------------------------------------------------------------------------------

def datatable(value: Any) -> str:
    """``datatable(col:type, ...)[cells]`` holding every row of *value*, every cell encoded exactly.

    The same column types and cell rules as :func:`typed_table` (the module docstring), written
    as KQL literals - for the services, whose datetimes and timespans keep KQL's 100 ns ticks.
    The index is not included (``reset_index()`` first to keep it).
    """
    arrow = _arrow_of(value)
    if arrow is not None:
        typed = typed_table(arrow)
        types = [(f.name, f.metadata[b"kql_type"].decode()) for f in typed.schema]
        columns = [[_arrow_cell(v, kql_type) for v in col.to_pylist()]
                   for (_, kql_type), col in zip(types, typed.columns, strict=True)]
    else:
        types = column_types(value)
        columns = []
        for i, (name, kql_type) in enumerate(types):
            try:
                columns.append([_cell(v, kql_type) for v in value.iloc[:, i].tolist()])
            except ParameterError as exc:
                raise ParameterError(f"column {name!r}: {exc.message}") from None
    schema = ", ".join(f"{literals.identifier(name)}:{kql_type}" for name, kql_type in types)
    cells = [c for row in zip(*columns, strict=True) for c in row]
    return f"datatable({schema})[{', '.join(cells)}]"


def _cell(v: Any, kql_type: str) -> str:
    if literals.is_missing(v):
        return literals.literal(None, kql_type)
    return literals.encode(v, kql_type)


def _arrow_cell(v: Any, kql_type: str) -> str:
    if v is None:
        return literals.literal(None, kql_type)
    if kql_type == "dynamic":
        v = json.loads(v, parse_float=Decimal)
    return literals.encode(v, kql_type)
