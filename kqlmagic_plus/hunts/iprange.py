"""Private address ranges as one SQL predicate that DuckDB and Spark evaluate alike."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.hunts.sql import Dialect

DEFAULT_PRIVATE = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                   "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10")

_V4 = "[0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}[.][0-9]{1,3}"
_HEXTET = "[0-9a-f]{1,4}"


def parse_ranges(items: Sequence[str], where: str = "private-ranges") -> tuple[list[tuple[int, int]],
                                                                               list[tuple[int, int]], list[str]]:
    """(IPv4 [lo, hi] integer ranges, IPv6 first-hextet [lo, hi] ranges, IPv6 single addresses)."""
    v4: list[tuple[int, int]] = []
    v6: list[tuple[int, int]] = []
    exact: list[str] = []
    for item in items:
        try:
            net = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise OptionError(f"{where}: {item!r} is not an address range (CIDR such as 10.0.0.0/8)") from None
        if net.version == 4:
            v4.append((int(net.network_address), int(net.broadcast_address)))
        elif net.prefixlen == 128:
            exact.append(net.network_address.compressed)
        elif net.prefixlen <= 16:
            first = int(net.network_address) >> 112
            v6.append((first, first + (1 << (16 - net.prefixlen)) - 1))
        else:
            raise OptionError(f"{where}: IPv6 range {item!r}: only prefixes up to /16 (or single /128 "
                              "addresses) are supported")
    return v4, v6, exact


def private_select(inner: str, col: str, items: Sequence[str], d: Dialect, keep: str) -> str:
    """SQL: ``SELECT keep, private FROM (inner)``, *private* TRUE when *col* (an IP address as text) lies in
    one of *items* (CIDRs). The address is matched and split once per row, in nested selects."""
    v4, v6, exact = parse_ranges(items)
    octets = [f"TRY_CAST(split_part(a4, '.', {i}) AS BIGINT)" for i in (1, 2, 3, 4)]
    ipint = f"({octets[0]} * 16777216 + {octets[1]} * 65536 + {octets[2]} * 256 + {octets[3]})"
    v4_test = " OR ".join(f"ipn BETWEEN {lo} AND {hi}" for lo, hi in v4) or "FALSE"
    v6_parts = [f"low = {d.lit(a)}" for a in exact]
    if v6:
        ranges = " OR ".join(f"{d.hex_int('h6')} BETWEEN {lo} AND {hi}" for lo, hi in v6)
        # "::1" has an empty first hextet (0); a hextet of fewer than 4 digits has leading zeros dropped.
        v6_parts.append(f"(({d.full_match('h6', _HEXTET)}) AND ({ranges}))")
        if any(lo == 0 for lo, _ in v6):
            v6_parts.append("h6 = ''")
    v6_test = " OR ".join(v6_parts) or "FALSE"
    return (f"SELECT {keep}, CASE WHEN v4 THEN ({v4_test}) WHEN v6 THEN ({v6_test}) ELSE FALSE END AS private "
            f"FROM (SELECT {keep}, v4, v6, CASE WHEN v4 THEN {ipint} END AS ipn, CASE WHEN v6 THEN lower({col}) "
            f"END AS low, CASE WHEN v6 THEN split_part(lower({col}), ':', 1) END AS h6 "
            f"FROM (SELECT {keep}, a4, a4 IS NOT NULL AS v4, "
            f"a4 IS NULL AND {col} IS NOT NULL AND instr({col}, ':') > 0 AS v6 "
            f"FROM (SELECT {keep}, {_ipv4_of(col, d)} AS a4 FROM ({inner}) i00) i0) i1) i2")


def _ipv4_of(col: str, d: Dialect) -> str:
    """The IPv4 address of *col*: itself when dotted IPv4, the embedded one of an IPv4-mapped IPv6 address
    (``::ffff:10.0.0.1``, how dual-stack sockets log IPv4 peers), else NULL."""
    mapped = f"substr({col}, 8)"
    return (f"CASE WHEN {col} IS NOT NULL AND {d.full_match(col, _V4)} THEN {col} "
            f"WHEN lower({col}) LIKE '::ffff:%' AND {d.full_match(mapped, _V4)} THEN {mapped} END")


def ipv4_int(col: str, d: Dialect) -> str:
    """SQL: the IPv4 address of *col* (dotted, or IPv4-mapped IPv6) as a BIGINT; NULL for anything else."""
    a4 = _ipv4_of(col, d)
    octets = [f"TRY_CAST(split_part({a4}, '.', {i}) AS BIGINT)" for i in (1, 2, 3, 4)]
    return f"({octets[0]} * 16777216 + {octets[1]} * 65536 + {octets[2]} * 256 + {octets[3]})"
