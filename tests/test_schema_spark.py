"""``%sparkhunt --schema`` and ``%%sparkhunt`` completion on the shared local Spark (tests/spark_fixtures.py)."""

from __future__ import annotations

import pytest
from test_lake import T0, blob, rec

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("schemalake")
    blob(root, "am-syslog", T0, [rec(T0, "Syslog", Computer="web01", SyslogMessage="sshd: accepted", ProcessID=7)])
    return str(root)


def test_session_schema_has_lake_tables_and_catalog_views_and_completes(ip, run_cell, spark_local, lake):
    _, err, out = run_cell(f"%sparkhunt --connect local[2] --lake {lake}")
    assert err is None, out
    spark_local.sql("SELECT 'web01' AS Host, 443L AS Port, 2.5D AS Score").createOrReplaceTempView("portscan")
    schema, err, out = run_cell("%sparkhunt --schema")
    assert err is None, out
    assert schema["Syslog"]["Computer"] == "string" and schema["Syslog"]["TimeGenerated"] == "datetime"
    # Spark's catalog names are lower case; KQL names match them ignoring case
    assert schema["portscan"] == {"Host": "string", "Port": "long", "Score": "real"}
    assert "<summary>portscan" in schema._repr_html_()

    # a %%sparkhunt cell with no --lake completes from the current session (its schema now cached)
    from kqlmagic_plus.magics.completion import kql_completions

    fragment, found = kql_completions("%%sparkhunt\nPortScan | where Po", 1, len("PortScan | where Po"))
    assert fragment == "Po" and [c.text for c in found][:1] == ["Port"]
    fragment, found = kql_completions("%%sparkhunt\nSys", 1, 3)
    assert [c.text for c in found] == ["Syslog"]
