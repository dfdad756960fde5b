"""The errors users see.

Every error the package raises on purpose derives from :class:`KqlMagicPlusError`. Its message is
meant to be read by an analyst: one short paragraph that says what was wrong and where. IPython
calls ``_render_traceback_`` when an exception defines it, so these show as that message alone,
with no traceback from inside a dependency, unless debug mode is on.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from kqlmagic_plus.redaction import redact

#: Toggled by ``--debug`` / ``KqlMagicPlus.debug``: when on, errors show their full traceback.
DEBUG = False


class KqlMagicPlusError(Exception):
    """Base class: a clear, short message for the user."""

    #: The word shown before the message (``KQL syntax error: ...``).
    label = "Error"

    def __init__(self, message: str, *, hint: str | None = None):
        # The one place every message passes: no credential reaches the user, whoever built the text.
        message = redact(message)
        hint = redact(hint) if hint else hint
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\n{self.hint}" if self.hint else "")

    def user_message(self) -> str:
        return f"{self.label}: {self}"

    def terminal_text(self) -> str:
        """What a terminal shows: the first line, which says what and where."""
        return self.user_message().splitlines()[0]

    def _render_traceback_(self) -> list[str]:
        if DEBUG:
            import traceback

            return traceback.format_exception(self)
        return self.user_message().splitlines()


class OptionError(KqlMagicPlusError):
    """A magic option or CLI argument was not understood."""

    label = "Option error"


class ConnectionStringError(KqlMagicPlusError):
    """A connection string could not be parsed, or names something unknown."""

    label = "Connection error"


class QuerySyntaxError(KqlMagicPlusError):
    """The query does not parse. Shows the offending line with a caret under the column."""

    label = "KQL syntax error"

    def __init__(self, detail: str, query: str, line: int, column: int):
        self.query = query
        self.line = line
        self.column = column
        self.detail = detail
        super().__init__(f"{detail} at line {line}, column {column + 1}\n{caret_excerpt(query, line, column)}")

    def terminal_text(self) -> str:
        return self.user_message()  # the line and caret are what make line:column readable


class UnsupportedQueryError(KqlMagicPlusError):
    """The query parses, but this engine cannot run a construct in it."""

    label = "Unsupported KQL"

    def __init__(
        self,
        construct: str,
        engine: str,
        *,
        line: int | None = None,
        column: int | None = None,
        query: str | None = None,
        runs_on: Sequence[str] = (),
        reason: str | None = None,
    ):
        self.construct = construct
        self.engine = engine
        self.line = line
        self.column = column
        self.runs_on = tuple(runs_on)
        where = f" at line {line}, column {column + 1}" if line is not None and column is not None else ""
        parts = [f"{construct!r}{where} cannot run on the {engine} engine"]
        if reason:
            parts[0] += f" ({reason})"
        if self.runs_on:
            parts.append(f"It runs on: {', '.join(self.runs_on)}.")
        text = ". ".join(parts)
        self.has_excerpt = query is not None and line is not None and column is not None
        if self.has_excerpt:
            text += "\n" + caret_excerpt(query, line, column)
        super().__init__(text)

    def terminal_text(self) -> str:
        return self.user_message() if self.has_excerpt else super().terminal_text()


class TableNotFoundError(KqlMagicPlusError):
    """A table the query reads does not exist. Lists those that do, closest name first."""

    label = "Unknown table"

    def __init__(self, name: str, available: Iterable[str]):
        self.name = name
        self.available = closest_first(name, available)
        if self.available:
            listing = ", ".join(self.available[:20]) + (" ..." if len(self.available) > 20 else "")
            msg = f"table {name!r} does not exist. Tables: {listing}"
        else:
            msg = f"table {name!r} does not exist, and no tables are available on this connection"
        super().__init__(msg)


class QueryError(KqlMagicPlusError):
    """The engine refused or failed to run the query."""

    label = "Query failed"


class QueryTimeoutError(QueryError):
    label = "Query timed out"


class QueryCancelledError(QueryError):
    label = "Query cancelled"


#: What a cancelled query says (Ctrl-C, cancel(), a stopped worker), on every engine that stays usable after it.
CANCELLED = "the query was cancelled; the connection is still usable"


class ParameterError(KqlMagicPlusError):
    """A Python value could not be bound into a query."""

    label = "Parameter error"


class AuthError(KqlMagicPlusError):
    label = "Authentication failed"


class RemoteError(KqlMagicPlusError):
    """A remote service answered with an error, or could not be reached."""

    label = "Service error"


class CacheMissError(KqlMagicPlusError):
    """Replay mode: a query had no entry in the replay folder."""

    label = "Not in replay cache"


class ChartError(KqlMagicPlusError):
    """The render spec cannot be drawn from this result (the table is shown instead)."""

    label = "Chart not drawn"


class EngineUnavailableError(KqlMagicPlusError):
    """An engine's dependency or runtime (Java, pyspark, azure clients) is missing."""

    label = "Engine unavailable"


def caret_excerpt(text: str, line: int, column: int) -> str:
    """The 1-based *line* of *text* and a caret under 0-based *column*."""
    lines = text.splitlines() or [""]
    line = min(max(line, 1), len(lines))
    src = lines[line - 1].expandtabs(1)
    gutter = f"{line} | "
    return f"{gutter}{src}\n{' ' * (len(gutter) + max(column, 0))}^"


def closest_first(name: str, candidates: Iterable[str]) -> list[str]:
    """Candidates ordered by similarity to *name* (case-insensitive), then alphabetically."""
    low = name.lower()
    items = sorted(set(candidates))
    return sorted(items, key=lambda c: (-difflib.SequenceMatcher(None, low, c.lower()).ratio(), c))
