"""Service answers in the shapes the real services send, written for these tests (not copied text).

The shapes follow the public recordings of Log Analytics (REST API v1 ``tables``/``columns``/``rows``,
``error`` for partial results, ``statistics``, ``render``) and Azure Data Explorer (REST v2 frames:
DataSetHeader, DataTable, TableHeader/TableFragment/TableCompletion when progressive,
DataSetCompletion; REST v1 ``Tables`` with a table of contents and ``QueryStatus``). Every body
here is replayed through the real client (tests/test_service_answers.py): the loopback Kusto proxy
serves ``ADX_V2[name]`` / ``ADX_V1[name]`` for a query whose text holds ``fixture:<name>``, the
loopback Log Analytics server serves ``LA[name]`` as a ``Fault("answer", payload=...)``.
"""

from __future__ import annotations

import json
from typing import Any

# -- the ten KQL types, with values and nulls ----------------------------------------------------------------

#: (name, type, values): every type, each with a null; datetimes and timespans with 0/1/2/3/7 fraction digits.
TYPED = [
    ("B", "bool", [True, False, None, True, False, True]),
    ("I", "int", [1, -2147483648, None, 2147483647, 0, 7]),
    ("L", "long", [1, -9223372036854775808, None, 9223372036854775807, 0, 42]),
    ("R", "real", [1.5, "NaN", None, "Infinity", "-Infinity", -0.25]),
    ("D", "decimal", ["1.5", "-0.000000000000000000001", None, "79228162514264337593543950335", "0", "2.10"]),
    ("S", "string", ["alice", "", None, "ünïcødé ✓", "line\nbreak", "quote\"s"]),
    ("T", "datetime", ["2024-05-01T10:20:30Z", "2024-05-01T10:20:30.1Z", None, "2024-05-01T10:20:30.12Z",
                       "2024-05-01T10:20:30.123Z", "2024-05-01T10:20:30.1234567Z"]),
    ("P", "timespan", ["00:00:00", "1.02:03:04.1", None, "00:00:01.12", "-00:00:00.123",
                       "10000.02:48:05.4775807"]),
    ("Y", "dynamic", [{"a": 1, "b": [1, 2]}, [1, "x", None], None, "text", 12, True]),
    ("G", "guid", ["6f1a2b3c-0000-4000-8000-00000000abcd", "00000000-0000-0000-0000-000000000000", None,
                   "ffffffff-ffff-ffff-ffff-ffffffffffff", "6f1a2b3c-0000-4000-8000-00000000abce",
                   "6f1a2b3c-0000-4000-8000-00000000abcf"]),
]

#: 100 ns ticks that fall on each side of a microsecond, and on its half (ties go to even).
TICKS = [
    ("T", "datetime", ["2024-05-01T00:00:00.0000004Z", "2024-05-01T00:00:00.0000006Z", "2024-05-01T00:00:00.0000015Z",
                       "2024-05-01T00:00:00.0000025Z", "2024-05-01T00:00:00.9999996Z", "1969-12-31T23:59:59.9999996Z",
                       None]),
    ("P", "timespan", ["00:00:00.0000004", "00:00:00.0000006", "00:00:00.0000015", "00:00:00.0000025",
                       "00:00:00.9999996", "-00:00:00.0000016", None]),
]


def _rows(cols: list[tuple[str, str, list[Any]]]) -> list[list[Any]]:
    return [list(r) for r in zip(*(c[2] for c in cols), strict=True)] if cols else []


# -- Azure Data Explorer, REST v2 -----------------------------------------------------------------------------

_COMPLETION_COLUMNS = [("Timestamp", "datetime"), ("ClientRequestId", "string"), ("ActivityId", "guid"),
                       ("SubActivityId", "guid"), ("ParentActivityId", "guid"), ("Level", "int"),
                       ("LevelName", "string"), ("StatusCode", "int"), ("StatusCodeName", "string"),
                       ("EventType", "int"), ("EventTypeName", "string"), ("Payload", "string")]
_ID = "0b4f5c1e-1111-4222-8333-944444444444"


def _v2_table(table_id: int, kind: str, name: str, cols: list[tuple[str, str]], rows: list[list[Any]]) -> dict:
    return {"FrameType": "DataTable", "TableId": table_id, "TableKind": kind, "TableName": name,
            "Columns": [{"ColumnName": n, "ColumnType": t} for n, t in cols], "Rows": rows}


