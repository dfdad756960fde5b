"""What lowering sees: ``let`` environments, the scope of a scalar expression, and syntax shapes.

The lowest layer of the lowerer: every other module of the package builds on these, none of them
on anything above.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import literals as L
from kqlmagic_plus.language.compiler.parsetree import collapse, is_token, rule, rule_children
from kqlmagic_plus.language.compiler.syntax import name_of
from kqlmagic_plus.language.compiler.types import Schema

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
    #: scan's step names -> their state's columns (``s1.total`` reads the previous row's state).
    steps: dict[str, dict[str, ir.Expr]] | None = None
    #: The operator's input row where the scope also holds columns an extend defined before (pack_all reads it).
    operator_input: Schema | None = None


@dataclass
class Lowered:
    node: ir.Node
    render: str | None


def row_scope(node: ir.Node, env: Env, aggs: bool = False) -> Scope:
    return Scope(node.schema, env, aggs=aggs, serialized=node.order is not None)


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


def call_args(ctx: Any) -> list[Any]:
    c = collapse(ctx)
    if not is_token(c) and rule(c) == "NamedFunctionCallExpression":
        return list(c.Arguments)
    return []
