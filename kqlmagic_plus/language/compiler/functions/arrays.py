"""Dynamic arrays and property bags, the functions that need per-element SQL (lambdas over the elements):
``array_reverse``, ``array_sum``, ``array_rotate_*``, ``array_shift_*``, ``array_split``, ``array_iff``,
``array_index_of``, ``array_sort_*``, ``zip``, ``jaccard_index``, ``bag_merge``, ``bag_remove_keys``,
``bag_set_key``, ``bag_has_key``, ``bag_pack_columns``, ``bag_zip``.

The SQL is written as small per-dialect templates (parsed once by sqlglot) whose ``_pN`` names stand for
the arguments' SQL. Lambda variables are named ``_x``, ``_i`` ... so they cannot meet a table's columns.
A dynamic array is a DuckDB ``JSON[]`` / Spark ``ARRAY<VARIANT>`` inside, a property bag a
``MAP(VARCHAR, JSON)`` / ``MAP<STRING, VARIANT>``.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import sqlglot
from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import lit_str
from kqlmagic_plus.language.compiler.sqlexpr import dtype
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar

#: Kusto's cap on the elements of an array built by range() (and on make_list and friends).
MAX_ARRAY = 1_048_576


_LAMBDA_VAR = re.compile(r"^_[a-z]\d*$")
LAMBDA_PREFIX = T.HIDDEN_PREFIX + "l"


@functools.lru_cache(maxsize=512)
def _parsed(dialect: str, text: str) -> exp.Expression:
    return sqlglot.parse_one(text, read=dialect)


def tpl(g: Any, text: str | dict[str, str], *args: exp.Expression) -> exp.Expression:
    """The SQL *text* (one string, or one per dialect) with ``_p0``, ``_p1`` ... replaced by *args*."""
    src = text if isinstance(text, str) else text[g.d.name]
    tree = _parsed(g.d.name, src).copy()
    subs = {f"_p{i}": a for i, a in enumerate(args)}

    def at(node: exp.Expression) -> exp.Expression:
        # kat(array, i): the 1-based element, null past the end. Written as a call sqlglot does not know,
        # since it shifts the literal indices of the bracket and element_at forms it does know.
        if isinstance(node, exp.Anonymous) and str(node.this).lower() == "kat":
            arr, i = node.expressions
            if g.d.name == "spark":
                return exp.Anonymous(this="try_element_at", expressions=[arr, exp.Cast(this=i, to=dtype("INT"))])
            return exp.Anonymous(this="list_extract", expressions=[arr, i])
        return node

    def put(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Column) and not node.table and node.name in subs:
            return subs[node.name].copy()
        return node

    def lam(node: exp.Expression) -> exp.Expression:
        # The templates' lambda variables (_x, _e0 ...) renamed into the compiler's reserved names, so that
        # a user column of that name inside an argument (a quoted identifier) is never captured by them.
        if isinstance(node, exp.Identifier) and not node.quoted and _LAMBDA_VAR.match(node.name):
            return exp.to_identifier(LAMBDA_PREFIX + node.name[1:])
        return node

    return tree.transform(at).transform(put).transform(lam)


def _elements(g: Any, a: ir.Expr) -> exp.Expression:
    return g.d.dyn_array_elements(g.e(a))


def _dyn_of(g: Any, a: ir.Expr) -> exp.Expression:
    return g.d.dyn_from_scalar(g.e(a), a.type) if a.type != T.DYNAMIC else g.e(a)


def _null_dyn(g: Any) -> exp.Expression:
    return tpl(g, {"duckdb": "CAST(NULL AS JSON)", "spark": "CAST(NULL AS VARIANT)"})


def _back(g: Any, arr: exp.Expression) -> exp.Expression:
    return g.d.dyn_array_from_sql_array(arr)


# -- arrays ------------------------------------------------------------------------------------------


@scalar("array_reverse", 1, T.DYNAMIC, coerce="dynamic")
def _array_reverse(g, c, pred):
    return _back(g, tpl(g, {"duckdb": "list_reverse(_p0)", "spark": "reverse(_p0)"}, _elements(g, c.args[0])))


@scalar("array_sum", 1, T.REAL, coerce="dynamic")
def _array_sum(g, c, pred):
    from kqlmagic_plus.language.compiler.functions.common import elements_as

    nums = elements_as(g, g.e(c.args[0]), T.REAL)
    # A null element (or one that is not a number) makes the sum null, as a non-numeric element does in Kusto.
    return tpl(
        g,
        {
            "duckdb": "CASE WHEN list_contains(list_transform(_p0, _x -> _x IS NULL), TRUE) THEN NULL "
            "ELSE coalesce(list_sum(_p0), 0) END",
            "spark": "aggregate(_p0, CAST(0 AS DOUBLE), (_s, _x) -> _s + _x)",
        },
        nums,
    )


def _rotate(sign: int):
    def emit(g, c, pred):
        k = g.e(c.args[1]) if sign > 0 else exp.Neg(this=exp.Paren(this=g.e(c.args[1])))
        body = {
            "duckdb": "list_transform(_p0, (_x, _i) -> "
            "kat(_p0, ((_i - 1 + _p1) % len(_p0) + len(_p0)) % len(_p0) + 1))",
            "spark": "transform(_p0, (_x, _i) -> kat(_p0, pmod(_i + _p1, size(_p0)) + 1))",
        }
        return _back(g, tpl(g, body, _elements(g, c.args[0]), k))

    return emit


scalar("array_rotate_left", 2, T.DYNAMIC, coerce=("dynamic", "long"))(_rotate(1))
scalar("array_rotate_right", 2, T.DYNAMIC, coerce=("dynamic", "long"))(_rotate(-1))


def _shift(sign: int):
    def emit(g, c, pred):
        arr = _elements(g, c.args[0])
        k = g.e(c.args[1]) if sign > 0 else exp.Neg(this=exp.Paren(this=g.e(c.args[1])))
        if len(c.args) == 3:
            fill = _dyn_of(g, c.args[2])
        else:
            # The default is null, or "" in an array of strings.
            fill = tpl(
                g,
                {
                    "duckdb": "CASE WHEN json_type(kat(_p0, 1)) = 'VARCHAR' THEN CAST('\"\"' AS JSON) END",
                    "spark": "CASE WHEN schema_of_variant(kat(_p0, 1)) = 'STRING' THEN CAST('' AS VARIANT) END",
                },
                arr,
            )
        body = {
            "duckdb": "list_transform(_p0, (_x, _i) -> CASE WHEN _i - 1 + _p1 >= 0 AND _i - 1 + _p1 < len(_p0) "
            "THEN kat(_p0, _i + _p1) ELSE _p2 END)",
            "spark": "transform(_p0, (_x, _i) -> CASE WHEN _i + _p1 >= 0 AND _i + _p1 < size(_p0) "
            "THEN kat(_p0, _i + _p1 + 1) ELSE _p2 END)",
        }
        return _back(g, tpl(g, body, arr, k, fill))

    return emit


scalar("array_shift_left", (2, 3), T.DYNAMIC, coerce=("dynamic", "long", None))(_shift(1))
scalar("array_shift_right", (2, 3), T.DYNAMIC, coerce=("dynamic", "long", None))(_shift(-1))


@scalar("array_split", 2, T.DYNAMIC, coerce=("dynamic", None))
def _array_split(g, c, pred):
    from kqlmagic_plus.language.compiler.functions.common import elements_as

    arr = _elements(g, c.args[0])
    ix = c.args[1]
    if ix.type == T.DYNAMIC:
        idx = elements_as(g, g.e(ix), T.LONG)
    elif ix.type in T.INTEGRAL:
        idx = tpl(g, {"duckdb": "[CAST(_p0 AS BIGINT)]", "spark": "array(CAST(_p0 AS BIGINT))"}, g.e(ix))
    else:
        raise Refusal("array_split with an index that is not an integer or an array of integers")
    # The split points, negative ones from the end, clamped to the array, between 0 and its length.
    size = "len(_p0)" if g.d.name == "duckdb" else "size(_p0)"
    clamp = f"least(greatest(CASE WHEN _y < 0 THEN _y + {size} ELSE _y END, 0), {size})"
    bounds = tpl(
        g,
        {"duckdb": f"list_concat([0], list_transform(_p1, _y -> {clamp}), [len(_p0)])",
         "spark": f"concat(array(CAST(0 AS BIGINT)), transform(_p1, _y -> {clamp}), array(CAST(size(_p0) AS BIGINT)))"},
        arr,
        idx,
    )
    body = {
        "duckdb": "list_transform(range(len(_p1) + 1), "
        "_j -> to_json(list_slice(_p0, kat(_p2, _j + 1) + 1, kat(_p2, _j + 2))))",
        "spark": "transform(slice(_p2, 1, size(_p2) - 1), (_b, _j) -> to_variant_object(slice(_p0, CAST(_b + 1 AS INT),"
        " CAST(greatest(kat(_p2, _j + 2) - _b, 0) AS INT))))",
    }
    return _back(g, tpl(g, body, arr, idx, bounds))


@scalar("zip", (2, 16), T.DYNAMIC, coerce="dynamic")
def _zip(g, c, pred):
    arrs = [_elements(g, a) for a in c.args]
    if g.d.name == "spark":
        size = exp.Greatest(this=fn_size(arrs[0]), expressions=[fn_size(a) for a in arrs[1:]])
        items = ", ".join(f"kat(_p{i + 1}, _i + 1)" for i in range(len(arrs)))
        body = f"CASE WHEN _p0 > 0 THEN transform(sequence(0, _p0 - 1), _i -> to_variant_object(array({items}))) END"
        out = tpl(g, body, size, *arrs)
        return exp.Coalesce(this=_back(g, out), expressions=[g.d.dyn_array([])])
    size = exp.Greatest(this=fn_len(arrs[0]), expressions=[fn_len(a) for a in arrs[1:]])
    items = ", ".join(f"kat(_p{i + 1}, _i + 1)" for i in range(len(arrs)))
    return _back(g, tpl(g, f"list_transform(range(_p0), _i -> to_json([{items}]))", size, *arrs))


def fn_size(a: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=exp.Anonymous(this="size", expressions=[a]), expressions=[exp.Literal.number(0)])


def fn_len(a: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=exp.Anonymous(this="len", expressions=[a]), expressions=[exp.Literal.number(0)])


@scalar("array_iff", 3, T.DYNAMIC, aliases=("array_iif",), coerce=("dynamic", None, None))
def _array_iff(g, c, pred):
    cond = _elements(g, c.args[0])
    x = exp.column("_x")
    kind = g.d.dyn_kind(x)
    truth = tpl(
        g,
        "CASE WHEN _p0 = 'bool' THEN _p1 WHEN _p0 IN ('long', 'real') THEN _p2 <> 0 END",
        kind,
        g.d.dyn_as(x, T.BOOL),
        g.d.dyn_as(x, T.REAL),
    )
    picks = []
    for a in c.args[1:]:
        if a.type == T.DYNAMIC:
            picks.append(
                tpl(
                    g,
                    {"duckdb": "kat(_p0, _i)", "spark": "kat(_p0, _i + 1)"},
                    _elements(g, a),
                )
            )
        else:
            picks.append(_dyn_of(g, a))
    body = {
        "duckdb": "list_transform(_p0, (_x, _i) -> CASE WHEN _p1 THEN _p2 WHEN NOT _p1 THEN _p3 END)",
        "spark": "transform(_p0, (_x, _i) -> CASE WHEN _p1 THEN _p2 WHEN NOT _p1 THEN _p3 END)",
    }
    return _back(g, tpl(g, body, cond, truth, *picks))


def _value_kind(e: ir.Expr) -> str:
    return {T.INT: T.LONG, T.LONG: T.LONG, T.REAL: T.REAL, T.BOOL: T.BOOL}.get(e.type, T.STRING)


@scalar("array_index_of", (2, 5), T.LONG, coerce=("dynamic", None, "long", "long", "long"))
def _array_index_of(g, c, pred):
    from kqlmagic_plus.language.compiler.functions.common import elements_as
    from kqlmagic_plus.language.compiler.functions.conversions import to_string
    from kqlmagic_plus.language.compiler.sqlexpr import cast_

    k = _value_kind(c.args[1])
    val = to_string(g, c.args[1]) if k == T.STRING else g.e(c.args[1])
    if k == T.LONG:
        k, val = T.REAL, cast_(val, "DOUBLE")
    arr = elements_as(g, g.e(c.args[0]), k)
    start = g.e(c.args[2]) if len(c.args) > 2 else exp.Literal.number(0)
    length = g.e(c.args[3]) if len(c.args) > 3 else exp.Neg(this=exp.Literal.number(1))
    occ = g.e(c.args[4]) if len(c.args) > 4 else exp.Literal.number(1)
    size = "len(_p0)" if g.d.name == "duckdb" else "size(_p0)"
    st = f"(CASE WHEN _p2 < 0 THEN greatest({size} + _p2, 0) ELSE _p2 END)"
    en = f"(CASE WHEN _p3 = -1 THEN {size} ELSE least({st} + _p3, {size}) END)"
    if g.d.name == "duckdb":
        hits = f"list_filter(list_transform(_p0, (_x, _i) -> CASE WHEN _i - 1 >= {st} AND _i - 1 < {en} AND _x = _p1 " \
               "THEN _i - 1 END), _y -> _y IS NOT NULL)"
        found = f"coalesce(kat({hits}, _p4), -1)"
    else:
        hits = f"filter(transform(_p0, (_x, _i) -> CASE WHEN _i >= {st} AND _i < {en} AND _x = _p1 THEN _i END), " \
               "_y -> _y IS NOT NULL)"
        found = f"coalesce(kat({hits}, _p4), -1)"
    body = (f"CASE WHEN _p0 IS NULL OR _p4 < 0 OR _p3 < -1 THEN NULL WHEN _p4 = 0 THEN -1 "
            f"ELSE CAST({found} AS BIGINT) END")
    return tpl(g, body, arr, val, start, length, occ)


# -- sorting -----------------------------------------------------------------------------------------


def _sort_parts(c: ir.Call) -> tuple[list[ir.Expr], bool]:
    args = list(c.args)
    nulls_last = True
    if len(args) > 1 and args[-1].type == T.BOOL:
        flag = args.pop()
        if not (isinstance(flag, ir.Lit) and isinstance(flag.value, bool)):
            raise Refusal("array_sort with a computed nulls_last")
        nulls_last = flag.value
    return args, nulls_last


def _sort_key(g: Any, x: exp.Expression) -> exp.Expression:
    """Kusto's order of mixed elements: numbers, then strings, then the rest; null for a null element."""
    kind = g.d.dyn_kind(x)
    rank = tpl(g, "CASE WHEN _p0 IN ('long', 'real') THEN 0 WHEN _p0 = 'string' THEN 1 ELSE 2 END", kind)
    num = tpl(g, "CASE WHEN _p0 IN ('long', 'real') THEN _p1 END", kind, g.d.dyn_as(x, T.REAL))
    text = g.d.dyn_as_string(x)
    key = g.d.struct([("r", rank), ("n", num), ("s", text)])
    return tpl(g, "CASE WHEN _p0 = 'null' THEN NULL ELSE _p1 END", kind, key)


