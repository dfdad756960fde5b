"""KQL's scalar operators: ``and``/``or``/``not``, arithmetic, comparisons, ``=~``, ``between``.

Datetime and timespan arithmetic is done on microseconds; string equality reads a SQL NULL as ``""``.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import (
    big,
    empty_if_null,
    false_if_null,
    first_type,
    is_string,
    lit_str,
    lower_str,
    may_carry_ticks,
    us_of,
)
from kqlmagic_plus.language.compiler.sqlexpr import cast_, fn, paren, s

TABLE = Table()
_op = TABLE.operator


@_op("and", (2, 99), T.BOOL)
def _and(g, c, pred):
    return exp.and_(*[g.e(a, pred=pred) for a in c.args])


@_op("or", (2, 99), T.BOOL)
def _or(g, c, pred):
    return exp.or_(*[paren(g.e(a, pred=pred)) for a in c.args])


@_op("not", 1, T.BOOL)
def _not(g, c, pred):
    a = c.args[0]
    return exp.Not(this=paren(g.e(a)))


@_op("neg", 1, first_type)
def _neg(g, c, pred):
    return exp.Neg(this=paren(g.e(c.args[0])))


def _arith(g: Any, c: ir.Call, op: str) -> exp.Expression:
    a, b = c.args
    x, y = g.e(a), g.e(b)
    ta, tb = a.type, b.type
    # datetime / timespan arithmetic: everything is microseconds.
    if c.type == T.DATETIME:
        dt_arg, span = (a, y) if ta == T.DATETIME else (b, x)
        if g.d.keeps_ticks and may_carry_ticks(dt_arg, g.tick_cols):
            # Keeps the datetime's 100 ns ticks (the span is whole microseconds).
            return g.d.ts_plus_us(g.e(dt_arg), span if op == "+" else exp.Neg(this=paren(span)))
        base = us_of(g, dt_arg)
        total = exp.Add(this=base, expression=span) if op == "+" else exp.Sub(this=base, expression=span)
        return g.d.us_to_ts(total)
    if ta == T.DATETIME and tb == T.DATETIME:
        return exp.Sub(this=us_of(g, a), expression=us_of(g, b))
    if c.type == T.TIMESPAN:
        if op == "*":
            if T.REAL in (ta, tb):
                return big(fn("round", exp.Mul(this=x, expression=y)))
            # A count of an INT literal times a span's microseconds overflows DuckDB's INT32.
            return exp.Mul(this=big(x), expression=big(y))
        if op == "/":
            if T.REAL in (ta, tb):
                return big(fn("round", g.d.real_div(x, y)))
            return g.d.int_div(x, y)
        if op == "%":
            return g.d.pmod(x, y)
        return exp.Add(this=x, expression=y) if op == "+" else exp.Sub(this=x, expression=y)
    if ta == T.TIMESPAN and tb == T.TIMESPAN and op == "/":
        return g.d.real_div(cast_(x, "DOUBLE"), cast_(y, "DOUBLE"))
    if c.type in T.INTEGRAL:
        if ta == T.INT:
            x = big(x)
        if tb == T.INT:
            y = big(y)
        if op == "/":
            return g.d.int_div(x, y)
        if op == "%":
            return g.d.pmod(x, y)
    if c.type == T.REAL:
        if op == "/":
            return g.d.ieee_div(cast_(x, "DOUBLE") if ta != T.REAL else x, y)
        if op == "%":
            return g.d.pmod(x, y)
    cls = {"+": exp.Add, "-": exp.Sub, "*": exp.Mul, "/": exp.Div, "%": exp.Mod}[op]
    return cls(this=x, expression=y)


for _name in ("+", "-", "*", "/", "%"):

    def _mk(op: str):
        def emit(g, c, pred):
            return paren(_arith(g, c, op))

        return emit

    _op(_name, 2, lambda a: a[0].type)(_mk(_name))


def _cmp_operands(g: Any, a: ir.Expr, b: ir.Expr) -> tuple[exp.Expression, exp.Expression]:
    if a.type == T.DATETIME and isinstance(b, ir.Lit) and b.value is not None:
        return g.e(a), g.e(b)
    return g.e(a), g.e(b)


_CMP = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


def _cmp(op: str):
    def emit(g, c, pred):
        a, b = c.args
        if is_string(a) and is_string(b) and op in ("==", "!="):
            return string_equals(g, a, b, negated=(op == "!="), ci=False, pred=pred)
        x, y = _cmp_operands(g, a, b)
        if is_string(a) and is_string(b):
            x, y = empty_if_null(x), empty_if_null(y)
        elif op in ("==", "!=") and {a.type, b.type} <= _NULL_AWARE:
            return _null_aware_equality(x, y, a, b, negated=op == "!=", pred=pred)
        return _CMP[op](this=x, expression=y)

    return emit


for _name in _CMP:
    _op(_name, 2, T.BOOL)(_cmp(_name))

_NULL_AWARE = {*T.NUMERIC, T.DATETIME, T.TIMESPAN, T.BOOL, T.NULL}


def _null_aware_equality(
    x: exp.Expression, y: exp.Expression, a: ir.Expr, b: ir.Expr, *, negated: bool, pred: bool
) -> exp.Expression:
    """Kusto's ``==`` / ``!=`` with a null operand: one null makes ``==`` false and ``!=`` true; two nulls
    make either null (so ``where x != 5`` keeps the rows where x is null, unlike SQL's ``<>``)."""
    known = [e for e in (a, b) if isinstance(e, ir.Lit) and e.value is not None]
    if known:
        # Against a constant only one side can be null: the comparison, with null read as "one null".
        r: exp.Expression = (exp.NEQ if negated else exp.EQ)(this=x, expression=y)
        if negated or not pred:
            r = exp.Coalesce(this=paren(r), expressions=[exp.true() if negated else exp.false()])
        return r
    same = exp.NullSafeEQ(this=x, expression=y)
    r = exp.Not(this=paren(same)) if negated else same
    if pred and negated:
        return r  # two nulls are null, which a filter reads as false: the same as not distinct
    if pred:
        return exp.EQ(this=x, expression=y)
    both_null = exp.and_(exp.Is(this=x, expression=exp.Null()), exp.Is(this=y, expression=exp.Null()))
    return exp.Case(ifs=[exp.If(this=both_null, true=exp.Null())], default=r)


def _needs_null_fill(e: ir.Expr) -> bool:
    """A string operand whose SQL NULL must read as "" (columns, computed values, empty literals)."""
    return not (isinstance(e, ir.Lit) and e.value not in (None, ""))


def string_equals(g: Any, a: ir.Expr, b: ir.Expr, *, negated: bool, ci: bool, pred: bool) -> exp.Expression:
    x, y = g.e(a), g.e(b)
    if ci:
        x = lower_str(x)
        y = s(b.value.lower()) if lit_str(b) is not None else lower_str(y)
    if negated or (_needs_null_fill(a) and _needs_null_fill(b)) or lit_str(a) == "" or lit_str(b) == "":
        x, y = empty_if_null(x), empty_if_null(y)
        r = exp.EQ(this=x, expression=y)
        return exp.Not(this=paren(r)) if negated else r
    return false_if_null(exp.EQ(this=x, expression=y), pred)


@_op("=~", 2, T.BOOL)
def _eq_ci(g, c, pred):
    return string_equals(g, c.args[0], c.args[1], negated=False, ci=True, pred=pred)


@_op("!~", 2, T.BOOL)
def _ne_ci(g, c, pred):
    return string_equals(g, c.args[0], c.args[1], negated=True, ci=True, pred=pred)


@_op("between", 3, T.BOOL)
def _between(g, c, pred):
    x, lo, hi = c.args
    return exp.Between(this=g.e(x), low=g.e(lo), high=g.e(hi))


@_op("!between", 3, T.BOOL)
def _not_between(g, c, pred):
    x, lo, hi = c.args
    return exp.Not(this=paren(exp.Between(this=g.e(x), low=g.e(lo), high=g.e(hi))))
