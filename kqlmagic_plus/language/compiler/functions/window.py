"""Window functions, which need a serialized input: ``prev``, ``next``, ``row_number``, ``row_cumsum``."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import first_type
from kqlmagic_plus.language.compiler.sqlexpr import fn, n
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


def _win(name: str, args: tuple[int, int], ret: Any):
    return scalar(name, args, ret, window=True, category="window")


@_win("prev", (1, 3), first_type)
def _prev(g, c, pred):
    return _lag_lead(g, c, "lag")


@_win("next", (1, 3), first_type)
def _next(g, c, pred):
    return _lag_lead(g, c, "lead")


def _lag_lead(g: Any, c: ir.Call, sql: str) -> exp.Expression:
    args = [g.e(c.args[0])]
    if len(c.args) >= 2:
        args.append(g.e(c.args[1]))
    if len(c.args) == 3:
        args.append(g.d.cast(g.e(c.args[2]), c.type))
    return g.over(fn(sql, *args))


@_win("row_number", (0, 2), T.LONG)
def _row_number(g, c, pred):
    if len(c.args) == 2:
        raise Refusal("row_number with a restart condition")
    rn = g.over(fn("row_number"))
    if c.args:
        return exp.Add(this=rn, expression=exp.Sub(this=g.e(c.args[0]), expression=n(1)))
    return rn


@_win("row_cumsum", (1, 2), lambda a: T.LONG if a[0].type in T.INTEGRAL else a[0].type)
def _row_cumsum(g, c, pred):
    if len(c.args) == 2:
        raise Refusal("row_cumsum with a restart condition")
    return g.over(fn("sum", g.e(c.args[0])), running=True)


# -- internals the lowering produces ----------------------------------------------------------------


@scalar("__serial", 0, T.LONG, category="internal")
def _serial(g, c, pred):
    return g.d.serial_ordinal()


@scalar("__rank", (3, 99), T.LONG, category="internal")
def _rank(g, c, pred):
    nparts = c.args[0].value
    desc = c.args[1].value
    parts = [g.e(a) for a in c.args[2 : 2 + nparts]]
    order_by = g.e(c.args[2 + nparts])
    return exp.Window(
        this=fn("row_number"),
        partition_by=parts or None,
        order=exp.Order(expressions=[exp.Ordered(this=order_by, desc=desc, nulls_first=not desc)]),
    )
