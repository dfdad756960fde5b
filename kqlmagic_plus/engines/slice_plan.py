"""How the answers of a query run in time slices become the answer of the whole window, or why they cannot.

Decided from the query's parse tree (the compiler's parser), never from its wording:

* row-wise operators (where, extend, project, parse, mv-expand, ...) give each row of the window to exactly
  one slice: the slices' rows, one after the other, are the window's rows;
* a final ``summarize`` whose aggregates add up across slices (count, sum, min, max and their ``if``
  forms) is re-aggregated over the slices' groups; ``count`` adds up; ``distinct`` drops the duplicates;
* ``top N by C`` / ``sort by C`` are applied again to the merged rows (after a summarize, they run only on
  the merged groups: the slices run the query without them);
* everything else is refused by name, with its line and column: a distinct count, an average or a
  percentile of slices is not the window's, and ``take`` picks other rows when sliced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.errors import KqlMagicPlusError

#: Operators that map each row to rows of its own: slices concatenate.
ROW_WISE = frozenset({
    "WhereOperator", "ExtendOperator", "ProjectOperator", "ProjectAwayOperator", "ProjectRenameOperator",
    "ProjectKeepOperator", "ProjectReorderOperator", "ParseOperator", "ParseWhereOperator", "ParseKvOperator",
    "MvexpandOperator", "SearchOperator", "AsOperator",
})
#: Functions whose value depends on the rows before or after (a slice boundary changes them).
ORDER_FUNCTIONS = frozenset({"prev", "next", "row_number", "row_cumsum", "row_rank_dense", "row_rank_min",
                             "row_window_session"})
#: Aggregates that add up across slices: the function that merges the slices' values.
MERGEABLE = {"count": "sum", "countif": "sum", "sum": "sum", "sumif": "sum", "min": "min", "minif": "min",
             "max": "max", "maxif": "max"}
#: Why an aggregate cannot be merged, for the refusal.
WHY_NOT = {
    "dcount": "distinct counts of slices do not add up (a value seen in two slices would count twice)",
    "dcountif": "distinct counts of slices do not add up",
    "avg": "an average of slices' averages is not the window's average (use sum() and count(), then divide)",
    "avgif": "an average of slices' averages is not the window's average",
    "percentile": "percentiles of slices are not the window's percentile",
    "percentiles": "percentiles of slices are not the window's percentiles",
    "percentiles_array": "percentiles of slices are not the window's percentiles",
    "stdev": "standard deviations of slices do not combine this way", "variance": "variances do not combine",
    "arg_max": "arg_max() keeps other columns of one row per slice", "arg_min": "arg_min() keeps one row per slice",
    "make_set": "sets of slices would be merged without their size cap", "make_list": "lists are capped per slice",
    "take_any": "take_any() picks a different row per slice",
}


class SliceRefusal(KqlMagicPlusError):
    """The query's answer cannot be assembled from time slices."""


@dataclass
class SlicePlan:
    #: The query each slice runs (the original, or it without a final sort/top after an aggregation).
    slice_query: str
    #: "concat" | "summarize" | "count" | "distinct"
    merge: str = "concat"
    #: For "summarize": how many leading output columns are the group keys, and each aggregate's merge.
    key_count: int = 0
    aggregates: list[str] = field(default_factory=list)
    #: A sort applied to the merged rows: (column, descending, nulls_first).
    order: list[tuple[str, bool, bool]] = field(default_factory=list)
    limit: int | None = None


def plan(query: str) -> SlicePlan:
    """The plan for *query*, or :class:`SliceRefusal` naming the construct that cannot be sliced."""
    from kqlmagic_plus.language.compiler.parsetree import find_first, rule, rule_children, source
    from kqlmagic_plus.language.compiler.syntax import ParseFailure, Refusal, parse

    try:
        tree = parse(query)
    except ParseFailure as exc:
        raise SliceRefusal(f"KQL syntax error: {exc.message} at line {exc.pos.line}, column {exc.pos.column + 1}"
                           ) from None
    except Refusal:
        raise SliceRefusal("--split-by slices queries, not management commands") from None
    statements = [s for s in rule_children(find_first(tree, "Query") or tree) if rule(s) == "Statement"]
    last = rule_children(statements[-1])[0] if statements else None
    if last is None or rule(last) != "QueryStatement":
        raise SliceRefusal("--split-by needs a query whose last statement is a tabular expression")
    pipe = find_first(last, "PipeExpression")
    ops = []
    for piped in rule_children(pipe)[1:] if pipe is not None else []:
        after = rule_children(piped)[0]
        ops.append(rule_children(after)[0])
    _refuse_order_functions(pipe if pipe is not None else last)
    out = SlicePlan(slice_query=query)
    state = "rows"
    for op in ops:
        kind = rule(op)
        text = source(op)
        where = f"at line {op.start.line}, column {op.start.column + 1}"
        word = text.split(None, 1)[0] if text else kind
        if kind == "RenderOperator":
            continue
        if state == "rows" and kind in ROW_WISE and not out.order:
            continue
        if kind in ("TopOperator", "SortOperator"):
            if out.order:
                raise SliceRefusal(f"'{word}' {where} sorts rows already sorted by a '{out.order[0][0]}' "
                                   "sort or top: --split-by merges one final sort or top")
            out.order, out.limit = _order(text, kind, where)
            if state != "rows" and out.slice_query == query:
                # Sorting or cutting partial aggregates per slice would drop groups: the slices stop before.
                out.slice_query = query[:op.start.start].rstrip().rstrip("|").rstrip()
            continue
        if state != "rows" or out.order:
            after = state if state != "rows" else "top" if out.limit is not None else "sort"
            raise SliceRefusal(f"'{word}' {where} runs after '{after}': on slices it would see each slice's "
                               "partial result, not the window's; --split-by cannot merge that (run the query "
                               f"without --split-by, or end it with the {after})")
        if kind == "SummarizeOperator":
            out.merge, state = "summarize", "summarize"
            out.key_count, out.aggregates = _summarize(op, where)
        elif kind == "CountOperator":
            out.merge, state = "count", "count"
        elif kind == "DistinctOperator":
            out.merge, state = "distinct", "distinct"
        elif kind == "TakeOperator":
            raise SliceRefusal(f"'{word}' {where} picks any rows: sliced, it would pick that many from every slice. "
                               "Use 'top N by COLUMN' (merged across slices), or run without --split-by")
        else:
            raise SliceRefusal(f"'{word}' {where} cannot be merged across --split-by slices (only row-wise "
                               "operators, then one summarize of count/sum/min/max, count, distinct, top or "
                               "sort); run it without --split-by")
    return out


