"""``datetime_utc_to_local`` and ``datetime_local_to_utc``, by Python UDFs over the IANA time zone database
(:mod:`kqlmagic_plus.language.udfs.timezones`): neither engine's SQL reads a gap or an overlap as Kusto does."""

from __future__ import annotations

from sqlglot import exp

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table

TABLE = Table()
scalar = TABLE.scalar


def _convert(name: str) -> None:
    @scalar(name, 2, T.DATETIME, coerce=("datetime", "string"))
    def emit(g, c, pred):
        us = exp.Cast(this=g.d.ts_to_us(g.e(c.args[0])), to=g.d.sql_type(T.LONG))
        tz = exp.Cast(this=g.e(c.args[1]), to=g.d.sql_type(T.STRING))
        return g.d.us_to_ts(udfs.call(name, us, tz))


_convert("datetime_utc_to_local")
_convert("datetime_local_to_utc")
