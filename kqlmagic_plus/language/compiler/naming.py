"""The names KQL gives columns nobody named.

Facts (from the KQL documentation and from measurements on Kusto published with duckdb-kql):

* an expression is named after its column when it is a column, a path (``d.a[0]`` -> ``d_a_0``) or
  one of a fixed list of functions applied to something so named (``tostring(B)`` -> ``B``,
  ``bin(T, 1h)`` -> ``T``); ``strlen(s)`` is ``strlen_s``; anything else is positional, ``Column1``...;
* an aggregate is ``<prefix>_<argument name>``: ``count()`` -> ``count_``, ``sum(x)`` -> ``sum_x``,
  ``make_set(x)`` -> ``set_x``, ``take_any(x)`` -> ``x``, ``percentile(x, 50)`` -> ``percentile_x_50``;
* a name already taken gets ``1``, ``2``... appended (``x``, ``x1``).
"""

from __future__ import annotations

from collections.abc import Iterable

NAME_PRESERVING = frozenset(
    {
        "tostring",
        "toint",
        "tolong",
        "todouble",
        "toreal",
        "tobool",
        "toboolean",
        "todatetime",
        "totimespan",
        "timespan",
        "toguid",
        "todecimal",
        "tohex",
        "todynamic",
        "parse_json",
        "split",
        "bin",
        "bin_at",
        "floor",
        "ceiling",
        "round",
        "startofday",
        "abs",
        "sqrt",
        "log",
        "log10",
        "log2",
        "exp",
        "exp2",
        "gamma",
        "sin",
        "cos",
        "tan",
        "asin",
        "acos",
        "atan",
        "atan2",
        "format_datetime",
    }
)
_PREFIXED = {"strlen": "strlen", "gettype": "type"}
AGG_PREFIX = {
    "make_list": "list",
    "makelist": "list",
    "make_set": "set",
    "makeset": "set",
    "make_list_if": "list",
    "make_set_if": "set",
    "make_bag": "bag",
    "make_bag_if": "bag",
    "take_anyif": "",
    "anyif": "",
    "count_distinct": "count_distinct",
    "makelist_if": "list",
    "makeset_if": "set",
    "make_dictionary": "bag",
    "make_list_with_nulls": "list",
    "percentilesw_array": "percentile",
    "percentiles_array": "percentiles",
    "buildschema": "schema",
}
AGG_NAME_IGNORES_ARGS = frozenset({"countif"})
#: Named after both their arguments: ``covariance(x, y)`` -> ``covariance_x_y``.
_AGG_NAMED_BY_TWO = frozenset({"covariance", "covariancep", "covarianceif", "covariancepif"})
AGG_NAME_IS_ARGUMENT = frozenset({"take_any", "any"})


def syntax_name(node: object) -> str | None:
    """The implicit name of an expression from its *syntax* (see :mod:`.lower`, which builds the
    small tuple form this reads: ``("col", name)``, ``("path", base, steps)``, ``("call", fn, args)``)."""
    if not isinstance(node, tuple):
        return None
    kind = node[0]
    if kind == "col":
        return node[1]
    if kind == "path":
        base = syntax_name(node[1])
        parts = [base] if base else []
        for st in node[2]:
            if st is None:
                return None
            parts.append(str(st).replace("-", "_"))
        return "_".join(parts) if parts else None
    if kind == "call":
        name, args = node[1], node[2]
        from kqlmagic_plus.language.compiler.catalog import lookup_aggregate

        if lookup_aggregate(name) is not None and name not in ("min_of", "max_of"):
            return aggregate_name(lookup_aggregate(name).name if name not in AGG_PREFIX else name, args)
        if name in AGG_NAME_IS_ARGUMENT:
            return syntax_name(args[0]) if args else None
        if name in NAME_PRESERVING and args:
            return syntax_name(args[0])
        if name in _PREFIXED and args:
            return f"{_PREFIXED[name]}_{syntax_name(args[0]) or ''}"
        if name in ("array_sort_asc", "array_sort_desc") and args:
            a = args[0]
            return f"{a[1]}_sorted" if isinstance(a, tuple) and a[0] == "col" else "array0_sorted"
        return None
    return None


def aggregate_name(fn: str, args: list[object]) -> str:
    if fn in AGG_NAME_IS_ARGUMENT:
        return (syntax_name(args[0]) if args else None) or fn
    prefix = AGG_PREFIX.get(fn, fn)
    if fn in AGG_NAME_IGNORES_ARGS or not args:
        return f"{prefix}_"
    name = f"{prefix}_{syntax_name(args[0]) or ''}"
    if fn in _AGG_NAMED_BY_TWO and len(args) > 1:
        name += f"_{syntax_name(args[1]) or ''}"
    if fn == "percentile" and len(args) > 1 and isinstance(args[1], tuple) and args[1][0] == "num":
        v = args[1][1]
        name += "_" + (str(int(v)) if float(v).is_integer() else str(v).replace(".", "_"))
    return name


class Namer:
    """One operator's output names, assigned left to right as Kusto assigns them."""

    def __init__(self, reserved: Iterable[str] = (), skip: Iterable[str] = ()):
        self._taken: set[str] = set()
        self._reserved = set(reserved)
        self._skip = set(skip)
        self._positional = 0

    def positional(self) -> str:
        self._positional += 1
        while f"Column{self._positional}" in self._skip:
            self._positional += 1
        return f"Column{self._positional}"

    def take(self, base: str) -> str:
        name, k = base, 0
        while name in self._taken or (k and name in self._reserved):
            k += 1
            name = f"{base}{k}"
        self._taken.add(name)
        return name
