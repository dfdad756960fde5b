"""``graph-match`` and ``graph-shortest-paths``: a pattern's matches as bounded joins of the graph's tables.

A graph is its edges (numbered once: an edge's identity, which ``cycles=unique_edges`` compares) and its
nodes (the node table's first row per key, then each endpoint the table lacks; ``with_node_id``: the
endpoints). A variable-length edge ``e*lo..hi`` is the union of its walks of each length lo..hi, a walk of n
edges n joins of the edges (slots 1..n; the slots past a walk's length null), so a pattern is one fixed chain
of joins, filtered by the cycle rule and the ``where`` clause and projected once (``graph_exprs``). The rules
are those the local engine measured against Kusto: ``unique_edges`` (the default) keeps a match whose edges
are all distinct, ``none`` one whose distinct variables are distinct nodes and whose paths are simple (their
inner nodes none of the pattern's), ``all`` every walk; an undirected edge is its edge in both
orientations under one identity; a shortest path is simple, and ``output=any`` keeps, per start and end,
the shortest with the earliest edges. Written as KQL the lowerer translates, so every engine answers alike.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.graph import _EDGES, _NODES, MakeGraph, _lower, _q, _text
from kqlmagic_plus.language.compiler.lower.graph_exprs import Element, MatchColumns, project_name, rewrite
from kqlmagic_plus.language.compiler.parsetree import source
from kqlmagic_plus.language.compiler.syntax import Pos, Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer
    from kqlmagic_plus.language.compiler.lower.scope import Env

_P = "__gm_"
#: The longest variable-length edge: each length is a join of its own, and beyond this the SQL grows past what
#: an engine plans in interactive time.
MAX_LENGTH = 10


@dataclass
class _Edge:
    name: str
    left: str
    right: str
    direction: str  # "out" (left -> right), "in" (right -> left), "any"
    lo: int
    hi: int
    variable: bool


@dataclass
class _Pattern:
    nodes: list[str] = field(default_factory=list)
    edges: list[_Edge] = field(default_factory=list)


class _Graph:
    """The graph's shared tables (IR nodes, each one CTE however often a chain reads it)."""

    def __init__(self, lw: Lowerer, g: MakeGraph, env: Env, degrees: bool, where: Pos):
        self.lw, self.env, self.where = lw, env, where
        self.edge_cols = [c.name for c in g.edges.schema.visible]
        if g.nodes is not None:
            self.node_cols = [c.name for c in g.nodes.schema.visible]
            self.key = g.key or ""
        else:
            self.node_cols, self.key = [g.id_name or ""], g.id_name or ""
        for col in self.edge_cols + self.node_cols:
            if col.startswith(_P):
                raise Refusal(f"graph-match over a column named {col} (a prefix it works with)", where)
        src, dst = _q(g.source), _q(g.target)
        self.edges = self._low(f"{_EDGES} | serialize {_P}id = row_number() | extend {_P}s = {src}, {_P}t = {dst}",
                               {_EDGES: g.edges})
        ends = f"union ({_EDGES} | project {_P}k = {src}), ({_EDGES} | project {_P}k = {dst}) | distinct {_P}k"
        key = _q(self.key)
        if g.nodes is not None:
            first = (f"{_NODES} | serialize {_P}o = row_number() | summarize arg_min({_P}o, *) by {_P}k = {key}"
                     f" | project-away {_P}o, {_P}k")
            text = (f"union ({first}), ({ends} | join kind=leftanti ({_NODES} | project {_P}k = {key}) on {_P}k"
                    f" | project {key} = {_P}k)")
            binds = {_EDGES: g.edges, _NODES: g.nodes}
        else:
            text, binds = f"{ends} | project {key} = {_P}k", {_EDGES: g.edges}
        text += f" | extend {_P}k = {key}"
        if degrees:
            text += (f" | join kind=leftouter ({_EDGES} | summarize {_P}do = count() by {_P}k = {src}) on {_P}k"
                     f" | project-away {_P}k1"
                     f" | join kind=leftouter ({_EDGES} | summarize {_P}di = count() by {_P}k = {dst}) on {_P}k"
                     f" | project-away {_P}k1 | extend {_P}do = coalesce({_P}do, 0), {_P}di = coalesce({_P}di, 0)")
        self.nodes = self._low(text, binds)
        self.degrees = degrees
        self._inst: dict[tuple[str, int, str], ir.Node] = {}
        self._node_inst: dict[str, ir.Node] = {}
        #: The element columns the where / project read (set before any instance is built).
        self.needed: set[str] = set()

    def _low(self, text: str, binds: dict[str, ir.Node]) -> ir.Node:
        return _lower(self.lw, text, binds, self.env)

    # -- column names ---------------------------------------------------------------------------------------

    def node_col(self, prefix: str, prop: str) -> str:
        if prop not in self.node_cols:
            raise SemanticError(f"graph-match: the nodes have no property named {prop!r}", self.where)
        if prop == self.key:
            return _q(f"{prefix}k")
        return _q(f"{prefix}p{self.node_cols.index(prop)}")

    def edge_col(self, prefix: str, prop: str) -> str:
        if prop not in self.edge_cols:
            raise SemanticError(f"graph-match: the edges have no property named {prop!r}", self.where)
        return _q(f"{prefix}p{self.edge_cols.index(prop)}")

    # -- tables with their columns renamed for one element (IR built directly: parsing is the slow part) ----

    def node_instance(self, prefix: str) -> ir.Node:
        """The nodes with columns ``<prefix>k`` (the key), ``<prefix>p<i>``, ``<prefix>di/do``."""
        if prefix not in self._node_inst:
            pairs = [(prefix + "k", f"{_P}k")]
            pairs += [(f"{prefix}p{i}", c) for i, c in enumerate(self.node_cols)
                      if c != self.key and f"{prefix}p{i}" in self.needed]
            if self.degrees and {prefix + "di", prefix + "do"} & self.needed:
                pairs += [(prefix + "di", f"{_P}di"), (prefix + "do", f"{_P}do")]
            self._node_inst[prefix] = _select(self.nodes, pairs)
        return self._node_inst[prefix]

    def edge_instance(self, prefix: str, direction: str) -> ir.Node:
        """The edges oriented along the pattern (``<prefix>a`` -> ``<prefix>b``), with ``<prefix>id``."""
        key = (prefix, 0, direction)
        if key not in self._inst:
            props = [(f"{prefix}p{i}", c) for i, c in enumerate(self.edge_cols) if f"{prefix}p{i}" in self.needed]

            def leg(a: str, b: str) -> ir.Node:
                return _select(self.edges, [(prefix + "id", f"{_P}id"), (prefix + "a", _P + a),
                                            (prefix + "b", _P + b), *props])
            if direction == "out":
                node = leg("s", "t")
            elif direction == "in":
                node = leg("t", "s")
            else:
                one, two = leg("s", "t"), leg("t", "s")
                cols = [ir.Col(c.type, c.name) for c in one.schema]
                node = ir.Union(one.schema, [(one, cols), (two, list(cols))])
            self._inst[key] = node
        return self._inst[key]


