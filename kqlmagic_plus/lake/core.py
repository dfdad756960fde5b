"""The exported Log Analytics lake: discovery, schemas, time pruning and validation, for every engine.

Layout of Log Analytics continuous export (one container per table)::

    <root>/am-<table lowercased>/WorkspaceResourceId=/subscriptions/<sub>/resourcegroups/<rg>/providers/
        microsoft.operationalinsights/workspaces/<ws>/y=YYYY/m=MM/d=DD/h=HH/m=MM/PT05M.json

Older exports write one blob per hour (``h=HH/m=00/PT1H.json``); a blob that grows too big continues
in overflow blobs (``PT05M_1.json``, ``PT1H_1.json``). Blobs are JSON lines, each record carrying
``Type`` (the table name, ``CommonSecurityLog``) and ``TimeGenerated``; ``.parquet`` blobs in the
same folders hold the same records. :class:`Lake` takes the root (every ``am-*`` container) or a
single container, names each table by its records' ``Type``, and gives it the explicit schema of the
package's table reference (``data/la_table_schemas.json``), or, for a table not in it, the columns
of its files' first records.

Time pruning rule
-----------------
A blob's folder names the interval in which the export wrote its records - ``PT05M`` covers
``[F, F + 5 min)``, ``PT1H`` covers ``[F, F + 1 h)`` - not their TimeGenerated. A record is exported
after it reaches the workspace, and reaches it after it was generated, so a record with
TimeGenerated ``T`` sits in a folder at or after ``T``; late-arriving records sit in folders later
still, never earlier. Two margins bound the rule:

- ``skew``: a source clock running fast stamps a TimeGenerated ahead of arrival. Default 1 hour;
  the service itself accepts up to one day (set ``skew=timedelta(days=1)`` for that hard bound).
- ``max_late``: the service replaces a TimeGenerated more than 2 days before arrival with the arrival
  time (learn.microsoft.com, "Standard columns in Azure Monitor Logs"), so a record arrives at most
  2 days after its TimeGenerated; add an hour of export delay. Default 2 days 1 hour; ``None`` trusts
  no bound and keeps every folder after the window's start.

So a blob covering ``[F, F + D)`` can hold a record with ``F - max_late <= T < F + D + skew``, and
for a query window ``[start, end)`` (either side open) a blob is read exactly when
``F + D + skew > start`` and ``F - max_late < end``. A folder is pruned only when no blob in it can
pass. A window at the lake's end (``ago(1d)``) reads its day plus ``skew``; a window in the past
also reads the ``max_late`` of folders after it, where its late rows are.

Bad files
---------
Each file is checked once (and again when its size or mtime changes). Files up to 512 KiB are
read whole and every line checked; bigger ones get cheap checks: their first bytes (a JSON lines
blob starts with ``{``; Parquet has ``PAR1`` at both ends) and their first and last record. A big
file failing a cheap check is then scanned line by line too. A scanned file is read record by
record (``read_json_objects``, malformed lines left out) and every line that loses data is named in
the report with its reason; a file with nothing readable is skipped whole, and said so. Records
without TimeGenerated are kept, with an empty TimeGenerated that no time filter matches, and
reported. Big files that pass are read strictly (``read_json``): a problem in their middle, which
the cheap checks cannot see, makes DuckDB fail naming the file, and :meth:`Lake.recover` (as
:meth:`Lake.run_duckdb` does) scans that file before the query runs again. ``validate="full"``
scans every file on first sight; :meth:`Lake.check` audits a whole lake.

Columns
-------
A scanned file's columns are known exactly, so the view asks for those. For big files DuckDB's
strict JSON reader pays, per file, for every column it is asked for, present or not:
``columns="auto"`` (the default) and ``"all"`` ask for every column of the schema, so a key is
never dropped because it was not expected; ``columns="seen"`` asks only for the columns found in
the sampled records (first and last 64 KiB of each file), faster on big files of sparse records and
exact as long as every column a table uses shows up in some sample.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar

from kqlmagic_plus.errors import OptionError, TableNotFoundError
from kqlmagic_plus.request import TimeWindow

if TYPE_CHECKING:
    import duckdb

T = TypeVar("T")

_US = 1_000_000
_HOUR = 3600 * _US
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DEFAULT_SKEW = timedelta(hours=1)
DEFAULT_MAX_LATE = timedelta(days=2, hours=1)
_BLOB = re.compile(r"^PT(05M|1H)(?:_(\d+))?\.(json|parquet)$", re.IGNORECASE)
_SPANS = {"05M": 5 * 60 * _US, "1H": _HOUR}
_LEVELS = ("y", "m", "d", "h", "m")
_HEAD = 64 * 1024
#: Files up to this size are read whole and every line checked once (Python reads ~100 MB/s): exact,
#: and cheaper than what DuckDB's strict JSON reader costs such a file on every query.
SCAN_BELOW = 512 * 1024
_KQL_TO_DUCKDB = {"bool": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "real": "DOUBLE",
                  "decimal": "DECIMAL(38, 18)", "string": "VARCHAR", "datetime": "TIMESTAMPTZ",
                  "timespan": "INTERVAL", "dynamic": "JSON", "guid": "VARCHAR"}
#: Warning lines listed per file before "and N more"; problems remembered per file; file warnings per table.
_MAX_LINES_LISTED = 10
_MAX_PROBLEMS_KEPT = 1000
_MAX_FILE_WARNINGS = 20


# -- schemas ----------------------------------------------------------------------------------------


@cache
def package_schemas() -> dict[str, list[tuple[str, str]]]:
    """Table -> [(column, KQL type)] for the tables the package knows (real Log Analytics schemas)."""
    text = resources.files("kqlmagic_plus").joinpath("data/la_table_schemas.json").read_text(encoding="utf-8")
    return {name: [(c, t) for c, t in cols] for name, cols in json.loads(text)["tables"].items()}


def schema_for(table: str) -> list[tuple[str, str]]:
    """The package schema of *table* (case-insensitive name); TableNotFoundError if it has none."""
    schemas = package_schemas()
    if table in schemas:
        return list(schemas[table])
    for name, cols in schemas.items():
        if name.lower() == table.lower():
            return list(cols)
    raise TableNotFoundError(table, schemas)


def duckdb_type(kql_type: str) -> str:
    return _KQL_TO_DUCKDB[kql_type]


# -- windows ----------------------------------------------------------------------------------------


def _us(value: datetime | None) -> int | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * _US + delta.microseconds


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def _as_window(window: TimeWindow | tuple | None) -> TimeWindow | None:
    if window is None or isinstance(window, TimeWindow):
        return window
    if isinstance(window, tuple) and len(window) == 2:
        return TimeWindow(*window)
    raise OptionError(f"not a time window: {window!r}")


def _td_us(value: timedelta | None) -> int | None:
    return None if value is None else int(value / timedelta(microseconds=1))


# -- files ------------------------------------------------------------------------------------------


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
        return _dt(self.start_us)

    @property
    def end(self) -> datetime:
        return _dt(self.start_us + self.span_us)

    @property
    def layout(self) -> str:
        return "5m" if self.span_us < _HOUR else "1h"


@dataclass
class FileCheck:
    """What reading one file will give."""

    size: int
    mtime_ns: int
    #: Leave the whole file out (``reason`` says why).
    skip: bool = False
    reason: str = ""
    #: [(line number, what is wrong, skipped?)], complete when the file was scanned line by line.
    problems: list[tuple[int, str, bool]] = field(default_factory=list)
    #: Every line was read: ``problems`` and ``columns`` are exact, not samples.
    scanned: bool = False
    #: Lines left out / lines read with something lost, counted in full (``problems`` keeps the first ones).
    skipped_lines: int = 0
    kept_lines: int = 0
    type_name: str | None = None
    #: Columns seen in the file's first records (JSON), or the file's schema (Parquet): name -> KQL type.
    columns: dict[str, str] = field(default_factory=dict)
    records: int | None = None

    def note(self, line: int, reason: str, *, skipped: bool) -> None:
        if skipped:
            self.skipped_lines += 1
        else:
            self.kept_lines += 1
        if len(self.problems) < _MAX_PROBLEMS_KEPT:
            self.problems.append((line, reason, skipped))


@dataclass
class TablePlan:
    """The files one query reads for one table, and why others are left out."""

    table: str
    container: str
    schema: list[tuple[str, str]]
    #: Big JSON files that passed the cheap checks: read strictly.
    strict: list[LakeFile] = field(default_factory=list)
    #: JSON files read line by line by their check: read record by record, bad lines left out.
    scanned: list[LakeFile] = field(default_factory=list)
    parquet: list[LakeFile] = field(default_factory=list)
    skipped: list[tuple[LakeFile, str]] = field(default_factory=list)
    files_total: int = 0
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: JSON keys asked of the strict / scanned files (the rest of the schema is NULL); None: every column.
    read_columns: list[str] | None = None
    scanned_columns: list[str] | None = None
    #: Parquet file -> its columns and their KQL types.
    parquet_columns: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def files(self) -> list[LakeFile]:
        return sorted(self.strict + self.scanned + self.parquet, key=lambda f: (f.start_us, f.part, f.path))

    @property
    def files_read(self) -> int:
        return len(self.strict) + len(self.scanned) + len(self.parquet)


@dataclass
class TableReport:
    table: str
    files_read: int
    files_total: int
    files_skipped: int
    bytes_read: int
    lines_skipped: int


@dataclass
class LakeReport:
    """What :meth:`Lake.register_duckdb` mounted: files read of files in the lake, and what was left out."""

    window: TimeWindow | None
    tables: dict[str, TableReport] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Every line or file left out: (path, line number or None for the whole file, reason).
    skipped: list[tuple[str, int | None, str]] = field(default_factory=list)

    @property
    def files_read(self) -> int:
        return sum(t.files_read for t in self.tables.values())

    @property
    def files_total(self) -> int:
        return sum(t.files_total for t in self.tables.values())

    def text(self) -> str:
        parts = [f"{t.table} {t.files_read:,} of {t.files_total:,} files" for t in self.tables.values()]
        where = f" for {self.window}" if self.window is not None else ""
        return f"lake{where}: " + ("; ".join(parts) if parts else "no tables")

    def summary(self) -> dict[str, Any]:
        """Plain data for Result.stats (``--show-query``)."""
        return {"window": None if self.window is None else str(self.window), "text": self.text(),
                "files_read": self.files_read, "files_total": self.files_total,
                "tables": {n: {"files_read": t.files_read, "files_total": t.files_total,
                               "files_skipped": t.files_skipped, "lines_skipped": t.lines_skipped,
                               "bytes_read": t.bytes_read} for n, t in self.tables.items()},
                "warnings": len(self.warnings)}

    def __str__(self) -> str:
        return "\n".join([self.text(), *self.warnings])


@dataclass
class TableDescription:
    table: str
    container: str
    files: int
    bytes: int
    formats: list[str]
    layouts: list[str]
    first_folder: datetime | None
    last_folder_end: datetime | None
    columns: int
    rows: int | None = None
    min_time: datetime | None = None
    max_time: datetime | None = None


@dataclass
class LakeDescription:
    root: str
    tables: list[TableDescription]
    warnings: list[str]

    def to_rows(self) -> list[dict[str, Any]]:
        return [vars(t).copy() for t in self.tables]

    def __str__(self) -> str:
        lines = [f"lake {self.root}: {len(self.tables)} tables"]
        for t in self.tables:
            span = (f"{t.first_folder:%Y-%m-%d %H:%M} .. {t.last_folder_end:%Y-%m-%d %H:%M} UTC (export folders)"
                    if t.first_folder and t.last_folder_end else "no files")
            rows = f", {t.rows:,} rows" if t.rows is not None else ""
            tg = (f", TimeGenerated {t.min_time:%Y-%m-%d %H:%M:%S} .. {t.max_time:%Y-%m-%d %H:%M:%S}"
                  if t.min_time and t.max_time else "")
            lines.append(f"  {t.table:<22} {t.files:>7,} files {t.bytes / 1e6:>10,.1f} MB "
                         f"{'/'.join(t.formats) or '-'} {'/'.join(t.layouts) or '-'}  {span}{rows}{tg}")
        lines.extend(self.warnings)
        return "\n".join(lines)


# -- the lake ---------------------------------------------------------------------------------------


class Lake:
    """An exported lake: a root holding ``am-*`` containers, or one container."""

    def __init__(self, root: str | os.PathLike[str], *, skew: timedelta = DEFAULT_SKEW,
                 max_late: timedelta | None = DEFAULT_MAX_LATE, validate: str = "quick", columns: str = "auto",
                 listing_ttl: float = 30.0):
        self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
        if not os.path.isdir(self.root):
            raise OptionError(f"lake folder {os.fspath(root)!r} does not exist or is not a folder")
        if validate not in ("quick", "full"):
            raise OptionError(f"validate={validate!r}: use 'quick' or 'full'")
        if columns not in ("auto", "all", "seen"):
            raise OptionError(f"columns={columns!r}: use 'auto', 'all' or 'seen'")
        self.validate = validate
        self.columns = columns
        self.skew = skew
        self.max_late = max_late
        self.listing_ttl = listing_ttl
        self._checks: dict[str, FileCheck] = {}
        self._listing: dict[str, tuple[float, list[LakeFile], list[str]]] = {}
        self._tables: dict[str, str] | None = None
        self._discovery_warnings: list[str] = []
        self._inferred: dict[str, list[tuple[str, str]]] = {}

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- discovery ---------------------------------------------------------------------------------

    def containers(self) -> list[str]:
        """Container folders: the root itself when it is one, else its ``am-*`` subfolders."""
        if _is_container(self.root):
            return [self.root]
        out = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            if entry.is_dir() and entry.name.lower().startswith("am-"):
                out.append(entry.path)
        return out

    def _discover(self) -> dict[str, str]:
        if self._tables is not None:
            return self._tables
        tables: dict[str, str] = {}
        warnings: list[str] = []
        if not _is_container(self.root):
            for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
                if entry.is_dir() and not entry.name.lower().startswith("am-") and not entry.name.startswith("."):
                    warnings.append(f"{entry.name}: not an export container (am-<table>), ignored")
        for container in self.containers():
            name = self._table_name(container, warnings)
            if name is None:
                continue
            if name in tables:
                warnings.append(f"{self._rel(container)}: records of {name}, already read from "
                                f"{self._rel(tables[name])}; ignored")
                continue
            tables[name] = container
        if not tables and not self.containers():
            raise OptionError(f"no export containers (am-<table>) under {self.root!r}")
        self._tables = tables
        self._discovery_warnings = warnings
        return tables

    def _table_name(self, container: str, warnings: list[str]) -> str | None:
        """The table a container holds: its first readable record's Type, else its folder name."""
        files, _ = self._list(container, None, None)
        for f in files[:50]:
            name = _peek_type(f)
            if name:
                return name
        suffix = os.path.basename(container.rstrip(os.sep))[3:] if _is_am(container) else ""
        for known in package_schemas():
            if known.lower() == suffix.lower():
                if not files:
                    warnings.append(f"{self._rel(container)}: no export files; {known} is empty")
                return known
        if not files:
            warnings.append(f"{self._rel(container)}: no export files and not a known table; ignored")
            return None
        warnings.append(f"{self._rel(container)}: no record names its table (Type); using {suffix!r}")
        return suffix or os.path.basename(container)

    def table_names(self) -> list[str]:
        return sorted(self._discover())

    def container_of(self, table: str) -> str:
        tables = self._discover()
        if table in tables:
            return tables[table]
        for name, path in tables.items():
            if name.lower() == table.lower():
                return path
        raise TableNotFoundError(table, tables)

    def _canonical(self, table: str) -> str:
        tables = self._discover()
        if table in tables:
            return table
        for name in tables:
            if name.lower() == table.lower():
                return name
        raise TableNotFoundError(table, tables)

    def refresh(self) -> None:
        """Forget listings, table names and checks (files changed under the lake)."""
        self._listing.clear()
        self._checks.clear()
        self._tables = None
        self._inferred.clear()

    # -- listing and pruning -----------------------------------------------------------------------

    def _bounds(self, window: TimeWindow | None) -> tuple[int | None, int | None]:
        """Blob start times that can hold rows of *window*: (lowest allowed end, highest allowed start)."""
        if window is None:
            return None, None
        start, end = _us(window.start), _us(window.end)
        skew = _td_us(self.skew) or 0
        late = _td_us(self.max_late)
        lo = None if start is None else start - skew  # need F + D > lo
        hi = None if end is None or late is None else end + late  # need F < hi
        return lo, hi

    def _list(self, container: str, lo: int | None, hi: int | None) -> tuple[list[LakeFile], list[str]]:
        files: list[LakeFile] = []
        unexpected: list[str] = []
        for tdir in _time_roots(container, unexpected):
            _walk_times(tdir, lo, hi, files, unexpected)
        files.sort(key=lambda f: (f.start_us, f.part, f.path))
        if lo is None and hi is None:
            self._listing[container] = (time.monotonic(), files, unexpected)
        return files, unexpected

    def _all_files(self, container: str) -> tuple[list[LakeFile], list[str]]:
        cached = self._listing.get(container)
        if cached is not None and time.monotonic() - cached[0] < self.listing_ttl:
            return cached[1], cached[2]
        return self._list(container, None, None)

    def plan(self, table: str, window: TimeWindow | tuple | None = None) -> TablePlan:
        """The files of *table* a query with *window* must read, checked, and what is left out."""
        window = _as_window(window)
        name = self._canonical(table)
        container = self.container_of(name)
        lo, hi = self._bounds(window)
        files, unexpected = self._list(container, lo, hi)
        all_files, _ = self._all_files(container)
        known = {f.path for f in all_files}
        if any(f.path not in known for f in files):
            all_files, _ = self._list(container, None, None)
        plan = TablePlan(table=name, container=container, schema=[], files_total=len(all_files))
        for path in unexpected:
            plan.warnings.append(f"{self._rel(path)}: not an export blob (y=/m=/d=/h=/m=/PT05M.json), skipped")
        empty: list[LakeFile] = []
        for f in files:
            chk = self.check_file(f)
            if chk.skip:
                if chk.reason == "empty file":
                    empty.append(f)
                else:
                    plan.skipped.append((f, chk.reason))
                    plan.warnings.append(f"{self._rel(f.path)}: {chk.reason}; file skipped")
            elif f.fmt == "parquet":
                plan.parquet.append(f)
                plan.parquet_columns[f.path] = chk.columns
            elif chk.scanned:
                plan.scanned.append(f)
            else:
                plan.strict.append(f)
            if (chk.skipped_lines or chk.kept_lines) and not chk.skip:
                plan.warnings.append(self._problem_text(f, chk))
            if chk.type_name and chk.type_name != name and not chk.skip:
                plan.warnings.append(f"{self._rel(f.path)}: records of {chk.type_name} in the {name} container "
                                     "(read as they are)")
        if empty:
            listed = ", ".join(self._rel(f.path) for f in empty[:3]) + (" ..." if len(empty) > 3 else "")
            plan.notes.append(f"{name}: {len(empty)} empty file(s), nothing to read: {listed}")
            plan.skipped.extend((f, "empty file") for f in empty)
        if len(plan.warnings) > _MAX_FILE_WARNINGS:
            rest = len(plan.warnings) - _MAX_FILE_WARNINGS
            more = f"{name}: {rest} more file(s) with problems (LakeReport.skipped lists every skipped line)"
            plan.warnings = [*plan.warnings[:_MAX_FILE_WARNINGS], more]
        plan.schema = self._schema(name, files, plan)
        if self.columns != "all":
            plan.scanned_columns = _held(plan.schema, (self._checks[f.path] for f in plan.scanned))
        if self.columns == "seen":
            plan.read_columns = _held(plan.schema, (self._checks[f.path] for f in plan.strict))
        return plan

    def files_for(self, table: str, window: TimeWindow | tuple | None = None) -> list[str]:
        """Paths of the readable files of *table* that can hold rows of *window* (for Spark)."""
        return [f.path for f in self.plan(table, window).files]

    def schema_for(self, table: str) -> list[tuple[str, str]]:
        """[(column, KQL type)] of *table*: the package schema plus any column the files add."""
        return self.plan(table, None).schema

    def _schema(self, table: str, files: list[LakeFile], plan: TablePlan) -> list[tuple[str, str]]:
        try:
            base = schema_for(table)
        except TableNotFoundError:
            base = []
        cols = dict(base)
        extra: dict[str, str] = {}
        sources: dict[str, int] = {}
        for f in files:
            chk = self._checks.get(f.path)
            if chk is None or chk.skip:
                continue
            for col, kt in chk.columns.items():
                if col in cols:
                    continue
                sources[col] = sources.get(col, 0) + 1
                prev = extra.get(col)
                extra[col] = kt if prev is None or prev == kt or prev == "" else _widen(prev, kt)
        if not base:
            # No package schema: the files' columns are the schema; TimeGenerated and Type always exist.
            inferred = [("TimeGenerated", "datetime"), ("Type", "string")]
            inferred += [(c, t or "string") for c, t in extra.items() if c not in ("TimeGenerated", "Type")]
            if table not in self._inferred:
                plan.notes.append(f"{table}: not in the package's table schemas; columns taken from its files "
                                  f"({len(inferred)} columns)")
            self._inferred[table] = inferred
            return inferred
        for col, kt in extra.items():
            plan.notes.append(f"{table}: column {col} (in {sources[col]} file(s)) is not in the table schema; "
                              f"read as {kt or 'string'}")
        return base + [(c, t or "string") for c, t in extra.items()]

    # -- checks ------------------------------------------------------------------------------------

    def check_file(self, f: LakeFile, *, full: bool = False) -> FileCheck:
        """Check one file (cached until its size or mtime changes); *full* scans every line."""
        try:
            st = os.stat(f.path)
        except OSError as exc:
            return FileCheck(size=0, mtime_ns=0, skip=True, reason=f"cannot read ({exc.strerror})")
        cached = self._checks.get(f.path)
        unchanged = cached is not None and cached.size == st.st_size and cached.mtime_ns == st.st_mtime_ns
        if unchanged and (not full or cached.scanned or cached.skip):  # type: ignore[union-attr]
            return cached  # type: ignore[return-value]
        if f.fmt == "parquet":
            chk = _check_parquet(f.path, st)
        else:
            chk = _check_json(f.path, st, self._types_for_check(f), full=full or self.validate == "full")
        self._checks[f.path] = chk
        return chk

    def _types_for_check(self, f: LakeFile) -> dict[str, str]:
        if self._tables is None:
            return {}
        for name, container in self._tables.items():
            if f.path.startswith(container + os.sep):
                try:
                    return dict(schema_for(name))
                except TableNotFoundError:
                    return {}
        return {}

    def recover(self, message: str) -> bool:
        """After DuckDB failed on a lake file: scan the file it names. True if the query should run again."""
        m = re.search(r'in file "([^"]+)"', message) or re.search(r"file '([^']+)'", message)
        if not m:
            return False
        path = os.path.abspath(m.group(1))
        if not path.startswith(self.root):
            return False
        f = _blob_from_path(path)
        if f is None:
            return False
        before = self._checks.get(path)
        if before is not None and before.scanned:
            return False
        chk = self.check_file(f, full=True)
        if f.fmt == "json" and not chk.skip:
            if not chk.problems:
                # DuckDB saw what the scan did not (a value of a type it cannot convert): name it.
                line = re.search(r"line (\d+)", message)
                chk.note(int(line.group(1)) if line else 0,
                         f"DuckDB: {_first_line(message)} (unreadable values read as empty)", skipped=False)
        elif f.fmt == "parquet":
            chk.skip = True
            chk.reason = chk.reason or f"DuckDB cannot read it ({_first_line(message)})"
        return True

    def check(self, window: TimeWindow | tuple | None = None, tables: Iterable[str] | None = None) -> LakeReport:
        """Scan every file (of *tables*, in *window*) line by line: the full audit of a lake."""
        window = _as_window(window)
        names = list(tables) if tables is not None else self.table_names()
        for name in names:
            for f in self.plan(name, window).files:
                if f.fmt == "json":
                    self.check_file(f, full=True)
        report = LakeReport(window=window)
        for name in names:
            self._report_table(report, self.plan(name, window))
        return report

    # -- DuckDB ------------------------------------------------------------------------------------

    def register_duckdb(self, con: duckdb.DuckDBPyConnection, window: TimeWindow | tuple | None = None,
                        tables: Iterable[str] | None = None) -> LakeReport:
        """Create a temp view per table over exactly the files *window* needs; returns what was read.

        Cheap enough to call before every query with that query's window: files are listed only in
        the folders the window can use, and each file is checked once.
        """
        window = _as_window(window)
        report = LakeReport(window=window)
        known = self._discover()
        report.warnings.extend(self._discovery_warnings)
        names = list(known) if tables is None else [self._canonical(t) for t in tables if self._has(t)]
        for name in names:
            plan = self.plan(name, window)
            _create_view(con, name, view_sql(plan))
            self._report_table(report, plan)
        return report

    def run_duckdb(self, con: duckdb.DuckDBPyConnection, run: Callable[[], T],
                   window: TimeWindow | tuple | None = None, tables: Iterable[str] | None = None,
                   attempts: int = 5) -> tuple[T, LakeReport]:
        """Register views, call *run*; when it fails on a damaged lake file, scan that file and retry."""
        tables = None if tables is None else list(tables)
        for _ in range(attempts):
            report = self.register_duckdb(con, window, tables)
            try:
                return run(), report
            except Exception as exc:
                if not self.recover(str(exc)):
                    raise
        report = self.register_duckdb(con, window, tables)
        return run(), report

    def _has(self, table: str) -> bool:
        try:
            self._canonical(table)
        except TableNotFoundError:
            return False
        return True

    def _report_table(self, report: LakeReport, plan: TablePlan) -> None:
        lines_skipped = 0
        for f in plan.scanned + plan.strict:
            chk = self._checks[f.path]
            lines_skipped += chk.skipped_lines
            report.skipped.extend((f.path, line, reason) for line, reason, skipped in chk.problems if skipped)
        for f, reason in plan.skipped:
            report.skipped.append((f.path, None, reason))
        read = plan.files
        report.tables[plan.table] = TableReport(
            table=plan.table, files_read=len(read), files_total=plan.files_total,
            files_skipped=sum(1 for _, r in plan.skipped if r != "empty file"),
            bytes_read=sum(self._checks[f.path].size for f in read), lines_skipped=lines_skipped)
        report.warnings.extend(plan.warnings)
        report.notes.extend(plan.notes)

    # -- description -------------------------------------------------------------------------------

    def describe(self, con: duckdb.DuckDBPyConnection | None = None) -> LakeDescription:
        """Tables, file counts, sizes, formats, layouts and export time range; rows and TimeGenerated
        range too when a DuckDB connection *con* is given (that reads every file)."""
        out = []
        names = self.table_names()
        warnings = list(self._discovery_warnings)
        for name in names:
            files, _ = self._list(self.container_of(name), None, None)
            size = 0
            for f in files:
                with contextlib.suppress(OSError):
                    size += os.path.getsize(f.path)
            desc = TableDescription(
                table=name, container=self._rel(self.container_of(name)), files=len(files), bytes=size,
                formats=sorted({f.fmt for f in files}), layouts=sorted({f.layout for f in files}),
                first_folder=files[0].start if files else None,
                last_folder_end=max((f.end for f in files), default=None),
                columns=len(self.schema_for(name)))
            out.append(desc)
        if con is not None:
            report = self.register_duckdb(con)
            warnings.extend(w for w in report.warnings if w not in warnings)
            for desc in out:
                rows, lo, hi = con.execute(
                    f'SELECT count(*), epoch_us(min("TimeGenerated")), epoch_us(max("TimeGenerated")) '
                    f"FROM {_ident(desc.table)}").fetchone()
                desc.rows = int(rows)
                desc.min_time = None if lo is None else _dt(int(lo))
                desc.max_time = None if hi is None else _dt(int(hi))
        return LakeDescription(root=self.root, tables=out, warnings=warnings)

    # -- text --------------------------------------------------------------------------------------

    def _rel(self, path: str) -> str:
        """A path relative to the lake root, the long workspace part shortened."""
        rel = os.path.relpath(path, os.path.dirname(self.root) if _is_container(self.root) else self.root)
        return re.sub(r"WorkspaceResourceId=/subscriptions/.*?/workspaces/[^/]+/", "…/", rel)

    def _problem_text(self, f: LakeFile, chk: FileCheck) -> str:
        parts = []
        for flag, total, verb in ((True, chk.skipped_lines, "skipped"), (False, chk.kept_lines, "read with gaps")):
            items = [(n, r) for n, r, s in chk.problems if s is flag]
            if not total:
                continue
            shown = "; ".join(f"line {n}: {r}" for n, r in items[:_MAX_LINES_LISTED])
            more = f"; and {total - min(len(items), _MAX_LINES_LISTED)} more" if total > _MAX_LINES_LISTED else ""
            parts.append(f"{total} line(s) {verb} ({shown}{more})")
        return f"{self._rel(f.path)}: " + ", ".join(parts)


