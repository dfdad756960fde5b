"""ysplit panels and axes, axis titles, scales and bounds, and the layout every chart finishes with."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.display.charts.constants import HEIGHT, MAX_SPLITS, NUMERIC
from kqlmagic_plus.display.charts.frame import Frame
from kqlmagic_plus.display.charts.roles import Build, Roles, Trace
from kqlmagic_plus.display.charts.text import axis_value, esc

if TYPE_CHECKING:
    import plotly.graph_objects as go


# -- ysplit -----------------------------------------------------------------------------------------


def splits(build: Build, traces: list[Trace]) -> dict[str, tuple[int, int]]:
    """ysplit groups -> (panel row, axis number). Empty when ysplit is none."""
    mode = build.spec.ysplit or "none"
    if mode not in ("none", "axes", "panels"):
        build.notices.append(f"ysplit={mode} is not none, axes or panels; drawn as none")
        mode = "none"
    if mode == "none":
        return {}
    names: list[str] = []
    for t in traces:
        if t.split not in names:
            names.append(t.split)
    if len(names) > MAX_SPLITS:
        build.notices.append(f"ysplit={mode}: {len(names)} groups, the last "
                             f"{len(names) - MAX_SPLITS + 1} share the last {mode[:-1]}")
    out = {}
    for i, n in enumerate(names):
        k = min(i, MAX_SPLITS - 1) + 1
        out[n] = (k, 1) if mode == "panels" else (1, k)
    build.split_mode = mode
    build.split_names = names[:MAX_SPLITS]
    return out


def split_figure(build: Build, groups: dict[str, tuple[int, int]]) -> go.Figure:
    import plotly.graph_objects as go

    if build.split_mode != "panels":
        return go.Figure()
    from plotly.subplots import make_subplots

    rows = max(r for r, _ in groups.values())
    titles = [esc(n) for n in build.split_names][:rows]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=titles)
    fig.update_layout(height=max(HEIGHT, 100 + 220 * rows))
    return fig


def add_trace(build: Build, fig: go.Figure, trace: Any, t: Trace, groups: dict[str, tuple[int, int]]) -> None:
    if not groups:
        fig.add_trace(trace)
        return
    row, axis = groups.get(t.split, (1, 1))
    if build.split_mode == "panels":
        fig.add_trace(trace, row=row, col=1)
    else:
        trace.update(yaxis="y" if axis == 1 else f"y{axis}")
        fig.add_trace(trace)


# -- axes and layout --------------------------------------------------------------------------------


def axes(build: Build, fig: go.Figure, roles: Roles, frame: Frame, value_axis: str,
         groups: dict[str, tuple[int, int]] | None = None) -> None:
    """Titles, scales and bounds; *value_axis* is "y" except for the horizontal barchart."""
    spec = build.spec
    cat_axis = "x" if value_axis == "y" else "y"
    xtitle = spec.xtitle if spec.xtitle is not None else esc(roles.x or "")
    if spec.ytitle is not None:
        ytitle = spec.ytitle
    elif len(roles.ys) == 1:
        ytitle = esc(roles.ys[0]) + (" (seconds)" if roles.ys[0] in frame.seconds else "")
    else:
        ytitle = ""
    update_cat = fig.update_xaxes if cat_axis == "x" else fig.update_yaxes
    update_val = fig.update_yaxes if value_axis == "y" else fig.update_xaxes
    mode = build.split_mode if groups else "none"
    if mode == "panels":
        update_cat(title_text=xtitle, row=len(set(r for r, _ in groups.values())), col=1)
        for name, (row, _) in groups.items():
            if name in build.split_names:
                update_val(title_text=ytitle, row=row, col=1)
    else:
        update_cat(title_text=xtitle)
        if mode == "axes" and spec.ytitle is None:
            ytitle = esc(build.split_names[0])
        fig.update_layout({f"{value_axis}axis": {"title": {"text": ytitle}}})
    if mode == "axes":
        count = len(build.split_names)
        fig.update_layout(xaxis={"domain": [0.0, max(0.55, 1.0 - 0.08 * (count - 1))]})
        for i, name in enumerate(build.split_names[1:], start=2):
            fig.update_layout({f"yaxis{i}": {
                "title": {"text": esc(name)}, "overlaying": "y", "side": "right", "anchor": "free",
                "autoshift": True, "shift": 8, "tickmode": "auto", "showgrid": False}})
    # Scales: log only makes sense on numbers; a datetime x stays linear.
    if spec.xaxis == "log":
        if roles.x and frame.types.get(roles.x) in NUMERIC:
            update_cat(type="log")
        else:
            build.notices.append("xaxis=log ignored: the x-axis is not numeric")
    log_y = spec.yaxis == "log"
    if log_y:
        update_val(type="log")
    lo, hi = spec.ymin, spec.ymax
    if lo is not None or hi is not None:
        if log_y:
            if (lo is not None and lo <= 0) or (hi is not None and hi <= 0):
                build.notices.append("ymin/ymax must be above 0 on a log axis; ignored")
                lo = hi = None
            else:
                lo = math.log10(lo) if lo is not None else None
                hi = math.log10(hi) if hi is not None else None
        if lo is not None or hi is not None:
            auto = False if lo is not None and hi is not None else ("max" if lo is not None else "min")
            update_val(range=[lo, hi], autorange=auto)
    if spec.xmin is not None or spec.xmax is not None:
        update_cat(range=[axis_value(spec.xmin), axis_value(spec.xmax)],
                   autorange=False if spec.xmin is not None and spec.xmax is not None
                   else ("max" if spec.xmin is not None else "min"))


def finish(build: Build, fig: go.Figure) -> None:
    spec = build.spec
    layout: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 60, "r": 30, "b": 50}}
    if not fig.layout.height:
        layout["height"] = HEIGHT
    top = 30
    if spec.title:
        layout["title"] = {"text": spec.title, "x": 0.01, "xanchor": "left"}
        top += 40
    if spec.legend == "hidden":
        layout["showlegend"] = False
    elif spec.legend == "visible":
        layout["showlegend"] = True
    elif spec.legend:
        build.notices.append(f"legend={spec.legend} is not visible or hidden; ignored")
    if build.notices:
        text = "<br>".join("⚠ " + esc(n) for n in build.notices)
        fig.add_annotation(text=text, xref="paper", yref="paper", x=0, y=1, xanchor="left",
                           yanchor="bottom", yshift=6, showarrow=False, align="left",
                           font={"color": "#a15c00", "size": 12}, name="kqlmp-notice")
        top += 20 * len(build.notices) + 10
    layout["margin"]["t"] = top
    fig.update_layout(layout)
