"""KQL scalar functions and operators, written once over the dialect primitives.

Each entry is registered in :mod:`.catalog` with its type rule; ``emit(g, call, pred)`` returns a
sqlglot expression. ``g`` is the emitter (``g.d`` the dialect, ``g.e(expr)`` emits an argument) and
``pred`` says the result is only ever used as a filter condition, where SQL's NULL and FALSE mean
the same thing and a ``COALESCE(..., FALSE)`` can be left out (it would stop Spark pushing the
filter into a Parquet scan).

String nulls: KQL strings are never null, an empty string is the missing value. A SQL NULL in a
string column therefore behaves as ``""`` wherever the difference shows.
"""

from __future__ import annotations

import string as _string
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.catalog import scalar
from kqlmagic_plus.language.compiler.dialects import cast_, dtype, fn, n, paren, s, try_cast_
from kqlmagic_plus.language.compiler.syntax import Refusal

# -- helpers ---------------------------------------------------------------------------------------

_PUNCT = set(_string.punctuation)
_TERM_CLASS = r"[^\p{L}\p{N}]"


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


def case(whens: list[tuple[exp.Expression, exp.Expression]], default: exp.Expression | None = None) -> exp.Expression:
    return exp.Case(ifs=[exp.If(this=c, true=v) for c, v in whens], default=default)


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


# -- conversions -----------------------------------------------------------------------------------


def timespan_text(d: Any, us: exp.Expression) -> exp.Expression:
    """KQL's text of a timespan, ``[-][d.]hh:mm:ss[.fffffff]``, from microseconds."""
    a = fn("abs", us)
    days = exp.IntDiv(this=a, expression=n(86_400_000_000))
    rem = exp.Mod(this=a, expression=n(86_400_000_000))
    hh = exp.IntDiv(this=rem, expression=n(3_600_000_000))
    mm = exp.IntDiv(this=exp.Mod(this=rem, expression=n(3_600_000_000)), expression=n(60_000_000))
    ss = exp.IntDiv(this=exp.Mod(this=rem, expression=n(60_000_000)), expression=n(1_000_000))
    frac = exp.Mod(this=rem, expression=n(1_000_000))

    def pad(x: exp.Expression, width: int) -> exp.Expression:
        return fn("lpad", cast_(x, d.string_type), n(width), s("0"))

    parts = [
        case([(exp.LT(this=us, expression=n(0)), s("-"))], s("")),
        case(
            [(exp.GT(this=days, expression=n(0)), exp.Concat(expressions=[cast_(days, d.string_type), s(".")]))],
            s(""),
        ),
        pad(hh, 2),
        s(":"),
        pad(mm, 2),
        s(":"),
        pad(ss, 2),
        case(
            [
                (
                    exp.GT(this=frac, expression=n(0)),
                    exp.Concat(expressions=[s("."), pad(exp.Mul(this=frac, expression=n(10)), 7)]),
                )
            ],
            s(""),
        ),
    ]
    return case([(exp.Is(this=us, expression=exp.null()), exp.null())], exp.Concat(expressions=parts))


def datetime_text(g: Any, ts: exp.Expression) -> exp.Expression:
    """KQL's ``tostring(datetime)``: ISO 8601, always seven fraction digits, ``Z`` (measured on Kusto)."""
    if g.d.name == "spark":
        return fn("date_format", ts, s("yyyy-MM-dd'T'HH:mm:ss.SSSSSS'0Z'"))
    return fn("strftime", ts, s("%Y-%m-%dT%H:%M:%S.%f0Z"))


def real_text(g: Any, x: exp.Expression) -> exp.Expression:
    """KQL prints whole reals without a fraction (``1``, not ``1.0``)."""
    whole = exp.and_(exp.EQ(this=x, expression=fn("floor", x)), exp.LT(this=fn("abs", x), expression=n(1e15)))
    return case([(whole, cast_(big(x), g.d.string_type))], cast_(x, g.d.string_type))


def to_string(g: Any, arg: ir.Expr) -> exp.Expression:
    x = g.e(arg)
    t = arg.type
    if t in (T.STRING, T.GUID):
        return x
    if t == T.NULL:
        return exp.null()
    if t == T.DYNAMIC:
        return g.d.dyn_as_string(x)
    if t == T.REAL:
        return real_text(g, x)
    if t == T.DATETIME:
        return datetime_text(g, x)
    if t == T.TIMESPAN:
        return timespan_text(g.d, x)
    if t == T.BOOL:
        # .NET's spelling, as Kusto prints it.
        return case([(x, s("True")), (exp.Not(this=x), s("False"))])
    return cast_(x, g.d.string_type)


@scalar("tostring", 1, T.STRING)
def _tostring(g, c, pred):
    return to_string(g, c.args[0])


def to_number(g: Any, arg: ir.Expr, target: str) -> exp.Expression:
    x = g.e(arg)
    t = arg.type
    if t == target or (t == T.INT and target == T.LONG):
        return x if t == target else big(x)
    if t == T.NULL:
        return g.d.typed_null(target)
    if t == T.DYNAMIC:
        return g.d.dyn_as(x, target)
    if t in (T.STRING, T.GUID):
        x = fn("trim", x)
        if target in T.INTEGRAL:
            # toint("1.5") is 1 in KQL: parse as a number first, then truncate.
            return try_cast_(this=g.d.trunc(try_cast_(this=x, to=g.d.sql_type(T.REAL))), to=g.d.sql_type(target))
        return try_cast_(this=x, to=g.d.sql_type(target))
    if t == T.BOOL:
        return g.d.cast(case([(x, n(1)), (exp.Not(this=x), n(0))]), target)
    if t == T.DATETIME:
        # tolong(datetime) is ticks (100 ns) since 0001-01-01.
        ticks = exp.Add(this=exp.Mul(this=g.d.ts_to_us(x), expression=n(10)), expression=n(621355968000000000))
        return g.d.cast(ticks, target)
    if t == T.TIMESPAN:
        return g.d.cast(exp.Mul(this=x, expression=n(10)), target)
    if target in T.INTEGRAL and t in (T.REAL, T.DECIMAL):
        return try_cast_(this=g.d.trunc(x), to=g.d.sql_type(target))
    return try_cast_(this=x, to=g.d.sql_type(target))


@scalar("toint", 1, T.INT)
def _toint(g, c, pred):
    return to_number(g, c.args[0], T.INT)


@scalar("tolong", 1, T.LONG)
def _tolong(g, c, pred):
    return to_number(g, c.args[0], T.LONG)


@scalar("toreal", 1, T.REAL, aliases=("todouble",))
def _toreal(g, c, pred):
    return to_number(g, c.args[0], T.REAL)


@scalar("todecimal", 1, T.DECIMAL)
def _todecimal(g, c, pred):
    return to_number(g, c.args[0], T.DECIMAL)


@scalar("tobool", 1, T.BOOL, aliases=("toboolean",))
def _tobool(g, c, pred):
    a = c.args[0]
    x = g.e(a)
    if a.type == T.BOOL:
        return x
    if a.type == T.DYNAMIC:
        return g.d.dyn_as(x, T.BOOL)
    if a.type in (T.STRING,):
        low = lower_str(fn("trim", x))
        return case(
            [
                (exp.In(this=low, expressions=[s("true"), s("1")]), exp.true()),
                (exp.In(this=low, expressions=[s("false"), s("0")]), exp.false()),
            ]
        )
    if a.type in T.NUMERIC:
        return exp.NEQ(this=x, expression=n(0))
    raise Refusal(f"tobool({a.type})")


