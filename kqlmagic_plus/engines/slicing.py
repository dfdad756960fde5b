"""``--split-by 1d``: one query over a long window, run as time slices and merged, with nothing hidden.

Each slice is its own request (the window cut into ``[start, start + step)`` pieces): it goes through the
same path as any query (the cache, the engine's retries), at most :data:`CONCURRENCY` at a time, each on
its own copy of the engine. The Result keeps, per slice, whether it was complete, truncated, partial or
failed (``Result.stats["slices"]``); a slice that is not complete is a red notice, and an error under
``--fail-on-partial``. How the slices' rows merge is :mod:`.slice_plan`'s decision.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import KqlMagicPlusError, OptionError, QueryCancelledError, RemoteError

if TYPE_CHECKING:
    from kqlmagic_plus.engines.base import Engine
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import Result

#: Slices in flight at once: the services throttle a workspace's concurrent queries (Log Analytics
#: allows 5 per user), and 4 leaves one for the notebook's other cells.
CONCURRENCY = 4
#: More slices than this is a typo (``--split-by 1m`` over a year), not a plan.
MAX_SLICES = 2000
#: Engines that apply the request's window to every table the query reads (so slices do not overlap).
SLICEABLE = frozenset({"loganalytics", "sentinellake"})


def slice_windows(start: datetime, end: datetime, step: float) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` in pieces of *step* seconds, the last one shorter."""
    out = []
    at = start
    width = timedelta(seconds=step)
    while at < end:
        out.append((at, min(at + width, end)))
        at = at + width
    return out


def run_sliced(engine: Engine, request: Request, split_by: str,
               run_one: Callable[[Engine, Request], Result]) -> Result:
    """*request* over its window, in slices of *split_by* (``1d``, ``6h``), merged per the query's plan.

    *run_one* runs one slice's request on one engine (the cache and Ctrl-C path of :func:`api.run`).
    """
    from kqlmagic_plus.engines.slice_plan import plan
    from kqlmagic_plus.request import TimeWindow, parse_duration

    step = parse_duration(str(split_by), "--split-by")
    if step <= 0:
        raise OptionError("--split-by needs a positive duration, e.g. 1d or 6h")
    if engine.name not in SLICEABLE:
        raise OptionError(f"--split-by slices the request's time window, which the {engine.name} connection does "
                          "not apply to the query's tables (slices would overlap); it works with loganalytics:// "
                          "and sentinellake:// connections")
    window = request.window
    if window is None or window.start is None or window.end is None:
        raise OptionError("--split-by needs the query's time window: add --timespan 30d, or --start and --end")
    windows = slice_windows(window.start, window.end, step)
    if len(windows) > MAX_SLICES:
        raise OptionError(f"--split-by {split_by} cuts the window into {len(windows):,} slices (at most "
                          f"{MAX_SLICES:,}); choose a longer slice")
    the_plan = plan(request.query)
    started = time.perf_counter()
    options = {k: v for k, v in request.options.items() if k != "split_by"}
    requests = [request.with_(query=the_plan.slice_query, window=TimeWindow(s, e), options=options)
                for s, e in windows]
    outcomes: list[Result | KqlMagicPlusError | None] = [None] * len(requests)
    in_flight: set[Any] = set()
    stopped = threading.Event()

    def work(index: int) -> None:
        if stopped.is_set():
            return
        mine = _engine_copy(engine)
        in_flight.add(mine)
        try:
            outcomes[index] = run_one(mine, requests[index])
        except KqlMagicPlusError as exc:
            outcomes[index] = exc
        finally:
            in_flight.discard(mine)
            if mine is not engine:
                mine.close()

    pool = ThreadPoolExecutor(max_workers=min(CONCURRENCY, len(requests)), thread_name_prefix="kqlmagic-plus-slice")
    try:
        futures = [pool.submit(work, i) for i in range(len(requests))]
        for f in futures:
            f.result()
    except KeyboardInterrupt:
        # Ctrl-C: no new slice starts, the running ones are abandoned (their connections closed).
        stopped.set()
        for mine in list(in_flight):
            mine.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
        raise QueryCancelledError("cancelled (Ctrl-C) while slices ran; the connection is still usable") from None
    pool.shutdown(wait=True)
    return _merged(engine, request, the_plan, windows, outcomes, started)


def _engine_copy(engine: Engine) -> Engine:
    """An engine of its own for one slice: the same connection and credential, its own client and worker."""
    from kqlmagic_plus.engines.remote import RemoteEngine, Runner

    if not isinstance(engine, RemoteEngine):
        return engine
    mine = copy.copy(engine)
    mine._client = None
    mine._runner = Runner()
    if hasattr(mine, "_network"):
        mine._network = None
    return mine


def _status(outcome: Any) -> tuple[str, str]:
    if isinstance(outcome, KqlMagicPlusError):
        return "failed", outcome.message
    if outcome is None:
        return "failed", "no answer"
    if outcome.truncated:
        return "truncated", next((w for w in outcome.warnings if "truncat" in w.lower()), "truncated")
    partial = [w for w in outcome.warnings if w.startswith("Partial result")]
    if partial:
        return "partial", partial[0]
    return "complete", ""


