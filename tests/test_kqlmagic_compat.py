"""Kqlmagic notebooks run unchanged (#18): each form the real notebooks use, on a generated lake and the
loopback Log Analytics, through a real IPython shell; hostile values never change a query's meaning."""

from __future__ import annotations

import pandas as pd
import pytest
from servers.fixtures import APP_ID, APP_SECRET, TENANT, WORKSPACE, la, la_server  # noqa: F401

WINDOW = "--start 2024-03-01 --end 2024-03-07"
HOSTILE = "x' or 1==1 | union * //\" ;clientsecret='stolen'"


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from kqlmagic_plus.demo import datagen

    root = tmp_path_factory.mktemp("lake")
    datagen.generate(str(root), days=1, end_date="2024-03-06", events_per_day=2_000, seed=3, tables="SecurityEvent")
    return str(root)


@pytest.fixture
def on_lake(ip, lake, run_cell):
    _, err, _ = run_cell(f"%kql local://lake='{lake}'")
    assert err is None
    return lake


def _rows(run_cell, query: str) -> pd.DataFrame:
    value, err, out = run_cell(f"%%kql {WINDOW}\n{query}")
    assert err is None, out
    return value.df


class Widget:  # the shape of an ipywidgets Dropdown: the notebooks read .value
    def __init__(self, value):
        self.value = value


# -- -query VAR, -conn VAR ---------------------------------------------------------------------------

def test_query_option_reads_the_variable(ip, on_lake, run_cell):
    ip.user_ns["ti_query"] = "SecurityEvent | summarize n = count()"
    value, err, out = run_cell(f"%kql {WINDOW} -query ti_query")
    assert err is None, out
    assert value.query.strip() == "SecurityEvent | summarize n = count()"
    assert value.df["n"][0] == _rows(run_cell, "SecurityEvent | count")["Count"][0]


def test_query_option_missing_variable_is_named_not_sent(ip, on_lake, run_cell):
    _, err, out = run_cell("%kql -query no_such_query")
    assert err is not None and "no variable named 'no_such_query'" in out
    assert "Traceback" not in out
    ip.user_ns["n"] = 3
    _, err, out = run_cell("%kql -query n")
    assert err is not None and "expected a str variable, got int" in out


def test_quoted_query_option_is_the_text(on_lake, run_cell):
    value, err, _ = run_cell("%kql -query \"print x = 'ti_query'\"")
    assert err is None and value.df["x"][0] == "ti_query"


def test_conn_option_reads_a_dotted_variable(ip, lake, run_cell):
    class Cfg:
        conn = f"local://lake='{lake}'"

    ip.user_ns["cfg"] = Cfg()
    value, err, out = run_cell(f"%kql -conn cfg.conn {WINDOW} SecurityEvent | count")
    assert err is None, out
    assert value.df["Count"][0] > 100 and value.engine == "local"


# -- connection strings naming variables ------------------------------------------------------------

def test_connection_values_from_variables_reach_the_service(ip, la, run_cell):  # noqa: F811
    ip.user_ns.update(ws_id=WORKSPACE, ten_id=TENANT, app=APP_ID, secret=APP_SECRET, url=la.url)
    _, err, out = run_cell("%kql loganalytics://workspace=ws_id;tenant=ten_id;clientid=app;clientsecret=secret;"
                           "authority=url;endpoint=url;alias=\"Sentinel\"")
    assert err is None, out
    assert f"Connected: loganalytics://workspace={WORKSPACE}" in out
    assert "workspace from ws_id" in out and "tenant from ten_id" in out
    assert APP_SECRET not in out
    value, err, out = run_cell("%kql SigninLogs | count")
    assert err is None, out
    assert value.df["Count"][0] == 48 and la.requests[-1].workspace == WORKSPACE


def test_method_style_connection_with_variables(ip, run_cell):
    ip.user_ns.update(TENANT_ID="aaaaaaaa-1111-2222-3333-444444444444", WORKSPACE_ID=WORKSPACE)
    _, err, out = run_cell("%kql loganalytics://code().tenant(TENANT_ID).workspace(WORKSPACE_ID)")
    assert err is None, out
    assert f"workspace={WORKSPACE}" in out and "tenant from TENANT_ID, workspace from WORKSPACE_ID" in out