def _completion_row(level: int, level_name: str, event: str, payload: dict[str, Any]) -> list[Any]:
    return ["2024-05-01T10:20:31.0000000Z", "KPC.execute;1", _ID, _ID, _ID, level, level_name,
            0 if level >= 4 else -2133196800, "S_OK (0)" if level >= 4 else "KustoServicePartialQueryFailure",
            4, event, json.dumps(payload)]


def v2(primary: list[dict] | None = None, *, visualization: dict | None = None, completion: list[list[Any]] = (),
       has_errors: bool = False, progressive: bool = False, frames: list[dict] | None = None) -> bytes:
    """A v2 answer: header, properties, the primary tables, completion information, completion."""
    out: list[dict[str, Any]] = [{"FrameType": "DataSetHeader", "IsProgressive": progressive, "Version": "v2.0",
                                  "IsFragmented": progressive, "ErrorReportingPlacement": "EndOfTable"}]
    out.append(_v2_table(0, "QueryProperties", "@ExtendedProperties",
                         [("TableId", "int"), ("Key", "string"), ("Value", "dynamic")],
                         [[1, "Visualization", json.dumps(visualization)]] if visualization else []))
    out.extend(primary or [])
    out.extend(frames or [])
    stats = _completion_row(4, "Info", "QueryResourceConsumption",
                            {"ExecutionTime": 0.0156, "resource_usage": {"cpu": {"total cpu": "00:00:00"}}})
    out.append(_v2_table(len(out), "QueryCompletionInformation", "QueryCompletionInformation",
                         _COMPLETION_COLUMNS, [stats, *completion]))
    done: dict[str, Any] = {"FrameType": "DataSetCompletion", "HasErrors": has_errors, "Cancelled": False}
    if has_errors:
        done["OneApiErrors"] = [{"error": {"code": "LimitsExceeded", "message": "Request is invalid and cannot be "
                                           "executed.", "@message": "Query result set has exceeded the internal "
                                           "data size limit 67108864 (E_QUERY_RESULT_SET_TOO_LARGE).",
                                           "@permanent": True}}]
    out.append(done)
    return json.dumps(out).encode()


def primary(cols: list[tuple[str, str, list[Any]]], table_id: int = 1, name: str = "PrimaryResult") -> dict:
    return _v2_table(table_id, "PrimaryResult", name, [(n, t) for n, t, _ in cols], _rows(cols))


TRUNCATION_CURRENT = {"error": {"code": "LimitsExceeded", "message": "Request is invalid and cannot be executed.",
                                "@type": "Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException",
                                "@message": "Query result set has exceeded the internal record count limit 500000 "
                                            "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)",
                                "@permanent": True}}
TRUNCATION_OLDER = {"error": {"code": "LimitsExceeded", "message": "Request is invalid and cannot be executed.",
                              "@message": "Query execution has exceeded the allowed limits (80DA0003): The results "
                                          "of this query exceed the set limit of 500000 records, so not all records "
                                          "were returned.",
                              "@permanent": True}}
PARTIAL_SHARD = {"error": {"code": "General_InternalServerError", "message": "Partial query failure",
                           "@message": "Partial query failure: a shard (extent 7f3e) was unavailable",
                           "@permanent": False}}

SMALL = [("Account", "string", ["alice", "bob"]), ("N", "long", [1, 2])]

