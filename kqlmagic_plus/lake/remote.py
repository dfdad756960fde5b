"""A lake in Azure Storage, laid out as :mod:`.layout` describes, listed and read where it is.

:class:`RemoteLayout` answers what :class:`~kqlmagic_plus.lake.layout.Layout` answers for a local
folder - containers, the table each holds, the blobs a window needs - from the Blob API
(:mod:`.storage`), listing only the prefixes the window can use: one listing per level of the
``y=/m=/d=`` folders the window reaches (``y=`` once, ``m=`` per year, ``d=`` per month), then one
listing per day folder it needs, pruned by the same rule and margins as a local folder (late
arrivals included). A window open at both ends lists each time folder's blobs at once.

The blobs a query reads are copied once into the local cache (:class:`~.storage.BlobCache`), each
kept with its ETag: a blob whose ETag and size are the listed ones is read from the copy, anything
else is read again. Every other part of the lake (file checks, schemas, DuckDB views, Spark on a
local session) then reads those copies exactly as it reads a local lake's files, so a remote lake
gives the same rows as the same lake on disk.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kqlmagic_plus.lake.layout import _BLOB, _LEVELS, _SPANS, HOUR, LakeFile, Layout, _level_range
from kqlmagic_plus.lake.schemas import package_schemas
from kqlmagic_plus.lake.storage import READERS, BlobCache, BlobItem, Gone, Storage, StorageAccess, default_cache_dir

_YEAR = re.compile(r"y=\d{4}")
#: Seconds before long reads show progress, and between two progress lines.
_PROGRESS_AFTER = 2.0


class RemoteLayout(Layout):
    """A lake's containers, tables and blobs, listed from Azure Storage; blobs read into the local cache."""

    def __init__(self, access: StorageAccess, listing_ttl: float):
        self.access = access
        self.url = access.url
        self.storage = Storage(access)
        self.cache = BlobCache(os.path.join(access.cache_dir or default_cache_dir(), self.url.slug()))
        super().__init__(self.cache.root, listing_ttl)
        #: Local container path -> (container, blob prefix).
        self._where: dict[str, tuple[str, str]] = {}
        #: Local path of a blob -> (container, the blob as listed).
        self._items: dict[str, tuple[str, BlobItem]] = {}
        #: Every blob listed so far, per container path (the report's "of N files").
        self._seen: dict[str, dict[str, LakeFile]] = {}
        self._roots: dict[str, tuple[float, list[str], list[str]]] = {}
        self._containers: list[str] | None = None
        self._lock = threading.Lock()

    # -- containers and tables ---------------------------------------------------------------------

    def containers(self) -> list[str]:
        if self._containers is not None:
            return self._containers
        url, pairs = self.url, []
        last = url.prefix.rstrip("/").rsplit("/", 1)[-1]
        if url.container is None:
            pairs = [(c, "") for c in self.storage.containers("am-")]
        elif (url.container.lower().startswith("am-") and not url.prefix) or last.lower().startswith("am-"):
            pairs = [(url.container, url.prefix)]
        else:
            subs, _ = self.storage.walk(url.container, url.prefix)
            pairs = [(url.container, p) for p in subs if p.rstrip("/").rsplit("/", 1)[-1].lower().startswith("am-")]
        out = []
        for container, prefix in pairs:
            path = os.path.join(self.cache.root, container, *[p for p in prefix.split("/") if p])
            self._where[path] = (container, prefix)
            out.append(path)
        self._containers = out
        return out

    def _stray_folders(self) -> list[str]:
        return []  # a remote lake's discovery looks for am-* names only and says nothing of the others

    def _where_said(self) -> str:
        return f"in {self.url.display}"

    def _table_name(self, container: str, warnings: list[str]) -> str | None:
        """The table of an ``am-<table>`` container: the package's table of that name, else the Type of
        its first record (one short read), else the name after ``am-``."""
        suffix = os.path.basename(container)[3:]
        for known in package_schemas():
            if known.lower() == suffix.lower():
                return known
        name, prefix = self._where[container]
        for item in self.storage.flat(name, prefix, first=20):
            if not _BLOB.match(item.name.rsplit("/", 1)[-1]) or not item.name.lower().endswith(".json"):
                continue
            dest = self.cache.path(name, item.name)
            if dest is None:
                continue
            try:
                self.storage.read(name, item, dest + ".head", length=64 * 1024)
                with open(dest + ".head", "rb") as fh:
                    import json

                    value = json.loads(fh.readline()).get("Type")
            except (Gone, ValueError, OSError, AttributeError):
                continue
            if isinstance(value, str) and value:
                return value
        warnings.append(f"{self.rel(container)}: no record names its table (Type); using {suffix!r}")
        return suffix

    def table_holding(self, path: str) -> str | None:
        if self._tables is None:
            return None
        for name, container in self._tables.items():
            if path.startswith(container + os.sep):
                return name
        return None

    def refresh(self) -> None:
        super().refresh()
        self._roots.clear()
        self._containers = None

    # -- listing -----------------------------------------------------------------------------------

    def files(self, container: str, lo: int | None, hi: int | None) -> tuple[list[LakeFile], list[str]]:
        """The blobs of *container* ending after *lo* and starting before *hi* (listing only the
        prefixes that can hold them), and the stray paths seen."""
        if container not in self._where:
            self.containers()
        name, _ = self._where[container]
        files: list[LakeFile] = []
        unexpected: list[str] = []
        roots, strays = self._time_roots(container)
        unexpected.extend(strays)
        for root in roots:
            if lo is None and hi is None:
                for item in self.storage.flat(name, root):
                    self._add(container, name, root, [], item, lo, hi, files, unexpected)
            else:
                self._level(container, name, root, [], lo, hi, files, unexpected)
        files.sort(key=lambda f: (f.start_us, f.part, f.path))
        with self._lock:
            seen = self._seen.setdefault(container, {})
            seen.update((f.path, f) for f in files)
        return files, unexpected

    def all_files(self, container: str) -> tuple[list[LakeFile], list[str]]:
        """The blobs listed so far (a remote lake is never listed whole for a count)."""
        seen = self._seen.get(container, {})
        return sorted(seen.values(), key=lambda f: (f.start_us, f.part, f.path)), []

    def _time_roots(self, container: str) -> tuple[list[str], list[str]]:
        """Blob prefixes holding ``y=YYYY`` folders below a container (any workspace path in between)."""
        cached = self._roots.get(container)
        if cached is not None and time.monotonic() - cached[0] < self.listing_ttl:
            return cached[1], cached[2]
        name, prefix = self._where[container]
        roots: list[str] = []
        strays: list[str] = []

        def descend(at: str, depth: int) -> None:
            subs, blobs = self.storage.walk(name, at)
            years = [s for s in subs if _YEAR.fullmatch(_last(s))]
            if years:
                roots.append(at)
                strays.extend(self._local(name, s) for s in subs if s not in years and not _last(s).startswith("."))
                strays.extend(self._local(name, b.name) for b in blobs if not _last(b.name).startswith("."))
                return
            strays.extend(self._local(name, b.name) for b in blobs if not _last(b.name).startswith("."))
            if depth < 12:
                for s in subs:
                    descend(s, depth + 1)

        descend(prefix, 0)
        self._roots[container] = (time.monotonic(), roots, strays)
        return roots, strays

    def _level(self, container: str, name: str, prefix: str, values: list[int], lo: int | None, hi: int | None,
               files: list[LakeFile], unexpected: list[str]) -> None:
        if len(values) == 3:  # a day folder: one listing of everything in it
            for item in self.storage.flat(name, prefix):
                self._add(container, name, prefix, values, item, lo, hi, files, unexpected)
            return
        subs, blobs = self.storage.walk(name, prefix)
        unexpected.extend(self._local(name, b.name) for b in blobs if not _last(b.name).startswith("."))
        level = _LEVELS[len(values)] + "="
        for sub in subs:
            seg = _last(sub)
            try:
                if not seg.startswith(level) or not seg[2:].isdigit():
                    raise ValueError(seg)
                value = int(seg[2:])
                a, b = _level_range([*values, value])
            except ValueError:
                if not seg.startswith("."):
                    unexpected.append(self._local(name, sub))
                continue
            # Blobs in this folder start in [a, b) and cover at most an hour (as layout._walk_times).
            if (lo is None or b + HOUR > lo) and (hi is None or a < hi):
                self._level(container, name, sub, [*values, value], lo, hi, files, unexpected)

    def _add(self, container: str, name: str, base: str, values: list[int], item: BlobItem, lo: int | None,
             hi: int | None, files: list[LakeFile], unexpected: list[str]) -> None:
        """One listed blob below the folder *base* (named by *values*): a LakeFile, or a stray."""
        rest = item.name[len(base):].split("/")
        if any(p.startswith(".") for p in rest):
            return
        local = self.cache.path(name, item.name)
        m = _BLOB.match(rest[-1])
        if local is None or m is None or len(rest) != 6 - len(values):
            unexpected.append(local or self._local(name, item.name))
            return
        vals = list(values)
        try:
            for lvl, seg in zip(_LEVELS[len(values):], rest[:-1], strict=True):
                if not seg.startswith(lvl + "=") or not seg[2:].isdigit():
                    raise ValueError(seg)
                vals.append(int(seg[2:]))
            start = _level_range(vals)[0]
        except ValueError:
            unexpected.append(local)
            return
        span = _SPANS[m.group(1).upper()]
        if (lo is None or start + span > lo) and (hi is None or start < hi):
            files.append(LakeFile(path=local, start_us=start, span_us=span, fmt=m.group(3).lower(),
                                  part=int(m.group(2) or 0)))
            with self._lock:
                self._items[local] = (name, item)

    def _local(self, container: str, name: str) -> str:
        return os.path.join(self.cache.root, container, *[p for p in name.split("/") if p not in ("", ".", "..")])

    # -- reading -----------------------------------------------------------------------------------

    def fetch(self, files: list[LakeFile]) -> dict[str, str]:
        """Make a local copy of each of *files* whose copy is not the listed blob; {path: why it is left out}."""
        todo = []
        for f in files:
            container, item = self._items[f.path]
            if self.cache.fresh(f.path, item):
                self.storage.counters.cache_hits += 1
            else:
                todo.append((f.path, container, item))
        failed: dict[str, str] = {}
        if not todo:
            return failed
        progress = _Progress(self.access.progress, len(todo), sum(i.size for _, _, i in todo), self.storage)

        def one(job: tuple[str, str, BlobItem]) -> None:
            path, container, item = job
            try:
                etag = self.storage.read(container, item, path)
            except Gone as exc:
                failed[path] = str(exc)
                return
            self.cache.keep(path, etag)
            progress.done(item.size)

        try:
            with ThreadPoolExecutor(max_workers=min(READERS, len(todo))) as pool:
                for fut in [pool.submit(one, job) for job in todo]:
                    fut.result()  # the first refusal or exhausted retry fails the query, by name
        finally:
            progress.close()
        return failed

    def version(self, path: str) -> tuple[str, str, int]:
        """(blob URL path, ETag, size) of a listed blob: what the result cache keys on."""
        container, item = self._items[path]
        return f"{container}/{item.name}", item.etag, item.size

    def rel(self, path: str) -> str:
        rel = os.path.relpath(path, self.cache.root).replace(os.sep, "/")
        return re.sub(r"WorkspaceResourceId=/subscriptions/.*?/workspaces/[^/]+/", "…/", rel)


