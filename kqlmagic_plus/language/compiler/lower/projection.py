"""Building projections over a node: add, drop or replace columns while keeping the rows' order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler.catalog import lookup_scalar
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


class OrderLost(Exception):
    pass


def is_window(e: ir.Expr) -> bool:
    if isinstance(e, ir.Call):
        f = lookup_scalar(e.fn)
        return bool(f and f.window)
    return False


def finish_select(node: ir.Node, items: list[tuple[str, ir.Expr]]) -> ir.Node:
    # Expressions may refer to columns defined earlier in the same operator: inline them.
    resolved: list[tuple[str, ir.Expr]] = []
    defined: dict[str, ir.Expr] = {}
    for name, e in items:
        e2 = substitute(e, defined) if defined else e
        resolved.append((name, e2))
        if not (isinstance(e2, ir.Col) and e2.name == name):
            defined[name] = e2
    out = Schema([Column(n, e.type) for n, e in resolved])
    return ir.Select(out, node, resolved, order=node.order)


def select_with(node: ir.Node, extra: list[tuple[str, ir.Expr]]) -> ir.Node:
    items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema] + extra
    return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items, order=node.order)


def drop(node: ir.Node, names: set[str]) -> ir.Node:
    items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema if col.name not in names]
    return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items, order=node.order)


def keep_order(node: ir.Node, items: list[tuple[str, ir.Expr]]) -> list[tuple[str, ir.Expr]]:
    """Carry the sort-key columns a projection drops, as hidden columns, while the rows are ordered."""
    if node.order is None:
        return items
    have = {n for n, _ in items}
    for key in node.order:
        if key.column not in have:
            col = node.schema.get(key.column)
            if col is None:
                continue
            if col.hidden:
                items.append((key.column, ir.Col(col.type, key.column)))
            else:
                raise OrderLost(key.column)
    return items


def project_items(lw: Lowerer, node: ir.Node, items: list[tuple[str, ir.Expr]]) -> ir.Node:
    order = node.order
    try:
        items = keep_order(node, items)
    except OrderLost:
        # A visible sort key was projected away: carry a hidden copy under a new name.
        renames: dict[str, str] = {}
        carried = []
        for key in node.order or ():
            if key.column not in {n for n, _ in items}:
                col = node.schema.get(key.column)
                assert col is not None
                h = lw.hidden_name()
                renames[key.column] = h
                carried.append((h, ir.Col(col.type, key.column)))
        items = items + carried
        order = tuple(ir.SortKey(renames.get(k.column, k.column), k.desc, k.nulls_first) for k in node.order or ())
    sel = finish_select(node, items)
    sel.order = order
    return sel


def substitute(e: ir.Expr, defs: dict[str, ir.Expr]) -> ir.Expr:
    if isinstance(e, ir.Col) and e.name in defs:
        return defs[e.name]
    if isinstance(e, ir.Call):
        return ir.Call(e.type, e.fn, tuple(substitute(a, defs) for a in e.args))
    if isinstance(e, ir.Agg):
        return ir.Agg(e.type, e.fn, tuple(substitute(a, defs) for a in e.args))
    if isinstance(e, ir.InSubquery):
        return ir.InSubquery(e.type, substitute(e.expr, defs), e.node, e.negated, e.ci)
    return e
