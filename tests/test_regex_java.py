"""KQL regular expressions are RE2's; Spark runs them with Java's engine, which reads a few spellings otherwise:
a ``[`` inside a class, a ``{`` that starts no repetition, ``&&`` in a class, ``(?P<name>``, ``[[:digit:]]``.
Each case below gives RE2's answer on both engines (Spark used to refuse the first two at run time with
INVALID_PARAMETER_VALUE.PATTERN / "Illegal repetition", and to read ``&&`` as a class intersection).
"""

from __future__ import annotations

from compiled_rows import expected_rows_tests

from kqlmagic_plus.language.compiler.regex_java import java_regex

#: (query, expected rows): RE2's reading of each pattern.
CASES = [
    # a class holding '[', '"', ',' and ']' (a JSON array's punctuation) removed from a list's text
    ("""print s=replace_regex('["a","b"]', @'[[",\\]]', '')""", [("ab",)]),
    # '{ 2,3}' repeats nothing in RE2: the five characters are literal
    ("print a='x{ 2,3}y' matches regex @'x{ 2,3}y', b='xxy' matches regex @'x{ 2,3}y'", [(True, False)]),
    # '&&' inside a class is two ampersands, not an intersection of [a-z] and [&]
    ("print s=replace_regex('a&b&&c', @'[a-z&&]', '-')", [("------",)]),
    ("print s=extract(@'(?P<num>[[:digit:]]+)', 1, 'id 42 x')", [("42",)]),
    ("print s=extract(@'a{2}(b{1,})', 1, 'aabbb')", [("bbb",)]),
]


test_duckdb, test_spark = expected_rows_tests(CASES)


def test_patterns_both_engines_agree_on_pass_through() -> None:
    for same in (r"\d{1,5}", r"^[a-zA-Z0-9._-]+$", r"(?i)foo|bar", r"\Q[{\E", r"[^\]a]"):
        assert java_regex(same) == same