def _last(prefix: str) -> str:
    return prefix.rstrip("/").rsplit("/", 1)[-1]


class _Progress:
    """Blobs read of those to read, and bytes, on stderr once a read has taken over 2 s."""

    def __init__(self, stream: Any, total: int, total_bytes: int, storage: Storage):
        self.stream = None if stream == "off" else stream
        self.quiet = stream == "off" or os.environ.get("KQLMAGIC_PLUS_LAKE_PROGRESS", "").lower() == "off"
        self.total, self.total_bytes, self.storage = total, total_bytes, storage
        self.count = 0
        self.bytes = 0
        self.started = time.monotonic()
        self.last = 0.0
        self.printed = False
        self._lock = threading.Lock()

    def done(self, size: int) -> None:
        with self._lock:
            self.count += 1
            self.bytes += size
            now = time.monotonic()
            if not self.quiet and now - self.started > _PROGRESS_AFTER and now - self.last > _PROGRESS_AFTER:
                self._say()
                self.last = now

    def _say(self) -> None:
        c = self.storage.counters
        print(f"lake {self.storage.url.account}: read {self.count:,} of {self.total:,} blobs "
              f"({self.bytes / 1e6:,.1f} of {self.total_bytes / 1e6:,.1f} MB), {c.lists:,} listing(s), "
              f"{time.monotonic() - self.started:,.0f} s", file=self.stream or sys.stderr, flush=True)
        self.printed = True

    def close(self) -> None:
        with self._lock:
            if self.printed and self.count:
                self._say()