def to_datetime(g: Any, a: ir.Expr) -> exp.Expression:
    x = g.e(a)
    if a.type == T.DATETIME:
        return x
    if a.type == T.DYNAMIC:
        return g.d.dyn_as(x, T.DATETIME)
    if a.type == T.STRING:
        return g.d.parse_ts(x)
    if a.type in T.INTEGRAL:
        # todatetime(long) reads ticks.
        return g.d.us_to_ts(exp.IntDiv(this=exp.Sub(this=x, expression=n(621355968000000000)), expression=n(10)))
    if a.type == T.NULL:
        return g.d.typed_null(T.DATETIME)
    raise Refusal(f"todatetime({a.type})")


@scalar("todatetime", 1, T.DATETIME)
def _todatetime(g, c, pred):
    return to_datetime(g, c.args[0])


@scalar("totimespan", 1, T.TIMESPAN, aliases=("time",))
def _totimespan(g, c, pred):
    a = c.args[0]
    x = g.e(a)
    if a.type == T.TIMESPAN:
        return x
    if a.type in T.INTEGRAL:
        return exp.IntDiv(this=x, expression=n(10))  # ticks
    if a.type in (T.STRING, T.DYNAMIC):
        text = to_string(g, a)
        pat = s(r"^\s*(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*$")

        def part(i: int) -> exp.Expression:
            return try_cast_(this=fn("NULLIF", g.d.regex_extract(text, pat, i), s("")), to=g.d.sql_type(T.LONG))

        frac = try_cast_(
            this=fn("rpad", fn("NULLIF", g.d.regex_extract(text, pat, 6), s("")), n(7), s("0")), to=g.d.sql_type(T.LONG)
        )
        total = exp.Add(
            this=exp.Mul(
                this=exp.Add(
                    this=exp.Add(
                        this=exp.Add(
                            this=exp.Mul(this=exp.Coalesce(this=part(2), expressions=[n(0)]), expression=n(86400)),
                            expression=exp.Mul(this=part(3), expression=n(3600)),
                        ),
                        expression=exp.Mul(this=part(4), expression=n(60)),
                    ),
                    expression=exp.Coalesce(this=part(5), expressions=[n(0)]),
                ),
                expression=n(1_000_000),
            ),
            expression=exp.IntDiv(this=exp.Coalesce(this=frac, expressions=[n(0)]), expression=n(10)),
        )
        signed = case(
            [(exp.EQ(this=g.d.regex_extract(text, pat, 1), expression=s("-")), exp.Neg(this=paren(total)))], total
        )
        return case([(g.d.regex_match(text, pat), signed)])
    raise Refusal(f"totimespan({a.type})")


