"""Window functions with a restart condition: ``row_number(start, restart)``, ``row_cumsum(x, restart)``,
``row_rank_min(x [, restart])``, ``row_rank_dense(x [, restart])``.

A restart condition usually reads the previous row (``Category != prev(Category)``), and SQL nests no window
function inside another. So the lowering (``lower/restart.py``) computes the condition into a column first, then
the running count of restarts (the segment each row is in), and the function itself over the rows of its segment;
these internal functions are the segment-wise windows it writes.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.sqlexpr import fn, n

TABLE = Table()
scalar = TABLE.scalar


def _over(g: Any, func: exp.Expression, seg: exp.Expression | None, running: bool) -> exp.Expression:
    if not g.order:
        from kqlmagic_plus.language.compiler.syntax import Refusal

        raise Refusal("window function over unserialized rows")
    spec = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end="CURRENT ROW") \
        if running else None
    return exp.Window(this=func, partition_by=[seg] if seg is not None else None,
                      order=exp.Order(expressions=g.order_by(g.order)), spec=spec)


@scalar("__segment", 1, T.LONG, category="internal", window=True)
def _segment(g, c, pred):
    # The running count of rows whose restart condition holds (a null condition does not restart).
    flag = exp.Case(ifs=[exp.If(this=g.e(c.args[0]), true=n(1))], default=n(0))
    return _over(g, fn("sum", flag), None, True)


@scalar("__seg_row_number", 1, T.LONG, category="internal", window=True)
def _seg_row_number(g, c, pred):
    return _over(g, fn("row_number"), g.e(c.args[0]), False)


@scalar("__seg_changed", 2, T.BOOL, category="internal", window=True)
def _seg_changed(g, c, pred):
    """The value differs from the previous row's in the segment (the segment's first row counts as a change)."""
    seg, v = g.e(c.args[0]), g.e(c.args[1])
    first = exp.EQ(this=_over(g, fn("row_number"), seg, False), expression=n(1))
    lag = _over(g, fn("lag", v), seg, False)
    return exp.or_(first, exp.NullSafeEQ(this=lag, expression=v).not_())


@scalar("__seg_running_max", 2, lambda a: a[1].type, category="internal", window=True)
def _seg_running_max(g, c, pred):
    return _over(g, fn("max", g.e(c.args[1])), g.e(c.args[0]), True)


@scalar("__seg_running_sum", 2, lambda a: T.LONG if a[1].type in T.INTEGRAL else a[1].type, category="internal",
        window=True)
def _seg_running_sum(g, c, pred):
    return _over(g, fn("sum", g.e(c.args[1])), g.e(c.args[0]), True)


def _staged_only(name: str, args: tuple[int, int] = (1, 2), ret: Any = T.LONG):
    def emit(g, c, pred):
        from kqlmagic_plus.language.compiler.syntax import Refusal

        # lower/restart.py rewrites every call in extend/project; one reaching here sits elsewhere (a where, a
        # summarize).
        raise Refusal(f"{name}() outside extend / project")

    return scalar(name, args, ret, window=True, category="window")(emit)


_staged_only("row_rank_min")
_staged_only("row_rank_dense")
_staged_only("row_window_session", (3, 4), lambda a: a[0].type)
