"""Series functions over dynamic numeric arrays: element-wise arithmetic, math and comparisons as native array
SQL (DuckDB ``list_transform``/``list_zip``, Spark ``transform``/``zip_with``), simple reductions in SQL, and
the algorithms SQL cannot say (filters, interpolation, periods, decomposition, fits) as Python UDFs
(:mod:`kqlmagic_plus.language.udfs.series`).

Element rules (the reference's): a non-numeric or missing element (the shorter of two arrays) yields null;
an integer op integer stays a long for add/subtract/multiply/abs/sign, everything else is a double. A scalar
argument is broadcast over the other argument's elements.

Functions that return several columns (``series_stats``, ``series_fit_line`` ...) are listed in
:data:`MULTI`; ``extend``/``project`` expand them into one column per output (see ``lower/project.py``), each
read from the one dynamic object the function computes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, dtype, fn, n, s, try_cast_
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError

TABLE = Table()
scalar = TABLE.scalar

_SPARK_INTS = ("BIGINT", "INT", "SMALLINT", "TINYINT")


def _lam(body: exp.Expression, *names: str) -> exp.Lambda:
    return exp.Lambda(this=body, expressions=[exp.to_identifier(x) for x in names])


def _transform(g: Any, arr: exp.Expression, body: exp.Expression, var: str) -> exp.Expression:
    return fn("transform" if g.d.name == "spark" else "list_transform", arr, _lam(body, var))


def _spark_schema(x: exp.Expression) -> exp.Expression:
    return fn("schema_of_variant", x)


def _inf(sign: str) -> exp.Expression:
    return cast_(s(f"{sign}Infinity"), "DOUBLE")


class Operand:
    """One argument of an element-wise function: an array element (a dynamic value) or a broadcast scalar."""

    def __init__(self, g: Any, e: exp.Expression, kql_type: str):
        self.g, self.e, self.t = g, e, kql_type

    @property
    def spark(self) -> bool:
        return self.g.d.name == "spark"

    def is_num(self) -> exp.Expression:
        if self.t != T.DYNAMIC:
            return exp.Not(this=exp.Is(this=self.e, expression=exp.null()))
        if self.spark:
            sch = _spark_schema(self.e)
            return exp.or_(
                exp.In(this=sch, expressions=[s(x) for x in (*_SPARK_INTS, "DOUBLE", "FLOAT")]),
                exp.Like(this=sch, expression=s("DECIMAL%")),
            )
        return exp.In(this=fn("json_type", self.e), expressions=[s("BIGINT"), s("UBIGINT"), s("DOUBLE")])

    def is_int(self) -> exp.Expression:
        if self.t != T.DYNAMIC:
            return exp.true() if self.t in T.INTEGRAL else exp.false()
        if self.spark:
            return exp.In(this=_spark_schema(self.e), expressions=[s(x) for x in _SPARK_INTS])
        return exp.In(this=fn("json_type", self.e), expressions=[s("BIGINT"), s("UBIGINT")])

    def dbl(self) -> exp.Expression:
        if self.t != T.DYNAMIC:
            return cast_(self.e, "DOUBLE")
        if self.spark:
            raw = fn("try_variant_get", self.e, s("$"), s("double"))
        else:
            raw = try_cast_(this=self.e, to=dtype("DOUBLE"))
        return case([(self.is_num(), raw)])

    def lng(self) -> exp.Expression:
        if self.t != T.DYNAMIC:
            return cast_(self.e, "BIGINT")
        if self.spark:
            return fn("try_variant_get", self.e, s("$"), s("bigint"))
        return try_cast_(this=self.e, to=dtype("BIGINT"))


def to_elem(g: Any, e: exp.Expression) -> exp.Expression:
    """A SQL scalar as one element of a dynamic array."""
    return cast_(e, "VARIANT") if g.d.name == "spark" else fn("to_json", e)


def elements(g: Any, a: ir.Expr) -> exp.Expression:
    return g.d.dyn_array_elements(g.e(a))


def _pack(g: Any, arr: exp.Expression) -> exp.Expression:
    return g.d.dyn_array_from_sql_array(arr)


def _map2(g: Any, a: ir.Expr, b: ir.Expr, body: Callable[[Operand, Operand], exp.Expression]) -> exp.Expression:
    """``body`` over the elements of *a* and *b* pairwise (the shorter padded with nulls), or broadcast."""
    if a.type != T.DYNAMIC and b.type != T.DYNAMIC:
        raise Refusal("a series function over two scalars (one argument must be a dynamic array)")
    for x in (a, b):
        if x.type not in (T.DYNAMIC, *T.NUMERIC):
            raise SemanticError(f"a series function's argument must be a numeric array or number, not {x.type}")
    if a.type == T.DYNAMIC and b.type == T.DYNAMIC:
        ea, eb = elements(g, a), elements(g, b)
        if g.d.name == "spark":
            arr = fn(
                "zip_with", ea, eb,
                _lam(body(Operand(g, exp.column("x"), T.DYNAMIC), Operand(g, exp.column("y"), T.DYNAMIC)), "x", "y"),
            )
        else:
            p = exp.column("p")
            first = fn("struct_extract", p, n(1))
            second = fn("struct_extract", p, n(2))
            arr = fn(
                "list_transform", fn("list_zip", ea, eb),
                _lam(body(Operand(g, first, T.DYNAMIC), Operand(g, second, T.DYNAMIC)), "p"),
            )
        arr = case(
            [(exp.or_(exp.Is(this=ea, expression=exp.null()), exp.Is(this=eb, expression=exp.null())), exp.null())],
            arr,
        )
        return _pack(g, arr)
    x = Operand(g, exp.column("x"), T.DYNAMIC)
    if a.type == T.DYNAMIC:
        other = Operand(g, g.e(b), b.type)
        return _pack(g, _transform(g, elements(g, a), body(x, other), "x"))
    other = Operand(g, g.e(a), a.type)
    return _pack(g, _transform(g, elements(g, b), body(other, x), "x"))


def _both_int(a: Operand, b: Operand) -> exp.Expression:
    return exp.and_(a.is_int(), b.is_int())


def _arith(op: type[exp.Binary]) -> Callable[[Operand, Operand], exp.Expression]:
    def body(a: Operand, b: Operand) -> exp.Expression:
        g = a.g
        whole = to_elem(g, op(this=a.lng(), expression=b.lng()))
        real = to_elem(g, op(this=a.dbl(), expression=b.dbl()))
        return case([(_both_int(a, b), whole)], real)

    return body


def _divide(a: Operand, b: Operand) -> exp.Expression:
    x, y = a.dbl(), b.dbl()
    zero = cast_(n(0), "DOUBLE")
    by_zero = case(
        [(exp.GT(this=x, expression=zero), _inf("")), (exp.LT(this=x, expression=zero), _inf("-"))],
        cast_(s("NaN"), "DOUBLE"),
    )
    return to_elem(
        a.g,
        case(
            [
                (exp.or_(exp.Is(this=x, expression=exp.null()), exp.Is(this=y, expression=exp.null())), exp.null()),
                (exp.EQ(this=y, expression=zero), by_zero),
            ],
            exp.Div(this=x, expression=y),
        ),
    )


def _pow(a: Operand, b: Operand) -> exp.Expression:
    return to_elem(a.g, fn("pow", a.dbl(), b.dbl()))


def _compare(op: type[exp.Binary]) -> Callable[[Operand, Operand], exp.Expression]:
    def body(a: Operand, b: Operand) -> exp.Expression:
        return to_elem(a.g, op(this=a.dbl(), expression=b.dbl()))

    return body


_BINARY: dict[str, Callable[[Operand, Operand], exp.Expression]] = {
    "series_add": _arith(exp.Add),
    "series_subtract": _arith(exp.Sub),
    "series_multiply": _arith(exp.Mul),
    "series_divide": _divide,
    "series_pow": _pow,
    "series_equals": _compare(exp.EQ),
    "series_not_equals": _compare(exp.NEQ),
    "series_greater": _compare(exp.GT),
    "series_greater_equals": _compare(exp.GTE),
    "series_less": _compare(exp.LT),
    "series_less_equals": _compare(exp.LTE),
}


def _binary(name: str, body: Callable[[Operand, Operand], exp.Expression]) -> None:
    @scalar(name, 2, T.DYNAMIC)
    def emit(g, c, pred):
        return _map2(g, c.args[0], c.args[1], body)


for _name, _body in _BINARY.items():
    _binary(_name, _body)


def _real1(sql: str, lo: float | None = None, hi: float | None = None) -> Callable[[Operand], exp.Expression]:
    """A double function of one element, null outside [lo, hi] (the engines disagree there: NaN, null, error)."""

    def body(x: Operand) -> exp.Expression:
        v = x.dbl()
        whens = []
        if lo is not None:
            whens.append((exp.LT(this=v, expression=n(lo)), exp.null()))
        if hi is not None:
            whens.append((exp.GT(this=v, expression=n(hi)), exp.null()))
        out = fn(sql, v)
        return to_elem(x.g, case(whens, out) if whens else out)

    return body


def _log(x: Operand) -> exp.Expression:
    v = x.dbl()
    zero = cast_(n(0), "DOUBLE")
    return to_elem(
        x.g,
        case([(exp.LT(this=v, expression=zero), exp.null()), (exp.EQ(this=v, expression=zero), _inf("-"))],
             fn("ln", v)),
    )


def _keep_int(sql: str) -> Callable[[Operand], exp.Expression]:
    def body(x: Operand) -> exp.Expression:
        g = x.g
        return case(
            [(x.is_int(), to_elem(g, cast_(fn(sql, x.lng()), "BIGINT")))],
            to_elem(g, cast_(fn(sql, x.dbl()), "DOUBLE")),
        )

    return body


def _rounding(sql: str) -> Callable[[Operand], exp.Expression]:
    def body(x: Operand) -> exp.Expression:
        return to_elem(x.g, cast_(fn(sql, x.dbl()), "DOUBLE"))

    return body


_UNARY: dict[str, Callable[[Operand], exp.Expression]] = {
    "series_abs": _keep_int("abs"),
    "series_sign": _keep_int("sign"),
    "series_floor": _rounding("floor"),
    "series_ceiling": _rounding("ceil"),
    "series_exp": _real1("exp"),
    "series_log": _log,
    "series_sin": _real1("sin"),
    "series_cos": _real1("cos"),
    "series_tan": _real1("tan"),
    "series_asin": _real1("asin", -1, 1),
    "series_acos": _real1("acos", -1, 1),
    "series_atan": _real1("atan"),
}


def _unary(name: str, body: Callable[[Operand], exp.Expression]) -> None:
    @scalar(name, 1, T.DYNAMIC, coerce="dynamic")
    def emit(g, c, pred):
        x = Operand(g, exp.column("x"), T.DYNAMIC)
        return _pack(g, _transform(g, elements(g, c.args[0]), body(x), "x"))


for _name, _ubody in _UNARY.items():
    _unary(_name, _ubody)


def _numbers(g: Any, arr: exp.Expression) -> exp.Expression:
    """The numeric elements of a SQL array of dynamic elements, as doubles (others null)."""
    return _transform(g, arr, Operand(g, exp.column("x"), T.DYNAMIC).dbl(), "x")


def _fold(g: Any, arr: exp.Expression, start: float, op: type[exp.Binary]) -> exp.Expression:
    """*op* over the non-null doubles of *arr*, from *start*."""
    if g.d.name == "spark":
        acc, x = exp.column("acc"), exp.column("x")
        step = case([(exp.Is(this=x, expression=exp.null()), acc)], op(this=acc, expression=x))
        return fn("aggregate", arr, cast_(n(start), "DOUBLE"), _lam(step, "acc", "x"))
    acc, x = exp.column("acc"), exp.column("x")
    vals = fn("list_filter", arr, _lam(exp.Not(this=exp.Is(this=x, expression=exp.null())), "x"))
    return fn("list_reduce", vals, _lam(op(this=acc, expression=x), "acc", "x"), cast_(n(start), "DOUBLE"))


@scalar("series_sum", 1, T.REAL, coerce="dynamic")
def _series_sum(g, c, pred):
    return _fold(g, _numbers(g, elements(g, c.args[0])), 0.0, exp.Add)


@scalar("series_product", 1, T.REAL, coerce="dynamic")
def _series_product(g, c, pred):
    return _fold(g, _numbers(g, elements(g, c.args[0])), 1.0, exp.Mul)


@scalar("series_dot_product", 2, T.REAL)
def _series_dot_product(g, c, pred):
    a, b = c.args
    if a.type != T.DYNAMIC and b.type != T.DYNAMIC:
        raise Refusal("series_dot_product of two scalars")

    def mul(x: Operand, y: Operand) -> exp.Expression:
        return exp.Mul(this=x.dbl(), expression=y.dbl())

    if a.type == T.DYNAMIC and b.type == T.DYNAMIC:
        # The longer array is cut to the shorter: only pairs where both elements exist count.
        ea, eb = elements(g, a), elements(g, b)
        length = fn("least", g.d.array_size(ea), g.d.array_size(eb))
        ea, eb = g.d.array_slice(ea, n(0), length), g.d.array_slice(eb, n(0), length)
        xo, yo = Operand(g, exp.column("x"), T.DYNAMIC), Operand(g, exp.column("y"), T.DYNAMIC)
        if g.d.name == "spark":
            prods = fn("zip_with", ea, eb, _lam(mul(xo, yo), "x", "y"))
        else:
            p = exp.column("p")
            prods = fn(
                "list_transform", fn("list_zip", ea, eb),
                _lam(mul(Operand(g, fn("struct_extract", p, n(1)), T.DYNAMIC),
                         Operand(g, fn("struct_extract", p, n(2)), T.DYNAMIC)), "p"),
            )
    else:
        arr, sc = (a, b) if a.type == T.DYNAMIC else (b, a)
        length = g.d.array_size(elements(g, arr))
        prods = _transform(g, elements(g, arr), mul(Operand(g, exp.column("x"), T.DYNAMIC),
                                                    Operand(g, g.e(sc), sc.type)), "x")
    total = _fold(g, prods, 0.0, exp.Add)
    return case([(exp.or_(exp.Is(this=length, expression=exp.null()), exp.EQ(this=length, expression=n(0))),
                  exp.null())], total)


# -- Python UDFs (kqlmagic_plus/language/udfs/series.py) -----------------------------------------------------


def _json_arg(g: Any, a: ir.Expr) -> exp.Expression:
    """An argument as JSON text, the form the series UDFs read (a scalar becomes its JSON value)."""
    if a.type != T.DYNAMIC:
        return g.d.dyn_to_json_text(g.d.dyn_from_scalar(g.e(a), a.type))
    v = g.e(a)
    if g.d.name != "spark":
        return g.d.dyn_to_json_text(v)
    # Spark keeps a JSON 1.0 as DECIMAL(2,1) and writes it back as 1, which would make a real series look
    # integral to the UDF (series_fill_linear rounds integral series): hand the decimals over as doubles.
    arr = g.d.dyn_array_elements(v)
    x = exp.column("x")
    as_double = case(
        [(exp.Like(this=_spark_schema(x), expression=s("DECIMAL%")),
          cast_(fn("try_variant_get", x, s("$"), s("double")), "VARIANT"))],
        x,
    )
    fixed = fn("to_json", fn("to_variant_object", _transform(g, arr, as_double, "x")))
    return case([(exp.Is(this=arr, expression=exp.null()), g.d.dyn_to_json_text(v))], fixed)


def _typed(g: Any, c: Any, i: int, t: str, default: exp.Expression) -> exp.Expression:
    return cast_(g.e(c.args[i]), "BOOLEAN" if t == T.BOOL else "DOUBLE" if t == T.REAL else "BIGINT") \
        if len(c.args) > i else default


def _udf_dyn(g: Any, name: str, *args: exp.Expression) -> exp.Expression:
    from kqlmagic_plus.language import udfs

    return g.d.dyn_from_json_text(udfs.call(name, *args))


def _null(t: str) -> exp.Expression:
    return cast_(exp.null(), {T.BOOL: "BOOLEAN", T.REAL: "DOUBLE", T.LONG: "BIGINT"}.get(t, "VARCHAR"))


def _string_null(g: Any) -> exp.Expression:
    return cast_(exp.null(), "STRING" if g.d.name == "spark" else "VARCHAR")


@scalar("series_stats_dynamic", (1, 2), T.DYNAMIC, coerce=("dynamic", "bool"))
def _series_stats_dynamic(g, c, pred):
    return _udf_dyn(g, "series_stats", _json_arg(g, c.args[0]), _typed(g, c, 1, T.BOOL, exp.false()))


@scalar("series_stats", (1, 2), T.DYNAMIC, coerce=("dynamic", "bool"))
def _series_stats(g, c, pred):
    return _series_stats_dynamic(g, c, pred)


@scalar("series_cosine_similarity", (2, 4), T.REAL, coerce=("dynamic", "dynamic", "real", "real"))
def _series_cosine_similarity(g, c, pred):
    from kqlmagic_plus.language import udfs

    return udfs.call("series_cosine_similarity", _json_arg(g, c.args[0]), _json_arg(g, c.args[1]),
                     _typed(g, c, 2, T.REAL, _null(T.REAL)), _typed(g, c, 3, T.REAL, _null(T.REAL)))


@scalar("series_pearson_correlation", 2, T.REAL, coerce="dynamic")
def _series_pearson_correlation(g, c, pred):
    from kqlmagic_plus.language import udfs

    return udfs.call("series_pearson_correlation", _json_arg(g, c.args[0]), _json_arg(g, c.args[1]))


@scalar("series_magnitude", 1, T.REAL, coerce="dynamic")
def _series_magnitude(g, c, pred):
    from kqlmagic_plus.language import udfs

    return udfs.call("series_magnitude", _json_arg(g, c.args[0]))


def _placeholder(g: Any, c: Any, i: int) -> exp.Expression:
    return _json_arg(g, c.args[i]) if len(c.args) > i else _string_null(g)


@scalar("series_fill_forward", (1, 2), T.DYNAMIC, coerce=("dynamic", None))
def _series_fill_forward(g, c, pred):
    return _udf_dyn(g, "series_fill_forward", _json_arg(g, c.args[0]), _placeholder(g, c, 1))


@scalar("series_fill_backward", (1, 2), T.DYNAMIC, coerce=("dynamic", None))
def _series_fill_backward(g, c, pred):
    return _udf_dyn(g, "series_fill_backward", _json_arg(g, c.args[0]), _placeholder(g, c, 1))


@scalar("series_fill_const", (2, 3), T.DYNAMIC, coerce=("dynamic", None, None))
def _series_fill_const(g, c, pred):
    return _udf_dyn(g, "series_fill_const", _json_arg(g, c.args[0]), _json_arg(g, c.args[1]),
                    _placeholder(g, c, 2))


@scalar("series_fill_linear", (1, 4), T.DYNAMIC, coerce=("dynamic", None, "bool", None))
def _series_fill_linear(g, c, pred):
    const = _json_arg(g, c.args[3]) if len(c.args) > 3 else s("0")
    return _udf_dyn(g, "series_fill_linear", _json_arg(g, c.args[0]), _placeholder(g, c, 1),
                    _typed(g, c, 2, T.BOOL, exp.true()), const)


@scalar("series_iir", 3, T.DYNAMIC, coerce="dynamic")
def _series_iir(g, c, pred):
    return _udf_dyn(g, "series_iir", *(_json_arg(g, a) for a in c.args))


@scalar("series_fir", (2, 4), T.DYNAMIC, coerce=("dynamic", "dynamic", "bool", "bool"))
def _series_fir(g, c, pred):
    return _udf_dyn(g, "series_fir", _json_arg(g, c.args[0]), _json_arg(g, c.args[1]),
                    _typed(g, c, 2, T.BOOL, _null(T.BOOL)), _typed(g, c, 3, T.BOOL, exp.false()))


_AUTO_PERIOD = ("the period is detected by series_periods_detect(), whose scoring this engine does not reproduce; "
                "pass the period explicitly")


@scalar("series_seasonal", (1, 2), T.DYNAMIC, coerce=("dynamic", "long"))
def _series_seasonal(g, c, pred):
    p = c.args[1] if len(c.args) > 1 else None
    if p is None or not isinstance(p, ir.Lit) or p.value is None or int(p.value) <= 0:
        raise Refusal("series_seasonal without a positive literal period", reason=_AUTO_PERIOD)
    return _udf_dyn(g, "series_seasonal", _json_arg(g, c.args[0]), cast_(g.e(p), "BIGINT"))


@scalar("series_fit_line_dynamic", 1, T.DYNAMIC, coerce="dynamic")
def _series_fit_line_dynamic(g, c, pred):
    return _udf_dyn(g, "series_fit_line", _json_arg(g, c.args[0]))


@scalar("series_fit_line", 1, T.DYNAMIC, coerce="dynamic")
def _series_fit_line(g, c, pred):
    return _udf_dyn(g, "series_fit_line", _json_arg(g, c.args[0]))


@scalar("series_fit_poly", (1, 3), T.DYNAMIC, coerce=("dynamic", "dynamic", "long"))
def _series_fit_poly(g, c, pred):
    xs = c.args[1] if len(c.args) > 1 else None
    x = _string_null(g) if xs is None or (isinstance(xs, ir.Lit) and xs.value is None) else _json_arg(g, xs)
    return _udf_dyn(g, "series_fit_poly", _json_arg(g, c.args[0]), x, _typed(g, c, 2, T.LONG, n(1)))


# What the KQL reference leaves undefined for each function, so that its answer cannot be reproduced (never
# guessed): the decompositions detect their period (Seasonality -1, the default) with series_periods_detect.
_PERIODS = "series_periods_detect()'s period scores, which the KQL reference does not define"
_OUTLIER_SCORE = "series_outliers()'s score, whose formula and percentiles the KQL reference does not give"
_TWO_LINES = "how the two lines' r-square combine and how short a segment may be, which the KQL reference does not say"
_UNDEFINED = {
    "series_periods_detect": _PERIODS,
    "series_periods_validate": _PERIODS,
    "series_decompose": f"the default period (Seasonality -1) comes from {_PERIODS} (an explicit period is not "
                        "translated yet)",
    "series_decompose_forecast": f"the default period (Seasonality -1) comes from {_PERIODS} (an explicit period is "
                                 "not translated yet)",
    "series_decompose_anomalies": f"the default period (Seasonality -1) comes from {_PERIODS}; ad_score is "
                                  f"{_OUTLIER_SCORE}",
    "series_outliers": _OUTLIER_SCORE,
    "series_fit_2lines": f"the best split depends on {_TWO_LINES}",
    "series_fit_2lines_dynamic": f"the best split depends on {_TWO_LINES}",
}
for _name, _why in _UNDEFINED.items():
    TABLE.refused_everywhere(_name, f"{_why}; run the query on Azure Data Explorer")


def _fourier(name: str) -> None:
    @scalar(name, (1, 2), T.DYNAMIC, coerce="dynamic")
    def emit(g, c, pred):
        imag = _json_arg(g, c.args[1]) if len(c.args) > 1 else _string_null(g)
        return _udf_dyn(g, name, _json_arg(g, c.args[0]), imag)


_fourier("series_fft")
_fourier("series_ifft")


# -- functions returning several columns ----------------------------------------------------------------------

#: function -> its output columns (name suffix and KQL type), in order; each is a field of the function's object.
MULTI: dict[str, tuple[tuple[str, str], ...]] = {
    "series_stats": (("min", T.REAL), ("min_idx", T.LONG), ("max", T.REAL), ("max_idx", T.LONG), ("avg", T.REAL),
                     ("stdev", T.REAL), ("variance", T.REAL)),
    "series_fit_line": (("rsquare", T.REAL), ("slope", T.REAL), ("variance", T.REAL), ("rvariance", T.REAL),
                        ("interception", T.REAL), ("line_fit", T.DYNAMIC)),
    "series_fit_poly": (("rsquare", T.REAL), ("coefficients", T.DYNAMIC), ("variance", T.REAL),
                        ("rvariance", T.REAL), ("poly_fit", T.DYNAMIC)),
    "series_fft": (("real", T.DYNAMIC), ("imag", T.DYNAMIC)),
    "series_ifft": (("real", T.DYNAMIC), ("imag", T.DYNAMIC)),
}
#: Several-column functions whose default column names the reference does not give: they must be named.
_NAMES_REQUIRED = ("series_fft", "series_ifft")

FIELD = "__kqlc_series_field"


@scalar(FIELD, 2, T.DYNAMIC)
def _series_field(g, c, pred):
    obj, key = c.args
    return g.d.dyn_as(g.d.dyn_path(g.e(obj), "$." + str(key.value)), c.type)


def expand_multi(lw: Any, ne: Any, e: ir.Expr, namer: Any) -> list[tuple[str, ir.Expr]] | None:
    """The columns of a call to a several-column function (``(a, b) = series_fit_line(y)`` or unnamed), else None."""
    if not isinstance(e, ir.Call) or e.fn not in MULTI:
        return None
    from kqlmagic_plus.language.compiler.lower.scope import shape
    from kqlmagic_plus.language.compiler.naming import syntax_name
    from kqlmagic_plus.language.compiler.parsetree import rule

    outs = MULTI[e.fn]
    names = lw.name_list(ne)
    if names is None:
        if e.fn in _NAMES_REQUIRED:
            raise Refusal(f"{e.fn}() without names for its columns (write (re, im) = {e.fn}(...))")
        if lw.explicit_name(ne):
            raise Refusal(f"one name for the {len(outs)} columns of {e.fn}() (name them: (a, b, ...) = {e.fn}(...))")
        sh = shape(ne.Expression if rule(ne) == "NamedExpression" else ne)
        first = sh[2][0] if isinstance(sh, tuple) and sh[0] == "call" and sh[2] else None
        base = f"{e.fn}_{syntax_name(first) or ''}"
        names = [namer.take(f"{base}_{suffix}") for suffix, _ in outs]
    elif len(names) > len(outs):
        raise Refusal(f"{len(names)} names for the {len(outs)} columns of {e.fn}()")
    else:
        names = [namer.take(x) for x in names]
    return [(nm, ir.Call(t, FIELD, (e, ir.Lit(T.STRING, suffix)))) for nm, (suffix, t) in zip(names, outs,
                                                                                            strict=False)]


def real_range(g: Any, c: Any) -> exp.Expression:
    """``range(start, stop, step)`` with a real bound or step: start + i*step for every i that stays within stop."""
    start, stop = cast_(g.e(c.args[0]), "DOUBLE"), cast_(g.e(c.args[1]), "DOUBLE")
    step = cast_(g.e(c.args[2]), "DOUBLE") if len(c.args) == 3 else cast_(n(1), "DOUBLE")
    zero = cast_(n(0), "DOUBLE")
    steps = fn("floor", exp.Div(this=exp.Sub(this=stop, expression=start),
                                expression=fn("NULLIF", step, zero)))
    count = fn("greatest", exp.Add(this=cast_(steps, "BIGINT"), expression=n(1)), n(0))
    if g.d.name == "spark":
        seq = fn("slice", fn("sequence", n(0), fn("greatest", count, n(1))), n(1), count)
    else:
        seq = fn("range", n(0), count)
    i = exp.column("i")
    arr = _transform(g, seq, exp.Add(this=start, expression=exp.Mul(this=cast_(i, "DOUBLE"), expression=step)), "i")
    return g.d.dyn_array_from_sql_array(arr)
