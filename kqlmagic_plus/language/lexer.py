"""A small KQL tokenizer for the text-level jobs that must not be done with regexes.

It knows exactly what can hide a word from the query: string literals of every form (quoted,
verbatim ``@'..'``, obfuscated ``h'..'``, multi-line ```` ```..``` ```` / ``~~~..~~~``, and their
combinations such as ``h@'..'``), comments and whitespace. What a literal *means* is
:func:`kqlmagic_plus.language.literals.decode_string`.
Used to rename deprecated functions, find the names a query reads, strip comments for cache keys
and find a trailing ``render`` clause. The full grammar lives in the parsers (duckdb-kql's ANTLR
grammar, and our compiler); this only has to be right about token boundaries.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

Kind = Literal["ws", "comment", "string", "ident", "number", "punct"]

_PUNCT3 = ("!~~", "!in", "..", "!=", "<=", ">=", "==", "=~", "!~", "<>", "=>", "<|", "|>")


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    #: Offset of the first character in the source text.
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def tokenize(text: str) -> list[Token]:
    """Split *text* into tokens; every character of *text* belongs to exactly one token."""
    return list(_tokenize(text))


@functools.lru_cache(maxsize=128)
def _tokenize(text: str) -> tuple[Token, ...]:
    # One query is tokenized by several layers (quiet `;`, lets, render, aliases, cache key): once is enough.
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        start = i
        if c.isspace():
            while i < n and text[i].isspace():
                i += 1
            tokens.append(Token("ws", text[start:i], start))
            continue
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            tokens.append(Token("comment", text[start:i], start))
            continue
        prefix = _string_prefix(text, i)
        if prefix is not None:
            i += prefix
            if text.startswith("```", i) or text.startswith("~~~", i):
                fence = text[i:i + 3]
                j = text.find(fence, i + 3)
                i = n if j < 0 else j + 3
                tokens.append(Token("string", text[start:i], start))
                continue
            quote = text[i]
            verbatim = "@" in text[start:i]
            i += 1
            while i < n:
                ch = text[i]
                if ch in "\r\n":
                    break  # a quoted literal cannot span lines: this one is unterminated
                if ch == "\\" and not verbatim:
                    i += 1 if i + 1 < n and text[i + 1] in "\r\n" else 2
                    continue
                if ch == quote:
                    if verbatim and i + 1 < n and text[i + 1] == quote:
                        i += 2
                        continue
                    i += 1
                    break
                i += 1
            tokens.append(Token("string", text[start:i], start))
            continue
        if c.isalpha() or c == "_" or c == "$":
            while i < n and (text[i].isalnum() or text[i] in "_$"):
                i += 1
            # KQL operator names contain dashes (mv-expand, project-away, make-series).
            while i + 1 < n and text[i] == "-" and text[i + 1].isalpha() and _dash_word(text, start, i):
                i += 1
                while i < n and (text[i].isalnum() or text[i] == "_"):
                    i += 1
            tokens.append(Token("ident", text[start:i], start))
            continue
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            while i < n and (text[i].isalnum() or text[i] in "._"):
                if text[i] == "." and text.startswith("..", i):
                    break
                i += 1
            tokens.append(Token("number", text[start:i], start))
            continue
        for p in _PUNCT3:
            if text.startswith(p, i):
                i += len(p)
                break
        else:
            i += 1
        tokens.append(Token("punct", text[start:i], start))
    return tuple(tokens)


def _dash_word(text: str, start: int, dash: int) -> bool:
    """Only the operator names of KQL are dashed words; ``a-b`` between identifiers is subtraction."""
    head = text[start:dash].lower()
    return head in {"mv", "project", "make", "top", "parse", "partition", "graph", "make-graph"}


def _string_prefix(text: str, i: int) -> int | None:
    """Length of a string prefix (``h``/``H``, then ``@``; either may be absent) if a string literal
    (quoted or multi-line) starts at *i*."""
    j = i
    if j < len(text) and text[j] in "hH":
        # An identifier ending in h followed by a quote is not a prefix: only when the h starts
        # a token (the previous char is not part of a word).
        if i > 0 and (text[i - 1].isalnum() or text[i - 1] in "_$"):
            return None
        j += 1
    if j < len(text) and text[j] == "@":
        j += 1
    if j < len(text) and (text[j] in "'\"" or text.startswith("```", j) or text.startswith("~~~", j)):
        return j - i
    return None


def significant(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind not in ("ws", "comment")]


def normalize(text: str) -> str:
    """The query with comments removed and insignificant whitespace collapsed (for cache keys).

    String literals are kept byte for byte: they are semantic text.
    """
    out: list[str] = []
    prev: Token | None = None
    for tok in significant(tokenize(text)):
        if prev is not None and _needs_space(prev, tok):
            out.append(" ")
        out.append(tok.text)
        prev = tok
    return "".join(out)


def _needs_space(a: Token, b: Token) -> bool:
    wordy = ("ident", "number", "string")
    return a.kind in wordy and b.kind in wordy


def line_col(text: str, offset: int) -> tuple[int, int]:
    """1-based line and 0-based column of *offset* in *text*."""
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1)
    return line, col


def offset_of(text: str, line: int, column: int) -> int:
    """Inverse of :func:`line_col`."""
    pos = 0
    for _ in range(line - 1):
        nl = text.find("\n", pos)
        if nl < 0:
            return len(text)
        pos = nl + 1
    return min(pos + column, len(text))
