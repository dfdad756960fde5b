"""Allowlists for the beacon hunt: sources, destinations (addresses or CIDRs), ports, and rows of a table
or CSV file, turned into one SQL predicate over a pair (``s``, ``d``, ``p``) that every engine evaluates
alike. Applied to pairs before anything is scored or counted toward a destination's degree.

A list item ``@path`` reads entries from that file, one a line (``#`` starts a comment). A table
(pandas, Arrow, or a CSV file's path) has any of the columns SourceIP, DestinationIP, DestinationPort;
each row allows the pairs that match all of its non-empty cells.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from typing import Any

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.hunts.iprange import ipv4_int
from kqlmagic_plus.hunts.sql import Dialect

TABLE_COLUMNS = ("SourceIP", "DestinationIP", "DestinationPort")
#: More entries than this would make a predicate too long to plan quickly; a join would be the tool then.
MAX_ENTRIES = 5_000


def expand(items: Sequence[str], where: str) -> tuple[str, ...]:
    """*items* with each ``@path`` replaced by the entries of that file."""
    out: list[str] = []
    for item in items:
        if item.startswith("@"):
            path = item[1:]
            try:
                with open(os.path.expanduser(path), encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError as exc:
                raise OptionError(f"{where}: cannot read {path!r}: {exc.strerror or exc}") from None
            out.extend(x for x in (line.split("#", 1)[0].strip() for line in lines) if x)
        else:
            out.append(item)
    return tuple(out)


def table_rows(value: Any, where: str = "beacon --allowlist") -> tuple[tuple[str, str, str], ...]:
    """(source, destination, port) text per row of a table or CSV file ('' for an empty cell)."""
    if value is None:
        return ()
    if isinstance(value, str):
        import pyarrow.csv as pcsv

        path = os.path.expanduser(value)
        if not os.path.isfile(path):
            raise OptionError(f"{where}: {value!r} is not a file (a CSV with SourceIP, DestinationIP, "
                              "DestinationPort columns, or pass a DataFrame)")
        try:
            value = pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
                column_types={c: "string" for c in TABLE_COLUMNS}, strings_can_be_null=True))
        except Exception as exc:  # pyarrow's CSV errors: a bad file is the user's input, said in one line
            raise OptionError(f"{where}: {value!r} is not a readable CSV file: "
                              f"{str(exc).splitlines()[0]}") from None
    if hasattr(value, "to_pylist") and hasattr(value, "column_names"):
        names, records = list(value.column_names), value.to_pylist()
    elif hasattr(value, "to_dict") and hasattr(value, "columns"):
        names, records = [str(c) for c in value.columns], value.to_dict("records")
    else:
        raise OptionError(f"{where}: give a DataFrame, an Arrow table or a CSV file's path")
    if not set(names) & set(TABLE_COLUMNS):
        raise OptionError(f"{where}: the table needs a SourceIP, DestinationIP or DestinationPort column "
                          f"(it has {', '.join(names[:10])})")
    rows = []
    for r in records:
        cells = tuple("" if r.get(c) is None or r.get(c) != r.get(c) else str(r.get(c)).strip()
                      for c in TABLE_COLUMNS)
        if any(cells):
            rows.append(cells)
    return tuple(rows)


def _ip_test(col: str, entry: str, d: Dialect, where: str) -> str:
    try:
        net = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise OptionError(f"{where}: {entry!r} is not an address or CIDR range") from None
    if net.version == 4:
        return f"{ipv4_int(col, d)} BETWEEN {int(net.network_address)} AND {int(net.broadcast_address)}"
    if net.prefixlen != 128:
        raise OptionError(f"{where}: IPv6 range {entry!r}: give single IPv6 addresses")
    return f"lower({col}) = {d.lit(net.network_address.compressed)}"


def _port_test(col: str, entry: str, where: str) -> str:
    try:
        number = float(entry)
        if not number.is_integer():
            raise ValueError(entry)
        port = int(number)
    except ValueError:
        raise OptionError(f"{where}: {entry!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise OptionError(f"{where}: {entry!r} is not a port number (0-65535)")
    return f"{col} = {port}"


def predicate(d: Dialect, *, sources: Sequence[str] = (), destinations: Sequence[str] = (),
              ports: Sequence[str] = (), rows: Sequence[tuple[str, str, str]] = ()) -> str | None:
    """SQL TRUE for an allowed pair (columns ``s``, ``d``, ``p``), or None when nothing is allowed."""
    sources = expand(sources, "beacon --allow-sources")
    destinations = expand(destinations, "beacon --allow-destinations")
    ports = expand(ports, "beacon --allow-ports")
    if len(sources) + len(destinations) + len(ports) + len(rows) > MAX_ENTRIES:
        raise OptionError(f"beacon allowlists: more than {MAX_ENTRIES:,} entries; group addresses into CIDR "
                          "ranges")
    tests = [_ip_test("s", e, d, "beacon --allow-sources") for e in sources]
    tests += [_ip_test("d", e, d, "beacon --allow-destinations") for e in destinations]
    tests += [_port_test("p", e, "beacon --allow-ports") for e in ports]
    for src, dst, port in rows:
        parts = ([_ip_test("s", src, d, "beacon --allowlist")] if src else []) + \
                ([_ip_test("d", dst, d, "beacon --allowlist")] if dst else []) + \
                ([_port_test("p", port, "beacon --allowlist")] if port else [])
        tests.append("(" + " AND ".join(parts) + ")")
    return " OR ".join(f"({t})" for t in tests) if tests else None
