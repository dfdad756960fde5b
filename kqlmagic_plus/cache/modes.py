"""The result cache: reuse a query's rows while they are still the answer, and replay offline.

Modes (magic options; the same names work as keyword arguments of ``kqlmagic_plus.kql``):

* ``--cache [TTL]`` stores results and reuses one younger than TTL (default: the
  ``KqlMagicPlus.cache`` setting, else 1 day). ``%config KqlMagicPlus.cache = '1h'`` turns it on
  for every query. ``--no-cache`` neither reads nor writes; ``--refresh`` re-runs and replaces.
* Replay (``%kql --replay DIR``, ``KQLMAGIC_PLUS_REPLAY=DIR``, ``--replay off`` to leave): every
  query is served from the folder and none reaches an engine; a query with no entry raises
  :class:`~kqlmagic_plus.errors.CacheMissError` naming it. ``%kql --cache export DIR`` writes the
  entries this kernel used, so a notebook plus that folder runs anywhere.
* ``%kql --cache list | stats | clear [--older-than 7d]``.

What makes two runs "the same query" (:mod:`kqlmagic_plus.cache.key`): the engine target (never
credentials), the query with comments and insignificant whitespace removed, parameter values, the
time window, and the options that change rows. On top of that key, an entry is served only while
the local data it read is unchanged: DataFrames by content, and the files the engine resolves the
query's table names to (``Engine.cache_inputs``: mounted files, the lake blobs of the query's
window, the database file) by path, size, mtime, ctime and inode, taken before the engine reads
them; a file changed in the last ``SETTLE_SECONDS`` (too recently for its times to show the next
change on a coarse file-system clock) is also checked by content. For relative time the inputs
checked are those of the entry's own window.

Relative time. ``ago()``/``now()`` and ``--timespan`` resolve against one instant, ``now``. On a
miss the cache pins ``Request.now`` to the current time, so the engine's window and the entry agree,
and stores that instant with the rows. A later run of the same text resolves to a window shifted by
the time since; the stored entry is reused only while

    (current now - stored now) < TTL   and   both instants fall on the same local calendar day.

So ``now`` is bucketed by day, and within the day slides with the TTL: re-running within the TTL
hits, re-running tomorrow misses even under ``--cache 7d``, and a window that moved past midnight is
recomputed even inside the TTL (the day wins). Queries without relative time are reused for the
whole TTL. Replay ignores age: it reproduces what the notebook showed, and each result says when it
was computed.

Integrity (:mod:`kqlmagic_plus.cache.entry`, :mod:`kqlmagic_plus.cache.store`): one file per entry,
published by rename, a checksum (XXH3-128) over the whole file, verified on every read. A damaged entry is
discarded with a warning on the result and the query re-run; it is never served. A write that fails
(full disk, read-only folder) leaves the query's result intact and says so in ``result.warnings``.
Entries this kernel has verified are reused from memory while their file is unchanged, so re-running
a cell costs a ``stat`` of the entry and of its input files (plus, for DataFrame inputs, a digest of
the DataFrame; for a lake, the listing of the window's folders). The cache folder is used only while
no one else can have written it (:mod:`kqlmagic_plus.cache.store`); otherwise each query runs
without it and says so in one warning.

A lake in Azure Storage read by the local engine is keyed by the ETag and size of each blob its
window lists (listed, not read, before the lookup): a rewritten or deleted blob is a miss.
Not seen by the key, so bounded by the TTL only: remote data (a workspace, a cluster, a lake Spark reads
itself) and relative time hidden inside stored functions of a workspace. Replay keys are portable across
machines for remote targets; local targets carry absolute paths, so a lake must sit at the same path.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.cache.entry import CorruptEntry, EntryTooLarge, UntrustedStore
from kqlmagic_plus.cache.key import (
    CONTROL_OPTIONS,
    SETTLE_SECONDS,
    Sources,
    Unkeyable,
    contents_unchanged,
    decode,
    encode,
    is_control_command,
    query_key,
    recent_contents,
    source_fingerprint,
    uses_relative_time,
)
from kqlmagic_plus.cache.store import ResultStore
from kqlmagic_plus.errors import CacheMissError
from kqlmagic_plus.redaction import redact

if TYPE_CHECKING:
    from kqlmagic_plus.engines.base import Engine
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import Result

DEFAULT_TTL = "1d"
FORMAT = 1
#: An entry stamped further in the future than this (clock skew) is not trusted as fresh.
FUTURE_SKEW_SECONDS = 300
OFF_WORDS = ("", "off", "none", "false", "0", "no")


@dataclass
class SessionStats:
    """What the cache did in this process (``%kql --cache stats``)."""

    hits: int = 0
    misses: int = 0
    stores: int = 0
    replayed: int = 0
    discarded: int = 0
    write_failures: int = 0
    #: key -> entry file, for every entry this process served or stored (``--cache export``).
    used: dict[str, str] = field(default_factory=dict)


session = SessionStats()


def clock() -> datetime:
    return datetime.now(UTC)


def cache_settings() -> Any:
    from kqlmagic_plus.config import settings

    return settings()


# -- the hook in api.run -------------------------------------------------------------------------------

def replay_folder(options: Mapping[str, Any] | None = None) -> str | None:
    """The replay folder in force for a request with *options* (an option beats the setting)."""
    value = (options or {}).get("replay")
    if value is None:
        value = cache_settings().replay
    if not value or str(value).strip().lower() in OFF_WORDS:
        return None
    return str(value)


def run(engine: Engine, request: Request, compute: Callable[[Request], Result]) -> Result:
    """Serve *request* from the cache, or *compute* it (and store it), as the mode says."""
    opts = request.options
    clean = request.with_(options={k: v for k, v in opts.items() if k not in CONTROL_OPTIONS}) \
        if any(k in opts for k in CONTROL_OPTIONS) else request
    folder = replay_folder(opts)
    if folder is not None:
        return _replay(engine, clean, folder)
    if opts.get("no_cache") or request.dry_run or is_control_command(request.query):
        return compute(clean)
    refresh = bool(opts.get("refresh"))
    ttl = ttl_seconds(opts.get("cache"), refresh)
    if ttl is None:
        return compute(clean)
    return _cached(engine, clean, compute, ttl, refresh)


def ttl_seconds(option: Any, refresh: bool) -> float | None:
    """Seconds an entry stays fresh, or None when caching is off for this query."""
    from kqlmagic_plus.request import parse_duration

    if isinstance(option, str) and option.strip():
        if option.strip().lower() in OFF_WORDS:
            return None
        return parse_duration(option, "--cache")
    configured = (cache_settings().cache or "").strip()
    conf_ttl = None if configured.lower() in OFF_WORDS else parse_duration(configured, "KqlMagicPlus.cache")
    if option is True or refresh:
        return conf_ttl if conf_ttl is not None else parse_duration(DEFAULT_TTL)
    return conf_ttl


def _cached(engine: Engine, request: Request, compute: Callable[[Request], Result], ttl: float,
            refresh: bool) -> Result:
    started = time.perf_counter()
    cfg = cache_settings()
    store = ResultStore.for_cache_dir(cfg.cache_dir)
    try:
        store.check()
        key = query_key(engine, request)
    except UntrustedStore as exc:
        return _without_cache(compute, request, untrusted_warning(exc))
    except Unkeyable as exc:
        return _without_cache(compute, request, _unkeyable_warning(exc))
    relative = uses_relative_time(request)
    now = request.now or clock()
    notes: list[str] = []
    if not refresh:
        try:
            loaded = _load(store, key, notes)
        except UntrustedStore as exc:
            return _without_cache(compute, request, untrusted_warning(exc))
        if loaded is not None and _within_ttl(loaded[0], ttl, relative, now):
            meta, table = loaded
            try:
                # The inputs the entry read (for relative time: its own window), as they are now.
                current = source_fingerprint(engine, _as_computed(request, meta, relative))
            except Unkeyable as exc:
                return _without_cache(compute, request, _unkeyable_warning(exc))
            if _unchanged(meta, current):
                result = _result_from_entry(meta, table, request, time.perf_counter() - started)
                store.touch(key)
                session.hits += 1
                session.used[key] = store.file_for(key)
                result.stats["cache"] = {"key": key, "path": store.file_for(key), "ttl_s": ttl}
                return result
    session.misses += 1
    pinned = request if request.now is not None else request.with_(now=now)
    try:
        # Taken before the engine reads: a change while it runs then shows as a change at the next lookup.
        sources = source_fingerprint(engine, pinned)
    except Unkeyable as exc:
        return _without_cache(compute, pinned, _unkeyable_warning(exc))
    contents = recent_contents(sources.recent) if sources.recent else {}
    result = compute(pinned)
    if contents is None:
        result.warnings.append(f"Result not cached: {len(sources.recent)} input files changed in the last "
                               f"{SETTLE_SECONDS:g} s, too soon for their size and times to show the next change, "
                               "and they are too big to check by content.")
    else:
        _store(store, key, _meta(key, engine, pinned, result, sources.digest, relative, contents), result,
               cfg.cache_max_bytes)
    result.warnings.extend(notes)
    return result


def _without_cache(compute: Callable[[Request], Result], request: Request, warning: str) -> Result:
    result = compute(request)
    result.warnings.append(warning)
    return result


def _unkeyable_warning(exc: Exception) -> str:
    return f"Not cached: {exc} in this query has no stable cache key."


def untrusted_warning(exc: Exception) -> str:
    """The one line a query shows when the cache folder is refused."""
    return (f"Cache not used: {exc}; anyone who can write there could plant results. The query ran "
            "without the cache. Check it, then make it yours and private (chmod 700) or remove it, or set "
            "KqlMagicPlus.cache_dir to a folder only you can write.")


def _as_computed(request: Request, meta: dict[str, Any], relative: bool) -> Request:
    """*request* as the entry ran it: relative time resolved against the entry's own ``now``."""
    if not relative:
        return request
    from kqlmagic_plus.cache.key import is_relative_window
    from kqlmagic_plus.request import TimeWindow

    entry_now = parse_time(meta["now"])
    w = request.window
    if is_relative_window(request) and w is not None and w.end is not None:
        start = None if w.start is None else entry_now - (w.end - w.start)
        return request.with_(now=entry_now, window=TimeWindow(start, entry_now))
    return request.with_(now=entry_now)


