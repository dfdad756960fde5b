"""The registry scalar functions, operators and aggregates are looked up in.

An entry says how a KQL function is typed (``ret``), which conversions its arguments get
(``coerce``), and how it is emitted (``emit``, given the emitter and the IR call). The support
matrix in ``docs/`` is generated from these tables, so what is documented is what exists.

The entries are declared by the family modules (:mod:`.functions`, :mod:`.aggregates`), each in a
table of its own; this module gathers them, so the families never import it.
"""

from __future__ import annotations

from kqlmagic_plus.language.compiler import aggregates, functions
from kqlmagic_plus.language.compiler.entries import Function, RetRule

__all__ = ["AGGREGATES", "OPERATORS", "SCALARS", "Function", "RetRule", "lookup_aggregate", "lookup_operator",
           "lookup_scalar"]

SCALARS: dict[str, Function] = functions.SCALARS
AGGREGATES: dict[str, Function] = aggregates.TABLE.aggregates
OPERATORS: dict[str, Function] = functions.OPERATORS


def lookup_scalar(name: str) -> Function | None:
    return SCALARS.get(name)


def lookup_aggregate(name: str) -> Function | None:
    return AGGREGATES.get(name)


def lookup_operator(name: str) -> Function | None:
    return OPERATORS.get(name)
