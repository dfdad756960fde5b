"""``%kql`` / ``%%kql`` (and ``%sparkhunt`` / ``%%sparkhunt``): parse the line, dispatch, display.

Thin on purpose: everything below this module is plain Python (see :mod:`kqlmagic_plus.api`).
IPython's ``{var}``/``$var`` expansion is turned off for these magics: values reach a query only
through parameters, never by text substitution.
"""

from __future__ import annotations

from typing import Any

from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand

from kqlmagic_plus import errors
from kqlmagic_plus.config import settings
from kqlmagic_plus.connections.spec import connections
from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.options import CACHE_COMMANDS, KQL_OPTIONS, parse_line, parse_name_value


@magics_class
class KqlMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def kql(self, line: str, cell: str | None = None) -> Any:
        """Run KQL. ``%kql --help`` lists the options."""
        if line.strip() in ("--help", "-h", "-help"):
            print(_help())
            return None
        opts, rest = parse_line(line)
        cfg = settings()
        errors.DEBUG = bool(opts.get("debug") or cfg.debug)

        conn = opts.get("conn")
        query = cell if cell is not None else rest
        if opts.get("query") is not None:
            query = opts["query"]
        if cell is not None and rest.strip().startswith("+"):
            # Kqlmagic's request properties on the magic line (`%%kql +notruncation`) belong to the query.
            query = rest.strip() + "\n" + query
        elif cell is not None and rest.strip():
            # Kqlmagic style: `%%kql loganalytics://...` or `%%kql alias` on the first line.
            if conn is not None:
                raise OptionError(f"unexpected text on the magic line: {rest.strip()!r}")
            conn = rest.strip()
        elif cell is None and _looks_like_connection(rest):
            conn, query = rest.strip(), ""

        if "conn" in opts and opts["conn"] is None:
            return _Listing(connections().listing())

        if opts.get("cache") is not None or opts.get("replay") is not None:
            handled = self._cache_command(opts, rest if cell is None else "")
            if handled is not None or not query.strip():
                return handled

        if not query.strip():
            if conn is not None:
                _, engine = connections().resolve(conn, namespace=self.shell.user_ns)
                for item in opts.get("mount") or []:
                    name, path = parse_name_value(item, "--mount")
                    _mount(engine, name, path)
                print(f"Connected: {engine.target}")
                return None
            if opts.get("mount"):
                _, engine = connections().resolve(None)
                for item in opts["mount"]:
                    name, path = parse_name_value(item, "--mount")
                    _mount(engine, name, path)
                print("Mounted: " + ", ".join(parse_name_value(m, "--mount")[0] for m in opts["mount"]))
                return None
            raise OptionError("no query given. Usage: %kql [options] QUERY, or %%kql [options] with the "
                              "query in the cell; %kql --help lists the options")

        query, quiet = _strip_quiet(query)
        mounts = dict(parse_name_value(m, "--mount") for m in opts.get("mount") or [])
        params = self._params(opts)
        from kqlmagic_plus import api

        result = api.kql(
            query,
            conn=conn,
            params=params,
            namespace=self.shell.user_ns,
            mounts=mounts,
            timeout=opts.get("timeout"),
            timespan=opts.get("timespan"),
            start=opts.get("start"),
            end=opts.get("end"),
            dry_run=bool(opts.get("dry_run")),
            display_limit=opts.get("display_limit"),
            **_engine_options(opts, self.shell.user_ns),
        )
        if opts.get("no_chart"):
            result.show_chart = False
        if opts.get("show_query") or cfg.show_query or opts.get("dry_run"):
            print(_shown_query(result))
        self.shell.user_ns["_kql_raw_result_"] = result
        if opts.get("out"):
            target = opts["out"]
            if not target.isidentifier():
                raise OptionError(f"-o/--out needs a Python variable name, got {target!r}")
            self.shell.user_ns[target] = result
        if quiet or opts.get("dry_run"):
            return None
        return result

    def _params(self, opts: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if opts.get("params"):
            name = opts["params"]
            if name not in self.shell.user_ns:
                raise OptionError(f"--params {name}: no variable named {name!r}")
            value = self.shell.user_ns[name]
            if not isinstance(value, dict):
                raise OptionError(f"--params {name}: expected a dict, got {type(value).__name__}")
            params.update(value)
        for item in opts.get("param") or []:
            pname, expr = parse_name_value(item, "--param")
            try:
                # The one place a value is evaluated: the user wrote a Python expression on purpose.
                params[pname] = eval(expr, self.shell.user_ns)
            except Exception as exc:
                raise OptionError(f"--param {pname}={expr}: {type(exc).__name__}: {exc}") from None
        return params

    def _cache_command(self, opts: dict[str, Any], rest: str) -> Any:
        try:
            from kqlmagic_plus.cache import modes as cache
        except ImportError:
            raise OptionError("the result cache is not available in this build") from None
        return cache.magic_command(opts, rest)


class _Listing:
    """The open connections, shown as a small table (secrets redacted)."""

    def __init__(self, rows: list[tuple[str, str, bool]]):
        self.rows = rows

    def __repr__(self) -> str:
        if not self.rows:
            return "No connections yet (the default is local://)."
        return "\n".join(f"{'*' if cur else ' '} {alias or '-':<12} {conn}" for alias, conn, cur in self.rows)


def _looks_like_connection(text: str) -> bool:
    """``scheme://...`` or Kqlmagic's ``db@cluster`` as the whole line (no query after it)."""
    word = text.strip()
    if not word:
        return False
    first = word.split("|")[0].split()[0]
    if "://" in first:
        return True
    return word == first and "@" in first and not first.startswith(("@", "+"))


def _strip_quiet(query: str) -> tuple[str, bool]:
    """A trailing ``;`` suppresses display (as in Python cells); KQL does not need it."""
    if ";" not in query:
        return query, False
    from kqlmagic_plus.language.lexer import significant, tokenize

    toks = significant(tokenize(query))
    if toks and toks[-1].text == ";":
        return query[: toks[-1].start] + query[toks[-1].end:], True
    return query, False


def _engine_options(opts: dict[str, Any], ns: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if opts.get("workspaces"):
        out["workspaces"] = [w.strip() for w in opts["workspaces"].split(",") if w.strip()]
    if opts.get("fail_on_partial"):
        out["fail_on_partial"] = True
    if opts.get("query_properties"):
        name = opts["query_properties"]
        value = ns.get(name)
        if not isinstance(value, dict):
            raise OptionError(f"--query-properties {name}: expected a dict variable")
        out["query_properties"] = value
    if "cache" in opts and opts["cache"] not in CACHE_COMMANDS:
        # A bare --cache means "cache with the default TTL".
        out["cache"] = opts["cache"] if opts["cache"] is not None else True
    for key in ("no_cache", "refresh"):
        if opts.get(key):
            out[key] = opts[key]
    return out


def _mount(engine: Any, name: str, path: str) -> None:
    from kqlmagic_plus.api import _mount as mount

    mount(engine, name, path)


def _shown_query(result: Any) -> str:
    parts = [f"-- ran on {result.connection}", str(result.executed or result.query)]
    if result.parameters:
        parts.append("-- parameters: " + ", ".join(f"{k}={v!r}" for k, v in result.parameters.items()))
    lake = result.stats.get("lake") if result.stats else None
    if lake:
        parts.append(f"-- lake: {lake}")
    return "\n".join(parts)


def _help() -> str:
    lines = ["%kql [options] QUERY    |    %%kql [options] [connection]\\n<query>", "", "Options:"]
    for o in KQL_OPTIONS:
        alias = f" ({', '.join(o.aliases)})" if o.aliases else ""
        lines.append(f"  {o.long:<20} {o.help}{alias}")
    return "\n".join(lines)


def load(ip: Any) -> None:
    """Register the magics and the settings object with an IPython shell."""
    from kqlmagic_plus.config import KqlMagicPlus, set_settings

    cfg = KqlMagicPlus(parent=ip)
    set_settings(cfg)
    if cfg not in ip.configurables:
        ip.configurables.append(cfg)
    connections().default = cfg.connection
    ip.register_magics(KqlMagics)
    try:
        from kqlmagic_plus.magics.sparkhunt import SparkHuntMagics
    except ImportError:
        return
    ip.register_magics(SparkHuntMagics)
