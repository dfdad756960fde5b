"""String functions: ``strlen``, ``substring``, ``replace_regex``, ``extract``, ``split``, ``parse_url`` ...

String nulls: KQL strings are never null, so arguments go through ``empty_if_null`` wherever a SQL NULL
would otherwise show.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import big, empty_if_null, false_if_null, lit_str, lower_str
from kqlmagic_plus.language.compiler.functions.conversions import convert_text, to_string
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, fn, n, s
from kqlmagic_plus.language.compiler.syntax import Refusal

TABLE = Table()
scalar = TABLE.scalar


@scalar("strlen", 1, T.LONG, coerce="string")
def _strlen(g, c, pred):
    return big(fn("length", empty_if_null(g.e(c.args[0]))))


@scalar("tolower", 1, T.STRING, coerce="string")
def _tolower(g, c, pred):
    return lower_str(g.e(c.args[0]))


@scalar("toupper", 1, T.STRING, coerce="string")
def _toupper(g, c, pred):
    return exp.Upper(this=g.e(c.args[0]))


@scalar("strcat", (1, 64), T.STRING, coerce="string")
def _strcat(g, c, pred):
    return exp.Concat(expressions=[empty_if_null(g.e(a)) for a in c.args])


@scalar("strcat_delim", (3, 65), T.STRING, coerce="string")
def _strcat_delim(g, c, pred):
    sep = g.e(c.args[0])
    parts: list[exp.Expression] = []
    for i, a in enumerate(c.args[1:]):
        if i:
            parts.append(sep)
        parts.append(empty_if_null(g.e(a)))
    return exp.Concat(expressions=parts)


@scalar("substring", (2, 3), T.STRING, coerce=("string", "long", "long"))
def _substring(g, c, pred):
    x = empty_if_null(g.e(c.args[0]))
    start = g.e(c.args[1])
    # A negative start counts from the end (clamped to the first character); SQL is 1-based.
    from_end = fn("greatest", exp.Add(this=fn("length", x), expression=start), n(0))
    start0 = case([(exp.LT(this=start, expression=n(0)), from_end)], start)
    start1 = exp.Add(this=start0, expression=n(1))
    if len(c.args) == 3:
        length = fn("greatest", g.e(c.args[2]), n(0))
        return fn("substring", x, start1, length)
    return fn("substring", x, start1)


@scalar("indexof", (2, 5), T.LONG, coerce=("string", "string", "long", "long", "long"))
def _indexof(g, c, pred):
    if len(c.args) > 2:
        from kqlmagic_plus.language.compiler.functions.text_extra import indexof_window

        return indexof_window(g, c)
    return exp.Sub(this=big(g.d.str_index(empty_if_null(g.e(c.args[0])), g.e(c.args[1]))), expression=n(1))


@scalar("replace_string", 3, T.STRING, coerce="string")
def _replace_string(g, c, pred):
    return fn("replace", empty_if_null(g.e(c.args[0])), g.e(c.args[1]), g.e(c.args[2]))


def _kql_repl_to_sql(g: Any, repl: str) -> str:
    # KQL's replacement uses \1; Java uses $1, RE2 (DuckDB) uses \1.
    if g.d.name == "spark":
        out, i = [], 0
        while i < len(repl):
            ch = repl[i]
            if ch == "\\" and i + 1 < len(repl) and repl[i + 1].isdigit():
                out.append("$" + repl[i + 1])
                i += 2
                continue
            if ch == "$":
                out.append("\\$")
            else:
                out.append(ch)
            i += 1
        return "".join(out)
    return repl


def _rewrite(g: Any, arg: ir.Expr) -> exp.Expression:
    repl = lit_str(arg)
    if repl is not None:
        return s(_kql_repl_to_sql(g, repl))
    x = empty_if_null(g.e(arg))
    if g.d.name != "spark":
        return x  # RE2's rewrite reads \1 as KQL does
    # A rewrite known only at run time, turned into Java's form there as _kql_repl_to_sql does for a
    # constant: a `$` stands for itself, \N is group N.
    dollars = fn("regexp_replace", x, s(r"\$"), s(r"\\\$"))
    return fn("regexp_replace", dollars, s(r"\\(\d)"), s(r"\$$1"))


@scalar("replace_regex", 3, T.STRING, coerce="string")
def _replace_regex(g, c, pred):
    return g.d.regex_replace(empty_if_null(g.e(c.args[0])), g.e(c.args[1]), _rewrite(g, c.args[2]))


@scalar("replace", 3, T.STRING, coerce="string")
def _replace_legacy(g, c, pred):
    # The deprecated replace() takes its arguments in the older order: (regex, rewrite, text).
    regex, rewrite, text = c.args
    return g.d.regex_replace(empty_if_null(g.e(text)), g.e(regex), _rewrite(g, rewrite))


def _trim(which: str):
    def emit(g, c, pred):
        pat = lit_str(c.args[0])
        x = empty_if_null(g.e(c.args[1]))
        if pat is None:
            raise Refusal(f"{which} with a computed pattern")
        # One leading / trailing match, as KQL removes it (trim_end(".com", "bing.com") is "bing").
        parts = []
        if which in ("trim", "trim_start"):
            parts.append(f"^(?:{pat})")
        if which in ("trim", "trim_end"):
            parts.append(f"(?:{pat})$")
        return g.d.regex_replace(x, s("|".join(parts)), s(""))

    return emit


for _t in ("trim", "trim_start", "trim_end"):
    scalar(_t, 2, T.STRING, coerce="string")(_trim(_t))


@scalar("reverse", 1, T.STRING, coerce="string")
def _reverse(g, c, pred):
    return g.d.reverse(empty_if_null(g.e(c.args[0])))


@scalar("strrep", (2, 3), T.STRING, coerce=("string", "long", "string"))
def _strrep(g, c, pred):
    x, k = g.e(c.args[0]), g.e(c.args[1])
    if len(c.args) == 2:
        return g.d.repeat(x, k)
    sep = g.e(c.args[2])
    body = g.d.repeat(exp.Concat(expressions=[x, sep]), exp.Sub(this=k, expression=n(1)))
    return case([(exp.LTE(this=k, expression=n(0)), s(""))], exp.Concat(expressions=[body, x]))


@scalar("countof", (2, 3), T.LONG, coerce="string")
def _countof(g, c, pred):
    text, sub = empty_if_null(g.e(c.args[0])), c.args[1]
    kind = lit_str(c.args[2]) if len(c.args) == 3 else "normal"
    if kind == "regex":
        return big(g.d.array_size(g.d.regex_extract_all(text, g.e(sub), 0)))
    # Plain text is counted with overlaps: countof("aaa", "aa") is 2.
    needle = g.e(sub)
    i = exp.column("i")
    hit = exp.EQ(this=fn("substring", text, i, fn("length", needle)), expression=needle)
    positions = g.d.sequence1(fn("length", text))
    lam = exp.Lambda(this=hit, expressions=[exp.to_identifier("i")])
    found = fn("filter", positions, lam) if g.d.name == "spark" else fn("list_filter", positions, lam)
    return case([(exp.EQ(this=fn("length", needle), expression=n(0)), n(0))], big(g.d.array_size(found)))


@scalar(
    "extract",
    (3, 4),
    lambda a: a[3].type if len(a) == 4 and a[3].type != T.NULL else T.STRING,
    coerce=("string", "long", "string", None),
)
def _extract(g, c, pred):
    group = c.args[1]
    if not (isinstance(group, ir.Lit) and isinstance(group.value, int)):
        raise Refusal("extract with a computed capture group")
    text = g.e(c.args[2])
    pattern = g.e(c.args[0])
    found = g.d.regex_match(text, pattern)
    got = g.d.regex_extract(text, pattern, group.value)
    if c.type == T.STRING:
        return case([(found, got)], s(""))  # no match: a KQL string is never null, so ""
    return convert_text(g, case([(found, got)]), c.type)


@scalar("extract_all", (2, 3), T.DYNAMIC, coerce=("string", None, "string"), aliases=("extractall",))
def _extract_all(g, c, pred):
    pattern = lit_str(c.args[0])
    if pattern is None:
        raise Refusal("extract_all with a computed pattern")
    import re as _re

    groups = _re.compile(pattern).groups if _safe_compile(pattern) else 0
    wanted: list[int] | None = None
    if len(c.args) == 3:
        sel = c.args[1]
        items = sel.value if isinstance(sel, ir.Lit) and isinstance(sel.value, list) else None
        if items is None or not all(isinstance(i, int) and not isinstance(i, bool) for i in items):
            raise Refusal("extract_all with named or computed capture groups")
        if len(items) < 2 or not all(1 <= i <= groups for i in items):
            # One selected group: whether Kusto nests it in an array of its own is not documented.
            raise Refusal("extract_all with fewer than two capture groups selected, or one out of range")
        wanted = items
    text = empty_if_null(to_string(g, c.args[-1]))
    if wanted is None and groups <= 1:
        arr = g.d.regex_extract_all(text, s(pattern), 1 if groups == 1 else 0)
        return case([(exp.GT(this=g.d.array_size(arr), expression=n(0)), g.d.dyn_array_from_sql_array(arr))])
    # Several groups: one array per match, of the groups in the order asked for, from per-group match lists.
    per_group = [g.d.regex_extract_all(text, s(pattern), i) for i in (wanted or range(1, groups + 1))]
    j = exp.column("j")
    # A group that took no part in a match is "" (Spark's answer; DuckDB's null is turned into it).
    row = fn("array" if g.d.name == "spark" else "list_value",
             *[empty_if_null(g.d.array_element(a, j)) for a in per_group])
    rows = fn("transform" if g.d.name == "spark" else "list_transform", g.d.sequence1(g.d.array_size(per_group[0])),
              exp.Lambda(this=row, expressions=[exp.to_identifier("j")]))
    return case([(exp.GT(this=g.d.array_size(per_group[0]), expression=n(0)), g.d.dyn_array_from_sql_array(rows))])


def _safe_compile(p: str) -> bool:
    import re as _re

    try:
        _re.compile(p)
        return True
    except _re.error:
        return False


@scalar("split", (2, 3), T.DYNAMIC, coerce=("string", "string", "long"))
def _split(g, c, pred):
    # An empty delimiter splits differently on each engine (DuckDB per character, Spark with a trailing "")
    # and Kusto's answer is not documented: refused when written, a query error when computed.
    sep = lit_str(c.args[1])
    if sep == "":
        raise Refusal("split with an empty delimiter", reason="what Kusto returns for it is not documented")
    delim = g.e(c.args[1])
    if sep is None:
        fail = fn("raise_error" if g.d.name == "spark" else "error", s("split() with an empty delimiter"))
        delim = case([(exp.EQ(this=delim, expression=s("")), fail)], delim)
    arr = g.d.split(empty_if_null(g.e(c.args[0])), delim)
    if len(c.args) == 3:
        idx = g.e(c.args[2])
        item = g.d.array_element(arr, exp.Add(this=idx, expression=n(1)))
        return case(
            [
                (
                    exp.Not(this=exp.Is(this=item, expression=exp.null())),
                    g.d.dyn_array([g.d.dyn_from_scalar(item, T.STRING)]),
                )
            ]
        )
    return g.d.dyn_array_from_sql_array(arr)


@scalar("strcmp", 2, T.INT, coerce="string")
def _strcmp(g, c, pred):
    x, y = empty_if_null(g.e(c.args[0])), empty_if_null(g.e(c.args[1]))
    return cast_(case([(exp.LT(this=x, expression=y), n(-1)), (exp.GT(this=x, expression=y), n(1))], n(0)), "INT")


_URL = (
    r"^(?:([A-Za-z][A-Za-z0-9+.\-]*)://)?(?:([^:@/?#]*)(?::([^@/?#]*))?@)?([^:/?#]*)(?::(\d+))?"
    r"([^?#]*)(?:\?([^#]*))?(?:#(.*))?$"
)


@scalar("parse_url", 1, T.DYNAMIC, coerce="string")
def _parse_url(g, c, pred):
    url = empty_if_null(g.e(c.args[0]))
    pat = s(_URL)

    def part(i: int) -> exp.Expression:
        return g.d.dyn_from_scalar(g.d.regex_extract(url, pat, i), T.STRING)

    query = g.d.regex_extract(url, pat, 7)
    if g.d.name == "spark":
        m = fn("str_to_map", query, s("&"), s("="))
        params = case([(exp.EQ(this=query, expression=s("")), fn("parse_json", s("{}")))], fn("to_variant_object", m))
    else:
        entries = fn(
            "list_transform",
            fn("string_split", query, s("&")),
            exp.Lambda(
                this=fn(
                    "struct_pack",
                    exp.PropertyEQ(
                        this=exp.to_identifier("k"), expression=fn("split_part", exp.column("x"), s("="), n(1))
                    ),
                    exp.PropertyEQ(
                        this=exp.to_identifier("v"), expression=fn("split_part", exp.column("x"), s("="), n(2))
                    ),
                ),
                expressions=[exp.to_identifier("x")],
            ),
        )
        params = case(
            [(exp.EQ(this=query, expression=s("")), cast_(s("{}"), "JSON"))],
            cast_(fn("to_json", fn("map_from_entries", entries)), "JSON"),
        )
    bag = g.d.dyn_object(
        [
            ("Scheme", part(1)),
            ("Host", part(4)),
            ("Port", part(5)),
            ("Path", part(6)),
            ("Username", part(2)),
            ("Password", part(3)),
            ("Query Parameters", params),
            ("Fragment", part(8)),
        ]
    )
    # Text that is not a URL (no scheme) parses to an empty bag... per field, as Kusto returns "".
    return case([(g.d.regex_match(url, s(r"^[A-Za-z][A-Za-z0-9+.\-]*://")), bag)], g.d.dyn_object([]))


# -- internals the lowering produces ----------------------------------------------------------------


@scalar("__parse_matches", 2, T.BOOL, category="internal")
def _parse_matches(g, c, pred):
    return false_if_null(g.d.regex_match(g.e(c.args[0]), g.e(c.args[1])), pred)


@scalar("__parse_group", 4, T.STRING, category="internal")
def _parse_group(g, c, pred):
    subject, pattern = g.e(c.args[0]), g.e(c.args[1])
    group = c.args[2].value
    got = g.d.regex_extract(subject, pattern, group)
    value = convert_text(g, got, c.type)
    return case([(g.d.regex_match(subject, pattern), value)])
