"""Render spec -> plotly figure, and the display bundle that shows it in every notebook front end.

``figure_for(result)`` draws the chart a query's ``render`` clause (or the service's visualization
metadata) asks for; ``mimebundle_for(result)`` is what ``Result._repr_mimebundle_`` shows:

* ``application/vnd.plotly.v1+json`` - drawn by JupyterLab / Notebook 7 (jupyterlab-plotly) and
  VS Code with the plotly.js they bundle: no network.
* ``text/html`` - for the classic notebook and nbconvert HTML. plotly.js (4.8 MB) is embedded once:
  the first chart of the process carries it, later charts wait for ``window.Plotly``. Exported HTML
  therefore draws every chart offline, even when cells ran out of order; if the carrier output was
  cleared, the waiting charts say so and :func:`reset_plotlyjs` makes the next chart carry it again.

Column roles follow the KQL render documentation: x is the ``xcolumn`` or the first column that
suits the chart (the first datetime column for timechart), y are the ``ycolumns`` or every numeric
column left, series are the ``series`` or the remaining string columns; ``dynamic`` arrays (from
``make-series``) are expanded into points. Large results are downsampled on the server side, keeping
each bucket's minimum and maximum so spikes survive, and the chart says so.

A spec the data cannot satisfy raises :class:`ChartError` from ``figure_for``; ``mimebundle_for``
never raises: it shows the table under a notice instead.

Data from logs ends up in labels, and plotly.js reads a little HTML in labels (``<b>``, ``<a>``).
Every label taken from the data is entity-escaped, so it shows as the text it is.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import ChartError, closest_first
from kqlmagic_plus.language.render import KNOWN_PROPERTIES

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import plotly.graph_objects as go

#: Points drawn per figure by line-like charts before min/max downsampling starts.
MAX_POINTS = 10_000
#: Drawn points above which line and scatter traces switch to WebGL (Scattergl).
WEBGL_POINTS = 5_000
#: Series drawn at most; the rest are named in a notice (largest totals are kept).
MAX_SERIES = 100
#: Bars per series, pie slices, treemap leaves, ysplit panels/axes.
MAX_BARS = 2_000
MAX_SLICES = 30
MAX_LEAVES = 2_000
MAX_SPLITS = 5

NUMERIC = frozenset({"int", "long", "real", "decimal", "timespan"})
TEMPORAL = frozenset({"datetime"})
CATEGORICAL = frozenset({"string", "guid", "bool", "dynamic"})

_LINE_CHARTS = ("timechart", "linechart", "areachart", "stackedareachart", "scatterchart", "anomalychart")
_BAR_CHARTS = ("barchart", "columnchart")
SUPPORTED = (*_LINE_CHARTS, *_BAR_CHARTS, "piechart", "card", "ladderchart", "timepivot", "pivotchart",
             "treemap", "table")

_CONFIG = {"displaylogo": False, "responsive": True}
_HEIGHT = 450


# -- public entry points ----------------------------------------------------------------------------


def figure_for(result: Any) -> go.Figure:
    """The plotly Figure for ``result.render``. Raises :class:`ChartError` when it cannot be drawn."""
    spec = result.render
    if spec is None:
        raise ChartError("the query has no render clause")
    return _Builder(result, spec).build()


def mimebundle_for(result: Any) -> dict[str, Any] | None:
    """The chart's display bundle; None for ``render table``. Never raises."""
    spec = result.render
    if spec is None or getattr(spec, "chart", None) == "table":
        return None
    try:
        fig = result.figure
        fig_json = fig.to_json(validate=False, engine="auto")
    except ChartError as exc:
        return _table_with_notice(result, exc.message)
    except Exception as exc:  # a display hook must not raise: show the rows and say why
        return _table_with_notice(result, f"the chart could not be drawn ({type(exc).__name__}: {exc})")
    mime = json.loads(fig_json)
    mime["config"] = dict(_CONFIG)
    height = int(fig.layout.height or _HEIGHT)
    return {"application/vnd.plotly.v1+json": mime, "text/html": chart_html(fig_json, height)}


def figure_html(fig: Any) -> str:
    """Any plotly figure as offline HTML (plotly.js sent once per kernel); a notice instead if it fails."""
    try:
        return chart_html(fig.to_json(validate=False, engine="auto"), int(fig.layout.height or _HEIGHT))
    except Exception as exc:  # a display hook must not raise
        return notice_html([f"the chart could not be drawn ({type(exc).__name__}: {exc})"])


def reset_plotlyjs() -> None:
    """Make the next chart carry plotly.js again (after the output that had it was cleared)."""
    global _plotlyjs_sent
    with _plotlyjs_lock:
        _plotlyjs_sent = False


# -- HTML: plotly.js once per process, every chart waits for it --------------------------------------

_plotlyjs_sent = False
_plotlyjs_lock = threading.Lock()

_WAIT_JS = """(function () {
  var fig = %(fig)s;
  var id = %(id)s;
  var tries = 0;
  function draw() {
    var el = document.getElementById(id);
    if (el && window.Plotly) {
      var wait = el.querySelector(".kqlmp-wait");
      if (wait) { el.removeChild(wait); }
      window.Plotly.newPlot(el, fig.data, fig.layout, fig.config);
      return;
    }
    tries += 1;
    if (el && tries === 100) {
      var note = document.createElement("div");
      note.className = "kqlmp-wait";
      note.style.cssText = "color:#a15c00;font-weight:bold;padding:1em";
      note.textContent = "\\u26a0 This chart needs plotly.js, which this page does not have: the output " +
        "that carried it was cleared. Run kqlmagic_plus.display.charts.reset_plotlyjs() and re-run this cell.";
      el.appendChild(note);
    }
    setTimeout(draw, tries < 100 ? 50 : 500);
  }
  draw();
})();"""