def _load(store: ResultStore, key: str, notes: list[str]) -> tuple[dict[str, Any], Any] | None:
    try:
        loaded = store.load(key)
    except CorruptEntry as exc:
        store.discard(key, exc.stat)
        session.discarded += 1
        notes.append(f"The cached result for this query was damaged ({exc}); it was discarded and the "
                     "query re-run.")
        return None
    except OSError as exc:
        notes.append(f"The cache could not be read ({exc.strerror or exc}); the query was re-run.")
        return None
    if loaded is None:
        return None
    meta, table, st = loaded
    problem = _check_entry(meta, table, key)
    if problem:
        store.discard(key, st)
        session.discarded += 1
        notes.append(f"The cached result for this query was damaged ({problem}); it was discarded and "
                     "the query re-run.")
        return None
    return meta, table


def _check_entry(meta: dict[str, Any], table: Any, key: str) -> str | None:
    """Why a checksum-valid entry still cannot be served (None: it can)."""
    from kqlmagic_plus import kqltypes

    if meta.get("format") != FORMAT:
        return f"format {meta.get('format')!r}, expected {FORMAT}"
    if meta.get("key") != key:
        return "it belongs to another query"
    types = meta.get("kql_types")
    if not isinstance(types, list) or types != kqltypes.kql_types_of(table):
        return "its column types do not match its data"
    try:
        if not all(kqltypes.is_canonical(f.type, t) for f, t in zip(table.schema, types, strict=True)):
            return "its columns are not in canonical form"
        parse_time(meta["computed_at"])
        parse_time(meta["now"])
    except (KeyError, TypeError, ValueError) as exc:
        return f"bad metadata ({type(exc).__name__})"
    return None


