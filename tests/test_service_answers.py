"""Service answers in the real services' shapes (tests/servers/answers.py), replayed through the real
azure-kusto-data and azure-monitor-query clients on loopback, compared cell by cell with the SDK's own
parsing of the same bytes (issue #23)."""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

import decimal
import json
import math

import pytest
from servers import Fault, answers
from servers.fixtures import (  # noqa: F401  (fixtures)
    WORKSPACE,
    adx_conn,
    home,
    kusto_proxy,
    kusto_proxy_server,
    kusto_serve,
    la,
    la_conn,
    la_server,
)

import kqlmagic_plus as kp
from kqlmagic_plus.errors import KqlMagicPlusError, QueryError, QueryTimeoutError

pytest.importorskip("azure.kusto.data")


@pytest.fixture
def adx(kusto_serve, kusto_proxy):
    """Run a canned ADX answer through the real KustoClient: ``adx(name)`` -> Result."""
    conn = adx_conn(kusto_proxy.url, kusto_serve.name)

    def run(name: str, *, v1: bool = False, status_body: tuple[int, bytes] | None = None, query: str = "",
            **kwargs):
        body = status_body or (200, (answers.ADX_V1 if v1 else answers.ADX_V2)[name])
        kusto_proxy.canned[name] = body
        text = query or ((".show tables" if v1 else "Events | take 1") + f" // fixture:{name}")
        return kp.kql(text, conn=conn, **kwargs)

    return run


def _sdk_v2(name: str, index: int = 0):
    """The SDK's reading of the same bytes: (rows as KustoResultRow values, DataFrame) of a primary table."""
    from azure.kusto.data.helpers import dataframe_from_result_table
    from azure.kusto.data.response import KustoResponseDataSetV2

    ds = KustoResponseDataSetV2(json.loads(answers.ADX_V2[name]))
    table = ds.primary_results[index]
    return [list(r) for r in table.rows], _sdk_frame(table, dataframe_from_result_table), table


def _sdk_frame(table, dataframe_from_result_table):
    # The SDK's DataFrame builds its frame from the rows first: a long column with a null becomes
    # float64 there and its Int64 cast fails on values past 2**53. Those cells are compared with its
    # rows; the DataFrame is for datetimes (exact ticks) and reals (NaN/Infinity).
    keep = {"long": lambda c, f: f[c], "int": lambda c, f: f[c]}
    return dataframe_from_result_table(table, converters_by_type=keep)


def _sdk_v1(name: str):
    from azure.kusto.data.helpers import dataframe_from_result_table
    from azure.kusto.data.response import KustoResponseDataSetV1

    ds = KustoResponseDataSetV1(json.loads(answers.ADX_V1[name]))
    table = ds.primary_results[0]
    return [list(r) for r in table.rows], _sdk_frame(table, dataframe_from_result_table), table


def _same_cell(kql_type: str, ours, sdk_row, sdk_df) -> bool:
    """Ours against the SDK: datetimes against its DataFrame (exact ticks) to the nearest microsecond,
    timespans against its rows (rounded timedeltas), reals against its DataFrame (NaN/Infinity read)."""
    import pandas as pd

    if sdk_row is None:
        return ours is None or ours is pd.NA or (isinstance(ours, float) and math.isnan(ours)) or pd.isna(ours)
    if kql_type == "datetime":
        return ours == sdk_df.round("us")
    if kql_type == "timespan":
        return ours == pd.Timedelta(sdk_row)
    if kql_type == "real":
        if pd.isna(sdk_df):
            return math.isnan(ours)
        return ours == float(sdk_df)
    if kql_type == "decimal":
        return decimal.Decimal(ours) == decimal.Decimal(sdk_row)
    return ours == sdk_row


def _compare(result, sdk_rows, sdk_df, sdk_table) -> None:
    assert result.columns == [c.column_name for c in sdk_table.columns]
    assert result.row_count == len(sdk_rows)
    df = result.df
    for j, (name, kt) in enumerate(zip(result.columns, result.kql_types, strict=True)):
        for i in range(result.row_count):
            ours = df[name].iloc[i]
            assert _same_cell(kt, ours, sdk_rows[i][j], sdk_df[name].iloc[i]), (name, i, ours, sdk_rows[i][j])


# -- ADX v2 ----------------------------------------------------------------------------------------------------


