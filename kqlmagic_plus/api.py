"""The Python API: everything the magics do, without IPython.

    >>> import kqlmagic_plus as kp
    >>> r = kp.kql("print x = 1")
    >>> r.df
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.config import settings
from kqlmagic_plus.connections.spec import connections
from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.request import Request, TimeWindow

if TYPE_CHECKING:
    from kqlmagic_plus.engines.base import Engine
    from kqlmagic_plus.results import Result


def kql(
    query: str,
    conn: str | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    namespace: Mapping[str, Any] | None = None,
    mounts: Mapping[str, str] | None = None,
    timeout: float | None = None,
    timespan: str | None = None,
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    dry_run: bool = False,
    display_limit: int | None = None,
    **options: Any,
) -> Result:
    """Run a KQL query and return a :class:`~kqlmagic_plus.results.Result`.

    *conn* is a connection string or alias (default: the current connection, else ``local://``).
    *namespace* maps names to DataFrames the query may read as tables; *mounts* maps table names to
    files (Parquet, CSV, JSON; globs). *params* are bound as query parameters, never spliced as text.
    """
    cfg = settings()
    _, engine = connections().resolve(conn, namespace=namespace)
    from kqlmagic_plus.cache import modes as cache

    if cache.replay_folder(options) is None:  # in replay no query reaches an engine, not even a mount
        for name, path in (mounts or {}).items():
            _mount(engine, name, path)
    if namespace is not None:
        from kqlmagic_plus.language.params import merge_params, resolve_python_lets

        # Kqlmagic's `let x = pyvar;`: the value is bound as parameter x, never spliced as text.
        query, from_lets = resolve_python_lets(query, namespace)
        params = merge_params(from_lets, params)
    window = make_window(timespan, start, end)
    request = Request(
        query=query,
        params=dict(params or {}),
        namespace=namespace,
        window=window,
        # A --timespan window ends at "now": ago()/now() in the query must resolve to that same instant.
        now=window.end if timespan and window is not None else None,
        timeout=timeout if timeout is not None else (cfg.timeout or None),
        dry_run=dry_run,
        options={k: v for k, v in options.items() if v is not None},
    )
    result = run(engine, request)
    result.display_limit = display_limit if display_limit is not None else cfg.display_limit
    result.show_chart = cfg.show_chart
    return result


def run(engine: Engine, request: Request) -> Result:
    """Run *request* on *engine*: the single path every entry point takes (cache hooks live here).

    A Ctrl-C while the engine works cancels the engine's query and leaves the session usable.
    """
    from kqlmagic_plus.cache import modes as cache

    def compute(req: Request) -> Result:
        if threading.current_thread() is not threading.main_thread():
            return engine.run(req)
        try:
            return engine.run(req)
        except KeyboardInterrupt:
            engine.cancel()
            from kqlmagic_plus.errors import QueryCancelledError

            raise QueryCancelledError("cancelled (Ctrl-C); the connection is still usable") from None

    return cache.run(engine, request, compute)


def _mount(engine: Engine, name: str, path: str) -> None:
    mount = getattr(engine, "mount", None)
    if mount is None:
        raise OptionError(f"--mount works with the local engine; the current connection is {engine.name}")
    mount(name, path)


def make_window(timespan: str | None, start: str | datetime | None, end: str | datetime | None
                ) -> TimeWindow | None:
    """A window from ``--timespan`` (ending now) or ``--start``/``--end``."""
    from kqlmagic_plus.options import parse_duration

    if timespan and (start or end):
        raise OptionError("give either --timespan or --start/--end, not both")
    if timespan:
        from datetime import timedelta

        now = datetime.now(UTC)
        return TimeWindow(now - timedelta(seconds=parse_duration(timespan, "--timespan")), now)
    if start or end:
        s = _as_datetime(start, "--start") if start else None
        e = _as_datetime(end, "--end") if end else None
        if s and e and s >= e:
            raise OptionError(f"--start ({s.isoformat()}) must be before --end ({e.isoformat()})")
        return TimeWindow(s, e)
    return None


def _as_datetime(value: str | datetime, option: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise OptionError(f"{option} {value!r} is not an ISO-8601 date or datetime (e.g. 2024-05-01T12:00Z)"
                          ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
