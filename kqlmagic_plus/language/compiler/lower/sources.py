"""Where a table comes from: datatable, print, range, and the operators that name or call one (as, invoke).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.functions.arrays import multi_sort_columns
from kqlmagic_plus.language.compiler.functions.series import expand_multi
from kqlmagic_plus.language.compiler.lower.coerce import convert_literal, literal
from kqlmagic_plus.language.compiler.lower.scope import Env, Scope
from kqlmagic_plus.language.compiler.naming import Namer
from kqlmagic_plus.language.compiler.parsetree import collapse, rule
from kqlmagic_plus.language.compiler.syntax import PROJECT_BY_NAMES_CALL, Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


def datatable(lw: Lowerer, c: Any, env: Env) -> ir.Node:
    cols = []
    for col in c.Schema.Columns:
        t = T.type_from_word(col.Type.getText())
        if t is None:
            raise Refusal(f"datatable column type {col.Type.getText()}", pos(col))
        cols.append(Column(name_of(col.Name), t))
    values = [literal(v) for v in c.Values]
    width = len(cols)
    if width == 0 or len(values) % width:
        raise SemanticError("datatable values do not fill whole rows", pos(c))
    rows = []
    for i in range(0, len(values), width):
        rows.append([convert_literal(values[i + j], cols[j].type, pos(c)) for j in range(width)])
    return ir.Values(Schema(cols), rows)


def print_(lw: Lowerer, c: Any, env: Env) -> ir.Node:
    sc = Scope(None, env)
    namer = Namer(reserved=lw.explicit_names(c.Expressions))
    cols, row = [], []
    for ne in c.Expressions:
        e = lw.expr(ne.Expression, sc)
        series_cols = expand_multi(lw, ne, e, namer)  # series_stats(...), (a, b) = series_fit_line(...)
        if series_cols is not None:
            for name, part in series_cols:
                cols.append(Column(name, part.type))
                row.append(part)
            continue
        split = multi_sort_columns(ne, e)  # array_sort_asc(a1, a2, ...) prints one column per array
        if split is not None:
            for name, part in split:
                cols.append(Column(namer.take(name), part.type))
                row.append(part)
            continue
        name = lw.name_for(ne, namer, print_=True)
        cols.append(Column(name, e.type))
        row.append(e)
    return ir.Values(Schema(cols), [row])


def range_(lw: Lowerer, c: Any, env: Env) -> ir.Node:
    sc = Scope(None, env)
    start, stop, step = (lw.expr(x, sc) for x in (c.FromExpression, c.ToExpression, c.StepExpression))
    t = (
        start.type
        if start.type in (T.DATETIME, T.TIMESPAN)
        else T.arithmetic_result(
            start.type if start.type in T.NUMERIC else T.LONG, step.type if step.type in T.NUMERIC else T.LONG
        )
    )
    name = name_of(c.Expression)
    # range counts down for a negative step, and its rows keep that order
    down = isinstance(step, ir.Lit) and isinstance(step.value, int | float) and step.value < 0
    return ir.Range(Schema([Column(name, t)]), start, stop, step, order=(ir.SortKey(name, down, False),))


def function_call(lw: Lowerer, c: Any, env: Env) -> ir.Node:
    return lw.tabular_call(c, env)


def as_(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    name = name_of(c.Name)
    # A pass-through node of its own carries the name (union withsource= reports it): the input node
    # may be a let binding used elsewhere without that name.
    named = ir.Select(node.schema, node, [(col.name, ir.Col(col.type, col.name)) for col in node.schema],
                      order=node.order)
    named.as_label = name  # type: ignore[attr-defined]
    env.vars[name] = named
    return named


def invoke(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    call = collapse(c.FunctionCall)
    if rule(call) != "NamedFunctionCallExpression":
        raise Refusal("invoke of this expression", pos(c))
    if name_of(call.Name) == PROJECT_BY_NAMES_CALL:
        from kqlmagic_plus.language.compiler.lower.project import project_by_names

        return project_by_names(lw, call, node, env)
    return lw.tabular_call(call, env, piped=node)
