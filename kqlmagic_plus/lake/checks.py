"""File checks: what reading each JSON lines or Parquet blob gives, and every line it loses.

Bad files
---------
Each file is checked once (and again when its size or mtime changes). Files up to 512 KiB are
read whole and every line checked; bigger ones get cheap checks: their first bytes (a JSON lines
blob starts with ``{``; Parquet has ``PAR1`` at both ends) and their first and last record. A big
file failing a cheap check is then scanned line by line too. A scanned file is read record by
record (``read_json_objects``, malformed lines left out) and every line that loses data is named in
the report with its reason; a file with nothing readable is skipped whole, and said so. Records
without TimeGenerated are kept, with an empty TimeGenerated that no time filter matches, and
reported. Big files that pass are censused (below), then read strictly (``read_json``): a value
DuckDB cannot convert, which only reading the column shows, makes DuckDB fail naming the file, and
:meth:`~kqlmagic_plus.lake.lake.Lake.recover` (as :meth:`~kqlmagic_plus.lake.lake.Lake.run_duckdb`
does) scans that file before the query runs again. ``validate="full"`` scans every file on first
sight; :meth:`~kqlmagic_plus.lake.lake.Lake.check` audits a whole lake.

Big files read whole
--------------------
The cheap checks see a big file's first and last records only, so before a big file is read
strictly DuckDB reads every record of it once (:meth:`FileChecks.census`, one pass over all such
files of a query, kept with the check): its exact keys, and whether any record is malformed, no
object, or without TimeGenerated. A file with any of those, or with a key neither the samples nor
the table schema know (a column only in its middle), is scanned line by line instead, so its
problems are named and its columns exact; so is a file DuckDB cannot census (a record over twice
its 16 MB ``maximum_object_size``), then read with a limit that fits its longest line. Records
nested deeper than Python's JSON reader goes (~1,000 levels) are checked by their top-level keys,
which DuckDB parses. It costs one DuckDB pass over each big file, once per :class:`Lake`: about
what one query over those files costs, on the first query that reads them.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.lake.layout import LakeFile, blob_from_path
from kqlmagic_plus.lake.schemas import ISO, add_columns

_HEAD = 64 * 1024
#: Files up to this size are read whole and every line checked once (Python reads ~100 MB/s): exact,
#: and cheaper than what DuckDB's strict JSON reader costs such a file on every query.
SCAN_BELOW = 512 * 1024
#: Warning lines listed per file before "and N more"; problems remembered per file.
_MAX_LINES_LISTED = 10
_MAX_PROBLEMS_KEPT = 1000


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
    #: A big file whose every record DuckDB read (:meth:`FileChecks.census`): ``columns`` are its exact keys.
    census: bool = False
    #: Bytes of the longest line (scanned files): DuckDB's object size limit must fit it.
    longest: int = 0

    def note(self, line: int, reason: str, *, skipped: bool) -> None:
        if skipped:
            self.skipped_lines += 1
        else:
            self.kept_lines += 1
        if len(self.problems) < _MAX_PROBLEMS_KEPT:
            self.problems.append((line, reason, skipped))


class FileChecks:
    """Each file's check, kept until the file's size or mtime changes."""

    def __init__(self, types: Callable[[LakeFile], dict[str, str]]):
        #: The column -> KQL type a file's records should have, for naming values read as empty.
        self._types = types
        self._by_path: dict[str, FileCheck] = {}

    def __getitem__(self, path: str) -> FileCheck:
        return self._by_path[path]

    def get(self, path: str) -> FileCheck | None:
        return self._by_path.get(path)

    def clear(self) -> None:
        self._by_path.clear()

    def check(self, f: LakeFile, *, full: bool = False, scan_new: bool = False) -> FileCheck:
        """Check one file (cached until its size or mtime changes); *full* scans every line, and
        *scan_new* (``validate="full"``) every line of a file checked anew."""
        try:
            st = os.stat(f.path)
        except OSError as exc:
            return FileCheck(size=0, mtime_ns=0, skip=True, reason=f"cannot read ({exc.strerror})")
        cached = self._by_path.get(f.path)
        unchanged = cached is not None and cached.size == st.st_size and cached.mtime_ns == st.st_mtime_ns
        if unchanged and (not full or cached.scanned or cached.skip):  # type: ignore[union-attr]
            return cached  # type: ignore[return-value]
        if f.fmt == "parquet":
            chk = _check_parquet(f.path, st)
        else:
            chk = _check_json(f.path, st, self._types(f), full=full or scan_new)
        self._by_path[f.path] = chk
        return chk

    def recover(self, message: str, root: str) -> bool:
        """After DuckDB failed on a lake file: scan the file it names. True if the query should run again."""
        named = _path_in(message)
        if named is None:
            return False
        path = os.path.abspath(named)
        if not path.startswith(root):
            return False
        f = blob_from_path(path)
        if f is None:
            return False
        before = self._by_path.get(path)
        if before is not None and before.scanned:
            return False
        chk = self.check(f, full=True)
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

    def census(self, files: list[LakeFile]) -> None:
        """Read every record of the big JSON files in *files* that only had the cheap checks, in one
        DuckDB pass: a file found clean is read strictly with its exact keys; a file with a malformed
        or non-object record, a record without TimeGenerated, or a key beyond its samples and its
        table's schema is scanned line by line (once: both results are kept with the check)."""
        todo = []
        for f in files:
            chk = self._by_path.get(f.path)
            if f.fmt == "json" and chk is not None and not (chk.skip or chk.scanned or chk.census):
                todo.append(f)
        if not todo:
            return
        found = _census([f.path for f in todo])
        for f in todo:
            chk = self._by_path[f.path]
            got = found.get(f.path)
            if got is None:
                self.check(f, full=True)
                continue
            records, bad, keys = got
            types = self._types(f)
            if bad or any(k not in chk.columns and k not in types for k in keys):
                self.check(f, full=True)
                continue
            for k in keys:
                chk.columns.setdefault(k, types.get(k, ""))
            chk.records = records
            chk.census = True