# -- DuckDB SQL -------------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _file_list(files: Sequence[LakeFile]) -> str:
    return "[" + ", ".join(_lit(f.path) for f in files) + "]"


def _held(schema: list[tuple[str, str]], checks: Iterable[FileCheck]) -> list[str]:
    """The schema columns the files of *checks* hold (TimeGenerated and Type always)."""
    seen = {"TimeGenerated", "Type"}
    for chk in checks:
        seen.update(chk.columns)
    return [c for c, _ in schema if c in seen]


def view_sql(plan: TablePlan) -> str:
    """A SELECT over the plan's files with the schema's columns and types, in schema order."""
    cols = plan.schema
    every = [c for c, _ in cols]

    def select(read: set[str], source: str = "") -> str:
        return ", ".join(f"{source}{_ident(c)} AS {_ident(c)}" if c in read
                         else f"CAST(NULL AS {duckdb_type(t)}) AS {_ident(c)}" for c, t in cols)

    pieces = []
    # Paths hold y=/m=/d=/h=/m= folders: DuckDB must not turn them into (clashing) partition columns.
    if plan.strict:
        read = set(plan.read_columns if plan.read_columns is not None else every)
        columns = "{" + ", ".join(f"{_lit(c)}: {_lit(duckdb_type(t))}" for c, t in cols if c in read) + "}"
        pieces.append(f"SELECT {select(read)} FROM read_json({_file_list(plan.strict)}, "
                      f"format='newline_delimited', columns={columns}, hive_partitioning=false)")
    if plan.scanned:
        # Record by record: read_json's per-file cost is steep for many small files, and these files'
        # problems are known line by line already. ignore_errors makes a malformed line NULL, and a
        # record that is no object, or holds neither TimeGenerated nor Type, transforms to NULLs:
        # exactly the lines the report lists as skipped.
        read = set(plan.scanned_columns if plan.scanned_columns is not None else every)
        struct = json.dumps({c: duckdb_type(t) for c, t in cols if c in read})
        pieces.append(f"SELECT {select(read, '_r.')} FROM (SELECT json_transform(json, {_lit(struct)}) AS _r "
                      f"FROM read_json_objects({_file_list(plan.scanned)}, format='newline_delimited', "
                      "ignore_errors=true, hive_partitioning=false)) "
                      'WHERE _r."TimeGenerated" IS NOT NULL OR _r."Type" IS NOT NULL')
    if plan.parquet:
        present: dict[str, set[str]] = {}
        for f in plan.parquet:
            for col, kt in plan.parquet_columns.get(f.path, {}).items():
                present.setdefault(col, set()).add(kt)
        proj = []
        for col, kt in cols:
            target = duckdb_type(kt)
            if col not in present:
                proj.append(f"CAST(NULL AS {target}) AS {_ident(col)}")
            elif present[col] == {kt} or (present[col] == {"string"} and kt in ("dynamic", "guid")):
                proj.append(f"CAST({_ident(col)} AS {target}) AS {_ident(col)}")
            else:
                proj.append(f"TRY_CAST({_ident(col)} AS {target}) AS {_ident(col)}")
        pieces.append(f"SELECT {', '.join(proj)} FROM read_parquet({_file_list(plan.parquet)}, union_by_name=true, "
                      "hive_partitioning=false)")
    if not pieces:
        empty = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {_ident(c)}" for c, t in cols)
        return f"SELECT {empty} WHERE false"
    return " UNION ALL ".join(pieces)


