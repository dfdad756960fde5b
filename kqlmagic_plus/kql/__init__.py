"""Query-side helpers (tokens, deprecated names, render clauses, literals, the KQL compiler) — and,
called as a function, the Python API: ``kqlmagic_plus.kql(query, conn=None, params=None, **options)``.

The package's ``kql`` attribute is this module as soon as any ``kqlmagic_plus.kql.*`` module is
imported (that is how Python binds submodules), so the module itself is made callable: both
``kqlmagic_plus.kql("...")`` and ``kqlmagic_plus.kql.lexer`` always work.
"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    def __call__(self, query: str, conn: str | None = None, params: dict[str, Any] | None = None,
                 **options: Any) -> Any:
        """Run a KQL query and return a Result; see :func:`kqlmagic_plus.api.kql`."""
        from ..api import kql

        return kql(query, conn, params, **options)


sys.modules[__name__].__class__ = _CallableModule
