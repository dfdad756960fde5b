"""IPv6 addresses and IPv4 ranges, by Python's ``ipaddress``: ``ipv6_compare``, ``ipv6_is_match``,
``ipv6_is_in_range``, ``ipv6_is_in_any_range`` and ``ipv4_range_to_cidr_list``.

An IPv4 address stands for its IPv4-mapped IPv6 address (``::ffff:a.b.c.d``), its prefix counted 96 bits
further, as the KQL reference compares them. Text that is not an address (or a prefix out of range) gives null.
"""

from __future__ import annotations

import ipaddress
import json

from kqlmagic_plus.language.udfs import udf

_MAPPED = 0xFFFF << 32


def parse6(text: str) -> tuple[int, int] | None:
    """(the 128-bit address, its prefix length) of an IPv6 or IPv4 text with an optional ``/prefix``."""
    addr, _, bits = text.strip().partition("/")
    try:
        a = ipaddress.ip_address(addr.strip())
    except ValueError:
        return None
    width = 32 if a.version == 4 else 128
    if bits:
        if not bits.strip().isdigit() or int(bits) > width:
            return None
        prefix = int(bits)
    else:
        prefix = width
    if a.version == 4:
        return _MAPPED | int(a), prefix + 96
    return int(a), prefix


def _top(value: int, bits: int) -> int:
    return value >> (128 - bits)


def compare6(a: str, b: str, prefix: int | None = None) -> int | None:
    x, y = parse6(a), parse6(b)
    if x is None or y is None:
        return None
    bits = min(x[1], y[1], 128 if prefix is None else max(0, min(128, int(prefix))))
    p, q = _top(x[0], bits), _top(y[0], bits)
    return (p > q) - (p < q)


@udf("ipv6_compare", ("string", "string"), "long")
def ipv6_compare(a: str, b: str) -> int | None:
    return compare6(a, b)


@udf("ipv6_compare_prefix", ("string", "string", "long"), "long")
def ipv6_compare_prefix(a: str, b: str, prefix: int) -> int | None:
    return compare6(a, b, prefix)


def in_range6(ip: str, rng: str) -> bool | None:
    x, r = parse6(ip), parse6(rng)
    if x is None or r is None:
        return None
    return _top(x[0], r[1]) == _top(r[0], r[1])


@udf("ipv6_is_in_range", ("string", "string"), "bool")
def ipv6_is_in_range(ip: str, rng: str) -> bool | None:
    return in_range6(ip, rng)


@udf("ipv6_is_in_any_range", ("string", "string"), "bool")
def ipv6_is_in_any_range(ip: str, ranges_json: str) -> bool | None:
    """*ranges_json*: a dynamic array of range texts, as JSON."""
    try:
        ranges = json.loads(ranges_json)
    except ValueError:
        return None
    if not isinstance(ranges, list):
        ranges = [ranges]
    if parse6(ip) is None:
        return None
    return any(in_range6(ip, r) for r in ranges if isinstance(r, str))


@udf("ipv4_range_to_cidr_list", ("string", "string"), "dynamic")
def ipv4_range_to_cidr_list(start: str, end: str) -> str | None:
    try:
        a, b = ipaddress.IPv4Address(start.strip()), ipaddress.IPv4Address(end.strip())
    except ValueError:
        return None
    if b < a:
        return "[]"
    return json.dumps([str(net) for net in ipaddress.summarize_address_range(a, b)])
