"""The catalog's entry type, and the table each family module declares its entries in.

A family module (``functions/strings.py``, ``aggregates.py`` ...) fills a :class:`Table` of its own and
never imports the catalog; :mod:`.catalog` imports the families and gathers their tables. The
dependency runs one way, so a family can be imported (and tested) without the whole catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.syntax import Refusal

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


class Table:
    """The scalar functions, operators and aggregates one family module defines."""

    def __init__(self) -> None:
        self.scalars: dict[str, Function] = {}
        self.operators: dict[str, Function] = {}
        self.aggregates: dict[str, Function] = {}

    def scalar(
        self,
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
            _put(self.operators if category == "operator" else self.scalars, entry)
            return f

        return deco

    def operator(self, name: str, args: int | tuple[int, int], ret: RetRule, **kw: Any):
        return self.scalar(name, args, ret, category="operator", **kw)

    def aggregate(
        self,
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
            _put(self.aggregates, entry)
            return f

        return deco

    def refused_everywhere(self, name: str, reason: str):
        @self.scalar(name, (0, 99), T.STRING, refused={"spark": reason, "duckdb": reason})
        def emit(g, c, pred):
            raise Refusal(name, reason=reason)

        return emit


def _put(table: dict[str, Function], entry: Function) -> None:
    """*entry* under its name and each of its aliases."""
    for key in (entry.name, *entry.aliases):
        table[key] = entry


def gather(tables: Iterable[dict[str, Function]]) -> dict[str, Function]:
    """One lookup table from the families' own; a name two families define is a mistake, not an override."""
    out: dict[str, Function] = {}
    for table in tables:
        for name, entry in table.items():
            if name in out:
                raise ValueError(f"{name!r} is defined by two function families")
            out[name] = entry
    return out
