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
    show_chart: bool = True
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

    def _repr_html_(self) -> str:
        shown = self.table.slice(0, self.display_limit)
        df = kqltypes.to_pandas(shown, self.kql_types)
        table_html = df.to_html(index=False, border=0, classes="kqlmp-table", na_rep="", escape=True,
                                max_cols=None, notebook=False)
        head = f'<div class="kqlmp-summary" style="font-size:0.9em;color:#555">{html.escape(self.summary())}</div>'
        notes = "".join(
            f'<div class="kqlmp-notice" style="color:#a15c00;font-weight:bold">⚠ {html.escape(n)}</div>'
            for n in self._notices()
        )
        trunc = ""
        if self.truncated:
            trunc = ('<div class="kqlmp-truncated" style="color:#b00020;font-weight:bold">'
                     "⚠ The service truncated this result: rows are missing.</div>")
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
