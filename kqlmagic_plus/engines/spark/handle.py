"""A Spark session as this package sees it: where it runs (:class:`Target`) and what every kind of
session can do (:class:`SparkHandle`: start, run a cell, cancel, status, stop).

Local and Spark Connect sessions (:mod:`.sessions`) and Synapse sessions (:mod:`.livy`) implement it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.engines.spark.progress import ProgressSink

#: Settings every session gets (a --conf or the user's own session may add to them).
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.showConsoleProgress": "false",
}
#: Runtime settings applied to sessions this package did not create (Connect, adopted local ones).
RUNTIME_CONF = {"spark.sql.session.timeZone": "UTC"}
Say = Callable[[str], None]


@dataclass(frozen=True)
class Target:
    """Where a session runs. ``display`` and ``key`` hold no secret; ``spec`` may."""

    kind: str  # local | connect | synapse
    spec: str = field(repr=False)
    display: str = ""
    key: str = ""
    #: ``local`` without a thread count (and the default): any running local session will do.
    any_local: bool = False

    def __str__(self) -> str:
        return self.display


class SparkHandle(ABC):
    """One session on one target: start, run a cell, cancel, status, stop."""

    kind = "spark"

    def __init__(self, target: Target, conf: Mapping[str, str] | None = None):
        self.target = target
        self.conf = dict(conf or {})
        self.started_at: float | None = None
        self.start_seconds: float | None = None
        #: The bound lake (a :class:`kqlmagic_plus.engines.spark.lake.SparkLake`), registered again on restart.
        self.lake: Any = None
        self.cells = 0
        self.lost: str | None = None
        #: Warnings of the last lake registration (files that vanished while views were built).
        self.lake_warnings: list[str] = []
        #: Set when the session replaces a lost one: the replacement notice already said it starts.
        self.announced = False

    @property
    def spark(self) -> Any:
        """The PySpark session object, for targets that have one in this process (else None)."""
        return None

    @abstractmethod
    def start(self, say: Say) -> None: ...

    def replacement(self) -> str:
        """What starting this session again is called in the notice that replaces a lost one."""
        return "starting a new one"

    @abstractmethod
    def alive(self) -> str | None:
        """None when usable; otherwise why not (shown in the notice when the session is replaced)."""

    @abstractmethod
    def run_cell(self, mode: str, code: str, *, namespace: dict[str, Any] | None, limit: int | None,
                 to_lake: str | None, overwrite: bool, lake_spec: dict[str, Any] | None,
                 progress: Callable[[], ProgressSink], what: str = "",
                 tables: Iterable[str] | None = None) -> dict[str, Any]:
        """Register *lake_spec* (when given), run *code*; the dict of :func:`.remote.run_cell`."""

    @abstractmethod
    def list_folders(self, uri: str) -> list[str]: ...

    def cancel(self) -> None:  # noqa: B027 - sessions whose cells are interruptible need nothing
        """Cancel what the session runs now (from another thread)."""

    @abstractmethod
    def stop(self) -> None: ...

    def status(self) -> dict[str, Any]:
        up = time.time() - self.started_at if self.started_at else 0.0
        return {"target": self.target.display, "kind": self.kind, "state": self.alive() or "ready",
                "uptime_s": round(up, 1), "cells": self.cells,
                "lake": self.lake.display if self.lake is not None else None}
