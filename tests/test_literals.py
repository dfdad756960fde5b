"""The KQL literal encoder: exact text per type, refusals, and structural properties.

What the text *means* to an engine is checked in test_params_engines.py (round trips and the
injection properties on every engine); here the text itself is pinned down.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kqlmagic_plus.errors import ParameterError
from kqlmagic_plus.language import literals, tables
from kqlmagic_plus.language.lexer import tokenize

#: Every literal of a non-string scalar type: a type word and a closed alphabet (no quote, pipe,
#: semicolon, slash, whitespace or bracket other than the one pair of parentheses).
CLOSED = re.compile(r"(true|false|[0-9][0-9.e+-]*|(bool|int|long|real|decimal|datetime|timespan|guid)"
                    r"\((null|nan|[+-]inf|[-0-9.e+]+|[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{16}Z|"
                    r"-?[0-9]+\.[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{7}|[0-9a-f-]{36})\))")


@pytest.mark.parametrize(("value", "text"), [
    ("abc", '"abc"'),
    ("", '""'),
    ('say "hi"', '"say \\"hi\\""'),
    ("it's", '"it\'s"'),
    ("C:\\temp\\x", '"C:\\\\temp\\\\x"'),
    ("a\nb\rc\td", '"a\\nb\\rc\\td"'),
    ("x // y | z; w", '"x // y | z; w"'),
    ("nul\x00bidi\u202eend\u2028", '"nul\x00bidi\u202eend\u2028"'),
    ("\\u0041", '"\\\\u0041"'),
])
def test_string_literal_escapes_only_what_the_grammar_requires(value, text):
    assert literals.string(value) == text
    assert literals.encode(value) == text


def test_verbatim_and_obfuscated_forms():
    assert literals.string('a"b\\c', verbatim=True) == '@"a""b\\c"'
    assert literals.string("secret", obfuscated=True) == 'h"secret"'
    assert literals.string("C:\\x", verbatim=True, obfuscated=True) == 'h@"C:\\x"'
    with pytest.raises(ParameterError, match="line break"):
        literals.string("a\nb", verbatim=True)


def test_lone_surrogate_is_refused():
    with pytest.raises(ParameterError, match=r"surrogate.*U\+D800"):
        literals.string("ab\ud800")
    with pytest.raises(ParameterError, match="surrogate"):
        literals.encode(["ok", "\udfff"])


@pytest.mark.parametrize(("value", "kql_type", "text"), [
    (True, None, "true"),
    (False, "bool", "false"),
    (None, "bool", "bool(null)"),
    (5, None, "5"),
    (0, None, "0"),
    (-5, None, "long(-5)"),
    (2**63 - 1, None, "9223372036854775807"),
    (-(2**63), None, "long(-9223372036854775808)"),
    (7, "int", "int(7)"),
    (-7, "int", "int(-7)"),
    (1.5, None, "1.5"),
    (-1.5e-07, None, "real(-1.5e-07)"),
    (1e300, None, "1e+300"),
    (5e-324, None, "5e-324"),
    (-0.0, None, "real(-0.0)"),
    (float("nan"), None, "real(nan)"),
    (float("inf"), None, "real(+inf)"),
    (float("-inf"), None, "real(-inf)"),
    (3, "real", "3.0"),
    (Decimal("1.250"), None, "decimal(1.250)"),
    (Decimal("-1E+3"), None, "decimal(-1000)"),
    (Decimal("79228162514264337593543950335"), None, "decimal(79228162514264337593543950335)"),
    (dt.datetime(2024, 5, 1, 12, 30, 5, 123456), None, "datetime(2024-05-01T12:30:05.1234560Z)"),
    (dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), None,
     "datetime(2024-05-01T12:30:00.0000000Z)"),
    (dt.date(999, 1, 2), None, "datetime(0999-01-02T00:00:00.0000000Z)"),
    (pd.Timestamp("2024-05-01T00:00:00.000001", tz="UTC"), None, "datetime(2024-05-01T00:00:00.0000010Z)"),
    (pd.NaT, None, "datetime(null)"),
    (np.datetime64("2024-05-01T01:02:03"), None, "datetime(2024-05-01T01:02:03.0000000Z)"),
    (dt.timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=5), None, "timespan(1.02:03:04.0000050)"),
    (-dt.timedelta(minutes=90), None, "timespan(-0.01:30:00.0000000)"),
    (dt.timedelta(0), None, "timespan(0.00:00:00.0000000)"),
    (pd.Timedelta("36h"), None, "timespan(1.12:00:00.0000000)"),
    (np.timedelta64(90, "s"), None, "timespan(0.00:01:30.0000000)"),
    (uuid.UUID("7F1BD1BA-3A6B-4F2E-9D38-1B8B1B8F0A11"), None, "guid(7f1bd1ba-3a6b-4f2e-9d38-1b8b1b8f0a11)"),
    ("7f1bd1ba-3a6b-4f2e-9d38-1b8b1b8f0a11", "guid", "guid(7f1bd1ba-3a6b-4f2e-9d38-1b8b1b8f0a11)"),
    ("2024-05-01T00:00:00Z", "datetime", "datetime(2024-05-01T00:00:00.0000000Z)"),
    (np.int32(-3), None, "int(-3)"),
    (np.int64(3), None, "3"),
    (np.uint8(200), None, "int(200)"),
    (np.float32(0.5), None, "0.5"),
    (np.bool_(True), None, "true"),
    (np.str_("x"), None, '"x"'),
])
def test_scalar_literals(value, kql_type, text):
    assert literals.encode(value, kql_type) == text
    assert CLOSED.fullmatch(text) or text.startswith('"')


@pytest.mark.parametrize(("value", "text"), [
    (None, "dynamic(null)"),
    ([], "dynamic([])"),
    ({}, "dynamic({})"),
    ([1, -2, 2.5, "a\"b", None, True], 'dynamic([1,-2,2.5,"a\\"b",null,true])'),
    ((1, 2), "dynamic([1,2])"),
    ({"b", "a"}, 'dynamic(["a","b"])'),
    ({"k": {"n": [dt.datetime(2024, 1, 1)]}}, 'dynamic({"k":{"n":["2024-01-01T00:00:00.0000000Z"]}})'),
    ({"g": uuid.UUID(int=1), "d": Decimal("1.10"), "t": dt.timedelta(seconds=1)},
     'dynamic({"g":"00000000-0000-0000-0000-000000000001","d":1.10,"t":"0.00:00:01.0000000"})'),
    (np.array([1, 2]), "dynamic([1,2])"),
    (pd.Series(["x", "y"]), 'dynamic(["x","y"])'),
    ({"line\nbreak": "//|;"}, 'dynamic({"line\\nbreak":"//|;"})'),
])
def test_dynamic_literals(value, text):
    assert literals.encode(value) == text


def test_json_text_is_standard_json():
    import json

    value = {"a": ["x\x00y", 1, 2.5, None, {"z": "\u202e"}], "b": True}
    assert json.loads(literals.json_text(value)) == value


@pytest.mark.parametrize(("value", "kql_type", "message"), [
    (b"bytes", None, "bytes values cannot.*decode bytes"),
    (object(), None, "object values cannot"),
    (2**63, None, "out of range for a KQL long"),
    (2**31, "int", "out of range for a KQL int"),
    (np.uint64(2**64 - 1), None, "out of range"),
    (Decimal("NaN"), None, "no NaN"),
    (Decimal("1e-29"), None, "does not fit a KQL decimal"),
    (Decimal(2**96), None, "does not fit a KQL decimal"),
    (1.5, "decimal", "floats are inexact"),
    (1.5, "long", "float value cannot be a KQL long"),
    (True, "long", "bool value cannot be a KQL long"),
    ("x", "datetime", "not ISO-8601"),
    ("x", "guid", "not a GUID"),
    (5, "string", "int value cannot be a KQL string"),
    (pd.Timestamp("2024-01-01T00:00:00.000000001"), None, "nanoseconds"),
    (pd.Timedelta(1, "ns"), None, "nanoseconds"),
    (dt.timedelta(days=20_000_000), None, "out of range for a KQL timespan"),
    ([float("nan")], None, "JSON .* has no nan"),
    ({1: "x"}, None, "str keys"),
    ([b"x"], None, "bytes values cannot"),
])
def test_refusals_name_the_problem(value, kql_type, message):
    with pytest.raises(ParameterError, match=message):
        literals.encode(value, kql_type)


def test_deep_nesting_is_refused_not_a_recursion_error():
    value: list = []
    for _ in range(200):
        value = [value]
    with pytest.raises(ParameterError, match="nested deeper"):
        literals.encode(value)


def test_identifier_brackets_what_is_not_a_plain_name():
    assert literals.identifier("SourceIP") == "SourceIP"
    assert literals.identifier("my col") == '["my col"]'
    assert literals.identifier("where") == '["where"]'
    assert literals.identifier('a"]b') == '["a\\"]b"]'


def test_datatable_encodes_types_nulls_and_every_cell():
    df = pd.DataFrame({
        "ip": ["10.0.0.1", 'x"); T | take 9 //', None],
        "n": pd.array([1, None, -3], dtype="Int64"),
        "small": pd.array([1, 2, 3], dtype="int32"),
        "score": [0.5, float("nan"), -2.0],
        "seen": pd.to_datetime(["2024-05-01T00:00:00Z", None, "2024-05-03T01:02:03Z"], utc=True),
        "ok": [True, False, True],
        "tags": [["a"], {"k": 1}, None],
        "my col": ["x", "y", "z"],
        "id": [uuid.UUID(int=1), None, uuid.UUID(int=3)],
        "dur": pd.to_timedelta(["1h", None, "-1s"]),
    })
    text = tables.datatable(df)
    assert text.startswith(
        'datatable(ip:string, n:long, small:int, score:real, seen:datetime, ok:bool, tags:dynamic, '
        '["my col"]:string, id:guid, dur:timespan)[')
    assert ('"10.0.0.1", 1, int(1), 0.5, datetime(2024-05-01T00:00:00.0000000Z), true, dynamic(["a"]), '
            '"x", guid(00000000-0000-0000-0000-000000000001), timespan(0.01:00:00.0000000)') in text
    assert ('"x\\"); T | take 9 //", long(null), int(2), real(null), datetime(null), false, '
            'dynamic({"k":1}), "y", guid(null), timespan(null)') in text
    assert ('"", long(-3), int(3), real(-2.0), datetime(2024-05-03T01:02:03.0000000Z), true, dynamic(null), '
            '"z", guid(00000000-0000-0000-0000-000000000003), timespan(-0.00:00:01.0000000)]') in text


def test_datatable_shapes():
    assert tables.datatable(pd.DataFrame({"a": pd.Series([], dtype=object)})) == "datatable(a:string)[]"
    assert tables.datatable(pd.DataFrame({"a": [1, 2.5]})) == "datatable(a:real)[1.0, 2.5]"
    assert tables.datatable(pd.DataFrame({"a": [1, "x"]})) == 'datatable(a:dynamic)[dynamic(1), dynamic("x")]'
    assert tables.datatable(pd.DataFrame({"a": pd.Categorical(["x", "y"])})) == 'datatable(a:string)["x", "y"]'
    with pytest.raises(ParameterError, match="no columns"):
        tables.datatable(pd.DataFrame())
    with pytest.raises(ParameterError, match="duplicate column names: a"):
        tables.datatable(pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(ParameterError, match=r"column 'b'.*out of range"):
        tables.datatable(pd.DataFrame({"b": np.array([2**64 - 1], dtype="uint64")}))


def test_datatable_from_arrow():
    import pyarrow as pa

    assert tables.datatable(pa.table({"x": ["a"], "y": [1]})) == 'datatable(x:string, y:long)["a", 1]'


# -- structural properties: whatever the value, the literal is one token ------------------------------

TRICKY = ['"', "'", "\\", "\n", "\r", "\t", "//", "|", ";", "\x00", "\u202e", "\u2066", "\u2028", "\u0085",
          "@", "h", "```", "let", "where", "{y}", "$x", ")", "]", "\\n", '\\"']
tricky_text = st.one_of(st.text(), st.lists(st.sampled_from(TRICKY) | st.text(max_size=2)).map("".join))


@settings(max_examples=500, deadline=None)
@given(tricky_text)
def test_string_literal_is_exactly_one_string_token(value):
    text = literals.string(value)
    toks = tokenize(f"print x = {text} | take 1")
    strings = [t for t in toks if t.kind == "string"]
    assert [t.text for t in strings] == [text]
    assert "\n" not in text and "\r" not in text
    # Decoding with the documented escapes gives the value back.
    decoded = re.sub(r'\\(.)', lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)),
                     text[1:-1], flags=re.S)
    assert decoded == value


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                    | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(tricky_text, kids, max_size=4),
                    max_leaves=12))
def test_dynamic_literal_round_trips_through_json(value):
    import json

    text = literals.encode(value, "dynamic")
    assert text.startswith("dynamic(") and text.endswith(")")
    assert "\n" not in text
    assert json.loads(literals.json_text(value)) == json.loads(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(), st.booleans(),
    st.datetimes(), st.timedeltas(min_value=-dt.timedelta(days=10_000_000), max_value=dt.timedelta(days=10_000_000)),
    st.uuids(), st.decimals(allow_nan=False, allow_infinity=False, places=6, max_value=10**15, min_value=-10**15),
))
def test_non_string_scalars_use_a_closed_alphabet(value):
    assert CLOSED.fullmatch(literals.encode(value)), literals.encode(value)


def test_nan_and_inf_spellings_are_distinct():
    assert {literals.encode(v) for v in (math.nan, math.inf, -math.inf, None)} == {
        "real(nan)", "real(+inf)", "real(-inf)", "dynamic(null)"}


# -- string literals -> values: every form KQL has -----------------------------------------------------------

@pytest.mark.parametrize(("token", "value"), [
    ('"abc"', "abc"), ("'abc'", "abc"), ('""', ""), ("''", ""),
    ('"say \\"hi\\""', 'say "hi"'), ("'it\\'s'", "it's"), ("'a\"b'", 'a"b'), ('"a\'b"', "a'b"),
    ('"\\\\ \\n \\r \\t \\a \\b \\f \\v"', "\\ \n \r \t \a \b \f \v"),
    ('"\\u0041\\u00E9\\u20ac"', "A\u00e9\u20ac"),
    ('"\\ud83d\\ude00"', "\U0001f600"),                 # a UTF-16 surrogate pair is one character
    ('"\\U0001F600"', "\U0001f600"),
    ('"\\x41\\x4a"', "AJ"),
    ('"\\0"', "\x00"), ('"\\101"', "A"), ('"\\12"', "\n"), ('"\\477"', "'7"),  # octal: 3 digits only to \\377
    ('@"C:\\temp\\"', "C:\\temp\\"), ('@"a""b"', 'a"b'), ("@'it''s'", "it's"), ('@""""', '"'),
    ('h"secret"', "secret"), ("H'secret'", "secret"), ('h@"C:\\x"', "C:\\x"), ("H@'a''b'", "a'b"),
    ('h"\\u0041"', "A"),
    ("```a\nb \\n \"c\" 'd'```", "a\nb \\n \"c\" 'd'"), ("~~~x~~~", "x"), ("``````", ""),
    ("h```hidden```", "hidden"), ("@```v```", "v"), ("H@~~~w~~~", "w"),
])
def test_decode_string_every_form(token, value):
    assert literals.decode_string(token) == value


