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
from kqlmagic_plus.magics import compat, references
from kqlmagic_plus.magics.common import dict_variable, line_params, shown_query
from kqlmagic_plus.options import KQL_OPTIONS, KqlLine, parse_kql_line


@magics_class
class KqlMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def kql(self, line: str, cell: str | None = None) -> Any:
        """Run KQL. ``%kql --help`` lists the options."""
        answer = compat.command(line, _help())
        if answer is not None:
            print(answer)
            return None
        parsed = parse_kql_line(line, cell)
        cfg = settings()
        errors.DEBUG = bool(parsed.debug or cfg.debug)
        ns = self.shell.user_ns
        parsed, ref_params, took = _resolve_references(parsed, ns)
        compat.note_ignored(parsed.ignored)
        if parsed.action == "connections":
            from kqlmagic_plus.engines.registry import connections

            return _Listing(connections().listing())
        from kqlmagic_plus import api
        from kqlmagic_plus.results import Result

        params, props = {}, None
        if parsed.action == "query":
            params = line_params(parsed.params_var, parsed.param_exprs, ns)
            for name in ref_params:
                if name in params:
                    raise errors.OptionError(f"parameter {name!r} is given both by {{...}} in the query and by "
                                             "--param/--params; keep one")
            params.update(ref_params)
            if parsed.query_properties_var:
                props = dict_variable(ns, parsed.query_properties_var, "--query-properties")
        outcome = api.run_line(parsed, namespace=ns, params=params, query_properties=props)
        if isinstance(outcome, str):
            print(outcome + (" (" + ", ".join(took) + ")" if took else ""))
            return None
        if not isinstance(outcome, Result):
            return outcome  # a cache command's report, or nothing
        if parsed.show_query or cfg.show_query or parsed.dry_run:
            print(shown_query(outcome))
        ns["_kql_raw_result_"] = outcome
        if parsed.out:
            ns[parsed.out] = outcome
        if parsed.columns_to_vars:
            _columns_to_vars(outcome, ns)
        if parsed.quiet or parsed.dry_run:
            return None
        return outcome


def _resolve_references(parsed: KqlLine, ns: dict[str, Any]) -> tuple[KqlLine, dict[str, Any], list[str]]:
    """Kqlmagic's Python references on the line, looked up (never evaluated): ``-query VAR``, names in the
    connection string, ``{ref}`` in a line query. Returns the line, the parameters ``{ref}`` bound, and
    what was taken from where (for the connection line)."""
    from dataclasses import replace

    took: list[str] = []
    if parsed.query_ref:
        parsed = replace(parsed, query=references.str_variable(parsed.query_ref, ns, "-query"))
    if parsed.conn:
        conn, took = references.resolve_connection(parsed.conn, ns)
        if took:
            parsed = replace(parsed, conn=conn)
    ref_params: dict[str, Any] = {}
    if parsed.expand_references and parsed.query:
        query, ref_params = references.expand(parsed.query, ns)
        if query != parsed.query:
            parsed = replace(parsed, query=query)
    return parsed, ref_params, took


def _columns_to_vars(result: Any, ns: dict[str, Any]) -> None:
    """Kqlmagic's ``-c2lv``: each column as a variable of its name; a name the notebook needs (a builtin,
    ``In``) or no identifier is skipped and named."""
    from kqlmagic_plus.options import output_variable

    df, skipped = result.df, []
    for col in df.columns:
        try:
            ns[output_variable(str(col))] = df[col]
        except errors.OptionError:
            skipped.append(str(col))
    if skipped:
        print("-c2lv: not stored (not a free variable name): " + ", ".join(skipped))


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
