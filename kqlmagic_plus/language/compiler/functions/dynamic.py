"""Dynamic values: arrays (``pack_array``, ``array_*``, ``set_*``, ``range``), property bags (``bag_*``),
``gettype``, ``extract_json`` and the path steps ``d.a[0].b`` lowers to.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import big, lit_str
from kqlmagic_plus.language.compiler.functions.conversions import parse_json_expr, to_string
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, dtype, fn, n, s, try_cast_
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


@scalar("array_length", 1, T.LONG, coerce="dynamic")
def _array_length(g, c, pred):
    return big(g.d.dyn_array_length(g.e(c.args[0])))


def _to_dyn(g: Any, a: ir.Expr) -> exp.Expression:
    return g.d.dyn_from_scalar(g.e(a), a.type) if a.type != T.DYNAMIC else g.e(a)


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


@scalar("bag_has_key", 2, T.BOOL, coerce=("dynamic", "string"))
def _bag_has_key(g, c, pred):
    return g.d.array_contains(g.d.dyn_keys(g.e(c.args[0])), g.e(c.args[1]))


def elements_as(g: Any, v: exp.Expression, t: str) -> exp.Expression:
    """A dynamic array's elements as a SQL array of KQL type *t* (for comparisons and sorting)."""
    target = {
        T.STRING: "STRING" if g.d.name == "spark" else "VARCHAR",
        T.REAL: "DOUBLE",
        T.LONG: "BIGINT",
        T.BOOL: "BOOLEAN",
    }[t]
    if g.d.name == "spark":
        return try_cast_(this=v, to=dtype(f"ARRAY<{target}>", dialect="spark"))
    if t == T.STRING:
        return fn(
            "list_transform",
            try_cast_(this=v, to=dtype("JSON[]", dialect="duckdb")),
            exp.Lambda(this=fn("json_extract_string", exp.column("x"), s("$")), expressions=[exp.to_identifier("x")]),
        )
    return try_cast_(this=v, to=dtype(f"{target}[]", dialect="duckdb"))


def _value_kind(e: ir.Expr) -> str:
    return {T.INT: T.LONG, T.LONG: T.LONG, T.REAL: T.REAL, T.BOOL: T.BOOL}.get(e.type, T.STRING)


@scalar("set_has_element", 2, T.BOOL, coerce=("dynamic", None))
def _set_has_element(g, c, pred):
    k = _value_kind(c.args[1])
    val = to_string(g, c.args[1]) if k == T.STRING else g.e(c.args[1])
    if k == T.LONG:
        k, val = T.REAL, cast_(val, "DOUBLE")
    return exp.Coalesce(this=g.d.array_contains(elements_as(g, g.e(c.args[0]), k), val), expressions=[exp.false()])


@scalar("array_index_of", (2, 4), T.LONG, coerce=("dynamic", None, "long", "long"))
def _array_index_of(g, c, pred):
    if len(c.args) > 2:
        raise Refusal("array_index_of with start/length")
    k = _value_kind(c.args[1])
    val = to_string(g, c.args[1]) if k == T.STRING else g.e(c.args[1])
    if k == T.LONG:
        k, val = T.REAL, cast_(val, "DOUBLE")
    arr = elements_as(g, g.e(c.args[0]), k)
    pos = fn("array_position", arr, val) if g.d.name == "spark" else fn("coalesce", fn("list_position", arr, val), n(0))
    return case([(exp.Is(this=arr, expression=exp.null()), exp.null())], exp.Sub(this=big(pos), expression=n(1)))


def _sorted(desc: bool):
    def emit(g, c, pred):
        if len(c.args) > 1:
            raise Refusal("array_sort with several arrays or nulls_last")
        v = g.e(c.args[0])
        nums = elements_as(g, v, T.REAL)
        strs = elements_as(g, v, T.STRING)
        all_numbers = exp.EQ(
            this=g.d.array_size(
                fn(
                    "filter",
                    nums,
                    exp.Lambda(
                        this=exp.Is(this=exp.column("x"), expression=exp.null()), expressions=[exp.to_identifier("x")]
                    ),
                )
                if g.d.name == "spark"
                else fn(
                    "list_filter",
                    nums,
                    exp.Lambda(
                        this=exp.Is(this=exp.column("x"), expression=exp.null()), expressions=[exp.to_identifier("x")]
                    ),
                )
            ),
            expression=n(0),
        )
        num_sorted = g.d.dyn_array_from_sql_array(g.d.array_sort(elements_as(g, v, T.REAL), desc))
        str_sorted = g.d.dyn_array_from_sql_array(g.d.array_sort(strs, desc))
        return case(
            [
                (exp.Is(this=nums, expression=exp.null()), exp.null()),
                (
                    exp.and_(all_numbers, exp.Not(this=exp.Is(this=nums, expression=exp.null()))),
                    _integralize(g, v, num_sorted, desc),
                ),
            ],
            str_sorted,
        )

    return emit


def _integralize(g: Any, v: exp.Expression, num_sorted: exp.Expression, desc: bool) -> exp.Expression:
    # Sorting as doubles would print longs as 1.0: sort longs as longs when every element is whole.
    longs = elements_as(g, v, T.LONG)
    long_sorted = g.d.dyn_array_from_sql_array(g.d.array_sort(longs, desc))
    if g.d.name == "spark":
        exact = fn(
            "forall",
            fn("arrays_zip", longs, elements_as(g, v, T.REAL)),
            exp.Lambda(
                this=exp.EQ(
                    this=cast_(exp.Dot(this=exp.column("z"), expression=exp.to_identifier("0")), "DOUBLE"),
                    expression=exp.Dot(this=exp.column("z"), expression=exp.to_identifier("1")),
                ),
                expressions=[exp.to_identifier("z")],
            ),
        )
    else:
        exact = exp.EQ(this=cast_(longs, "DOUBLE[]"), expression=elements_as(g, v, T.REAL))
    kinds_ok = exp.Not(this=exp.Is(this=longs, expression=exp.null()))
    return case([(exp.and_(kinds_ok, exp.Coalesce(this=exact, expressions=[exp.false()])), long_sorted)], num_sorted)


scalar("array_sort_asc", (1, 2), T.DYNAMIC, coerce="dynamic")(_sorted(False))
scalar("array_sort_desc", (1, 2), T.DYNAMIC, coerce="dynamic")(_sorted(True))


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
    base = g.e(c.args[0])
    steps: list[tuple[str, Any]] = []
    v = base
    for st in c.args[1:]:
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
    if a.type not in T.INTEGRAL or b.type not in T.INTEGRAL:
        raise Refusal("range() over non-integers")
    start, stop = g.e(a), g.e(b)
    seq = (
        fn("sequence", start, stop, step)
        if g.d.name == "spark"
        else fn("range", start, exp.Add(this=stop, expression=fn("sign", step)), step)
    )
    return g.d.dyn_array_from_sql_array(seq)


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
