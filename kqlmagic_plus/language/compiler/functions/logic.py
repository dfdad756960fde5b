"""Conditionals and emptiness: ``iff``, ``case``, ``coalesce``, ``max_of``/``min_of``, ``isempty``, ``isnull``."""

from __future__ import annotations

from sqlglot import exp

from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import empty_if_null, same_type
from kqlmagic_plus.language.compiler.sqlexpr import case, fn, paren, s

TABLE = Table()
scalar = TABLE.scalar


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
    x = g.e(a)  # emitted even where unused: a refusal inside the argument must still refuse
    if a.type in (T.STRING,):
        return exp.false()  # a KQL string is never null
    if a.type == T.DYNAMIC:
        return g.d.dyn_is(x, "null")
    return exp.Is(this=x, expression=exp.null())


@scalar("isnotnull", 1, T.BOOL, aliases=("notnull",))
def _isnotnull(g, c, pred):
    return exp.Not(this=paren(_isnull(g, c, pred)))
