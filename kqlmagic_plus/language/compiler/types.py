"""KQL scalar types as the compiler sees them, and the schema that flows through a pipeline.

A schema is an ordered list of columns. Hidden columns (names starting with ``__kqlc_``) carry
values an operator needs later - sort keys a ``project`` dropped, a serialization ordinal - and
never reach the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kqlmagic_plus.kqltypes import normalize_type

BOOL, INT, LONG, REAL, DECIMAL = "bool", "int", "long", "real", "decimal"
STRING, DATETIME, TIMESPAN, DYNAMIC, GUID = "string", "datetime", "timespan", "dynamic", "guid"
#: The type of a literal ``null`` / an expression whose type is not known yet; it unifies with any.
NULL = "null"

NUMERIC = (INT, LONG, REAL, DECIMAL)
INTEGRAL = (INT, LONG)
HIDDEN_PREFIX = "__kqlc_"

#: Spellings the grammar's type tokens use (``typeof(int64)``, ``date``, ``uniqueid``...).
_TYPE_WORDS = {
    "bool": BOOL,
    "boolean": BOOL,
    "int": INT,
    "int8": INT,
    "int16": INT,
    "int32": INT,
    "uint": LONG,
    "uint8": INT,
    "uint16": INT,
    "uint32": LONG,
    "uint64": LONG,
    "ulong": LONG,
    "long": LONG,
    "int64": LONG,
    "real": REAL,
    "double": REAL,
    "float": REAL,
    "decimal": DECIMAL,
    "string": STRING,
    "datetime": DATETIME,
    "date": DATETIME,
    "timespan": TIMESPAN,
    "time": TIMESPAN,
    "dynamic": DYNAMIC,
    "guid": GUID,
    "uniqueid": GUID,
}


def type_from_word(word: str) -> str | None:
    return _TYPE_WORDS.get(word.strip().lower())


def canonical(name: str) -> str:
    """A schema's type spelling in canonical form (``System.Int64`` -> ``long``)."""
    return normalize_type(name)


def is_numeric(t: str) -> bool:
    return t in NUMERIC


def arithmetic_result(a: str, b: str) -> str:
    """The KQL result type of ``a op b`` for numbers: real wins, integers widen to long."""
    if REAL in (a, b):
        return REAL
    if DECIMAL in (a, b):
        return DECIMAL
    return LONG


def unify(a: str, b: str) -> str | None:
    """The common type of two branches (``iff``, ``case``, ``coalesce``), or None if they clash."""
    if a == b:
        return a
    if a == NULL:
        return b
    if b == NULL:
        return a
    if a in NUMERIC and b in NUMERIC:
        if a in INTEGRAL and b in INTEGRAL:
            return LONG
        return REAL if DECIMAL not in (a, b) else DECIMAL
    return None


@dataclass(frozen=True)
class Column:
    name: str
    type: str

    @property
    def hidden(self) -> bool:
        return self.name.startswith(HIDDEN_PREFIX)


class Schema:
    """An ordered, case-sensitive list of columns (KQL names are case-sensitive)."""

    __slots__ = ("_by_name", "columns")

    def __init__(self, columns: Iterable[Column]):
        self.columns: tuple[Column, ...] = tuple(columns)
        self._by_name = {c.name: c for c in self.columns}

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Schema:
        return cls(Column(n, t) for n, t in pairs)

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Column | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def visible(self) -> list[Column]:
        return [c for c in self.columns if not c.hidden]

    @property
    def hidden(self) -> list[Column]:
        return [c for c in self.columns if c.hidden]

    def __repr__(self) -> str:
        return "Schema(" + ", ".join(f"{c.name}:{c.type}" for c in self.columns) + ")"
