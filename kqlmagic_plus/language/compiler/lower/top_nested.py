"""``top-nested``: a hierarchy of top-N aggregations, lowered to aggregates, ranks and joins.

Level k groups by the first k ``of`` expressions, keeps the groups whose level k-1 parent was
kept, ranks them within that parent by the level's aggregate and keeps the first N; the result
joins every level's aggregate back onto the deepest kept groups.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.projection import drop, select_with
from kqlmagic_plus.language.compiler.lower.scope import Env, Scope, row_scope, shape
from kqlmagic_plus.language.compiler.naming import Namer, syntax_name
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


def top_nested(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    return lower_top_nested(lw, list(c.Segments), node, env)


def top_nested_part(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    return lower_top_nested(lw, [c], node, env)


def lower_top_nested(lw: Lowerer, parts: list[Any], node: ir.Node, env: Env) -> ir.Node:
    levels = []
    namer = Namer()
    for part in parts:
        if part.WithOthers is not None:
            raise Refusal("top-nested ... with others", pos(part))
        count = None
        if part.Expression is not None:
            lit = lw.expr(part.Expression.Expression, Scope(None, env))
            if not (isinstance(lit, ir.Lit) and isinstance(lit.value, int)):
                raise Refusal("top-nested with a computed count", pos(part))
            count = lit.value
        of_ne = part.OfExpression
        key = lw.expr(of_ne.Expression, row_scope(node, env))
        key_name = lw.explicit_name(of_ne) or syntax_name(shape(of_ne.Expression)) or namer.positional()
        key_name = namer.take(key_name)
        by = part.ByExpression
        agg = lw.expr(by.Expression.Expression, Scope(node.schema, env, aggs=True))
        if not any(isinstance(x, ir.Agg) for x in ir.walk(agg)):
            raise SemanticError("top-nested ... by needs an aggregation", pos(by))
        agg_name = namer.take(lw.explicit_name(by.Expression) or f"aggregated_{key_name}")
        kind = by.Ordering.OrderKind.text.lower() if by.Ordering.OrderKind is not None else "desc"
        levels.append((key_name, key, agg_name, agg, count, kind == "desc"))

    kept_levels: list[ir.Node] = []
    prev: ir.Node | None = None
    for k, (_, _, agg_name, agg, count, desc) in enumerate(levels):
        keys = [(levels[i][0], levels[i][1]) for i in range(k + 1)]
        schema = Schema([Column(n, e.type) for n, e in keys] + [Column(agg_name, agg.type)])
        level: ir.Node = ir.Aggregate(schema, node, keys, [(agg_name, agg)])
        parent_keys = [levels[i][0] for i in range(k)]
        if prev is not None:
            lk = [ir.Col(level.schema.get(n).type, n) for n in parent_keys]  # type: ignore[union-attr]
            rk = [ir.Col(prev.schema.get(n).type, n) for n in parent_keys]  # type: ignore[union-attr]
            level = ir.Join(level.schema, level, prev, "leftsemi", lk, rk, {}, null_safe=True)
        if count is not None:
            h = lw.hidden_name()
            rank = ir.Call(
                T.LONG,
                "__rank",
                (
                    ir.Lit(T.LONG, len(parent_keys)),
                    ir.Lit(T.BOOL, desc),
                    *[ir.Col(level.schema.get(n).type, n) for n in parent_keys],  # type: ignore[union-attr]
                    ir.Col(agg.type, agg_name),
                ),
            )
            ranked = select_with(level, [(h, rank)])
            filt = ir.Filter(ranked.schema, ranked, ir.Call(T.BOOL, "<=", (ir.Col(T.LONG, h), ir.Lit(T.LONG, count))))
            level = drop(filt, {h})
        kept_levels.append(level)
        prev = level

    result = kept_levels[-1]
    for j in range(len(levels) - 1):
        other = kept_levels[j]
        names = [levels[i][0] for i in range(j + 1)]
        lk = [ir.Col(result.schema.get(n).type, n) for n in names]  # type: ignore[union-attr]
        rk = [ir.Col(other.schema.get(n).type, n) for n in names]  # type: ignore[union-attr]
        agg_name = levels[j][2]
        right_names = {col.name: (col.name if col.name == agg_name else lw.hidden_name()) for col in other.schema}
        cols = list(result.schema.columns) + [Column(right_names[col.name], col.type) for col in other.schema]
        result = ir.Join(Schema(cols), result, other, "inner", lk, rk, right_names, null_safe=True)
    order = []
    for key_name, _, agg_name, agg, _, _ in levels:
        order += [(key_name, result.schema.get(key_name).type), (agg_name, agg.type)]  # type: ignore[union-attr]
    items = [(n, ir.Col(t, n)) for n, t in order]
    return ir.Select(Schema([Column(n, e.type) for n, e in items]), result, items)
