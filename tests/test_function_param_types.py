"""A let function's scalar parameters are typed (the reference: "a strongly typed list of input arguments"): a
datetime passed where a timespan is declared is an error naming the function and the parameter, as in the
Sentinel hunting queries whose `let auditLookback = starttime - 14d` feeds a `(startTimeSpan:timespan)` view."""

from __future__ import annotations

import pytest
from compiled_rows import duckdb_rows

from kqlmagic_plus.errors import QueryError
from kqlmagic_plus.language.compiler import compile as kcompile


def test_a_datetime_for_a_timespan_parameter_names_the_function_and_parameter() -> None:
    q = "let lookback = datetime(2024-01-01) - 14d; let f = view (startTimeSpan:timespan) { print x = 1 }; f(lookback)"
    with pytest.raises(QueryError, match="function 'f': parameter 'startTimeSpan' is timespan, the argument is "
                                         "datetime"):
        kcompile(q, {}, "duckdb")


def test_a_timespan_for_a_timespan_parameter_runs() -> None:
    assert duckdb_rows("let f = (s:timespan) { print x = s / 1h }; f(90m)") == [(1.5,)]
