"""Row and column operators: where, extend, project and its project-away/keep/rename/reorder forms, getschema.
"""

from __future__ import annotations

import fnmatch
import re
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.catalog import lookup_scalar
from kqlmagic_plus.language.compiler.functions.series import expand_multi
from kqlmagic_plus.language.compiler.lower import restart
from kqlmagic_plus.language.compiler.lower.coerce import coerce_to
from kqlmagic_plus.language.compiler.lower.messages import no_column
from kqlmagic_plus.language.compiler.lower.projection import (
    drop,
    finish_select,
    is_window,
    project_items,
    select_with,
)
from kqlmagic_plus.language.compiler.lower.scope import Env, Scope, row_scope
from kqlmagic_plus.language.compiler.naming import Namer
from kqlmagic_plus.language.compiler.parsetree import collapse, rule
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer


def where(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    lw.parameters(c.Parameters)
    sc = row_scope(node, env)
    pred = coerce_to(lw.expr(c.Predicate, sc), T.BOOL, pos(c.Predicate))
    if (
        isinstance(node, ir.Join)
        and node.kind == "innerunique"
        and ir.columns_used(pred) <= {col.name for col in node.left.schema.visible}
        and not any(is_window(x) or isinstance(x, ir.InSubquery) for x in ir.walk(pred))
    ):
        # Kusto pushes a filter on the left side's columns below an innerunique join, so it runs before
        # the one-row-per-key choice: the documented outputs rely on it.
        left = ir.Filter(node.left.schema, node.left, pred, order=node.left.order)
        return ir.Join(node.schema, left, node.right, node.kind, node.left_keys, node.right_keys, node.right_names,
                       null_safe=node.null_safe, order=node.order)
    if any(is_window(x) for x in ir.walk(pred)):
        # A window function cannot sit in a WHERE clause: compute it first, filter, drop it.
        hidden = lw.hidden_name()
        ext = select_with(node, [(hidden, pred)])
        filt = ir.Filter(ext.schema, ext, ir.Col(T.BOOL, hidden), order=ext.order)
        return drop(filt, {hidden})
    return ir.Filter(node.schema, node, pred, order=node.order)


def _refused_call(e: ir.Expr) -> tuple[str, str] | None:
    """A call of a function refused on every engine, as (its name, the reason)."""
    f = lookup_scalar(e.fn) if isinstance(e, ir.Call) else None
    if f is None or not f.refused:
        return None
    return f"{f.name}()", next(iter(f.refused.values()))


def extend(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    from kqlmagic_plus.language.compiler.lower.parse_kv import lower_extend as parse_kv

    kv = parse_kv(lw, c, node, env)  # parse-kv reaches the lowering as an extend (see lower/parse_kv.py)
    if kv is not None:
        return kv
    sc = row_scope(node, env)
    namer = Namer(reserved=lw.explicit_names(c.Expressions), skip=node.schema.names())
    items: list[tuple[str, ir.Expr]] = [(col.name, ir.Col(col.type, col.name)) for col in node.schema]
    index = {n: i for i, (n, _) in enumerate(items)}
    for ne in c.Expressions:
        names = lw.name_list(ne)
        e = lw.expr(ne.Expression, sc)
        node, e = restart.lift(lw, node, e, pos(ne))  # row_rank_min, row_number(1, restart) ...: in stages
        multi = expand_multi(lw, ne, e, namer)
        if names is not None and multi is None:
            refused = _refused_call(e)
            if refused is not None:  # (flag, score, baseline) = series_decompose_anomalies(...): say which and why
                raise Refusal(refused[0], pos(ne), reason=refused[1])
            raise Refusal("extend (a, b) = ...", pos(ne))
        for name, x in multi or [(lw.name_for(ne, namer, extend=True), e)]:
            if name in index:
                items[index[name]] = (name, x)
            else:
                index[name] = len(items)
                items.append((name, x))
        # Later expressions in the same extend see earlier ones (KQL evaluates left to right).
        sc = Scope(Schema([Column(n, x.type) for n, x in items]), env, serialized=sc.serialized,
                   operator_input=node.schema)
    return finish_select(node, items)


def project(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    sc = row_scope(node, env)
    namer = Namer(reserved=lw.explicit_names(c.Expressions))
    items: list[tuple[str, ir.Expr]] = []
    seen: set[str] = set()
    for ne in c.Expressions:
        e = lw.expr(ne.Expression, sc)
        node, e = restart.lift(lw, node, e, pos(ne))
        for name, x in expand_multi(lw, ne, e, namer) or [(lw.name_for(ne, namer), e)]:
            if name in seen:
                raise SemanticError(f"project names two columns {name!r}", pos(ne))
            seen.add(name)
            items.append((name, x))
    return project_items(lw, node, items)


def _match_columns(node: ir.Node, ref: Any) -> list[str]:
    text = ref.getText()
    if "*" in text:
        return [c.name for c in node.schema.visible if fnmatch.fnmatchcase(c.name, text)]
    name = name_of(ref)
    if name not in node.schema:
        raise SemanticError(no_column(name, node.schema), pos(ref))
    return [name]


def project_away(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    dropped: set[str] = set()
    for ref in c.Columns:
        dropped.update(_match_columns(node, ref))
    items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema.visible if col.name not in dropped]
    return project_items(lw, node, items)


def project_keep(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    keep: set[str] = set()
    for ref in c.Columns:
        keep.update(_match_columns(node, ref))
    items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema.visible if col.name in keep]
    return project_items(lw, node, items)


def project_rename(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    renames: dict[str, str] = {}
    for ne in c.Expressions:
        new = lw.explicit_name(ne)
        old_ctx = collapse(ne.Expression)
        old = name_of(old_ctx)
        if new is None or old not in node.schema:
            raise SemanticError(no_column(old, node.schema) if new else "project-rename needs new = old", pos(ne))
        renames[old] = new
    items = [(renames.get(col.name, col.name), ir.Col(col.type, col.name)) for col in node.schema]
    out = Schema([Column(n, e.type) for n, e in items])
    order = (
        None
        if node.order is None
        else tuple(ir.SortKey(renames.get(k.column, k.column), k.desc, k.nulls_first) for k in node.order)
    )
    return ir.Select(out, node, items, order=order)


def project_reorder(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    first: list[str] = []
    for ex in c.Expressions:
        matched = [m for m in _match_columns(node, ex.Expression) if m not in first]
        order = ex.Order.text.lower() if ex.Order is not None else None
        if order in ("asc", "granny-asc"):
            matched.sort(key=_granny if order == "granny-asc" else None)
        elif order in ("desc", "granny-desc"):
            matched.sort(key=_granny if order == "granny-desc" else None, reverse=True)
        first.extend(matched)
    rest = [col.name for col in node.schema if col.name not in first]
    items = [(n, ir.Col(node.schema.get(n).type, n)) for n in first + rest]  # type: ignore[union-attr]
    return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items, order=node.order)


def project_by_names(lw: Lowerer, call: Any, node: ir.Node, env: Env) -> ir.Node:
    """``project-by-names`` (read as a call, see ``syntax.preprocess``): names, arrays of names and
    ``*`` patterns, each a constant; the columns in the order named, names that match nothing ignored."""
    specs: list[str] = []
    for a in call.Arguments:
        c = collapse(a)
        if rule(c) == "NamedFunctionCallExpression" and name_of(c.Name) == "column_names_of":
            args = list(c.Arguments)
            if len(args) != 1:
                raise SemanticError("column_names_of() takes one table", pos(c))
            specs.extend(col.name for col in lw.tabular(args[0], env).schema.visible)
            continue
        v = lw.expr(a, Scope(None, env))
        if not isinstance(v, ir.Lit) or v.type not in (T.STRING, T.DYNAMIC):
            raise Refusal("project-by-names with a column specifier that is not a constant", pos(a))
        values = v.value if isinstance(v.value, list) else [v.value]
        if not all(isinstance(x, str) for x in values):
            raise SemanticError("project-by-names takes column names (strings)", pos(a))
        specs.extend(values)
    chosen: list[str] = []
    for spec in specs:
        names = (
            [c.name for c in node.schema.visible if fnmatch.fnmatchcase(c.name, spec)]
            if "*" in spec
            else [spec] if spec in node.schema and not node.schema.get(spec).hidden else []  # type: ignore[union-attr]
        )
        chosen.extend(n for n in names if n not in chosen)
    items = [(n, ir.Col(node.schema.get(n).type, n)) for n in chosen]  # type: ignore[union-attr]
    return project_items(lw, node, items)


def _granny(s: str) -> list[Any]:
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", s)]


def getschema(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node:
    cols = Schema(
        [
            Column("ColumnName", T.STRING),
            Column("ColumnOrdinal", T.INT),
            Column("DataType", T.STRING),
            Column("ColumnType", T.STRING),
        ]
    )
    net = {
        "bool": "System.SByte",
        "int": "System.Int32",
        "long": "System.Int64",
        "real": "System.Double",
        "decimal": "System.Data.SqlTypes.SqlDecimal",
        "string": "System.String",
        "datetime": "System.DateTime",
        "timespan": "System.TimeSpan",
        "guid": "System.Guid",
        "dynamic": "System.Object",
    }
    rows = [
        [ir.Lit(T.STRING, col.name), ir.Lit(T.INT, i), ir.Lit(T.STRING, net[col.type]), ir.Lit(T.STRING, col.type)]
        for i, col in enumerate(node.schema.visible)
    ]
    return ir.Values(cols, rows, order=(ir.SortKey("ColumnOrdinal", False, False),))