def _fresh(meta: dict[str, Any], sources: str | Sources, ttl: float, relative: bool, now: datetime) -> bool:
    """The rule in the module docstring."""
    digest = sources.digest if isinstance(sources, Sources) else sources
    return meta.get("sources") == digest and _within_ttl(meta, ttl, relative, now)


def _unchanged(meta: dict[str, Any], current: Sources) -> bool:
    """The entry's inputs are as they were when it was computed: same fingerprint, and the files that had
    just changed then have the same content still."""
    return meta.get("sources") == current.digest and contents_unchanged(meta.get("contents"))


def _within_ttl(meta: dict[str, Any], ttl: float, relative: bool, now: datetime) -> bool:
    computed = parse_time(meta["computed_at"])
    age = (now - computed).total_seconds()
    if age < -FUTURE_SKEW_SECONDS or age >= ttl:
        return False
    if relative:
        entry_now = parse_time(meta["now"])
        if (now - entry_now).total_seconds() >= ttl:
            return False
        if _local_day(now) != _local_day(entry_now):
            return False
    return True


def _local_day(t: datetime) -> Any:
    return t.astimezone().date()


def parse_time(text: Any) -> datetime:
    t = datetime.fromisoformat(text)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _meta(key: str, engine: Engine, request: Request, result: Result, sources: str, relative: bool,
          contents: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "contents": contents or {},
        "format": FORMAT,
        "key": key,
        # Display-only fields (the key is hashed from the raw request): a SAS URL or password written
        # into a query must not be kept on disk, nor shown by --cache list or a replay folder.
        "query": redact(request.query),
        "target": redact(engine.target),
        "connection": redact(result.connection),
        "engine": result.engine,
        "computed_at": result.computed_at.isoformat(),
        "now": request.now.isoformat() if request.now else result.computed_at.isoformat(),
        "relative": relative,
        "sources": sources,
        "rows": result.row_count,
        "kql_types": list(result.kql_types),
        "elapsed": result.elapsed,
        "truncated": result.truncated,
        "total_rows": result.total_rows,
        "warnings": [redact(str(w)) for w in result.warnings],
        "executed": redact(result.executed) if result.executed else result.executed,
        "parameters": _encode_lenient(result.parameters),
        "stats": _encode_lenient(result.stats),
    }


