"""A folder of cache entries: read, write, list, evict, clear, export.

Entries are ``<key>.kqlc`` files (see :mod:`kqlmagic_plus.cache_format`) in one flat folder that
only the user can enter (0700; files 0600). Several kernels may share the folder: every change is a
rename or an unlink of a whole file, so concurrent writers of one key end with the last complete
file, and a reader holding an open file keeps reading it even if it is replaced or evicted.

The file's mtime is its last use: a hit touches it, and eviction removes the least recently used
entries first once the folder is over its size cap.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cache_format import SUFFIX, TMP_PREFIX, CorruptEntry, decode, read_file, read_meta, write_atomic

if TYPE_CHECKING:
    import pyarrow as pa

#: Subfolder of ``cache_dir`` holding entries of this format.
ENTRIES_SUBDIR = "results-v1"
#: A temp file older than this belongs to a writer that died; it is swept.
STALE_TMP_SECONDS = 3600
#: Eviction frees down to this fraction of the cap, so it does not run on every store.
EVICT_TO = 0.9


@dataclass(frozen=True)
class FileInfo:
    key: str
    path: str
    size: int
    last_used: float


class ResultStore:
    """The entries in one folder."""

    def __init__(self, path: str):
        self.path = os.path.abspath(os.path.expanduser(path))

    @classmethod
    def for_cache_dir(cls, cache_dir: str) -> ResultStore:
        return cls(os.path.join(os.path.expanduser(cache_dir), ENTRIES_SUBDIR))

    @classmethod
    def for_folder(cls, folder: str) -> ResultStore:
        """An export folder (entries at the top) or a whole cache dir (entries in ``results-v1``)."""
        folder = os.path.expanduser(folder)
        inner = os.path.join(folder, ENTRIES_SUBDIR)
        return cls(inner if os.path.isdir(inner) else folder)

    def file_for(self, key: str) -> str:
        return os.path.join(self.path, key + SUFFIX)

    # -- setup -------------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the folder (and missing parents) readable by the user only."""
        parent = os.path.dirname(self.path)
        if not os.path.isdir(parent):
            os.makedirs(parent, mode=0o700, exist_ok=True)
            _private(parent)
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        _private(self.path)

    # -- entries -----------------------------------------------------------------------------------

    def load(self, key: str) -> tuple[dict[str, Any], pa.Table, os.stat_result] | None:
        """The verified entry for *key*, or None when there is none. Raises :class:`CorruptEntry`."""
        try:
            return read_file(self.file_for(key))
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise CorruptEntry("is a directory") from None

    def discard(self, key: str, read: os.stat_result | None) -> None:
        """Remove the entry file, unless another writer has replaced it since it was *read*."""
        path = self.file_for(key)
        try:
            st = os.stat(path)
            if read is None or (st.st_ino, st.st_dev) == (read.st_ino, read.st_dev):
                os.unlink(path)
        except OSError:
            pass

    def store(self, key: str, chunks: list[Any]) -> str:
        """Publish an encoded entry (:func:`~kqlmagic_plus.cache_format.encode`) atomically.
        Raises OSError (full disk, read-only folder)."""
        self.ensure()
        return write_atomic(self.path, key + SUFFIX, chunks)

    def copy_in(self, src: str, key: str) -> str:
        """Copy a verified entry file into this folder under *key*. Raises CorruptEntry / OSError."""
        with open(src, "rb") as f:
            data = f.read()
        meta, _ = decode(data)
        if meta.get("key") != key:
            raise CorruptEntry("the entry belongs to another key")
        self.ensure()
        return write_atomic(self.path, key + SUFFIX, [data])

    def touch(self, key: str) -> None:
        # Evicted meanwhile, or a read-only replay folder: the hit stands either way.
        with contextlib.suppress(OSError):
            os.utime(self.file_for(key))

    # -- the folder --------------------------------------------------------------------------------

    def files(self) -> list[FileInfo]:
        out = []
        try:
            it = os.scandir(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        with it:
            for e in it:
                if not e.name.endswith(SUFFIX) or e.name.startswith("."):
                    continue
                try:
                    st = e.stat()
                except FileNotFoundError:
                    continue
                out.append(FileInfo(e.name[:-len(SUFFIX)], e.path, st.st_size, st.st_mtime))
        return out

    def entries(self) -> list[tuple[FileInfo, dict[str, Any] | None]]:
        """Every entry with its header metadata (None when the header is unreadable)."""
        out = []
        for info in self.files():
            try:
                meta: dict[str, Any] | None = read_meta(info.path)
            except (OSError, CorruptEntry):
                meta = None
            out.append((info, meta))
        return out

    def total_bytes(self) -> int:
        return sum(f.size for f in self.files())

    def evict(self, max_bytes: int, keep: str | None = None) -> list[str]:
        """Remove least-recently-used entries until the folder is under *max_bytes* (down to
        ``EVICT_TO`` of it); never the entry *keep* (just written). Returns the keys removed."""
        self.sweep_tmp()
        files = self.files()
        total = sum(f.size for f in files)
        if total <= max_bytes:
            return []
        goal = int(max_bytes * EVICT_TO)
        removed = []
        for f in sorted(files, key=lambda f: f.last_used):
            if total <= goal:
                break
            if f.key == keep:
                continue
            try:
                os.unlink(f.path)
            except FileNotFoundError:
                pass  # another kernel evicted it first; it is gone either way
            except OSError:
                continue
            total -= f.size
            removed.append(f.key)
        return removed

    def sweep_tmp(self, older_than: float = STALE_TMP_SECONDS) -> int:
        """Remove temp files left by writers that died (a live writer's file is younger)."""
        n = 0
        cutoff = time.time() - older_than
        try:
            it = os.scandir(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return 0
        with it:
            for e in it:
                if not e.name.startswith(TMP_PREFIX):
                    continue
                try:
                    if e.stat().st_mtime < cutoff:
                        os.unlink(e.path)
                        n += 1
                except OSError:
                    pass
        return n

    def clear(self, computed_before: float | None = None) -> tuple[int, int]:
        """Remove entries (all, or those computed before the epoch second *computed_before*) and
        any temp files. Returns (entries removed, bytes freed)."""
        from datetime import datetime

        n = freed = 0
        for info, meta in self.entries():
            if computed_before is not None and meta is not None:
                try:
                    computed = datetime.fromisoformat(meta["computed_at"]).timestamp()
                except (KeyError, TypeError, ValueError):
                    computed = 0.0
                if computed >= computed_before:
                    continue
            try:
                os.unlink(info.path)
            except OSError:
                continue
            n += 1
            freed += info.size
        # A minute's grace: a temp file that young may belong to a kernel writing right now.
        self.sweep_tmp(older_than=60 if computed_before is None else STALE_TMP_SECONDS)
        return n, freed


def _private(path: str) -> None:
    """0700 on a folder this user owns (never chmod a folder someone else set up)."""
    try:
        if os.stat(path).st_uid == os.getuid():
            os.chmod(path, 0o700)
    except OSError:
        pass
