"""Large results made drawable, each saying so in a notice: min/max downsampling (spikes survive), bucket
means for stacked areas, one point per grid cell for scatter, or the first points of unsorted series."""

from __future__ import annotations

from typing import Any

from kqlmagic_plus.display.charts.constants import MAX_POINTS
from kqlmagic_plus.display.charts.roles import Build, Trace


def downsample(build: Build, traces: list[Trace], stacked: bool) -> list[Trace]:
    total = sum(len(t.x) for t in traces)
    if total <= MAX_POINTS:
        return traces
    per_trace = max(MAX_POINTS // max(len(traces), 1), 200)
    out = []
    for t in traces:
        if len(t.x) <= per_trace:
            out.append(t)
            continue
        if stacked:
            x, y = _bucket_mean(t.x, t.y, per_trace)
        else:
            x, y = _minmax(t.x, t.y, per_trace // 2)
        out.append(Trace(t.name, x, y, t.ycol, t.label, t.split))
    drawn = sum(len(t.x) for t in out)
    how = "the mean of each bucket" if stacked else "the minimum and maximum of each bucket"
    build.notices.append(f"downsampled for display: {total:,} points drawn as {drawn:,} ({how} kept); "
                         "every row is in .df")
    return out


def cap_points(build: Build, traces: list[Trace]) -> list[Trace]:
    total = sum(len(t.x) for t in traces)
    if total <= MAX_POINTS:
        return traces
    per_trace = max(MAX_POINTS // max(len(traces), 1), 200)
    build.notices.append(f"showing the first {per_trace:,} points of each series "
                         f"({total:,} in all); every row is in .df")
    return [Trace(t.name, t.x[:per_trace], t.y[:per_trace], t.ycol, t.label, t.split) for t in traces]


def thin_scatter(build: Build, traces: list[Trace]) -> list[Trace]:
    total = sum(len(t.x) for t in traces)
    if total <= MAX_POINTS:
        return traces
    per_trace = max(MAX_POINTS // max(len(traces), 1), 200)
    out = [t if len(t.x) <= per_trace else Trace(t.name, *_grid_thin(t.x, t.y, per_trace), t.ycol,
                                                 t.label, t.split) for t in traces]
    drawn = sum(len(t.x) for t in out)
    build.notices.append(f"thinned for display: {total:,} points drawn as {drawn:,} (one per occupied "
                         "grid cell, so outliers stay); every row is in .df")
    return out


def _as_int_axis(x: Any) -> Any:
    """x as int64 (datetimes as microseconds) for bucketing."""
    import numpy as np

    if np.issubdtype(x.dtype, np.datetime64):
        return x.astype("datetime64[us]").astype("int64").astype("float64")
    return x.astype("float64")


def _minmax(x: Any, y: Any, buckets: int) -> tuple[Any, Any]:
    """Keep the rows holding each bucket's minimum and maximum y (plus the first and last point).

    x must be sorted. Buckets are equal slices of the x range, so a spike anywhere survives.
    """
    import numpy as np
    import pandas as pd

    keep = ~np.isnan(y.astype("float64"))
    x, y = x[keep], y[keep]
    if len(x) <= 2 * buckets:
        return x, y
    xs = _as_int_axis(x)
    lo, hi = xs[0], xs[-1]
    span = hi - lo if hi > lo else 1.0
    bucket = np.minimum(((xs - lo) / span * buckets).astype("int64"), buckets - 1)
    ys = pd.Series(y, copy=False)
    grouped = ys.groupby(bucket, sort=True)
    picks = np.concatenate([grouped.idxmin().to_numpy(), grouped.idxmax().to_numpy(), [0, len(x) - 1]])
    idx = np.unique(picks)
    return x[idx], y[idx]


def _bucket_mean(x: Any, y: Any, buckets: int) -> tuple[Any, Any]:
    """Mean of y per equal x bucket, at the bucket's first x (stacked areas need shared x)."""
    import numpy as np
    import pandas as pd

    xs = _as_int_axis(x)
    lo, hi = xs.min(), xs.max()
    span = hi - lo if hi > lo else 1.0
    bucket = np.minimum(((xs - lo) / span * buckets).astype("int64"), buckets - 1)
    frame = pd.DataFrame({"b": bucket, "y": y.astype("float64")})
    means = frame.groupby("b", sort=True)["y"].mean()
    starts = lo + means.index.to_numpy() * span / buckets
    if np.issubdtype(x.dtype, np.datetime64):
        return starts.astype("int64").astype("datetime64[us]"), means.to_numpy()
    return starts, means.to_numpy()


def _grid_thin(x: Any, y: Any, budget: int) -> tuple[Any, Any]:
    """One point per occupied cell of a grid over the x/y ranges; the grid coarsens to fit *budget*."""
    import numpy as np

    xs = _as_int_axis(x)
    ys = y.astype("float64")
    ok = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys, x, y = xs[ok], ys[ok], x[ok], y[ok]
    grid = 512
    while True:
        gx = _cells(xs, grid)
        gy = _cells(ys, grid)
        _, first = np.unique(gx * (grid + 1) + gy, return_index=True)
        if len(first) <= budget or grid <= 8:
            idx = np.sort(first)
            return x[idx], y[idx]
        grid //= 2


def _cells(v: Any, grid: int) -> Any:
    import numpy as np

    lo, hi = float(v.min()), float(v.max())
    span = hi - lo if hi > lo else 1.0
    return np.minimum(((v - lo) / span * grid).astype("int64"), grid - 1)