def _order(g: Any, first: exp.Expression, desc: bool, nulls_last: bool) -> exp.Expression:
    """The permutation that sorts *first* (a SQL array of dynamic elements): 1-based in DuckDB, 0-based in Spark."""
    key = _sort_key(g, exp.column("_x"))
    if g.d.name == "duckdb":
        return tpl(
            g,
            f"list_grade_up(list_transform(_p0, _x -> _p1), '{'DESC' if desc else 'ASC'}', "
            f"'{'NULLS LAST' if nulls_last else 'NULLS FIRST'}')",
            first,
            key,
        )
    d = -1 if desc else 1
    nl = 1 if nulls_last else -1
    cmp = (
        "CASE WHEN _l.k IS NULL AND _r.k IS NULL THEN "
        "(CASE WHEN _l.i < _r.i THEN -1 WHEN _l.i > _r.i THEN 1 ELSE 0 END)"
        f" WHEN _l.k IS NULL THEN {nl} WHEN _r.k IS NULL THEN {-nl}"
        f" WHEN _l.k.r < _r.k.r THEN {-d} WHEN _l.k.r > _r.k.r THEN {d}"
        f" WHEN _l.k.n < _r.k.n THEN {-d} WHEN _l.k.n > _r.k.n THEN {d}"
        f" WHEN _l.k.s < _r.k.s THEN {-d} WHEN _l.k.s > _r.k.s THEN {d}"
        " WHEN _l.i < _r.i THEN -1 WHEN _l.i > _r.i THEN 1 ELSE 0 END"
    )
    return tpl(
        g,
        f"transform(array_sort(transform(_p0, (_x, _i) -> named_struct('k', _p1, 'i', _i)), (_l, _r) -> {cmp}), "
        "_o -> _o.i)",
        first,
        key,
    )


