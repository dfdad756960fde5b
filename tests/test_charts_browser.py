"""Charts in a real browser: the gallery notebook executed, exported to HTML, drawn by chromium, offline.

The gallery (examples/charts.ipynb) runs in a real kernel (nbclient), is exported by nbconvert, and
the page is opened in Debian's chromium. Every chart is found by its title and checked for what a
reader would see: the number of traces, points, bars, slices and indicators plotly drew in the DOM.
No request may leave the page. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from browser import ARTIFACTS, chromium, wait_for_all  # noqa: F401  (chromium is a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "examples" / "charts.ipynb"
PLOTLY_BANNER = "plotly.js v"

#: Every chart drawn (plotly made it a js-plotly-plot with its SVG inside).
ALL_DRAWN = wait_for_all(".kqlmp-plot", "el => el.classList.contains('js-plotly-plot') && "
                         "el.querySelector('.main-svg') !== null")

#: What each chart on the page looks like in the DOM, keyed by its title.
SUMMARY_JS = """() => {
  const out = {};
  const isArr = (v) => Array.isArray(v) || ArrayBuffer.isView(v);
  for (const el of document.querySelectorAll('.kqlmp-plot')) {
    const q = (s) => el.querySelectorAll(s);
    const texts = (s) => Array.from(q(s)).map(t => t.textContent);
    const title = texts('.gtitle')[0] || '(untitled)';
    const L = el._fullLayout || {};
    out[title] = {
      data: (el._fullData || []).map(d => ({type: d.type, mode: d.mode || null, name: d.name || null,
        n: (d.x || d.labels || d.ids || []).length, stackgroup: d.stackgroup || null,
        groupnorm: d.groupnorm || null, fill: d.fill || null, orientation: d.orientation || null,
        ymax: isArr(d.y) ? Array.from(d.y).reduce((m, v) => (v !== null && v > m ? v : m), -Infinity) : null,
        y: (d.type === 'scatter' && isArr(d.y) && d.y.length <= 100) ? Array.from(d.y) : null})),
      scatterTraces: q('.scatterlayer .trace').length,
      markersPerTrace: Array.from(q('.scatterlayer .trace')).map(t => t.querySelectorAll('.point').length),
      bars: q('.barlayer .point').length,
      slices: q('g.pielayer .slice').length,
      treemapSlices: q('g.treemaplayer .slice').length,
      heatmapImages: q('.heatmaplayer image').length,
      heatmapTexts: q('.heatmaplayer text').length,
      indicators: texts('.indicatorlayer text.number'),
      annotations: texts('.annotation-text'),
      legend: texts('.legendtext'),
      glCanvases: q('canvas.gl-canvas').length,
      subplots: q('.cartesianlayer .subplot').length,
      barmode: L.barmode || null, barnorm: L.barnorm || null,
      xtype: L.xaxis ? L.xaxis.type : null, ytype: L.yaxis ? L.yaxis.type : null,
      yrange: L.yaxis ? L.yaxis.range : null,
      y2overlaying: L.yaxis2 ? L.yaxis2.overlaying : null,
      ytitle: L.yaxis && L.yaxis.title ? L.yaxis.title.text : null,
      xtitle: L.xaxis && L.xaxis.title ? L.xaxis.title.text : null,
    };
  }
  return out;
}"""


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The gallery executed once in a real kernel, and exported to HTML twice.

    ``offline.html`` has nbconvert's own CDN script tags (require.js, MathJax) emptied, so the page
    must make zero requests; ``default.html`` is nbconvert's default export, as a user would make it.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    out = tmp_path_factory.mktemp("gallery")
    nb = nbformat.read(GALLERY, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(GALLERY.parent)}}).execute()
    nbformat.write(nb, out / "charts.executed.ipynb")
    offline, _ = HTMLExporter(mathjax_url="", require_js_url="").from_notebook_node(nb)
    default, _ = HTMLExporter().from_notebook_node(nb)
    (out / "offline.html").write_text(offline, encoding="utf-8")
    (out / "default.html").write_text(default, encoding="utf-8")
    return {"nb": nb, "offline": out / "offline.html", "default": out / "default.html"}


@pytest.fixture(scope="module")
def drawn(gallery: dict[str, Any], chromium) -> dict[str, Any]:  # noqa: F811
    """The offline export opened in chromium: chart summaries by title, requests, errors, page text."""
    page = chromium.new_page()
    page.open(gallery["offline"], ready=ALL_DRAWN)
    page.page.wait_for_timeout(300)
    shot = page.screenshot("charts-gallery.png")
    return {"charts": page.page.evaluate(SUMMARY_JS), "outside": page.outside_requests(),
            "errors": page.errors, "text": page.page.inner_text("body"), "screenshot": shot,
            "count": page.page.evaluate("document.querySelectorAll('.kqlmp-plot').length")}


def _chart(drawn: dict[str, Any], title: str) -> dict[str, Any]:
    assert title in drawn["charts"], f"no chart titled {title!r}; charts: {sorted(drawn['charts'])}"
    return drawn["charts"][title]


# -- the page as a whole ----------------------------------------------------------------------------


def test_gallery_draws_every_chart_offline(drawn):
    assert drawn["count"] == 27, sorted(drawn["charts"])
    assert len(drawn["charts"]) == 27
    assert drawn["outside"] == []
    assert drawn["errors"] == []
    assert drawn["screenshot"].stat().st_size > 50_000


def test_gallery_notebook_carries_plotlyjs_once_and_every_chart_as_plotly_json(gallery):
    carriers, mimes = 0, 0
    for cell in gallery["nb"].cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            carriers += PLOTLY_BANNER in data.get("text/html", "")
            if "application/vnd.plotly.v1+json" in data:
                mimes += 1
                fig = data["application/vnd.plotly.v1+json"]
                assert {"data", "layout", "config"} <= set(fig)
    assert carriers == 1
    assert mimes == 27


def test_default_nbconvert_export_draws_without_network(gallery, chromium):  # noqa: F811
    """nbconvert's default template asks cdnjs for require.js and MathJax; charts must not need them."""
    page = chromium.new_page()
    page.open(gallery["default"], ready=ALL_DRAWN)
    assert page.page.evaluate("document.querySelectorAll('.kqlmp-plot.js-plotly-plot').length") == 27
    for url in page.outside_requests():
        assert url.startswith("https://cdnjs.cloudflare.com/ajax/libs/"), url
        assert "require" in url or "mathjax" in url, url


