"""Deprecated KQL names that real queries still use, renamed to their current spelling, and string
literals in the one form duckdb-kql decodes exactly (:func:`rewrite_for_local`).

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
    return _apply(text, toks, _renames(toks))


def rewrite_for_local(text: str) -> Rewritten:
    """What the embedded engine is given: deprecated names renamed (:func:`rewrite_deprecated`) and
    every string literal in the one form duckdb-kql decodes exactly.

    duckdb-kql 1.1.2 keeps ``h"admin"`` as the text ``h"admin"``, reads ```` ```...``` ```` with its
    fences, and drops the backslash of ``\\u0041``, ``\\x41``, ``\\101``, ``\\a``...; a query
    using them would silently compare against the wrong value. So each run of adjacent string
    literals (KQL concatenates them) that is not already in the plain form
    :func:`kqlmagic_plus.language.literals.string` writes is replaced by that form of its value
    (:func:`kqlmagic_plus.language.literals.decode_string`). Positions map back as for renames.
    A literal KQL itself would reject raises QuerySyntaxError at its place. Remote engines are
    never given this text: the services decode every form themselves.
    """
    toks = tokenize(text)
    edits = _renames(toks)
    first = next((t for t in toks if t.kind not in ("ws", "comment")), None)
    if first is None or first.text != ".":  # a control command's text after `<|` may be raw data
        edits.update(_plain_strings(text, toks))
    return _apply(text, toks, edits)


def _renames(toks: list) -> dict[int, tuple[int, str]]:
    """Token index -> (last token index replaced, new text) for the deprecated names."""
    sig = [i for i, t in enumerate(toks) if t.kind not in ("ws", "comment")]
    replace: dict[int, tuple[int, str]] = {}
    for pos, idx in enumerate(sig):
        tok = toks[idx]
        if tok.kind != "ident":
            continue
        prev = toks[sig[pos - 1]] if pos > 0 else None
        nxt = toks[sig[pos + 1]] if pos + 1 < len(sig) else None
        low = tok.text
        if low in FUNCTIONS and FUNCTIONS[low] != low and nxt is not None and nxt.text == "(" \
                and (prev is None or prev.text != "."):
            replace[idx] = (idx, FUNCTIONS[low])
        elif low in OPERATORS and OPERATORS[low] != low and prev is not None and prev.text == "|":
            replace[idx] = (idx, OPERATORS[low])
    return replace


def _plain_strings(text: str, toks: list) -> dict[int, tuple[int, str]]:
    """Token index -> (last token index, plain literal) for every string run not already plain."""
    from kqlmagic_plus.errors import QuerySyntaxError
    from kqlmagic_plus.language import literals

    out: dict[int, tuple[int, str]] = {}
    i, n = 0, len(toks)
    while i < n:
        if toks[i].kind != "string":
            i += 1
            continue
        run = [i]
        k = i + 1
        while k < n:
            if toks[k].kind in ("ws", "comment"):
                k += 1
            elif toks[k].kind == "string":
                run.append(k)
                k += 1
            else:
                break
        values = []
        for idx in run:
            tok = toks[idx]
            try:
                values.append(literals.decode_string(tok.text))
            except literals.StringLiteralError as exc:
                line, col = line_col(text, tok.start + min(exc.offset, len(tok.text)))
                raise QuerySyntaxError(exc.message, text, line, col) from None
        plain = literals.string("".join(values))
        if any(toks[idx].text != literals.string(v) for idx, v in zip(run, values, strict=True)):
            out[run[0]] = (run[-1], plain)
        i = run[-1] + 1
    return out


def _apply(text: str, toks: list, edits: dict[int, tuple[int, str]]) -> Rewritten:
    if not edits:
        return Rewritten(text, text)
    out: list[str] = []
    shifts: list[tuple[int, int]] = []
    renamed: list[tuple[str, str]] = []
    new_len = 0
    delta = 0  # original offset - new offset, after the tokens so far
    idx = 0
    while idx < len(toks):
        tok = toks[idx]
        if idx not in edits:
            out.append(tok.text)
            new_len += len(tok.text)
            idx += 1
            continue
        last, piece = edits[idx]
        old = text[tok.start:toks[last].end]
        if tok.kind == "ident":
            renamed.append((old, piece))
        # Inside the new text, positions map to the start of the old one.
        shifts.append((new_len, delta))
        delta += len(old) - len(piece)
        shifts.append((new_len + len(piece), delta))
        out.append(piece)
        new_len += len(piece)
        idx = last + 1
    return Rewritten("".join(out), text, tuple(shifts), tuple(renamed))


def referenced_names(text: str) -> set[str]:
    """Identifiers the query mentions outside strings and comments (candidate table names)."""
    return {t.text for t in tokenize(text) if t.kind == "ident"}
