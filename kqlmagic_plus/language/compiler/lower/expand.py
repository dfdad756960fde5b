"""Operators that take new columns out of a value: mv-expand, parse, parse-where, evaluate bag_unpack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import literals as L
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.coerce import coerce_to
from kqlmagic_plus.language.compiler.lower.scope import Env, row_scope, shape
from kqlmagic_plus.language.compiler.naming import syntax_name
from kqlmagic_plus.language.compiler.parsetree import children, collapse, is_token, rule
from kqlmagic_plus.language.compiler.syntax import Refusal, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


def mv_expand(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    params = lw.parameters(c.Parameters)
    bag_mode = str(params.get("bagexpansion", params.get("kind", (None, "bag")))[1]).lower()
    index_col = params.get("with_itemindex")
    sc = row_scope(node, env)
    expansions: list[ir.Expansion] = []
    for me in c.Expressions:
        ne = me.Expression
        e = lw.expr(ne.Expression, sc)
        to_type = T.DYNAMIC
        if me.ToClause is not None:
            word = me.ToClause.Type.text.lower().partition("typeof(")[2].rstrip(")").strip()
            to_type = T.type_from_word(word) or T.DYNAMIC
        name = lw.explicit_name(ne) or syntax_name(shape(ne.Expression))
        if name is None:
            raise Refusal("mv-expand of an unnamed computed expression", pos(ne), "name it: mv-expand item = ...")
        if e.type != T.DYNAMIC:
            e = coerce_to(e, T.DYNAMIC, pos(ne))
        expansions.append(ir.Expansion(name, e, to_type))
    limit = None
    if c.LimitClause is not None:
        limit = int(c.LimitClause.LimitValue.text)
    cols = list(node.schema.columns)
    names = [col.name for col in cols]
    for ex in expansions:
        if ex.column in names:
            cols[names.index(ex.column)] = Column(ex.column, ex.to_type)
        else:
            cols.append(Column(ex.column, ex.to_type))
            names.append(ex.column)
    idx_name = str(index_col[1]) if index_col else None
    if idx_name:
        cols.append(Column(idx_name, T.LONG))
    pos_col = None
    order = None
    if node.order is not None:
        pos_col = lw.hidden_name()
        cols.append(Column(pos_col, T.LONG))
        order = (*node.order, ir.SortKey(pos_col, False, False))
    out = ir.MvExpand(Schema(cols), node, expansions, limit, idx_name, pos_col, order=order)
    out.bag_mode = bag_mode  # type: ignore[attr-defined]
    return out


def parse(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    return parse_op(lw, c, node, env, filter_=False)


def parse_where(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    return parse_op(lw, c, node, env, filter_=True)


def parse_op(lw: Lowerer, c: Any, node: ir.Node, env: Env, filter_: bool) -> ir.Node:
    from kqlmagic_plus.language.compiler.parse_pattern import build_parse

    kind = "simple"
    flags = ""
    if c.KindClause is not None:
        kind = c.KindClause.Kind.text.lower()
        if c.KindClause.FlagsClause is not None:
            flags = c.KindClause.FlagsClause.Flags.text
    sc = row_scope(node, env)
    subject = coerce_to(lw.expr(c.Expression, sc), T.STRING, pos(c.Expression))
    pattern = c.Pattern
    elements: list[tuple[str, Any]] = []
    if pattern.LeadingColumn is not None:
        elements.append(("col", _parse_col(pattern.LeadingColumn)))
    for seg in pattern.Segments:
        if any(is_token(k) and k.getText() == "*" for k in children(seg)):
            elements.append(("star", None))
        elements.append(("text", L.string_value(seg.Text)))
        if seg.Column is not None:
            elements.append(("col", _parse_col(seg.Column)))
    if pattern.TrailingStar is not None:
        elements.append(("star", None))
    regex, columns = build_parse(elements, kind, flags, pos(c))
    items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema]
    index = {n: i for i, (n, _) in enumerate(items)}
    matched: ir.Expr = ir.Call(T.BOOL, "__parse_matches", (subject, ir.Lit(T.STRING, regex)))
    values = [
        ir.Call(t, "__parse_group", (subject, ir.Lit(T.STRING, regex), ir.Lit(T.LONG, i + 1), ir.Lit(T.STRING, kind)))
        for i, (_, t) in enumerate(columns)
    ]
    typed = [v for v, (_, t) in zip(values, columns, strict=True) if t not in (T.STRING, T.DYNAMIC)]
    if kind != "relaxed" and typed:
        # Strict kinds: a typed column whose text does not convert fails the whole match (every column null,
        # parse-where drops the row); only relaxed keeps the others.
        matched = ir.Call(T.BOOL, "and", (matched, *(ir.Call(T.BOOL, "isnotnull", (v,)) for v in typed)))
        values = [ir.Call(v.type, "iff", (matched, v, ir.Lit(v.type, None))) for v in values]
    for (name, _), e in zip(columns, values, strict=True):
        if name in index:
            items[index[name]] = (name, e)
        else:
            index[name] = len(items)
            items.append((name, e))
    if filter_:
        node = ir.Filter(node.schema, node, matched, order=node.order)
    out = Schema([Column(n, e.type) for n, e in items])
    return ir.Select(out, node, items, order=node.order)


def _parse_col(ctx: Any) -> tuple[str, str]:
    name = name_of(ctx.Name)
    t = T.type_from_word(ctx.Type.getText()) if ctx.Type is not None else T.STRING
    return name, t or T.STRING


def evaluate(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    call = collapse(c.PlugInCall)
    if rule(call) != "NamedFunctionCallExpression":
        raise Refusal("evaluate", pos(c))
    plugin = name_of(call.Name).lower()
    if plugin == "bag_unpack":
        from kqlmagic_plus.language.compiler.lower.bag_unpack import bag_unpack

        return bag_unpack(lw, call, c, node, env)
    if plugin in ("geo_polygon_lookup", "geo_line_lookup"):
        from kqlmagic_plus.language.compiler.lower.geo_lookup import geo_lookup

        return geo_lookup(lw, plugin, call, c, node, env)
    if plugin == "ipv4_lookup":
        from kqlmagic_plus.language.compiler.lower.ipv4_lookup import ipv4_lookup

        return ipv4_lookup(lw, call, c, node, env)
    if plugin == "pivot":
        from kqlmagic_plus.language.compiler.lower.pivot import pivot

        return pivot(lw, call, c, node, env)
    if plugin in ("rolling_percentile", "rows_near"):
        from kqlmagic_plus.language.compiler.lower import rolling

        return getattr(rolling, plugin)(lw, call, c, node, env)
    raise Refusal(f"evaluate {plugin}", pos(c))