@pytest.mark.parametrize(("token", "message", "offset"), [
    ('"\\d"', "unknown escape \\\\d", 1),
    ('"\\8"', "unknown escape", 1),
    ('"\\u12"', "4 hex digits", 1),
    ('"\\xZZ"', "2 hex digits", 1),
    ('"\\U00110000"', "beyond the last Unicode code point", 1),
    ('"\\ud800x"', "lone surrogate", 1),
    ('"abc', "no closing", 0),
    ('"a\\"', "no closing", 0),
    ('@"a""', "no closing", 0),
    ('"a\nb"', "line break", 2),
    ("```abc", "no closing ```", 0),
    ('"a"b"', "ends at the", 2),
    ("abc", "not a string literal", 0),
])
def test_decode_string_refuses_what_kql_refuses(token, message, offset):
    with pytest.raises(literals.StringLiteralError, match=message) as info:
        literals.decode_string(token)
    assert info.value.offset == offset


@settings(max_examples=500, deadline=None)
@given(tricky_text)
def test_every_encoded_string_decodes_to_its_value(value):
    assert literals.decode_string(literals.string(value)) == value
    assert literals.decode_string(literals.string(value, obfuscated=True)) == value
    if "\n" not in value and "\r" not in value:
        assert literals.decode_string(literals.string(value, verbatim=True)) == value
        assert literals.decode_string(literals.string(value, verbatim=True, obfuscated=True)) == value


