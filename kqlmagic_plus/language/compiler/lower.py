"""Parse tree -> IR: resolve names, type every expression, shape every operator's output.

Dialect-independent: nothing here knows SQL. Anything not understood raises :class:`Refusal`
with the construct's name and position (never a guess); a query that is wrong for KQL itself
(an unknown column, a type that does not fit) raises :class:`SemanticError`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import literals as L
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.catalog import Function, lookup_aggregate, lookup_operator, lookup_scalar
from kqlmagic_plus.language.compiler.naming import Namer, aggregate_name, syntax_name
from kqlmagic_plus.language.compiler.syntax import (
    Pos,
    Refusal,
    SemanticError,
    UnknownTable,
    children,
    collapse,
    is_token,
    name_of,
    pos,
    rule,
    rule_children,
    source,
)
from kqlmagic_plus.language.compiler.types import Column, Schema

# -- environments ----------------------------------------------------------------------------------


@dataclass
class FunctionDef:
    name: str
    scalar_params: list[tuple[str, str, Any]]  # (name, type, default literal ctx or None)
    tabular_params: list[tuple[str, Schema | None]]
    body: Any  # LetFunctionBodyContext
    env: Env
    order: list[tuple[str, str]] = field(default_factory=list)  # ("scalar"|"tabular", name) in order


class Env:
    """A lexical scope of ``let`` bindings: ir.Expr (scalar), ir.Node (tabular) or FunctionDef."""

    def __init__(self, parent: Env | None = None):
        self.parent = parent
        self.vars: dict[str, Any] = {}

    def lookup(self, name: str) -> Any:
        env: Env | None = self
        while env is not None:
            if name in env.vars:
                return env.vars[name]
            env = env.parent
        return None

    def child(self) -> Env:
        return Env(self)


@dataclass
class Scope:
    """What a scalar expression can see."""

    schema: Schema | None
    env: Env
    aggs: bool = False
    serialized: bool = False
    left: Schema | None = None
    right: Schema | None = None


@dataclass
class Lowered:
    node: ir.Node
    render: str | None


_STRING_OPS = {
    "=~": "=~",
    "!~": "!~",
    "has": "has",
    "!has": "!has",
    "has_cs": "has_cs",
    "!has_cs": "!has_cs",
    "hasprefix": "hasprefix",
    "!hasprefix": "!hasprefix",
    "hasprefix_cs": "hasprefix_cs",
    "!hasprefix_cs": "!hasprefix_cs",
    "hassuffix": "hassuffix",
    "!hassuffix": "!hassuffix",
    "hassuffix_cs": "hassuffix_cs",
    "!hassuffix_cs": "!hassuffix_cs",
    "contains": "contains",
    "!contains": "!contains",
    "notcontains": "!contains",
    "contains_cs": "contains_cs",
    "containscs": "contains_cs",
    "!contains_cs": "!contains_cs",
    "notcontainscs": "!contains_cs",
    "startswith": "startswith",
    "!startswith": "!startswith",
    "startswith_cs": "startswith_cs",
    "!startswith_cs": "!startswith_cs",
    "endswith": "endswith",
    "!endswith": "!endswith",
    "endswith_cs": "endswith_cs",
    "!endswith_cs": "!endswith_cs",
    "matchesregex": "matches regex",
    "matches regex": "matches regex",
    ":": "has",
}
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
_IGNORED_PARAMS = ("hint.", "bin_legacy", "isfuzzy", "decodeblocks")


class Lowerer:
    def __init__(self, text: str, tables: dict[str, Schema], params: dict[str, Any] | None = None):
        self.text = text
        self.tables = tables
        self.params = dict(params or {})
        self.render: str | None = None
        self._hidden = 0

    # -- entry ------------------------------------------------------------------------------------

    def query(self, tree: Any) -> Lowered:
        env = Env()
        for name, value in self.params.items():
            env.vars[name] = python_literal(value, pos=None)
        q = tree.query() if hasattr(tree, "query") and callable(tree.query) else tree
        statements = [c for c in rule_children(q) if rule(c) == "Statement"]
        result: ir.Node | None = None
        for st in statements:
            inner = collapse(st)
            r = rule(inner)
            if r in (
                "LetVariableDeclaration",
                "LetFunctionDeclaration",
                "LetViewDeclaration",
                "LetMaterializeDeclaration",
            ):
                self.let(inner, env)
            elif r == "SetStatement":
                continue
            elif r == "DeclareQueryParametersStatement":
                self.declare_params(inner, env)
            elif r in (
                "LetEntityGroupDeclaration",
                "AliasDatabaseStatement",
                "RestrictAccessStatement",
                "DeclarePatternStatement",
            ):
                raise Refusal(_words(r.replace("Declaration", "").replace("Statement", "")), pos(inner))
            else:
                if result is not None:
                    raise Refusal(
                        "several query statements", pos(inner), "a query must end in exactly one tabular expression"
                    )
                expr_ctx = inner.Expression if r == "QueryStatement" else inner
                result = self.tabular(expr_ctx, env, top=True)
        if result is None:
            raise SemanticError("the query has no tabular expression to return", Pos(1, 0))
        return Lowered(result, self.render)

    def declare_params(self, ctx: Any, env: Env) -> None:
        for p in ctx.Parameters:
            name = name_of(p.Name)
            t = T.type_from_word(p.Type.getText())
            if name in self.params:
                env.vars[name] = convert_literal(python_literal(self.params[name], pos(p)), t, pos(p))
            elif p.Default is not None:
                env.vars[name] = convert_literal(self.literal(p.Default.Value), t, pos(p))
            else:
                raise SemanticError(f"query parameter {name!r} has no value and no default", pos(p))

    def let(self, ctx: Any, env: Env) -> None:
        r = rule(ctx)
        name = name_of(ctx.Name)
        if r in ("LetFunctionDeclaration", "LetViewDeclaration"):
            env.vars[name] = self.function_def(name, ctx, env)
            return
        if r == "LetMaterializeDeclaration":
            env.vars[name] = self.tabular(ctx.Expression, env)
            return
        value = ctx.Expression
        if self.is_tabular(value, env):
            env.vars[name] = self.tabular(value, env)
        else:
            env.vars[name] = self.expr(value, Scope(None, env))

    def function_def(self, name: str, ctx: Any, env: Env) -> FunctionDef:
        scalars: list[tuple[str, str, Any]] = []
        tabulars: list[tuple[str, Schema | None]] = []
        order: list[tuple[str, str]] = []
        plist = ctx.ParameterList
        if plist is not None:
            for p in rule_children(plist):
                if rule(p) == "ScalarParameter":
                    pname = name_of(p.Name)
                    t = T.type_from_word(p.Type.getText()) or T.DYNAMIC
                    scalars.append((pname, t, p.Default.Value if p.Default is not None else None))
                    order.append(("scalar", pname))
                elif rule(p) == "TabularParameter":
                    pname = name_of(p.Name)
                    tabulars.append((pname, None))
                    order.append(("tabular", pname))
        return FunctionDef(name, scalars, tabulars, ctx.Body, env, order)

    # -- classification ---------------------------------------------------------------------------

    def is_tabular(self, ctx: Any, env: Env) -> bool:
        c = collapse(ctx)
        r = rule(c) if not is_token(c) else "Token"
        if r == "PipeExpression":
            return True
        if r in (
            "PrintOperator",
            "RangeExpression",
            "UnionOperator",
            "DataTableExpression",
            "ExternalDataExpression",
            "EvaluateOperator",
            "SearchOperator",
            "FindOperator",
            "ToTableExpression",
            "MacroExpandOperator",
        ):
            return True
        if r in ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName"):
            name = name_of(c)
            b = env.lookup(name)
            if b is not None:
                return isinstance(b, ir.Node) or (isinstance(b, FunctionDef) and self._fn_is_tabular(b))
            return name in self.tables
        if r == "ParenthesizedExpression":
            return self.is_tabular(c.Expression, env)
        if r == "NamedFunctionCallExpression":
            fname = name_of(c.Name)
            if fname in ("materialize", "table", "view", "database", "cluster"):
                return True
            b = env.lookup(fname)
            return isinstance(b, FunctionDef) and self._fn_is_tabular(b)
        return False

    def _fn_is_tabular(self, f: FunctionDef) -> bool:
        if f.tabular_params:
            return True
        body = f.body
        env = f.env.child()
        for pname, t, _ in f.scalar_params:
            env.vars[pname] = ir.Lit(t, None)
        self._body_statements(body, env)
        return body.Expression is not None and self.is_tabular(body.Expression, env)

    def _body_statements(self, body: Any, env: Env) -> None:
        for st in rule_children(body):
            if rule(st) == "LetFunctionBodyStatement":
                inner = collapse(st)
                if rule(inner).startswith("Let"):
                    self.let(inner, env)

    # -- tabular expressions ----------------------------------------------------------------------

    def tabular(self, ctx: Any, env: Env, top: bool = False) -> ir.Node:
        c = collapse(ctx)
        r = rule(c) if not is_token(c) else "Token"
        if r == "PipeExpression":
            node = self.tabular(c.Expression, env)
            ops = list(c.PipedOperators)
            for i, op in enumerate(ops):
                node = self.operator(op.Operator, node, env, last=(i == len(ops) - 1 and top))
            return node
        if r in (
            "IdentifierName",
            "KeywordName",
            "ExtendedKeywordName",
            "EscapedName",
            "SimpleNameReference",
            "NameReferenceWithDataScope",
        ):
            return self.table_ref(name_of(c), env, pos(c))
        if r == "ParenthesizedExpression":
            return self.tabular(c.Expression, env)
        if r == "NamedFunctionCallExpression":
            return self.tabular_call(c, env)
        if r == "DataTableExpression":
            return self.datatable(c)
        if r == "PrintOperator":
            return self.print_(c, env)
        if r == "RangeExpression":
            return self.range_(c, env)
        if r == "UnionOperator":
            return self.union(c, None, env)
        if r == "BeforeOrAfterPipeOperator":
            return self.tabular(rule_children(c)[0], env)
        raise Refusal(_construct_name(c), pos(c))

    def table_ref(self, name: str, env: Env, where: Pos) -> ir.Node:
        b = env.lookup(name)
        if isinstance(b, ir.Node):
            return b
        if isinstance(b, FunctionDef):
            return self.expand_tabular_function(b, [], None, env, where)
        if b is not None:
            raise SemanticError(f"{name!r} is a scalar, not a table", where)
        schema = self.tables.get(name)
        if schema is None:
            raise UnknownTable(name, where)
        return ir.Scan(schema, name)

    def tabular_call(self, c: Any, env: Env, piped: ir.Node | None = None) -> ir.Node:
        fname = name_of(c.Name)
        args = [a for a in c.Arguments]
        if fname == "materialize" and len(args) == 1:
            return self.tabular(args[0], env)
        if fname in ("table", "view") and len(args) >= 1:
            target = self.literal(collapse(args[0]))
            if not isinstance(target.value, str):
                raise Refusal(f"{fname}() with a computed name", pos(c))
            return self.table_ref(target.value, env, pos(c))
        b = env.lookup(fname)
        if isinstance(b, FunctionDef):
            return self.expand_tabular_function(b, args, piped, env, pos(c))
        raise Refusal(f"{fname}()", pos(c), "not a tabular function this compiler knows")

    def expand_tabular_function(
        self, f: FunctionDef, args: list[Any], piped: ir.Node | None, env: Env, where: Pos
    ) -> ir.Node:
        fenv = self._bind_args(f, args, piped, env, where)
        self._body_statements(f.body, fenv)
        if f.body.Expression is None:
            raise SemanticError(f"function {f.name!r} has no body expression", where)
        return self.tabular(f.body.Expression, fenv)

    def _bind_args(
        self, f: FunctionDef, args: list[Any], piped: ir.Node | None, env: Env, where: Pos, scope: Scope | None = None
    ) -> Env:
        fenv = f.env.child()
        queue = list(args)
        for kind, pname in f.order:
            if kind == "tabular":
                if piped is not None:
                    fenv.vars[pname] = piped
                    piped = None
                elif queue:
                    fenv.vars[pname] = self.tabular(queue.pop(0), env)
                else:
                    raise SemanticError(f"function {f.name!r} needs a table for {pname!r}", where)
            else:
                t, default = next((t, d) for n, t, d in f.scalar_params if n == pname)
                if queue:
                    a = queue.pop(0)
                    value = self.expr(a, scope or Scope(None, env))
                    fenv.vars[pname] = (
                        coerce_to(value, t, pos(a))
                        if t != T.DYNAMIC or value.type == T.DYNAMIC
                        else coerce_to(value, T.DYNAMIC, pos(a))
                    )
                elif default is not None:
                    fenv.vars[pname] = convert_literal(self.literal(default), t, where)
                else:
                    raise SemanticError(f"function {f.name!r} is missing argument {pname!r}", where)
        if queue:
            raise SemanticError(f"function {f.name!r} got too many arguments", where)
        return fenv

    def datatable(self, c: Any) -> ir.Node:
        cols = []
        for col in c.Schema.Columns:
            t = T.type_from_word(col.Type.getText())
            if t is None:
                raise Refusal(f"datatable column type {col.Type.getText()}", pos(col))
            cols.append(Column(name_of(col.Name), t))
        values = [self.literal(v) for v in c.Values]
        width = len(cols)
        if width == 0 or len(values) % width:
            raise SemanticError("datatable values do not fill whole rows", pos(c))
        rows = []
        for i in range(0, len(values), width):
            rows.append([convert_literal(values[i + j], cols[j].type, pos(c)) for j in range(width)])
        return ir.Values(Schema(cols), rows)

    def print_(self, c: Any, env: Env) -> ir.Node:
        sc = Scope(None, env)
        namer = Namer(reserved=self._explicit_names(c.Expressions))
        cols, row = [], []
        for ne in c.Expressions:
            e = self.expr(ne.Expression, sc)
            name = self._name_for(ne, namer, print_=True)
            cols.append(Column(name, e.type))
            row.append(e)
        return ir.Values(Schema(cols), [row])

    def range_(self, c: Any, env: Env) -> ir.Node:
        sc = Scope(None, env)
        start, stop, step = (self.expr(x, sc) for x in (c.FromExpression, c.ToExpression, c.StepExpression))
        t = (
            start.type
            if start.type in (T.DATETIME, T.TIMESPAN)
            else T.arithmetic_result(
                start.type if start.type in T.NUMERIC else T.LONG, step.type if step.type in T.NUMERIC else T.LONG
            )
        )
        name = name_of(c.Expression)
        return ir.Range(Schema([Column(name, t)]), start, stop, step, order=(ir.SortKey(name, False, False),))

    # -- operators --------------------------------------------------------------------------------

    def operator(self, ctx: Any, node: ir.Node, env: Env, last: bool = False) -> ir.Node:
        c = collapse(ctx)
        r = rule(c)
        if r == "RenderOperator":
            if not last:
                raise Refusal("render before the end of the query", pos(c))
            self.render = source(c)
            return node
        handler = getattr(self, "op_" + r, None)
        if handler is None:
            raise Refusal(_construct_name(c), pos(c))
        return handler(c, node, env)

    def _params(self, params: list[Any]) -> dict[str, tuple[Any, Any]]:
        out = {}
        for p in params:
            key = p.NameToken.text.lower()
            if key.startswith(_IGNORED_PARAMS):
                continue
            out[key] = (p, p.NameValue.getText() if p.NameValue is not None else self.literal(p.LiteralValue).value)
        return out

    def op_WhereOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        self._params(c.Parameters)
        sc = self.row_scope(node, env)
        pred = coerce_to(self.expr(c.Predicate, sc), T.BOOL, pos(c.Predicate))
        if any(self._is_window(x) for x in ir.walk(pred)):
            # A window function cannot sit in a WHERE clause: compute it first, filter, drop it.
            hidden = self.hidden_name()
            ext = self._select_with(node, [(hidden, pred)])
            filt = ir.Filter(ext.schema, ext, ir.Col(T.BOOL, hidden), order=ext.order)
            return self._drop(filt, {hidden})
        return ir.Filter(node.schema, node, pred, order=node.order)

    def row_scope(self, node: ir.Node, env: Env, aggs: bool = False) -> Scope:
        return Scope(node.schema, env, aggs=aggs, serialized=node.order is not None)

    def _is_window(self, e: ir.Expr) -> bool:
        if isinstance(e, ir.Call):
            f = lookup_scalar(e.fn)
            return bool(f and f.window)
        return False

    def op_ExtendOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        sc = self.row_scope(node, env)
        namer = Namer(reserved=self._explicit_names(c.Expressions), skip=node.schema.names())
        items: list[tuple[str, ir.Expr]] = [(col.name, ir.Col(col.type, col.name)) for col in node.schema]
        index = {n: i for i, (n, _) in enumerate(items)}
        for ne in c.Expressions:
            names = self._name_list(ne)
            e = self.expr(ne.Expression, sc)
            if names is not None:
                raise Refusal("extend (a, b) = ...", pos(ne))
            name = self._name_for(ne, namer, extend=True)
            if name in index:
                items[index[name]] = (name, e)
            else:
                index[name] = len(items)
                items.append((name, e))
            # Later expressions in the same extend see earlier ones (KQL evaluates left to right).
            sc = Scope(Schema([Column(n, x.type) for n, x in items]), env, serialized=sc.serialized)
        return self._finish_select(node, items, env)

    def _finish_select(self, node: ir.Node, items: list[tuple[str, ir.Expr]], env: Env | None = None) -> ir.Node:
        # Expressions may refer to columns defined earlier in the same operator: inline them.
        resolved: list[tuple[str, ir.Expr]] = []
        defined: dict[str, ir.Expr] = {}
        for name, e in items:
            e2 = substitute(e, defined) if defined else e
            resolved.append((name, e2))
            if not (isinstance(e2, ir.Col) and e2.name == name):
                defined[name] = e2
        out = Schema([Column(n, e.type) for n, e in resolved])
        return ir.Select(out, node, resolved, order=node.order)

    def _select_with(self, node: ir.Node, extra: list[tuple[str, ir.Expr]]) -> ir.Node:
        items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema] + extra
        return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items, order=node.order)

    def _drop(self, node: ir.Node, names: set[str]) -> ir.Node:
        items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema if col.name not in names]
        return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items, order=node.order)

    def _keep_order(self, node: ir.Node, items: list[tuple[str, ir.Expr]]) -> list[tuple[str, ir.Expr]]:
        """Carry the sort-key columns a projection drops, as hidden columns, while the rows are ordered."""
        if node.order is None:
            return items
        have = {n for n, _ in items}
        for key in node.order:
            if key.column not in have:
                col = node.schema.get(key.column)
                if col is None:
                    continue
                if col.hidden:
                    items.append((key.column, ir.Col(col.type, key.column)))
                else:
                    raise _OrderLost(key.column)
        return items

    def _project_items(self, node: ir.Node, items: list[tuple[str, ir.Expr]]) -> ir.Node:
        order = node.order
        try:
            items = self._keep_order(node, items)
        except _OrderLost:
            # A visible sort key was projected away: carry a hidden copy under a new name.
            renames: dict[str, str] = {}
            carried = []
            for key in node.order or ():
                if key.column not in {n for n, _ in items}:
                    col = node.schema.get(key.column)
                    assert col is not None
                    h = self.hidden_name()
                    renames[key.column] = h
                    carried.append((h, ir.Col(col.type, key.column)))
            items = items + carried
            order = tuple(ir.SortKey(renames.get(k.column, k.column), k.desc, k.nulls_first) for k in node.order or ())
        sel = self._finish_select(node, items)
        sel.order = order
        return sel

    def op_ProjectOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        sc = self.row_scope(node, env)
        namer = Namer(reserved=self._explicit_names(c.Expressions))
        items: list[tuple[str, ir.Expr]] = []
        seen: set[str] = set()
        for ne in c.Expressions:
            e = self.expr(ne.Expression, sc)
            name = self._name_for(ne, namer)
            if name in seen:
                raise SemanticError(f"project names two columns {name!r}", pos(ne))
            seen.add(name)
            items.append((name, e))
        return self._project_items(node, items)

    def _match_columns(self, node: ir.Node, ref: Any) -> list[str]:
        text = ref.getText()
        if "*" in text:
            return [c.name for c in node.schema.visible if fnmatch.fnmatchcase(c.name, text)]
        name = name_of(ref)
        if name not in node.schema:
            raise SemanticError(_no_column(name, node.schema), pos(ref))
        return [name]

    def op_ProjectAwayOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        drop: set[str] = set()
        for ref in c.Columns:
            drop.update(self._match_columns(node, ref))
        items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema.visible if col.name not in drop]
        return self._project_items(node, items)

    def op_ProjectKeepOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        keep: set[str] = set()
        for ref in c.Columns:
            keep.update(self._match_columns(node, ref))
        items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema.visible if col.name in keep]
        return self._project_items(node, items)

    def op_ProjectRenameOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        renames: dict[str, str] = {}
        for ne in c.Expressions:
            new = self._explicit_name(ne)
            old_ctx = collapse(ne.Expression)
            old = name_of(old_ctx)
            if new is None or old not in node.schema:
                raise SemanticError(_no_column(old, node.schema) if new else "project-rename needs new = old", pos(ne))
            renames[old] = new
        items = [(renames.get(col.name, col.name), ir.Col(col.type, col.name)) for col in node.schema]
        out = Schema([Column(n, e.type) for n, e in items])
        order = (
            None
            if node.order is None
            else tuple(ir.SortKey(renames.get(k.column, k.column), k.desc, k.nulls_first) for k in node.order)
        )
        return ir.Select(out, node, items, order=order)

    def op_ProjectReorderOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        first: list[str] = []
        for ex in c.Expressions:
            matched = [m for m in self._match_columns(node, ex.Expression) if m not in first]
            order = ex.Order.text.lower() if ex.Order is not None else None
            if order in ("asc", "granny-asc"):
                matched.sort(key=_granny if order == "granny-asc" else None)
            elif order in ("desc", "granny-desc"):
                matched.sort(key=_granny if order == "granny-desc" else None, reverse=True)
            first.extend(matched)
        rest = [col.name for col in node.schema if col.name not in first]
        items = [(n, ir.Col(node.schema.get(n).type, n)) for n in first + rest]  # type: ignore[union-attr]
        return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items, order=node.order)

    def op_DistinctOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        if c.Star is not None:
            keys = [(col.name, ir.Col(col.type, col.name)) for col in node.schema.visible]
            return self._distinct(keys, node, c)
        return self.op_DistinctOperator_list(list(c.ColumnList.Expressions), node, env, c)

    def op_DistinctOperator_list(self, nes: list[Any], node: ir.Node, env: Env, c: Any) -> ir.Node:
        sc = self.row_scope(node, env)
        namer = Namer(reserved=self._explicit_names(nes))
        keys = [(self._name_for(ne, namer), self.expr(ne.Expression, sc)) for ne in nes]
        return self._distinct(keys, node, c)

    def _distinct(self, keys: list[tuple[str, ir.Expr]], node: ir.Node, c: Any) -> ir.Node:
        for name, e in keys:
            if e.type == T.DYNAMIC:
                raise SemanticError(
                    f"distinct on the dynamic column {name!r}: convert it first (tostring(...))", pos(c)
                )
        return ir.Aggregate(Schema([Column(n, e.type) for n, e in keys]), node, keys, [])

    def op_CountOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        return ir.Aggregate(Schema([Column("Count", T.LONG)]), node, [], [("Count", ir.Agg(T.LONG, "count", ()))])

    def op_TakeOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        n = coerce_to(self.expr(c.Expression.Expression, Scope(None, env)), T.LONG, pos(c))
        return ir.Limit(node.schema, node, n, order=node.order)

    def op_SampleOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        n = coerce_to(self.expr(c.Expression.Expression, Scope(None, env)), T.LONG, pos(c))
        h = self.hidden_name()
        ext = self._select_with(node, [(h, ir.Call(T.REAL, "rand", ()))])
        srt = ir.Sort(ext.schema, ext, (ir.SortKey(h, False, False),), order=(ir.SortKey(h, False, False),))
        lim = ir.Limit(srt.schema, srt, n, order=srt.order)
        out = self._drop(lim, {h})
        out.order = None
        return out

    def _sort_keys(self, node: ir.Node, ordered: list[Any], env: Env) -> tuple[ir.Node, tuple[ir.SortKey, ...]]:
        sc = self.row_scope(node, env)
        keys: list[ir.SortKey] = []
        extra: list[tuple[str, ir.Expr]] = []
        for oe in ordered:
            e = self.expr(oe.Expression.Expression, sc)
            if e.type == T.DYNAMIC:
                raise SemanticError("sort by a dynamic value: convert it first (tostring(...), toreal(...))", pos(oe))
            kind = oe.Ordering.OrderKind.text.lower() if oe.Ordering.OrderKind is not None else "desc"
            desc = kind == "desc"
            if oe.Ordering.NullsKind is not None:
                nulls_first = oe.Ordering.NullsKind.text.lower() == "first"
            else:
                nulls_first = not desc
            if isinstance(e, ir.Col):
                keys.append(ir.SortKey(e.name, desc, nulls_first))
            else:
                h = self.hidden_name()
                extra.append((h, e))
                keys.append(ir.SortKey(h, desc, nulls_first))
        if extra:
            node = self._select_with(node, extra)
        return node, tuple(keys)

    def op_SortOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        self._params(c.Parameters)
        node, keys = self._sort_keys(node, list(c.Expressions), env)
        return ir.Sort(node.schema, node, keys, order=keys)

    def op_TopOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        n = coerce_to(self.expr(c.Expression.Expression, Scope(None, env)), T.LONG, pos(c))
        node, keys = self._sort_keys(node, [c.ByExpression], env)
        srt = ir.Sort(node.schema, node, keys, order=keys)
        return ir.Limit(srt.schema, srt, n, order=keys)

    def op_SerializeOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        if node.order is None:
            h = self.hidden_name()
            node = self._select_with(node, [(h, ir.Call(T.LONG, "__serial", ()))])
            node.order = (ir.SortKey(h, False, False),)
        if c.Expressions:
            return self.op_ExtendOperator(c, node, env)
        return node

    def op_AsOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        env.vars[name_of(c.Name)] = node
        return node

    def op_GetSchemaOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
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

    def op_InvokeOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        call = collapse(c.FunctionCall)
        if rule(call) != "NamedFunctionCallExpression":
            raise Refusal("invoke of this expression", pos(c))
        return self.tabular_call(call, env, piped=node)

    # -- summarize --------------------------------------------------------------------------------

    def op_SummarizeOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        self._params(c.Parameters)
        if c.ByClause is not None and c.ByClause.BinClause is not None:
            raise Refusal("summarize ... bin=", pos(c.ByClause))
        sc_keys = self.row_scope(node, env)
        key_exprs = list(c.ByClause.Expressions) if c.ByClause is not None else []
        agg_exprs = list(c.Expressions)
        namer = Namer(reserved=self._explicit_names(key_exprs + agg_exprs), skip=node.schema.names())
        keys: list[tuple[str, ir.Expr]] = []
        for ne in key_exprs:
            e = self.expr(ne.Expression, sc_keys)
            if e.type == T.DYNAMIC:
                raise SemanticError("summarize by a dynamic value: convert it first (tostring(...))", pos(ne))
            keys.append((self._name_for(ne, namer, extend=True), e))
        key_names = {n for n, _ in keys}
        aggs: list[tuple[str, Any]] = []
        out_cols: list[Column] = [Column(n, e.type) for n, e in keys]
        sc = Scope(node.schema, env, aggs=True)
        for ne in agg_exprs:
            call = collapse(ne.Expression)
            fname = name_of(call.Name).lower() if rule(call) == "NamedFunctionCallExpression" else None
            if fname in ("arg_max", "arg_min", "argmax", "argmin"):
                pick = self.arg_pick(call, fname, node, env, key_names, ne, namer)
                aggs.append(("", pick))
                out_cols.extend(Column(n, e.type) for n, e in pick.columns)
                continue
            if fname == "percentiles":
                for name, agg in self.percentiles(call, node, env, ne, namer):
                    aggs.append((name, agg))
                    out_cols.append(Column(name, agg.type))
                continue
            e = self.expr(ne.Expression, sc)
            if not any(isinstance(x, ir.Agg) for x in ir.walk(e)):
                raise SemanticError("summarize needs an aggregation function (count(), sum(), ...)", pos(ne))
            name = self._name_for(ne, namer, extend=True)
            aggs.append((name, e))
            out_cols.append(Column(name, e.type))
        return ir.Aggregate(Schema(out_cols), node, keys, aggs)

    def arg_pick(
        self, call: Any, fname: str, node: ir.Node, env: Env, key_names: set[str], ne: Any, namer: Namer
    ) -> ir.ArgPick:
        kind = "max" if "max" in fname else "min"
        sc = self.row_scope(node, env)
        args = list(call.Arguments)
        if not args:
            raise SemanticError(f"{fname} needs an expression to maximize", pos(call))
        by = self.expr(args[0], sc)
        explicit = self._name_list(ne) or ([self._explicit_name(ne)] if self._explicit_name(ne) else [])
        by_name = explicit[0] if explicit else (syntax_name(shape(args[0])) or f"{kind}_")
        cols: list[tuple[str, ir.Expr]] = [(namer.take(by_name), by)]
        names_taken = {by_name}
        rest = args[1:]
        if not rest:
            # arg_max(x) alone returns x (and keys); Kusto documents the * form for all columns.
            pass
        for i, a in enumerate(rest):
            ac = collapse(a)
            if rule(ac) == "StarExpression":
                for col in node.schema.visible:
                    if col.name in key_names or col.name in names_taken:
                        continue
                    names_taken.add(col.name)
                    cols.append((namer.take(col.name), ir.Col(col.type, col.name)))
                continue
            e = self.expr(a, sc)
            nm = explicit[i + 1] if len(explicit) > i + 1 else (syntax_name(shape(a)) or namer.positional())
            if nm in key_names:
                continue
            names_taken.add(nm)
            cols.append((namer.take(nm), e))
        return ir.ArgPick(kind, by, tuple(cols))

    def percentiles(self, call: Any, node: ir.Node, env: Env, ne: Any, namer: Namer) -> list[tuple[str, ir.Agg]]:
        sc = self.row_scope(node, env)
        args = list(call.Arguments)
        x = self.expr(args[0], sc)
        base = syntax_name(shape(args[0])) or ""
        out = []
        explicit = self._name_list(ne) or []
        for i, a in enumerate(args[1:]):
            p = self.expr(a, sc)
            if not isinstance(p, ir.Lit):
                raise Refusal("percentiles with a computed percentage", pos(a))
            v = p.value
            suffix = str(int(v)) if float(v).is_integer() else str(v).replace(".", "_")
            name = explicit[i] if i < len(explicit) else f"percentile_{base}_{suffix}"
            out.append((namer.take(name), ir.Agg(x.type, "percentile", (x, p))))
        return out

    # -- join / lookup / union ----------------------------------------------------------------------

    def op_JoinOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        params = self._params(c.Parameters)
        kind_raw = str(params.get("kind", (None, "innerunique"))[1]).lower()
        kind = _JOIN_KINDS.get(kind_raw)
        if kind is None:
            raise Refusal(f"join kind={kind_raw}", pos(c))
        right = self.tabular(c.Table, env)
        if c.WhereClause is not None or c.OnClause is None:
            raise Refusal("join without an on clause", pos(c))
        return self.join(node, right, kind, c.OnClause, env, pos(c))

    def join(
        self, left: ir.Node, right: ir.Node, kind: str, on: Any, env: Env, where: Pos, lookup: bool = False
    ) -> ir.Node:
        lkeys, rkeys = self.join_keys(left, right, on, env)
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
            for col in rvis:
                if lookup and col.name in same_keys:
                    continue
                name = col.name
                k = 0
                while name in taken:
                    k += 1
                    name = f"{col.name}{k}"
                taken.add(name)
                right_names[col.name] = name
                cols.append(Column(name, col.type))
        if lookup and kind not in ("leftouter", "inner"):
            raise Refusal(f"lookup kind={kind}", where)
        return ir.Join(Schema(cols), left, right, kind, lkeys, rkeys, right_names)

    def join_keys(self, left: ir.Node, right: ir.Node, on: Any, env: Env) -> tuple[list[ir.Expr], list[ir.Expr]]:
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
                a = self._side_ref(c.Left, left, right)
                b = self._side_ref(c.Tail.Right, left, right)
                if a[0] == b[0]:
                    raise Refusal("join condition comparing one side with itself", pos(c))
                (la, ra) = (a, b) if a[0] == "left" else (b, a)
                lkeys.append(la[1])
                rkeys.append(ra[1])
                continue
            raise Refusal("join condition other than column equality", pos(c))
        return lkeys, rkeys

    def _side_ref(self, ctx: Any, left: ir.Node, right: ir.Node) -> tuple[str, ir.Expr]:
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
                    raise SemanticError(_no_column(name, schema), pos(c))
                return root[1:], ir.Col(col.type, name)
        raise Refusal("join condition term other than $left.column / $right.column", pos(c))

    def op_LookupOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        params = self._params(c.Parameters)
        kind = str(params.get("kind", (None, "leftouter"))[1]).lower()
        right = self.tabular(c.Table, env)
        return self.join(node, right, _JOIN_KINDS.get(kind, kind), c.OnClause, env, pos(c), lookup=True)

    def op_UnionOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        return self.union(c, node, env)

    def union(self, c: Any, piped: ir.Node | None, env: Env) -> ir.Node:
        params = self._params(c.Parameters)
        kind = str(params.get("kind", (None, "outer"))[1]).lower()
        source_col = params.get("withsource") or params.get("with_source")
        parts: list[tuple[str, ir.Node]] = []
        if piped is not None:
            parts.append(("", piped))
        for ue in c.Expressions:
            inner = collapse(ue)
            r = rule(inner)
            text = ue.getText()
            if "*" in text and r not in ("ParenthesizedExpression",):
                names = sorted(t for t in self.tables if fnmatch.fnmatchcase(t, text))
                if not names:
                    raise UnknownTable(text, pos(ue))
                parts.extend((t, ir.Scan(self.tables[t], t)) for t in names)
                continue
            if r == "ParenthesizedExpression":
                parts.append(("", self.tabular(inner.Expression, env)))
                continue
            name = (
                name_of(inner)
                if r
                in (
                    "IdentifierName",
                    "KeywordName",
                    "EscapedName",
                    "EntityName",
                    "ExtendedKeywordName",
                    "EntityNameReference",
                )
                else None
            )
            if name is None:
                parts.append(("", self.tabular(inner, env)))
            else:
                parts.append((name, self.table_ref(name, env, pos(ue))))
        # The union schema: columns by name in first-seen order; a name with two types becomes one
        # column per type, suffixed with the type (KQL's rule).
        types_of: dict[str, list[str]] = {}
        for _, p in parts:
            for col in p.schema.visible:
                ts = types_of.setdefault(col.name, [])
                if col.type not in ts:
                    ts.append(col.type)
        out: list[Column] = []
        if source_col is not None:
            out.append(Column(str(source_col[1]), T.STRING))
        for name, ts in types_of.items():
            if kind == "inner" and not all(p.schema.get(name) is not None for _, p in parts):
                continue
            if len(ts) == 1:
                out.append(Column(name, ts[0]))
            else:
                out.extend(Column(f"{name}_{t}", t) for t in ts)
        projections = []
        for label, p in parts:
            exprs: list[ir.Expr] = []
            for col in out:
                if source_col is not None and col is out[0]:
                    exprs.append(ir.Lit(T.STRING, label or None))
                    continue
                src = p.schema.get(col.name)
                if src is not None and not src.hidden and src.type == col.type:
                    exprs.append(ir.Col(col.type, col.name))
                    continue
                base, _, _t = col.name.rpartition("_")
                src = p.schema.get(base)
                if base and src is not None and src.type == col.type and len(types_of.get(base, [])) > 1:
                    exprs.append(ir.Col(col.type, base))
                else:
                    exprs.append(ir.Lit(col.type, None))
            projections.append((p, exprs))
        return ir.Union(Schema(out), projections)

    # -- mv-expand --------------------------------------------------------------------------------

    def op_MvexpandOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        params = self._params(c.Parameters)
        bag_mode = str(params.get("bagexpansion", params.get("kind", (None, "bag")))[1]).lower()
        index_col = params.get("with_itemindex")
        sc = self.row_scope(node, env)
        expansions: list[ir.Expansion] = []
        for me in c.Expressions:
            ne = me.Expression
            e = self.expr(ne.Expression, sc)
            to_type = T.DYNAMIC
            if me.ToClause is not None:
                word = me.ToClause.Type.text.lower().partition("typeof(")[2].rstrip(")").strip()
                to_type = T.type_from_word(word) or T.DYNAMIC
            name = self._explicit_name(ne) or syntax_name(shape(ne.Expression))
            if name is None:
                raise Refusal("mv-expand of an unnamed computed expression", pos(ne), "name it: mv-expand item = ...")
            if e.type != T.DYNAMIC:
                e = coerce_to(e, T.DYNAMIC, pos(ne))
            expansions.append(ir.Expansion(name, e, to_type))
        limit = None
        if c.LimitClause is not None:
            limit = int(c.LimitClause.LimitValue.text)
        cols = list(node.schema.columns)
        names = [col.name for col in cols]
        for ex in expansions:
            if ex.column in names:
                cols[names.index(ex.column)] = Column(ex.column, ex.to_type)
            else:
                cols.append(Column(ex.column, ex.to_type))
                names.append(ex.column)
        idx_name = str(index_col[1]) if index_col else None
        if idx_name:
            cols.append(Column(idx_name, T.LONG))
        pos_col = None
        order = None
        if node.order is not None:
            pos_col = self.hidden_name()
            cols.append(Column(pos_col, T.LONG))
            order = (*node.order, ir.SortKey(pos_col, False, False))
        out = ir.MvExpand(Schema(cols), node, expansions, limit, idx_name, pos_col, order=order)
        out.bag_mode = bag_mode  # type: ignore[attr-defined]
        return out

    # -- parse ------------------------------------------------------------------------------------

    def op_ParseOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        return self.parse_op(c, node, env, filter_=False)

    def op_ParseWhereOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        return self.parse_op(c, node, env, filter_=True)

    def parse_op(self, c: Any, node: ir.Node, env: Env, filter_: bool) -> ir.Node:
        from kqlmagic_plus.language.compiler.parse_pattern import build_parse

        kind = "simple"
        flags = ""
        if c.KindClause is not None:
            kind = c.KindClause.Kind.text.lower()
            if c.KindClause.FlagsClause is not None:
                flags = c.KindClause.FlagsClause.Flags.text
        sc = self.row_scope(node, env)
        subject = coerce_to(self.expr(c.Expression, sc), T.STRING, pos(c.Expression))
        pattern = c.Pattern
        elements: list[tuple[str, Any]] = []
        if pattern.LeadingColumn is not None:
            elements.append(("col", self._parse_col(pattern.LeadingColumn)))
        for seg in pattern.Segments:
            if any(is_token(k) and k.getText() == "*" for k in children(seg)):
                elements.append(("star", None))
            elements.append(("text", L.string_value(seg.Text)))
            if seg.Column is not None:
                elements.append(("col", self._parse_col(seg.Column)))
        if pattern.TrailingStar is not None:
            elements.append(("star", None))
        regex, columns = build_parse(elements, kind, flags, pos(c))
        items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema]
        index = {n: i for i, (n, _) in enumerate(items)}
        matched = ir.Call(T.BOOL, "__parse_matches", (subject, ir.Lit(T.STRING, regex)))
        for i, (name, t) in enumerate(columns):
            e = ir.Call(
                t, "__parse_group", (subject, ir.Lit(T.STRING, regex), ir.Lit(T.LONG, i + 1), ir.Lit(T.STRING, kind))
            )
            if name in index:
                items[index[name]] = (name, e)
            else:
                index[name] = len(items)
                items.append((name, e))
        if filter_:
            node = ir.Filter(node.schema, node, matched, order=node.order)
        out = Schema([Column(n, e.type) for n, e in items])
        return ir.Select(out, node, items, order=node.order)

    def _parse_col(self, ctx: Any) -> tuple[str, str]:
        name = name_of(ctx.Name)
        t = T.type_from_word(ctx.Type.getText()) if ctx.Type is not None else T.STRING
        return name, t or T.STRING

    # -- evaluate ---------------------------------------------------------------------------------

    def op_EvaluateOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        call = collapse(c.PlugInCall)
        if rule(call) != "NamedFunctionCallExpression":
            raise Refusal("evaluate", pos(c))
        plugin = name_of(call.Name).lower()
        if plugin == "bag_unpack":
            return self.bag_unpack(call, c, node, env)
        raise Refusal(f"evaluate {plugin}", pos(c))

    def bag_unpack(self, call: Any, c: Any, node: ir.Node, env: Env) -> ir.Node:
        if c.SchemaClause is None:
            raise Refusal(
                "evaluate bag_unpack without an output schema",
                pos(c),
                "its columns depend on the data; give them: evaluate bag_unpack(col) : (*, a:string)",
            )
        args = list(call.Arguments)
        sc = self.row_scope(node, env)
        src_ctx = collapse(args[0])
        col = self.expr(args[0], sc)
        prefix = ""
        if len(args) > 1:
            p = self.expr(args[1], sc)
            prefix = p.value if isinstance(p, ir.Lit) and isinstance(p.value, str) else ""
        schema_cols = []
        star = False
        for k in children(c.SchemaClause.Schema):
            if not is_token(k) and rule(k) == "RowSchemaColumnDeclaration":
                schema_cols.append((name_of(k.Name), T.type_from_word(k.Type.getText()) or T.DYNAMIC))
        text = source(c.SchemaClause)
        star = "*" in text
        removed = name_of(src_ctx) if rule(src_ctx) in ("IdentifierName", "KeywordName", "EscapedName") else None
        items: list[tuple[str, ir.Expr]] = []
        if star:
            items = [(cl.name, ir.Col(cl.type, cl.name)) for cl in node.schema.visible if cl.name != removed]
        have = {n for n, _ in items}
        for name, t in schema_cols:
            if name in have:
                continue
            key = name[len(prefix) :] if prefix and name.startswith(prefix) else name
            e = ir.Call(T.DYNAMIC, "__path", (col, ir.Lit(T.STRING, key)))
            items.append((name, coerce_to(e, t, pos(c)) if t != T.DYNAMIC else e))
        return ir.Select(Schema([Column(n, e.type) for n, e in items]), node, items)

    # -- top-nested -------------------------------------------------------------------------------

    def op_TopNestedOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        from kqlmagic_plus.language.compiler.top_nested import lower_top_nested

        return lower_top_nested(self, list(c.Segments), node, env)

    def op_TopNestedOperatorPart(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        from kqlmagic_plus.language.compiler.top_nested import lower_top_nested

        return lower_top_nested(self, [c], node, env)

    # -- make-series ------------------------------------------------------------------------------

    def op_MakeSeriesOperator(self, c: Any, node: ir.Node, env: Env) -> ir.Node:
        params = self._params(c.Parameters)
        if str(params.get("kind", (None, "nonempty"))[1]).lower() != "nonempty" and "kind" in params:
            raise Refusal("make-series kind=" + str(params["kind"][1]), pos(c))
        sc = self.row_scope(node, env)
        agg_sc = Scope(node.schema, env, aggs=True)
        namer = Namer(skip=node.schema.names())
        aggs: list[tuple[str, ir.Agg, ir.Expr]] = []
        for a in c.Aggregations:
            e = self.expr(a.Expression.Expression, agg_sc)
            if not isinstance(e, ir.Agg):
                raise Refusal("make-series aggregate wrapped in an expression", pos(a))
            name = self._explicit_name(a.Expression) or aggregate_name(
                e.fn, [shape(x) for x in _call_args(a.Expression.Expression)]
            )
            default = (
                self.expr(a.Default.Value.Expression, Scope(None, env))
                if a.Default is not None
                else ir.Lit(e.type, 0 if e.type in T.NUMERIC else None)
            )
            aggs.append((namer.take(name), e, default))
        axis_ne = c.OnClause.Expression
        axis = self.expr(axis_ne.Expression, sc)
        axis_name = self._explicit_name(axis_ne) or syntax_name(shape(axis_ne.Expression)) or "Column1"
        if c.InRangeClause is not None:
            rc = c.InRangeClause
            start, stop, step = (
                self.expr(x.Expression, Scope(None, env))
                for x in (rc.FromExpression, rc.ToExpression, rc.StepExpression)
            )
        else:
            fc = c.FromToStepClause
            if fc.FromExpression is None or fc.ToExpression is None:
                raise Refusal("make-series without from/to", pos(c))
            start, stop, step = (
                self.expr(x.Expression, Scope(None, env))
                for x in (fc.FromExpression, fc.ToExpression, fc.StepExpression)
            )
        keys = []
        if c.ByClause is not None:
            for ne in c.ByClause.Expressions:
                e = self.expr(ne.Expression, sc)
                keys.append((self._name_for(ne, namer, extend=True), e))
        cols = [Column(n, e.type) for n, e in keys]
        cols += [Column(n, T.DYNAMIC) for n, _, _ in aggs]
        cols.append(Column(axis_name, T.DYNAMIC))
        return ir.MakeSeries(Schema(cols), node, aggs, (axis_name, axis), start, stop, step, keys)

    # -- names ------------------------------------------------------------------------------------

    def hidden_name(self) -> str:
        self._hidden += 1
        return f"{T.HIDDEN_PREFIX}{self._hidden}"

    def _explicit_name(self, ne: Any) -> str | None:
        if rule(ne) != "NamedExpression" or ne.Name is None:
            return None
        nc = ne.Name
        if nc.NameList is not None:
            return None
        return name_of(nc.Name)

    def _name_list(self, ne: Any) -> list[str] | None:
        if rule(ne) != "NamedExpression" or ne.Name is None or ne.Name.NameList is None:
            return None
        return [name_of(x) for x in ne.Name.NameList.Names]

    def _explicit_names(self, nes: list[Any]) -> list[str]:
        out = []
        for ne in nes:
            n = self._explicit_name(ne)
            if n:
                out.append(n)
        return out

    def _name_for(self, ne: Any, namer: Namer, extend: bool = False, print_: bool = False) -> str:
        explicit = self._explicit_name(ne)
        if explicit:
            return namer.take(explicit)
        base = syntax_name(shape(ne.Expression if rule(ne) == "NamedExpression" else ne))
        if print_ and base is None:
            k = int(namer.positional()[len("Column") :]) - 1
            return namer.take(f"print_{k}")
        return namer.take(base or namer.positional())

    # -- scalar expressions -----------------------------------------------------------------------

    def expr(self, ctx: Any, sc: Scope) -> ir.Expr:
        c = collapse(ctx)
        if is_token(c):
            return self.token_expr(c, sc)
        r = rule(c)
        h = getattr(self, "x_" + r, None)
        if h is None:
            raise Refusal(_construct_name(c), pos(c))
        return h(c, sc)

    def token_expr(self, tok: Any, sc: Scope) -> ir.Expr:
        raise Refusal(f"expression {tok.getText()!r}", Pos(tok.symbol.line, tok.symbol.column))

    def x_NamedExpression(self, c: Any, sc: Scope) -> ir.Expr:
        return self.expr(c.Expression, sc)

    def x_LogicalOrExpression(self, c: Any, sc: Scope) -> ir.Expr:
        parts = [self.expr(c.Left, sc)] + [self.expr(o.Right, sc) for o in c.Operations]
        return ir.Call(T.BOOL, "or", tuple(coerce_to(p, T.BOOL, pos(c)) for p in parts))

    def x_LogicalAndExpression(self, c: Any, sc: Scope) -> ir.Expr:
        parts = [self.expr(c.Left, sc)] + [self.expr(o.Right, sc) for o in c.Operations]
        return ir.Call(T.BOOL, "and", tuple(coerce_to(p, T.BOOL, pos(c)) for p in parts))

    def x_EqualityExpression(self, c: Any, sc: Scope) -> ir.Expr:
        if c.Tail is None:
            return self.expr(c.Left, sc)
        tail = c.Tail
        tr = rule(tail)
        op = tail.OperatorToken.text.lower()
        left = self.expr(c.Left, sc)
        if tr == "EqualsEqualityExpression":
            right = self.expr(tail.Right, sc)
            return compare("!=" if op == "<>" else op, left, right, pos(c))
        if tr == "BetweenEqualityExpression":
            lo = self.expr(tail.StartExpression, sc)
            hi = self.expr(tail.EndExpression, sc)
            if left.type == T.DATETIME and hi.type == T.TIMESPAN:
                hi = ir.Call(T.DATETIME, "+", (lo, hi))
            lo = coerce_pair(left, lo, pos(c))
            hi = coerce_pair(left, hi, pos(c))
            return ir.Call(T.BOOL, "between" if op == "between" else "!between", (left, lo, hi))
        if tr == "ListEqualityExpression":
            return self.in_list(op, left, tail, sc, pos(c))
        raise Refusal(op, pos(c))

    def in_list(self, op: str, left: ir.Expr, tail: Any, sc: Scope, where: Pos) -> ir.Expr:
        exprs = list(tail.Expressions)
        if tail.Subquery is not None:
            if self.is_tabular(tail.Subquery, sc.env):
                node = self.tabular(tail.Subquery, sc.env)
                return self._in_subquery(op, left, node, where)
            exprs = [tail.Subquery]
        items: list[ir.Expr] = []
        for x in exprs:
            xc = collapse(x)
            if len(exprs) == 1 and self.is_tabular(xc, sc.env) and op in ("in", "!in", "in~", "!in~"):
                node = self.tabular(xc, sc.env)
                return self._in_subquery(op, left, node, where)
            e = self.expr(x, sc)
            if isinstance(e, ir.Lit) and e.type == T.DYNAMIC:
                vals = e.value if isinstance(e.value, list) else [e.value]
                for v in vals:
                    items.append(python_literal(v, where))
                continue
            if isinstance(e, ir.Call) and e.fn == "pack_array" and all(isinstance(a, ir.Lit) for a in e.args):
                items.extend(e.args)
                continue
            if e.type == T.DYNAMIC:
                if len(exprs) != 1:
                    raise Refusal(f"{op} over a computed dynamic array among other values", pos(x))
                return self._in_dynamic(op, left, e, where)
            items.append(e)
        if op in ("has_any", "has_all"):
            left = coerce_to(left, T.STRING, where)
            return ir.Call(T.BOOL, op, (left, *(coerce_to(i, T.STRING, where) for i in items)))
        if op in ("in~", "!in~"):
            left = coerce_to(left, T.STRING, where)
            return ir.Call(T.BOOL, op, (left, *(coerce_to(i, T.STRING, where) for i in items)))
        if left.type == T.DYNAMIC and items:
            left = coerce_to(left, _scalar_kind(items[0].type), where)
        items = [coerce_pair(left, i, where) for i in items]
        return ir.Call(T.BOOL, op, (left, *items))

    def _in_dynamic(self, op: str, left: ir.Expr, arr: ir.Expr, where: Pos) -> ir.Expr:
        """Membership in a dynamic array computed at run time (a let of pack_array(...), a function
        parameter, toscalar(... make_set(...)))."""
        negated = op.startswith("!")
        base = op.lstrip("!")
        if base in ("has_any", "has_all"):
            call = ir.Call(T.BOOL, "__has_dyn", (coerce_to(left, T.STRING, where), arr,
                                                 ir.Lit(T.BOOL, base == "has_all")))
        else:
            ci = base == "in~"
            kind = T.REAL if left.type in T.NUMERIC else T.STRING
            subject = left if kind == T.REAL else coerce_to(left, T.STRING, where)
            call = ir.Call(T.BOOL, "__in_dyn", (subject, arr, ir.Lit(T.BOOL, ci)))
        return ir.not_(call) if negated else call

    def _in_subquery(self, op: str, left: ir.Expr, node: ir.Node, where: Pos) -> ir.Expr:
        if op not in ("in", "!in", "in~", "!in~"):
            raise Refusal(f"{op} with a subquery", where)
        vis = node.schema.visible
        if not vis:
            raise SemanticError("the subquery has no columns", where)
        if left.type == T.DYNAMIC:
            left = coerce_to(left, _scalar_kind(vis[0].type), where)
        return ir.InSubquery(T.BOOL, left, node, negated=op.startswith("!"), ci=op.endswith("~"))

    def x_StarEqualityExpression(self, c: Any, sc: Scope) -> ir.Expr:
        raise Refusal("* == ...", pos(c))

    def x_RelationalExpression(self, c: Any, sc: Scope) -> ir.Expr:
        left = self.expr(c.Left, sc)
        if c.Right is None:
            return left
        return compare(c.OperatorToken.text, left, self.expr(c.Right, sc), pos(c))

    def _fold(self, c: Any, sc: Scope) -> ir.Expr:
        acc = self.expr(c.Left, sc)
        for o in c.Operations:
            acc = arith(o.OperatorToken.text, acc, self.expr(o.Right, sc), pos(o))
        return acc

    x_AdditiveExpression = _fold
    x_MultiplicativeExpression = _fold

    def x_StringBinaryOperatorExpression(self, c: Any, sc: Scope) -> ir.Expr:
        left = self.expr(c.Left, sc)
        if c.Operation is None:
            return left
        o = c.Operation
        op = ":" if o.HasOperator is not None else o.Operator.OperatorToken.text.lower()
        name = _STRING_OPS.get(op)
        if name is None:
            raise Refusal(f"string operator {op}", pos(c))
        right = self.expr(o.Right, sc)
        if name == "matches regex" and not isinstance(right, ir.Lit):
            pass
        return ir.Call(T.BOOL, name, (coerce_to(left, T.STRING, pos(c)), coerce_to(right, T.STRING, pos(c))))

    def x_StringStarOperatorExpression(self, c: Any, sc: Scope) -> ir.Expr:
        op = c.Operator.OperatorToken.text.lower()
        name = _STRING_OPS.get(op)
        if name is None or sc.schema is None:
            raise Refusal(f"* {op}", pos(c))
        right = coerce_to(self.expr(c.Right, sc), T.STRING, pos(c))
        cols = [col for col in sc.schema.visible if col.type in (T.STRING, T.DYNAMIC, T.GUID)]
        if not cols:
            return ir.Lit(T.BOOL, False)
        parts = [
            ir.Call(T.BOOL, name, (coerce_to(ir.Col(col.type, col.name), T.STRING, pos(c)), right)) for col in cols
        ]
        return parts[0] if len(parts) == 1 else ir.Call(T.BOOL, "or", tuple(parts))

    def x_InvocationExpression(self, c: Any, sc: Scope) -> ir.Expr:
        e = self.expr(c.Expression, sc)
        if c.OperatorToken is not None and c.OperatorToken.text == "-":
            if isinstance(e, ir.Lit) and isinstance(e.value, (int, float)) and not isinstance(e.value, bool):
                return ir.Lit(e.type, -e.value)
            return ir.Call(e.type, "neg", (e,))
        return e

    def x_FunctionCallOrPathPathExpression(self, c: Any, sc: Scope) -> ir.Expr:
        root = c.Expression
        ops = list(c.Operations)
        if not ops:
            return self.expr(root, sc)
        rc = collapse(root)
        if not is_token(rc) and rule(rc) in ("IdentifierName", "KeywordName") and name_of(rc) in ("$left", "$right"):
            raise Refusal("$left/$right outside a join condition", pos(c))
        base = self.expr(root, sc)
        if base.type != T.DYNAMIC:
            raise SemanticError(f"path access (.name or [index]) needs a dynamic value, not {base.type}", pos(c))
        steps: list[ir.Expr] = []
        for o in ops:
            oc = collapse(o)
            r = rule(oc)
            if r == "FunctionCallOrPathPathOperation":
                steps.append(ir.Lit(T.STRING, name_of(oc.Name)))
            elif r in ("FunctionCallOrPathElementOperation", "LegacyFunctionCallOrPathElementOperation"):
                idx = self.expr(oc.Element, sc)
                if idx.type == T.DYNAMIC:
                    idx = coerce_to(idx, T.STRING, pos(oc))
                if idx.type not in (T.STRING, T.LONG, T.INT):
                    raise SemanticError(f"an index must be a string or a number, not {idx.type}", pos(oc))
                steps.append(idx)
            else:
                raise Refusal(_construct_name(oc), pos(oc))
        return ir.Call(T.DYNAMIC, "__path", (base, *steps))

    def x_ParenthesizedExpression(self, c: Any, sc: Scope) -> ir.Expr:
        if self.is_tabular(c.Expression, sc.env):
            raise SemanticError("a table where a scalar is expected (use toscalar(...))", pos(c))
        return self.expr(c.Expression, sc)

    def x_ToScalarExpression(self, c: Any, sc: Scope) -> ir.Expr:
        node = self.tabular(c.Expression, sc.env)
        vis = node.schema.visible
        if not vis:
            raise SemanticError("toscalar() of a table with no columns", pos(c))
        return ir.ScalarSubquery(vis[0].type, node)

    def x_IdentifierName(self, c: Any, sc: Scope) -> ir.Expr:
        return self.name_ref(name_of(c), sc, pos(c))

    x_KeywordName = x_IdentifierName
    x_ExtendedKeywordName = x_IdentifierName
    x_EscapedName = x_IdentifierName

    def name_ref(self, name: str, sc: Scope, where: Pos) -> ir.Expr:
        if sc.schema is not None:
            col = sc.schema.get(name)
            if col is not None:
                return ir.Col(col.type, name)
        b = sc.env.lookup(name)
        if isinstance(b, ir.Expr):
            return b
        if isinstance(b, (ir.Node, FunctionDef)):
            raise SemanticError(f"{name!r} is a table or function where a scalar is expected", where)
        if sc.schema is None:
            raise SemanticError(f"unknown name {name!r}", where)
        raise SemanticError(_no_column(name, sc.schema), where)

    def x_NamedFunctionCallExpression(self, c: Any, sc: Scope) -> ir.Expr:
        fname = name_of(c.Name)
        args = list(c.Arguments)
        where = pos(c)
        b = sc.env.lookup(fname)
        if isinstance(b, FunctionDef):
            if b.tabular_params or self._fn_is_tabular(b):
                raise SemanticError(f"{fname!r} returns a table where a scalar is expected", where)
            fenv = self._bind_args(b, args, None, sc.env, where, scope=sc)
            self._body_statements(b.body, fenv)
            return self.expr(b.body.Expression, Scope(sc.schema, fenv, sc.aggs, sc.serialized))
        low = fname.lower() if fname.lower() in ("makeset", "makelist", "argmax", "argmin", "any") else fname
        agg = lookup_aggregate(low)
        if agg is not None and (sc.aggs or lookup_scalar(fname) is None):
            if not sc.aggs:
                raise SemanticError(f"{fname}() is an aggregation: use it in summarize", where)
            inner = Scope(sc.schema, sc.env, aggs=False, serialized=sc.serialized)
            ir_args = [self.expr(a, inner) for a in args if rule(collapse(a)) != "StarExpression"]
            _check_arity(agg, len(ir_args), fname, where)
            ir_args = _apply_coercions(agg, ir_args, where)
            return ir.Agg(agg.result_type(ir_args), agg.name, tuple(ir_args))
        if fname in ("arg_max", "arg_min", "percentiles"):
            raise Refusal(f"{fname} inside an expression", where)
        special = getattr(self, "f_" + fname, None)
        if special is not None:
            return special(args, sc, where)
        f = lookup_scalar(fname) or (lookup_operator(fname) if fname == "not" else None)
        if f is None:
            raise Refusal(f"{fname}()", where, "unknown function")
        if f.window and not sc.serialized:
            raise SemanticError(f"{fname}() needs serialized rows: add | serialize or | sort by before it", where)
        ir_args = [self.expr(a, sc) for a in args]
        _check_arity(f, len(ir_args), fname, where)
        ir_args = _apply_coercions(f, ir_args, where)
        return ir.Call(f.result_type(ir_args), f.name, tuple(ir_args))

    def x_CountExpression(self, c: Any, sc: Scope) -> ir.Expr:
        if not sc.aggs:
            raise SemanticError("count() is an aggregation: use it in summarize", pos(c))
        if c.Expression is not None:
            e = self.expr(c.Expression, Scope(sc.schema, sc.env))
            return ir.Agg(T.LONG, "count", (e,))
        return ir.Agg(T.LONG, "count", ())

    def x_DotCompositeFunctionCallExpression(self, c: Any, sc: Scope) -> ir.Expr:
        raise Refusal("method-style call (x.f())", pos(c))

    # special scalar forms

    def f_toscalar(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        if not self.is_tabular(args[0], sc.env):
            return self.expr(args[0], sc)
        node = self.tabular(args[0], sc.env)
        return ir.ScalarSubquery(node.schema.visible[0].type, node)

    def f_columnifexists(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        name = self.literal(collapse(args[0])).value
        if sc.schema is not None and isinstance(name, str) and name in sc.schema:
            col = sc.schema.get(name)
            return ir.Col(col.type, name)  # type: ignore[union-attr]
        return self.expr(args[1], sc)

    def f_column_ifexists(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        return self.f_columnifexists(args, sc, where)

    def f_isnotempty(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        return ir.Call(T.BOOL, "isnotempty", (self.expr(args[0], sc),))

    def f_tostring(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        if len(args) != 1:
            raise SemanticError("tostring() takes one argument", where)
        return coerce_to(self.expr(args[0], sc), T.STRING, where, explicit=True)

    def f_iff(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        if len(args) != 3:
            raise SemanticError("iff() takes three arguments", where)
        cond = coerce_to(self.expr(args[0], sc), T.BOOL, where)
        a, b = self.expr(args[1], sc), self.expr(args[2], sc)
        a, b = unify_pair(a, b, where)
        return ir.Call(a.type if a.type != T.NULL else b.type, "iff", (cond, a, b))

    f_iif = f_iff

    def f_case(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        vals = [self.expr(a, sc) for a in args]
        if len(vals) < 3 or len(vals) % 2 == 0:
            raise SemanticError("case() takes condition/value pairs and an else value", where)
        branches = [*vals[1::2], vals[-1]]
        t = T.NULL
        for b in branches:
            t = T.unify(t, b.type) or _conflict(t, b.type, where)
        out = []
        for i, v in enumerate(vals):
            if i % 2 == 0 and i != len(vals) - 1:
                out.append(coerce_to(v, T.BOOL, where))
            else:
                out.append(coerce_to(v, t, where) if v.type != t and t != T.NULL else v)
        return ir.Call(t, "case", tuple(out))

    def f_datetime(self, args: list[Any], sc: Scope, where: Pos) -> ir.Expr:
        raise Refusal("datetime() with a computed value", where)

    # literals

    def literal(self, ctx: Any) -> ir.Lit:
        c = collapse(ctx)
        r = rule(c) if not is_token(c) else "Token"
        text = c.getText()
        try:
            if r == "LongLiteralExpression":
                return ir.Lit(T.LONG, L.long_value(text))
            if r == "IntLiteralExpression":
                return ir.Lit(T.INT, L.long_value(text))
            if r == "RealLiteralExpression":
                return ir.Lit(T.REAL, L.real_value(text))
            if r == "DecimalLiteralExpression":
                return ir.Lit(T.DECIMAL, L.decimal_value(text))
            if r == "DateTimeLiteralExpression":
                return ir.Lit(T.DATETIME, L.datetime_value(text))
            if r == "TimeSpanLiteralExpression":
                return ir.Lit(T.TIMESPAN, L.timespan_value(text))
            if r == "BooleanLiteralExpression":
                return ir.Lit(T.BOOL, L.bool_value(text))
            if r == "GuidLiteralExpression":
                return ir.Lit(T.GUID, L.guid_value(text))
            if r == "StringLiteralExpression":
                return ir.Lit(T.STRING, L.string_value(c))
            if r == "Token" and text[:1] in "\"'@hH`~":
                return ir.Lit(T.STRING, L.string_token(text))
            if r == "DynamicLiteralExpression":
                return ir.Lit(T.DYNAMIC, L.json_value(c.Value))
            if r == "TypeLiteralExpression":
                t = T.type_from_word(L.type_value(text))
                return ir.Lit(t or T.DYNAMIC, None)
            if r == "SignedLongLiteralExpression":
                v = L.long_value(c.LiteralToken.text)
                return ir.Lit(T.LONG, -v if c.SignToken.text == "-" and v is not None else v)
            if r == "SignedRealLiteralExpression":
                v = L.real_value(c.LiteralToken.text)
                return ir.Lit(T.REAL, -v if c.SignToken.text == "-" and v is not None else v)
        except (L.LiteralError, ValueError) as exc:
            raise SemanticError(f"bad literal {text!r}: {exc}", pos(c)) from None
        raise Refusal(f"literal {text}", pos(c))

    def _lit(self, c: Any, sc: Scope) -> ir.Expr:
        return self.literal(c)

    x_LongLiteralExpression = _lit
    x_IntLiteralExpression = _lit
    x_RealLiteralExpression = _lit
    x_DecimalLiteralExpression = _lit
    x_DateTimeLiteralExpression = _lit
    x_TimeSpanLiteralExpression = _lit
    x_BooleanLiteralExpression = _lit
    x_GuidLiteralExpression = _lit
    x_StringLiteralExpression = _lit
    x_DynamicLiteralExpression = _lit
    x_TypeLiteralExpression = _lit
    x_SignedLongLiteralExpression = _lit
    x_SignedRealLiteralExpression = _lit


class _OrderLost(Exception):
    pass


# -- shapes for implicit names ---------------------------------------------------------------------


def shape(ctx: Any) -> Any:
    """A small tuple describing an expression's syntax, for :func:`naming.syntax_name`."""
    c = collapse(ctx)
    if c is None:
        return None
    if is_token(c):
        return None
    r = rule(c)
    if r in ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName"):
        return ("col", name_of(c))
    if r == "NamedExpression":
        return shape(c.Expression)
    if r in ("LongLiteralExpression", "RealLiteralExpression", "IntLiteralExpression"):
        try:
            return ("num", float(c.getText()))
        except ValueError:
            return None
    if r == "FunctionCallOrPathPathExpression":
        base = shape(c.Expression)
        steps: list[Any] = []
        for o in c.Operations:
            oc = collapse(o)
            if rule(oc) == "FunctionCallOrPathPathOperation":
                steps.append(name_of(oc.Name))
            else:
                el = collapse(oc.Element)
                if not is_token(el) and rule(el) in ("LongLiteralExpression",):
                    steps.append(el.getText())
                elif not is_token(el) and rule(el) == "StringLiteralExpression":
                    steps.append(L.string_value(el))
                elif not is_token(el) and rule(el) == "InvocationExpression" and el.getText().lstrip("-").isdigit():
                    steps.append(el.getText())
                else:
                    steps.append(None)
        return ("path", base, steps)
    if r == "NamedFunctionCallExpression":
        return ("call", name_of(c.Name), [shape(a) for a in c.Arguments])
    if r == "CountExpression":
        return ("call", "count", [shape(c.Expression)] if c.Expression is not None else [])
    if r == "ArgumentExpression":
        return shape(rule_children(c)[0])
    return None


