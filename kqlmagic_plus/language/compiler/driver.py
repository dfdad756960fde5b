"""The compile pipeline and the translation of internal failures into the package's errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kqlmagic_plus.errors import (
    OptionError,
    QueryError,
    QuerySyntaxError,
    TableNotFoundError,
    UnsupportedQueryError,
    caret_excerpt,
)
from kqlmagic_plus.language.compiler import Compiled
from kqlmagic_plus.language.compiler.dialects import DIALECTS, PINNED_NOW
from kqlmagic_plus.language.compiler.syntax import (
    ParseFailure,
    Refusal,
    SemanticError,
    TooDeep,
    UnknownTable,
    check_depth,
    deep,
    parse,
    preprocess,
    too_deep_message,
)
from kqlmagic_plus.language.compiler.types import Schema, canonical

#: Engines a refused construct can be sent to instead.
_ELSEWHERE = ("Log Analytics / Sentinel", "Azure Data Explorer")


def compile_query(query: str, schema: Mapping[str, Sequence[tuple[str, str]]], dialect: str,
                  params: Mapping[str, Any] | None, probe: bool = False, now: Any = None) -> Compiled:
    token = PINNED_NOW.set(now)
    try:
        return _compile_query(query, schema, dialect, params, probe)
    finally:
        PINNED_NOW.reset(token)


def _compile_query(query: str, schema: Mapping[str, Sequence[tuple[str, str]]], dialect: str,
                   params: Mapping[str, Any] | None, probe: bool) -> Compiled:
    d = DIALECTS.get(dialect)
    if d is None:
        raise OptionError(f"unknown SQL dialect {dialect!r}: use 'spark' or 'duckdb'")
    if not isinstance(query, str):
        raise TypeError("query must be a string")
    tables = LazyTables(schema)
    from kqlmagic_plus.language.compiler.emit import emit_sql
    from kqlmagic_plus.language.compiler.lower import Lowerer

    rw = preprocess(query)

    def translate() -> tuple[Any, str]:
        from kqlmagic_plus.language.compiler import probe

        tree = parse(rw.text)
        lw = Lowerer(rw.text, tables, dict(params or {}))
        with probe.dialect(d):
            lowered = lw.query(tree)
        sql = emit_sql(lowered.node, d)
        # Only the sources the statement reads (a let bound and never used is not fetched).
        return lowered, sql, tuple(s for name, s in lw.external.items() if name in sql)

    try:
        lowered, sql, external = deep(translate, check_depth(rw.text))  # deeply nested: with room to recurse
    except TooDeep:
        raise QueryError(too_deep_message(query)) from None
    except ParseFailure as exc:
        p = rw.original_pos(exc.pos)
        raise QuerySyntaxError(exc.message, query, p.line, p.column) from None  # type: ignore[union-attr]
    except Refusal as exc:
        p = rw.original_pos(exc.pos)
        line, col = (p.line, p.column) if p else (None, None)
        other = [] if probe else \
            [n.engine for k, n in DIALECTS.items() if k != dialect and _runs_on(query, schema, k, params)]
        raise UnsupportedQueryError(
            exc.construct,
            d.engine,
            line=line,
            column=col,
            query=query,
            runs_on=(*other, *_ELSEWHERE),
            reason=exc.reason,
        ) from None
    except UnknownTable as exc:
        raise TableNotFoundError(exc.name, tables) from None
    except SemanticError as exc:
        where = ""
        p = rw.original_pos(exc.pos)
        if p is not None:
            where = f" at line {p.line}, column {p.column + 1}\n" + caret_excerpt(query, p.line, p.column)
        raise QueryError(exc.message + where) from None
    columns = [(c.name, c.type) for c in lowered.node.schema.visible]
    return Compiled(sql=sql, columns=columns, render_spec_text=lowered.render, dialect=dialect, external=external)


def _runs_on(
    query: str, schema: Mapping[str, Sequence[tuple[str, str]]], dialect: str, params: Mapping[str, Any] | None
) -> bool:
    try:
        compile_query(query, schema, dialect, params, probe=True)
        return True
    except Exception:
        return False


class LazyTables(Mapping[str, Schema]):
    """The caller's schema, converted table by table on first use (a workspace has hundreds)."""

    def __init__(self, raw: Mapping[str, Sequence[tuple[str, str]]]):
        self._raw = raw
        self._done: dict[str, Schema] = {}

    def __getitem__(self, name: str) -> Schema:
        got = self._done.get(name)
        if got is None:
            got = self._done[name] = _schema(name, self._raw[name])
        return got

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, name: object) -> bool:
        return name in self._raw


def _schema(name: str, cols: Sequence[tuple[str, str]]) -> Schema:
    try:
        return Schema.of((c, canonical(t)) for c, t in cols)
    except ValueError as exc:
        raise OptionError(f"table {name!r}: {exc}") from None