def test_hostile_variable_stays_one_connection_value(ip, run_cell):
    from kqlmagic_plus.engines.registry import connections

    ip.user_ns["ws_id"] = HOSTILE
    _, err, out = run_cell("%kql loganalytics://code;workspace=ws_id;alias=\"evil\"")
    assert err is None, out
    spec = connections()._specs[connections().current]
    assert spec.props["workspace"] == HOSTILE
    assert "clientsecret" not in spec.props and spec.flags == {"code"}


def test_unknown_bare_name_stays_literal(ip, run_cell):
    _, err, out = run_cell("%kql loganalytics://code;workspace=LOG_ANALYTICS_WORKSPACE_ID")
    assert err is None and "workspace=LOG_ANALYTICS_WORKSPACE_ID" in out and "from" not in out


# -- {ref} in a line --------------------------------------------------------------------------------

def test_table_column_and_value_references(ip, on_lake, run_cell):
    direct = _rows(run_cell, "SecurityEvent | where Computer contains 'DC01' | summarize n = count()")
    ip.user_ns.update(selected_table=Widget("SecurityEvent"), selected_column=Widget("Computer"),
                      data_point=Widget("DC01"))
    value, err, out = run_cell(f"%kql {WINDOW} {{selected_table.value}} | where {{selected_column.value}} "
                               "contains '{data_point.value}' | summarize n = count()")
    assert err is None, out
    assert value.df["n"][0] == direct["n"][0] > 0
    assert "DC01" not in value.query  # bound as a parameter, not spliced


def test_subscript_and_dict_references(ip, on_lake, run_cell):
    ip.user_ns.update(cols=Widget(["Computer", "Account"]), limits={"k": 4})
    value, err, out = run_cell(f"%kql {WINDOW} SecurityEvent | project {{cols.value[0]}} | take {{limits['k']}}")
    assert err is None, out
    assert value.columns == ["Computer"] and value.row_count == 4


def test_hostile_value_reference_cannot_change_the_query(ip, on_lake, run_cell):
    ip.user_ns["who"] = Widget(HOSTILE)
    value, err, out = run_cell(f"%kql {WINDOW} SecurityEvent | where Account == '{{who.value}}' | count")
    assert err is None, out
    assert value.df["Count"][0] == 0  # no row has that account: the `or 1==1 | union *` did not run
    value, err, out = run_cell(f"%kql {WINDOW} SecurityEvent | where Account == {{who.value}} | count")
    assert err is None and value.df["Count"][0] == 0


def test_hostile_identifier_reference_is_refused(ip, on_lake, run_cell):
    ip.user_ns["t"] = Widget("SecurityEvent | union *")
    value, err, out = run_cell(f"%kql {WINDOW} {{t.value}} | count")
    assert err is not None and value is None
    assert "table or column position" in out and "Traceback" not in out


def test_expression_in_braces_names_the_safe_alternative(ip, on_lake, run_cell):
    ip.user_ns["n"] = 2
    _, err, out = run_cell("%kql SecurityEvent | take {n + 1}")
    assert err is not None and "--param" in out and "nothing is evaluated" in out
    _, err, out = run_cell("%kql SecurityEvent | take {n.__class__}")
    assert err is not None and "--param" in out


def test_kql_braces_and_cells_are_left_alone(ip, run_cell):
    ip.user_ns["a"] = "nope"
    value, err, _ = run_cell("%kql print d = dynamic({\"a\": 1}), r = '\\\\d{3}'")
    assert err is None and value.df["d"][0] == {"a": 1}
    value, err, _ = run_cell("%%kql\nprint s = '{a}'")
    assert err is None and value.df["s"][0] == "{a}"


# -- options anywhere, <<, abbreviations, params dict -----------------------------------------------

def test_options_after_the_connection(ip, lake, run_cell):
    _, err, out = run_cell(f"%%kql local://lake='{lake}' -o r --show-query {WINDOW}\nSecurityEvent | count")
    assert err is None, out
    assert ip.user_ns["r"].df["Count"][0] > 100 and "-- ran on" in out


def test_comment_after_the_connection_is_dropped(ip, lake, run_cell):
    value, err, out = run_cell(f"%%kql local://lake='{lake}' // -try_azcli_login\n"
                               "SecurityEvent | where TimeGenerated between (datetime(2024-03-01) .. 7d) | count")
    assert err is None, out
    assert value.df["Count"][0] > 100