def _create_view(con: Any, name: str, sql: str) -> None:
    """CREATE OR REPLACE the temp view, unless it already stands over the same SQL.

    Binding a view costs DuckDB time per file and column; a query window that moved without changing
    the files it needs (the usual case for ``ago()``) reuses the view. The SQL's digest rides in the
    view's comment, so a different connection or a dropped view is never mistaken for this one.
    """
    import hashlib

    tag = "kqlmagic_plus.lake.core:" + hashlib.sha256(sql.encode()).hexdigest()
    rows = con.execute("SELECT comment FROM duckdb_views() WHERE temporary AND view_name = ?", [name]).fetchall()
    if rows and rows[0][0] == tag:
        return
    con.execute(f"CREATE OR REPLACE TEMP VIEW {_ident(name)} AS {sql}")
    con.execute(f"COMMENT ON VIEW {_ident(name)} IS {_lit(tag)}")


# -- walking the layout ------------------------------------------------------------------------------


def _is_am(path: str) -> bool:
    return os.path.basename(path.rstrip(os.sep)).lower().startswith("am-")


def _is_container(path: str) -> bool:
    """A container: named am-*, or holding the export's WorkspaceResourceId= or y= folders itself."""
    if _is_am(path):
        return True
    try:
        names = os.listdir(path)
    except OSError:
        return False
    return any(n == "WorkspaceResourceId=" or re.fullmatch(r"y=\d{4}", n) for n in names)


