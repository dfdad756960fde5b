"""Python names in a magic line, looked up (never evaluated) and given their meaning safely.

Kqlmagic notebooks reach Python values three ways, and each keeps its meaning here without any text
of a value ever becoming query or connection syntax:

* ``-query VAR`` / ``-conn VAR``: the str the variable holds is the query / the connection string.
* ``loganalytics://code;workspace=ws_id;tenant=ten_id`` (and ``code().workspace(ws_id)``): a bare
  value naming a str variable is replaced by that string, quoted the connection-string way (``'``
  doubled), so a value cannot end its field and add another.
* ``{name}``, ``{obj.attr}``, ``{d['k']}`` in a line query (IPython expanded these as text for
  Kqlmagic): in a value position the value is bound as a query parameter (the one literal encoder /
  declare path); in a table or column position it must be a plain identifier, which is inserted as
  one; any other ``{expression}`` is an error naming the safe alternative (``--param``).

A reference is checked with :mod:`ast` to be names, attributes and constant subscripts only, then
walked with ``getattr`` / ``[]``: no expression is evaluated.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

from kqlmagic_plus.errors import OptionError

#: Tokens after which a ``{ref}`` stands for a value (it is bound as a parameter). Elsewhere - the
#: query's start, after ``where``/``project``/``by``/``on``/``|``, after a top-level comma - it names a
#: table or a column. Compared lower case.
VALUE_AFTER = frozenset({
    "==", "!=", "<>", "<", ">", "<=", ">=", "=~", "!~", "=", "+", "-", "*", "/", "%", "..",
    "contains", "!contains", "contains_cs", "!contains_cs", "has", "!has", "has_cs", "!has_cs",
    "hasprefix", "!hasprefix", "hassuffix", "!hassuffix", "startswith", "!startswith", "startswith_cs",
    "!startswith_cs", "endswith", "!endswith", "endswith_cs", "!endswith_cs", "like", "notlike",
    "matches", "regex", "in", "!in", "in~", "!in~", "has_any", "has_all", "between", "!between",
    "take", "limit", "top", "sample", "and", "or", "not", "return",
})


def _parse_reference(text: str) -> ast.expr | None:
    """The AST of *text* when it is a reference (names, attributes, constant subscripts), else None."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return None
    cur: ast.expr = node
    while True:
        if isinstance(cur, ast.Name):
            return node
        if isinstance(cur, ast.Attribute):
            if cur.attr.startswith("_"):
                return None  # private and dunder attributes (__class__, __globals__) are no data
            cur = cur.value
        elif isinstance(cur, ast.Subscript):
            if not (isinstance(cur.slice, ast.Constant) and isinstance(cur.slice.value, (str, int))
                    and not isinstance(cur.slice.value, bool)):
                return None
            cur = cur.value
        else:
            return None


def is_reference(text: str) -> bool:
    """Whether *text* is a reference this module may look up (``x``, ``a.b``, ``d['k']``, ``l[0]``)."""
    return _parse_reference(text) is not None


_MISSING = object()
_ABSENT = object()


def lookup(text: str, namespace: Mapping[str, Any], *, default: Any = _MISSING) -> Any:
    """The value *text* refers to in *namespace*: names, attributes and constant subscripts, walked
    one step at a time (getattr / []), never evaluated. Missing: *default*, or an OptionError."""
    node = _parse_reference(text)
    if node is None:
        raise OptionError(f"{text!r} is not a variable reference (a name, name.attr or name['key'])")
    steps: list[ast.expr] = []
    cur: ast.expr = node
    while not isinstance(cur, ast.Name):
        steps.append(cur)
        cur = cur.value  # type: ignore[attr-defined]
    if cur.id not in namespace:
        if default is not _MISSING:
            return default
        raise OptionError(f"{text}: no variable named {cur.id!r} in the notebook")
    value = namespace[cur.id]
    for step in reversed(steps):
        try:
            # One step at a time: an attribute, or an item with a constant key; nothing else is run.
            value = getattr(value, step.attr) if isinstance(step, ast.Attribute) \
                else value[step.slice.value]  # type: ignore[attr-defined]
        except (AttributeError, KeyError, IndexError, TypeError) as exc:
            if default is not _MISSING:
                return default
            raise OptionError(f"{text}: {type(exc).__name__}: {exc}") from None
    return value


