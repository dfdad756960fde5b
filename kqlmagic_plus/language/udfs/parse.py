"""Text parsers SQL cannot say plainly: ``parse_path``, ``parse_urlquery``, ``parse_ipv6``, ``parse_ipv6_mask``
and ``parse_version``.

Dynamic results are returned as JSON text. Input these parsers do not understand gives what Kusto documents for
it (an empty string for an address, null for a version); none of them guesses a form the reference does not show.
"""

from __future__ import annotations

import ipaddress
import json
import re

from kqlmagic_plus.language.udfs import udf

# -- parse_path ----------------------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_DRIVE = re.compile(r"^([A-Za-z]:)")


def path_parts(path: str) -> dict[str, str]:
    """The seven parts parse_path documents. Both slashes separate; a colon after the file name starts an
    alternate data stream; a drive letter (``C:``) is the root."""
    scheme = ""
    rest = path
    m = _SCHEME.match(rest)
    if m:
        scheme, rest = m.group(1), rest[m.end():]
    root = ""
    body = rest[4:] if rest.startswith("\\\\?\\") else rest  # a long path's \\?\ prefix is not a directory
    d = _DRIVE.match(body)
    if d:
        root = d.group(1)
    cut = max(rest.rfind("/"), rest.rfind("\\"))
    directory, name = (rest[:cut], rest[cut + 1:]) if cut >= 0 else ("", rest)
    stream = ""
    if ":" in name and not (cut < 0 and d):
        name, _, stream = name.partition(":")
    dir_name = re.split(r"[\\/]", directory)[-1] if directory else ""
    dot = name.rfind(".")
    return {"Scheme": scheme, "RootPath": root, "DirectoryPath": directory, "DirectoryName": dir_name,
            "Filename": name, "Extension": name[dot + 1:] if dot >= 0 else "", "AlternateDataStreamName": stream}


@udf("parse_path", ("string",), "dynamic")
def parse_path(path: str) -> str:
    return json.dumps(path_parts(path))


# -- parse_urlquery ------------------------------------------------------------------------------------

def url_query(query: str) -> dict[str, dict[str, str]]:
    """{"Query Parameters": {key: value}}: '&'-separated pairs, the first '=' splitting each (a key without
    one has the value ""), a later repeat of a key replacing the earlier; text kept as written, as parse_url
    keeps it."""
    params: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        params[key] = value
    return {"Query Parameters": params}


@udf("parse_urlquery", ("string",), "dynamic")
def parse_urlquery(query: str) -> str:
    return json.dumps(url_query(query))


# -- parse_ipv6 / parse_ipv6_mask ------------------------------------------------------------------------

_MAPPED = 0xFFFF << 32


def _address(text: str) -> tuple[int, int] | None:
    """(the 128-bit address, its prefix) of IPv6 or IPv4 text with an optional ``/prefix``. IPv4 text (and IPv6
    text ending in dotted IPv4 within ``::``/``::ffff:``) is the IPv4-mapped address, its prefix counted in IPv4
    bits plus 96, as the reference's parse_ipv6_mask examples show."""
    addr, slash, bits = text.strip().partition("/")
    addr = addr.strip()
    try:
        a = ipaddress.ip_address(addr)
    except ValueError:
        return None
    value = int(a)
    v4 = a.version == 4 or ("." in addr and value >> 32 in (0, 0xFFFF))
    if a.version == 6 and v4:
        value &= 0xFFFFFFFF
    width = 32 if v4 else 128
    if slash:
        if not bits.strip().isdigit() or int(bits) > width:
            return None
        prefix = int(bits)
    else:
        prefix = width
    if v4:
        return _MAPPED | value, prefix + 96
    return value, prefix