def _time_roots(container: str, unexpected: list[str], depth: int = 0) -> Iterator[str]:
    """Folders holding ``y=YYYY`` folders, below a container (any workspace path in between)."""
    try:
        entries = sorted(os.scandir(container), key=lambda e: e.name)
    except OSError:
        return
    if any(e.is_dir() and re.fullmatch(r"y=\d{4}", e.name) for e in entries):
        yield container
        for e in entries:
            if not (e.is_dir() and re.fullmatch(r"y=\d{4}", e.name)) and not e.name.startswith("."):
                unexpected.append(e.path)
        return
    if depth > 12:
        return
    for e in entries:
        if e.is_dir():
            yield from _time_roots(e.path, unexpected, depth + 1)
        elif not e.name.startswith("."):
            unexpected.append(e.path)


@cache
def _day_start(y: int, m: int, d: int) -> int:
    return (date(y, m, d).toordinal() - _EPOCH_ORDINAL) * 86_400 * _US


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
        return day, day + 86_400 * _US
    if not 0 <= values[3] < 24:
        raise ValueError("hour")
    hour = day + values[3] * _HOUR
    if len(values) == 4:
        return hour, hour + _HOUR
    if not 0 <= values[4] < 60:
        raise ValueError("minute")
    minute = hour + values[4] * 60 * _US
    return minute, minute + 60 * _US


