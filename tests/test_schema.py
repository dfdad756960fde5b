"""``%kql --schema [conn]``: Kqlmagic's shape {table: {column: type}} for every engine, and its HTML view."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest
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
    secret_free,
)

from kqlmagic_plus import api
from kqlmagic_plus.engines.registry import connections
from kqlmagic_plus.errors import RemoteError
from kqlmagic_plus.options import parse_kql_line


@pytest.fixture(autouse=True)
def _fresh_connections():
    connections().close_all()
    yield
    connections().close_all()


def test_local_schema_lists_duckdb_tables_mounts_and_dataframes(tmp_path):
    import duckdb_kql
    import pandas as pd
    import pyarrow.parquet as pq

    db = tmp_path / "hunt.duckdb"
    con = duckdb_kql.connect(str(db))
    con.execute("CREATE TABLE Hosts AS SELECT 'web01' AS Host, 3 AS Cores, TIMESTAMP '2024-01-01' AS Seen")
    con.close()
    pq.write_table(pa.table({"SrcIp": ["10.0.0.1"], "Bytes": [1.5]}), tmp_path / "flows.parquet")
    conn = f"local://db='{db}'"
    api.run_line(parse_kql_line(f"--conn {conn} --mount Flows={tmp_path / 'flows.parquet'}"))
    ns = {"Alerts": pd.DataFrame({"Severity": ["High"], "Count": [2]}), "not_a_table": 3}
    schema = api.run_line(parse_kql_line(f"--schema {conn}"), namespace=ns)
    assert isinstance(schema, dict)
    assert schema["Hosts"] == {"Host": "string", "Cores": "int", "Seen": "datetime"}
    assert schema["Flows"] == {"SrcIp": "string", "Bytes": "real"}
    assert schema["Alerts"] == {"Severity": "string", "Count": "long"}
    assert "not_a_table" not in schema
    html = schema._repr_html_()
    assert "<summary>Hosts" in html and "Cores" in html and "<script" not in html


def test_html_view_escapes_names():
    from kqlmagic_plus.display.schema import SchemaView

    html = SchemaView({"T<x>": {"a&b": "string"}}, "local://")._repr_html_()
    assert "T&lt;x&gt;" in html and "a&amp;b" in html and "<x>" not in html


def test_loganalytics_schema_from_the_metadata_api_fetched_once(la, home):  # noqa: F811
    conn = la_conn(la)
    schema = api.schema(conn)
    assert schema["SigninLogs"] == {"TimeGenerated": "datetime", "UserPrincipalName": "string",
                                    "ResultType": "long", "IPAddress": "string", "Latency": "real"}
    assert la.counts["metadata"] == 1
    assert connections().current is None or connections().current.startswith("local://")  # still the same
    api.schema(conn)
    assert la.counts["metadata"] == 1  # cached per connection
    api.schema(conn, refresh=True)
    assert la.counts["metadata"] == 2
    assert secret_free(repr(schema), schema._repr_html_(), schema.connection)


def test_kqlmagic_notebook_line_schema_of_alias_at_loganalytics(ip, run_cell, la, home):  # noqa: F811
    # the real notebooks' `dbSchema = %kql --schema "alias@loganalytics"`, after connecting with an alias
    _, err, out = run_cell(f"%kql {la_conn(la, alias='SecOps')}")
    assert err is None, out
    _, err, out = run_cell('dbSchema = %kql --schema "SecOps@loganalytics"')
    assert err is None, out
    assert ip.user_ns["dbSchema"]["SigninLogs"]["UserPrincipalName"] == "string"
    _, err, out = run_cell('%kql --schema "Other@loganalytics"')
    assert "no open Log Analytics connection named 'Other'" in str(err) + out
    # The same workspace connected again under a second alias (two notebooks of one session): both names work.
    _, err, out = run_cell(f"%kql {la_conn(la, alias='SentinelDB')}")
    assert err is None, out
    _, err, out = run_cell('db2 = %kql --schema "SentinelDB@loganalytics"')
    assert err is None, out
    assert ip.user_ns["db2"]["SigninLogs"]["UserPrincipalName"] == "string"


def test_loganalytics_schema_of_an_unknown_workspace_is_one_line(la, home):  # noqa: F811
    conn = la_conn(la, workspace="99999999-2222-3333-4444-555555555555")
    with pytest.raises(RemoteError) as err:
        api.schema(conn)
    assert "404" in str(err.value) and "99999999-2222" in str(err.value) and "\n" not in str(err.value)


def test_adx_schema_falls_back_to_entities_where_schema_as_json_is_refused(kusto_serve):  # noqa: F811
    schema = api.schema(adx_conn(kusto_serve.url, kusto_serve.name))
    assert schema == {"Events": {"N": "long", "Account": "string", "TimeGenerated": "datetime",
                                 "Duration": "timespan", "Score": "real", "Even": "bool"}}


def test_adx_schema_reads_show_database_schema_as_json(kusto_proxy, kusto_serve):  # noqa: F811
    from servers.answers import v1

    db = kusto_serve.name
    doc = {"Plugins": [], "Databases": {db: {"Name": db, "Tables": {
        "DeviceEvents": {"Name": "DeviceEvents", "OrderedColumns": [
            {"Name": "Timestamp", "Type": "System.DateTime", "CslType": "datetime"},
            {"Name": "DeviceName", "Type": "System.String", "CslType": "string"},
            {"Name": "AdditionalFields", "Type": "System.Object", "CslType": "dynamic"}]}}}}}
    kusto_proxy.commands[".show database schema as json"] = (
        200, v1([("DatabaseSchema", "String", "string", [json.dumps(doc)])]))
    schema = api.schema(adx_conn(kusto_proxy.url, db))
    assert schema == {"DeviceEvents": {"Timestamp": "datetime", "DeviceName": "string", "AdditionalFields": "dynamic"}}
    assert [s.body.get("csl") for s in kusto_proxy.sent] == [".show database schema as json"]
