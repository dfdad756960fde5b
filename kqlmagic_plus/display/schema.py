"""``%kql --schema``'s value: Kqlmagic's shape ``{table: {column: type}}`` that also draws itself.

A dict, so ``dbSchema = %kql --schema "alias"`` then ``dbSchema["SigninLogs"]["UserPrincipalName"]``
works as it does with Kqlmagic; in a notebook it shows as a collapsible tree of tables and columns
(HTML with no script, so it renders the same in JupyterLab, Notebook and VS Code).
"""

from __future__ import annotations

import html
from collections.abc import Mapping


class SchemaView(dict):
    """Tables -> columns -> KQL types of one connection."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]], connection: str = ""):
        super().__init__({t: dict(cols) for t, cols in tables.items()})
        #: The connection it describes (never credentials: an engine's target).
        self.connection = connection

    def __repr__(self) -> str:
        head = f"Schema of {self.connection}: " if self.connection else "Schema: "
        lines = [head + f"{len(self)} tables"]
        for table, cols in self.items():
            shown = ", ".join(f"{c}:{t}" for c, t in list(cols.items())[:8])
            more = f", ... (+{len(cols) - 8})" if len(cols) > 8 else ""
            lines.append(f"  {table} ({len(cols)}): {shown}{more}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        esc = html.escape
        parts = ['<div class="kqlmp-schema" style="font-family:monospace;font-size:12px">',
                 f"<div><b>{esc(self.connection or 'schema')}</b> — {len(self)} tables</div>"]
        for table, cols in self.items():
            rows = "".join(f"<tr><td style='padding:0 8px'>{esc(c)}</td><td style='color:#666'>{esc(t)}</td></tr>"
                           for c, t in cols.items())
            parts.append(f"<details><summary>{esc(table)} <span style='color:#666'>({len(cols)})</span></summary>"
                         f"<table>{rows}</table></details>")
        parts.append("</div>")
        return "".join(parts)