def _walk_times(tdir: str, lo: int | None, hi: int | None, files: list[LakeFile], unexpected: list[str],
                values: list[int] | None = None) -> None:
    values = values or []
    level = len(values)
    try:
        entries = sorted(os.scandir(tdir), key=lambda e: e.name)
    except OSError:
        return
    if level == 5:
        start = _level_range(values)[0]
        for e in entries:
            m = _BLOB.match(e.name)
            if m is None or not e.is_file():
                if not e.name.startswith("."):
                    unexpected.append(e.path)
                continue
            span = _SPANS[m.group(1).upper()]
            f = LakeFile(path=e.path, start_us=start, span_us=span, fmt=m.group(3).lower(),
                         part=int(m.group(2) or 0))
            if (lo is None or start + span > lo) and (hi is None or start < hi):
                files.append(f)
        return
    prefix = _LEVELS[level] + "="
    for e in entries:
        name = e.name
        ok = e.is_dir() and name.startswith(prefix) and name[2:].isdigit()
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
        if (lo is None or b + _HOUR > lo) and (hi is None or a < hi):
            _walk_times(e.path, lo, hi, files, unexpected, [*values, value])


def _blob_from_path(path: str) -> LakeFile | None:
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


# -- file checks ------------------------------------------------------------------------------------

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")


