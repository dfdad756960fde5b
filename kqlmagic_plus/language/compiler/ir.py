"""The compiler's intermediate representation: typed expressions and tabular operators.

Lowering (``lower.py``) builds it from the parse tree with every name resolved and every type
known; emission (``emit.py``) turns it into one SQL tree per dialect. Nothing here knows SQL.

Expressions carry their KQL type. Operators carry their output ``schema`` and ``order``: the sort
keys (columns of the schema, possibly hidden) that define KQL's row order when the pipeline is
serialized, or ``None`` when the rows are unordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.language.compiler.types import BOOL, Schema

# -- expressions -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Expr:
    type: str


@dataclass(frozen=True, eq=False)
class Lit(Expr):
    """A constant. datetime and timespan values are integer microseconds (since the epoch / long);
    dynamic values are the JSON-compatible Python value; decimal values are ``decimal.Decimal``."""

    value: Any


@dataclass(frozen=True, eq=False)
class Col(Expr):
    name: str


@dataclass(frozen=True, eq=False)
class Call(Expr):
    """A scalar function or operator, by its name in the function catalog (``functions.py``)."""

    fn: str
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True, eq=False)
class Agg(Expr):
    """An aggregate, by its name in the aggregate catalog (``aggregates.py``)."""

    fn: str
    args: tuple[Expr, ...] = ()


@dataclass(frozen=True, eq=False)
class ScalarSubquery(Expr):
    """``toscalar(T | ...)``: the first column of the first row."""

    node: Node


@dataclass(frozen=True, eq=False)
class InSubquery(Expr):
    """``x in (T | project y)`` and its negated / case-insensitive forms."""

    expr: Expr
    node: Node
    negated: bool = False
    ci: bool = False


def lit(value: Any, type_: str) -> Lit:
    return Lit(type_, value)


def call(fn: str, type_: str, *args: Expr) -> Call:
    return Call(type_, fn, tuple(args))


def not_(e: Expr) -> Call:
    return Call(BOOL, "not", (e,))


def walk(e: Expr):
    """Every sub-expression of *e*, *e* first (not descending into subqueries)."""
    yield e
    if isinstance(e, (Call, Agg)):
        for a in e.args:
            yield from walk(a)
    elif isinstance(e, InSubquery):
        yield from walk(e.expr)


def columns_used(e: Expr) -> set[str]:
    return {x.name for x in walk(e) if isinstance(x, Col)}


# -- operators -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    column: str
    desc: bool
    nulls_first: bool


@dataclass(eq=False)
class Node:
    schema: Schema
    order: tuple[SortKey, ...] | None = field(default=None, kw_only=True)

    def inputs(self) -> list[Node]:
        return []


@dataclass(eq=False)
class Scan(Node):
    table: str


@dataclass(eq=False)
class External(Scan):
    """``externaldata``: a scan of the table the engine registers from :attr:`source` before the SQL runs."""

    source: Any = None


@dataclass(eq=False)
class Values(Node):
    """``datatable`` and ``print``: literal rows (``print`` has one row of expressions)."""

    rows: list[list[Expr]]


@dataclass(eq=False)
class Range(Node):
    start: Expr
    stop: Expr
    step: Expr


@dataclass(eq=False)
class Select(Node):
    """``project`` / ``extend`` / ``project-*``: the complete output list, in order."""

    input: Node
    items: list[tuple[str, Expr]]

    def inputs(self) -> list[Node]:
        return [self.input]


@dataclass(eq=False)
class Filter(Node):
    input: Node
    predicate: Expr

    def inputs(self) -> list[Node]:
        return [self.input]


@dataclass(frozen=True, eq=False)
class ArgPick:
    """``arg_max`` / ``arg_min``: the row extreme in *by*, its columns as (output name, expr)."""

    kind: str  # "max" | "min"
    by: Expr
    columns: tuple[tuple[str, Expr], ...]


@dataclass(eq=False)
class Aggregate(Node):
    """``summarize``: group keys then aggregates, each with its output name.

    An ``ArgPick`` item produces several output columns (its ``columns``)."""

    input: Node
    keys: list[tuple[str, Expr]]
    aggs: list[tuple[str, Agg | ArgPick]]

    def inputs(self) -> list[Node]:
        return [self.input]


@dataclass(eq=False)
class Sort(Node):
    input: Node
    keys: tuple[SortKey, ...]

    def inputs(self) -> list[Node]:
        return [self.input]


@dataclass(eq=False)
class Limit(Node):
    input: Node
    count: Expr

    def inputs(self) -> list[Node]:
        return [self.input]


@dataclass(eq=False)
class Join(Node):
    """A join on equality of key pairs. ``right_names`` maps each right column to its output name."""

    left: Node
    right: Node
    kind: str
    left_keys: list[Expr]
    right_keys: list[Expr]
    right_names: dict[str, str]
    #: Keys compare with IS NOT DISTINCT FROM (used by lowerings that join on group keys).
    null_safe: bool = False

    def inputs(self) -> list[Node]:
        return [self.left, self.right]


@dataclass(eq=False)
class Union(Node):
    """Each input's projection onto the union schema (missing columns are typed nulls)."""

    parts: list[tuple[Node, list[Expr]]]

    def inputs(self) -> list[Node]:
        return [p for p, _ in self.parts]


@dataclass(frozen=True)
class Expansion:
    column: str  # the output column (replaces the input column of that name, or appended)
    source: Expr  # the dynamic value expanded
    to_type: str  # the KQL type of the output column


@dataclass(eq=False)
class MvExpand(Node):
    input: Node
    expansions: list[Expansion]
    limit: int | None = None
    index_column: str | None = None
    #: A hidden ordinal column kept when the input is ordered, so the expansion stays in order.
    position_column: str | None = None

    def inputs(self) -> list[Node]:
        return [self.input]


@dataclass(eq=False)
class MakeSeries(Node):
    """``make-series``: per group, one array per aggregate over a fixed grid of bins."""

    input: Node
    aggs: list[tuple[str, Agg, Expr]]  # (name, aggregate, default value)
    axis: tuple[str, Expr]  # (name, expression of the bin axis)
    #: None without from/to: each series then runs from its first bin with data to its last.
    start: Expr | None
    stop: Expr | None
    step: Expr
    keys: list[tuple[str, Expr]]
    #: kind=nonempty: an empty input still gives one row of defaults (without by keys).
    nonempty: bool = False

    def inputs(self) -> list[Node]:
        return [self.input]


@dataclass(eq=False)
class ScanState(Node):
    """``scan`` with one step matching every row: per row, in order, each state column computed from the
    row and the previous row's state (``prev_prefix + name`` columns in the expressions; the declared
    initial values before the first row)."""

    input: Node
    state: list[tuple[str, Expr, Expr]]  # (name, initial value, the step's expression)
    prev_prefix: str

    def inputs(self) -> list[Node]:
        return [self.input]
