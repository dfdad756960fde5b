"""Built-in hunts, each runnable on DuckDB (embedded) and on Spark with the same rows.

>>> run_hunt("beacon", lake="/data/lake", end_date="2024-05-01")          # doctest: +SKIP
>>> run_hunt("beacon", engine="spark", lake="/data/lake", compat="notebook")  # doctest: +SKIP

Parameters are the hunt's own (``describe("beacon")`` lists them); the input is one of ``lake``
(an exported lake folder or a :class:`kqlmagic_plus.lake.Lake`, read only in the window's folders),
``table`` (a table of the engine: a table or view of the DuckDB connection given as ``session``, a
table of the Spark catalog) or ``dataframe`` (pandas, Arrow, or a Spark DataFrame on Spark).

Charts: a hunt's chart is ``figure(result)`` (a plotly Figure, or None): for ``beacon`` the gap
histograms of the flagged pairs, from ``result.stats["gap_histograms"]``.
"""

from __future__ import annotations

import contextlib
import importlib
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import OptionError

if TYPE_CHECKING:
    from kqlmagic_plus.hunts.base import Hunt
    from kqlmagic_plus.results import Result

#: Hunt name -> module defining ``HUNT``.
_MODULES = {"beacon": "beacon", "masquerade": "masquerade", "spray": "spray"}
ENGINES = ("duckdb", "spark")


def list_hunts() -> list[str]:
    return sorted(_MODULES)


def catalog() -> list[dict[str, str]]:
    """Each hunt's name, what it finds (its title) and the table it reads: what the listings show."""
    return [{"name": n, "title": h.title, "table": h.table} for n in list_hunts() for h in [get_hunt(n)]]


def get_hunt(name: str) -> Hunt:
    key = str(name).strip().lower()
    if key not in _MODULES:
        from kqlmagic_plus.errors import closest_first

        raise OptionError(f"no hunt named {name!r}", hint=f"Hunts: {', '.join(closest_first(key, _MODULES))}")
    return importlib.import_module(f".{_MODULES[key]}", __name__).HUNT


def describe(name: str) -> str:
    """The hunt's help: what it finds, its input, every parameter with its default, its output columns."""
    return get_hunt(name).help_text()


def figure(result: Result) -> Any:
    """The chart of a hunt's Result (plotly Figure), or None."""
    name = (result.stats or {}).get("hunt")
    if not name:
        return None
    return get_hunt(name).figure(result)


def run_hunt(
    name: str,
    *,
    engine: str = "duckdb",
    lake: Any = None,
    table: str | None = None,
    dataframe: Any = None,
    session: Any = None,
    **params: Any,
) -> Result:
    """Run hunt *name* on *engine* over one input; the flagged rows as a Result (``stats`` says what was read)."""
    from kqlmagic_plus.hunts import inputs
    from kqlmagic_plus.hunts import sql as _sql
    from kqlmagic_plus.hunts.base import HuntRun
    from kqlmagic_plus.hunts.sql import DIALECTS, run_spark
    from kqlmagic_plus.results import result_from_arrow

    hunt = get_hunt(name)
    engine = str(engine).strip().lower()
    if engine not in ENGINES:
        raise OptionError(f"--engine {engine!r}: use duckdb or spark")
    values = hunt.resolve(params)
    inputs.pick_input(lake, table, dataframe)
    started = time.perf_counter()
    dialect = DIALECTS[engine]
    has_window = "end_date" in values and "lookback_days" in values
    window = None
    if has_window and (values["end_date"] is not None or lake is not None):
        end = values["end_date"] or datetime.now(UTC).date()
        values["end_date"] = end
        window = inputs.day_window(end, values["lookback_days"])

    if engine == "duckdb":
        con, owned = inputs.duckdb_connection(session)
        runner = lambda plan: _sql.run_duckdb(con, plan)  # noqa: E731
        make_source = lambda w: inputs.duckdb_source(  # noqa: E731
            con,
            hunt,
            lake=lake,
            table=table,
            dataframe=dataframe,
            window=w,
        )
        scalar = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        close = con.close if owned else (lambda: None)
    else:
        spark = inputs.spark_session(session)
        runner = lambda plan: run_spark(spark, plan)  # noqa: E731
        make_source = lambda w: inputs.spark_source(  # noqa: E731
            spark,
            hunt,
            lake=lake,
            table=table,
            dataframe=dataframe,
            window=w,
        )
        scalar = lambda sql: spark.sql(sql).collect()[0][0]  # noqa: E731
        close = lambda: None  # noqa: E731

    source = None
    try:
        source = make_source(window)
        if has_window and window is None:
            # A table or DataFrame: the window ends with the last day in the data.
            last = scalar(
                f"SELECT max({dialect.epoch_us(dialect.ident('TimeGenerated'), source.columns['TimeGenerated'])})"
                f" FROM {source.relation}"
            )
            if last is not None:
                end = inputs.to_dt(int(last)).date()
                values["end_date"] = end
                window = inputs.day_window(end, values["lookback_days"])
        plan = hunt.plan(values, source, dialect, window)
        outputs, executed = runner(plan)
    finally:
        if source is not None:
            with contextlib.suppress(Exception):
                source.close()
        close()

    stats: dict[str, Any] = {"hunt": hunt.name, "engine": engine, "input": source.kind if source else None}
    if window is not None:
        stats["window"] = {"start": inputs.to_dt(window[0]).isoformat(), "end": inputs.to_dt(window[1]).isoformat()}
    if source is not None and source.lake is not None:
        stats["lake"] = source.lake
    for key in ("stats", "work"):
        if key in outputs and outputs[key].num_rows:
            stats.update({k: v for k, v in outputs[key].to_pylist()[0].items()})
    if "histograms" in outputs:
        stats["_histograms"] = outputs["histograms"]
    run = hunt.finish(
        HuntRun(table=outputs["rows"], stats=stats, warnings=list(source.warnings) if source else []), values
    )
    warnings = list(run.warnings)
    if run.stats.get("rows_skipped"):
        warnings.append(f"{run.stats['rows_skipped']:,} rows without {', '.join(hunt.required)} were skipped")
    run.stats["seconds"] = round(time.perf_counter() - started, 3)
    return result_from_arrow(
        run.table,
        [c.kql_type for c in hunt.columns],
        query=f"hunt {hunt.name}",
        engine=engine,
        connection=f"{engine} ({source.kind})" if source else engine,
        elapsed=time.perf_counter() - started,
        executed=executed,
        parameters={k: _plain(v) for k, v in values.items()},
        stats=run.stats,
        warnings=warnings,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


__all__ = ["ENGINES", "describe", "figure", "get_hunt", "list_hunts", "run_hunt"]
