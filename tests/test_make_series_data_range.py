"""``make-series ... on Axis step S`` without ``from``/``to`` (the Sentinel hunting queries' form), on DuckDB and on
Spark. By the reference, a series then starts at the first bin that has data in it and ends at the upper bound of
its last: each series has its own axis (bin(Axis, S) values), empty bins in between take the default, and an
empty input gives no rows.
"""

from __future__ import annotations

import pytest
from compiled_rows import expected_rows_tests

from kqlmagic_plus.errors import UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kcompile

# a: rows at 10:30, 12:10, 12:50 (bins 10h, 12h; 11h empty); b: one row at 11:05 and one with no time
EVENTS = ("datatable(K:string, T:datetime, V:long)["
          "'a', datetime(2024-01-01 10:30), 1, 'a', datetime(2024-01-01 12:10), 2, 'a', datetime(2024-01-01 12:50), 4,"
          " 'b', datetime(2024-01-01 11:05), 8, 'b', datetime(null), 16]")
H10, H11, H12 = ("2024-01-01T10:00:00.0000000Z", "2024-01-01T11:00:00.0000000Z", "2024-01-01T12:00:00.0000000Z")

#: (query, expected rows in order)
CASES = [
    # per series: a spans 10h..12h with the empty 11h bin as the default 0; b is its one bin (the row without a
    # time is in no bin)
    (f"{EVENTS} | make-series s=sum(V) on T step 1h by K | order by K asc",
     [("a", "[1,0,6]", f'["{H10}","{H11}","{H12}"]'), ("b", "[8]", f'["{H11}"]')]),
    # one series over all rows; a default other than 0
    (f"{EVENTS} | where K == 'a' | make-series c=count() default=-1 on T step 1h",
     [("[1,-1,2]", f'["{H10}","{H11}","{H12}"]')]),
    (f"{EVENTS} | make-series s=sum(V), c=count() on T step 1h",
     [("[1,8,6]", "[1,1,2]", f'["{H10}","{H11}","{H12}"]')]),
    # empty input: no rows, with and without by
    (f"{EVENTS} | where V > 100 | make-series s=sum(V) on T step 1h", []),
    (f"{EVENTS} | where V > 100 | make-series s=sum(V) on T step 1h by K", []),
    # a numeric axis: bins are multiples of the step (bin(), below zero too): -5,-2,1,4,7 -> -8,-4,0,4,4
    ("range x from -5 to 7 step 3 | make-series c=count() on x step 4", [("[1,1,1,2]", "[-8,-4,0,4]")]),
    ("range x from 1 to 3 step 1 | extend r = x * 0.5 | make-series c=count() on r step 0.75",
     [("[1,1,1]", "[0.0,0.75,1.5]")]),
]


test_duckdb, test_spark = expected_rows_tests(CASES)


@pytest.mark.parametrize(("query", "construct"), [
    # one bound given and the other from the data, and kind=nonempty over a range the data cannot give:
    # refused by name, not guessed
    (f"{EVENTS} | make-series c=count() on T from datetime(2024-01-01) step 1h", "make-series with only one of"),
    (f"{EVENTS} | make-series kind=nonempty c=count() on T step 1h", "make-series kind=nonempty without from/to"),
])
def test_what_the_data_range_does_not_settle_is_refused_by_name(query: str, construct: str) -> None:
    with pytest.raises(UnsupportedQueryError, match=construct):
        kcompile(query, {}, "duckdb")
