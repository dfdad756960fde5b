"""Files records in the export's folders: under the 5-minute (or hour) interval in which they arrived."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _LAYOUTS, _dt

if TYPE_CHECKING:
    import pyarrow as pa


class _Writer:
    """Files records under the folder of their arrival time, once no later chunk can add to it.

    Segments are (arrival times, payload) pairs sorted by arrival; a folder's file is the
    concatenation of its runs from each segment, in the order the segments were added.
    """

    def __init__(self, container: str, fmt: str, layout: str, max_rows: int | None, pool: Any = None):
        self.container = container
        self.fmt = fmt
        #: Parquet encoding releases the GIL: files are written on this pool while chunks are built.
        self.pool = pool
        self.pending_writes: list[Any] = []
        self.step, self.stem = _LAYOUTS[layout]
        self.max_rows = max_rows
        self.segments: list[tuple[Any, Any]] = []
        self.rows = self.files = self.bytes = 0

    def add(self, arrival: Any, payload: Any) -> None:
        if len(arrival):
            self.segments.append((arrival, payload))

    def flush(self, before: int | None) -> None:
        """Write every folder that ends at or before *before* (all of them when None)."""
        import numpy as np
        import pyarrow as pa

        runs: dict[int, list[tuple[Any, int, int]]] = {}
        kept: list[tuple[Any, Any]] = []
        boundary = None if before is None else before // self.step * self.step
        for arrival, payload in self.segments:
            folder = arrival // self.step * self.step
            cut = len(folder) if boundary is None else int(np.searchsorted(folder, boundary))
            if cut:
                starts = np.flatnonzero(np.diff(folder[:cut], prepend=folder[0] - 1))
                ends = np.append(starts[1:], cut)
                for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
                    runs.setdefault(int(folder[lo]), []).append((payload, lo, hi))
            if cut < len(folder):
                kept.append((arrival[cut:], payload.slice(cut)))
        for when in sorted(runs):
            self._write(when, runs[when])
        # Bound the files in flight (and the tables they hold), and surface write errors early.
        while len(self.pending_writes) > 64 or (before is None and self.pending_writes):
            self.bytes += self.pending_writes.pop(0).result()
        if len(kept) > 1 or (kept and len(kept[0][0]) * 4 < len(self.segments[-1][0])):
            # Copy what waits (the next minutes, and late rows) so a big chunk's buffers can go.
            arrival = np.concatenate([a for a, _ in kept])
            order = pa.array(np.argsort(arrival, kind="stable"))
            if self.fmt == "json":
                payload = pa.concat_arrays([p.cast(pa.large_string()) for _, p in kept]).take(order)
            else:
                payload = pa.concat_tables([p for _, p in kept], promote_options="default").take(order)
            kept = [(np.sort(arrival, kind="stable"), payload)]
        self.segments = kept

    def _write(self, when_us: int, runs: list[tuple[Any, int, int]]) -> None:
        import pyarrow as pa

        when = _dt(when_us)
        base = os.path.join(self.container, f"y={when.year:04d}", f"m={when.month:02d}", f"d={when.day:02d}",
                            f"h={when.hour:02d}", f"m={when.minute:02d}")
        os.makedirs(base, exist_ok=True)
        for part, pieces in enumerate(_split_rows(runs, self.max_rows)):
            path = os.path.join(base, f"{self.stem}{f'_{part}' if part else ''}.{self.fmt}")
            if self.fmt == "json":
                with open(path, "wb") as f:
                    for payload, lo, hi in pieces:
                        data = _text_bytes(payload, lo, hi)
                        f.write(data)
                        self.bytes += len(data)
            else:
                table = pa.concat_tables([p.slice(lo, hi - lo) for p, lo, hi in pieces], promote_options="default")
                if self.pool is None:
                    self.bytes += _write_parquet(table, path)
                else:
                    self.pending_writes.append(self.pool.submit(_write_parquet, table, path))
            self.files += 1
            self.rows += sum(hi - lo for _, lo, hi in pieces)


def _write_parquet(table: pa.Table, path: str) -> int:
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd")
    return os.path.getsize(path)


def _split_rows(runs: list[tuple[Any, int, int]], max_rows: int | None) -> list[list[tuple[Any, int, int]]]:
    """The runs of one folder cut into files of at most *max_rows* rows (overflow blobs)."""
    if not max_rows:
        return [runs]
    files: list[list[tuple[Any, int, int]]] = [[]]
    room = max_rows
    for payload, lo, hi in runs:
        while lo < hi:
            if not room:
                files.append([])
                room = max_rows
            take = min(room, hi - lo)
            files[-1].append((payload, lo, lo + take))
            lo += take
            room -= take
    return files


def _text_bytes(arr: pa.Array, lo: int, hi: int) -> memoryview:
    """The UTF-8 bytes of rows lo..hi of a string array, without copying them."""
    import numpy as np
    import pyarrow as pa

    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    size = np.dtype(width).itemsize
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], width, count=len(arr) + 1, offset=arr.offset * size)
    return memoryview(bufs[2])[int(offsets[lo]):int(offsets[hi])]