@scalar("toguid", 1, T.GUID)
def _toguid(g, c, pred):
    x = to_string(g, c.args[0])
    pat = s(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
    return case([(g.d.regex_match(x, pat), lower_str(x))])


def parse_json_expr(g: Any, a: ir.Expr) -> exp.Expression:
    x = g.e(a)
    if a.type == T.DYNAMIC:
        return x
    if a.type == T.STRING:
        # Text that is not JSON becomes a dynamic string holding the text (KQL's parse_json).
        return exp.Coalesce(this=g.d.dyn_from_json_text(x), expressions=[g.d.dyn_from_scalar(x, T.STRING)])
    return g.d.dyn_from_scalar(x, a.type)


@scalar("parse_json", 1, T.DYNAMIC, aliases=("todynamic", "parsejson", "toobject"))
def _parse_json(g, c, pred):
    return parse_json_expr(g, c.args[0])


@scalar("__to_dynamic", 1, T.DYNAMIC, category="internal")
def _to_dynamic(g, c, pred):
    return g.d.dyn_from_scalar(g.e(c.args[0]), c.args[0].type)


@scalar("__dyn_as", 1, lambda a: a[0].type, category="internal")
def _dyn_as(g, c, pred):
    raise AssertionError("typed by lowering")


# -- operators -------------------------------------------------------------------------------------


def _op(name: str, args: int, ret: Any, **kw: Any):
    return scalar(name, args, ret, category="operator", **kw)


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
        if ta == T.DATETIME:
            base, span = us_of(g, a), y
        else:
            base, span = us_of(g, b), x
        total = exp.Add(this=base, expression=span) if op == "+" else exp.Sub(this=base, expression=span)
        return g.d.us_to_ts(total)
    if ta == T.DATETIME and tb == T.DATETIME:
        return exp.Sub(this=us_of(g, a), expression=us_of(g, b))
    if c.type == T.TIMESPAN:
        if op == "*":
            if T.REAL in (ta, tb):
                return big(fn("round", exp.Mul(this=x, expression=y)))
            return exp.Mul(this=x, expression=y)
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
            return g.d.real_div(cast_(x, "DOUBLE") if ta != T.REAL else x, y)
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


def _is_string(e: ir.Expr) -> bool:
    return e.type in (T.STRING, T.GUID)


_CMP = {"==": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}


def _cmp(op: str):
    def emit(g, c, pred):
        a, b = c.args
        if _is_string(a) and _is_string(b) and op in ("==", "!="):
            return string_equals(g, a, b, negated=(op == "!="), ci=False, pred=pred)
        x, y = _cmp_operands(g, a, b)
        if _is_string(a) and _is_string(b):
            x, y = empty_if_null(x), empty_if_null(y)
        return _CMP[op](this=x, expression=y)

    return emit


for _name in _CMP:
    _op(_name, 2, T.BOOL)(_cmp(_name))


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


# -- string predicates -----------------------------------------------------------------------------


def _alnum(ch: str) -> bool:
    return ch.isalnum()


def term_regex(needles: list[str], mode: str, ci: bool, g: Any) -> str:
    """A regex true when one of *needles* occurs as a term (``has``), a term prefix
    (``hasprefix``) or a term suffix (``hassuffix``)."""
    groups: dict[tuple[bool, bool], list[str]] = {}
    for nd in needles:
        left = mode in ("has", "hasprefix") and bool(nd) and _alnum(nd[0])
        right = mode in ("has", "hassuffix") and bool(nd) and _alnum(nd[-1])
        groups.setdefault((left, right), []).append(re_quote(nd))
    alts = []
    for (left, right), items in groups.items():
        body = items[0] if len(items) == 1 else "(?:" + "|".join(items) + ")"
        alts.append(
            ("(?:^|" + _TERM_CLASS + ")" if left else "") + body + ("(?:$|" + _TERM_CLASS + ")" if right else "")
        )
    pattern = alts[0] if len(alts) == 1 else "|".join(f"(?:{a})" for a in alts)
    return (ci_flag(g) if ci else "") + pattern


def _string_pred(kind: str, *, negated: bool = False, cs: bool = False):
    def emit(g, c, pred):
        a, b = c.args
        hay = g.e(a)
        if negated:
            hay = empty_if_null(hay)
        needle = lit_str(b)
        if kind in ("has", "hasprefix", "hassuffix"):
            if needle is not None:
                r = exp.true() if needle == "" else g.d.regex_match(hay, s(term_regex([needle], kind, not cs, g)))
            else:
                r = _dynamic_term_match(g, hay, g.e(b), kind, cs)
        elif kind == "contains":
            y = s(needle if cs else needle.lower()) if needle is not None else g.e(b)
            r = g.d.contains(hay if cs else lower_str(hay), y if cs or needle is not None else lower_str(y))
        elif kind in ("startswith", "endswith"):
            y = s(needle if cs else needle.lower()) if needle is not None else g.e(b)
            if not cs and needle is None:
                y = lower_str(y)
            h = hay if cs else lower_str(hay)
            r = g.d.starts_with(h, y) if kind == "startswith" else g.d.ends_with(h, y)
        elif kind == "matches":
            r = g.d.regex_match(hay, g.e(b))
        else:
            raise AssertionError(kind)
        if negated:
            return exp.Not(this=paren(exp.Coalesce(this=r, expressions=[exp.false()])))
        return false_if_null(r, pred)

    return emit


def _dynamic_term_match(g: Any, hay: exp.Expression, needle: exp.Expression, kind: str, cs: bool) -> exp.Expression:
    q = re_quote_sql(g, needle)
    first = fn("substring", needle, n(1), n(1))
    last = fn("substring", needle, fn("length", needle), n(1))
    alnum = s(r"^[\p{L}\p{N}]$")
    left = (
        case([(g.d.regex_match(first, alnum), s("(?:^|" + _TERM_CLASS + ")"))], s(""))
        if kind in ("has", "hasprefix")
        else s("")
    )
    right = (
        case([(g.d.regex_match(last, alnum), s("(?:$|" + _TERM_CLASS + ")"))], s(""))
        if kind in ("has", "hassuffix")
        else s("")
    )
    pattern = exp.Concat(expressions=[s("" if cs else ci_flag(g)), left, q, right])
    return g.d.regex_match(hay, pattern)


for _kind in ("has", "hasprefix", "hassuffix", "contains", "startswith", "endswith"):
    _op(_kind, 2, T.BOOL, coerce="string")(_string_pred(_kind))
    _op("!" + _kind, 2, T.BOOL, coerce="string")(_string_pred(_kind, negated=True))
    _op(_kind + "_cs", 2, T.BOOL, coerce="string")(_string_pred(_kind, cs=True))
    _op("!" + _kind + "_cs", 2, T.BOOL, coerce="string")(_string_pred(_kind, negated=True, cs=True))
_op("matches regex", 2, T.BOOL, coerce="string")(_string_pred("matches", cs=True))


@_op("has_any", (1, 10_000), T.BOOL, coerce="string")
def _has_any(g, c, pred):
    return _has_list(g, c, pred, any_=True)


@_op("has_all", (1, 10_000), T.BOOL, coerce="string")
def _has_all(g, c, pred):
    return _has_list(g, c, pred, any_=False)


def _has_list(g: Any, c: ir.Call, pred: bool, any_: bool) -> exp.Expression:
    hay = g.e(c.args[0])
    needles = c.args[1:]
    if not needles:
        return exp.false() if any_ else exp.true()
    texts = [lit_str(x) for x in needles]
    if all(t is not None for t in texts) and any_:
        r = g.d.regex_match(hay, s(term_regex([t for t in texts if t is not None], "has", True, g)))
        return false_if_null(r, pred)
    parts = []
    for x in needles:
        t = lit_str(x)
        if t is not None:
            parts.append(g.d.regex_match(hay, s(term_regex([t], "has", True, g))))
        else:
            parts.append(_dynamic_term_match(g, hay, g.e(x), "has", False))
    r = exp.or_(*parts) if any_ else exp.and_(*parts)
    return false_if_null(r, pred)


def _in(ci: bool, negated: bool):
    def emit(g, c, pred):
        x_ir, items = c.args[0], c.args[1:]
        x = g.e(x_ir)
        strings = _is_string(x_ir)
        if strings and (negated or ci):
            x = empty_if_null(x)
        if ci:
            x = lower_str(x)
        vals = []
        for it in items:
            if ci and lit_str(it) is not None:
                vals.append(s(it.value.lower()))
            elif ci:
                vals.append(lower_str(g.e(it)))
            else:
                vals.append(g.e(it))
        if strings and any(lit_str(i) == "" for i in items) and not (negated or ci):
            x = empty_if_null(x)
        if not vals:
            return exp.true() if negated else exp.false()
        r = exp.In(this=x, expressions=vals)
        if negated:
            return (
                exp.Not(this=paren(exp.Coalesce(this=r, expressions=[exp.false()])))
                if strings
                else exp.Not(this=paren(r))
            )
        return false_if_null(r, pred)

    return emit


_op("in", (1, 100_000), T.BOOL)(_in(False, False))
_op("!in", (1, 100_000), T.BOOL)(_in(False, True))
_op("in~", (1, 100_000), T.BOOL, coerce="string")(_in(True, False))
_op("!in~", (1, 100_000), T.BOOL, coerce="string")(_in(True, True))


@_op("between", 3, T.BOOL)
def _between(g, c, pred):
    x, lo, hi = c.args
    return exp.Between(this=g.e(x), low=g.e(lo), high=g.e(hi))


@_op("!between", 3, T.BOOL)
def _not_between(g, c, pred):
    x, lo, hi = c.args
    return exp.Not(this=paren(exp.Between(this=g.e(x), low=g.e(lo), high=g.e(hi))))


# -- string functions ------------------------------------------------------------------------------


@scalar("strlen", 1, T.LONG, coerce="string")
def _strlen(g, c, pred):
    return big(fn("length", empty_if_null(g.e(c.args[0]))))


@scalar("tolower", 1, T.STRING, coerce="string")
def _tolower(g, c, pred):
    return lower_str(g.e(c.args[0]))


@scalar("toupper", 1, T.STRING, coerce="string")
def _toupper(g, c, pred):
    return exp.Upper(this=g.e(c.args[0]))


@scalar("strcat", (1, 64), T.STRING, coerce="string")
def _strcat(g, c, pred):
    return exp.Concat(expressions=[empty_if_null(g.e(a)) for a in c.args])


@scalar("strcat_delim", (3, 65), T.STRING, coerce="string")
def _strcat_delim(g, c, pred):
    sep = g.e(c.args[0])
    parts: list[exp.Expression] = []
    for i, a in enumerate(c.args[1:]):
        if i:
            parts.append(sep)
        parts.append(empty_if_null(g.e(a)))
    return exp.Concat(expressions=parts)


@scalar("substring", (2, 3), T.STRING, coerce=("string", "long", "long"))
def _substring(g, c, pred):
    x = empty_if_null(g.e(c.args[0]))
    start = g.e(c.args[1])
    # A negative start counts from the end (clamped to the first character); SQL is 1-based.
    from_end = fn("greatest", exp.Add(this=fn("length", x), expression=start), n(0))
    start0 = case([(exp.LT(this=start, expression=n(0)), from_end)], start)
    start1 = exp.Add(this=start0, expression=n(1))
    if len(c.args) == 3:
        length = fn("greatest", g.e(c.args[2]), n(0))
        return fn("substring", x, start1, length)
    return fn("substring", x, start1)


@scalar("indexof", (2, 5), T.LONG, coerce=("string", "string", "long", "long", "long"))
def _indexof(g, c, pred):
    if len(c.args) > 2:
        raise Refusal("indexof with start/length/occurrence")
    return exp.Sub(this=big(g.d.str_index(empty_if_null(g.e(c.args[0])), g.e(c.args[1]))), expression=n(1))


@scalar("replace_string", 3, T.STRING, coerce="string")
def _replace_string(g, c, pred):
    return fn("replace", empty_if_null(g.e(c.args[0])), g.e(c.args[1]), g.e(c.args[2]))


def _kql_repl_to_sql(g: Any, repl: str) -> str:
    # KQL's replacement uses \1; Java uses $1, RE2 (DuckDB) uses \1.
    if g.d.name == "spark":
        out, i = [], 0
        while i < len(repl):
            ch = repl[i]
            if ch == "\\" and i + 1 < len(repl) and repl[i + 1].isdigit():
                out.append("$" + repl[i + 1])
                i += 2
                continue
            if ch == "$":
                out.append("\\$")
            else:
                out.append(ch)
            i += 1
        return "".join(out)
    return repl


@scalar("replace_regex", 3, T.STRING, coerce="string", aliases=("replace",))
def _replace_regex(g, c, pred):
    repl = lit_str(c.args[2])
    if repl is None:
        raise Refusal("replace_regex with a computed replacement")
    return g.d.regex_replace(empty_if_null(g.e(c.args[0])), g.e(c.args[1]), s(_kql_repl_to_sql(g, repl)))


def _trim(which: str):
    def emit(g, c, pred):
        pat = lit_str(c.args[0])
        x = empty_if_null(g.e(c.args[1]))
        if pat is None:
            raise Refusal(f"{which} with a computed pattern")
        # One leading / trailing match, as KQL removes it (trim_end(".com", "bing.com") is "bing").
        parts = []
        if which in ("trim", "trim_start"):
            parts.append(f"^(?:{pat})")
        if which in ("trim", "trim_end"):
            parts.append(f"(?:{pat})$")
        return g.d.regex_replace(x, s("|".join(parts)), s(""))

    return emit


for _t in ("trim", "trim_start", "trim_end"):
    scalar(_t, 2, T.STRING, coerce="string")(_trim(_t))


@scalar("reverse", 1, T.STRING, coerce="string")
def _reverse(g, c, pred):
    return g.d.reverse(empty_if_null(g.e(c.args[0])))


@scalar("strrep", (2, 3), T.STRING, coerce=("string", "long", "string"))
def _strrep(g, c, pred):
    x, k = g.e(c.args[0]), g.e(c.args[1])
    if len(c.args) == 2:
        return g.d.repeat(x, k)
    sep = g.e(c.args[2])
    body = g.d.repeat(exp.Concat(expressions=[x, sep]), exp.Sub(this=k, expression=n(1)))
    return case([(exp.LTE(this=k, expression=n(0)), s(""))], exp.Concat(expressions=[body, x]))


@scalar("countof", (2, 3), T.LONG, coerce="string")
def _countof(g, c, pred):
    text, sub = empty_if_null(g.e(c.args[0])), c.args[1]
    kind = lit_str(c.args[2]) if len(c.args) == 3 else "normal"
    if kind == "regex":
        return big(g.d.array_size(g.d.regex_extract_all(text, g.e(sub), 0)))
    # Plain text is counted with overlaps: countof("aaa", "aa") is 2.
    needle = g.e(sub)
    i = exp.column("i")
    hit = exp.EQ(this=fn("substring", text, i, fn("length", needle)), expression=needle)
    positions = g.d.sequence1(fn("length", text))
    lam = exp.Lambda(this=hit, expressions=[exp.to_identifier("i")])
    found = fn("filter", positions, lam) if g.d.name == "spark" else fn("list_filter", positions, lam)
    return case([(exp.EQ(this=fn("length", needle), expression=n(0)), n(0))], big(g.d.array_size(found)))


@scalar(
    "extract",
    (3, 4),
    lambda a: a[3].type if len(a) == 4 and a[3].type != T.NULL else T.STRING,
    coerce=("string", "long", "string", None),
)
def _extract(g, c, pred):
    group = c.args[1]
    if not (isinstance(group, ir.Lit) and isinstance(group.value, int)):
        raise Refusal("extract with a computed capture group")
    text = g.e(c.args[2])
    pattern = g.e(c.args[0])
    got = case([(g.d.regex_match(text, pattern), g.d.regex_extract(text, pattern, group.value))])
    if c.type == T.STRING:
        return got
    return _convert_text(g, got, c.type)


def _convert_text(g: Any, text: exp.Expression, t: str) -> exp.Expression:
    if t == T.STRING:
        return text
    if t == T.DATETIME:
        return g.d.parse_ts(text)
    if t == T.DYNAMIC:
        return exp.Coalesce(this=g.d.dyn_from_json_text(text), expressions=[g.d.dyn_from_scalar(text, T.STRING)])
    if t in T.INTEGRAL:
        return try_cast_(this=g.d.trunc(try_cast_(this=text, to=g.d.sql_type(T.REAL))), to=g.d.sql_type(t))
    if t == T.BOOL:
        low = lower_str(text)
        return case(
            [
                (exp.In(this=low, expressions=[s("true"), s("1")]), exp.true()),
                (exp.In(this=low, expressions=[s("false"), s("0")]), exp.false()),
            ]
        )
    return try_cast_(this=text, to=g.d.sql_type(t))


@scalar("extract_all", (2, 3), T.DYNAMIC, coerce="string", aliases=("extractall",))
def _extract_all(g, c, pred):
    if len(c.args) == 3:
        raise Refusal("extract_all with capture-group selection")
    pattern = lit_str(c.args[0])
    if pattern is None:
        raise Refusal("extract_all with a computed pattern")
    import re as _re

    groups = _re.compile(pattern).groups if _safe_compile(pattern) else 0
    if groups > 1:
        raise Refusal("extract_all with several capture groups")
    arr = g.d.regex_extract_all(empty_if_null(g.e(c.args[1])), s(pattern), 1 if groups == 1 else 0)
    return case([(exp.GT(this=g.d.array_size(arr), expression=n(0)), g.d.dyn_array_from_sql_array(arr))])


def _safe_compile(p: str) -> bool:
    import re as _re

    try:
        _re.compile(p)
        return True
    except _re.error:
        return False


@scalar("split", (2, 3), T.DYNAMIC, coerce=("string", "string", "long"))
def _split(g, c, pred):
    arr = g.d.split(empty_if_null(g.e(c.args[0])), g.e(c.args[1]))
    if len(c.args) == 3:
        idx = g.e(c.args[2])
        item = g.d.array_element(arr, exp.Add(this=idx, expression=n(1)))
        return case(
            [
                (
                    exp.Not(this=exp.Is(this=item, expression=exp.null())),
                    g.d.dyn_array([g.d.dyn_from_scalar(item, T.STRING)]),
                )
            ]
        )
    return g.d.dyn_array_from_sql_array(arr)


@scalar("isempty", 1, T.BOOL)
def _isempty(g, c, pred):
    a = c.args[0]
    x = g.e(a)
    if a.type in (T.STRING, T.GUID):
        return exp.EQ(this=empty_if_null(x), expression=s(""))
    if a.type == T.DYNAMIC:
        k = g.d.dyn_kind(x)
        return exp.or_(
            exp.EQ(this=k, expression=s("null")),
            exp.and_(exp.EQ(this=k, expression=s("string")), exp.EQ(this=g.d.dyn_as_string(x), expression=s(""))),
        )
    return exp.Is(this=x, expression=exp.null())


@scalar("isnotempty", 1, T.BOOL, aliases=("notempty",))
def _isnotempty(g, c, pred):
    return exp.Not(this=paren(_isempty(g, c, pred)))


@scalar("isnull", 1, T.BOOL)
def _isnull(g, c, pred):
    a = c.args[0]
    if a.type in (T.STRING,):
        return exp.false()  # a KQL string is never null
    x = g.e(a)
    if a.type == T.DYNAMIC:
        return g.d.dyn_is(x, "null")
    return exp.Is(this=x, expression=exp.null())


@scalar("isnotnull", 1, T.BOOL, aliases=("notnull",))
def _isnotnull(g, c, pred):
    return exp.Not(this=paren(_isnull(g, c, pred)))


@scalar("strcmp", 2, T.INT, coerce="string")
def _strcmp(g, c, pred):
    x, y = empty_if_null(g.e(c.args[0])), empty_if_null(g.e(c.args[1]))
    return cast_(case([(exp.LT(this=x, expression=y), n(-1)), (exp.GT(this=x, expression=y), n(1))], n(0)), "INT")


@scalar("base64_encode_tostring", 1, T.STRING, coerce="string", aliases=("base64_encodestring",))
def _b64e(g, c, pred):
    return g.d.base64_encode(g.e(c.args[0]))


@scalar("base64_decode_tostring", 1, T.STRING, coerce="string", aliases=("base64_decodestring",))
def _b64d(g, c, pred):
    return g.d.base64_decode(g.e(c.args[0]))


@scalar("url_decode", 1, T.STRING, coerce="string")
def _url_decode(g, c, pred):
    return g.d.url_decode(g.e(c.args[0]))


refused_url_encode = "KQL's url_encode writes lower-case hex escapes that neither engine reproduces"


@scalar("hash_md5", 1, T.STRING, coerce="string")
def _md5(g, c, pred):
    return g.d.hash_md5(g.e(c.args[0]))


@scalar("hash_sha256", 1, T.STRING, coerce="string")
def _sha256(g, c, pred):
    return g.d.hash_sha256(g.e(c.args[0]))


@scalar("new_guid", 0, T.GUID)
def _new_guid(g, c, pred):
    return g.d.new_guid()


# -- logic -----------------------------------------------------------------------------------------


@scalar("iff", 3, lambda a: T.unify(a[1].type, a[2].type) or a[1].type, aliases=("iif",), coerce=("bool", None, None))
def _iff(g, c, pred):
    cond, a, b = c.args
    return case([(g.e(cond, pred=True), g.e(a))], g.e(b))


@scalar("case", (3, 999), lambda a: same_type([*a[1::2], a[-1]]))
def _case(g, c, pred):
    args = list(c.args)
    whens = [(g.e(args[i], pred=True), g.e(args[i + 1])) for i in range(0, len(args) - 1, 2)]
    return case(whens, g.e(args[-1]))


@scalar("coalesce", (1, 64), same_type)
def _coalesce(g, c, pred):
    if c.type == T.STRING:
        vals = [fn("NULLIF", g.e(a), s("")) for a in c.args]
        return exp.Coalesce(this=vals[0], expressions=vals[1:]) if len(vals) > 1 else vals[0]
    if c.type == T.DYNAMIC:
        vals = [case([(exp.Not(this=g.d.dyn_is(g.e(a), "null")), g.e(a))]) for a in c.args]
        return exp.Coalesce(this=vals[0], expressions=vals[1:])
    vals = [g.e(a) for a in c.args]
    return exp.Coalesce(this=vals[0], expressions=vals[1:]) if len(vals) > 1 else vals[0]


@scalar("max_of", (1, 64), same_type)
def _max_of(g, c, pred):
    return fn("greatest", *[g.e(a) for a in c.args])


@scalar("min_of", (1, 64), same_type)
def _min_of(g, c, pred):
    return fn("least", *[g.e(a) for a in c.args])


# -- math ------------------------------------------------------------------------------------------


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


# -- datetime --------------------------------------------------------------------------------------


@scalar("now", (0, 1), T.DATETIME)
def _now(g, c, pred):
    if c.args:
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(g.d.now()), expression=g.e(c.args[0])))
    return g.d.now()