@pytest.mark.parametrize(("text", "tokens"), [
    ('h"a" x', ['h"a"']),
    ("H@'a''b' x", ["H@'a''b'"]),
    ("h```a\nb``` x", ["h```a\nb```"]),
    ("@~~~a~~~", ["@~~~a~~~"]),
    ('hh"a"', ['"a"']),                                   # `hh` is a name, then a string
    ('path"a"', ['"a"']),
    ('"a\\\nb"', ['"a\\', '"']),                          # no literal spans a line: unterminated
    ('@"a\nb"', ['@"a', '"']),
])
def test_lexer_token_boundaries_of_every_form(text, tokens):
    assert [t.text for t in tokenize(text) if t.kind == "string"] == tokens


# -- 100 ns ticks --------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [
    (pd.Timestamp("2024-05-01T00:00:00.1234567"), "datetime(2024-05-01T00:00:00.1234567Z)"),
    (pd.Timestamp("2024-05-01T02:00:00.0000001", tz="Europe/Paris"), "datetime(2024-05-01T00:00:00.0000001Z)"),
    (np.datetime64("2024-05-01T00:00:00.000000300"), "datetime(2024-05-01T00:00:00.0000003Z)"),
    (pd.Timedelta("00:00:00.0000001"), "timespan(0.00:00:00.0000001)"),
    (-pd.Timedelta(days=1, nanoseconds=100), "timespan(-1.00:00:00.0000001)"),
    (np.timedelta64(1500, "ns"), "timespan(0.00:00:00.0000015)"),
    ([pd.Timestamp("2024-05-01T00:00:00.1234567")], 'dynamic(["2024-05-01T00:00:00.1234567Z"])'),
])
def test_datetimes_and_timespans_keep_kql_ticks(value, text):
    assert literals.encode(value) == text


