"""The render clause: found on tokens, parsed into a RenderSpec, or refused with a line and column."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kqlmagic_plus.errors import QuerySyntaxError
from kqlmagic_plus.language.render import RenderSpec, split_render

# -- finding the clause -----------------------------------------------------------------------------


def test_query_without_render_is_returned_unchanged():
    q = "SigninLogs\n| where ResultType != 0\n| summarize count() by bin(TimeGenerated, 1h)"
    assert split_render(q) == (q, None)


@pytest.mark.parametrize("query", [
    'T | where Msg == "| render timechart"',
    "T | where Msg == '| render timechart'",
    'T | where Msg == @"a | render piechart"',
    "T // | render timechart\n| take 5",
    "T | where Msg has ```\n| render barchart\n```",
    "T | extend render = 1",
    "T | project render",
    "union (T | render timechart), U",
])
def test_render_inside_strings_comments_names_or_parentheses_is_not_the_operator(query):
    assert split_render(query) == (query, None)


def test_trailing_render_is_split_off_and_parsed():
    q = "SigninLogs\n| summarize n=count() by bin(TimeGenerated, 1h), App\n| render timechart // hourly\n"
    rest, spec = split_render(q)
    assert rest == "SigninLogs\n| summarize n=count() by bin(TimeGenerated, 1h), App"
    assert spec == RenderSpec(chart="timechart")


def test_every_with_property():
    q = ('T | render timechart with (title="Logons | render", xtitle=\'hour\', ytitle="count", xcolumn=Time, '
         "ycolumns=A, ['B c'], series=Host, User, kind=stacked100, ysplit=panels, accumulate=true, "
         "legend=hidden, xaxis=linear, yaxis=log, ymin=-1.5, ymax=1e3, anomalycolumns=Anom1, Anom2, "
         "xmin=datetime(2024-01-02), xmax=datetime(2024-01-03T00:00:00Z))")
    rest, spec = split_render(q)
    assert rest == "T"
    assert spec == RenderSpec(
        chart="timechart", title="Logons | render", xtitle="hour", ytitle="count", xcolumn="Time",
        ycolumns=("A", "B c"), series=("Host", "User"), kind="stacked100", ysplit="panels", accumulate=True,
        legend="hidden", xaxis="linear", yaxis="log", ymin=-1.5, ymax=1000.0,
        anomalycolumns=("Anom1", "Anom2"),
        xmin=datetime(2024, 1, 2, tzinfo=UTC), xmax=datetime(2024, 1, 3, tzinfo=UTC))


def test_unknown_properties_are_kept_not_refused():
    _, spec = split_render("T | render barchart with (titel='x', color=red)")
    assert spec.extra == {"titel": "x", "color": "red"} and spec.title is None


def test_legacy_form_without_with():
    _, spec = split_render("T | render columnchart kind=stacked title=@'It''s' accumulate=true by App, Host")
    assert spec == RenderSpec(chart="columnchart", kind="stacked", title="It's", accumulate=True,
                              series=("App", "Host"))


@pytest.mark.parametrize(("literal", "value"), [
    (r'"tab\there \"q\" \\ \u00e9"', 'tab\there "q" \\ é'),
    ("'single'", "single"),
    ('@"C:\\temp\\x ""y"""', 'C:\\temp\\x "y"'),
    ('h"hidden"', "hidden"),
    ('"con" \'cat\'', "concat"),
    ("```multi\nline```", "multi\nline"),
])
def test_string_literals_decode_like_kql(literal, value):
    _, spec = split_render(f"T | render piechart with (title={literal})")
    assert spec.title == value


def test_chart_name_is_case_folded_and_statement_terminator_allowed():
    assert split_render("T | render TimeChart;")[1].chart == "timechart"


def test_unknown_chart_type_parses_so_the_chart_layer_can_explain():
    assert split_render("T | render timechat")[1].chart == "timechat"


