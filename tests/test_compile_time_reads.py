"""What an engine reads while it compiles (KQL reference conformance, #17): ``evaluate bag_unpack(col)`` with no
output schema over computed bags (the engine reads the bags' keys first, on DuckDB and on Spark), and on Spark
a ``toscalar()`` of a self-contained subquery used by an array function (read first: Spark evaluates no subquery
inside a higher-order function)."""

from __future__ import annotations

import pytest

#: Bags built by an aggregation (not constants of the query): the columns come from the data.
QUERY = """datatable(host:string, k:string, v:long)["a", "port", 22, "a", "user", 7, "b", "port", 443, "b", "tries", 3]
| summarize bag = make_bag(bag_pack(k, v)) by host
| evaluate bag_unpack(bag)
| project host, port, tries, user
| sort by host asc"""

EXPECTED = [("a", 22, None, 7), ("b", 443, 3, None)]


def _rows(result) -> list[tuple]:
    return [tuple(r.values()) for r in result.table.to_pylist()]


def test_local_reads_the_keys_of_computed_bags():
    import kqlmagic_plus as kp

    r = kp.kql(QUERY, "local://", namespace={}, no_cache=True)
    assert r.table.column_names == ["host", "port", "tries", "user"]
    assert r.kql_types == ["string", "long", "long", "long"]
    assert _rows(r) == EXPECTED


def test_local_columns_follow_the_data_not_a_cache_of_the_plan():
    import kqlmagic_plus as kp

    other = QUERY.replace('"tries", 3', '"shell", 1').replace("project host, port, tries, user", "project-away port")
    r = kp.kql(other, "local://", namespace={}, no_cache=True)
    assert r.table.column_names == ["host", "shell", "user"]  # keys sorted, as the constant-bag path sorts them


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_the_keys_of_computed_bags(spark_local):
    from kqlmagic_plus.sparkhunt import sparkhunt

    r = sparkhunt(QUERY, progress="none", say=lambda *a, **k: None, no_cache=True)
    assert r.table.column_names == ["host", "port", "tries", "user"]
    assert _rows(r) == EXPECTED


@pytest.mark.spark
@pytest.mark.slow
def test_spark_toscalar_inside_an_array_function_and_constant_key_order(spark_local):
    from kqlmagic_plus.sparkhunt import sparkhunt

    q = """let firsts = toscalar(print dynamic([2, 4]));
print hit = array_index_of(firsts, 4), both = array_concat(firsts, dynamic([6])),
      s = tostring(dynamic({"z": 1, "a": [2.5, "x"]}))"""
    r = sparkhunt(q, progress="none", say=lambda *a, **k: None, no_cache=True)
    row = r.table.to_pylist()[0]
    assert row["hit"] == 1
    assert row["both"].replace(" ", "") == "[2,4,6]"
    # Kusto keeps a bag's keys as written; Spark's variant would sort them.
    assert row["s"] == '{"z":1,"a":[2.5,"x"]}'


def test_local_toscalar_inside_an_array_function():
    import kqlmagic_plus as kp

    q = """let firsts = toscalar(print dynamic([2, 4]));
print hit = array_index_of(firsts, 4), s = tostring(dynamic({"z": 1, "a": [2.5, "x"]}))"""
    r = kp.kql(q, "local://", namespace={}, no_cache=True)
    assert _rows(r) == [(1, '{"z":1,"a":[2.5,"x"]}')]
