"""The exported Log Analytics lake: discovery, time pruning, file checks, schemas, DuckDB views.

The modules, one job each: :mod:`.layout` (containers, time folders, blobs), :mod:`.window` (the
time pruning rule, and the window a query's filter asks for), :mod:`.checks` (bad files),
:mod:`.schemas`, :mod:`.plans` (what a query reads, and the reports), :mod:`.views` (DuckDB) and
:mod:`.lake` (:class:`Lake`, which ties them).

Column names
------------
A table's columns are its package schema's, then the keys its files add, in the order first seen
(files in time order). JSON keys and KQL columns are case-sensitive, DuckDB and Spark names are not,
so keys that differ only in case are all kept, apart: the first spelling keeps its name (the table
schema's spelling, when it has one), and each later spelling is read as ``<spelling>_<n>``, the
smallest n >= 1 that no other column holds ignoring case. The Azure-Sentinel sample Syslog records
of Cisco ISE write ``ProcessID`` (Syslog's column) and those of Juniper SRX ``ProcessId``: in a lake
holding both, ``ProcessID`` reads the first and ``ProcessId_1`` the second. Every result over such
a table says so in its warnings; a query that names ``ProcessId`` as spelt is refused by name on the
local engine (DuckDB would bind it to ``ProcessID``) and told to write ``ProcessId_1``,
and Spark views (:mod:`kqlmagic_plus.engines.spark.lake`) use the same names.

Every record is read
--------------------
Small files are checked line by line; big ones are censused by DuckDB before they are read (see
:mod:`.checks`), so a column only in a file's middle, a record without TimeGenerated, a malformed
line, a record nested too deep for Python or too long for DuckDB's default object size never loses
data silently nor makes the table unqueryable: each skipped record, and each value read as empty,
is counted and named in the report's warnings.
"""

from kqlmagic_plus.lake.checks import SCAN_BELOW
from kqlmagic_plus.lake.lake import Lake
from kqlmagic_plus.lake.schemas import package_schemas, schema_for
from kqlmagic_plus.lake.window import DEFAULT_MAX_LATE, DEFAULT_SKEW, window_from_query

__all__ = ["DEFAULT_MAX_LATE", "DEFAULT_SKEW", "SCAN_BELOW", "Lake", "package_schemas", "schema_for",
           "window_from_query"]