def chart_html(fig_json: str, height: int = _HEIGHT) -> str:
    """The ``text/html`` form of a figure (JSON text): plotly.js on the first call, then a waiter."""
    global _plotlyjs_sent
    with _plotlyjs_lock:
        carry = not _plotlyjs_sent
        _plotlyjs_sent = True
    div_id = "kqlmp-" + uuid.uuid4().hex
    parts = ['<div class="kqlmp-chart">']
    if carry:
        parts.append('<script type="text/javascript">window.PlotlyConfig = {MathJaxConfig: "local"};'
                     "</script>")
        parts.append(f'<script type="text/javascript">{_plotlyjs()}</script>')
    parts.append(f'<div id="{div_id}" class="kqlmp-plot" style="width:100%;height:{height}px"></div>')
    script = _WAIT_JS % {"fig": _script_safe(fig_json), "id": json.dumps(div_id)}
    parts.append(f'<script type="text/javascript">{script}</script></div>')
    return "".join(parts)


_plotlyjs_text: str | None = None


def _plotlyjs() -> str:
    global _plotlyjs_text
    if _plotlyjs_text is None:
        from plotly.offline import get_plotlyjs

        _plotlyjs_text = get_plotlyjs().replace("</script", "<\\/script")
    return _plotlyjs_text


def _script_safe(text: str) -> str:
    """JSON text that cannot close the <script> it sits in, whatever strings the data holds.

    Non-ASCII characters become ``\\u`` escapes too, so the chart reads right whatever charset the
    page that embeds it declares.
    """
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    if text.isascii():
        return text
    return _NON_ASCII.sub(_u_escape, text)


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _u_escape(match: re.Match[str]) -> str:
    units = match.group(0).encode("utf-16-be")
    return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'big'):04x}" for i in range(0, len(units), 2))


def _table_with_notice(result: Any, message: str) -> dict[str, Any]:
    return {"text/html": notice_html([message]) + result._repr_html_()}


def notice_html(notices: list[str]) -> str:
    return "".join(
        f'<div class="kqlmp-notice" style="color:#a15c00;font-weight:bold">&#9888; Chart not drawn: '
        f"{html.escape(n)}; showing the table.</div>" for n in notices)


# -- preparing the rows -----------------------------------------------------------------------------


@dataclass
class _Frame:
    """The rows in chart-ready dtypes: numbers as float64, datetimes as naive UTC, text as str."""

    df: pd.DataFrame
    types: dict[str, str]
    #: Columns that were KQL timespans (drawn in seconds).
    seconds: set[str] = field(default_factory=set)

    @property
    def columns(self) -> list[str]:
        return list(self.df.columns)

    def of(self, kinds: frozenset[str], exclude: tuple[str, ...] | set[str] = ()) -> list[str]:
        return [c for c in self.columns if self.types[c] in kinds and c not in exclude]


def _prepare(result: Any) -> _Frame:
    import numpy as np
    import pandas as pd

    src = result.df
    data: dict[str, Any] = {}
    types: dict[str, str] = {}
    seconds: set[str] = set()
    for name, kt in zip(src.columns, result.kql_types, strict=True):
        col = src[name]
        if kt in ("int", "long", "real"):
            data[name] = col.to_numpy(dtype="float64", na_value=np.nan)
        elif kt == "decimal":
            data[name] = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        elif kt == "timespan":
            data[name] = col.dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
            seconds.add(name)
        elif kt == "datetime":
            if getattr(col.dt, "tz", None) is not None:
                col = col.dt.tz_convert(None)
            data[name] = col.to_numpy()
        elif kt == "bool":
            text = np.where(col.fillna(False).to_numpy(dtype=bool), "true", "false").astype(object)
            data[name] = np.where(col.isna().to_numpy(), "", text)
        elif kt == "dynamic":
            data[name] = col.to_numpy(dtype=object)
        else:
            # string and guid values are str already; only nulls need a spelling.
            data[name] = col.fillna("").to_numpy(dtype=object)
        types[name] = kt
    return _Frame(pd.DataFrame(data, index=range(len(src))), types, seconds)


def _is_array_column(values: Any) -> bool:
    for v in values:
        if v is not None:
            return isinstance(v, list)
    return False


def _expand_arrays(frame: _Frame, spec: Any) -> _Frame:
    """Expand ``dynamic`` array columns (make-series output) into one row per array element.

    The anchor is the x column (``xcolumn``, else the first array of datetimes, else the first
    array); every array column with the same length in each row is expanded with it.
    """
    import numpy as np
    import pandas as pd

    arrays = [c for c in frame.of(frozenset({"dynamic"})) if _is_array_column(frame.df[c])]
    if not arrays:
        return _stringify_dynamic(frame)

    def lengths(c: str) -> np.ndarray:
        return np.array([len(v) if isinstance(v, list) else -1 for v in frame.df[c]])

    anchor = spec.xcolumn if spec.xcolumn in arrays else None
    if anchor is None:
        anchor = next((c for c in arrays if _looks_temporal(_first_elements(frame.df[c]))), arrays[0])
    want = lengths(anchor)
    together = [c for c in arrays if np.array_equal(lengths(c), want)]
    df = frame.df.copy()
    for c in together:
        df[c] = [v if isinstance(v, list) else [] for v in df[c]]
    df = df.explode(together, ignore_index=True)
    df = df[df[anchor].notna()].reset_index(drop=True)
    types = dict(frame.types)
    for c in together:
        values = df[c]
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == values.notna().sum():
            df[c] = numbers.to_numpy(dtype="float64", na_value=np.nan)
            types[c] = "real"
            continue
        if _looks_temporal(values.dropna().head(20).tolist()):
            stamps = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
            df[c] = stamps.dt.tz_convert(None).to_numpy()
            types[c] = "datetime"
            continue
        df[c] = np.array(["" if v is None else str(v) for v in values], dtype=object)
        types[c] = "string"
    return _stringify_dynamic(_Frame(df, types, frame.seconds))


def _first_elements(values: Any) -> list[Any]:
    for v in values:
        if isinstance(v, list) and v:
            return v[:20]
    return []


def _looks_temporal(values: list[Any]) -> bool:
    import pandas as pd

    texts = [v for v in values if isinstance(v, str)]
    if not texts or len(texts) != len(values):
        return False
    parsed = pd.to_datetime(pd.Series(texts), utc=True, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


def _stringify_dynamic(frame: _Frame) -> _Frame:
    import numpy as np

    for c in frame.of(frozenset({"dynamic"})):
        frame.df[c] = np.array([_dynamic_text(v) for v in frame.df[c]], dtype=object)
        frame.types[c] = "string"
    return frame


def _dynamic_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))


