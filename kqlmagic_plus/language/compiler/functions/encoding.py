"""Encodings, hashes and GUIDs: ``base64_*``, ``url_decode``, ``hash_md5``, ``hash_sha256``, ``new_guid``.

``hash`` and ``url_encode`` are listed as refused: their exact output cannot be reproduced on either engine.
"""

from __future__ import annotations

from kqlmagic_plus.language.compiler import types as T
from kqlmagic_plus.language.compiler.entries import Table

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


refused_url_encode = "KQL's url_encode writes lower-case hex escapes that neither engine reproduces"
TABLE.refused_everywhere("url_encode", refused_url_encode)
TABLE.refused_everywhere("url_encode_component", refused_url_encode)


@scalar("hash_md5", 1, T.STRING, coerce="string")
def _md5(g, c, pred):
    return g.d.hash_md5(g.e(c.args[0]))


@scalar("hash_sha256", 1, T.STRING, coerce="string")
def _sha256(g, c, pred):
    return g.d.hash_sha256(g.e(c.args[0]))


TABLE.refused_everywhere("hash", "KQL's hash() values (xxhash64 of its own encoding) cannot be reproduced")


@scalar("new_guid", 0, T.GUID)
def _new_guid(g, c, pred):
    return g.d.new_guid()
