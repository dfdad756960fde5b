"""``find in (T1, T2, ...) where predicate [project c1[:type], ... | project-smart]``.

Written as the union it stands for, as KQL the lowerer translates on both engines: each table that holds a
column the predicate names becomes one leg, tagged with its name in ``source_`` (``withsource=`` renames it);
the union fills the columns a table lacks with nulls, so the predicate sees them as Kusto does. ``project``
keeps the named columns (null where no table has them, cast where a type is given); ``project-smart`` (the
default) keeps the predicate's columns and those every searched table has, and packs each row's other columns
into ``pack_``.

Refused by name: ``find`` over every table of the connection (name them), the term forms (``find "text"``,
``* has``), a column whose type differs between the tables (Kusto splits it by type), ``pack_all()``.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language import literals
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.rolling import lower_text
from kqlmagic_plus.language.compiler.lower.scope import Env
from kqlmagic_plus.language.compiler.parsetree import children, collapse, find_first, is_token, rule, source
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, pos

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

_NAMES = ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName")

#: A typed null as KQL text, for a projected column no searched table has (a KQL string is never null).
_NULL = {T.STRING: '""', T.LONG: "long(null)", T.INT: "int(null)", T.REAL: "real(null)", T.BOOL: "bool(null)",
         T.DATETIME: "datetime(null)", T.TIMESPAN: "timespan(null)", T.GUID: "guid(null)",
         T.DYNAMIC: "dynamic(null)", T.DECIMAL: "decimal(null)"}
_CAST = {T.STRING: "tostring", T.LONG: "tolong", T.INT: "toint", T.REAL: "toreal", T.BOOL: "tobool",
         T.DATETIME: "todatetime", T.TIMESPAN: "totimespan", T.GUID: "toguid", T.DYNAMIC: "todynamic",
         T.DECIMAL: "todecimal"}


def find_source(lw: Lowerer, c: Any, env: Env) -> ir.Node:
    where = pos(c)
    clause = c.ParameterWhereClause
    in_clause = find_first(clause, "FindOperatorInClause") if clause is not None else None
    if in_clause is None:
        raise Refusal("find over every table of the connection", where, "name the tables: find in (T1, T2) where ...")
    withsource = "source_"
    for p in (getattr(clause, "Parameters", None) or []):
        text = source(p).replace(" ", "")
        if text.lower().startswith("withsource="):
            withsource = text.split("=", 1)[1]
        else:
            raise Refusal(f"find parameter {text}", where)
    tables = _tables(lw, in_clause, env, where)
    if c.Expression is None:
        raise SemanticError("find needs a predicate: find in (T1, T2) where ...", where)
    pred = collapse(c.Expression)
    if rule(pred) in ("StringLiteralExpression", "LiteralExpression") or find_first(pred, "StarExpression"):
        raise Refusal("find with a term search", where, "name the columns: find in (T1, T2) where Col has \"term\"")
    mentioned = _names_in(pred)
    kept = [(name, node) for name, node in tables if any(m in node.schema for m in mentioned)]
    if not kept:
        raise SemanticError("find: no table in the list has a column the predicate names", where)
    pred_cols = [m for m in mentioned if any(m in node.schema for _, node in kept)]
    types = _types(kept)
    for col in pred_cols:
        if len(types[col]) > 1:
            raise Refusal(f"find over column {col!r} of several types ({', '.join(sorted(types[col]))})", where)
    if withsource in types:
        raise Refusal(f"find: a table has a column named {withsource!r}, the source column", where)
    if c.ProjectClause is not None:
        out = _projected(c.ProjectClause, types, where)
        legs = [f"({literals.identifier(n)} | extend {literals.identifier(withsource)} = {literals.string(n)})"
                for n, _ in kept]
        select = ", ".join([literals.identifier(withsource), *out])
    else:
        if c.ProjectAwayClause is not None:
            raise Refusal("find ... project-away", where)
        common = [col.name for col in kept[0][1].schema.visible
                  if col.name not in pred_cols and all(col.name in nd.schema for _, nd in kept)]
        for col in common:
            if len(types[col]) > 1:
                raise Refusal(f"find over column {col!r} of several types ({', '.join(sorted(types[col]))})", where)
        legs = []
        for n, nd in kept:
            rest = [col.name for col in nd.schema.visible if col.name not in pred_cols and col.name not in common]
            bag = ", ".join(f"{literals.string(r)}, {literals.identifier(r)}" for r in rest)
            keep = [x for x in (*pred_cols, *common) if x in nd.schema]
            legs.append(f"({literals.identifier(n)} | extend {literals.identifier(withsource)} = {literals.string(n)}, "
                        f"pack_ = bag_pack({bag}) | project {', '.join(map(literals.identifier, [withsource, *keep]))}"
                        ", pack_)")
        select = ", ".join(map(literals.identifier, [withsource, *pred_cols, *common, "pack_"]))
    text = f"union {', '.join(legs)} | where {source(pred)} | project {select}"
    return lower_text(lw, text, "__kqlc_find_in", kept[0][1], env)


def _tables(lw: Lowerer, in_clause: Any, env: Env, where: Any) -> list[tuple[str, ir.Node]]:
    out: list[tuple[str, ir.Node]] = []
    for s in children(in_clause):
        if is_token(s) or rule(s) != "FindOperatorSource":
            continue
        inner = find_first(s, "FindOperatorSourceEntityExpression")
        if inner is None:
            raise Refusal("find over a query expression", pos(s), "find in (T1, T2) takes table names")
        text = source(inner).strip()
        names = sorted(t for t in lw.tables if fnmatch.fnmatchcase(t, text)) if "*" in text else [text]
        for n in names:
            if n not in [x for x, _ in out]:
                out.append((n, lw.table_ref(n, env, where)))
    return out


def _names_in(ctx: Any) -> list[str]:
    found: list[str] = []

    def walk(n: Any) -> None:
        if is_token(n):
            return
        if rule(n) in _NAMES:
            nm = name_of(n)
            if nm not in found:
                found.append(nm)
            return
        for ch in children(n):
            walk(ch)

    walk(ctx)
    return found


def _types(kept: list[tuple[str, ir.Node]]) -> dict[str, set[str]]:
    types: dict[str, set[str]] = {}
    for _, nd in kept:
        for col in nd.schema.visible:
            types.setdefault(col.name, set()).add(col.type)
    return types


def _projected(clause: Any, types: dict[str, set[str]], where: Any) -> list[str]:
    out = []
    for e in children(clause):
        if is_token(e) or rule(e) != "FindOperatorProjectExpression":
            continue
        text = source(e).strip()
        if text.replace(" ", "").lower() == "pack_all()":
            raise Refusal("find ... project pack_all()", where)
        name, _, tname = text.partition(":")
        name = name.strip()
        col = name[2:-2] if name.startswith(("['", '["')) else name
        t = T.type_from_word(tname.strip()) if tname else None
        have = types.get(col)
        if have is None:
            if t is None:
                raise SemanticError(f"find: no searched table has a column {col!r}; give its type ({col}:string)",
                                    where)
            out.append(f"{literals.identifier(col)} = {_NULL[t]}")
        elif t is not None:
            out.append(f"{literals.identifier(col)} = {_CAST[t]}({literals.identifier(col)})")
        elif len(have) > 1:
            raise Refusal(f"find ... project {col} of several types ({', '.join(sorted(have))})", where,
                          f"give its type: project {col}:string")
        else:
            out.append(literals.identifier(col))
    return out