@scalar("ago", 1, T.DATETIME, coerce="timespan")
def _ago(g, c, pred):
    return g.d.us_to_ts(exp.Sub(this=g.d.ts_to_us(g.d.now()), expression=g.e(c.args[0])))


def _day_us(k: exp.Expression) -> exp.Expression:
    return exp.Mul(this=k, expression=n(86_400_000_000))


def start_of(g: Any, unit: str, ts: exp.Expression) -> exp.Expression:
    if unit == "week":
        day = g.d.date_trunc("day", ts)
        return g.d.us_to_ts(exp.Sub(this=g.d.ts_to_us(day), expression=_day_us(big(g.d.date_part("dayofweek", ts)))))
    return g.d.date_trunc(unit, ts)


def _offset(g: Any, unit: str, start: exp.Expression, k: exp.Expression) -> exp.Expression:
    if unit == "day":
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(start), expression=_day_us(k)))
    if unit == "week":
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(start), expression=_day_us(exp.Mul(this=k, expression=n(7)))))
    months = k if unit == "month" else exp.Mul(this=k, expression=n(12))
    return g.d.add_months(start, months)


def _startof(unit: str):
    def emit(g, c, pred):
        st = start_of(g, unit, g.e(c.args[0]))
        return _offset(g, unit, st, g.e(c.args[1])) if len(c.args) == 2 else st

    return emit


