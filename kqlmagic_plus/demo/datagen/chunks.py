"""One table's rows, an hour of TimeGenerated at a time, with their arrival times, handed to the writer.

Every random draw comes from a numpy generator seeded from ``seed`` and the (table, day, hour) of its
chunk, so the same arguments write the same bytes whatever the thread count.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _DAY, _DIURNAL, _HOUR, _MAX_EARLY, _MIN, _TABLE_ID, _US, _norm
from kqlmagic_plus.demo.datagen.identity import _signin_background
from kqlmagic_plus.demo.datagen.jsonlines import render_json_lines
from kqlmagic_plus.demo.datagen.linux import _syslog_rows
from kqlmagic_plus.demo.datagen.network import _csl_background
from kqlmagic_plus.demo.datagen.windows import _security_background

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from kqlmagic_plus.demo.datagen.environment import _Env
    from kqlmagic_plus.demo.datagen.writer import _Writer


def _background(name: str, env: _Env, rng: np.random.Generator, ts: Any) -> pa.Table:
    if name == "CommonSecurityLog":
        return _csl_background(env, rng, ts)
    if name == "SecurityEvent":
        return _security_background(env, rng, ts)
    if name == "SigninLogs":
        return _signin_background(env, rng, ts)
    if name == "Syslog":
        return _syslog_rows(env, rng, ts)
    raise AssertionError(name)


def _generate_table(name: str, env: _Env, seed: int, day0_us: int, days: int, per_day: int, plants: Any,
                    late_fraction: float, writer: _Writer, workers: int) -> None:
    import numpy as np

    tid = _TABLE_ID[name]
    diurnal = _norm(_DIURNAL)
    p_ts, p_rows = plants if plants is not None else (np.zeros(0, np.int64), None)
    kql_types = dict(_kql_types(name))

    def chunk(day: int, hour: int, count: int) -> list[tuple[Any, Any]]:
        """The rows of one hour of TimeGenerated, as segments sorted by arrival time."""
        import pyarrow as pa

        rng = np.random.default_rng([seed, tid, day, hour])
        start = day0_us + day * _DAY + hour * _HOUR
        segments = []
        if count:
            ts = start + np.sort(rng.integers(0, _HOUR, size=count))
            arrival = ts + _latency(rng, count, late_fraction)
            # Rows are built in arrival order, so the writer never has to move rendered text.
            order = np.argsort(arrival, kind="stable")
            segments.append((arrival[order], _background(name, env, rng, ts[order])))
        lo, hi = np.searchsorted(p_ts, [start, start + _HOUR])
        if hi > lo:
            arrival = p_ts[lo:hi] + _latency(rng, int(hi - lo), late_fraction)
            order = np.argsort(arrival, kind="stable")
            segments.append((arrival[order], p_rows.slice(lo, hi - lo).take(pa.array(order))))
        if writer.fmt == "json":
            return [(a, render_json_lines(t, kql_types)) for a, t in segments]
        # Plain columns: concatenating and taking dictionary columns with differing dictionaries gave
        # Parquet files whose bytes varied from run to run; the Parquet writer dictionary-encodes anyway.
        return [(a, _plain(t)) for a, t in segments]

    jobs = []
    for day in range(days):
        day_start = day0_us + day * _DAY
        lo, hi = np.searchsorted(p_ts, [day_start, day_start + _DAY])
        background = max(0, per_day - int(hi - lo))
        counts = np.random.default_rng([seed, tid, day, 99]).multinomial(background, diurnal)
        jobs.extend((day, hour, int(counts[hour])) for hour in range(24))

    depth = max(1, workers) + 1
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        it = iter(jobs)
        for job in it:
            pending.append((job, pool.submit(chunk, *job)))
            if len(pending) >= depth:
                break
        while pending:
            (day, hour, _), fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(chunk, *nxt)))
            for arrival, payload in fut.result():
                writer.add(arrival, payload)
            # Later chunks hold TimeGenerated >= hour_end, so nothing arrives before hour_end - _MAX_EARLY.
            writer.flush(before=day0_us + day * _DAY + (hour + 1) * _HOUR - _MAX_EARLY)
    writer.flush(before=None)


def _plain(table: pa.Table) -> pa.Table:
    import pyarrow as pa

    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)


def _kql_types(name: str) -> list[tuple[str, str]]:
    from kqlmagic_plus.lake import schema_for

    return schema_for(name)


def _latency(rng: np.random.Generator, n: int, late_fraction: float) -> Any:
    """Microseconds from TimeGenerated to arrival in the workspace."""
    import numpy as np

    lat = (20 * _US + rng.exponential(40.0, n) * _US).astype(np.int64)
    lat = np.minimum(lat, 5 * _MIN)
    late = rng.random(n) < late_fraction
    lat[late] += rng.integers(10 * _MIN, 36 * _HOUR, int(late.sum()))
    early = rng.random(n) < 0.001
    lat[early] = -rng.integers(0, _MAX_EARLY, int(early.sum()))
    return lat
