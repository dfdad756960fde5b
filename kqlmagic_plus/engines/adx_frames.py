"""Every frame of an ADX v2 answer, read through azure-kusto-data's public streaming API.

``KustoClient.execute()`` keeps only the DataTable frames of a v2 answer: an error the service puts
on the closing ``DataSetCompletion`` frame (``HasErrors`` / ``OneApiErrors``) never reaches its
caller, so a failed query could read as a short, clean result. ``execute_streaming_query()`` reads
the same bytes frame by frame; its ``streamed_data`` enumerator yields every frame, the completion
frame included. :func:`read_answer` drains it into the tables and the completion errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


@dataclass
class Answer:
    """What a v2 answer carried: its DataTable frames (as the client's result tables) and the errors
    of its DataSetCompletion frame; *progressive*: the service sent frames the client cannot read."""

    tables: list[Any] = field(default_factory=list)
    completion_errors: list[str] = field(default_factory=list)
    has_errors: bool = False
    progressive: bool = False


class CutAnswer(ConnectionError):
    """The connection closed in the middle of the answer (retried as a dropped connection)."""


class BrokenAnswer(ValueError):
    """The answer is not valid JSON (a proxy rewriting responses, or not a Kusto endpoint)."""


def read_answer(client: Any, database: str, query: str, properties: Any, timeout: float | None) -> Answer:
    """Run *query* with the streaming API and read every frame of the answer."""
    from azure.kusto.data._models import KustoResultTable
    from azure.kusto.data.exceptions import KustoTokenParsingError, KustoUnsupportedApiError
    from azure.kusto.data.streaming_response import FrameType

    kwargs: dict[str, Any] = {"properties": properties}
    if timeout:
        kwargs["timeout"] = timedelta(seconds=timeout)
    dataset = client.execute_streaming_query(database, query, **kwargs)
    answer = Answer()
    try:
        for frame in dataset.streamed_data:
            kind = frame.get("FrameType")
            if kind == FrameType.DataTable:
                rows = frame["Rows"]
                table = dict(frame, Rows=rows if isinstance(rows, list) else list(rows))
                table.pop("FrameType", None)
                answer.tables.append(KustoResultTable(table))
            elif kind == FrameType.DataSetCompletion:
                answer.has_errors = bool(frame.get("HasErrors"))
                answer.completion_errors.extend(_error_text(e) for e in frame.get("OneApiErrors") or [])
    except KustoUnsupportedApiError:
        # Progressive frames (TableHeader / TableFragment): the reader stops there; the engine warns.
        answer.progressive = True
    except KustoTokenParsingError as exc:
        # Also what the client's C JSON parser (yajl) says of a valid answer holding long's minimum,
        # -9223372036854775808 ("integer overflow", reported as an unexpected end): the caller reads
        # such an answer again with the whole-answer reader.
        raise BrokenAnswer(f"the answer is not valid JSON ({exc})") from None
    except Exception as exc:
        if _is_cut(exc):
            raise CutAnswer("the server closed the connection in the middle of the answer") from exc
        if type(exc).__module__.startswith("ijson"):
            raise BrokenAnswer(f"the answer is not valid JSON ({str(exc).splitlines()[0][:200]})") from None
        raise
    return answer


def _is_cut(exc: BaseException) -> bool:
    import http.client

    import requests
    import urllib3

    seen = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, urllib3.exceptions.ProtocolError | requests.exceptions.ChunkedEncodingError
                      | http.client.IncompleteRead | ConnectionError):
            return True
        node = node.__cause__ or node.__context__
    return False


def _error_text(error: Any) -> str:
    """One line from a OneApiError object: its ``@message``, else its message and code."""
    if isinstance(error, dict):
        inner = error.get("error") if isinstance(error.get("error"), dict) else error
        text = inner.get("@message") or inner.get("message") or ""
        code = inner.get("code") or ""
        if text:
            return f"{text} ({code})" if code and code not in text else str(text)
        return str(code or error)[:300]
    return str(error)[:300]