def _refuse_order_functions(ctx: Any) -> None:
    from kqlmagic_plus.language.compiler.parsetree import children, is_token

    todo = [ctx]
    while todo:
        node = todo.pop()
        if is_token(node):
            name = node.getText()
            if name in ORDER_FUNCTIONS:
                sym = node.getSymbol()
                raise SliceRefusal(f"'{name}()' at line {sym.line}, column {sym.column + 1} depends on the rows "
                                   "before it, which a slice boundary changes; run it without --split-by")
            continue
        todo.extend(children(node))


_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def _summarize(op: Any, where: str) -> tuple[int, list[str]]:
    from kqlmagic_plus.language.compiler.parsetree import rule, rule_children, source

    aggregates: list[str] = []
    keys = 0
    for part in rule_children(op):
        if rule(part) == "SummarizeOperatorByClause":
            keys = sum(1 for c in rule_children(part) if rule(c) == "NamedExpression")
            continue
        if rule(part) != "NamedExpression":
            continue  # hints such as hint.shufflekey
        body = [c for c in rule_children(part) if rule(c) != "NamedExpressionNameClause"]
        text = source(body[0]) if body else source(part)
        m = _CALL.match(text)
        fn = m.group(1).lower() if m else ""
        if fn not in MERGEABLE:
            sym = part.start
            at = f"at line {sym.line}, column {sym.column + 1}"
            why = WHY_NOT.get(fn, "it is not an aggregate that adds up across slices (count, sum, min, max)")
            named = f"{fn}()" if fn else repr(text.strip())
            raise SliceRefusal(f"{named} {at} cannot be merged across --split-by slices: {why}. Run it without "
                               "--split-by, or aggregate with count/sum/min/max")
        if not _one_call(text, m.end() - 1):
            raise SliceRefusal(f"'{text.strip()}' {where}: only a bare aggregate call merges across slices")
        aggregates.append(MERGEABLE[fn])
    return keys, aggregates


def _one_call(text: str, open_at: int) -> bool:
    """True when the call opened at *open_at* spans the rest of *text* (``count() * 2`` does not)."""
    depth, quote = 0, ""
    for i in range(open_at, len(text)):
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return not text[i + 1:].strip()
    return False


_ORDER_ITEM = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(asc|desc)?\s*(nulls\s+(first|last))?\s*$", re.I)


def _order(text: str, kind: str, where: str) -> tuple[list[tuple[str, bool, bool]], int | None]:
    limit = None
    if kind == "TopOperator":
        m = re.match(r"^\s*top\s+(\d+)\s+by\s+(.+)$", text, re.S | re.I)
        if not m:
            raise SliceRefusal(f"'top' {where}: --split-by merges 'top N by COLUMN' with a literal N")
        limit, items = int(m.group(1)), m.group(2)
    else:
        m = re.match(r"^\s*(sort|order)\s+by\s+(.+)$", text, re.S | re.I)
        if not m:
            raise SliceRefusal(f"'{text.split()[0]}' {where}: expected 'sort by COLUMN'")
        items = m.group(2)
    order = []
    for item in items.split(","):
        im = _ORDER_ITEM.match(item)
        if not im:
            raise SliceRefusal(f"'{item.strip()}' in '{text.split()[0]}' {where}: --split-by re-sorts merged rows "
                               "by column names only (extend the expression into a column first)")
        desc = (im.group(2) or "desc").lower() == "desc"
        nulls_first = (im.group(4) or ("last" if desc else "first")).lower() == "first"
        order.append((im.group(1), desc, nulls_first))
    return order, limit
