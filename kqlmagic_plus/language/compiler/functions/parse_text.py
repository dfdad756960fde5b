"""Parsers of paths, URL queries, IPv6 text and versions, run as Python (:mod:`kqlmagic_plus.language.udfs.parse`):
``parse_path``, ``parse_urlquery``, ``parse_ipv6``, ``parse_ipv6_mask``, ``parse_version``.

A call whose arguments are all constants is evaluated here, at compile time; any other becomes a UDF call.
``parse_version`` is a decimal of up to 32 digits, more than the DECIMAL(38, 18) other decimals are held in: it is
held as DECIMAL(38, 0), which compares exactly (a double would make 1.2.3.4 equal 1.2.3.5).
"""

from __future__ import annotations

import decimal
import json

from sqlglot import exp

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import empty_if_null
from kqlmagic_plus.language.compiler.sqlexpr import cast_
from kqlmagic_plus.language.udfs import parse as py

TABLE = Table()
scalar = TABLE.scalar

_VERSION_SQL = "DECIMAL(38, 0)"


def _const_text(a: ir.Expr) -> str | None:
    if isinstance(a, ir.Lit) and a.type in (T.STRING, T.NULL):
        return a.value if isinstance(a.value, str) else ""
    return None


def _text(g, a: ir.Expr) -> exp.Expression:
    return empty_if_null(exp.Cast(this=g.e(a), to=g.d.sql_type(T.STRING)))


@scalar("parse_path", 1, T.DYNAMIC, coerce="string")
def _parse_path(g, c, pred):
    text = _const_text(c.args[0])
    if text is not None:
        return g.e(ir.Lit(T.DYNAMIC, py.path_parts(text)))
    return g.d.dyn_from_json_text(udfs.call("parse_path", _text(g, c.args[0])))


@scalar("parse_urlquery", 1, T.DYNAMIC, coerce="string", aliases=("parseurlquery",))
def _parse_urlquery(g, c, pred):
    text = _const_text(c.args[0])
    if text is not None:
        return g.e(ir.Lit(T.DYNAMIC, json.loads(json.dumps(py.url_query(text)))))
    return g.d.dyn_from_json_text(udfs.call("parse_urlquery", _text(g, c.args[0])))


@scalar("parse_ipv6", 1, T.STRING, coerce="string")
def _parse_ipv6(g, c, pred):
    text = _const_text(c.args[0])
    if text is not None:
        return g.e(ir.Lit(T.STRING, py.canonical6(text)))
    return empty_if_null(udfs.call("parse_ipv6", _text(g, c.args[0])))


@scalar("parse_ipv6_mask", 2, T.STRING, coerce=("string", "long"))
def _parse_ipv6_mask(g, c, pred):
    text, prefix = c.args
    if _const_text(text) is not None and isinstance(prefix, ir.Lit) and isinstance(prefix.value, int):
        return g.e(ir.Lit(T.STRING, py.canonical6(_const_text(text) or "", prefix.value)))
    bits = exp.Cast(this=g.e(prefix), to=g.d.sql_type(T.LONG))
    return empty_if_null(udfs.call("parse_ipv6_mask", _text(g, text), bits))


@scalar("parse_version", 1, T.DECIMAL, coerce="string")
def _parse_version(g, c, pred):
    text = _const_text(c.args[0])
    if text is not None:
        digits = py.version_number(text)
        if digits is None:
            return cast_(exp.null(), _VERSION_SQL)
        return cast_(exp.Literal.number(str(decimal.Decimal(digits))), _VERSION_SQL)
    return cast_(udfs.call("parse_version", _text(g, c.args[0])), _VERSION_SQL)

