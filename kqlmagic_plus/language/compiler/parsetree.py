"""The vocabulary for reading ANTLR parse trees: rules, children, tokens and the text they span.

Pure functions of a context, with no knowledge of KQL's meaning, so the literal readers
(:mod:`.literals`) and the parsing layer (:mod:`.syntax`) can both use them.
"""

from __future__ import annotations

from typing import Any


def rule(ctx: Any) -> str:
    """The grammar rule of a context: ``WhereOperatorContext`` -> ``WhereOperator``."""
    name = type(ctx).__name__
    return name[:-7] if name.endswith("Context") else name


def source(ctx: Any) -> str:
    """The exact source text a context spans (``getText`` drops whitespace and comments)."""
    start, stop = ctx.start, ctx.stop
    if start is None or stop is None or stop.stop < start.start:
        return ""
    return start.getInputStream().getText(start.start, stop.stop)


def children(ctx: Any) -> list[Any]:
    return list(ctx.children or [])


def is_token(node: Any) -> bool:
    return not hasattr(node, "getRuleIndex")


def rule_children(ctx: Any) -> list[Any]:
    return [c for c in children(ctx) if not is_token(c)]


def tokens(ctx: Any) -> list[str]:
    return [c.getText() for c in children(ctx) if is_token(c)]


def collapse(ctx: Any) -> Any:
    """Follow chains of contexts with a single child context and no tokens of their own."""
    while ctx is not None and not is_token(ctx):
        kids = children(ctx)
        if len(kids) == 1 and not is_token(kids[0]):
            ctx = kids[0]
        else:
            break
    return ctx


def find_first(ctx: Any, rule_name: str) -> Any | None:
    if not is_token(ctx) and rule(ctx) == rule_name:
        return ctx
    for c in children(ctx):
        if not is_token(c):
            hit = find_first(c, rule_name)
            if hit is not None:
                return hit
    return None