def _permuted(g: Any, arr: exp.Expression, order: exp.Expression, first: exp.Expression) -> exp.Expression:
    """*arr* reordered by *order*; null when its length differs from the sorted array's."""
    body = {
        "duckdb": "CASE WHEN len(_p0) = len(_p2) THEN list_transform(_p1, _j -> kat(_p0, _j)) END",
        "spark": "CASE WHEN size(_p0) = size(_p2) THEN transform(_p1, _j -> kat(_p0, _j + 1)) END",
    }
    return _back(g, tpl(g, body, arr, order, first))


def sorted_arrays(g: Any, c: ir.Call) -> list[exp.Expression]:
    """The arrays of an ``array_sort_asc/desc`` call, each reordered as its first array sorts."""
    arrays, nulls_last = _sort_parts(c)
    elems = [_elements(g, a) for a in arrays]
    order = _order(g, elems[0], c.fn == "array_sort_desc", nulls_last)
    return [_permuted(g, e, order, elems[0]) for e in elems]


def is_multi_sort(e: ir.Expr) -> bool:
    return isinstance(e, ir.Call) and e.fn in ("array_sort_asc", "array_sort_desc") and len(_sort_parts(e)[0]) > 1


def _sorted(g, c, pred):
    if is_multi_sort(c):
        # Kusto returns one column per array; reached here only when the call is not indexed ([i]).
        raise Refusal("array_sort with several arrays (outside an index [i])")
    return sorted_arrays(g, c)[0]


