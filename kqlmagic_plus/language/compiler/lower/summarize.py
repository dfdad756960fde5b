"""Aggregating operators: summarize (with arg_max/arg_min and percentiles), distinct, count, make-series.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.scope import Env, Scope, call_args, row_scope, shape
from kqlmagic_plus.language.compiler.naming import Namer, aggregate_name, syntax_name
from kqlmagic_plus.language.compiler.parsetree import collapse, rule
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


def summarize(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    lw.parameters(c.Parameters)
    if c.ByClause is not None and c.ByClause.BinClause is not None:
        raise Refusal("summarize ... bin=", pos(c.ByClause))
    sc_keys = row_scope(node, env)
    key_exprs = list(c.ByClause.Expressions) if c.ByClause is not None else []
    agg_exprs = list(c.Expressions)
    namer = Namer(reserved=lw.explicit_names(key_exprs + agg_exprs), skip=node.schema.names())
    keys: list[tuple[str, ir.Expr]] = []
    for ne in key_exprs:
        e = lw.expr(ne.Expression, sc_keys)
        if e.type == T.DYNAMIC:
            raise SemanticError("summarize by a dynamic value: convert it first (tostring(...))", pos(ne))
        keys.append((lw.name_for(ne, namer, extend=True), e))
    key_names = {n for n, _ in keys}
    aggs: list[tuple[str, Any]] = []
    out_cols: list[Column] = [Column(n, e.type) for n, e in keys]
    sc = Scope(node.schema, env, aggs=True)
    for ne in agg_exprs:
        call = collapse(ne.Expression)
        fname = name_of(call.Name).lower() if rule(call) == "NamedFunctionCallExpression" else None
        if fname in ("arg_max", "arg_min", "argmax", "argmin"):
            pick = arg_pick(lw, call, fname, node, env, key_names, ne, namer)
            aggs.append(("", pick))
            out_cols.extend(Column(n, e.type) for n, e in pick.columns)
            continue
        if fname in ("percentiles", "percentilesw"):
            for name, agg in percentiles(lw, call, node, env, ne, namer, weighted=fname == "percentilesw"):
                aggs.append((name, agg))
                out_cols.append(Column(name, agg.type))
            continue
        e = lw.expr(ne.Expression, sc)
        if not any(isinstance(x, ir.Agg) for x in ir.walk(e)):
            raise SemanticError("summarize needs an aggregation function (count(), sum(), ...)", pos(ne))
        name = lw.name_for(ne, namer, extend=True)
        aggs.append((name, e))
        out_cols.append(Column(name, e.type))
    return ir.Aggregate(Schema(out_cols), node, keys, aggs)


def arg_pick(
    lw: Lowerer, call: Any, fname: str, node: ir.Node, env: Env, key_names: set[str], ne: Any, namer: Namer
) -> ir.ArgPick:
    kind = "max" if "max" in fname else "min"
    sc = row_scope(node, env)
    args = list(call.Arguments)
    if not args:
        raise SemanticError(f"{fname} needs an expression to maximize", pos(call))
    by = lw.expr(args[0], sc)
    explicit = lw.name_list(ne) or ([lw.explicit_name(ne)] if lw.explicit_name(ne) else [])
    by_name = explicit[0] if explicit else (syntax_name(shape(args[0])) or f"{kind}_")
    cols: list[tuple[str, ir.Expr]] = [(namer.take(by_name), by)]
    names_taken = {by_name}
    rest = args[1:]
    if not rest:
        # arg_max(x) alone returns x (and keys); Kusto documents the * form for all columns.
        pass
    for i, a in enumerate(rest):
        ac = collapse(a)
        if rule(ac) == "StarExpression":
            for col in node.schema.visible:
                if col.name in key_names or col.name in names_taken:
                    continue
                names_taken.add(col.name)
                cols.append((namer.take(col.name), ir.Col(col.type, col.name)))
            continue
        e = lw.expr(a, sc)
        nm = explicit[i + 1] if len(explicit) > i + 1 else (syntax_name(shape(a)) or namer.positional())
        if nm in key_names:
            continue
        names_taken.add(nm)
        cols.append((namer.take(nm), e))
    return ir.ArgPick(kind, by, tuple(cols))


def percentiles(lw: Lowerer, call: Any, node: ir.Node, env: Env, ne: Any, namer: Namer,
                weighted: bool = False) -> list[tuple[str, ir.Agg]]:
    sc = row_scope(node, env)
    args = list(call.Arguments)
    x = lw.expr(args[0], sc)
    # percentilesw(x, weight, p...): the same columns, each a weighted percentile.
    w = lw.expr(args[1], sc) if weighted else None
    if weighted:
        args = args[:1] + args[2:]
    base = syntax_name(shape(args[0])) or ""
    out = []
    explicit = lw.name_list(ne) or []
    for i, a in enumerate(args[1:]):
        p = lw.expr(a, sc)
        if not isinstance(p, ir.Lit):
            raise Refusal("percentiles with a computed percentage", pos(a))
        v = p.value
        suffix = str(int(v)) if float(v).is_integer() else str(v).replace(".", "_")
        name = explicit[i] if i < len(explicit) else f"percentile_{base}_{suffix}"
        agg = ir.Agg(x.type, "percentilew", (x, w, p)) if w is not None else ir.Agg(x.type, "percentile", (x, p))
        out.append((namer.take(name), agg))
    return out


def distinct(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    if c.Star is not None:
        keys = [(col.name, ir.Col(col.type, col.name)) for col in node.schema.visible]
        return _distinct(keys, node, c)
    return _distinct_list(lw, list(c.ColumnList.Expressions), node, env, c)


def _distinct_list(lw: Lowerer, nes: list[Any], node: ir.Node, env: Env, c: Any) -> ir.Node:
    sc = row_scope(node, env)
    namer = Namer(reserved=lw.explicit_names(nes))
    keys = [(lw.name_for(ne, namer), lw.expr(ne.Expression, sc)) for ne in nes]
    return _distinct(keys, node, c)


def _distinct(keys: list[tuple[str, ir.Expr]], node: ir.Node, c: Any) -> ir.Node:
    for name, e in keys:
        if e.type == T.DYNAMIC:
            raise SemanticError(
                f"distinct on the dynamic column {name!r}: convert it first (tostring(...))", pos(c)
            )
    return ir.Aggregate(Schema([Column(n, e.type) for n, e in keys]), node, keys, [])


def count(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    return ir.Aggregate(Schema([Column("Count", T.LONG)]), node, [], [("Count", ir.Agg(T.LONG, "count", ()))])


def make_series(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    params = lw.parameters(c.Parameters)
    if str(params.get("kind", (None, "nonempty"))[1]).lower() != "nonempty" and "kind" in params:
        raise Refusal("make-series kind=" + str(params["kind"][1]), pos(c))
    sc = row_scope(node, env)
    agg_sc = Scope(node.schema, env, aggs=True)
    namer = Namer(skip=node.schema.names())
    aggs: list[tuple[str, ir.Agg, ir.Expr]] = []
    for a in c.Aggregations:
        e = lw.expr(a.Expression.Expression, agg_sc)
        if isinstance(e, ir.Lit):
            # A constant series (`x=-1 default=-2`): the constant in every bin that has rows.
            e = ir.Agg(e.type, "take_any", (e,))
        if not isinstance(e, ir.Agg):
            raise Refusal("make-series aggregate wrapped in an expression", pos(a))
        name = lw.explicit_name(a.Expression) or aggregate_name(
            e.fn, [shape(x) for x in call_args(a.Expression.Expression)]
        )
        default = (
            lw.expr(a.Default.Value.Expression, Scope(None, env))
            if a.Default is not None
            else ir.Lit(e.type, 0 if e.type in T.NUMERIC else None)
        )
        aggs.append((namer.take(name), e, default))
    axis_ne = c.OnClause.Expression
    axis = lw.expr(axis_ne.Expression, sc)
    axis_name = lw.explicit_name(axis_ne) or syntax_name(shape(axis_ne.Expression)) or "Column1"
    if c.InRangeClause is not None:
        rc = c.InRangeClause
        start, stop, step = (
            lw.expr(x.Expression, Scope(None, env))
            for x in (rc.FromExpression, rc.ToExpression, rc.StepExpression)
        )
    else:
        fc = c.FromToStepClause
        if (fc.FromExpression is None) != (fc.ToExpression is None):
            raise Refusal("make-series with only one of from/to", pos(c))
        if fc.FromExpression is None and "kind" in params:
            # Over no rows there is no range to fill with defaults: what Kusto returns then is not known here.
            raise Refusal("make-series kind=nonempty without from/to", pos(c))
        start, stop, step = (
            lw.expr(x.Expression, Scope(None, env)) if x is not None else None
            for x in (fc.FromExpression, fc.ToExpression, fc.StepExpression)
        )
    keys = []
    if c.ByClause is not None:
        for ne in c.ByClause.Expressions:
            e = lw.expr(ne.Expression, sc)
            keys.append((lw.name_for(ne, namer, extend=True), e))
    cols = [Column(n, e.type) for n, e in keys]
    cols += [Column(n, T.DYNAMIC) for n, _, _ in aggs]
    cols.append(Column(axis_name, T.DYNAMIC))
    return ir.MakeSeries(Schema(cols), node, aggs, (axis_name, axis), start, stop, step, keys,
                         nonempty="kind" in params)
