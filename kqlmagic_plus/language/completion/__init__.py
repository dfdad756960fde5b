"""KQL completion: query text, a cursor and a schema in; the candidates for the word at the cursor out.

Pure (no IPython, no engine): the magics give it the cell text and the connection's schema
``{table: {column: kql_type}}``; :mod:`.scope` reads the unfinished query, :mod:`.vocabulary` holds the
words. Tolerant by design: the text being typed is rarely a valid query, and a completion that
raises is worse than one that offers a little less.

    >>> complete("SigninLogs | where Us", 21, {"SigninLogs": {"UserPrincipalName": "string"}}).texts
    ['UserPrincipalName']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kqlmagic_plus.language.completion import vocabulary as V
from kqlmagic_plus.language.completion.scope import (
    Columns,
    Element,
    Group,
    Schema,
    lookup,
    pipeline_columns,
    read,
    right_side,
    source_columns,
    split_at_word,
    split_items,
)
from kqlmagic_plus.language.lexer import tokenize

__all__ = ["Candidate", "Completion", "complete"]


@dataclass(frozen=True)
class Candidate:
    text: str
    #: table | column | operator | function | aggregate | keyword | render-kind | render-property | value
    kind: str
    #: A type (columns), a signature (functions) or a description (operators, keywords).
    detail: str = ""


@dataclass(frozen=True)
class Completion:
    """Candidates replacing ``text[start:end]`` (the part of the word before the cursor)."""

    start: int
    end: int
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def texts(self) -> list[str]:
        return [c.text for c in self.candidates]


def complete(text: str, cursor: int, schema: Schema | None = None) -> Completion:
    """The candidates for the word at *cursor* in the KQL *text*, given the tables of *schema*."""
    schema = schema or {}
    cursor = max(0, min(cursor, len(text)))
    before = text[:cursor]
    prefix = _prefix(before)
    if prefix is None:  # inside a string literal or a comment
        return Completion(cursor, cursor)
    start = cursor - len(prefix)
    try:
        candidates = _candidates(before[:start], prefix, schema)
    except (IndexError, KeyError, AttributeError, TypeError, ValueError):
        candidates = []  # unfinished text the reader did not foresee: offer nothing rather than fail
    return Completion(start, cursor, _filter(candidates, prefix))


def _prefix(before: str) -> str | None:
    """The part of the word being typed, or None when the cursor is in a string or a comment."""
    toks = tokenize(before)
    if not toks:
        return ""
    last = toks[-1]
    if last.kind == "comment":
        return None
    if last.kind == "string":
        probe = tokenize(before + "z")
        return None if probe[-1].kind == "string" and probe[-1].start == last.start else ""
    if last.kind == "ident":
        return last.text
    if last.kind == "punct" and last.text == "-" and len(toks) >= 2 and toks[-2].kind == "ident" \
            and toks[-2].end == last.start and toks[-2].text.lower() in ("project", "mv", "make", "parse", "top"):
        return toks[-2].text + "-"  # `project-` before the rest of `project-away`
    return ""


def _filter(candidates: Iterable[Candidate], prefix: str) -> list[Candidate]:
    low = prefix.lower()
    seen: set[str] = set()
    out = []
    for c in candidates:
        if c.text in seen or not c.text.lower().startswith(low):
            continue
        seen.add(c.text)
        out.append(c)
    return out


def _candidates(before: str, prefix: str, schema: Schema) -> list[Candidate]:
    reading = read(before, schema)
    tables: Schema = {**schema, **reading.lets}
    frames = reading.frames
    # The innermost subquery (or the statement) whose pipeline the cursor is in, and the expression
    # brackets (function arguments, `with (...)`) opened inside its current operator.
    pipe_at = max(i for i, f in enumerate(frames) if i == 0 or f.is_tabular())
    pipeline = frames[pipe_at]
    inner = frames[pipe_at + 1:]
    segments = pipeline.segments
    seg = segments[-1]
    if len(segments) == 1 and not inner:
        return _statement(seg, prefix, tables, sub=pipe_at > 0)
    if len(segments) == 1:
        # Arguments of something in the source part (`print f(`, `datatable(`): columns are none yet.
        return _expression(seg, inner, {}, tables, op="")
    cols = pipeline_columns(segments[:-1], tables)
    if not seg:
        return _operators()
    op = seg[0].text.lower() if not isinstance(seg[0], Group) else ""
    rest = seg[1:]
    if not rest and not inner and seg[0].kind == "ident" and op not in V.OPERATORS:
        return _operators()
    here = _OPERATOR_CONTEXTS.get(op)
    if here is not None:
        found = here(rest, inner, cols, tables)
        if found is not None:
            return found
    return _expression(seg, inner, cols, tables, op=op)


# -- statement start -----------------------------------------------------------------------------------


def _statement(seg: list[Element], prefix: str, tables: Schema, *, sub: bool) -> list[Candidate]:
    if not seg:
        return _tables(tables) + ([] if sub else _words(V.STATEMENT_STARTS, "keyword"))
    head = seg[0].text.lower()
    if head == "let":
        if len(seg) >= 3 and seg[2].text == "=":
            return _statement(seg[3:], prefix, tables, sub=True) if len(seg) == 3 else \
                _expression(seg[3:], [], {}, tables, op="")
        return []  # the name being defined
    if head in ("union", "find", "search"):
        last = seg[-1].text
        if last in ("kind", "withsource", "isfuzzy", "=", "with"):
            return []
        return _tables(tables)
    if head == "print":
        return _columns_and_functions({}, aggregates=False)
    return []


# -- per operator -----------------------------------------------------------------------------------------


def _render(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    if inner:
        props = inner[0]
        if props.before is not None and props.before.text.lower() == "with":
            item = split_items(props.segments[0] + [_END])[-1][:-1]
            if len(item) >= 2 and item[1].text == "=":
                name = item[0].text.lower()
                if name in V.RENDER_COLUMN_PROPERTIES:
                    return _columns(cols)
                return [Candidate(v, "value", name) for v in V.RENDER_ENUMS.get(name, ())]
            return [Candidate(p, "render-property", "") for p in V.RENDER_PROPERTIES]
        return []
    if not rest:
        return [Candidate(k, "render-kind", "chart") for k in V.RENDER_KINDS]
    if len(rest) == 1:
        return [Candidate("with", "keyword", "render properties: with (title=..., kind=...)")]
    return []


def _join(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    if inner:
        return None  # inside a right-side subquery that is no pipeline yet, or a hint's brackets
    before_on, on = split_at_word(rest, "on")
    if on is not None:
        right = right_side(rest, tables)
        if on and on[-1].text == "." and len(on) >= 2 and on[-2].text in ("$left", "$right"):
            return _columns(cols if on[-2].text == "$left" else right)
        if on and on[-1].text in ("$left", "$right"):
            return []
        keys = [Candidate(c, "column", t) for c, t in {**cols, **right}.items()]
        return [*keys, Candidate("$left", "keyword", "the left side"), Candidate("$right", "keyword", "the right side")]
    if before_on and before_on[-1].text == "=" and len(before_on) >= 2 and before_on[-2].text == "kind":
        return [Candidate(k, "keyword", "join kind") for k in V.JOIN_KINDS]
    if before_on and (isinstance(before_on[-1], Group) or (before_on[-1].kind == "ident" and before_on[-1].text
                                                              not in ("kind", *V.JOIN_KINDS))):
        return [Candidate("on", "keyword", "the key columns")]
    return [Candidate("kind", "keyword", "kind=inner|leftouter|..."), *_tables(tables)]


def _union(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    if inner:
        return None
    return _tables(tables)


def _summarize(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    aggs, by = split_at_word(rest, "by")
    if by is not None:
        return _expression(by, inner, cols, tables, op="summarize-by")
    if inner:
        return _expression(aggs, inner, cols, tables, op="summarize")
    last = aggs[-1] if aggs else None
    if last is None or last.text in (",", "="):
        return _aggregates() + _columns(cols)
    if isinstance(last, Group) or last.kind in ("ident", "number"):
        return [Candidate("by", "keyword", "group by columns")]
    return _aggregates()


def _sort(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    _, by = split_at_word(rest, "by")
    if by is None:
        return [Candidate("by", "keyword", "the sort columns")]
    if not inner and by and _is_operand(by[-1]):
        return _words(V.SORT_WORDS, "keyword")
    return _expression(by, inner, cols, tables, op="sort")


def _top(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    if not rest:
        return []  # the row count comes first
    return _sort(rest[1:], inner, cols, tables)


def _names_only(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    if inner:
        return None
    return _columns(cols)


def _take(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    return []


def _evaluate(rest: list[Element], inner: list[Group], cols: Columns, tables: Schema) -> list[Candidate] | None:
    if not rest:
        return [Candidate(p, "function", "plugin") for p in V.EVALUATE_PLUGINS]
    return None


_OPERATOR_CONTEXTS = {
    "render": _render, "join": _join, "lookup": _join, "union": _union, "summarize": _summarize,
    "sort": _sort, "order": _sort, "top": _top, "project-away": _names_only, "project-keep": _names_only,
    "project-reorder": _names_only, "take": _take, "limit": _take, "count": _take, "getschema": _take,
    "as": _take, "evaluate": _evaluate,
}


# -- expressions -----------------------------------------------------------------------------------------


class _EndMarker:
    text = "\0"
    kind = "punct"


_END = _EndMarker()


def _expression(seg: list[Element], inner: list[Group], cols: Columns, tables: Schema, *,
                op: str) -> list[Candidate]:
    """Inside an operator's expression (or a function's arguments)."""
    elements = inner[-1].segments[-1] if inner else seg
    if inner and inner[-1].opener == "[":
        return []  # an index or a datatable's rows
    if op == "extend":
        cols = {**cols, **_defined_so_far(seg[1:], cols)}
    last = elements[-1] if elements else None
    if last is not None and _is_operand(last) and not (len(elements) == 1 and last is seg[0] and not inner):
        return _words(V.EXPRESSION_OPERATORS, "keyword")
    if last is not None and last.text in ("in", "!in", "in~", "has_any", "has_all"):
        return []  # a list or a subquery follows
    # Aggregates where an aggregation starts; inside an aggregate's brackets, its argument (columns, scalars).
    return _columns_and_functions(cols, aggregates=op == "summarize" and not inner)


def _defined_so_far(items_part: list[Element], cols: Columns) -> Columns:
    from kqlmagic_plus.language.completion.scope import expression_type

    out: Columns = {}
    for item in split_items(items_part)[:-1]:
        if len(item) >= 2 and item[0].kind == "ident" and item[1].text == "=":
            out[item[0].text] = expression_type(item[2:], cols)
    return out


def _is_operand(el: Element) -> bool:
    """An element after which an expression is complete (a column, a literal, a closed bracket)."""
    if isinstance(el, Group):
        return el.closed
    if el.kind in ("string", "number"):
        return True
    return el.kind == "ident" and el.text.lower() not in _NOT_OPERANDS


_NOT_OPERANDS = frozenset({*V.EXPRESSION_OPERATORS, *V.OPERATORS, "by", "on", "with", "not", "kind", "of", "to",
                           "asc", "desc"})


# -- candidate lists -------------------------------------------------------------------------------------


def _tables(tables: Schema) -> list[Candidate]:
    return [Candidate(t, "table", f"{len(cols)} columns") for t, cols in sorted(tables.items())]


def _columns(cols: Columns) -> list[Candidate]:
    return [Candidate(c, "column", t) for c, t in cols.items()]


def _operators() -> list[Candidate]:
    return _words(V.OPERATORS, "operator")


def _aggregates() -> list[Candidate]:
    _, aggregates = V.functions()
    return [Candidate(n, "aggregate", sig) for n, sig in sorted(aggregates.items())]


def _columns_and_functions(cols: Columns, *, aggregates: bool) -> list[Candidate]:
    scalars, aggs = V.functions()
    out = _columns(cols)
    if aggregates:
        out += [Candidate(n, "aggregate", sig) for n, sig in sorted(aggs.items())]
    out += [Candidate(n, "function", sig) for n, sig in sorted(scalars.items())]
    return out


def _words(table: Mapping[str, str], kind: str) -> list[Candidate]:
    return [Candidate(w, kind, d) for w, d in table.items()]


def table_columns(schema: Schema, name: str) -> Columns | None:
    """The columns of table *name* (case-insensitive), for callers outside completion."""
    hit = lookup(schema, name)
    return dict(hit) if hit is not None else None


__all__ += ["source_columns", "table_columns"]
