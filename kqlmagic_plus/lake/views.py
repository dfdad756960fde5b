"""DuckDB views over a table plan's files: their SQL, and views kept while that SQL stands.

Columns
-------
A scanned file's columns are known exactly, so the view asks for those. For big files DuckDB's
strict JSON reader pays, per file, for every column it is asked for, present or not:
``columns="auto"`` (the default) and ``"all"`` ask for every column of the schema, so a key is
never dropped because it was not expected; ``columns="seen"`` asks only for the columns the files
hold (exact: small files are read whole, big ones censused), faster on big files of sparse records.
A column renamed apart from a key of another case (``ProcessId_1``, see :mod:`kqlmagic_plus.lake`)
reads its own key, by JSON pointer (keys are case-sensitive) or, in Parquet, by position.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kqlmagic_plus.lake.schemas import duckdb_type

if TYPE_CHECKING:
    import duckdb

    from kqlmagic_plus.lake.lake import Lake
    from kqlmagic_plus.lake.layout import LakeFile
    from kqlmagic_plus.lake.plans import LakeReport, TablePlan
    from kqlmagic_plus.request import TimeWindow

T = TypeVar("T")


# -- DuckDB SQL -------------------------------------------------------------------------------------


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _file_list(files: Sequence[LakeFile]) -> str:
    return "[" + ", ".join(lit(f.path) for f in files) + "]"


def view_sql(plan: TablePlan) -> str:
    """A SELECT over the plan's files with the schema's columns and types, in schema order."""
    cols = plan.schema
    every = [c for c, _ in cols]
    keys = plan.keys

    def select(read: set[str], source: str = "") -> str:
        return ", ".join(f"{source}{ident(c)} AS {ident(c)}" if c in read
                         else f"CAST(NULL AS {duckdb_type(t)}) AS {ident(c)}" for c, t in cols)

    pieces = []
    # Paths hold y=/m=/d=/h=/m= folders: DuckDB must not turn them into (clashing) partition columns.
    if plan.strict:
        # Strict files hold no renamed key (Lake.plan reads those record by record).
        read = set(plan.read_columns if plan.read_columns is not None else every) - set(keys)
        columns = "{" + ", ".join(f"{lit(c)}: {lit(duckdb_type(t))}" for c, t in cols if c in read) + "}"
        pieces.append(f"SELECT {select(read)} FROM read_json({_file_list(plan.strict)}, "
                      f"format='newline_delimited', columns={columns}, hive_partitioning=false)")
    if plan.scanned:
        # Record by record: read_json's per-file cost is steep for many small files, and these files'
        # problems are known line by line already. ignore_errors makes a malformed line NULL, and a
        # record that is no object, or holds neither TimeGenerated nor Type, transforms to NULLs:
        # exactly the lines the report lists as skipped.
        read = set(plan.scanned_columns if plan.scanned_columns is not None else every)
        struct = json.dumps({c: duckdb_type(t) for c, t in cols if c in read and c not in keys})
        # A renamed column reads its own key (JSON keys are case-sensitive; struct fields are not).
        apart = {c: f"_k{i}" for i, c in enumerate(c for c, _ in cols if c in read and c in keys)}
        extra = "".join(f", json_transform(json_extract(json, {lit(_pointer(keys[c]))}), "
                        f"{lit(json.dumps(duckdb_type(t)))}) AS {apart[c]}" for c, t in cols if c in apart)
        fields = ", ".join(f"{apart[c]} AS {ident(c)}" if c in apart
                           else f"_r.{ident(c)} AS {ident(c)}" if c in read
                           else f"CAST(NULL AS {duckdb_type(t)}) AS {ident(c)}" for c, t in cols)
        pieces.append(f"SELECT {fields} FROM (SELECT json_transform(json, {lit(struct)}) AS _r{extra} "
                      f"FROM read_json_objects({_file_list(plan.scanned)}, format='newline_delimited', "
                      f"ignore_errors=true, hive_partitioning=false{_object_size(plan.longest)})) "
                      'WHERE _r."TimeGenerated" IS NOT NULL OR _r."Type" IS NOT NULL')
    if plan.parquet:
        # read_parquet's union_by_name merges columns that differ only in case (a ProcessId value would
        # land in ProcessID): files holding a renamed key are read one by one, their columns by position.
        renamed = set(keys.values())
        together = [f for f in plan.parquet if not renamed & plan.parquet_columns.get(f.path, {}).keys()]
        if together:
            pieces.append(_parquet_piece(plan, together, None))
        pieces.extend(_parquet_piece(plan, [f], plan.parquet_columns.get(f.path, {}))
                      for f in plan.parquet if f not in together)
    if not pieces:
        empty = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {ident(c)}" for c, t in cols)
        return f"SELECT {empty} WHERE false"
    return " UNION ALL ".join(pieces)


def _parquet_piece(plan: TablePlan, files: list[LakeFile], positional: dict[str, str] | None) -> str:
    """A SELECT of the schema's columns over Parquet *files*; *positional*: the one file's columns, in
    order, to read each by its position (``#n``) rather than its case-insensitive name."""
    present: dict[str, set[str]] = {}
    for f in files:
        for col, kt in plan.parquet_columns.get(f.path, {}).items():
            present.setdefault(col, set()).add(kt)
    where = {c: f"#{i}" for i, c in enumerate(positional, 1)} if positional is not None else {}
    proj = []
    for col, kt in plan.schema:
        target = duckdb_type(kt)
        key = plan.keys.get(col, col)
        ref = where.get(key) or ident(key)
        if key not in present:
            proj.append(f"CAST(NULL AS {target}) AS {ident(col)}")
        elif present[key] == {kt} or (present[key] == {"string"} and kt in ("dynamic", "guid")):
            proj.append(f"CAST({ref} AS {target}) AS {ident(col)}")
        else:
            proj.append(f"TRY_CAST({ref} AS {target}) AS {ident(col)}")
    by_name = ", union_by_name=true" if positional is None else ""
    return f"SELECT {', '.join(proj)} FROM read_parquet({_file_list(files)}{by_name}, hive_partitioning=false)"


def _pointer(key: str) -> str:
    """The JSON pointer of a top-level key (case-sensitive, any characters)."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


#: DuckDB's default maximum_object_size; it reads records up to about twice that, then fails the whole read.
_OBJECT_SIZE = 16 * 1024 * 1024


def _object_size(longest: int) -> str:
    """The read_json_objects argument that lets the longest line of the files through, if it needs one."""
    if longest < _OBJECT_SIZE:
        return ""
    return f", maximum_object_size={longest + _OBJECT_SIZE}"


def create_view(con: Any, name: str, sql: str) -> None:
    """CREATE OR REPLACE the temp view, unless it already stands over the same SQL.

    Binding a view costs DuckDB time per file and column; a query window that moved without changing
    the files it needs (the usual case for ``ago()``) reuses the view. The SQL's digest rides in the
    view's comment, so a different connection or a dropped view is never mistaken for this one.
    """
    import hashlib

    tag = "kqlmagic_plus.lake.views:" + hashlib.sha256(sql.encode()).hexdigest()
    rows = con.execute("SELECT comment FROM duckdb_views() WHERE temporary AND view_name = ?", [name]).fetchall()
    if rows and rows[0][0] == tag:
        return
    con.execute(f"CREATE OR REPLACE TEMP VIEW {ident(name)} AS {sql}")
    con.execute(f"COMMENT ON VIEW {ident(name)} IS {lit(tag)}")


# -- registering -----------------------------------------------------------------------------------


def register_view(con: Any, plan: TablePlan) -> None:
    """Create (or keep) the temp view of *plan*'s table over exactly its files."""
    create_view(con, plan.table, view_sql(plan))


def run_recovering(lake: Lake, con: duckdb.DuckDBPyConnection, run: Callable[[], T],
                   window: TimeWindow | tuple | None, tables: Iterable[str] | None,
                   attempts: int) -> tuple[T, LakeReport]:
    """Register *lake*'s views, call *run*; when it fails on a damaged lake file, scan that file and retry."""
    tables = None if tables is None else list(tables)
    for _ in range(attempts):
        report = lake.register_duckdb(con, window, tables)
        try:
            return run(), report
        except Exception as exc:
            if not lake.recover(str(exc)):
                raise
    report = lake.register_duckdb(con, window, tables)
    return run(), report
