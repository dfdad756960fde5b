"""Data values as label text: entity-escaped, so plotly.js shows them as the text they are, never markup."""

from __future__ import annotations

import math
from typing import Any


def esc(text: Any) -> str:
    """A data value as plotly label text: its own characters, never markup."""
    s = "" if text is None else str(text)
    if "<" in s or ">" in s or "&" in s:
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return s


def esc_array(values: Any) -> Any:
    import numpy as np

    arr = np.asarray(values, dtype=object)
    if not any(isinstance(v, str) and ("<" in v or ">" in v or "&" in v) for v in arr):
        return arr
    return np.array([esc(v) for v in arr], dtype=object)


def num_text(v: float) -> str:
    if math.isnan(v):
        return ""
    return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:,.6g}"


def isnan(v: Any) -> bool:
    try:
        return bool(math.isnan(v))
    except TypeError:
        return False


def card_text(v: Any) -> str:
    import numpy as np

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, np.datetime64):
        return str(np.datetime_as_string(v, unit="s")).replace("T", " ") + " UTC"
    if hasattr(v, "strftime") and hasattr(v, "hour"):
        return v.strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    return str(v)


def axis_value(v: Any) -> Any:
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.replace(tzinfo=None).isoformat() if getattr(v, "tzinfo", None) else v.isoformat()
    return v