def _check_json(path: str, st: os.stat_result, types: dict[str, str], *, full: bool) -> FileCheck:
    chk = FileCheck(size=st.st_size, mtime_ns=st.st_mtime_ns)
    if st.st_size == 0:
        chk.skip, chk.reason = True, "empty file"
        return chk
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD)
            start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
            if not start:
                if st.st_size <= _HEAD:
                    chk.skip, chk.reason = True, "empty file"
                    return chk
            elif not start.startswith(b"{"):
                chk.skip, chk.reason = True, _not_json_reason(start)
                return chk
            if full or st.st_size <= SCAN_BELOW:
                _scan(fh, chk, types)
                return chk
            first = _first_record(fh, head)
            suspicious = not isinstance(first, dict) or "TimeGenerated" not in first
            if isinstance(first, dict) and isinstance(first.get("Type"), str):
                chk.type_name = first["Type"]
            for rec in _records_in(head, first=True):
                _add_columns(chk.columns, rec)
            tail_ok, tail = _last_line_ok(fh, st.st_size, head)
            for rec in _records_in(tail, first=False):
                _add_columns(chk.columns, rec)
            if suspicious or not tail_ok:
                _scan(fh, chk, types)
    except OSError as exc:
        chk.skip, chk.reason = True, f"cannot read ({exc.strerror})"
    return chk


