"""Parse the magic line, once, into one typed value: options, connection, query, parameters, cache.

A declarative table of options, parsed with shlex so quoting works as in a shell. Long forms are
ours; Kqlmagic's spellings (``-displaylimit``, ``-showquery``, ``-o``...) are accepted too so old
notebooks keep working. Values are never evaluated as Python; ``--param`` expressions are returned
as text and evaluated by the magic, explicitly, in the user's namespace.
"""

from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.request import parse_duration


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
    Opt("split_by", "str", ("-split_by", "-splitby"), "run the window in time slices (e.g. 1d) and merge them"),
    Opt("pull", "str", ("-pull",), "[TABLE=]DIR: write the result as Parquet in the lake layout (lake://DIR)"),
    Opt("query_properties", "str", ("-query_properties", "-queryproperties"),
        "a dict variable of ADX client request properties"),
    Opt("cache", "str", ("-cache",), "store and reuse (TTL like 1h); or list/stats/clear/export",
        optional_value=True, accepts=lambda w: w in CACHE_COMMANDS or _is_duration(w)),
    Opt("no_cache", "flag", ("-nocache",), "neither read nor write the cache"),
    Opt("refresh", "flag", ("-refresh",), "re-run and replace the cached entry"),
    Opt("replay", "str", ("-replay",), "serve every query from this cache folder"),
    Opt("older_than", "str", (), "with --cache clear: only entries older than this (e.g. 7d)"),
    Opt("query", "str", ("-query",), "the query (instead of the cell)"),
    Opt("columns_to_vars", "flag", ("-c2lv", "-columns_to_local_vars", "-columnstolocalvars"),
        "also store each result column in a variable of its name (Kqlmagic's -c2lv)"),
    Opt("schema", "str", ("-schema",), "tables -> columns -> types of a connection (default: the current one)",
        optional_value=True),
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
        negated = name.startswith("-!")  # Kqlmagic's -!flag: the flag turned off
        if negated:
            name = "-" + name[2:]
        opt = idx.get(name) or idx.get(name.lower())
        if opt is None and opts is KQL_OPTIONS:
            opt, takes_value = _kqlmagic_option(name, idx)
            if opt is None:  # accepted, no effect here: skip it (and its value), say so once
                values.setdefault("_ignored", []).append(name)
                rest = after
                if takes_value and not eq:
                    nxt = _peek(rest)
                    rest = nxt[1] if nxt is not None else ""
                continue
        if opt is None:
            raise OptionError(f"unknown option {name!r}. Valid options: "
                              + ", ".join(o.long for o in opts))
        rest = after
        if opt.kind == "flag":
            if eq:
                raise OptionError(f"option {opt.long} takes no value")
            values[opt.name] = not negated
            continue
        if eq:
            value = inline_value
            if opt.name == "param":
                value = _peek(first_raw, raw=True)[0].partition("=")[2]
            if opt.name in ("query", "conn"):  # -query=VAR: as -query VAR below
                values["_raw_" + opt.name] = _peek(first_raw, raw=True)[0].partition("=")[2]
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
            if opt.name in ("query", "conn"):
                # Kqlmagic's -query VAR / -conn VAR: an unquoted name is a variable, quoted text is literal.
                values["_raw_" + opt.name] = _peek(after, raw=True)[0]
        values[opt.name] = _convert(opt, value, values.get(opt.name))
    if rest and not allow_rest:
        raise OptionError(f"unexpected text after the options: {rest!r}")
    return values, rest


def _kqlmagic_option(name: str, idx: dict[str, Opt]) -> tuple[Opt | None, bool]:
    """A Kqlmagic option name: (our Opt, False) when it maps to one, (None, takes_value) when it is
    accepted without effect; an OptionError naming the replacement when its meaning is not reproduced."""
    from kqlmagic_plus import kqlmagic_names

    found = kqlmagic_names.lookup(name)
    if found is None:
        raise OptionError(f"unknown option {name!r}. Valid options: " + ", ".join(o.long for o in KQL_OPTIONS))
    how, what = found
    if how == "mapped":
        return idx["--" + str(what)], False
    if how == "ignored":
        return None, bool(what)
    raise OptionError(f"Kqlmagic's option {name} is not supported here: {what}")


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
        if not math.isfinite(f):  # nan would never fire and inf never end: neither is "no timeout" (that is 0)
            raise OptionError(f"option {opt.long} needs a finite number of seconds (0 for no limit), got {value!r}")
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


# -- %kql / %%kql: the whole line (and cell) as one value ------------------------------------------------


@dataclass(frozen=True)
class CacheChoice:
    """What a line asks of the result cache."""

    #: ``--cache TTL`` (the text), ``--cache`` alone (True), or not given (None: the setting decides).
    ttl: str | bool | None = None
    no_cache: bool = False
    refresh: bool = False
    #: ``--cache list | stats | clear | export``.
    command: str | None = None
    #: The folder of ``--cache export DIR``.
    export_to: str | None = None
    older_than: str | None = None
    #: ``--replay DIR`` (or ``off``).
    replay: str | None = None

    @property
    def given(self) -> bool:
        """A cache option that is handled before (or instead of) the query."""
        return self.command is not None or self.replay is not None or isinstance(self.ttl, str)


