"""Progress of Spark stages and tasks while a job runs: a tqdm bar in notebooks, plain lines in a terminal.

Where the numbers come from depends on the session: a local session's status tracker (polled from a
thread, for the jobs of the cell's job group), the stage updates a Spark Connect server streams with
the results (a progress handler), or a Livy statement's ``progress`` fraction (Synapse). Nothing is
shown for jobs shorter than ``delay`` seconds, so quick cells stay quiet.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

#: Styles: "notebook" (tqdm widget or tqdm text), "terminal" (a line per change), "none".
STYLES = ("notebook", "terminal", "none")


@dataclass(frozen=True)
class StageSnapshot:
    stage_id: int
    num_tasks: int
    completed: int
    active: int = 0
    failed: int = 0


class ProgressSink:
    """Receives snapshots; draws nothing until a job has run for ``delay`` seconds."""

    def __init__(self, style: str = "terminal", *, delay: float = 0.5, interval: float = 1.0,
                 stream: TextIO | None = None, label: str = "Spark"):
        if style not in STYLES:
            raise ValueError(f"progress style {style!r}: use one of {', '.join(STYLES)}")
        self.style = style
        self.delay = delay
        self.interval = interval
        self.stream = stream
        self.label = label
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stages: dict[int, StageSnapshot] = {}
        self._fraction: float | None = None
        self._last_line = ""
        self._last_print = 0.0
        self._bar: Any = None
        self.lines_printed = 0
        self.closed = False

    # -- input --------------------------------------------------------------------------------------

    def stages(self, snapshots: list[StageSnapshot]) -> None:
        with self._lock:
            for s in snapshots:
                self._stages[s.stage_id] = s
            self._draw()

    def fraction(self, value: float) -> None:
        """Progress known only as a share (a Livy statement's ``progress``)."""
        with self._lock:
            self._fraction = max(0.0, min(1.0, float(value)))
            self._draw()

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
            # Stages that never ran by the end were skipped (their shuffle output was reused): not counted.
            self._stages = {k: s for k, s in self._stages.items() if s.completed or s.active or s.failed}
            if self._bar is not None:
                total, done, _ = self._totals()
                if total:
                    self._bar.total = total
                    self._bar.n = done
                self._bar.refresh()
                self._bar.close()
            elif self.lines_printed:
                total, done, _ = self._totals()
                self._print(f"{self.label}: finished, {done}/{total} tasks in {self._elapsed():.1f} s"
                            if total else f"{self.label}: finished in {self._elapsed():.1f} s")

    # -- drawing ------------------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _totals(self) -> tuple[int, int, int]:
        if self._fraction is not None and not self._stages:
            return 100, round(self._fraction * 100), 0
        total = sum(s.num_tasks for s in self._stages.values())
        done = sum(s.completed for s in self._stages.values())
        active = sum(s.active for s in self._stages.values())
        return total, done, active

    def _text(self) -> str:
        total, done, active = self._totals()
        if self._fraction is not None and not self._stages:
            return f"{self.label}: {done}% done · {self._elapsed():.0f} s"
        running = [s for s in self._stages.values() if s.completed < s.num_tasks]
        stage = (f"stage {running[0].stage_id}" if len(running) == 1
                 else f"{len(running)} stages" if running else f"{len(self._stages)} stages")
        act = f" ({active} running)" if active else ""
        return f"{self.label}: {stage} · {done}/{total} tasks{act} · {self._elapsed():.0f} s"

    def _draw(self) -> None:
        if self.style == "none" or self.closed or self._elapsed() < self.delay:
            return
        if self.style == "notebook":
            self._draw_bar()
            return
        text = self._text()
        now = time.monotonic()
        core = text.rsplit(" · ", 1)[0]
        if core != self._last_line and now - self._last_print >= self.interval:
            self._last_line = core
            self._last_print = now
            self._print(text)

    def _draw_bar(self) -> None:
        total, done, active = self._totals()
        if self._bar is None:
            self._bar = _make_bar(self.label, self.stream)
        if total and self._bar.total != total:
            self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(f"{active} running" if active else "", refresh=False)
        self._bar.refresh()

    def _print(self, text: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(text + "\n")
        stream.flush()
        self.lines_printed += 1


def _make_bar(label: str, stream: TextIO | None) -> Any:
    try:
        import ipywidgets  # noqa: F401 - only to know whether the widget bar can draw
        from tqdm.notebook import tqdm
    except ImportError:
        from tqdm import tqdm
    kwargs: dict[str, Any] = {"desc": label, "unit": "task", "leave": True}
    if stream is not None:
        kwargs["file"] = stream
    return tqdm(total=0, **kwargs)


# -- sources ----------------------------------------------------------------------------------------


class StatusTrackerWatcher:
    """Polls a local SparkContext's status tracker for the stages of one job group."""

    def __init__(self, sc: Any, group: str, sink: ProgressSink, interval: float = 0.25):
        self.sc = sc
        self.group = group
        self.sink = sink
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kqlmp-spark-progress", daemon=True)

    def start(self) -> StatusTrackerWatcher:
        if self.sink.style != "none":
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
            self.poll()
        self.sink.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:
                # The tracker is best effort: a stopped context must not break the cell.
                return

    def poll(self) -> None:
        tracker = self.sc.statusTracker()
        snaps = []
        for job_id in tracker.getJobIdsForGroup(self.group):
            job = tracker.getJobInfo(job_id)
            if job is None:
                continue
            for stage_id in job.stageIds:
                info = tracker.getStageInfo(stage_id)
                if info is None:
                    continue
                snaps.append(StageSnapshot(stage_id, info.numTasks, info.numCompletedTasks,
                                           info.numActiveTasks, info.numFailedTasks))
        if snaps:
            self.sink.stages(snaps)


class ConnectProgressHandler:
    """A Spark Connect progress handler feeding a sink (register it on the session for one job)."""

    def __init__(self, sink: ProgressSink):
        self.sink = sink

    def __call__(self, stages: Any = None, inflight_tasks: int = 0, operation_id: str | None = None,
                 done: bool = False) -> None:
        snaps = [StageSnapshot(s.stage_id, s.num_tasks, s.num_completed_tasks) for s in (stages or [])]
        if snaps:
            running = [s for s in snaps if s.completed < s.num_tasks]
            if running and inflight_tasks:
                # The server reports in-flight tasks for the whole operation, not per stage.
                first = running[0]
                snaps[snaps.index(first)] = StageSnapshot(first.stage_id, first.num_tasks, first.completed,
                                                          inflight_tasks)
            self.sink.stages(snaps)


def sink_factory(style: str, **kwargs: Any) -> Callable[[], ProgressSink]:
    """A function making a fresh sink per job, in *style*."""
    return lambda: ProgressSink(style, **kwargs)


@contextlib.contextmanager
def tracked_jobs(sc: Any, sink: ProgressSink) -> Iterator[None]:
    """The Spark jobs this thread starts inside the block, shown on *sink* (a job group of their own, watched
    by a :class:`StatusTrackerWatcher`): for callers that run Spark without a session of ours (the CLI hunt)."""
    tag = "kqlmp-" + uuid.uuid4().hex[:12]
    sc.setJobGroup(tag, "kqlmagic_plus", interruptOnCancel=True)
    watcher = StatusTrackerWatcher(sc, tag, sink).start()
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            watcher.stop()
        with contextlib.suppress(Exception):  # a JVM that died has no properties to reset
            for key in ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel"):
                sc.setLocalProperty(key, None)
