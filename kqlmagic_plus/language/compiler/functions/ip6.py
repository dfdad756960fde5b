"""IPv6 functions and IPv4 range lists, computed by Python UDFs (:mod:`kqlmagic_plus.language.udfs.ip`):
``ipv6_compare``, ``ipv6_is_match``, ``ipv6_is_in_range``, ``ipv6_is_in_any_range``,
``ipv4_range_to_cidr_list``.

A 128-bit address does not fit either engine's integers, and IPv6 text (``::`` compression, embedded
IPv4) is more than a regular expression should parse.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.sqlexpr import s
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


def _text(g: Any, a: ir.Expr) -> exp.Expression:
    return exp.Cast(this=g.e(a), to=g.d.sql_type(T.STRING))


def _compare(g: Any, c: ir.Call) -> exp.Expression:
    a, b = _text(g, c.args[0]), _text(g, c.args[1])
    if len(c.args) == 3:
        return udfs.call("ipv6_compare_prefix", a, b, exp.Cast(this=g.e(c.args[2]), to=g.d.sql_type(T.LONG)))
    return udfs.call("ipv6_compare", a, b)


@scalar("ipv6_compare", (2, 3), T.LONG, coerce=("string", "string", "long"))
def _ipv6_compare(g, c, pred):
    return _compare(g, c)


@scalar("ipv6_is_match", (2, 3), T.BOOL, coerce=("string", "string", "long"))
def _ipv6_is_match(g, c, pred):
    return exp.EQ(this=_compare(g, c), expression=exp.Literal.number(0))


@scalar("ipv6_is_in_range", 2, T.BOOL, coerce="string")
def _ipv6_is_in_range(g, c, pred):
    return udfs.call("ipv6_is_in_range", _text(g, c.args[0]), _text(g, c.args[1]))


@scalar("ipv6_is_in_any_range", (2, 999), T.BOOL, coerce=("string",))
def _ipv6_is_in_any_range(g, c, pred):
    ip = _text(g, c.args[0])
    parts: list[exp.Expression] = []
    for a in c.args[1:]:
        if a.type == T.DYNAMIC:
            # The whole array goes to Python as JSON: Spark runs no Python UDF inside a lambda.
            parts.append(udfs.call("ipv6_is_in_any_range", ip, g.d.dyn_to_json_text(g.e(a))))
        elif a.type in (T.STRING, T.NULL):
            parts.append(udfs.call("ipv6_is_in_range", ip, _text(g, a)))
        else:
            raise Refusal(f"ipv6_is_in_any_range of a {a.type}", reason="it takes strings or a dynamic array")
    return exp.or_(*parts)


@scalar("ipv4_range_to_cidr_list", 2, T.DYNAMIC, coerce="string")
def _ipv4_range_to_cidr_list(g, c, pred):
    out = udfs.call("ipv4_range_to_cidr_list", _text(g, c.args[0]), _text(g, c.args[1]))
    return g.d.dyn_from_json_text(exp.Coalesce(this=out, expressions=[s("[]")]))