scalar("array_sort_asc", (1, 64), T.DYNAMIC)(_sorted)
scalar("array_sort_desc", (1, 64), T.DYNAMIC)(_sorted)


# -- sets --------------------------------------------------------------------------------------------


@scalar("jaccard_index", 2, T.REAL, coerce="dynamic")
def _jaccard(g, c, pred):
    texts = [
        tpl(
            g,
            {"duckdb": "list_distinct(list_transform(_p0, _x -> CAST(_x AS VARCHAR)))",
             "spark": "array_distinct(transform(_p0, _x -> to_json(_x)))"},
            _elements(g, a),
        )
        for a in c.args
    ]
    body = {
        "duckdb": "CAST(len(list_intersect(_p0, _p1)) AS DOUBLE) / len(list_distinct(list_concat(_p0, _p1)))",
        "spark": "CASE WHEN size(array_union(_p0, _p1)) = 0 THEN CAST('NaN' AS DOUBLE) "
        "ELSE CAST(size(array_intersect(_p0, _p1)) AS DOUBLE) / size(array_union(_p0, _p1)) END",
    }
    out = tpl(g, body, *texts)
    if g.d.name == "duckdb":
        out = tpl(g, "CASE WHEN len(list_distinct(list_concat(_p1, _p2))) = 0 THEN CAST('NaN' AS DOUBLE) ELSE _p0 END",
                  out, *texts)
    return out


