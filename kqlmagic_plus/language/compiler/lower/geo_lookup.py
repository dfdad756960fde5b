"""``evaluate geo_polygon_lookup(...)`` and ``evaluate geo_line_lookup(...)``: a join on a geospatial match.

Each source row is paired with every lookup row whose polygon contains its point (or lies within *radius*
meters of it), or whose line lies within *radius* meters, as ``geo_point_in_polygon()``,
``geo_distance_point_to_polygon()`` and ``geo_distance_point_to_line()`` decide. The lookup table is small
by the plugins' own design, so the join pairs every row with every lookup row and filters.

``lookup_area_radius`` only tunes Kusto's index and is accepted and ignored. ``return_unmatched=true`` adds
the source rows nothing matched (lookup columns null): those whose point matches none of the lookup table's
shapes, gathered into one array.
"""

from __future__ import annotations

from typing import Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.join import add_right_columns, unique_name, with_unmatched
from kqlmagic_plus.language.compiler.lower.scope import row_scope
from kqlmagic_plus.language.compiler.parsetree import collapse, find_first, rule
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

_NAMED = ("radius", "return_unmatched", "lookup_area_radius", "return_lookup_key")


def geo_lookup(lw: Any, plugin: str, call: Any, c: Any, node: ir.Node, env: Any) -> ir.Node:
    where = pos(c)
    positional: list[Any] = []
    named: dict[str, Any] = {}
    for a in call.Arguments:
        ne = find_first(a, "NamedExpression")
        name = lw.explicit_name(ne) if ne is not None else None
        if name:
            if name.lower() not in _NAMED:
                raise SemanticError(f"{plugin}: unknown parameter {name}", where)
            named[name.lower()] = ne.Expression
        else:
            positional.append(a)
    if len(positional) < 4 or len(positional) > 5:
        raise SemanticError(f"{plugin}(LookupTable, LookupKey, SourceLongitude, SourceLatitude, ...)", where)
    if len(positional) == 5:
        if "radius" in named:
            raise SemanticError(f"{plugin}: radius given twice", where)
        named["radius"] = positional[4]
    sc = row_scope(node, env)

    def flag(key: str) -> bool:
        if key not in named:
            return False
        v = lw.expr(named[key], sc)
        if not (isinstance(v, ir.Lit) and isinstance(v.value, bool)):
            raise Refusal(f"{plugin} with a computed {key}", where)
        return v.value

    unmatched = flag("return_unmatched")
    keep_key = flag("return_lookup_key")

    right = lw.tabular(positional[0], env)
    key_ctx = collapse(positional[1])
    if rule(key_ctx) not in ("IdentifierName", "KeywordName", "EscapedName"):
        raise SemanticError(f"{plugin}: LookupKey must be a column of the lookup table", where)
    key = name_of(key_ctx)
    rcols = {col.name: col for col in right.schema.visible}
    if key not in rcols:
        raise SemanticError(f"{plugin}: the lookup table has no column {key}", where)
    if rcols[key].type != T.DYNAMIC:
        raise SemanticError(f"{plugin}: LookupKey {key} must be dynamic", where)
    lng, lat = lw.expr(positional[2], sc), lw.expr(positional[3], sc)
    radius = lw.expr(named["radius"], sc) if "radius" in named else None
    if plugin == "geo_line_lookup" and radius is None:
        raise SemanticError("geo_line_lookup needs a radius", where)

    # Every source row with every lookup row (an equi-join on a constant), then the geospatial match.
    taken = {col.name for col in node.schema.visible}
    right_names: dict[str, str] = {}
    cols = list(node.schema.visible)
    add_right_columns(cols, right_names, taken, list(right.schema.visible))
    one = ir.Lit(T.LONG, 1)
    joined = ir.Join(Schema(cols), node, right, "inner", [one], [one], right_names)
    shape = ir.Col(T.DYNAMIC, right_names[key])
    x, y = _real(lng), _real(lat)
    if plugin == "geo_line_lookup":
        match: ir.Expr = _le(ir.Call(T.REAL, "geo_distance_point_to_line", (x, y, shape)), radius)
    elif radius is None:
        match = ir.Call(T.BOOL, "geo_point_in_polygon", (x, y, shape))
    else:
        match = _le(ir.Call(T.REAL, "geo_distance_point_to_polygon", (x, y, shape)), radius)
    kept = ir.Filter(joined.schema, joined, match)
    out = [col for col in cols if keep_key or col.name != right_names[key]]
    matched = ir.Select(Schema(out), kept, [(col.name, ir.Col(col.type, col.name)) for col in out])
    if not unmatched:
        return matched
    # The source rows no lookup row matches, with the lookup columns null: each source row is paired with
    # the lookup table's shapes gathered into one array (a join, not a scalar subquery: Spark fails to run a
    # subquery over a one-row table inside a Python UDF's arguments) and kept when none of them matches.
    gathered = unique_name("__geo_lookup_shapes", taken)
    shapes = ir.Aggregate(Schema([Column(gathered, T.DYNAMIC)]), right, [],
                          [(gathered, ir.Agg(T.DYNAMIC, "make_list", (ir.Col(T.DYNAMIC, key),)))])
    with_shapes = ir.Join(Schema([*node.schema.visible, Column(gathered, T.DYNAMIC)]), node, shapes, "inner",
                          [one], [one], {gathered: gathered})
    kind = ir.Lit(T.STRING, "line" if plugin == "geo_line_lookup" else "polygon")
    any_match = ir.Call(T.BOOL, "__geo_lookup_any_match",
                        (kind, x, y, ir.Col(T.DYNAMIC, gathered),
                         _real(radius) if radius is not None else ir.Lit(T.REAL, None)))
    alone = ir.Filter(with_shapes.schema, with_shapes, ir.Call(T.BOOL, "not", (any_match,)))
    return with_unmatched(out, matched, alone, {col.name for col in node.schema.visible})


def _real(e: ir.Expr) -> ir.Expr:
    return e if e.type == T.REAL else ir.Call(T.REAL, "todouble", (e,))


def _le(a: ir.Expr, b: ir.Expr) -> ir.Expr:
    return ir.Call(T.BOOL, "<=", (a, _real(b)))
