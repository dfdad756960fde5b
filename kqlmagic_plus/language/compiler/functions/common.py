"""Helpers every function family writes its SQL with."""

from __future__ import annotations

import string as _string
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.sqlexpr import cast_, fn, n, s

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
