"""The exported lake as one object: :class:`Lake` ties its layout, time pruning, file checks, schemas and views."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from kqlmagic_plus.errors import OptionError, QueryError, TableNotFoundError
from kqlmagic_plus.lake.checks import FileCheck, FileChecks
from kqlmagic_plus.lake.layout import LakeFile, Layout, dt
from kqlmagic_plus.lake.plans import LakeDescription, LakeReport, TableDescription, TablePlan
from kqlmagic_plus.lake.schemas import held, schema_for, table_schema
from kqlmagic_plus.lake.storage import is_remote
from kqlmagic_plus.lake.views import ident, register_view, run_recovering
from kqlmagic_plus.lake.window import DEFAULT_MAX_LATE, DEFAULT_SKEW, as_window, bounds
from kqlmagic_plus.redaction import redact
from kqlmagic_plus.request import TimeWindow

if TYPE_CHECKING:
    import duckdb

    from kqlmagic_plus.lake.remote import RemoteLayout
    from kqlmagic_plus.lake.storage import StorageAccess

T = TypeVar("T")


class Lake:
    """An exported lake: a root holding ``am-*`` containers, or one container."""

    def __init__(self, root: str | os.PathLike[str], *, skew: timedelta = DEFAULT_SKEW,
                 max_late: timedelta | None = DEFAULT_MAX_LATE, validate: str = "quick", columns: str = "auto",
                 listing_ttl: float = 30.0, storage: StorageAccess | None = None):
        # A lake in Azure Storage (*storage*, see lake.storage) is listed there and read through local copies.
        self.remote: RemoteLayout | None = None
        if storage is not None:
            from kqlmagic_plus.lake.remote import RemoteLayout

            self.remote = RemoteLayout(storage, listing_ttl)
            self.root = self.remote.root
        else:
            self.root = os.path.abspath(os.path.expanduser(os.fspath(root)))
            if is_remote(os.fspath(root)):
                raise OptionError(f"lake {redact(os.fspath(root))!r} is in Azure Storage: open it with "
                                  "kqlmagic_plus.connections.storage.open_lake (or lake://URL), which signs in")
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
        self._layout = self.remote or Layout(self.root, listing_ttl)
        self._checks = FileChecks(self._types_for_check)
        self._inferred: dict[str, list[tuple[str, str]]] = {}

    def __repr__(self) -> str:
        return f"Lake({self.remote.url.display if self.remote else self.root!r})"

    @property
    def display(self) -> str:
        """Where the lake is, as messages show it: its folder, or its URL (no credential)."""
        return self.remote.url.display if self.remote else self.root

    @property
    def listing_ttl(self) -> float:
        """Seconds a full listing of a container is reused."""
        return self._layout.listing_ttl

    @listing_ttl.setter
    def listing_ttl(self, value: float) -> None:
        self._layout.listing_ttl = value

    # -- discovery ---------------------------------------------------------------------------------

    def containers(self) -> list[str]:
        """Container folders: the root itself when it is one, else its ``am-*`` subfolders."""
        return self._layout.containers()

    def table_names(self) -> list[str]:
        return sorted(self._layout.tables())

    def container_of(self, table: str) -> str:
        return self._layout.container_of(table)

    def refresh(self) -> None:
        """Forget listings, table names and checks (files changed under the lake)."""
        self._layout.refresh()
        self._checks.clear()
        self._inferred.clear()

    # -- plans -------------------------------------------------------------------------------------

    def plan(self, table: str, window: TimeWindow | tuple | None = None) -> TablePlan:
        """The files of *table* a query with *window* must read, checked, and what is left out."""
        window = as_window(window)
        name = self._layout.canonical(table)
        container = self._layout.container_of(name)
        lo, hi = bounds(window, self.skew, self.max_late)
        files, unexpected = self._layout.files(container, lo, hi)
        gone = self._layout.fetch(files)
        left_out = [(f, gone[f.path]) for f in files if f.path in gone]
        files = [f for f in files if f.path not in gone]
        all_files, _ = self._layout.all_files(container)
        known = {f.path for f in all_files}
        if any(f.path not in known for f in files):
            all_files, _ = self._layout.files(container, None, None)
        checked = {f.path: self.check_file(f) for f in files}
        self._checks.census(files)
        self._refresh(checked)
        notes: list[str] = []
        seen_before = name in self._inferred
        schema, keys, renamed = table_schema(name, checked.values(), self._inferred, notes)
        # A renamed key cannot sit beside its other spelling in DuckDB's strict reader (nor can the view
        # tell the two apart): the files holding one are read record by record.
        wanted = set(keys.values())
        strict_with_key = [f for f in files if f.fmt == "json" and not checked[f.path].scanned
                           and not checked[f.path].skip and wanted & checked[f.path].columns.keys()]
        if strict_with_key:
            for f in strict_with_key:
                self.check_file(f, full=True)
            self._refresh(checked)
            notes = []
            if not seen_before:
                self._inferred.pop(name, None)  # so the note on an inferred schema is made again
            schema, keys, renamed = table_schema(name, checked.values(), self._inferred, notes)
        plan = TablePlan(table=name, container=container, schema=schema, files_total=len(all_files), keys=keys)
        plan.add_files(files, unexpected, lambda f: checked[f.path], self._layout.rel)
        for f, reason in left_out:
            plan.skipped.append((f, reason))
            plan.warnings.append(f"{self._layout.rel(f.path)}: {reason}; not read")
        plan.notes.extend(notes)
        plan.warnings[:0] = renamed
        if self.columns != "all":
            plan.scanned_columns = held(plan.schema, (checked[f.path] for f in plan.scanned), keys)
        if self.columns == "seen":
            plan.read_columns = held(plan.schema, (checked[f.path] for f in plan.strict), keys)
        return plan

    def _refresh(self, checked: dict[str, FileCheck]) -> None:
        """Update *checked* to each file's check as it is now (a census or a scan may have replaced it)."""
        for path, chk in checked.items():
            checked[path] = self._checks.get(path) or chk

    def blob_versions(self, table: str, window: TimeWindow | tuple | None = None) -> list[tuple[str, str, int]]:
        """(blob, ETag, size) of each blob a query of *table* with *window* reads: listed, not read (a
        lake in Azure Storage; the result cache keys on these)."""
        if self.remote is None:
            raise OptionError(f"{self.display} is a local folder: its files have no ETags")
        lo, hi = bounds(as_window(window), self.skew, self.max_late)
        files, _ = self._layout.files(self._layout.container_of(self._layout.canonical(table)), lo, hi)
        return [self.remote.version(f.path) for f in files]

    def files_for(self, table: str, window: TimeWindow | tuple | None = None) -> list[str]:
        """Paths of the readable files of *table* that can hold rows of *window* (for Spark)."""
        return [f.path for f in self.plan(table, window).files]

    def schema_for(self, table: str) -> list[tuple[str, str]]:
        """[(column, KQL type)] of *table*: the package schema plus any column the files add."""
        return self.plan(table, None).schema

    # -- checks ------------------------------------------------------------------------------------

    def check_file(self, f: LakeFile, *, full: bool = False) -> FileCheck:
        """Check one file (cached until its size or mtime changes); *full* scans every line."""
        return self._checks.check(f, full=full, scan_new=self.validate == "full")

    def _types_for_check(self, f: LakeFile) -> dict[str, str]:
        name = self._layout.table_holding(f.path)
        if name is None:
            return {}
        try:
            return dict(schema_for(name))
        except TableNotFoundError:
            return {}

    def recover(self, message: str) -> bool:
        """After DuckDB failed on a lake file: scan the file it names. True if the query should run again."""
        return self._checks.recover(message, self.root)

    def check(self, window: TimeWindow | tuple | None = None, tables: Iterable[str] | None = None) -> LakeReport:
        """Scan every file (of *tables*, in *window*) line by line: the full audit of a lake."""
        window = as_window(window)
        names = list(tables) if tables is not None else self.table_names()
        for name in names:
            for f in self.plan(name, window).files:
                if f.fmt == "json":
                    self.check_file(f, full=True)
        report = LakeReport(window=window)
        for name in names:
            report.add_table(self.plan(name, window), self._checks)
        return report

    # -- DuckDB ------------------------------------------------------------------------------------

    def register_duckdb(self, con: duckdb.DuckDBPyConnection, window: TimeWindow | tuple | None = None,
                        tables: Iterable[str] | None = None) -> LakeReport:
        """Create a temp view per table over exactly the files *window* needs; returns what was read.

        Cheap enough to call before every query with that query's window: files are listed only in
        the folders the window can use, and each file is checked once.
        """
        window = as_window(window)
        report = LakeReport(window=window)
        before = self.remote.storage.counters.snapshot() if self.remote else None
        known = self._layout.tables()
        report.warnings.extend(self._layout.warnings)
        layout = self._layout
        words = set() if tables is None else set(tables)
        names = list(known) if tables is None else [layout.canonical(t) for t in tables if layout.has(t)]
        for name in names:
            plan = self.plan(name, window)
            register_view(con, plan)
            report.add_table(plan, self._checks)
            _refuse_named_renamed(plan, words)
        if self.remote is not None and before is not None:
            report.storage = self.remote.storage.counters.since(before)
        return report

    def run_duckdb(self, con: duckdb.DuckDBPyConnection, run: Callable[[], T],
                   window: TimeWindow | tuple | None = None, tables: Iterable[str] | None = None,
                   attempts: int = 5) -> tuple[T, LakeReport]:
        """Register views, call *run*; when it fails on a damaged lake file, scan that file and retry."""
        return run_recovering(self, con, run, window, tables, attempts)

    # -- description -------------------------------------------------------------------------------

    def describe(self, con: duckdb.DuckDBPyConnection | None = None) -> LakeDescription:
        """Tables, file counts, sizes, formats, layouts and export time range; rows and TimeGenerated
        range too when a DuckDB connection *con* is given (that reads every file)."""
        out = []
        names = self.table_names()
        warnings = list(self._layout.warnings)
        for name in names:
            files, _ = self._layout.files(self.container_of(name), None, None)
            size = 0
            for f in files:
                if self.remote is not None:
                    size += self.remote.version(f.path)[2]
                    continue
                with contextlib.suppress(OSError):
                    size += os.path.getsize(f.path)
            desc = TableDescription(
                table=name, container=self._layout.rel(self.container_of(name)), files=len(files), bytes=size,
                formats=sorted({f.fmt for f in files}), layouts=sorted({f.layout for f in files}),
                first_folder=files[0].start if files else None,
                last_folder_end=max((f.end for f in files), default=None),
                # A lake in Azure Storage would be read whole for its files' columns: its package schema's.
                columns=len(self.schema_for(name) if self.remote is None else _known_columns(name)))
            out.append(desc)
        if con is not None:
            report = self.register_duckdb(con)
            warnings.extend(w for w in report.warnings if w not in warnings)
            for desc in out:
                rows, lo, hi = con.execute(
                    f'SELECT count(*), epoch_us(min("TimeGenerated")), epoch_us(max("TimeGenerated")) '
                    f"FROM {ident(desc.table)}").fetchone()
                desc.rows = int(rows)
                desc.min_time = None if lo is None else dt(int(lo))
                desc.max_time = None if hi is None else dt(int(hi))
        return LakeDescription(root=self.display, tables=out, warnings=warnings)


def _known_columns(table: str) -> list[tuple[str, str]]:
    try:
        return schema_for(table)
    except TableNotFoundError:
        return []


def _refuse_named_renamed(plan: TablePlan, words: set[str]) -> None:
    """A query that names a renamed key as it is spelt (the local engine passes every word of the query as
    *tables*) is refused: DuckDB would bind ``ProcessId`` to ``ProcessID``, not to ``ProcessId_1``, and
    answer from the other column."""
    for name, key in plan.keys.items():
        if key in words:
            kept = next((c for c, _ in plan.schema if c.lower() == key.lower()), key)
            raise QueryError(f"{plan.table} has columns {kept} and {key}, which differ only in case, and the local "
                             f"engine cannot tell them apart by name: write {name} for the values of {key} "
                             f"(and {kept} for those of {kept})")
