"""Dynamic values: arrays (``pack_array``, ``array_*``, ``set_*``, ``range``), property bags (``bag_*``),
``gettype``, ``extract_json`` and the path steps ``d.a[0].b`` lowers to.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import big, elements_as, lit_str
from kqlmagic_plus.language.compiler.functions.conversions import dynamic_of, parse_json_expr, to_string
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, fn, n, s
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


@scalar("array_length", 1, T.LONG, aliases=("arraylength",), coerce="dynamic")
def _array_length(g, c, pred):
    return big(g.d.dyn_array_length(g.e(c.args[0])))


def _to_dyn(g: Any, a: ir.Expr) -> exp.Expression:
    return dynamic_of(g, a)


@scalar("pack_array", (0, 999), T.DYNAMIC)
def _pack_array(g, c, pred):
    return g.d.dyn_array([_to_dyn(g, a) for a in c.args])


@scalar("bag_pack", (0, 999), T.DYNAMIC, aliases=("pack", "pack_dictionary"))
def _bag_pack(g, c, pred):
    if len(c.args) % 2:
        raise Refusal("bag_pack with an odd number of arguments")
    keys = [lit_str(c.args[i]) for i in range(0, len(c.args), 2)]
    values = [_to_dyn(g, c.args[i + 1]) for i in range(0, len(c.args), 2)]
    if all(k is not None for k in keys):
        return g.d.dyn_object([(k, v) for k, v in zip(keys, values, strict=True)])  # type: ignore[misc]
    return g.d.dyn_object_computed(
        [(to_string(g, c.args[i]), v) for i, v in zip(range(0, len(c.args), 2), values, strict=True)]
    )


@scalar("bag_keys", 1, T.DYNAMIC, coerce="dynamic")
def _bag_keys(g, c, pred):
    return g.d.dyn_array_from_sql_array(g.d.dyn_keys(g.e(c.args[0])))


def _value_kind(e: ir.Expr) -> str:
    return {T.INT: T.LONG, T.LONG: T.LONG, T.REAL: T.REAL, T.BOOL: T.BOOL}.get(e.type, T.STRING)


@scalar("set_has_element", 2, T.BOOL, coerce=("dynamic", None))
def _set_has_element(g, c, pred):
    k = _value_kind(c.args[1])
    val = to_string(g, c.args[1]) if k == T.STRING else g.e(c.args[1])
    if k == T.LONG:
        k, val = T.REAL, cast_(val, "DOUBLE")
    return exp.Coalesce(this=g.d.array_contains(elements_as(g, g.e(c.args[0]), k), val), expressions=[exp.false()])


@scalar("strcat_array", 2, T.STRING, coerce=("dynamic", "string"))
def _strcat_array(g, c, pred):
    return g.d.array_join(elements_as(g, g.e(c.args[0]), T.STRING), g.e(c.args[1]))


@scalar("array_concat", (1, 64), T.DYNAMIC, coerce="dynamic")
def _array_concat(g, c, pred):
    arrs = [g.d.dyn_array_elements(g.e(a)) for a in c.args]
    cat = fn("concat", *arrs) if g.d.name == "spark" else _duck_concat(arrs)
    return g.d.dyn_array_from_sql_array(cat)


def _duck_concat(arrs: list[exp.Expression]) -> exp.Expression:
    out = arrs[0]
    for a in arrs[1:]:
        out = fn("list_concat", out, a)
    return out


@scalar("array_slice", 3, T.DYNAMIC, coerce=("dynamic", "long", "long"))
def _array_slice(g, c, pred):
    arr = g.d.dyn_array_elements(g.e(c.args[0]))
    size = g.d.array_size(arr)
    st, en = g.e(c.args[1]), g.e(c.args[2])
    st = case([(exp.LT(this=st, expression=n(0)), exp.Add(this=st, expression=size))], st)
    en = case([(exp.LT(this=en, expression=n(0)), exp.Add(this=en, expression=size))], en)
    st = fn("greatest", st, n(0))
    en = fn("least", en, exp.Sub(this=size, expression=n(1)))
    length = exp.Add(this=exp.Sub(this=en, expression=st), expression=n(1))
    return case(
        [(exp.LT(this=length, expression=n(1)), g.d.dyn_array([]))],
        g.d.dyn_array_from_sql_array(g.d.array_slice(arr, st, length)),
    )


@scalar("gettype", 1, T.STRING)
def _gettype(g, c, pred):
    a = c.args[0]
    if a.type != T.DYNAMIC:
        return s({T.DECIMAL: "decimal", T.GUID: "guid"}.get(a.type, a.type if a.type != T.NULL else "null"))
    k = g.d.dyn_kind(g.e(a))
    return case(
        [(exp.EQ(this=k, expression=s("object")), s("dictionary")), (exp.EQ(this=k, expression=s("long")), s("long"))],
        k,
    )


@scalar(
    "extract_json",
    (2, 3),
    lambda a: a[2].type if len(a) == 3 else T.STRING,
    coerce=("string", "string", None),
    aliases=("extractjson",),
)
def _extract_json(g, c, pred):
    from kqlmagic_plus.language.compiler.paths import parse_json_path

    path = lit_str(c.args[0])
    if path is None:
        raise Refusal("extract_json with a computed path")
    steps = parse_json_path(path)
    doc = parse_json_expr(g, c.args[1])
    got = dyn_steps(g, doc, steps)
    t = c.type
    if t == T.STRING:
        return g.d.dyn_as_string(got)
    return g.d.dyn_as(got, t)


def dyn_steps(g: Any, v: exp.Expression, steps: list[tuple[str, Any]]) -> exp.Expression:
    """Follow constant path steps (``("key", "a")``, ``("index", 0)``) into a dynamic value."""
    path = "$"
    for kind, val in steps:
        if kind == "key":
            if val.replace("_", "a").isalnum() and not val[:1].isdigit():
                path += "." + val
            elif g.d.name == "spark":
                path += "['" + val.replace("'", "\\'") + "']"
            else:
                path += '."' + val.replace('"', '\\"') + '"'
        else:
            if val < 0:
                if path != "$":
                    v = g.d.dyn_path(v, path)
                    path = "$"
                v = g.d.dyn_index(v, n(val))
                continue
            path += f"[{val}]"
    return v if path == "$" else g.d.dyn_path(v, path)


@scalar("__path", (1, 99), T.DYNAMIC, category="internal")
def _path(g, c, pred):
    """Internal: ``d.a[0].b``; constant steps are Lit, computed ones expressions."""
    from kqlmagic_plus.language.compiler.functions import arrays

    rest = c.args[1:]
    first = rest[0] if rest else None
    if arrays.is_multi_sort(c.args[0]) and isinstance(first, ir.Lit) and isinstance(first.value, int):
        # array_sort_asc(a1, a2, ...)[i]: Kusto's i-th result column, the i-th array in the first's order.
        parts = arrays.sorted_arrays(g, c.args[0])
        base = parts[first.value] if -len(parts) <= first.value < len(parts) else g.d.dyn_from_json_text(exp.null())
        rest = rest[1:]
    else:
        base = g.e(c.args[0])
    steps: list[tuple[str, Any]] = []
    v = base
    for st in rest:
        if isinstance(st, ir.Lit) and isinstance(st.value, str):
            steps.append(("key", st.value))
        elif isinstance(st, ir.Lit) and isinstance(st.value, int):
            steps.append(("index", st.value))
        else:
            if steps:
                v = dyn_steps(g, v, steps)
                steps = []
            v = g.d.dyn_index(v, g.e(st)) if st.type in T.INTEGRAL else g.d.dyn_key(v, g.e(st))
    return dyn_steps(g, v, steps) if steps else v


@scalar("range", (2, 3), T.DYNAMIC)
def _range_fn(g, c, pred):
    a, b = c.args[0], c.args[1]
    step = g.e(c.args[2]) if len(c.args) == 3 else n(1)
    if a.type not in T.INTEGRAL or b.type not in T.INTEGRAL or (len(c.args) == 3 and c.args[2].type not in T.INTEGRAL):
        if all(x.type in (T.REAL, T.INT, T.LONG) for x in c.args):
            from kqlmagic_plus.language.compiler.functions.series import real_range

            return real_range(g, c)
        raise Refusal("range() over non-integers")
    start, stop = g.e(a), g.e(b)
    from kqlmagic_plus.language.compiler.functions.arrays import capped_range

    return capped_range(g, start, stop, step)


def _first_occurrences(arr: exp.Expression) -> exp.Expression:
    """DuckDB's list_distinct loses the order; Kusto keeps each value where it first appears."""
    keep = exp.EQ(this=fn("list_position", arr, exp.column("v")), expression=exp.column("i"))
    return fn("list_filter", arr, exp.Lambda(this=keep, expressions=[exp.to_identifier("v"), exp.to_identifier("i")]))


