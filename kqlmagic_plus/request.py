"""What one query asks for: the unit that flows from the magic (or API, or CLI) to an engine, and the
window and durations a user writes for it (``--timespan 7d``, ``--start/--end``, ``--cache 1h``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kqlmagic_plus.errors import OptionError


@dataclass(frozen=True)
class TimeWindow:
    """An absolute UTC window ``[start, end)``; either side may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def __str__(self) -> str:
        s = self.start.isoformat() if self.start else "-inf"
        e = self.end.isoformat() if self.end else "+inf"
        return f"[{s}, {e})"


@dataclass(frozen=True)
class Request:
    """A query and everything that decides its rows.

    Engines read only this; nothing here knows where it came from (magic, API, CLI).
    """

    query: str
    #: Values for the query's parameters, by KQL name (bound per engine, never spliced as Python repr).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Names the engine may resolve as tables (a notebook namespace, or a dict given to the API).
    namespace: Mapping[str, Any] | None = None
    #: The query window, when given by options (``--timespan``, ``--start/--end``).
    window: TimeWindow | None = None
    timeout: float | None = None
    #: The instant ``now()``/``ago()`` resolve to. Pinned by the cache so that a cached result and
    #: its key agree; None lets the engine use its own clock.
    now: datetime | None = None
    dry_run: bool = False
    #: Extra engine-specific options that change rows (query properties, workspaces, ...).
    options: Mapping[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Request:
        return replace(self, **changes)


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in a KQL-style timespan literal such as ``90s``, ``15m``, ``1h``, ``7d`` or ``1.5h``."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    for u in sorted(units, key=len, reverse=True):
        if t.endswith(u):
            num = t[: -len(u)]
            try:
                return float(num) * units[u]
            except ValueError:
                break
    raise OptionError(f"{option}: {text!r} is not a duration (write e.g. 30s, 15m, 1h, 7d)")


def make_window(timespan: str | None, start: str | datetime | None, end: str | datetime | None
                ) -> TimeWindow | None:
    """A window from ``--timespan`` (ending now) or ``--start``/``--end``."""
    if timespan and (start or end):
        raise OptionError("give either --timespan or --start/--end, not both")
    if timespan:
        now = datetime.now(UTC)
        return TimeWindow(now - timedelta(seconds=parse_duration(timespan, "--timespan")), now)
    if start or end:
        s = _as_datetime(start, "--start") if start else None
        e = _as_datetime(end, "--end") if end else None
        if s and e and s >= e:
            raise OptionError(f"--start ({s.isoformat()}) must be before --end ({e.isoformat()})")
        return TimeWindow(s, e)
    return None


def _as_datetime(value: str | datetime, option: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise OptionError(f"{option} {value!r} is not an ISO-8601 date or datetime (e.g. 2024-05-01T12:00Z)"
                          ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
