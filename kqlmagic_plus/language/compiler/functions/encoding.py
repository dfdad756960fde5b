"""Encodings, hashes and GUIDs: ``base64_*``, ``url_decode``, ``hash_md5``, ``hash_sha256``, ``new_guid``.

``hash`` / ``hash_xxhash64`` (xxhash64 of the value's bytes) run as Python (``udfs.text``); ``url_encode`` is in
:mod:`.text_python`.
"""

from __future__ import annotations

import struct

from sqlglot import exp

from kqlmagic_plus.language import udfs
from kqlmagic_plus.language.compiler import ir
from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table
from kqlmagic_plus.language.compiler.functions.common import empty_if_null, us_of
from kqlmagic_plus.language.compiler.sqlexpr import fn, n
from kqlmagic_plus.language.compiler.syntax import Refusal
from kqlmagic_plus.language.udfs import text as text_udfs

TABLE = Table()
scalar = TABLE.scalar


@scalar("base64_encode_tostring", 1, T.STRING, coerce="string", aliases=("base64_encodestring",))
def _b64e(g, c, pred):
    return g.d.base64_encode(g.e(c.args[0]))


@scalar("base64_decode_tostring", 1, T.STRING, coerce="string", aliases=("base64_decodestring",))
def _b64d(g, c, pred):
    return g.d.base64_decode(g.e(c.args[0]))


@scalar("url_decode", 1, T.STRING, coerce="string")
def _url_decode(g, c, pred):
    return g.d.url_decode(g.e(c.args[0]))




@scalar("hash_md5", 1, T.STRING, coerce="string")
def _md5(g, c, pred):
    return g.d.hash_md5(g.e(c.args[0]))


@scalar("hash_sha256", 1, T.STRING, coerce="string")
def _sha256(g, c, pred):
    return g.d.hash_sha256(g.e(c.args[0]))


#: Ticks (100 ns) from 0001-01-01 to the Unix epoch: Kusto hashes a datetime as its ticks.
_EPOCH_TICKS = 621355968000000000


def _hash_bytes(a: ir.Expr) -> bytes | None:
    """The bytes Kusto's hash() reads for a constant: a string's UTF-8, a datetime's 8 little-endian ticks."""
    if isinstance(a, ir.Lit) and a.value is not None:
        if a.type == T.STRING and isinstance(a.value, str):
            return a.value.encode("utf-8")
        if a.type == T.DATETIME and isinstance(a.value, int):
            return struct.pack("<q", a.value * 10 + _EPOCH_TICKS)
    return None


def _xxhash64(g, c, pred):
    a = c.args[0]
    data = _hash_bytes(a)
    mod = c.args[1] if len(c.args) > 1 else None
    if mod is not None and not (isinstance(mod, ir.Lit) and isinstance(mod.value, int) and mod.value > 0):
        raise Refusal("hash() with a computed modulo")
    if data is not None:
        value = text_udfs.xxhash64(data)
        if mod is None:
            return n(value)
        if value < 0:
            # The documented range is 0..mod-1, but not how a negative hash gets there.
            raise Refusal("hash() modulo of a negative hash value")
        return n(value % mod.value)
    if mod is not None:
        raise Refusal("hash() modulo of a computed value", reason="how a negative hash maps into 0..mod-1 is not "
                      "documented")
    if a.type == T.STRING:
        return udfs.call("hash_string", empty_if_null(g.e(a)))
    if a.type == T.DATETIME:
        ticks = exp.Add(this=exp.Mul(this=us_of(g, a), expression=n(10)), expression=n(_EPOCH_TICKS))
        return udfs.call("hash_ticks", ticks)
    raise Refusal(f"hash() of a {a.type}", reason="only strings and datetimes are hashed as Kusto encodes them")


for _name in ("hash", "hash_xxhash64"):
    TABLE.scalar(_name, (1, 2), T.LONG)(_xxhash64)


@scalar("hash_sha1", 1, T.STRING, coerce="string")
def _sha1(g, c, pred):
    return fn("sha1", g.e(c.args[0]))


@scalar("new_guid", 0, T.GUID)
def _new_guid(g, c, pred):
    return g.d.new_guid()
