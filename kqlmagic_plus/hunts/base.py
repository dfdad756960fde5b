"""What a built-in hunt declares: its parameters, the table and columns it reads, and one
implementation per engine.

A hunt's engines share one plan: :mod:`kqlmagic_plus.hunts.sql` writes each step as SQL for both
DuckDB and Spark SQL from one template, so the arithmetic that decides which rows come out is
written once. Python only orders and types the (small) result, identically for every engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import OptionError

if TYPE_CHECKING:
    import pyarrow as pa

    from kqlmagic_plus.hunts.sql import Plan
    from kqlmagic_plus.results import Result

#: Parameter types and how a value of each reads from text (CLI, magic line) or Python.
PARAM_TYPES = ("int", "float", "str", "date", "choice", "list", "bool")


@dataclass(frozen=True)
class Param:
    """One hunt parameter. ``name`` is the Python keyword; the CLI spells it ``--name-with-dashes``."""

    name: str
    type: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    #: A short word for the value in usage text (``SECONDS``, ``DATE``).
    metavar: str | None = None

    def __post_init__(self) -> None:
        if self.type not in PARAM_TYPES:
            raise ValueError(f"parameter {self.name}: unknown type {self.type!r}")

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")

    def default_text(self) -> str:
        if self.default is None:
            return "none"
        if self.type == "list":
            return ",".join(self.default)
        return str(self.default)

    def parse(self, value: Any, hunt: str) -> Any:
        """*value* (Python, or text from a command line) as this parameter's type, or OptionError."""
        if value is None:
            return None
        where = f"{hunt} {self.cli}"
        try:
            out = _PARSERS[self.type](value, self)
        except (TypeError, ValueError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            raise OptionError(f"{where}: {value!r} is not a valid {self.type}{detail}") from None
        if self.type in ("int", "float"):
            if self.minimum is not None and out < self.minimum:
                raise OptionError(f"{where}: {value!r} is below the minimum {self.minimum:g}")
            if self.maximum is not None and out > self.maximum:
                raise OptionError(f"{where}: {value!r} is above the maximum {self.maximum:g}")
        return out


def _parse_int(value: Any, p: Param) -> int:
    if isinstance(value, bool):
        raise ValueError("")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("a whole number")
        return int(value)
    return int(str(value).strip()) if not isinstance(value, int) else value


def _parse_float(value: Any, p: Param) -> float:
    if isinstance(value, bool):
        raise ValueError("")
    out = float(str(value).strip().rstrip("s%") if isinstance(value, str) else value)
    if out != out or out in (float("inf"), float("-inf")):
        raise ValueError("a finite number")
    return out


def _parse_str(value: Any, p: Param) -> str:
    if not isinstance(value, str):
        raise ValueError("text")
    return value


def _parse_bool(value: Any, p: Param) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _parse_choice(value: Any, p: Param) -> str:
    text = str(value).strip().lower()
    if text not in p.choices:
        raise ValueError("use " + " or ".join(p.choices))
    return text


def _parse_list(value: Any, p: Param) -> tuple[str, ...]:
    items = re.split(r"[,\s]+", value.strip()) if isinstance(value, str) else [str(v).strip() for v in value]
    return tuple(i for i in items if i)


def _parse_date(value: Any, p: Param) -> date:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if text.lower() == "today":
        return datetime.now(UTC).date()
    return date.fromisoformat(text[:10])


_PARSERS: dict[str, Callable[[Any, Param], Any]] = {
    "int": _parse_int, "float": _parse_float, "str": _parse_str, "date": _parse_date, "choice": _parse_choice,
    "list": _parse_list, "bool": _parse_bool,
}


@dataclass(frozen=True)
class Column:
    """One output column: its name and KQL type."""

    name: str
    kql_type: str


@dataclass
class HuntRun:
    """What one engine produced: the rows (small, unordered), and facts for ``Result.stats``."""

    table: pa.Table
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class Hunt:
    """A built-in hunt. Subclasses set the class attributes and write :meth:`plan`."""

    name: str = ""
    title: str = ""
    #: A paragraph for ``HUNT --help``: what it finds and how.
    description: str = ""
    table: str = ""
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    columns: tuple[Column, ...] = ()
    #: Output order: (column, descending?) pairs; the last ones break ties.
    order: tuple[tuple[str, bool], ...] = ()

    # -- parameters ---------------------------------------------------------------------------------

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's value: *given* ones parsed, the rest their defaults. Unknown names are errors."""
        known = {p.name: p for p in self.params}
        out: dict[str, Any] = {}
        for key, value in given.items():
            name = key.replace("-", "_")
            if name not in known:
                from kqlmagic_plus.errors import closest_first

                near = closest_first(name, known)[:3]
                raise OptionError(f"{self.name}: unknown parameter {key!r}",
                                  hint=f"Parameters: {', '.join(near)} ... (see `{self.name} --help`)")
            out[name] = known[name].parse(value, self.name)
        for p in self.params:
            out.setdefault(p.name, p.default)
        return self.adjust(out, set(out) & {k.replace("-", "_") for k in given})

    def adjust(self, values: dict[str, Any], explicit: set[str]) -> dict[str, Any]:
        """Hook: derive or check parameter values together (after each was parsed alone)."""
        return values

    # -- running ------------------------------------------------------------------------------------

    def plan(self, values: Mapping[str, Any], source: Any) -> Plan:
        """The SQL steps for *values* over *source* (see :class:`kqlmagic_plus.hunts.sql.Plan`)."""
        raise NotImplementedError

    def finish(self, run: HuntRun, values: Mapping[str, Any]) -> HuntRun:
        """Hook: turn the engine's raw rows into the output columns (types, order)."""
        return run

    def figure(self, result: Result) -> Any:
        """A plotly figure for *result*, or None when the hunt has no chart."""
        return None

    # -- text ---------------------------------------------------------------------------------------

    def help_text(self) -> str:
        lines = [f"{self.name}: {self.title}", "", *_wrap(self.description), "",
                 f"Reads {self.table}: needs {', '.join(self.required)}"
                 + (f"; uses {', '.join(self.optional)} when present" if self.optional else "") + ".", "",
                 "Parameters:"]
        for p in self.params:
            kind = "|".join(p.choices) if p.choices else (p.metavar or p.type.upper())
            lines.append(f"  {p.cli} {kind}  (default: {p.default_text()})")
            lines.extend("      " + line for line in _wrap(p.help, 100))
        lines += ["", "Output columns: " + ", ".join(c.name for c in self.columns)]
        return "\n".join(lines)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "description": self.description, "table": self.table,
                "required": list(self.required), "optional": list(self.optional),
                "params": [{"name": p.name, "cli": p.cli, "type": p.type, "default": p.default,
                            "help": p.help, "choices": list(p.choices)} for p in self.params],
                "columns": [(c.name, c.kql_type) for c in self.columns]}


