"""The KQL compiler's errors: what was wrong and where, as the package's errors, never a parser traceback."""

from __future__ import annotations

import os

import pytest

from kqlmagic_plus.errors import QueryError, QuerySyntaxError, TableNotFoundError, UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kql_compile

S = {"T": [("a", "string"), ("n", "long"), ("ts", "datetime")], "Other": [("a", "string")]}


@pytest.mark.parametrize("dialect", ["spark", "duckdb"])
@pytest.mark.parametrize(("query", "construct", "line", "column"), [
    ("T | fork (take 1)", "fork", 1, 4),
    ("T\n| evaluate autocluster()", "evaluate autocluster", 2, 2),
    # pivot's columns depend on the data: compiled with no engine to read it, it is refused by name.
    ("T\n| evaluate pivot(a)", "evaluate pivot without an output schema", 2, 2),
    ("T | search 'x'", "search", 1, 4),
])
def test_unsupported_construct_named_with_position(query, construct, line, column, dialect):
    with pytest.raises(UnsupportedQueryError) as e:
        kql_compile(query, S, dialect)
    assert e.value.construct == construct
    assert (e.value.line, e.value.column) == (line, column)
    assert "Log Analytics" in str(e.value)


def test_unknown_column_is_named_with_the_columns_there():
    with pytest.raises(QueryError) as e:
        kql_compile("T\n| where nope == 1", S, "spark")
    text = str(e.value)
    assert "nope" in text and "line 2" in text and "columns: " in text and "ts" in text


def test_type_mismatch_is_a_query_error_with_position():
    with pytest.raises(QueryError, match=r"cannot compare long with string at line 1, column 11"):
        kql_compile("T | where n == 'x'", S, "duckdb")


def test_syntax_error_has_line_and_column():
    with pytest.raises(QuerySyntaxError) as e:
        kql_compile("T\n| where a ==", S, "spark")
    assert e.value.line == 2


def test_unknown_table_lists_tables():
    with pytest.raises(TableNotFoundError) as e:
        kql_compile("Othr | take 1", S, "spark")
    assert "Other" in str(e.value)


def test_unknown_dialect_is_an_option_error():
    from kqlmagic_plus.errors import OptionError

    with pytest.raises(OptionError, match="dialect"):
        kql_compile("T", S, "postgres")


def test_no_plausible_wrong_answer_for_unreproducible_functions():
    # hash() of a string or datetime is Kusto's xxhash64; of a long, and hash_combine, the encoding is unknown.
    with pytest.raises(UnsupportedQueryError, match="hash"):
        kql_compile("T | extend h = hash(n)", S, "spark")
    with pytest.raises(UnsupportedQueryError, match="hash_combine"):
        kql_compile("T | extend h = hash_combine(n, n)", S, "duckdb")


def test_support_matrix_doc_is_current():
    from kqlmagic_plus.language.compiler.matrix import render

    path = os.path.join(os.path.dirname(__file__), "..", "docs", "support-matrix.md")
    with open(path, encoding="utf-8") as f:
        assert f.read() == render(), (
            "regenerate: python -m kqlmagic_plus.language.compiler.matrix > docs/support-matrix.md")


def test_a_refused_function_inside_isnull_is_still_refused():
    # isnull() of a string is always false in KQL; folding it must not swallow the refusal inside it
    from kqlmagic_plus.language.compiler import compile as kcompile

    for dialect in ("duckdb", "spark"):
        with pytest.raises(UnsupportedQueryError, match="hash_many"):
            kcompile('print isnull(hash_many("a", "b")), isnotnull(hash_many("a", "b"))', {}, dialect)


@pytest.mark.parametrize("dialect", ["spark", "duckdb"])
def test_typeof_of_a_column_is_an_error_not_a_null_column(dialect):
    # typeof() takes a type; `typeof(n)` used to compile to a column of nulls on both engines (a hunter
    # meaning gettype(n) read "no type").
    with pytest.raises(QueryError, match=r"typeof\(n\): 'n' is not a KQL type .*line 1, column 16"):
        kql_compile("T | extend t = typeof(n)", S, dialect)


def test_typeof_of_a_column_fails_on_the_local_engine():
    from kqlmagic_plus import kql

    with pytest.raises((QueryError, UnsupportedQueryError)):
        kql("print n = 1 | extend t = typeof(n)")
