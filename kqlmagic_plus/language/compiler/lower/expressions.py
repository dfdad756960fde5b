"""Scalar expressions: each grammar rule's lowering, found through :data:`EXPRESSIONS`.

Names resolve against the row scope first, then the ``let`` environment; function calls go to the
catalog (aggregates only where the scope allows them) unless :data:`SPECIAL_FORMS` handles them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.catalog import Function, lookup_aggregate, lookup_operator, lookup_scalar
from kqlmagic_plus.language.compiler.functions.arrays import bag_pack_columns_form, pack_all_form
from kqlmagic_plus.language.compiler.functions.text_extra import column_names_of_form
from kqlmagic_plus.language.compiler.lower.coerce import (
    arith,
    coerce_pair,
    coerce_to,
    compare,
    conflict,
    convert_literal_for,
    literal,
    python_literal,
    scalar_kind,
    unify_pair,
)
from kqlmagic_plus.language.compiler.lower.messages import construct_name, no_column
from kqlmagic_plus.language.compiler.lower.scope import FunctionDef, Scope
from kqlmagic_plus.language.compiler.parsetree import collapse, is_token, rule
from kqlmagic_plus.language.compiler.syntax import TABLE_CALL, Pos, Refusal, SemanticError, name_of, pos

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


_STRING_OPS = {
    "=~": "=~",
    "!~": "!~",
    "has": "has",
    "!has": "!has",
    "has_cs": "has_cs",
    "!has_cs": "!has_cs",
    "hasprefix": "hasprefix",
    "!hasprefix": "!hasprefix",
    "hasprefix_cs": "hasprefix_cs",
    "!hasprefix_cs": "!hasprefix_cs",
    "hassuffix": "hassuffix",
    "!hassuffix": "!hassuffix",
    "hassuffix_cs": "hassuffix_cs",
    "!hassuffix_cs": "!hassuffix_cs",
    "contains": "contains",
    "!contains": "!contains",
    "notcontains": "!contains",
    "contains_cs": "contains_cs",
    "containscs": "contains_cs",
    "!contains_cs": "!contains_cs",
    "notcontainscs": "!contains_cs",
    "startswith": "startswith",
    "!startswith": "!startswith",
    "startswith_cs": "startswith_cs",
    "!startswith_cs": "!startswith_cs",
    "endswith": "endswith",
    "!endswith": "!endswith",
    "endswith_cs": "endswith_cs",
    "!endswith_cs": "!endswith_cs",
    "matchesregex": "matches regex",
    "matches regex": "matches regex",
    ":": "has",
}


def named(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    return lw.expr(c.Expression, sc)


def logical_or(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    parts = [lw.expr(c.Left, sc)] + [lw.expr(o.Right, sc) for o in c.Operations]
    return ir.Call(T.BOOL, "or", tuple(coerce_to(p, T.BOOL, pos(c)) for p in parts))


def logical_and(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    parts = [lw.expr(c.Left, sc)] + [lw.expr(o.Right, sc) for o in c.Operations]
    return ir.Call(T.BOOL, "and", tuple(coerce_to(p, T.BOOL, pos(c)) for p in parts))


def equality(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    if c.Tail is None:
        return lw.expr(c.Left, sc)
    tail = c.Tail
    tr = rule(tail)
    op = tail.OperatorToken.text.lower()
    left = lw.expr(c.Left, sc)
    if tr == "EqualsEqualityExpression":
        right = lw.expr(tail.Right, sc)
        return compare("!=" if op == "<>" else op, left, right, pos(c))
    if tr == "BetweenEqualityExpression":
        lo = lw.expr(tail.StartExpression, sc)
        hi = lw.expr(tail.EndExpression, sc)
        if left.type == T.DATETIME and hi.type == T.TIMESPAN:
            hi = ir.Call(T.DATETIME, "+", (lo, hi))
        lo = coerce_pair(left, _literal_for(left, lo), pos(c))
        hi = coerce_pair(left, _literal_for(left, hi), pos(c))
        return ir.Call(T.BOOL, "between" if op == "between" else "!between", (left, lo, hi))
    if tr == "ListEqualityExpression":
        return in_list(lw, op, left, tail, sc, pos(c))
    raise Refusal(op, pos(c))


def in_list(lw: Lowerer, op: str, left: ir.Expr, tail: Any, sc: Scope, where: Pos) -> ir.Expr:
    exprs = list(tail.Expressions)
    if tail.Subquery is not None:
        if lw.is_tabular(tail.Subquery, sc.env):
            node = lw.tabular(tail.Subquery, sc.env)
            return _in_subquery(op, left, node, where)
        exprs = [tail.Subquery]
    items: list[ir.Expr] = []
    for x in exprs:
        xc = collapse(x)
        if len(exprs) == 1 and lw.is_tabular(xc, sc.env) and op in ("in", "!in", "in~", "!in~"):
            node = lw.tabular(xc, sc.env)
            return _in_subquery(op, left, node, where)
        e = lw.expr(x, sc)
        if isinstance(e, ir.Lit) and e.type == T.DYNAMIC:
            vals = e.value if isinstance(e.value, list) else [e.value]
            for v in vals:
                items.append(python_literal(v, where))
            continue
        if isinstance(e, ir.Call) and e.fn == "pack_array" and all(isinstance(a, ir.Lit) for a in e.args):
            items.extend(e.args)
            continue
        if e.type == T.DYNAMIC:
            if len(exprs) != 1:
                raise Refusal(f"{op} over a computed dynamic array among other values", pos(x))
            return _in_dynamic(op, left, e, where)
        items.append(e)
    if op in ("has_any", "has_all"):
        left = coerce_to(left, T.STRING, where)
        return ir.Call(T.BOOL, op, (left, *(coerce_to(i, T.STRING, where) for i in items)))
    if op in ("in~", "!in~"):
        left = coerce_to(left, T.STRING, where)
        return ir.Call(T.BOOL, op, (left, *(coerce_to(i, T.STRING, where) for i in items)))
    if left.type == T.DYNAMIC and items:
        left = coerce_to(left, scalar_kind(items[0].type), where)
    items = [coerce_pair(left, _literal_for(left, i), where) for i in items]
    return ir.Call(T.BOOL, op, (left, *items))


def _literal_for(left: ir.Expr, item: ir.Expr) -> ir.Expr:
    if isinstance(item, ir.Lit) and item.value is not None and left.type != T.DYNAMIC:
        return convert_literal_for(left.type, item)
    return item


def _in_dynamic(op: str, left: ir.Expr, arr: ir.Expr, where: Pos) -> ir.Expr:
    """Membership in a dynamic array computed at run time (a let of pack_array(...), a function
    parameter, toscalar(... make_set(...)))."""
    negated = op.startswith("!")
    base = op.lstrip("!")
    if base in ("has_any", "has_all"):
        call = ir.Call(T.BOOL, "__has_dyn", (coerce_to(left, T.STRING, where), arr,
                                             ir.Lit(T.BOOL, base == "has_all")))
    else:
        ci = base == "in~"
        kind = T.REAL if left.type in T.NUMERIC else T.STRING
        subject = left if kind == T.REAL else coerce_to(left, T.STRING, where)
        call = ir.Call(T.BOOL, "__in_dyn", (subject, arr, ir.Lit(T.BOOL, ci)))
    return ir.not_(call) if negated else call


def _in_subquery(op: str, left: ir.Expr, node: ir.Node, where: Pos) -> ir.Expr:
    if op not in ("in", "!in", "in~", "!in~"):
        raise Refusal(f"{op} with a subquery", where)
    vis = node.schema.visible
    if not vis:
        raise SemanticError("the subquery has no columns", where)
    if vis[0].type == T.DYNAMIC and left.type != T.DYNAMIC:
        # `x in (T | summarize make_list(y))`: the reference does not say whether the arrays of a tabular
        # expression's dynamic column are expanded into their values or compared whole; never guess which.
        raise Refusal(f"{op} (a tabular expression whose first column is dynamic)", where,
                      reason="the KQL reference does not say whether its arrays are expanded; mv-expand the "
                             "column first, or use toscalar() for one array")
    if left.type == T.DYNAMIC:
        left = coerce_to(left, scalar_kind(vis[0].type), where)
    return ir.InSubquery(T.BOOL, left, node, negated=op.startswith("!"), ci=op.endswith("~"))


def star_equality(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    raise Refusal("* == ...", pos(c))


def relational(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    left = lw.expr(c.Left, sc)
    if c.Right is None:
        return left
    return compare(c.OperatorToken.text, left, lw.expr(c.Right, sc), pos(c))


def fold(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    acc = lw.expr(c.Left, sc)
    for o in c.Operations:
        acc = arith(o.OperatorToken.text, acc, lw.expr(o.Right, sc), pos(o))
    return acc


def string_binary(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    left = lw.expr(c.Left, sc)
    if c.Operation is None:
        return left
    o = c.Operation
    op = ":" if o.HasOperator is not None else o.Operator.OperatorToken.text.lower()
    name = _STRING_OPS.get(op)
    if name is None:
        raise Refusal(f"string operator {op}", pos(c))
    right = lw.expr(o.Right, sc)
    if name == "matches regex" and not isinstance(right, ir.Lit):
        pass
    return ir.Call(T.BOOL, name, (coerce_to(left, T.STRING, pos(c)), coerce_to(right, T.STRING, pos(c))))


def string_star(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    op = c.Operator.OperatorToken.text.lower()
    name = _STRING_OPS.get(op)
    if name is None or sc.schema is None:
        raise Refusal(f"* {op}", pos(c))
    right = coerce_to(lw.expr(c.Right, sc), T.STRING, pos(c))
    cols = [col for col in sc.schema.visible if col.type in (T.STRING, T.DYNAMIC, T.GUID)]
    if not cols:
        return ir.Lit(T.BOOL, False)
    parts = [
        ir.Call(T.BOOL, name, (coerce_to(ir.Col(col.type, col.name), T.STRING, pos(c)), right)) for col in cols
    ]
    return parts[0] if len(parts) == 1 else ir.Call(T.BOOL, "or", tuple(parts))


def invocation(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    e = lw.expr(c.Expression, sc)
    if c.OperatorToken is not None and c.OperatorToken.text == "-":
        if isinstance(e, ir.Lit) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
            return ir.Lit(e.type, -e.value)
        return ir.Call(e.type, "neg", (e,))
    return e


def path(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    root = c.Expression
    ops = list(c.Operations)
    if not ops:
        return lw.expr(root, sc)
    rc = collapse(root)
    if not is_token(rc) and rule(rc) in ("IdentifierName", "KeywordName") and name_of(rc) in ("$left", "$right"):
        raise Refusal("$left/$right outside a join condition", pos(c))
    if sc.steps and not is_token(rc) and rule(rc) == "IdentifierName" and name_of(rc) in sc.steps:
        from kqlmagic_plus.language.compiler.lower.scan import step_ref

        return step_ref(sc.steps[name_of(rc)], ops, pos(c))
    base = lw.expr(root, sc)
    if base.type != T.DYNAMIC:
        raise SemanticError(f"path access (.name or [index]) needs a dynamic value, not {base.type}", pos(c))
    steps: list[ir.Expr] = []
    for o in ops:
        oc = collapse(o)
        r = rule(oc)
        if r == "FunctionCallOrPathPathOperation":
            steps.append(ir.Lit(T.STRING, name_of(oc.Name)))
        elif r in ("FunctionCallOrPathElementOperation", "LegacyFunctionCallOrPathElementOperation"):
            idx = lw.expr(oc.Element, sc)
            if idx.type == T.DYNAMIC:
                idx = coerce_to(idx, T.STRING, pos(oc))
            if idx.type not in (T.STRING, T.LONG, T.INT):
                raise SemanticError(f"an index must be a string or a number, not {idx.type}", pos(oc))
            steps.append(idx)
        else:
            raise Refusal(construct_name(oc), pos(oc))
    return ir.Call(T.DYNAMIC, "__path", (base, *steps))


def parenthesized(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    if lw.is_tabular(c.Expression, sc.env):
        raise SemanticError("a table where a scalar is expected (use toscalar(...))", pos(c))
    return lw.expr(c.Expression, sc)


def to_scalar(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    if not lw.is_tabular(c.Expression, sc.env):
        return lw.expr(c.Expression, sc)  # toscalar(2): a scalar is its own value
    node = lw.tabular(c.Expression, sc.env)
    vis = node.schema.visible
    if not vis:
        raise SemanticError("toscalar() of a table with no columns", pos(c))
    from kqlmagic_plus.language.compiler.probe import constant_scalar

    return constant_scalar(node, vis[0]) or ir.ScalarSubquery(vis[0].type, node)


def identifier(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    return name_ref(name_of(c), sc, pos(c))


def name_ref(name: str, sc: Scope, where: Pos) -> ir.Expr:
    if sc.schema is not None:
        col = sc.schema.get(name)
        if col is not None:
            return ir.Col(col.type, name)
    b = sc.env.lookup(name)
    if isinstance(b, ir.Expr):
        return b
    if isinstance(b, (ir.Node, FunctionDef)):
        raise SemanticError(f"{name!r} is a table or function where a scalar is expected", where)
    if sc.schema is None:
        raise SemanticError(f"unknown name {name!r}", where)
    raise SemanticError(no_column(name, sc.schema), where)


def function_call(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    fname = name_of(c.Name)
    args = list(c.Arguments)
    where = pos(c)
    b = sc.env.lookup(fname)
    if isinstance(b, FunctionDef):
        if b.tabular_params or lw.fn_is_tabular(b):
            raise SemanticError(f"{fname!r} returns a table where a scalar is expected", where)
        fenv = lw.bind_args(b, args, None, sc.env, where, scope=sc)
        lw.body_statements(b.body, fenv)
        return lw.expr(b.body.Expression, Scope(sc.schema, fenv, sc.aggs, sc.serialized))
    low = fname.lower() if fname.lower() in ("makeset", "makelist", "argmax", "argmin", "any") else fname
    agg = lookup_aggregate(low)
    if agg is not None and (sc.aggs or lookup_scalar(fname) is None):
        if not sc.aggs:
            raise SemanticError(f"{fname}() is an aggregation: use it in summarize", where)
        inner = Scope(sc.schema, sc.env, aggs=False, serialized=sc.serialized)
        ir_args = [lw.expr(a, inner) for a in args if rule(collapse(a)) != "StarExpression"]
        _check_arity(agg, len(ir_args), fname, where)
        ir_args = _apply_coercions(agg, ir_args, where)
        return ir.Agg(agg.result_type(ir_args), agg.name, tuple(ir_args))
    if fname in ("arg_max", "arg_min", "percentiles", "percentilesw"):
        raise Refusal(f"{fname} inside an expression", where)
    if fname == TABLE_CALL:  # the table() function, as preprocess() renames it
        raise SemanticError("table() returns a table where a scalar is expected", where)
    special = SPECIAL_FORMS.get(fname)
    if special is not None:
        return special(lw, args, sc, where)
    f = lookup_scalar(fname) or (lookup_operator(fname) if fname == "not" else None)
    if f is None:
        raise Refusal(f"{fname}()", where, "unknown function")
    if f.window and not sc.serialized:
        raise SemanticError(f"{fname}() needs serialized rows: add | serialize or | sort by before it", where)
    ir_args = [lw.expr(a, sc) for a in args]
    _check_arity(f, len(ir_args), fname, where)
    ir_args = _apply_coercions(f, ir_args, where)
    return ir.Call(f.result_type(ir_args), f.name, tuple(ir_args))


def count_call(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    if not sc.aggs:
        raise SemanticError("count() is an aggregation: use it in summarize", pos(c))
    if c.Expression is not None:
        e = lw.expr(c.Expression, Scope(sc.schema, sc.env))
        return ir.Agg(T.LONG, "count", (e,))
    return ir.Agg(T.LONG, "count", ())


def method_call(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    raise Refusal("method-style call (x.f())", pos(c))


def literal_expression(lw: Lowerer, c: Any, sc: Scope) -> ir.Expr:
    return literal(c)


# -- special forms: functions lowered here rather than from the catalog ------------------------------


def toscalar(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    if not lw.is_tabular(args[0], sc.env):
        return lw.expr(args[0], sc)
    node = lw.tabular(args[0], sc.env)
    from kqlmagic_plus.language.compiler.probe import constant_scalar

    return constant_scalar(node, node.schema.visible[0]) or ir.ScalarSubquery(node.schema.visible[0].type, node)


def columnifexists(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    name = literal(collapse(args[0])).value
    if sc.schema is not None and isinstance(name, str) and name in sc.schema:
        col = sc.schema.get(name)
        return ir.Col(col.type, name)  # type: ignore[union-attr]
    return lw.expr(args[1], sc)


def column_ifexists(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    return columnifexists(lw, args, sc, where)


def isnotempty(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    return ir.Call(T.BOOL, "isnotempty", (lw.expr(args[0], sc),))


def tostring(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    if len(args) != 1:
        raise SemanticError("tostring() takes one argument", where)
    return coerce_to(lw.expr(args[0], sc), T.STRING, where, explicit=True)


def iff(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    if len(args) != 3:
        raise SemanticError("iff() takes three arguments", where)
    cond = coerce_to(lw.expr(args[0], sc), T.BOOL, where)
    a, b = lw.expr(args[1], sc), lw.expr(args[2], sc)
    a, b = unify_pair(a, b, where)
    return ir.Call(a.type if a.type != T.NULL else b.type, "iff", (cond, a, b))


def case(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    vals = [lw.expr(a, sc) for a in args]
    if len(vals) < 3 or len(vals) % 2 == 0:
        raise SemanticError("case() takes condition/value pairs and an else value", where)
    branches = [*vals[1::2], vals[-1]]
    t = T.NULL
    for b in branches:
        t = T.unify(t, b.type) or conflict(t, b.type, where)
    out = []
    for i, v in enumerate(vals):
        if i % 2 == 0 and i != len(vals) - 1:
            out.append(coerce_to(v, T.BOOL, where))
        else:
            out.append(coerce_to(v, t, where) if v.type != t and t != T.NULL else v)
    return ir.Call(t, "case", tuple(out))


def datetime_call(lw: Lowerer, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
    raise Refusal("datetime() with a computed value", where)


# -- typing helpers --------------------------------------------------------------------------------


def _check_arity(f: Function, n: int, name: str, where: Pos) -> None:
    if not f.min_args <= n <= f.max_args:
        want = str(f.min_args) if f.min_args == f.max_args else f"{f.min_args} to {f.max_args}"
        raise SemanticError(f"{name}() takes {want} arguments, got {n}", where)


def _apply_coercions(f: Function, args: list[ir.Expr], where: Pos) -> list[ir.Expr]:
    if f.coerce is None:
        return args
    out = []
    for i, a in enumerate(args):
        target = f.coerce if isinstance(f.coerce, str) else (f.coerce[i] if i < len(f.coerce) else None)
        out.append(coerce_to(a, target, where) if target else a)
    return out


ExpressionRule = Callable[["Lowerer", Any, Scope], ir.Expr]
SpecialForm = Callable[["Lowerer", list[Any], Scope, Pos], ir.Expr]

#: Grammar rule -> its lowering.
EXPRESSIONS: dict[str, ExpressionRule] = {
    "NamedExpression": named,
    "LogicalOrExpression": logical_or,
    "LogicalAndExpression": logical_and,
    "EqualityExpression": equality,
    "StarEqualityExpression": star_equality,
    "RelationalExpression": relational,
    "AdditiveExpression": fold,
    "MultiplicativeExpression": fold,
    "StringBinaryOperatorExpression": string_binary,
    "StringStarOperatorExpression": string_star,
    "InvocationExpression": invocation,
    "FunctionCallOrPathPathExpression": path,
    "ParenthesizedExpression": parenthesized,
    "ToScalarExpression": to_scalar,
    "IdentifierName": identifier,
    "KeywordName": identifier,
    "ExtendedKeywordName": identifier,
    "EscapedName": identifier,
    "NamedFunctionCallExpression": function_call,
    "CountExpression": count_call,
    "DotCompositeFunctionCallExpression": method_call,
    "LongLiteralExpression": literal_expression,
    "IntLiteralExpression": literal_expression,
    "RealLiteralExpression": literal_expression,
    "DecimalLiteralExpression": literal_expression,
    "DateTimeLiteralExpression": literal_expression,
    "TimeSpanLiteralExpression": literal_expression,
    "BooleanLiteralExpression": literal_expression,
    "GuidLiteralExpression": literal_expression,
    "StringLiteralExpression": literal_expression,
    "DynamicLiteralExpression": literal_expression,
    "TypeLiteralExpression": literal_expression,
    "SignedLongLiteralExpression": literal_expression,
    "SignedRealLiteralExpression": literal_expression,
}

#: Function name (as written) -> its lowering, in place of the catalog's.
SPECIAL_FORMS: dict[str, SpecialForm] = {
    "toscalar": toscalar,
    "columnifexists": columnifexists,
    "column_ifexists": column_ifexists,
    "isnotempty": isnotempty,
    "tostring": tostring,
    "iff": iff,
    "iif": iff,
    "case": case,
    "datetime": datetime_call,
    "pack_all": pack_all_form,
    "bag_pack_columns": bag_pack_columns_form,
    "column_names_of": column_names_of_form,
}