# -- property bags -----------------------------------------------------------------------------------


def _entries(g: Any, v: exp.Expression) -> exp.Expression:
    """The (key, value) entries of a property bag; null when *v* is not one."""
    return tpl(
        g,
        {"duckdb": "map_entries(TRY_CAST(_p0 AS MAP(VARCHAR, JSON)))",
         "spark": "map_entries(TRY_CAST(_p0 AS MAP<STRING, VARIANT>))"},
        v,
    )


def _bag_of(g: Any, entries: exp.Expression) -> exp.Expression:
    return tpl(
        g, {"duckdb": "to_json(map_from_entries(_p0))", "spark": "to_variant_object(map_from_entries(_p0))"}, entries
    )


def _entry(g: Any, key: exp.Expression, value: exp.Expression) -> exp.Expression:
    return tpl(g, {"duckdb": "{'key': _p0, 'value': _p1}", "spark": "named_struct('key', _p0, 'value', _p1)"},
               key, value)


@scalar("bag_merge", (2, 64), T.DYNAMIC, coerce="dynamic")
def _bag_merge(g, c, pred):
    empty = {"duckdb": "coalesce(_p0, CAST([] AS STRUCT(key VARCHAR, value JSON)[]))",
             "spark": "coalesce(_p0, map_entries(CAST(map() AS MAP<STRING, VARIANT>)))"}
    parts = [tpl(g, empty, _entries(g, g.e(a))) for a in c.args]
    cat = tpl(g, {"duckdb": "list_concat(" + ", ".join(f"_p{i}" for i in range(len(parts))) + ")",
                  "spark": "concat(" + ", ".join(f"_p{i}" for i in range(len(parts))) + ")"}, *parts)
    # The leftmost bag wins: keep each key's first entry.
    first = {
        "duckdb": "list_filter(_p0, (_e, _i) -> list_position(list_transform(_p0, _f -> _f.key), _e.key) = _i)",
        "spark": "filter(_p0, (_e, _i) -> array_position(transform(_p0, _f -> _f.key), _e.key) = _i + 1)",
    }
    return _bag_of(g, tpl(g, first, cat))


def _bag_path(g: Any, key: str, what: str) -> list[str]:
    """A key argument as its steps: ``'$.a.b'`` (a JSONPath of keys) or a plain key."""
    if not key.startswith("$"):
        return [key]
    from kqlmagic_plus.language.compiler.paths import parse_json_path

    try:
        steps = parse_json_path(key)
    except Exception:
        raise Refusal(f"{what} with the path {key!r}") from None
    if not steps or any(kind != "key" for kind, _ in steps):
        raise Refusal(f"{what} with the path {key!r} (only property names are supported)")
    return [str(v) for _, v in steps]


def _literal_keys(e: ir.Expr, what: str) -> list[str]:
    if isinstance(e, ir.Lit) and isinstance(e.value, list) and all(isinstance(k, str) for k in e.value):
        return list(e.value)
    raise Refusal(f"{what} with keys that are not a constant array of strings")


@scalar("bag_remove_keys", 2, T.DYNAMIC, coerce="dynamic")
def _bag_remove_keys(g, c, pred):
    keys = c.args[1]
    if not isinstance(keys, ir.Lit):
        return _removed_computed(g, g.e(c.args[0]), keys)
    paths = [_bag_path(g, k, "bag_remove_keys") for k in _literal_keys(keys, "bag_remove_keys")]
    return _removed(g, g.e(c.args[0]), paths, 0)


def _removed_computed(g: Any, bag: exp.Expression, keys: ir.Expr) -> exp.Expression:
    """Keys known only when the query runs: top-level keys (``k`` or ``$.k``); a deeper path stops the query
    with an error rather than be left in place."""
    from kqlmagic_plus.language.compiler.functions.common import elements_as

    names = elements_as(g, g.e(keys), T.STRING)
    msg = "bag_remove_keys: a computed key that is a nested path ($.a.b) is not supported"
    fail = {"duckdb": f"error('{msg}')", "spark": f"raise_error('{msg}')"}[g.d.name]
    top = tpl(
        g,
        {"duckdb": "coalesce(list_transform(_p0, _k -> CASE WHEN starts_with(_k, '$.') THEN CASE WHEN "
                   f"regexp_matches(substr(_k, 3), '[.\\[]') THEN {fail} ELSE substr(_k, 3) END ELSE _k END), [])",
         "spark": "coalesce(transform(_p0, _k -> CASE WHEN startswith(_k, '$.') THEN CASE WHEN "
                  f"substr(_k, 3) RLIKE '[.\\\\[]' THEN {fail} ELSE substr(_k, 3) END ELSE _k END), array())"},
        names,
    )
    body = {"duckdb": "list_filter(_p0, _e -> NOT list_contains(_p1, _e.key))",
            "spark": "filter(_p0, _e -> NOT array_contains(_p1, _e.key))"}
    return _bag_of(g, tpl(g, body, _entries(g, bag), top))


