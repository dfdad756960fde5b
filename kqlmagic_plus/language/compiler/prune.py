"""Spark: the columns of each table a query reads, so that its scan converts only those.

A table's scan writes every column with its conversion (a dynamic column's JSON text through
``try_parse_json``, a timespan's text to microseconds). Spark drops the columns nothing reads only when it
optimizes; before that it analyses every alias and every parse of the scan: the ~80 columns and 8 dynamic
ones of the SigninLogs lake view took 2.8x the planning time of the hand-written SQL over the same view.
Reading only the columns the query uses changes no answer (what no operator reads cannot reach a row).

The analysis is conservative: it walks the operators from the result down and knows the few that pass on
or read named columns (select, extend, where, take, sort, summarize). Below any other operator (join,
union, mv-expand, make-series, graph operators, a subquery ...) every column of its inputs counts as read,
and a table read through one of them anywhere keeps all its columns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler.types import Schema

#: Needed columns of a node's output: a set of names, or None for all of them.
Need = frozenset[str] | None


def is_extend(node: ir.Select) -> bool:
    """*node* keeps every input column as it is, in order, then adds columns: emitted as ``*, new ...``."""
    cols = [c.name for c in node.input.schema]
    keep = len(cols)
    return bool(keep) and len(node.items) > keep and all(
        isinstance(e, ir.Col) and e.name == name == c for (name, e), c in zip(node.items, cols, strict=False))


def scan_columns(root: ir.Node) -> dict[int, frozenset[str]]:
    """``id(scan) -> the column names read from it`` for each :class:`ir.Scan` under *root* whose columns
    are not all read; a scan absent from the answer keeps every column."""
    order = _topological(root)
    need: dict[int, Need] = {id(root): _names(root.schema.visible) | _order_cols(root)}
    out: dict[int, frozenset[str]] = {}
    for node in order:
        have = need.get(id(node))
        if have is not None:
            have = have | _order_cols(node)
        if type(node) is ir.Scan:
            if have is not None and len(have & set(node.schema.names())) < len(node.schema):
                out[id(node)] = have
            continue
        main = getattr(node, "input", None)
        for child in _children(node):
            got = _input_need(node, have) if child is main else None
            prev = need.get(id(child), frozenset())
            need[id(child)] = None if got is None or prev is None else prev | got
    return out


def _input_need(node: ir.Node, have: Need) -> Need:
    """What *node* reads of its input, given what is read of its output (only the operators known here)."""
    kind = type(node)
    if kind is ir.Select:
        assert isinstance(node, ir.Select)
        if is_extend(node):
            if have is None:
                return None
            n_in = len(node.input.schema)
            new = node.items[n_in:]
            return (have - {name for name, _ in new}) | _used(e for _, e in new) | _order_cols(node.input)
        # Every item is written whether read or not: each reads its columns.
        return _used(e for _, e in node.items) | _order_cols(node.input)
    if kind is ir.Filter:
        assert isinstance(node, ir.Filter)
        return None if have is None else have | _used([node.predicate]) | _order_cols(node.input)
    if kind in (ir.Limit, ir.Sort):
        return None if have is None else have | _order_cols(node.input)  # type: ignore[attr-defined]
    if kind is ir.Aggregate:
        assert isinstance(node, ir.Aggregate)
        exprs: list[ir.Expr] = [e for _, e in node.keys]
        for _, a in node.aggs:
            if isinstance(a, ir.ArgPick):
                exprs += [a.by, *(e for _, e in a.columns)]
            else:
                exprs.append(a)
        return _used(exprs) | _order_cols(node.input)
    return None


def _used(exprs: Any) -> frozenset[str]:
    out: set[str] = set()
    for e in exprs:
        out |= ir.columns_used(e)
    return frozenset(out)


def _names(cols: Any) -> frozenset[str]:
    return frozenset(c.name for c in cols)


def _order_cols(node: ir.Node) -> frozenset[str]:
    return frozenset(k.column for k in node.order or ())


def _children(node: ir.Node) -> list[ir.Node]:
    """Every node *node* holds: its inputs and any other (subqueries in expressions, a lowering's extras),
    once per place it is held."""
    found: list[ir.Node] = []
    for f in dataclasses.fields(node):
        if f.name not in ("schema", "order"):
            found.extend(_nodes_in(getattr(node, f.name)))
    return found


def _nodes_in(value: Any) -> Iterator[ir.Node]:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, ir.Node):
            yield v
        elif isinstance(v, (str, int, float, bool, Schema)) or v is None:
            continue
        elif isinstance(v, (list, tuple, set, frozenset)):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            stack.extend(getattr(v, f.name) for f in dataclasses.fields(v))


def _topological(root: ir.Node) -> list[ir.Node]:
    """The nodes under *root*, each before every node it holds (a node held twice, a ``let``, comes once)."""
    post: list[ir.Node] = []
    seen = {id(root)}
    stack: list[tuple[ir.Node, Iterator[ir.Node]]] = [(root, iter(_children(root)))]
    while stack:
        node, it = stack[-1]
        child = next(it, None)
        if child is None:
            stack.pop()
            post.append(node)
        elif id(child) not in seen:
            seen.add(id(child))
            stack.append((child, iter(_children(child))))
    return post[::-1]
