"""DuckDB views over a table plan's files: their SQL, and views kept while that SQL stands.

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

    def select(read: set[str], source: str = "") -> str:
        return ", ".join(f"{source}{ident(c)} AS {ident(c)}" if c in read
                         else f"CAST(NULL AS {duckdb_type(t)}) AS {ident(c)}" for c, t in cols)

    pieces = []
    # Paths hold y=/m=/d=/h=/m= folders: DuckDB must not turn them into (clashing) partition columns.
    if plan.strict:
        read = set(plan.read_columns if plan.read_columns is not None else every)
        columns = "{" + ", ".join(f"{lit(c)}: {lit(duckdb_type(t))}" for c, t in cols if c in read) + "}"
        pieces.append(f"SELECT {select(read)} FROM read_json({_file_list(plan.strict)}, "
                      f"format='newline_delimited', columns={columns}, hive_partitioning=false)")
    if plan.scanned:
        # Record by record: read_json's per-file cost is steep for many small files, and these files'
        # problems are known line by line already. ignore_errors makes a malformed line NULL, and a
        # record that is no object, or holds neither TimeGenerated nor Type, transforms to NULLs:
        # exactly the lines the report lists as skipped.
        read = set(plan.scanned_columns if plan.scanned_columns is not None else every)
        struct = json.dumps({c: duckdb_type(t) for c, t in cols if c in read})
        pieces.append(f"SELECT {select(read, '_r.')} FROM (SELECT json_transform(json, {lit(struct)}) AS _r "
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
                proj.append(f"CAST(NULL AS {target}) AS {ident(col)}")
            elif present[col] == {kt} or (present[col] == {"string"} and kt in ("dynamic", "guid")):
                proj.append(f"CAST({ident(col)} AS {target}) AS {ident(col)}")
            else:
                proj.append(f"TRY_CAST({ident(col)} AS {target}) AS {ident(col)}")
        pieces.append(f"SELECT {', '.join(proj)} FROM read_parquet({_file_list(plan.parquet)}, union_by_name=true, "
                      "hive_partitioning=false)")
    if not pieces:
        empty = ", ".join(f"CAST(NULL AS {duckdb_type(t)}) AS {ident(c)}" for c, t in cols)
        return f"SELECT {empty} WHERE false"
    return " UNION ALL ".join(pieces)


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