def test_bytes_are_refused_with_the_ways_out():
    with pytest.raises(ParameterError, match=r"KQL has no binary type.*decode.*base64"):
        literals.encode(b"\x00ab")
    with pytest.raises(ParameterError, match=r"column 'b'.*bytes"):
        tables.datatable(pd.DataFrame({"b": [b"x"]}))


# -- tables: the C-speed JSON of dynamic columns is exactly literals.json_text ------------------------------

_json_leaf = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | tricky_text
              | st.sampled_from([np.int64(3), np.float64(0.5), Decimal("1.10"), dt.datetime(2024, 1, 1), "\ud800"]))
_json_value = st.recursive(_json_leaf, lambda kids: st.lists(kids, max_size=3) | st.tuples(kids)
                           | st.dictionaries(tricky_text | st.integers(0, 3), kids, max_size=3), max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.lists(_json_value, min_size=1, max_size=4))
def test_dynamic_column_json_is_json_text(cells):
    def exact(v):
        try:
            return literals.json_text(v)
        except ParameterError as exc:
            return ("refused", exc.message)

    want = [None if literals.is_missing(v) else exact(v) for v in cells]  # a missing cell is null
    refusals = [w for w in want if isinstance(w, tuple)]
    if refusals:
        with pytest.raises(ParameterError) as info:
            tables._json_texts(cells)
        assert ("refused", info.value.message) in refusals
    else:
        assert tables._json_texts(cells) == want


def test_dynamic_column_json_refuses_what_json_text_refuses():
    deep: list = []
    for _ in range(150):
        deep = [deep]
    for bad in ({1: "x"}, [float("nan")], [2**64], deep, ["\ud800"]):
        with pytest.raises(ParameterError):
            tables._json_texts([{"ok": 1}, bad])
    assert tables._json_texts([{"k": (1, 2)}, None, [np.int64(5)]]) == ['{"k":[1,2]}', None, "[5]"]
