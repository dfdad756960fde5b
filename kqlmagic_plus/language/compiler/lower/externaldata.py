"""``externaldata (cols) [urls] with (props)``: a table the engine reads from the URLs just before the SQL runs.

Nothing is fetched here: the source is checked (types, schemes, format, properties, mapping) and recorded on
the lowerer (``lw.external``); the SQL reads it as a table by the name the source carries.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.external import (
    DELIMITED,
    FORMATS,
    PROPERTIES,
    UNREAD_FORMATS,
    ExternalSource,
)
from kqlmagic_plus.language.compiler.lower.coerce import literal
from kqlmagic_plus.language.compiler.lower.scope import Env
from kqlmagic_plus.language.compiler.syntax import Refusal, SemanticError, name_of, pos
from kqlmagic_plus.language.compiler.types import Column, Schema

if TYPE_CHECKING:
    from kqlmagic_plus.language.compiler.lower.lowerer import Lowerer

#: JSON paths a mapping may give: ``$``, ``$.a.b``, ``$['a b']``, ``$.a[0]``.
JSON_PATH = re.compile(r"^\$(?:\.[A-Za-z_$@][\w$@\-]*|\[\s*(?:\d+|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\s*\])*$")


def externaldata(lw: Lowerer, c: Any, env: Env) -> ir.Node:
    cols: list[tuple[str, str]] = []
    for col in c.Schema.Columns:
        t = T.type_from_word(col.Type.getText())
        if t is None:
            raise Refusal(f"externaldata column type {col.Type.getText()}", pos(col))
        cols.append((name_of(col.Name), t))
    if len({n for n, _ in cols}) < len(cols):
        raise SemanticError("externaldata declares a column twice", pos(c))
    urls = tuple(_url(literal(u).value, pos(u)) for u in c.ConnectionStrings)
    if not urls:
        raise SemanticError("externaldata needs at least one URL", pos(c))
    props = _properties(c)
    fmt = props.pop("format", "")
    if fmt:
        fmt = fmt.lower()
        if fmt in UNREAD_FORMATS:
            raise Refusal(f"externaldata format {fmt!r}", pos(c),
                          f"the formats read are {', '.join(sorted(set(FORMATS)))}")
        if fmt not in FORMATS:
            raise Refusal(f"externaldata format {fmt!r}", pos(c), "not an ingestion data format; the formats read "
                          f"are {', '.join(sorted(set(FORMATS)))}")
        fmt = FORMATS[fmt]
    first = props.pop("ignorefirstrecord", "false").lower()
    if first not in ("true", "false", "1", "0"):
        raise SemanticError(f"externaldata: ignoreFirstRecord={first!r} is not a bool", pos(c))
    mapping = _mapping(props.pop("ingestionmapping", None), cols, pos(c))
    zip_pattern = props.pop("zippattern", None)
    source = ExternalSource.make(tuple(cols), urls, fmt, first in ("true", "1"), mapping, zip_pattern)
    for url in urls:  # the format each URL is read as (declared, or from its extension)
        _check_format(source, source.format_of(url), pos(c))
    lw.external[source.table] = source
    return ir.External(Schema([Column(n, t) for n, t in cols]), source.table, source=source)


def _check_format(source: ExternalSource, fmt: str, where: Any) -> None:
    """What a format's records can give: one field a line (txt, raw), fields by place (delimited), by path
    (JSON); Parquet has both."""
    if fmt in ("txt", "raw") and (len(source.columns) != 1 or source.mapping):
        raise Refusal(f"externaldata format {fmt!r} with {len(source.columns)} columns or a mapping", where,
                      "its records have one field: declare one column")
    kinds = {k for k, _ in source.mapping}
    if fmt in DELIMITED and "path" in kinds:
        raise Refusal(f"externaldata mapping Path for format {fmt!r}", where, "a delimited format maps by Ordinal")
    if fmt in ("json", "multijson") and "ordinal" in kinds:
        raise Refusal(f"externaldata mapping Ordinal for format {fmt!r}", where, "a JSON format maps by Path")


def _url(value: Any, where: Any) -> str:
    url = str(value or "").strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("http", "https"):
        what = f"{scheme}://" if scheme else "a local file path" if url else "an empty URL"
        raise Refusal(f"externaldata from {what}", where,
                      "it reads http(s) URLs (a SAS in the URL is the sign-in); a local file is read with "
                      "--mount NAME=PATH")
    if ";" in url.split("?", 1)[0].split("://", 1)[1]:
        # ';managed_identity=...', ';impersonate', ';token=...': a sign-in this engine does not make
        raise Refusal("externaldata with a storage sign-in after ';'", where,
                      "give the URL with a SAS token, or run the query on the service")
    return url


def _properties(c: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    clause = c.WithClause
    for p in clause.Properties if clause is not None else []:
        name = name_of(p.Name)
        if name.lower() not in PROPERTIES:
            raise Refusal(f"externaldata property {name!r}", pos(p),
                          "the properties read are format, ignoreFirstRecord, ingestionMapping, zipPattern")
        value = list(p.children or [])[-1]
        out[name.lower()] = str(literal(p.StringValue).value) if p.StringValue is not None else value.getText()
    return out


def _mapping(text: str | None, cols: list[tuple[str, str]], where: Any) -> tuple[tuple[str, str], ...]:
    """Per declared column, where its value comes from (see :class:`ExternalSource`)."""
    if text is None:
        return ()
    try:
        items = json.loads(text)
    except ValueError:
        raise SemanticError("externaldata: ingestionMapping is not JSON", where) from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SemanticError("externaldata: ingestionMapping must be a JSON array of objects", where)
    declared = [n for n, _ in cols]
    got: dict[str, tuple[str, str]] = {}
    for item in items:
        low = {k.lower(): v for k, v in item.items()}
        column = low.pop("column", None)
        if column not in declared:
            raise SemanticError(f"externaldata: ingestionMapping maps {column!r}, which is not a declared "
                                f"column ({', '.join(declared)})", where)
        props = low.pop("properties", None) or {}
        low.pop("datatype", None)  # the declared schema gives the type
        props = {**{k.lower(): v for k, v in props.items()}, **low}
        for k in list(props):
            if props[k] in ("", None) and k != "constvalue":
                props.pop(k)
        kinds = [k for k in ("path", "ordinal", "constvalue") if k in props]
        other = sorted(set(props) - {"path", "ordinal", "constvalue"})
        if other:
            raise Refusal(f"externaldata ingestionMapping property {other[0]!r}", where,
                          "a mapping's Path, Ordinal and ConstValue are read")
        if len(kinds) != 1:
            raise SemanticError(f"externaldata: the mapping of {column!r} needs one of Path, Ordinal, ConstValue",
                                where)
        kind, value = kinds[0], str(props[kinds[0]])
        if kind == "path" and not JSON_PATH.match(value):
            raise Refusal(f"externaldata mapping path {value!r}", where, "paths of names and indexes are read")
        if kind == "ordinal" and not value.isdigit():
            raise SemanticError(f"externaldata: Ordinal {value!r} of {column!r} is not a number", where)
        got[column] = ("const" if kind == "constvalue" else kind, value)
    # A declared column the mapping leaves out is null, as the service leaves it.
    return tuple(got.get(n, ("none", "")) for n in declared)

