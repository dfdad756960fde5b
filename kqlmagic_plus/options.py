"""Parse the magic line: options, then (for line magics) the query.

A declarative table of options, parsed with shlex so quoting works as in a shell. Long forms are
ours; Kqlmagic's spellings (``-displaylimit``, ``-showquery``, ``-o``...) are accepted too so old
notebooks keep working. Values are never evaluated as Python; ``--param`` expressions are returned
as text and evaluated by the magic, explicitly, in the user's namespace.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from kqlmagic_plus.errors import OptionError


@dataclass(frozen=True)
class Opt:
    name: str  # destination key, also the long form with dashes: display_limit -> --display-limit
    kind: str  # "flag" | "str" | "int" | "float" | "multi"
    aliases: tuple[str, ...] = ()
    help: str = ""
    #: For "str" options whose value may be left out (``--cache`` alone, ``--conn`` alone).
    optional_value: bool = False
    #: For optional values: a word this rejects is not the option's value but the start of the query.
    accepts: Any = None

    @property
    def long(self) -> str:
        return "--" + self.name.replace("_", "-")


CACHE_COMMANDS = ("list", "stats", "clear", "export")


def _is_duration(word: str) -> bool:
    try:
        parse_duration(word)
        return True
    except OptionError:
        return False


KQL_OPTIONS: tuple[Opt, ...] = (
    Opt("out", "str", ("-o", "-out"), "store the Result in this variable"),
    Opt("display_limit", "int", ("-displaylimit", "-display_limit", "-dl"), "rows shown (the Result keeps all)"),
    Opt("timeout", "float", ("-timeout", "-wait"), "seconds before the query is cancelled"),
    Opt("show_query", "flag", ("-showquery", "-show_query"), "show what ran"),
    Opt("dry_run", "flag", ("-dryrun",), "translate, don't run"),
    Opt("mount", "multi", ("-mount",), "NAME=PATH: files (Parquet/CSV/JSON, globs) as a table"),
    Opt("conn", "str", ("-conn", "-c"), "connection string or alias; alone: list connections",
        optional_value=True),
    Opt("debug", "flag", ("-debug",), "show full tracebacks"),
    Opt("no_chart", "flag", ("-nochart",), "show the table even when the query renders a chart"),
    Opt("timespan", "str", ("-timespan",), "query window ending now, e.g. 7d, 12h"),
    Opt("start", "str", ("-start",), "window start (ISO-8601 UTC)"),
    Opt("end", "str", ("-end",), "window end (ISO-8601 UTC)"),
    Opt("param", "multi", ("-param",), "NAME=<python expression>, bound as a query parameter"),
    Opt("params", "str", ("-params",), "a dict variable of query parameters"),
    Opt("workspaces", "str", ("-workspaces",), "additional Log Analytics workspaces, comma-separated"),
    Opt("fail_on_partial", "flag", ("-fail_on_partial",), "treat a partial result as an error"),
    Opt("query_properties", "str", ("-query_properties", "-queryproperties"),
        "a dict variable of ADX client request properties"),
    Opt("cache", "str", ("-cache",), "store and reuse (TTL like 1h); or list/stats/clear/export",
        optional_value=True, accepts=lambda w: w in CACHE_COMMANDS or _is_duration(w)),
    Opt("no_cache", "flag", ("-nocache",), "neither read nor write the cache"),
    Opt("refresh", "flag", ("-refresh",), "re-run and replace the cached entry"),
    Opt("replay", "str", ("-replay",), "serve every query from this cache folder"),
    Opt("older_than", "str", (), "with --cache clear: only entries older than this (e.g. 7d)"),
    Opt("query", "str", ("-query",), "the query (instead of the cell)"),
)


_INDEXES: dict[int, tuple[tuple[Opt, ...], dict[str, Opt]]] = {}


def _index(opts: tuple[Opt, ...]) -> dict[str, Opt]:
    # Keyed by identity: hashing 23 dataclasses on every magic line cost more than the lookup saves.
    hit = _INDEXES.get(id(opts))
    if hit is not None and hit[0] is opts:
        return hit[1]
    idx: dict[str, Opt] = {}
    for o in opts:
        idx[o.long] = o
        idx["--" + o.name] = o
        for a in o.aliases:
            idx[a] = o
            idx[a.lower()] = o
    _INDEXES[id(opts)] = (opts, idx)
    return idx


def parse_line(line: str, opts: tuple[Opt, ...] = KQL_OPTIONS, *, allow_rest: bool = True
               ) -> tuple[dict[str, Any], str]:
    """Split a magic line into options and the rest (the query, for line magics).

    Options come first; the first word that is not an option starts the query. A word starting with
    ``-`` that is no known option is an error naming it and the valid ones (so a typo never becomes
    part of the query).
    """
    idx = _index(opts)
    values: dict[str, Any] = {}
    rest = line.strip()
    while rest:
        if rest[0] != "-":  # the query starts here (most lines have no options at all)
            break
        first = _peek(rest)
        if first is None:
            break
        word, after = first
        first_raw = rest
        if not word.startswith("-") or word in ("-", "--") or _is_number(word):
            break
        name, eq, inline_value = word.partition("=")
        opt = idx.get(name) or idx.get(name.lower())
        if opt is None:
            raise OptionError(f"unknown option {name!r}. Valid options: "
                              + ", ".join(o.long for o in opts))
        rest = after
        if opt.kind == "flag":
            if eq:
                raise OptionError(f"option {opt.long} takes no value")
            values[opt.name] = True
            continue
        if eq:
            value = inline_value
            if opt.name == "param":
                value = _peek(first_raw, raw=True)[0].partition("=")[2]
        else:
            nxt = _peek(rest)
            if nxt is None or (opt.optional_value and (
                    (nxt[0].startswith("-") and not _is_number(nxt[0]))
                    or (opt.accepts is not None and not opt.accepts(nxt[0])))):
                if opt.optional_value:
                    values[opt.name] = None
                    continue
                raise OptionError(f"option {opt.long} needs a value")
            value, rest = nxt
            if opt.kind == "multi":
                value = _peek(after, raw=True)[0] if opt.name == "param" else value
        values[opt.name] = _convert(opt, value, values.get(opt.name))
    if rest and not allow_rest:
        raise OptionError(f"unexpected text after the options: {rest!r}")
    return values, rest


def _peek(rest: str, raw: bool = False) -> tuple[str, str] | None:
    """The next word of *rest* and what follows it.

    Words end at whitespace outside quotes and brackets, so ``--param ips=['a', 'b']`` is one word.
    Quotes are removed (shell style) unless *raw*: a ``--param`` value is a Python expression and
    keeps its quotes.
    """
    text = rest.lstrip()
    if not text:
        return None
    depth, quote, i = 0, "", 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c.isspace() and depth == 0:
            break
        i += 1
    if quote:
        raise OptionError(f"unterminated quote in the options: {text[:40]!r}")
    word = text[:i]
    if not raw and ("'" in word or '"' in word or "\\" in word):
        try:
            parts = shlex.split(word)
        except ValueError as exc:
            raise OptionError(f"cannot read the options: {exc} in {word!r}") from None
        word = " ".join(parts)
    return word, text[i:].strip()


def _is_number(word: str) -> bool:
    try:
        float(word)
        return True
    except ValueError:
        return False


def _convert(opt: Opt, value: str, previous: Any) -> Any:
    if opt.kind == "int":
        try:
            n = int(value)
        except ValueError:
            raise OptionError(f"option {opt.long} needs a whole number, got {value!r}") from None
        if n < 0:
            raise OptionError(f"option {opt.long} must not be negative, got {n}")
        return n
    if opt.kind == "float":
        try:
            f = float(value)
        except ValueError:
            raise OptionError(f"option {opt.long} needs a number of seconds, got {value!r}") from None
        if f < 0:
            raise OptionError(f"option {opt.long} must not be negative, got {value}")
        return f
    if opt.kind == "multi":
        return [*(previous or []), value]
    return value


def parse_name_value(item: str, option: str) -> tuple[str, str]:
    """``NAME=VALUE`` of a repeatable option, with the option named in the error."""
    name, eq, value = item.partition("=")
    name = name.strip()
    if not eq or not name or not value:
        raise OptionError(f"{option} needs NAME=VALUE, got {item!r}")
    return name, value


def parse_duration(text: str, option: str = "duration") -> float:
    """Seconds in a KQL-style timespan literal such as ``90s``, ``15m``, ``1h``, ``7d`` or ``1.5h``."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "w": 604800}
    t = text.strip().lower()
    for u in sorted(units, key=len, reverse=True):
        if t.endswith(u):
            num = t[: -len(u)]
            try:
                return float(num) * units[u]
            except ValueError:
                break
    raise OptionError(f"{option}: {text!r} is not a duration (write e.g. 30s, 15m, 1h, 7d)")
