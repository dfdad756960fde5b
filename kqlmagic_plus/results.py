"""The Result: the one type every engine returns, and how it displays itself."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from kqlmagic_plus import kqltypes

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


@dataclass
class Result:
    """Rows a query returned, with what a reader needs to trust them.

    ``table`` holds every row in canonical Arrow form (see :mod:`kqlmagic_plus.kqltypes`);
    display shows ``display_limit`` of them, the Result keeps all.
    """

    table: pa.Table
    kql_types: list[str]
    query: str = ""
    #: Where it ran, secrets redacted.
    connection: str = ""
    engine: str = ""
    elapsed: float = 0.0
    #: True when the engine or service returned fewer rows than the query produced.
    truncated: bool = False
    #: Rows the query produced when known to differ from the rows kept (truncation).
    total_rows: int | None = None
    warnings: list[str] = field(default_factory=list)
    #: What actually ran (SQL for DuckDB/Spark, KQL for the services), for ``--show-query``.
    executed: str | None = None
    #: Parameters sent alongside ``executed``.
    parameters: dict[str, Any] = field(default_factory=dict)
    #: The render spec (``kqlmagic_plus.language.render.RenderSpec``) or None.
    render: Any = None
    display_limit: int = 100
    #: Whether `| render` draws its chart (``result.show_chart = False`` sets it; see :attr:`show_chart`).
    chart_on: bool = True
    from_cache: bool = False
    computed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    stats: dict[str, Any] = field(default_factory=dict)
    #: A plotly figure drawn below the table (a hunt's chart); not part of the rows or the cache.
    chart_below: Any = field(default=None, repr=False, compare=False)
    #: The name the service gave this table (``PrimaryResult``, ``Table_1``...), "" when it gave none.
    name: str = ""
    #: The service's further result tables (a query with several results), each a Result of its own;
    #: reach them through :attr:`tables` or :meth:`table_named`. Not kept in the cache.
    other_tables: list[Result] = field(default_factory=list, repr=False, compare=False)
    #: The parameters as the caller gave them (for :attr:`parametrized_query`); not kept in the cache.
    source_params: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: Runs the same query again, past the cache (set by the API; :meth:`refresh`).
    rerun: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.connection:  # engines give a target without secrets; this holds whoever built the Result
            from kqlmagic_plus.redaction import redact

            self.connection = redact(self.connection)

    # -- data ---------------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return self.table.num_rows

    @property
    def tables(self) -> list[Result]:
        """Every result table the query returned: this one first, then :attr:`other_tables`."""
        return [self, *self.other_tables]

    def table_named(self, name: str) -> Result:
        """The result table called *name* (KeyError naming the tables there are)."""
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(f"no result table named {name!r}; the tables are: "
                       + ", ".join(repr(t.name) for t in self.tables))

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names)

    @cached_property
    def df(self) -> pd.DataFrame:
        return self.to_dataframe()

    def to_dataframe(self) -> pd.DataFrame:
        """All rows as pandas: datetime -> tz-aware UTC, timespan -> timedelta, dynamic -> Python
        objects, long -> nullable Int64, guid -> str."""
        return kqltypes.to_pandas(self.table, self.kql_types)

    def to_arrow(self) -> pa.Table:
        return self.table

    @property
    def age(self) -> float:
        """Seconds since the rows were computed (matters for cached results)."""
        return (datetime.now(UTC) - self.computed_at).total_seconds()

    @cached_property
    def figure(self) -> Any:
        """The plotly Figure for the query's ``render`` clause (None without one)."""
        if self.render is None:
            return None
        from kqlmagic_plus.display import charts

        return charts.figure_for(self)

    def __len__(self) -> int:
        return self.row_count

    def __iter__(self):
        return iter(self.table.to_pylist())

    def __getitem__(self, key: Any) -> Any:
        return self.df[key]

    # -- Kqlmagic's result methods --------------------------------------------------------------------

    @property
    def show_chart(self) -> ChartSwitch:
        """True/False like a setting (``result.show_chart = False``), and callable like Kqlmagic's
        ``result.show_chart()``, which returns the chart."""
        return ChartSwitch(self)

    @show_chart.setter
    def show_chart(self, value: bool) -> None:
        self.chart_on = bool(value)

    def show_table(self) -> TableView:
        """The rows as a table (no chart), as Kqlmagic's ``result.show_table()`` shows them."""
        return TableView(self)

    def to_csv(self, path: Any = None, **kwargs: Any) -> str | None:
        """The rows as CSV (pandas' ``to_csv``; no index column): written to *path*, or returned."""
        kwargs.setdefault("index", False)
        return self.to_dataframe().to_csv(path, **kwargs)

    @property
    def completion_query_info(self) -> dict[str, Any]:
        """How the query completed: rows, seconds, truncation, warnings, and the engine's statistics."""
        return {"rows": self.row_count, "elapsed_seconds": self.elapsed, "truncated": self.truncated,
                "total_rows": self.total_rows, "warnings": list(self.warnings), "engine": self.engine,
                "from_cache": self.from_cache, **dict(self.stats or {})}

    @property
    def parametrized_query(self) -> str:
        """The query with its parameters as ``let`` statements (exact literals), as a reader would run it."""
        if not self.source_params:
            return self.query
        from kqlmagic_plus.language.params import bind

        return bind(self.query, self.source_params, "literal").query

    def refresh(self) -> Result:
        """Run the query again, past the cache, and return the new Result."""
        if self.rerun is None:
            raise RuntimeError("this result cannot be refreshed (it was not made by a query run here)")
        return self.rerun()

    # -- display ------------------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: rows, elapsed, engine, and any reason to doubt completeness."""
        parts = [f"{self.row_count:,} rows" if self.row_count != 1 else "1 row", f"{self.elapsed:.3f} s"]
        if self.engine:
            parts.append(self.engine)
        if self.from_cache:
            parts.append(f"from cache, computed {self.computed_at:%Y-%m-%d %H:%M:%S} UTC "
                         f"({_human_age(self.age)} ago)")
        if self.other_tables:
            parts.append(f"{len(self.tables)} tables (see .tables)")
        line = " · ".join(parts)
        if self.truncated:
            total = f" of {self.total_rows:,}" if self.total_rows else ""
            line += f" — TRUNCATED: {self.row_count:,}{total} rows returned"
        return line

    def _notices(self) -> list[str]:
        notes = list(self.warnings)
        if self.row_count > self.display_limit:
            notes.append(f"Showing the first {self.display_limit:,} of {self.row_count:,} rows "
                         f"(all rows are in .df).")
        return notes

    def _table_html(self, limit: int) -> str:
        shown = self.table.slice(0, limit)
        df = kqltypes.to_pandas(shown, self.kql_types)
        return df.to_html(index=False, border=0, classes="kqlmp-table", na_rep="", escape=True,
                          max_cols=None, notebook=False)

    def _tables_html(self) -> str:
        """Every result table, each under its name: a query with several results (``fork``, a
        service's Table_1, ...) shows them all, not only the first."""
        if not self.other_tables:
            return self._table_html(self.display_limit)
        parts = []
        for i, t in enumerate(self.tables):
            title = t.name or f"Table {i + 1}"
            rows = f"{t.row_count:,} rows" if t.row_count != 1 else "1 row"
            more = (f" (showing the first {self.display_limit:,})" if t.row_count > self.display_limit else "")
            parts.append(f'<div class="kqlmp-table-title" style="font-weight:bold;margin-top:0.6em">'
                         f'{html.escape(title)} · {rows}{more}</div>{t._table_html(self.display_limit)}')
        return "".join(parts)

    def _repr_html_(self) -> str:
        table_html = self._tables_html()
        head = f'<div class="kqlmp-summary" style="font-size:0.9em;color:#555">{html.escape(self.summary())}</div>'
        notes = "".join(
            f'<div class="kqlmp-notice" style="color:#a15c00;font-weight:bold">⚠ {html.escape(n)}</div>'
            for n in self._notices()
        )
        trunc = ""
        if self.truncated:
            trunc = ('<div class="kqlmp-truncated" style="color:#b00020;font-weight:bold">'
                     "⚠ The service truncated this result: rows are missing.</div>")
        bad = [x for x in self.stats.get("slices") or () if x.get("status") != "complete"]
        if bad:  # --split-by: a slice that failed or came back short is rows missing, in red
            trunc += ('<div class="kqlmp-slices-bad" style="color:#b00020;font-weight:bold">'
                      + "".join(f"⚠ Slice {html.escape(x['start'])} .. {html.escape(x['end'])}: "
                                f"{html.escape(x['status'].upper())}<br>" for x in bad) + "</div>")
        return f'<div class="kqlmp-result">{head}{trunc}{notes}{table_html}</div>'

    def __repr__(self) -> str:
        shown = self.table.slice(0, min(self.display_limit, 20))
        body = kqltypes.to_pandas(shown, self.kql_types).to_string(index=False, max_colwidth=60)
        extra = [f"... {self.row_count - shown.num_rows:,} more rows"] if self.row_count > shown.num_rows else []
        return "\n".join([self.summary(), *self.warnings, body, *extra])

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        if self.render is not None and self.show_chart:
            from kqlmagic_plus.display import charts

            chart = charts.mimebundle_for(self)
            if chart is not None:
                bundle.update(chart)
                return bundle
        bundle["text/html"] = self._repr_html_()
        if self.chart_below is not None and self.show_chart:
            from kqlmagic_plus.display import charts

            bundle["text/html"] += charts.figure_html(self.chart_below)
        return bundle


