"""KQL's typing rules for lowered expressions: literals, implicit conversions, comparison and arithmetic.

Pure functions of IR expressions (no parse tree beyond a literal's): what type a value takes where
KQL expects another, and what type an operator's result has.
"""

from __future__ import annotations

from typing import Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import literals as L
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.parsetree import collapse, is_token, rule
from kqlmagic_plus.language.compiler.syntax import Pos, Refusal, SemanticError, pos


def literal(ctx: Any) -> ir.Lit:
    """A literal of the parse tree as a typed IR literal."""
    c = collapse(ctx)
    r = rule(c) if not is_token(c) else "Token"
    text = c.getText()
    try:
        if r == "LongLiteralExpression":
            return ir.Lit(T.LONG, L.long_value(text))
        if r == "IntLiteralExpression":
            return ir.Lit(T.INT, L.long_value(text))
        if r == "RealLiteralExpression":
            return ir.Lit(T.REAL, L.real_value(text))
        if r == "DecimalLiteralExpression":
            return ir.Lit(T.DECIMAL, L.decimal_value(text))
        if r == "DateTimeLiteralExpression":
            return ir.Lit(T.DATETIME, L.datetime_value(text))
        if r == "TimeSpanLiteralExpression":
            return ir.Lit(T.TIMESPAN, L.timespan_value(text))
        if r == "BooleanLiteralExpression":
            return ir.Lit(T.BOOL, L.bool_value(text))
        if r == "GuidLiteralExpression":
            return ir.Lit(T.GUID, L.guid_value(text))
        if r == "StringLiteralExpression":
            return ir.Lit(T.STRING, L.string_value(c))
        if r == "Token" and text[:1] in "\"'@hH`~":
            return ir.Lit(T.STRING, L.string_token(text))
        if r == "DynamicLiteralExpression":
            return ir.Lit(T.DYNAMIC, L.json_value(c.Value))
        if r == "TypeLiteralExpression":
            word = L.type_value(text)
            t = T.type_from_word(word)
            if t is None and word.replace("_", "").isalnum():
                # typeof(port) names no type; a hunter meaning a value's type wants gettype(port).
                raise SemanticError(f"typeof({word}): '{word}' is not a KQL type (gettype() gives the type of "
                                    "a value)", pos(c))
            return ir.Lit(t or T.DYNAMIC, None)
        if r == "SignedLongLiteralExpression":
            v = L.long_value(c.LiteralToken.text)
            return ir.Lit(T.LONG, -v if c.SignToken.text == "-" and v is not None else v)
        if r == "SignedRealLiteralExpression":
            v = L.real_value(c.LiteralToken.text)
            return ir.Lit(T.REAL, -v if c.SignToken.text == "-" and v is not None else v)
    except (L.LiteralError, ValueError) as exc:
        raise SemanticError(f"bad literal {text!r}: {exc}", pos(c)) from None
    raise Refusal(f"literal {text}", pos(c))


def scalar_kind(t: str) -> str:
    return t if t != T.NULL else T.STRING


def coerce_to(e: ir.Expr, target: str | None, where: Pos, explicit: bool = False) -> ir.Expr:
    """Convert *e* to the KQL type *target* the way KQL does implicitly (dynamic -> scalar, numbers
    widen, literals convert)."""
    if target is None or e.type == target:
        return e
    t = e.type
    if t == T.NULL:
        return ir.Lit(target, None) if isinstance(e, ir.Lit) else e
    if target == T.STRING:
        if isinstance(e, ir.Lit) and t == T.GUID:
            return ir.Lit(T.STRING, e.value)
        if t == T.GUID:
            return e
        return ir.Call(T.STRING, "tostring", (e,))
    if target == T.DYNAMIC:
        if isinstance(e, ir.Lit):
            return ir.Lit(T.DYNAMIC, _dyn_value(e))
        return ir.Call(T.DYNAMIC, "__to_dynamic", (e,))
    if target in T.NUMERIC:
        if t in T.NUMERIC:
            if isinstance(e, ir.Lit) and e.value is not None:
                v = e.value
                return ir.Lit(target, float(v) if target == T.REAL else (int(v) if target in T.INTEGRAL else v))
            if target == T.LONG and t == T.INT:
                return e
            return ir.Call(
                target, {T.REAL: "toreal", T.LONG: "tolong", T.INT: "toint", T.DECIMAL: "todecimal"}[target], (e,)
            )
        if t in (T.DYNAMIC, T.STRING, T.BOOL):
            return ir.Call(
                target, {T.REAL: "toreal", T.LONG: "tolong", T.INT: "toint", T.DECIMAL: "todecimal"}[target], (e,)
            )
        if t == T.TIMESPAN and target == T.LONG:
            return e
    if target == T.BOOL and t in (T.DYNAMIC, T.STRING, *T.NUMERIC):
        return ir.Call(T.BOOL, "tobool", (e,))
    if target == T.DATETIME and t in (T.DYNAMIC, T.STRING):
        if isinstance(e, ir.Lit) and isinstance(e.value, str):
            us = L.parse_datetime_text(e.value)
            if us is not None:
                return ir.Lit(T.DATETIME, us)
        return ir.Call(T.DATETIME, "todatetime", (e,))
    if target == T.TIMESPAN and t in (T.DYNAMIC, T.STRING):
        return ir.Call(T.TIMESPAN, "totimespan", (e,))
    if target == T.TIMESPAN and t in T.INTEGRAL and isinstance(e, ir.Lit):
        return e
    if target == T.GUID and t == T.STRING:
        return e
    raise SemanticError(f"expected a {target} value, got {t}", where)


