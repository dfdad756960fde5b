"""Plugins over windows of rows, written as KQL the lowerer already translates, so both engines answer alike.

``evaluate rolling_percentile``: the percentile of the values in a window of bins ending at each bin (each
row counted in its bin and the window's next bins, a percentile per bin, kept for the bins the data has).
``evaluate rows_near``: the serialized rows within N rows of one where the condition holds (prev / next).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler.lower.scope import Env
from kqlmagic_plus.language.compiler.parsetree import collapse, rule, rule_children, source
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, parse, pos, preprocess

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

_NAMES = ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName")


def rolling_percentile(lw: Lowerer, call: Any, c: Any, node: ir.Node, env: Env) -> ir.Node:
    args = list(call.Arguments)
    if len(args) < 5:
        raise SemanticError("rolling_percentile needs a value, percentile, index, bin size and bins per window", pos(c))

    def column(a: Any) -> str:
        ac = collapse(a)
        if rule(ac) not in _NAMES or name_of(ac) not in node.schema:
            raise SemanticError(f"rolling_percentile: {source(a)!r} is not a column of its input", pos(a))
        return name_of(ac)

    if any(n in node.schema for n in ("RpBin_", "RpK_", "RpAt_")):
        raise Refusal("rolling_percentile over a column named RpBin_, RpK_ or RpAt_ (the names it works with)", pos(c))
    value, index = column(args[0]), column(args[2])
    dims = [column(a) for a in args[5:]]
    pct, size, window = source(args[1]).strip(), source(args[3]).strip(), source(args[4]).strip()
    if not pct.isdigit() or not window.isdigit() or int(window) < 1:
        raise Refusal("rolling_percentile with a computed percentile or window", pos(c))
    out = f"rolling_{window}_percentile_{value}_{pct}"
    q = lambda name: "['" + name.replace("'", "\\'") + "']"  # noqa: E731
    by = "".join(f", {q(d)}" for d in dims)
    text = (
        f"__kqlc_rp_in | extend RpBin_ = bin({q(index)}, {size})"
        f" | mv-expand RpK_ = range(0, {int(window) - 1}, 1) to typeof(long)"
        f" | extend RpAt_ = RpBin_ + RpK_ * ({size})"
        f" | summarize {q(out)} = percentile({q(value)}, {pct}) by RpAt_{by}"
        f" | join kind=inner (__kqlc_rp_in | summarize by RpAt_ = bin({q(index)}, {size}){by})"
        f" on RpAt_{by}"
        f" | project {q(index)} = RpAt_{by}, {q(out)}"
    )
    return lower_text(lw, text, "__kqlc_rp_in", node, env)


def rows_near(lw: Lowerer, call: Any, c: Any, node: ir.Node, env: Env) -> ir.Node:
    args = list(call.Arguments)
    if len(args) not in (2, 3):
        raise SemanticError("rows_near takes a condition, a number of rows and optionally the rows after", pos(c))
    counts = [source(a).strip() for a in args[1:]]
    if not all(x.isdigit() and int(x) <= 100 for x in counts):
        raise Refusal("rows_near with a computed or large number of rows", pos(c))
    before = int(counts[0])
    after = int(counts[1]) if len(counts) > 1 else before
    if node.order is None:
        raise Refusal("rows_near over unserialized rows", pos(c), "sort or serialize the rows first")
    if any(n in node.schema for n in ("RnC_", "RnK_")):
        raise Refusal("rows_near over a column named RnC_ or RnK_ (the names it works with)", pos(c))
    # Row j is kept when the condition holds on a row up to `before` rows after it or `after` rows before it.
    near = ["RnC_", *(f"prev(RnC_, {k})" for k in range(1, after + 1)),
            *(f"next(RnC_, {k})" for k in range(1, before + 1))]
    text = (
        f"__kqlc_rn_in | extend RnC_ = tobool({source(args[0])}) | extend RnK_ = {' or '.join(near)}"
        " | where RnK_ | project-away RnC_, RnK_"
    )
    return lower_text(lw, text, "__kqlc_rn_in", node, env)


def lower_text(lw: Lowerer, text: str, name: str, node: ir.Node, env: Env) -> ir.Node:
    inner = env.child()
    inner.vars[name] = node
    tree = parse(preprocess(text).text)
    q = tree.query() if hasattr(tree, "query") and callable(tree.query) else tree
    st = collapse(next(x for x in rule_children(q) if rule(x) == "Statement"))
    return lw.tabular(st.Expression if rule(st) == "QueryStatement" else st, inner)
