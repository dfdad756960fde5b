"""``make-graph`` and ``graph-to-table``: a graph's nodes and edges as tables.

``make-graph S --> T [with Nodes on key | with_node_id=name]`` builds no rows by itself: it is kept as the edges
(its input), their endpoint columns and the node table, and the graph operator after it reads them. ``graph-to-table
edges`` gives the edge rows, ``nodes`` the node table's rows plus a row for each endpoint the node table lacks
(its other columns null), as Kusto shows them. A node's id (``with_node_id``, ``with_source_id``,
``with_target_id``) is ``hash()`` of its key, the value the reference's examples show (xxhash64 of the key text).
Written as KQL the lowerer already translates, so both engines answer alike. ``graph-match`` and
``graph-shortest-paths`` are in ``graph_match``, ``graph-mark-components`` in ``graph_components``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.parsetree import collapse, rule, rule_children
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, parse, pos, preprocess
from kqlmagic_plus.language.compiler.types import Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer
    from kqlmagic_plus.language.compiler.lower.scope import Env

_EDGES, _NODES = "__kqlc_graph_edges", "__kqlc_graph_nodes"


@dataclass(eq=False)
class MakeGraph(ir.Node):
    """A graph awaiting its graph operator (no rows of its own: emitting one is refused)."""

    edges: ir.Node
    source: str
    target: str
    nodes: ir.Node | None
    key: str | None
    id_name: str | None

    def inputs(self) -> list[ir.Node]:
        return [self.edges] + ([self.nodes] if self.nodes is not None else [])


def make_graph(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    where = pos(c)
    if c.Direction is None or _text(c.Direction) != "-->":
        raise Refusal("make-graph with undirected edges (--)", where)
    if c.PartitionedByClause is not None or list(c.Parameters or []):
        raise Refusal("make-graph with partitioned-by or parameters", where)
    source, target = name_of(c.SourceColumn), name_of(c.TargetColumn)
    for col in (source, target):
        if col not in node.schema:
            raise SemanticError(f"make-graph: no column named {col!r} in its input", where)
    nodes = key = id_name = None
    if c.TablesAndKeysClause is not None:
        tables = list(c.TablesAndKeysClause.Tables)
        if len(tables) != 1:
            raise Refusal("make-graph with several node tables", where)
        nodes = lw.tabular(tables[0].Table, env)
        key = name_of(tables[0].Column)
        if key not in nodes.schema:
            raise SemanticError(f"make-graph: the node table has no column named {key!r}", where)
    elif c.IdClause is not None:
        id_name = name_of(c.IdClause.Name)
    else:
        raise Refusal("make-graph without a node table or with_node_id", where)
    for col, sch in ((source, node.schema), (target, node.schema), (key, nodes.schema if nodes else None)):
        if col is not None and sch is not None and sch.get(col).type != T.STRING:  # type: ignore[union-attr]
            raise Refusal("make-graph over keys that are not strings", where,
                          "a node's id is the hash of its key, shown in the reference for strings only")
    return MakeGraph(Schema([]), node, source, target, nodes, key, id_name)


def _text(x: Any) -> str:
    return x.text if hasattr(x, "text") else x.getText()


def _q(name: str) -> str:
    return "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"


def graph_to_table(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    where = pos(c)
    if not isinstance(node, MakeGraph):
        raise SemanticError("graph-to-table needs a graph: put make-graph before it", where)
    outputs = list(c.Outputs)
    if len(outputs) != 1 or outputs[0].AsClause is not None:
        raise Refusal("graph-to-table with several outputs or 'as'", where)
    out = outputs[0]
    kind = _text(out.Keyword).lower() if out.Keyword is not None else ""
    params = {k: v for k, (_, v) in lw.parameters(list(out.Parameters or [])).items()}
    allowed = {"nodes": {"with_node_id"}, "edges": {"with_source_id", "with_target_id"}}.get(kind)
    if allowed is None:
        raise Refusal(f"graph-to-table {kind}", where)
    extra = set(params) - allowed
    if extra:
        raise Refusal(f"graph-to-table {kind} with {sorted(extra)[0]}", where)
    names = {k: str(v) for k, v in params.items()}
    g = node
    if "GraphKey_" in g.edges.schema or (g.nodes is not None and "GraphKey_" in g.nodes.schema):
        raise Refusal("graph-to-table over a column named GraphKey_ (the name it works with)", where)
    if kind == "edges":
        ids = [(names[k], col) for k, col in (("with_source_id", g.source), ("with_target_id", g.target))
               if k in names]
        text = _EDGES
        if ids:
            text += " | extend " + ", ".join(f"{_q(n)} = hash({_q(col)})" for n, col in ids)
            text += " | project-reorder " + ", ".join(_q(n) for n, _ in ids)
        return _lower(lw, text, {_EDGES: g.edges}, env)
    keys = (f"({_EDGES} | project GraphKey_ = {_q(g.source)}), ({_EDGES} | project GraphKey_ = {_q(g.target)})")
    if g.nodes is not None:
        key = _q(g.key or "")
        text = (f"union {_NODES}, (union {keys} | distinct GraphKey_ | join kind=leftanti ({_NODES} | project "
                f"GraphKey_ = {key}) on GraphKey_ | project {key} = GraphKey_)")
        node_key = key
        binds = {_EDGES: g.edges, _NODES: g.nodes}
    else:
        node_key = _q(g.id_name or "")
        text = f"union {keys} | distinct GraphKey_ | project {node_key} = GraphKey_"
        binds = {_EDGES: g.edges}
    if "with_node_id" in names:
        nid = _q(names["with_node_id"])
        text += f" | extend {nid} = hash({node_key}) | project-reorder {nid}"
    return _lower(lw, text, binds, env)


def _lower(lw: Lowerer, text: str, binds: dict[str, ir.Node], env: Env) -> ir.Node:
    inner = env.child()
    inner.vars.update(binds)
    tree = parse(preprocess(text).text)
    q = tree.query() if hasattr(tree, "query") and callable(tree.query) else tree
    st = collapse(next(x for x in rule_children(q) if rule(x) == "Statement"))
    return lw.tabular(st.Expression if rule(st) == "QueryStatement" else st, inner)
