"""KQL aggregation functions (``summarize``), written once over the dialect primitives.

Where SQL and KQL disagree on empty or all-null groups, KQL wins: ``sum`` is 0, ``make_list`` is
``[]``, ``stdev``/``variance`` are 0 and ``avg`` is NaN (measured on Kusto by duckdb-kql's authors
and documented in the summarize page's "default values" table).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, dtype, fn, n, s, try_cast_
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
aggregate = TABLE.aggregate


def _sum_type(a: list[ir.Expr]) -> str:
    t = a[0].type
    if t in T.INTEGRAL:
        return T.LONG
    return t if t in (T.REAL, T.DECIMAL, T.TIMESPAN) else T.REAL


def _value(g: Any, e: ir.Expr) -> exp.Expression:
    """An aggregated value; a SQL NULL string (an outer join's missing side ...) is KQL's "", and is
    counted, compared and collected as the "" it stands for."""
    x = g.e(e)
    return exp.Coalesce(this=x, expressions=[s("")]) if e.type == T.STRING else x


def _any(g: Any, e: ir.Expr, cond: ir.Expr | None) -> exp.Expression:
    """take_any: a non-null value where the group has one (Spark's any_value takes the first row's, null or
    not, unless told to skip nulls); for a string a non-empty one, as the reference says Kusto attempts."""
    x = g.e(e)
    if e.type == T.STRING:
        x = fn("NULLIF", x, s(""))
    x = _only_if(g, x, cond)
    picked = fn("any_value", x, exp.true()) if g.d.name == "spark" else fn("any_value", x)
    return exp.Coalesce(this=picked, expressions=[s("")]) if e.type == T.STRING else picked


def _only_if(g: Any, value: exp.Expression, cond: ir.Expr | None) -> exp.Expression:
    if cond is None:
        return value
    return case([(g.e(cond, pred=True), value)])


@aggregate("count", (0, 1), T.LONG)
def _count(g, a):
    # count(x) counts the group's records, nulls of x included (the summarize page's default-values
    # section counts a null and a 5 as 2): it is not SQL's COUNT(x).
    return exp.Count(this=exp.Star())


@aggregate("countif", 1, T.LONG, coerce="bool")
def _countif(g, a):
    return g.d.count_if(g.e(a.args[0], pred=True))


@aggregate(
    "dcount", (1, 2), T.LONG, note="exact distinct count (KQL's is an estimate that is exact at small cardinalities)"
)
def _dcount(g, a):
    return exp.Count(this=exp.Distinct(expressions=[_value(g, a.args[0])]))


@aggregate("count_distinct", 1, T.LONG)
def _count_distinct(g, a):
    return exp.Count(this=exp.Distinct(expressions=[_value(g, a.args[0])]))


@aggregate("dcountif", (2, 3), T.LONG)
def _dcountif(g, a):
    return exp.Count(this=exp.Distinct(expressions=[_only_if(g, _value(g, a.args[0]), a.args[1])]))


def _sum(g: Any, a: ir.Agg, cond: ir.Expr | None) -> exp.Expression:
    x = g.e(a.args[0])
    if a.args[0].type == T.INT:
        x = cast_(x, "BIGINT")
    total: exp.Expression = exp.Sum(this=_only_if(g, x, cond))
    if a.type in (T.LONG, T.TIMESPAN):
        total = cast_(total, "BIGINT")  # DuckDB sums BIGINT into HUGEINT
    zero = cast_(n(0), "DOUBLE") if a.type == T.REAL else n(0)
    return exp.Coalesce(this=total, expressions=[zero])


@aggregate("sum", 1, _sum_type)
def _sum_agg(g, a):
    return _sum(g, a, None)


@aggregate("sumif", 2, _sum_type)
def _sumif(g, a):
    return _sum(g, a, a.args[1])


def _nan() -> exp.Expression:
    return cast_(s("NaN"), "DOUBLE")


@aggregate("avg", 1, T.REAL)
def _avg(g, a):
    return exp.Coalesce(this=exp.Avg(this=g.e(a.args[0])), expressions=[_nan()])


@aggregate("avgif", 2, T.REAL)
def _avgif(g, a):
    return exp.Coalesce(this=exp.Avg(this=_only_if(g, g.e(a.args[0]), a.args[1])), expressions=[_nan()])


@aggregate("min", 1, lambda a: a[0].type)
def _min(g, a):
    return exp.Min(this=_value(g, a.args[0]))


@aggregate("max", 1, lambda a: a[0].type)
def _max(g, a):
    return exp.Max(this=_value(g, a.args[0]))


@aggregate("minif", 2, lambda a: a[0].type)
def _minif(g, a):
    return exp.Min(this=_only_if(g, _value(g, a.args[0]), a.args[1]))


@aggregate("maxif", 2, lambda a: a[0].type)
def _maxif(g, a):
    return exp.Max(this=_only_if(g, _value(g, a.args[0]), a.args[1]))


def _stat(sql: str, cond: bool):
    def emit(g, a):
        x = _only_if(g, cast_(g.e(a.args[0]), "DOUBLE"), a.args[1] if cond else None)
        return exp.Coalesce(this=fn(sql, x), expressions=[cast_(n(0), "DOUBLE")])

    return emit


aggregate("stdev", 1, T.REAL)(_stat("stddev_samp", False))
aggregate("stdevif", 2, T.REAL)(_stat("stddev_samp", True))
aggregate("stdevp", 1, T.REAL)(_stat("stddev_pop", False))
aggregate("variance", 1, T.REAL)(_stat("var_samp", False))
aggregate("varianceif", 2, T.REAL)(_stat("var_samp", True))
aggregate("variancep", 1, T.REAL)(_stat("var_pop", False))


@aggregate("take_any", (1, 99), lambda a: a[0].type, aliases=("any",))
def _take_any(g, a):
    if len(a.args) > 1:
        raise Refusal("take_any with several arguments")
    return _any(g, a.args[0], None)


@aggregate("take_anyif", 2, lambda a: a[0].type, aliases=("anyif",))
def _take_anyif(g, a):
    return _any(g, a.args[0], a.args[1])


def _element(g: Any, e: ir.Expr) -> exp.Expression:
    """A value as an element of a collected list: plain SQL scalars stay, the rest become dynamic."""
    if e.type == T.STRING:
        return _value(g, e)
    x = g.e(e)
    if e.type in (T.LONG, T.INT, T.BOOL, T.REAL, T.GUID):
        return x
    return g.d.dyn_from_scalar(x, e.type)


def _not_null(g: Any, e: ir.Expr, x: exp.Expression) -> exp.Expression:
    if e.type == T.DYNAMIC:
        return exp.Not(this=g.d.dyn_is(g.e(e), "null"))
    return exp.Not(this=exp.Is(this=x, expression=exp.null()))


def _collect(g: Any, a: ir.Agg, distinct: bool, cond: ir.Expr | None, limit: ir.Expr | None) -> exp.Expression:
    arg = a.args[0]
    d = g.d
    if arg.type == T.DYNAMIC:
        return _flatten_dynamic(g, arg, distinct, cond, limit)
    x = _element(g, arg)
    keep = _not_null(g, arg, x)
    if cond is not None:
        keep = exp.and_(keep, g.e(cond, pred=True))
    if d.name == "spark":
        if arg.type == T.DYNAMIC:
            # Variants cannot be compared or collected as a set; collect JSON text and parse back.
            coll = fn("collect_list", case([(keep, fn("to_json", x))]))
            arr = fn(
                "transform",
                coll,
                exp.Lambda(this=fn("parse_json", exp.column("j")), expressions=[exp.to_identifier("j")]),
            )
        else:
            arr = fn("collect_set" if distinct else "collect_list", case([(keep, x)]))
    else:
        arr = exp.Filter(this=fn("list", x), expression=exp.Where(this=keep))
        if distinct:
            arr = fn("list_distinct", arr)
        arr = exp.Coalesce(this=arr, expressions=[exp.Array(expressions=[])])
    if limit is not None:
        arr = d.array_slice(arr, n(0), g.e(limit))
    return d.dyn_array_from_sql_array(arr)


def _flatten_dynamic(
    g: Any, arg: ir.Expr, distinct: bool, cond: ir.Expr | None, limit: ir.Expr | None
) -> exp.Expression:
    # make_list and make_set over dynamic values add an array's elements, one level deep (a scalar or a
    # bag counts as one element): the reference relies on it (make_set's "Set from array column", the
    # MultiPolygon built with make_list(pack_array(...)) in geo_point_in_polygon, make_list over
    # mv-apply'd rings in geo_h3cell_rings, pack_array(make_list(x)) in the plotly page). maxSize counts
    # the elements after flattening ("the maximum number of elements returned").
    v = g.e(arg)
    keep = exp.Not(this=g.d.dyn_is(v, "null"))
    if cond is not None:
        keep = exp.and_(keep, g.e(cond, pred=True))
    if g.d.name == "spark":
        elems = exp.Coalesce(this=g.d.dyn_array_elements(v), expressions=[fn("array", v)])
        texts = fn(
            "transform", elems, exp.Lambda(this=fn("to_json", exp.column("e")), expressions=[exp.to_identifier("e")])
        )
        flat = fn("flatten", fn("collect_list", case([(keep, texts)])))
        if distinct:
            flat = fn("array_distinct", flat)
        if limit is not None:
            flat = g.d.array_slice(flat, n(0), g.e(limit))
        return fn(
            "to_variant_object",
            fn(
                "transform",
                flat,
                exp.Lambda(this=fn("parse_json", exp.column("j")), expressions=[exp.to_identifier("j")]),
            ),
        )
    elems = exp.Coalesce(this=g.d.dyn_array_elements(v), expressions=[fn("list_value", v)])
    flat = fn("flatten", exp.Filter(this=fn("list", elems), expression=exp.Where(this=keep)))
    if distinct:
        flat = fn("list_distinct", flat)
    flat = exp.Coalesce(this=flat, expressions=[exp.Array(expressions=[])])
    if limit is not None:
        flat = g.d.array_slice(flat, n(0), g.e(limit))
    return fn("to_json", flat)


@aggregate("make_list", (1, 2), T.DYNAMIC, aliases=("makelist",))
def _make_list(g, a):
    return _collect(g, a, False, None, a.args[1] if len(a.args) > 1 else None)


@aggregate("make_list_if", (2, 3), T.DYNAMIC, aliases=("makelist_if",))
def _make_list_if(g, a):
    return _collect(g, a, False, a.args[1], a.args[2] if len(a.args) > 2 else None)


@aggregate("make_set", (1, 2), T.DYNAMIC, aliases=("makeset",))
def _make_set(g, a):
    return _collect(g, a, True, None, a.args[1] if len(a.args) > 1 else None)


@aggregate("make_set_if", (2, 3), T.DYNAMIC, aliases=("makeset_if",))
def _make_set_if(g, a):
    return _collect(g, a, True, a.args[1], a.args[2] if len(a.args) > 2 else None)


@aggregate("make_bag", (1, 2), T.DYNAMIC, aliases=("make_dictionary",))
def _make_bag(g, a):
    return _bag(g, a.args[0], None)


@aggregate("make_bag_if", (2, 3), T.DYNAMIC)
def _make_bag_if(g, a):
    return _bag(g, a.args[0], a.args[1])


def _bag(g: Any, arg: ir.Expr, cond: ir.Expr | None) -> exp.Expression:
    v = g.e(arg)
    is_bag = g.d.dyn_is(v, "object")
    if cond is not None:
        is_bag = exp.and_(is_bag, g.e(cond, pred=True))
    if g.d.name == "spark":
        mtype = dtype("MAP<STRING, VARIANT>", dialect="spark")
        entries = fn("flatten", fn("collect_list", case([(is_bag, fn("map_entries", try_cast_(this=v, to=mtype)))])))
        acc, e = exp.column("acc"), exp.column("e")
        key = exp.Dot(this=e, expression=exp.to_identifier("key"))
        val = exp.Dot(this=e, expression=exp.to_identifier("value"))
        step = case([(fn("map_contains_key", acc, key), acc)], fn("map_concat", acc, fn("map", key, val)))
        merged = fn(
            "aggregate",
            entries,
            exp.Cast(this=fn("map"), to=mtype),
            exp.Lambda(this=step, expressions=[exp.to_identifier("acc"), exp.to_identifier("e")]),
        )
        return fn("to_variant_object", merged)
    items = exp.Filter(this=fn("list", v), expression=exp.Where(this=is_bag))
    merged = fn(
        "list_reduce",
        items,
        exp.Lambda(
            this=fn("json_merge_patch", exp.column("b"), exp.column("a")),
            expressions=[exp.to_identifier("a"), exp.to_identifier("b")],
        ),
    )
    return exp.Coalesce(
        this=case([(exp.GT(this=fn("len", items), expression=n(0)), merged)]), expressions=[cast_(s("{}"), "JSON")]
    )


@aggregate(
    "percentile",
    2,
    lambda a: a[0].type,
    note="nearest-rank (exact), where KQL estimates on large inputs",
)
def _percentile(g, a):
    p = a.args[1]
    if not (isinstance(p, ir.Lit) and isinstance(p.value, (int, float))):
        raise Refusal("percentile with a computed percentage")
    x = g.e(a.args[0])
    if a.args[0].type == T.DATETIME:
        return g.d.us_to_ts(g.d.percentile(g.d.ts_to_us(x), float(p.value) / 100.0))
    return g.d.percentile(x, float(p.value) / 100.0)


# -- counting rows, bitwise folds, covariances, weighted percentiles (KQL reference conformance) ---------------


def _bits(sql: str):
    def emit(g, a):
        return fn(sql, cast_(g.e(a.args[0]), "BIGINT"))

    return emit


aggregate("binary_all_and", 1, T.LONG)(_bits("bit_and"))
aggregate("binary_all_or", 1, T.LONG)(_bits("bit_or"))
aggregate("binary_all_xor", 1, T.LONG)(_bits("bit_xor"))
aggregate("stdevpif", 2, T.REAL)(_stat("stddev_pop", True))
aggregate("variancepif", 2, T.REAL)(_stat("var_pop", True))


def _covar(sql: str, cond: bool):
    def emit(g, a):
        c = a.args[2] if cond else None
        x = _only_if(g, cast_(g.e(a.args[0]), "DOUBLE"), c)
        y = _only_if(g, cast_(g.e(a.args[1]), "DOUBLE"), c)
        return exp.Coalesce(this=fn(sql, x, y), expressions=[cast_(n(0), "DOUBLE")])

    return emit


aggregate("covariance", 2, T.REAL)(_covar("covar_samp", False))
aggregate("covarianceif", 3, T.REAL)(_covar("covar_samp", True))
aggregate("covariancep", 2, T.REAL)(_covar("covar_pop", False))
aggregate("covariancepif", 3, T.REAL)(_covar("covar_pop", True))


@aggregate("make_list_with_nulls", 1, T.DYNAMIC)
def _make_list_with_nulls(g, a):
    x = _element(g, a.args[0])
    if g.d.name == "spark":
        # collect_list drops nulls; a one-field struct around each value keeps them.
        boxed = fn("collect_list", fn("named_struct", s("v"), x))
        arr = fn("transform", boxed, exp.Lambda(this=exp.Dot(this=exp.column("e"), expression=exp.to_identifier("v")),
                                                expressions=[exp.to_identifier("e")]))
    else:
        arr = exp.Coalesce(this=fn("list", x), expressions=[exp.Array(expressions=[])])
    return g.d.dyn_array_from_sql_array(arr)


def weighted_percentile(g: Any, value: ir.Expr, weight: ir.Expr, p: ir.Expr) -> exp.Expression:
    """Weighted nearest rank: the smallest value whose cumulative weight reaches p% of the total.

    One fold over the values sorted (the accumulator carries the running weight, the answer once found and
    the target), so a group costs a sort and a pass, not a quadratic scan.
    """
    if not (isinstance(p, ir.Lit) and isinstance(p.value, int | float)):
        raise Refusal("percentilesw with a computed percentage")
    if value.type not in T.NUMERIC:
        raise Refusal(f"percentilesw of a {value.type}")
    x, w = g.e(value), cast_(g.e(weight), "DOUBLE")
    keep = exp.and_(exp.Not(this=exp.Is(this=x, expression=exp.null())),
                    exp.Not(this=exp.Is(this=w, expression=exp.null())))
    acc, e = exp.column("acc"), exp.column("e")

    def f(obj: exp.Expression, name: str) -> exp.Expression:
        return exp.Dot(this=obj, expression=exp.to_identifier(name))

    vtype = g.d.sql_type(value.type)
    target = exp.Mul(this=n(float(p.value) / 100.0), expression=fn("sum", w))
    start = g.d.struct([("c", cast_(n(0), "DOUBLE")), ("r", exp.Cast(this=exp.null(), to=vtype)), ("t", target)])
    cum = exp.Add(this=f(acc, "c"), expression=f(e, "w"))
    found = case([(exp.GTE(this=cum, expression=f(acc, "t")), f(e, "v"))], exp.Cast(this=exp.null(), to=vtype))
    step = case([(exp.Not(this=exp.Is(this=f(acc, "r"), expression=exp.null())), acc)],
                g.d.struct([("c", cum), ("r", found), ("t", f(acc, "t"))]))
    lam = exp.Lambda(this=step, expressions=[exp.to_identifier("acc"), exp.to_identifier("e")])
    pair = g.d.struct([("v", x), ("w", w)])
    if g.d.name == "spark":
        arr = fn("array_sort", fn("collect_list", case([(keep, pair)])))
        return fn("aggregate", arr, start, lam, exp.Lambda(this=f(acc, "r"), expressions=[exp.to_identifier("acc")]))
    arr = fn("list_sort", exp.Filter(this=fn("list", pair), expression=exp.Where(this=keep)))
    return f(exp.Paren(this=fn("list_reduce", arr, lam, start)), "r")


@aggregate("percentilew", 3, lambda a: a[0].type)
def _percentilew(g, a):
    return weighted_percentile(g, a.args[0], a.args[1], a.args[2])


@aggregate("percentilesw_array", (3, 99), T.DYNAMIC)
def _percentilesw_array(g, a):
    ps = list(a.args[2:])
    if len(ps) == 1 and isinstance(ps[0], ir.Lit) and isinstance(ps[0].value, list):
        ps = [ir.Lit(T.REAL, v) for v in ps[0].value]
    items = [weighted_percentile(g, a.args[0], a.args[1], p) for p in ps]
    arr = fn("array", *items) if g.d.name == "spark" else fn("list_value", *items)
    return g.d.dyn_array_from_sql_array(arr)


@aggregate("count_distinctif", 2, T.LONG)
def _count_distinctif(g, a):
    return exp.Count(this=exp.Distinct(expressions=[_only_if(g, _value(g, a.args[0]), a.args[1])]))


@aggregate("percentiles_array", (2, 99), T.DYNAMIC)
def _percentiles_array(g, a):
    ps = list(a.args[1:])
    if len(ps) == 1 and isinstance(ps[0], ir.Lit) and isinstance(ps[0].value, list):
        ps = [ir.Lit(T.REAL, v) for v in ps[0].value]
    items = [_percentile(g, ir.Agg(a.args[0].type, "percentile", (a.args[0], p))) for p in ps]
    arr = fn("array", *items) if g.d.name == "spark" else fn("list_value", *items)
    return g.d.dyn_array_from_sql_array(arr)


@aggregate("buildschema", 1, T.DYNAMIC)
def _buildschema(g, a):
    # The group's values go to Python as one JSON array of their JSON texts (udfs/parse.py merges them).
    from kqlmagic_plus.language import udfs

    v = g.e(a.args[0])
    text = g.d.dyn_to_json_text(v)
    keep = exp.Not(this=g.d.dyn_is(v, "null"))
    if g.d.name == "spark":
        texts = fn("to_json", fn("collect_list", case([(keep, text)])))
    else:
        texts = fn("to_json", exp.Coalesce(this=exp.Filter(this=fn("list", text), expression=exp.Where(this=keep)),
                                           expressions=[exp.Array(expressions=[])]))
    return g.d.dyn_from_json_text(udfs.call("buildschema", texts))
