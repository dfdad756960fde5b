"""The exported Log Analytics lake: discovery, time pruning, file checks, schemas, DuckDB views.

The modules, one job each: :mod:`.layout` (containers, time folders, blobs), :mod:`.window` (the
time pruning rule, and the window a query's filter asks for), :mod:`.checks` (bad files),
:mod:`.schemas`, :mod:`.plans` (what a query reads, and the reports), :mod:`.views` (DuckDB) and
:mod:`.lake` (:class:`Lake`, which ties them).
"""

from kqlmagic_plus.lake.checks import SCAN_BELOW
from kqlmagic_plus.lake.lake import Lake
from kqlmagic_plus.lake.schemas import package_schemas, schema_for
from kqlmagic_plus.lake.window import DEFAULT_MAX_LATE, DEFAULT_SKEW, window_from_query

__all__ = ["DEFAULT_MAX_LATE", "DEFAULT_SKEW", "SCAN_BELOW", "Lake", "package_schemas", "schema_for",
           "window_from_query"]
