"""SQL for :class:`ir.ScanState`: a recursive CTE that walks the rows in their order, one row a step.

    numbered: the input with its rows numbered in order
    rec:      row 1 with its state from the initial values, then row n+1 from row n's state
    result:   rec's columns, the recursion's number dropped

The recursion runs once per row: fine for the sizes a running state is asked of, slow for millions.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler.sqlexpr import alias, fn, ident, n, table

_RN = "__kqlc_rn"


def emit_scan_state(g: Any, node: ir.ScanState) -> exp.Expression:
    src = g.node(node.input)
    assert node.input.order is not None
    g.qual, g.order = None, None
    rn = exp.Window(this=fn("row_number"), order=exp.Order(expressions=g.order_by(node.input.order)))
    numbered = g.add(exp.Select(expressions=[exp.Star(), alias(rn, _RN)]).from_(table(src)))
    g.recursive = True
    g._n += 1
    rec = f"__kqlc_q{g._n}"
    in_cols = [c.name for c in node.input.schema]

    def state_sql(e: ir.Expr, prev: dict[str, exp.Expression]) -> exp.Expression:
        g.qual = "n"
        sql = g.e(e)
        g.qual = None

        def swap(x: exp.Expression) -> exp.Expression:
            if isinstance(x, exp.Column) and x.name.startswith(node.prev_prefix):
                return prev[x.name[len(node.prev_prefix):]].copy()
            return x

        return g.d.cast(sql.transform(swap), e.type) if e.type in _CASTS else sql.transform(swap)

    inits = {name: g.lit(init) if isinstance(init, ir.Lit) else g.e(init) for name, init, _ in node.state}
    olds = {name: exp.Column(this=ident(name), table=ident("r")) for name, _, _ in node.state}
    keep = [alias(exp.Column(this=ident(c), table=ident("n")), c) for c in in_cols]
    keep.append(alias(exp.Column(this=ident(_RN), table=ident("n")), _RN))
    base = (
        exp.Select(expressions=[*keep, *(alias(state_sql(e, inits), name) for name, _, e in node.state)])
        .from_(table(numbered, "n"))
        .where(exp.EQ(this=exp.Column(this=ident(_RN), table=ident("n")), expression=n(1)))
    )
    step = exp.Select(expressions=[*keep, *(alias(state_sql(e, olds), name) for name, _, e in node.state)]).from_(
        table(rec, "r")
    )
    step = step.join(
        table(numbered, "n"),
        on=exp.EQ(
            this=exp.Column(this=ident(_RN), table=ident("n")),
            expression=exp.Add(this=exp.Column(this=ident(_RN), table=ident("r")), expression=n(1)),
        ),
    )
    g.ctes.append((rec, exp.Union(this=base, expression=step, distinct=False)))
    cols = [alias(exp.column(ident(c.name)), c.name) for c in node.schema]
    return exp.Select(expressions=cols).from_(table(rec))


_CASTS = ("int", "long", "real", "bool")