ADX_V2: dict[str, bytes] = {
    "types": v2([primary(TYPED)]),
    "ticks": v2([primary(TICKS)]),
    "empty": v2([primary([("Account", "string", []), ("N", "long", []), ("T", "datetime", [])])]),
    "several": v2([primary(SMALL), primary([("Total", "long", [3])], 2, "Table_1"),
                   primary([("X", "real", [])], 3, "Table_2")]),
    "truncated-current": v2([primary(SMALL)], completion=[
        _completion_row(2, "Error", "QueryError", TRUNCATION_CURRENT)]),
    "truncated-older": v2([primary(SMALL)], completion=[
        _completion_row(2, "Error", "QueryError", TRUNCATION_OLDER)]),
    "partial": v2([primary(SMALL)], completion=[_completion_row(2, "Error", "QueryError", PARTIAL_SHARD)]),
    "warning": v2([primary(SMALL)], completion=[_completion_row(3, "Warning", "QueryWarning", {
        "error": {"code": "Warning", "message": "w", "@message": "The query used a deprecated function"}})]),
    "visualization-null": v2([primary(SMALL)], visualization=None),
    "visualization-set": v2([primary(SMALL)], visualization={
        "Visualization": "barchart", "Title": "Sign-ins", "XColumn": "Account", "YColumns": "N", "Series": None,
        "Kind": None, "Legend": None, "XTitle": None, "YTitle": None, "Accumulate": False}),
    "unknown-type": v2([primary([("Account", "string", ["alice"]), ("Shape", "geography", ["POINT (1 2)"])])]),
    "progressive": v2(progressive=True, frames=[
        {"FrameType": "TableHeader", "TableId": 1, "TableKind": "PrimaryResult", "TableName": "PrimaryResult",
         "Columns": [{"ColumnName": "N", "ColumnType": "long"}]},
        {"FrameType": "TableFragment", "TableFragmentType": "DataAppend", "TableId": 1, "Rows": [[1], [2]]},
        {"FrameType": "TableProgress", "TableId": 1, "TableProgress": 50.0},
        {"FrameType": "TableFragment", "TableFragmentType": "DataAppend", "TableId": 1, "Rows": [[3]]},
        {"FrameType": "TableCompletion", "TableId": 1, "RowCount": 3}]),
    "completion-error-only": v2([primary(SMALL)], has_errors=True),
    "in-table-error": v2([_v2_table(1, "PrimaryResult", "PrimaryResult", [("N", "long")], [[1], {
        "OneApiErrors": [{"error": {"code": "LimitsExceeded", "message": "Request is invalid and cannot be executed.",
                                    "@message": "Query execution has exceeded the allowed limits (80DA0003): "
                                                "result set too large", "@permanent": True}}]}])]),
}


def _err(code: str, message: str, at_message: str, type_: str | None = None, permanent: bool = True) -> bytes:
    e: dict[str, Any] = {"code": code, "message": message, "@message": at_message, "@permanent": permanent,
                         "@context": {"timestamp": "2024-05-01T10:20:31.0000000Z", "serviceAlias": "HELP",
                                      "clientRequestId": "KPC.execute;1"}}
    if type_:
        e["@type"] = type_
    return json.dumps({"error": e}).encode()


#: HTTP error answers: (status, body).
ADX_ERRORS: dict[str, tuple[int, bytes]] = {
    "limits-result-size": (400, _err(
        "LimitsExceeded", "Request is invalid and cannot be executed.",
        "Query execution has exceeded the allowed limits (80DA0003): The results of this query exceed the set "
        "limit of 64 MB, so not all records were returned (E_QUERY_RESULT_SET_TOO_LARGE, 0x80DA0003).",
        "Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException")),
    "timeout": (504, _err("Request_ExecutionTimeout", "Request execution timeout",
                          "Query execution lasted longer than its allowed time (00:04:00)", None, False)),
    "syntax": (400, _err("General_BadRequest", "Request is invalid and cannot be executed.",
                         "Syntax error: SYN0002: A recognition error occurred. [line:position=1:5]",
                         "Kusto.Data.Exceptions.SyntaxException")),
    "missing-db": (404, b""),
    "throttled": (429, _err("TooManyRequests", "Too many requests", "The request was throttled", None, False)),
}


# -- Azure Data Explorer, REST v1 (management commands) ---------------------------------------------------------


