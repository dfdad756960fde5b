"""The words completion offers, as data: tabular operators, expression keywords, join kinds, render
kinds and properties, and the function signatures read from the compiler's catalog.

Everything here is a table; :mod:`.context` decides which table applies at the cursor.
"""

from __future__ import annotations

import functools
import json

from kqlmagic_plus.language.render import CHART_TYPES, ENUMS, KNOWN_PROPERTIES

#: Tabular operators after ``|``, with the one-line description a frontend shows beside them.
OPERATORS: dict[str, str] = {
    "where": "filter rows by a predicate",
    "extend": "add computed columns",
    "project": "choose, rename or compute the columns kept",
    "project-away": "drop columns",
    "project-keep": "keep only these columns",
    "project-rename": "rename columns",
    "project-reorder": "put columns first, in this order",
    "summarize": "aggregate rows, grouped by columns",
    "count": "the number of rows",
    "distinct": "the distinct combinations of columns",
    "take": "any N rows",
    "limit": "any N rows",
    "top": "the first N rows by a sort",
    "sort": "order rows (sort by col desc)",
    "order": "order rows (order by col desc)",
    "join": "join with another table (kind=inner ... on Col)",
    "lookup": "add columns from a dimension table",
    "union": "rows of several tables",
    "mv-expand": "one row per element of a dynamic array or bag",
    "mv-apply": "a subquery per element of an array",
    "parse": "extract columns from a string with a pattern",
    "parse-where": "parse, keeping only rows that match",
    "parse-kv": "extract key/value pairs from a string",
    "make-series": "aggregate into arrays along an axis",
    "render": "draw the result as a chart",
    "as": "name the result for later legs",
    "serialize": "mark the row order (for prev/next/row_number)",
    "sample": "N random rows",
    "sample-distinct": "N random distinct values",
    "top-nested": "hierarchical top N",
    "top-hitters": "approximate top values",
    "evaluate": "run a plugin (bag_unpack, pivot, ...)",
    "getschema": "the columns and their types",
    "invoke": "call a tabular function",
    "partition": "a subquery per partition",
    "scan": "match sequences of rows",
    "search": "full-text search",
    "fork": "several outputs from one input",
    "facet": "counts per value of several columns",
    "reduce": "group similar strings",
    "filter": "the same as where",
}

#: What can start a statement besides a table name.
STATEMENT_STARTS: dict[str, str] = {
    "let": "name a value, a table or a function",
    "print": "one row of computed values",
    "range": "a column of a range of values",
    "datatable": "an inline table",
    "union": "rows of several tables",
    "search": "full-text search across tables",
    "find": "find rows across tables",
}

#: Infix words and operators after a complete operand inside an expression.
EXPRESSION_OPERATORS: dict[str, str] = {
    "==": "equals", "!=": "not equal", "=~": "equals, ignoring case", "!~": "not equal, ignoring case",
    "<": "less", "<=": "less or equal", ">": "greater", ">=": "greater or equal",
    "and": "both", "or": "either",
    "has": "has the whole term", "!has": "does not have the term", "has_cs": "has the term, case-sensitive",
    "has_any": "has any of the terms", "has_all": "has all the terms",
    "contains": "contains the substring", "!contains": "does not contain", "contains_cs": "contains, case-sensitive",
    "startswith": "starts with", "!startswith": "does not start with", "endswith": "ends with",
    "!endswith": "does not end with", "hasprefix": "has a term starting with", "hassuffix": "has a term ending with",
    "in": "equals one of", "!in": "equals none of", "in~": "one of, ignoring case",
    "between": "in a range (a .. b)", "!between": "outside a range", "matches regex": "matches a regular expression",
}

#: After a sort column.
SORT_WORDS: dict[str, str] = {"asc": "ascending", "desc": "descending", "nulls first": "", "nulls last": ""}