@pytest.mark.parametrize(("query", "message", "line", "column"), [
    ("T\n| render", "render needs a visualization name", 2, 8),
    ("T | render with (title='x')", "render needs a visualization name", 1, 11),
    ("T\n| render timechart\n| take 5", "render must be the last operator", 3, 0),
    ("T | render timechart foo", "unexpected 'foo' after the render clause", 1, 21),
    ("T | render timechart with title='x'", "expected '(' after with", 1, 26),
    ("T | render timechart with (title='x'", "not closed", 1, 26),
    ("T | render timechart with (title)", "expected '=' after title", 1, 32),
    ("T | render timechart with (title=)", "missing a value for title", 1, 33),
    ("T | render timechart with (kind=sideways)", "kind must be one of default, unstacked", 1, 32),
    ("T | render timechart with (ysplit=rows)", "ysplit must be one of none, axes, panels", 1, 34),
    ("T | render timechart with (legend=maybe)", "legend must be one of visible, hidden", 1, 34),
    ("T | render timechart with (accumulate=yes)", "accumulate must be true or false", 1, 38),
    ("T | render timechart with (ymin=low)", "ymin must be a number", 1, 32),
    ("T | render timechart with (title='a', title='b')", "title is given twice", 1, 38),
    ("T | render timechart with (title='a' ycolumns=b)", "expected ',' or ')'", 1, 37),
    ("T | render timechart with (xcolumn=[x])", "expected a quoted column name", 1, 36),
    ("T | render timechart with (title=\"open)", "unterminated string literal", 1, 33),
])
def test_malformed_clause_is_a_syntax_error_with_line_and_column(query, message, line, column):
    with pytest.raises(QuerySyntaxError) as err:
        split_render(query)
    assert message in err.value.detail
    assert (err.value.line, err.value.column) == (line, column)
    assert f"line {line}, column {column + 1}" in err.value.user_message()
    assert "^" in str(err.value)


# -- the service's visualization metadata ------------------------------------------------------------

#: The "Visualization" value of ADX's @ExtendedProperties / QueryProperties table (a JSON string).
ADX_VISUALIZATION = json.dumps({
    "Visualization": "timechart", "Title": "Logons", "XColumn": "TimeGenerated", "Series": "Computer, App",
    "YColumns": ["Count", "Failed"], "AnomalyColumns": None, "XTitle": None, "YTitle": "n", "XAxis": None,
    "YAxis": "log", "Legend": "hidden", "YSplit": "axes", "Accumulate": True, "IsQuerySorted": False,
    "Kind": "stacked", "Ymin": "NaN", "Ymax": 500, "Xmin": None, "Xmax": None})


def test_from_service_reads_adx_extended_properties():
    spec = RenderSpec.from_service(ADX_VISUALIZATION)
    assert spec == RenderSpec(chart="timechart", title="Logons", xcolumn="TimeGenerated",
                              series=("Computer", "App"), ycolumns=("Count", "Failed"), ytitle="n",
                              yaxis="log", legend="hidden", ysplit="axes", accumulate=True, kind="stacked",
                              ymax=500.0)


def test_from_service_reads_log_analytics_camel_case():
    la = {"visualization": "columnchart", "title": "24H Perf events", "accumulate": False,
          "isQuerySorted": False, "kind": "default", "annotation": "", "by": ["Computer"], "yMin": "NaN",
          "yMax": "NaN", "xColumn": None, "yColumns": None, "anomalyColumns": "Anom"}
    assert RenderSpec.from_service(la) == RenderSpec(chart="columnchart", title="24H Perf events",
                                                     kind="default", series=("Computer",),
                                                     anomalycolumns=("Anom",))


@pytest.mark.parametrize("value", [None, "", "not json", "[]", {"Visualization": None}, {"Title": "x"}])
def test_from_service_without_a_visualization_is_none(value):
    assert RenderSpec.from_service(value) is None


def test_from_service_keeps_unknown_keys():
    spec = RenderSpec.from_service({"Visualization": "card", "Theme": "dark"})
    assert spec.chart == "card" and spec.extra == {"theme": "dark"}


# -- round trips ------------------------------------------------------------------------------------

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)
specs = st.builds(
    RenderSpec,
    chart=st.sampled_from(["timechart", "barchart", "piechart", "anomalychart"]),
    title=st.none() | st.text(max_size=20),
    xcolumn=st.none() | names,
    ycolumns=st.lists(names, max_size=3).map(tuple),
    series=st.lists(names, max_size=3).map(tuple),
    kind=st.none() | st.sampled_from(["default", "stacked", "stacked100", "unstacked", "map"]),
    ysplit=st.none() | st.sampled_from(["none", "axes", "panels"]),
    accumulate=st.booleans(),
    legend=st.none() | st.sampled_from(["visible", "hidden"]),
    yaxis=st.none() | st.sampled_from(["linear", "log"]),
    ymin=st.none() | st.floats(-1e6, 1e6, allow_nan=False),
)


@settings(max_examples=150, deadline=None)
@given(specs)
def test_to_kql_parses_back_to_the_same_spec(spec):
    _, parsed = split_render("T | " + spec.to_kql())
    assert parsed == spec


@settings(max_examples=50, deadline=None)
@given(specs)
def test_to_dict_round_trips_through_json(spec):
    assert RenderSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_render_module_imports_nothing_heavy():
    code = ("import sys, kqlmagic_plus.language.render, kqlmagic_plus.display.charts; heavy = ('pandas', 'plotly', "
            "'numpy', 'duckdb', 'pyarrow'); print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
