"""KQL scalar functions and operators, written once over the dialect primitives, one module per family.

Each family module declares its entries in a :class:`~kqlmagic_plus.language.compiler.entries.Table`
with their type rules; :mod:`..catalog` gathers the tables below into its lookups. An entry's
``emit(g, call, pred)`` returns a sqlglot expression. ``g`` is the emitter (``g.d`` the dialect,
``g.e(expr)`` emits an argument) and ``pred`` says the result is only ever used as a filter condition,
where SQL's NULL and FALSE mean the same thing and a ``COALESCE(..., FALSE)`` can be left out (it would
stop Spark pushing the filter into a Parquet scan).

String nulls: KQL strings are never null, an empty string is the missing value. A SQL NULL in a
string column therefore behaves as ``""`` wherever the difference shows.
"""

from __future__ import annotations

from kqlmagic_plus.language.compiler.entries import gather
from kqlmagic_plus.language.compiler.functions import (
    arrays,
    conversions,
    datetimes,
    dynamic,
    encoding,
    geo_approx,
    geo_cells,
    geo_shapes,
    ip,
    ip6,
    ip_text,
    logic,
    numeric,
    operators,
    parse_text,
    predicates,
    series,
    special,
    strings,
    text_extra,
    text_python,
    timezones,
    units,
    useragent,
    window,
    window_restart,
)
from kqlmagic_plus.language.compiler.functions.common import re_quote
from kqlmagic_plus.language.compiler.sqlexpr import case, timespan_text

__all__ = ["FAMILIES", "OPERATORS", "SCALARS", "case", "re_quote", "timespan_text"]

FAMILIES = (conversions, operators, predicates, strings, encoding, logic, numeric, datetimes, dynamic, ip, window,
            text_extra, text_python, units, arrays, series, geo_shapes, geo_cells,
            ip_text, ip6, special, timezones, parse_text, geo_approx, useragent, window_restart)

SCALARS = gather(f.TABLE.scalars for f in FAMILIES)
OPERATORS = gather(f.TABLE.operators for f in FAMILIES)
