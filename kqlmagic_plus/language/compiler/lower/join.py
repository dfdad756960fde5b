"""Operators that combine tables: join, lookup, union.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.coerce import literal
from kqlmagic_plus.language.compiler.lower.messages import no_column
from kqlmagic_plus.language.compiler.lower.scope import Env
from kqlmagic_plus.language.compiler.parsetree import collapse, rule
from kqlmagic_plus.language.compiler.syntax import Pos, Refusal, SemanticError, UnknownTable, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

_JOIN_KINDS = {
    "inner": "inner",
    "innerunique": "innerunique",
    "leftouter": "leftouter",
    "rightouter": "rightouter",
    "fullouter": "fullouter",
    "outer": "fullouter",
    "leftsemi": "leftsemi",
    "semi": "leftsemi",
    "leftanti": "leftanti",
    "anti": "leftanti",
    "leftantisemi": "leftanti",
    "rightsemi": "rightsemi",
    "rightanti": "rightanti",
    "rightantisemi": "rightanti",
}


def join(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    params = lw.parameters(c.Parameters)
    kind_raw = str(params.get("kind", (None, "innerunique"))[1]).lower()
    kind = _JOIN_KINDS.get(kind_raw)
    if kind is None:
        raise Refusal(f"join kind={kind_raw}", pos(c))
    right = lw.tabular(c.Table, env)
    if c.WhereClause is not None or c.OnClause is None:
        raise Refusal("join without an on clause", pos(c))
    return join_tables(node, right, kind, c.OnClause, pos(c))


def join_tables(left: ir.Node, right: ir.Node, kind: str, on: Any, where: Pos, lookup: bool = False) -> ir.Node:
    lkeys, rkeys = join_keys(left, right, on)
    for a, b in zip(lkeys, rkeys, strict=True):
        if T.unify(a.type, b.type) is None and not ({a.type, b.type} <= {T.STRING, T.GUID}):
            raise SemanticError(f"join keys of different types ({a.type} and {b.type})", where)
    lvis, rvis = left.schema.visible, right.schema.visible
    right_names: dict[str, str] = {}
    cols: list[Column] = []
    if kind in ("leftsemi", "leftanti"):
        cols = list(lvis)
    elif kind in ("rightsemi", "rightanti"):
        cols = list(rvis)
        right_names = {c.name: c.name for c in rvis}
    else:
        taken = {c.name for c in lvis}
        cols = list(lvis)
        same_keys = {
            b.name
            for a, b in zip(lkeys, rkeys, strict=True)
            if isinstance(a, ir.Col) and isinstance(b, ir.Col) and a.name == b.name
        }
        add_right_columns(cols, right_names, taken, [c for c in rvis if not (lookup and c.name in same_keys)])
    if lookup and kind not in ("leftouter", "inner"):
        raise Refusal(f"lookup kind={kind}", where)
    return ir.Join(Schema(cols), left, right, kind, lkeys, rkeys, right_names)


def add_right_columns(cols: list[Column], right_names: dict[str, str], taken: set[str],
                      right: list[Column]) -> None:
    """Append *right*'s columns to *cols*, a name already *taken* numbered (x, x1, x2 ...) as Kusto's join does."""
    for col in right:
        name, k = col.name, 0
        while name in taken:
            k += 1
            name = f"{col.name}{k}"
        taken.add(name)
        right_names[col.name] = name
        cols.append(Column(name, col.type))


def join_keys(left: ir.Node, right: ir.Node, on: Any) -> tuple[list[ir.Expr], list[ir.Expr]]:
    lkeys: list[ir.Expr] = []
    rkeys: list[ir.Expr] = []
    for e in on.Expressions:
        c = collapse(e)
        r = rule(c)
        if r in ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName"):
            name = name_of(c)
            lc, rc = left.schema.get(name), right.schema.get(name)
            if lc is None or rc is None:
                side = "left" if lc is None else "right"
                raise SemanticError(f"join key {name!r} is not a column of the {side} side", pos(c))
            lkeys.append(ir.Col(lc.type, name))
            rkeys.append(ir.Col(rc.type, name))
            continue
        if (
            r == "EqualityExpression"
            and rule(c.Tail) == "EqualsEqualityExpression"
            and c.Tail.OperatorToken.text == "=="
        ):
            a = _side_ref(c.Left, left, right)
            b = _side_ref(c.Tail.Right, left, right)
            if a[0] == b[0]:
                raise Refusal("join condition comparing one side with itself", pos(c))
            (la, ra) = (a, b) if a[0] == "left" else (b, a)
            lkeys.append(la[1])
            rkeys.append(ra[1])
            continue
        raise Refusal("join condition other than column equality", pos(c))
    return lkeys, rkeys


def _side_ref(ctx: Any, left: ir.Node, right: ir.Node) -> tuple[str, ir.Expr]:
    c = collapse(ctx)
    if rule(c) == "FunctionCallOrPathPathExpression":
        root = name_of(collapse(c.Expression))
        ops = list(c.Operations)
        if (
            root in ("$left", "$right")
            and len(ops) == 1
            and rule(collapse(ops[0])) == "FunctionCallOrPathPathOperation"
        ):
            name = name_of(collapse(ops[0]).Name)
            schema = left.schema if root == "$left" else right.schema
            col = schema.get(name)
            if col is None:
                raise SemanticError(no_column(name, schema), pos(c))
            return root[1:], ir.Col(col.type, name)
    raise Refusal("join condition term other than $left.column / $right.column", pos(c))


def lookup(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    params = lw.parameters(c.Parameters)
    kind = str(params.get("kind", (None, "leftouter"))[1]).lower()
    right = lw.tabular(c.Table, env)
    return join_tables(node, right, _JOIN_KINDS.get(kind, kind), c.OnClause, pos(c), lookup=True)


def union_operator(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    return union(lw, c, node, env)


def union_source(lw: Lowerer, c: Any, env: Env) -> ir.Node:
    return union(lw, c, None, env)


def union(lw: Lowerer, c: Any, piped: ir.Node | None, env: Env) -> ir.Node:
    params = lw.parameters(c.Parameters)
    kind = str(params.get("kind", (None, "outer"))[1]).lower()
    if kind not in ("outer", "inner"):
        raise Refusal(f"union kind={kind}", pos(c))
    source_col = params.get("withsource") or params.get("with_source")
    fuzzy = any(
        p.NameToken.text.lower() == "isfuzzy" and (p.NameValue.getText() if p.NameValue is not None else
                                                   str(literal(p.LiteralValue).value)).lower() == "true"
        for p in c.Parameters
    )
    parts: list[tuple[str | None, ir.Node]] = []
    if piped is not None:
        parts.append((label_of(piped), piped))
    for ue in c.Expressions:
        inner = collapse(ue)
        r = rule(inner)
        text = ue.getText()
        if "*" in text and r not in ("ParenthesizedExpression",):
            names = sorted({t for t in lw.tables if fnmatch.fnmatchcase(t, text)} | _let_tables(lw, env, text))
            if not names and not fuzzy:
                raise UnknownTable(text, pos(ue))
            parts.extend((t, lw.table_ref(t, env, pos(ue))) for t in names)
            continue
        try:
            if r == "ParenthesizedExpression":
                node = lw.tabular(inner.Expression, env)
                parts.append((label_of(node), node))
                continue
            name = name_of(inner) if r in _TABLE_NAME_RULES else None
            if name is None:
                node = lw.tabular(inner, env)
                parts.append((label_of(node), node))
            else:
                parts.append((name, lw.table_ref(name, env, pos(ue))))
        except UnknownTable:
            # isfuzzy=true: a leg naming what does not exist is left out (Kusto warns), not an error.
            if not fuzzy:
                raise
    if not parts:
        raise SemanticError("union: none of its tables exists", pos(c))
    # The union schema: one column per (name, type) in first-seen order of the names; a name with
    # several types becomes one column per type, named name_type, and a generated name that meets a
    # column of that name already is numbered (x_long1), as Kusto does.
    types_of: dict[str, list[str]] = {}
    for _, p in parts:
        for col in p.schema.visible:
            ts = types_of.setdefault(col.name, [])
            if col.type not in ts:
                ts.append(col.type)
    taken = {name for name, ts in types_of.items() if len(ts) == 1}
    out: list[Column] = []
    origin: list[tuple[str, str] | None] = []  # each output column's (input name, type); None: the source
    if source_col is not None:
        out.append(Column(str(source_col[1]), T.STRING))
        origin.append(None)
        taken.add(str(source_col[1]))
    for name, ts in types_of.items():
        if kind == "inner" and not all(
            (col := p.schema.get(name)) is not None and not col.hidden and col.type in ts for _, p in parts
        ):
            continue
        if len(ts) == 1:
            out.append(Column(name, ts[0]))
            origin.append((name, ts[0]))
            continue
        for t in ts:
            if kind == "inner" and not all(_has(p, name, t) for _, p in parts):
                continue
            base = out_name = f"{name}_{t}"
            k = 0
            while out_name in taken:
                k += 1
                out_name = f"{base}{k}"
            taken.add(out_name)
            out.append(Column(out_name, t))
            origin.append((name, t))
    projections = []
    for i, (label, p) in enumerate(parts):
        exprs: list[ir.Expr] = []
        for col, src in zip(out, origin, strict=True):
            if src is None:
                # An unnamed leg is called by its position, as Kusto calls it.
                exprs.append(ir.Lit(T.STRING, label if label is not None else f"union_arg{i}"))
            elif _has(p, *src):
                exprs.append(ir.Col(col.type, src[0]))
            else:
                exprs.append(ir.Lit(col.type, None))
        projections.append((p, exprs))
    return ir.Union(Schema(out), projections)


_TABLE_NAME_RULES = (
    "IdentifierName",
    "KeywordName",
    "EscapedName",
    "EntityName",
    "ExtendedKeywordName",
    "EntityNameReference",
)


def _has(p: ir.Node, name: str, t: str) -> bool:
    col = p.schema.get(name)
    return col is not None and not col.hidden and col.type == t


def _let_tables(lw: Lowerer, env: Env, pattern: str) -> set[str]:
    """The ``let`` names in scope matching *pattern* that are tables (or views: functions of no argument)."""
    from kqlmagic_plus.language.compiler.lower.scope import FunctionDef

    found: set[str] = set()
    e: Env | None = env
    while e is not None:
        for name, b in e.vars.items():
            if name in found or not fnmatch.fnmatchcase(name, pattern):
                continue
            if isinstance(b, ir.Node) or (isinstance(b, FunctionDef) and not b.order and lw.fn_is_tabular(b)):
                found.add(name)
        e = e.parent
    return found


def label_of(node: ir.Node) -> str | None:
    """The name ``as`` gave this exact node (union's withsource reads it), or None."""
    label = getattr(node, "as_label", None)
    # externaldata's table name is ours, not the user's: it is an unnamed leg, as a datatable is
    named = isinstance(node, ir.Scan) and not isinstance(node, ir.External)
    return node.table if label is None and named else label


def unique_name(name: str, taken: set[str]) -> str:
    """*name*, with underscores added until no column in *taken* has it."""
    while name in taken:
        name += "_"
    return name


def with_unmatched(cols: list[Column], matched: ir.Node, alone: ir.Node, present: set[str]) -> ir.Node:
    """*matched* rows and the unmatched rows of *alone*, the latter with null in every column of *cols* they
    lack (the lookup side's): the ``return_unmatched`` shape of the lookup plugins."""
    rest = [ir.Col(col.type, col.name) if col.name in present else ir.Lit(col.type, None) for col in cols]
    return ir.Union(Schema(cols), [(matched, [ir.Col(col.type, col.name) for col in cols]), (alone, rest)])
