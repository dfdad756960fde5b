"""Render specs drawn as plotly figures, and the display bundle, on real Results (no browser here)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kqlmagic_plus.display import charts
from kqlmagic_plus.display.charts import ChartError, figure_for, mimebundle_for
from kqlmagic_plus.language.render import RenderSpec, split_render
from kqlmagic_plus.results import result_from_arrow

HOURS = pd.date_range("2024-03-01", periods=24, freq="h", tz="UTC")


def result(data, clause: str, kql_types: list[str] | None = None):
    """A Result as an engine returns it, for ``T | <clause>``."""
    _, spec = split_render("T | " + clause)
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(pd.DataFrame(data),
                                                                         preserve_index=False)
    return result_from_arrow(table, kql_types, render=spec)


def fig_of(data, clause: str, kql_types: list[str] | None = None):
    return figure_for(result(data, clause, kql_types))


def notices(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.name == "kqlmp-notice"]


def signins() -> pd.DataFrame:
    return pd.DataFrame({
        "App": np.repeat(["Portal", "VPN"], 24),
        "TimeGenerated": np.tile(HOURS, 2),
        "Signins": np.arange(48),
        "Failures": np.arange(48) % 5,
    })


EVENTS = {"State": ["TX", "KS", "IA"], "Events": [30, 20, 10], "Deaths": [3, 2, 1]}


# -- column roles (KQL render documentation) ---------------------------------------------------------


def test_timechart_x_is_the_first_datetime_y_every_number_series_the_strings():
    fig = fig_of(signins(), "render timechart")
    assert [t.name for t in fig.data] == ["Portal:Signins", "Portal:Failures", "VPN:Signins", "VPN:Failures"]
    assert all(len(t.x) == 24 for t in fig.data)
    assert fig.layout.xaxis.title.text == "TimeGenerated"


def test_explicit_columns_override_the_guess():
    fig = fig_of(signins(), "render timechart with (xcolumn=TimeGenerated, ycolumns=Failures, series=App)")
    assert [t.name for t in fig.data] == ["Portal", "VPN"]
    assert list(fig.data[1].y) == list(np.arange(24, 48) % 5)
    assert fig.layout.yaxis.title.text == "Failures"


def test_several_series_columns_combine():
    df = signins().assign(Region=np.tile(["eu", "us"], 24))
    fig = fig_of(df[["TimeGenerated", "App", "Region", "Signins"]], "render timechart")
    assert sorted(t.name for t in fig.data) == ["Portal, eu", "Portal, us", "VPN, eu", "VPN, us"]


def test_timechart_sorts_by_time():
    df = signins().sample(frac=1, random_state=3)
    fig = fig_of(df, "render timechart with (ycolumns=Signins)")
    assert list(fig.data[0].y) == list(range(24))


def test_linechart_x_is_numeric_when_there_are_two_numbers():
    fig = fig_of({"Bucket": [3, 1, 2], "Count": [30, 10, 20]}, "render linechart")
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[0].y) == [10, 20, 30]


def test_columnchart_x_is_the_first_non_numeric_column():
    fig = fig_of({"Events": [30, 20], "State": ["TX", "KS"]}, "render columnchart")
    assert list(fig.data[0].x) == ["TX", "KS"] and list(fig.data[0].y) == [30, 20]


def test_make_series_arrays_are_expanded_into_points():
    stamps = [t.isoformat() for t in HOURS[:4]]
    table = pa.table({"Host": ["a", "b"], "Count": [json.dumps([1, 2, 3, 4]), json.dumps([4, 3, 2, 1])],
                      "TimeGenerated": [json.dumps(stamps)] * 2})
    fig = fig_of(table, "render timechart", ["string", "dynamic", "dynamic"])
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[1].y) == [4, 3, 2, 1]
    assert pd.Timestamp(fig.data[0].x[3]) == pd.Timestamp("2024-03-01 03:00")


def test_timespans_are_drawn_in_seconds():
    fig = fig_of({"TimeGenerated": HOURS[:3], "Duration": pd.to_timedelta([1, 2, 90], unit="s")},
                 "render timechart")
    assert list(fig.data[0].y) == [1.0, 2.0, 90.0]
    assert fig.layout.yaxis.title.text == "Duration (seconds)"


# -- properties -------------------------------------------------------------------------------------


def test_title_axis_titles_and_legend():
    fig = fig_of(signins(), "render timechart with (title='Logons', xtitle='hour', ytitle='n', "
                            "legend=hidden)")
    assert fig.layout.title.text == "Logons"
    assert (fig.layout.xaxis.title.text, fig.layout.yaxis.title.text) == ("hour", "n")
    assert fig.layout.showlegend is False
    assert fig_of(EVENTS, "render columnchart with (legend=visible)").layout.showlegend is True


def test_accumulate_adds_each_value_to_its_predecessors():
    fig = fig_of(signins(), "render linechart with (ycolumns=Failures, series=App, accumulate=true)")
    assert list(fig.data[0].y) == list(np.cumsum(np.arange(24) % 5))


def test_log_axes_and_bounds():
    fig = fig_of(signins(), "render timechart with (yaxis=log, ymin=1, ymax=100)")
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.range == (0.0, 2.0)
    fig = fig_of({"Cpu": [1.0, 10.0, 100.0], "Mem": [1, 2, 3]}, "render scatterchart with (xaxis=log)")
    assert fig.layout.xaxis.type == "log"


def test_one_sided_bound_keeps_the_other_automatic():
    fig = fig_of(signins(), "render timechart with (ymin=5)")
    assert fig.layout.yaxis.range == (5, None) and fig.layout.yaxis.autorange == "max"


def test_log_x_on_a_time_axis_is_ignored_with_a_notice():
    fig = fig_of(signins(), "render timechart with (xaxis=log)")
    assert fig.layout.xaxis.type != "log"
    assert any("xaxis=log ignored" in n for n in notices(fig))


@pytest.mark.parametrize(("kind", "mode", "norm"), [
    ("default", "group", None), ("unstacked", "group", None), ("stacked", "stack", None),
    ("stacked100", "relative", "percent")])
def test_column_kinds(kind, mode, norm):
    df = pd.DataFrame({"State": ["TX", "TX", "KS"], "Type": ["Hail", "Flood", "Hail"], "Events": [1, 2, 3]})
    fig = fig_of(df, f"render columnchart with (kind={kind})")
    assert [t.name for t in fig.data] == ["Hail", "Flood"]
    assert fig.layout.barmode == mode and fig.layout.barnorm == norm


def test_barchart_is_horizontal_with_the_first_row_on_top():
    fig = fig_of(EVENTS, "render barchart")
    assert fig.data[0].orientation == "h" and list(fig.data[0].y) == ["TX", "KS", "IA"]
    assert fig.layout.yaxis.autorange == "reversed"


@pytest.mark.parametrize(("chart", "kind", "stack", "norm"), [
    ("areachart", "default", None, None), ("areachart", "stacked", "stack1", None),
    ("areachart", "stacked100", "stack1", "percent"), ("stackedareachart", None, "stack1", None)])
def test_area_kinds(chart, kind, stack, norm):
    clause = f"render {chart}" + (f" with (kind={kind})" if kind else "")
    fig = fig_of(signins(), clause)
    assert {t.stackgroup for t in fig.data} == {stack}
    assert fig.data[0].groupnorm == norm
    if stack is None:
        assert {t.fill for t in fig.data} == {"tozeroy"}


def test_ysplit_panels_draws_one_panel_per_y_column():
    fig = fig_of(signins()[signins().App == "VPN"], "render timechart with (ysplit=panels)")
    assert [t.yaxis for t in fig.data] == ["y", "y2"]
    assert fig.layout.yaxis2.domain[1] < fig.layout.yaxis.domain[0]


def test_ysplit_axes_draws_one_axis_per_y_column():
    fig = fig_of(signins()[signins().App == "VPN"], "render timechart with (ysplit=axes)")
    assert [t.yaxis for t in fig.data] == ["y", "y2"]
    assert fig.layout.yaxis2.overlaying == "y" and fig.layout.yaxis2.title.text == "Failures"


def test_ysplit_caps_at_five_groups():
    df = pd.DataFrame({"T": np.tile(HOURS[:3], 7), "Host": np.repeat(list("abcdefg"), 3), "N": range(21)})
    fig = fig_of(df, "render timechart with (ysplit=panels)")
    assert {t.yaxis for t in fig.data} == {"y", "y2", "y3", "y4", "y5"}
    assert any("share the last panel" in n for n in notices(fig))


def test_unknown_property_is_named_in_a_notice():
    fig = fig_of(EVENTS, "render columnchart with (titel='x')")
    assert notices(fig) == ["⚠ render property 'titel' is not known and was ignored (did you mean title?)"]


# -- chart types ------------------------------------------------------------------------------------


def test_piechart_first_string_colours_first_number_sizes_duplicates_summed():
    df = {"Type": ["Hail", "Flood", "Hail"], "Events": [1, 5, 2], "Deaths": [9, 9, 9]}
    pie = fig_of(df, "render piechart").data[0]
    assert list(pie.labels) == ["Flood", "Hail"] and list(pie.values) == [5, 3]


def test_piechart_with_many_slices_folds_the_smallest_into_other():
    df = {"Host": [f"h{i:03d}" for i in range(100)], "N": list(range(100, 0, -1))}
    fig = fig_of(df, "render piechart")
    assert len(fig.data[0].labels) == charts.MAX_SLICES and fig.data[0].labels[-1] == "other (71)"
    assert sum(fig.data[0].values) == sum(range(1, 101))


def test_map_kinds_draw_on_longitude_latitude_axes():
    geo = {"Longitude": [-122.3, 2.35], "Latitude": [47.6, 48.86], "Country": ["US", "FR"], "N": [10, 1]}
    fig = fig_of(geo, "render piechart with (kind=map)")
    assert [(t.name, t.x[0]) for t in fig.data] == [("US", -122.3), ("FR", 2.35)]
    assert fig.data[0].marker.size[0] > fig.data[1].marker.size[0]
    assert any("without a base map" in n for n in notices(fig))
    fig = fig_of(geo, "render scatterchart with (kind=map, xcolumn=Longitude, ycolumns=Latitude)")
    assert fig.data[0].mode == "markers" and fig.layout.yaxis.scaleanchor == "x"


def test_anomalychart_marks_nonzero_anomaly_values_on_the_measure():
    df = pd.DataFrame({"TimeGenerated": HOURS[:6], "Requests": [5, 6, 90, 5, 1, 5],
                       "Anomaly": [0, 0, 1, 0, -1, 0]})
    fig = fig_of(df, "render anomalychart with (anomalycolumns=Anomaly)")
    line, marks = fig.data
    assert line.mode == "lines" and len(line.x) == 6
    assert marks.mode == "markers" and list(marks.y) == [90, 1]
    assert [pd.Timestamp(x) for x in marks.x] == [pd.Timestamp(HOURS[2]).tz_convert(None),
                                                  pd.Timestamp(HOURS[4]).tz_convert(None)]


def test_anomalychart_guesses_anomaly_columns_by_name_or_says_it_has_none():
    df = pd.DataFrame({"TimeGenerated": HOURS[:3], "Requests": [1, 9, 1], "Anomalies": [0, 1, 0]})
    assert len(fig_of(df, "render anomalychart").data) == 2
    fig = fig_of(df.rename(columns={"Anomalies": "Flag"}), "render anomalychart with (ycolumns=Requests)")
    assert len(fig.data) == 1 and any("no anomalies marked" in n for n in notices(fig))


def test_card_shows_the_first_row():
    df = {"Total": [70351, 1], "Ratio": [0.25, 0.5], "Last": ["WS-01", "x"]}
    fig = fig_of(df, "render card with (title='Totals')")
    assert [(t.type, t.value) for t in fig.data] == [("indicator", 70351), ("indicator", 0.25)]
    assert fig.data[0].number.valueformat == ",d"
    assert any("WS-01" in a.text for a in fig.layout.annotations)
    assert any("first row of 2" in n for n in notices(fig))


def test_ladderchart_bars_run_from_start_to_end():
    t0 = pd.Timestamp("2024-03-01 08:00", tz="UTC")
    df = {"User": ["alice", "bob"], "Start": [t0, t0 + pd.Timedelta(minutes=30)],
          "End": [t0 + pd.Timedelta(minutes=50), t0 + pd.Timedelta(minutes=45)]}
    bar = fig_of(df, "render ladderchart").data[0]
    assert list(bar.y) == ["alice", "bob"]
    assert list(bar.x) == [50 * 60_000, 15 * 60_000]  # milliseconds on a date axis
    with pytest.raises(ChartError, match="last two columns"):
        fig_of({"User": ["a"], "Start": ["x"], "End": ["y"]}, "render ladderchart")


def test_timepivot_puts_each_event_on_its_series_row():
    df = {"TimeGenerated": HOURS[:5], "Severity": ["High", "Low", "High", "High", "Low"],
          "Alert": list("abcde")}
    fig = fig_of(df, "render timepivot with (series=Severity)")
    assert [(t.name, len(t.x)) for t in fig.data] == [("High", 3), ("Low", 2)]
    assert "Alert=b" in fig.data[1].hovertext[0]


def test_timepivot_bins_many_events_by_time():
    n = charts.MAX_POINTS + 500
    df = {"TimeGenerated": pd.date_range("2024-01-01", periods=n, freq="s", tz="UTC"), "Host": ["h"] * n}
    fig = fig_of(df, "render timepivot")
    assert sum(len(t.x) for t in fig.data) <= charts.MAX_POINTS
    assert any(f"{n:,} events binned" in x for x in notices(fig))


def test_pivotchart_cells_are_sums():
    df = {"State": ["TX", "TX", "KS"], "Type": ["Hail", "Hail", "Flood"], "Events": [1, 2, 5]}
    heat = fig_of(df, "render pivotchart").data[0]
    assert list(heat.y) == ["TX", "KS"] and list(heat.x) == ["Hail", "Flood"]
    assert heat.z[0][0] == 3 and heat.z[1][1] == 5 and math.isnan(heat.z[0][1])


def test_treemap_levels_and_totals():
    df = {"Type": ["Hail", "Hail", "Flood"], "State": ["TX", "KS", "TX"], "Events": [1, 2, 5]}
    tree = fig_of(df, "render treemap").data[0]
    values = dict(zip(tree.ids, tree.values, strict=True))
    parents = dict(zip(tree.ids, tree.parents, strict=True))
    assert values["Hail"] == 3 and values["Flood"] == 5
    assert values["Hail\x1fKS"] == 2 and parents["Hail\x1fKS"] == "Hail"
    assert tree.branchvalues == "total"


def test_render_table_displays_the_table():
    r = result(EVENTS, "render table")
    assert mimebundle_for(r) is None
    assert figure_for(r).data[0].type == "table"
    assert "application/vnd.plotly.v1+json" not in r._repr_mimebundle_()


# -- large results ----------------------------------------------------------------------------------


def test_a_long_series_is_downsampled_keeping_extremes_and_uses_webgl():
    n = 200_000
    y = np.sin(np.arange(n) / 1000.0)
    y[123_457], y[7] = 50.0, -40.0
    df = {"TimeGenerated": pd.date_range("2024-01-01", periods=n, freq="s", tz="UTC"), "Value": y}
    fig = fig_of(df, "render timechart")
    trace = fig.data[0]
    assert trace.type == "scattergl"
    assert len(trace.x) <= charts.MAX_POINTS + 2
    assert max(trace.y) == 50.0 and min(trace.y) == -40.0
    assert pd.Timestamp(trace.x[0]) == pd.Timestamp("2024-01-01") and trace.y[-1] == y[-1]
    assert any(f"{n:,} points drawn as" in x for x in notices(fig))
    assert len(fig.to_json()) < 2_000_000


def test_scatter_thinning_keeps_outliers():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 50_000), rng.normal(0, 1, 50_000)
    x[999], y[999] = 40.0, 40.0
    fig = fig_of({"X": x, "Y": y}, "render scatterchart")
    assert len(fig.data[0].x) <= charts.MAX_POINTS
    assert 40.0 in list(fig.data[0].x)


def test_too_many_series_keeps_the_largest():
    df = pd.DataFrame({"T": np.tile(HOURS[:2], 150), "Host": np.repeat([f"h{i}" for i in range(150)], 2),
                       "N": np.repeat(np.arange(150), 2)})
    fig = fig_of(df, "render timechart")
    assert len(fig.data) == charts.MAX_SERIES and "h149" in {t.name for t in fig.data} and "h0" not in {
        t.name for t in fig.data}
    assert any("showing 100 of 150 series" in n for n in notices(fig))


# -- bad specs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "clause", "message"), [
    (EVENTS, "render timechat", "unknown chart type 'timechat' (did you mean timechart?)"),
    (EVENTS, "render columnchart with (ycolumns=Injuries)",
     "ycolumns names column 'Injuries', which the result does not have"),
    (EVENTS, "render columnchart with (xcolumn=Sate)", "xcolumn names column 'Sate'"),
    ({"State": ["TX"], "Type": ["Hail"]}, "render columnchart", "columnchart needs a numeric column"),
    (EVENTS, "render columnchart with (ycolumns=State)", "ycolumns: column 'State' is string, not a number"),
    (EVENTS, "render timechart", "timechart needs a datetime column"),
    ({"State": pa.array([], pa.string())}, "render piechart", "returned no rows"),
])
def test_bad_specs_raise_from_figure_for_and_show_the_table_in_display(data, clause, message):
    r = result(data, clause)
    with pytest.raises(ChartError) as err:
        figure_for(r)
    assert message in err.value.message
    bundle = r._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" not in bundle
    assert "Chart not drawn" in bundle["text/html"] and "kqlmp-table" in bundle["text/html"]
    assert "&#x27;" in bundle["text/html"] or "'" not in message


def test_display_never_raises_even_on_a_broken_spec():
    r = result(EVENTS, "render columnchart")
    r.render = {"Visualization": "columnchart"}  # raw service metadata, never converted to a RenderSpec
    bundle = r._repr_mimebundle_()
    assert "could not be drawn" in bundle["text/html"] and "kqlmp-table" in bundle["text/html"]


# -- the display bundle -----------------------------------------------------------------------------


def test_bundle_has_plotly_json_and_html_and_is_json_serializable():
    bundle = mimebundle_for(result(EVENTS, "render columnchart"))
    fig = bundle["application/vnd.plotly.v1+json"]
    assert {"data", "layout", "config"} <= set(fig) and fig["config"]["displaylogo"] is False
    json.dumps(bundle)
    assert 'class="kqlmp-plot"' in bundle["text/html"]


def test_plotlyjs_is_embedded_once_until_reset():
    charts.reset_plotlyjs()
    first = mimebundle_for(result(EVENTS, "render columnchart"))["text/html"]
    second = mimebundle_for(result(EVENTS, "render piechart"))["text/html"]
    assert "plotly.js v" in first and len(first) > 3_000_000
    assert "plotly.js v" not in second and len(second) < 50_000
    assert "window.Plotly" in second
    charts.reset_plotlyjs()
    assert "plotly.js v" in mimebundle_for(result(EVENTS, "render barchart"))["text/html"]


def test_data_cannot_break_out_of_the_chart_script_or_inject_markup():
    evil = "</script><script>alert(1)</script><b>x</b> & é"
    r = result({"Agent": [evil], "N": [1]}, "render columnchart")
    charts.reset_plotlyjs()
    mimebundle_for(r)  # the carrier
    html_out = mimebundle_for(r)["text/html"]
    assert html_out.count("</script>") == 1 and "<b>" not in html_out and html_out.isascii()
    assert list(r.figure.data[0].x) == [
        "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt; &amp; é"]


def test_no_chart_shows_the_table():
    r = result(EVENTS, "render columnchart")
    r.show_chart = False
    bundle = r._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" not in bundle and "kqlmp-table" in bundle["text/html"]


# -- through the magic ------------------------------------------------------------------------------


def test_kql_magic_on_a_dataframe_draws_the_render_clause(run_cell, ip):
    ip.user_ns["signins"] = signins()
    value, err, _ = run_cell("%%kql\nsignins\n| summarize n=sum(Signins) by App\n"
                             "| render piechart with (title='x')")
    assert err is None
    assert value.render == RenderSpec(chart="piechart", title="x")
    pie = value.figure.data[0]
    assert dict(zip(pie.labels, pie.values, strict=True)) == {"Portal": sum(range(24)),
                                                              "VPN": sum(range(24, 48))}
    assert "application/vnd.plotly.v1+json" in value._repr_mimebundle_()


def test_kql_magic_no_chart_option(run_cell, ip):
    ip.user_ns["events"] = pd.DataFrame(EVENTS)
    value, err, _ = run_cell("%%kql --no-chart\nevents | render columnchart")
    assert err is None and "application/vnd.plotly.v1+json" not in value._repr_mimebundle_()


def test_kql_magic_reports_a_malformed_render_clause_with_its_position(run_cell, ip):
    ip.user_ns["events"] = pd.DataFrame(EVENTS)
    _, err, _ = run_cell("%%kql\nevents\n| render columnchart with (kind=sideways)")
    assert err is not None and type(err).__name__ == "QuerySyntaxError"
    assert (err.line, err.column) == (2, 32)