def canonical6(text: str, prefix: int | None = None) -> str:
    """Eight groups of four hex digits, the bits past the prefix cleared; "" for text that is not an address or
    a prefix outside 0..128."""
    got = _address(text)
    if got is None or (prefix is not None and not 0 <= prefix <= 128):
        return ""
    value, bits = got
    if prefix is not None:
        bits = min(bits, prefix)
    value &= ((1 << 128) - 1) ^ ((1 << (128 - bits)) - 1)
    digits = f"{value:032x}"
    return ":".join(digits[i:i + 4] for i in range(0, 32, 4))


@udf("parse_ipv6", ("string",), "string")
def parse_ipv6(text: str) -> str:
    return canonical6(text)


@udf("parse_ipv6_mask", ("string", "long"), "string")
def parse_ipv6_mask(text: str, prefix: int) -> str:
    return canonical6(text, int(prefix))


# -- parse_version -------------------------------------------------------------------------------------

_VERSION = re.compile(r"^\d{1,8}(\.\d{1,8}){0,3}$")


def version_number(text: str) -> str | None:
    """The decimal parse_version documents, as digits: up to four parts of up to eight digits, each part eight
    decimal places below the one before, missing trailing parts zero; null for anything else."""
    t = text.strip()
    if not _VERSION.match(t):
        return None
    parts = [int(p) for p in t.split(".")] + [0] * (4 - t.count(".") - 1)
    value = 0
    for p in parts:
        value = value * 10 ** 8 + p
    return str(value)


@udf("parse_version", ("string",), "string")
def parse_version(text: str) -> str | None:
    return version_number(text)


# -- buildschema ---------------------------------------------------------------------------------------

_INDEXER = "`indexer`"
_DATETIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


class SchemaUnsupported(ValueError):
    """A value whose buildschema type this engine cannot tell as Kusto does."""


def _schema_of(v: object) -> object:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "long"
    if isinstance(v, float):
        return "double"
    if isinstance(v, str):
        if _DATETIME_TEXT.match(v):
            # Kusto's dynamic keeps a datetime's type, the JSON these engines hold does not: "string" could be
            # wrong.
            raise SchemaUnsupported("buildschema() of a dynamic holding a datetime text (datetime or string?)")
        return "string"
    if isinstance(v, dict):
        out: dict[str, object] = {}
        for k, x in v.items():
            if x is not None:
                out[k] = _merge(out[k], _schema_of(x)) if k in out else _schema_of(x)
        return out
    if isinstance(v, list):
        inner: object = None
        for x in v:
            if x is not None:
                inner = _schema_of(x) if inner is None else _merge(inner, _schema_of(x))
        return {_INDEXER: inner} if inner is not None else {}
    raise SchemaUnsupported(f"buildschema() of {v!r}")


def _alternatives(s: object) -> list[object]:
    return list(s) if isinstance(s, list) else [s]


def _merge(a: object, b: object) -> object:
    """One schema for values of schemas *a* and *b*: objects merge key by key (keys in the order first seen);
    differing types become the list of the alternatives, in the order first seen."""
    alts = _alternatives(a)
    for x in _alternatives(b):
        if isinstance(x, dict):
            at = next((i for i, y in enumerate(alts) if isinstance(y, dict)), None)
            if at is None:
                alts.append(x)
            else:
                merged = dict(alts[at])  # type: ignore[call-overload]
                for k, v in x.items():
                    merged[k] = _merge(merged[k], v) if k in merged else v
                alts[at] = merged
        elif x not in alts:
            alts.append(x)
    return alts[0] if len(alts) == 1 else alts


def build_schema(values_json: str) -> str | None:
    """buildschema over a group: *values_json* is a JSON array of the values' JSON texts (nulls left out)."""
    texts = json.loads(values_json)
    schema: object = None
    for t in texts:
        v = json.loads(t) if isinstance(t, str) else t
        if v is None:
            continue
        s = _schema_of(v)
        schema = s if schema is None else _merge(schema, s)
    return None if schema is None else json.dumps(schema, separators=(",", ":"))


@udf("buildschema", ("string",), "dynamic")
def buildschema(values_json: str) -> str | None:
    return build_schema(values_json)
