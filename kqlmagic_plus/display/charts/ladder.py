"""ladderchart (a bar per row from start to end) and timepivot (events on a time line per series)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.display.charts.constants import CATEGORICAL, HEIGHT, MAX_BARS, MAX_POINTS, NUMERIC, TEMPORAL
from kqlmagic_plus.display.charts.frame import Frame, describe
from kqlmagic_plus.display.charts.roles import Build, series_groups
from kqlmagic_plus.display.charts.text import card_text, esc, esc_array
from kqlmagic_plus.errors import ChartError

if TYPE_CHECKING:
    import plotly.graph_objects as go


def ladderchart(build: Build, frame: Frame) -> go.Figure:
    """Each row a bar from its start to its end (the last two columns), labelled by the others."""
    import numpy as np
    import plotly.graph_objects as go

    cols = frame.columns
    if len(cols) < 3:
        raise ChartError("ladderchart needs a label column and two more (start, end) as the last two")
    start, end = cols[-2], cols[-1]
    kinds = {frame.types[start], frame.types[end]}
    if not (kinds <= TEMPORAL or kinds <= NUMERIC):
        raise ChartError(f"ladderchart: the last two columns ({start}, {end}) must both be datetimes "
                         f"or both numbers ({describe(frame)})")
    series = [c for c in build.spec.series if c not in (start, end)]
    label_cols = [c for c in cols[:-2] if c not in series] or series
    labels = frame.df[label_cols[0]].astype(str)
    for c in label_cols[1:]:
        labels = labels + ", " + frame.df[c].astype(str)
    labels = esc_array(labels.to_numpy())
    s = frame.df[start].to_numpy()
    e = frame.df[end].to_numpy()
    temporal = kinds <= TEMPORAL
    if temporal:
        base = s
        width = (e - s).astype("timedelta64[us]").astype("int64") / 1000.0
    else:
        base, width = s, e - s
    if len(labels) > MAX_BARS:
        build.notices.append(f"showing the first {MAX_BARS:,} of {len(labels):,} rows")
    fig = go.Figure()
    for label, idx in series_groups(build, frame, series):
        idx = idx[idx < MAX_BARS]
        fig.add_trace(go.Bar(y=labels[idx], x=width[idx], base=base[idx], orientation="h",
                             name=esc(label) if label is not None else f"{esc(start)} → {esc(end)}",
                             hovertext=[f"{esc(card_text(a))} → {esc(card_text(b))}"
                                        for a, b in zip(s[idx], e[idx], strict=True)]))
    fig.update_layout(barmode="overlay", showlegend=bool(series))
    fig.update_yaxes(autorange="reversed", type="category",
                     title_text=build.spec.ytitle if build.spec.ytitle is not None else "")
    fig.update_xaxes(type="date" if temporal else "linear",
                     title_text=build.spec.xtitle if build.spec.xtitle is not None else "")
    fig.update_layout(height=max(HEIGHT, min(40 + 22 * len(np.unique(labels[:MAX_BARS])), 1600)))
    return fig


def timepivot(build: Build, frame: Frame) -> go.Figure:
    """Events on a time line, one row per series value; hover shows the event's other columns."""
    import numpy as np
    import plotly.graph_objects as go

    x = build.spec.xcolumn or next(iter(frame.of(TEMPORAL)), None)
    if x is None or frame.types[x] not in TEMPORAL:
        raise ChartError(f"timepivot needs a datetime column ({describe(frame)})")
    series = list(build.spec.series) or frame.of(CATEGORICAL, {x})[:1]
    groups = series_groups(build, frame, series)
    xs = frame.df[x].to_numpy()
    others = [c for c in frame.columns if c not in (x, *series)][:6]
    n = len(xs)
    fig = go.Figure()
    if n > MAX_POINTS:
        return _timepivot_binned(build, frame, x, groups)
    hover = [""] * n
    if others:
        cols = [frame.df[c].to_numpy() for c in others]
        hover = ["<br>".join(f"{esc(c)}={esc(card_text(v[i]))}"
                             for c, v in zip(others, cols, strict=True)) for i in range(n)]
    hover = np.array(hover, dtype=object)
    for label, idx in groups:
        row = esc(label) if label is not None else "events"
        fig.add_trace(go.Scatter(x=xs[idx], y=[row] * len(idx), mode="markers", name=row,
                                 marker={"size": 9, "symbol": "line-ns-open", "line": {"width": 2}},
                                 hovertext=hover[idx], hoverinfo="x+text+name"))
    _timepivot_layout(build, fig, x, series, len(groups))
    return fig


def _timepivot_binned(build: Build, frame: Frame, x: str, groups: list[tuple[str | None, Any]]) -> go.Figure:
    import numpy as np
    import plotly.graph_objects as go

    xs = frame.df[x].to_numpy().astype("datetime64[us]").astype("int64")
    lo, hi = int(xs.min()), int(xs.max())
    buckets = max(MAX_POINTS // max(len(groups), 1), 50)
    width = max((hi - lo) / buckets, 1.0)
    fig = go.Figure()
    drawn = 0
    for label, idx in groups:
        b = np.minimum(((xs[idx] - lo) / width).astype("int64"), buckets - 1)
        uniq, counts = np.unique(b, return_counts=True)
        centers = (lo + (uniq + 0.5) * width).astype("int64").astype("datetime64[us]")
        row = esc(label) if label is not None else "events"
        fig.add_trace(go.Scatter(x=centers, y=[row] * len(uniq), mode="markers", name=row,
                                 marker={"size": 5 + 12 * np.sqrt(counts / counts.max())},
                                 hovertext=[f"{c:,} events" for c in counts], hoverinfo="x+text+name"))
        drawn += len(uniq)
    build.notices.append(f"{len(xs):,} events binned into {drawn:,} time buckets (marker size = count); "
                         "every row is in .df")
    _timepivot_layout(build, fig, x, [], len(groups))
    return fig


def _timepivot_layout(build: Build, fig: go.Figure, x: str, series: list[str], rows: int) -> None:
    fig.update_yaxes(type="category", autorange="reversed",
                     title_text=build.spec.ytitle if build.spec.ytitle is not None else
                     ", ".join(esc(s) for s in series))
    fig.update_xaxes(title_text=build.spec.xtitle if build.spec.xtitle is not None else esc(x))
    fig.update_layout(showlegend=False, height=max(300, min(120 + 28 * rows, 1600)))
