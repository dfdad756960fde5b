"""Time zones by the IANA database (Python's ``zoneinfo``): ``datetime_utc_to_local`` and
``datetime_local_to_utc``, over microseconds since the epoch (so no engine's session time zone touches them).

A local time that occurs twice (clocks set back) or never (clocks set forward) is read with the offset in force
after the change (``fold=1``): the reference's page maps 02:00 on the night Brussels skips that hour to 00:00 UTC.
An unknown time zone name gives null.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kqlmagic_plus.language.udfs import udf

_EPOCH = dt.datetime(1970, 1, 1)


@functools.lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _us(d: dt.datetime) -> int:
    return (d - _EPOCH) // dt.timedelta(microseconds=1)


@udf("datetime_utc_to_local", ("long", "string"), "long")
def utc_to_local(us: int, tz: str) -> int | None:
    z = zone(tz)
    if z is None:
        return None
    utc = (_EPOCH + dt.timedelta(microseconds=us)).replace(tzinfo=dt.UTC)
    return _us(utc.astimezone(z).replace(tzinfo=None))


@udf("datetime_local_to_utc", ("long", "string"), "long")
def local_to_utc(us: int, tz: str) -> int | None:
    z = zone(tz)
    if z is None:
        return None
    local = (_EPOCH + dt.timedelta(microseconds=us)).replace(tzinfo=z, fold=1)
    return _us(local.astimezone(dt.UTC).replace(tzinfo=None))
