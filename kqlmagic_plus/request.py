"""What one query asks for: the unit that flows from the magic (or API, or CLI) to an engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any


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
