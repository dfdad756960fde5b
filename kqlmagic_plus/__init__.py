"""kqlmagic_plus: KQL and Spark hunting magics for Jupyter.

``%load_ext kqlmagic_plus`` registers ``%kql``/``%%kql`` and ``%sparkhunt``/``%%sparkhunt``. Loading
imports nothing heavy: pandas, duckdb, pyspark, plotly and the Azure clients load on first use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kqlmagic_plus._version import __version__

if TYPE_CHECKING:
    from kqlmagic_plus.results import Result

__all__ = ["__version__", "hunt", "kql", "load_ipython_extension", "schema", "unload_ipython_extension"]


def kql(query: str, conn: str | None = None, params: Mapping[str, Any] | None = None, **options: Any) -> Result:
    """Run a KQL query and return a Result; the options are :func:`kqlmagic_plus.api.kql`'s."""
    from kqlmagic_plus.api import kql as run_kql

    return run_kql(query, conn, params, **options)


def load_ipython_extension(ip: Any) -> None:
    from kqlmagic_plus.magics import load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.magics import compat

    compat.unregister_transformer(ip)
    connections().close_all()


def schema(conn: str | None = None, *, refresh: bool = False) -> dict[str, dict[str, str]]:
    """``{table: {column: KQL type}}`` of a connection (default: the current one), as ``%kql --schema``."""
    from kqlmagic_plus.api import schema as connection_schema

    return connection_schema(conn, refresh=refresh)


def hunt(name: str, **kwargs: Any) -> Result:
    """Run a built-in hunt (``beacon``, ``spray``, ``masquerade``); see :mod:`kqlmagic_plus.hunts`."""
    from kqlmagic_plus.hunts import run_hunt

    return run_hunt(name, **kwargs)
