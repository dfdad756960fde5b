"""Every KQL string literal form means its value, on every engine.

The forms (KQL reference, "The string data type", and Kusto.Language's TokenParser): quoted with
backslash escapes, verbatim ``@"..."``, obfuscated ``h"..."`` (the same value, hidden from service
logs), multi-line ```` ```...``` ```` / ``~~~...~~~``, and adjacent literals concatenated.

* local engine (``kqlmagic_plus.kql``): duckdb-kql 1.1.2 keeps ``h"admin"`` as the text
  ``h"admin"`` and drops the backslash of ``\\u0041``; the engine decodes every literal on tokens
  first (language/aliases.rewrite_for_local), so the values below are what DuckDB compares with.
* the package's compiler (the Spark path, and the local fallback): its literal reader is the same
  decoder; the SQL for every form is the SQL for the plain form of the same value.
* Log Analytics / ADX: the query text goes to the service unchanged (the service decodes it).
"""

# ruff: noqa: F811  (pytest fixtures imported from servers.fixtures are parameters here)
from __future__ import annotations

import pandas as pd
import pytest
from servers.fixtures import (  # noqa: F401  (fixtures)
    adx_conn,
    home,
    kusto_proxy,
    kusto_proxy_server,
    kusto_serve,
    la,
    la_conn,
    la_server,
)

import kqlmagic_plus as kp
from kqlmagic_plus.errors import QuerySyntaxError
from kqlmagic_plus.language import literals
from kqlmagic_plus.language.compiler import compile as kql_compile

#: (KQL literal text, the value it stands for).
FORMS = [
    ('"abc"', "abc"),
    ("'abc'", "abc"),
    ('"a\\"b\\\\c\\nd\\te\\rf"', 'a"b\\c\nd\te\rf'),
    ("'it\\'s \"q\"'", "it's \"q\""),
    ('@"C:\\temp\\x"', "C:\\temp\\x"),
    ("@'it''s'", "it's"),
    ('@"say ""hi"""', 'say "hi"'),
    ('h"admin"', "admin"),
    ("H'admin'", "admin"),
    ('h@"C:\\x"', "C:\\x"),
    ("H@'it''s'", "it's"),
    ('```multi\nline "q" \\n```', 'multi\nline "q" \\n'),
    ("~~~tilde\n~~~", "tilde\n"),
    ("h```hidden\nvalue```", "hidden\nvalue"),
    ('"\\u0041\\u00e9"', "A\u00e9"),
    ('"\\ud83d\\ude00"', "\U0001f600"),
    ('"\\U0001F600"', "\U0001f600"),
    ('"\\x41\\x7e"', "A~"),
    ('"\\101\\60\\0z"', "A0\x00z"),
    ('"\\a\\b\\f\\v"', "\a\b\f\v"),
    ('"a" "b"', "ab"),
    ('"a" h"b" @"\\c" // a comment\n ```d```', "ab\\cd"),
]
IDS = [f"{i}-{text[:12]}" for i, (text, _) in enumerate(FORMS)]
#: Forms duckdb-kql's ANTLR grammar (the compiler's parser) does not accept at all: a syntax error there,
#: never a wrong value. Kusto accepts ``@`` before a multi-line fence; the local engine decodes them first.
NOT_IN_GRAMMAR = [("@```v```", "v"), ("h@~~~w~~~", "w")]


@pytest.mark.parametrize(("text", "value"), [*FORMS, *NOT_IN_GRAMMAR], ids=[*IDS, "@```", "h@~~~"])
def test_every_form_prints_its_value_locally(text, value):
    r = kp.kql(f"print v = {text}")
    assert r.df["v"].tolist() == [value]


@pytest.mark.parametrize(("text", "value"), FORMS, ids=IDS)
def test_every_form_filters_by_its_value_locally(text, value):
    t = pd.DataFrame({"s": [value, value + "x", "other"]})
    r = kp.kql(f"t | where s == {text} | project s", namespace={"t": t})
    assert r.df["s"].tolist() == [value]


