"""Window functions with a restart condition, lowered in stages (see ``functions/window_restart.py``).

``row_rank_min(Value, Category != prev(Category))`` becomes: a hidden column with the condition, one with the
running count of restarts (the segment), one with each row's position and whether its value differs from the
previous row's in the segment, and the function as a running aggregate over the segment. Each stage reads only
columns of the stage before, so no window function nests in another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.coerce import coerce_to
from kqlmagic_plus.language.compiler.lower.projection import select_with
from kqlmagic_plus.language.compiler.syntax import Pos, Refusal
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

#: function -> the index of its restart argument.
RESTART_ARG = {"row_number": 1, "row_cumsum": 1, "row_rank_min": 1, "row_rank_dense": 1, "row_window_session": 3}
#: functions whose restart argument is optional but which are only lowered here.
STAGED = {"row_rank_min", "row_rank_dense", "row_window_session"}


def needs_staging(e: ir.Expr) -> bool:
    return any(isinstance(x, ir.Call) and _staged(x) for x in ir.walk(e))


def _staged(c: ir.Call) -> bool:
    return c.fn in STAGED or (c.fn in RESTART_ARG and len(c.args) > RESTART_ARG[c.fn])


def lift(lw: Lowerer, node: ir.Node, e: ir.Expr, where: Pos | None) -> tuple[ir.Node, ir.Expr]:
    """(*node* with the stages *e*'s restartable window functions need, *e* reading them)."""
    if not needs_staging(e):
        return node, e

    def visit(x: ir.Expr) -> ir.Expr:
        nonlocal node
        if isinstance(x, ir.Call):
            args = tuple(visit(a) for a in x.args)
            x = ir.Call(x.type, x.fn, args)
            if _staged(x):
                node, out = _stage(lw, node, x, where)
                return out
        return x

    out = visit(e)  # (visit moves node on: read it after)
    return node, out


def _hidden(lw: Lowerer, node: ir.Node, e: ir.Expr) -> tuple[ir.Node, ir.Col]:
    name = lw.hidden_name()
    return select_with(node, [(name, e)]), ir.Col(e.type, name)


def _stage(lw: Lowerer, node: ir.Node, c: ir.Call, where: Pos | None) -> tuple[ir.Node, ir.Expr]:
    have = set(node.schema.names())
    if not all(ir.columns_used(a) <= have for a in c.args):
        raise Refusal(f"{c.fn} over a column the same operator defines", where, "compute it in an extend before")
    if c.fn == "row_window_session":
        return _session(lw, node, c, where)
    k = RESTART_ARG[c.fn]
    if len(c.args) > k:
        node, flag = _hidden(lw, node, coerce_to(c.args[k], T.BOOL, where))
        node, seg = _hidden(lw, node, ir.Call(T.LONG, "__segment", (flag,)))
    else:
        seg = None  # one segment: all the rows
        node, seg = _hidden(lw, node, ir.Call(T.LONG, "__segment", (ir.Lit(T.BOOL, False),)))
    if c.fn == "row_number":
        node, rn = _hidden(lw, node, ir.Call(T.LONG, "__seg_row_number", (seg,)))
        start = coerce_to(c.args[0], T.LONG, where)
        return node, ir.Call(T.LONG, "-", (ir.Call(T.LONG, "+", (rn, start)), ir.Lit(T.LONG, 1)))
    if c.fn == "row_cumsum":
        return node, ir.Call(c.type, "__seg_running_sum", (seg, c.args[0]))
    node, rn = _hidden(lw, node, ir.Call(T.LONG, "__seg_row_number", (seg,)))
    node, changed = _hidden(lw, node, ir.Call(T.BOOL, "__seg_changed", (seg, c.args[0])))
    if c.fn == "row_rank_min":
        start = ir.Call(T.LONG, "iff", (changed, rn, ir.Lit(T.LONG, None)))
        return node, ir.Call(T.LONG, "__seg_running_max", (seg, start))
    one = ir.Call(T.LONG, "iff", (changed, ir.Lit(T.LONG, 1), ir.Lit(T.LONG, 0)))
    return node, ir.Call(T.LONG, "__seg_running_sum", (seg, one))


_PREV = "__kqlc_prev_"


def _session(lw: Lowerer, node: ir.Node, c: ir.Call, where: Pos | None) -> tuple[ir.Node, ir.Expr]:
    """row_window_session(x, max_from_first, max_between_neighbours [, restart]): each row's session start,
    which depends on the previous row's (a session ends when a row is further than max_from_first from its
    start or than max_between_neighbours from the row before): a running state, lowered as a one-step scan."""
    if len(c.args) < 3:
        raise Refusal("row_window_session with fewer than 3 arguments", where)
    x, first, neighbours = c.args[:3]
    if x.type not in (T.DATETIME, *T.NUMERIC):
        raise Refusal(f"row_window_session over a {x.type}", where)
    span = T.TIMESPAN if x.type == T.DATETIME else x.type
    first, neighbours = coerce_to(first, span, where), coerce_to(neighbours, span, where)
    node, before = _hidden(lw, node, ir.Call(x.type, "prev", (x,)))
    restart = coerce_to(c.args[3], T.BOOL, where) if len(c.args) > 3 else ir.Lit(T.BOOL, False)
    node, flag = _hidden(lw, node, restart)
    name = lw.hidden_name()
    start = ir.Col(x.type, _PREV + name)

    def over(a: ir.Expr, b: ir.Expr, limit: ir.Expr) -> ir.Expr:
        gap = ir.Call(span, "-", (a, b))
        return ir.Call(T.BOOL, "coalesce", (ir.Call(T.BOOL, ">", (gap, limit)), ir.Lit(T.BOOL, False)))

    new = ir.Call(T.BOOL, "or", (
        ir.Call(T.BOOL, "isnull", (start,)),
        ir.Call(T.BOOL, "coalesce", (flag, ir.Lit(T.BOOL, False))),
        over(x, start, first),
        over(x, before, neighbours),
    ))
    step = ir.Call(x.type, "iff", (new, x, start))
    if node.order is None:
        raise Refusal("row_window_session over unserialized rows", where, "sort or serialize the rows first")
    cols = [*node.schema.columns, Column(name, x.type)]
    scanned = ir.ScanState(Schema(cols), node, [(name, ir.Lit(x.type, None), step)], _PREV, order=node.order)
    return scanned, ir.Col(x.type, name)