def _path_in(message: str) -> str | None:
    """The file a DuckDB error names (reading a JSON file, or a value in it)."""
    m = (re.search(r'in file "([^"]+)"', message) or re.search(r'reading file "([^"]+)"', message)
         or re.search(r"file '([^']+)'", message))
    return m.group(1) if m else None


def _census(paths: list[str]) -> dict[str, tuple[int, int, set[str]]]:
    """Path -> (records, records that are malformed, no object, empty or without TimeGenerated, keys)
    of the JSON lines files *paths*, read by DuckDB in one pass; a file DuckDB cannot read is left out."""
    import duckdb

    out: dict[str, tuple[int, int, set[str]]] = {}
    pending = list(paths)
    con = duckdb.connect()
    try:
        # In a Jupyter kernel without ipywidgets DuckDB refuses to change the setting at all (even to off);
        # it only ever draws for long queries, so a census that cannot turn it off still runs.
        with contextlib.suppress(duckdb.Error):
            con.execute("SET enable_progress_bar = false")
        while pending:
            try:
                rows = con.execute(_census_sql(pending)).fetchall()
                break
            except duckdb.Error as exc:
                named = _path_in(str(exc))
                if named is not None and os.path.abspath(named) in pending:
                    pending.remove(os.path.abspath(named))  # left to the line by line scan; the rest again
                    continue
                if len(pending) > 1:  # no file named: one at a time
                    for path in pending:
                        out.update(_census([path]))
                return out
        else:
            return out
    finally:
        con.close()
    for path, keys, n, null_time in rows:
        # No key list: a malformed line (NULL) or no object; an empty one: a record with nothing to read.
        bad = n if not keys or "TimeGenerated" not in keys else null_time
        r, b, k = out.get(path, (0, 0, set()))
        out[path] = (r + n, b + bad, k | set(keys or ()))
    return out