def test_obfuscated_literal_matches_the_plain_value():
    users = pd.DataFrame({"a": ["admin", "bob"]})
    assert kp.kql('users | where a == h"admin"', namespace={"users": users}).df["a"].tolist() == ["admin"]
    assert kp.kql("users | where a in (H'admin', h@'bob') | count", namespace={"users": users}).df.iloc[0, 0] == 2
    assert kp.kql('print x = strcat(h"ad", "min") == "admin"').df["x"].tolist() == [True]


@pytest.mark.parametrize(("text", "value"), FORMS, ids=IDS)
@pytest.mark.parametrize("dialect", ["spark", "duckdb"])
def test_every_form_compiles_to_the_sql_of_its_value(text, value, dialect):
    schema = {"T": [("s", "string")]}
    plain = literals.string(value)
    for query in ("print v = {}", "T | where s == {} | project s", "print d = dynamic({{'k': {}}})"):
        assert kql_compile(query.format(text), schema, dialect=dialect).sql == \
            kql_compile(query.format(plain), schema, dialect=dialect).sql


@pytest.mark.parametrize(("text", "value"), FORMS, ids=IDS)
def test_every_form_runs_through_the_compiler_on_duckdb(text, value):
    import duckdb

    sql = kql_compile(f"print v = {text}", {}, dialect="duckdb").sql
    assert duckdb.sql(sql).fetchall() == [(value,)]


@pytest.mark.spark
@pytest.mark.slow
def test_every_form_runs_through_the_compiler_on_spark(spark_local):
    query = "print " + ", ".join(f"v{i} = {text}" for i, (text, _) in enumerate(FORMS))
    row = spark_local.sql(kql_compile(query, {}, dialect="spark").sql).collect()[0]
    assert list(row) == [value for _, value in FORMS]


@pytest.mark.parametrize(("query", "line", "column", "message"), [
    ('print v = "\\d"', 1, 11, "unknown escape \\\\d"),
    ('print v = "\\u12"', 1, 11, "4 hex digits"),
    ('print v = "\\ud800"', 1, 11, "lone surrogate"),
    ('print a = h"xxxxxxxxxxxxxxxx",\n  b = "ok\\q"', 2, 9, "unknown escape"),
    ('print v = ```never closed', 1, 10, "no closing ```"),
])
def test_literals_kql_refuses_are_syntax_errors_at_their_place(query, line, column, message):
    with pytest.raises(QuerySyntaxError, match=message) as info:
        kp.kql(query)
    assert (info.value.line, info.value.column) == (line, column)


def test_positions_after_a_decoded_literal_point_into_the_text_as_written():
    # The h"..." literal is one character shorter once decoded: the error after it must not move.
    query = 'print a = h"some obfuscated text", b = 1 +'
    with pytest.raises(QuerySyntaxError) as plain_info:
        kp.kql(query.replace('h"', '"'))
    with pytest.raises(QuerySyntaxError) as info:
        kp.kql(query)
    assert info.value.line == 1
    assert info.value.column == plain_info.value.column + 1


def test_log_analytics_gets_the_text_as_written(la, home):
    # The service decodes h"..." itself (and keeps the value out of its logs): nothing is rewritten.
    query = 'SigninLogs | where UserPrincipalName == h"alice@contoso.example" | count'
    r = kp.kql(query, conn=la_conn(la))
    assert la.requests[-1].body["query"] == query
    want = kp.kql('SigninLogs | where UserPrincipalName == "alice@contoso.example" | count',
                  conn=la_conn(la)).df.iloc[0, 0]
    assert r.df.iloc[0, 0] == want > 0


def test_adx_gets_the_text_as_written(kusto_serve, kusto_proxy, home):
    query = 'Events | where Account == h"user1" | count'
    kp.kql(query, conn=adx_conn(kusto_proxy.url, kusto_serve.name))
    sent = [s.body.get("csl") for s in kusto_proxy.sent if s.path.startswith("/v2/rest/query")]
    assert sent[-1] == query


def test_render_properties_read_every_form_too():
    from kqlmagic_plus.language.render import split_render

    _, spec = split_render('T | render timechart with (title=h"Sign-ins \\x41\\101 \\u2014 " @"C:\\x", ytitle=```y```)')
    assert spec.title == "Sign-ins AA \u2014 C:\\x" and spec.ytitle == "y"
