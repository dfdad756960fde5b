"""Line-like charts: timechart, linechart, areachart, stackedareachart, scatterchart, anomalychart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.display.charts.constants import CATEGORICAL, WEBGL_POINTS
from kqlmagic_plus.display.charts.frame import Frame
from kqlmagic_plus.display.charts.layout import add_trace, axes, split_figure, splits
from kqlmagic_plus.display.charts.roles import Build, Roles, Trace, assign_roles, kind_option, series_groups, xy_traces
from kqlmagic_plus.display.charts.sampling import cap_points, downsample, thin_scatter
from kqlmagic_plus.display.charts.text import esc

if TYPE_CHECKING:
    import plotly.graph_objects as go


def line_family(build: Build, frame: Frame) -> go.Figure:
    import plotly.graph_objects as go

    roles = assign_roles(build, frame)
    chart = build.chart
    x_type = frame.types[roles.x]
    sortable = x_type not in CATEGORICAL
    traces = xy_traces(build, frame, roles, sort_x=chart != "scatterchart")
    kind = kind_option(build, ("default", "unstacked", "stacked", "stacked100"))
    stacked = chart == "stackedareachart" or (chart == "areachart" and kind in ("stacked", "stacked100"))
    if chart == "stackedareachart" and kind == "stacked100":
        stacked = True
    markers = _anomaly_traces(build, frame, roles) if roles.anomalies else []
    if chart == "scatterchart":
        traces = thin_scatter(build, traces)
    elif sortable:
        traces = downsample(build, traces, stacked)
    else:
        traces = cap_points(build, traces)
    drawn = sum(len(t.x) for t in traces)
    webgl = drawn > WEBGL_POINTS and not stacked
    cls = go.Scattergl if webgl else go.Scatter
    groups = splits(build, traces)
    fig = split_figure(build, groups)
    for t in traces:
        kw: dict[str, Any] = {"x": t.x, "y": t.y, "name": t.name, "legendgroup": t.name}
        if chart == "scatterchart":
            kw["mode"] = "markers"
        else:
            kw["mode"] = "lines"
        if chart in ("areachart", "stackedareachart"):
            if stacked:
                kw["stackgroup"] = f"stack{groups.get(t.split, (1, 1))[0]}"
                if kind == "stacked100":
                    kw["groupnorm"] = "percent"
            else:
                kw["fill"] = "tozeroy"
        add_trace(build, fig, cls(**kw), t, groups)
    for t in markers:
        marker = {"color": "#d62728", "size": 10, "symbol": "circle-open", "line": {"width": 2}}
        mark = go.Scattergl if webgl else go.Scatter
        add_trace(build, fig, mark(x=t.x, y=t.y, name=t.name, mode="markers", marker=marker,
                                   hovertext=t.hover, hoverinfo="x+y+text+name"), t, groups)
    axes(build, fig, roles, frame, value_axis="y", groups=groups)
    if chart == "scatterchart" and build.spec.kind == "map":
        build.notices.append("kind=map is drawn on longitude/latitude axes without a base map "
                             "(map tiles would need the network)")
        fig.update_yaxes(scaleanchor="x", scaleratio=1)
    if stacked and kind == "stacked100":
        fig.update_yaxes(ticksuffix="%")
    return fig


def _anomaly_traces(build: Build, frame: Frame, roles: Roles) -> list[Trace]:
    """Markers where an anomaly column is non-zero, placed on the first y column's value."""
    import numpy as np
    import pandas as pd

    xcol, first_y = roles.x, roles.ys[0]
    out: list[Trace] = []
    groups = series_groups(build, frame, roles.series, roles.ys)
    for label, idx in groups:
        xs = frame.df[xcol].to_numpy()[idx]
        idx = idx[~pd.isna(xs)]
        xs = frame.df[xcol].to_numpy()[idx]
        order = np.argsort(xs, kind="stable")
        idx = idx[order]
        ys = frame.df[first_y].to_numpy()[idx]
        if build.spec.accumulate:
            ys = np.nancumsum(ys)
        for a in roles.anomalies:
            flags = frame.df[a].to_numpy()[idx]
            hit = np.nan_to_num(flags, nan=0.0) != 0
            if not hit.any():
                continue
            name = f"anomalies: {esc(a)}" if label is None else f"anomalies: {esc(label)}"
            hover = [f"{esc(a)}={f:g}" for f in flags[hit]]
            split = first_y if len(roles.ys) > 1 or label is None else label
            out.append(Trace(name, frame.df[xcol].to_numpy()[idx][hit], ys[hit], first_y, label,
                             split=split, hover=hover))
    return out