@dataclass(frozen=True)
class KqlLine:
    """One ``%kql`` line (and ``%%kql`` cell), parsed: everything that decides what runs and how it shows.

    Nothing here is evaluated: ``--param`` expressions, ``--params`` and ``--query-properties``
    variables stay text, for the magic (which owns the namespace) to resolve.
    """

    query: str = ""
    #: A trailing ``;`` (removed from *query*) suppresses display.
    quiet: bool = False
    conn: str | None = None
    #: ``--conn`` with no value: list the open connections.
    list_connections: bool = False
    mounts: tuple[tuple[str, str], ...] = ()
    #: ``--param NAME=EXPR``: Python expressions, as written.
    param_exprs: tuple[tuple[str, str], ...] = ()
    params_var: str | None = None
    query_properties_var: str | None = None
    workspaces: tuple[str, ...] = ()
    fail_on_partial: bool = False
    #: ``--split-by 1d``: the window in slices of this duration, merged (see engines/slicing.py).
    split_by: str | None = None
    #: ``--pull [TABLE=]DIR``: the result written as Parquet in the export lake layout (lake/pull.py).
    pull: str | None = None
    cache: CacheChoice = field(default_factory=CacheChoice)
    timeout: float | None = None
    timespan: str | None = None
    start: str | None = None
    end: str | None = None
    display_limit: int | None = None
    show_query: bool = False
    dry_run: bool = False
    debug: bool = False
    no_chart: bool = False
    out: str | None = None
    #: ``--schema [conn]``: show the connection's schema (``conn`` holds the connection named, if any).
    schema: bool = False
    #: ``-query NAME`` with NAME unquoted: the variable holding the query (the magic looks it up).
    query_ref: str | None = None
    #: ``{name}`` references in the query are the magic's to resolve (a line query, not a cell or -query).
    expand_references: bool = False
    #: Kqlmagic options accepted without effect (display settings), for a one-time note.
    ignored: tuple[str, ...] = ()
    #: ``-c2lv``: each result column also goes into a variable named like it.
    columns_to_vars: bool = False

    @property
    def action(self) -> str:
        """``connections`` (list them), ``cache`` (a cache command, or a mode set with no query),
        ``connect`` (connect and/or mount, no query), or ``query``."""
        if self.list_connections:
            return "connections"
        if self.schema:
            return "schema"
        if self.cache.command in ("list", "stats", "clear", "export") or (self.cache.given and not self.query):
            return "cache"
        if not self.query:
            if self.conn is None and not self.mounts:
                raise OptionError("no query given. Usage: %kql [options] QUERY, or %%kql [options] with the "
                                  "query in the cell; %kql --help lists the options")
            return "connect"
        return "query"


def parse_kql_line(line: str, cell: str | None = None) -> KqlLine:
    """``%kql LINE`` (*cell* None) or ``%%kql LINE`` + *cell* as one :class:`KqlLine`.

    Options may come before and after the connection string (``%%kql local://lake='/d' -o r``), as
    Kqlmagic reads them; a ``// comment`` after the connection is dropped; ``var << query`` stores the
    result in ``var``.
    """
    result_var, line = _result_var(line)
    opts, rest = parse_line(line)
    rest = rest.strip()
    if rest and not rest.startswith(("+", "//")) and (cell is not None or _starts_with_connection(rest)):
        word, after = _peek(rest, raw=True)
        after = _strip_comment(after)
        if not after or after.startswith("-") or _RESULT_VAR.match(after):
            var_after, after = _result_var(after)
            result_var = result_var or var_after
            more, after = parse_line(after)
            for key, value in more.items():
                opts[key] = [*opts[key], *value] if isinstance(value, list) and key in opts else value
            rest = word + ("\n" + after if after else "")
    if cell is not None:
        rest = _strip_comment(rest)
    conn = opts.get("conn")
    if opts.get("schema") is not None:  # `--schema CONN`: that connection's schema (Kqlmagic's spelling)
        conn = opts["schema"]
    query = cell if cell is not None else rest
    query_ref = None
    if opts.get("query") is not None:
        query = opts["query"]
        raw = opts.get("_raw_query", "")
        if raw and raw[0] not in "'\"" and is_reference(raw):
            query_ref = raw
    if cell is None and conn is None and "\n" in rest:
        conn, query = rest.split("\n", 1)  # the connection, then the query (options between them read)
    elif cell is not None and rest.startswith("+"):
        # Kqlmagic's request properties on the magic line (`%%kql +notruncation`) belong to the query.
        query = rest + "\n" + query
    elif cell is not None and rest:
        # Kqlmagic style: `%%kql loganalytics://...` or `%%kql alias` on the first line.
        if conn is not None or "\n" in rest:
            raise OptionError(f"unexpected text on the magic line: {rest.replace(chr(10), ' ')!r}")
        conn = rest
    elif cell is None and _looks_like_connection(rest):
        conn, query = rest, ""

    command = opts.get("cache") if opts.get("cache") in CACHE_COMMANDS else None
    if opts.get("older_than") and command != "clear":
        raise OptionError("--older-than works with --cache clear (e.g. %kql --cache clear --older-than 7d)")
    export_to = None
    if command == "export":
        export_to = _one_folder(rest if cell is None else "")
        query = ""
    ttl = opts["cache"] if "cache" in opts and command is None else None
    if "cache" in opts and ttl is None and command is None:
        ttl = True  # a bare --cache: cache with the default TTL
    cache = CacheChoice(ttl=ttl, no_cache=bool(opts.get("no_cache")), refresh=bool(opts.get("refresh")),
                        command=command, export_to=export_to, older_than=opts.get("older_than"),
                        replay=opts.get("replay"))

    query, quiet = _strip_quiet(query or "")
    if not query.strip():
        query = ""
    out = output_variable(opts.get("out") or result_var)
    return KqlLine(
        query=query, quiet=quiet, conn=conn,
        list_connections="conn" in opts and opts["conn"] is None,
        mounts=tuple(parse_name_value(m, "--mount") for m in opts.get("mount") or []),
        param_exprs=tuple(parse_name_value(p, "--param") for p in opts.get("param") or []),
        params_var=opts.get("params"), query_properties_var=opts.get("query_properties"),
        workspaces=tuple(w.strip() for w in (opts.get("workspaces") or "").split(",") if w.strip()),
        fail_on_partial=bool(opts.get("fail_on_partial")), split_by=opts.get("split_by"), pull=opts.get("pull"),
        cache=cache,
        timeout=opts.get("timeout"),
        timespan=opts.get("timespan"), start=opts.get("start"), end=opts.get("end"),
        display_limit=opts.get("display_limit"), show_query=bool(opts.get("show_query")),
        dry_run=bool(opts.get("dry_run")), debug=bool(opts.get("debug")), no_chart=bool(opts.get("no_chart")),
        out=out, query_ref=query_ref, expand_references=cell is None and opts.get("query") is None,
        ignored=tuple(opts.get("_ignored") or ()), columns_to_vars=bool(opts.get("columns_to_vars")),
        schema="schema" in opts,
    )


