"""Parsing, and the small vocabulary the lowering uses to read ANTLR parse trees.

The parser is the ANTLR one generated from Microsoft's KQL grammar that duckdb-kql ships (pinned in
setup.cfg); only its parse tree is used, never its IR. Positions are 1-based lines and 0-based
columns of the text the user wrote. The tree readers themselves live in :mod:`.parsetree` (the
literal readers need them too, without the rest of this module) and are handed on from here.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

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


class TooDeep(Exception):
    """The query nests deeper than the parsers (ANTLR, sqlglot, DuckDB's own) can follow."""


#: Python frames a deeply nested query may use. ANTLR spends ~17 frames a level of parentheses, so
#: Python's default 1,000 stops at ~55 levels; this follows ~2,000 (and a chain of many thousand ``or``).
DEEP_FRAMES = 40_000
#: The C stack of a thread that runs with DEEP_FRAMES. Python 3.11+ keeps Python frames off the C stack,
#: but calls through C (and DuckDB's recursive parser and binder) use it; reserved, not committed.
DEEP_STACK = 256 * 1024 * 1024
#: Brackets nested deeper than this are refused before parsing: the parse time grows with the square of it.
MAX_BRACKETS = 400
#: About the longest chain of ``or`` (or ``and``) terms the local engine runs (DuckDB's expression depth).
MAX_CHAIN = 4_000

_T = TypeVar("_T")
_here = threading.local()
_frames_lock = threading.Lock()
_frames_users = 0
_frames_saved = 1000


def deep(fn: Callable[[], _T], nested: bool = False) -> _T:
    """``fn()``; when it recurses past Python's limit, ``fn()`` once more with DEEP_FRAMES on a deep stack.

    The common query never pays anything; a deeply nested one (*nested*: :func:`check_depth` said so) goes
    straight to the second way. TooDeep when even that is not enough. *fn* must be safe to run twice
    (parsing and translating are)."""
    if not nested:
        try:
            return fn()
        except RecursionError:
            pass
    if not getattr(_here, "deep_stack", False):
        return on_deep_stack(lambda: deep(fn, nested=True))
    global _frames_users, _frames_saved
    with _frames_lock:
        if _frames_users == 0:
            _frames_saved = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_frames_saved, DEEP_FRAMES))
        _frames_users += 1
    try:
        return fn()
    except RecursionError:
        raise TooDeep() from None
    finally:
        with _frames_lock:
            _frames_users -= 1
            if _frames_users == 0:
                sys.setrecursionlimit(_frames_saved)


def start_deep_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A started daemon thread running *target* on a DEEP_STACK stack (where :func:`deep` needs no other)."""

    big = True

    def body() -> None:
        _here.deep_stack = big
        target()

    with _frames_lock:  # the stack size is process-wide state, read when a thread starts
        try:
            old = threading.stack_size(DEEP_STACK)
        except (ValueError, RuntimeError):  # a platform that does not let us choose: the default stack
            old, big = None, False
        thread = threading.Thread(target=body, name=name, daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no room for the stack (a tight address-space limit): the default one
            if old is None:
                raise
            threading.stack_size(old)
            old, big = None, False
            thread = threading.Thread(target=body, name=name, daemon=True)
            thread.start()
        finally:
            if old is not None:
                threading.stack_size(old)
    return thread


def on_deep_stack(fn: Callable[[], _T]) -> _T:
    """``fn()`` run on a deep-stack thread, its value or exception handed back to the caller."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller, whatever it is
            box["error"] = exc

    try:
        thread = start_deep_thread(target, "kqlmp-deep-parse")
    except RuntimeError:  # no thread can start (an exhausted address space): no room to recurse either
        raise TooDeep() from None
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@dataclass(frozen=True)
class Depth:
    """How deeply a query nests: its deepest brackets and its longest chain of ``and``/``or`` terms."""

    brackets: int = 0
    #: Offset of the outermost bracket of the deepest nest.
    brackets_at: int = 0
    chain: int = 0
    #: Offset of the chain's first operator, and the operator.
    chain_at: int = 0
    chain_op: str = "or"


