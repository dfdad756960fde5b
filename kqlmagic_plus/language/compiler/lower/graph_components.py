"""``graph-mark-components``: each node's weak component, as a node property of the graph that follows.

A component is labelled by the smallest first-appearance number among its nodes (node-table rows in order,
then endpoints the table lacks in edge order, sources first), found by label propagation: each round a
node takes the smallest label among itself and its neighbours (edges read both ways). Rounds are a fixed
number of joins (``ROUNDS``); one round more must change nothing, or the query stops with an error that
says so rather than answer with components cut short. The labels are then numbered 0, 1, ... in order, the
numbering the local engine gives (Kusto documents its numbering as arbitrary). ``kind=strong`` is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.graph import _EDGES, _NODES, MakeGraph, _lower, _q
from kqlmagic_plus.language.compiler.lower.graph_match import _P, _Graph
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer
    from kqlmagic_plus.language.compiler.lower.scope import Env

#: Label-propagation rounds: a component whose nodes are further apart than this many edges is refused
#: (at run time, by the convergence check).
ROUNDS = 12
#: Added to an edge-only node's position so that every node-table row comes first.
_EDGE_NODES = 1 << 62


def graph_mark_components(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    where = pos(c)
    if not isinstance(node, MakeGraph):
        raise SemanticError("graph-mark-components needs a graph: put make-graph before it", where)
    # The grammar names this rule's parameter list "Parametems".
    params = {k: str(v) for k, (_, v) in lw.parameters(list(getattr(c, "Parametems", None) or [])).items()}
    for k in params:
        if k not in ("kind", "with_component_id"):
            raise Refusal(f"graph-mark-components with {k}=", where)
    kind = params.get("kind", "weak").lower()
    if kind != "weak":
        raise Refusal(f"graph-mark-components kind={kind}", where, "weak components only")
    name = params.get("with_component_id", "ComponentId")
    g = _Graph(lw, node, env, False, where)
    if name in g.node_cols:
        raise Refusal(f"graph-mark-components with_component_id={name}, a node property already", where)
    key = _q(g.key)
    ends = (f"union ({_EDGES} | project {_P}k = {_P}s, {_P}o = {_P}id * 2), "
            f"({_EDGES} | project {_P}k = {_P}t, {_P}o = {_P}id * 2 + 1)")
    if node.nodes is not None:
        text = (f"union ({_NODES} | serialize {_P}o = row_number() | summarize {_P}l = min({_P}o) by {_P}k = {key}), "
                f"({ends} | join kind=leftanti ({_NODES} | project {_P}k = {key}) on {_P}k "
                f"| summarize {_P}l = {_EDGE_NODES} + min({_P}o) by {_P}k)")
        binds = {_EDGES: g.edges, _NODES: node.nodes}
    else:
        text, binds = f"{ends} | summarize {_P}l = {_EDGE_NODES} + min({_P}o) by {_P}k", {_EDGES: g.edges}
    labels = _lower(lw, text, binds, env)
    # Each node is its own neighbour too, so a round reads the previous labels once (an engine that inlines
    # a shared CTE would otherwise copy each round twice: 2^ROUNDS copies).
    pairs = _lower(lw, f"union ({_EDGES} | project {_P}x = {_P}s, {_P}y = {_P}t), "
                       f"({_EDGES} | project {_P}x = {_P}t, {_P}y = {_P}s), ({_P}a | project {_P}x = {_P}k, "
                       f"{_P}y = {_P}k)", {_EDGES: g.edges, f"{_P}a": labels}, env)
    for _ in range(ROUNDS):
        labels = _round(labels, pairs)
    last = _round(labels, pairs)
    text = (f"{_P}a | join kind=inner ({_P}b | project {_P}k2 = {_P}k, {_P}l2 = {_P}l) on $left.{_P}k == "
            f"$right.{_P}k2 | where assert({_P}l == {_P}l2, 'graph-mark-components: a component spans more than "
            f"{ROUNDS} edges, more than this engine follows') "
            f"| project {_P}k, {_P}l")
    checked = _lower(lw, text, {f"{_P}a": labels, f"{_P}b": last}, env)
    text = (f"{_NODES} | join kind=inner ({_P}c | join kind=inner ({_P}c | distinct {_P}l | sort by {_P}l asc "
            f"| extend {_P}n = row_number() - 1) on {_P}l | project {_P}k, {_P}n) on {_P}k "
            f"| project-away {_P}k, {_P}k1 | project-rename {_q(name)} = {_P}n")
    nodes = _lower(lw, text, {_NODES: g.nodes, f"{_P}c": checked}, env)
    return MakeGraph(Schema([]), node.edges, node.source, node.target, nodes, g.key, None)


def _round(labels: ir.Node, pairs: ir.Node) -> ir.Node:
    """Each node's smallest label among its own and its neighbours' (*pairs* holds each node with itself)."""
    k, lab, x, y = f"{_P}k", f"{_P}l", f"{_P}x", f"{_P}y"
    ktype = labels.schema.get(k).type  # type: ignore[union-attr]
    joined = ir.Join(Schema([*pairs.schema, *labels.schema]), pairs, labels, "inner", [ir.Col(ktype, y)],
                     [ir.Col(ktype, k)], {c.name: c.name for c in labels.schema})
    return ir.Aggregate(Schema([Column(k, ktype), Column(lab, T.LONG)]), joined, [(k, ir.Col(ktype, x))],
                        [(lab, ir.Agg(T.LONG, "min", (ir.Col(T.LONG, lab),)))])
