"""What identifies a cached result: the query key, the source fingerprint, and relative time.

Three things are derived from a request here, each for one question:

* :func:`query_key` — *is this the same query?* A SHA-256 over the engine target (never
  credentials), the normalized query text, the parameter values, the time window (its absolute
  bounds, or its span when it is relative to ``now``) and the options that change rows. It names
  the entry file, and it is all replay needs, so it must not depend on anything local.
* :func:`source_fingerprint` — *is the data the same?* A digest of the local inputs the query
  reads: DataFrames/Arrow tables from the namespace (their full content), mounted files and the
  DuckDB database file (path, size, mtime). Stored in the entry and compared on lookup, but not
  in replay, where those inputs are gone by design.
* :func:`uses_relative_time` — does the answer depend on when it ran (``ago()``, ``now()``, a
  ``--timespan`` window)? See :mod:`kqlmagic_plus.cache.modes` for how such entries age.

Values that have no stable encoding raise :class:`Unkeyable`: the query then runs uncached, as a
wrong hit is worse than a miss.
"""

from __future__ import annotations

import datetime as dt
import decimal
import glob
import hashlib
import itertools
import json
import os
import uuid
from collections.abc import Mapping
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
        "params": {str(k): encode(v) for k, v in sorted(request.params.items(), key=lambda kv: str(kv[0]))},
        "window": window_key(request),
        "options": {str(k): encode(v) for k, v in sorted(request.options.items(), key=lambda kv: str(kv[0]))
                    if k not in CONTROL_OPTIONS},
    }
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


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

def source_fingerprint(engine: Engine, request: Request) -> str:
    """Digest of the local data the query may read (see the module docstring)."""
    from kqlmagic_plus.language.aliases import referenced_names

    names = referenced_names(request.query)
    h = hashlib.sha256()
    ns = request.namespace or {}
    for name in sorted(n for n in names if n in ns):
        table = as_arrow(ns[name])
        if table is not None:
            h.update(f"ns:{name}:{table_digest(table)}\n".encode())
    hook = getattr(engine, "cache_inputs", None)
    if callable(hook):
        h.update(canonical_json(encode(hook(request))).encode())
    else:
        mounts = getattr(engine, "_mounts", None) or {}
        for name in sorted(n for n in mounts if n in names):
            h.update(f"mount:{name}:{_files_digest(mounts[name])}\n".encode())
        db = getattr(engine, "_db", None)
        if db:
            for path in (db, db + ".wal"):
                h.update(f"db:{_stat_line(path)}\n".encode())
    return h.hexdigest()


def _stat_line(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{os.path.abspath(path)}:absent"
    return f"{os.path.abspath(path)}:{st.st_size}:{st.st_mtime_ns}"


def _files_digest(path: str) -> str:
    expanded = os.path.expanduser(path)
    if os.path.isdir(expanded):
        files = glob.glob(os.path.join(expanded, "**", "*"), recursive=True)
    else:
        files = glob.glob(expanded, recursive=True)
    h = hashlib.sha256()
    for f in sorted(files):
        if os.path.isfile(f):
            h.update(_stat_line(f).encode() + b"\n")
    return h.hexdigest()


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
