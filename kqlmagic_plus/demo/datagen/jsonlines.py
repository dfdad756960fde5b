"""Fast JSON lines: rows rendered column-wise with Arrow string kernels and fixed-width numpy text.

A column drawn from a vocabulary is escaped once per distinct value, and columns drawn with the same
index share one fragment. Random identifiers (GUIDs, Windows hex ids) are built here as fixed-width text too.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _US

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def _fixed_width(chars: Any) -> pa.Array:
    """An (n, w) uint8 array of ASCII as n strings of width w, without a Python loop."""
    import numpy as np
    import pyarrow as pa

    n, w = chars.shape
    big = n * w >= 2**31
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64 if big else np.int32)
    data = pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    cls = pa.LargeStringArray if big else pa.StringArray
    return cls.from_buffers(n, pa.py_buffer(offsets.tobytes()), data)


def _put_digits(out: Any, col: int, values: Any, width: int) -> None:
    for k in range(width):
        out[:, col + width - 1 - k] = values // 10**k % 10 + 48


def _iso_chars(us: Any) -> Any:
    """``YYYY-MM-DDTHH:MM:SS.fffffffZ`` (the export's seven fractional digits) for each microsecond time."""
    import numpy as np

    us = np.asarray(us, dtype=np.int64)
    secs, frac = np.divmod(us, _US)
    days, sod = np.divmod(secs, 86_400)
    d = days.astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    year = month_start.astype("datetime64[Y]").astype(np.int64) + 1970
    month = month_start.astype(np.int64) % 12 + 1
    day = (d - month_start).astype(np.int64) + 1
    out = np.empty((len(us), 28), np.uint8)
    _put_digits(out, 0, year, 4)
    out[:, 4] = out[:, 7] = ord("-")
    _put_digits(out, 5, month, 2)
    _put_digits(out, 8, day, 2)
    out[:, 10] = ord("T")
    _put_digits(out, 11, sod // 3600, 2)
    out[:, 13] = out[:, 16] = ord(":")
    _put_digits(out, 14, sod // 60 % 60, 2)
    _put_digits(out, 17, sod % 60, 2)
    out[:, 19] = ord(".")
    _put_digits(out, 20, frac, 6)
    out[:, 26] = ord("0")
    out[:, 27] = ord("Z")
    return out


def _with_affixes(chars: Any, prefix: str, suffix: str) -> Any:
    import numpy as np

    n = chars.shape[0]
    pre = np.broadcast_to(np.frombuffer(prefix.encode(), np.uint8), (n, len(prefix)))
    suf = np.broadcast_to(np.frombuffer(suffix.encode(), np.uint8), (n, len(suffix)))
    return np.concatenate([pre, chars, suf], axis=1)


_HEXDIGITS = b"0123456789abcdef"


def _guids(rng: np.random.Generator, n: int) -> pa.Array:
    import numpy as np

    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexd = np.empty((n, 32), np.uint8)
    table = np.frombuffer(_HEXDIGITS, np.uint8)
    hexd[:, 0::2] = table[b >> 4]
    hexd[:, 1::2] = table[b & 15]
    out = np.full((n, 36), ord("-"), np.uint8)
    for dst, src, w in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst:dst + w] = hexd[:, src:src + w]
    return _fixed_width(out)


def _hex_ids(rng: np.random.Generator, n: int, digits: int) -> pa.Array:
    """Windows-style ``0x1a2b3c`` identifiers."""
    import numpy as np

    v = rng.integers(0x1000, 16**digits, size=n, dtype=np.int64)
    out = np.empty((n, digits + 2), np.uint8)
    out[:, 0] = ord("0")
    out[:, 1] = ord("x")
    table = np.frombuffer(_HEXDIGITS, np.uint8)
    for k in range(digits):
        out[:, 2 + digits - 1 - k] = table[v >> (4 * k) & 15]
    return _fixed_width(out)


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_escape_array(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
        return arr
    for raw, esc in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        arr = pc.replace_substring(arr, raw, esc)
    if pc.any(pc.match_substring_regex(arr, r"[\x00-\x1f]")).as_py():
        raise AssertionError("control characters in generated text")
    return arr


def render_json_lines(table: pa.Table, kql_types: dict[str, str]) -> pa.Array:
    """One JSON object per row, each ending in a newline, as an Arrow string array.

    Null values are left out of their record, as the export does. *table* must hold TimeGenerated.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return pa.array([], pa.string())
    parts: list[Any] = []
    groups: dict[tuple[int, int], list[tuple[str, pa.DictionaryArray]]] = {}
    slots: dict[tuple[int, int], int] = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        kql = kql_types.get(name, "string")
        if name == "TimeGenerated":
            us = col.cast(pa.int64()).to_numpy(zero_copy_only=False)
            parts.insert(0, _fixed_width(_with_affixes(_iso_chars(us), '{"TimeGenerated":"', '"')))
            continue
        key = ',"' + name + '":'
        if pa.types.is_dictionary(col.type):
            gkey = (col.indices.buffers()[1].address, col.indices.offset)
            if gkey not in groups:
                # The group's fragment goes where its first column stands, keeping the schema's order.
                slots[gkey] = len(parts)
                parts.append(None)
            groups.setdefault(gkey, []).append((name, col))
        elif pa.types.is_timestamp(col.type):
            us = col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            frag = _fixed_width(_with_affixes(_iso_chars(us), key + '"', '"'))
            parts.append(pc.if_else(col.is_null(), pa.scalar(None, pa.string()), frag) if col.null_count else frag)
        elif pa.types.is_boolean(col.type):
            parts.append(pa.array([key + "false", key + "true"]).take(col.cast(pa.int8())))
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            s = col.cast(pa.string())
            parts.extend([pc.binary_join_element_wise(key, s, "")] if col.null_count else [key, s])
        else:
            s = col if kql == "dynamic" else _json_escape_array(col.cast(pa.string()))
            q = "" if kql == "dynamic" else '"'
            parts.extend([pc.binary_join_element_wise(key + q, s, q, "")] if col.null_count else [key + q, s, q])
    for gkey, members in groups.items():
        indices = members[0][1].indices
        vocab = [d[1].dictionary.to_pylist() for d in members]
        frags = []
        for j in range(len(vocab[0])):
            text = []
            for (name, _), values in zip(members, vocab, strict=True):
                v = values[j]
                if v is None:
                    continue
                raw = kql_types.get(name) == "dynamic"
                text.append(f',"{name}":' + (v if raw else json.dumps(v)))
            frags.append("".join(text))
        if len(frags) == 1 and indices.null_count == 0:
            parts[slots[gkey]] = frags[0]
        else:
            parts[slots[gkey]] = pa.array(frags, pa.string()).take(indices)
    return pc.binary_join_element_wise(*parts, "}\n", "", null_handling="replace", null_replacement="")
