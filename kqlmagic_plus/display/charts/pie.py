"""piechart: one measure summed per label, the smallest slices folded into 'other'."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kqlmagic_plus.display.charts.constants import CATEGORICAL, MAX_SLICES, TEMPORAL
from kqlmagic_plus.display.charts.frame import Frame
from kqlmagic_plus.display.charts.maps import pie_map
from kqlmagic_plus.display.charts.roles import Build, numeric_ys
from kqlmagic_plus.display.charts.text import esc, esc_array
from kqlmagic_plus.errors import ChartError

if TYPE_CHECKING:
    import plotly.graph_objects as go


def piechart(build: Build, frame: Frame) -> go.Figure:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go

    spec = build.spec
    if spec.kind == "map":
        return pie_map(build, frame)
    if spec.series:
        label_cols = list(spec.series)
    elif spec.xcolumn:
        label_cols = [spec.xcolumn]
    else:
        cats = frame.of(CATEGORICAL | TEMPORAL)
        label_cols = cats[:1] or [frame.columns[0]]
    ys = numeric_ys(build, frame, set(label_cols))
    if len(ys) > 1 and spec.ycolumns:
        build.notices.append(f"a pie shows one measure: {ys[0]} (also named: {', '.join(ys[1:])})")
    value_col = ys[0]
    labels = frame.df[label_cols[0]].astype(str)
    for c in label_cols[1:]:
        labels = labels + ", " + frame.df[c].astype(str)
    sums = pd.Series(frame.df[value_col].to_numpy(), index=labels).groupby(level=0, sort=False).sum()
    sums = sums[sums > 0]
    if sums.empty:
        raise ChartError(f"piechart: column {value_col!r} has no positive values to show")
    sums = sums.sort_values(ascending=False, kind="stable")
    if len(sums) > MAX_SLICES:
        rest = float(sums.iloc[MAX_SLICES - 1:].sum())
        n_rest = len(sums) - MAX_SLICES + 1
        build.notices.append(f"{len(sums):,} slices: the smallest {n_rest:,} are drawn as one "
                             "'other' slice")
        sums = pd.concat([sums.iloc[:MAX_SLICES - 1], pd.Series({f"other ({n_rest:,})": rest})])
    labels_out = esc_array(np.array([lbl if lbl != "" else "(empty)" for lbl in sums.index],
                                    dtype=object))
    fig = go.Figure(go.Pie(labels=labels_out, values=sums.to_numpy(dtype="float64"), sort=False,
                           name=esc(value_col), textinfo="percent", hoverinfo="label+value+percent"))
    return fig