def _encode_lenient(value: Any) -> Any:
    """Like :func:`encode`, with text for values that have no exact form (display-only fields)."""
    if isinstance(value, Mapping):
        return encode({str(k): _encode_leaf(v) for k, v in value.items()})
    return _encode_leaf(value)


def _encode_leaf(v: Any) -> Any:
    try:
        encode(v)
        return v
    except Unkeyable:
        return str(v)


def _store(store: ResultStore, key: str, meta: dict[str, Any], result: Result, cap: int) -> None:
    from kqlmagic_plus.cache.entry import encode as encode_entry

    if result.table.num_columns == 0:
        return
    if getattr(result, "other_tables", None):
        # An entry holds one table: a hit would silently lose the others.
        result.warnings.append(f"Result not cached: the query returned {len(result.tables)} tables and a cache "
                               "entry holds one.")
        return
    try:
        header, payload, digest = encode_entry(meta, result.table)
    except EntryTooLarge as exc:
        result.warnings.append(f"Result not cached: {exc}.")
        return
    except Exception as exc:  # a column Parquet cannot hold: the query still succeeded
        result.warnings.append(f"Result not cached: it could not be written as Parquet "
                               f"({type(exc).__name__}).")
        return
    size = len(header) + payload.size + len(digest)
    if cap and size > cap:
        result.warnings.append(f"Result not cached: {megabytes(size)} is more than the cache size cap "
                               f"({megabytes(cap)}, KqlMagicPlus.cache_max_bytes).")
        return
    try:
        path = store.store(key, [header, payload, digest], meta, result.table)
    except UntrustedStore as exc:  # refused since the lookup (another kernel changed its mode)
        result.warnings.append(untrusted_warning(exc))
        return
    except OSError as exc:
        session.write_failures += 1
        result.warnings.append(_write_failure(exc, store.path))
        return
    session.stores += 1
    session.used[key] = path
    if cap:
        store.evict(cap, keep=key)


