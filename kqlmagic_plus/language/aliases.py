"""Deprecated KQL names that real queries still use, renamed to their current spelling.

Sentinel and ADX still accept these; duckdb-kql only knows the current names. The rename is done
on tokens (a function name directly followed by ``(``, an operator name directly after ``|``), so
a column, a string or a comment that happens to hold the same word is never touched. Positions in
errors are mapped back to the text the user wrote.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from kqlmagic_plus.language.lexer import line_col, offset_of, tokenize

#: Deprecated function name -> current name (KQL documentation, "deprecated" notes per function).
FUNCTIONS = {
    "makeset": "make_set",
    "makelist": "make_list",
    "makeset_if": "make_set_if",
    "makelist_if": "make_list_if",
    "make_dictionary": "make_bag",
    "make_dictionary_if": "make_bag_if",
    "parsejson": "parse_json",
    "todynamic": "parse_json",
    "toobject": "parse_json",
    "arraylength": "array_length",
    "any": "take_any",
    "anyif": "take_anyif",
    "datepart": "datetime_part",
    "base64_encodestring": "base64_encode_tostring",
    "base64_decodestring": "base64_decode_tostring",
    "todouble": "toreal",
    "toboolean": "tobool",
}

#: Deprecated operator name (after ``|``) -> current name.
OPERATORS = {
    "mvexpand": "mv-expand",
    "mvapply": "mv-apply",
    "makeseries": "make-series",
}


@dataclass(frozen=True)
class Rewritten:
    """The rewritten text and enough to map its positions back to the original."""

    text: str
    original: str
    #: Sorted (offset in new text, shift to add to get the offset in the original).
    _shifts: tuple[tuple[int, int], ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()

    def original_position(self, line: int, column: int) -> tuple[int, int]:
        """Map a 1-based line / 0-based column in ``text`` to the same place in ``original``."""
        if not self._shifts:
            return line, column
        off = offset_of(self.text, line, column)
        keys = [s[0] for s in self._shifts]
        i = bisect_right(keys, off) - 1
        shift = self._shifts[i][1] if i >= 0 else 0
        return line_col(self.original, max(0, off + shift))


def rewrite_deprecated(text: str) -> Rewritten:
    """Rename deprecated functions and operators on token boundaries."""
    toks = tokenize(text)
    sig = [i for i, t in enumerate(toks) if t.kind not in ("ws", "comment")]
    replace: dict[int, str] = {}
    for pos, idx in enumerate(sig):
        tok = toks[idx]
        if tok.kind != "ident":
            continue
        prev = toks[sig[pos - 1]] if pos > 0 else None
        nxt = toks[sig[pos + 1]] if pos + 1 < len(sig) else None
        low = tok.text
        if low in FUNCTIONS and FUNCTIONS[low] != low and nxt is not None and nxt.text == "(" \
                and (prev is None or prev.text != "."):
            replace[idx] = FUNCTIONS[low]
        elif low in OPERATORS and OPERATORS[low] != low and prev is not None and prev.text == "|":
            replace[idx] = OPERATORS[low]
    if not replace:
        return Rewritten(text, text)
    out: list[str] = []
    shifts: list[tuple[int, int]] = []
    renamed: list[tuple[str, str]] = []
    new_len = 0
    delta = 0  # original offset - new offset, after the tokens so far
    for idx, tok in enumerate(toks):
        piece = replace.get(idx, tok.text)
        if idx in replace:
            renamed.append((tok.text, piece))
            # Inside the new name, positions map to the start of the old one.
            shifts.append((new_len, delta))
            delta += len(tok.text) - len(piece)
            shifts.append((new_len + len(piece), delta))
        out.append(piece)
        new_len += len(piece)
    return Rewritten("".join(out), text, tuple(shifts), tuple(renamed))


def referenced_names(text: str) -> set[str]:
    """Identifiers the query mentions outside strings and comments (candidate table names)."""
    return {t.text for t in tokenize(text) if t.kind == "ident"}
