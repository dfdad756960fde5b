"""pivotchart (an annotated heatmap), treemap, and table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kqlmagic_plus.display.charts.constants import CATEGORICAL, MAX_LEAVES, NUMERIC, TEMPORAL
from kqlmagic_plus.display.charts.frame import Frame, describe
from kqlmagic_plus.display.charts.layout import finish
from kqlmagic_plus.display.charts.roles import Build, numeric_ys
from kqlmagic_plus.display.charts.text import card_text, esc, esc_array, num_text
from kqlmagic_plus.errors import ChartError

if TYPE_CHECKING:
    import plotly.graph_objects as go


def pivotchart(build: Build, frame: Frame) -> go.Figure:
    """A pivot table drawn as an annotated heatmap: rows x columns, cells = sum of the measure."""
    import numpy as np
    import plotly.graph_objects as go

    dims = list(build.spec.series) or frame.of(CATEGORICAL | TEMPORAL)
    if build.spec.xcolumn and build.spec.xcolumn not in dims:
        dims = [build.spec.xcolumn, *dims]
    if not dims:
        raise ChartError(f"pivotchart needs at least one string or datetime column to pivot on "
                         f"({describe(frame)})")
    ys = numeric_ys(build, frame, set(dims))
    value = ys[0]
    rows_col = dims[0]
    cols_col = dims[1] if len(dims) > 1 else None
    df = frame.df
    if cols_col is None:
        table = df.groupby(rows_col, sort=False)[value].sum().to_frame(esc(value))
    else:
        table = df.pivot_table(index=rows_col, columns=cols_col, values=value, aggfunc="sum",
                               sort=False)
    table = table.iloc[:200, :200]
    z = table.to_numpy(dtype="float64")
    text = np.array([[num_text(v) for v in row] for row in z], dtype=object)
    fig = go.Figure(go.Heatmap(
        z=z, x=esc_array([str(c) for c in table.columns]), y=esc_array([str(r) for r in table.index]),
        text=text, texttemplate="%{text}", colorscale="Blues", hoverongaps=False,
        colorbar={"title": {"text": esc(value)}}))
    fig.update_yaxes(type="category", autorange="reversed",
                     title_text=build.spec.ytitle if build.spec.ytitle is not None else esc(rows_col))
    fig.update_xaxes(type="category", side="top",
                     title_text=build.spec.xtitle if build.spec.xtitle is not None else
                     esc(cols_col or ""))
    fig.update_layout(height=max(300, min(120 + 26 * z.shape[0], 1600)))
    return fig


def treemap(build: Build, frame: Frame) -> go.Figure:
    """Nested rectangles: the series columns are the levels, the first numeric column the size."""
    import plotly.graph_objects as go

    levels = list(build.spec.series) or frame.of(CATEGORICAL)
    if not levels:
        raise ChartError(f"treemap needs at least one string column for its levels ({describe(frame)})")
    nums = list(build.spec.ycolumns) or frame.of(NUMERIC, set(levels))
    df = frame.df[levels].astype(str).replace("", "(empty)")
    df["__v"] = frame.df[nums[0]].to_numpy(dtype="float64") if nums else 1.0
    df = df[df["__v"] > 0]
    if df.empty:
        raise ChartError("treemap: no positive values to size the rectangles")
    leaves = df.groupby(levels, sort=False)["__v"].sum().sort_values(ascending=False)
    if len(leaves) > MAX_LEAVES:
        build.notices.append(f"showing the {MAX_LEAVES:,} largest of {len(leaves):,} leaves")
        leaves = leaves.iloc[:MAX_LEAVES]
    ids: list[str] = []
    labels: list[str] = []
    parents: list[str] = []
    values: list[float] = []
    seen: dict[str, int] = {}
    for key, v in leaves.items():
        path = key if isinstance(key, tuple) else (key,)
        for depth in range(len(path)):
            node = "\x1f".join(path[:depth + 1])
            if node in seen:
                values[seen[node]] += float(v)
                continue
            seen[node] = len(ids)
            ids.append(node)
            labels.append(esc(path[depth]))
            parents.append("\x1f".join(path[:depth]))
            values.append(float(v))
    fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values,
                               branchvalues="total", name=esc(nums[0]) if nums else "rows",
                               hoverinfo="label+value+percent parent"))
    fig.update_layout(height=550)
    return fig


def table(build: Build) -> go.Figure:
    import plotly.graph_objects as go

    limit = getattr(build.result, "display_limit", 100)
    shown = build.result.df.head(limit)
    fig = go.Figure(go.Table(
        header={"values": [esc(c) for c in shown.columns], "align": "left"},
        cells={"values": [[esc(card_text(v)) for v in shown[c]] for c in shown.columns],
               "align": "left"}))
    finish(build, fig)
    return fig
