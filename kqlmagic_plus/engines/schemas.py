"""Reading a connection's schema ``{table: {column: kql_type}}`` out of each service's own answer.

The engines ask (DuckDB's information_schema, Log Analytics' metadata API, ADX's
``.show database schema as json``, Spark's catalog); these functions turn the answers into the one
shape completion and ``%kql --schema`` use. Pure functions of the answer, so each is tested on the
real answer a loopback server gives.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kqlmagic_plus.errors import RemoteError

SchemaMap = dict[str, dict[str, str]]

#: Kusto's CLR type names (``.show database schema`` ``Type``) -> KQL types.
_CLR_TYPES = {
    "system.string": "string", "system.int32": "int", "system.int64": "long", "system.double": "real",
    "system.single": "real", "system.boolean": "bool", "system.sbyte": "bool", "system.datetime": "datetime",
    "system.timespan": "timespan", "system.guid": "guid", "system.object": "dynamic",
    "system.data.sqltypes.sqldecimal": "decimal", "system.decimal": "decimal",
}

#: pandas dtype names (their ``str``) -> KQL types; object columns hold strings most of the time.
_PANDAS_TYPES = (
    ("bool", "bool"), ("int8", "int"), ("int16", "int"), ("int32", "int"), ("uint8", "int"), ("uint16", "int"),
    ("int64", "long"), ("uint32", "long"), ("uint64", "long"), ("float", "real"), ("datetime64", "datetime"),
    ("timedelta", "timespan"), ("string", "string"), ("str", "string"), ("object", "string"),
    ("category", "string"),
)


def from_loganalytics_metadata(payload: Mapping[str, Any]) -> SchemaMap:
    """The metadata API's answer (``GET /v1/workspaces/{id}/metadata``): ``tables[].columns[]``."""
    out: SchemaMap = {}
    for table in payload.get("tables") or []:
        name = table.get("name")
        if not name:
            continue
        out[str(name)] = {str(c["name"]): str(c.get("type") or "") for c in table.get("columns") or [] if c.get("name")}
    return dict(sorted(out.items()))


def from_adx_schema_json(text: str, database: str) -> SchemaMap:
    """``.show database schema as json``: ``Databases.<db>.Tables.<t>.OrderedColumns[]``."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise RemoteError("the cluster's schema answer is not JSON (.show database schema as json)") from None
    dbs = doc.get("Databases") or {}
    db = dbs.get(database) or next((v for k, v in dbs.items() if k.lower() == database.lower()), None)
    if db is None and len(dbs) == 1:
        db = next(iter(dbs.values()))
    out: SchemaMap = {}
    for name, table in ((db or {}).get("Tables") or {}).items():
        cols = {}
        for c in table.get("OrderedColumns") or []:
            kql = c.get("CslType") or _CLR_TYPES.get(str(c.get("Type") or "").lower(), "")
            cols[str(c["Name"])] = str(kql)
        out[str(name)] = cols
    return dict(sorted(out.items()))


def from_adx_entities(rows: Iterable[Mapping[str, Any]], database: str) -> SchemaMap:
    """``.show databases entities``: one row per table, ``CslOutputSchema`` = ``Col:type, Col2:type``."""
    out: SchemaMap = {}
    for row in rows:
        if str(row.get("DatabaseName") or "").lower() != database.lower() or row.get("EntityType") != "Table":
            continue
        cols = {}
        for part in str(row.get("CslOutputSchema") or "").split(","):
            name, _, typ = part.strip().rpartition(":")
            if name:
                cols[name.strip()] = typ.strip()
        out[str(row["EntityName"])] = cols
    return dict(sorted(out.items()))


def kql_type_of_pandas(dtype: Any) -> str:
    text = str(dtype).lower()
    for prefix, kql in _PANDAS_TYPES:
        if text.startswith(prefix):
            return kql
    return "dynamic"


def object_schema(value: Any) -> dict[str, str] | None:
    """Columns of a DataFrame, Arrow table or Result (what the local engine reads by variable name), without
    importing anything the value's own library has not already imported."""
    cls = type(value)
    mod = cls.__module__
    if cls.__name__ == "DataFrame" and mod.startswith("pandas"):
        return {str(c): kql_type_of_pandas(t) for c, t in value.dtypes.items()}
    if cls.__name__ == "DataFrame" and mod.startswith("polars"):
        return {str(c): kql_type_of_pandas(t) for c, t in value.schema.items()}
    if cls.__name__ in ("Table", "RecordBatch") and mod.startswith("pyarrow"):
        from kqlmagic_plus.kqltypes import kql_type_of_arrow

        return {f.name: kql_type_of_arrow(f.type) for f in value.schema}
    if cls.__name__ == "Result" and mod.startswith("kqlmagic_plus"):
        return dict(zip(value.columns, value.kql_types, strict=False))
    return None


def namespace_schemas(namespace: Mapping[str, Any]) -> SchemaMap:
    """The DataFrames (Arrow tables, Results) of a notebook namespace that a local query can read by name."""
    out: SchemaMap = {}
    for name, value in list(namespace.items()):
        if name.startswith("_") or not name.isidentifier():
            continue
        cols = object_schema(value)
        if cols:
            out[name] = cols
    return out