def _endof(unit: str):
    def emit(g, c, pred):
        st = start_of(g, unit, g.e(c.args[0]))
        k = exp.Add(this=g.e(c.args[1]), expression=n(1)) if len(c.args) == 2 else n(1)
        nxt = _offset(g, unit, st, k)
        return g.d.us_to_ts(exp.Sub(this=g.d.ts_to_us(nxt), expression=n(1)))

    return emit


for _u in ("day", "week", "month", "year"):
    scalar(f"startof{_u}", (1, 2), T.DATETIME, coerce=("datetime", "long"))(_startof(_u))
    scalar(f"endof{_u}", (1, 2), T.DATETIME, coerce=("datetime", "long"))(_endof(_u))


@scalar("dayofweek", 1, T.TIMESPAN, coerce="datetime")
def _dayofweek(g, c, pred):
    return _day_us(big(g.d.date_part("dayofweek", g.e(c.args[0]))))


def _part(name: str, part: str):
    @scalar(name, 1, T.INT, coerce="datetime")
    def emit(g, c, pred):
        return cast_(g.d.date_part(part, g.e(c.args[0])), "INT")

    return emit


for _k, _v in {
    "dayofmonth": "day",
    "dayofyear": "dayofyear",
    "hourofday": "hour",
    "getmonth": "month",
    "monthofyear": "month",
    "getyear": "year",
    "weekofyear": "week",
    "week_of_year": "week",
}.items():
    _part(_k, _v)

_PARTS = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week_of_year": "week",
    "week": "week",
    "day": "day",
    "dayofyear": "dayofyear",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
}


@scalar("datetime_part", 2, T.INT, coerce=("string", "datetime"), aliases=("datepart",))
def _datetime_part(g, c, pred):
    part = (lit_str(c.args[0]) or "").lower()
    ts = g.e(c.args[1])
    if part in _PARTS:
        return cast_(g.d.date_part(_PARTS[part], ts), "INT")
    frac = exp.Mod(this=g.d.ts_to_us(ts), expression=n(1_000_000))
    if part == "millisecond":
        return cast_(exp.IntDiv(this=frac, expression=n(1000)), "INT")
    if part == "microsecond":
        return cast_(frac, "INT")
    if part == "nanosecond":
        return cast_(exp.Mul(this=frac, expression=n(1000)), "INT")
    raise Refusal(f"datetime_part({part!r})")


_UNIT_US = {
    "week": 7 * 86_400_000_000,
    "day": 86_400_000_000,
    "hour": 3_600_000_000,
    "minute": 60_000_000,
    "second": 1_000_000,
    "millisecond": 1000,
    "microsecond": 1,
}


@scalar("datetime_add", 3, T.DATETIME, coerce=("string", "long", "datetime"))
def _datetime_add(g, c, pred):
    part = (lit_str(c.args[0]) or "").lower()
    k, ts = g.e(c.args[1]), g.e(c.args[2])
    if part in ("year", "quarter", "month"):
        months = exp.Mul(this=k, expression=n({"year": 12, "quarter": 3, "month": 1}[part]))
        return g.d.add_months(ts, months)
    if part in _UNIT_US:
        return g.d.us_to_ts(exp.Add(this=g.d.ts_to_us(ts), expression=exp.Mul(this=k, expression=n(_UNIT_US[part]))))
    raise Refusal(f"datetime_add({part!r})")


