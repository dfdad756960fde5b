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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
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
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.ParquetFile(pa.BufferReader(pa.py_buffer(view[payload_at:end]))).read()
    except Exception as exc:  # the digest matched, so this is a writer bug, still not servable
        raise CorruptEntry(f"unreadable Parquet payload ({type(exc).__name__})") from None
    return meta, table


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


def read_meta(path: str) -> dict[str, Any]:
    """The metadata of an entry, from its header only (for listings; not verified)."""
    with open(path, "rb") as f:
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


def read_file(path: str) -> tuple[dict[str, Any], pa.Table, os.stat_result]:
    """Read and verify one entry file; also returns the stat of the file that was read (so a caller
    discarding it can check it is still the same file)."""
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
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