# -- chart by chart ---------------------------------------------------------------------------------


def test_timecharts(drawn):
    c = _chart(drawn, "Sign-ins per app")
    assert c["scatterTraces"] == 3 and [d["n"] for d in c["data"]] == [72, 72, 72]
    assert c["legend"] == ["Portal", "Teams", "VPN"]
    assert c["xtype"] == "date" and c["ytitle"] == "sign-ins per hour"

    panels = _chart(drawn, "VPN sign-ins and failures (ysplit=panels)")
    assert panels["subplots"] == 2 and panels["scatterTraces"] == 2

    axes = _chart(drawn, "VPN sign-ins and failures (ysplit=axes)")
    assert axes["y2overlaying"] == "y" and axes["scatterTraces"] == 2

    log = _chart(drawn, "Sign-ins, log scale 10-2000")
    assert log["ytype"] == "log" and log["xtitle"] == "hour (UTC)"
    assert log["yrange"] == pytest.approx([1.0, math.log10(2000)])

    arrays = _chart(drawn, "make-series arrays")
    assert [d["n"] for d in arrays["data"]] == [24, 24] and arrays["xtype"] == "date"


def test_linecharts_accumulate_and_legend(drawn):
    acc = _chart(drawn, "Cumulative failures (accumulate, legend hidden)")
    assert acc["legend"] == [] and acc["scatterTraces"] == 3
    for d in acc["data"]:
        assert d["y"] == sorted(d["y"]), "accumulated values never go down"
    visible = _chart(drawn, "Teams sign-ins (legend visible)")
    assert visible["legend"] == ["Signins"]


def test_area_kinds(drawn):
    default = _chart(drawn, "Sign-ins (areachart, default)")
    assert {d["fill"] for d in default["data"]} == {"tozeroy"}
    assert not any(d["stackgroup"] for d in default["data"])
    stacked = _chart(drawn, "Sign-ins (areachart, kind=stacked)")
    assert len({d["stackgroup"] for d in stacked["data"]}) == 1 and stacked["data"][0]["stackgroup"]
    share = _chart(drawn, "Sign-in share (areachart, kind=stacked100)")
    assert share["data"][0]["groupnorm"] == "percent"  # plotly keeps it on the stack's first trace
    assert share["yrange"][1] == pytest.approx(100, rel=0.1)
    sa = _chart(drawn, "Sign-ins (stackedareachart)")
    assert sa["scatterTraces"] == 3 and all(d["stackgroup"] for d in sa["data"])


