"""``graph-match`` ``where`` / ``project`` expressions, rewritten onto one match's joined columns.

A match is one row of joined columns, a variable-length edge ``e*lo..hi`` holding hi slots of edges
(those past the match's length null) and its length, so a pattern expression becomes an ordinary KQL
expression over them: ``v.p`` is v's column for p, and the graph functions over ``e`` unroll over its
slots: ``map(e, x)`` is ``pack_array(x1, .., x_hi)`` cut to the length, ``all`` / ``any`` the ``and`` /
``or`` of the tests of the slots within the length (a null test counts as false, an empty path is all-true
and any-false). One expression for every length, so the lowerer reads it once. The rewrite works
on tokens (never regexes), so strings and comments are never read as names. Whatever has no exact
rewrite here (a whole element as a value, ``labels()``, ``node_id()``, nested graph functions) is
refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kqlmagic_plus.language.compiler.syntax import Pos, Refusal, SemanticError
from kqlmagic_plus.language.lexer import Token, significant, tokenize

#: Graph functions with no rewrite here: refused by name rather than read as ordinary functions.
_REFUSED = ("labels", "node_id", "inner_nodes")


@dataclass
class Element:
    """The element a ``map`` / ``all`` / ``any`` body is evaluated on: a path's edge or inner node."""

    var: str
    index: int
    inner: bool


@dataclass
class MatchColumns:
    """How one match's columns are named: supplied by the pattern lowering (graph_match.py)."""

    kinds: dict[str, str]  # pattern variable -> "node" | "edge" | "path"
    #: (variable, property) -> column for a node or fixed edge; raises SemanticError for an unknown one.
    prop: Callable[[str, str], str]
    #: (path, 1-based index, property, inner node?) -> column of that edge / inner node.
    elem_prop: Callable[[str, int, str, bool], str]
    #: (node variable or None, element or None, "in" | "out") -> a degree column.
    degree: Callable[[str | None, Element | None, str], str]
    #: path -> (the column holding its length in a match, its upper bound: the slots a match may fill)
    length: dict[str, tuple[str, int]] = field(default_factory=dict)
    edge_props: frozenset[str] = frozenset()
    node_props: frozenset[str] = frozenset()


def rewrite(text: str, cols: MatchColumns, clause: str, where: Pos) -> str:
    """*text* (a where / project expression) as KQL over the match's columns."""
    toks = significant(tokenize(text))
    return _Rewriter(toks, cols, clause, where).run(0, len(toks), None)


def project_name(text: str, kinds: dict[str, str], where: Pos) -> str:
    """The column name Kusto gives an unnamed ``project`` item: ``v.p`` -> ``v_p``, and
    ``node_degree_in/out(v)`` -> the function's name; anything else is refused (its name is not known)."""
    toks = [t.text for t in significant(tokenize(text))]
    if len(toks) == 3 and toks[1] == "." and toks[0] in kinds:
        return f"{toks[0]}_{toks[2]}"
    if len(toks) == 4 and toks[0] in ("node_degree_in", "node_degree_out") and toks[1] == "(" and toks[3] == ")":
        return toks[0]
    raise Refusal("an unnamed graph-match project expression", where,
                  "name it: project name = expression")