def _set_op(kind: str):
    def emit(g, c, pred):
        arrs = [
            fn(
                "transform" if g.d.name == "spark" else "list_transform",
                g.d.dyn_array_elements(g.e(a)),
                exp.Lambda(this=g.d.dyn_to_json_text(exp.column("x")), expressions=[exp.to_identifier("x")]),
            )
            for a in c.args
        ]
        out = arrs[0]
        for other in arrs[1:]:
            if g.d.name == "spark":
                out = fn(
                    {"union": "array_union", "intersect": "array_intersect", "difference": "array_except"}[kind],
                    out,
                    other,
                )
            else:
                if kind == "union":
                    out = fn("list_concat", out, other)
                else:
                    member = fn("list_contains", other, exp.column("y"))
                    out = fn("list_filter", out, exp.Lambda(this=member if kind == "intersect" else exp.Not(
                        this=member), expressions=[exp.to_identifier("y")]))
        if g.d.name == "duckdb":
            out = _first_occurrences(out)
        back = exp.Lambda(this=g.d.dyn_from_json_text(exp.column("j")), expressions=[exp.to_identifier("j")])
        return g.d.dyn_array_from_sql_array(fn("transform" if g.d.name == "spark" else "list_transform", out, back))

    return emit


scalar("set_union", (2, 64), T.DYNAMIC, coerce="dynamic")(_set_op("union"))
scalar("set_intersect", (2, 64), T.DYNAMIC, coerce="dynamic")(_set_op("intersect"))
scalar("set_difference", (2, 64), T.DYNAMIC, coerce="dynamic")(_set_op("difference"))
