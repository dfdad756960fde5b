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

from kqlmagic_plus.display.charts.constants import (
    CATEGORICAL,
    MAX_BARS,
    MAX_LEAVES,
    MAX_POINTS,
    MAX_SERIES,
    MAX_SLICES,
    MAX_SPLITS,
    NUMERIC,
    TEMPORAL,
    WEBGL_POINTS,
)
from kqlmagic_plus.display.charts.figure import SUPPORTED, figure_for
from kqlmagic_plus.display.charts.html import (
    _plotlyjs,
    chart_html,
    figure_html,
    mimebundle_for,
    notice_html,
    reset_plotlyjs,
)
from kqlmagic_plus.errors import ChartError

__all__ = [
    "CATEGORICAL",
    "MAX_BARS",
    "MAX_LEAVES",
    "MAX_POINTS",
    "MAX_SERIES",
    "MAX_SLICES",
    "MAX_SPLITS",
    "NUMERIC",
    "SUPPORTED",
    "TEMPORAL",
    "WEBGL_POINTS",
    "ChartError",
    "_plotlyjs",
    "chart_html",
    "figure_for",
    "figure_html",
    "mimebundle_for",
    "notice_html",
    "reset_plotlyjs",
]
