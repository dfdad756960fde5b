"""A folder of cache entries: read, write, list, evict, clear, export.

Entries are ``<key>.kqlc`` files (see :mod:`kqlmagic_plus.cache.entry`) in one flat folder that
only the user can enter (0700; files 0600). Several kernels may share the folder: every change is a
rename or an unlink of a whole file, so concurrent writers of one key end with the last complete
file, and a reader holding an open file keeps reading it even if it is replaced or evicted.

The user's cache is trusted only while no one else can have written it, as ssh treats its key
files: the cache folder and its ``results-v1`` subfolder must be owned by the user (or root) and
writable by no group or other user, the subfolder a real folder (not a symbolic link), and each
entry a regular file of the same kind, opened without following links or blocking
(:func:`~kqlmagic_plus.cache.entry.open_entry`). Otherwise :class:`UntrustedStore` is raised and the
query runs without the cache, with one warning. The cache creates what is missing with private
modes and never changes the mode of a folder it did not create.

The file's mtime is its last use: a hit touches it, and eviction removes the least recently used
entries first once the folder is over its size cap.

Entries this process has verified (read and checksummed, or written itself) are remembered in
memory with the identity of their file (device, inode, size, mtime). A later load whose file still
has that identity is served from memory: re-running a cell costs a ``stat``, not a Parquet decode.
Any rewrite of the file (another kernel's write, a refresh, a clear) changes the identity, and the
file is read and verified again; damage that leaves it unchanged is not served either, as the rows
served are those verified earlier. The tables are immutable Arrow and shared with the Results the
notebook already holds, so remembering them costs little; the total is capped (``MEMORY_BYTES``).
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.cache.entry import (
    SUFFIX,
    TMP_PREFIX,
    CorruptEntry,
    UntrustedStore,
    decode,
    open_entry,
    read_file,
    read_meta,
    untrusted_reason,
    write_atomic,
)

if TYPE_CHECKING:
    import pyarrow as pa

#: Subfolder of ``cache_dir`` holding entries of this format.
ENTRIES_SUBDIR = "results-v1"
#: A temp file older than this belongs to a writer that died; it is swept.
STALE_TMP_SECONDS = 3600
#: Eviction frees down to this fraction of the cap, so it does not run on every store.
EVICT_TO = 0.9
#: Verified tables kept in memory, at most (Arrow bytes).
MEMORY_BYTES = 512 * 1024**2


@dataclass(frozen=True)
class FileInfo:
    key: str
    path: str
    size: int
    last_used: float


class ResultStore:
    """The entries in one folder. A *private* store (the user's cache) is used only while it is
    trusted (:meth:`check`); an export or replay folder is read and written as the user chose it."""

    def __init__(self, path: str, *, private: bool = False):
        self.path = os.path.abspath(os.path.expanduser(path))
        self.private = private

    @classmethod
    def for_cache_dir(cls, cache_dir: str) -> ResultStore:
        return cls(os.path.join(os.path.expanduser(cache_dir), ENTRIES_SUBDIR), private=True)

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
        """Create the folder and any missing parent, each 0700; a folder that exists keeps its mode.
        A private store is checked (:meth:`check`) after that. Raises OSError, UntrustedStore."""
        make_private_dirs(self.path)
        if self.private:
            self.check()

    def check(self) -> None:
        """Raise :class:`UntrustedStore` unless only this user can have written the store (a private
        one: the cache folder and its entries subfolder; see the module docstring). Missing is fine."""
        if not self.private:
            return
        parent = os.path.dirname(self.path)
        try:
            lst = os.lstat(parent)
            # The cache_dir setting may name a link (the user's own, or root's); the folder it leads to is checked.
            reason = _foreign_link(parent, lst) or untrusted_reason(parent, os.stat(parent))
        except FileNotFoundError:
            return
        if reason is None:
            try:
                st = os.lstat(self.path)
            except FileNotFoundError:
                return
            if stat.S_ISLNK(st.st_mode):
                reason = f"{self.path} is a symbolic link (to {os.readlink(self.path)}), not the cache's own folder"
            elif not stat.S_ISDIR(st.st_mode):
                reason = f"{self.path} is not a folder"
            else:
                reason = untrusted_reason(self.path, st)
        if reason:
            raise UntrustedStore(reason)

    # -- entries -----------------------------------------------------------------------------------

    def load(self, key: str) -> tuple[dict[str, Any], pa.Table, os.stat_result] | None:
        """The verified entry for *key*, or None when there is none. Raises :class:`CorruptEntry`,
        :class:`UntrustedStore` (a link, a FIFO..., or in a private store a file someone else can write)."""
        path = self.file_for(key)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            verified.drop(path)
            return None
        if stat.S_ISREG(st.st_mode) and not (self.private and untrusted_reason(path, st)):
            known = verified.get(path, st)
            if known is not None:
                return known[0], known[1], st
        try:
            meta, table, st = read_file(path, private=self.private)
        except FileNotFoundError:  # replaced or evicted between the stat and the open
            return None
        verified.put(path, st, meta, table)
        return meta, table, st

    def discard(self, key: str, read: os.stat_result | None) -> None:
        """Remove the entry file, unless another writer has replaced it since it was *read*."""
        path = self.file_for(key)
        verified.drop(path)
        try:
            st = os.stat(path)
            if read is None or (st.st_ino, st.st_dev) == (read.st_ino, read.st_dev):
                os.unlink(path)
        except OSError:
            pass

    def store(self, key: str, chunks: list[Any], meta: dict[str, Any] | None = None,
              table: pa.Table | None = None) -> str:
        """Publish an encoded entry (:func:`~kqlmagic_plus.cache.entry.encode`) atomically; with
        *meta* and *table* (what was encoded), remember it as verified. Raises OSError (full disk,
        read-only folder)."""
        self.ensure()
        path, st = write_atomic(self.path, key + SUFFIX, chunks)
        if meta is not None and table is not None:
            verified.put(path, st, meta, table)
        return path

    def copy_in(self, src: str, key: str) -> str:
        """Copy a verified entry file into this folder under *key*. Raises CorruptEntry / OSError /
        UntrustedStore."""
        f, _ = open_entry(src, private=False)
        with f:
            data = f.read()
        meta, _ = decode(data)
        if meta.get("key") != key:
            raise CorruptEntry("the entry belongs to another key")
        self.ensure()
        return write_atomic(self.path, key + SUFFIX, [data])[0]

    def touch(self, key: str) -> None:
        """Mark the entry used now (its mtime), keeping what this process verified of it valid."""
        path = self.file_for(key)
        if os.utime not in os.supports_fd:  # Windows: by name, and remember the file anew
            with contextlib.suppress(OSError):
                before = os.stat(path)
                os.utime(path)
                verified.retouch(path, before, os.stat(path))
            return
        try:
            f, _ = open_entry(path, private=self.private)
        except (OSError, UntrustedStore):  # evicted or replaced meanwhile: the hit stands either way
            return
        with f:
            fd = f.fileno()
            # Through the descriptor: the identity updated is that of the file touched, even if
            # another kernel renames a new entry over the name meanwhile.
            before = os.fstat(fd)
            with contextlib.suppress(OSError):  # a read-only replay folder
                os.utime(fd)
            verified.retouch(path, before, os.fstat(fd))

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
                    st = e.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                out.append(FileInfo(e.name[:-len(SUFFIX)], e.path, st.st_size, st.st_mtime))
        return out

    def entries(self) -> list[tuple[FileInfo, dict[str, Any] | None]]:
        """Every entry with its header metadata (None when the header is unreadable)."""
        out = []
        for info in self.files():
            try:
                meta: dict[str, Any] | None = read_meta(info.path, private=self.private)
            except (OSError, CorruptEntry, UntrustedStore):
                meta = None
            out.append((info, meta))
        return out

    def untrusted_entry(self, path: str) -> str | None:
        """Why the entry file at *path* is not read (a link, a FIFO..., another owner), or None."""
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return f"{path} is not a regular file"
        return untrusted_reason(path, st) if self.private else None

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
        any temp files. Returns (entries removed, bytes freed). Raises :class:`UntrustedStore` (and
        removes nothing) for a private store someone else could have written."""
        from datetime import datetime

        self.check()
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
        verified.clear()
        # A minute's grace: a temp file that young may belong to a kernel writing right now.
        self.sweep_tmp(older_than=60 if computed_before is None else STALE_TMP_SECONDS)
        return n, freed


class VerifiedTables:
    """Entries verified by this process, by file path, valid while the file keeps its identity."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, tuple[tuple[int, ...], dict[str, Any], Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def identity(st: os.stat_result) -> tuple[int, ...]:
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def get(self, path: str, st: os.stat_result) -> tuple[dict[str, Any], Any] | None:
        with self._lock:
            item = self._items.get(path)
            if item is None:
                return None
            if item[0] != self.identity(st):
                self._remove(path)
                return None
            self._items.move_to_end(path)
            return item[1], item[2]

    def put(self, path: str, st: os.stat_result, meta: dict[str, Any], table: Any) -> None:
        size = int(table.nbytes)
        with self._lock:
            self._remove(path)
            if size > self.max_bytes:
                return
            self._items[path] = (self.identity(st), meta, table, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._remove(next(iter(self._items)))

    def retouch(self, path: str, before: os.stat_result, after: os.stat_result) -> None:
        """The file at *path* had its mtime changed by this process, nothing else."""
        with self._lock:
            item = self._items.get(path)
            if item is not None and item[0] == self.identity(before):
                self._items[path] = (self.identity(after), *item[1:])

    def drop(self, path: str) -> None:
        with self._lock:
            self._remove(path)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def _remove(self, path: str) -> None:
        item = self._items.pop(path, None)
        if item is not None:
            self._bytes -= item[3]


#: The process-wide memory of verified entries.
verified = VerifiedTables(MEMORY_BYTES)


def _foreign_link(path: str, st: os.stat_result) -> str | None:
    """Why the symbolic link *path* is not to be followed (someone else made it), or None."""
    getuid = getattr(os, "getuid", None)
    if getuid is None or not stat.S_ISLNK(st.st_mode) or st.st_uid in (getuid(), 0):
        return None
    return f"{path} is a symbolic link owned by uid {st.st_uid}, not by you (uid {getuid()})"


def make_private_dirs(path: str) -> None:
    """Create *path* and its missing parents, each 0700 whatever the umask; change no folder that exists."""
    missing = []
    p = os.path.abspath(path)
    while not os.path.isdir(p):
        missing.append(p)
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:  # another kernel made it first: its mode is not ours to change
            continue
        if os.name == "posix":
            # Through a descriptor of the folder just made (not a name someone could swap meanwhile).
            fd = os.open(d, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
            try:
                os.fchmod(fd, 0o700)
            finally:
                os.close(fd)
