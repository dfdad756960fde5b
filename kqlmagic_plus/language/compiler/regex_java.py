"""A KQL regular expression (RE2 syntax) in the form Java's ``java.util.regex`` (Spark) reads the same way.

KQL's patterns are RE2's; DuckDB runs RE2 itself, Spark runs Java's engine, which reads a few RE2 spellings
differently or refuses them when the query runs (Spark's ``INVALID_PARAMETER_VALUE.PATTERN``, or a failed
collect):

* ``[`` inside a character class is a literal in RE2 but opens a nested class (a union) in Java:
  ``[[",\\]]`` is the three characters ``[ " ,`` plus ``]`` in RE2 and an unclosed class in Java;
* ``&&`` inside a class is two ampersands in RE2 and an intersection in Java;
* a ``{`` that does not start a repetition (``{n}``, ``{n,}``, ``{n,m}``) is a literal in RE2 and
  "Illegal repetition" in Java (``\\w{ 38,42}``);
* ``(?P<name>...)`` names a group in RE2; Java spells it ``(?<name>...)``;
* POSIX classes inside a class (``[[:digit:]]``) are RE2's; Java spells them ``\\p{Digit}``.

Everything else is passed through as written: the two engines agree on it, or Java reports it itself.
"""

from __future__ import annotations

import re

#: RE2's POSIX classes -> Java's ``\p{...}`` names (ASCII, as RE2's are).
_POSIX = {"alnum": "Alnum", "alpha": "Alpha", "ascii": "ASCII", "blank": "Blank", "cntrl": "Cntrl",
          "digit": "Digit", "graph": "Graph", "lower": "Lower", "print": "Print", "punct": "Punct",
          "space": "Space", "upper": "Upper", "word": "w", "xdigit": "XDigit"}
_REPEAT = re.compile(r"\{\d+(,\d*)?\}")
_POSIX_AT = re.compile(r"\[:(\^?)([a-z]+):\]")


def java_regex(pattern: str) -> str:
    """*pattern* (RE2) rewritten for Java where the two read it differently; unchanged otherwise."""
    out: list[str] = []
    i, size = 0, len(pattern)
    in_class = False
    while i < size:
        ch = pattern[i]
        if ch == "\\":
            if pattern.startswith("\\Q", i):  # \Q...\E quotes alike in both
                end = pattern.find("\\E", i + 2)
                end = size if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
                out.append(ch)
            elif ch == "[":
                m = _POSIX_AT.match(pattern, i)
                if m and m.group(2) in _POSIX:
                    out.append(("\\P{" if m.group(1) else "\\p{") + _POSIX[m.group(2)] + "}")
                    i = m.end()
                    continue
                out.append("\\[")
            elif ch == "&" and pattern.startswith("&&", i):
                out.append("&\\&")
                i += 2
                continue
            else:
                out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # A ']' first in the class (after an optional '^') is a literal in both engines.
            if pattern.startswith("^", i):
                out.append("^")
                i += 1
            if pattern.startswith("]", i):
                out.append("\\]")
                i += 1
            continue
        if ch == "{" and not _REPEAT.match(pattern, i):
            out.append("\\{")
            i += 1
            continue
        if pattern.startswith("(?P<", i):
            out.append("(?<")
            i += 4
            continue
        out.append(ch)
        i += 1
    return "".join(out)
