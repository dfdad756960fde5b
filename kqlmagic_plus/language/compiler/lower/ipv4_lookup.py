"""``evaluate ipv4_lookup(LookupTable, SourceIPv4Key, IPv4LookupKey [, ExtraKey ...] [, return_unmatched])``.

A join on an IPv4 match: each source row is paired with every lookup row whose IPv4 key (an address or a
CIDR range) holds the source's address, as ``ipv4_is_in_range()`` decides, and whose extra key columns equal
the source's. The result has the source's columns, then the lookup table's, the extra keys once (the
source's), as the ``lookup`` operator shapes it. The lookup table is small by the plugin's own design, so
the join pairs rows on the extra keys (or every row with every lookup row) and filters.

``return_unmatched=true`` adds the source rows nothing matched, the lookup columns null. With extra keys
as well it is refused by name: that combination needs a match on both at once, which the plan below does
not express.
"""

from __future__ import annotations

from typing import Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.join import add_right_columns, unique_name, with_unmatched
from kqlmagic_plus.language.compiler.lower.scope import row_scope
from kqlmagic_plus.language.compiler.parsetree import collapse, find_first, rule
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

_NAME_RULES = ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName")
_USAGE = "ipv4_lookup(LookupTable, SourceIPv4Key, IPv4LookupKey [, ExtraKey ...] [, return_unmatched])"


def ipv4_lookup(lw: Any, call: Any, c: Any, node: ir.Node, env: Any) -> ir.Node:
    where = pos(c)
    positional: list[Any] = []
    unmatched_arg = None
    for a in call.Arguments:
        ne = find_first(a, "NamedExpression")
        name = lw.explicit_name(ne) if ne is not None else None
        if name:
            if name.lower() != "return_unmatched":
                raise SemanticError(f"ipv4_lookup: unknown parameter {name}", where)
            unmatched_arg = ne.Expression
        else:
            positional.append(a)
    if len(positional) < 3:
        raise SemanticError(_USAGE, where)
    sc = row_scope(node, env)
    if unmatched_arg is None and len(positional) > 3 and rule(collapse(positional[-1])) not in _NAME_RULES:
        unmatched_arg = positional.pop()  # the optional flag given by position, after the extra keys
    unmatched = False
    if unmatched_arg is not None:
        v = lw.expr(unmatched_arg, sc)
        if not (isinstance(v, ir.Lit) and isinstance(v.value, bool)):
            raise Refusal("ipv4_lookup with a computed return_unmatched", where)
        unmatched = v.value

    right = lw.tabular(positional[0], env)
    rcols = {col.name: col for col in right.schema.visible}
    lcols = {col.name: col for col in node.schema.visible}

    def column(arg: Any, cols: dict[str, Column], side: str) -> str:
        ctx = collapse(arg)
        if rule(ctx) not in _NAME_RULES:
            raise SemanticError(f"ipv4_lookup: {side} keys are column names ({_USAGE})", pos(ctx))
        name = name_of(ctx)
        if name not in cols:
            raise SemanticError(f"ipv4_lookup: the {side} table has no column {name}", pos(ctx))
        return name

    source = column(positional[1], lcols, "source")
    key = column(positional[2], rcols, "lookup")
    extras = [column(a, lcols, "source") for a in positional[3:]]
    for a in positional[3:]:
        column(a, rcols, "lookup")  # an extra key names a column of both tables
    if unmatched and extras:
        raise Refusal("ipv4_lookup with both extra keys and return_unmatched=true", where)

    taken = set(lcols)
    right_names: dict[str, str] = {}
    cols = list(node.schema.visible)
    # The extra keys appear once, the source's copy (as `lookup` keeps its keys).
    add_right_columns(cols, right_names, taken, [col for col in right.schema.visible if col.name not in extras])
    if extras:
        lkeys: list[ir.Expr] = [ir.Col(lcols[x].type, x) for x in extras]
        rkeys: list[ir.Expr] = [ir.Col(rcols[x].type, x) for x in extras]
    else:
        lkeys = rkeys = [ir.Lit(T.LONG, 1)]
    joined = ir.Join(Schema(cols), node, right, "inner", lkeys, rkeys, right_names)
    ip = _text(ir.Col(lcols[source].type, source))
    rng = _text(ir.Col(rcols[key].type, right_names[key]))
    matched = ir.Filter(joined.schema, joined, ir.Call(T.BOOL, "ipv4_is_in_range", (ip, rng)))
    if not unmatched:
        return matched
    # The source rows no lookup key holds, with the lookup columns null: each is paired with the lookup keys
    # gathered into one array and kept when none of them holds its address (no row of an empty lookup table
    # holds any, hence the coalesce over the empty gathering).
    gathered = unique_name("__ipv4_lookup_keys", taken | set(rcols))
    keys = ir.Aggregate(Schema([Column(gathered, T.DYNAMIC)]), right, [],
                        [(gathered, ir.Agg(T.DYNAMIC, "make_list", (ir.Col(rcols[key].type, key),)))])
    one = ir.Lit(T.LONG, 1)
    with_keys = ir.Join(Schema([*node.schema.visible, Column(gathered, T.DYNAMIC)]), node, keys, "inner",
                        [one], [one], {gathered: gathered})
    any_match = ir.Call(T.BOOL, "ipv4_is_in_any_range", (ip, ir.Col(T.DYNAMIC, gathered)))
    held = ir.Call(T.BOOL, "coalesce", (any_match, ir.Lit(T.BOOL, False)))
    alone = ir.Filter(with_keys.schema, with_keys, ir.Call(T.BOOL, "not", (held,)))
    return with_unmatched(cols, matched, alone, set(lcols))


def _text(e: ir.Expr) -> ir.Expr:
    return e if e.type == T.STRING else ir.Call(T.STRING, "tostring", (e,))
