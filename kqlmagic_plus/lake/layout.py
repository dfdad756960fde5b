"""The export layout: containers, the table each holds, and the blobs in their time folders.

Layout of Log Analytics continuous export (one container per table)::

    <root>/am-<table lowercased>/WorkspaceResourceId=/subscriptions/<sub>/resourcegroups/<rg>/providers/
        microsoft.operationalinsights/workspaces/<ws>/y=YYYY/m=MM/d=DD/h=HH/m=MM/PT05M.json

Older exports write one blob per hour (``h=HH/m=00/PT1H.json``); a blob that grows too big continues
in overflow blobs (``PT05M_1.json``, ``PT1H_1.json``). Blobs are JSON lines, each record carrying
``Type`` (the table name, ``CommonSecurityLog``) and ``TimeGenerated``; ``.parquet`` blobs in the
same folders hold the same records. :class:`~kqlmagic_plus.lake.lake.Lake` takes the root (every
``am-*`` container) or a single container, names each table by its records' ``Type``, and gives it the
explicit schema of the package's table reference (``data/la_table_schemas.json``), or, for a table not
in it, the columns of its files' first records.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

from kqlmagic_plus.errors import OptionError, TableNotFoundError
from kqlmagic_plus.lake.schemas import package_schemas

#: Microseconds in a second, and in an hour: blob times are µs since the epoch, UTC.
US = 1_000_000
HOUR = 3600 * US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_BLOB = re.compile(r"^PT(05M|1H)(?:_(\d+))?\.(json|parquet)$", re.IGNORECASE)
_SPANS = {"05M": 5 * 60 * US, "1H": HOUR}
_LEVELS = ("y", "m", "d", "h", "m")


def dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


@dataclass(frozen=True)
class LakeFile:
    """One export blob."""

    path: str
    #: Start of the export interval its folder names (µs since the epoch, UTC).
    start_us: int
    #: Length of that interval: 5 minutes (PT05M) or an hour (PT1H).
    span_us: int
    fmt: str
    #: 0 for PT05M.json, n for the overflow blob PT05M_n.json.
    part: int

    @property
    def start(self) -> datetime:
        return dt(self.start_us)

    @property
    def end(self) -> datetime:
        return dt(self.start_us + self.span_us)

    @property
    def layout(self) -> str:
        return "5m" if self.span_us < HOUR else "1h"


class Layout:
    """A lake's containers, the table each holds, and their blobs."""

    def __init__(self, root: str, listing_ttl: float):
        self.root = root
        self.listing_ttl = listing_ttl
        self._listing: dict[str, tuple[float, list[LakeFile], list[str]]] = {}
        self._tables: dict[str, str] | None = None
        #: Folder -> its entries as last read, reused while the folder's stat says it is unchanged.
        self._folders = FolderCache()
        #: What discovery found odd (stray folders, containers read twice), said with every report.
        self.warnings: list[str] = []

    def containers(self) -> list[str]:
        """Container folders: the root itself when it is one, else its ``am-*`` subfolders."""
        if is_container(self.root):
            return [self.root]
        out = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_dir() and entry.name.lower().startswith("am-"):
                out.append(entry.path)
        return out

    def tables(self) -> dict[str, str]:
        """Table -> its container, discovered once (until :meth:`refresh`); the first container read for a
        table wins, a later one is said in :attr:`warnings` and ignored."""
        if self._tables is not None:
            return self._tables
        warnings = self._stray_folders()
        containers = self.containers()
        if not containers:
            raise OptionError(f"no export containers (am-<table>) {self._where_said()}")
        tables: dict[str, str] = {}
        for container in containers:
            name = self._table_name(container, warnings)
            if name is None:
                continue
            if name in tables:
                warnings.append(f"{self.rel(container)}: records of {name}, already read from "
                                f"{self.rel(tables[name])}; ignored")
                continue
            tables[name] = container
        self._tables = tables
        self.warnings = warnings
        return tables

    def _stray_folders(self) -> list[str]:
        """A warning for each folder under the root that is not an export container."""
        if is_container(self.root):
            return []
        return [f"{entry.name}: not an export container (am-<table>), ignored"
                for entry in sorted(os.scandir(self.root), key=lambda e: e.name)
                if entry.is_dir() and not entry.name.lower().startswith("am-") and not entry.name.startswith(".")]

    def _where_said(self) -> str:
        """Where the lake is, as the error naming no containers says it."""
        return f"under {self.root!r}"

    def _table_name(self, container: str, warnings: list[str]) -> str | None:
        """The table a container holds: its first readable record's Type, else its folder name."""
        files, _ = self.files(container, None, None)
        for f in files[:50]:
            name = _peek_type(f)
            if name:
                return name
        suffix = os.path.basename(container.rstrip(os.sep))[3:] if _is_am(container) else ""
        for known in package_schemas():
            if known.lower() == suffix.lower():
                if not files:
                    warnings.append(f"{self.rel(container)}: no export files; {known} is empty")
                return known
        if not files:
            warnings.append(f"{self.rel(container)}: no export files and not a known table; ignored")
            return None
        warnings.append(f"{self.rel(container)}: no record names its table (Type); using {suffix!r}")
        return suffix or os.path.basename(container)

    def table_holding(self, path: str) -> str | None:
        """The discovered table whose container holds *path* (None before discovery or outside them)."""
        if self._tables is None:
            return None
        for name, container in self._tables.items():
            if path.startswith(container + os.sep):
                return name
        return None

    def container_of(self, table: str) -> str:
        tables = self.tables()
        if table in tables:
            return tables[table]
        for name, path in tables.items():
            if name.lower() == table.lower():
                return path
        raise TableNotFoundError(table, tables)

    def canonical(self, table: str) -> str:
        tables = self.tables()
        if table in tables:
            return table
        for name in tables:
            if name.lower() == table.lower():
                return name
        raise TableNotFoundError(table, tables)

    def has(self, table: str) -> bool:
        try:
            self.canonical(table)
        except TableNotFoundError:
            return False
        return True

    def refresh(self) -> None:
        """Forget listings and table names."""
        self._listing.clear()
        self._folders.clear()
        self._tables = None

    def files(self, container: str, lo: int | None, hi: int | None) -> tuple[list[LakeFile], list[str]]:
        """The blobs of *container* ending after *lo* and starting before *hi*, and the stray paths seen."""
        files: list[LakeFile] = []
        unexpected: list[str] = []
        for tdir in _time_roots(container, unexpected, folders=self._folders):
            _walk_times(tdir, lo, hi, files, unexpected, folders=self._folders)
        files.sort(key=lambda f: (f.start_us, f.part, f.path))
        if lo is None and hi is None:
            self._listing[container] = (time.monotonic(), files, unexpected)
        return files, unexpected

    def fetch(self, files: list[LakeFile]) -> dict[str, str]:
        """Make *files* readable at their paths; {path: why it is left out}. Local files are read in place."""
        return {}

    def all_files(self, container: str) -> tuple[list[LakeFile], list[str]]:
        cached = self._listing.get(container)
        if cached is not None and time.monotonic() - cached[0] < self.listing_ttl:
            return cached[1], cached[2]
        return self.files(container, None, None)

    def rel(self, path: str) -> str:
        """A path relative to the lake root, the long workspace part shortened."""
        rel = os.path.relpath(path, os.path.dirname(self.root) if is_container(self.root) else self.root)
        return re.sub(r"WorkspaceResourceId=/subscriptions/.*?/workspaces/[^/]+/", "…/", rel)


