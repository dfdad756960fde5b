"""``evaluate pivot(column [, aggregation] [, key, ...]) [: (schema)]``: one output column per value of *column*.

The output's columns depend on the data, so the engine first reads the column's distinct values (see
:mod:`..probe`), unless the query declares them with an output schema. The plugin is then the summarize it
stands for, written as KQL the lowerer translates on both engines: ``summarize ['v'] = countif(column == v), ...
by keys`` (``sum(x)`` becomes ``sumif(x, column == v)``, and so on), so a key with no row for a value gets what
the conditional aggregate gives (0 for count and sum, null for min, ...), as Kusto shows it.

The pivoted columns come in the order of their values, sorted: Kusto's own order follows where the values
were first met, which a distributed engine does not fix.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language import literals
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.rolling import lower_text
from kqlmagic_plus.language.compiler.lower.scope import Env
from kqlmagic_plus.language.compiler.parsetree import children, collapse, is_token, rule, source
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, pos

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

_NAMES = ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName")

#: The aggregations the plugin takes -> their conditional form (the condition comes last).
CONDITIONAL = {
    "count": "countif", "sum": "sumif", "min": "minif", "max": "maxif", "avg": "avgif", "dcount": "dcountif",
    "stdev": "stdevif", "variance": "varianceif", "take_any": "take_anyif", "any": "take_anyif",
    "make_list": "make_list_if", "make_set": "make_set_if", "make_bag": "make_bag_if",
}

#: Pivot column types whose values name columns the way Kusto's tostring() does.
_NAMEABLE = (T.STRING, T.LONG, T.INT, T.BOOL, T.GUID)


def pivot(lw: Lowerer, call: Any, c: Any, node: ir.Node, env: Env) -> ir.Node:
    where = pos(c)
    args = list(call.Arguments)
    if not args:
        raise SemanticError("pivot needs the column to rotate", where)
    column = _column(args[0], node, where)
    agg_name, agg_args, rest = "count", [], args[1:]
    if rest and rule(collapse(rest[0])) not in _NAMES:
        agg_name, agg_args = _aggregation(rest[0], where)
        rest = rest[1:]
    used = {column, *(a for a in agg_args if a in node.schema)}
    keys = [_column(a, node, where) for a in rest] if rest else \
        [col.name for col in node.schema.visible if col.name not in used]
    ctype = node.schema.get(column).type  # type: ignore[union-attr]
    if ctype not in _NAMEABLE:
        raise Refusal(f"evaluate pivot over a {ctype} column", where,
                      "how Kusto names a column after such a value is not reproduced: pivot tostring(...) of it")
    if c.SchemaClause is not None:
        declared = [name_of(k.Name) for k in children(c.SchemaClause.Schema)
                    if not is_token(k) and rule(k) == "RowSchemaColumnDeclaration"]
        names = [(n, (n.lower() == "true") if ctype == T.BOOL else n) for n in declared if n not in keys]
    else:
        names = _value_names(node, column, ctype, where)
    aggs = []
    for name, value in names:
        inner = ", ".join([*agg_args, f"{literals.identifier(column)} == {_literal(value, ctype)}"])
        aggs.append(f"{literals.identifier(name)} = {CONDITIONAL[agg_name]}({inner})")
    if not aggs:  # no values: the keys alone, one row each, as the summarize with no aggregate gives
        text = "__kqlc_pv_in | summarize by " + ", ".join(map(literals.identifier, keys)) if keys else \
            "__kqlc_pv_in | take 0 | project-away *"
        return lower_text(lw, text, "__kqlc_pv_in", node, env)
    by = (" by " + ", ".join(map(literals.identifier, keys))) if keys else ""
    text = "__kqlc_pv_in | summarize " + ", ".join(aggs) + by
    return lower_text(lw, text, "__kqlc_pv_in", node, env)


def _column(arg: Any, node: ir.Node, where: Any) -> str:
    ac = collapse(arg)
    if rule(ac) not in _NAMES or name_of(ac) not in node.schema:
        raise SemanticError(f"pivot: {source(ac)!r} is not a column of its input", where)
    return name_of(ac)


def _aggregation(arg: Any, where: Any) -> tuple[str, list[str]]:
    ac = collapse(arg)
    if rule(ac) == "CountExpression" or source(ac).replace(" ", "").lower() == "count()":
        return "count", []
    if rule(ac) != "NamedFunctionCallExpression":
        raise SemanticError(f"pivot: {source(ac)!r} is not an aggregation such as count() or sum(x)", where)
    name = name_of(ac.Name).lower()
    if name not in CONDITIONAL:
        raise Refusal(f"evaluate pivot with {name}()", where,
                      "the aggregations pivot takes are " + ", ".join(sorted(CONDITIONAL)))
    return name, [source(a).strip() for a in ac.Arguments]


def _value_names(node: ir.Node, column: str, ctype: str, where: Any) -> list[tuple[str, Any]]:
    from kqlmagic_plus.language.compiler import probe

    try:
        values = probe.distinct_values(node, column)
    except probe.TooManyRows:
        raise Refusal(f"evaluate pivot over more than {probe.MAX_VALUES:,} distinct values", where) from None
    if values is None:
        raise Refusal("evaluate pivot without an output schema", where,
                      "its columns depend on the data; give them: evaluate pivot(col) : (key:string, v1:long, ...)")
    out: list[tuple[str, Any]] = []
    for v in values:
        if v is None or v == "":
            raise Refusal("evaluate pivot over an empty value", where,
                          "what Kusto names that column is not documented: filter the empty values out first")
        text = ("true" if v else "false") if ctype == T.BOOL else str(v)
        out.append((text, v))
    return sorted(out, key=lambda nv: (nv[1] if ctype in (T.LONG, T.INT) else nv[0]))


def _literal(value: Any, ctype: str) -> str:
    if ctype == T.BOOL:
        return "true" if value else "false"
    if ctype in (T.LONG, T.INT):
        return str(int(value))
    return literals.string(str(value))
