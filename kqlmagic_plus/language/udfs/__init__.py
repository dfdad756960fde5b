"""Python functions the compiled SQL calls where SQL cannot say it (H3 / S2 / geohash cells, polygons, xxhash...).

A registry kept as data: each :class:`Udf` is a plain Python scalar function with its KQL argument and result
types, under a SQL name that starts with ``kqlmp_``. The compiler emits a call with :func:`call`; an engine about
to run SQL registers the UDFs that SQL names (:func:`register_duckdb`, :func:`register_spark`), once per
connection or session. The implementations live in this package, one module per family, imported on first use
only (they pull in libraries such as h3 or shapely).

Null in, null out unless an implementation says otherwise (``nulls=True`` hands it the nulls). An implementation
returns None for input KQL answers with null (an invalid cell id, a malformed polygon); it never guesses.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PREFIX = "kqlmp_"

#: The implementation modules; each registers its functions with :func:`udf` when imported.
MODULES: tuple[str, ...] = ("geo_shapes", "series", "geo_cells", "ip", "mathfn", "text", "timezones", "parse",
                            "geo_approx", "useragent")


@dataclass(frozen=True)
class Udf:
    name: str
    fn: Callable[..., Any]
    args: tuple[str, ...]
    returns: str
    nulls: bool = False

    def __call__(self, *values: Any) -> Any:
        if not self.nulls and any(v is None for v in values):
            return None
        return self.fn(*values)


REGISTRY: dict[str, Udf] = {}
#: KQL function name -> implementation module, for modules not imported yet (filled by :func:`declare`).
_DECLARED: dict[str, str] = {}
_lock = threading.Lock()


def udf(name: str, args: tuple[str, ...] | list[str], returns: str, *, nulls: bool = False
        ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as the UDF ``kqlmp_<name>``."""
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        full = PREFIX + name
        REGISTRY[full] = Udf(full, fn, tuple(args), returns, nulls)
        return fn
    return deco


def sql_name(name: str) -> str:
    return PREFIX + name


def call(name: str, *args: Any) -> Any:
    """The sqlglot expression calling UDF *name* (without the prefix) on *args* (sqlglot expressions)."""
    from sqlglot import exp

    return exp.Anonymous(this=PREFIX + name, expressions=list(args))


def _load_all() -> None:
    for mod in MODULES:
        importlib.import_module(f"{__name__}.{mod}")


_NAMES = re.compile(r"\b" + PREFIX + r"\w+", re.I)


def used(sql: str) -> list[Udf]:
    """The registered UDFs *sql* calls."""
    names = {m.group(0).lower() for m in _NAMES.finditer(sql)}
    if not names:
        return []
    with _lock:
        _load_all()
    missing = names - set(REGISTRY)
    if missing:
        raise KeyError(f"no Python function registered for {sorted(missing)}")
    return [REGISTRY[n] for n in sorted(names)]


# -- DuckDB ------------------------------------------------------------------------------------------------

DUCKDB_TYPES = {"bool": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "real": "DOUBLE", "decimal": "DOUBLE",
                "string": "VARCHAR", "guid": "VARCHAR", "datetime": "TIMESTAMP", "timespan": "INTERVAL",
                "dynamic": "JSON"}


def register_duckdb(con: Any, sql: str) -> None:
    """Make every UDF *sql* calls callable on DuckDB connection *con* (each once per connection)."""
    todo = used(sql)
    if not todo:
        return
    import duckdb

    names = [u.name for u in todo]
    have = {r[0] for r in con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name IN (SELECT unnest(?))",
        [names]).fetchall()}
    for u in todo:
        if u.name not in have:
            con.create_function(u.name, _with_arity(u), [duckdb.sqltype(DUCKDB_TYPES[a]) for a in u.args],
                                duckdb.sqltype(DUCKDB_TYPES[u.returns]), null_handling="special",
                                side_effects=False)


def _with_arity(u: Udf) -> Callable[..., Any]:
    """*u* as a function of exactly its arguments (DuckDB counts the parameters of what it registers)."""
    import inspect

    def call_it(*values: Any) -> Any:
        return u(*values)

    call_it.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(f"a{i}", inspect.Parameter.POSITIONAL_ONLY) for i in range(len(u.args))])
    return call_it


# -- Spark -------------------------------------------------------------------------------------------------

def register_spark(spark: Any, sql: str) -> None:
    """Register every UDF *sql* calls on Spark session *spark* (temporary functions; once per session)."""
    todo = used(sql)
    if not todo:
        return
    from pyspark.sql import types as st

    kinds = {"bool": st.BooleanType(), "int": st.IntegerType(), "long": st.LongType(), "real": st.DoubleType(),
             "decimal": st.DoubleType(), "string": st.StringType(), "guid": st.StringType(),
             "datetime": st.TimestampType(), "timespan": st.DayTimeIntervalType(0, 3),
             "dynamic": st.StringType()}
    for u in todo:
        if not spark.catalog.functionExists(u.name):
            spark.udf.register(u.name, u, kinds[u.returns])
