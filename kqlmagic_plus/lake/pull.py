"""``--pull DIR``: a query's rows written as Parquet in the export lake layout, so the same hunt re-runs
locally (``lake://DIR``) or on Spark (``%sparkhunt --lake DIR``) without the service.

One blob per hour of ``TimeGenerated``, where continuous export puts its hourly blobs::

    DIR/am-<table>/WorkspaceResourceId=/subscriptions/<sub>/resourcegroups/<rg>/providers/
        microsoft.operationalinsights/workspaces/<ws>/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.parquet

each record with ``Type`` = the table, as export writes it. Pulling the same hours again replaces their blobs
(the note says how many), so a re-pull never doubles rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from kqlmagic_plus.errors import OptionError

#: Placeholders for the workspace path a pulled table did not come with (the lake reader reads any path).
PULLED_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
PULLED_GROUP = "pulled"


@dataclass
class Pulled:
    folder: str
    table: str
    rows: int
    files: int
    replaced: int

    def note(self) -> str:
        again = f" ({self.replaced} replaced an earlier pull of the same hours)" if self.replaced else ""
        return (f"Pulled {self.rows:,} rows of {self.table} into {self.files} hourly Parquet blobs under "
                f"{self.folder}{again}; run the hunt locally with --conn lake://{self.folder}")


def pull(table: Any, kql_types: list[str], folder: str, name: str, workspace: str = "pulled") -> Pulled:
    """Write the Arrow *table* (a Result's rows) as table *name* into the lake layout under *folder*."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if "TimeGenerated" not in table.column_names:
        raise OptionError(f"--pull files rows by their TimeGenerated, and this result has no such column "
                          f"(its columns: {', '.join(table.column_names[:12])}); keep TimeGenerated in the "
                          "project")
    times = table.column("TimeGenerated")
    if not pa.types.is_timestamp(times.type):
        raise OptionError("--pull needs TimeGenerated to be a datetime column")
    if times.null_count:
        raise OptionError(f"--pull: {times.null_count:,} rows have no TimeGenerated, and the lake layout files "
                          "rows by it; filter them out (| where isnotnull(TimeGenerated))")
    if "Type" in table.column_names:
        types = {t for t in table.column("Type").to_pylist() if t is not None}
        if types - {name}:
            raise OptionError(f"--pull {name}: the rows' Type column says {', '.join(sorted(types))}")
        table = table.drop_columns(["Type"])
    table = table.append_column(pa.field("Type", pa.string(), metadata={b"kql_type": b"string"}),
                                pa.array([name] * table.num_rows, pa.string()))
    folder = os.path.abspath(os.path.expanduser(folder))
    base = os.path.join(folder, f"am-{name.lower()}", "WorkspaceResourceId=", "subscriptions", PULLED_SUBSCRIPTION,
                        "resourcegroups", PULLED_GROUP, "providers", "microsoft.operationalinsights", "workspaces",
                        workspace.lower())
    hours = pc.floor_temporal(table.column("TimeGenerated"), unit="hour")
    files = replaced = 0
    for hour in pc.unique(hours).to_pylist():
        rows = table.filter(pc.equal(hours, pa.scalar(hour, hours.type)))
        where = os.path.join(base, f"y={hour:%Y}", f"m={hour:%m}", f"d={hour:%d}", f"h={hour:%H}", "m=00")
        os.makedirs(where, exist_ok=True)
        path = os.path.join(where, "PT1H.parquet")
        replaced += os.path.exists(path)
        pq.write_table(rows, path + ".part")
        os.replace(path + ".part", path)  # a reader never sees half a blob
        files += 1
    return Pulled(folder, name, table.num_rows, files, replaced)
