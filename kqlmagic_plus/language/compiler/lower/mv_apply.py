"""``mv-apply``: a subquery run on each input row's expanded arrays.

Each input row gets a hidden row key; the rows are expanded as ``mv-expand`` expands them (the same
lowering), and the subquery is lowered on the expansion as if it were a table of its own. Its IR is then
made per row: every node carries the key, ``summarize`` groups by it too, ``sort`` sorts by it first,
``take``/``top`` keep the first rows of each key (a row number over the key). The result is joined back
to the input row's other columns on the key, in the input rows' order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.syntax import Refusal, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer
    from kqlmagic_plus.language.compiler.lower.scope import Env


def mv_apply(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    from kqlmagic_plus.language.compiler.lower.expand import mv_expand
    from kqlmagic_plus.language.compiler.lower.projection import select_with
    from kqlmagic_plus.language.compiler.parsetree import find_first

    where = pos(c)
    key = lw.hidden_name()
    keyed = select_with(node, [(key, ir.Call(T.LONG, "__serial", ()))])
    keyed.order = (ir.SortKey(key, False, False),)
    expanded = mv_expand(lw, c, keyed, env)
    sub = find_first(c.OnExpression, "PipeSubExpression") if c.OnExpression is not None else None
    if sub is None:
        raise Refusal("mv-apply with a subquery that is not a pipe of operators", where)
    ops = [sub.Expression] + [p.Operator for p in sub.PipedOperators]
    cur: ir.Node = expanded
    for op in ops:
        cur = lw.operator(op, cur, env)
    per_row = _per_key(lw, cur, expanded, key, where)
    # An array expanded under its own column's name replaces that column: the input's copy is not returned.
    replaced = {ex.column for ex in expanded.expansions if ex.column in node.schema.names()}
    return _join_back(keyed, per_row, key, replaced)


def _ensure_key(schema: Schema, key: str, first: bool = False) -> Schema:
    if key in schema.names():
        return schema
    col = Column(key, T.LONG)
    return Schema([col, *schema.columns] if first else [*schema.columns, col])


def _per_key(lw: Lowerer, n: ir.Node, base: ir.Node, key: str, where: Any) -> ir.Node:
    """*n* (the subquery's IR over *base*) evaluated separately for each value of *key*."""
    if n is base:
        return n
    kcol = ir.Col(T.LONG, key)
    for e in _exprs_of(n):
        _refuse_row_order(e, where)
    if isinstance(n, ir.Filter):
        n.input = _per_key(lw, n.input, base, key, where)
        n.schema = _ensure_key(n.schema, key)
        return n
    if isinstance(n, ir.Select):
        n.input = _per_key(lw, n.input, base, key, where)
        if key not in [name for name, _ in n.items]:
            n.items = [*n.items, (key, kcol)]
        n.schema = _ensure_key(n.schema, key)
        return n
    if isinstance(n, ir.MvExpand):
        n.input = _per_key(lw, n.input, base, key, where)
        n.schema = _ensure_key(n.schema, key)
        return n
    if isinstance(n, ir.Aggregate):
        n.input = _per_key(lw, n.input, base, key, where)
        n.keys = [(key, kcol), *n.keys]
        n.schema = _ensure_key(n.schema, key, first=True)
        n.order = None
        return n
    if isinstance(n, ir.Sort):
        n.input = _per_key(lw, n.input, base, key, where)
        n.keys = (ir.SortKey(key, False, False), *[k for k in n.keys if k.column != key])
        n.order = n.keys
        n.schema = _ensure_key(n.schema, key)
        return n
    if isinstance(n, ir.Limit):
        inp = _per_key(lw, n.input, base, key, where)
        order = [k for k in (inp.order or ()) if k.column != key]
        args: list[ir.Expr] = [kcol]
        for k in order:
            args += [ir.Col(inp.schema.get(k.column).type, k.column), ir.Lit(T.BOOL, k.desc),  # type: ignore[union-attr]
                     ir.Lit(T.BOOL, k.nulls_first)]
        rank = lw.hidden_name()
        items = [(col.name, ir.Col(col.type, col.name)) for col in inp.schema] + [
            (rank, ir.Call(T.LONG, "__partition_rank", tuple(args)))
        ]
        ranked = ir.Select(Schema([Column(nm, e.type) for nm, e in items]), inp, items, order=inp.order)
        cond = ir.Call(T.BOOL, "<=", (ir.Col(T.LONG, rank), n.count))
        return ir.Filter(ranked.schema, ranked, cond, order=inp.order)
    raise Refusal(f"mv-apply with {type(n).__name__.lower()} in its subquery", where)


def _join_back(keyed: ir.Node, per_row: ir.Node, key: str, replaced: set[str]) -> ir.Node:
    """The subquery's rows, each with its input row's columns the subquery does not return, in input order."""
    right_vis = per_row.schema.visible
    names = {col.name for col in right_vis}
    # The join returns visible columns only: the key goes through it under a visible name, then hidden again.
    vis_key = "mv_apply_row" + key[len(T.HIDDEN_PREFIX):]
    while vis_key in names or vis_key in keyed.schema.names():
        vis_key += "_"
    items = [(vis_key, ir.Col(T.LONG, key))] + [
        (col.name, ir.Col(col.type, col.name)) for col in keyed.schema.visible
        if col.name not in names and col.name not in replaced
    ]
    left = ir.Select(Schema([Column(nm, e.type) for nm, e in items]), keyed, items)
    cols = list(left.schema.visible) + list(right_vis)
    joined = ir.Join(
        Schema(cols), left, per_row, "inner", [ir.Col(T.LONG, vis_key)], [ir.Col(T.LONG, key)],
        {col.name: col.name for col in right_vis},
    )
    out = [(col.name, ir.Col(col.type, col.name)) for col in cols if col.name != vis_key]
    out.append((key, ir.Col(T.LONG, vis_key)))
    sel = ir.Select(Schema([Column(nm, e.type) for nm, e in out]), joined, out)
    keys = (ir.SortKey(key, False, False), *[k for k in (per_row.order or ()) if k.column != key and k.column in names])
    return ir.Sort(sel.schema, sel, keys, order=keys)


def _exprs_of(n: ir.Node) -> list[ir.Expr]:
    if isinstance(n, ir.Select):
        return [e for _, e in n.items]
    if isinstance(n, ir.Filter):
        return [n.predicate]
    return []


def _refuse_row_order(e: ir.Expr, where: Any) -> None:
    """row_number, prev, next, row_cumsum... count over all the rows: per input row they would not restart."""
    from kqlmagic_plus.language.compiler.catalog import lookup_scalar

    if isinstance(e, ir.Call):
        f = lookup_scalar(e.fn)
        if e.fn == "__serial" or (f is not None and f.window):
            raise Refusal(f"mv-apply with {e.fn}() in its subquery", where)
        for a in e.args:
            _refuse_row_order(a, where)
