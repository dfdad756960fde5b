"""One cache entry as one file: JSON metadata, the rows as Parquet, and a checksum over both.

Layout (``<key>.kqlc``)::

    b"KQLMPC2\\n"                 8 bytes, format and version
    meta length                  4 bytes, little-endian
    meta                         UTF-8 JSON: query, target, computed_at, now, kql_types, ...
    payload length               8 bytes, little-endian
    payload                      a complete Parquet file (lz4); every field carries its
                                 ``kql_type`` in the Arrow field metadata, as in a live Result
    digest                       16 bytes, XXH3-128 of everything above (version 1: 32 bytes,
                                 SHA-256; still read)

One file means one rename publishes an entry whole: a reader sees the old file or the new one,
never a mix. The digest makes anything else visible: a truncated copy, a flipped bit, a torn write
after a power loss (entries are not fsync'ed; the check is what makes that safe). XXH3 checks a
100 MB entry in 5 ms where SHA-256 took 60: the check runs on every hit from disk, and it is there
to catch damage; nothing in an entry is executable (no pickle, and pyarrow's Parquet reader is
built for untrusted files), so a forged entry gains nothing a hand-written Parquet file would not.

Reading is bounded: an entry is opened without following a symbolic link and without blocking (a
FIFO is refused, not waited on), and the rows it decodes to may take at most
:func:`decode_budget` bytes of memory (a few kB of Parquet can say "this 1 MB string, a thousand
times"): the Parquet footer and each column's dictionary are checked before anything is decoded.
The writer holds itself to the same bound, so every entry it writes reads back.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import stat
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

MAGIC = b"KQLMPC2\n"
#: The first format: the same layout with a SHA-256 digest.
MAGIC_V1 = b"KQLMPC1\n"
SUFFIX = ".kqlc"
TMP_PREFIX = ".tmp-"
_DIGEST_SIZE = {MAGIC: 16, MAGIC_V1: 32}
_MIN_SIZE = len(MAGIC) + 4 + 8 + 16
#: Metadata larger than this is not ours (guards the header read of `--cache list`).
_MAX_META = 16 * 1024 * 1024
#: Decoded rows may take this much memory at least, and DECODE_RATIO times the entry's size (see decode_budget).
DECODE_FLOOR = 64 * 1024**2
DECODE_RATIO = 256
#: What the writer uses; a codec or encoding that can expand further is not read.
_CODECS = frozenset({"LZ4", "LZ4_RAW", "SNAPPY", "UNCOMPRESSED"})
_ENCODINGS = frozenset({"PLAIN", "RLE", "RLE_DICTIONARY", "PLAIN_DICTIONARY", "BIT_PACKED"})
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


def _hasher(magic: bytes) -> Any:
    """The digest of an entry of format *magic*."""
    if magic == MAGIC_V1:
        return hashlib.sha256()
    import xxhash

    return xxhash.xxh3_128()


class CorruptEntry(Exception):
    """The file is not a complete, intact entry. The message says what is wrong with it."""

    #: The stat of the file found corrupt (set by :func:`read_file`), to discard exactly that file.
    stat: os.stat_result | None = None


class UntrustedStore(Exception):
    """A cache folder or entry someone else could have written (another owner, a group- or
    world-writable mode, a symbolic link, not a regular file). The message is one line naming it."""


class EntryTooLarge(ValueError):
    """The rows would decode to more memory than an entry of their size may take (:func:`decode_budget`)."""


def decode_budget(entry_size: int) -> int:
    """Bytes of memory the rows of an entry of *entry_size* bytes may decode to."""
    return max(DECODE_FLOOR, DECODE_RATIO * entry_size)


def untrusted_reason(path: str, st: os.stat_result) -> str | None:
    """Why *st* (of *path*) is not a file or folder only this user can have written, or None."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # Windows: the per-user profile folder is private already
        return None
    if st.st_uid not in (getuid(), 0):
        return f"{path} is owned by uid {st.st_uid}, not by you (uid {getuid()})"
    if stat.S_IMODE(st.st_mode) & 0o022:
        by = "its group and everyone" if st.st_mode & 0o022 == 0o022 else \
             "its group" if st.st_mode & 0o020 else "everyone"
        return f"{path} is writable by {by} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def open_entry(path: str, *, private: bool = True) -> tuple[Any, os.stat_result]:
    """Open an entry file for reading: never through a symbolic link, never blocking (a FIFO, a
    device), and, in the user's own cache (*private*), only a file this user wrote and no one else
    can write. Returns (binary file, its stat). Raises :class:`UntrustedStore`, OSError."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UntrustedStore(f"{path} is not a regular file (a symbolic link)") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode) else \
                   "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
            raise UntrustedStore(f"{path} is not a regular file ({kind})")
        reason = untrusted_reason(path, st) if private else None
        if reason:
            raise UntrustedStore(reason)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def encode(meta: dict[str, Any], table: pa.Table) -> tuple[bytes, Any, bytes]:
    """(header, payload, digest) ready to be written in that order."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    # Written for fast reads, since hits are what matter: lz4 decompresses several times faster than
    # zstd; dictionary pages (pyarrow 26) decode ~30 % faster than plain strings, in 40 % fewer bytes.
    pq.write_table(table, sink, compression="lz4", use_dictionary=True)
    payload = sink.getvalue()
    meta_bytes = json.dumps(meta, sort_keys=True, ensure_ascii=False).encode()
    header = MAGIC + struct.pack("<I", len(meta_bytes)) + meta_bytes + struct.pack("<Q", payload.size)
    # Held to the reader's bound, so that every entry written reads back.
    need, budget = decoded_size(table), decode_budget(len(header) + payload.size + _DIGEST_SIZE[MAGIC])
    if need > budget:
        raise EntryTooLarge(f"its rows take {_mb(need)} of memory and compress to {_mb(payload.size)}, more than "
                            f"an entry that size may expand to when read back ({_mb(budget)})")
    h = _hasher(MAGIC)
    h.update(header)
    h.update(payload)
    return header, payload, h.digest()


