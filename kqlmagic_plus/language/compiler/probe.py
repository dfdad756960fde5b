"""Reading data at compile time, for the few operators whose output columns depend on it.

``evaluate bag_unpack(col)`` with no output schema has one column per key its bags hold: a SQL statement's
columns are fixed before it reads a row, so the engine first runs the part of the query before the plugin and
reads the bags' keys. An engine that can read rows says how (:func:`reading_rows`, around its compile call);
without a reader the operator is refused with the schema form to use, as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

#: Runs one SQL statement of the current dialect and returns its first column's values.
Reader = Callable[[str], list[Any]]

_READER: ContextVar[Reader | None] = ContextVar("kqlc_reader", default=None)
_DIALECT: ContextVar[Any] = ContextVar("kqlc_probe_dialect", default=None)
#: Set by :func:`watching`: a compilation that read rows gets a mark here (its SQL depends on the data).
_READ: ContextVar[list[bool] | None] = ContextVar("kqlc_probe_read", default=None)

#: At most this many rows are read to find the columns (more is refused: the schema form says them).
MAX_ROWS = 100_000


@contextmanager
def reading_rows(reader: Reader | None) -> Iterator[None]:
    """Let the compilations inside read rows with *reader*."""
    token = _READER.set(reader)
    try:
        yield
    finally:
        _READER.reset(token)


@contextmanager
def dialect(d: Any) -> Iterator[None]:
    token = _DIALECT.set(d)
    try:
        yield
    finally:
        _DIALECT.reset(token)


@contextmanager
def watching() -> Iterator[list[bool]]:
    """A list that is non-empty after the compilations inside read rows through the reader."""
    box: list[bool] = []
    token = _READ.set(box)
    try:
        yield box
    finally:
        _READ.reset(token)


def _mark() -> None:
    box = _READ.get()
    if box is not None:
        box.append(True)


class TooManyRows(Exception):
    pass


def dynamic_values(node: Any, column: str) -> list[Any] | None:
    """The values of dynamic *column* of IR *node*'s rows, or None when no reader is set.

    Raises :class:`TooManyRows` past :data:`MAX_ROWS`."""
    reader, d = _READER.get(), _DIALECT.get()
    if reader is None or d is None or _reads_external(node):  # its table is registered only when the SQL runs
        return None
    from sqlglot import exp

    from kqlmagic_plus.language.compiler.emit import emit_sql

    inner = emit_sql(node, d)
    col = exp.column(exp.to_identifier(column, quoted=True)).sql(dialect=d.name)
    _mark()
    texts = reader(f"SELECT {col} FROM ({inner}) AS kqlc_probe LIMIT {MAX_ROWS + 1}")
    if len(texts) > MAX_ROWS:
        raise TooManyRows
    out = []
    for t in texts:
        try:
            out.append(json.loads(t) if isinstance(t, str) else t)
        except ValueError:
            out.append(None)
    return out


#: KQL types whose values come back from a reader as themselves (JSON text for dynamic).
_PLAIN = {"string", "long", "int", "real", "bool", "dynamic"}


def constant_scalar(node: Any, column: Any) -> Any:
    """``toscalar()`` of a subquery that reads no table, as a literal, on Spark (which evaluates no subquery
    inside an array function: ``base64_encode_fromarray(toscalar(print ...))``); None to keep the subquery.
    Only the dialects that need it read it: DuckDB runs the subquery where it stands."""
    from kqlmagic_plus.language.compiler import ir

    reader, d = _READER.get(), _DIALECT.get()
    if reader is None or d is None or d.name != "spark" or column.type not in _PLAIN or _reads_a_table(node):
        return None
    from sqlglot import exp

    from kqlmagic_plus.language.compiler.emit import emit_sql

    col = exp.column(exp.to_identifier(column.name, quoted=True)).sql(dialect=d.name)
    _mark()
    got = reader(f"SELECT {col} FROM ({emit_sql(node, d)}) AS kqlc_probe LIMIT 1")
    value = got[0] if got else None
    if column.type == "dynamic" and isinstance(value, str):
        value = json.loads(value)
    if column.type == "string" and value is None:
        value = ""
    return ir.Lit(column.type, value)


def _reads_a_table(node: Any) -> bool:
    from kqlmagic_plus.language.compiler import ir

    if isinstance(node, ir.Scan):
        return True
    return any(_reads_a_table(x) for x in node.inputs())


def _reads_external(node: Any) -> bool:
    from kqlmagic_plus.language.compiler import ir

    return isinstance(node, ir.External) or any(_reads_external(x) for x in node.inputs())


#: At most this many distinct values become columns (``evaluate pivot``); more is refused.
MAX_VALUES = 1_000


def distinct_values(node: Any, column: str) -> list[Any] | None:
    """The distinct values of *column* of IR *node*'s rows (nulls included), or None when no reader is set.

    Raises :class:`TooManyRows` past :data:`MAX_VALUES` values."""
    reader, d = _READER.get(), _DIALECT.get()
    if reader is None or d is None or _reads_external(node):  # its table is registered only when the SQL runs
        return None
    from sqlglot import exp

    from kqlmagic_plus.language.compiler.emit import emit_sql

    col = exp.column(exp.to_identifier(column, quoted=True)).sql(dialect=d.name)
    _mark()  # the SQL depends on the data: never from the compile cache
    got = reader(f"SELECT DISTINCT {col} FROM ({emit_sql(node, d)}) AS kqlc_probe LIMIT {MAX_VALUES + 1}")
    if len(got) > MAX_VALUES:
        raise TooManyRows
    return got
