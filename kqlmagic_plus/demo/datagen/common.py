"""What every part of the generator agrees on: the tables, time units, export layouts and workspace names."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

TABLES = ("SigninLogs", "SecurityEvent", "CommonSecurityLog", "Syslog")
#: Share of the events of a day each table gets (renormalised over the tables asked for).
_SHARE = {"CommonSecurityLog": 0.60, "SecurityEvent": 0.25, "Syslog": 0.10, "SigninLogs": 0.05}
_TABLE_ID = {name: i for i, name in enumerate(TABLES)}

_US = 1_000_000
_MIN = 60 * _US
_HOUR = 3600 * _US
_DAY = 86_400 * _US
#: A record's TimeGenerated is at most this far ahead of its arrival (fast source clocks).
_MAX_EARLY = 90 * _US
_LAYOUTS = {"5m": (5 * _MIN, "PT05M"), "1h": (_HOUR, "PT1H")}
#: Relative event volume per UTC hour (office hours are busier).
_DIURNAL = (4, 3, 3, 3, 3, 4, 6, 9, 12, 14, 15, 15, 14, 15, 15, 14, 13, 11, 9, 8, 7, 6, 5, 5)

SUBSCRIPTION = "7d2a94c1-3f0e-4b8a-9d61-5c2e8f1a0b37"
RESOURCE_GROUP = "soc-rg"
WORKSPACE = "sentinel-ws"


def _day_us(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * _US


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def _iso(us: int) -> str:
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _norm(weights: Sequence[float]) -> Any:
    import numpy as np

    w = np.asarray(weights, dtype=float)
    return w / w.sum()
