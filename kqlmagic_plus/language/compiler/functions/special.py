"""Special functions computed by Python UDFs (:mod:`kqlmagic_plus.language.udfs.mathfn`): ``erf``, ``erfc``,
``gamma``, ``loggamma``, ``beta_cdf``, ``beta_pdf``, ``beta_inv``.

Neither engine has them all (Spark has none), so both engines call the same Python implementation and
answer alike. The NaN answers (a NaN argument, the beta functions outside their domain) are given in SQL:
a DuckDB Python UDF's NaN result arrives as null.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, fn, n, s

TABLE = Table()
scalar = TABLE.scalar


def _nan() -> exp.Expression:
    return cast_(s("NaN"), "DOUBLE")


def _any_nan(xs: list[exp.Expression]) -> exp.Expression:
    return exp.or_(*[fn("isnan", x) for x in xs])


def _outside01(x: exp.Expression) -> exp.Expression:
    return exp.or_(exp.LT(this=x, expression=n(0)), exp.GT(this=x, expression=n(1)))


def _bad_shape(alpha: exp.Expression, beta: exp.Expression) -> exp.Expression:
    return exp.or_(exp.LTE(this=alpha, expression=n(0)), exp.LTE(this=beta, expression=n(0)))


def _args(g: Any, c: Any) -> list[exp.Expression]:
    return [exp.Cast(this=g.e(a), to=g.d.sql_type(T.REAL)) for a in c.args]


def _real1(name: str) -> None:
    @scalar(name, 1, T.REAL, coerce="real")
    def emit(g, c, pred):
        (x,) = _args(g, c)
        return case([(fn("isnan", x), _nan())], udfs.call(name, x))


for _name in ("erf", "erfc", "gamma", "loggamma"):
    _real1(_name)


def _beta(name: str) -> None:
    @scalar(name, 3, T.REAL, coerce="real")
    def emit(g, c, pred):
        x, alpha, beta = _args(g, c)
        whens = [(_any_nan([x, alpha, beta]), _nan())]
        if name == "beta_inv":
            # A probability outside [0, 1] is null (the reference's page), a bad shape NaN.
            whens += [(_outside01(x), exp.Null()), (_bad_shape(alpha, beta), _nan())]
        else:
            whens += [(exp.or_(_outside01(x), _bad_shape(alpha, beta)), _nan())]
        return case(whens, udfs.call(name, x, alpha, beta))


for _name in ("beta_cdf", "beta_pdf", "beta_inv"):
    _beta(_name)
