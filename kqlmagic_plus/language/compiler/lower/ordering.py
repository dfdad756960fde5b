"""Operators on the rows' order and count: sort, top, take, sample, serialize.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.coerce import coerce_to
from kqlmagic_plus.language.compiler.lower.project import extend
from kqlmagic_plus.language.compiler.lower.projection import (
    drop,
    select_with,
)
from kqlmagic_plus.language.compiler.lower.scope import Env, Scope, row_scope
from kqlmagic_plus.language.compiler.syntax import (
    SemanticError,
    pos,
)

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


def sort_keys(lw: Lowerer, node: ir.Node, ordered: list[Any], env: Env) -> tuple[ir.Node, tuple[ir.SortKey, ...]]:
    sc = row_scope(node, env)
    keys: list[ir.SortKey] = []
    extra: list[tuple[str, ir.Expr]] = []
    for oe in ordered:
        e = lw.expr(oe.Expression.Expression, sc)
        if e.type == T.DYNAMIC:
            raise SemanticError("sort by a dynamic value: convert it first (tostring(...), toreal(...))", pos(oe))
        kind = oe.Ordering.OrderKind.text.lower() if oe.Ordering.OrderKind is not None else "desc"
        desc = kind == "desc"
        nulls_first = oe.Ordering.NullsKind.text.lower() == "first" if oe.Ordering.NullsKind is not None else not desc
        if isinstance(e, ir.Col):
            keys.append(ir.SortKey(e.name, desc, nulls_first))
        else:
            h = lw.hidden_name()
            extra.append((h, e))
            keys.append(ir.SortKey(h, desc, nulls_first))
    if extra:
        node = select_with(node, extra)
    return node, tuple(keys)


def sort(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    lw.parameters(c.Parameters)
    node, keys = sort_keys(lw, node, list(c.Expressions), env)
    return ir.Sort(node.schema, node, keys, order=keys)


def top(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    n = coerce_to(lw.expr(c.Expression.Expression, Scope(None, env)), T.LONG, pos(c))
    node, keys = sort_keys(lw, node, [c.ByExpression], env)
    srt = ir.Sort(node.schema, node, keys, order=keys)
    return ir.Limit(srt.schema, srt, n, order=keys)


def take(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    n = coerce_to(lw.expr(c.Expression.Expression, Scope(None, env)), T.LONG, pos(c))
    return ir.Limit(node.schema, node, n, order=node.order)


def sample(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    n = coerce_to(lw.expr(c.Expression.Expression, Scope(None, env)), T.LONG, pos(c))
    h = lw.hidden_name()
    ext = select_with(node, [(h, ir.Call(T.REAL, "rand", ()))])
    srt = ir.Sort(ext.schema, ext, (ir.SortKey(h, False, False),), order=(ir.SortKey(h, False, False),))
    lim = ir.Limit(srt.schema, srt, n, order=srt.order)
    out = drop(lim, {h})
    out.order = None
    return out


def serialize(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    if node.order is None:
        h = lw.hidden_name()
        node = select_with(node, [(h, ir.Call(T.LONG, "__serial", ()))])
        node.order = (ir.SortKey(h, False, False),)
    if c.Expressions:
        return extend(lw, c, node, env)
    return node
