"""What the KQL reference leaves undefined is refused by name, with the reason, on both engines (never a guess,
never a generic message): the period a decomposition detects by itself, and ``x in (T)`` where T's first column
holds dynamic arrays (``T | summarize make_list(y)``: the reference does not say whether they are expanded)."""

from __future__ import annotations

import duckdb
import pytest

from kqlmagic_plus.errors import UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kcompile
from kqlmagic_plus.language.compiler.execute import run_duckdb

DIALECTS = ["duckdb", "spark"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_tuple_extend_of_an_undefined_series_function_names_it(dialect: str) -> None:
    # it used to say only "'extend (a, b) = ...' cannot run"
    q = "print S=dynamic([1, 2, 3, 4]) | extend (flag, score, baseline) = series_decompose_anomalies(S)"
    with pytest.raises(UnsupportedQueryError, match=r"'series_decompose_anomalies\(\)' at line 1, column 40 .*"
                                                    r"Seasonality -1.*series_periods_detect"):
        kcompile(q, {}, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_in_a_table_of_arrays_is_refused_by_name(dialect: str) -> None:
    q = ('let L = datatable(N:string)["a", "b"] | summarize make_list(N);\n'
         'datatable(D:string)["a", "c"] | where D in (L)')
    with pytest.raises(UnsupportedQueryError, match=r"'in \(a tabular expression whose first column is dynamic\)' "
                                                    r"at line 2, column 39 .*mv-expand"):
        kcompile(q, {}, dialect)


def test_the_defined_forms_still_run() -> None:
    # the same membership through toscalar() (one array) or mv-expand (its values) is defined, and runs
    base = 'let L = datatable(N:string)["a", "b"] | summarize V=make_list(N);\n'
    for tail in ('datatable(D:string)["a", "c"] | where D in (toscalar(L))',
                 'datatable(D:string)["a", "c"] | where D in (L | mv-expand V to typeof(string))'):
        got = run_duckdb(duckdb.connect(), kcompile(base + tail, {}, "duckdb")).column(0).to_pylist()
        assert got == ["a"]
