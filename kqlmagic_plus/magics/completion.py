"""KQL completion in ``%%kql`` / ``%%sparkhunt`` cells and ``%kql`` lines, through IPython's completer.

Registered at ``%load_ext`` as a Matcher API v2 matcher, so every frontend that sends the kernel a
``complete_request`` on Tab (JupyterLab, classic Notebook, VS Code, the terminal) gets it with no
extension. The words come from :mod:`kqlmagic_plus.language.completion` (pure); the tables from the
connection the cell runs on: DataFrames in the namespace, mounts, DuckDB and lake tables for the
local engine; a remote connection's schema once fetched (fetched in the background on first use, so
Tab never waits on the network); a Spark session's lake and catalog.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from IPython.core.completer import CompletionContext, SimpleCompletion, SimpleMatcherResult, context_matcher

_CELL = re.compile(r"\s*%%(kql|sparkhunt)\b(.*)")
_LINE = re.compile(r"^(\s*(?:[A-Za-z_][A-Za-z0-9_]*\s*=\s*)?)%kql\b")
#: Signatures of the last answer, by completion text, for the completer's ``signature`` field.
_last_signatures: dict[str, str] = {}
_fetching: set[int] = set()
_fetch_lock = threading.Lock()


def register(ip: Any) -> None:
    """Add the KQL matcher to the shell's completer (once), and carry function signatures to frontends."""
    completer = ip.Completer
    if any(getattr(m, "__name__", "") == "kql_matcher" for m in completer.custom_matchers):
        return
    completer.custom_matchers.append(kql_matcher)
    _carry_signatures(completer)


@context_matcher()
def kql_matcher(context: CompletionContext) -> SimpleMatcherResult:
    """Completions when the cursor is in KQL; nothing (other matchers answer) anywhere else."""
    found = kql_completions(context.full_text, context.cursor_line, context.cursor_position)
    if found is None:
        return {"completions": [], "suppress": False}
    fragment, candidates = found
    _last_signatures.clear()
    out = []
    for c in candidates:
        out.append(SimpleCompletion(c.text, type=c.kind))
        if c.detail:
            _last_signatures[c.text] = c.detail
    # In KQL, Python names (jedi, magics, paths) are noise: ours are the only answers.
    return {"completions": out, "suppress": True, "matched_fragment": fragment, "ordered": True}


def kql_completions(full_text: str, line: int, column: int) -> tuple[str, list[Any]] | None:
    """(the fragment being completed, candidates) when the cursor is in a KQL query, else None."""
    lines = full_text.split("\n")
    if line >= len(lines):
        return None
    offset = sum(len(x) + 1 for x in lines[:line]) + column
    # Kqlmagic notebooks put `# comment` lines above %%kql (the compat transformer drops them).
    first = next((i for i, x in enumerate(lines) if x.strip() and not x.lstrip().startswith("#")), 0)
    cell = _CELL.match(lines[first])
    if cell is not None:
        if line <= first:
            return None  # the magic line: options and connection, not KQL
        start = sum(len(x) + 1 for x in lines[:first + 1])
        magic, args = cell.group(1), cell.group(2)
        query, cursor = full_text[start:], offset - start
        schema = _kql_cell_schema(args) if magic == "kql" else _spark_cell_schema(args)
    else:
        hit = _LINE.match(lines[line])
        if hit is None:
            return None
        text = lines[line]
        args = text[hit.end():]
        query_at = _line_query_start(args)
        if query_at is None or column < hit.end() + query_at:
            return None
        query = args[query_at:]
        cursor = column - hit.end() - query_at
        schema = _kql_cell_schema(args[:query_at])
    if schema is None:
        return None
    from kqlmagic_plus.language.completion import complete

    result = complete(query, cursor, schema)
    return query[result.start:result.end], result.candidates


def _line_query_start(args: str) -> int | None:
    """Where the query starts in a ``%kql`` line's arguments (after the options), or None when there is none."""
    from kqlmagic_plus.errors import KqlMagicPlusError
    from kqlmagic_plus.options import parse_line

    try:
        opts, rest = parse_line(args)
    except (KqlMagicPlusError, ValueError):
        return None
    if "schema" in opts:
        return None
    if not rest:
        # `%kql ` and Tab: the query starts here (unless the line is only options, or a word is half typed)
        return len(args) if not opts and args[-1:].isspace() else None
    trimmed = args.rstrip()
    at = len(trimmed) - len(rest)
    return at if at >= 0 and args[at:].startswith(rest[:1]) else None


