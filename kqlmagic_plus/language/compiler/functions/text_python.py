"""String functions neither SQL dialect can express, run as Python (``kqlmagic_plus.language.udfs.text``):
``replace_strings``, ``punycode_*``, ``gzip_decompress_from_base64_string``,
``zlib_decompress_from_base64_string``, ``url_encode_component``, ``url_encode``, ``dynamic_to_json``,
``parse_csv``, ``parse_xml``, ``parse_command_line``.

A call whose arguments are all constants is evaluated here, at compile time; any other becomes a UDF call the
engine registers. ``gzip_compress_to_base64_string`` and ``zlib_compress_to_base64_string`` are refused:
Kusto's deflate stream (.NET's encoder settings) is not reproduced byte for byte by another encoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import empty_if_null, lit_str
from kqlmagic_plus.language.compiler.syntax import Refusal
from kqlmagic_plus.language.udfs import text as py

TABLE = Table()

#: KQL name -> its Python function (a UDF of the same name).
STRING_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "punycode_from_string": py.punycode_from_string,
    "punycode_to_string": py.punycode_to_string,
    "punycode_domain_from_string": py.punycode_domain_from_string,
    "punycode_domain_to_string": py.punycode_domain_to_string,
    "gzip_decompress_from_base64_string": py.gzip_decompress_from_base64_string,
    "zlib_decompress_from_base64_string": py.zlib_decompress_from_base64_string,
}


def _const(a: ir.Expr) -> tuple[bool, Any]:
    if isinstance(a, ir.Lit):
        return True, "" if a.value is None and a.type in (T.STRING, T.NULL) else a.value
    return False, None


def _string_function(name: str, func: Callable[..., Any]):
    def emit(g, c, pred):
        known, value = _const(c.args[0])
        if known:
            return g.e(ir.Lit(T.STRING, func(value)))
        return udfs.call(name, empty_if_null(g.e(c.args[0])))

    return emit


for _name, _func in STRING_FUNCTIONS.items():
    TABLE.scalar(_name, 1, T.STRING, coerce="string")(_string_function(_name, _func))


@TABLE.scalar("replace_strings", 3, T.STRING, coerce=("string", "dynamic", "dynamic"))
def _replace_strings(g, c, pred):
    consts = [_const(a) for a in c.args]
    if all(known for known, _ in consts):
        return g.e(ir.Lit(T.STRING, py.replace_strings(*(v for _, v in consts))))
    text, lookups, rewrites = c.args
    return udfs.call("replace_strings", empty_if_null(g.e(text)), g.d.dyn_to_json_text(g.e(lookups)),
                     g.d.dyn_to_json_text(g.e(rewrites)))


def _url_encode(name: str, space: str):
    def emit(g, c, pred):
        known, value = _const(c.args[0])
        if not known:
            raise Refusal(f"{name} of a computed value", reason="how !*()~' are escaped is not documented")
        odd = py.url_unsettled(value)
        if odd:
            raise Refusal(f"{name} of text with {odd!r}", reason="how these characters are escaped is not documented")
        return g.e(ir.Lit(T.STRING, py.url_encode_component(value).replace("%20", space)))

    return emit


TABLE.scalar("url_encode_component", 1, T.STRING, coerce="string")(_url_encode("url_encode_component", "%20"))
TABLE.scalar("url_encode", 1, T.STRING, coerce="string")(_url_encode("url_encode", "+"))

_COMPRESS = "Kusto's deflate output (.NET's encoder) is not reproduced byte for byte"
TABLE.refused_everywhere("gzip_compress_to_base64_string", _COMPRESS)
TABLE.refused_everywhere("zlib_compress_to_base64_string", _COMPRESS)


@TABLE.scalar("dynamic_to_json", 1, T.STRING, coerce="dynamic")
def _dynamic_to_json(g, c, pred):
    a = c.args[0]
    if isinstance(a, ir.Lit) and a.value is not None:
        return g.e(ir.Lit(T.STRING, py.dynamic_to_json(json.dumps(a.value))))
    return udfs.call("dynamic_to_json", g.d.dyn_to_json_text(g.e(a)))


@TABLE.scalar("parse_csv", 1, T.DYNAMIC, coerce="string")
def _parse_csv(g, c, pred):
    known, value = _const(c.args[0])
    if known:
        return g.e(ir.Lit(T.DYNAMIC, json.loads(py.parse_csv(value))))
    return g.d.dyn_from_json_text(udfs.call("parse_csv", empty_if_null(g.e(c.args[0]))))


@TABLE.scalar("parse_xml", 1, T.DYNAMIC, coerce="string")
def _parse_xml(g, c, pred):
    known, value = _const(c.args[0])
    if known:
        got = py.parse_xml(value)
        return g.e(ir.Lit(T.DYNAMIC, None if got is None else json.loads(got)))
    return g.d.dyn_from_json_text(udfs.call("parse_xml", empty_if_null(g.e(c.args[0]))))


@TABLE.scalar("parse_command_line", 2, T.DYNAMIC, coerce="string")
def _parse_command_line(g, c, pred):
    kind = lit_str(c.args[1])
    if kind is None or kind.lower() != "windows":
        raise Refusal(f"parse_command_line with parser {kind!r}", reason='"windows" is the only parser')
    known, value = _const(c.args[0])
    if known:
        try:
            return g.e(ir.Lit(T.DYNAMIC, json.loads(py.parse_command_line_windows(value))))
        except ValueError as exc:
            raise Refusal("parse_command_line of this text", reason=str(exc)) from None
    return g.d.dyn_from_json_text(udfs.call("parse_command_line_windows", empty_if_null(g.e(c.args[0]))))


_NOT_REPRODUCED = {
    "hash_combine": "how Kusto combines hashes is not documented",
    "hash_many": "how Kusto combines hashes is not documented",
}
for _name, _why in _NOT_REPRODUCED.items():
    TABLE.refused_everywhere(_name, _why)
