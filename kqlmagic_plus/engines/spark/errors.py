"""Spark failures as one clear message: the Spark error class and the line, never a JVM stack trace."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kqlmagic_plus.errors import KqlMagicPlusError, QueryCancelledError, QueryError, TableNotFoundError, caret_excerpt

CANCELLED = "cancelled (Ctrl-C); the Spark session is still usable"


def from_info(info: dict[str, Any], code: str, *, what: str = "", tables: Iterable[str] | None = None
              ) -> KqlMagicPlusError:
    """The user's error for a failure described by :func:`kqlmagic_plus.engines.spark.remote.describe_error`.

    *code* is the text that ran (for the caret excerpt); *what* names it when it is not what the user
    wrote ("the Spark SQL compiled from the KQL"); *tables* are the names a missing table is compared to.
    """
    kind = info.get("kind")
    if kind == "cancelled":
        return QueryCancelledError(CANCELLED)
    condition = info.get("condition")
    message = info.get("message") or info.get("ename") or "failed"
    if condition and condition.startswith("TABLE_OR_VIEW_NOT_FOUND") and tables is not None:
        name = (info.get("parameters") or {}).get("relationName", "").strip("`")
        if name:
            return TableNotFoundError(name.split("`.`")[-1], tables)
    if kind == "python":
        head = f"{info.get('ename') or 'Error'}: {message}"
    else:
        head = f"[{condition}] {message}" if condition else message
    line, column = info.get("line"), info.get("column")
    where = ""
    excerpt = ""
    if isinstance(line, int) and line > 0:
        where = f" (line {line}" + (f", column {column + 1}" if isinstance(column, int) else "") + ")"
        if code:
            lines = code.splitlines()
            if line <= len(lines):
                excerpt = ("\n" + caret_excerpt(code, line, column) if isinstance(column, int)
                           else f"\n{line} | {lines[line - 1]}")
    if what:
        where += f" in {what}"
    return QueryError(f"Spark: {head}{where}{excerpt}")


def translate(exc: BaseException, code: str, *, what: str = "", tables: Iterable[str] | None = None
              ) -> KqlMagicPlusError:
    """A live exception (PySpark, Py4J, gRPC, or the cell's own Python) as the user's error."""
    if isinstance(exc, KqlMagicPlusError):
        return exc
    from kqlmagic_plus.engines.spark.remote import describe_error

    return from_info(describe_error(exc, code), code, what=what, tables=tables)


def is_connection_loss(exc: BaseException) -> bool:
    """Whether *exc* says the Spark session itself is gone (not that the query failed)."""
    text = str(exc)
    markers = ("INVALID_HANDLE.SESSION_CLOSED", "INVALID_HANDLE.SESSION_NOT_FOUND", "SESSION_CLOSED",
               "SparkContext was shut down", "Cannot call methods on a stopped SparkContext",
               "SparkContext has been shutdown", "Answer from Java side is empty",
               "Error while receiving", "Connection refused", "StatusCode.UNAVAILABLE",
               "NO_ACTIVE_SESSION", "[SESSION_CHANGED]", "java gateway process exited",
               "incorrect server side session identifier")
    return any(m in text for m in markers)
