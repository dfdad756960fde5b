"""The pure KQL completer (kqlmagic_plus.language.completion): text + cursor + schema -> candidates.

The columns it believes are in scope are checked against what the local engine really returns for every
case of the KQL corpus (tests/kql_corpus), and every prefix of every case is completed (unfinished text is
what completion sees).
"""

from __future__ import annotations

import pytest
from kql_corpus import harness as H

from kqlmagic_plus.language import completion as C
from kqlmagic_plus.language.completion import complete
from kqlmagic_plus.language.completion.vocabulary import OPERATORS, signature
from kqlmagic_plus.language.lexer import significant, tokenize

S = {
    "SigninLogs": {"TimeGenerated": "datetime", "UserPrincipalName": "string", "IPAddress": "string",
                   "ResultType": "long"},
    "Hosts": {"Computer": "string", "OS": "string", "IPAddress": "string"},
}


def texts(text: str, schema=S, kind: str | None = None) -> list[str]:
    return [c.text for c in complete(text, len(text), schema).candidates if kind is None or c.kind == kind]


@pytest.fixture(scope="module")
def corpus():
    return H.load_cases(), {t: dict(cols) for t, cols in H.schema().items()}


def _result_columns(con, query: str) -> list[str] | None:
    """The columns the local engine's translators give the query's result (bound, not run): duckdb-kql's
    relation, else our compiler's (whose rows test_compiler_corpus checks against duckdb-kql's)."""
    import duckdb_kql

    from kqlmagic_plus.errors import KqlMagicPlusError
    from kqlmagic_plus.language.compiler import compile as kcompile

    try:
        return list(duckdb_kql.kql(con, query).columns)
    except Exception:
        pass
    try:
        return [n for n, _ in kcompile(query, H.schema(), dialect="duckdb").columns]
    except KqlMagicPlusError:
        return None


def test_columns_in_scope_match_what_the_engine_returns_on_the_corpus(corpus):
    cases, schema = corpus
    con = H.duckdb_connection()
    agree, total, wrong = 0, 0, []
    for case in cases:
        columns = _result_columns(con, case.query)
        if columns is None:
            continue
        text = case.query.rstrip().rstrip(";") + "\n| project-away "
        got = set(texts(text, schema, kind="column"))
        total += 1
        if got == set(columns):
            agree += 1
        else:
            wrong.append(case.name)
    assert total >= 500
    # Measured 532 of 552 (96 %); the rest are plugins (bag_unpack), top-nested, scan, tabular functions.
    assert agree / total >= 0.95, f"{agree}/{total}; first disagreements: {wrong[:15]}"


def test_every_prefix_of_every_corpus_case_completes(corpus):
    cases, schema = corpus
    after_pipe = 0
    for case in cases:
        q = case.query
        for tok in significant(tokenize(q)):
            cut = tok.end
            # the reader itself, not complete()'s guard against surprises: a failure here is a bug
            before = q[:cut]
            C._candidates(before, "", schema)
            if tok.text == "|" and tok.start > 0:
                found = texts(before + " ", schema)
                assert found[:3] == list(OPERATORS)[:3], (case.name, before)
                after_pipe += 1
    assert after_pipe > 500


def test_table_names():
    assert texts("Sig") == ["SigninLogs"] == texts("sig")  # KQL names match ignoring case
    assert [c.kind for c in complete("Sig", 3, S).candidates] == ["table"]
    assert texts("SigninLogs | join (Ho") == ["Hosts"]
    assert texts("union SigninLogs, H") == ["Hosts"]


@pytest.mark.parametrize(("text", "want"), [
    ("SigninLogs | where Us", ["UserPrincipalName"]),
    ("SigninLogs | project-rename User = UserPrincipalName | where U", ["User"]),
    ("SigninLogs | project-away IP*, Result* | project ", ["TimeGenerated", "UserPrincipalName"]),
    ("SigninLogs | project-keep *Name | project ", ["UserPrincipalName"]),
    ("SigninLogs | join kind=inner (Hosts) on IPAddress | project ",
     ["TimeGenerated", "UserPrincipalName", "IPAddress", "ResultType", "Computer", "OS", "IPAddress1"]),
    ("SigninLogs | join kind=leftanti (Hosts) on IPAddress | project ",
     ["TimeGenerated", "UserPrincipalName", "IPAddress", "ResultType"]),
    ("SigninLogs | lookup Hosts on IPAddress | project ",
     ["TimeGenerated", "UserPrincipalName", "IPAddress", "ResultType", "Computer", "OS"]),
    ("let ok = SigninLogs | where ResultType == 0 | project IPAddress, When = TimeGenerated;\nok | project ",
     ["IPAddress", "When"]),
    ("union SigninLogs, Hosts | project ",
     ["TimeGenerated", "UserPrincipalName", "IPAddress", "ResultType", "Computer", "OS"]),
    ("datatable(Name:string, Hits:long) ['a', 1] | project ", ["Name", "Hits"]),
    ("SigninLogs | parse UserPrincipalName with User:string '@' Domain | project ",
     ["TimeGenerated", "UserPrincipalName", "IPAddress", "ResultType", "User", "Domain"]),
    ("SigninLogs | summarize count(), dcount(IPAddress), make_set(ResultType), arg_max(TimeGenerated, *) by "
     "bin(TimeGenerated, 1h) | project ",
     ["TimeGenerated", "count_", "dcount_IPAddress", "set_ResultType", "UserPrincipalName", "IPAddress",
      "ResultType"]),
    ("SigninLogs | make-series n = count() default = 0 on TimeGenerated step 1h by IPAddress | project ",
     ["IPAddress", "TimeGenerated", "n"]),
    ("SigninLogs | extend A = 1, B = A| project ", ["TimeGenerated", "UserPrincipalName", "IPAddress",
                                                    "ResultType", "A", "B"]),
    ("SigninLogs | count | project ", ["Count"]),
    ("SigninLogs | join kind=inner (Hosts) on $left.IPAddress == $right.", ["Computer", "OS", "IPAddress"]),
])
def test_columns_in_scope(text, want):
    assert texts(text, kind="column") == want


