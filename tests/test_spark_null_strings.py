"""KQL strings are never null: ``tostring()`` of a null value is "" (the tostring reference), and so is every
string a query computes where SQL would give NULL (a missing bag key, an extract() or parse that did not match,
an outer join's missing side, a union's missing column). Both engines used to answer null; some consumers then
read the NULL as something other than "" (``startswith ""`` false, ``bag_pack`` writing a JSON null). Also here:
mv-expand of a null dynamic (the reference: one record, null; an empty array or bag: none) and columns whose
names differ only in case, which SQL reads as one column and so are refused on both engines."""

from __future__ import annotations

import pytest
from compiled_rows import expected_rows_tests

from kqlmagic_plus.errors import UnsupportedQueryError
from kqlmagic_plus.language.compiler import compile as kcompile

NULLS = 'datatable(d:dynamic)[dynamic(null), dynamic({"x":""}), dynamic({"x":"a"})]'
JOINED = 'datatable(k:long)[1, 2] | join kind=leftouter (datatable(k:long, s:string)[1, "x"]) on k'

CASES = [
    # tostring of a null dynamic, of a missing key, of a typed null: ""
    ("print a=tostring(dynamic(null))", [("",)]),
    ('datatable(d:dynamic)[dynamic(null), dynamic({"x":1})] | project s=tostring(d.x), t=tostring(d.y)',
     [("", ""), ("1", "")]),
    ("print a=tostring(long(null)), b=tostring(real(null)), c=tostring(datetime(null)), e=tostring(bool(null)), "
     "f=tostring(timespan(null)), g=tostring(guid(null))", [("", "", "", "", "", "")]),
    # extract with no match: "" as a string, null as a number
    ('datatable(s:string)["a=1", "b"] | project v=extract("=(.*)", 1, s), l=extract("=(.*)", 1, s, typeof(long))',
     [("1", 1), ("", None)]),
    # "" is "" to every string function: it starts with "", contains "", is 0 long
    ('datatable(d:dynamic)[dynamic(null)] | extend t=tostring(d.x) '
     '| project b=t startswith "", c=t contains "", u=toupper(t), n=strlen(t), j=strcat("<", d.y, ">")',
     [(True, True, "", 0, "<>")]),
    # a bag or an array built of it holds "", not null
    ('datatable(d:dynamic)[dynamic(null)] | project p=bag_pack("k", tostring(d.x)), a=pack_array(tostring(d.x))',
     [('{"k":""}', '[""]')]),
    # the "" of a null is the same value as a written "": grouped and collected with it
    (f"{NULLS} | summarize n=count() by t=tostring(d.x) | order by t asc", [("", 2), ("a", 1)]),
    (f"{NULLS} | summarize l=make_list(tostring(d.x))", [('["","","a"]',)]),
    # an outer join's missing side, a union's missing column, a parse or mv-expand that fills a string column
    (f"{JOINED} | project k, s | order by k asc", [(1, "x"), (2, "")]),
    (f"{JOINED} | summarize m=min(s), p=arg_min(s, k), l=make_list(s)", [("", "", 2, '["x",""]')]),
    (JOINED + ' | project k, b=s startswith "", c=s contains "", r=s matches regex "^$" | order by k asc',
     [(1, True, True, False), (2, True, True, True)]),
    (JOINED + ' | project k, p=bag_pack("s", s), a=pack_array(s) | order by k asc',
     [(1, '{"s":"x"}', '["x"]'), (2, '{"s":""}', '[""]')]),
    ('union (datatable(a:long)[1]), (datatable(a:long, s:string)[2, "x"]) | order by a asc', [(1, ""), (2, "x")]),
    ('datatable(s:string)["abc"] | parse s with "z" x:string "c" | project x', [("",)]),
    ('datatable(d:dynamic)[dynamic({"a":[1,2], "b":["x"]})] | mv-expand a=d.a, b=d.b to typeof(string) '
     '| project a, b', [("1", "x"), ("2", "")]),
    # take_any picks a value where the group has one (Spark's any_value took the first row's null), and for a
    # string a non-empty one, as the reference says Kusto attempts
    ("datatable(x:long, c:bool)[long(null), true, 5, false, 7, true] | summarize a=take_anyif(x, c), b=take_any(x)",
     [(7, 5)]),
    ('datatable(s:string)["", "a", ""] | summarize a=take_any(s)', [("a",)]),
    # mv-expand of a null dynamic: one record, with null; of an empty array or bag: none
    ("datatable(a:long, d:dynamic)[1, dynamic(null), 2, dynamic([]), 3, dynamic({}), 4, dynamic([1,2])] "
     "| mv-expand d | order by a asc", [(1, None), (4, "1"), (4, "2")]),
    ('datatable(a:long, d:dynamic)[1, dynamic({"x":1}), 2, dynamic({"y":[5,6]})] | mv-expand e=d.y to typeof(long) '
     "| project a, e | order by a asc", [(1, None), (2, 5), (2, 6)]),
    # expanded in parallel: the longest expansion decides, the shorter are padded with null
    ("datatable(a:long, d:dynamic, f:dynamic)[1, dynamic(null), dynamic([7,8]), 2, dynamic([]), dynamic(null)] "
     "| mv-expand d, f | project a, d=tostring(d), f=tostring(f) | order by a asc, f asc",
     [(1, "", "7"), (1, "", "8"), (2, "", "")]),
    # a rename that removes the case-only clash runs
    ("datatable(a:long)[1] | extend b=a + 1 | project-rename B=b | project a, B", [(1, 2)]),
]


test_duckdb, test_spark = expected_rows_tests(CASES)


#: Columns whose names differ only in case: KQL keeps them apart, SQL reads one for the other (DuckDB always,
#: Spark by default). The local engine answered `extend A=2` with A = 1.
CASE_CLASHES = [
    ("datatable(a:long)[1] | extend A=2", "'a' and 'A'"),
    ("print a=1, A=2", "'a' and 'A'"),
    ("datatable(a:long, A:long)[1, 2]", "'a' and 'A'"),
    ("datatable(a:long)[1] | summarize A=count() by a", "'a' and 'A'"),
    ("datatable(a:long)[1] | extend A=a*10 | where A > 5 and a == 1", "'a' and 'A'"),
    ("datatable(a:long, x:long)[1, 5] | join (datatable(a:long, X:long)[1, 9]) on a", "'x' and 'X'"),
    ("union (datatable(x:long)[1]), (datatable(X:long)[2])", "'x' and 'X'"),
    ("datatable(d:dynamic)[dynamic([1])] | mv-expand D=d", "'d' and 'D'"),
    ("datatable(a:long)[1] | make-series A=count() on a from 0 to 3 step 1", "'A' and 'a'|'a' and 'A'"),
]


@pytest.mark.parametrize("dialect", ["duckdb", "spark"])
@pytest.mark.parametrize(("query", "names"), CASE_CLASHES)
def test_case_only_clash_is_refused(query: str, names: str, dialect: str) -> None:
    with pytest.raises(UnsupportedQueryError, match=rf"columns ({names})\".* does not tell apart names that "
                                                    "differ only in case"):
        kcompile(query, {}, dialect)


def test_local_engine_refuses_a_case_only_clash_by_name() -> None:
    # The local engine falls back to duckdb-kql when the compiler refuses; that refuses it by name as well.
    from kqlmagic_plus import api
    from kqlmagic_plus.errors import KqlMagicPlusError

    with pytest.raises(KqlMagicPlusError, match=r"columns 'a' and 'A' differ only in case"):
        api.kql("datatable(a:long)[1] | extend A=2")