def _removed(g: Any, v: exp.Expression, paths: list[list[str]], depth: int) -> exp.Expression:
    top = sorted({p[0] for p in paths if len(p) == 1})
    nested: dict[str, list[list[str]]] = {}
    for p in paths:
        if len(p) > 1 and p[0] not in top:
            nested.setdefault(p[0], []).append(p[1:])
    e = exp.column(f"_e{depth}")
    keep: exp.Expression = exp.true()
    if top:
        keep = exp.Not(this=exp.In(this=exp.Dot(this=e, expression=exp.to_identifier("key")),
                                   expressions=[exp.Literal.string(k) for k in top]))
    value: exp.Expression = exp.Dot(this=e.copy(), expression=exp.to_identifier("value"))
    if nested:
        inner = value.copy()
        ifs = []
        for k, rest in nested.items():
            child = _removed(g, inner.copy(), rest, depth + 1)
            ifs.append(exp.If(this=exp.EQ(this=exp.Dot(this=e.copy(), expression=exp.to_identifier("key")),
                                          expression=exp.Literal.string(k)), true=child))
        value = exp.Case(ifs=ifs, default=value)
    lam = f"_e{depth}"
    body = {
        "duckdb": f"list_transform(list_filter(_p0, {lam} -> _p1), {lam} -> _p2)",
        "spark": f"transform(filter(_p0, {lam} -> _p1), {lam} -> _p2)",
    }
    entry = _entry(g, exp.Dot(this=e.copy(), expression=exp.to_identifier("key")), value)
    out = _bag_of(g, tpl(g, body, _entries(g, v), keep, entry))
    # Below the top, a value that is not a bag has no keys to remove: it stays as it is.
    return out if depth == 0 else tpl(g, "CASE WHEN _p1 THEN _p0 ELSE _p2 END", out, g.d.dyn_is(v, "object"), v)


@scalar("bag_set_key", 3, T.DYNAMIC, coerce=("dynamic", "string", None))
def _bag_set_key(g, c, pred):
    key = lit_str(c.args[1])
    if key is None:
        raise Refusal("bag_set_key with a computed key")
    steps = _bag_path(g, key, "bag_set_key")
    bag = g.e(c.args[0])
    out = _set_in(g, bag, steps, _dyn_of(g, c.args[2]))
    return tpl(g, "CASE WHEN _p1 THEN _p0 END", out, g.d.dyn_is(bag, "object"))


def _set_in(g: Any, v: exp.Expression, steps: list[str], value: exp.Expression) -> exp.Expression:
    k = steps[0]
    if len(steps) > 1:
        child = g.d.dyn_key(v.copy(), exp.Literal.string(k))
        child = tpl(g, {"duckdb": "CASE WHEN _p1 THEN _p0 ELSE CAST('{}' AS JSON) END",
                        "spark": "CASE WHEN _p1 THEN _p0 ELSE parse_json('{}') END"},
                    child, g.d.dyn_is(child.copy(), "object"))
        value = _set_in(g, child, steps[1:], value)
    empty = {"duckdb": "coalesce(_p0, CAST([] AS STRUCT(key VARCHAR, value JSON)[]))",
             "spark": "coalesce(_p0, map_entries(CAST(map() AS MAP<STRING, VARIANT>)))"}
    body = {
        "duckdb": "list_concat(list_filter(_p0, _e -> _e.key <> _p1), [_p2])",
        "spark": "concat(filter(_p0, _e -> _e.key <> _p1), array(_p2))",
    }
    entries = tpl(g, empty, _entries(g, v))
    return _bag_of(g, tpl(g, body, entries, exp.Literal.string(k), _entry(g, exp.Literal.string(k), value)))


@scalar("bag_has_key", 2, T.BOOL, coerce=("dynamic", "string"))
def _bag_has_key(g, c, pred):
    key = lit_str(c.args[1])
    bag = g.e(c.args[0])
    if key is None or not key.startswith("$"):
        has = g.d.array_contains(g.d.dyn_keys(bag), g.e(c.args[1]))
        return exp.Coalesce(this=has, expressions=[exp.false()])
    steps = _bag_path(g, key, "bag_has_key")
    cur = bag
    for k in steps[:-1]:
        cur = g.d.dyn_key(cur, exp.Literal.string(k))
    has = g.d.array_contains(g.d.dyn_keys(cur), exp.Literal.string(steps[-1]))
    return exp.Coalesce(this=has, expressions=[exp.false()])