def decode(data: bytes | memoryview) -> tuple[dict[str, Any], pa.Table]:
    """Verify and unpack a whole entry file. Raises :class:`CorruptEntry`."""
    view = memoryview(data)
    meta, payload_at, payload_len = _parse_header(view)
    magic = bytes(view[:len(MAGIC)])
    end = payload_at + payload_len
    size = _DIGEST_SIZE[magic]
    if len(view) != end + size:
        raise CorruptEntry(f"size is {len(view)} bytes, the header says {end + size}")
    h = _hasher(magic)
    h.update(view[:end])
    if h.digest() != bytes(view[end:]):
        raise CorruptEntry("checksum mismatch")
    rows = meta.get("rows")
    try:
        table = read_bounded(view[payload_at:end], decode_budget(len(view)),
                             rows if isinstance(rows, int) and not isinstance(rows, bool) else None)
    except CorruptEntry:
        raise
    except Exception as exc:  # the digest matched, so this is a writer bug, still not servable
        raise CorruptEntry(f"unreadable Parquet payload ({type(exc).__name__})") from None
    return meta, table


# -- decoding within a memory bound ----------------------------------------------------------------------

def decoded_size(table: pa.Table) -> int:
    """The bytes *table*'s columns take decoded (values, offsets, validity), as :func:`read_bounded` counts."""
    import pyarrow.compute as pc

    total = 0
    for field, col in zip(table.schema, table.columns, strict=True):
        n = len(col)
        total += _fixed_bytes(field.type, n)
        if _is_bytes(field.type) and n:
            total += int(pc.sum(pc.binary_length(col)).as_py() or 0)
    return total


def read_bounded(payload: Any, budget: int, rows: int | None) -> pa.Table:
    """The Parquet *payload* as a table, refused (:class:`CorruptEntry`) before decoding when it would
    take more than *budget* bytes of memory or holds other than *rows* rows.

    The footer gives rows, columns, codecs and encodings; for each string column the dictionary (read
    alone, a few kB) gives its longest value, so ``rows x longest`` bounds what its dictionary-coded
    rows expand to, and the column's page bytes bound its plain ones. Within the budget the file is
    read as usual; over it (a long value among short ones), string columns are read as dictionaries and
    their exact decoded size summed first."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = pa.py_buffer(payload)
    pf = pq.ParquetFile(pa.BufferReader(buf))
    md, schema = pf.metadata, pf.schema_arrow
    if rows is not None and md.num_rows != rows:
        raise CorruptEntry(f"it holds {md.num_rows} rows, its metadata says {rows}")
    if any(not _flat(f.type) for f in schema):
        raise CorruptEntry("its columns are not in canonical form")
    strings = [f.name for f in schema if _is_bytes(f.type)]
    estimate = sum(_fixed_bytes(f.type, md.num_rows) for f in schema)
    if estimate > budget:  # values, offsets and validity alone (a column of nulls costs the file nothing)
        raise _too_large(budget)
    dict_reader = pq.ParquetFile(pa.BufferReader(buf), read_dictionary=strings, pre_buffer=False) if strings \
        else None
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        for j in range(rg.num_columns):
            col = rg.column(j)
            if col.compression not in _CODECS or not set(col.encodings) <= _ENCODINGS:
                raise CorruptEntry(f"its Parquet uses {col.compression} / {', '.join(col.encodings)}, "
                                   "which this cache does not write")
            if _is_bytes(schema.field(j).type):
                estimate += col.total_uncompressed_size
        if dict_reader is not None and rg.num_rows:
            first = next(dict_reader.iter_batches(batch_size=1, row_groups=[i], columns=strings, use_threads=False))
            for arr in first.columns:
                longest = _longest(arr.dictionary)
                estimate += rg.num_rows * longest
    if estimate <= budget:
        return pf.read()
    return _read_exact(dict_reader, schema, budget)


def _read_exact(reader: Any, schema: Any, budget: int) -> pa.Table:
    """Row group by row group, string columns as dictionaries: their decoded size is summed from the
    dictionary's value lengths before any is expanded."""
    import pyarrow as pa
    import pyarrow.compute as pc

    used = 0
    parts = []
    for i in range(reader.metadata.num_row_groups):
        group = reader.read_row_group(i)
        columns = []
        for field, col in zip(schema, group.columns, strict=True):
            used += _fixed_bytes(field.type, len(col))
            if pa.types.is_dictionary(col.type):
                for chunk in col.chunks:
                    lengths = pc.binary_length(chunk.dictionary)
                    used += int(pc.sum(pc.take(lengths, chunk.indices)).as_py() or 0) if len(lengths) else 0
                if used > budget:
                    break
                col = pa.chunked_array([c.dictionary_decode() for c in col.chunks], field.type)
            columns.append(col)
        if used > budget:
            raise _too_large(budget)
        parts.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _too_large(budget: int) -> CorruptEntry:
    return CorruptEntry(f"its rows would take more than {_mb(budget)} of memory, more than an entry of its size "
                        "may hold")


