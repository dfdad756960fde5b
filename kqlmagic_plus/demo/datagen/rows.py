"""Assembling one chunk's columns in the Arrow types of its table's KQL schema."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def _idx(idx: Any, n: int) -> Any:
    import numpy as np

    return np.zeros(n, np.int64) if idx is None else np.asarray(idx)


class _Rows:
    """The columns of one chunk of one table, in the Arrow types of the table's KQL schema.

    Vocabulary columns are dictionary arrays; columns given in one ``group`` call share one index
    array, which the JSON renderer turns into one fragment per distinct value.
    """

    def __init__(self, table: str, ts: Any):
        from kqlmagic_plus.lake import schema_for

        self.name = table
        self.types = dict(schema_for(table))
        self.n = len(ts)
        self.cols: dict[str, Any] = {}
        self.time("TimeGenerated", ts)
        self.const("Type", table)

    def _type(self, col: str) -> str:
        if col not in self.types:
            raise AssertionError(f"{self.name} has no column {col!r}")
        return self.types[col]

    def time(self, col: str, us: Any) -> None:
        import pyarrow as pa

        self._type(col)
        self.cols[col] = pa.array(us, pa.timestamp("us", tz="UTC"))

    def const(self, col: str, value: Any) -> None:
        import numpy as np

        if isinstance(value, int):
            self.num(col, np.full(self.n, value))
        else:
            self.group(np.zeros(self.n, np.int32), **{col: [value]})

    def group(self, idx: Any, mask: Any = None, **columns: Sequence[str]) -> None:
        import numpy as np
        import pyarrow as pa

        idx = np.broadcast_to(np.asarray(idx), (self.n,)).astype(np.int32)
        indices = pa.array(idx, mask=None if mask is None or not mask.any() else mask)
        for col, values in columns.items():
            if self._type(col) not in ("string", "dynamic"):
                raise AssertionError(f"{self.name}.{col} is {self._type(col)}, not a string")
            self.cols[col] = pa.DictionaryArray.from_arrays(indices, pa.array(list(values), pa.string()))

    def num(self, col: str, values: Any, mask: Any = None) -> None:
        import pyarrow as pa

        from kqlmagic_plus.kqltypes import arrow_type

        typ = arrow_type(self._type(col))
        self.cols[col] = pa.array(values, typ, mask=None if mask is None or not mask.any() else mask)

    def flag(self, col: str, values: Any) -> None:
        self.num(col, values)

    def text(self, col: str, values: Any, mask: Any = None) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self._type(col)
        if mask is not None and mask.any():
            values = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), values)
        self.cols[col] = values

    def table(self) -> pa.Table:
        import pyarrow as pa

        return pa.table(self.cols)