@scalar("datetime_diff", 3, T.LONG, coerce=("string", "datetime", "datetime"))
def _datetime_diff(g, c, pred):
    part = (lit_str(c.args[0]) or "").lower()
    a, b = g.e(c.args[1]), g.e(c.args[2])
    if part in ("year", "quarter", "month"):

        def months(x):
            return exp.Add(
                this=exp.Mul(this=g.d.date_part("year", x), expression=n(12)),
                expression=exp.Sub(this=g.d.date_part("month", x), expression=n(1)),
            )

        if part == "year":
            return big(exp.Sub(this=g.d.date_part("year", a), expression=g.d.date_part("year", b)))
        diff = exp.Sub(this=months(a), expression=months(b))
        if part == "quarter":

            def q(x):
                return exp.Add(
                    this=exp.Mul(this=g.d.date_part("year", x), expression=n(4)), expression=g.d.date_part("quarter", x)
                )

            return big(exp.Sub(this=q(a), expression=q(b)))
        return big(diff)
    if part == "week":
        wa, wb = start_of(g, "week", a), start_of(g, "week", b)
        return exp.IntDiv(
            this=exp.Sub(this=g.d.ts_to_us(wa), expression=g.d.ts_to_us(wb)), expression=n(_UNIT_US["week"])
        )
    if part in _UNIT_US:
        unit = n(_UNIT_US[part])
        ua, ub = g.d.ts_to_us(a), g.d.ts_to_us(b)
        fa = exp.Sub(this=ua, expression=g.d.pmod(ua, unit))
        fb = exp.Sub(this=ub, expression=g.d.pmod(ub, unit))
        return exp.IntDiv(this=exp.Sub(this=fa, expression=fb), expression=unit)
    raise Refusal(f"datetime_diff({part!r})")


def _unix(name: str, scale: int):
    @scalar(name, 1, T.DATETIME, coerce="real")
    def emit(g, c, pred):
        a = c.args[0]
        x = g.e(a)
        us = (
            exp.Mul(this=x, expression=n(scale))
            if a.type in T.INTEGRAL
            else big(fn("round", exp.Mul(this=x, expression=n(float(scale)))))
        )
        if scale < 1:
            us = (
                exp.IntDiv(this=x, expression=n(1000))
                if a.type in T.INTEGRAL
                else big(fn("floor", exp.Div(this=x, expression=n(1000.0))))
            )
        return g.d.us_to_ts(us)

    return emit


_unix("unixtime_seconds_todatetime", 1_000_000)
_unix("unixtime_milliseconds_todatetime", 1000)
_unix("unixtime_microseconds_todatetime", 1)
_unix("unixtime_nanoseconds_todatetime", 0)


@scalar("make_datetime", (3, 7), T.DATETIME, coerce="real")
def _make_datetime(g, c, pred):
    args = [g.e(a) for a in c.args] + [n(0)] * (6 - len(c.args))
    if len(c.args) == 7:
        raise Refusal("make_datetime with 7 arguments")
    ints = [cast_(a, "INT") for a in args[:5]]
    return fn("make_timestamp", *ints, cast_(args[5], "DOUBLE"))


@scalar("make_timespan", (2, 5), T.TIMESPAN, coerce="real")
def _make_timespan(g, c, pred):
    a = [g.e(x) for x in c.args]
    if len(a) == 2:
        a = [n(0), a[0], a[1], n(0)]
    elif len(a) == 3:
        a = [n(0), *a]
    while len(a) < 4:
        a.append(n(0))
    secs = exp.Add(
        this=exp.Add(
            this=exp.Add(
                this=exp.Mul(this=a[0], expression=n(86400)), expression=exp.Mul(this=a[1], expression=n(3600))
            ),
            expression=exp.Mul(this=a[2], expression=n(60)),
        ),
        expression=a[3],
    )
    return big(fn("round", exp.Mul(this=secs, expression=n(1_000_000.0))))


# KQL format specifiers -> (Spark pattern, strftime pattern)
_FMT = {
    "yyyy": ("yyyy", "%Y"),
    "yy": ("yy", "%y"),
    "MM": ("MM", "%m"),
    "M": ("M", "%-m"),
    "dd": ("dd", "%d"),
    "d": ("d", "%-d"),
    "HH": ("HH", "%H"),
    "H": ("H", "%-H"),
    "hh": ("hh", "%I"),
    "h": ("h", "%-I"),
    "mm": ("mm", "%M"),
    "m": ("m", "%-M"),
    "ss": ("ss", "%S"),
    "s": ("s", "%-S"),
    "tt": ("a", "%p"),
    "fff": ("SSS", "%g"),
    "ffffff": ("SSSSSS", "%f"),
    "MMM": ("MMM", "%b"),
    "MMMM": ("MMMM", "%B"),
    "ddd": ("EEE", "%a"),
    "dddd": ("EEEE", "%A"),
}


def translate_datetime_format(fmt: str, dialect: str) -> str:
    out = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch.isalpha():
            j = i
            while j < len(fmt) and fmt[j] == ch:
                j += 1
            tok = fmt[i:j]
            if tok not in _FMT:
                raise Refusal(f"format_datetime specifier {tok!r}")
            out.append(_FMT[tok][0 if dialect == "spark" else 1])
            i = j
            continue
        if dialect == "spark":
            out.append("'" + ch + "'" if ch not in " -:/.," else ch)
        else:
            out.append("%%" if ch == "%" else ch)
        i += 1
    return "".join(out)


@scalar("format_datetime", 2, T.STRING, coerce=("datetime", "string"))
def _format_datetime(g, c, pred):
    fmt = lit_str(c.args[1])
    if fmt is None:
        raise Refusal("format_datetime with a computed format")
    return g.d.format_ts(g.e(c.args[0]), translate_datetime_format(fmt, g.d.name))


@scalar("format_timespan", 2, T.STRING, coerce=("timespan", "string"))
def _format_timespan(g, c, pred):
    fmt = lit_str(c.args[1])
    if fmt is None:
        raise Refusal("format_timespan with a computed format")
    us = g.e(c.args[0])
    a = fn("abs", us)
    fields = {
        "d": exp.IntDiv(this=a, expression=n(86_400_000_000)),
        "h": exp.IntDiv(this=exp.Mod(this=a, expression=n(86_400_000_000)), expression=n(3_600_000_000)),
        "m": exp.IntDiv(this=exp.Mod(this=a, expression=n(3_600_000_000)), expression=n(60_000_000)),
        "s": exp.IntDiv(this=exp.Mod(this=a, expression=n(60_000_000)), expression=n(1_000_000)),
    }
    parts: list[exp.Expression] = []
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        j = i
        while j < len(fmt) and fmt[j] == ch:
            j += 1
        run = fmt[i:j]
        if ch in "dhHms":
            val = fields["h" if ch == "H" else ch]
            parts.append(fn("lpad", cast_(val, g.d.string_type), n(len(run)), s("0")))
        elif ch in "fF":
            frac = exp.Mod(this=a, expression=n(1_000_000))
            digits = fn("substring", fn("lpad", cast_(frac, g.d.string_type), n(6), s("0")), n(1), n(min(len(run), 6)))
            parts.append(fn("rpad", digits, n(len(run)), s("0")))
        elif ch == "'":
            k = fmt.find("'", i + 1)
            parts.append(s(fmt[i + 1 : k]))
            j = k + 1
        elif ch == "\\":
            parts.append(s(fmt[i + 1 : i + 2]))
            j = i + 2
        else:
            parts.append(s(run))
        i = j
    return exp.Concat(expressions=parts)