def test_column_and_bar_kinds(drawn):
    assert _chart(drawn, "Events per state (columnchart)")["bars"] == 6
    unstacked = _chart(drawn, "Events by type (columnchart, kind=unstacked)")
    assert unstacked["bars"] == 24 and unstacked["barmode"] == "group" and len(unstacked["legend"]) == 4
    assert _chart(drawn, "Events by type (columnchart, kind=stacked)")["barmode"] == "stack"
    share = _chart(drawn, "Event mix (columnchart, kind=stacked100)")
    assert share["barnorm"] == "percent" and share["bars"] == 24
    bars = _chart(drawn, "Events per type (barchart)")
    assert bars["bars"] == 4 and bars["data"][0]["orientation"] == "h"
    assert bars["yrange"][0] > bars["yrange"][1], "the first row (largest, ordered desc) is drawn on top"
    assert bars["xtitle"] == "events" or bars["ytitle"] == "event type"


def test_pie_and_maps(drawn):
    assert _chart(drawn, "Events per type (piechart)")["slices"] == 4
    pie_map = _chart(drawn, "Sign-ins by location (piechart, kind=map)")
    assert pie_map["markersPerTrace"] == [1] * 6
    assert any("without a base map" in a for a in pie_map["annotations"])
    scatter_map = _chart(drawn, "Sign-in locations (scatterchart, kind=map)")
    assert sum(scatter_map["markersPerTrace"]) == 6


def test_scatter_with_log_x(drawn):
    c = _chart(drawn, "CPU vs memory per host (scatterchart, xaxis=log)")
    assert c["markersPerTrace"] == [60, 60, 60] and c["xtype"] == "log"
    assert c["legend"] == ["web", "db", "dc"]


def test_anomalychart_marks_the_planted_anomalies(drawn):
    c = _chart(drawn, "Requests with anomalies (anomalychart)")
    assert c["scatterTraces"] == 2
    assert c["data"][0]["n"] == 72
    assert c["markersPerTrace"][1] == 3


def test_card(drawn):
    c = _chart(drawn, "Sign-in totals (card)")
    assert len(c["indicators"]) == 2
    assert all(t.replace(",", "").isdigit() for t in c["indicators"])
    assert any("LastSeen" in a and "2024-03-03 23:00:00" in a for a in c["annotations"])


def test_ladder_timepivot_pivot_treemap(drawn):
    assert _chart(drawn, "Logon sessions (ladderchart)")["bars"] == 5
    pivot = _chart(drawn, "Alerts by severity (timepivot)")
    assert sum(pivot["markersPerTrace"]) == 40 and pivot["scatterTraces"] == 3
    heat = _chart(drawn, "Events, state x type (pivotchart)")
    assert heat["heatmapImages"] == 1 and heat["heatmapTexts"] == 24
    tree = _chart(drawn, "Events by type and state (treemap)")
    assert tree["data"][0]["n"] == 4 + 24
    assert tree["treemapSlices"] >= 4


def test_million_point_timechart_is_downsampled_webgl_and_keeps_the_spike(drawn, gallery):
    c = _chart(drawn, "1,000,000 points (downsampled, WebGL)")
    assert c["data"][0]["type"] == "scattergl"
    assert c["glCanvases"] >= 1
    assert c["data"][0]["n"] <= 10_002
    assert c["data"][0]["ymax"] == 5000.0
    assert any("1,000,000 points drawn as" in a for a in c["annotations"])
    sizes = [len(json.dumps(o["data"]["application/vnd.plotly.v1+json"])) + len(o["data"]["text/html"])
             for cell in gallery["nb"].cells for o in cell.get("outputs", [])
             if "1,000,000 points" in json.dumps(o.get("data", {}).get("application/vnd.plotly.v1+json", ""))]
    assert len(sizes) == 1 and sizes[0] < 2_000_000


def test_bad_specs_show_the_table_with_a_notice(drawn):
    text = drawn["text"]
    assert "Chart not drawn: unknown chart type 'timechat' (did you mean timechart?)" in text
    assert "ycolumns names column 'Injuries', which the result does not have" in text
    assert "columnchart needs a numeric column" in text
    assert "kind must be one of default, unstacked, stacked, stacked100, map; found 'sideways'" in text


# -- plotly.js once: out of order, and cleared ------------------------------------------------------


def _page_of(tmp_path: Path, name: str, *outputs: str) -> Path:
    path = tmp_path / name
    path.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
                    + "".join(outputs) + "</body></html>", encoding="utf-8")
    return path