def v1(result: list[tuple[str, str, str, list[Any]]], *, status: list[list[Any]] | None = None) -> bytes:
    """A v1 answer: the result (name, DataType, ColumnType, values) and, with *status*, the
    QueryProperties and QueryStatus tables and the table of contents."""
    table = {"TableName": "Table_0", "Columns": [{"ColumnName": n, "DataType": d, "ColumnType": t}
                                                 for n, d, t, _ in result],
             "Rows": [list(r) for r in zip(*(c[3] for c in result), strict=True)] if result else []}
    if status is None:
        return json.dumps({"Tables": [table]}).encode()
    props = {"TableName": "Table_1", "Columns": [{"ColumnName": "Value", "DataType": "String", "ColumnType": "string"}],
             "Rows": [["{\"Visualization\":null,\"Title\":null}"]]}
    qs = {"TableName": "Table_2", "Columns": [
        {"ColumnName": n, "DataType": d, "ColumnType": t} for n, d, t in (
            ("Timestamp", "DateTime", "datetime"), ("Severity", "Int32", "int"), ("SeverityName", "String", "string"),
            ("StatusCode", "Int32", "int"), ("StatusDescription", "String", "string"), ("Count", "Int32", "int"),
            ("RequestId", "Guid", "guid"), ("ActivityId", "Guid", "guid"), ("SubActivityId", "Guid", "guid"),
            ("ClientActivityId", "String", "string"))], "Rows": status}
    toc = {"TableName": "Table_3", "Columns": [
        {"ColumnName": n, "DataType": d, "ColumnType": t} for n, d, t in (
            ("Ordinal", "Int64", "long"), ("Kind", "String", "string"), ("Name", "String", "string"),
            ("Id", "String", "string"), ("PrettyName", "String", "string"))], "Rows": [
        [0, "QueryResult", "PrimaryResult", "a0000000-0000-0000-0000-000000000000", ""],
        [1, "QueryProperties", "@ExtendedProperties", "a1000000-0000-0000-0000-000000000000", ""],
        [2, "QueryStatus", "QueryStatus", "00000000-0000-0000-0000-000000000000", ""]]}
    return json.dumps({"Tables": [table, props, qs, toc]}).encode()


def _status_row(severity: int, name: str, text: str) -> list[Any]:
    return ["2024-05-01T10:20:31.1234567Z", severity, name, 0 if severity >= 4 else -2133196800, text, 1,
            _ID, _ID, _ID, "KPC.execute;1"]


SHOW_TABLES = [("TableName", "String", "string", ["SigninLogs", "Events"]),
               ("DatabaseName", "String", "string", ["hunting", "hunting"]),
               ("Folder", "String", "string", [None, "net"]), ("DocString", "String", "string", [None, ""])]

ADX_V1: dict[str, bytes] = {
    "show-tables": v1(SHOW_TABLES),
    "show-typed": v1([("Name", "String", "string", ["a", None]), ("Size", "Int64", "long", [10, None]),
                      ("Created", "DateTime", "datetime", ["2024-05-01T10:20:30.1234567Z", None]),
                      ("Age", "TimeSpan", "timespan", ["1.00:00:00.0000015", None]),
                      ("Ratio", "Double", "real", [0.5, None]), ("On", "Boolean", "bool", [True, None]),
                      ("Props", "Object", "dynamic", [{"k": "v"}, None]),
                      ("Id", "Guid", "guid", ["6f1a2b3c-0000-4000-8000-00000000abcd", None])]),
    "show-empty": v1([("TableName", "String", "string", []), ("DatabaseName", "String", "string", [])]),
    "status-ok": v1(SHOW_TABLES, status=[_status_row(4, "Info", "Query completed successfully")]),
    "status-error": v1(SHOW_TABLES, status=[_status_row(2, "Error", "Partial query failure: extent 7f3e was "
                                                                      "unavailable (0x80DA0007)")]),
}


# -- Log Analytics ---------------------------------------------------------------------------------------------

LA_TYPED = [
    ("B", "bool", [True, False, None]),
    ("I", "int", [1, -2147483648, None]),
    ("L", "long", [1, 9223372036854775807, None]),
    ("R", "real", [1.5, -0.25, None]),
    ("D", "decimal", ["1.5", "79228162514264337593543950335", None]),
    ("S", "string", ["alice", "", None]),
    ("T", "datetime", ["2024-05-01T10:20:30Z", "2024-05-01T10:20:30.123Z", None]),
    ("P", "timespan", ["00:00:00", "1.02:03:04.1234567", None]),
    ("Y", "dynamic", ['{"a":1,"b":[1,2]}', "[1,\"x\",null]", None]),
    ("G", "guid", ["6f1a2b3c-0000-4000-8000-00000000abcd", "00000000-0000-0000-0000-000000000000", None]),
]


def la_table(name: str, cols: list[tuple[str, str, list[Any]]]) -> dict[str, Any]:
    return {"name": name, "columns": [{"name": n, "type": t} for n, t, _ in cols], "rows": _rows(cols)}


LA_PARTIAL = {"code": "PartialError", "message": "There were some errors when processing your query.",
              "details": [{"code": "EngineError", "message": "Something went wrong processing your query on the "
                           "server.", "innererror": {"code": "-2133196800", "message": "Partial query failure: a "
                                                     "shard was unavailable", "severity": 2,
                                                     "severityName": "Error"}}]}
