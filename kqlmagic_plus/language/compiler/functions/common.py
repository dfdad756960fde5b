"""Helpers every function family writes its SQL with."""

from __future__ import annotations

import string as _string
from collections.abc import Callable, Collection
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.sqlexpr import cast_, dtype, fn, n, s, try_cast_
from kqlmagic_plus.language.compiler.syntax import Refusal

_PUNCT = set(_string.punctuation)


def is_lit(e: ir.Expr) -> bool:
    return isinstance(e, ir.Lit)


def lit_str(e: ir.Expr) -> str | None:
    return e.value if isinstance(e, ir.Lit) and isinstance(e.value, str) else None


def re_quote(text: str) -> str:
    """*text* as a regex matching itself, in a form Java and RE2 both read."""
    return "".join("\\" + c if c in _PUNCT else c for c in text)


def re_quote_sql(g: Any, e: exp.Expression) -> exp.Expression:
    """Runtime quoting of a computed needle (``\\Q...\\E`` is understood by Java and RE2)."""
    body = fn("replace", e, s("\\E"), s("\\E\\\\E\\Q"))
    return exp.Concat(expressions=[s("\\Q"), body, s("\\E")])


def ci_flag(g: Any) -> str:
    # Java's (?i) folds ASCII only; (?iu) is Unicode-aware. RE2's (?i) is already Unicode-aware.
    return "(?iu)" if g.d.name == "spark" else "(?i)"


def empty_if_null(e: exp.Expression) -> exp.Expression:
    return exp.Coalesce(this=e, expressions=[s("")])


def false_if_null(e: exp.Expression, pred: bool) -> exp.Expression:
    return e if pred else exp.Coalesce(this=e, expressions=[exp.false()])


def same_type(args: list[ir.Expr]) -> str:
    t = args[0].type
    for a in args[1:]:
        t = T.unify(t, a.type) or t
    return t


def first_type(args: list[ir.Expr]) -> str:
    return args[0].type


def lower_str(e: exp.Expression) -> exp.Expression:
    return exp.Lower(this=e)


def big(e: exp.Expression) -> exp.Expression:
    return cast_(e, "BIGINT")


def us_of(g: Any, e: ir.Expr) -> exp.Expression:
    """A datetime as microseconds since the epoch."""
    if isinstance(e, ir.Lit) and e.value is not None:
        return n(e.value)
    return g.d.ts_to_us(g.e(e))


def is_string(e: ir.Expr) -> bool:
    return e.type in (T.STRING, T.GUID)


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


_ELEM = "__kqlc_ip_elem"


def any_element(g: Any, args: list[ir.Expr], test: Callable[[ir.Expr | exp.Expression], exp.Expression],
                what: str) -> exp.Expression:
    """*test* of any needle: each argument a string, or a dynamic array of them (constant or not)."""
    parts: list[exp.Expression] = []
    for a in args:
        if a.type == T.DYNAMIC:
            if isinstance(a, ir.Lit):
                values = a.value if isinstance(a.value, list) else [a.value]
                parts.extend(test(ir.Lit(T.STRING, v if isinstance(v, str) else "")) for v in values)
                continue
            # A name no column has: the test's other operand may be a column called x.
            x = exp.column(_ELEM)
            elem = empty_if_null(g.d.dyn_as_string(x))
            body = exp.Coalesce(this=test(elem), expressions=[exp.false()])
            lam = exp.Lambda(this=body, expressions=[exp.to_identifier(_ELEM)])
            arr = g.d.dyn_array_elements(g.e(a))
            if g.d.name == "spark":
                parts.append(exp.Coalesce(this=fn("exists", arr, lam), expressions=[exp.false()]))
            else:
                parts.append(exp.Coalesce(this=fn("list_bool_or", fn("list_transform", arr, lam)),
                                          expressions=[exp.false()]))
        elif a.type in (T.STRING, T.NULL):
            parts.append(test(a))
        else:
            raise Refusal(f"{what} of a {a.type}", reason="it takes strings or a dynamic array of strings")
    return exp.or_(*parts) if parts else exp.false()


#: Datetime functions whose value can hold 100 ns ticks below the microsecond (the local engine keeps them).
_TICK_SOURCES = frozenset({"endofday", "endofweek", "endofmonth", "endofyear", "make_datetime"})
#: Datetime functions that keep the ticks of their datetime arguments.
_TICK_KEEPERS = frozenset({"+", "-", "datetime_add", "iff", "iif", "case", "coalesce", "max_of", "min_of"})


def may_carry_ticks(e: ir.Expr, tick_cols: Collection[str] = ()) -> bool:
    """*e* (a datetime) can hold ticks below the microsecond: a literal written with a 7th digit, endof*,
    make_datetime, a column in *tick_cols* (made so earlier in the query), or arithmetic on those. The local
    engine's ticks-keeping datetime arithmetic (TIMESTAMP + INTERVAL) is ~3x slower per row than the microsecond
    sum, so a table's column, which holds microseconds once read, takes the fast one."""
    if isinstance(e, ir.Lit):
        return bool(getattr(e.value, "rest", 0))
    if isinstance(e, ir.Col):
        return e.name in tick_cols
    if isinstance(e, ir.Call | ir.Agg):
        if e.fn in _TICK_SOURCES:
            return True
        if isinstance(e, ir.Agg) or e.fn in _TICK_KEEPERS:
            return any(a.type == T.DATETIME and may_carry_ticks(a, tick_cols) for a in e.args)
    return False