def _select(node: ir.Node, pairs: list[tuple[str, str]]) -> ir.Node:
    """*node*'s columns renamed: (new name, its column)."""
    types = {c.name: c.type for c in node.schema}
    return ir.Select(Schema(Column(n, types[c]) for n, c in pairs), node, [(n, ir.Col(types[c], c)) for n, c in pairs])


def _join(left: ir.Node, right: ir.Node, lkey: str, rkey: str) -> ir.Node:
    lt, rt = left.schema.get(lkey), right.schema.get(rkey)
    assert lt is not None and rt is not None
    return ir.Join(Schema([*left.schema, *right.schema]), left, right, "inner", [ir.Col(lt.type, lkey)],
                   [ir.Col(rt.type, rkey)], {c.name: c.name for c in right.schema})


def _col(node: ir.Node, name: str) -> ir.Col:
    c = node.schema.get(name)
    assert c is not None
    return ir.Col(c.type, name)


def _union(parts: list[ir.Node]) -> ir.Node:
    """*parts* stacked by column name, a column a part lacks null."""
    cols: dict[str, str] = {}
    for part in parts:
        for c in part.schema:
            cols.setdefault(c.name, c.type)
    return ir.Union(Schema(Column(n, t) for n, t in cols.items()),
                    [(part, [ir.Col(t, n) if n in part.schema else ir.Lit(t, None) for n, t in cols.items()])
                     for part in parts])