def _add_columns(columns: dict[str, str], rec: dict) -> None:
    """Note the keys of *rec* not seen yet, with the KQL type their value suggests ("" for null)."""
    for k, v in rec.items():
        if k not in columns or (not columns[k] and v is not None):
            columns[k] = "" if v is None else _infer_kql(v)


def _not_json_reason(start: bytes) -> str:
    if start.startswith(b"PAR1"):
        return "Parquet data in a .json file"
    if start.startswith(b"\x1f\x8b"):
        return "gzip-compressed, not JSON lines"
    sample = start[:24].decode("utf-8", "replace").replace("\n", " ").replace("\r", " ")
    return f"not JSON lines (starts with {sample!r})"


def _first_record(fh: Any, head: bytes) -> Any:
    nl = head.find(b"\n")
    line = head if nl < 0 else head[:nl]
    if nl < 0 and len(head) == _HEAD:
        # A first record longer than the head: read on to its end (bounded by DuckDB's 16 MB object limit).
        fh.seek(0)
        line = fh.readline(16 * 1024 * 1024)
    try:
        return json.loads(line)
    except ValueError:
        return None


def _records_in(chunk: bytes, *, first: bool) -> Iterator[dict]:
    """The complete records in the first (or last) bytes of a file, for the columns it holds."""
    lines = chunk.split(b"\n")
    if first and not chunk.endswith(b"\n"):
        lines = lines[:-1]
    elif not first:
        lines = lines[1:]  # the first line of a tail may start mid-record
    for line in lines[:400]:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            yield rec


def _last_line_ok(fh: Any, size: int, head: bytes) -> tuple[bool, bytes]:
    """Whether the file's last record is complete, and the file's last bytes."""
    if size <= len(head):
        tail = head
    else:
        fh.seek(size - _HEAD)
        tail = fh.read(_HEAD)
    body = tail.rstrip(b" \t\r\n")
    nl = body.rfind(b"\n")
    if nl < 0 and size > len(tail):
        return True, b""  # a last record longer than the tail: left to DuckDB and recover()
    try:
        return isinstance(json.loads(body[nl + 1:]), dict), tail
    except ValueError:
        return False, tail


def _scan(fh: Any, chk: FileCheck, types: dict[str, str]) -> None:
    """Read every line: name each one that loses data, and say whether it is skipped or kept."""
    fh.seek(0)
    chk.scanned = True
    problems = chk.problems
    problems.clear()
    n = records = 0
    chk.skipped_lines = chk.kept_lines = 0
    typed = {c: t for c, t in types.items() if t in ("int", "long", "real", "bool", "datetime")}
    for raw in fh:
        n += 1
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except ValueError:
            # Only the last line can lack its newline: a record cut off by an interrupted write.
            reason = "not valid JSON" if raw.endswith(b"\n") else "truncated record at the end of the file"
            chk.note(n, reason, skipped=True)
            continue
        if not isinstance(rec, dict):
            chk.note(n, f"a JSON {type(rec).__name__}, not a record", skipped=True)
            continue
        has_tg = "TimeGenerated" in rec and rec["TimeGenerated"] is not None
        if not has_tg and rec.get("Type") is None:
            chk.note(n, "no TimeGenerated and no Type", skipped=True)
            continue
        records += 1
        if chk.type_name is None and isinstance(rec.get("Type"), str):
            chk.type_name = rec["Type"]
        _add_columns(chk.columns, rec)
        if not has_tg:
            chk.note(n, "no TimeGenerated (kept with an empty TimeGenerated)", skipped=False)
        for col, value in rec.items():
            kt = typed.get(col)
            if kt is None or value is None:
                continue
            issue = _value_problem(value, kt)
            if issue:
                chk.note(n, f"{col} {_short(value)} is not {issue} (read as empty)", skipped=False)
    chk.records = records
    if records == 0 and problems:
        chk.skip = True
        chk.reason = "no readable record"


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _value_problem(value: Any, kql_type: str) -> str | None:
    """Why DuckDB reads *value* as NULL in a column of *kql_type* (None when it reads or converts it)."""
    if kql_type in ("int", "long", "real"):
        if isinstance(value, bool | int | float) or (isinstance(value, str) and _is_float(value)):
            return None
        return {"int": "an int", "long": "an integer", "real": "a number"}[kql_type]
    if kql_type == "bool":
        if isinstance(value, bool | int | float) or str(value).strip().lower() in ("true", "false"):
            return None
        return "a bool"
    if kql_type == "datetime" and not (isinstance(value, str) and _ISO.match(value.strip())):
        return "a date and time"
    return None


