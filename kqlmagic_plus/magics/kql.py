"""``%kql`` / ``%%kql``: parse the line once, hand it to the API, display.

Thin on purpose: everything below this module is plain Python (see :mod:`kqlmagic_plus.api`).
IPython's ``{var}``/``$var`` expansion is turned off for these magics: values reach a query only
through parameters, never by text substitution.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from kqlmagic_plus import errors
from kqlmagic_plus.config import settings
from kqlmagic_plus.magics.common import dict_variable, line_params, shown_query
from kqlmagic_plus.options import KQL_OPTIONS, parse_kql_line


@magics_class
class KqlMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def kql(self, line: str, cell: str | None = None) -> Any:
        """Run KQL. ``%kql --help`` lists the options."""
        if line.strip() in ("--help", "-h", "-help"):
            print(_help())
            return None
        parsed = parse_kql_line(line, cell)
        cfg = settings()
        errors.DEBUG = bool(parsed.debug or cfg.debug)
        ns = self.shell.user_ns
        if parsed.action == "connections":
            from kqlmagic_plus.engines.registry import connections

            return _Listing(connections().listing())
        from kqlmagic_plus import api
        from kqlmagic_plus.results import Result

        params, props = {}, None
        if parsed.action == "query":
            params = line_params(parsed.params_var, parsed.param_exprs, ns)
            if parsed.query_properties_var:
                props = dict_variable(ns, parsed.query_properties_var, "--query-properties")
        outcome = api.run_line(parsed, namespace=ns, params=params, query_properties=props)
        if isinstance(outcome, str):
            print(outcome)
            return None
        if not isinstance(outcome, Result):
            return outcome  # a cache command's report, or nothing
        if parsed.show_query or cfg.show_query or parsed.dry_run:
            print(shown_query(outcome))
        ns["_kql_raw_result_"] = outcome
        if parsed.out:
            ns[parsed.out] = outcome
        if parsed.quiet or parsed.dry_run:
            return None
        return outcome


class _Listing:
    """The open connections, shown as a small table (secrets redacted)."""

    def __init__(self, rows: list[tuple[str, str, bool]]):
        self.rows = rows

    def __repr__(self) -> str:
        if not self.rows:
            return "No connections yet (the default is local://)."
        return "\n".join(f"{'*' if cur else ' '} {alias or '-':<12} {conn}" for alias, conn, cur in self.rows)


def _help() -> str:
    lines = ["%kql [options] QUERY    |    %%kql [options] [connection]\\n<query>", "", "Options:"]
    for o in KQL_OPTIONS:
        alias = f" ({', '.join(o.aliases)})" if o.aliases else ""
        lines.append(f"  {o.long:<20} {o.help}{alias}")
    return "\n".join(lines)
