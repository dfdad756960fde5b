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
from kqlmagic_plus.language.compiler.parsetree import children, collapse, is_token, rule, source
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
    matched = ir.Call(T.BOOL, "__parse_matches", (subject, ir.Lit(T.STRING, regex)))
    for i, (name, t) in enumerate(columns):
        e = ir.Call(
            t, "__parse_group", (subject, ir.Lit(T.STRING, regex), ir.Lit(T.LONG, i + 1), ir.Lit(T.STRING, kind))
        )
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
        return bag_unpack(lw, call, c, node, env)
    raise Refusal(f"evaluate {plugin}", pos(c))


def bag_unpack(lw: Lowerer, call: Any, c: Any, node: ir.Node, env: Env) -> ir.Node:
    if c.SchemaClause is None:
        raise Refusal(
            "evaluate bag_unpack without an output schema",
            pos(c),
            "its columns depend on the data; give them: evaluate bag_unpack(col) : (*, a:string)",
        )
    args = list(call.Arguments)
    sc = row_scope(node, env)
    src_ctx = collapse(args[0])
    col = lw.expr(args[0], sc)
    prefix = ""
    if len(args) > 1:
        p = lw.expr(args[1], sc)
        prefix = p.value if isinstance(p, ir.Lit) and isinstance(p.value, str) else ""
    schema_cols = []
    star = False
    for k in children(c.SchemaClause.Schema):
        if not is_token(k) and rule(k) == "RowSchemaColumnDeclaration":
            schema_cols.append((name_of(k.Name), T.type_from_word(k.Type.getText()) or T.DYNAMIC))
    text = source(c.SchemaClause)
    star = "*" in text
    removed = name_of(src_ctx) if rule(src_ctx) in ("IdentifierName", "KeywordName", "EscapedName") else None
    items: list[tuple[str, ir.Expr]] = []
    if star:
        items = [(cl.name, ir.Col(cl.type, cl.name)) for cl in node.schema.visible if cl.name != removed]
    have = {n for n, _ in items}
    for name, t in schema_cols:
        if name in have:
            continue
        key = name[len(prefix) :] if prefix and name.startswith(prefix) else name
        e = ir.Call(T.DYNAMIC, "__path", (col, ir.Lit(T.STRING, key)))
        items.append((name, coerce_to(e, t, pos(c)) if t != T.DYNAMIC else e))
    return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items)
