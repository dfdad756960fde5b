"""IPv4 addresses in free text: ``has_ipv4``, ``has_ipv4_prefix``, ``has_any_ipv4``, ``has_any_ipv4_prefix``;
and ``format_ipv4`` / ``format_ipv4_mask``.

An address found in text is an *entity*: a valid dotted quad delimited by characters that are not
letters or digits (Kusto's rule). "54127.0.0.1" holds no entity 127.0.0.1, and "127.0.0.256" holds none
at all, so a prefix "127.0." does not match it either. A dot is a delimiter only where the dotted run
ends, so "1.127.0.0.1" holds no 127.0.0.1. The search is one regular expression (RE2 and Java read it
alike, without look-around): the needle, then the rest of a valid address, between delimiters.
"""

from __future__ import annotations

import re
from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import any_element, empty_if_null, re_quote, re_quote_sql
from kqlmagic_plus.language.compiler.functions.ip import ipv4_long, ipv4_prefix
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, fn, n, s

TABLE = Table()
scalar = TABLE.scalar

_OCT = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_BEFORE = r"(?:^|[^0-9A-Za-z.])"
_AFTER = r"(?:$|[^0-9A-Za-z.]|\.$|\.[^0-9A-Za-z])"
_FULL = re.compile(rf"^{_OCT}(?:\.{_OCT}){{3}}$")
_PREFIX = re.compile(rf"^(?:{_OCT}\.){{1,3}}$")


def _rest(octets_missing: int) -> str:
    """The regex completing a prefix ending with a dot that lacks *octets_missing* octets."""
    return _OCT + rf"(?:\.{_OCT}){{{octets_missing - 1}}}" if octets_missing > 1 else _OCT


def _pattern_lit(needle: str, prefix: bool) -> str | None:
    """The search pattern for a literal needle, or None when it is not a valid address (prefix)."""
    if _FULL.match(needle):
        return _BEFORE + re_quote(needle) + _AFTER
    if prefix and _PREFIX.match(needle):
        return _BEFORE + re_quote(needle) + _rest(4 - needle.count(".")) + _AFTER
    return None


def _pattern_sql(g: Any, needle: exp.Expression, prefix: bool) -> exp.Expression:
    """The search pattern built at run time for a computed needle; null when it is not valid."""
    full = g.d.regex_match(needle, s(_FULL.pattern))
    quoted = re_quote_sql(g, needle)
    whens = [(full, exp.Concat(expressions=[s(_BEFORE), quoted, s(_AFTER)]))]
    if prefix:
        dots = exp.Sub(this=fn("length", needle), expression=fn("length", fn("replace", needle, s("."), s(""))))
        for k in (1, 2, 3):
            rest = _rest(4 - k)
            cond = exp.and_(g.d.regex_match(needle, s(_PREFIX.pattern)), exp.EQ(this=dots, expression=n(k)))
            whens.append((cond, exp.Concat(expressions=[s(_BEFORE), quoted, s(rest + _AFTER)])))
    return case(whens)


def _found(g: Any, text: exp.Expression, needle: ir.Expr | exp.Expression, prefix: bool) -> exp.Expression:
    """Whether *text* holds the needle as (the start of) an address entity; false for an invalid needle."""
    if isinstance(needle, ir.Lit):
        pat = _pattern_lit(str(needle.value or ""), prefix)
        return exp.false() if pat is None else g.d.regex_match(text, s(pat))
    sql = needle if isinstance(needle, exp.Expression) else empty_if_null(g.e(needle))
    return exp.Coalesce(this=g.d.regex_match(text, _pattern_sql(g, sql, prefix)), expressions=[exp.false()])


@scalar("has_ipv4", 2, T.BOOL, coerce="string")
def _has_ipv4(g, c, pred):
    return _found(g, empty_if_null(g.e(c.args[0])), c.args[1], False)


@scalar("has_ipv4_prefix", 2, T.BOOL, coerce="string")
def _has_ipv4_prefix(g, c, pred):
    return _found(g, empty_if_null(g.e(c.args[0])), c.args[1], True)


@scalar("has_any_ipv4", (2, 999), T.BOOL, coerce=("string",))
def _has_any_ipv4(g, c, pred):
    text = empty_if_null(g.e(c.args[0]))
    return any_element(g, list(c.args[1:]), lambda x: _found(g, text, x, False), "has_any_ipv4")


@scalar("has_any_ipv4_prefix", (2, 999), T.BOOL, coerce=("string",))
def _has_any_ipv4_prefix(g, c, pred):
    text = empty_if_null(g.e(c.args[0]))
    return any_element(g, list(c.args[1:]), lambda x: _found(g, text, x, True), "has_any_ipv4_prefix")


# -- formatting ------------------------------------------------------------------------------------

def _masked_address(g: Any, c: ir.Call) -> tuple[exp.Expression, exp.Expression, exp.Expression]:
    """(address with the host bits cleared, prefix length, valid) for format_ipv4(ip [, mask])."""
    text = g.e(c.args[0])
    v = ipv4_long(g, text)
    bits = ipv4_prefix(g, text)
    if len(c.args) == 2:
        bits = fn("least", bits, g.e(c.args[1]))
        valid_mask = exp.and_(exp.GTE(this=g.e(c.args[1]), expression=n(0)),
                              exp.LTE(this=g.e(c.args[1]), expression=n(32)))
    else:
        valid_mask = exp.true()
    block = cast_(fn("pow", n(2), exp.Sub(this=n(32), expression=bits)), "BIGINT")
    base = exp.Mul(this=exp.IntDiv(this=v, expression=block), expression=block)
    valid = exp.and_(exp.Not(this=exp.Is(this=v, expression=exp.null())), valid_mask)
    return base, bits, valid


def _dotted(g: Any, v: exp.Expression) -> exp.Expression:
    octets = [exp.Mod(this=exp.IntDiv(this=v, expression=n(256 ** (3 - i))), expression=n(256)) for i in range(4)]
    texts: list[exp.Expression] = []
    for i, o in enumerate(octets):
        if i:
            texts.append(s("."))
        texts.append(cast_(o, "VARCHAR" if g.d.name == "duckdb" else "STRING"))
    return exp.Concat(expressions=texts)


@scalar("format_ipv4", (1, 2), T.STRING, coerce=("string", "long"))
def _format_ipv4(g, c, pred):
    base, _, valid = _masked_address(g, c)
    return exp.Coalesce(this=case([(valid, _dotted(g, base))]), expressions=[s("")])


@scalar("format_ipv4_mask", (1, 2), T.STRING, coerce=("string", "long"))
def _format_ipv4_mask(g, c, pred):
    base, bits, valid = _masked_address(g, c)
    text = exp.Concat(expressions=[_dotted(g, base), s("/"),
                                   cast_(bits, "VARCHAR" if g.d.name == "duckdb" else "STRING")])
    return exp.Coalesce(this=case([(valid, text)]), expressions=[s("")])