def bag_pack_columns_form(lw: Any, args: list[Any], sc: Any, where: Any) -> ir.Expr:
    """``bag_pack_columns(c1, c2, ...)``: ``bag_pack("c1", c1, ...)``, the names taken before columns are inlined."""
    items: list[ir.Expr] = []
    for a in args:
        e = lw.expr(a, sc)
        if not isinstance(e, ir.Col):
            raise Refusal("bag_pack_columns of something that is not a column", where)
        items += [ir.Lit(T.STRING, e.name), e]
    if not items:
        raise Refusal("bag_pack_columns without columns", where)
    return ir.Call(T.DYNAMIC, "bag_pack", tuple(items))


@scalar("bag_zip", 2, T.DYNAMIC, coerce="dynamic")
def _bag_zip(g, c, pred):
    keys, values = _elements(g, c.args[0]), _elements(g, c.args[1])
    k = exp.column("_k")
    key = tpl(g, "CASE WHEN _p0 THEN _p1 END", g.d.dyn_is(k, "string"), g.d.dyn_as_string(k.copy()))
    body = {
        "duckdb": "list_filter(list_transform(_p0, (_k, _i) -> {'key': _p2, 'value': kat(_p1, _i)}), "
        "_e -> _e.key IS NOT NULL)",
        "spark": "filter(transform(_p0, (_k, _i) -> named_struct('key', _p2, 'value', kat(_p1, _i + 1))), "
        "_e -> _e.key IS NOT NULL)",
    }
    entries = tpl(g, body, keys, values, key)
    # A repeated key keeps its last value.
    last = {
        "duckdb": "list_filter(_p0, (_e, _i) -> NOT list_contains("
        "list_transform(list_slice(_p0, _i + 1, len(_p0)), _f -> _f.key), _e.key))",
        "spark": "filter(_p0, (_e, _i) -> NOT exists(slice(_p0, _i + 2, size(_p0)), _f -> _f.key = _e.key))",
    }
    if g.d.name == "spark":
        last["spark"] = ("filter(_p0, (_e, _i) -> NOT exists(CASE WHEN _i + 1 < size(_p0) THEN "
                         "slice(_p0, _i + 2, size(_p0)) ELSE slice(_p0, 1, 0) END, _f -> _f.key = _e.key))")
    return tpl(g, "CASE WHEN _p1 IS NOT NULL THEN _p0 END", _bag_of(g, tpl(g, last, entries)), keys)


def pack_all_form(lw: Any, args: list[Any], sc: Any, where: Any) -> ir.Expr:
    """``pack_all([ignore_null_empty])``: a bag of the row's columns, known here from the scope's schema."""
    flag: Any = False
    if len(args) > 1:
        raise Refusal("pack_all with more than one argument", where)
    if args:
        e = lw.expr(args[0], sc)
        if not (isinstance(e, ir.Lit) and isinstance(e.value, bool)):
            raise Refusal("pack_all with a computed ignore_null_empty", where)
        flag = e.value
    if sc.schema is None:
        raise Refusal("pack_all outside a row context", where)
    items: list[ir.Expr] = [ir.Lit(T.BOOL, flag)]
    for col in (sc.operator_input or sc.schema).visible:
        items += [ir.Lit(T.STRING, col.name), ir.Col(col.type, col.name)]
    return ir.Call(T.DYNAMIC, "__pack_all", tuple(items))


@scalar("__pack_all", (1, 9999), T.DYNAMIC, category="internal")
def _pack_all(g, c, pred):
    cols = list(zip(c.args[1::2], c.args[2::2], strict=True))
    if not c.args[0].value:
        return g.d.dyn_object([(name.value, _dyn_of(g, a)) for name, a in cols])
    # Null and empty values are left out: the entries of those that are not, as a bag.
    entries = []
    for name, a in cols:
        v = _dyn_of(g, a)
        if a.type in (T.STRING, T.GUID):
            keep = tpl(g, "_p0 IS NOT NULL AND _p0 <> ''", g.e(a))
        elif a.type == T.DYNAMIC:
            keep = exp.Not(this=g.d.dyn_is(v.copy(), "null"))
        else:
            keep = exp.Not(this=exp.Is(this=g.e(a), expression=exp.null()))
        entries.append(tpl(g, "CASE WHEN _p0 THEN _p1 END", keep, _entry(g, exp.Literal.string(name.value), v)))
    listed = ", ".join(f"_p{i}" for i in range(len(entries)))
    arr = tpl(g, {"duckdb": f"list_filter([{listed}], _e -> _e IS NOT NULL)",
                  "spark": f"filter(array({listed}), _e -> _e IS NOT NULL)"}, *entries)
    return _bag_of(g, arr)