def test_extend_sees_columns_defined_earlier_in_the_same_operator():
    found = texts("SigninLogs | extend Day = bin(TimeGenerated, 1d), Hour = hourofday(Da")
    assert found[0] == "Day" and "datetime_add" in found


def test_words_for_each_position():
    assert texts("SigninLogs | summarize c = count() ") == ["by"]
    assert texts("SigninLogs | sort ") == ["by"]
    assert texts("SigninLogs | sort by IPAddress ")[:2] == ["asc", "desc"]
    assert texts("SigninLogs | where ResultType ")[:2] == ["==", "!="]
    assert "has" in texts("SigninLogs | where UserPrincipalName ")
    assert texts("SigninLogs | join kind=")[:3] == ["inner", "innerunique", "leftouter"]
    assert texts("SigninLogs | join kind=inner Hosts ") == ["on"]
    assert texts("SigninLogs | render ti") == ["timechart", "timepivot"]
    assert texts("SigninLogs | render timechart ") == ["with"]
    assert texts("SigninLogs | render timechart with (legend=") == ["visible", "hidden"]
    assert texts("SigninLogs | render timechart with (title='t', xcolumn=Ti") == ["TimeGenerated"]
    assert texts("SigninLogs | evaluate bag") == ["bag_unpack"]
    assert texts("SigninLogs | take ") == []
    assert "let" in texts("") and "SigninLogs" in texts("")


def test_no_candidates_in_strings_or_comments():
    for text in ("SigninLogs | where UserPrincipalName == 'Us", 'SigninLogs | where x has "Sig',
                 "SigninLogs // Us", "SigninLogs | where x == @'C:\\Us", "print ```Sig"):
        assert complete(text, len(text), S).candidates == [], text
    # a closed string is an operand: what follows it are operators
    assert texts("SigninLogs | where UserPrincipalName == 'a' ")[:2] == ["==", "!="]


def test_completion_span_is_the_word_being_typed():
    text = "SigninLogs | where Us and ResultType == 0"
    c = complete(text, 21, S)
    assert (c.start, c.end) == (19, 21) and c.texts == ["UserPrincipalName"]
    c = complete("SigninLogs | project-a", 22, S)
    assert (c.start, c.texts) == (13, ["project-away"])


def test_function_candidates_carry_signatures_from_the_catalog():
    found = {c.text: c for c in complete("print substr", 12, S).candidates}
    assert found["substring"].kind == "function"
    assert found["substring"].detail == "substring(string, long[, long]) -> string"
    aggs = {c.text: c for c in complete("SigninLogs | summarize dcount", 29, S).candidates}
    assert aggs["dcount"].kind == "aggregate" and aggs["dcount"].detail == "dcount(x[, x2]) -> long"


def test_function_table_is_the_catalogs():
    from kqlmagic_plus.language.completion.vocabulary import functions, functions_from_catalog

    # After adding a function to the compiler's catalog: python -m tools.kql_functions --write
    assert functions() == functions_from_catalog()


def test_signature_text():
    class F:
        def __init__(self, lo, hi, coerce=None, ret="string"):
            self.min_args, self.max_args, self.coerce, self.ret = lo, hi, coerce, ret

    assert signature("now", F(0, 1, None, "datetime")) == "now([x]) -> datetime"
    assert signature("strcat", F(1, 64)) == "strcat(x, ...) -> string"
    assert signature("f", F(1, 3, ("string", "long", "bool"))) == "f(string[, long[, bool]]) -> string"
    assert signature("g", F(2, 2, "real", lambda a: "real")) == "g(real, real)"