def _dyn_value(e: ir.Lit) -> Any:
    if e.value is None:
        return None
    if e.type == T.DATETIME:
        return L.format_datetime_iso(e.value).replace(" ", "T") + "Z"
    if e.type == T.TIMESPAN:
        return L.format_timespan(e.value)
    if e.type == T.DECIMAL:
        return float(e.value)
    return e.value


def python_literal(value: Any, pos: Pos | None) -> ir.Lit:
    """A Python value (a query parameter, an element of a dynamic literal) as a typed literal."""
    import datetime as _dt
    import decimal as _dec

    if value is None:
        return ir.Lit(T.NULL, None)
    if isinstance(value, bool):
        return ir.Lit(T.BOOL, value)
    if isinstance(value, int):
        return ir.Lit(T.LONG, value)
    if isinstance(value, float):
        return ir.Lit(T.REAL, value)
    if isinstance(value, _dec.Decimal):
        return ir.Lit(T.DECIMAL, value)
    if isinstance(value, str):
        return ir.Lit(T.STRING, value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
        delta = value - _dt.datetime(1970, 1, 1)
        return ir.Lit(T.DATETIME, (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if isinstance(value, _dt.timedelta):
        return ir.Lit(T.TIMESPAN, (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds)
    if isinstance(value, (list, dict, tuple)):
        return ir.Lit(T.DYNAMIC, list(value) if isinstance(value, tuple) else value)
    raise SemanticError(f"cannot use a {type(value).__name__} value in a query", pos)


def convert_literal(e: ir.Expr, t: str | None, where: Pos) -> ir.Expr:
    if t is None:
        return e
    if isinstance(e, ir.Lit) and e.type == T.STRING and t in (T.DATETIME, T.TIMESPAN, T.GUID):
        if e.value is None:
            return ir.Lit(t, None)
        if t == T.DATETIME:
            us = L.parse_datetime_text(e.value)
            if us is None:
                raise SemanticError(f"{e.value!r} is not a datetime", where)
            return ir.Lit(t, us)
        if t == T.TIMESPAN:
            return ir.Lit(t, L.parse_timespan_text(e.value))
        return ir.Lit(t, e.value)
    return coerce_to(e, t, where)


def conflict(a: str, b: str, where: Pos) -> str:
    raise SemanticError(f"the branches have different types ({a} and {b})", where)


def unify_pair(a: ir.Expr, b: ir.Expr, where: Pos) -> tuple[ir.Expr, ir.Expr]:
    t = T.unify(a.type, b.type)
    if t is None:
        if T.DYNAMIC in (a.type, b.type):
            return coerce_to(a, T.DYNAMIC, where), coerce_to(b, T.DYNAMIC, where)
        raise SemanticError(f"the branches have different types ({a.type} and {b.type})", where)
    return (
        coerce_to(a, t, where) if a.type not in (t, T.NULL) and not (a.type in T.INTEGRAL and t == T.LONG) else a,
        coerce_to(b, t, where) if b.type not in (t, T.NULL) and not (b.type in T.INTEGRAL and t == T.LONG) else b,
    )


def coerce_pair(anchor: ir.Expr, other: ir.Expr, where: Pos) -> ir.Expr:
    """Bring *other* to a type comparable with *anchor*."""
    ta, tb = anchor.type, other.type
    if ta == tb or tb == T.NULL or ta == T.NULL:
        return other
    if ta in T.NUMERIC and tb in T.NUMERIC:
        return other
    if {ta, tb} <= {T.STRING, T.GUID}:
        return other
    if tb == T.DYNAMIC:
        return coerce_to(other, ta, where)
    if ta == T.DATETIME and tb == T.STRING:
        return coerce_to(other, T.DATETIME, where)
    if ta == T.TIMESPAN and tb in T.INTEGRAL and isinstance(other, ir.Lit):
        return other
    raise SemanticError(f"cannot compare {ta} with {tb}", where)


def compare(op: str, a: ir.Expr, b: ir.Expr, where: Pos) -> ir.Expr:
    if a.type == T.DYNAMIC and b.type != T.DYNAMIC:
        a = coerce_to(a, scalar_kind(b.type), where)
    elif b.type == T.DYNAMIC and a.type != T.DYNAMIC:
        b = coerce_to(b, scalar_kind(a.type), where)
    elif a.type == T.DYNAMIC and b.type == T.DYNAMIC:
        a, b = coerce_to(a, T.STRING, where), coerce_to(b, T.STRING, where)
    # KQL converts a literal to the other side's type: `RemotePort == "3389"`, `IsLocal == 1`.
    if isinstance(b, ir.Lit) and b.value is not None:
        b = convert_literal_for(a.type, b)
    if isinstance(a, ir.Lit) and a.value is not None:
        a = convert_literal_for(b.type, a)
    b = coerce_pair(a, b, where)
    if a.type == T.STRING and b.type == T.DATETIME:
        a = coerce_to(a, T.DATETIME, where)
    if a.type == T.BOOL and b.type in T.NUMERIC and isinstance(b, ir.Lit):
        b = ir.Lit(T.BOOL, bool(b.value))
    return ir.Call(T.BOOL, op, (a, b))


def convert_literal_for(t: str, lit: ir.Lit) -> ir.Lit:
    """KQL compares a literal with a column of another type by converting the literal: `EventID == "4624"`,
    `LogonType in ("2", "10")`, `ResultType in (0, 50125)` on a string column."""
    v = lit.value
    if t in T.NUMERIC and lit.type == T.STRING:
        try:
            f = float(str(v).strip())
        except ValueError:
            return lit
        return ir.Lit(T.REAL if t == T.REAL or not f.is_integer() else T.LONG, f if t == T.REAL else
                      (int(f) if f.is_integer() else f))
    if t == T.STRING and lit.type in T.NUMERIC and not isinstance(v, bool):
        return ir.Lit(T.STRING, str(v))
    if t == T.BOOL and lit.type in T.INTEGRAL and v in (0, 1):
        return ir.Lit(T.BOOL, bool(v))
    if t == T.BOOL and lit.type == T.STRING and str(v).strip().lower() in ("true", "false"):
        return ir.Lit(T.BOOL, str(v).strip().lower() == "true")
    return lit


def arith(op: str, a: ir.Expr, b: ir.Expr, where: Pos) -> ir.Expr:
    ta, tb = a.type, b.type
    if ta == T.DYNAMIC:
        a, ta = coerce_to(a, T.REAL, where), T.REAL
    if tb == T.DYNAMIC:
        b, tb = coerce_to(b, T.REAL, where), T.REAL
    if (
        isinstance(a, ir.Lit)
        and isinstance(b, ir.Lit)
        and a.value is not None
        and b.value is not None
        and ta in T.INTEGRAL
        and tb in T.INTEGRAL
        and op in "+-*"
    ):
        v = {"+": a.value + b.value, "-": a.value - b.value, "*": a.value * b.value}[op]
        return ir.Lit(T.LONG, v)
    if ta in T.NUMERIC and tb in T.NUMERIC:
        rt = T.arithmetic_result(ta, tb)
    elif ta == T.NULL or tb == T.NULL:
        rt = tb if ta == T.NULL else ta
    elif ta == T.DATETIME and tb == T.DATETIME and op == "-":
        rt = T.TIMESPAN
    elif (ta == T.DATETIME and tb == T.TIMESPAN and op in "+-") or (
        ta == T.TIMESPAN and tb == T.DATETIME and op == "+"
    ):
        rt = T.DATETIME
    elif ta == T.TIMESPAN and tb == T.TIMESPAN:
        rt = T.REAL if op == "/" else T.TIMESPAN
    elif ta == T.TIMESPAN and tb in T.NUMERIC and op in "*/":
        rt = T.TIMESPAN
    elif tb == T.TIMESPAN and ta in T.NUMERIC and op == "*":
        a, b = b, a
        rt = T.TIMESPAN
    else:
        raise SemanticError(f"cannot apply {op} to {ta} and {tb}", where)
    return ir.Call(rt, op, (a, b))
