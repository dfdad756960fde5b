"""Parsing, and the small vocabulary the lowering uses to read ANTLR parse trees.

The parser is the ANTLR one generated from Microsoft's KQL grammar that duckdb-kql ships (pinned in
setup.cfg); only its parse tree is used, never its IR. Positions are 1-based lines and 0-based
columns of the text the user wrote. The tree readers themselves live in :mod:`.parsetree` (the
literal readers need them too, without the rest of this module) and are handed on from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kqlmagic_plus.language.compiler.literals import string_value
from kqlmagic_plus.language.compiler.parsetree import collapse, is_token, rule


@dataclass(frozen=True)
class Pos:
    line: int
    column: int


class Refusal(Exception):
    """A construct the compiler does not translate (for one dialect, or at all)."""

    def __init__(self, construct: str, pos: Pos | None = None, reason: str | None = None):
        super().__init__(construct)
        self.construct = construct
        self.pos = pos
        self.reason = reason


class SemanticError(Exception):
    """The query parses but is wrong: an unknown column or function, a type mismatch."""

    def __init__(self, message: str, pos: Pos | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos


class UnknownTable(Exception):
    def __init__(self, name: str, pos: Pos | None = None):
        super().__init__(name)
        self.name = name
        self.pos = pos


class ParseFailure(Exception):
    def __init__(self, message: str, pos: Pos):
        super().__init__(message)
        self.message = message
        self.pos = pos


def parse(text: str) -> Any:
    """The parse tree of *text* (the grammar's ``top`` rule), or :class:`ParseFailure`."""
    import duckdb_kql
    from duckdb_kql import KqlSyntaxError

    try:
        result = duckdb_kql.parse(text)
    except KqlSyntaxError as exc:
        if exc.diagnostics:
            d = exc.diagnostics[0]
            raise ParseFailure(_clean(d.message), Pos(d.span.line, d.span.column)) from None
        raise ParseFailure(str(exc), Pos(1, 0)) from None
    if result.tree is None:
        raise Refusal("control command", Pos(1, 0), "only queries compile, not management commands")
    return result.tree


def _clean(message: str) -> str:
    # ANTLR lists every token it would have accepted; the first half of the sentence is what helps.
    head, sep, tail = message.partition(" expecting ")
    return head if sep and len(tail) > 60 else message


def pos(ctx: Any) -> Pos:
    tok = getattr(ctx, "start", None) or getattr(ctx, "symbol", None)
    if tok is None:
        return Pos(1, 0)
    return Pos(tok.line, tok.column)


def name_of(ctx: Any) -> str:
    """The identifier a name rule spells, with ``['escaped name']`` unquoted."""
    ctx = collapse(ctx)
    if is_token(ctx):
        return ctx.getText()
    if rule(ctx) == "EscapedName":
        return string_value(ctx.StringLiteral)
    return ctx.getText()


class Rewrite:
    """Text insertions made before parsing, and the map from the new text's positions back."""

    def __init__(self, original: str):
        self.original = original
        self.text = original
        #: (offset in the new text where the insertion starts, its length), ascending.
        self.inserts: list[tuple[int, int]] = []

    def original_pos(self, p: Pos | None) -> Pos | None:
        if p is None or not self.inserts:
            return p
        from kqlmagic_plus.language.lexer import line_col, offset_of

        off = offset_of(self.text, p.line, p.column)
        shift = 0
        for start, length in self.inserts:
            if off >= start + length:
                shift += length
            elif off >= start:
                shift += off - start
        line, col = line_col(self.original, max(0, off - shift))
        return Pos(line, col)


#: Operators whose grammar reads ``name = f(x)`` as a parameter ``name=f`` and a column ``(x)``.
_AMBIGUOUS_NAMED = ("make-series", "makeseries", "distinct")


def preprocess(text: str) -> Rewrite:
    """Work around two places where the vendored grammar rejects valid KQL, without moving what
    the user wrote: a bare ``serialize`` (the grammar wants an expression after it) and
    ``make-series``/``distinct`` with a named first expression. Only insertions are made."""
    from kqlmagic_plus.language.lexer import significant, tokenize

    rw = Rewrite(text)
    toks = significant(tokenize(text))
    edits: list[tuple[int, str]] = []  # (offset in the original, text to insert)
    for i, tok in enumerate(toks):
        if tok.kind != "ident" or i == 0 or toks[i - 1].text != "|":
            continue
        word = tok.text.lower()
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if word == "serialize" and (nxt is None or nxt.text in ("|", ";", ")", "}")):
            edits.append((tok.end, " __kqlc_serial = 0"))
        elif word in _AMBIGUOUS_NAMED:
            j = i + 1
            # skip operator parameters (kind=nonempty, hint.x=y)
            while j + 2 < len(toks) and toks[j + 1].text == "=" and toks[j].text.lower() == "kind":
                j += 3
            if (
                j + 3 < len(toks)
                and toks[j].kind == "ident"
                and toks[j + 1].text == "="
                and toks[j + 2].kind == "ident"
                and toks[j + 3].text == "("
            ):
                edits.append((toks[j].start, "['"))
                edits.append((toks[j].end, "']"))
    if not edits:
        return rw
    out, last, delta = [], 0, 0
    for off, ins in sorted(edits):
        out.append(text[last:off])
        rw.inserts.append((off + delta, len(ins)))
        out.append(ins)
        delta += len(ins)
        last = off
    out.append(text[last:])
    rw.text = "".join(out)
    return rw