# -- walking the layout ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entry of a folder, as a listing saw it."""

    name: str
    path: str
    is_dir: bool
    is_file: bool


#: A folder changed less than this many seconds before it was read is read again next time: a file added in
#: the same clock tick as the listing would leave the folder's times unchanged (file systems stamp coarsely).
_SETTLED_S = 5.0


class FolderCache:
    """Each folder's sorted entries, reused while the folder's stat (inode, mtime, ctime) is unchanged.

    Listing a lake walks a folder per hour (and per 5 minutes) of the window before every query; a folder
    gains or loses an entry only by a change that moves its mtime and ctime, so one ``stat`` tells whether
    the entries read before still stand. A folder modified too recently to trust its times is not kept.
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[tuple[int, int, int, int], list[Entry]]] = {}
        #: Minute folder -> (the entries its blobs were made from, the blobs, the stray paths).
        self._blobs: dict[str, tuple[list[Entry], list[LakeFile], list[str]]] = {}

    def clear(self) -> None:
        self._seen.clear()
        self._blobs.clear()

    def blobs(self, folder: str, entries: list[Entry], start: int) -> tuple[list[LakeFile], list[str]]:
        """:func:`_blobs` of a minute folder, made again only when its *entries* are a new listing."""
        got = self._blobs.get(folder)
        if got is None or got[0] is not entries:
            got = (entries, *_blobs(entries, start))
            self._blobs[folder] = got
        return got[1], got[2]

    def entries(self, folder: str) -> list[Entry]:
        """*folder*'s entries sorted by name (OSError when it cannot be read)."""
        st = os.stat(folder)
        stamp = (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_ctime_ns)
        got = self._seen.get(folder)
        if got is not None and got[0] == stamp:
            return got[1]
        listed = [Entry(e.name, e.path, e.is_dir(), e.is_file())
                  for e in sorted(os.scandir(folder), key=lambda e: e.name)]
        if time.time() - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > _SETTLED_S:
            self._seen[folder] = (stamp, listed)
        else:
            self._seen.pop(folder, None)
        return listed


def _blobs(entries: list[Entry], start: int) -> tuple[list[LakeFile], list[str]]:
    """The export blobs among a minute folder's *entries* (its folder time *start*), and the stray paths."""
    blobs: list[LakeFile] = []
    strays: list[str] = []
    for e in entries:
        m = _BLOB.match(e.name)
        if m is None or not e.is_file:
            if not e.name.startswith("."):
                strays.append(e.path)
            continue
        blobs.append(LakeFile(path=e.path, start_us=start, span_us=_SPANS[m.group(1).upper()],
                              fmt=m.group(3).lower(), part=int(m.group(2) or 0)))
    return blobs, strays


