"""Idioms of the Azure-Sentinel analytics rules and hunting queries that the compiler lacked, with expected rows,
on DuckDB and on Spark: ``parse_xml`` of an event's XML (read by path, expanded, filtered), by the conversion
table of the KQL reference.
"""

from __future__ import annotations

from compiled_rows import expected_rows_tests

# Two events whose XML is in a column (so parse_xml runs in the engine, not at compile time): named Data items
# with text, one written <Data Name="C"/> (an attribute and no text), one event that is not XML.
EVENTS = ("datatable(Id:long, EventData:string)["
          "1, '<DataItem type=\"Win\"><EventData xmlns=\"http://x\"><Data Name=\"Image\">C:\\\\a.exe</Data>"
          "<Data Name=\"User\">bob</Data><Data Name=\"C\"/></EventData></DataItem>', "
          "2, '<DataItem type=\"Win\"><EventData><Data Name=\"Image\">b.exe</Data></EventData></DataItem>', "
          "3, 'not xml']")

#: (query, expected rows in order)
CASES = [
    # the path the rules read, expanded to one row per Data item; event 2's lone item is a bag, which mv-expand
    # splits into its properties (as Kusto does); the non-XML event is one null row, and tostring()
    # of a null is ""
    (f"{EVENTS} | extend D = parse_xml(EventData).DataItem.EventData.Data | mv-expand D"
     " | project Id, Name = tostring(D['@Name']), Value = tostring(D['#text']) | order by Id asc, Name asc",
     [(1, "C", ""), (1, "Image", "C:\\a.exe"), (1, "User", "bob"), (2, "", "b.exe"), (2, "Image", ""),
      (3, "", "")]),
    # attributes are "@name"; the namespace declaration stays an attribute; a lone item is not an array
    (f"{EVENTS} | extend X = parse_xml(EventData) | project Id, T = tostring(X.DataItem['@type']),"
     " Ns = tostring(X.DataItem.EventData['@xmlns']), Kind = gettype(X.DataItem.EventData.Data),"
     " Bad = isnull(X) | order by Id asc",
     [(1, "Win", "http://x", "array", False), (2, "Win", "", "dictionary", False), (3, "", "", "null", True)]),
    # the reference's table, on constants (folded at compile time): <e/> is null, <e></e> is "", text is a
    # string, repeated names are an array, text beside elements is "#text"
    ("print a = tostring(parse_xml('<e>text</e>').e), b = isnull(parse_xml('<e/>').e),"
     " c = tostring(parse_xml('<e></e>').e), d = tostring(parse_xml('<e> <a>1</a> <a>2</a> </e>').e.a[1]),"
     " f = tostring(parse_xml('<e> text <a>x</a> </e>').e['#text']), g = gettype(parse_xml('<e>118.0</e>').e)",
     [("text", True, "", "2", "text", "string")]),
]


test_duckdb, test_spark = expected_rows_tests(CASES)
