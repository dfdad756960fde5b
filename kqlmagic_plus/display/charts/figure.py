"""``figure_for``: the chart kind's builder, looked up in a table, draws the rows as a plotly figure."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from kqlmagic_plus.display.charts.bars import bars
from kqlmagic_plus.display.charts.card import card
from kqlmagic_plus.display.charts.constants import BAR_CHARTS, LINE_CHARTS
from kqlmagic_plus.display.charts.frame import expand_arrays, prepare, stringify_dynamic
from kqlmagic_plus.display.charts.ladder import ladderchart, timepivot
from kqlmagic_plus.display.charts.layout import finish
from kqlmagic_plus.display.charts.lines import line_family
from kqlmagic_plus.display.charts.pie import piechart
from kqlmagic_plus.display.charts.pivot import pivotchart, table, treemap
from kqlmagic_plus.display.charts.roles import Build, check_names
from kqlmagic_plus.errors import ChartError
from kqlmagic_plus.language.render import KNOWN_PROPERTIES

if TYPE_CHECKING:
    import plotly.graph_objects as go


class _Kind(NamedTuple):
    #: ``draw(build, frame)``; with ``frameless``, ``draw(build)``.
    draw: Callable[..., go.Figure]
    #: ``dynamic`` arrays (make-series output) become points; otherwise dynamic values are drawn as JSON text.
    expand_arrays: bool = False
    #: Drawn from the result itself, rows or not, and finished by *draw*.
    frameless: bool = False


_KINDS: dict[str, _Kind] = {
    **dict.fromkeys(LINE_CHARTS, _Kind(line_family, expand_arrays=True)),
    **dict.fromkeys(BAR_CHARTS, _Kind(bars, expand_arrays=True)),
    "piechart": _Kind(piechart, expand_arrays=True),
    "card": _Kind(card),
    "ladderchart": _Kind(ladderchart),
    "timepivot": _Kind(timepivot),
    "pivotchart": _Kind(pivotchart),
    "treemap": _Kind(treemap),
    "table": _Kind(table, frameless=True),
}
SUPPORTED = tuple(_KINDS)


def figure_for(result: Any) -> go.Figure:
    """The plotly Figure for ``result.render``. Raises :class:`ChartError` when it cannot be drawn."""
    spec = result.render
    if spec is None:
        raise ChartError("the query has no render clause")
    return _draw(Build(result, spec))


def _draw(build: Build) -> go.Figure:
    if build.chart not in SUPPORTED:
        near = difflib.get_close_matches(build.chart, SUPPORTED, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ChartError(f"unknown chart type {build.chart!r}{hint}; charts drawn: {', '.join(SUPPORTED)}")
    for key in sorted(build.spec.extra or {}):
        near = difflib.get_close_matches(key, KNOWN_PROPERTIES, n=1)
        build.notices.append(f"render property {key!r} is not known and was ignored"
                             + (f" (did you mean {near[0]}?)" if near else ""))
    kind = _KINDS[build.chart]
    if kind.frameless:
        return kind.draw(build)
    if build.result.row_count == 0:
        raise ChartError("the query returned no rows, so there is nothing to chart")
    frame = prepare(build.result)
    frame = expand_arrays(frame, build.spec) if kind.expand_arrays else stringify_dynamic(frame)
    check_names(build, frame)
    fig = kind.draw(build, frame)
    finish(build, fig)
    return fig