def _wrap(text: str, width: int = 104) -> list[str]:
    import textwrap

    out: list[str] = []
    for i, para in enumerate(text.strip().split("\n\n")):
        if i:
            out.append("")
        out.extend(textwrap.wrap(" ".join(para.split()), width) or [""])
    return out


def ordered(table: pa.Table, order: Sequence[tuple[str, bool]]) -> pa.Table:
    """*table* sorted by *order* (binary string order, NULLs last), the same on every engine."""
    import pyarrow.compute as pc

    if not order or table.num_rows < 2:
        return table
    keys = [(name, "descending" if desc else "ascending") for name, desc in order]
    return table.take(pc.sort_indices(table, sort_keys=keys))


def typed_output(raw: pa.Table, columns: Sequence[tuple[str, str, str]]) -> pa.Table:
    """The hunt's output from the engine's raw rows: one (name, raw column, kind) per output column, kind
    ``string``, ``long``, ``time`` (integer microseconds -> UTC timestamp) or ``/N`` (an integer the SQL scaled
    up by N, so both engines round alike, back to a real)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = {}
    for name, src, kind in columns:
        col = raw.column(src)
        if kind == "string":
            out[name] = col.cast(pa.string())
        elif kind == "long":
            out[name] = col.cast(pa.int64())
        elif kind == "time":
            out[name] = col.cast(pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        elif kind.startswith("/"):
            out[name] = pc.divide(col.cast(pa.float64()), pa.scalar(float(kind[1:])))
        else:
            raise ValueError(f"output kind {kind!r}")
    return pa.table(out)