#: ``var << `` at the start of the options (Kqlmagic's way to name the result variable).
_RESULT_VAR = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*<<(?!<)\s*")
#: A Python reference: names, dotted attributes, ``[<literal>]`` subscripts (checked again with ast by the magic).
_REFERENCE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*|\[\s*('[^']*'|\"[^\"]*\"|-?\d+)\s*\])*")


def is_reference(text: str) -> bool:
    """Whether *text* has the shape of a Python variable reference (``x``, ``a.b``, ``d['k']``)."""
    return _REFERENCE.fullmatch(text.strip()) is not None


def _result_var(text: str) -> tuple[str | None, str]:
    m = _RESULT_VAR.match(text)
    if m is None:
        return None, text
    return m.group(1), text[m.end():]


def _strip_comment(text: str) -> str:
    """Text without a ``//`` comment that starts a word (Kqlmagic skips them on the magic line); the
    ``//`` of ``scheme://`` does not start a word."""
    quote = ""
    for i, c in enumerate(text):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        elif text.startswith("//", i) and (i == 0 or text[i - 1].isspace()):
            return text[:i].strip()
    return text


def _starts_with_connection(text: str) -> bool:
    """The line starts with ``scheme://...`` (a known-looking scheme word before the ``://``)."""
    first = _peek(text, raw=True)
    if first is None:
        return False
    scheme, sep, _ = first[0].partition("://")
    if sep:
        return scheme.replace("-", "").replace("_", "").isalnum()
    # Kqlmagic's db@cluster, when options follow it (`%kql Samples@help -query q`).
    return re.fullmatch(r"[\w.-]+@[\w.:/-]+", first[0]) is not None and first[1].startswith("-")


#: Names a notebook relies on: IPython's own (the output history, the shell) besides Python's builtins.
_IPYTHON_NAMES = frozenset({"In", "Out", "_", "__", "___", "_i", "_ii", "_iii", "_ih", "_oh", "_dh", "get_ipython",
                            "exit", "quit", "_kql_raw_result_"})


def output_variable(name: str | None) -> str | None:
    """The variable ``-o NAME`` stores into: a plain identifier that shadows nothing the notebook needs
    (a keyword, a builtin such as ``print`` or ``__builtins__``, a dunder, IPython's ``In``/``Out``/``_``)."""
    if name is None:
        return None
    import builtins
    import keyword

    if not name.isidentifier() or keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise OptionError(f"-o/--out needs a Python variable name, got {name!r}")
    if (name.startswith("__") and name.endswith("__")) or hasattr(builtins, name) or name in _IPYTHON_NAMES:
        raise OptionError(f"-o/--out {name}: that name is one the notebook needs (a builtin or IPython's own); "
                          "choose another variable name")
    return name


def _one_folder(rest: str) -> str:
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise OptionError(f"--cache export: {exc}") from None
    if len(words) != 1:
        raise OptionError("--cache export needs one folder: %kql --cache export DIR")
    return words[0]


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
