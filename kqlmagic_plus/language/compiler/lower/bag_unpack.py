"""``evaluate bag_unpack(col [, prefix] [, columnsConflict=...] [, ignoredProperties=...]) [: (schema)]``.

A SQL statement's columns are fixed before it reads a row, and bag_unpack's depend on the data. So the
columns come from the output schema when the query gives one, or from the bags themselves when they are
constants of the query (a ``datatable`` or ``print``, through projections that pass the column on):
their keys, sorted, each typed by its values as Kusto types them. Otherwise the plugin is refused with
the schema form to use.

The grammar does not read ``: (*, a:string)``: :func:`rewrite` (from ``syntax.preprocess``) writes the
``*`` as a column of a reserved name, by a same-length replacement and an insertion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.syntax import STAR_COLUMN, Refusal, SemanticError
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer
    from kqlmagic_plus.language.compiler.lower.scope import Env

STAR = STAR_COLUMN


def bag_unpack(lw: Lowerer, call: Any, c: Any, node: ir.Node, env: Env) -> ir.Node:
    from kqlmagic_plus.language.compiler.lower.coerce import coerce_to
    from kqlmagic_plus.language.compiler.lower.scope import row_scope
    from kqlmagic_plus.language.compiler.parsetree import children, collapse, find_first, is_token, rule
    from kqlmagic_plus.language.compiler.syntax import name_of, pos

    where = pos(c)
    sc = row_scope(node, env)
    positional: list[Any] = []
    named: dict[str, ir.Expr] = {}
    for a in call.Arguments:
        ne = find_first(a, "NamedExpression")
        name = lw.explicit_name(ne) if ne is not None else None
        if name:
            named[name.lower()] = lw.expr(ne.Expression, sc)
        else:
            positional.append(a)
    if not positional:
        raise SemanticError("bag_unpack needs the column to unpack", where)
    src_ctx = collapse(positional[0])
    col = lw.expr(positional[0], sc)
    if col.type != T.DYNAMIC:
        raise SemanticError("bag_unpack's first argument must be dynamic", where)
    prefix = ""
    if len(positional) > 1:
        p = lw.expr(positional[1], sc)
        if not (isinstance(p, ir.Lit) and isinstance(p.value, str)):
            raise Refusal("bag_unpack with a computed column prefix", where)
        prefix = p.value
    conflict = named.pop("columnsconflict", ir.Lit(T.STRING, "error"))
    ignored = named.pop("ignoredproperties", ir.Lit(T.DYNAMIC, []))
    if named:
        raise Refusal(f"bag_unpack parameter {next(iter(named))}", where)
    if not (isinstance(conflict, ir.Lit) and conflict.value in ("error", "replace_source", "keep_source")):
        raise SemanticError("bag_unpack: columnsConflict is 'error', 'replace_source' or 'keep_source'", where)
    if not (isinstance(ignored, ir.Lit) and isinstance(ignored.value, list)):
        raise Refusal("bag_unpack with computed ignoredProperties", where)
    skip = {k for k in ignored.value if isinstance(k, str)}
    removed = name_of(src_ctx) if rule(src_ctx) in ("IdentifierName", "KeywordName", "EscapedName") else None
    if removed is None and isinstance(col, ir.Col):
        removed = col.name

    star = True
    if c.SchemaClause is not None:
        declared = []
        for k in children(c.SchemaClause.Schema):
            if not is_token(k) and rule(k) == "RowSchemaColumnDeclaration":
                declared.append((name_of(k.Name), T.type_from_word(k.Type.getText()) or T.DYNAMIC))
        star = any(n == STAR for n, _ in declared)
        wanted = [(n, t) for n, t in declared if n != STAR]
        keys = [(n[len(prefix):] if prefix and n.startswith(prefix) else n, t) for n, t in wanted]
    else:
        found = _constant_keys(node, col)
        if found is None and isinstance(col, ir.Col):
            found = _read_keys(node, col, where)
        if found is None:
            raise Refusal(
                "evaluate bag_unpack without an output schema",
                where,
                "its columns depend on the data; give them: evaluate bag_unpack(col) : (*, a:string)",
            )
        keys = [(k, t) for k, t in found if k not in skip]

    items: list[tuple[str, ir.Expr]] = []
    if star:
        items = [(cl.name, ir.Col(cl.type, cl.name)) for cl in node.schema.visible if cl.name != removed]
    index = {n: k for k, (n, _) in enumerate(items)}
    for key, t in keys:
        name = prefix + key
        e: ir.Expr = ir.Call(T.DYNAMIC, "__path", (col, ir.Lit(T.STRING, key)))
        if t != T.DYNAMIC:
            e = coerce_to(e, t, where)
        if name in index:
            if c.SchemaClause is not None or conflict.value == "keep_source":
                continue
            if conflict.value == "error":
                raise SemanticError(
                    f"bag_unpack: the property {key!r} is also a column: use columnsConflict='replace_source' "
                    "or 'keep_source'",
                    where,
                )
            items[index[name]] = (name, e)
            continue
        index[name] = len(items)
        items.append((name, e))
    return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items)


def _read_keys(node: ir.Node, col: ir.Col, where: Any) -> list[tuple[str, str]] | None:
    """The keys of the bags the rows before the plugin hold, read by the engine (None when it reads none)."""
    from kqlmagic_plus.language.compiler import probe

    try:
        values = probe.dynamic_values(node, col.name)
    except probe.TooManyRows:
        raise Refusal("evaluate bag_unpack without an output schema over more than "
                      f"{probe.MAX_ROWS:,} rows", where,
                      "give the columns: evaluate bag_unpack(col) : (*, a:string)") from None
    return None if values is None else _keys_of(values)


def _constant_keys(node: ir.Node, col: ir.Expr) -> list[tuple[str, str]] | None:
    """The sorted keys of a column of constant bags, each with the type its values give it; None when the
    bags are not constants of the query."""
    values = _constant_column(node, col)
    if values is None:
        return None
    return _keys_of(values)


def _keys_of(values: list[Any]) -> list[tuple[str, str]]:
    kinds: dict[str, set[str]] = {}
    for v in values:
        if isinstance(v, dict):
            for k, x in v.items():
                kinds.setdefault(k, set())
                if x is not None:
                    kinds[k].add(_kind(x))
    return [(k, _unify(kinds[k])) for k in sorted(kinds)]


def _constant_column(node: ir.Node, col: ir.Expr) -> list[Any] | None:
    if isinstance(col, ir.Lit):
        return [col.value]
    if not isinstance(col, ir.Col):
        return None
    if isinstance(node, ir.Values):
        names = node.schema.names()
        if col.name not in names:
            return None
        k = names.index(col.name)
        out = []
        for row in node.rows:
            cell = row[k]
            if not isinstance(cell, ir.Lit):
                return None
            out.append(cell.value)
        return out
    if isinstance(node, ir.Select):
        for name, e in node.items:
            if name == col.name:
                return _constant_column(node.input, e)
    return None


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return T.BOOL
    if isinstance(x, int):
        return T.LONG
    if isinstance(x, float):
        return T.REAL
    if isinstance(x, str):
        return T.STRING
    return T.DYNAMIC


def _unify(kinds: set[str]) -> str:
    if len(kinds) == 1:
        return next(iter(kinds))
    if kinds == {T.LONG, T.REAL}:
        return T.REAL
    return T.DYNAMIC
