"""Math functions and rounding to bins: ``abs``, ``sqrt`` ... ``round``, ``rand``, ``bin``, ``bin_at``."""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import big, first_type, us_of
from kqlmagic_plus.language.compiler.sqlexpr import cast_, fn, n, paren, s

TABLE = Table()
scalar = TABLE.scalar


@scalar("abs", 1, first_type)
def _abs(g, c, pred):
    return fn("abs", g.e(c.args[0]))


def _real1(name: str, sql: str):
    @scalar(name, 1, T.REAL, coerce="real")
    def emit(g, c, pred):
        return fn(sql, cast_(g.e(c.args[0]), "DOUBLE"))

    return emit


for _k, _v in {
    "sqrt": "sqrt",
    "exp": "exp",
    "log10": "log10",
    "log2": "log2",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "asin",
    "acos": "acos",
    "atan": "atan",
    "degrees": "degrees",
    "radians": "radians",
}.items():
    _real1(_k, _v)


@scalar("log", 1, T.REAL, coerce="real")
def _log(g, c, pred):
    return fn("ln", cast_(g.e(c.args[0]), "DOUBLE"))


@scalar("exp2", 1, T.REAL, coerce="real")
def _exp2(g, c, pred):
    return fn("pow", n(2.0), g.e(c.args[0]))


@scalar("exp10", 1, T.REAL, coerce="real")
def _exp10(g, c, pred):
    return fn("pow", n(10.0), g.e(c.args[0]))


@scalar("pow", 2, T.REAL, coerce="real")
def _pow(g, c, pred):
    return fn("pow", cast_(g.e(c.args[0]), "DOUBLE"), g.e(c.args[1]))


@scalar("pi", 0, T.REAL)
def _pi(g, c, pred):
    return fn("pi")


@scalar("sign", 1, T.REAL, coerce="real")
def _sign(g, c, pred):
    return cast_(fn("sign", g.e(c.args[0])), "DOUBLE")


@scalar("round", (1, 2), lambda a: T.REAL if a[0].type in (T.REAL, T.DECIMAL) else a[0].type)
def _round(g, c, pred):
    x = g.e(c.args[0])
    digits = g.e(c.args[1]) if len(c.args) == 2 else n(0)
    return fn("round", x, digits)


@scalar("ceiling", 1, first_type)
def _ceiling(g, c, pred):
    x = g.e(c.args[0])
    return cast_(fn("ceil", x), "DOUBLE") if c.type == T.REAL else fn("ceil", x)


@scalar("isnan", 1, T.BOOL, coerce="real")
def _isnan(g, c, pred):
    return fn("isnan", g.e(c.args[0]))


@scalar("isinf", 1, T.BOOL, coerce="real")
def _isinf(g, c, pred):
    x = g.e(c.args[0])
    return exp.In(this=x, expressions=[cast_(s("Infinity"), "DOUBLE"), cast_(s("-Infinity"), "DOUBLE")])


@scalar("isfinite", 1, T.BOOL, coerce="real")
def _isfinite(g, c, pred):
    x = g.e(c.args[0])
    return exp.not_(
        exp.or_(
            fn("isnan", x),
            exp.In(this=x, expressions=[cast_(s("Infinity"), "DOUBLE"), cast_(s("-Infinity"), "DOUBLE")]),
        )
    )


@scalar("rand", (0, 1), T.REAL)
def _rand(g, c, pred):
    r = g.d.rand()
    if c.args:
        return cast_(fn("floor", exp.Mul(this=r, expression=g.e(c.args[0]))), "DOUBLE")
    return r


def bin_expr(g: Any, value: ir.Expr, size: ir.Expr, origin: ir.Expr | None = None) -> exp.Expression:
    """``bin``/``floor``/``bin_at``: round down to a multiple of *size* (from *origin*)."""
    t = value.type
    if t == T.DATETIME:
        us = us_of(g, value)
        sz = g.e(size)
        if origin is not None:
            o = us_of(g, origin)
            shifted = exp.Sub(this=us, expression=o)
            return g.d.us_to_ts(exp.Add(this=exp.Sub(this=shifted, expression=g.d.pmod(shifted, sz)), expression=o))
        return g.d.us_to_ts(exp.Sub(this=us, expression=g.d.pmod(us, sz)))
    x, sz = g.e(value), g.e(size)
    if origin is not None:
        o = g.e(origin)
        x = exp.Sub(this=x, expression=o)
    if t in (T.TIMESPAN, T.INT, T.LONG) and size.type in (T.TIMESPAN, T.INT, T.LONG):
        if t == T.INT:
            x = big(x)
        r = exp.Sub(this=x, expression=g.d.pmod(x, sz))
    else:
        r = exp.Mul(this=fn("floor", g.d.real_div(cast_(x, "DOUBLE"), sz)), expression=sz)
    if origin is not None:
        r = exp.Add(this=r, expression=g.e(origin))
    return paren(r)


def _bin_type(a: list[ir.Expr]) -> str:
    t = a[0].type
    if t in (T.DATETIME, T.TIMESPAN):
        return t
    if t in T.INTEGRAL and a[1].type in (T.INT, T.LONG):
        return T.LONG
    return T.REAL


@scalar("bin", 2, _bin_type, aliases=("floor",))
def _bin(g, c, pred):
    if len(c.args) == 1:
        return fn("floor", g.e(c.args[0]))
    return bin_expr(g, c.args[0], c.args[1])


@scalar("bin_at", 3, _bin_type)
def _bin_at(g, c, pred):
    return bin_expr(g, c.args[0], c.args[1], c.args[2])


@scalar("atan2", 2, T.REAL, coerce="real")
def _atan2(g, c, pred):
    return fn("atan2", cast_(g.e(c.args[0]), "DOUBLE"), cast_(g.e(c.args[1]), "DOUBLE"))


@scalar("cot", 1, T.REAL, coerce="real")
def _cot(g, c, pred):
    # 1 / tan(x), IEEE 754 at a zero tangent (infinity), as KQL's real division.
    return g.d.ieee_div(cast_(n(1.0), "DOUBLE"), fn("tan", cast_(g.e(c.args[0]), "DOUBLE")))
