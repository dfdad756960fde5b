"""barchart (horizontal) and columnchart (vertical)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kqlmagic_plus.display.charts.constants import CATEGORICAL, MAX_BARS
from kqlmagic_plus.display.charts.frame import Frame
from kqlmagic_plus.display.charts.layout import add_trace, axes, split_figure, splits
from kqlmagic_plus.display.charts.roles import Build, Trace, assign_roles, kind_option, xy_traces

if TYPE_CHECKING:
    import plotly.graph_objects as go


def bars(build: Build, frame: Frame) -> go.Figure:
    import plotly.graph_objects as go

    roles = assign_roles(build, frame)
    horizontal = build.chart == "barchart"
    traces = xy_traces(build, frame, roles, sort_x=False)
    kind = kind_option(build, ("default", "unstacked", "stacked", "stacked100"))
    total = max((len(t.x) for t in traces), default=0)
    if total > MAX_BARS:
        build.notices.append(f"showing the first {MAX_BARS:,} of {total:,} bars per series; "
                             "every row is in .df")
        traces = [Trace(t.name, t.x[:MAX_BARS], t.y[:MAX_BARS], t.ycol, t.label, t.split)
                  for t in traces]
    groups = splits(build, traces) if not horizontal else {}
    if horizontal and build.spec.ysplit not in (None, "none"):
        build.notices.append("ysplit is drawn for vertical charts only; ignored for barchart")
    fig = split_figure(build, groups)
    for t in traces:
        bar = (go.Bar(y=t.x, x=t.y, name=t.name, orientation="h") if horizontal
               else go.Bar(x=t.x, y=t.y, name=t.name))
        add_trace(build, fig, bar, t, groups)
    mode = {"stacked": "stack", "stacked100": "relative"}.get(kind, "group")
    fig.update_layout(barmode=mode)
    if kind == "stacked100":
        fig.update_layout(barnorm="percent")
    axes(build, fig, roles, frame, value_axis="x" if horizontal else "y", groups=groups)
    if horizontal:
        # Rows top to bottom in result order, as a table reads (a sorted top-N stays sorted).
        fig.update_yaxes(autorange="reversed" if build.spec.xmin is None else None)
        if frame.types[roles.x] not in CATEGORICAL:
            fig.update_yaxes(type="category")
    if kind == "stacked100":
        (fig.update_xaxes if horizontal else fig.update_yaxes)(ticksuffix="%")
    return fig
