"""The registry scalar functions, operators and aggregates are written into.

An entry says how a KQL function is typed (``ret``), which conversions its arguments get
(``coerce``), and how it is emitted (``emit``, given the emitter and the IR call). The support
matrix in ``docs/`` is generated from these tables, so what is documented is what exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RetRule = str | Callable[[list[Any]], str]


@dataclass
class Function:
    name: str
    min_args: int
    max_args: int
    ret: RetRule
    emit: Callable[..., Any]
    #: Per-argument target kind ("string", "real", "long", "datetime", "timespan", "dynamic",
    #: "bool") or None; a single string applies to every argument.
    coerce: tuple[str | None, ...] | str | None = None
    #: Dialects the function does not translate to, with the reason.
    refused: dict[str, str] = field(default_factory=dict)
    #: Needs the row order of a serialized input (prev, next, row_number...).
    window: bool = False
    aliases: tuple[str, ...] = ()
    category: str = "scalar"
    note: str = ""

    def result_type(self, args: list[Any]) -> str:
        return self.ret(args) if callable(self.ret) else self.ret


SCALARS: dict[str, Function] = {}
AGGREGATES: dict[str, Function] = {}
OPERATORS: dict[str, Function] = {}


def scalar(
    name: str,
    args: int | tuple[int, int],
    ret: RetRule,
    *,
    coerce: Any = None,
    aliases: tuple[str, ...] = (),
    refused: dict[str, str] | None = None,
    window: bool = False,
    category: str = "scalar",
    note: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    lo, hi = (args, args) if isinstance(args, int) else args

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        entry = Function(name, lo, hi, ret, f, coerce, dict(refused or {}), window, aliases, category, note)
        target = OPERATORS if category == "operator" else SCALARS
        target[name] = entry
        for a in aliases:
            target[a] = entry
        return f

    return deco


def aggregate(
    name: str,
    args: int | tuple[int, int],
    ret: RetRule,
    *,
    coerce: Any = None,
    aliases: tuple[str, ...] = (),
    refused: dict[str, str] | None = None,
    note: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    lo, hi = (args, args) if isinstance(args, int) else args

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        entry = Function(name, lo, hi, ret, f, coerce, dict(refused or {}), False, aliases, "aggregate", note)
        AGGREGATES[name] = entry
        for a in aliases:
            AGGREGATES[a] = entry
        return f

    return deco


def lookup_scalar(name: str) -> Function | None:
    _load()
    return SCALARS.get(name)


def lookup_aggregate(name: str) -> Function | None:
    _load()
    return AGGREGATES.get(name)


def lookup_operator(name: str) -> Function | None:
    _load()
    return OPERATORS.get(name)


_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from kqlmagic_plus.language.compiler import aggregates, functions  # noqa: F401 - registration side effects
