"""The Spark engine registers the Python functions the compiled SQL calls (``kqlmp_parse_xml``,
``kqlmp_parse_urlquery``, ``kqlmp_parse_path``, ``kqlmp_parse_command_line_windows``) before it runs the SQL: the
Sentinel rules that parse XML, URLs, paths and command lines run through ``sparkhunt`` on a plain session (the
coverage benchmark's bare session once missed them; a user's query never did)."""

from __future__ import annotations

import pytest

QUERY = r"""datatable(x:string, u:string, p:string, c:string)[
  '<e><a>1</a></e>', 'k=v&n=2', @'C:\dir\f.exe', @'"C:\p.exe" /a b']
| project X = tostring(parse_xml(x).e.a), K = tostring(parse_urlquery(u)["Query Parameters"].k),
  F = tostring(parse_path(p).Filename), A = tostring(parse_command_line(c, "windows")[1])"""


@pytest.mark.spark
def test_sparkhunt_runs_sql_calling_the_packages_python_functions(spark_local):
    from kqlmagic_plus.sparkhunt import sparkhunt

    r = sparkhunt(QUERY, progress="none", say=lambda *a, **k: None, no_cache=True)
    assert "kqlmp_parse_xml" in r.executed.lower()
    assert [tuple(row.values()) for row in r.table.to_pylist()] == [("1", "v", "f.exe", "/a")]
