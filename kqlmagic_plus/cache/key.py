"""What identifies a cached result: the query key, the source fingerprint, and relative time.

Three things are derived from a request here, each for one question:

* :func:`query_key` — *is this the same query?* A SHA-256 over the engine target (never
  credentials), the normalized query text, the parameter values, the time window (its absolute
  bounds, or its span when it is relative to ``now``) and the options that change rows. It names
  the entry file, and it is all replay needs, so it must not depend on anything local.
* :func:`source_fingerprint` — *is the data the same?* A digest of the local inputs the query
  reads: DataFrames/Arrow tables from the namespace (their full content), and the files its engine
  resolves the query's table names to (``Engine.cache_inputs``: mounted files, the lake blobs of the
  query's window, the DuckDB database file) by path, size, mtime, ctime and inode; a file changed
  too recently for those to tell the next change apart is digested by content as well. Stored in the
  entry and compared on lookup, but not in replay, where those inputs are gone by design.
* :func:`uses_relative_time` — does the answer depend on when it ran (``ago()``, ``now()``, a
  ``--timespan`` window)? See :mod:`kqlmagic_plus.cache.modes` for how such entries age.

Values that have no stable encoding raise :class:`Unkeyable`: the query then runs uncached, as a
wrong hit is worse than a miss.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import itertools
import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kqlmagic_plus.engines.base import Engine
    from kqlmagic_plus.request import Request

#: Bumped when the key derivation changes, so old entries are never matched by new rules.
KEY_VERSION = 1

#: Request options that steer the cache itself and never change rows.
CONTROL_OPTIONS = frozenset({"cache", "no_cache", "refresh", "replay"})


class Unkeyable(Exception):
    """A request input has no stable encoding; the cache steps aside for this query."""


# -- canonical encoding ------------------------------------------------------------------------------

def encode(value: Any) -> Any:
    """A JSON-ready form of *value* that is equal for equal values and tags types that JSON would merge
    (``1`` vs ``True``, naive vs aware datetimes, str vs bytes). Decoded by :func:`decode`."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return {"$f": repr(float(value))}
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return {"$dt": value.astimezone(dt.UTC).isoformat()}
        return {"$ndt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, dt.time):
        return {"$time": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": bytes(value).hex()}
    if isinstance(value, Mapping):
        return {"$map": sorted(([str(k), encode(v)] for k, v in value.items()), key=lambda kv: kv[0])}
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, set | frozenset):
        items = [encode(v) for v in value]
        return {"$set": sorted(items, key=lambda v: json.dumps(v, sort_keys=True))}
    item = getattr(value, "item", None)
    mod = type(value).__module__.split(".")[0]
    if mod == "numpy" and callable(item) and getattr(value, "ndim", 1) == 0:
        return encode(item())
    if mod in ("numpy", "pandas") and hasattr(value, "tolist") and type(value).__name__ != "DataFrame":
        return [encode(v) for v in value.tolist()]
    if mod == "pandas" and type(value).__name__ in ("NaTType", "NAType"):
        return {"$null": type(value).__name__}
    table = as_arrow(value)
    if table is not None:
        return {"$table": table_digest(table)}
    raise Unkeyable(f"a value of type {type(value).__name__}")


def decode(value: Any) -> Any:
    """Inverse of :func:`encode` for everything but tables (which decode to their digest text)."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict) or len(value) != 1:
        return value
    (tag, v), = value.items()
    try:
        return _decode_tagged(tag, v, value)
    except (TypeError, ValueError, IndexError, decimal.InvalidOperation):
        return value


def _decode_tagged(tag: str, v: Any, value: dict[str, Any]) -> Any:
    if tag == "$f":
        return float(v)
    if tag == "$dt":
        return dt.datetime.fromisoformat(v)
    if tag == "$ndt":
        return dt.datetime.fromisoformat(v)
    if tag == "$date":
        return dt.date.fromisoformat(v)
    if tag == "$time":
        return dt.time.fromisoformat(v)
    if tag == "$td":
        return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])
    if tag == "$dec":
        return decimal.Decimal(v)
    if tag == "$uuid":
        return uuid.UUID(v)
    if tag == "$bytes":
        return bytes.fromhex(v)
    if tag == "$map":
        return {k: decode(x) for k, x in v}
    if tag == "$set":
        return {_hashable(decode(x)) for x in v}
    if tag == "$null":
        return None
    if tag == "$table":
        return f"<table {v[:12]}>"
    return value


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True)


# -- the key ---------------------------------------------------------------------------------------------

def query_key(engine: Engine, request: Request) -> str:
    """The hex key naming the entry for *request* on *engine* (see the module docstring)."""
    from kqlmagic_plus.language.lexer import normalize

    parts = {
        "v": KEY_VERSION,
        "target": engine.target,
        "query": normalize(request.query),
        "params": {str(k): param_key(v) for k, v in sorted(request.params.items(), key=lambda kv: str(kv[0]))},
        "window": window_key(request),
        "options": {str(k): encode(v) for k, v in sorted(request.options.items(), key=lambda kv: str(kv[0]))
                    if k not in CONTROL_OPTIONS},
    }
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def param_key(value: Any) -> Any:
    """A parameter as the key sees it: what it binds as, ``[KQL type, exact KQL literal]``.

    Values that bind differently never share a key (``np.int32(5)`` binds an int, ``5`` a long;
    ``np.float32(0.1)`` is not ``0.1``; two pandas Timestamps 100 ns apart differ), and equal values
    that bind the same do (``5`` and ``np.int64(5)``; a naive datetime, the same instant as an aware
    one and as a pandas Timestamp; a list and a tuple). Tables key by their content digest; a value
    that cannot bind keys by its Python form (the query then fails with the reason).
    """
    from kqlmagic_plus.errors import ParameterError
    from kqlmagic_plus.language import literals

    try:
        kql_type = literals.infer_type(value)
        if kql_type == "tabular":
            return encode(value)
        return [kql_type, literals.encode(value, kql_type)]
    except ParameterError:
        return {"$unbound": encode(value)}


def window_key(request: Request) -> Any:
    """A window relative to the pinned ``now`` (``--timespan``) is keyed by its span, so it can hit
    again; an absolute one (``--start/--end``) by its bounds."""
    w = request.window
    if w is None:
        return None
    if is_relative_window(request):
        return {"span_us": _us(w.end - w.start) if w.start else None}
    return {"start": w.start.isoformat() if w.start else None, "end": w.end.isoformat() if w.end else None}


def is_relative_window(request: Request) -> bool:
    w = request.window
    return w is not None and request.now is not None and w.end is not None and w.end == request.now


def _us(td: dt.timedelta) -> int:
    return (td.days * 86_400 + td.seconds) * 1_000_000 + td.microseconds


def uses_relative_time(request: Request) -> bool:
    """True when the rows depend on the instant the query runs: ``ago()``/``now()`` in the query text
    (tokens, so a string or comment saying "now(" does not count) or a window ending at ``now``."""
    from kqlmagic_plus.language.lexer import significant, tokenize

    if is_relative_window(request):
        return True
    toks = significant(tokenize(request.query))
    for a, b in itertools.pairwise(toks):
        if a.kind == "ident" and a.text.lower() in ("ago", "now") and b.text == "(":
            return True
    return False


def is_control_command(query: str) -> bool:
    """Management commands (``.show``, ``.create``...) read or change state; they are never cached."""
    from kqlmagic_plus.language.lexer import significant, tokenize

    toks = significant(tokenize(query))
    return bool(toks) and toks[0].text == "."


# -- local inputs ----------------------------------------------------------------------------------------

#: A file changed less than this long before it is fingerprinted may change again without its size or
#: times showing it: file-system clocks tick coarsely (a jiffy on Linux, 2 s on FAT; an NFS server's
#: clock may run behind). Its content is digested as well (:func:`recent_contents`).
SETTLE_SECONDS = 2.0
#: Recently changed input files are digested up to this many bytes in all; beyond it the result is not stored.
RECENT_DIGEST_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class InputFiles:
    """What a query reads, as its engine resolves the names in it (``Engine.cache_inputs``).

    *groups* maps a label (``"mount:Flows"``, ``"lake:SigninLogs"``, ``"db"``) to the files behind it
    (a superset of what the query reads is fine: it only costs a miss); each is fingerprinted by path,
    size, mtime, ctime and inode, never by content. *state* is anything else of the engine's that
    decides rows (an encodable value)."""

    groups: Mapping[str, Sequence[str]]
    state: Any = None


@dataclass(frozen=True)
class Sources:
    """The fingerprint of a query's inputs: *digest* to compare, and the *recent* files (changed
    within :data:`SETTLE_SECONDS`) whose stat cannot tell a next change apart."""

    digest: str
    recent: tuple[str, ...] = ()


def source_fingerprint(engine: Engine, request: Request) -> Sources:
    """The fingerprint of the local data *request* reads on *engine* (see the module docstring)."""
    from kqlmagic_plus.language.aliases import referenced_names

    names = referenced_names(request.query)
    h = hashlib.sha256()
    ns = request.namespace or {}
    for name in sorted(n for n in names if n in ns):
        table = as_arrow(ns[name])
        if table is not None:
            h.update(f"ns:{name}:{table_digest(table)}\n".encode())
    recent: list[str] = []
    hook = getattr(engine, "cache_inputs", None)
    inputs = hook(request) if callable(hook) else None
    if isinstance(inputs, InputFiles):
        settled_before = time.time_ns() - int(SETTLE_SECONDS * 1e9)
        for label in sorted(inputs.groups):
            h.update(f"{label}:\n".encode())
            for path in sorted(set(inputs.groups[label])):
                line, changed_ns = _stamp(path)
                h.update(line.encode() + b"\n")
                if changed_ns > settled_before:
                    recent.append(os.path.abspath(path))
        inputs = inputs.state
    if inputs is not None:
        h.update(canonical_json(encode(inputs)).encode())
    return Sources(h.hexdigest(), tuple(sorted(set(recent))))


def _stamp(path: str) -> tuple[str, int]:
    """(the line fingerprinting *path*, when it last changed in ns). The change time (ctime) is set by
    the kernel on every write and cannot be set back, unlike the mtime (``cp -p``, ``rsync -t``, a
    restore); the inode tells a file replaced by rename."""
    full = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError:
        return f"{full}:absent", 0
    line = f"{full}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"
    return line, max(st.st_mtime_ns, st.st_ctime_ns)


def recent_contents(paths: Sequence[str]) -> dict[str, str] | None:
    """XXH3-128 of each file's content (``"absent"`` for a missing one), for the files a fingerprint
    found changed just now; None when they are more than :data:`RECENT_DIGEST_BYTES` in all."""
    import xxhash

    out: dict[str, str] = {}
    budget = RECENT_DIGEST_BYTES
    for path in paths:
        h = xxhash.xxh3_128()
        try:
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    budget -= len(chunk)
                    if budget < 0:
                        return None
                    h.update(chunk)
        except OSError:
            out[path] = "absent"
            continue
        out[path] = h.hexdigest()
    return out


def contents_unchanged(contents: Mapping[str, str] | None) -> bool:
    """True when every file of *contents* (:func:`recent_contents` at store time) still has that content."""
    if not contents:
        return True
    if not isinstance(contents, Mapping) or not all(isinstance(v, str) for v in contents.values()):
        return False
    now = recent_contents(list(contents))
    return now is not None and now == dict(contents)


def as_arrow(value: Any) -> Any:
    """The Arrow table behind a namespace value the local engine would read as a table, else None."""
    cls = type(value)
    mod = cls.__module__
    try:
        if cls.__name__ == "DataFrame" and mod.startswith("pandas"):
            import pyarrow as pa

            return pa.Table.from_pandas(value, preserve_index=False)
        if cls.__name__ == "DataFrame" and mod.startswith("polars"):
            return value.to_arrow()
    except Exception as exc:  # object columns pyarrow cannot read: no stable content digest
        raise Unkeyable(f"the DataFrame columns ({type(exc).__name__})") from None
    if cls.__name__ == "Table" and mod.startswith("pyarrow"):
        return value
    if cls.__name__ == "RecordBatch" and mod.startswith("pyarrow"):
        import pyarrow as pa

        return pa.Table.from_batches([value])
    if cls.__name__ == "Result" and mod.startswith("kqlmagic_plus"):
        return value.table
    return None


def table_digest(table: Any) -> str:
    """XXH3-128 over an Arrow table's schema and every buffer (with lengths and offsets, so buffer
    boundaries cannot alias). Equal digests mean equal content; equal content may still digest
    differently (other chunking), which only costs a miss.

    This runs on every lookup of a query that reads a DataFrame, so it must cost a fraction of the
    query: XXH3 hashes ~20 GB/s on one core (SHA-256: 1.7 GB/s with SHA-NI). It guards against
    changed data, not against an adversary forging a DataFrame in the user's own kernel; the key
    around it stays SHA-256.
    """
    import xxhash

    h = xxhash.xxh3_128()
    h.update(table.schema.remove_metadata().to_string().encode())
    h.update(f"|rows={table.num_rows}".encode())
    for col in table.columns:
        h.update(f"|col chunks={col.num_chunks}".encode())
        for chunk in col.chunks:
            _digest_array(h, chunk)
    return h.hexdigest()


def _digest_array(h: Any, arr: Any) -> None:
    import pyarrow as pa

    h.update(f"|arr {arr.type} off={arr.offset} len={len(arr)} nulls={arr.null_count}".encode())
    if pa.types.is_nested(arr.type):
        # Child arrays carry offsets of their own that buffers() does not show; the IPC form
        # writes the logical content.
        sink = pa.BufferOutputStream()
        batch = pa.record_batch([arr], names=["c"])
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        buf = sink.getvalue()
        h.update(f"|ipc {buf.size}:".encode())
        h.update(buf)
        return
    for buf in arr.buffers():
        if buf is None:
            h.update(b"|none")
        else:
            h.update(f"|buf {buf.size}:".encode())
            h.update(buf)
    # Dictionary arrays keep their dictionary outside buffers().
    dictionary = getattr(arr, "dictionary", None)
    if dictionary is not None:
        _digest_array(h, dictionary)