def _call_args(ctx: Any) -> list[Any]:
    c = collapse(ctx)
    if not is_token(c) and rule(c) == "NamedFunctionCallExpression":
        return list(c.Arguments)
    return []


# -- typing helpers --------------------------------------------------------------------------------


def _check_arity(f: Function, n: int, name: str, where: Pos) -> None:
    if not f.min_args <= n <= f.max_args:
        want = str(f.min_args) if f.min_args == f.max_args else f"{f.min_args} to {f.max_args}"
        raise SemanticError(f"{name}() takes {want} arguments, got {n}", where)


def _apply_coercions(f: Function, args: list[ir.Expr], where: Pos) -> list[ir.Expr]:
    if f.coerce is None:
        return args
    out = []
    for i, a in enumerate(args):
        target = f.coerce if isinstance(f.coerce, str) else (f.coerce[i] if i < len(f.coerce) else None)
        out.append(coerce_to(a, target, where) if target else a)
    return out


def _scalar_kind(t: str) -> str:
    return t if t != T.NULL else T.STRING


def coerce_to(e: ir.Expr, target: str | None, where: Pos, explicit: bool = False) -> ir.Expr:
    """Convert *e* to the KQL type *target* the way KQL does implicitly (dynamic -> scalar, numbers
    widen, literals convert)."""
    if target is None or e.type == target:
        return e
    t = e.type
    if t == T.NULL:
        return ir.Lit(target, None) if isinstance(e, ir.Lit) else e
    if target == T.STRING:
        if isinstance(e, ir.Lit) and t == T.GUID:
            return ir.Lit(T.STRING, e.value)
        if t == T.GUID:
            return e
        return ir.Call(T.STRING, "tostring", (e,))
    if target == T.DYNAMIC:
        if isinstance(e, ir.Lit):
            return ir.Lit(T.DYNAMIC, _dyn_value(e))
        return ir.Call(T.DYNAMIC, "__to_dynamic", (e,))
    if target in T.NUMERIC:
        if t in T.NUMERIC:
            if isinstance(e, ir.Lit) and e.value is not None:
                v = e.value
                return ir.Lit(target, float(v) if target == T.REAL else (int(v) if target in T.INTEGRAL else v))
            if target == T.LONG and t == T.INT:
                return e
            return ir.Call(
                target, {T.REAL: "toreal", T.LONG: "tolong", T.INT: "toint", T.DECIMAL: "todecimal"}[target], (e,)
            )
        if t in (T.DYNAMIC, T.STRING, T.BOOL):
            return ir.Call(
                target, {T.REAL: "toreal", T.LONG: "tolong", T.INT: "toint", T.DECIMAL: "todecimal"}[target], (e,)
            )
        if t == T.TIMESPAN and target == T.LONG:
            return e
    if target == T.BOOL and t in (T.DYNAMIC, T.STRING, *T.NUMERIC):
        return ir.Call(T.BOOL, "tobool", (e,))
    if target == T.DATETIME and t in (T.DYNAMIC, T.STRING):
        if isinstance(e, ir.Lit) and isinstance(e.value, str):
            us = L.parse_datetime_text(e.value)
            if us is not None:
                return ir.Lit(T.DATETIME, us)
        return ir.Call(T.DATETIME, "todatetime", (e,))
    if target == T.TIMESPAN and t in (T.DYNAMIC, T.STRING):
        return ir.Call(T.TIMESPAN, "totimespan", (e,))
    if target == T.TIMESPAN and t in T.INTEGRAL and isinstance(e, ir.Lit):
        return e
    if target == T.GUID and t == T.STRING:
        return e
    raise SemanticError(f"expected a {target} value, got {t}", where)