def _mb(n: float) -> str:
    return f"{n / 1e3:,.1f} kB" if n < 1e6 else f"{n / 1e6:,.1f} MB"


def _longest(dictionary: Any) -> int:
    import pyarrow.compute as pc

    if not len(dictionary):
        return 0
    return int(pc.max(pc.binary_length(dictionary)).as_py() or 0)


def _flat(t: Any) -> bool:
    import pyarrow as pa

    return (pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)
            or pa.types.is_temporal(t) or pa.types.is_null(t) or _is_bytes(t))


def _is_bytes(t: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or \
        pa.types.is_large_binary(t)


def _fixed_bytes(t: Any, n: int) -> int:
    """Validity bits plus offsets (string columns) or values (fixed-width ones) of *n* rows."""
    import pyarrow as pa

    validity = (n + 7) // 8
    if _is_bytes(t):
        return validity + (n + 1) * (8 if pa.types.is_large_string(t) or pa.types.is_large_binary(t) else 4)
    if pa.types.is_null(t):
        return 0
    return validity + (n * t.bit_width + 7) // 8


def _parse_header(view: memoryview) -> tuple[dict[str, Any], int, int]:
    if len(view) < _MIN_SIZE:
        raise CorruptEntry(f"only {len(view)} bytes")
    if bytes(view[:len(MAGIC)]) not in _DIGEST_SIZE:
        raise CorruptEntry("not a kqlmagic_plus cache entry (bad magic)")
    at = len(MAGIC)
    (meta_len,) = struct.unpack_from("<I", view, at)
    at += 4
    if meta_len > _MAX_META or at + meta_len + 8 > len(view):
        raise CorruptEntry("metadata length out of range")
    try:
        meta = json.loads(bytes(view[at:at + meta_len]).decode())
    except ValueError:
        raise CorruptEntry("metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CorruptEntry("metadata is not an object")
    at += meta_len
    (payload_len,) = struct.unpack_from("<Q", view, at)
    return meta, at + 8, payload_len


def read_meta(path: str, *, private: bool = True) -> dict[str, Any]:
    """The metadata of an entry, from its header only (for listings; not verified). Opened as
    :func:`open_entry` opens it."""
    f, _ = open_entry(path, private=private)
    with f:
        head = f.read(len(MAGIC) + 4)
        if len(head) < len(MAGIC) + 4 or head[:len(MAGIC)] not in _DIGEST_SIZE:
            raise CorruptEntry("bad header")
        (meta_len,) = struct.unpack_from("<I", head, len(MAGIC))
        if meta_len > _MAX_META:
            raise CorruptEntry("metadata length out of range")
        raw = f.read(meta_len)
    try:
        meta = json.loads(raw.decode())
    except ValueError:
        raise CorruptEntry("metadata is not valid JSON") from None
    if not isinstance(meta, dict):
        raise CorruptEntry("metadata is not an object")
    return meta


def read_file(path: str, *, private: bool = True) -> tuple[dict[str, Any], pa.Table, os.stat_result]:
    """Read and verify one entry file (opened as :func:`open_entry` opens it); also returns the stat
    of the file that was read (so a caller discarding it can check it is still the same file)."""
    f, st = open_entry(path, private=private)
    with f:
        data = f.read()
    try:
        meta, table = decode(data)
    except CorruptEntry as exc:
        exc.stat = st
        raise
    return meta, table, st


def write_atomic(directory: str, name: str, chunks: Iterable[Any]) -> tuple[str, os.stat_result]:
    """Write *chunks* to ``directory/name`` so that the name appears only with the complete content.

    The bytes go to a private temp file (0600, ``O_EXCL``) in the same directory, which is then
    renamed over the name. A crash leaves at most a ``.tmp-*`` file, which is never read as an entry
    and is swept later. On error (a full disk) the temp file is removed and the OSError raised.
    Returns the path and the stat of the file written (taken before the rename, so it describes
    this writer's file even if another one replaces it at once).
    """
    tmp = os.path.join(directory, f"{TMP_PREFIX}{name[:24]}-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            st = os.fstat(f.fileno())
        final = os.path.join(directory, name)
        os.replace(tmp, final)
        return final, st
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
