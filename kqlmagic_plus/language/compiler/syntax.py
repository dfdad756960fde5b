"""Parsing, and the small vocabulary the lowering uses to read ANTLR parse trees.

The parser is the ANTLR one generated from Microsoft's KQL grammar that duckdb-kql ships (pinned in
setup.cfg); only its parse tree is used, never its IR. Positions are 1-based lines and 0-based
columns of the text the user wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def rule(ctx: Any) -> str:
    """The grammar rule of a context: ``WhereOperatorContext`` -> ``WhereOperator``."""
    name = type(ctx).__name__
    return name[:-7] if name.endswith("Context") else name


def pos(ctx: Any) -> Pos:
    tok = getattr(ctx, "start", None) or getattr(ctx, "symbol", None)
    if tok is None:
        return Pos(1, 0)
    return Pos(tok.line, tok.column)


def source(ctx: Any) -> str:
    """The exact source text a context spans (``getText`` drops whitespace and comments)."""
    start, stop = ctx.start, ctx.stop
    if start is None or stop is None or stop.stop < start.start:
        return ""
    return start.getInputStream().getText(start.start, stop.stop)


def children(ctx: Any) -> list[Any]:
    return list(ctx.children or [])


def is_token(node: Any) -> bool:
    return not hasattr(node, "getRuleIndex")


def rule_children(ctx: Any) -> list[Any]:
    return [c for c in children(ctx) if not is_token(c)]


def tokens(ctx: Any) -> list[str]:
    return [c.getText() for c in children(ctx) if is_token(c)]


def collapse(ctx: Any) -> Any:
    """Follow chains of contexts with a single child context and no tokens of their own."""
    while ctx is not None and not is_token(ctx):
        kids = children(ctx)
        if len(kids) == 1 and not is_token(kids[0]):
            ctx = kids[0]
        else:
            break
    return ctx


def find_first(ctx: Any, rule_name: str) -> Any | None:
    if not is_token(ctx) and rule(ctx) == rule_name:
        return ctx
    for c in children(ctx):
        if not is_token(c):
            hit = find_first(c, rule_name)
            if hit is not None:
                return hit
    return None


def name_of(ctx: Any) -> str:
    """The identifier a name rule spells, with ``['escaped name']`` unquoted."""
    ctx = collapse(ctx)
    if is_token(ctx):
        return ctx.getText()
    if rule(ctx) == "EscapedName":
        from kqlmagic_plus.language.compiler.literals import string_value

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