# -- dynamic ---------------------------------------------------------------------------------------


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


def _elements_as(g: Any, v: exp.Expression, t: str) -> exp.Expression:
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
    return exp.Coalesce(this=g.d.array_contains(_elements_as(g, g.e(c.args[0]), k), val), expressions=[exp.false()])


@scalar("array_index_of", (2, 4), T.LONG, coerce=("dynamic", None, "long", "long"))
def _array_index_of(g, c, pred):
    if len(c.args) > 2:
        raise Refusal("array_index_of with start/length")
    k = _value_kind(c.args[1])
    val = to_string(g, c.args[1]) if k == T.STRING else g.e(c.args[1])
    if k == T.LONG:
        k, val = T.REAL, cast_(val, "DOUBLE")
    arr = _elements_as(g, g.e(c.args[0]), k)
    pos = fn("array_position", arr, val) if g.d.name == "spark" else fn("coalesce", fn("list_position", arr, val), n(0))
    return case([(exp.Is(this=arr, expression=exp.null()), exp.null())], exp.Sub(this=big(pos), expression=n(1)))


def _sorted(desc: bool):
    def emit(g, c, pred):
        if len(c.args) > 1:
            raise Refusal("array_sort with several arrays or nulls_last")
        v = g.e(c.args[0])
        nums = _elements_as(g, v, T.REAL)
        strs = _elements_as(g, v, T.STRING)
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
        num_sorted = g.d.dyn_array_from_sql_array(g.d.array_sort(_elements_as(g, v, T.REAL), desc))
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
    longs = _elements_as(g, v, T.LONG)
    long_sorted = g.d.dyn_array_from_sql_array(g.d.array_sort(longs, desc))
    if g.d.name == "spark":
        exact = fn(
            "forall",
            fn("arrays_zip", longs, _elements_as(g, v, T.REAL)),
            exp.Lambda(
                this=exp.EQ(
                    this=cast_(exp.Dot(this=exp.column("z"), expression=exp.to_identifier("0")), "DOUBLE"),
                    expression=exp.Dot(this=exp.column("z"), expression=exp.to_identifier("1")),
                ),
                expressions=[exp.to_identifier("z")],
            ),
        )
    else:
        exact = exp.EQ(this=cast_(longs, "DOUBLE[]"), expression=_elements_as(g, v, T.REAL))
    kinds_ok = exp.Not(this=exp.Is(this=longs, expression=exp.null()))
    return case([(exp.and_(kinds_ok, exp.Coalesce(this=exact, expressions=[exp.false()])), long_sorted)], num_sorted)


scalar("array_sort_asc", (1, 2), T.DYNAMIC, coerce="dynamic")(_sorted(False))
scalar("array_sort_desc", (1, 2), T.DYNAMIC, coerce="dynamic")(_sorted(True))


@scalar("strcat_array", 2, T.STRING, coerce=("dynamic", "string"))
def _strcat_array(g, c, pred):
    return g.d.array_join(_elements_as(g, g.e(c.args[0]), T.STRING), g.e(c.args[1]))


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


# -- IP addresses ----------------------------------------------------------------------------------

_IPV4 = r"^\s*(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:/(\d{1,2}))?\s*$"


def ipv4_long(g: Any, text: exp.Expression) -> exp.Expression:
    """An IPv4 address as a number, null when *text* is not one."""

    def octet(i):
        return try_cast_(this=g.d.regex_extract(text, s(_IPV4), i), to=g.d.sql_type(T.LONG))

    total = exp.Add(
        this=exp.Add(
            this=exp.Add(
                this=exp.Mul(this=octet(1), expression=n(16777216)),
                expression=exp.Mul(this=octet(2), expression=n(65536)),
            ),
            expression=exp.Mul(this=octet(3), expression=n(256)),
        ),
        expression=octet(4),
    )
    valid = exp.and_(g.d.regex_match(text, s(_IPV4)), *[exp.LTE(this=octet(i), expression=n(255)) for i in range(1, 5)])
    return case([(valid, total)])


def ipv4_prefix(g: Any, text: exp.Expression, default: int = 32) -> exp.Expression:
    p = try_cast_(this=fn("NULLIF", g.d.regex_extract(text, s(_IPV4), 5), s("")), to=g.d.sql_type(T.LONG))
    return exp.Coalesce(this=p, expressions=[n(default)])


def _masked(g: Any, value: exp.Expression, prefix: exp.Expression) -> exp.Expression:
    block = big(fn("pow", n(2), exp.Sub(this=n(32), expression=prefix)))
    return exp.IntDiv(this=value, expression=block)


@scalar("parse_ipv4", 1, T.LONG, coerce="string")
def _parse_ipv4(g, c, pred):
    text = g.e(c.args[0])
    v = ipv4_long(g, text)
    pfx = ipv4_prefix(g, text)
    return exp.Mul(this=_masked(g, v, pfx), expression=big(fn("pow", n(2), exp.Sub(this=n(32), expression=pfx))))


@scalar("ipv4_is_in_range", 2, T.BOOL, coerce="string")
def _ipv4_in_range(g, c, pred):
    ip, rng = g.e(c.args[0]), g.e(c.args[1])
    pfx = ipv4_prefix(g, rng)
    r = exp.EQ(this=_masked(g, ipv4_long(g, ip), pfx), expression=_masked(g, ipv4_long(g, rng), pfx))
    return r


@scalar("ipv4_is_in_any_range", (2, 999), T.BOOL, coerce="string")
def _ipv4_in_any(g, c, pred):
    ip = g.e(c.args[0])
    parts = []
    for r in c.args[1:]:
        rng = g.e(r)
        pfx = ipv4_prefix(g, rng)
        parts.append(exp.EQ(this=_masked(g, ipv4_long(g, ip), pfx), expression=_masked(g, ipv4_long(g, rng), pfx)))
    return exp.or_(*parts)


@scalar("ipv4_is_match", (2, 3), T.BOOL, coerce=("string", "string", "long"))
def _ipv4_is_match(g, c, pred):
    return exp.EQ(this=_ipv4_cmp(g, c), expression=n(0))


@scalar("ipv4_compare", (2, 3), T.LONG, coerce=("string", "string", "long"))
def _ipv4_compare(g, c, pred):
    return big(_ipv4_cmp(g, c))


def _ipv4_cmp(g: Any, c: ir.Call) -> exp.Expression:
    a, b = g.e(c.args[0]), g.e(c.args[1])
    pfx = fn("least", ipv4_prefix(g, a), ipv4_prefix(g, b))
    if len(c.args) == 3:
        pfx = fn("least", pfx, g.e(c.args[2]))
    x, y = _masked(g, ipv4_long(g, a), pfx), _masked(g, ipv4_long(g, b), pfx)
    return fn("sign", exp.Sub(this=x, expression=y))


_PRIVATE = [("10.0.0.0", 8), ("172.16.0.0", 12), ("192.168.0.0", 16)]


