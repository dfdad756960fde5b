"""Spark: a CTE read once becomes a derived table where it is read (the same query, planned faster).

The emitter writes every operator as one CTE of a top-level ``WITH``. Spark gives each CTE a relation of its
own while analysing (definitions, references, then the optimizer's inlining), and that costs: the 12 lake
queries of ``benchmarks/spark_kql_vs_sql.py`` took 2-4x the hand-written SQL's time to plan, a fixed
0.3-1.5 s a cell that the fast queries (``take``, ``top``) felt most. Spark inlines a CTE read once anyway,
so writing it as ``(SELECT ...) AS name`` where it is read changes no answer: only a CTE read twice or more
(a ``let`` used twice, top-nested's levels) stays one, and a ``WITH RECURSIVE`` (scan) is left as written.
"""

from __future__ import annotations

from sqlglot import exp

#: Spark's analyzer resolves nested ``SELECT *`` subqueries about two levels an iteration of its fixed-point
#: Resolution batch (100 iterations at most): 48 levels of extend failed with "Max iterations (100) reached".
#: Past this many levels a chain keeps a CTE, which Spark resolves on its own.
MAX_DEPTH = 16


def inline_single_use_ctes(tree: exp.Expression) -> None:
    """Rewrite *tree* (a ``WITH ... SELECT``) in place: each CTE referenced exactly once is inlined."""
    with_ = tree.args.get("with_") or tree.args.get("with")
    if not isinstance(with_, exp.With) or with_.args.get("recursive"):
        return
    ctes = list(with_.expressions)
    # Only the emitter's own names (a lake table never has one), each read after its definition.
    at = {cte.alias_or_name: i for i, cte in enumerate(ctes) if cte.alias_or_name.startswith("__kqlc_")}
    inside: dict[int, int] = {}
    for i, cte in enumerate(ctes):
        for t in cte.this.find_all(exp.Table):
            if at.get(t.name, -1) >= i:
                return  # not the emitter's shape (a name read before it is defined): left as written
            inside[id(t)] = i
    refs: dict[str, list[exp.Table]] = {name: [] for name in at}
    for t in tree.find_all(exp.Table):
        name = t.name
        if name in at and not t.args.get("db") and not t.args.get("catalog") \
                and inside.get(id(t), len(ctes)) > at[name]:
            refs[name].append(t)
    depth: dict[str, int] = {}
    placed: dict[str, exp.Subquery] = {}
    keep: list[exp.CTE] = []
    for cte in ctes:
        name = cte.alias_or_name
        body = cte.this
        # How deep this body nests once the CTEs it reads are inlined into it.
        d = 1 + max((depth[x] for x, sub in placed.items() if _within(sub, body)), default=0)
        if name not in refs or len(refs[name]) != 1 or d > MAX_DEPTH:
            keep.append(cte)
            continue
        ref = refs[name][0]
        alias = ref.args.get("alias")
        sub = exp.Subquery(this=body, alias=alias.copy() if alias is not None else exp.TableAlias(
            this=exp.to_identifier(name, quoted=True)))
        ref.replace(sub)
        depth[name], placed[name] = d, sub
    with_.set("expressions", keep)
    if not keep:
        tree.set("with_" if "with_" in tree.args else "with", None)


def _within(node: exp.Expression, root: exp.Expression) -> bool:
    while node is not None:
        if node is root:
            return True
        node = node.parent
    return False