# -- text safety ------------------------------------------------------------------------------------


def _esc(text: Any) -> str:
    """A data value as plotly label text: its own characters, never markup."""
    s = "" if text is None else str(text)
    if "<" in s or ">" in s or "&" in s:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s


def _esc_array(values: Any) -> Any:
    import numpy as np

    arr = np.asarray(values, dtype=object)
    if not any(isinstance(v, str) and ("<" in v or ">" in v or "&" in v) for v in arr):
        return arr
    return np.array([_esc(v) for v in arr], dtype=object)


# -- roles ------------------------------------------------------------------------------------------


@dataclass
class _Roles:
    x: str | None
    ys: list[str]
    series: list[str]
    anomalies: list[str] = field(default_factory=list)


@dataclass
class _Trace:
    name: str
    x: Any
    y: Any
    ycol: str
    label: str | None
    #: Which panel / axis the trace belongs to under ysplit.
    split: str = ""
    hover: Any = None


class _Builder:
    """Builds one figure; collects notices (downsampling, ignored properties) as it goes."""

    def __init__(self, result: Any, spec: Any):
        self.result = result
        self.spec = spec
        self.chart = (spec.chart or "").lower()
        self.notices: list[str] = []
        self._split_mode = "none"
        self._split_names: list[str] = []

    # -- entry ------------------------------------------------------------------------------------

    def build(self) -> go.Figure:
        if self.chart not in SUPPORTED:
            near = difflib.get_close_matches(self.chart, SUPPORTED, n=1)
            hint = f" (did you mean {near[0]}?)" if near else ""
            raise ChartError(f"unknown chart type {self.chart!r}{hint}; charts drawn: {', '.join(SUPPORTED)}")
        for key in sorted(self.spec.extra or {}):
            near = difflib.get_close_matches(key, KNOWN_PROPERTIES, n=1)
            self.notices.append(f"render property {key!r} is not known and was ignored"
                                + (f" (did you mean {near[0]}?)" if near else ""))
        if self.chart == "table":
            return self._table()
        if self.result.row_count == 0:
            raise ChartError("the query returned no rows, so there is nothing to chart")
        frame = _prepare(self.result)
        if self.chart in (*_LINE_CHARTS, *_BAR_CHARTS, "piechart"):
            frame = _expand_arrays(frame, self.spec)
        else:
            frame = _stringify_dynamic(frame)
        self._check_names(frame)
        fig = getattr(self, "_" + self.chart)(frame)
        self._finish(fig)
        return fig

    # -- helpers ----------------------------------------------------------------------------------

    def _check_names(self, frame: _Frame) -> None:
        cols = frame.columns
        named = [("xcolumn", [self.spec.xcolumn] if self.spec.xcolumn else []),
                 ("ycolumns", list(self.spec.ycolumns)), ("series", list(self.spec.series)),
                 ("anomalycolumns", list(self.spec.anomalycolumns))]
        for prop, names in named:
            for name in names:
                if name not in cols:
                    listing = ", ".join(closest_first(name, cols)[:8])
                    raise ChartError(f"{prop} names column {name!r}, which the result does not have "
                                     f"(columns: {listing})")

    def _numeric_ys(self, frame: _Frame, exclude: set[str]) -> list[str]:
        if self.spec.ycolumns:
            ys = list(self.spec.ycolumns)
            for y in ys:
                if frame.types[y] not in NUMERIC:
                    raise ChartError(f"ycolumns: column {y!r} is {frame.types[y]}, not a number")
            return ys
        ys = frame.of(NUMERIC, exclude)
        if not ys:
            raise ChartError(f"{self.chart} needs a numeric column for the y-axis and the result has "
                             f"none left after the x-axis ({_describe(frame)})")
        return ys

    def _roles(self, frame: _Frame) -> _Roles:
        spec = self.spec
        anomalies = list(spec.anomalycolumns)
        if self.chart == "anomalychart" and not anomalies:
            anomalies = [c for c in frame.of(NUMERIC) if "anomal" in c.lower()
                         and c not in spec.ycolumns and c != spec.xcolumn]
            if not anomalies:
                self.notices.append("anomalychart without anomalycolumns: no anomalies marked "
                                    "(add with (anomalycolumns=...))")
        x = spec.xcolumn or self._guess_x(frame, set(spec.ycolumns) | set(spec.series) | set(anomalies))
        taken = {x, *spec.series, *anomalies}
        ys = self._numeric_ys(frame, taken)
        for a in anomalies:
            if frame.types[a] not in NUMERIC:
                raise ChartError(f"anomalycolumns: column {a!r} is {frame.types[a]}, not a number")
        series = list(spec.series) if spec.series else frame.of(CATEGORICAL, {x, *ys, *anomalies})
        return _Roles(x, ys, series, anomalies)

    def _guess_x(self, frame: _Frame, reserved: set[str]) -> str:
        cols = [c for c in frame.columns if c not in reserved]
        temporal = [c for c in cols if frame.types[c] in TEMPORAL]
        if self.chart in ("timechart", "anomalychart"):
            if temporal:
                return temporal[0]
            raise ChartError(f"{self.chart} needs a datetime column for the x-axis ({_describe(frame)}); "
                             "use linechart, or name one with xcolumn=")
        if self.chart in _BAR_CHARTS:
            non_numeric = [c for c in cols if frame.types[c] not in NUMERIC]
            if non_numeric:
                return non_numeric[0]
            return cols[0] if cols else frame.columns[0]
        if temporal:
            return temporal[0]
        numeric = [c for c in cols if frame.types[c] in NUMERIC]
        if len(numeric) >= 2:
            return numeric[0]
        return cols[0] if cols else frame.columns[0]

    def _groups(self, frame: _Frame, series: list[str],
                ys: list[str] | None = None) -> list[tuple[str | None, Any]]:
        """(series label, row positions) in order of first appearance.

        With *ys*, at most MAX_SERIES series are kept: those with the largest totals (a guessed
        series column can be an id with a value per row; thousands of lines help no one).
        """
        import numpy as np
        import pandas as pd

        if not series:
            return [(None, np.arange(len(frame.df)))]
        def text(c: str) -> Any:
            col = frame.df[c]
            return col if frame.types[c] in CATEGORICAL else col.astype(str)

        keys = text(series[0])
        for c in series[1:]:
            keys = keys + ", " + text(c)
        codes, uniques = pd.factorize(keys, sort=False)
        if ys is not None and len(uniques) > MAX_SERIES:
            weight = np.nansum(np.abs(frame.df[ys].to_numpy(dtype="float64", na_value=np.nan)), axis=1)
            totals = np.bincount(codes, weights=weight, minlength=len(uniques))
            keep = np.sort(np.argsort(-totals, kind="stable")[:MAX_SERIES])
            self.notices.append(f"showing {MAX_SERIES} of {len(uniques):,} series (largest totals); "
                                "filter the query or name series= to see others")
        else:
            keep = np.arange(len(uniques))
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
        return [(str(uniques[k]) if uniques[k] != "" else "(empty)", order[bounds[k]:bounds[k + 1]])
                for k in keep]

    def _xy_traces(self, frame: _Frame, roles: _Roles, sort_x: bool) -> list[_Trace]:
        import numpy as np
        import pandas as pd

        xcol = roles.x
        groups = self._groups(frame, roles.series, roles.ys)
        xs_all = frame.df[xcol].to_numpy()
        if frame.types[xcol] in CATEGORICAL:
            xs_all = _esc_array(xs_all)
        traces = []
        for label, idx in groups:
            xs = xs_all[idx]
            if frame.types[xcol] not in CATEGORICAL:
                known = ~pd.isna(xs)
                idx, xs = idx[known], xs[known]
                if sort_x:
                    order = np.argsort(xs, kind="stable")
                    idx, xs = idx[order], xs[order]
            for y in roles.ys:
                ys = frame.df[y].to_numpy()[idx]
                if self.spec.accumulate:
                    ys = np.nancumsum(ys)
                name = _esc(y) if label is None else (_esc(label) if len(roles.ys) == 1
                                                      else f"{_esc(label)}:{_esc(y)}")
                # ysplit splits by y column; with one y column, by series (else there is one group).
                split = y if len(roles.ys) > 1 or label is None else label
                traces.append(_Trace(name, xs, ys, y, label, split=split))
        return traces

    # -- line family ------------------------------------------------------------------------------

    def _line_family(self, frame: _Frame) -> go.Figure:
        import plotly.graph_objects as go

        roles = self._roles(frame)
        chart = self.chart
        x_type = frame.types[roles.x]
        sortable = x_type not in CATEGORICAL
        traces = self._xy_traces(frame, roles, sort_x=chart != "scatterchart")
        kind = self._kind(("default", "unstacked", "stacked", "stacked100"))
        stacked = chart == "stackedareachart" or (chart == "areachart" and kind in ("stacked", "stacked100"))
        if chart == "stackedareachart" and kind == "stacked100":
            stacked = True
        markers = self._anomaly_traces(frame, roles) if roles.anomalies else []
        if chart == "scatterchart":
            traces = self._thin_scatter(traces)
        elif sortable:
            traces = self._downsample(traces, stacked)
        else:
            traces = self._cap_points(traces)
        drawn = sum(len(t.x) for t in traces)
        webgl = drawn > WEBGL_POINTS and not stacked
        cls = go.Scattergl if webgl else go.Scatter
        groups = self._splits(traces)
        fig = self._split_figure(groups)
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
            self._add(fig, cls(**kw), t, groups)
        for t in markers:
            marker = {"color": "#d62728", "size": 10, "symbol": "circle-open", "line": {"width": 2}}
            mark = go.Scattergl if webgl else go.Scatter
            self._add(fig, mark(x=t.x, y=t.y, name=t.name, mode="markers", marker=marker,
                                hovertext=t.hover, hoverinfo="x+y+text+name"), t, groups)
        self._axes(fig, roles, frame, value_axis="y", groups=groups)
        if chart == "scatterchart" and self.spec.kind == "map":
            self.notices.append("kind=map is drawn on longitude/latitude axes without a base map "
                                "(map tiles would need the network)")
            fig.update_yaxes(scaleanchor="x", scaleratio=1)
        if stacked and kind == "stacked100":
            fig.update_yaxes(ticksuffix="%")
        return fig

    _timechart = _linechart = _areachart = _stackedareachart = _scatterchart = _anomalychart = _line_family

    def _kind(self, allowed: tuple[str, ...]) -> str:
        kind = self.spec.kind or "default"
        if kind not in allowed and kind != "map":
            self.notices.append(f"kind={kind} is not a {self.chart} kind ({', '.join(allowed)}); "
                                "drawn as default")
            return "default"
        return kind

    def _anomaly_traces(self, frame: _Frame, roles: _Roles) -> list[_Trace]:
        """Markers where an anomaly column is non-zero, placed on the first y column's value."""
        import numpy as np
        import pandas as pd

        xcol, first_y = roles.x, roles.ys[0]
        out: list[_Trace] = []
        groups = self._groups(frame, roles.series, roles.ys)
        for label, idx in groups:
            xs = frame.df[xcol].to_numpy()[idx]
            idx = idx[~pd.isna(xs)]
            xs = frame.df[xcol].to_numpy()[idx]
            order = np.argsort(xs, kind="stable")
            idx = idx[order]
            ys = frame.df[first_y].to_numpy()[idx]
            if self.spec.accumulate:
                ys = np.nancumsum(ys)
            for a in roles.anomalies:
                flags = frame.df[a].to_numpy()[idx]
                hit = np.nan_to_num(flags, nan=0.0) != 0
                if not hit.any():
                    continue
                name = f"anomalies: {_esc(a)}" if label is None else f"anomalies: {_esc(label)}"
                hover = [f"{_esc(a)}={f:g}" for f in flags[hit]]
                split = first_y if len(roles.ys) > 1 or label is None else label
                out.append(_Trace(name, frame.df[xcol].to_numpy()[idx][hit], ys[hit], first_y, label,
                                  split=split, hover=hover))
        return out

    def _downsample(self, traces: list[_Trace], stacked: bool) -> list[_Trace]:
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
            out.append(_Trace(t.name, x, y, t.ycol, t.label, t.split))
        drawn = sum(len(t.x) for t in out)
        how = "the mean of each bucket" if stacked else "the minimum and maximum of each bucket"
        self.notices.append(f"downsampled for display: {total:,} points drawn as {drawn:,} ({how} kept); "
                            "every row is in .df")
        return out

    def _cap_points(self, traces: list[_Trace]) -> list[_Trace]:
        total = sum(len(t.x) for t in traces)
        if total <= MAX_POINTS:
            return traces
        per_trace = max(MAX_POINTS // max(len(traces), 1), 200)
        self.notices.append(f"showing the first {per_trace:,} points of each series "
                            f"({total:,} in all); every row is in .df")
        return [_Trace(t.name, t.x[:per_trace], t.y[:per_trace], t.ycol, t.label, t.split) for t in traces]

    def _thin_scatter(self, traces: list[_Trace]) -> list[_Trace]:
        total = sum(len(t.x) for t in traces)
        if total <= MAX_POINTS:
            return traces
        per_trace = max(MAX_POINTS // max(len(traces), 1), 200)
        out = [t if len(t.x) <= per_trace else _Trace(t.name, *_grid_thin(t.x, t.y, per_trace), t.ycol,
                                                      t.label, t.split) for t in traces]
        drawn = sum(len(t.x) for t in out)
        self.notices.append(f"thinned for display: {total:,} points drawn as {drawn:,} (one per occupied "
                            "grid cell, so outliers stay); every row is in .df")
        return out

    # -- ysplit -----------------------------------------------------------------------------------

    def _splits(self, traces: list[_Trace]) -> dict[str, tuple[int, int]]:
        """ysplit groups -> (panel row, axis number). Empty when ysplit is none."""
        mode = self.spec.ysplit or "none"
        if mode not in ("none", "axes", "panels"):
            self.notices.append(f"ysplit={mode} is not none, axes or panels; drawn as none")
            mode = "none"
        if mode == "none":
            return {}
        names: list[str] = []
        for t in traces:
            if t.split not in names:
                names.append(t.split)
        if len(names) > MAX_SPLITS:
            self.notices.append(f"ysplit={mode}: {len(names)} groups, the last "
                                f"{len(names) - MAX_SPLITS + 1} share the last {mode[:-1]}")
        out = {}
        for i, n in enumerate(names):
            k = min(i, MAX_SPLITS - 1) + 1
            out[n] = (k, 1) if mode == "panels" else (1, k)
        self._split_mode = mode
        self._split_names = names[:MAX_SPLITS]
        return out

    def _split_figure(self, groups: dict[str, tuple[int, int]]) -> go.Figure:
        import plotly.graph_objects as go

        if self._split_mode != "panels":
            return go.Figure()
        from plotly.subplots import make_subplots

        rows = max(r for r, _ in groups.values())
        titles = [_esc(n) for n in self._split_names][:rows]
        fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                            subplot_titles=titles)
        fig.update_layout(height=max(_HEIGHT, 100 + 220 * rows))
        return fig

    def _add(self, fig: go.Figure, trace: Any, t: _Trace, groups: dict[str, tuple[int, int]]) -> None:
        if not groups:
            fig.add_trace(trace)
            return
        row, axis = groups.get(t.split, (1, 1))
        if self._split_mode == "panels":
            fig.add_trace(trace, row=row, col=1)
        else:
            trace.update(yaxis="y" if axis == 1 else f"y{axis}")
            fig.add_trace(trace)

    # -- axes and layout --------------------------------------------------------------------------

    def _axes(self, fig: go.Figure, roles: _Roles, frame: _Frame, value_axis: str,
              groups: dict[str, tuple[int, int]] | None = None) -> None:
        """Titles, scales and bounds; *value_axis* is "y" except for the horizontal barchart."""
        spec = self.spec
        cat_axis = "x" if value_axis == "y" else "y"
        xtitle = spec.xtitle if spec.xtitle is not None else _esc(roles.x or "")
        if spec.ytitle is not None:
            ytitle = spec.ytitle
        elif len(roles.ys) == 1:
            ytitle = _esc(roles.ys[0]) + (" (seconds)" if roles.ys[0] in frame.seconds else "")
        else:
            ytitle = ""
        update_cat = fig.update_xaxes if cat_axis == "x" else fig.update_yaxes
        update_val = fig.update_yaxes if value_axis == "y" else fig.update_xaxes
        mode = self._split_mode if groups else "none"
        if mode == "panels":
            update_cat(title_text=xtitle, row=len(set(r for r, _ in groups.values())), col=1)
            for name, (row, _) in groups.items():
                if name in self._split_names:
                    update_val(title_text=ytitle, row=row, col=1)
        else:
            update_cat(title_text=xtitle)
            if mode == "axes" and spec.ytitle is None:
                ytitle = _esc(self._split_names[0])
            fig.update_layout({f"{value_axis}axis": {"title": {"text": ytitle}}})
        if mode == "axes":
            count = len(self._split_names)
            fig.update_layout(xaxis={"domain": [0.0, max(0.55, 1.0 - 0.08 * (count - 1))]})
            for i, name in enumerate(self._split_names[1:], start=2):
                fig.update_layout({f"yaxis{i}": {
                    "title": {"text": _esc(name)}, "overlaying": "y", "side": "right", "anchor": "free",
                    "autoshift": True, "shift": 8, "tickmode": "auto", "showgrid": False}})
        # Scales: log only makes sense on numbers; a datetime x stays linear.
        if spec.xaxis == "log":
            if roles.x and frame.types.get(roles.x) in NUMERIC:
                update_cat(type="log")
            else:
                self.notices.append("xaxis=log ignored: the x-axis is not numeric")
        log_y = spec.yaxis == "log"
        if log_y:
            update_val(type="log")
        lo, hi = spec.ymin, spec.ymax
        if lo is not None or hi is not None:
            if log_y:
                if (lo is not None and lo <= 0) or (hi is not None and hi <= 0):
                    self.notices.append("ymin/ymax must be above 0 on a log axis; ignored")
                    lo = hi = None
                else:
                    lo = math.log10(lo) if lo is not None else None
                    hi = math.log10(hi) if hi is not None else None
            if lo is not None or hi is not None:
                auto = False if lo is not None and hi is not None else ("max" if lo is not None else "min")
                update_val(range=[lo, hi], autorange=auto)
        if spec.xmin is not None or spec.xmax is not None:
            update_cat(range=[_axis_value(spec.xmin), _axis_value(spec.xmax)],
                       autorange=False if spec.xmin is not None and spec.xmax is not None
                       else ("max" if spec.xmin is not None else "min"))

    def _finish(self, fig: go.Figure) -> None:
        spec = self.spec
        layout: dict[str, Any] = {"template": "plotly_white", "margin": {"l": 60, "r": 30, "b": 50}}
        if not fig.layout.height:
            layout["height"] = _HEIGHT
        top = 30
        if spec.title:
            layout["title"] = {"text": spec.title, "x": 0.01, "xanchor": "left"}
            top += 40
        if spec.legend == "hidden":
            layout["showlegend"] = False
        elif spec.legend == "visible":
            layout["showlegend"] = True
        elif spec.legend:
            self.notices.append(f"legend={spec.legend} is not visible or hidden; ignored")
        if self.notices:
            text = "<br>".join("⚠ " + _esc(n) for n in self.notices)
            fig.add_annotation(text=text, xref="paper", yref="paper", x=0, y=1, xanchor="left",
                               yanchor="bottom", yshift=6, showarrow=False, align="left",
                               font={"color": "#a15c00", "size": 12}, name="kqlmp-notice")
            top += 20 * len(self.notices) + 10
        layout["margin"]["t"] = top
        fig.update_layout(layout)

    # -- bars -------------------------------------------------------------------------------------

    def _bars(self, frame: _Frame) -> go.Figure:
        import plotly.graph_objects as go

        roles = self._roles(frame)
        horizontal = self.chart == "barchart"
        traces = self._xy_traces(frame, roles, sort_x=False)
        kind = self._kind(("default", "unstacked", "stacked", "stacked100"))
        total = max((len(t.x) for t in traces), default=0)
        if total > MAX_BARS:
            self.notices.append(f"showing the first {MAX_BARS:,} of {total:,} bars per series; "
                                "every row is in .df")
            traces = [_Trace(t.name, t.x[:MAX_BARS], t.y[:MAX_BARS], t.ycol, t.label, t.split)
                      for t in traces]
        groups = self._splits(traces) if not horizontal else {}
        if horizontal and self.spec.ysplit not in (None, "none"):
            self.notices.append("ysplit is drawn for vertical charts only; ignored for barchart")
        fig = self._split_figure(groups)
        for t in traces:
            if horizontal:
                bar = go.Bar(y=t.x, x=t.y, name=t.name, orientation="h")
            else:
                bar = go.Bar(x=t.x, y=t.y, name=t.name)
            self._add(fig, bar, t, groups)
        mode = {"stacked": "stack", "stacked100": "relative"}.get(kind, "group")
        fig.update_layout(barmode=mode)
        if kind == "stacked100":
            fig.update_layout(barnorm="percent")
        self._axes(fig, roles, frame, value_axis="x" if horizontal else "y", groups=groups)
        if horizontal:
            # Rows top to bottom in result order, as a table reads (a sorted top-N stays sorted).
            fig.update_yaxes(autorange="reversed" if self.spec.xmin is None else None)
            if frame.types[roles.x] not in CATEGORICAL:
                fig.update_yaxes(type="category")
        if kind == "stacked100":
            (fig.update_xaxes if horizontal else fig.update_yaxes)(ticksuffix="%")
        return fig

    _barchart = _columnchart = _bars

    # -- pie --------------------------------------------------------------------------------------

    def _piechart(self, frame: _Frame) -> go.Figure:
        import numpy as np
        import pandas as pd
        import plotly.graph_objects as go

        spec = self.spec
        if spec.kind == "map":
            return self._pie_map(frame)
        if spec.series:
            label_cols = list(spec.series)
        elif spec.xcolumn:
            label_cols = [spec.xcolumn]
        else:
            cats = frame.of(CATEGORICAL | TEMPORAL)
            label_cols = cats[:1] or [frame.columns[0]]
        ys = self._numeric_ys(frame, set(label_cols))
        if len(ys) > 1 and spec.ycolumns:
            self.notices.append(f"a pie shows one measure: {ys[0]} (also named: {', '.join(ys[1:])})")
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
            self.notices.append(f"{len(sums):,} slices: the smallest {n_rest:,} are drawn as one "
                                "'other' slice")
            sums = pd.concat([sums.iloc[:MAX_SLICES - 1], pd.Series({f"other ({n_rest:,})": rest})])
        labels_out = _esc_array(np.array([lbl if lbl != "" else "(empty)" for lbl in sums.index],
                                         dtype=object))
        fig = go.Figure(go.Pie(labels=labels_out, values=sums.to_numpy(dtype="float64"), sort=False,
                               name=_esc(value_col), textinfo="percent", hoverinfo="label+value+percent"))
        return fig

    def _pie_map(self, frame: _Frame) -> go.Figure:
        import plotly.graph_objects as go

        lon, lat = _lon_lat(frame, self.spec)
        rest = [c for c in frame.columns if c not in (lon, lat)]
        cats = [c for c in rest if frame.types[c] in CATEGORICAL]
        nums = [c for c in rest if frame.types[c] in NUMERIC]
        if not nums:
            raise ChartError("piechart kind=map needs a numeric column after longitude and latitude")
        value = nums[0]
        size = frame.df[value].to_numpy(dtype="float64")
        peak = float(max(size.max(), 1e-9))
        fig = go.Figure()
        for label, idx in self._groups(frame, cats[:1]):
            fig.add_trace(go.Scatter(
                x=frame.df[lon].to_numpy()[idx], y=frame.df[lat].to_numpy()[idx], mode="markers",
                name=_esc(label if label is not None else value),
                marker={"size": 8 + 40 * (size[idx] / peak) ** 0.5, "sizemode": "diameter"},
                hovertext=[f"{_esc(value)}={v:g}" for v in size[idx]]))
        fig.update_xaxes(title_text=_esc(lon))
        fig.update_yaxes(title_text=_esc(lat), scaleanchor="x", scaleratio=1)
        self.notices.append("kind=map is drawn on longitude/latitude axes without a base map "
                            "(map tiles would need the network)")
        return fig

    # -- card -------------------------------------------------------------------------------------

    def _card(self, frame: _Frame) -> go.Figure:
        import plotly.graph_objects as go

        row = frame.df.iloc[0]
        cols = frame.columns[:8]
        if len(frame.columns) > 8:
            self.notices.append(f"a card shows the first 8 of {len(frame.columns)} columns")
        if len(frame.df) > 1:
            self.notices.append(f"a card shows the first row of {len(frame.df):,}")
        fig = go.Figure()
        n = len(cols)
        size = {1: 80, 2: 64, 3: 48, 4: 40}.get(n, 30)
        for i, c in enumerate(cols):
            domain = {"x": [i / n + 0.01, (i + 1) / n - 0.01], "y": [0, 1]}
            value = row[c]
            title = _esc(c) + (" (seconds)" if c in frame.seconds else "")
            if frame.types[c] in NUMERIC and value is not None and not _isnan(value):
                fmt = ",d" if frame.types[c] in ("int", "long") else ",.6~g"
                fig.add_trace(go.Indicator(mode="number", value=float(value), title={"text": title},
                                           number={"valueformat": fmt, "font": {"size": size}},
                                           domain=domain))
            else:
                text = _esc(_card_text(value))
                fig.add_annotation(text=f"<span style='font-size:0.8em'>{title}</span><br>"
                                   f"<b>{text}</b>", x=(i + 0.5) / n, y=0.5, xref="paper", yref="paper",
                                   showarrow=False, font={"size": max(14, size // 3)})
        fig.update_layout(height=250 if self.spec.title is None else 290)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig

    # -- ladder, timepivot ------------------------------------------------------------------------

    def _ladderchart(self, frame: _Frame) -> go.Figure:
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
                             f"or both numbers ({_describe(frame)})")
        series = [c for c in self.spec.series if c not in (start, end)]
        label_cols = [c for c in cols[:-2] if c not in series] or series
        labels = frame.df[label_cols[0]].astype(str)
        for c in label_cols[1:]:
            labels = labels + ", " + frame.df[c].astype(str)
        labels = _esc_array(labels.to_numpy())
        s = frame.df[start].to_numpy()
        e = frame.df[end].to_numpy()
        temporal = kinds <= TEMPORAL
        if temporal:
            base = s
            width = (e - s).astype("timedelta64[us]").astype("int64") / 1000.0
        else:
            base, width = s, e - s
        if len(labels) > MAX_BARS:
            self.notices.append(f"showing the first {MAX_BARS:,} of {len(labels):,} rows")
        fig = go.Figure()
        for label, idx in self._groups(frame, series):
            idx = idx[idx < MAX_BARS]
            fig.add_trace(go.Bar(y=labels[idx], x=width[idx], base=base[idx], orientation="h",
                                 name=_esc(label) if label is not None else f"{_esc(start)} → {_esc(end)}",
                                 hovertext=[f"{_esc(_card_text(a))} → {_esc(_card_text(b))}"
                                            for a, b in zip(s[idx], e[idx], strict=True)]))
        fig.update_layout(barmode="overlay", showlegend=bool(series))
        fig.update_yaxes(autorange="reversed", type="category",
                         title_text=self.spec.ytitle if self.spec.ytitle is not None else "")
        fig.update_xaxes(type="date" if temporal else "linear",
                         title_text=self.spec.xtitle if self.spec.xtitle is not None else "")
        fig.update_layout(height=max(_HEIGHT, min(40 + 22 * len(np.unique(labels[:MAX_BARS])), 1600)))
        return fig

    def _timepivot(self, frame: _Frame) -> go.Figure:
        """Events on a time line, one row per series value; hover shows the event's other columns."""
        import numpy as np
        import plotly.graph_objects as go

        x = self.spec.xcolumn or next(iter(frame.of(TEMPORAL)), None)
        if x is None or frame.types[x] not in TEMPORAL:
            raise ChartError(f"timepivot needs a datetime column ({_describe(frame)})")
        series = list(self.spec.series) or frame.of(CATEGORICAL, {x})[:1]
        groups = self._groups(frame, series)
        xs = frame.df[x].to_numpy()
        others = [c for c in frame.columns if c not in (x, *series)][:6]
        n = len(xs)
        fig = go.Figure()
        if n > MAX_POINTS:
            return self._timepivot_binned(frame, x, groups)
        hover = [""] * n
        if others:
            cols = [frame.df[c].to_numpy() for c in others]
            hover = ["<br>".join(f"{_esc(c)}={_esc(_card_text(v[i]))}"
                                 for c, v in zip(others, cols, strict=True)) for i in range(n)]
        hover = np.array(hover, dtype=object)
        for label, idx in groups:
            row = _esc(label) if label is not None else "events"
            fig.add_trace(go.Scatter(x=xs[idx], y=[row] * len(idx), mode="markers", name=row,
                                     marker={"size": 9, "symbol": "line-ns-open", "line": {"width": 2}},
                                     hovertext=hover[idx], hoverinfo="x+text+name"))
        self._timepivot_layout(fig, x, series, len(groups))
        return fig

    def _timepivot_binned(self, frame: _Frame, x: str, groups: list[tuple[str | None, Any]]) -> go.Figure:
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
            row = _esc(label) if label is not None else "events"
            fig.add_trace(go.Scatter(x=centers, y=[row] * len(uniq), mode="markers", name=row,
                                     marker={"size": 5 + 12 * np.sqrt(counts / counts.max())},
                                     hovertext=[f"{c:,} events" for c in counts], hoverinfo="x+text+name"))
            drawn += len(uniq)
        self.notices.append(f"{len(xs):,} events binned into {drawn:,} time buckets (marker size = count); "
                            "every row is in .df")
        self._timepivot_layout(fig, x, [], len(groups))
        return fig

    def _timepivot_layout(self, fig: go.Figure, x: str, series: list[str], rows: int) -> None:
        fig.update_yaxes(type="category", autorange="reversed",
                         title_text=self.spec.ytitle if self.spec.ytitle is not None else
                         ", ".join(_esc(s) for s in series))
        fig.update_xaxes(title_text=self.spec.xtitle if self.spec.xtitle is not None else _esc(x))
        fig.update_layout(showlegend=False, height=max(300, min(120 + 28 * rows, 1600)))

    # -- pivot, treemap, table --------------------------------------------------------------------

    def _pivotchart(self, frame: _Frame) -> go.Figure:
        """A pivot table drawn as an annotated heatmap: rows x columns, cells = sum of the measure."""
        import numpy as np
        import plotly.graph_objects as go

        dims = list(self.spec.series) or frame.of(CATEGORICAL | TEMPORAL)
        if self.spec.xcolumn and self.spec.xcolumn not in dims:
            dims = [self.spec.xcolumn, *dims]
        if not dims:
            raise ChartError(f"pivotchart needs at least one string or datetime column to pivot on "
                             f"({_describe(frame)})")
        ys = self._numeric_ys(frame, set(dims))
        value = ys[0]
        rows_col = dims[0]
        cols_col = dims[1] if len(dims) > 1 else None
        df = frame.df
        if cols_col is None:
            table = df.groupby(rows_col, sort=False)[value].sum().to_frame(_esc(value))
        else:
            table = df.pivot_table(index=rows_col, columns=cols_col, values=value, aggfunc="sum",
                                   sort=False)
        table = table.iloc[:200, :200]
        z = table.to_numpy(dtype="float64")
        text = np.array([[_num_text(v) for v in row] for row in z], dtype=object)
        fig = go.Figure(go.Heatmap(
            z=z, x=_esc_array([str(c) for c in table.columns]), y=_esc_array([str(r) for r in table.index]),
            text=text, texttemplate="%{text}", colorscale="Blues", hoverongaps=False,
            colorbar={"title": {"text": _esc(value)}}))
        fig.update_yaxes(type="category", autorange="reversed",
                         title_text=self.spec.ytitle if self.spec.ytitle is not None else _esc(rows_col))
        fig.update_xaxes(type="category", side="top",
                         title_text=self.spec.xtitle if self.spec.xtitle is not None else
                         _esc(cols_col or ""))
        fig.update_layout(height=max(300, min(120 + 26 * z.shape[0], 1600)))
        return fig

    def _treemap(self, frame: _Frame) -> go.Figure:
        """Nested rectangles: the series columns are the levels, the first numeric column the size."""
        import plotly.graph_objects as go

        levels = list(self.spec.series) or frame.of(CATEGORICAL)
        if not levels:
            raise ChartError(f"treemap needs at least one string column for its levels ({_describe(frame)})")
        nums = list(self.spec.ycolumns) or frame.of(NUMERIC, set(levels))
        df = frame.df[levels].astype(str).replace("", "(empty)")
        df["__v"] = frame.df[nums[0]].to_numpy(dtype="float64") if nums else 1.0
        df = df[df["__v"] > 0]
        if df.empty:
            raise ChartError("treemap: no positive values to size the rectangles")
        leaves = df.groupby(levels, sort=False)["__v"].sum().sort_values(ascending=False)
        if len(leaves) > MAX_LEAVES:
            self.notices.append(f"showing the {MAX_LEAVES:,} largest of {len(leaves):,} leaves")
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
                labels.append(_esc(path[depth]))
                parents.append("\x1f".join(path[:depth]))
                values.append(float(v))
        fig = go.Figure(go.Treemap(ids=ids, labels=labels, parents=parents, values=values,
                                   branchvalues="total", name=_esc(nums[0]) if nums else "rows",
                                   hoverinfo="label+value+percent parent"))
        fig.update_layout(height=550)
        return fig

    def _table(self) -> go.Figure:
        import plotly.graph_objects as go

        limit = getattr(self.result, "display_limit", 100)
        shown = self.result.df.head(limit)
        fig = go.Figure(go.Table(
            header={"values": [_esc(c) for c in shown.columns], "align": "left"},
            cells={"values": [[_esc(_card_text(v)) for v in shown[c]] for c in shown.columns],
                   "align": "left"}))
        self._finish(fig)
        return fig


# -- numeric helpers --------------------------------------------------------------------------------


def _describe(frame: _Frame) -> str:
    return "columns: " + ", ".join(f"{c} ({frame.types[c]})" for c in frame.columns[:12]) + (
        " ..." if len(frame.columns) > 12 else "")


def _num_text(v: float) -> str:
    if math.isnan(v):
        return ""
    return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:,.6g}"


def _isnan(v: Any) -> bool:
    try:
        return bool(math.isnan(v))
    except TypeError:
        return False


def _card_text(v: Any) -> str:
    import numpy as np

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, np.datetime64):
        return str(np.datetime_as_string(v, unit="s")).replace("T", " ") + " UTC"
    if hasattr(v, "strftime") and hasattr(v, "hour"):
        return v.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return str(v)


def _axis_value(v: Any) -> Any:
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.replace(tzinfo=None).isoformat() if getattr(v, "tzinfo", None) else v.isoformat()
    return v


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


def _lon_lat(frame: _Frame, spec: Any) -> tuple[str, str]:
    nums = frame.of(NUMERIC)
    by_name = {c.lower(): c for c in nums}
    lon = spec.xcolumn or next(
        (by_name[n] for n in ("longitude", "lon", "long", "lng") if n in by_name), None)
    lat = (spec.ycolumns[0] if spec.ycolumns else None) or next(
        (by_name[n] for n in ("latitude", "lat") if n in by_name), None)
    if lon is None or lat is None:
        if len(nums) < 2:
            raise ChartError(f"kind=map needs longitude and latitude columns ({_describe(frame)})")
        lon, lat = lon or nums[0], lat or nums[1]
    return lon, lat
