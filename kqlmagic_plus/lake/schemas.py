"""Table schemas: the package's (real Log Analytics schemas), and those inferred from a lake's files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import TableNotFoundError

if TYPE_CHECKING:
    from kqlmagic_plus.lake.checks import FileCheck

_KQL_TO_DUCKDB = {"bool": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "real": "DOUBLE",
                  "decimal": "DECIMAL(38, 18)", "string": "VARCHAR", "datetime": "TIMESTAMPTZ",
                  "timespan": "INTERVAL", "dynamic": "JSON", "guid": "VARCHAR"}
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")


@cache
def package_schemas() -> dict[str, list[tuple[str, str]]]:
    """Table -> [(column, KQL type)] for the tables the package knows (real Log Analytics schemas)."""
    text = resources.files("kqlmagic_plus").joinpath("data/la_table_schemas.json").read_text(encoding="utf-8")
    return {name: [(c, t) for c, t in cols] for name, cols in json.loads(text)["tables"].items()}


def schema_for(table: str) -> list[tuple[str, str]]:
    """The package schema of *table* (case-insensitive name); TableNotFoundError if it has none."""
    schemas = package_schemas()
    if table in schemas:
        return list(schemas[table])
    for name, cols in schemas.items():
        if name.lower() == table.lower():
            return list(cols)
    raise TableNotFoundError(table, schemas)


def duckdb_type(kql_type: str) -> str:
    return _KQL_TO_DUCKDB[kql_type]


# -- inferred from the files -------------------------------------------------------------------------


def table_schema(table: str, checks: Iterable[FileCheck | None], inferred: dict[str, list[tuple[str, str]]],
                 notes: list[str]) -> list[tuple[str, str]]:
    """[(column, KQL type)] of *table*: its package schema plus the columns *checks* found beyond it.

    A table with no package schema gets its files' columns, remembered in *inferred* (so the note
    saying so, added to *notes*, comes once).
    """
    try:
        base = schema_for(table)
    except TableNotFoundError:
        base = []
    cols = dict(base)
    extra: dict[str, str] = {}
    sources: dict[str, int] = {}
    for chk in checks:
        if chk is None or chk.skip:
            continue
        for col, kt in chk.columns.items():
            if col in cols:
                continue
            sources[col] = sources.get(col, 0) + 1
            prev = extra.get(col)
            extra[col] = kt if prev is None or prev == kt or prev == "" else _widen(prev, kt)
    if not base:
        # No package schema: the files' columns are the schema; TimeGenerated and Type always exist.
        schema = [("TimeGenerated", "datetime"), ("Type", "string")]
        schema += [(c, t or "string") for c, t in extra.items() if c not in ("TimeGenerated", "Type")]
        if table not in inferred:
            notes.append(f"{table}: not in the package's table schemas; columns taken from its files "
                         f"({len(schema)} columns)")
        inferred[table] = schema
        return schema
    for col, kt in extra.items():
        notes.append(f"{table}: column {col} (in {sources[col]} file(s)) is not in the table schema; "
                     f"read as {kt or 'string'}")
    return base + [(c, t or "string") for c, t in extra.items()]


def held(schema: list[tuple[str, str]], checks: Iterable[FileCheck]) -> list[str]:
    """The schema columns the files of *checks* hold (TimeGenerated and Type always)."""
    seen = {"TimeGenerated", "Type"}
    for chk in checks:
        seen.update(chk.columns)
    return [c for c, _ in schema if c in seen]


def add_columns(columns: dict[str, str], rec: dict) -> None:
    """Note the keys of *rec* not seen yet, with the KQL type their value suggests ("" for null)."""
    for k, v in rec.items():
        if k not in columns or (not columns[k] and v is not None):
            columns[k] = "" if v is None else _infer_kql(v)


def _infer_kql(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, dict | list):
        return "dynamic"
    if isinstance(value, str) and "T" in value and ISO.match(value) and len(value) > 10:
        return "datetime"
    return "string"


def _widen(a: str, b: str) -> str:
    if {a, b} <= {"long", "real"}:
        return "real"
    if "" in (a, b):
        return a or b
    return "string"
