"""Binding Python values to queries: inference, `let x = pyvar;`, both styles, errors, and the
local engine / API / magic wiring (real DuckDB through duckdb-kql)."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

import kqlmagic_plus as kp
from kqlmagic_plus.errors import ParameterError, QuerySyntaxError
from kqlmagic_plus.language import aliases, params

EVIL = 'x"; T | take 100000 // \' \\ \n \u202e'


@pytest.mark.parametrize(("value", "kql_type"), [
    ("a", "string"), (np.str_("a"), "string"),
    (True, "bool"), (np.bool_(False), "bool"),
    (1, "long"), (np.int64(1), "long"), (np.uint32(1), "long"), (np.int32(1), "int"), (np.int8(1), "int"),
    (1.5, "real"), (np.float32(1.5), "real"),
    (Decimal("1.5"), "decimal"),
    (dt.datetime(2024, 1, 1), "datetime"), (dt.date(2024, 1, 1), "datetime"),
    (pd.Timestamp("2024-01-01"), "datetime"), (pd.NaT, "datetime"), (np.datetime64("2024-01-01"), "datetime"),
    (dt.timedelta(1), "timespan"), (pd.Timedelta("1h"), "timespan"), (np.timedelta64(1, "s"), "timespan"),
    (uuid.uuid4(), "guid"),
    ([1], "dynamic"), ((1,), "dynamic"), ({1}, "dynamic"), ({"a": 1}, "dynamic"), (None, "dynamic"),
    (np.array([1, 2]), "dynamic"), (pd.Series([1]), "dynamic"),
    (pd.DataFrame({"a": [1]}), "tabular"),
])
def test_infer_kql_type(value, kql_type):
    assert params.infer_kql_type(value) == kql_type


def test_infer_kql_type_refuses_other_objects():
    with pytest.raises(ParameterError, match="function_or_method values cannot be put into a query"):
        params.infer_kql_type(len)


# -- let x = pyvar; -----------------------------------------------------------------------------------

def test_resolve_python_lets_blanks_the_statement_and_keeps_positions():
    query = "let who = user;\nlet n = 5;\nT | where Account == who\n| take n"
    out, found = params.resolve_python_lets(query, {"user": "alice", "T": 1})
    assert found == {"who": "alice"}
    assert out == " " * len("let who = user;") + "\nlet n = 5;\nT | where Account == who\n| take n"
    assert len(out) == len(query) and out.splitlines()[1:] == query.splitlines()[1:]


def test_resolve_python_lets_leaves_what_is_not_a_python_value():
    ns = {"events": pd.DataFrame({"a": [1]}), "fn": len, "x": 3}
    query = ('let t = SigninLogs;\n'             # a table, not in the namespace
             'let f = fn;\n'                       # a Python function: not a value
             'let x = 1; let y = x;\n'             # x is bound by the query itself
             'let s = "let z = x;";\n'             # inside a string
             '// let c = x;\n'                     # inside a comment
             'let g = (a:long) { let inner = x; a };\n'   # inside a function body
             'let h = toupper(x);\n'               # a call
             'print 1')
    out, found = params.resolve_python_lets(query, ns)
    assert found == {}
    assert out == query


def test_resolve_python_lets_dataframes_and_several_lets():
    df = pd.DataFrame({"ip": ["1.2.3.4"]})
    out, found = params.resolve_python_lets("let iocs = bad_ips; let since = t0;\nT", {"bad_ips": df, "t0": 1})
    assert set(found) == {"iocs", "since"} and found["iocs"] is df
    assert out.strip() == "T" and out.count("\n") == 1


def test_merge_params_refuses_a_name_given_twice():
    assert params.merge_params({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}
    with pytest.raises(ParameterError, match="'a' is given both"):
        params.merge_params({"a": 1}, {"a": 2})


# -- bind: declare ------------------------------------------------------------------------------------

def test_bind_without_params_changes_nothing():
    b = params.bind("T | take 1", {}, "declare")
    assert b.query == "T | take 1" and b.values == {} and b.tables == {} and b.request_parameters() == {}


def test_bind_declare_keeps_strings_out_of_the_text():
    b = params.bind("T | where a == who", {"who": EVIL, "n": 5, "ips": ["1.1.1.1", EVIL]}, "declare")
    first, rest = b.query.split("\n", 1)
    assert rest == "T | where a == who"
    assert first == ("declare query_parameters(who:string, n:long = 5, ips__json:string); "
                     "let ips = parse_json(ips__json);")
    assert EVIL not in b.query and "T | take" not in first
    assert set(b.values) == {"who", "n", "ips__json"}
    assert b.values["who"] == EVIL and b.values["n"] == 5
    assert json.loads(b.values["ips__json"]) == ["1.1.1.1", EVIL]
    assert b.request_parameters() == {"who": EVIL, "ips__json": b.values["ips__json"]}


def test_bind_declare_defaults_and_wire_forms():
    when = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    b = params.bind("print 1", {"since": when, "g": uuid.UUID(int=1), "d": Decimal("2.5"), "none": None,
                                "nat": pd.NaT}, "declare")
    assert b.query.split("\n")[0] == (
        "declare query_parameters(since:datetime = datetime(2024-05-01T00:00:00.0000000Z), "
        "g:guid = guid(00000000-0000-0000-0000-000000000001), d:decimal, none__json:string, nat:datetime); "
        "let none = parse_json(none__json);")
    assert b.values["since"] == dt.datetime(2024, 5, 1) and b.values["nat"] is None
    assert b.request_parameters() == {"d": "decimal(2.5)", "none__json": "null", "nat": "datetime(null)"}


def test_bind_hidden_json_name_avoids_names_in_use():
    b = params.bind("let ips__json = 1; print ips__json", {"ips": [1]}, "declare")
    assert "ips__json2:string" in b.query and "let ips = parse_json(ips__json2);" in b.query


def test_bind_merges_an_existing_declaration():
    query = "declare query_parameters(who:string, since:datetime = datetime(2024-01-01));\nT | where a == who"
    b = params.bind(query, {"who": EVIL, "n": 3}, "declare")
    first, second, third = b.query.split("\n")
    assert first == ("declare query_parameters(who:string, since:datetime = datetime(2024-01-01), "
                     "n:long = 3);")
    assert second.strip() == "" and len(second) == len(query.split("\n")[0])
    assert third == "T | where a == who"
    assert b.request_parameters() == {"who": EVIL}


def test_bind_coerces_to_the_declared_type():
    b = params.bind("declare query_parameters(since:datetime, r:real, g:guid, d:dynamic); print since",
                    {"since": "2024-05-01T00:00:00Z", "r": 2, "g": str(uuid.UUID(int=2)), "d": {"k": [1]}},
                    "declare")
    assert b.values == {"since": dt.datetime(2024, 5, 1), "r": 2.0, "g": uuid.UUID(int=2), "d": '{"k":[1]}'}
    assert b.request_parameters() == {"since": "datetime(2024-05-01T00:00:00.0000000Z)", "r": "2.0",
                                      "g": "guid(00000000-0000-0000-0000-000000000002)",
                                      "d": 'dynamic({"k":[1]})'}


@pytest.mark.parametrize(("query", "values", "message"), [
    ("declare query_parameters(n:long); print n", {"n": "five"}, "parameter 'n' is declared long: a str"),
    ("declare query_parameters(n:long); print n", {"n": pd.DataFrame({"a": [1]})}, "'n' is declared long.*DataFrame"),
    ("declare query_parameters(n:long, who:string); print n", {"n": 1}, "declares parameter 'who' \\(string\\) but no"),
    ("declare query_parameters(n:blob); print n", {"n": 1}, "'n' is declared with type 'blob'"),
    ("declare query_parameters(n:long; print n", {"n": 1}, "no closing parenthesis|cannot read"),
    ("print x", {"my var": 1}, "'my var' is not a KQL identifier"),
    ("print x", {"where": 1}, "'where' is not a KQL identifier"),
    ("print x", {"1x": 1}, "not a KQL identifier"),
    ("print x", {"x": b"raw"}, "bytes values cannot"),
    ("print x", {"x": 2**64}, "out of range for a KQL long"),
])
def test_bind_errors_name_the_parameter_and_type(query, values, message):
    for style in ("declare", "literal"):
        with pytest.raises(ParameterError, match=message):
            params.bind(query, values, style)


def test_bind_tables_registered_or_inlined():
    df = pd.DataFrame({"ip": ["1.1.1.1", EVIL]})
    b = params.bind("T | where ip in (iocs)", {"iocs": df}, "declare")
    assert b.query == "T | where ip in (iocs)" and b.values == {}
    assert b.tables["iocs"].to_pylist() == [{"ip": "1.1.1.1"}, {"ip": EVIL}]
    assert "registered, not sent as text" in b.shown()
    inline = params.bind("T | where ip in (iocs)", {"iocs": df}, "declare", tables=False)
    assert inline.tables == {}
    assert inline.query.startswith('let iocs = datatable(ip:string)["1.1.1.1", "x\\"; T | take 100000')


def test_typed_table_carries_kql_types():
    import pyarrow as pa

    df = pd.DataFrame({"s": ["a", None], "d": [[1], {"k": "v"}], "g": [uuid.UUID(int=1), None],
                       "t": [dt.datetime(2024, 1, 1), None], "n": pd.array([1, None], dtype="Int32"),
                       "m": [Decimal("1.25"), None], "r": [float("nan"), 1.0]})
    table = params.typed_table(df)
    assert [f.metadata[b"kql_type"].decode() for f in table.schema] == [
        "string", "dynamic", "guid", "datetime", "int", "decimal", "real"]
    assert table.schema.field("t").type == pa.timestamp("us", tz="UTC")
    assert table.column("s").to_pylist() == ["a", ""]
    assert table.column("d").to_pylist() == ["[1]", '{"k":"v"}']
    assert table.column("r").to_pylist() == [None, 1.0]
    with pytest.raises(ParameterError, match=r"column 'b'.*bytes"):
        params.typed_table(pd.DataFrame({"b": [b"x"]}))


# -- bind: literal --------------------------------------------------------------------------------------

def test_bind_literal_prepends_one_line_of_lets():
    df = pd.DataFrame({"a": [1, 2]})
    b = params.bind("T | where a == who", {"who": EVIL, "n": -2, "t": df, "l": [1, "x"]}, "literal")
    first, rest = b.query.split("\n", 1)
    assert rest == "T | where a == who"
    assert first == ('let who = "x\\"; T | take 100000 // \' \\\\ \\n \u202e"; let n = long(-2); '
                     'let t = datatable(a:long)[1, 2]; let l = dynamic([1,"x"]);')
    assert b.values == {} and b.tables == {} and b.request_parameters() == {}


def test_bind_literal_turns_a_declaration_into_lets():
    query = "declare query_parameters(who:string, k:long = 7);\nprint who, k"
    b = params.bind(query, {"who": "a"}, "literal")
    assert b.query.split("\n")[0] == 'let k = 7; let who = "a";'
    assert "declare" not in b.query


def test_unknown_style():
    with pytest.raises(ParameterError, match="unknown binding style"):
        params.bind("print 1", {"a": 1}, "inline")


def test_shown_lists_text_and_request_parameters_without_invisible_characters():
    b = params.bind("print who", {"who": "a\u202eb\x00"}, "declare")
    shown = b.shown()
    assert shown.startswith("declare query_parameters(who:string);\nprint who\n")
    assert '-- request parameters: {"who": "a\\u202eb\\u0000"}' in shown
    assert "\u202e" not in shown


def test_original_position_and_rebase_map_through_the_prefix():
    b = params.bind("print x\n| bad", {"x": 1}, "declare")
    assert b.original_position(3, 2) == (2, 2)
    assert b.original_position(1, 5) == (1, 0)
    rw = aliases.rewrite_deprecated("print y = makeset(x)\n| bad")
    rb = params.bind(rw.text, {"x": 1}, "declare").rebase(rw)
    assert rb.text.endswith(rw.text)
    assert rb.original_position(3, 2) == (2, 2)
    assert rb.original_position(2, 16) == (1, 16)


# -- the local engine, the API and the magic ------------------------------------------------------------

@pytest.fixture
def table():
    return pd.DataFrame({"Account": ["alice", EVIL, "bob", "x"], "n": [1, 2, 3, 4]})


def test_api_binds_params_on_the_local_engine(table):
    r = kp.kql("T | where Account == who | project n", params={"who": EVIL}, namespace={"T": table})
    assert r.df["n"].tolist() == [2]
    assert r.parameters == {"who": EVIL}
    assert r.executed.startswith("declare query_parameters(who:string);\nT | where Account == who")
    assert "-- translated to:" in r.executed and EVIL not in r.executed


def test_api_resolves_kqlmagic_lets(table):
    r = kp.kql("let who = target;\nT | where Account == who | project n", namespace={"T": table, "target": EVIL})
    assert r.df["n"].tolist() == [2]
    r = kp.kql("let accts = targets; T | where Account in (accts) | project n",
               namespace={"T": table, "targets": ["bob", EVIL]})
    assert sorted(r.df["n"].tolist()) == [2, 3]


def test_api_dataframe_parameter_is_a_table(table):
    iocs = pd.DataFrame({"Account": [EVIL, "nobody"]})
    r = kp.kql("T | where Account in (iocs | project Account) | project n", params={"iocs": iocs},
               namespace={"T": table})
    assert r.df["n"].tolist() == [2]
    assert r.parameters == {"iocs": "<table: 2 rows x 1 columns>"}
    # The table is gone for the next query that does not pass it.
    with pytest.raises(Exception, match="iocs"):
        kp.kql("iocs | count", namespace={"T": table})


def test_api_typed_parameters_on_the_local_engine():
    r = kp.kql("print a = since + 1d, b = n * 2, c = array_length(l), d = g, e = isnan(f)",
               params={"since": dt.datetime(2024, 5, 1, 22, tzinfo=dt.timezone(dt.timedelta(hours=-2))),
                       "n": np.int64(21), "l": ["a", "b"], "g": uuid.UUID(int=9), "f": float("nan")})
    row = r.df.iloc[0]
    assert row["a"] == pd.Timestamp("2024-05-03T00:00:00Z")
    assert row["b"] == 42 and row["c"] == 2 and row["d"] == str(uuid.UUID(int=9)) and bool(row["e"])


def test_syntax_error_caret_points_at_the_users_text():
    with pytest.raises(QuerySyntaxError) as info:
        kp.kql("print x\n| where (", params={"x": 1})
    assert info.value.line == 2
    assert "2 | | where (" in str(info.value)


def test_parameter_error_reaches_the_api_caller():
    with pytest.raises(ParameterError, match="'x' is declared long"):
        kp.kql("declare query_parameters(x:long); print x", params={"x": "nope"})


def test_magic_does_not_expand_braces_or_dollars(ip, run_cell):
    # `{y}` in a line query is Kqlmagic's reference (#18): bound as a parameter, never spliced as text;
    # `$y` and braces in a cell body stay text.
    ip.user_ns["y"] = "EXPANDED"
    value, err, _ = run_cell('%kql print x = "{y}", z = "$y"')
    assert err is None
    assert value.df.iloc[0].tolist() == ["EXPANDED", "$y"] and "EXPANDED" not in value.query
    value, err, _ = run_cell('%%kql\nprint x = "{y}"')
    assert err is None and value.df.iloc[0, 0] == "{y}"


def test_magic_param_and_params_dict(ip, run_cell):
    ip.user_ns["T"] = pd.DataFrame({"Account": ["alice", EVIL], "n": [1, 2]})
    ip.user_ns["target"] = EVIL
    value, err, out = run_cell("%%kql --param who=target --show-query\nT | where Account == who | project n")
    assert err is None and value.df["n"].tolist() == [2]
    assert "declare query_parameters(who:string);" in out and "-- parameters:" in out
    ip.user_ns["p"] = {"who": "alice"}
    value, err, _ = run_cell("%%kql --params p\nT | where Account == who | project n")
    assert err is None and value.df["n"].tolist() == [1]


def test_magic_kqlmagic_let_form(ip, run_cell):
    ip.user_ns["T"] = pd.DataFrame({"Account": ["alice", EVIL], "n": [1, 2]})
    ip.user_ns["target"] = EVIL
    value, err, _ = run_cell("%%kql\nlet who = target;\nT | where Account == who | project n")
    assert err is None and value.df["n"].tolist() == [2]


# -- the cache key of a parameter: what it binds as --------------------------------------------------------

def _key(value):
    """The cache key of ``print v = p`` with *value* for p, on the local engine."""
    from kqlmagic_plus.cache.key import query_key
    from kqlmagic_plus.engines.local import LocalEngine
    from kqlmagic_plus.request import Request

    return query_key(LocalEngine(), Request(query="print v = p", params={"p": value}))


@pytest.mark.parametrize(("a", "b"), [
    (np.int32(5), 5),                                     # int vs long
    (np.int8(5), np.int64(5)),
    (np.float32(0.1), 0.1),                               # 0.10000000149011612 vs 0.1
    (1, 1.0),
    (True, 1),
    (pd.Timestamp("2024-01-01T00:00:00.0000001"), pd.Timestamp("2024-01-01T00:00:00.0000002")),
    (pd.Timedelta(100, "ns"), pd.Timedelta(0)),
    ("1", 1),
    (None, pd.NaT),                                       # dynamic null vs datetime null
])
def test_values_that_bind_differently_have_different_keys(a, b):
    assert _key(a) != _key(b)


@pytest.mark.parametrize(("a", "b"), [
    (5, np.int64(5)),
    (np.int32(5), np.int16(5)),
    (dt.datetime(2024, 1, 1, 12), pd.Timestamp("2024-01-01T12:00:00")),
    (dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))),
    (dt.date(2024, 1, 1), dt.datetime(2024, 1, 1)),
    (dt.timedelta(hours=1), pd.Timedelta("1h")),
    ([1, "a"], (1, "a")),
    ({"b", "a"}, ["a", "b"]),
    (np.str_("x"), "x"),
    (np.float64(0.5), 0.5),
])
def test_equal_values_that_bind_the_same_share_a_key(a, b):
    assert _key(a) == _key(b)



def test_a_cached_int_parameter_is_not_served_for_a_long_one(cache_dir):
    as_int = kp.kql("print v = p", params={"p": np.int32(5)}, cache="1h")
    as_long = kp.kql("print v = p", params={"p": 5}, cache="1h")
    again = kp.kql("print v = p", params={"p": np.int64(5)}, cache="1h")
    assert as_int.kql_types == ["int"] and not as_long.from_cache and as_long.kql_types == ["long"]
    assert again.from_cache and again.kql_types == ["long"]
