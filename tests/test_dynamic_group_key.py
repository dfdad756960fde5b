"""Grouping by a dynamic value where the compiler lets one through (top-nested; summarize asks for tostring()
first, as KQL does): the local engine groups the JSON values, and Spark used to refuse the query when it ran
(GROUP_EXPRESSION_TYPE_IS_NOT_ORDERABLE: a VARIANT cannot be grouped). Both engines now give the same rows."""

from __future__ import annotations

import pytest
from compiled_rows import expected_rows_tests

from kqlmagic_plus.errors import QueryError
from kqlmagic_plus.language.compiler import compile as kcompile

CASES = [
    ('datatable(D:dynamic)[dynamic([1]), dynamic({"a":2}), dynamic([1])] | top-nested 2 of D by n=count() '
     '| order by n desc', [("[1]", 2), ('{"a":2}', 1)]),
    # a key that is dynamic because one branch of iff() is: the idiom that met the Spark refusal
    ('datatable(S:string)["x.y", "p", "x.y"] | extend K=iff(S contains ".", parse_json("[1]"), parse_json("{}")) '
     '| top-nested 2 of K by n=count() | order by n desc', [("[1]", 2), ("{}", 1)]),
]


test_duckdb, test_spark = expected_rows_tests(CASES)


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_summarize_still_asks_for_a_conversion(dialect: str) -> None:
    with pytest.raises(QueryError, match=r"summarize by a dynamic value: convert it first .* line 1, column 59"):
        kcompile('datatable(D:dynamic)[dynamic([1])] | summarize count() by D', {}, dialect)
