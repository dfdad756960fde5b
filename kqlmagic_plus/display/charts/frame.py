"""The rows in chart-ready dtypes, ``dynamic`` arrays (make-series output) expanded into points."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


@dataclass
class Frame:
    """The rows in chart-ready dtypes: numbers as float64, datetimes as naive UTC, text as str."""

    df: pd.DataFrame
    types: dict[str, str]
    #: Columns that were KQL timespans (drawn in seconds).
    seconds: set[str] = field(default_factory=set)

    @property
    def columns(self) -> list[str]:
        return list(self.df.columns)

    def of(self, kinds: frozenset[str], exclude: tuple[str, ...] | set[str] = ()) -> list[str]:
        return [c for c in self.columns if self.types[c] in kinds and c not in exclude]


def prepare(result: Any) -> Frame:
    import numpy as np
    import pandas as pd

    src = result.df
    data: dict[str, Any] = {}
    types: dict[str, str] = {}
    seconds: set[str] = set()
    for name, kt in zip(src.columns, result.kql_types, strict=True):
        col = src[name]
        if kt in ("int", "long", "real"):
            data[name] = col.to_numpy(dtype="float64", na_value=np.nan)
        elif kt == "decimal":
            data[name] = pd.to_numeric(col, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        elif kt == "timespan":
            data[name] = col.dt.total_seconds().to_numpy(dtype="float64", na_value=np.nan)
            seconds.add(name)
        elif kt == "datetime":
            if getattr(col.dt, "tz", None) is not None:
                col = col.dt.tz_convert(None)
            data[name] = col.to_numpy()
        elif kt == "bool":
            text = np.where(col.fillna(False).to_numpy(dtype=bool), "true", "false").astype(object)
            data[name] = np.where(col.isna().to_numpy(), "", text)
        elif kt == "dynamic":
            data[name] = col.to_numpy(dtype=object)
        else:
            # string and guid values are str already; only nulls need a spelling.
            data[name] = col.fillna("").to_numpy(dtype=object)
        types[name] = kt
    return Frame(pd.DataFrame(data, index=range(len(src))), types, seconds)


def _is_array_column(values: Any) -> bool:
    for v in values:
        if v is not None:
            return isinstance(v, list)
    return False


def expand_arrays(frame: Frame, spec: Any) -> Frame:
    """Expand ``dynamic`` array columns (make-series output) into one row per array element.

    The anchor is the x column (``xcolumn``, else the first array of datetimes, else the first
    array); every array column with the same length in each row is expanded with it.
    """
    import numpy as np
    import pandas as pd

    arrays = [c for c in frame.of(frozenset({"dynamic"})) if _is_array_column(frame.df[c])]
    if not arrays:
        return stringify_dynamic(frame)

    def lengths(c: str) -> np.ndarray:
        return np.array([len(v) if isinstance(v, list) else -1 for v in frame.df[c]])

    anchor = spec.xcolumn if spec.xcolumn in arrays else None
    if anchor is None:
        anchor = next((c for c in arrays if _looks_temporal(_first_elements(frame.df[c]))), arrays[0])
    want = lengths(anchor)
    together = [c for c in arrays if np.array_equal(lengths(c), want)]
    df = frame.df.copy()
    for c in together:
        df[c] = [v if isinstance(v, list) else [] for v in df[c]]
    df = df.explode(together, ignore_index=True)
    df = df[df[anchor].notna()].reset_index(drop=True)
    types = dict(frame.types)
    for c in together:
        values = df[c]
        numbers = pd.to_numeric(values, errors="coerce")
        if numbers.notna().sum() == values.notna().sum():
            df[c] = numbers.to_numpy(dtype="float64", na_value=np.nan)
            types[c] = "real"
            continue
        if _looks_temporal(values.dropna().head(20).tolist()):
            stamps = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
            df[c] = stamps.dt.tz_convert(None).to_numpy()
            types[c] = "datetime"
            continue
        df[c] = np.array(["" if v is None else str(v) for v in values], dtype=object)
        types[c] = "string"
    return stringify_dynamic(Frame(df, types, frame.seconds))


def _first_elements(values: Any) -> list[Any]:
    for v in values:
        if isinstance(v, list) and v:
            return v[:20]
    return []


def _looks_temporal(values: list[Any]) -> bool:
    import pandas as pd

    texts = [v for v in values if isinstance(v, str)]
    if not texts or len(texts) != len(values):
        return False
    parsed = pd.to_datetime(pd.Series(texts), utc=True, errors="coerce", format="ISO8601")
    return bool(parsed.notna().all())


def stringify_dynamic(frame: Frame) -> Frame:
    import numpy as np

    for c in frame.of(frozenset({"dynamic"})):
        frame.df[c] = np.array([_dynamic_text(v) for v in frame.df[c]], dtype=object)
        frame.types[c] = "string"
    return frame


def _dynamic_text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))


def describe(frame: Frame) -> str:
    return "columns: " + ", ".join(f"{c} ({frame.types[c]})" for c in frame.columns[:12]) + (
        " ..." if len(frame.columns) > 12 else "")
