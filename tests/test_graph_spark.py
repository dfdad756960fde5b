"""The graph operators (make-graph | graph-match / graph-shortest-paths / graph-mark-components) on every engine.

The cases are tests/graph_cases.kql (kql_corpus format: our own small networks, each with its rows; kept out
of tests/kql_corpus so the corpus-wide Spark test does not run these slow plans twice): the local engine's
translator (duckdb-kql), our DuckDB emission and our Spark emission must each return exactly those rows, and
what has no exact translation must be refused by name with its position.
"""

from __future__ import annotations

import os

import pytest
from kql_corpus import harness as H
from test_compiler_corpus import _problems

from kqlmagic_plus.errors import UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kcompile

CASES = H.parse_cases(os.path.join(os.path.dirname(__file__), "graph_cases.kql"))


@pytest.fixture(scope="module")
def duckdb_outcomes():
    from kqlmagic_plus.language.compiler.execute import run_duckdb

    con = H.duckdb_connection()
    return {c.name: (H.run_duckdb_kql(con, c.query), H.run_ours(lambda x: run_duckdb(con, x), c.query, "duckdb"))
            for c in CASES}


def test_the_cases_cover_each_graph_operator():
    text = " ".join(c.query for c in CASES)
    for op in ("graph-match", "graph-shortest-paths", "graph-mark-components", "cycles=none", "output=all",
               "inner_nodes", "node_degree_out", "all(", "any("):
        assert op in text
    assert all(c.expect for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_local_engine_and_duckdb_emission_return_the_rows(case, duckdb_outcomes):
    problems = _problems(case, duckdb_outcomes[case.name])
    assert not problems, "\n".join(problems)


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_spark_returns_the_rows(case, duckdb_outcomes, spark_local):
    from kqlmagic_plus.language.compiler.execute import run_spark

    H.spark_register(spark_local)
    spark = H.run_ours(lambda x: run_spark(spark_local, x), case.query, "spark")
    problems = _problems(case, (duckdb_outcomes[case.name][1], spark))
    assert not problems, "\n".join(p[:600] for p in problems)


_GRAPH = 'datatable(s:string, d:string)["a", "b", "b", "c"] | make-graph s --> d with_node_id=n\n'


@pytest.mark.parametrize(("tail", "construct", "line"), [
    ("| graph-match (x)-->(y) project x.n, upper = toupper(y.n), strlen(y.n)", "unnamed graph-match project", 2),
    ("| graph-mark-components kind=strong | graph-to-table nodes", "kind=strong", 2),
    ("| graph-match (x)-[p*1..2]->(y) where p.s == 'a' project y = y.n", "variable-length edge p", 2),
    ("| graph-match (x)-[p*1..2]->(y) project z = labels(x)", "labels()", 2),
    ("| graph-match (x)-->(y), (u)-->(v) project a = x.n", "not connected", 2),
    ("| graph-match (x)-[p*1..40]->(y) project a = x.n", "longer than", 2),
])
@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
def test_what_has_no_exact_translation_is_refused_by_name(tail, construct, line, dialect):
    with pytest.raises(UnsupportedQueryError) as info:
        kcompile(_GRAPH + tail, {}, dialect=dialect)
    message = str(info.value)
    assert construct in message and f"line {line}" in message


@pytest.mark.parametrize("dialect", ["duckdb"])
def test_a_component_too_wide_to_follow_stops_with_an_error_not_a_wrong_number(dialect):
    from kqlmagic_plus.language.compiler.execute import run_duckdb
    from kqlmagic_plus.language.compiler.lower.graph_components import ROUNDS

    chain = ", ".join(f'"v{i}", "v{i + 1}"' for i in range(ROUNDS + 3))
    query = (f"datatable(s:string, d:string)[{chain}] | make-graph s --> d with_node_id=n "
             f"| graph-mark-components | graph-to-table nodes | summarize dcount(ComponentId)")
    con = H.duckdb_connection()
    with pytest.raises(Exception, match="spans more than"):
        run_duckdb(con, kcompile(query, {}, dialect=dialect))
    short = ", ".join(f'"v{i}", "v{i + 1}"' for i in range(ROUNDS - 2))
    ok = (f"datatable(s:string, d:string)[{short}] | make-graph s --> d with_node_id=n "
          f"| graph-mark-components | graph-to-table nodes | summarize c = dcount(ComponentId), n = count()")
    table = run_duckdb(con, kcompile(ok, {}, dialect=dialect))
    assert table.to_pylist() == [{"c": 1, "n": ROUNDS - 1}]
