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
                 notes: list[str]) -> tuple[list[tuple[str, str]], dict[str, str], list[str]]:
    """*table*'s columns: its package schema plus the columns *checks* found beyond it, named apart.

    Returns ``(schema, keys, warnings)``: [(column, KQL type)], each column name distinct ignoring
    case (see :func:`name_apart`); the JSON key each renamed column reads; and a warning per group of
    names that differ only in case. A table with no package schema gets its files' columns,
    remembered in *inferred* (so the note saying so, added to *notes*, comes once).
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
        by_key = [("TimeGenerated", "datetime"), ("Type", "string")]
        by_key += [(c, t or "string") for c, t in extra.items() if c not in ("TimeGenerated", "Type")]
    else:
        by_key = base + [(c, t or "string") for c, t in extra.items()]
    schema, keys = name_apart(by_key)
    names = {key: name for name, key in keys.items()}
    if not base:
        if table not in inferred:
            notes.append(f"{table}: not in the package's table schemas; columns taken from its files "
                         f"({len(schema)} columns)")
        inferred[table] = schema
    else:
        for col, kt in extra.items():
            shown = col if col not in names else f"{col} (read as {names[col]})"
            notes.append(f"{table}: column {shown} (in {sources[col]} file(s)) is not in the table schema; "
                         f"read as {kt or 'string'}")
    return schema, keys, _rename_warnings(table, [k for k, _ in by_key], names)


def name_apart(columns: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Give JSON keys that differ only in case distinct column names: KQL tells ``ProcessID`` from
    ``ProcessId``, DuckDB and Spark do not.

    The first spelling keeps its name (a package schema column comes first, so its spelling always
    wins); each later one becomes ``<spelling>_<n>``, the smallest n >= 1 whose name no other column
    holds, ignoring case (``ProcessId`` -> ``ProcessId_1``). Returns the renamed [(column, type)] and
    {renamed column: the JSON key it reads}.
    """
    used = {c.lower() for c, _ in columns}
    first: set[str] = set()
    out = []
    keys: dict[str, str] = {}
    for key, kt in columns:
        low = key.lower()
        if low not in first:
            first.add(low)
            out.append((key, kt))
            continue
        n = 1
        while f"{key}_{n}".lower() in used:
            n += 1
        name = f"{key}_{n}"
        used.add(name.lower())
        keys[name] = key
        out.append((name, kt))
    return out, keys


def _rename_warnings(table: str, keys: list[str], names: dict[str, str]) -> list[str]:
    if not names:
        return []
    groups: dict[str, list[str]] = {}
    for key in keys:
        groups.setdefault(key.lower(), []).append(key)
    out = []
    for spellings in groups.values():
        if len(spellings) < 2:
            continue
        listed = ", ".join(spellings[:-1]) + " and " + spellings[-1]
        renamed = ", ".join(f"{k} as {names[k]}" if i else f"{k} is read as {names[k]}"
                            for i, k in enumerate(spellings[1:]))
        out.append(f"{table}: columns {listed} differ only in case; {renamed} (DuckDB and Spark names ignore "
                   f"case: in a query {spellings[1]} reads {spellings[0]})")
    return out


def held(schema: list[tuple[str, str]], checks: Iterable[FileCheck], keys: dict[str, str] | None = None) -> list[str]:
    """The schema columns the files of *checks* hold (TimeGenerated and Type always); *keys*: the
    JSON key of each renamed column."""
    keys = keys or {}
    seen = {"TimeGenerated", "Type"}
    for chk in checks:
        seen.update(chk.columns)
    return [c for c, _ in schema if keys.get(c, c) in seen]


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
