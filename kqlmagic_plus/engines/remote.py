"""What the Log Analytics and ADX engines share.

* :class:`Runner` runs one blocking SDK call in a worker thread, so the caller can stop waiting:
  Ctrl-C (or :meth:`Runner.cancel` from another thread) and the client-side deadline return control
  within a fraction of a second, while the abandoned call dies with its closed transport.
* :func:`retrying` retries throttled (429), unavailable (502/503/504) and dropped requests with
  exponential backoff, honouring ``Retry-After``, inside the deadline.
* :func:`split_plus_properties` reads Kqlmagic's ``+property`` words in front of a query.
* :func:`arrow_table` turns the rows a service returned into one canonical Arrow table.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import gc
import json
import math
import queue
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from kqlmagic_plus.engines.base import Engine
from kqlmagic_plus.errors import CANCELLED, OptionError, QueryCancelledError, QueryTimeoutError

if TYPE_CHECKING:
    import pyarrow as pa

T = TypeVar("T")

#: Poll interval of the waiting thread: the bound on how late a Ctrl-C or a cancel() is noticed.
_POLL = 0.05


class RemoteEngine(Engine):
    """An engine over one SDK client: built on first use, dropped (closed) on cancel and close, so an
    abandoned call dies with its connection and the next query gets a fresh client."""

    def __init__(self) -> None:
        self._client: Any = None
        self._runner = Runner()

    @abstractmethod
    def _make_client(self) -> Any: ...

    def _client_is_stale(self) -> bool:
        """True when the client must be rebuilt before the next call."""
        return False

    def _get_client(self) -> Any:
        if self._client is not None and self._client_is_stale():
            self._drop_client()
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def cancel(self) -> None:
        self._runner.cancel(self._drop_client)

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):  # best effort; a fresh client serves the next query
                client.close()  # an abandoned call's connection is closed under it

    def close(self) -> None:
        self._drop_client()


class Runner:
    """Runs SDK calls so that they can be abandoned (one call at a time per engine).

    Calls run on a long-lived worker thread (starting a thread per query costs more than the rest
    of this module's per-query work); a worker whose call was abandoned finishes that call on its
    own and exits, and the next call gets a new one.
    """

    def __init__(self) -> None:
        self._cancelled = threading.Event()
        self._jobs: queue.SimpleQueue | None = None

    def cancel(self, on_cancel: Callable[[], None] | None = None) -> None:
        """Stop waiting for the call in flight; *on_cancel* (closing the transport) runs once."""
        self._cancelled.set()
        if on_cancel is not None:
            on_cancel()

    @property
    def cancelled(self) -> threading.Event:
        return self._cancelled

    def run(self, fn: Callable[[], T], *, deadline: float | None, timeout_message: str) -> T:
        """*fn*'s value, or its exception; QueryTimeoutError past *deadline* (a ``time.monotonic()``),
        QueryCancelledError after :meth:`cancel`. A KeyboardInterrupt reaches the caller at once."""
        self._cancelled.clear()
        job = _Job(fn)
        jobs = self._jobs
        if jobs is None:
            jobs = self._jobs = queue.SimpleQueue()
            threading.Thread(target=_work, args=(jobs,), name="kqlmagic-plus-remote", daemon=True).start()
        jobs.put(job)
        finished = False
        try:
            while True:
                try:
                    ok, value = job.out.get(timeout=_POLL)
                    break
                except queue.Empty:
                    pass
                if self._cancelled.is_set():
                    raise QueryCancelledError(CANCELLED)
                if deadline is not None and time.monotonic() > deadline:
                    self._cancelled.set()  # tells a retry loop in the worker to stop
                    raise QueryTimeoutError(timeout_message)
            finished = True
        finally:
            if not finished:
                # Abandoned: that worker exits after its call; the next call starts another.
                jobs.put(None)
                self._jobs = None
        if not ok:
            raise value
        return value


class _Job:
    __slots__ = ("fn", "out")

    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn
        #: (True, value) or (False, exception), put once by the worker.
        self.out: queue.SimpleQueue = queue.SimpleQueue()


def _work(jobs: queue.SimpleQueue) -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        try:
            job.out.put((True, job.fn()))
        except BaseException as exc:  # handed to the waiting thread
            job.out.put((False, exc))


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a result is converted.

    Converting 100 k rows allocates a few hundred thousand acyclic tuples, and each of the
    collections they trigger scans every object the SDK built for the response: measured, that
    tripled the conversion time. Nothing made here is cyclic.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# -- retries -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetrySettings:
    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 30.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def retrying(call: Callable[[], T], classify: Callable[[BaseException], tuple[str, float | None] | None], *,
             settings: RetrySettings, deadline: float | None, cancelled: threading.Event,
             notes: list[str]) -> T:
    """*call*, retried while *classify* says an error is transient: ``(reason, retry_after)``.

    The wait is the service's Retry-After when it gave one, else exponential backoff. A wait that
    would pass the deadline is not started: the last error is raised instead.
    """
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            verdict = classify(exc)
            attempt += 1
            if verdict is None or attempt >= settings.attempts or cancelled.is_set():
                raise
            reason, retry_after = verdict
            delay = retry_after if retry_after is not None else min(settings.max_backoff,
                                                                    settings.backoff * 2 ** (attempt - 1))
            if deadline is not None and time.monotonic() + delay > deadline:
                raise
            asked = " as the service asked" if retry_after is not None else ""
            notes.append(f"{reason}: retried after {delay:g} s{asked}")
            if cancelled.wait(delay):
                raise


# -- +properties ---------------------------------------------------------------------------------------------


def split_plus_properties(query: str) -> tuple[dict[str, Any], str]:
    """Kqlmagic's request properties written before the query: ``+name``, ``+!name``,
    ``+name=value`` (value: true/false, a number, a quoted string, or a word). Nothing is evaluated.

    Returns the properties and the query without them (the query's own lines keep their places:
    the words are replaced by spaces).
    """
    if "+" not in query[: len(query) - len(query.lstrip()) + 1]:
        return {}, query
    props: dict[str, Any] = {}
    i, n = 0, len(query)
    chars = list(query)
    while True:
        while i < n and query[i].isspace():
            i += 1
        if i >= n or query[i] != "+":
            break
        start = i
        i += 1
        negate = i < n and query[i] == "!"
        if negate:
            i += 1
        name_start = i
        while i < n and (query[i].isalnum() or query[i] in "_-"):
            i += 1
        name = query[name_start:i].lower()
        if not name:
            raise OptionError(f"'+' at position {start + 1} must be followed by a request property name")
        value: Any = not negate
        if i < n and query[i] == "=":
            if negate:
                raise OptionError(f"+!{name} negates a flag and takes no value")
            i += 1
            value, i = _plus_value(query, i, name)
        elif i < n and not query[i].isspace():
            raise OptionError(f"unexpected {query[i]!r} after +{name}")
        props[name] = value
        for k in range(start, i):
            if chars[k] not in "\r\n":
                chars[k] = " "
    return props, "".join(chars)


def _plus_value(query: str, i: int, name: str) -> tuple[Any, int]:
    n = len(query)
    if i < n and query[i] in "'\"":
        q = query[i]
        end = query.find(q, i + 1)
        if end < 0:
            raise OptionError(f"unterminated quote in the value of +{name}")
        return query[i + 1:end], end + 1
    start = i
    while i < n and not query[i].isspace():
        i += 1
    word = query[start:i]
    if not word:
        raise OptionError(f"+{name}= needs a value")
    low = word.lower()
    if low in ("true", "false"):
        return low == "true", i
    for conv in (int, float):
        try:
            return conv(word), i
        except ValueError:
            pass
    return word, i


# -- the Result of a service's answer ---------------------------------------------------------------------


def service_result(engine: Any, request: Any, *, columns: Sequence[str], column_types: Sequence[str],
                   rows: Sequence[Sequence[Any]] | None, dynamic_as_text: bool, visualization: Any,
                   original: str, executed: str, parameters: dict[str, str], stats: dict[str, Any],
                   warnings: list[str], truncated: bool, started: float, name: str = "",
                   more: Sequence[tuple[str, Sequence[str], Sequence[str], Any]] = ()) -> Any:
    """The :class:`~kqlmagic_plus.results.Result` both remote engines return: the first result table
    in canonical Arrow (*rows* None: the service sent no table), and the chart the service (or the
    query's own render clause) described."""
    from kqlmagic_plus.results import Result

    kql_types, table = _typed(columns, column_types, rows, dynamic_as_text, warnings)
    others = []
    for other_name, other_columns, other_types, other_rows in more:
        other_types_, other_table = _typed(other_columns, other_types, other_rows, dynamic_as_text, warnings)
        others.append(Result(table=other_table, kql_types=other_types_, query=request.query,
                             connection=engine.target, engine=engine.name, truncated=truncated, executed=executed,
                             parameters=dict(parameters), name=other_name))
    if others:
        warnings.append(f"The query returned {len(others) + 1} result tables: {name or 'unnamed'!r}, "
                        + ", ".join(repr(o.name) for o in others) + "; each is shown under its name, .df is "
                        "the first, and every one is in .tables.")
    # arrow_table's columns are canonical already: no second pass through canonical_table.
    return Result(
        table=table, kql_types=kql_types, query=request.query, connection=engine.target, engine=engine.name,
        elapsed=time.perf_counter() - started, truncated=truncated, warnings=warnings, executed=executed,
        parameters=dict(parameters), render=render_spec(visualization, original, stats), stats=stats,
        name=name, other_tables=others)


def _typed(columns: Sequence[str], column_types: Sequence[str], rows: Any, dynamic_as_text: bool,
           warnings: list[str]) -> tuple[list[str], pa.Table]:
    import pyarrow as pa

    from kqlmagic_plus.kqltypes import normalize_type

    if rows is not None:
        kql_types = []
        for name, t in zip(columns, column_types, strict=False):
            try:
                kql_types.append(normalize_type(t))
            except ValueError:
                # A type this client does not know: keep the values, as text, and say so.
                kql_types.append("string")
                warnings.append(f"Column {name!r} has the type {t!r}, which this client does not know; "
                                "its values are shown as text.")
        table = arrow_table(columns, kql_types, rows, dynamic_as_text=dynamic_as_text)
    else:
        kql_types, table = [], pa.table({})
    return kql_types, table


def render_spec(visualization: Any, original: str, stats: dict[str, Any]) -> Any:
    """The chart: the service's visualization block, else the query's own ``render`` clause (an
    endpoint may leave the block empty, as duckdb-kql serve does)."""
    try:
        from kqlmagic_plus.language.render import RenderSpec, split_render
    except ImportError:  # render support not installed in this build: keep what the service said
        if visualization:
            stats["visualization"] = visualization
        return None
    spec = RenderSpec.from_service(visualization) if visualization else None
    if spec is None and "render" in original:
        from kqlmagic_plus.errors import KqlMagicPlusError

        try:
            _, spec = split_render(original)
        except KqlMagicPlusError:
            spec = None
    return spec


# -- rows -> Arrow -------------------------------------------------------------------------------------------


class UnreadableAnswer(ValueError):
    """A service answer that is valid JSON but not a query result this client can read."""


def arrow_table(names: Sequence[str], kql_types: Sequence[str], rows: Sequence[Sequence[Any]], *,
                dynamic_as_text: bool) -> pa.Table:
    """One canonical Arrow table from row-major service values.

    *dynamic_as_text*: the service sent dynamic cells as JSON text (Log Analytics) rather than as
    parsed JSON (ADX v2). Raises :class:`UnreadableAnswer` naming the row or column that is wrong.
    """
    import pyarrow as pa

    if not isinstance(rows, list | tuple):
        raise UnreadableAnswer(f"its rows are a {type(rows).__name__}, not a list")

    schema = _schema(tuple(names), tuple(kql_types))
    with paused_gc():
        try:
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        except (ValueError, TypeError):
            raise UnreadableAnswer(_ragged(rows, len(names))) from None
        if len(columns) != len(names):
            raise UnreadableAnswer(f"its rows have {len(columns)} values for {len(names)} columns")
        arrays = []
        for kt, field, values in zip(kql_types, schema, columns, strict=True):
            try:
                arrays.append(_column(values, kt, field.type, dynamic_as_text))
            except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
                detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise UnreadableAnswer(f"column {field.name!r} ({kt}): {detail[:200]}") from None
        del columns
        return pa.Table.from_arrays(arrays, schema=schema)


def _ragged(rows: Sequence[Any], width: int) -> str:
    """Which row does not fit the columns (only looked for once zip() refused the rows)."""
    for i, row in enumerate(rows):
        if isinstance(row, str) or not isinstance(row, Sequence):
            return f"row {i + 1} is a {type(row).__name__}, not a list of values"
        if len(row) != width:
            return f"row {i + 1} has {len(row)} values for {width} columns"
    return "its rows do not fit its columns"


@functools.lru_cache(maxsize=256)
def _schema(names: tuple[str, ...], kql_types: tuple[str, ...]) -> pa.Schema:
    # A re-run cell asks for the same columns again: build the schema once.
    import pyarrow as pa

    from kqlmagic_plus.kqltypes import arrow_type

    return pa.schema([pa.field(n, arrow_type(kt), metadata={b"kql_type": kt.encode()})
                      for n, kt in zip(names, kql_types, strict=True)])


def _column(values: Sequence[Any], kt: str, target: pa.DataType, dynamic_as_text: bool) -> pa.Array:
    import pyarrow as pa

    if kt in ("long", "int"):
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return pa.array([None if v is None else int(v) for v in values], type=target)
    if kt == "real":
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([_real(v) for v in values], type=target)
    if kt == "bool":
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([None if v is None else _bool(v) for v in values], type=target)
    if kt in ("string", "guid", "decimal"):
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([None if v is None else (v if isinstance(v, str) else json.dumps(v)
                                                     if isinstance(v, dict | list) else str(v))
                             for v in values], type=target)
    if kt == "datetime":
        return _datetimes(values, target)
    if kt == "timespan":
        return _timespans(values, target)
    # dynamic
    if dynamic_as_text:
        return pa.array([v if v is None else _json_text(v) if isinstance(v, str) else _json(v) for v in values],
                        type=target)
    return pa.array([None if v is None else _json(v) for v in values], type=target)


def _json_text(v: str) -> str:
    """A dynamic cell sent as text: the text when it is JSON, else the text as a JSON string (the
    service can send a value that is not JSON; the SDK hands it over as the text)."""
    try:
        json.loads(v)
    except ValueError:
        return _json(v)
    return v


def _json(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, separators=(",", ":"), default=str)


def _real(v: Any) -> float | None:
    if v is None:
        return None
    if isinstance(v, str):
        low = v.strip().lower()
        if low in ("nan", "+nan", "-nan"):
            return math.nan
        if low in ("infinity", "+infinity", "inf"):
            return math.inf
        if low in ("-infinity", "-inf"):
            return -math.inf
    return float(v)


def _bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("true", "1")
    return bool(v)


def _datetimes(values: Sequence[Any], target: pa.DataType) -> pa.Array:
    import pyarrow as pa

    sample = next((v for v in values if v is not None), None)
    if sample is None or isinstance(sample, datetime):
        try:
            return pa.array(values, type=target)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    elif isinstance(sample, str):
        try:
            # Kusto sends 100 ns ticks (7 fraction digits); nanoseconds hold them, and the canonical
            # microseconds are the nearest ones (ties to even, as the SDK's timedelta rounds).
            ns = pa.array(values, type=pa.string()).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
            return half_even_div(ns, 1000).cast(target)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    return pa.array([None if v is None else _one_datetime(v) for v in values], type=target)


#: Kusto's timespan text, ``[-][d.]hh:mm:ss[.fffffff]``, in groups (RE2 syntax, for pyarrow).
_TIMESPAN_RE = r"^(?P<neg>-?)(?:(?P<d>\d{1,9})\.)?(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,7}))?$"


def _timespans(values: Sequence[Any], target: pa.DataType) -> pa.Array:
    """Timespans as durations; Kusto's text form is parsed column-wise (3.5x faster than per value),
    anything else (ticks, timedeltas, Python's ``1 day, 2:03:04``) value by value."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, str) and len(values) >= 64:  # below that, per value is as fast
        try:
            text = pa.array(values, type=pa.string())
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            text = None
        if text is not None:
            parts = pc.extract_regex(text, _TIMESPAN_RE)
            if parts.null_count == text.null_count:  # every value is in Kusto's form

                def number(name: str) -> pa.Array:
                    field = parts.field(name)
                    return pc.cast(pc.if_else(pc.equal(field, ""), "0", field), pa.int64())

                seconds = pc.add(pc.multiply(pc.add(pc.multiply(pc.add(pc.multiply(number("d"), 24), number("h")),
                                                                60), number("m")), 60), number("s"))
                # 7 fraction digits are 100 ns ticks: pad to 7, round to the nearest microsecond.
                ticks = pc.cast(pc.utf8_rpad(parts.field("f"), 7, "0"), pa.int64())
                us = pc.add(pc.multiply(seconds, 1_000_000), half_even_div(ticks, 10))
                us = pc.if_else(pc.equal(parts.field("neg"), "-"), pc.negate(us), us)
                if text.null_count:  # a null row's struct fields hold "" (0), not null
                    us = pc.if_else(pc.is_valid(text), us, pa.scalar(None, pa.int64()))
                return us.cast(target)
    return pa.array([None if v is None else _timespan_us(v) for v in values], type=pa.int64()).cast(target)


def half_even_div(values: pa.Array, divisor: int) -> pa.Array:
    """Integers divided by *divisor*, rounded to the nearest, ties to even (floor-based, so negative
    values round the same way); nulls stay null."""
    import numpy as np
    import pyarrow as pa

    values = values.cast(pa.int64())
    mask = values.is_null().to_numpy(zero_copy_only=False) if values.null_count else None
    q, r = np.divmod(values.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), divisor)
    half = divisor // 2
    q = q + ((r > half) | ((r == half) & (q % 2 == 1)))
    return pa.array(q, type=pa.int64(), mask=mask)


def _half_even(n: int, divisor: int) -> int:
    q, r = divmod(n, divisor)
    return q + 1 if r * 2 > divisor or (r * 2 == divisor and q % 2) else q


def _one_datetime(v: Any) -> datetime | None:
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    text = str(v).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    us = 0
    if "." in text:
        head, _, frac = text.partition(".")
        digits = "".join(c for c in frac if c.isdigit())
        rest = frac[len(digits):]
        us = _half_even(int((digits + "000000000")[:9]), 1000)  # nearest microsecond of the ticks
        text = head + rest
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    dt = dt + timedelta(microseconds=us)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _timespan_us(v: Any) -> int:
    """Microseconds in a Kusto timespan: ``[-][d.]hh:mm:ss[.fffffff]``, or ticks as a number."""
    if isinstance(v, int):
        return _half_even(v, 10)  # 100 ns ticks
    if isinstance(v, float):
        return round(v / 10)
    if hasattr(v, "total_seconds"):
        return round(v.total_seconds() * 1_000_000)
    text = str(v).strip()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    days = 0
    head, _, clock = text.rpartition(" ") if " " in text else ("", "", text)
    if head:  # Python's str(timedelta): "1 day, 2:03:04"
        days = int(head.split()[0])
    parts = clock.split(":")
    if len(parts) != 3:
        raise ValueError(f"not a timespan: {v!r}")
    h = parts[0]
    if "." in h:
        d, _, h = h.partition(".")
        days = int(d)
    sec, _, frac = parts[2].partition(".")
    us = _half_even(int((frac + "0000000")[:7]), 10) if frac else 0  # ticks, to the nearest microsecond
    total = ((days * 24 + int(h)) * 60 + int(parts[1])) * 60 + int(sec)
    return sign * (total * 1_000_000 + us)


# -- network settings from the environment -----------------------------------------------------------------

#: What requests reads from the environment on every request when it is allowed to.
_NETWORK_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                      "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


def network_environment() -> tuple[str | None, ...]:
    """The environment variables that decide proxies and trusted CAs (cheap: compare it per query)."""
    import os

    env = os.environ
    return tuple(env.get(name) for name in _NETWORK_VARIABLES)


@dataclass(frozen=True)
class NetworkSettings:
    """Proxies and CA bundle for one endpoint, read from the environment once.

    requests would re-read them (and ``~/.netrc``) on every request: a third of the client's CPU
    time for a small query on a fast link. A client built with these is rebuilt when
    :func:`network_environment` changes, so setting ``REQUESTS_CA_BUNDLE`` or ``HTTPS_PROXY`` after
    an error takes effect on the next query.
    """

    environment: tuple[str | None, ...]
    proxies: dict[str, str]
    verify: bool | str

    @classmethod
    def for_url(cls, url: str) -> NetworkSettings:
        from requests.utils import get_environ_proxies

        env = network_environment()
        named = dict(zip(_NETWORK_VARIABLES, env, strict=True))
        verify: bool | str = named["REQUESTS_CA_BUNDLE"] or named["CURL_CA_BUNDLE"] or True
        return cls(env, dict(get_environ_proxies(url)), verify)

    def transport_kwargs(self, verify: bool | str | None = None) -> dict[str, Any]:
        """Keyword arguments for an azure-core client: its own transport that ignores the environment
        (*verify*, when given, replaces the CA bundle from the environment)."""
        from azure.core.pipeline.transport import RequestsTransport

        transport = RequestsTransport(use_env_settings=False,
                                      connection_verify=self.verify if verify is None else verify)
        kwargs: dict[str, Any] = {"transport": transport}
        if self.proxies:
            kwargs["proxies"] = self.proxies
        return kwargs


# -- small helpers ----------------------------------------------------------------------------------------


def seconds_of(value: Any, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hasattr(value, "total_seconds"):
        return float(value.total_seconds())
    text = str(value).strip()
    if ":" in text:
        return _timespan_us(text) / 1e6
    from kqlmagic_plus.request import parse_duration

    try:
        return float(text)
    except ValueError:
        return parse_duration(text, name)


def host_of(url: str) -> str:
    from urllib.parse import urlparse

    p = urlparse(url)
    return p.netloc.rpartition("@")[2] or url  # host[:port], never the user:password@ before it


def status_word(status: int) -> str:
    from http import HTTPStatus

    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def network_reason(exc: BaseException) -> str:
    """The root cause of a connection failure, in words (TLS, refused, DNS, reset)."""
    import ssl

    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    texts = []
    while todo:
        node = todo.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ssl.SSLCertVerificationError):
            return (f"its TLS certificate is not trusted ({node.verify_message}); behind a TLS-inspecting proxy "
                    "set REQUESTS_CA_BUNDLE to the proxy's CA file")
        if isinstance(node, ConnectionRefusedError):
            return "connection refused"
        texts.append(str(node))
        # requests, urllib3 and azure-core each wrap the socket's error their own way.
        for nxt in (node.__cause__, node.__context__, getattr(node, "inner_exception", None),
                    getattr(node, "reason", None), *node.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)
    text = " ".join(texts)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        return ("its TLS certificate is not trusted; behind a TLS-inspecting proxy set REQUESTS_CA_BUNDLE to the "
                "proxy's CA file")
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "getaddrinfo failed" in text or "nodename nor servname" in text:
        return "the host name does not resolve"
    for marker in ("RemoteDisconnected", "Connection aborted", "Connection reset", "EOF occurred", "IncompleteRead",
                   "Connection broken"):
        if marker in text:
            return "the server closed the connection"
    from kqlmagic_plus.connections.auth import first_line

    return first_line(exc)
