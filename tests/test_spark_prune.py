"""KQL on Spark: a table's scan converts only the columns the query reads (no JSON parse of unread dynamic
columns for Spark to analyse), with the same rows.

benchmarks/spark_kql_vs_sql.py measures the speed (``--plan`` shows the planning time); these tests hold the
SQL's shape and its answers on real local Spark (tests/spark_fixtures.py), including the operators under which
every column is kept.
"""

from __future__ import annotations

import pytest

from kqlmagic_plus.language.compiler import compile as kql_compile

pytestmark = [pytest.mark.spark]

SCHEMA = {"Signins": [("User", "string"), ("Details", "dynamic"), ("Location", "dynamic"), ("Ip", "string"),
                      ("Time", "datetime")]}
#: As the lake view holds them: dynamic columns are JSON text.
ROWS = [
    ("ann", '{"browser":"Edge","tags":["a","b"]}', '{"city":"Oslo"}', "10.0.0.1", "2024-05-01 10:00:00"),
    ("bob", '{"browser":"Firefox","tags":[]}', '{"city":"Rome"}', "10.0.0.2", "2024-05-01 11:00:00"),
    ("ann", '{"browser":"Chrome","tags":["c"]}', '{"city":"Bergen"}', "10.0.0.3", "2024-05-01 12:00:00"),
    ("cy", "not json", None, "", "2024-05-01 09:00:00"),
]


def _sql(kql: str) -> str:
    return kql_compile(kql, SCHEMA, dialect="spark").sql


@pytest.fixture(scope="module")
def spark(spark_local):
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField(c, T.StringType()) for c in ("User", "Details", "Location", "Ip", "Time")])
    df = spark_local.createDataFrame(ROWS, schema).withColumn("Time", F.to_timestamp("Time"))
    df.createOrReplaceTempView("Signins")
    return spark_local


def _rows(spark, kql: str, ordered: bool = False) -> list[tuple]:
    got = [tuple(str(v) if v is not None and not isinstance(v, str) else v for v in r)
           for r in spark.sql(_sql(kql)).collect()]
    return got if ordered else sorted(got, key=repr)


def test_a_query_reading_no_dynamic_column_parses_none():
    sql = _sql('Signins | where User != "" | summarize n = count() by Ip')
    assert "TRY_PARSE_JSON" not in sql.upper(), sql


def test_only_the_dynamic_columns_read_are_parsed():
    sql = _sql('Signins | where Details.browser == "Edge" | project User').upper()
    assert "TRY_PARSE_JSON(`DETAILS`)" in sql, sql
    assert "LOCATION" not in sql and "`IP`" not in sql and "`TIME`" not in sql, sql


def test_every_column_is_kept_where_an_operator_reads_its_whole_input():
    # take: the result shows every column; a join writes both sides' columns.
    assert _sql("Signins | take 5").upper().count("TRY_PARSE_JSON") == 2
    sql = _sql("Signins | join kind=inner (Signins | project User, Ip2 = Ip) on User | project User, Ip2")
    assert sql.upper().count("TRY_PARSE_JSON") == 2, sql


def test_pruned_scans_give_the_same_rows(spark):
    assert _rows(spark, 'Signins | extend b = tostring(Details.browser) | where b == "Edge" | project User, b') \
        == [("ann", "Edge")]
    assert _rows(spark, "Signins | where isnotnull(Location) | summarize arg_max(Time, Location) by User "
                        "| project User, city = tostring(Location.city)") == [("ann", "Bergen"), ("bob", "Rome")]
    assert _rows(spark, "Signins | top 1 by Time desc | project User, Details") \
        == [("ann", '{"browser":"Chrome","tags":["c"]}')]
    assert _rows(spark, "Signins | take 10 | count") == [("4",)]
    assert _rows(spark, 'Signins | where isnull(Details) | summarize n = count() by Ip') == [("", "1")]


def test_order_columns_survive_for_serialized_operators(spark):
    # prev() and the final order read Time, which no projection names.
    assert _rows(spark, "Signins | sort by Time asc | extend p = prev(User) | project User, p", ordered=True) \
        == [("cy", ""), ("ann", "cy"), ("bob", "ann"), ("ann", "bob")]  # prev() of the first row: "", a string
    assert _rows(spark, "Signins | sort by Time desc | take 2 | project User", ordered=True) \
        == [("ann",), ("bob",)]


def test_scans_under_joins_subqueries_lets_and_mv_expand_keep_their_rows(spark):
    assert _rows(spark, 'Signins | where User in ((Signins | where Details.browser == "Edge" | project User)) '
                        "| project User, city = tostring(Location.city)") == [("ann", "Bergen"), ("ann", "Oslo")]
    assert _rows(spark, "let s = Signins | where Ip != ''; s | project User "
                        "| union (s | project User = tostring(Location.city))") \
        == [("Bergen",), ("Oslo",), ("Rome",), ("ann",), ("ann",), ("bob",)]
    assert _rows(spark, "Signins | where isnotnull(Details) | extend tags = Details.tags | mv-expand tags "
                        "| project User, tag = tostring(tags)") == [("ann", "a"), ("ann", "b"), ("ann", "c")]
    assert _rows(spark, "Signins | where isnotnull(Location) "
                        "| join kind=inner (Signins | project User, Ip2 = Ip) on User "
                        "| project User, city = tostring(Location.city), Ip2") \
        == [("ann", "Bergen", "10.0.0.1"), ("ann", "Bergen", "10.0.0.3"), ("ann", "Oslo", "10.0.0.1"),
            ("ann", "Oslo", "10.0.0.3"), ("bob", "Rome", "10.0.0.2")]
