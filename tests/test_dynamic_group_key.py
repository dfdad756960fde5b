"""Grouping by a dynamic value where the compiler lets one through (top-nested; summarize asks for tostring()
first, as KQL does): the local engine groups the JSON values, and Spark used to refuse the query when it ran
(GROUP_EXPRESSION_TYPE_IS_NOT_ORDERABLE: a VARIANT cannot be grouped). Both engines now give the same rows."""

from __future__ import annotations

import duckdb
import pytest

from kqlmagic_plus.errors import QueryError
from kqlmagic_plus.language.compiler import compile as kcompile
from kqlmagic_plus.language.compiler.execute import run_duckdb, run_spark

CASES = [
    ('datatable(D:dynamic)[dynamic([1]), dynamic({"a":2}), dynamic([1])] | top-nested 2 of D by n=count() '
     '| order by n desc', [("[1]", 2), ('{"a":2}', 1)]),
    # a key that is dynamic because one branch of iff() is: the idiom that met the Spark refusal
    ('datatable(S:string)["x.y", "p", "x.y"] | extend K=iff(S contains ".", parse_json("[1]"), parse_json("{}")) '
     '| top-nested 2 of K by n=count() | order by n desc', [("[1]", 2), ("{}", 1)]),
]


def _rows(table) -> list[tuple]:
    cols = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return list(zip(*cols, strict=True))


@pytest.mark.parametrize(("query", "want"), CASES)
def test_duckdb(query: str, want: list[tuple]) -> None:
    assert _rows(run_duckdb(duckdb.connect(), kcompile(query, {}, "duckdb"))) == want


@pytest.mark.spark
def test_spark(spark_local) -> None:
    got = {q: _rows(run_spark(spark_local, kcompile(q, {}, "spark"))) for q, _ in CASES}
    assert got == {q: w for q, w in CASES}


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_summarize_still_asks_for_a_conversion(dialect: str) -> None:
    with pytest.raises(QueryError, match=r"summarize by a dynamic value: convert it first .* line 1, column 59"):
        kcompile('datatable(D:dynamic)[dynamic([1])] | summarize count() by D', {}, dialect)
