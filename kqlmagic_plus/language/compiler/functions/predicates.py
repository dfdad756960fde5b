"""String and membership predicates: ``has``, ``contains``, ``startswith``, ``matches regex``,
``has_any``/``has_all`` and ``in``/``in~``, in every negated and case-sensitive spelling.

``has`` matches whole terms: an alphanumeric end of the needle must not continue a run of letters or
digits in the text. One regular expression per needle list says so (``term_regex``).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import (
    ci_flag,
    elements_as,
    empty_if_null,
    false_if_null,
    is_string,
    lit_str,
    lower_str,
    re_quote,
    re_quote_sql,
)
from kqlmagic_plus.language.compiler.sqlexpr import case, cast_, fn, n, paren, s

TABLE = Table()
scalar = TABLE.scalar
_op = TABLE.operator

_TERM_CLASS = r"[^\p{L}\p{N}]"


def _alnum(ch: str) -> bool:
    return ch.isalnum()


def term_regex(needles: list[str], mode: str, ci: bool, g: Any) -> str:
    """A regex true when one of *needles* occurs as a term (``has``), a term prefix
    (``hasprefix``) or a term suffix (``hassuffix``)."""
    groups: dict[tuple[bool, bool], list[str]] = {}
    for nd in needles:
        left = mode in ("has", "hasprefix") and bool(nd) and _alnum(nd[0])
        right = mode in ("has", "hassuffix") and bool(nd) and _alnum(nd[-1])
        groups.setdefault((left, right), []).append(re_quote(nd))
    alts = []
    for (left, right), items in groups.items():
        body = items[0] if len(items) == 1 else "(?:" + "|".join(items) + ")"
        alts.append(
            ("(?:^|" + _TERM_CLASS + ")" if left else "") + body + ("(?:$|" + _TERM_CLASS + ")" if right else "")
        )
    pattern = alts[0] if len(alts) == 1 else "|".join(f"(?:{a})" for a in alts)
    return (ci_flag(g) if ci else "") + pattern


def _string_pred(kind: str, *, negated: bool = False, cs: bool = False):
    def emit(g, c, pred):
        a, b = c.args
        hay = g.e(a)
        needle = lit_str(b)
        if negated or needle is None or needle == "" or kind == "matches":
            # A SQL NULL string is KQL's "", which starts with and contains "" and may match the pattern. Left
            # bare only where the answer is the same (a written non-empty needle), so a scan can push it down.
            hay = empty_if_null(hay)
        if kind in ("has", "hasprefix", "hassuffix"):
            if needle is not None:
                r = exp.true() if needle == "" else g.d.regex_match(hay, s(term_regex([needle], kind, not cs, g)))
            else:
                r = _dynamic_term_match(g, hay, g.e(b), kind, cs)
        elif kind == "contains":
            y = s(needle if cs else needle.lower()) if needle is not None else g.e(b)
            r = g.d.contains(hay if cs else lower_str(hay), y if cs or needle is not None else lower_str(y))
        elif kind in ("startswith", "endswith"):
            y = s(needle if cs else needle.lower()) if needle is not None else g.e(b)
            if not cs and needle is None:
                y = lower_str(y)
            h = hay if cs else lower_str(hay)
            r = g.d.starts_with(h, y) if kind == "startswith" else g.d.ends_with(h, y)
        elif kind == "matches":
            r = g.d.regex_match(hay, g.e(b))
        else:
            raise AssertionError(kind)
        if negated:
            return exp.Not(this=paren(exp.Coalesce(this=r, expressions=[exp.false()])))
        return false_if_null(r, pred)

    return emit


def _dynamic_term_match(g: Any, hay: exp.Expression, needle: exp.Expression, kind: str, cs: bool) -> exp.Expression:
    q = re_quote_sql(g, needle)
    first = fn("substring", needle, n(1), n(1))
    last = fn("substring", needle, fn("length", needle), n(1))
    alnum = s(r"^[\p{L}\p{N}]$")
    left = (
        case([(g.d.regex_match(first, alnum), s("(?:^|" + _TERM_CLASS + ")"))], s(""))
        if kind in ("has", "hasprefix")
        else s("")
    )
    right = (
        case([(g.d.regex_match(last, alnum), s("(?:$|" + _TERM_CLASS + ")"))], s(""))
        if kind in ("has", "hassuffix")
        else s("")
    )
    pattern = exp.Concat(expressions=[s("" if cs else ci_flag(g)), left, q, right])
    return g.d.regex_match(hay, pattern)


for _kind in ("has", "hasprefix", "hassuffix", "contains", "startswith", "endswith"):
    _op(_kind, 2, T.BOOL, coerce="string")(_string_pred(_kind))
    _op("!" + _kind, 2, T.BOOL, coerce="string")(_string_pred(_kind, negated=True))
    _op(_kind + "_cs", 2, T.BOOL, coerce="string")(_string_pred(_kind, cs=True))
    _op("!" + _kind + "_cs", 2, T.BOOL, coerce="string")(_string_pred(_kind, negated=True, cs=True))
_op("matches regex", 2, T.BOOL, coerce="string")(_string_pred("matches", cs=True))


@_op("has_any", (1, 10_000), T.BOOL, coerce="string")
def _has_any(g, c, pred):
    return _has_list(g, c, pred, any_=True)


@_op("has_all", (1, 10_000), T.BOOL, coerce="string")
def _has_all(g, c, pred):
    return _has_list(g, c, pred, any_=False)


def _has_list(g: Any, c: ir.Call, pred: bool, any_: bool) -> exp.Expression:
    hay = g.e(c.args[0])
    needles = c.args[1:]
    if not needles:
        return exp.false() if any_ else exp.true()
    texts = [lit_str(x) for x in needles]
    if all(t is not None for t in texts) and any_:
        r = g.d.regex_match(hay, s(term_regex([t for t in texts if t is not None], "has", True, g)))
        return false_if_null(r, pred)
    parts = []
    for x in needles:
        t = lit_str(x)
        if t is not None:
            parts.append(g.d.regex_match(hay, s(term_regex([t], "has", True, g))))
        else:
            parts.append(_dynamic_term_match(g, hay, g.e(x), "has", False))
    r = exp.or_(*parts) if any_ else exp.and_(*parts)
    return false_if_null(r, pred)


def _in(ci: bool, negated: bool):
    def emit(g, c, pred):
        x_ir, items = c.args[0], c.args[1:]
        x = g.e(x_ir)
        strings = is_string(x_ir)
        if strings and (negated or ci):
            x = empty_if_null(x)
        if ci:
            x = lower_str(x)
        vals = []
        for it in items:
            if ci and lit_str(it) is not None:
                vals.append(s(it.value.lower()))
            elif ci:
                vals.append(lower_str(g.e(it)))
            else:
                vals.append(g.e(it))
        if strings and any(lit_str(i) == "" for i in items) and not (negated or ci):
            x = empty_if_null(x)
        if not vals:
            return exp.true() if negated else exp.false()
        r = exp.In(this=x, expressions=vals)
        if negated:
            return (
                exp.Not(this=paren(exp.Coalesce(this=r, expressions=[exp.false()])))
                if strings
                else exp.Not(this=paren(r))
            )
        return false_if_null(r, pred)

    return emit


_op("in", (1, 100_000), T.BOOL)(_in(False, False))
_op("!in", (1, 100_000), T.BOOL)(_in(False, True))
_op("in~", (1, 100_000), T.BOOL, coerce="string")(_in(True, False))
_op("!in~", (1, 100_000), T.BOOL, coerce="string")(_in(True, True))


# -- internals the lowering produces ----------------------------------------------------------------


def _elements_text(g: Any, v: exp.Expression, ci: bool) -> exp.Expression:
    arr = elements_as(g, v, T.STRING)
    if not ci:
        return arr
    lam = exp.Lambda(this=exp.Lower(this=exp.column("x")), expressions=[exp.to_identifier("x")])
    return fn("transform", arr, lam) if g.d.name == "spark" else fn("list_transform", arr, lam)


@scalar("__in_dyn", 3, T.BOOL, category="internal")
def _in_dyn(g, c, pred):
    x_ir, arr_ir, ci = c.args
    v = g.e(arr_ir)
    if x_ir.type in T.NUMERIC:
        r = g.d.array_contains(elements_as(g, v, T.REAL), cast_(g.e(x_ir), "DOUBLE"))
    else:
        x = empty_if_null(g.e(x_ir))
        if ci.value:
            x = lower_str(x)
        r = g.d.array_contains(_elements_text(g, v, bool(ci.value)), x)
    return false_if_null(r, pred)


@scalar("__has_dyn", 3, T.BOOL, category="internal")
def _has_dyn(g, c, pred):
    hay = g.e(c.args[0])
    arr = elements_as(g, g.e(c.args[1]), T.STRING)
    all_ = bool(c.args[2].value)
    e = exp.column("e")
    test = exp.Lambda(this=_dynamic_term_match(g, hay, e, "has", False), expressions=[exp.to_identifier("e")])
    if g.d.name == "spark":
        r = fn("forall" if all_ else "exists", arr, test)
    else:
        hits = fn("len", fn("list_filter", arr, test))
        r = exp.EQ(this=hits, expression=fn("len", arr)) if all_ else exp.GT(this=hits, expression=n(0))
    return false_if_null(r, pred)
