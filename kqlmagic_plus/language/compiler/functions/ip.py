"""IPv4 functions: ``parse_ipv4``, ``ipv4_is_in_range``, ``ipv4_compare``, ``ipv4_is_private`` ...

An address is computed as a number from its four octets; a range compares the numbers with the host
bits dropped.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import big
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, fn, n, s, try_cast_

TABLE = Table()
scalar = TABLE.scalar


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


@scalar("ipv4_is_in_any_range", (2, 999), T.BOOL, coerce=("string",))
def _ipv4_in_any(g, c, pred):
    from kqlmagic_plus.language.compiler.functions.common import any_element

    ip = g.e(c.args[0])

    def within(r: ir.Expr | exp.Expression) -> exp.Expression:
        rng = r if isinstance(r, exp.Expression) else g.e(r)
        pfx = ipv4_prefix(g, rng)
        return exp.EQ(this=_masked(g, ipv4_long(g, ip), pfx), expression=_masked(g, ipv4_long(g, rng), pfx))

    # The ranges are strings or a dynamic array of them (the page's own examples pass an array).
    return any_element(g, list(c.args[1:]), within, "ipv4_is_in_any_range")


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