class ChartSwitch:
    """``result.show_chart``: behaves as the bool it is set to, and ``result.show_chart()`` returns the
    chart of the query's ``render`` clause (an error saying so when the query has none)."""

    __slots__ = ("_result",)

    def __init__(self, result: Result):
        self._result = result

    def __bool__(self) -> bool:
        return self._result.chart_on

    def __eq__(self, other: object) -> bool:
        return bool(self) == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(bool(self))

    def __call__(self) -> Any:
        fig = self._result.figure
        if fig is None:
            raise ValueError("this result has no chart: its query has no `| render ...` clause")
        return fig


class TableView:
    """A Result shown as its table only."""

    def __init__(self, result: Result):
        self._result = result

    def _repr_html_(self) -> str:
        return self._result._repr_html_()

    def __repr__(self) -> str:
        return repr(self._result)


def _human_age(seconds: float) -> str:
    s = int(seconds)
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def result_from_arrow(table: pa.Table, kql_types: list[str] | None = None, **kwargs: Any) -> Result:
    """Wrap any Arrow table as a Result, normalising its columns to the canonical KQL forms."""
    if kql_types is None:
        kql_types = [kqltypes.kql_type_of_arrow(f.type) for f in table.schema]
    return Result(table=kqltypes.canonical_table(table, kql_types), kql_types=kql_types, **kwargs)