def _is_am(path: str) -> bool:
    return os.path.basename(path.rstrip(os.sep)).lower().startswith("am-")


def is_container(path: str) -> bool:
    """A container: named am-*, or holding the export's WorkspaceResourceId= or y= folders itself."""
    if _is_am(path):
        return True
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(n == "WorkspaceResourceId=" or re.fullmatch(r"y=\d{4}", n) for n in names)


def _time_roots(container: str, unexpected: list[str], depth: int = 0, *,
                folders: FolderCache) -> Iterator[str]:
    """Folders holding ``y=YYYY`` folders, below a container (any workspace path in between)."""
    try:
        entries = folders.entries(container)
    except OSError:
        return
    if any(e.is_dir and re.fullmatch(r"y=\d{4}", e.name) for e in entries):
        yield container
        for e in entries:
            if not (e.is_dir and re.fullmatch(r"y=\d{4}", e.name)) and not e.name.startswith("."):
                unexpected.append(e.path)
        return
    if depth > 12:
        return
    for e in entries:
        if e.is_dir:
            yield from _time_roots(e.path, unexpected, depth + 1, folders=folders)
        elif not e.name.startswith("."):
            unexpected.append(e.path)


@cache
def _day_start(y: int, m: int, d: int) -> int:
    return (date(y, m, d).toordinal() - _EPOCH_ORDINAL) * 86_400 * US


def _level_range(values: list[int]) -> tuple[int, int]:
    """[start, end) in µs of the folder y/m/d/h/m named by the first len(values) levels (ValueError if
    the names are no date)."""
    y = values[0]
    if len(values) == 1:
        return _day_start(y, 1, 1), _day_start(y + 1, 1, 1)
    mo = values[1]
    if len(values) == 2:
        return _day_start(y, mo, 1), _day_start(y + (mo == 12), mo % 12 + 1, 1)
    day = _day_start(y, mo, values[2])
    if len(values) == 3:
        return day, day + 86_400 * US
    if not 0 <= values[3] < 24:
        raise ValueError("hour")
    hour = day + values[3] * HOUR
    if len(values) == 4:
        return hour, hour + HOUR
    if not 0 <= values[4] < 60:
        raise ValueError("minute")
    minute = hour + values[4] * 60 * US
    return minute, minute + 60 * US


def _walk_times(tdir: str, lo: int | None, hi: int | None, files: list[LakeFile], unexpected: list[str],
                values: list[int] | None = None, *, folders: FolderCache) -> None:
    values = values or []
    level = len(values)
    try:
        entries = folders.entries(tdir)
    except OSError:
        return
    if level == 5:
        start = _level_range(values)[0]
        blobs, strays = folders.blobs(tdir, entries, start)
        unexpected.extend(strays)
        files.extend(f for f in blobs if (lo is None or start + f.span_us > lo) and (hi is None or start < hi))
        return
    prefix = _LEVELS[level] + "="
    for e in entries:
        name = e.name
        ok = e.is_dir and name.startswith(prefix) and name[2:].isdigit()
        if ok:
            value = int(name[2:])
            try:
                a, b = _level_range([*values, value])
            except ValueError:
                ok = False
        if not ok:
            if not name.startswith("."):
                unexpected.append(e.path)
            continue
        # Blobs in this folder start in [a, b) and cover at most an hour.
        if (lo is None or b + HOUR > lo) and (hi is None or a < hi):
            _walk_times(e.path, lo, hi, files, unexpected, [*values, value], folders=folders)


def blob_from_path(path: str) -> LakeFile | None:
    """The LakeFile for a path of the export layout (to map a DuckDB error back to its file)."""
    parts = path.split(os.sep)
    m = _BLOB.match(parts[-1])
    if m is None or len(parts) < 6:
        return None
    folders = parts[-6:-1]
    values = []
    for level, folder in zip(_LEVELS, folders, strict=True):
        if not folder.startswith(level + "=") or not folder[2:].isdigit():
            return None
        values.append(int(folder[2:]))
    try:
        start = _level_range(values)[0]
    except ValueError:
        return None
    return LakeFile(path=path, start_us=start, span_us=_SPANS[m.group(1).upper()], fmt=m.group(3).lower(),
                    part=int(m.group(2) or 0))


def _peek_type(f: LakeFile) -> str | None:
    """The Type of a file's first record, read without checking the file."""
    try:
        if f.fmt == "parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(f.path)
            if "Type" not in pf.schema_arrow.names or not pf.metadata.num_rows:
                return None
            value = pf.read_row_group(0, columns=["Type"]).column(0)[0].as_py()
        else:
            with open(f.path, "rb") as fh:
                value = json.loads(fh.readline(16 * 1024 * 1024)).get("Type")
    except Exception:
        # Any unreadable file just does not name the table; its own check reports it.
        return None
    return value if isinstance(value, str) and value else None
