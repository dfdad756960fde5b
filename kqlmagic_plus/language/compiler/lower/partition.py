"""``partition by Column ( top N by Expr )``: the first N rows of each value of Column.

The partition operator runs its subquery once per value of the key column and returns the union of the
results. Only the subquery that is one ``top`` is translated: it is exactly a row number over the key in the
``top``'s order, kept where it is at most N (the same window ``top`` uses inside ``mv-apply``). Any other
subquery, and the form whose subquery names its own source (``{ ... }``), is refused by name, so nothing runs
with a meaning the reference does not give it. Kusto's default (legacy) strategy stops with an error past 64
key values; here every strategy answers as ``native`` does, which the reference says gives the same result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.coerce import coerce_to
from kqlmagic_plus.language.compiler.lower.ordering import sort_keys
from kqlmagic_plus.language.compiler.lower.projection import drop
from kqlmagic_plus.language.compiler.lower.scope import Env, Scope
from kqlmagic_plus.language.compiler.parsetree import collapse, rule
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


def partition(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    where = pos(c)
    body = c.SubExpressionBody
    if body is None or getattr(c, "InClause", None) is not None:
        raise Refusal("partition with a subquery that names its own source ({ ... })", where)
    sub = body.SubExpression
    ops = [sub.Expression, *[p.Operator for p in (sub.PipedOperators or [])]]
    top = collapse(ops[0]) if len(ops) == 1 else None
    if top is None or rule(top) != "TopOperator":
        raise Refusal("partition with a subquery other than one top operator", where)
    key = c.ByExpression.getText()
    col = node.schema.get(key)
    if col is None:
        raise SemanticError(f"no column named {key!r} to partition by", pos(c.ByExpression))
    if col.type == T.DYNAMIC:
        raise SemanticError("partition by a dynamic value: convert it first (tostring(...))", pos(c.ByExpression))
    count = coerce_to(lw.expr(top.Expression.Expression, Scope(None, env)), T.LONG, pos(top))
    before = set(node.schema.names())
    inp, keys = sort_keys(lw, node, [top.ByExpression], env)
    args: list[ir.Expr] = [ir.Col(col.type, key)]
    for k in keys:
        args += [ir.Col(inp.schema.get(k.column).type, k.column),  # type: ignore[union-attr]
                 ir.Lit(T.BOOL, k.desc), ir.Lit(T.BOOL, k.nulls_first)]
    rank = lw.hidden_name()
    items = [(x.name, ir.Col(x.type, x.name)) for x in inp.schema]
    items.append((rank, ir.Call(T.LONG, "__partition_rank", tuple(args))))
    ranked = ir.Select(Schema([Column(nm, e.type) for nm, e in items]), inp, items)
    kept = ir.Filter(ranked.schema, ranked, ir.Call(T.BOOL, "<=", (ir.Col(T.LONG, rank), count)))
    out = drop(kept, {nm for nm, _ in items if nm not in before})
    out.order = None  # a union of the partitions' results: no order of its own
    return out
