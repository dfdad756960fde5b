"""The display bundle of a figure, and its ``text/html`` form: plotly.js once per process, every chart waits.

The first chart of the process carries plotly.js (4.8 MB), later charts wait for ``window.Plotly``;
exported HTML therefore draws every chart offline, even when cells ran out of order. If the carrier
output was cleared, the waiting charts say so and :func:`reset_plotlyjs` makes the next chart carry it.
"""

from __future__ import annotations

import html
import json
import re
import threading
import uuid
from typing import Any

from kqlmagic_plus.display.charts.constants import HEIGHT
from kqlmagic_plus.errors import ChartError

_CONFIG = {"displaylogo": False, "responsive": True}


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
    height = int(fig.layout.height or HEIGHT)
    return {"application/vnd.plotly.v1+json": mime, "text/html": chart_html(fig_json, height)}


def figure_html(fig: Any) -> str:
    """Any plotly figure as offline HTML (plotly.js sent once per kernel); a notice instead if it fails."""
    try:
        return chart_html(fig.to_json(validate=False, engine="auto"), int(fig.layout.height or HEIGHT))
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


def chart_html(fig_json: str, height: int = HEIGHT) -> str:
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