def _is_float(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


def _infer_kql(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, dict | list):
        return "dynamic"
    if isinstance(value, str) and "T" in value and _ISO.match(value) and len(value) > 10:
        return "datetime"
    return "string"


def _widen(a: str, b: str) -> str:
    if {a, b} <= {"long", "real"}:
        return "real"
    if "" in (a, b):
        return a or b
    return "string"


def _check_parquet(path: str, st: os.stat_result) -> FileCheck:
    chk = FileCheck(size=st.st_size, mtime_ns=st.st_mtime_ns)
    if st.st_size == 0:
        chk.skip, chk.reason = True, "empty file"
        return chk
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(max(0, st.st_size - 4))
            tail = fh.read(4)
    except OSError as exc:
        chk.skip, chk.reason = True, f"cannot read ({exc.strerror})"
        return chk
    if head != b"PAR1":
        chk.skip = True
        chk.reason = "JSON lines in a .parquet file" if head.lstrip()[:1] == b"{" else "not a Parquet file"
        return chk
    if tail != b"PAR1":
        chk.skip, chk.reason = True, "truncated Parquet file (no footer)"
        return chk
    try:
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        from kqlmagic_plus.kqltypes import kql_type_of_arrow

        chk.columns = {f.name: kql_type_of_arrow(f.type) for f in pf.schema_arrow}
        chk.records = pf.metadata.num_rows
        chk.scanned = True  # the footer gives the exact columns
    except Exception as exc:
        chk.skip, chk.reason = True, f"unreadable Parquet ({_first_line(str(exc))})"
    return chk


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


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


# -- the window a query asks for ---------------------------------------------------------------------

#: Operators that bring in other tables or rows: a leading filter then no longer bounds every table.
_MULTI_SOURCE = {"join", "union", "lookup", "let", "materialize", "toscalar", "table", "database", "cluster",
                 "workspace", "app", "evaluate", "invoke", "fork", "facet", "externaldata", "datatable",
                 "range", "find", "search", "view", "as", "print", "external_table", "materialized_view"}
_UNITS = {"d": 86_400, "day": 86_400, "days": 86_400, "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600,
          "hours": 3600, "m": 60, "min": 60, "minute": 60, "minutes": 60, "s": 1, "sec": 1, "second": 1,
          "seconds": 1, "ms": 1e-3, "milli": 1e-3, "millis": 1e-3, "millisecond": 1e-3, "milliseconds": 1e-3,
          "microsecond": 1e-6, "microseconds": 1e-6, "tick": 1e-7, "ticks": 1e-7}


def window_from_query(query: str, now: datetime | None = None) -> TimeWindow | None:
    """The TimeGenerated window a query's leading ``where`` clauses bound, or None.

    Reads ``T | where TimeGenerated > ago(7d)``, ``>= datetime(..)``, ``< now()``, ``between
    (datetime(..) .. datetime(..))`` and ``and`` of those, over one or more leading ``where``.
    Returns None when the query reads more than one source (join, union, let, ...), since one window
    then would prune tables the filter does not cover; and ignores any condition it does not understand,
    so the window it returns is never narrower than the query's own filter.
    """
    from kqlmagic_plus.language.lexer import significant, tokenize

    toks = significant(tokenize(query))
    if not toks or toks[0].kind != "ident":
        return None
    if any(t.kind == "ident" and t.text in _MULTI_SOURCE for t in toks) or any(t.text == ";" for t in toks):
        return None
    now = now or datetime.now(UTC)
    start: datetime | None = None
    end: datetime | None = None
    i = 1
    while i + 1 < len(toks) and toks[i].text == "|" and toks[i + 1].text in ("where", "filter"):
        j = i + 2
        depth = 0
        clause = []
        while j < len(toks) and not (depth == 0 and toks[j].text == "|"):
            depth += toks[j].text in "([{"
            depth -= toks[j].text in ")]}"
            clause.append(toks[j])
            j += 1
        for lo, hi in _clause_bounds(query, clause, now):
            if lo is not None and (start is None or lo > start):
                start = lo
            if hi is not None and (end is None or hi < end):
                end = hi
        i = j
    if start is None and end is None:
        return None
    return TimeWindow(start, end)


def _split_top(tokens: list, word: str) -> list[list]:
    out: list[list] = [[]]
    depth = 0
    for t in tokens:
        if t.text in ("(", "[", "{"):
            depth += 1
        elif t.text in (")", "]", "}"):
            depth -= 1
        if depth == 0 and t.kind == "ident" and t.text == word:
            out.append([])
        else:
            out[-1].append(t)
    return out


def _clause_bounds(query: str, clause: list, now: datetime) -> list[tuple[datetime | None, datetime | None]]:
    if len(_split_top(clause, "or")) > 1:
        return []
    out = []
    for conj in _split_top(clause, "and"):
        b = _conjunct_bounds(query, conj, now)
        if b is not None:
            out.append(b)
    return out


def _conjunct_bounds(query: str, toks: list, now: datetime) -> tuple[datetime | None, datetime | None] | None:
    while len(toks) >= 2 and toks[0].text == "(" and toks[-1].text == ")":
        toks = toks[1:-1]
    if not toks:
        return None
    tick = timedelta(microseconds=1)
    if toks[0].text == "TimeGenerated" and len(toks) > 2 and toks[1].text == "between":
        inner = toks[2:]
        if inner[0].text != "(" or inner[-1].text != ")":
            return None
        parts = _split_dots(inner[1:-1])
        if parts is None:
            return None
        lo, hi = (_time_value(query, p, now) for p in parts)
        if lo is None or hi is None:
            return None
        return lo, hi + tick
    ops = {">": "gt", ">=": "ge", "<": "lt", "<=": "le"}
    flipped = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}
    if toks[0].text == "TimeGenerated" and len(toks) > 2 and toks[1].text in ops:
        op, value = ops[toks[1].text], _time_value(query, toks[2:], now)
    elif toks[-1].text == "TimeGenerated" and len(toks) > 2 and toks[-2].text in ops:
        op, value = flipped[ops[toks[-2].text]], _time_value(query, toks[:-2], now)
    else:
        return None
    if value is None:
        return None
    if op in ("gt", "ge"):
        return value, None
    return None, value + (tick if op == "le" else timedelta(0))


def _split_dots(toks: list) -> list[list] | None:
    depth = 0
    for k, t in enumerate(toks):
        depth += t.text == "("
        depth -= t.text == ")"
        if depth == 0 and t.text == "..":
            return [toks[:k], toks[k + 1:]]
    return None


def _time_value(query: str, toks: list, now: datetime) -> datetime | None:
    """``ago(ts)``, ``now()``, ``now(ts)`` or ``datetime(lit)`` as an absolute UTC time (None otherwise)."""
    if len(toks) < 3 or toks[1].text != "(" or toks[-1].text != ")":
        return None
    fn = toks[0].text
    inner = query[toks[1].end:toks[-1].start].strip()
    if fn == "ago":
        span = _timespan(inner)
        return None if span is None else now - span
    if fn == "now":
        if not inner:
            return now
        sign = -1 if inner.startswith("-") else 1
        span = _timespan(inner.lstrip("+-").strip())
        return None if span is None else now + sign * span
    if fn in ("datetime", "todatetime"):
        return _parse_datetime(inner)
    return None


def _timespan(text: str) -> timedelta | None:
    text = text.strip()
    m = re.fullmatch(r"(?:time|timespan)\((.*)\)", text)
    if m:
        text = m.group(1).strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)", text)
    if m and m.group(2).lower() in _UNITS:
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    m = re.fullmatch(r"(?:(\d+)\.)?(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?", text)
    if m:
        days, h, mi, s, frac = m.groups()
        return timedelta(days=int(days or 0), hours=int(h), minutes=int(mi), seconds=int(s or 0),
                         microseconds=int((frac or "0")[:6].ljust(6, "0")))
    return None


def _parse_datetime(text: str) -> datetime | None:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    m = re.fullmatch(r"(.*?\.\d{6})\d+(.*)", text)
    if m:
        text = m.group(1) + m.group(2)  # Python keeps microseconds; KQL writes up to 7 digits
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


__all__ = ["DEFAULT_MAX_LATE", "DEFAULT_SKEW", "Lake", "LakeDescription", "LakeFile",
           "LakeReport", "TablePlan", "package_schemas", "schema_for", "view_sql", "window_from_query"]