def _bundles(*figs: Any) -> list[str]:
    from kqlmagic_plus.display import charts

    charts.reset_plotlyjs()
    return [charts.chart_html(f.to_json(), 300) for f in figs]


def test_charts_above_the_plotlyjs_carrier_still_draw(tmp_path, chromium):  # noqa: F811
    """Cells run out of order: the chart carrying plotly.js is below the charts that wait for it."""
    import plotly.graph_objects as go

    first, second, third = _bundles(go.Figure(go.Bar(y=[1, 2])), go.Figure(go.Bar(y=[3, 4, 5])),
                                    go.Figure(go.Bar(y=[6])))
    assert PLOTLY_BANNER in first and PLOTLY_BANNER not in second + third
    page = chromium.new_page()
    page.open(_page_of(tmp_path, "order.html", second, third, first),
              ready=wait_for_all(".kqlmp-plot", "el => el.querySelector('.main-svg')"))
    bars = page.page.evaluate("Array.from(document.querySelectorAll('.kqlmp-plot'))"
                              ".map(el => el.querySelectorAll('.barlayer .point').length)")
    assert bars == [3, 1, 2]
    assert page.outside_requests() == [] and page.errors == []


def test_a_chart_whose_carrier_was_cleared_says_how_to_fix_it(tmp_path, chromium):  # noqa: F811
    import plotly.graph_objects as go

    _, orphan = _bundles(go.Figure(go.Bar(y=[1])), go.Figure(go.Bar(y=[2])))
    page = chromium.new_page()
    page.open(_page_of(tmp_path, "orphan.html", orphan),
              ready="document.querySelector('.kqlmp-wait') !== null", timeout_ms=20_000)
    note = page.page.inner_text(".kqlmp-wait")
    assert "reset_plotlyjs()" in note and "plotly.js" in note


def test_labels_from_the_data_are_text_not_markup(tmp_path, chromium):  # noqa: F811
    """Log data is attacker-controlled: it must neither run script nor fetch anything."""
    import pyarrow as pa

    from kqlmagic_plus.display import charts
    from kqlmagic_plus.language.render import split_render
    from kqlmagic_plus.results import result_from_arrow

    evil = ["</script><script>window.pwned = 1</script>", "<img src=x onerror='window.pwned=2'>",
            "<b>bold</b> & <a href='https://example.invalid'>link</a>"]
    _, spec = split_render("T | render columnchart")
    result = result_from_arrow(pa.table({"UserAgent": evil, "Count": [3, 2, 1]}), render=spec)
    charts.reset_plotlyjs()
    page = chromium.new_page()
    page.open(_page_of(tmp_path, "evil.html", charts.mimebundle_for(result)["text/html"]),
              ready=wait_for_all(".kqlmp-plot", "el => el.querySelector('.main-svg')"))
    ticks = page.page.evaluate("Array.from(document.querySelectorAll('.xtick text')).map(t => t.textContent)")
    assert ticks == evil
    assert page.page.evaluate("window.pwned === undefined")
    assert page.page.evaluate("document.querySelectorAll('.kqlmp-plot svg a, .kqlmp-plot img').length") == 0
    assert page.outside_requests() == [] and page.errors == []


def test_plotly_mime_json_draws_with_plotlyjs_alone(tmp_path, gallery, chromium):  # noqa: F811
    """What JupyterLab and VS Code do with application/vnd.plotly.v1+json: Plotly.newPlot(data, layout)."""
    from plotly.offline import get_plotlyjs

    figs = [o["data"]["application/vnd.plotly.v1+json"] for cell in gallery["nb"].cells
            for o in cell.get("outputs", []) if "application/vnd.plotly.v1+json" in o.get("data", {})]
    (tmp_path / "plotly.min.js").write_text(get_plotlyjs(), encoding="utf-8")
    divs = "".join(f'<div class="mime" id="m{i}" style="height:300px"></div>' for i in range(len(figs)))
    script = ("const figs = " + json.dumps(figs).replace("<", "\\u003c") + ";"
              "figs.forEach((f, i) => Plotly.newPlot('m' + i, f.data, f.layout, f.config));")
    page = chromium.new_page()
    page.open(_page_of(tmp_path, "mime.html", divs, '<script src="plotly.min.js"></script>',
                       f"<script>{script}</script>"),
              ready=wait_for_all(".mime", "el => el.querySelector('.main-svg')"))
    assert page.page.evaluate("document.querySelectorAll('.mime .main-svg').length") >= len(figs) == 27
    assert page.outside_requests() == [] and page.errors == []
    page.screenshot("charts-mime.png")