def depth_of(text: str) -> Depth:
    from kqlmagic_plus.language.lexer import significant, tokenize

    deepest, deepest_at = 0, 0
    #: per open bracket: operator -> [terms, offset of the first operator]
    levels: list[dict[str, list[int]]] = [{}]
    opened: list[int] = []  # offsets of the open brackets, outermost first
    longest, longest_at, longest_op = 0, 0, "or"
    for tok in significant(tokenize(text)):
        if tok.text in ("(", "[", "{"):
            levels.append({})
            opened.append(tok.start)
            if len(opened) > deepest:
                deepest, deepest_at = len(opened), opened[0]
        elif tok.text in (")", "]", "}"):
            if opened:
                levels.pop()
                opened.pop()
        elif tok.kind == "ident" and tok.text in ("or", "and"):
            chain = levels[-1].setdefault(tok.text, [1, tok.start])
            chain[0] += 1
            if chain[0] > longest:
                longest, longest_at, longest_op = chain[0], chain[1], tok.text
        elif tok.text in ("|", ",", ";"):
            levels[-1].clear()
    return Depth(deepest, deepest_at, longest, longest_at, longest_op)


def check_depth(text: str) -> bool:
    """TooDeep at once when *text* nests past MAX_BRACKETS or chains past MAX_CHAIN (parsing it would take
    minutes, then fail); else whether it nests deeper than Python's default recursion limit follows."""
    depth = most = 0
    for ch in text:  # cheap upper bounds first: most queries stop here
        if ch in "([{":
            depth += 1
            most = max(most, depth)
        elif ch in ")]}":
            depth -= 1
    if most < 40 and text.count("or") + text.count("and") < 300:
        return False
    d = depth_of(text)
    if d.brackets > MAX_BRACKETS or d.chain > MAX_CHAIN:
        raise TooDeep()
    return d.brackets >= 40 or d.chain >= 300


def too_deep_message(text: str) -> str:
    """The one line a too-deep query gets: what nests, where, and what to write instead."""
    from kqlmagic_plus.language.lexer import line_col

    d = depth_of(text)
    if d.brackets / MAX_BRACKETS >= d.chain / MAX_CHAIN:
        what, at = f"{d.brackets} levels of nested brackets", d.brackets_at
    else:
        what, at = f"a chain of {d.chain:,} {d.chain_op!r} terms", d.chain_at
    line, col = line_col(text, at)
    return (f"the query nests too deeply to compile: {what} starting at line {line}, column {col + 1} (the limits "
            f"are {MAX_BRACKETS} levels and {MAX_CHAIN:,} terms); split it: let statements for the parts, or "
            "`in (...)` / `has_any (...)` for a long list of alternatives")


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


#: What the ``table()`` function is read as: a call of this name, as long as ``table``.
TABLE_CALL = "__ktb"

#: What ``project-by-names`` is read as: ``invoke`` of a name the lowering knows, as long as the operator's name.
_PROJECT_BY_NAMES = "invoke __kqlpbn("
PROJECT_BY_NAMES_CALL = "__kqlpbn"


