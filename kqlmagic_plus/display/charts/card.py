"""card: the first row's values as big numbers (text values as annotations)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kqlmagic_plus.display.charts.constants import NUMERIC
from kqlmagic_plus.display.charts.frame import Frame
from kqlmagic_plus.display.charts.roles import Build
from kqlmagic_plus.display.charts.text import card_text, esc, isnan

if TYPE_CHECKING:
    import plotly.graph_objects as go


def card(build: Build, frame: Frame) -> go.Figure:
    import plotly.graph_objects as go

    row = frame.df.iloc[0]
    cols = frame.columns[:8]
    if len(frame.columns) > 8:
        build.notices.append(f"a card shows the first 8 of {len(frame.columns)} columns")
    if len(frame.df) > 1:
        build.notices.append(f"a card shows the first row of {len(frame.df):,}")
    fig = go.Figure()
    n = len(cols)
    size = {1: 80, 2: 64, 3: 48, 4: 40}.get(n, 30)
    for i, c in enumerate(cols):
        domain = {"x": [i / n + 0.01, (i + 1) / n - 0.01], "y": [0, 1]}
        value = row[c]
        title = esc(c) + (" (seconds)" if c in frame.seconds else "")
        if frame.types[c] in NUMERIC and value is not None and not isnan(value):
            fmt = ",d" if frame.types[c] in ("int", "long") else ",.6~g"
            fig.add_trace(go.Indicator(mode="number", value=float(value), title={"text": title},
                                       number={"valueformat": fmt, "font": {"size": size}},
                                       domain=domain))
        else:
            text = esc(card_text(value))
            fig.add_annotation(text=f"<span style='font-size:0.8em'>{title}</span><br>"
                               f"<b>{text}</b>", x=(i + 0.5) / n, y=0.5, xref="paper", yref="paper",
                               showarrow=False, font={"size": max(14, size // 3)})
    fig.update_layout(height=250 if build.spec.title is None else 290)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig
