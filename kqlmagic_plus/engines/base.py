"""The small interface every engine implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import Result


class Engine(ABC):
    """Runs a :class:`Request` and returns a :class:`Result`.

    One instance per connection; it may keep a session (a DuckDB connection, a Spark session, an
    authenticated client) between queries. Engines never print and never touch IPython.
    """

    #: Short engine name shown to users and used in error messages ("local", "loganalytics", ...).
    name: str = "engine"

    @property
    @abstractmethod
    def target(self) -> str:
        """What the engine queries (workspace, cluster/database, lake path), never credentials.

        Part of the cache key, and shown as the Result's ``connection``.
        """

    @abstractmethod
    def run(self, request: Request) -> Result:
        """Run the request to completion (or raise a :class:`~kqlmagic_plus.errors.KqlMagicPlusError`)."""

    def cancel(self) -> None:  # noqa: B027 - optional for engines whose run() is already interruptible
        """Stop the query running now, from another thread; run() then raises QueryCancelledError."""

    def tables(self) -> list[str]:
        """Names of the tables a query can read here (for error messages and exploration)."""
        return []

    def table_schemas(self, refresh: bool = False) -> dict[str, dict[str, str]]:
        """``{table: {column: KQL type}}`` of what a query can read here (completion, ``%kql --schema``).

        Fetched from the service once per connection and kept: completion asks on every keystroke and
        a remote schema costs a round trip. *refresh* asks again.
        """
        cached = getattr(self, "_table_schemas", None)
        if cached is None or refresh:
            cached = self._fetch_table_schemas()
            self._table_schemas = cached
        return cached

    def cached_table_schemas(self) -> dict[str, dict[str, str]] | None:
        """The schema if it was fetched already, else None (never a round trip)."""
        return getattr(self, "_table_schemas", None)

    def _fetch_table_schemas(self) -> dict[str, dict[str, str]]:
        return {t: {} for t in self.tables()}

    def close(self) -> None:  # noqa: B027
        """Release the session."""
