"""A Spark cell's output as a :class:`kqlmagic_plus.results.Result` (the type ``%kql`` returns).

Rows arrive as Arrow (Spark's own Arrow collection, or Arrow IPC from a Synapse statement), at most
``row_limit`` of them (``KqlMagicPlus.spark_row_limit``, or ``--row-limit``): Spark is asked for one
more row than the limit, so a result that does not fit is known, marked truncated and said so in
the Result's warnings. ``--to-lake PATH`` writes the whole result as Parquet on the cluster's
storage instead, and the Result says where and how many rows.
"""

from __future__ import annotations

from typing import Any

from kqlmagic_plus.kqltypes import kql_type_of_arrow
from kqlmagic_plus.results import Result, result_from_arrow


def truncation_warning(limit: int) -> str:
    return (f"The Spark result has more than {limit:,} rows; the first {limit:,} are here "
            f"(KqlMagicPlus.spark_row_limit, or --row-limit N). --to-lake PATH writes every row as Parquet.")


def to_result(out: dict[str, Any], *, limit: int | None, kql_types: list[str] | None = None, query: str = "",
              connection: str = "", elapsed: float = 0.0, executed: str | None = None,
              warnings: list[str] | None = None, stats: dict[str, Any] | None = None,
              render: Any = None) -> Result:
    """Wrap :func:`kqlmagic_plus.engines.spark.remote.run_cell`'s output (kind ``table`` or ``written``)."""
    import pyarrow as pa

    notes = list(warnings or [])
    if out["kind"] == "written":
        table = pa.table({"Path": [out["path"]], "Rows": pa.array([out["rows"]], pa.int64()),
                          "Columns": [", ".join(out.get("columns") or [])]})
        types = ["string", "long", "string"]
        notes.append(f"Wrote {out['rows']:,} rows as Parquet to {out['path']} (not collected).")
        return result_from_arrow(table, types, query=query, connection=connection, engine="spark",
                                 elapsed=elapsed, executed=executed, warnings=notes, stats=dict(stats or {}),
                                 render=None)
    table = out["table"]
    if kql_types is None or len(kql_types) != table.num_columns:
        kql_types = [kql_type_of_arrow(f.type) for f in table.schema]
    truncated = bool(out.get("truncated"))
    if truncated and limit is not None:
        notes.append(truncation_warning(limit))
    table = _plain_names(table)
    return result_from_arrow(table, kql_types, query=query, connection=connection, engine="spark",
                             elapsed=elapsed, truncated=truncated, executed=executed, warnings=notes,
                             stats=dict(stats or {}), render=render)


def _plain_names(table: Any) -> Any:
    """Spark allows duplicate column names (a join's two ``id``); a Result's columns must differ."""
    names = list(table.column_names)
    if len(set(names)) == len(names):
        return table
    seen: dict[str, int] = {}
    out = []
    for n in names:
        k = seen.get(n, 0)
        seen[n] = k + 1
        out.append(n if k == 0 else f"{n}{k}")
    return table.rename_columns(out)