# -- schemas ------------------------------------------------------------------------------------------------


def _namespace() -> dict[str, Any]:
    from IPython import get_ipython

    ip = get_ipython()
    return ip.user_ns if ip is not None else {}


def _kql_cell_schema(args: str) -> dict[str, dict[str, str]] | None:
    """The tables of the connection a ``%%kql`` line names (or the current one)."""
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.errors import KqlMagicPlusError
    from kqlmagic_plus.options import parse_kql_line

    try:
        conn = parse_kql_line(args, cell="").conn if args.strip() else None
    except KqlMagicPlusError:
        conn = None
    ns = _namespace()
    if conn is not None and conn.isidentifier() and isinstance(ns.get(conn), str):
        conn = ns[conn]  # Kqlmagic's `-conn VAR`, read (never evaluated)
    try:
        engine = connections().peek(conn)
    except KqlMagicPlusError:
        engine = None
    if engine is None:
        return {}  # a remote connection not opened yet: nothing is known (and Tab never signs in)
    tables: dict[str, dict[str, str]] = {}
    if engine.name == "local":
        from kqlmagic_plus.engines.schemas import namespace_schemas

        tables.update(namespace_schemas(ns))
    tables.update(_schema_of(engine) or {})
    return tables


def _spark_cell_schema(args: str) -> dict[str, dict[str, str]] | None:
    """A ``%%sparkhunt`` KQL cell: the current session's lake and catalog; before a session exists, the
    lake folder the line binds (read from the files, no Spark started)."""
    from kqlmagic_plus.errors import KqlMagicPlusError
    from kqlmagic_plus.magics.sparkhunt import SPARK_OPTIONS
    from kqlmagic_plus.options import parse_line

    try:
        opts, _ = parse_line(args, SPARK_OPTIONS)
    except KqlMagicPlusError:
        opts = {}
    if opts.get("pyspark") or opts.get("sql"):
        return None  # Python or Spark SQL: not ours to complete
    from kqlmagic_plus.engines.spark.sessions import manager

    session = manager().peek()
    if session is not None and not opts.get("lake"):
        return _schema_of(_spark_engine(session)) or {}
    lake = opts.get("lake")
    if lake and "://" not in lake:
        return _lake_folder_schema(lake)
    return {}


_lakes: dict[str, Any] = {}


def _spark_engine(session: Any) -> Any:
    from kqlmagic_plus.sparkhunt import schema_engine

    return schema_engine(session)


def _lake_folder_schema(path: str) -> dict[str, dict[str, str]]:
    import os

    from kqlmagic_plus.errors import KqlMagicPlusError

    if not os.path.isdir(os.path.expanduser(path)):
        return {}
    try:
        lake = _lakes.get(path)
        if lake is None:
            from kqlmagic_plus.lake import Lake

            lake = _lakes[path] = Lake(os.path.expanduser(path))
        return {t: dict(lake.schema_for(t)) for t in lake.table_names()}
    except (KqlMagicPlusError, OSError):
        return {}


def _schema_of(engine: Any) -> dict[str, dict[str, str]] | None:
    """The engine's schema if it is at hand; a remote one not fetched yet is fetched in the background
    (once), so this completion offers what is known and the next one has the tables."""
    try:
        cached = engine.cached_table_schemas()
    except Exception:  # a locked DuckDB file, a dead session: Tab offers less, the next query says why
        return None
    if cached is not None:
        return cached
    with _fetch_lock:
        if id(engine) in _fetching:
            return None
        _fetching.add(id(engine))

    def fetch() -> None:
        try:
            engine.table_schemas()
        except Exception:
            pass
        finally:
            with _fetch_lock:
                _fetching.discard(id(engine))

    threading.Thread(target=fetch, name="kqlmp-schema", daemon=True).start()
    return None


# -- signatures ---------------------------------------------------------------------------------------------


def _carry_signatures(completer: Any) -> None:
    """IPython's Matcher API v2 has no field for a signature; fill Completion.signature for ours so a
    frontend shows ``substring(string, long[, long]) -> string`` beside the name."""
    original = completer.completions

    def completions(text: str, offset: int):
        for c in original(text, offset):
            if c.signature == "" and getattr(c, "_origin", "").endswith("kql_matcher"):
                c.signature = _last_signatures.get(c.text, "")
            yield c

    completer.completions = completions