def test_adx_every_type_with_nulls_matches_the_sdk(adx):
    r = adx("types")
    assert r.kql_types == [t for _, t, _ in answers.TYPED]
    _compare(r, *_sdk_v2("types"))
    # long's minimum overflows the client's streaming JSON parser: the answer is read whole, and the
    # Result says its completion frame went unread (nothing else).
    assert [w for w in r.warnings if "completion frame" not in w] == [] and not r.truncated
    assert len(r.warnings) == 1


def test_adx_ticks_round_to_the_nearest_microsecond_as_the_sdk(adx):
    """7 fraction digits: the SDK's timedelta rounds (ties to even) and its DataFrame keeps the ticks;
    truncating made 0.0000006 s read as 0 us."""
    import pandas as pd

    r = adx("ticks")
    _compare(r, *_sdk_v2("ticks"))
    spans = list(r.df["P"][:6])
    assert spans == [pd.Timedelta(microseconds=us) for us in (0, 1, 2, 2, 1_000_000, -2)]
    times = list(r.df["T"][:6])
    assert [t.microsecond for t in times] == [0, 1, 2, 2, 0, 0]
    assert str(times[4]) == "2024-05-01 00:00:01+00:00" and str(times[5]) == "1970-01-01 00:00:00+00:00"


def test_adx_fraction_digits_0_1_2_3_7(adx):
    r = adx("types")
    assert [str(v) for v in r.df["T"][[0, 1, 3, 4, 5]]] == [
        "2024-05-01 10:20:30+00:00", "2024-05-01 10:20:30.100000+00:00", "2024-05-01 10:20:30.120000+00:00",
        "2024-05-01 10:20:30.123000+00:00", "2024-05-01 10:20:30.123457+00:00"]
    import pandas as pd

    assert r.df["P"][5] == pd.Timedelta(days=10000, hours=2, minutes=48, seconds=5, microseconds=477581)


def test_adx_empty_table_keeps_its_columns(adx):
    r = adx("empty")
    assert r.row_count == 0 and r.columns == ["Account", "N", "T"] and r.kql_types == ["string", "long", "datetime"]
    _compare(r, *_sdk_v2("empty"))


def test_adx_several_tables_are_all_reachable(adx):
    r = adx("several")
    assert [t.name for t in r.tables] == ["PrimaryResult", "Table_1", "Table_2"]
    assert r.table_named("Table_1").df["Total"].tolist() == [3]
    assert r.table_named("Table_2").columns == ["X"] and r.table_named("Table_2").row_count == 0
    for i, t in enumerate(r.tables):
        _compare(t, *_sdk_v2("several", i))
    assert any(".tables" in w for w in r.warnings)
    with pytest.raises(KeyError, match="Table_1"):
        r.table_named("nope")


def _html_tables(page: str) -> list[list[list[str]]]:
    """The cells of each <table> in *page*, row by row (header row first)."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables: list[list[list[str]]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th") and self.cell is not None:
                self.tables[-1][-1].append("".join(self.cell).strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    parser.feed(page)
    return parser.tables


def test_adx_several_tables_are_all_shown_each_under_its_name(adx):
    """The notebook's HTML shows every result table, titled, not only the first (issue #23)."""
    r = adx("several")
    page = r._repr_mimebundle_()["text/html"]
    titles = [f"{name} · {n}" for name, n in (("PrimaryResult", "2 rows"), ("Table_1", "1 row"),
                                                ("Table_2", "0 rows"))]
    at = [page.find(t) for t in titles]
    assert all(i >= 0 for i in at) and at == sorted(at), (at, page[:400])
    shown = _html_tables(page)
    assert [t[0] for t in shown] == [["Account", "N"], ["Total"], ["X"]]
    assert shown[0][1:] == [["alice", "1"], ["bob", "2"]] and shown[1][1:] == [["3"]] and shown[2][1:] == []
    assert any("each is shown under its name" in w for w in r.warnings)
    # One table: no titles, as before.
    one = adx("types")._repr_mimebundle_()["text/html"]
    assert "kqlmp-table-title" not in one


@pytest.mark.parametrize("name", ["truncated-current", "truncated-older"])
def test_adx_truncation_in_both_wordings(adx, name):
    r = adx(name)
    assert r.truncated and r.row_count == 2
    assert any("truncated" in w for w in r.warnings)


def test_adx_partial_failure_and_warning_are_not_silent(adx):
    r = adx("partial")
    assert not r.truncated and any(w.startswith("Partial result") and "shard" in w for w in r.warnings)
    w = adx("warning")
    assert any("deprecated function" in x for x in w.warnings)


def test_adx_statistics_reach_the_result(adx):
    r = adx("types")
    assert any(row.get("EventTypeName") == "QueryResourceConsumption" for row in r.stats["completion"])


