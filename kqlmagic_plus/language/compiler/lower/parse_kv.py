"""``parse-kv``: the key/value pairs of a string as typed columns.

The vendored grammar has no parse-kv, so :func:`rewrite` (called by ``syntax.preprocess``) turns
``| parse-kv Expr as (...) with (...)`` into ``| extend   __kqlpkv=__kqlpkv(Expr, @'as (...) with (...)')``
by insertions only (every position the user wrote stays where it was), and :func:`lower_extend` reads
the key list and options back from that string here.

Each key becomes one regex, built here, whose leftmost match is the key's first appearance: the key
(bare or quoted) at the start of the text or after a pair delimiter, the key/value delimiter, then the
value: quoted (escapes allowed), or up to the next pair delimiter (greedy: up to the next ``key=``).
Without delimiters any non-alphanumeric character separates, as Kusto documents. With ``regex=`` the
pattern's two groups are the keys and the values of every pair.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import literals as L
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.functions.common import re_quote
from kqlmagic_plus.language.compiler.syntax import PARSE_KV_CALL, Pos, Refusal, SemanticError
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer
    from kqlmagic_plus.language.compiler.lower.scope import Env

CALL = PARSE_KV_CALL


def lower_extend(lw: Lowerer, c: Any, node: ir.Node, env: Env) -> ir.Node | None:
    """The parse-kv an ``extend`` stands for (see :func:`rewrite`), or None for any other extend."""
    from kqlmagic_plus.language.compiler.lower.coerce import coerce_to
    from kqlmagic_plus.language.compiler.lower.scope import row_scope
    from kqlmagic_plus.language.compiler.parsetree import collapse, rule
    from kqlmagic_plus.language.compiler.syntax import pos

    exprs = list(c.Expressions)
    if len(exprs) != 1 or lw.explicit_name(exprs[0]) != CALL:
        return None
    call = collapse(exprs[0].Expression)
    if rule(call) != "NamedFunctionCallExpression":
        return None
    args = list(call.Arguments)
    where = pos(c)
    sc = row_scope(node, env)
    subject = coerce_to(lw.expr(args[0], sc), T.STRING, pos(args[0]))
    spec = lw.expr(args[1], sc)
    keys, opts = _read_spec(spec.value, where)  # type: ignore[attr-defined]
    items = [(col.name, ir.Col(col.type, col.name)) for col in node.schema]
    index = {n: k for k, (n, _) in enumerate(items)}
    for name, t in keys:
        e = _value(subject, name, t, opts, where)
        if name in index:
            items[index[name]] = (name, e)
        else:
            index[name] = len(items)
            items.append((name, e))
    out = Schema([Column(n, e.type) for n, e in items])
    return ir.Select(out, node, items, order=node.order)


def _read_spec(text: str, where: Pos) -> tuple[list[tuple[str, str]], dict[str, list[Any]]]:
    """``as (k: type, ...) with (name=value, ...)`` -> the keys and their types, the options (a list each:
    ``quote`` and ``escape`` may repeat)."""
    from kqlmagic_plus.language.lexer import significant, tokenize

    toks = [t for t in significant(tokenize(text))]
    k = 0

    def take(expected: str | None = None) -> Any:
        nonlocal k
        if k >= len(toks) or (expected is not None and toks[k].text.lower() != expected):
            got = toks[k].text if k < len(toks) else "the end"
            raise SemanticError(f"parse-kv: expected {expected or 'more'} but found {got}", where)
        k += 1
        return toks[k - 1]

    take("as")
    take("(")
    keys: list[tuple[str, str]] = []
    while True:
        t = take()
        if t.text == "[":
            name = L.string_token(take().text)
            take("]")
        elif t.kind == "string":
            name = L.string_token(t.text)
        else:
            name = t.text
        take(":")
        word = take().text
        kql = T.type_from_word(word)
        if kql is None:
            raise SemanticError(f"parse-kv: unknown type {word!r} for key {name!r}", where)
        keys.append((name, kql))
        sep = take()
        if sep.text == ")":
            break
        if sep.text != ",":
            raise SemanticError(f"parse-kv: expected , or ) but found {sep.text}", where)
    opts: dict[str, list[Any]] = {}
    if k < len(toks):
        take("with")
        take("(")
        while k < len(toks) and toks[k].text != ")":
            name = take().text.lower()
            take("=")
            v = take()
            value: Any = L.string_token(v.text) if v.kind == "string" else v.text.lower() == "true"
            opts.setdefault(name, []).append(value)
            if k < len(toks) and toks[k].text == ",":
                k += 1
        take(")")
    known = {"pair_delimiter", "kv_delimiter", "quote", "escape", "greedy", "regex"}
    for name in opts:
        if name not in known:
            raise Refusal(f"parse-kv option {name}", where)
    return keys, opts


def _one(opts: dict[str, list[Any]], name: str) -> Any:
    vals = opts.get(name)
    return vals[-1] if vals else None


def _value(subject: ir.Expr, key: str, t: str, opts: dict[str, list[Any]], where: Pos) -> ir.Expr:
    regex = _one(opts, "regex")
    if regex is not None:
        return ir.Call(t, "__parse_kv_pairs", (subject, ir.Lit(T.STRING, regex), ir.Lit(T.STRING, key)))
    quotes: list[tuple[str, str]] = []
    for q in opts.get("quote", []):
        if not isinstance(q, str) or len(q) not in (1, 2):
            raise SemanticError("parse-kv: a quote is one or two characters", where)
        quotes.append((q[0], q[-1]))
    escapes = [e for e in opts.get("escape", []) if isinstance(e, str)]
    if any(len(e) != 1 for e in escapes):
        raise SemanticError("parse-kv: an escape is one character", where)
    pair, kv = _one(opts, "pair_delimiter"), _one(opts, "kv_delimiter")
    if (pair is None) != (kv is None):
        raise SemanticError("parse-kv: give both pair_delimiter and kv_delimiter, or neither", where)
    if pair == "" or kv == "":
        raise SemanticError("parse-kv: a delimiter cannot be empty", where)
    esc_class = "".join(re_quote(e) for e in escapes)
    key_forms = [re_quote(o) + re_quote(key) + re_quote(c) for o, c in quotes] + [re_quote(key)]
    key_re = "(?:" + "|".join(key_forms) + ")"
    values = []
    for o, c in quotes:
        body = f"(?:[^{re_quote(c)}{esc_class}]|[{esc_class}].)*" if escapes else f"[^{re_quote(c)}]*"
        values.append(f"{re_quote(o)}({body}){re_quote(c)}")
    if pair is not None:
        p, d = re_quote(pair), re_quote(kv)
        start = f"(?:^|{p})\\s*"
        sep = f"\\s*{d}\\s*"
        if _one(opts, "greedy"):
            # Up to the next key=... (or the end): a pair delimiter, a word without delimiters, the kv delimiter.
            not_delims = f"[^{p}{d}]" if len(pair) == 1 and len(kv) == 1 else "\\S"
            values.append(f"(.*?)(?:{p}{not_delims}+{d}|$)")
        else:
            values.append(f"(.*?)(?:{p}|$)")
    else:
        quote_chars = "".join(re_quote(x) for o, c in quotes for x in (o, c))
        start = "(?:^|[^\\w])"
        sep = f"\\s*[^\\w\\s{quote_chars}]\\s*"
        values.append("(\\w*)")
    pattern = start + key_re + sep + "(?:" + "|".join(values) + ")"
    quoted = len(quotes)
    return ir.Call(
        t,
        "__parse_kv_value",
        (subject, ir.Lit(T.STRING, pattern), ir.Lit(T.LONG, quoted), ir.Lit(T.STRING, "".join(escapes))),
    )
