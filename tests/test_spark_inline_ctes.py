"""KQL on Spark: a CTE read once is written as a nested subquery (Spark plans that faster), with the same rows.

benchmarks/spark_kql_vs_sql.py measures the speed; these tests hold the SQL's shape and its answers on real
local Spark (tests/spark_fixtures.py).
"""

from __future__ import annotations

import pytest
import sqlglot

from kqlmagic_plus.language.compiler import compile as kql_compile
from kqlmagic_plus.language.compiler.inline_ctes import MAX_DEPTH, inline_single_use_ctes

pytestmark = [pytest.mark.spark]

SCHEMA = {"Events": [("Host", "string"), ("User", "string"), ("Port", "long")]}
#: Host null and Host "" are one group in Kusto (a string is never null): both read as "".
ROWS = [("a", "u1", 443), ("a", "u2", 53), ("b", "u1", 443), (None, "u3", 443), ("", "u3", 80), ("c", None, 22)]


def _sql(kql: str) -> str:
    return kql_compile(kql, SCHEMA, dialect="spark").sql


@pytest.fixture(scope="module")
def spark(spark_local):
    from pyspark.sql import types as T

    schema = T.StructType([T.StructField("Host", T.StringType()), T.StructField("User", T.StringType()),
                           T.StructField("Port", T.LongType())])
    spark_local.createDataFrame(ROWS, schema).createOrReplaceTempView("Events")
    return spark_local


def _rows(spark, kql: str) -> list[tuple]:
    return sorted(tuple(r) for r in spark.sql(_sql(kql)).collect())


def test_a_pipeline_read_once_is_nested_subqueries_not_a_with():
    sql = _sql('Events | where Port == 443 | summarize n = count() by Host | top 2 by n desc')
    assert not sql.upper().startswith("WITH"), sql
    assert "AS `__kqlc_q1`" in sql


def test_a_let_read_twice_stays_one_cte_and_the_rest_is_inlined():
    sql = _sql("let x = Events | where Port > 50; x | join kind=inner (x | project Host, P2 = Port) on Host")
    tree = sqlglot.parse_one(sql, read="spark")
    ctes = [c.alias_or_name for c in tree.args["with_"].expressions]
    assert ctes, sql
    for name in ctes:
        assert sql.count(f"`{name}`") >= 3, (name, sql)  # defined once, read twice or more


def test_the_inlined_sql_gives_kustos_rows_for_grouping_joins_and_semi_joins(spark):
    assert _rows(spark, "Events | summarize n = count() by Host") == [("", 2), ("a", 2), ("b", 1), ("c", 1)]
    assert _rows(spark, "Events | where Port == 443 | summarize tls = count() by Host "
                        "| join kind=inner (Events | where Port != 443 | summarize other = count() by Host) on Host "
                        "| project Host, tls, other") == [("", 1, 1), ("a", 1, 1)]
    assert _rows(spark, "Events | where Host in ((Events | where Port == 53 | project Host)) "
                        "| project User") == [("u1",), ("u2",)]
    assert _rows(spark, "Events | top-nested 2 of Host by n = count(), top-nested 1 of User by m = sum(Port)") \
        == [("", 2, "u3", 523), ("a", 2, "u1", 443)]

def test_a_long_pipeline_keeps_ctes_past_the_nesting_limit_and_still_runs(spark):
    steps = "".join(f" | extend c{i} = Port + {i}" for i in range(MAX_DEPTH + 20))
    sql = _sql(f"Events | where Host == 'a'{steps} | summarize s = sum(c{MAX_DEPTH + 19})")
    assert sql.upper().startswith("WITH"), "a chain deeper than MAX_DEPTH keeps some CTEs"
    assert spark.sql(sql).collect()[0][0] == (443 + 53) + 2 * (MAX_DEPTH + 19)


def test_only_the_compilers_own_ctes_are_inlined():
    tree = sqlglot.parse_one("WITH t AS (SELECT 1 AS a) SELECT * FROM t", read="spark")
    inline_single_use_ctes(tree)
    assert tree.sql(dialect="spark") == "WITH t AS (SELECT 1 AS a) SELECT * FROM t"
    # A name read before it is defined is not the emitter's shape: the statement is left as written.
    text = ("WITH `__kqlc_q1` AS (SELECT * FROM `__kqlc_q2`), `__kqlc_q2` AS (SELECT 1 AS a) "
            "SELECT * FROM `__kqlc_q1`")
    tree = sqlglot.parse_one(text, read="spark")
    inline_single_use_ctes(tree)
    assert tree.sql(dialect="spark") == text