def test_adx_visualization_null_and_set(adx):
    assert adx("visualization-null").render is None
    spec = adx("visualization-set").render
    assert spec is not None and spec.chart == "barchart"


def test_adx_unknown_column_type_is_kept_as_text_with_a_warning(adx):
    r = adx("unknown-type")
    assert r.df["Shape"].tolist() == ["POINT (1 2)"] and r.kql_types == ["string", "string"]
    assert any("'geography'" in w and "does not know" in w for w in r.warnings)


def test_adx_progressive_answer_is_never_a_silent_empty_result(adx, kusto_proxy):
    r = adx("progressive", query="+results_progressive_enabled Events | take 1 // fixture:progressive")
    assert kusto_proxy.sent[-1].properties["Options"]["results_progressive_enabled"] is False
    assert any("no result table" in w for w in r.warnings)
    assert any("results_progressive_enabled was turned off" in w for w in r.warnings)


def test_adx_error_row_in_a_table_is_a_one_line_error(adx):
    with pytest.raises(KqlMagicPlusError) as e:
        adx("in-table-error")
    assert "\n" not in e.value.message and "80DA0003" in e.value.message


def test_adx_asks_for_errors_in_the_data_where_the_client_reads_them(adx, kusto_proxy):
    """An error placed at the end of the data set rides on DataSetCompletion, which azure-kusto-data's
    execute() drops; in_data puts it in a table row, which the client raises on."""
    r = adx("types", query="+results_error_reporting_placement=end_of_dataset Events | take 1 // fixture:types")
    assert kusto_proxy.sent[-1].properties["Options"]["results_error_reporting_placement"] == "in_data"
    assert any("replaced by in_data" in w for w in r.warnings)
    adx("types")
    assert kusto_proxy.sent[-1].properties["Options"]["results_error_reporting_placement"] == "in_data"


def test_adx_error_only_in_dataset_completion_is_not_silent(adx):
    """An error carried only by DataSetCompletion.OneApiErrors (a service that ignores the in_data
    request): execute() drops that frame; the engine reads it through the streaming reader."""
    r = adx("completion-error-only")
    assert r.row_count == len(answers.SMALL[0][2])
    assert r.truncated
    assert any("E_QUERY_RESULT_SET_TOO_LARGE" in w and "truncated" in w for w in r.warnings), r.warnings
    with pytest.raises(KqlMagicPlusError, match="E_QUERY_RESULT_SET_TOO_LARGE"):
        adx("completion-error-only", fail_on_partial=True)


# -- ADX errors ----------------------------------------------------------------------------------------------


def test_adx_limits_exceeded_result_size_is_not_a_timeout(adx):
    with pytest.raises(QueryError) as e:
        adx("limits-result-size", status_body=answers.ADX_ERRORS["limits-result-size"])
    assert not isinstance(e.value, QueryTimeoutError)
    assert "result size" in str(e.value) and "--timeout" not in str(e.value)
    assert "notruncation" in (e.value.hint or "")


@pytest.mark.parametrize("name", ["timeout", "syntax", "missing-db", "throttled"])
def test_adx_error_bodies_are_one_line(adx, name):
    with pytest.raises(KqlMagicPlusError) as e:
        adx(name, status_body=answers.ADX_ERRORS[name])
    assert "\n" not in e.value.message and "Traceback" not in str(e.value)
    if name == "syntax":
        assert isinstance(e.value, QueryError) and "SYN0002" in str(e.value)


# -- ADX v1 (.show) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["show-tables", "show-typed", "show-empty", "status-ok"])
def test_adx_v1_show_answers_match_the_sdk(adx, name):
    r = adx(name, v1=True)
    _compare(r, *_sdk_v1(name))
    assert r.warnings == []


def test_adx_v1_query_status_error_is_not_silent(adx):
    r = adx("status-error", v1=True)
    assert r.row_count == 2
    assert any(w.startswith("Partial result") and "7f3e" in w for w in r.warnings)


# -- Log Analytics -------------------------------------------------------------------------------------------


@pytest.fixture
def la_run(la, home):
    def run(name: str):
        la.inject(Fault("answer", payload=answers.LA[name]))
        return kp.kql("SigninLogs | take 1", conn=la_conn(la))

    return run


def _sdk_la(la, name: str):
    """The real LogsQueryClient's reading of the same answer (LogsTable rows, typed by the SDK)."""
    from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult
    from servers import StaticToken

    la.inject(Fault("answer", payload=answers.LA[name]))
    client = LogsQueryClient(StaticToken(la.static_token()), endpoint=la.url + "/v1")
    out = client.query_workspace(WORKSPACE, "SigninLogs | take 1", timespan=None)
    tables = out.partial_data if isinstance(out, LogsQueryPartialResult) else out.tables
    return tables


