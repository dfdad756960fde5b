"""The exported Log Analytics lake: discovery, time pruning, file checks, schemas, DuckDB views."""

from kqlmagic_plus.lake.core import (
    DEFAULT_MAX_LATE,
    DEFAULT_SKEW,
    SCAN_BELOW,
    Lake,
    package_schemas,
    schema_for,
    window_from_query,
)

__all__ = ["DEFAULT_MAX_LATE", "DEFAULT_SKEW", "SCAN_BELOW", "Lake", "package_schemas", "schema_for",
           "window_from_query"]