def _census_sql(paths: list[str]) -> str:
    files = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"
    # One JSON parse a record (json_keys), grouped by its key list: a file's records have few distinct ones.
    # A TimeGenerated that is null is found in the text (a pattern cannot match inside a JSON string,
    # whose quotes are escaped; a false match only costs a scan of the file).
    return ("SELECT filename, any_value(ks), count(*), count(*) FILTER (WHERE null_time) "
            "FROM (SELECT filename, json_keys(json) AS ks, "
            "regexp_matches(json, '\"TimeGenerated\"\\s*:\\s*null') AS null_time "
            f"FROM read_json_objects({files}, format='newline_delimited', ignore_errors=true, "
            "hive_partitioning=false, filename=true)) GROUP BY filename, hash(ks)")


def problem_text(where: str, chk: FileCheck) -> str:
    """The warning for a file (*where*, its short path) that loses lines: how many, and the first ones."""
    parts = []
    for flag, total, verb in ((True, chk.skipped_lines, "skipped"), (False, chk.kept_lines, "read with gaps")):
        items = [(n, r) for n, r, s in chk.problems if s is flag]
        if not total:
            continue
        shown = "; ".join(f"line {n}: {r}" for n, r in items[:_MAX_LINES_LISTED])
        more = f"; and {total - min(len(items), _MAX_LINES_LISTED)} more" if total > _MAX_LINES_LISTED else ""
        parts.append(f"{total} line(s) {verb} ({shown}{more})")
    return f"{where}: " + ", ".join(parts)


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
                add_columns(chk.columns, rec)
            tail_ok, tail = _last_line_ok(fh, st.st_size, head)
            for rec in _records_in(tail, first=False):
                add_columns(chk.columns, rec)
            if suspicious or not tail_ok:
                _scan(fh, chk, types)
    except OSError as exc:
        chk.skip, chk.reason = True, f"cannot read ({exc.strerror})"
    return chk


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
        return _loads(line)
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
            rec = _loads(line)
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
        return isinstance(_loads(body[nl + 1:]), dict), tail
    except ValueError:
        return False, tail


def _scan(fh: Any, chk: FileCheck, types: dict[str, str]) -> None:
    """Read every line: name each one that loses data, and say whether it is skipped or kept."""
    fh.seek(0)
    chk.scanned = True
    problems = chk.problems
    problems.clear()
    n = records = 0
    chk.skipped_lines = chk.kept_lines = chk.longest = 0
    typed = {c: t for c, t in types.items() if t in ("int", "long", "real", "bool", "datetime")}
    for raw in fh:
        n += 1
        if len(raw) > chk.longest:
            chk.longest = len(raw)
        if not raw.strip():
            continue
        try:
            rec = _loads(raw)
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
        add_columns(chk.columns, rec)
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


def _loads(raw: bytes) -> Any:
    """A JSON line as Python values; a record nested deeper than Python's reader goes (about 1,000
    levels, where DuckDB reads on) as its top-level keys, nested values shown as empty ``{}`` / ``[]``."""
    try:
        return json.loads(raw)
    except RecursionError:
        return _shallow(raw)


def _shallow(raw: bytes) -> Any:
    import duckdb

    text = raw.decode("utf-8")
    con = duckdb.connect()
    try:
        kind = con.execute("SELECT json_type(CAST(? AS JSON))", [text]).fetchone()[0]  # type: ignore[index]
        if kind != "OBJECT":
            return []  # deep, and no record: said as such by the caller
        rows = con.execute("SELECT key, json_type(value), CASE WHEN json_type(value) IN ('OBJECT', 'ARRAY') "
                           "THEN NULL ELSE CAST(value AS VARCHAR) END FROM json_each(CAST(? AS JSON))",
                           [text]).fetchall()
    except duckdb.Error:
        raise ValueError("not valid JSON") from None
    finally:
        con.close()
    return {k: {} if t == "OBJECT" else [] if t == "ARRAY" else json.loads(v) for k, t, v in rows}


def _short(value: Any) -> str:
    try:
        text = json.dumps(value)
    except RecursionError:
        return "(a deeply nested value)"
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
    if kql_type == "datetime" and not (isinstance(value, str) and ISO.match(value.strip())):
        return "a date and time"
    return None


def _is_float(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


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


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]

