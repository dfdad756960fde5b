"""The firewall events (CommonSecurityLog) the beacon plans read, as one SELECT: both the hunt's own plan and
the Sentinel notebook's computation start from the same rows, columns the input lacks read as NULL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.hunts.sql import Dialect, time_filter


def events_select(v: Mapping[str, Any], d: Dialect, cols: Any, window: tuple[int, int] | None, *,
                  source_port: bool = False) -> str:
    """``t, s, d, p, proto, vendor, sent, recv`` (and ``sport`` with *source_port*) of the events in *window*,
    filtered by the hunt's ``vendor`` / ``activity`` parameters."""

    def col(name: str, cast: str | None = None) -> str:
        if name not in cols:
            return f"CAST(NULL AS {cast or 'STRING'})"
        ref = d.ident(name)
        return f"TRY_CAST({ref} AS {cast})" if cast else ref

    t, where = time_filter(d, cols, window, keep_null=True)
    for param, column in (("vendor", "DeviceVendor"), ("activity", "Activity")):
        if v[param] is not None:
            if column not in cols:
                raise OptionError(f"beacon --{param}: the input has no {column} column")
            where.append(f"lower({d.ident(column)}) = lower({d.lit(v[param])})")
    sport = ""
    if source_port:
        sport = f", {col('SourcePort', 'BIGINT') if 'SourcePort' in cols else 'CAST(0 AS BIGINT)'} AS sport"
    return f"""
        SELECT {t} AS t, {col('SourceIP')} AS s, {col('DestinationIP')} AS d,
               TRY_CAST({d.ident('DestinationPort')} AS BIGINT) AS p,
               {col('Protocol')} AS proto, {col('DeviceVendor')} AS vendor,
               {col('SentBytes', 'BIGINT')} AS sent, {col('ReceivedBytes', 'BIGINT')} AS recv{sport}
        FROM @src {'WHERE ' + ' AND '.join(where) if where else ''}"""
