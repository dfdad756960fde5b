"""The lowerer: statements, ``let`` bindings and functions, and the walk of tabular and scalar expressions.

What each pipe operator, tabular source and scalar construct becomes is not here but in the tables it
dispatches through (:data:`OPERATORS`, :data:`SOURCES`, :data:`EXPRESSIONS`); this class holds the state
one query's lowering shares (the tables, the parameters, the render spec, the hidden-name counter).
"""

from __future__ import annotations

from typing import Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.lower.coerce import coerce_to, convert_literal, literal, python_literal
from kqlmagic_plus.language.compiler.lower.expressions import EXPRESSIONS
from kqlmagic_plus.language.compiler.lower.messages import construct_name, words
from kqlmagic_plus.language.compiler.lower.operators import OPERATORS, SOURCES
from kqlmagic_plus.language.compiler.lower.scope import Env, FunctionDef, Lowered, Scope, shape
from kqlmagic_plus.language.compiler.naming import Namer, syntax_name
from kqlmagic_plus.language.compiler.parsetree import collapse, is_token, rule, rule_children, source
from kqlmagic_plus.language.compiler.syntax import (
    TABLE_CALL,
    Pos,
    Refusal,
    SemanticError,
    UnknownTable,
    name_of,
    pos,
)
from kqlmagic_plus.language.compiler.types import Schema

_IGNORED_PARAMS = ("hint.", "bin_legacy", "isfuzzy", "decodeblocks")
_NAME_RULES = ("IdentifierName", "KeywordName", "ExtendedKeywordName", "EscapedName")