LA_TRUNCATED = {"code": "PartialError", "message": "There were some errors when processing your query.",
                "details": [{"code": "EngineError", "message": "Something went wrong processing your query on the "
                             "server.", "innererror": {"code": "-2133196797", "message": "Query result set has "
                                                       "exceeded the internal data size limit 67108864 "
                                                       "(E_QUERY_RESULT_SET_TOO_LARGE; see "
                                                       "https://aka.ms/kustoquerylimits)", "severity": 2,
                                                       "severityName": "Error"}}]}

#: The older wording: only the code (80DA0003, -2133196797 as the signed status) says "result size".
LA_TRUNCATED_OLDER = {"code": "PartialError", "message": "There were some errors when processing your query.",
                      "details": [{"code": "EngineError", "message": "Something went wrong processing your query "
                                   "on the server.", "innererror": {"code": "-2133196797", "message": "Query "
                                                                    "execution has exceeded the allowed limits: the "
                                                                    "results of this query exceed the set limit of "
                                                                    "30000 records, so not all records were "
                                                                    "returned.", "severity": 2,
                                                                    "severityName": "Error"}}]}

LA: dict[str, dict[str, Any]] = {
    "truncated-older": {"tables": [la_table("PrimaryResult", SMALL)], "error": LA_TRUNCATED_OLDER},
    "types": {"tables": [la_table("PrimaryResult", LA_TYPED)]},
    "empty": {"tables": [la_table("PrimaryResult", [("A", "string", []), ("T", "datetime", [])])]},
    "several": {"tables": [la_table("PrimaryResult", SMALL), la_table("Table_1", [("Total", "long", [3])])]},
    "not-json-dynamic": {"tables": [la_table("PrimaryResult", [("Y", "dynamic", ["{not json", '{"ok":true}',
                                                                                  None, "plain words"])])]},
    "partial": {"tables": [la_table("PrimaryResult", SMALL)], "error": LA_PARTIAL},
    "truncated": {"tables": [la_table("PrimaryResult", SMALL)], "error": LA_TRUNCATED},
    "statistics": {"tables": [la_table("PrimaryResult", SMALL)],
                   "statistics": {"query": {"executionTime": 0.031, "resourceUsage": {"cache": {"memory": {
                       "hitcount": 1, "misscount": 0}}}, "datasetStatistics": [{"tableRowCount": 2,
                                                                                 "tableSize": 64}]}}},
    "render": {"tables": [la_table("PrimaryResult", SMALL)],
               "render": {"visualization": "barchart", "title": "Sign-ins", "xColumn": "Account",
                          "yColumns": ["N"]}},
    "unknown-type": {"tables": [la_table("PrimaryResult", [("Shape", "geography", ["POINT (1 2)"])])]},
}


def _la_error(code: str, message: str, *inner: tuple[str, str]) -> dict[str, Any]:
    """A Log Analytics error body: error.innererror nested as deep as *inner* goes."""
    err: dict[str, Any] = {"code": code, "message": message}
    node = err
    for inner_code, inner_message in inner:
        node["innererror"] = {"code": inner_code, "message": inner_message}
        node = node["innererror"]
    return {"error": err}


#: Log Analytics error answers: (status, body).
LA_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "syntax": (400, _la_error("BadArgumentError", "The request had some invalid properties",
                              ("SyntaxError", "A recognition error occurred in the query."),
                              ("SYN0002", "Query could not be parsed at 'wher' on line [1,15]"))),
    "semantic": (400, _la_error("BadArgumentError", "The request had some invalid properties",
                                ("SemanticError", "A semantic error occurred."),
                                ("SEM0100", "'where' operator: Failed to resolve column or scalar expression "
                                            "named 'Nope'"))),
    "not-found": (404, _la_error("PathNotFoundError", "The requested path does not exist",
                                 ("WorkspaceNotFoundError", "Workspace 11111111-2222-3333-4444-555555555555 "
                                                            "not found"))),
    "throttled": (429, _la_error("ThrottledError", "Your request was throttled",
                                 ("TooManyRequests", "Rate limit of 200 requests per 30 seconds exceeded"))),
    "gateway-timeout": (504, _la_error("GatewayTimeout", "The gateway did not receive a response in time",
                                       ("QueryExecutionTimeout", "The query did not complete within 180 s"))),
}