def capped_range(g: Any, start: exp.Expression, stop: exp.Expression, step: exp.Expression) -> exp.Expression:
    """``range(start, stop, step)`` over integers, at most :data:`MAX_ARRAY` elements as in Kusto (which cuts
    a longer range there), empty when the step leads away from *stop*."""
    last = f"_p0 + _p2 * {MAX_ARRAY - 1}"
    stop_capped = f"(CASE WHEN _p2 > 0 THEN least(_p1, {last}) ELSE greatest(_p1, {last}) END)"
    body = {
        "duckdb": f"range(_p0, {stop_capped} + sign(_p2), _p2)",
        "spark": f"CASE WHEN _p2 = 0 THEN NULL WHEN (_p2 > 0 AND _p0 > _p1) OR (_p2 < 0 AND _p0 < _p1) "
        f"THEN slice(array(CAST(_p0 AS BIGINT)), 1, 0) ELSE sequence(_p0, {stop_capped}, _p2) END",
    }
    if g.d.name == "duckdb":
        body["duckdb"] = f"CASE WHEN _p2 = 0 THEN NULL ELSE {body['duckdb']} END"
    return g.d.dyn_array_from_sql_array(tpl(g, body, start, stop, step))


# -- parse-kv internals (lower/parse_kv.py builds the regexes) ----------------------------------------


def _unescape(g: Any, v: exp.Expression, escapes: str) -> exp.Expression:
    if not escapes:
        return v
    from kqlmagic_plus.language.compiler.functions.common import re_quote

    cls = "[" + "".join(re_quote(e) for e in escapes) + "](.)"
    return g.d.regex_replace(v, exp.Literal.string(cls), exp.Literal.string("$1" if g.d.name == "spark" else "\\1"))


@scalar("__parse_kv_value", 4, T.STRING, category="internal")
def _parse_kv_value(g, c, pred):
    from kqlmagic_plus.language.compiler.functions.conversions import convert_text

    subject, pattern = g.e(c.args[0]), g.e(c.args[1])
    quoted, escapes = c.args[2].value, c.args[3].value
    # One group per quote pair, then the unquoted value's: only the matching one is not empty.
    parts = [_unescape(g, g.d.regex_extract(subject, pattern, k + 1), escapes) for k in range(quoted)]
    parts.append(g.d.regex_extract(subject.copy(), pattern.copy(), quoted + 1))
    text = exp.Trim(this=exp.Concat(expressions=parts) if len(parts) > 1 else parts[0])
    return tpl(g, "CASE WHEN _p0 THEN _p1 END", g.d.regex_match(subject.copy(), pattern.copy()),
               convert_text(g, text, c.type))


@scalar("__parse_kv_pairs", 3, T.STRING, category="internal")
def _parse_kv_pairs(g, c, pred):
    from kqlmagic_plus.language.compiler.functions.conversions import convert_text

    subject, pattern, key = g.e(c.args[0]), g.e(c.args[1]), g.e(c.args[2])
    keys = g.d.regex_extract_all(subject, pattern, 1)
    values = g.d.regex_extract_all(subject.copy(), pattern.copy(), 2)
    body = {
        "duckdb": "kat(_p1, list_position(list_transform(_p0, _x -> trim(_x)), _p2))",
        "spark": "CASE WHEN array_position(transform(_p0, _x -> trim(_x)), _p2) > 0 "
        "THEN kat(_p1, array_position(transform(_p0, _x -> trim(_x)), _p2)) END",
    }
    text = exp.Trim(this=tpl(g, body, keys, values, key))
    return convert_text(g, text, c.type)


@scalar("__partition_rank", (1, 999), T.LONG, category="internal")
def _partition_rank(g, c, pred):
    """Internal (mv-apply): the row number within the rows of one key, in the given sort order."""
    part, rest = c.args[0], c.args[1:]
    order = [
        exp.Ordered(this=g.e(rest[k]), desc=bool(rest[k + 1].value), nulls_first=bool(rest[k + 2].value))
        for k in range(0, len(rest), 3)
    ]
    return exp.Window(
        this=exp.Anonymous(this="row_number", expressions=[]),
        partition_by=[g.e(part)],
        order=exp.Order(expressions=order) if order else None,
    )


def multi_sort_columns(ne: Any, e: ir.Expr) -> list[tuple[str, ir.Expr]] | None:
    """``print array_sort_asc(a1, a2)``: Kusto's one column per array, named ``a1_sorted``, ``a2_sorted``; None
    for any other expression. Only where each array is a plain name (the columns are named after them)."""
    from kqlmagic_plus.language.compiler.parsetree import collapse, rule
    from kqlmagic_plus.language.compiler.syntax import name_of

    if not is_multi_sort(e) or getattr(ne, "Name", None) is not None:
        return None
    call = collapse(ne.Expression)
    if rule(call) != "NamedFunctionCallExpression":
        return None
    arrays, _ = _sort_parts(e)  # type: ignore[arg-type]
    out = []
    for k, arg in enumerate(list(call.Arguments)[: len(arrays)]):
        ref = collapse(arg)
        if rule(ref) not in ("SimpleNameReference", "IdentifierName", "NameReferenceWithDataScope"):
            return None
        out.append((f"{name_of(ref)}_sorted", ir.Call(T.DYNAMIC, "__path", (e, ir.Lit(T.LONG, k)))))
    return out