class Lowerer:
    def __init__(self, text: str, tables: dict[str, Schema], params: dict[str, Any] | None = None):
        self.text = text
        self.tables = tables
        self.params = dict(params or {})
        self.render: str | None = None
        self._hidden = 0
        #: The externaldata sources lowered, by table name (the engine reads those the SQL names).
        self.external: dict[str, Any] = {}

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
                raise Refusal(words(r.replace("Declaration", "").replace("Statement", "")), pos(inner))
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
                env.vars[name] = convert_literal(literal(p.Default.Value), t, pos(p))
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
        if r in _NAME_RULES:
            name = name_of(c)
            b = env.lookup(name)
            if b is not None:
                return isinstance(b, ir.Node) or (isinstance(b, FunctionDef) and self.fn_is_tabular(b))
            return name in self.tables
        if r == "ParenthesizedExpression":
            return self.is_tabular(c.Expression, env)
        if r == "NamedFunctionCallExpression":
            fname = name_of(c.Name)
            if fname in ("materialize", "table", TABLE_CALL, "view", "database", "cluster"):
                return True
            b = env.lookup(fname)
            return isinstance(b, FunctionDef) and self.fn_is_tabular(b)
        return False

    def fn_is_tabular(self, f: FunctionDef) -> bool:
        if f.tabular_params:
            return True
        body = f.body
        env = f.env.child()
        for pname, t, _ in f.scalar_params:
            env.vars[pname] = ir.Lit(t, None)
        self.body_statements(body, env, classify=True)
        return body.Expression is not None and self.is_tabular(body.Expression, env)

    def body_statements(self, body: Any, env: Env, classify: bool = False) -> None:
        for st in rule_children(body):
            if rule(st) == "LetFunctionBodyStatement":
                inner = collapse(st)
                if not rule(inner).startswith("Let"):
                    continue
                if not classify:
                    self.let(inner, env)
                    continue
                try:
                    self.let(inner, env)
                except (Refusal, SemanticError):
                    # Only telling a table from a scalar here, with null parameters: a let those cannot lower
                    # (`let x = table(tableName) | ...`) is bound by its form; the call lowers it for real.
                    value = inner.Expression if rule(inner) not in ("LetFunctionDeclaration",
                                                                   "LetViewDeclaration") else None
                    tabular = value is None or rule(inner) == "LetMaterializeDeclaration" or \
                        self.is_tabular(value, env)
                    env.vars[name_of(inner.Name)] = ir.Scan(Schema([]), name_of(inner.Name)) if tabular else \
                        ir.Lit(T.DYNAMIC, None)

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
        if r in (*_NAME_RULES, "SimpleNameReference", "NameReferenceWithDataScope"):
            return self.table_ref(name_of(c), env, pos(c))
        if r == "ParenthesizedExpression":
            return self.tabular(c.Expression, env)
        if r == "BeforeOrAfterPipeOperator":
            return self.tabular(rule_children(c)[0], env)
        lower_source = SOURCES.get(r)
        if lower_source is None:
            raise Refusal(construct_name(c), pos(c))
        return lower_source(self, c, env)

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
        if fname == TABLE_CALL:
            return self.table_function(c, args, env)
        if fname == "view" and len(args) >= 1:
            target = literal(collapse(args[0]))
            if not isinstance(target.value, str):
                raise Refusal(f"{fname}() with a computed name", pos(c))
            return self.table_ref(target.value, env, pos(c))
        b = env.lookup(fname)
        if isinstance(b, FunctionDef):
            return self.expand_tabular_function(b, args, piped, env, pos(c))
        raise Refusal(f"{fname}()", pos(c), "not a tabular function this compiler knows")

    def table_function(self, c: Any, args: list[Any], env: Env) -> ir.Node:
        """``table(Name [, DataScope])``: the name must be a constant where the call is, a literal or a let /
        function parameter bound to one (a name read from the data is no table Kusto can resolve either)."""
        if not 1 <= len(args) <= 2:
            raise SemanticError(f"table() takes a name and an optional data scope, not {len(args)} arguments",
                                pos(c))
        consts = []
        for a in args:
            try:
                value = self.expr(a, Scope(None, env))
            except (SemanticError, Refusal):
                value = None
            if not isinstance(value, ir.Lit) or not isinstance(value.value, str):
                raise Refusal("table() with a name not known at compile time", pos(a),
                              "the name must be a constant string (a literal, or a let or parameter bound to one)")
            consts.append(value.value)
        if len(consts) == 2 and consts[1] not in ("all", "default"):
            # Only the whole table is here: no engine of this package keeps a hot cache to restrict to.
            raise Refusal(f"table() with data scope {consts[1]!r}", pos(args[1]))
        return self.table_ref(consts[0], env, pos(c))

    def expand_tabular_function(
        self, f: FunctionDef, args: list[Any], piped: ir.Node | None, env: Env, where: Pos
    ) -> ir.Node:
        fenv = self.bind_args(f, args, piped, env, where)
        self.body_statements(f.body, fenv)
        if f.body.Expression is None:
            raise SemanticError(f"function {f.name!r} has no body expression", where)
        return self.tabular(f.body.Expression, fenv)

    def bind_args(
        self, f: FunctionDef, args: list[Any], piped: ir.Node | None, env: Env, where: Pos, scope: Scope | None = None
    ) -> Env:
        fenv = f.env.child()
        queue: list[Any] = []
        named: dict[str, Any] = {}
        piped_slot = next((n for k, n in f.order if k == "tabular"), None) if piped is not None else None
        in_place = [n for _, n in f.order if n != piped_slot]
        for a in args:
            na = collapse(a)
            if rule(na) == "NamedExpression" and na.Name is not None and na.Name.NameList is None:
                # f(c=7, a=12): by name, in any order, after the positional ones.
                key = name_of(na.Name.Name)
                if not named and len(queue) < len(in_place) and in_place[len(queue)] == key:
                    # A name given in its own position may be followed by positional arguments, as Kusto
                    # reads checkLength(len=3, input).
                    queue.append(na.Expression)
                    continue
                if key not in {n for _, n in f.order}:
                    raise SemanticError(f"function {f.name!r} has no parameter {key!r}", pos(a))
                if key in named:
                    raise SemanticError(f"function {f.name!r} got {key!r} twice", pos(a))
                named[key] = na.Expression
            elif named:
                raise SemanticError(f"function {f.name!r}: a positional argument after a named one", pos(a))
            else:
                queue.append(a)
        first_table = next((n for k, n in f.order if k == "tabular"), None) if piped is not None else None
        names = [n for _, n in f.order if n != first_table]  # the slots positional arguments fill
        for kind, pname in f.order:
            if pname not in named:
                continue
            if pname in names and len(queue) > names.index(pname):
                raise SemanticError(f"function {f.name!r} got {pname!r} twice", where)
            ctx = named[pname]
            if kind == "tabular":
                fenv.vars[pname] = self.tabular(ctx, env)
                continue
            t = next(t for n, t, _ in f.scalar_params if n == pname)
            fenv.vars[pname] = self._bind_scalar(self.expr(ctx, scope or Scope(None, env)), t, pos(ctx), f, pname)
        for kind, pname in f.order:
            if pname in named:
                continue
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
                    fenv.vars[pname] = self._bind_scalar(self.expr(a, scope or Scope(None, env)), t, pos(a), f,
                                                         pname)
                elif default is not None:
                    fenv.vars[pname] = convert_literal(literal(default), t, where)
                else:
                    raise SemanticError(f"function {f.name!r} is missing argument {pname!r}", where)
        if queue:
            raise SemanticError(f"function {f.name!r} got too many arguments", where)
        return fenv

    @staticmethod
    def _bind_scalar(value: ir.Expr, t: str, where: Pos, f: FunctionDef, pname: str) -> ir.Expr:
        try:
            return coerce_to(value, t, where) if t != T.DYNAMIC or value.type == T.DYNAMIC else \
                coerce_to(value, T.DYNAMIC, where)
        except SemanticError as err:
            # A function's parameters are typed: say which one the argument does not fit (Kusto rejects it too).
            raise SemanticError(f"function {f.name!r}: parameter {pname!r} is {t}, the argument is {value.type}",
                                where) from err

    # -- operators --------------------------------------------------------------------------------

    def operator(self, ctx: Any, node: ir.Node, env: Env, last: bool = False) -> ir.Node:
        c = collapse(ctx)
        r = rule(c)
        if r == "RenderOperator":
            if not last:
                raise Refusal("render before the end of the query", pos(c))
            self.render = source(c)
            return node
        lower_operator = OPERATORS.get(r)
        if lower_operator is None:
            raise Refusal(construct_name(c), pos(c))
        return lower_operator(self, c, node, env)

    def parameters(self, params: list[Any]) -> dict[str, tuple[Any, Any]]:
        """An operator's ``name=value`` parameters by lower-case name (hints dropped)."""
        out = {}
        for p in params:
            key = p.NameToken.text.lower()
            if key.startswith(_IGNORED_PARAMS):
                continue
            out[key] = (p, p.NameValue.getText() if p.NameValue is not None else literal(p.LiteralValue).value)
        return out

    # -- names ------------------------------------------------------------------------------------

    def hidden_name(self) -> str:
        self._hidden += 1
        return f"{T.HIDDEN_PREFIX}{self._hidden}"

    def explicit_name(self, ne: Any) -> str | None:
        if rule(ne) != "NamedExpression" or ne.Name is None:
            return None
        nc = ne.Name
        if nc.NameList is not None:
            return None
        return name_of(nc.Name)

    def name_list(self, ne: Any) -> list[str] | None:
        if rule(ne) != "NamedExpression" or ne.Name is None or ne.Name.NameList is None:
            return None
        return [name_of(x) for x in ne.Name.NameList.Names]

    def explicit_names(self, nes: list[Any]) -> list[str]:
        out = []
        for ne in nes:
            n = self.explicit_name(ne)
            if n:
                out.append(n)
        return out

    def name_for(self, ne: Any, namer: Namer, extend: bool = False, print_: bool = False) -> str:
        explicit = self.explicit_name(ne)
        if explicit:
            return namer.take(explicit)
        form = shape(ne.Expression if rule(ne) == "NamedExpression" else ne)
        base = syntax_name(form)
        if print_ and isinstance(form, tuple) and form[:1] in (("col",), ("path",)):
            # print reads no table: a bare name is a let value, not a column, and is not named after
            # (let d = ...; print d is print_0).
            base = None
        if print_ and base is None:
            k = int(namer.positional()[len("Column") :]) - 1
            return namer.take(f"print_{k}")
        return namer.take(base or namer.positional())

    # -- scalar expressions -----------------------------------------------------------------------

    def expr(self, ctx: Any, sc: Scope) -> ir.Expr:
        c = collapse(ctx)
        if is_token(c):
            raise Refusal(f"expression {c.getText()!r}", Pos(c.symbol.line, c.symbol.column))
        r = rule(c)
        lower_expr = EXPRESSIONS.get(r)
        if lower_expr is None:
            raise Refusal(construct_name(c), pos(c))
        return lower_expr(self, c, sc)