@scalar("ipv4_is_private", 1, T.BOOL, coerce="string")
def _ipv4_is_private(g, c, pred):
    v = ipv4_long(g, g.e(c.args[0]))
    parts = []
    for net, bits in _PRIVATE:
        o = [int(x) for x in net.split(".")]
        base = ((o[0] * 256 + o[1]) * 256 + o[2]) * 256 + o[3]
        parts.append(
            exp.EQ(this=exp.IntDiv(this=v, expression=n(2 ** (32 - bits))), expression=n(base // 2 ** (32 - bits)))
        )
    return exp.or_(*parts)


@scalar("ipv4_netmask_suffix", 1, T.INT, coerce="string")
def _ipv4_netmask_suffix(g, c, pred):
    text = g.e(c.args[0])
    return case(
        [(exp.Not(this=exp.Is(this=ipv4_long(g, text), expression=exp.null())), cast_(ipv4_prefix(g, text), "INT"))]
    )


# -- window functions (need a serialized input) -----------------------------------------------------


def _win(name: str, args: tuple[int, int], ret: Any):
    return scalar(name, args, ret, window=True, category="window")


@_win("prev", (1, 3), first_type)
def _prev(g, c, pred):
    return _lag_lead(g, c, "lag")


@_win("next", (1, 3), first_type)
def _next(g, c, pred):
    return _lag_lead(g, c, "lead")


def _lag_lead(g: Any, c: ir.Call, sql: str) -> exp.Expression:
    args = [g.e(c.args[0])]
    if len(c.args) >= 2:
        args.append(g.e(c.args[1]))
    if len(c.args) == 3:
        args.append(g.d.cast(g.e(c.args[2]), c.type))
    return g.over(fn(sql, *args))


@_win("row_number", (0, 2), T.LONG)
def _row_number(g, c, pred):
    if len(c.args) == 2:
        raise Refusal("row_number with a restart condition")
    rn = g.over(fn("row_number"))
    if c.args:
        return exp.Add(this=rn, expression=exp.Sub(this=g.e(c.args[0]), expression=n(1)))
    return rn


@_win("row_cumsum", (1, 2), lambda a: T.LONG if a[0].type in T.INTEGRAL else a[0].type)
def _row_cumsum(g, c, pred):
    if len(c.args) == 2:
        raise Refusal("row_cumsum with a restart condition")
    return g.over(fn("sum", g.e(c.args[0])), running=True)


def refused_everywhere(name: str, reason: str):
    @scalar(name, (0, 99), T.STRING, refused={"spark": reason, "duckdb": reason})
    def emit(g, c, pred):
        raise Refusal(name, reason=reason)

    return emit


refused_everywhere("hash", "KQL's hash() values (xxhash64 of its own encoding) cannot be reproduced")
refused_everywhere("parse_csv", "not translated yet")
refused_everywhere("url_encode", refused_url_encode)
refused_everywhere("url_encode_component", refused_url_encode)
refused_everywhere("parse_xml", "not translated yet")


# -- internals the lowering produces ----------------------------------------------------------------


@scalar("__parse_matches", 2, T.BOOL, category="internal")
def _parse_matches(g, c, pred):
    return false_if_null(g.d.regex_match(g.e(c.args[0]), g.e(c.args[1])), pred)


@scalar("__parse_group", 4, T.STRING, category="internal")
def _parse_group(g, c, pred):
    subject, pattern = g.e(c.args[0]), g.e(c.args[1])
    group = c.args[2].value
    got = g.d.regex_extract(subject, pattern, group)
    value = _convert_text(g, got, c.type)
    return case([(g.d.regex_match(subject, pattern), value)])


@scalar("__serial", 0, T.LONG, category="internal")
def _serial(g, c, pred):
    return g.d.serial_ordinal()


@scalar("__rank", (3, 99), T.LONG, category="internal")
def _rank(g, c, pred):
    nparts = c.args[0].value
    desc = c.args[1].value
    parts = [g.e(a) for a in c.args[2 : 2 + nparts]]
    order_by = g.e(c.args[2 + nparts])
    return exp.Window(
        this=fn("row_number"),
        partition_by=parts or None,
        order=exp.Order(expressions=[exp.Ordered(this=order_by, desc=desc, nulls_first=not desc)]),
    )


def _elements_text(g: Any, v: exp.Expression, ci: bool) -> exp.Expression:
    arr = _elements_as(g, v, T.STRING)
    if not ci:
        return arr
    lam = exp.Lambda(this=exp.Lower(this=exp.column("x")), expressions=[exp.to_identifier("x")])
    return fn("transform", arr, lam) if g.d.name == "spark" else fn("list_transform", arr, lam)


@scalar("__in_dyn", 3, T.BOOL, category="internal")
def _in_dyn(g, c, pred):
    x_ir, arr_ir, ci = c.args
    v = g.e(arr_ir)
    if x_ir.type in T.NUMERIC:
        r = g.d.array_contains(_elements_as(g, v, T.REAL), cast_(g.e(x_ir), "DOUBLE"))
    else:
        x = empty_if_null(g.e(x_ir))
        if ci.value:
            x = lower_str(x)
        r = g.d.array_contains(_elements_text(g, v, bool(ci.value)), x)
    return false_if_null(r, pred)


@scalar("__has_dyn", 3, T.BOOL, category="internal")
def _has_dyn(g, c, pred):
    hay = g.e(c.args[0])
    arr = _elements_as(g, g.e(c.args[1]), T.STRING)
    all_ = bool(c.args[2].value)
    e = exp.column("e")
    test = exp.Lambda(this=_dynamic_term_match(g, hay, e, "has", False), expressions=[exp.to_identifier("e")])
    if g.d.name == "spark":
        r = fn("forall" if all_ else "exists", arr, test)
    else:
        hits = fn("len", fn("list_filter", arr, test))
        r = exp.EQ(this=hits, expression=fn("len", arr)) if all_ else exp.GT(this=hits, expression=n(0))
    return false_if_null(r, pred)


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


_URL = (
    r"^(?:([A-Za-z][A-Za-z0-9+.\-]*)://)?(?:([^:@/?#]*)(?::([^@/?#]*))?@)?([^:/?#]*)(?::(\d+))?"
    r"([^?#]*)(?:\?([^#]*))?(?:#(.*))?$"
)


@scalar("parse_url", 1, T.DYNAMIC, coerce="string")
def _parse_url(g, c, pred):
    url = empty_if_null(g.e(c.args[0]))
    pat = s(_URL)

    def part(i: int) -> exp.Expression:
        return g.d.dyn_from_scalar(g.d.regex_extract(url, pat, i), T.STRING)

    query = g.d.regex_extract(url, pat, 7)
    if g.d.name == "spark":
        m = fn("str_to_map", query, s("&"), s("="))
        params = case([(exp.EQ(this=query, expression=s("")), fn("parse_json", s("{}")))], fn("to_variant_object", m))
    else:
        entries = fn(
            "list_transform",
            fn("string_split", query, s("&")),
            exp.Lambda(
                this=fn(
                    "struct_pack",
                    exp.PropertyEQ(
                        this=exp.to_identifier("k"), expression=fn("split_part", exp.column("x"), s("="), n(1))
                    ),
                    exp.PropertyEQ(
                        this=exp.to_identifier("v"), expression=fn("split_part", exp.column("x"), s("="), n(2))
                    ),
                ),
                expressions=[exp.to_identifier("x")],
            ),
        )
        params = case(
            [(exp.EQ(this=query, expression=s("")), cast_(s("{}"), "JSON"))],
            cast_(fn("to_json", fn("map_from_entries", entries)), "JSON"),
        )
    bag = g.d.dyn_object(
        [
            ("Scheme", part(1)),
            ("Host", part(4)),
            ("Port", part(5)),
            ("Path", part(6)),
            ("Username", part(2)),
            ("Password", part(3)),
            ("Query Parameters", params),
            ("Fragment", part(8)),
        ]
    )
    # Text that is not a URL (no scheme) parses to an empty bag... per field, as Kusto returns "".
    return case([(g.d.regex_match(url, s(r"^[A-Za-z][A-Za-z0-9+.\-]*://")), bag)], g.d.dyn_object([]))