JOIN_KINDS: tuple[str, ...] = ("inner", "innerunique", "leftouter", "rightouter", "fullouter", "leftanti",
                               "rightanti", "leftsemi", "rightsemi", "anti", "semi")

EVALUATE_PLUGINS: tuple[str, ...] = ("bag_unpack", "pivot", "narrow", "autocluster", "basket", "diffpatterns",
                                     "ipv4_lookup", "ipv6_lookup", "geo_lookup", "sequence_detect",
                                     "rolling_percentile")

RENDER_KINDS: tuple[str, ...] = CHART_TYPES
RENDER_PROPERTIES: tuple[str, ...] = KNOWN_PROPERTIES
RENDER_ENUMS: dict[str, tuple[str, ...]] = {**ENUMS, "accumulate": ("true", "false")}
#: Render properties whose value names columns of the result.
RENDER_COLUMN_PROPERTIES: frozenset[str] = frozenset({"xcolumn", "ycolumns", "series", "anomalycolumns"})

#: Column names and types of operators whose output is fixed.
FIXED_OUTPUT: dict[str, dict[str, str]] = {
    "count": {"Count": "long"},
    "getschema": {"ColumnName": "string", "ColumnOrdinal": "int", "DataType": "string", "ColumnType": "string"},
    "reduce": {"Pattern": "string", "Count": "long", "Representative": "string"},
}

#: Operators whose output columns are their input's (they filter, order or draw rows).
SAME_COLUMNS: frozenset[str] = frozenset({
    "where", "filter", "take", "limit", "sort", "order", "top", "sample", "render", "as", "project-reorder",
    "invoke", "evaluate", "fork", "facet", "partition", "scan", "search", "mv-apply", "top-nested", "parse-kv",
})


#: The catalog's names and signatures, kept as data: importing the compiler's catalog takes ~0.9 s cold, and
#: the first Tab of a session must not wait for it. tests/test_completion.py checks it equals the catalog;
#: ``python -m tools.kql_functions --write`` regenerates it.
FUNCTIONS_FILE = "data/kql_functions.json"


@functools.cache
def functions() -> tuple[dict[str, str], dict[str, str]]:
    """(scalar name -> signature, aggregate name -> signature), read from :data:`FUNCTIONS_FILE`."""
    from importlib import resources

    doc = json.loads(resources.files("kqlmagic_plus").joinpath(FUNCTIONS_FILE).read_text(encoding="utf-8"))
    return dict(doc["scalars"]), dict(doc["aggregates"])


def functions_from_catalog() -> tuple[dict[str, str], dict[str, str]]:
    """The same table computed from the compiler's catalog (internal ``__helpers`` are not KQL: left out)."""
    from kqlmagic_plus.language.compiler import catalog

    scalars = {n: signature(n, f) for n, f in sorted(catalog.SCALARS.items()) if not n.startswith("_")}
    aggregates = {n: signature(n, f) for n, f in sorted(catalog.AGGREGATES.items()) if not n.startswith("_")}
    return scalars, aggregates


def signature(name: str, entry: object) -> str:
    """``substring(string, long[, long]) -> string`` from an entry's arity, argument kinds and return type."""
    lo = int(getattr(entry, "min_args", 0))
    hi = int(getattr(entry, "max_args", lo))
    coerce = getattr(entry, "coerce", None)
    ret = getattr(entry, "ret", "")

    def kind(i: int) -> str:
        if isinstance(coerce, str):
            return coerce
        if isinstance(coerce, tuple) and i < len(coerce) and coerce[i]:
            return str(coerce[i])
        return "x" if i == 0 else f"x{i + 1}"

    text = ", ".join(kind(i) for i in range(lo))
    if hi >= 50:  # variadic
        text += (", " if text else "") + "..."
    else:
        for i in range(lo, hi):
            text += ("[, " if text else "[") + kind(i)
        text += "]" * max(0, hi - lo)
    returns = f" -> {ret}" if isinstance(ret, str) and ret else ""
    return f"{name}({text}){returns}"

