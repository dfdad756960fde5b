"""A cell run again is not compiled again (the compiler keeps what it made for the same query and schema), and
the local engine finds a query's tables with one catalog lookup: neither may ever serve a stale plan."""

from __future__ import annotations

import pandas as pd

import kqlmagic_plus as kp
from kqlmagic_plus.language import compiler


def test_same_query_and_schema_reuse_the_compiled_sql_a_changed_schema_does_not():
    query = "T | where a has 'x' | summarize n = count() by a"
    first = compiler.compile(query, {"T": [("a", "string"), ("b", "long")]}, "duckdb")
    again = compiler.compile(query, {"T": [("a", "string"), ("b", "long")]}, "duckdb")
    assert again.sql == first.sql and again.columns == first.columns
    again.columns.append(("junk", "string"))  # a caller's change to its copy reaches no one else
    assert compiler.compile(query, {"T": [("a", "string"), ("b", "long")]}, "duckdb").columns == first.columns
    # The schema is part of the key: `a` is now a long, and comparing it with has is refused or cast anew.
    changed = compiler.compile("T | summarize n = count() by b", {"T": [("a", "string"), ("b", "string")]},
                               "duckdb")
    assert changed.columns == [("b", "string"), ("n", "long")]
    assert compiler.compile("T | summarize n = count() by b", {"T": [("a", "string"), ("b", "long")]},
                            "duckdb").columns == [("b", "long"), ("n", "long")]


def test_a_dataframe_changed_between_runs_gives_the_new_columns_and_rows():
    ns = {"events": pd.DataFrame({"Host": ["a", "b"], "Bytes": [1, 2]})}
    r = kp.kql("events | summarize total = sum(Bytes) by Host | sort by Host asc", namespace=ns, no_cache=True)
    assert r.table.to_pylist() == [{"Host": "a", "total": 1}, {"Host": "b", "total": 2}]
    ns["events"] = pd.DataFrame({"Host": ["a", "b"], "Bytes": [1.5, 2.5]})  # the column is now real
    r = kp.kql("events | summarize total = sum(Bytes) by Host | sort by Host asc", namespace=ns, no_cache=True)
    assert r.kql_types == ["string", "real"] and r.table.column("total").to_pylist() == [1.5, 2.5]


def test_bag_unpack_reading_the_data_is_never_kept():
    # Same query text, same schema: only the data differs (the bags' keys), and so must the columns.
    query = "events | summarize bag = make_bag(bag_pack(k, v)) by host | evaluate bag_unpack(bag) | project-away host"
    ns = {"events": pd.DataFrame({"host": ["a"], "k": ["port"], "v": [22]})}
    r = kp.kql(query, namespace=ns, no_cache=True)
    assert r.table.column_names == ["port"]
    ns["events"] = pd.DataFrame({"host": ["a"], "k": ["user"], "v": [7]})
    r = kp.kql(query, namespace=ns, no_cache=True)
    assert r.table.column_names == ["user"] and r.table.to_pylist() == [{"user": 7}]


def test_pivot_reading_the_data_is_never_kept():
    # pivot's columns are the values it reads first: a new value in the data is a new column, same query text.
    query = "events | evaluate pivot(Action, count(), User)"
    ns = {"events": pd.DataFrame({"User": ["ann", "ann"], "Action": ["Add", "Remove"]})}
    assert kp.kql(query, namespace=ns, no_cache=True).table.column_names == ["User", "Add", "Remove"]
    ns["events"] = pd.DataFrame({"User": ["ann", "bob"], "Action": ["Add", "Delete"]})
    r = kp.kql(query, namespace=ns, no_cache=True)
    assert r.table.column_names == ["User", "Add", "Delete"]
    assert sorted(r.table.to_pylist(), key=str) == [{"User": "ann", "Add": 1, "Delete": 0},
                                                    {"User": "bob", "Add": 0, "Delete": 1}]


def test_tables_are_found_as_duckdb_resolves_them(tmp_path):
    import duckdb

    db = tmp_path / "hunt.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE Alerts AS SELECT 'high' AS Severity, 3 AS Score")
    con.execute("CREATE TABLE Shadowed AS SELECT 1 AS Old")
    con.close()
    conn = f"local://db='{db}'"
    r = kp.kql("Alerts | project Severity, Score", conn=conn, no_cache=True)
    assert r.table.to_pylist() == [{"Severity": "high", "Score": 3}]
    # A temporary view of the same name hides the table, for the compiler as for DuckDB.
    from kqlmagic_plus.engines.registry import connections

    engine = connections().resolve(conn)[1]
    engine.con.execute("CREATE OR REPLACE TEMP VIEW Shadowed AS SELECT 'new' AS Fresh")
    r = kp.kql("Shadowed | project Fresh", conn=conn, no_cache=True)
    assert r.table.to_pylist() == [{"Fresh": "new"}]
    assert engine._describe({"Shadowed", "Alerts", "Severity", "where"}) == {
        "Shadowed": [("Fresh", "VARCHAR")], "Alerts": [("Severity", "VARCHAR"), ("Score", "INTEGER")]}
