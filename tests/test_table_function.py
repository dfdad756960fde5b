"""The KQL ``table()`` function (a table named by a constant string), on DuckDB and on Spark, as the Sentinel
rules use it: a literal name, a let-bound name, and a let function whose string parameter names the table it
reads (``let aadFunc = (tableName:string) { table(tableName) | ... }; union aadFunc("SigninLogs"), ...``).
A name that is no constant at compile time is refused by name; an unknown name is an unknown table.
"""

from __future__ import annotations

import pytest
from compiled_rows import rows

from kqlmagic_plus.errors import TableNotFoundError, UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kcompile

SCHEMA = {
    "SigninLogs": [("User", "string"), ("ResultType", "string")],
    "OfficeActivity": [("UserId", "string"), ("Operation", "string")],
}
DATA = {
    "SigninLogs": [("ann", "0"), ("bob", "50126"), ("cat", "50126")],
    "OfficeActivity": [("dan", "UserLoginFailed"), ("eve", "FileAccessed")],
}

#: (query, expected rows in order)
CASES = [
    ('table("SigninLogs") | where ResultType != "0" | count', [(2,)]),
    ("table('OfficeActivity') | order by UserId asc | project UserId", [("dan",), ("eve",)]),
    # a let-bound constant names the table
    ('let t = "OfficeActivity"; table(t) | where Operation == "UserLoginFailed" | project UserId', [("dan",)]),
    # table() as the body of a let, in parentheses (the form of "Brute Force Attack against GitHub Account")
    ('let failed = (table("SigninLogs") | where ResultType == "50126"); failed | order by User asc | project User',
     [("bob",), ("cat",)]),
    # the Sentinel idiom: one function over several tables; the parameter is also a value in the body
    ('let f = (tableName:string) { table(tableName) | summarize n = count() | extend Source = tableName };'
     ' union f("SigninLogs"), f("OfficeActivity") | order by Source asc | project Source, n',
     [("OfficeActivity", 2), ("SigninLogs", 3)]),
    # table() of the parameter in a let inside the body (SigninPasswordSpray, FailedLogonToAzurePortal)
    ('let f = (tableName:string) { let rows = materialize(table(tableName) | where ResultType != "0");'
     ' let n = toscalar(rows | count); rows | extend Of = n | project User, Of };'
     ' f("SigninLogs") | order by User asc', [("bob", 2), ("cat", 2)]),
    # a function whose body lets read table() and which returns a scalar is still a scalar function
    ('let f = (tableName:string) { let c = toscalar(table(tableName) | count); c * 10 };'
     ' print n = f("OfficeActivity")', [(20,)]),
    # by name, and with the data scope every table here has (all of it)
    ('let f = (tableName:string) { table(tableName, "all") | count }; f(tableName="SigninLogs")', [(3,)]),
    # inside toscalar() and join
    ('print n = toscalar(table("SigninLogs") | count)', [(3,)]),
    ('SigninLogs | join kind=inner (table("SigninLogs") | where ResultType == "0") on User | project User',
     [("ann",)]),
]


def _duckdb_rows(query: str) -> list[tuple]:
    import duckdb

    from kqlmagic_plus.language.compiler.execute import run_duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name, cols in SCHEMA.items():
        con.execute(f'CREATE TABLE "{name}" ({", ".join(f"{c} VARCHAR" for c, _ in cols)})')
        con.executemany(f'INSERT INTO "{name}" VALUES (?, ?)', DATA[name])
    return rows(run_duckdb(con, kcompile(query, SCHEMA, "duckdb")))


@pytest.mark.parametrize(("query", "want"), CASES)
def test_duckdb(query: str, want: list[tuple]) -> None:
    assert _duckdb_rows(query) == want


@pytest.mark.spark
def test_spark(spark_local) -> None:
    from kqlmagic_plus.language.compiler.execute import run_spark, spark_schema

    for name, cols in SCHEMA.items():
        spark_local.createDataFrame(DATA[name], spark_schema(cols)).createOrReplaceTempView(name)
    got = {q: rows(run_spark(spark_local, kcompile(q, SCHEMA, "spark"))) for q, _ in CASES}
    assert got == {q: w for q, w in CASES}


@pytest.mark.parametrize(("query", "construct"), [
    # Kusto needs the name constant at the call; a computed one is refused, never guessed
    ('let n = strcat("Signin", "Logs"); table(n) | count', "table() with a name not known at compile time"),
    ('SigninLogs | extend T = table(User)', None),
    ('table("SigninLogs", "hotcache") | count', "table() with data scope 'hotcache'"),
])
def test_a_name_not_constant_or_a_hot_cache_scope_is_refused_by_name(query: str, construct: str | None) -> None:
    with pytest.raises(Exception) as info:
        kcompile(query, SCHEMA, "duckdb")
    if construct is not None:
        assert isinstance(info.value, UnsupportedQueryError)
        assert construct in str(info.value)
    assert "__ktb" not in str(info.value)


def test_an_unknown_name_is_an_unknown_table() -> None:
    with pytest.raises(TableNotFoundError, match="'Nope' does not exist"):
        kcompile('table("Nope") | count', SCHEMA, "duckdb")


def test_a_column_called_table_still_parses_as_before() -> None:
    # `table` not followed by "(" is left alone (the grammar's own reading of it stands)
    assert _duckdb_rows("SigninLogs | where ResultType == '0' | project ['table'] = User") == [("ann",)]
