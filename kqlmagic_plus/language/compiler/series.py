"""``make-series``: one array per aggregate over a fixed grid of bins, per group.

Three CTEs: aggregate per (group, bin index) inside [start, stop); per group, a map from bin index
to value; per group, the grid 0..n-1 read through the map with the aggregate's default.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.sqlexpr import cast_, fn, n, s
from kqlmagic_plus.language.compiler.syntax import Refusal


def emit_make_series(em: Any, node: ir.MakeSeries) -> exp.Expression:
    d = em.d
    src = em.node(node.input)
    em.qual = None
    em.order = None
    axis_name, axis = node.axis
    dt = axis.type == T.DATETIME
    if axis.type not in (T.DATETIME, T.LONG, T.INT, T.REAL, T.TIMESPAN):
        raise Refusal(f"make-series on a {axis.type} axis")

    def num(e: ir.Expr) -> exp.Expression:
        x = em.e(e)
        return d.ts_to_us(x) if e.type == T.DATETIME else x

    step = num(node.step)
    a = num(axis)
    integral = axis.type in (T.DATETIME, T.LONG, T.INT, T.TIMESPAN) and node.step.type in (T.TIMESPAN, T.LONG, T.INT)
    from_data = node.start is None
    if from_data:
        # No from/to: each series spans its own bins with data (the reference: from the first bin that has
        # data in the series to the upper bound of its last). Bins are bin(axis, step), numbered from zero;
        # per series lo..hi are the first and last numbers, and the grid is lo..hi.
        if axis.type == T.TIMESPAN:
            raise Refusal("make-series without from/to on a timespan axis")
        start = n(0)
        if integral:
            idx = exp.IntDiv(this=exp.Sub(this=a, expression=d.pmod(a, step)), expression=step)
        else:
            idx = cast_(fn("floor", exp.Div(this=a, expression=step)), "BIGINT")
        count = n(0)  # per series, below
    elif integral:
        start, stop = num(node.start), num(node.stop)
        idx = exp.IntDiv(this=exp.Sub(this=a, expression=start), expression=step)
        count = exp.IntDiv(
            this=exp.Add(this=exp.Sub(this=stop, expression=start), expression=exp.Sub(this=step, expression=n(1))),
            expression=step,
        )
    else:
        start, stop = num(node.start), num(node.stop)
        idx = cast_(fn("floor", exp.Div(this=exp.Sub(this=a, expression=start), expression=step)), "BIGINT")
        count = cast_(fn("ceil", exp.Div(this=exp.Sub(this=stop, expression=start), expression=step)), "BIGINT")

    keys = [(name, em.e(e)) for name, e in node.keys]
    key_exprs = [
        exp.Coalesce(this=k, expressions=[s("")]) if e.type == T.STRING else k
        for (_, k), (_, e) in zip(keys, node.keys, strict=True)
    ]
    items = [
        exp.Alias(this=k, alias=exp.to_identifier(name, quoted=True))
        for (name, _), k in zip(keys, key_exprs, strict=True)
    ]
    items.append(exp.Alias(this=idx, alias=exp.to_identifier("__kqlc_i", quoted=True)))
    for i, (_, agg, _) in enumerate(node.aggs):
        items.append(exp.Alias(this=em.e(agg), alias=exp.to_identifier(f"__kqlc_v{i}", quoted=True)))
    in_range = exp.Not(this=exp.Is(this=a, expression=exp.Null())) if from_data else \
        exp.and_(exp.GTE(this=a, expression=start), exp.LT(this=a, expression=stop))
    q1 = exp.Select(expressions=items).from_(exp.Table(this=exp.to_identifier(src, quoted=True))).where(in_range)
    q1 = q1.group_by(*key_exprs, idx)
    step1 = em.add(q1)

    def c(name: str) -> exp.Expression:
        return exp.column(exp.to_identifier(name, quoted=True))

    items2 = [exp.Alias(this=c(name), alias=exp.to_identifier(name, quoted=True)) for name, _ in node.keys]
    for i in range(len(node.aggs)):
        if d.name == "spark":
            m = fn("map_from_entries", fn("collect_list", fn("struct", c("__kqlc_i"), c(f"__kqlc_v{i}"))))
        else:
            m = fn(
                "map_from_entries",
                fn(
                    "list",
                    fn(
                        "struct_pack",
                        exp.PropertyEQ(this=exp.to_identifier("k"), expression=c("__kqlc_i")),
                        exp.PropertyEQ(this=exp.to_identifier("v"), expression=c(f"__kqlc_v{i}")),
                    ),
                ),
            )
        items2.append(exp.Alias(this=m, alias=exp.to_identifier(f"__kqlc_m{i}", quoted=True)))
    if from_data:
        for bound, agg_fn in (("__kqlc_lo", exp.Min), ("__kqlc_hi", exp.Max)):
            items2.append(exp.Alias(this=agg_fn(this=c("__kqlc_i")), alias=exp.to_identifier(bound, quoted=True)))
    q2 = exp.Select(expressions=items2).from_(exp.Table(this=exp.to_identifier(step1, quoted=True)))
    if node.keys:
        q2 = q2.group_by(*[c(name) for name, _ in node.keys])
    step2 = em.add(q2)

    if from_data:
        count = exp.Add(this=exp.Sub(this=c("__kqlc_hi"), expression=c("__kqlc_lo")), expression=n(1))
    grid = em.sequence(count)
    x = exp.column("x")
    # the map key of grid position x: the bin number (from_data) or the position itself
    key = exp.Add(this=c("__kqlc_lo"), expression=x) if from_data else x
    items3: list[exp.Expression] = [
        exp.Alias(this=c(name), alias=exp.to_identifier(name, quoted=True)) for name, _ in node.keys
    ]
    for i, (name, agg, default) in enumerate(node.aggs):
        m = c(f"__kqlc_m{i}")
        got = fn("try_element_at", m, key) if d.name == "spark" else fn("map_extract_value", m, key)
        dflt = em.e(default)
        body = exp.Coalesce(this=got, expressions=[d.cast(dflt, agg.type)])
        arr = fn(
            "transform" if d.name == "spark" else "list_transform",
            grid,
            exp.Lambda(this=body, expressions=[exp.to_identifier("x")]),
        )
        if agg.type in (T.DATETIME, T.TIMESPAN, T.DYNAMIC, T.DECIMAL):
            elem = d.dyn_from_scalar(exp.column("y"), agg.type)
            arr = fn(
                "transform" if d.name == "spark" else "list_transform",
                arr,
                exp.Lambda(this=elem, expressions=[exp.to_identifier("y")]),
            )
        items3.append(exp.Alias(this=d.dyn_array_from_sql_array(arr), alias=exp.to_identifier(name, quoted=True)))
    point = exp.Mul(this=key, expression=step) if from_data else \
        exp.Add(this=start, expression=exp.Mul(this=x, expression=step))
    if dt:
        point = d.dyn_from_scalar(d.us_to_ts(point), T.DATETIME)
    axis_arr = fn(
        "transform" if d.name == "spark" else "list_transform",
        grid,
        exp.Lambda(this=point, expressions=[exp.to_identifier("x")]),
    )
    items3.append(exp.Alias(this=d.dyn_array_from_sql_array(axis_arr), alias=exp.to_identifier(axis_name, quoted=True)))
    out = exp.Select(expressions=items3).from_(exp.Table(this=exp.to_identifier(step2, quoted=True)))
    if not node.keys and not node.nonempty:
        # Without by keys the step above aggregates to one row even over no input; Kusto gives no row then
        # (kind=nonempty asks for the row of defaults). Rows outside the range still make the one row.
        probe = exp.Select(expressions=[n(1)]).from_(exp.Table(this=exp.to_identifier(src, quoted=True)))
        out = out.where(exp.Exists(this=probe))
    return out