def _operator_end(toks: list[Any], j: int, default: int) -> int:
    """The end offset of the operator whose arguments start at token *j*: before the next ``|`` or ``;``
    outside brackets, or the bracket that closes around it."""
    depth, end = 0, default
    while j < len(toks):
        t = toks[j].text
        if depth == 0 and (t in ("|", ";") or t in (")", "]", "}")):
            break
        if t in ("(", "[", "{"):
            depth += 1
        elif t in (")", "]", "}"):
            depth -= 1
        end = toks[j].end
        j += 1
    return end


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
    replaces: list[tuple[int, str]] = []  # (offset in the original, same-length text written over it)
    for i, tok in enumerate(toks):
        if tok.text == "table" and i + 1 < len(toks) and toks[i + 1].text == "(" \
                and (i == 0 or toks[i - 1].text != "."):
            # The grammar reads `table` only as a keyword of other statements, so the table() function is
            # the same-length name of a call the lowering knows (TABLE_CALL).
            replaces.append((tok.start, TABLE_CALL))
            continue
        if tok.kind != "ident" or i == 0 or toks[i - 1].text != "|":
            continue
        word = tok.text.lower()
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if word == "serialize" and (nxt is None or nxt.text in ("|", ";", ")", "}")):
            edits.append((tok.end, " __kqlc_serial = 0"))
        elif word == "project-by" and i + 2 < len(toks) and toks[i + 1].text == "-" \
                and toks[i + 2].text.lower() == "names" and toks[i + 2].start == tok.end + 1:
            # The grammar has no project-by-names: the same-length text of a call the lowering knows
            # (invoke __kqlpbn(...)), so every position stays where the user wrote it.
            replaces.append((tok.start, _PROJECT_BY_NAMES))
            edits.append((_operator_end(toks, i + 3, tok.end), ")"))
        elif word == "evaluate":
            _star_schema_rewrite(text, toks, i, replaces, edits)
        elif word == "parse-kv":
            _parse_kv_rewrite(text, toks, i, replaces, edits)
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
    for off, rep in replaces:
        text = text[:off] + rep + text[off + len(rep):]
    if not edits:
        rw.text = text
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


#: parse-kv, which the grammar lacks, is read as ``extend __kqlpkv=__kqlpkv(<subject>, @'<spec>')``.
PARSE_KV_CALL = "__kqlpkv"
#: ``evaluate bag_unpack(...) : (*, ...)``: the ``*`` is read as a column of this name (types.HIDDEN_PREFIX).
STAR_COLUMN = "__kqlc_star"


def _operator_tokens(toks: list[Any], start: int) -> Iterator[int]:
    """Indices of the tokens outside brackets from *start* to the end of the operator (a ``|`` or ``;``)."""
    depth = 0
    for j in range(start, len(toks)):
        t = toks[j].text
        if t in ("(", "[", "{"):
            depth += 1
        elif t in (")", "]", "}"):
            depth -= 1
        elif depth == 0:
            if t in ("|", ";"):
                return
            yield j


def _parse_kv_rewrite(text: str, toks: list[Any], i: int, replaces: list[tuple[int, str]],
                      edits: list[tuple[int, str]]) -> None:
    """Queue the edits that make the ``parse-kv`` at ``toks[i]`` an extend the grammar reads."""
    j = next((k for k in _operator_tokens(toks, i + 1) if toks[k].text.lower() == "as" and toks[k].kind == "ident"),
             None)
    if j is None or j == i + 1:
        return  # not the parse-kv form: let the parser say what is wrong
    end = _operator_end(toks, j, toks[j].end)
    replaces.append((toks[i].start, "extend  "))
    edits.append((toks[i + 1].start, f"{PARSE_KV_CALL}={PARSE_KV_CALL}("))
    edits.append((toks[j].start, ", @'"))
    edits.extend((k, "'") for k in range(toks[j].start, end) if text[k] == "'")
    edits.append((end, "')"))


def _star_schema_rewrite(text: str, toks: list[Any], i: int, replaces: list[tuple[int, str]],
                         edits: list[tuple[int, str]]) -> None:
    """``evaluate ... : (*, ...)`` at ``toks[i]``: the ``*`` as the column ``__kqlc_star:dynamic``."""
    for j in _operator_tokens(toks, i + 1):
        if j + 2 < len(toks) and toks[j].text == ":" and toks[j + 1].text == "(" and toks[j + 2].text == "*":
            star = toks[j + 2]
            replaces.append((star.start, " "))
            edits.append((star.start, f"{STAR_COLUMN}:dynamic"))
            return
