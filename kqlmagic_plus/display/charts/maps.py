"""kind=map: points on longitude/latitude axes (no base map: tiles would need the network)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.display.charts.constants import CATEGORICAL, NUMERIC
from kqlmagic_plus.display.charts.frame import Frame, describe
from kqlmagic_plus.display.charts.roles import Build, series_groups
from kqlmagic_plus.display.charts.text import esc
from kqlmagic_plus.errors import ChartError

if TYPE_CHECKING:
    import plotly.graph_objects as go


def pie_map(build: Build, frame: Frame) -> go.Figure:
    import plotly.graph_objects as go

    lon, lat = lon_lat(frame, build.spec)
    rest = [c for c in frame.columns if c not in (lon, lat)]
    cats = [c for c in rest if frame.types[c] in CATEGORICAL]
    nums = [c for c in rest if frame.types[c] in NUMERIC]
    if not nums:
        raise ChartError("piechart kind=map needs a numeric column after longitude and latitude")
    value = nums[0]
    size = frame.df[value].to_numpy(dtype="float64")
    peak = float(max(size.max(), 1e-9))
    fig = go.Figure()
    for label, idx in series_groups(build, frame, cats[:1]):
        fig.add_trace(go.Scatter(
            x=frame.df[lon].to_numpy()[idx], y=frame.df[lat].to_numpy()[idx], mode="markers",
            name=esc(label if label is not None else value),
            marker={"size": 8 + 40 * (size[idx] / peak) ** 0.5, "sizemode": "diameter"},
            hovertext=[f"{esc(value)}={v:g}" for v in size[idx]]))
    fig.update_xaxes(title_text=esc(lon))
    fig.update_yaxes(title_text=esc(lat), scaleanchor="x", scaleratio=1)
    build.notices.append("kind=map is drawn on longitude/latitude axes without a base map "
                         "(map tiles would need the network)")
    return fig


def lon_lat(frame: Frame, spec: Any) -> tuple[str, str]:
    nums = frame.of(NUMERIC)
    by_name = {c.lower(): c for c in nums}
    lon = spec.xcolumn or next(
        (by_name[n] for n in ("longitude", "lon", "long", "lng") if n in by_name), None)
    lat = (spec.ycolumns[0] if spec.ycolumns else None) or next(
        (by_name[n] for n in ("latitude", "lat") if n in by_name), None)
    if lon is None or lat is None:
        if len(nums) < 2:
            raise ChartError(f"kind=map needs longitude and latitude columns ({describe(frame)})")
        lon, lat = lon or nums[0], lat or nums[1]
    return lon, lat
