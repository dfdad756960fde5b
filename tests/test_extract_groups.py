"""extract() with capture group 10 and over on the local engine: DuckDB numbers groups 0-9 only, and answered
"Group index must be between 0 and 9!" (6 Azure-Sentinel rules); Kusto reads any group."""

from __future__ import annotations

import kqlmagic_plus as k

ELEVEN = "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)"


def _rows(q):
    return k.kql(q).to_dataframe().to_dict("records")


def test_group_ten_and_eleven():
    assert _rows(f'print x = extract("{ELEVEN}", 10, "abcdefghijk"), y = extract("{ELEVEN}", 11, "abcdefghijk")') \
        == [{"x": "j", "y": "k"}]


def test_no_match_and_a_group_the_pattern_lacks_answer_as_groups_under_ten_do():
    rows = _rows(f'datatable(s:string)["abcdefghijk", "q"] | extend x = extract("{ELEVEN}", 10, s), '
                 'y = extract("(a)(b)", 12, s), z = extract("(a)(b)", 3, s)')
    # Row 1 matches (group 10 is "j"); row 2 does not ("", as extract("(a)", 1, "q") is: a KQL string is never
    # null). A group the pattern lacks answers as group 3 of "(a)(b)" does on the same row.
    assert [(r["x"], r["y"]) for r in rows] == [("j", rows[0]["z"]), ("", rows[1]["z"])]