def _dyn_value(e: ir.Lit) -> Any:
    if e.value is None:
        return None
    if e.type == T.DATETIME:
        return L.format_datetime_iso(e.value).replace(" ", "T") + "Z"
    if e.type == T.TIMESPAN:
        return L.format_timespan(e.value)
    if e.type == T.DECIMAL:
        return float(e.value)
    return e.value


def python_literal(value: Any, pos: Pos | None) -> ir.Lit:
    """A Python value (a query parameter, an element of a dynamic literal) as a typed literal."""
    import datetime as _dt
    import decimal as _dec

    if value is None:
        return ir.Lit(T.NULL, None)
    if isinstance(value, bool):
        return ir.Lit(T.BOOL, value)
    if isinstance(value, int):
        return ir.Lit(T.LONG, value)
    if isinstance(value, float):
        return ir.Lit(T.REAL, value)
    if isinstance(value, _dec.Decimal):
        return ir.Lit(T.DECIMAL, value)
    if isinstance(value, str):
        return ir.Lit(T.STRING, value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
        delta = value - _dt.datetime(1970, 1, 1)
        return ir.Lit(T.DATETIME, (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    if isinstance(value, _dt.timedelta):
        return ir.Lit(T.TIMESPAN, (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds)
    if isinstance(value, (list, dict, tuple)):
        return ir.Lit(T.DYNAMIC, list(value) if isinstance(value, tuple) else value)
    raise SemanticError(f"cannot use a {type(value).__name__} value in a query", pos)


def convert_literal(e: ir.Expr, t: str | None, where: Pos) -> ir.Expr:
    if t is None:
        return e
    if isinstance(e, ir.Lit) and e.type == T.STRING and t in (T.DATETIME, T.TIMESPAN, T.GUID):
        if e.value is None:
            return ir.Lit(t, None)
        if t == T.DATETIME:
            us = L.parse_datetime_text(e.value)
            if us is None:
                raise SemanticError(f"{e.value!r} is not a datetime", where)
            return ir.Lit(t, us)
        if t == T.TIMESPAN:
            return ir.Lit(t, L.parse_timespan_text(e.value))
        return ir.Lit(t, e.value)
    return coerce_to(e, t, where)


def _conflict(a: str, b: str, where: Pos) -> str:
    raise SemanticError(f"the branches have different types ({a} and {b})", where)


def unify_pair(a: ir.Expr, b: ir.Expr, where: Pos) -> tuple[ir.Expr, ir.Expr]:
    t = T.unify(a.type, b.type)
    if t is None:
        if T.DYNAMIC in (a.type, b.type):
            return coerce_to(a, T.DYNAMIC, where), coerce_to(b, T.DYNAMIC, where)
        raise SemanticError(f"the branches have different types ({a.type} and {b.type})", where)
    return (
        coerce_to(a, t, where) if a.type not in (t, T.NULL) and not (a.type in T.INTEGRAL and t == T.LONG) else a,
        coerce_to(b, t, where) if b.type not in (t, T.NULL) and not (b.type in T.INTEGRAL and t == T.LONG) else b,
    )


def coerce_pair(anchor: ir.Expr, other: ir.Expr, where: Pos) -> ir.Expr:
    """Bring *other* to a type comparable with *anchor*."""
    ta, tb = anchor.type, other.type
    if ta == tb or tb == T.NULL or ta == T.NULL:
        return other
    if ta in T.NUMERIC and tb in T.NUMERIC:
        return other
    if {ta, tb} <= {T.STRING, T.GUID}:
        return other
    if tb == T.DYNAMIC:
        return coerce_to(other, ta, where)
    if ta == T.DATETIME and tb == T.STRING:
        return coerce_to(other, T.DATETIME, where)
    if ta == T.TIMESPAN and tb in T.INTEGRAL and isinstance(other, ir.Lit):
        return other
    raise SemanticError(f"cannot compare {ta} with {tb}", where)


def compare(op: str, a: ir.Expr, b: ir.Expr, where: Pos) -> ir.Expr:
    if a.type == T.DYNAMIC and b.type != T.DYNAMIC:
        a = coerce_to(a, _scalar_kind(b.type), where)
    elif b.type == T.DYNAMIC and a.type != T.DYNAMIC:
        b = coerce_to(b, _scalar_kind(a.type), where)
    elif a.type == T.DYNAMIC and b.type == T.DYNAMIC:
        a, b = coerce_to(a, T.STRING, where), coerce_to(b, T.STRING, where)
    # KQL converts a literal to the other side's type: `RemotePort == "3389"`, `IsLocal == 1`.
    if isinstance(b, ir.Lit) and b.value is not None:
        b = _convert_literal_for(a.type, b)
    if isinstance(a, ir.Lit) and a.value is not None:
        a = _convert_literal_for(b.type, a)
    b = coerce_pair(a, b, where)
    if a.type == T.STRING and b.type == T.DATETIME:
        a = coerce_to(a, T.DATETIME, where)
    if a.type == T.BOOL and b.type in T.NUMERIC and isinstance(b, ir.Lit):
        b = ir.Lit(T.BOOL, bool(b.value))
    return ir.Call(T.BOOL, op, (a, b))


def _convert_literal_for(t: str, lit: ir.Lit) -> ir.Lit:
    v = lit.value
    if t in T.NUMERIC and lit.type == T.STRING:
        try:
            f = float(str(v).strip())
        except ValueError:
            return lit
        return ir.Lit(T.REAL if t == T.REAL or not f.is_integer() else T.LONG, f if t == T.REAL else
                      (int(f) if f.is_integer() else f))
    if t == T.STRING and lit.type in T.NUMERIC and not isinstance(v, bool):
        return ir.Lit(T.STRING, str(v))
    if t == T.BOOL and lit.type in T.INTEGRAL and v in (0, 1):
        return ir.Lit(T.BOOL, bool(v))
    return lit


def arith(op: str, a: ir.Expr, b: ir.Expr, where: Pos) -> ir.Expr:
    ta, tb = a.type, b.type
    if ta == T.DYNAMIC:
        a, ta = coerce_to(a, T.REAL, where), T.REAL
    if tb == T.DYNAMIC:
        b, tb = coerce_to(b, T.REAL, where), T.REAL
    if (
        isinstance(a, ir.Lit)
        and isinstance(b, ir.Lit)
        and a.value is not None
        and b.value is not None
        and ta in T.INTEGRAL
        and tb in T.INTEGRAL
        and op in "+-*"
    ):
        v = {"+": a.value + b.value, "-": a.value - b.value, "*": a.value * b.value}[op]
        return ir.Lit(T.LONG, v)
    if ta in T.NUMERIC and tb in T.NUMERIC:
        rt = T.arithmetic_result(ta, tb)
    elif ta == T.NULL or tb == T.NULL:
        rt = tb if ta == T.NULL else ta
    elif ta == T.DATETIME and tb == T.DATETIME and op == "-":
        rt = T.TIMESPAN
    elif (ta == T.DATETIME and tb == T.TIMESPAN and op in "+-") or (
        ta == T.TIMESPAN and tb == T.DATETIME and op == "+"
    ):
        rt = T.DATETIME
    elif ta == T.TIMESPAN and tb == T.TIMESPAN:
        rt = T.REAL if op == "/" else T.TIMESPAN
    elif ta == T.TIMESPAN and tb in T.NUMERIC and op in "*/":
        rt = T.TIMESPAN
    elif tb == T.TIMESPAN and ta in T.NUMERIC and op == "*":
        a, b = b, a
        rt = T.TIMESPAN
    else:
        raise SemanticError(f"cannot apply {op} to {ta} and {tb}", where)
    return ir.Call(rt, op, (a, b))


def substitute(e: ir.Expr, defs: dict[str, ir.Expr]) -> ir.Expr:
    if isinstance(e, ir.Col) and e.name in defs:
        return defs[e.name]
    if isinstance(e, ir.Call):
        return ir.Call(e.type, e.fn, tuple(substitute(a, defs) for a in e.args))
    if isinstance(e, ir.Agg):
        return ir.Agg(e.type, e.fn, tuple(substitute(a, defs) for a in e.args))
    if isinstance(e, ir.InSubquery):
        return ir.InSubquery(e.type, substitute(e.expr, defs), e.node, e.negated, e.ci)
    return e


def _no_column(name: str, schema: Schema) -> str:
    from kqlmagic_plus.errors import closest_first

    near = closest_first(name, [c.name for c in schema.visible])[:5]
    return f"no column named {name!r}" + (f" (columns: {', '.join(near)})" if near else "")


def _granny(s: str) -> list[Any]:
    import re

    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", s)]


def _words(camel: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", " ", camel).lower()


def _construct_name(c: Any) -> str:
    """A readable name for a grammar construct: ``MvapplyOperator`` -> ``mv-apply``."""
    r = rule(c)
    special = {
        "MvapplyOperator": "mv-apply",
        "MvexpandOperator": "mv-expand",
        "ProjectAwayOperator": "project-away",
        "MakeSeriesOperator": "make-series",
        "TopNestedOperator": "top-nested",
        "ParseKvOperator": "parse-kv",
        "ParseWhereOperator": "parse-where",
        "ExternalDataExpression": "externaldata",
        "MakeGraphOperator": "make-graph",
        "GraphMatchOperator": "graph-match",
        "SampleDistinctOperator": "sample-distinct",
        "TopHittersOperator": "top-hitters",
        "PartitionByOperator": "partition-by",
        "ScanOperator": "scan",
        "FindOperator": "find",
        "SearchOperator": "search",
        "ForkOperator": "fork",
        "FacetByOperator": "facet",
        "ReduceByOperator": "reduce",
        "ConsumeOperator": "consume",
        "PartitionOperator": "partition",
        "MacroExpandOperator": "macro-expand",
        "AssertSchemaOperator": "assert-schema",
    }
    if r in special:
        return special[r]
    if r.endswith("Operator"):
        return _words(r[:-8]).replace(" ", "-")
    return _words(r.replace("Expression", "")) or r