def str_variable(text: str, namespace: Mapping[str, Any], option: str) -> str:
    """The str a reference holds (``-query VAR``): an error naming the option if it is not one."""
    value = lookup(text, namespace)
    if not isinstance(value, str):
        raise OptionError(f"{option} {text}: expected a str variable, got {type(value).__name__}")
    return value


# -- connection strings -----------------------------------------------------------------------------

#: A quoted value (left alone) or ``key=NAME`` / ``key(NAME)`` with NAME a bare (dotted) name.
_CONN_VALUE = re.compile(
    r"""(?P<quoted>'(?:[^']|'')*'|"(?:[^"]|"")*")"""
    r"""|(?P<key>[A-Za-z][A-Za-z0-9_-]*)\s*(?:=|\()\s*"""
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*(?=[;)]|$)""")


def resolve_connection(conn: str, namespace: Mapping[str, Any]) -> tuple[str, list[str]]:
    """*conn* with every bare value that names a str variable replaced by that string, quoted.

    Returns the connection string and one note per value taken (``workspace from ws_id``). A bare
    value naming no str variable stays literal text, as before.
    """
    text = conn.strip()
    if "://" not in text:
        if is_reference(text) and "." in text:
            value = lookup(text, namespace, default=None)
            if isinstance(value, str):
                return value.strip(), [f"connection string from {text}"]
        return conn, []
    scheme, _, body = text.partition("://")
    out, notes, last = [], [], 0
    for m in _CONN_VALUE.finditer(body):
        if m.group("name") is None:
            continue
        value = lookup(m.group("name"), namespace, default=None)
        if not isinstance(value, str):
            continue
        out.append(body[last:m.start("name")])
        # Quoted with ' doubled: the value stays one value whatever it holds (';', ')', quotes).
        out.append("'" + value.replace("'", "''") + "'")
        last = m.end("name")
        notes.append(f"{m.group('key')} from {m.group('name')}")
    if not notes:
        return conn, []
    out.append(body[last:])
    return f"{scheme}://{''.join(out)}", notes


# -- {name} in a line query ------------------------------------------------------------------------

_PARTIAL = re.compile(r"\{([^{}]+)\}")


def expand(query: str, namespace: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """A line query's ``{ref}`` references given their meaning: ``(query, parameters)``.

    ``{ref}`` inside a string literal (``'{x.value}'``) becomes the parameter (or a ``strcat`` of the
    literal's pieces and the parameter) when *ref* names a variable; a string literal whose braces
    name no variable (a regex ``\\d{3}``) is left alone. A bare ``{ref}`` is a parameter in a value
    position and an identifier in a table or column position. ``{...}`` holding a Python expression
    other than a reference is an error; KQL's own braces (``dynamic({"a": 1})``) are left alone.
    """
    if "{" not in query:
        return query, {}
    from kqlmagic_plus.language.lexer import tokenize

    tokens = tokenize(query)
    params: dict[str, Any] = {}
    pieces: list[str] = []
    pos = 0
    prev: str | None = None  # the previous significant token, lower case
    seen: list[str] = []  # the significant tokens so far, lower case
    depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "string":
            new = _expand_string(tok.text, namespace, params)
            if new is not None:
                pieces += [query[pos:tok.start], new]
                pos = tok.end
            prev = "<value>"
            i += 1
            continue
        if tok.text == "{" and tok.kind == "punct":
            close = query.find("}", tok.end)
            inner = query[tok.end:close] if close > 0 else ""
            if close > 0 and "\n" not in inner and _is_python_expression(inner):
                if not is_reference(inner):
                    raise OptionError(f"{{{inner.strip()}}} at column {tok.start + 1}: only names, name.attr "
                                      "and name['key'] are looked up here (nothing is evaluated); compute the "
                                      f"value in Python and pass it with --param NAME=VALUE, or {{NAME}}")
                value = lookup(inner, namespace)
                value_position = (prev in VALUE_AFTER or (depth > 0 and prev in ("(", ","))) \
                    and not _table_list(seen)
                pieces += [query[pos:tok.start], _substitute(inner.strip(), value, value_position, params,
                                                             tok.start)]
                pos = close + 1
                while i < len(tokens) and tokens[i].start <= close:
                    i += 1
                prev = "<value>"
                seen.append(prev)
                continue
        if tok.kind not in ("ws", "comment"):
            if tok.text in ("(", "["):
                depth += 1
            elif tok.text in (")", "]"):
                depth = max(0, depth - 1)
            prev = tok.text.lower()
            seen.append(prev)
        i += 1
    if not params and not pieces:
        return query, {}
    pieces.append(query[pos:])
    return "".join(pieces), params


#: Token sequences (lower case) ending just before a ``{ref}`` that opens a list of tables: ``search in (``,
#: ``union (`` / ``union T,``, ``find in (``.
_TABLE_LISTS = (("search", "in", "("), ("find", "in", "("), ("union", "("), ("union",))


def _table_list(seen: list[str]) -> bool:
    """Whether the next word is inside a list of tables (``search in (T1, {ref})``, ``union {ref}``)."""
    tail = list(seen)
    while len(tail) >= 2 and tail[-1] == "," and tail[-2] not in ("(", ","):
        tail = tail[:-2]  # skip `T1,` entries back to the list's start
    return any(tuple(tail[-len(p):]) == p for p in _TABLE_LISTS)


def _is_python_expression(inner: str) -> bool:
    """``{x + 1}`` or ``{f(y)}`` (Python, refused) rather than KQL's own ``{"a": 1}`` / ``{}``."""
    if not inner.strip():
        return False
    try:
        node = ast.parse(inner.strip(), mode="eval").body
    except SyntaxError:
        return False
    return not isinstance(node, (ast.Dict, ast.Set, ast.Constant))


def _param_name(ref: str, params: dict[str, Any], value: Any) -> str:
    """``py_<ref>``: the same reference used twice with the same value is one parameter."""
    from kqlmagic_plus.language import literals

    base = re.sub(r"\W+", "_", ref).strip("_") or "value"
    name = "py_" + base
    n = 1
    while (name in params and not (type(params[name]) is type(value) and _same(params[name], value))) \
            or not literals.is_identifier(name):
        n += 1
        name = f"py_{base}_{n}"
    return name


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # a DataFrame compares element-wise
        return a is b


def _substitute(ref: str, value: Any, value_position: bool, params: dict[str, Any], at: int) -> str:
    from kqlmagic_plus.language import literals

    if value_position:
        name = _param_name(ref, params, value)
        params[name] = value
        return name
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        shown = value if isinstance(value, str) else type(value).__name__
        raise OptionError(f"{{{ref}}} at column {at + 1} is in a table or column position, so its value must be "
                          f"a table or column name (letters, digits, _), got {shown!r}; to compare with a "
                          "value, put it after an operator (== {x}) or in quotes ('{x}')")
    return literals.identifier(value)


def _expand_string(text: str, namespace: Mapping[str, Any], params: dict[str, Any]) -> str | None:
    """A string literal holding ``{ref}`` pieces as the parameter(s) they name, or None to leave it."""
    head = 0
    while head < len(text) and text[head] in "hH@":
        head += 1
    quote = text[head:head + 3] if text[head:head + 3] in ("```", "~~~") else text[head:head + 1]
    body = text[head + len(quote): len(text) - len(quote)] if text.endswith(quote) else None
    if not body or "{" not in body:
        return None
    # `{{x}}` is IPython's escape for literal braces: left alone.
    found = [(m, lookup(m.group(1), namespace, default=_ABSENT))
             for m in _PARTIAL.finditer(body) if is_reference(m.group(1))
             and not (body[m.start() - 1:m.start()] == "{" and body[m.end():m.end() + 1] == "}")]
    found = [(m, v) for m, v in found if v is not _ABSENT]
    if not found:
        return None
    parts: list[str] = []
    last = 0
    for m, value in found:
        if m.start() > last:
            parts.append(text[:head] + quote + body[last:m.start()] + quote)
        text_value = value if isinstance(value, str) else str(value)  # IPython spliced str(value) here
        name = _param_name(m.group(1).strip(), params, text_value)
        params[name] = text_value
        parts.append(name)
        last = m.end()
    if last < len(body):
        parts.append(text[:head] + quote + body[last:] + quote)
    return parts[0] if len(parts) == 1 else "strcat(" + ", ".join(parts) + ")"
