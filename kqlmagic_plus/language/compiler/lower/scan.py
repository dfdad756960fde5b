"""The ``scan`` operator, where it is a running state over ordered rows.

A scan of one step whose condition is ``true`` matches every row: each row's state follows from the
row and the previous row's state, a recurrence SQL writes as a recursive CTE over the rows numbered in
order (``emit_scan.py``). Scans of several steps are matching automata with no such form and are
refused by name, as are the step options (``output=``, ``with_match_id``, ``partition by``) not read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.coerce import coerce_to, convert_literal, literal
from kqlmagic_plus.language.compiler.lower.projection import is_window
from kqlmagic_plus.language.compiler.lower.scope import Env, Scope
from kqlmagic_plus.language.compiler.parsetree import collapse, rule, rule_children
from kqlmagic_plus.language.compiler.syntax import Pos, Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

_PREV = "__kqlc_prev_"


def scan(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    if list(c.Parameters):
        raise Refusal("scan with_match_id", pos(c))
    if c.OrderByClause is not None or c.PartitionByClause is not None:
        raise Refusal("scan with order by / partition by", pos(c))
    steps = list(c.Steps)
    if len(steps) != 1:
        raise Refusal("scan of several steps", pos(c), "only a one-step scan (a running state) translates to SQL")
    step = steps[0]
    if step.OutputClause is not None:
        raise Refusal("scan step output=", pos(step))
    cond = collapse(step.Expression)
    if rule(cond) != "BooleanLiteralExpression" or cond.getText().lower() != "true":
        raise Refusal("scan step with a condition other than true", pos(step))
    if node.order is None:
        raise Refusal("scan of unserialized rows", pos(c), "sort or serialize the rows first")
    declared: list[tuple[str, str, ir.Expr]] = []
    if c.DeclareClause is not None:
        for p in rule_children(c.DeclareClause):
            if rule(p) != "ScalarParameter":
                continue
            name = name_of(p.Name)
            t = T.type_from_word(p.Type.getText())
            if t is None:
                raise Refusal(f"scan state of type {p.Type.getText()}", pos(p))
            if name in node.schema:
                raise Refusal("scan state named like an input column", pos(p))
            init = convert_literal(literal(p.Default.Value), t, pos(p)) if p.Default is not None else ir.Lit(t, None)
            declared.append((name, t, init))
    prev = {name: ir.Col(t, _PREV + name) for name, t, _ in declared}
    sc = Scope(node.schema, env, serialized=True, steps={name_of(step.Name): prev})
    assigned: dict[str, ir.Expr] = {}
    types = {name: t for name, t, _ in declared}
    if step.Body is not None:
        for a in step.Body.Assignments:
            target = name_of(a.Name)
            if target not in types:
                raise SemanticError(f"scan assigns {target!r}, which its declare clause does not declare", pos(a))
            e = lw.expr(a.Expression, sc)
            if any(is_window(x) or isinstance(x, ir.ScalarSubquery | ir.InSubquery) for x in ir.walk(e)):
                raise Refusal("scan step with a window function or subquery", pos(a))
            assigned[target] = coerce_to(e, types[target], pos(a))
    # A state the step does not assign keeps its previous value.
    state = [(name, init, assigned.get(name, prev[name])) for name, _, init in declared]
    cols = [*node.schema.columns, *(Column(name, t) for name, t, _ in declared)]
    return ir.ScanState(Schema(cols), node, state, _PREV, order=node.order)


def step_ref(prev: dict[str, ir.Expr], ops: list[Any], where: Pos) -> ir.Expr:
    """``s1.name``: the previous row's state *name*."""
    if len(ops) != 1 or rule(collapse(ops[0])) != "FunctionCallOrPathPathOperation":
        raise Refusal("scan step reference other than step.name", where)
    name = name_of(collapse(ops[0]).Name)
    if name not in prev:
        raise SemanticError(f"{name!r} is not a declared scan state", where)
    return prev[name]