def _compare_la(result, table) -> None:
    import pandas as pd
    from azure.kusto.data._converters import to_timedelta

    assert result.columns == list(table.columns)
    assert result.row_count == len(table.rows)
    df = result.df
    for j, (name, kt) in enumerate(zip(result.columns, result.kql_types, strict=True)):
        for i, row in enumerate(table.rows):
            ours, sdk = df[name].iloc[i], row[j]
            if kt in ("timespan", "guid") and sdk == "None":
                sdk = None  # the SDK hands these over as str(value): a null arrives as "None"
            if sdk is None:
                assert ours is None or pd.isna(ours), (name, i, ours)
            elif kt == "datetime":
                assert ours == pd.Timestamp(sdk), (name, i)
            elif kt == "timespan":
                assert ours == pd.Timedelta(to_timedelta(sdk)), (name, i)  # the SDK's timedelta, rounded
            elif kt == "dynamic":
                try:
                    expected = json.loads(sdk) if isinstance(sdk, str) else sdk
                except ValueError:
                    expected = sdk  # not JSON: the SDK's text
                assert ours == expected, (name, i, ours, sdk)
            elif kt == "decimal":
                assert decimal.Decimal(ours) == decimal.Decimal(sdk)
            else:
                assert ours == sdk, (name, i, ours, sdk)


@pytest.mark.parametrize("name", ["types", "empty", "statistics", "render"])
def test_la_answers_match_the_sdk(la, la_run, name):
    r = la_run(name)
    (table,) = _sdk_la(la, name)
    _compare_la(r, table)


def test_la_dynamic_that_is_not_json_falls_back_to_the_text(la, la_run):
    r = la_run("not-json-dynamic")
    assert r.df["Y"].tolist() == ["{not json", {"ok": True}, None, "plain words"]
    (table,) = _sdk_la(la, "not-json-dynamic")
    _compare_la(r, table)


def test_la_second_table_is_kept(la, la_run):
    r = la_run("several")
    assert [t.name for t in r.tables] == ["PrimaryResult", "Table_1"]
    assert r.table_named("Table_1").df["Total"].tolist() == [3]
    sdk = _sdk_la(la, "several")
    for ours, theirs in zip(r.tables, sdk, strict=True):
        _compare_la(ours, theirs)


@pytest.mark.parametrize("name", ["partial", "truncated", "truncated-older"])
def test_la_partial_and_truncated_are_not_silent(la, la_run, name):
    r = la_run(name)
    assert r.row_count == 2
    assert r.truncated == name.startswith("truncated")
    assert r.warnings


def test_la_statistics_and_render_reach_the_result(la_run):
    assert la_run("statistics").stats["service"]["query"]["executionTime"] == 0.031
    spec = la_run("render").render
    assert spec is not None and spec.chart == "barchart"


def test_la_unknown_column_type_is_kept_as_text(la_run):
    r = la_run("unknown-type")
    assert r.df["Shape"].tolist() == ["POINT (1 2)"] and any("'geography'" in w for w in r.warnings)


def test_la_several_tables_are_not_cached_as_one(la, la_run, home, cache_dir):
    la.inject(Fault("answer", payload=answers.LA["several"]))
    r = kp.kql("SigninLogs | take 2", conn=la_conn(la), cache="1h")
    assert any("not cached" in w and "2 tables" in w for w in r.warnings)
    la.inject(Fault("answer", payload=answers.LA["several"]))
    again = kp.kql("SigninLogs | take 2", conn=la_conn(la), cache="1h")
    assert not again.from_cache and len(again.tables) == 2


@pytest.mark.parametrize("name", sorted(answers.LA_ERRORS))
def test_la_error_bodies_are_one_line_with_the_innermost_words(la, home, name):
    status, body = answers.LA_ERRORS[name]
    la.inject(*[Fault("error", status=status, payload=body, retry_after="0")] * 6)
    with pytest.raises(KqlMagicPlusError) as e:
        kp.kql("SigninLogs | take 1", conn=la_conn(la))
    message = e.value.message
    assert "\n" not in message and "Traceback" not in str(e.value), message
    innermost = body["error"]
    while "innererror" in innermost:
        innermost = innermost["innererror"]
    if status == 400:
        assert isinstance(e.value, QueryError) and innermost["message"][:20] in message
