"""The regular expression behind a ``parse`` / ``parse-where`` pattern.

``kind=simple`` (the default) matches the whole value: text segments are literal, ``*`` skips any
text, a typed column only matches its type's text. ``kind=regex`` takes the text segments as
regular expressions, and its columns are greedy (Kusto's documented outputs show ``name ',' *``
taking the text up to the last comma); flag ``U`` makes them lazy. ``kind=relaxed`` is simple, except
that a typed column whose text does not convert becomes null instead of failing the whole match.
"""

from __future__ import annotations

import re

from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.functions.common import re_quote
from kqlmagic_plus.language.compiler.syntax import Pos, Refusal

_TYPED = {
    T.LONG: r"(-?\d+)",
    T.INT: r"(-?\d+)",
    T.REAL: r"(-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)",
    T.BOOL: r"((?i:true|false))",
}


def build_parse(
    elements: list[tuple[str, object]], kind: str, flags: str, where: Pos
) -> tuple[str, list[tuple[str, str]]]:
    if kind not in ("simple", "regex", "relaxed"):
        raise Refusal(f"parse kind={kind}", where)
    parts: list[str] = []
    columns: list[tuple[str, str]] = []
    ungreedy = kind == "regex" and "U" in flags
    for i, (what, value) in enumerate(elements):
        last = i == len(elements) - 1
        if what == "star":
            parts.append(".*" if (last and kind != "regex") or ungreedy else ".*?")
        elif what == "text":
            text = str(value)
            if kind == "regex":
                if ungreedy and re.search(r"[*+?{]", re.sub(r"\\.", "", text)):
                    # U swaps the greediness of every quantifier; rewriting the user's own is not done.
                    raise Refusal("parse flags=U with quantifiers in the pattern's text", where)
                try:
                    extra = re.compile(text).groups
                except re.error:
                    extra = 0
                if extra:
                    parts.append(_no_capture(text))
                else:
                    parts.append(text)
            else:
                parts.append(re_quote(text))
        else:
            name, t = value  # type: ignore[misc]
            columns.append((name, t))
            if kind in ("simple", "regex") and t in _TYPED:
                parts.append(_TYPED[t])
            elif kind == "regex":
                parts.append("(.*?)" if ungreedy else "(.*)")
            elif kind == "relaxed" and t in _TYPED:
                # The type's text where it is there, else any text (which then converts to null).
                parts.append(_TYPED[t][:-1] + "|.*?)")
            else:
                parts.append("(.*)" if last else "(.*?)")
    body = "".join(parts)
    prefix = ""
    if kind == "regex":
        if flags:
            unknown = set(flags) - set("imsU")
            if unknown:
                raise Refusal(f"parse flags={flags}", where)
            kept = "".join(f for f in flags if f != "U")
            prefix = f"(?{kept})" if kept else ""
        return prefix + body, columns
    return "^" + body + "$", columns


def _no_capture(text: str) -> str:
    """Turn the capturing groups of a user's regex segment into non-capturing ones."""
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            out.append(text[i : i + 2])
            i += 2
            continue
        if ch == "(" and not text.startswith("(?", i):
            out.append("(?:")
            i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out)