def _merged(engine: Engine, request: Request, the_plan: Any, windows: list[tuple[datetime, datetime]],
            outcomes: list[Any], started: float) -> Result:
    import pyarrow as pa

    from kqlmagic_plus.engines.remote import render_spec
    from kqlmagic_plus.results import Result

    slices = []
    for (s, e), outcome in zip(windows, outcomes, strict=True):
        status, detail = _status(outcome)
        rows = outcome.row_count if isinstance(outcome, Result) else 0
        slices.append({"start": s.isoformat(), "end": e.isoformat(), "status": status, "rows": rows,
                       "detail": detail, "from_cache": bool(getattr(outcome, "from_cache", False))})
    bad = [x for x in slices if x["status"] != "complete"]
    if bad and request.options.get("fail_on_partial"):
        raise RemoteError(f"{len(bad)} of {len(slices)} slices did not come back complete and --fail-on-partial "
                          "is set: " + "; ".join(f"{x['start']} .. {x['end']}: {x['status']} ({x['detail']})"
                                                 for x in bad[:5]))
    good = [o for o in outcomes if isinstance(o, Result) and o.columns]
    if not good:
        first_error = next((o for o in outcomes if isinstance(o, KqlMagicPlusError)), None)
        if first_error is not None:
            raise RemoteError(f"every one of the {len(slices)} slices failed; the first: {first_error.message}")
        table, kql_types = pa.table({}), []
    else:
        kql_types = list(good[0].kql_types)
        table = pa.concat_tables([o.table.select(good[0].columns) for o in good], promote_options="permissive") \
            if len(good) > 1 else good[0].table
        table = _merge_rows(table, the_plan)
    warnings = []
    seen = set()
    for o in outcomes:
        for w in getattr(o, "warnings", []) or []:
            if w not in seen and not w.startswith(("Partial result", "Log Analytics truncated")):
                seen.add(w)
                warnings.append(w)
    counts = {k: sum(1 for x in slices if x["status"] == k) for k in ("complete", "truncated", "partial", "failed")}
    summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
    warnings.insert(0, f"Ran as {len(slices)} slices of --split-by over {windows[0][0].isoformat()} .. "
                       f"{windows[-1][1].isoformat()}: {summary}.")
    for x in bad:
        warnings.append(f"Slice {x['start']} .. {x['end']} {x['status'].upper()}: {x['detail']}")
    stats = {"slices": slices, "split_by": the_plan.merge}
    first = good[0] if good else None
    return Result(table=table, kql_types=kql_types, query=request.query, connection=engine.target,
                  engine=engine.name, elapsed=time.perf_counter() - started,
                  truncated=any(x["status"] in ("truncated", "failed") for x in slices), warnings=warnings,
                  executed=first.executed if first else the_plan.slice_query,
                  parameters=dict(first.parameters) if first else {},
                  render=render_spec(None, request.query, {}), stats=stats)


def _merge_rows(table: Any, the_plan: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    if the_plan.merge == "summarize":
        keys = names[:the_plan.key_count]
        values = names[the_plan.key_count:]
        if len(values) != len(the_plan.aggregates):
            raise RemoteError(f"the slices answered {len(values)} aggregate columns for the "
                              f"{len(the_plan.aggregates)} aggregates of the query; the slices cannot be merged")
        if keys:
            grouped = table.group_by(keys, use_threads=False).aggregate(
                [(v, fn) for v, fn in zip(values, the_plan.aggregates, strict=True)])
            grouped = grouped.rename_columns([_agg_name(n, values, the_plan.aggregates) for n in
                                              grouped.column_names])
            table = grouped.select(names).cast(table.schema)
        else:
            arrays = [pa.array([getattr(pc, fn)(table.column(v)).as_py()], type=table.schema.field(v).type)
                      for v, fn in zip(values, the_plan.aggregates, strict=True)]
            table = pa.Table.from_arrays(arrays, schema=table.schema)
    elif the_plan.merge == "count":
        total = sum(v or 0 for v in table.column(names[0]).to_pylist())
        table = pa.Table.from_arrays([pa.array([total], type=table.schema.field(names[0]).type)],
                                     schema=table.schema)
    elif the_plan.merge == "distinct":
        table = table.group_by(names, use_threads=False).aggregate([]).select(names).cast(table.schema)
    if the_plan.order:
        missing = [c for c, _, _ in the_plan.order if c not in names]
        if missing:
            raise RemoteError(f"the slices' rows have no column {missing[0]!r} to sort the merged rows by")
        keys = [(c, "descending" if desc else "ascending", "at_start" if first else "at_end")
                for c, desc, first in the_plan.order]
        try:  # pyarrow >= 25 places nulls per key, as KQL does
            order = pc.sort_indices(table, sort_keys=keys)
        except (TypeError, ValueError, pa.ArrowInvalid):
            order = pc.sort_indices(table, sort_keys=[k[:2] for k in keys], null_placement=keys[0][2])
        table = table.take(order)
    if the_plan.limit is not None:
        table = table.slice(0, the_plan.limit)
    return table


def _agg_name(name: str, values: list[str], fns: list[str]) -> str:
    for v, fn in zip(values, fns, strict=True):
        if name == f"{v}_{fn}":
            return v
    return name


def offer(result: Result, request: Request, engine_name: str) -> None:
    """Under a truncated answer of a sliceable service, the remedy: the --split-by that would fit."""
    if not result.truncated or engine_name not in SLICEABLE or request.options.get("split_by"):
        return
    window = request.window
    span = (window.end - window.start).total_seconds() if window and window.start and window.end else None
    suggestion = "1d"
    if span:
        for word, seconds in (("1h", 3600), ("6h", 21600), ("1d", 86400), ("7d", 604800)):
            if span / seconds >= 4:
                suggestion = word
    result.warnings.append(f"The service caps one answer (500,000 rows / 64 MB): run the query again with "
                           f"--split-by {suggestion} (and a --timespan or --start/--end window) to fetch it in time "
                           "slices, each checked for completeness.")