class _Rewriter:
    def __init__(self, toks: list[Token], cols: MatchColumns, clause: str, where: Pos):
        self.t, self.c, self.clause, self.where = toks, cols, clause, where

    def _close(self, i: int, hi: int) -> int:
        """The index of the ``)`` matching the ``(`` at *i*."""
        depth = 0
        for j in range(i, hi):
            s = self.t[j].text
            if s in "([{":
                depth += 1
            elif s in ")]}":
                depth -= 1
                if depth == 0:
                    return j
        raise SemanticError("graph-match: unbalanced parentheses", self.where)

    def _args(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The top-level comma-separated ranges of tokens lo..hi (exclusive)."""
        out, depth, start = [], 0, lo
        for j in range(lo, hi):
            s = self.t[j].text
            if s in "([{":
                depth += 1
            elif s in ")]}":
                depth -= 1
            elif s == "," and depth == 0:
                out.append((start, j))
                start = j + 1
        if start < hi:
            out.append((start, hi))
        return out

    def run(self, lo: int, hi: int, elem: Element | None) -> str:
        out: list[str] = []
        t, c = self.t, self.c
        i = lo
        while i < hi:
            tok = t[i]
            prev = t[i - 1].text if i > lo else ""
            nxt = t[i + 1].text if i + 1 < hi else ""
            if tok.kind != "ident" or prev == ".":
                out.append(tok.text)
                i += 1
                continue
            name = tok.text
            if nxt == "(" and name in ("map", "all", "any"):
                end = self._close(i + 1, hi)
                out.append(self._path_function(name, i + 2, end, elem))
                i = end + 1
                continue
            if nxt == "(" and name in ("node_degree_in", "node_degree_out"):
                end = self._close(i + 1, hi)
                out.append(self._degree(name[12:], i + 2, end, elem))
                i = end + 1
                continue
            if nxt == "(" and name in _REFUSED:
                raise Refusal(f"{name}() in graph-match", self.where,
                              "only map(), all() and any() read a variable-length edge's inner nodes"
                              if name == "inner_nodes" else None)
            if elem is not None and nxt != "(" and name in (c.node_props if elem.inner else c.edge_props):
                out.append(c.elem_prop(elem.var, elem.index, name, elem.inner))
                i += 1
                continue
            if name in c.kinds and nxt != "(":
                if nxt != "." or i + 2 >= hi or t[i + 2].kind != "ident":
                    raise Refusal(f"a whole graph element ({name}) as a value", self.where,
                                  "read its properties: name.property")
                prop = t[i + 2].text
                if c.kinds[name] == "path":
                    if self.clause != "project":
                        raise Refusal(f"a property of the variable-length edge {name} outside map(), all() or "
                                      f"any()", self.where, f"write all({name}, {prop} ...)")
                    out.append(self._unroll("map", name, False, lambda e, p=prop: c.elem_prop(
                        e.var, e.index, p, False)))
                else:
                    out.append(c.prop(name, prop))
                i += 3
                continue
            out.append(name)
            i += 1
        return " ".join(out)

    def _path_function(self, fn: str, lo: int, hi: int, elem: Element | None) -> str:
        if elem is not None:
            raise Refusal(f"{fn}() inside another map(), all() or any()", self.where)
        args = self._args(lo, hi)
        if len(args) != 2:
            raise SemanticError(f"graph-match: {fn}() takes a variable-length edge and an expression", self.where)
        (a0, a1), (b0, b1) = args
        words = [x.text for x in self.t[a0:a1]]
        inner = len(words) == 4 and words[0] == "inner_nodes" and words[1] == "(" and words[3] == ")"
        var = words[2] if inner else (words[0] if len(words) == 1 else "")
        if self.c.kinds.get(var) != "path":
            raise Refusal(f"{fn}() over something other than a variable-length edge", self.where)
        return self._unroll(fn, var, inner, lambda e: "(" + self.run(b0, b1, e) + ")")

    def _unroll(self, fn: str, var: str, inner: bool, body: Callable[[Element], str]) -> str:
        """Over every slot a match may fill (the path's upper bound), each guarded by the match's length."""
        length, hi = self.c.length[var]
        n = length + " - 1" if inner else length
        slots = hi - 1 if inner else hi
        items = [body(Element(var, k, inner)) for k in range(1, slots + 1)]
        if fn == "map":
            if not items:
                return "dynamic([])"
            return f"iff({n} < 1, dynamic([]), array_slice(pack_array({', '.join(items)}), 0, {n} - 1))"
        if not items:
            return "true" if fn == "all" else "false"
        if fn == "all":
            return "(" + " and ".join(f"({n} < {k} or coalesce({x}, false))" for k, x in enumerate(items, 1)) + ")"
        return "(" + " or ".join(f"({n} >= {k} and coalesce({x}, false))" for k, x in enumerate(items, 1)) + ")"

    def _degree(self, which: str, lo: int, hi: int, elem: Element | None) -> str:
        words = [x.text for x in self.t[lo:hi]]
        if not words:
            if elem is None or not elem.inner:
                raise Refusal(f"node_degree_{which}() without a node", self.where,
                              "inside map(inner_nodes(e), ...) it reads the inner node; elsewhere name the node")
            return self.c.degree(None, elem, which)
        if len(words) != 1 or self.c.kinds.get(words[0]) != "node":
            raise Refusal(f"node_degree_{which}() of something other than a node variable", self.where)
        return self.c.degree(words[0], None, which)
