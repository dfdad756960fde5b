"""What a query reads of the lake and what it is told: table plans, reports, descriptions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kqlmagic_plus.lake.checks import FileCheck, FileChecks, problem_text
from kqlmagic_plus.lake.layout import LakeFile
from kqlmagic_plus.request import TimeWindow

#: File warnings per table.
_MAX_FILE_WARNINGS = 20


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
    #: Renamed column -> the JSON key it reads (keys that differ only in case: ``ProcessId_1`` -> ``ProcessId``).
    keys: dict[str, str] = field(default_factory=dict)
    #: Bytes of the longest line of the scanned files.
    longest: int = 0

    @property
    def files(self) -> list[LakeFile]:
        return sorted(self.strict + self.scanned + self.parquet, key=lambda f: (f.start_us, f.part, f.path))

    @property
    def files_read(self) -> int:
        return len(self.strict) + len(self.scanned) + len(self.parquet)

    def add_files(self, files: list[LakeFile], unexpected: list[str], check: Callable[[LakeFile], FileCheck],
                  rel: Callable[[str], str]) -> None:
        """Check each of *files* and put it with the files read its way, or with those left out and why."""
        name = self.table
        for path in unexpected:
            self.warnings.append(f"{rel(path)}: not an export blob (y=/m=/d=/h=/m=/PT05M.json), skipped")
        empty: list[LakeFile] = []
        for f in files:
            chk = check(f)
            if chk.skip:
                if chk.reason == "empty file":
                    empty.append(f)
                else:
                    self.skipped.append((f, chk.reason))
                    self.warnings.append(f"{rel(f.path)}: {chk.reason}; file skipped")
            elif f.fmt == "parquet":
                self.parquet.append(f)
                self.parquet_columns[f.path] = chk.columns
            elif chk.scanned:
                self.scanned.append(f)
                self.longest = max(self.longest, chk.longest)
            else:
                self.strict.append(f)
            if (chk.skipped_lines or chk.kept_lines) and not chk.skip:
                self.warnings.append(problem_text(rel(f.path), chk))
            if chk.type_name and chk.type_name != name and not chk.skip:
                self.warnings.append(f"{rel(f.path)}: records of {chk.type_name} in the {name} container "
                                     "(read as they are)")
        if empty:
            listed = ", ".join(rel(f.path) for f in empty[:3]) + (" ..." if len(empty) > 3 else "")
            self.notes.append(f"{name}: {len(empty)} empty file(s), nothing to read: {listed}")
            self.skipped.extend((f, "empty file") for f in empty)
        if len(self.warnings) > _MAX_FILE_WARNINGS:
            rest = len(self.warnings) - _MAX_FILE_WARNINGS
            more = f"{name}: {rest} more file(s) with problems (LakeReport.skipped lists every skipped line)"
            self.warnings = [*self.warnings[:_MAX_FILE_WARNINGS], more]


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
    #: A lake in Azure Storage: what this registration asked of the account (lake.storage.Counters).
    storage: Any = None

    @property
    def files_read(self) -> int:
        return sum(t.files_read for t in self.tables.values())

    @property
    def files_total(self) -> int:
        return sum(t.files_total for t in self.tables.values())

    def add_table(self, plan: TablePlan, checks: FileChecks) -> None:
        """Count what *plan* reads and leaves out (its files' *checks* say which lines), with its warnings."""
        lines_skipped = 0
        for f in plan.scanned + plan.strict:
            chk = checks[f.path]
            lines_skipped += chk.skipped_lines
            self.skipped.extend((f.path, line, reason) for line, reason, skipped in chk.problems if skipped)
        for f, reason in plan.skipped:
            self.skipped.append((f.path, None, reason))
        read = plan.files
        self.tables[plan.table] = TableReport(
            table=plan.table, files_read=len(read), files_total=plan.files_total,
            files_skipped=sum(1 for _, r in plan.skipped if r != "empty file"),
            bytes_read=sum(checks[f.path].size for f in read), lines_skipped=lines_skipped)
        self.warnings.extend(plan.warnings)
        self.notes.extend(plan.notes)

    def text(self) -> str:
        # A lake in Azure Storage is listed only where the window reaches: its total is what was listed.
        of = "listed files" if self.storage is not None else "files"
        parts = [f"{t.table} {t.files_read:,} of {t.files_total:,} {of}" for t in self.tables.values()]
        where = f" for {self.window}" if self.window is not None else ""
        asked = f" ({self.storage.text()})" if self.storage is not None else ""
        return f"lake{where}: " + ("; ".join(parts) if parts else "no tables") + asked

    def summary(self) -> dict[str, Any]:
        """Plain data for Result.stats (``--show-query``)."""
        return {"window": None if self.window is None else str(self.window), "text": self.text(),
                "files_read": self.files_read, "files_total": self.files_total,
                "tables": {n: {"files_read": t.files_read, "files_total": t.files_total,
                               "files_skipped": t.files_skipped, "lines_skipped": t.lines_skipped,
                               "bytes_read": t.bytes_read} for n, t in self.tables.items()},
                "warnings": len(self.warnings),
                **({"storage": vars(self.storage)} if self.storage is not None else {})}

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