def test_result_variable_line_and_cell_forms(ip, run_cell):
    _, err, _ = run_cell("%kql first << print x = 1")
    assert err is None and ip.user_ns["first"].df["x"][0] == 1
    _, err, _ = run_cell("%%kql second <<\nprint y = 2")
    assert err is None and ip.user_ns["second"].df["y"][0] == 2


def test_kqlmagic_abbreviations(ip, run_cell):
    from kqlmagic_plus.magics import compat

    compat._SAID.clear()
    value, err, out = run_cell("%kql -sq -to 30 -dl 1 print x = 1")
    assert err is None and "-- ran on" in out and value.display_limit == 1
    value, err, out = run_cell("%kql -pn Set1 -pw -pd 0.5 print x = 1")
    assert err is None and "no effect here: -pn, -pw, -pd" in out
    _, _, out = run_cell("%kql -pn Set1 print x = 1")
    assert "no effect" not in out  # said once per session
    value, err, out = run_cell("%kql -!show_query print x = 1")
    assert err is None and "-- ran on" not in out


def test_refused_kqlmagic_option_names_the_replacement(run_cell):
    _, err, out = run_cell("%kql -ad print x = 1")
    assert err is not None and "-ad is not supported here" in out and ".to_dataframe()" in out
    _, err, out = run_cell("%kql -bogus print x = 1")
    assert err is not None and "unknown option '-bogus'" in out


def test_params_dict(ip, run_cell):
    ip.user_ns["p"] = {"who": HOSTILE}
    value, err, out = run_cell("%kql -params_dict p print w = who")
    assert err is None, out
    assert value.df["w"][0] == HOSTILE


# -- the shell: comments above %%kql, %config Kqlmagic, --version, --help ----------------------------

def test_python_comments_above_cell_magic(ip, run_cell):
    value, err, out = run_cell("# list the tables\n\n# (a second comment)\n%%kql\nprint x = 7")
    assert err is None, out
    assert value.df["x"][0] == 7
    _, err, _ = run_cell("# a Python cell stays Python\nzz = 5")
    assert err is None and ip.user_ns["zz"] == 5


def test_query_option_with_equals_and_escaped_braces(ip, run_cell):
    ip.user_ns.update(q="print s = 'from q'", x="v")
    value, err, out = run_cell("%kql -query=q")
    assert err is None and value.df["s"][0] == "from q", out
    value, err, out = run_cell("%kql print a = '{{x}}', b = '{x}'")
    assert err is None and value.df.iloc[0].tolist() == ["{{x}}", "v"], out


def test_comment_inside_quotes_on_the_magic_line_is_kept():
    from kqlmagic_plus.options import parse_kql_line

    parsed = parse_kql_line("loganalytics://workspace='w';endpoint='https://h //x' // -try_azcli_login -o r", "T")
    assert parsed.conn == "loganalytics://workspace='w';endpoint='https://h //x'" and parsed.out is None


def test_kqlmagic_cells_in_a_real_kernel(tmp_path):
    """What a frontend sends: a cell with comments above %%kql, a connection from variables, a {ref}."""
    import os

    from test_completion_kernel import ROOT, Kernel

    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "HOME": str(tmp_path)}
    kernel = Kernel(env, cwd=str(tmp_path))
    run = kernel.run
    try:
        run("%load_ext kqlmagic_plus")
        out = run("# Kqlmagic allowed a comment here\n\n%%kql\nprint answer = 6 * 7")
        assert "answer" in out and "42" in out
        run(f"ws_id = '{WORKSPACE}'")
        out = run("%kql loganalytics://code;workspace=ws_id;alias=\"Sentinel\"")
        assert f"workspace={WORKSPACE}" in out and "workspace from ws_id" in out
        run("class W:\n    value = 'x\" | union *'\nsel = W()")
        out = run("%kql --dry-run -sq Heartbeat | where Computer == '{sel.value}'")
        assert "let py_sel_value = " in out and "where Computer == py_sel_value" in out
    finally:
        kernel.stop()


