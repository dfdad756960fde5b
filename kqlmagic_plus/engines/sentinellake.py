"""The Microsoft Sentinel data lake's KQL endpoint, from any notebook (not only its own PySpark runtime).

The lake answers KQL through a Kusto REST endpoint (``https://api.securityplatform.microsoft.com/lake/kql``,
REST ``.../v2/rest/query``), so the real azure-kusto-data client and azure-identity sign-in serve it as they
serve ADX (:class:`~kqlmagic_plus.engines.adx.AdxEngine` does the work). What differs, here:

* the database is ``<workspace name>-<workspace id>``;
* lake tables are read through ``external_table("T")``: each table reference of the query (the start of a
  pipeline, a ``join``/``lookup``/``union`` operand; never a ``let`` name or a function parameter) is
  rewritten so, and the request's time window (``--timespan``, ``--start/--end``, a ``--split-by`` slice)
  becomes a filter on its ``TimeGenerated`` — the lake has no request-level timespan;
* what the lake does not run (``adx()``, ``arg()``, ``externaldata``, ``ingestion_time()``, cross-cluster
  and cross-workspace references) is refused by name, line and column before anything is sent;
* its caps (500,000 rows / 64 MB / minutes per interactive query) are explained with the ``--split-by``
  remedy.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.engines.adx import AdxEngine
from kqlmagic_plus.errors import KqlMagicPlusError, OptionError, QueryError, QueryTimeoutError

if TYPE_CHECKING:
    from kqlmagic_plus.connections.spec import ConnectionSpec
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import Result

LAKE_ENDPOINT = "https://api.securityplatform.microsoft.com/lake/kql"
#: ``workspace`` is the workspace id, as in Kqlmagic's loganalytics:// (``workspaceid`` is folded into it).
_KEYS = frozenset({"workspace", "workspacename", "database", "db", "endpoint", "tenant", "clientid",
                   "clientsecret", "certificate", "certificatepassword", "certificatethumbprint", "authority",
                   "cloud"})
#: Functions the lake does not run, and why (its documented limits).
UNSUPPORTED = {
    "adx": "cross-service queries to Azure Data Explorer",
    "arg": "Azure Resource Graph queries",
    "externaldata": "reading external files",
    "external_data": "reading external files",
    "ingestion_time": "ingestion times (lake records do not keep them)",
    "cluster": "cross-cluster references",
    "workspace": "cross-workspace references (connect to that workspace's lake database instead)",
    "app": "Application Insights references",
}
CAPS = ("the Sentinel data lake caps an interactive query at 500,000 rows, 64 MB and a few minutes")


class SentinelLakeEngine(AdxEngine):
    """One workspace's database on the Sentinel data lake's KQL endpoint."""

    name = "sentinellake"

    @classmethod
    def from_spec(cls, spec: ConnectionSpec) -> SentinelLakeEngine:
        from kqlmagic_plus.connections import auth

        spec.check_keys(_KEYS)
        database = spec.get("database") or spec.get("db")
        if not database:
            name = spec.get("workspacename")
            wid = spec.get("workspace")
            if not name or not wid:
                raise OptionError("sentinellake:// needs workspacename='<workspace name>' and workspaceid='<workspace "
                                  "id>' (its lake database is <name>-<id>), or database='<name>-<id>'")
            database = f"{name}-{wid}"
        endpoint = (spec.get("endpoint") or LAKE_ENDPOINT).rstrip("/")
        return cls(endpoint, database, sign_in=auth.sign_in_from_spec(spec))

    @property
    def target(self) -> str:
        from kqlmagic_plus.redaction import redact

        return f"sentinellake://{redact(self.cluster)}/{self.database}"

    def __repr__(self) -> str:
        return f"SentinelLakeEngine({self.target!r}, {self._sign_in!r})"

    def tables(self) -> list[str]:
        return []  # no management commands go to the lake (below): its tables are named in the query

    def _fetch_table_schemas(self) -> dict[str, dict[str, str]]:
        # Said, not an empty schema that would read as "no tables".
        raise QueryError("sentinellake:// fetches no schema: this connection sends only queries to the lake, "
                         "not management commands; name the lake tables in the query")

    def run(self, request: Request) -> Result:
        text = request.query
        if text.lstrip().startswith("."):
            raise QueryError("the Sentinel data lake runs queries, not management commands ('.show ...')")
        refuse_unsupported(text)
        rewritten = lake_query(text, request.window)
        try:
            result = super().run(request.with_(query=rewritten, window=None))
        except QueryTimeoutError as exc:
            raise QueryTimeoutError(f"{exc.message}; {CAPS}: run it in time slices with --split-by 1d "
                                    "(and a --timespan or --start/--end window)") from None
        except QueryError as exc:
            if "result" in exc.message.lower() and ("limit" in exc.message.lower() or "80DA0003" in exc.message):
                raise QueryError(f"{exc.message} ({CAPS})", hint="Run it in time slices: --split-by 1d with a "
                                 "--timespan or --start/--end window; each slice is checked for completeness."
                                 ) from None
            raise
        result.query = request.query
        if result.truncated:
            result.warnings.append(f"{CAPS[0].upper()}{CAPS[1:]}: the rows past it are missing.")
        return result


def refuse_unsupported(text: str) -> None:
    """QueryError naming the first function or reference the lake does not run, with its place."""
    from kqlmagic_plus.language.lexer import significant, tokenize

    toks = significant(tokenize(text))
    for i, tok in enumerate(toks):
        if tok.kind != "ident":
            continue
        name = tok.text.lower()
        followed = i + 1 < len(toks) and toks[i + 1].text == "("
        preceded = i > 0 and toks[i - 1].text == "."
        if name in UNSUPPORTED and (followed or name in ("externaldata", "external_data")) and not preceded:
            line = text.count("\n", 0, tok.start) + 1
            column = tok.start - (text.rfind("\n", 0, tok.start) + 1) + 1
            raise QueryError(f"'{tok.text}' at line {line}, column {column} is not available on the Sentinel data "
                             f"lake ({UNSUPPORTED[name]})")


def lake_query(text: str, window: Any = None) -> str:
    """*text* with each table reference read through ``external_table("T")``, filtered to *window*."""
    from kqlmagic_plus.language.compiler.syntax import ParseFailure, Refusal, parse

    try:
        tree = parse(text)
    except ParseFailure as exc:
        from kqlmagic_plus.errors import QuerySyntaxError

        raise QuerySyntaxError(f"{exc.message} at line {exc.pos.line}, column {exc.pos.column + 1}") from None
    except Refusal as exc:
        raise KqlMagicPlusError(f"the Sentinel data lake cannot run this: {exc.reason or exc.construct}") from None
    spans = sorted(_table_references(tree), reverse=True)
    out = text
    for start, stop, name in spans:
        out = out[:start] + _lake_table(name, window) + out[stop + 1:]
    return out


def table_names(text: str) -> list[str]:
    """The tables *text* reads (its plain table references, first use first); [] when it does not parse."""
    from kqlmagic_plus.language.compiler.syntax import ParseFailure, Refusal, parse

    try:
        tree = parse(text)
    except (ParseFailure, Refusal):
        return []
    names: list[str] = []
    for _, _, name in sorted(_table_references(tree)):
        if name not in names:
            names.append(name)
    return names


def _lake_table(name: str, window: Any) -> str:
    ref = f"external_table({json.dumps(name)})"
    if window is None or (window.start is None and window.end is None):
        return ref
    conds = []
    if window.start is not None:
        conds.append(f"TimeGenerated >= datetime({_iso(window.start)})")
    if window.end is not None:
        conds.append(f"TimeGenerated < datetime({_iso(window.end)})")
    return f"({ref} | where {' and '.join(conds)})"


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _table_references(tree: Any) -> list[tuple[int, int, str]]:
    """(start, stop, name) of every plain name used as a table: the source of a pipeline, or a join, lookup
    or union operand; let-bound names and function parameters are not tables."""
    from kqlmagic_plus.language.compiler.parsetree import children, is_token, rule, rule_children, source

    declared: set[str] = set()
    found: list[tuple[Any, str]] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        if is_token(node):
            continue
        r = rule(node)
        if r in ("LetVariableDeclaration", "LetFunctionDeclaration", "LetViewDeclaration",
                 "LetMaterializeDeclaration", "LetEntityGroupDeclaration"):
            first = next((c for c in rule_children(node)), None)
            if first is not None:
                declared.add(source(first).strip())
        elif r.endswith("Parameter") and rule_children(node):
            declared.add(source(rule_children(node)[0]).strip())
        if r == "BeforePipeExpression" or (r == "UnnamedExpression" and node.parentCtx is not None
                                           and rule(node.parentCtx) in ("JoinOperator", "LookupOperator")) \
                or r == "UnionOperatorExpression":
            name = _plain_name(node)
            if name is not None:
                found.append((node, name))
        todo.extend(children(node))
    return [(n.start.start, n.stop.stop, name) for n, name in found if name not in declared]


_EXTERNAL = re.compile(r"""^external_table\s*\(\s*(["'])([^"']+)\1\s*\)$""")


def _plain_name(node: Any) -> str | None:
    from kqlmagic_plus.language.compiler.parsetree import source

    text = source(node).strip()
    m = _EXTERNAL.match(text)
    if m:  # written by the user: rewritten the same way, so that the window applies to it too
        return m.group(2)
    if text.startswith("[") and text.endswith("]"):  # ['My Table']
        inner = text[1:-1].strip()
        if len(inner) >= 2 and inner[0] in "'\"" and inner[-1] == inner[0]:
            return inner[1:-1]
        return None
    if text.replace("_", "a").isalnum() and not text[0].isdigit():
        return text
    return None