def _compare(node: ir.Node, op: str, a: str, b: str) -> ir.Expr:
    ta, tb = node.schema.get(a), node.schema.get(b)
    assert ta is not None and tb is not None
    return ir.Call(T.BOOL, op, (ir.Col(ta.type, a), ir.Col(tb.type, b)))


class _Match:
    def __init__(self, lw: Lowerer, c: Any, g: MakeGraph, env: Env, shortest: str | None):
        self.where = pos(c)
        self.shortest = shortest
        params = {k: str(v).lower() for k, (_, v) in lw.parameters(list(c.Parameters or [])).items()}
        allowed = {"output"} if shortest is not None else {"cycles"}
        for k in params:
            if k not in allowed:
                raise Refusal(f"{_op(shortest)} with {k}=", self.where)
        self.cycles = params.get("cycles", "unique_edges")
        if self.cycles not in ("unique_edges", "none", "all"):
            raise SemanticError(f"graph-match: cycles must be all, none or unique_edges, not {self.cycles}",
                                self.where)
        self._anon = 0
        self.patterns = [self._pattern(p) for p in c.Patterns]
        self.kinds: dict[str, str] = {}
        for p in self.patterns:
            for n in p.nodes:
                self.kinds[n] = "node"
            for e in p.edges:
                if e.name in self.kinds:
                    raise SemanticError(f"{_op(shortest)}: the edge name {e.name} is used twice", self.where)
                self.kinds[e.name] = "path" if e.variable else "edge"
        if shortest is not None:
            edges = [e for p in self.patterns for e in p.edges]
            if len(self.patterns) != 1 or len(edges) != 1 or not edges[0].variable:
                raise Refusal("graph-shortest-paths other than (a)-[e*lo..hi]->(b)", self.where)
        self.where_text = source(c.WhereClause.Expression) if c.WhereClause is not None else None
        self.where_pos = pos(c.WhereClause) if c.WhereClause is not None else self.where
        self.project = list(c.ProjectClause.Expressions) if c.ProjectClause is not None else []
        if not self.project:
            raise Refusal(f"{_op(shortest)} without project", self.where)
        text = (self.where_text or "") + " " + " ".join(source(ne) for ne in self.project)
        self.graph = _Graph(lw, g, env, "node_degree_" in text, self.where)
        self.inner_used = "inner_nodes" in text
        self.lw, self.env = lw, env
        self._paths: dict[tuple[str, int], ir.Node] = {}

    def _name(self, ctx: Any, what: str) -> str:
        if ctx is not None and ctx.Name is not None:
            return name_of(ctx.Name)
        self._anon += 1
        return f"{_P}{what}{self._anon}"

    def _pattern(self, p: Any) -> _Pattern:
        out = _Pattern()
        out.nodes = [self._name(n, "n") for n in p.Nodes]
        for i, e in enumerate(p.Edges):
            left, right = out.nodes[i], out.nodes[i + 1]
            if e.NamedEdge is not None:
                ne = e.NamedEdge
                opening, closing = _text(ne.OpenBracket), _text(ne.CloseBracket)
                name = self._name(ne, "e")
                lo = hi = 1
                variable = ne.Range is not None
                if variable:
                    lo, hi = self._bound(ne.Range.LowerBound), self._bound(ne.Range.UpperBound)
                    if lo < 0 or lo > hi:
                        raise SemanticError(f"{_op(self.shortest)}: the range *{lo}..{hi} is empty", pos(ne))
                    if hi > MAX_LENGTH:
                        raise Refusal(f"a variable-length edge longer than {MAX_LENGTH}", pos(ne),
                                      "each length is a join of its own")
            else:
                arrow = _text(e.UnnamedEdge.Direction)
                opening, closing = ("<-", "-") if arrow == "<--" else (("-", "->") if arrow == "-->" else ("-", "-"))
                name, lo, hi, variable = self._name(None, "e"), 1, 1, False
            inward, outward = opening.startswith("<"), closing.endswith(">")
            if inward and outward:
                raise SemanticError(f"{_op(self.shortest)}: an edge points both ways", pos(e))
            direction = "in" if inward else ("out" if outward else "any")
            out.edges.append(_Edge(name, left, right, direction, lo, hi, variable))
        return out

    def _bound(self, ctx: Any) -> int:
        text = ctx.getText() if ctx is not None else ""
        if not text.isdigit():
            raise Refusal("a variable-length edge bound that is not an integer constant", pos(ctx) if ctx else
                          self.where)
        return int(text)

    # -- one chain ------------------------------------------------------------------------------------------

    def _node_prefix(self, var: str) -> str:
        return f"{_P}{self._index(var)}_"

    def _index(self, var: str) -> int:
        return list(self.kinds).index(var)

    def _edge_prefix(self, var: str, i: int) -> str:
        return f"{_P}{self._index(var)}_{i}_"

    def chain(self) -> ir.Node:
        """The joined match rows (each variable-length edge at every length it may take), cycle rule applied."""
        g = self.graph
        first = self.patterns[0].nodes[0]
        node = g.node_instance(self._node_prefix(first))
        bound = {first}
        same: list[tuple[str, str]] = []  # (column, column) that must be equal
        ids: list[tuple[str, str, bool]] = []  # (edge id column, its element, may be null) for unique_edges
        inner: list[tuple[str, str, int]] = []  # (path length column, inner node key column, slot) for cycles=none
        todo = [e for p in self.patterns for e in p.edges]

        def key(v: str) -> str:
            return self._node_prefix(v) + "k"

        while todo:
            e = next((x for x in todo if x.left in bound or x.right in bound), None)
            if e is None:
                raise Refusal(f"{_op(self.shortest)} patterns that are not connected", self.where,
                              "patterns must share a node variable")
            todo.remove(e)
            forward = e.left in bound
            near, far = (e.left, e.right) if forward else (e.right, e.left)
            if not e.variable:
                p = self._edge_prefix(e.name, 1)
                this, other = (p + "a", p + "b") if forward else (p + "b", p + "a")
                node = _join(node, g.edge_instance(p, e.direction), key(near), this)
                ids.append((p + "id", e.name, False))
            else:
                ln = self._len(e.name)
                this, other = (ln + "s", ln + "e") if forward else (ln + "e", ln + "s")
                node = _join(node, self._paths_of(e), key(near), this)
                ids += [(self._edge_prefix(e.name, i) + "id", e.name, i > e.lo) for i in range(1, e.hi + 1)]
                inner += [(ln, self._edge_prefix(e.name, i) + "b", i) for i in range(1, e.hi)]
            if far in bound:
                same.append((key(far), other))
            else:
                node = _join(node, g.node_instance(self._node_prefix(far)), other, key(far))
                bound.add(far)
        tests = [_compare(node, "==", a, b) for a, b in same]

        def differ(a: str, b: str, *maybe_null: str) -> ir.Expr:
            test = _compare(node, "!=", a, b)
            for c in maybe_null:  # a slot past its path's length is null: nothing to compare
                test = ir.Call(T.BOOL, "or", (ir.Call(T.BOOL, "isnull", (_col(node, c),)), test))
            return test

        def past(length: str, slot: int, test: ir.Expr) -> ir.Expr:
            return ir.Call(T.BOOL, "or", (ir.Call(T.BOOL, "<=", (_col(node, length), ir.Lit(T.LONG, slot))), test))

        if self.cycles == "unique_edges" and self.shortest is None:
            # Within one path its own table has checked them already.
            tests += [differ(a, b, *([a] if na else []), *([b] if nb else []))
                      for (a, ea, na), (b, eb, nb) in itertools.combinations(ids, 2) if ea != eb]
        elif self.cycles == "none" and self.shortest is None:
            nodes = [key(v) for v, k in self.kinds.items() if k == "node"]
            tests += [differ(a, b) for a, b in itertools.combinations(nodes, 2)]
            tests += [past(ln, i, differ(b, v)) for ln, b, i in inner for v in nodes]
            tests += [past(l1, i, past(l2, j, differ(b1, b2))) for (l1, b1, i), (l2, b2, j)
                      in itertools.combinations(inner, 2) if l1 != l2]
        if tests:
            node = ir.Filter(node.schema, node, tests[0] if len(tests) == 1 else ir.Call(T.BOOL, "and", tuple(tests)))
        return node

    def _len(self, var: str) -> str:
        return f"{_P}{self._index(var)}_len"

    def _paths_of(self, e: _Edge) -> ir.Node:
        """Every walk along *e*, of each length lo..hi, with its ends (``_lens`` / ``_lene``) and length; slots
        past a walk's length are null."""
        parts = [self._path(e, n) for n in range(e.lo, e.hi + 1)]
        if len(parts) == 1:
            return parts[0]
        return _union(parts)

    def _path(self, e: _Edge, n: int) -> ir.Node:
        """The walks of *n* edges along *e* (slots 1..n: each edge's columns, then its end's as an inner node),
        its own cycle rule applied."""
        g, ln = self.graph, self._len(e.name)
        if n == 0:
            walk: ir.Node = g.nodes
            ends = (f"{_P}k", f"{_P}k")
            keep: list[tuple[str, ir.Expr]] = []
        else:
            walk = self._walk(e, n)
            ends = (self._edge_prefix(e.name, 1) + "a", self._edge_prefix(e.name, n) + "b")
            keep = [(c.name, ir.Col(c.type, c.name)) for c in walk.schema]
        items = [*keep, (ln + "s", _col(walk, ends[0])), (ln + "e", _col(walk, ends[1])), (ln, ir.Lit(T.LONG, n))]
        return ir.Select(Schema(Column(name, x.type) for name, x in items), walk, items)

    def _walk(self, e: _Edge, n: int) -> ir.Node:
        key = (e.name, -n)
        if key in self._paths:
            return self._paths[key]
        g = self.graph
        p = self._edge_prefix(e.name, n)
        inst = g.edge_instance(p, e.direction)
        if n == 1:
            node = inst
        else:
            q = self._edge_prefix(e.name, n - 1)
            node = self._walk(e, n - 1)
            if self.inner_used:
                node = _join(node, g.node_instance(q + "n"), q + "b", q + "nk")
            node = _join(node, inst, q + "b", p + "a")
            conds: list[tuple[str, str, str]] = []
            if self.shortest is not None or self.cycles == "none":  # a simple path: no node twice
                ends = [self._edge_prefix(e.name, 1) + "a"] + [self._edge_prefix(e.name, i) + "b" for i in range(1, n)]
                conds += [("!=", x, p + "b") for x in ends]
            elif self.cycles == "unique_edges":
                conds += [("!=", self._edge_prefix(e.name, i) + "id", p + "id") for i in range(1, n)]
            if conds:
                tests = tuple(_compare(node, op, a, b) for op, a, b in conds)
                node = ir.Filter(node.schema, node, tests[0] if len(tests) == 1 else ir.Call(T.BOOL, "and", tests))
        self._paths[key] = node
        return node

    def _len(self, var: str) -> str:
        return f"{_P}{self._index(var)}_len"

    def _columns(self) -> MatchColumns:
        g = self.graph

        def prop(var: str, p: str) -> str:
            if self.kinds[var] == "node":
                return g.node_col(self._node_prefix(var), p)
            return g.edge_col(self._edge_prefix(var, 1), p)

        def elem_prop(var: str, i: int, p: str, inner: bool) -> str:
            if inner:
                if p == g.key:  # an inner node's key is the edge's end: no node row needed
                    return _q(self._edge_prefix(var, i) + "b")
                return g.node_col(self._edge_prefix(var, i) + "n", p)
            return g.edge_col(self._edge_prefix(var, i), p)

        def degree(var: str | None, elem: Element | None, which: str) -> str:
            prefix = self._node_prefix(var) if var is not None else self._edge_prefix(elem.var, elem.index) + "n"
            return _q(prefix + ("di" if which == "in" else "do"))

        paths = {e.name: (_q(self._len(e.name)), e.hi) for p in self.patterns for e in p.edges if e.variable}
        return MatchColumns(self.kinds, prop, elem_prop, degree, paths, frozenset(g.edge_cols),
                            frozenset(g.node_cols))

    def lower(self) -> ir.Node:
        """The chains' union (a slot a shorter chain lacks is null), filtered, ranked and projected once."""
        text = self._text()
        # Only the columns the expressions read are carried through the joins (the rest would multiply the SQL).
        self.graph.needed = set(re.findall(r"\['(" + _P + r"[^']*)'\]", text))
        union = self.chain()
        try:
            return _lower(self.lw, text, {f"{_P}u": union}, self.env)
        except SemanticError as exc:
            raise SemanticError(f"{_op(self.shortest)}: {exc.message}", self.where_pos) from None
        except Refusal as exc:
            raise Refusal(exc.construct, self.where_pos, exc.reason) from None

    def _text(self) -> str:
        """The where / rank / project over the chains' union, as KQL."""
        cols = self._columns()
        text = f"{_P}u"
        if self.where_text is not None:
            text += " | where " + rewrite(self.where_text, cols, "where", self.where_pos)
        items = []
        for ne in self.project:
            name = self.lw.explicit_name(ne)
            expr = source(ne.Expression) if name is not None else source(ne)
            if name is None:
                name = project_name(expr, self.kinds, pos(ne))
            items.append(f"{_q(name)} = {rewrite(expr, cols, 'project', pos(ne))}")
        if self.shortest is not None:
            e = self.patterns[0].edges[0]
            s, t, n = _q(self._node_prefix(e.left) + "k"), _q(self._node_prefix(e.right) + "k"), _q(self._len(e.name))
            slots = [_q(self._edge_prefix(e.name, i) + "id") for i in range(1, e.hi + 1)]
            if self.shortest == "all":
                text += (f" | extend {_P}s = {s}, {_P}t = {t} | join kind=inner ({text} | summarize {_P}m = min({n}) "
                         f"by {_P}s = {s}, {_P}t = {t}) on {_P}s, {_P}t | where {n} == {_P}m")
            else:
                # Kusto returns any one of the tied shortest paths; the earliest edges, as the local engine does.
                order = ", ".join([f"{s} asc", f"{t} asc", f"{n} asc"] + [f"{x} asc" for x in slots])
                text += (f" | sort by {order} | extend {_P}r = row_number(1, prev({s}) != {s} or "
                         f"prev({t}) != {t}) | where {_P}r == 1")
        text += " | project " + ", ".join(items)
        return text


def _op(shortest: str | None) -> str:
    return "graph-match" if shortest is None else "graph-shortest-paths"


def _graph_of(node: ir.Node, what: str, where: Pos) -> MakeGraph:
    if not isinstance(node, MakeGraph):
        raise SemanticError(f"{what} needs a graph: put make-graph before it", where)
    return node


def graph_match(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    g = _graph_of(node, "graph-match", pos(c))
    return _Match(lw, c, g, env, None).lower()


def graph_shortest_paths(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    g = _graph_of(node, "graph-shortest-paths", pos(c))
    params = {k: str(v).lower() for k, (_, v) in lw.parameters(list(c.Parameters or [])).items()}
    output = params.get("output", "any")
    if output not in ("any", "all"):
        raise SemanticError(f"graph-shortest-paths: output must be any or all, not {output}", pos(c))
    return _Match(lw, c, g, env, output).lower()