def test_config_kqlmagic_applies_the_setting_once_noted(run_cell):
    from kqlmagic_plus.config import settings
    from kqlmagic_plus.magics import compat

    compat._SAID.clear()

    _, err, out = run_cell("%config Kqlmagic.display_limit = 5")
    assert err is None and settings().display_limit == 5
    assert "applied as KqlMagicPlus.display_limit" in out
    _, _, out = run_cell("%config Kqlmagic.display_limit = 6")
    assert settings().display_limit == 6 and "applied as" not in out
    _, _, out = run_cell("%config Kqlmagic.auto_limit = 10")
    assert "not supported here" in out and "| take N" in out


def test_version_and_help_topics(run_cell):
    from kqlmagic_plus import __version__

    _, err, out = run_cell("%kql --version")
    assert err is None and out.strip() == f"kqlmagic_plus {__version__}"
    _, _, out = run_cell('%kql --help "conn"')
    assert "loganalytics://" in out
    _, _, out = run_cell("%kql --help kqlmagic")
    assert "-sq" in out and "--show-query" in out and "kqlmagic-plus migrate" in out


def test_kqlmagic_commands(run_cell):
    _, err, out = run_cell('%kql --help "help" -popup_window')
    assert err is None and "--show-query" in out and "-popup_window" not in out
    _, err, out = run_cell("%kql --usage")
    assert err is None and "Options:" in out
    _, err, out = run_cell("%kql --palette -pn Reds")
    assert err is not None and "--palette is not supported here" in out and "colorway" in out
    _, err, out = run_cell("%kql --config")
    assert err is None and "KqlMagicPlus.display_limit = " in out


def test_columns_to_local_vars(ip, run_cell):
    _, err, out = run_cell("%kql -c2lv print Account = 'alice', print = 1, Count = 3")
    assert err is None, out
    assert ip.user_ns["Account"].tolist() == ["alice"] and ip.user_ns["Count"].tolist() == [3]
    assert "print" not in ip.user_ns and "not stored (not a free variable name): print" in out


def test_db_at_cluster_before_options(ip, run_cell):
    ip.user_ns["my_query"] = "StormEvents | take 1"
    _, err, out = run_cell("%kql Samples@help -query my_query --dry-run")
    assert err is None, out
    r = ip.user_ns["_kql_raw_result_"]
    assert r.query == "StormEvents | take 1" and r.engine == "adx" and r.connection == "adx://https://help.kusto.windows.net/Samples"


# -- Result methods ---------------------------------------------------------------------------------

def test_result_methods(ip, run_cell, tmp_path):
    value, err, _ = run_cell("%kql print x = 1, y = 'a' | extend n = x * 2")
    assert err is None
    path = tmp_path / "r.csv"
    value.to_csv(path)
    assert path.read_text().splitlines() == ["x,y,n", "1,a,2"]
    assert value.show_table()._repr_html_().count("<td>") == 3
    info = value.completion_query_info
    assert info["rows"] == 1 and info["truncated"] is False
    assert value.refresh().df.equals(value.df)


def test_show_chart_is_a_switch_and_a_method(run_cell):
    value, err, _ = run_cell("%kql range x from 1 to 5 step 1 | extend y = x * x | render linechart")
    assert err is None
    assert bool(value.show_chart) and value.show_chart == True  # noqa: E712
    assert len(value.show_chart().data) == 1
    value.show_chart = False
    assert not value.show_chart and "text/html" in value._repr_mimebundle_()
    plain, _, _ = run_cell("%kql print x = 1")
    with pytest.raises(ValueError, match="no chart"):
        plain.show_chart()


def test_parametrized_query(ip, run_cell):
    ip.user_ns["who"] = Widget(HOSTILE)
    value, err, _ = run_cell("%kql print w = '{who.value}'")
    assert err is None and value.df["w"][0] == HOSTILE
    text = value.parametrized_query
    assert text.startswith("let py_who_value = ") and "print w = py_who_value" in text


# -- schemes ---------------------------------------------------------------------------------------

def test_schemes_and_retired_services(run_cell):
    _, err, out = run_cell("%kql azure-data-explorer://cluster='https://help.kusto.windows.net';database='Samples';code")
    assert err is None and "Connected: adx://" in out
    _, err, out = run_cell("%kql appinsights://appid='a';appkey='k'")
    assert err is not None and "retired" in out and "loganalytics://" in out
    _, err, out = run_cell("%kql loganalytics://workspace='w';appkey='topsecret-key'")
    assert err is not None and "API-key sign-in" in out and "topsecret-key" not in out
