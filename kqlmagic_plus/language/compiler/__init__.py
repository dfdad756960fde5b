"""A KQL compiler: KQL text -> Spark SQL or DuckDB SQL.

    >>> from kqlmagic_plus.language.compiler import compile
    >>> c = compile("T | where a has 'x' | count", {"T": [("a", "string")]}, dialect="spark")
    >>> c.columns
    [('Count', 'long')]

Pipeline: parse (ANTLR, Microsoft's KQL grammar as shipped by duckdb-kql) -> lower to a typed IR
(``ir.py``, ``lower.py``) -> emit one SQL statement through sqlglot (``emit.py``), the KQL semantics
written once over per-dialect primitives (``dialects.py``). Constructs it does not translate are
refused with their name and position (``UnsupportedQueryError``), never approximated.

The emitted SQL expects the session time zone to be UTC (Spark: ``spark.sql.session.timeZone``,
DuckDB: ``TimeZone``). Table columns are read as: datetime -> TIMESTAMP, timespan -> INTERVAL,
dynamic -> JSON text (a string column) or VARIANT/JSON; results come back with timespans as
INTERVAL and dynamic values as JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Compiled", "compile"]


@dataclass(frozen=True)
class Compiled:
    sql: str
    #: The result's columns and their KQL types, in order.
    columns: list[tuple[str, str]]
    #: The query's trailing ``render`` operator, as written (charts read it), or None.
    render_spec_text: str | None = None
    dialect: str = "spark"
    warnings: list[str] = field(default_factory=list)


def compile(
    query: str,
    schema: Mapping[str, Sequence[tuple[str, str]]],
    dialect: str = "spark",
    params: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> Compiled:
    """Compile *query* against *schema* (table -> [(column, KQL type)]) to one SQL statement.

    Raises ``QuerySyntaxError`` (does not parse), ``UnsupportedQueryError`` (a construct this
    compiler, or this dialect, does not translate), ``TableNotFoundError`` and ``QueryError``
    (a semantic error: unknown column, type mismatch). *now* pins ``now()`` / ``ago()`` to that instant
    (the cache re-runs a relative query at the instant it keys it by).
    """
    from kqlmagic_plus.language.compiler.driver import compile_query

    return compile_query(query, schema, dialect, params, now=now)