def _write_failure(exc: OSError, where: str) -> str:
    import errno

    reason = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EFBIG: "the file size limit was reached",
        errno.EROFS: "the folder is read-only",
        errno.EACCES: "permission denied",
    }.get(exc.errno or -1, exc.strerror or type(exc).__name__)
    return f"Result not cached: {reason} ({where}). The query itself succeeded."


def megabytes(n: float) -> str:
    if n < 1e6:
        return f"{n / 1e3:,.1f} kB"
    return f"{n / 1e6:,.1f} MB"


def _result_from_entry(meta: dict[str, Any], table: Any, request: Request, elapsed: float) -> Result:
    from kqlmagic_plus.results import Result

    stats = decode(meta.get("stats") or {})
    return Result(
        table=table,
        kql_types=list(meta["kql_types"]),
        query=request.query,
        connection=meta.get("connection") or "",
        engine=meta.get("engine") or "",
        elapsed=elapsed,
        truncated=bool(meta.get("truncated")),
        total_rows=meta.get("total_rows"),
        warnings=[str(w) for w in meta.get("warnings") or []],
        executed=meta.get("executed"),
        parameters=decode(meta.get("parameters") or {}),
        render=_render_for(request.query),
        from_cache=True,
        computed_at=parse_time(meta["computed_at"]),
        stats=stats if isinstance(stats, dict) else {},
    )


def _render_for(query: str) -> Any:
    # A render spec is read from the query text, as the engines do; it is not stored (no pickles).
    try:
        from kqlmagic_plus.language.render import split_render
    except ImportError:
        return None
    return split_render(query)[1]


# -- replay ---------------------------------------------------------------------------------------------

def _replay(engine: Engine, request: Request, folder: str) -> Result:
    preview = _preview(request.query)
    if request.dry_run:
        raise CacheMissError(f"--dry-run needs an engine; replay mode (folder {folder}) serves stored "
                             "results only")
    if not os.path.isdir(os.path.expanduser(folder)):
        raise CacheMissError(f"replay folder {folder!r} does not exist (query: {preview})",
                             hint="Point --replay / KQLMAGIC_PLUS_REPLAY at a folder written by "
                                  "%kql --cache export DIR, or use --replay off.")
    store = ResultStore.for_folder(folder)
    try:
        key = query_key(engine, request)
    except Unkeyable as exc:
        raise CacheMissError(f"{exc} in query {preview} has no stable cache key, so it cannot be "
                             "replayed") from None
    started = time.perf_counter()
    try:
        loaded = store.load(key)
    except CorruptEntry as exc:
        raise CacheMissError(f"the entry for query {preview} in replay folder {folder} is damaged "
                             f"({exc}); it is not served") from None
    except UntrustedStore as exc:
        raise CacheMissError(f"the entry for query {preview} in replay folder {folder} cannot be served: "
                             f"{exc}") from None
    if loaded is None:
        raise CacheMissError(f"no entry for query {preview} in replay folder {folder}",
                             hint="Replay serves only queries that ran (with caching on) before "
                                  "%kql --cache export; this one is new or changed. "
                                  "Use --replay off to run it on an engine.")
    meta, table, _ = loaded
    problem = _check_entry(meta, table, key)
    if problem:
        raise CacheMissError(f"the entry for query {preview} in replay folder {folder} cannot be "
                             f"served: {problem}")
    result = _result_from_entry(meta, table, request, time.perf_counter() - started)
    result.stats["cache"] = {"key": key, "path": store.file_for(key), "replay": folder}
    session.replayed += 1
    session.used[key] = store.file_for(key)
    return result


def _preview(query: str, width: int = 80) -> str:
    text = " ".join(query.split())
    return repr(text if len(text) <= width else text[: width - 3] + "...")
