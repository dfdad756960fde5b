"""Constructs the M365 Defender hunting queries use that the compiler lacked, with the rows the KQL reference
gives, on DuckDB and on Spark: ``make_string()`` (the deprecated name of ``unicode_codepoints_to_string``),
``format_datetime``'s ``y`` (the year modulo 100, unpadded) and ``partition by K ( top N by X )``.
"""

from __future__ import annotations

import pytest
from compiled_rows import expected_rows_tests

from kqlmagic_plus.errors import QueryError, UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kcompile

PARTITION_DATA = ('datatable(K:string, X:long, V:string)["a",1,"a1", "a",3,"a3", "b",2,"b2", "a",2,"a2", "b",5,"b5", '
                  '"",7,"e7", "",1,"e1"]')

#: (query, expected rows in order): every query orders its rows or returns one.
CASES = [
    # the reference: unicode_codepoints_to_string(dynamic([75, 117, 115, 116, 111])) == "Kusto"
    ("print s=make_string(dynamic([75, 117, 115, 116, 111]))", [("Kusto",)]),
    ("print s=make_string(75, dynamic([117, 115]), 116, 111)", [("Kusto",)]),
    # the reference's table for `y`: 2009 -> 9, 2019 -> 19, 1900 -> 0, 0900 -> 0
    ("print a=format_datetime(datetime(2009-06-15 13:45:30), 'y-M-d'), b=format_datetime(datetime(2019-06-15), 'y'),"
     " c=format_datetime(datetime(1900-01-01), 'y'), d=format_datetime(datetime(2019-06-15), 'yy/y/yyyy')",
     [("9-6-15", "19", "0", "19/19/2019")]),
    (f"{PARTITION_DATA} | partition by K ( top 2 by X ) | order by K asc, X desc",
     [("", 7, "e7"), ("", 1, "e1"), ("a", 3, "a3"), ("a", 2, "a2"), ("b", 5, "b5"), ("b", 2, "b2")]),
    (f"{PARTITION_DATA} | partition hint.strategy=native by K ( top 1 by X asc ) | order by K asc",
     [("", 1, "e1"), ("a", 1, "a1"), ("b", 2, "b2")]),
    (f"{PARTITION_DATA} | partition by V ( top 1 by X ) | count", [(7,)]),
]


test_duckdb, test_spark = expected_rows_tests(CASES)


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_partition_refuses_what_it_does_not_translate(dialect: str) -> None:
    base = "datatable(K:long, X:long)[1, 1]"
    with pytest.raises(UnsupportedQueryError, match="partition with a subquery other than one top operator"):
        kcompile(f"{base} | partition by K ( summarize count() )", {}, dialect)
    with pytest.raises(UnsupportedQueryError, match="names its own source"):
        kcompile(f"{base} | partition by K {{ T | take 1 }}", {}, dialect)
    with pytest.raises(QueryError, match="no column named 'Q' to partition by at line 1, column 48"):
        kcompile(f"{base} | partition by Q ( top 1 by X )", {}, dialect)
