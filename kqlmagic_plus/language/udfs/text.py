"""String functions neither SQL dialect can express: ``replace_strings``, ``punycode_*``,
``gzip_decompress_from_base64_string``, ``zlib_decompress_from_base64_string``, ``url_encode_component``, and
the xxhash64 behind ``hash()``.

Dynamic arguments arrive as JSON text. Text that does not decode (bad base64, a broken stream, bytes that are
not UTF-8, bad punycode) gives null, as Kusto answers.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import struct
import zlib
from typing import Any

from kqlmagic_plus.language.udfs import udf


def replace_strings(text: str, lookups: Any, rewrites: Any) -> str:
    """Kusto's replace_strings: the lookups claim their matches in list order, each match kept only where no
    earlier lookup already matched an overlapping span; a lookup whose rewrite is not a string claims its
    matches but leaves them as they are. All replacements are then made at once."""
    if not isinstance(lookups, list) or not isinstance(rewrites, list):
        return text
    claimed: list[tuple[int, int, str | None]] = []
    for i, lookup in enumerate(lookups):
        if not isinstance(lookup, str) or not lookup:
            continue
        rewrite = rewrites[i] if i < len(rewrites) and isinstance(rewrites[i], str) else None
        start = text.find(lookup)
        while start >= 0:
            end = start + len(lookup)
            if all(end <= a or start >= b for a, b, _ in claimed):
                claimed.append((start, end, rewrite))
            start = text.find(lookup, end)
    out, pos = [], 0
    for a, b, rewrite in sorted(claimed):
        out.append(text[pos:a])
        out.append(text[a:b] if rewrite is None else rewrite)
        pos = b
    out.append(text[pos:])
    return "".join(out)


def _ascii(label: str) -> bool:
    return all(ord(ch) < 128 for ch in label)


def punycode_from_string(text: str) -> str | None:
    try:
        return text.encode("punycode").decode("ascii")
    except UnicodeError:
        return None


def punycode_to_string(text: str) -> str | None:
    try:
        return text.encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return None


# The label separators IDNA reads: the full stop and its ideographic, fullwidth and halfwidth forms.
_LABEL_SEPARATORS = re.compile("[.\u3002\uff0e\uff61]")


def punycode_domain_to_string(domain: str) -> str | None:
    """A domain whose non-ASCII labels are punycode-encoded as ``xn--`` labels (no case mapping). Kusto's
    names run the other way round for domains: ``_to_string`` encodes, ``_from_string`` decodes."""
    labels = []
    for label in _LABEL_SEPARATORS.split(domain):
        if _ascii(label):
            labels.append(label)
            continue
        encoded = punycode_from_string(label)
        if encoded is None:
            return None
        labels.append("xn--" + encoded)
    return ".".join(labels)


def punycode_domain_from_string(domain: str) -> str | None:
    labels = []
    for label in domain.split("."):
        if label[:4].lower() == "xn--":
            decoded = punycode_to_string(label[4:])
            if decoded is None:
                return None
            labels.append(decoded)
        else:
            labels.append(label)
    return ".".join(labels)


def _decompress(text: str, wbits: int) -> str | None:
    try:
        data = base64.b64decode(text, validate=True)
        return zlib.decompress(data, wbits).decode("utf-8")
    except (binascii.Error, zlib.error, gzip.BadGzipFile, UnicodeDecodeError, ValueError):
        return None


def gzip_decompress_from_base64_string(text: str) -> str | None:
    return _decompress(text, 16 + zlib.MAX_WBITS)


def zlib_decompress_from_base64_string(text: str) -> str | None:
    return _decompress(text, zlib.MAX_WBITS)


# .NET's HttpUtility.UrlEncode and Uri.EscapeDataString, either of which Kusto's url_encode_component could
# be, agree on letters, digits, "-", "_" and "." (kept) and on escaping the rest except "!*()~" and the space.
_URL_KEPT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
_URL_UNSETTLED = set("!*()~'")


def url_unsettled(text: str) -> str:
    """The characters of *text* whose escaping is not settled (see above)."""
    return "".join(sorted({ch for ch in text if ch in _URL_UNSETTLED}))


def url_encode_component(text: str) -> str:
    out = []
    for ch in text:
        out.append(ch if ch in _URL_KEPT else "".join(f"%{b:02x}" for b in ch.encode("utf-8")))
    return "".join(out)


def xxhash64(data: bytes) -> int:
    import xxhash

    digest = xxhash.xxh64_intdigest(data)
    return digest - (1 << 64) if digest >= 1 << 63 else digest


@udf("replace_strings", ("string", "string", "string"), "string")
def _replace_strings_udf(text: str, lookups_json: str, rewrites_json: str) -> str:
    return replace_strings(text, json.loads(lookups_json), json.loads(rewrites_json))


for _f in (punycode_from_string, punycode_to_string, punycode_domain_from_string, punycode_domain_to_string,
           gzip_decompress_from_base64_string, zlib_decompress_from_base64_string, url_encode_component):
    udf(_f.__name__, ("string",), "string")(_f)


@udf("hash_string", ("string",), "long")
def hash_string(text: str) -> int:
    """Kusto's hash() of a string: xxhash64 of its UTF-8 bytes."""
    return xxhash64(text.encode("utf-8"))


@udf("hash_ticks", ("long",), "long")
def hash_ticks(ticks: int) -> int:
    """Kusto's hash() of a datetime: xxhash64 of its 100 ns ticks since 0001-01-01, 8 bytes little-endian."""
    return xxhash64(struct.pack("<q", ticks))


@udf("dynamic_to_json", ("string",), "string")
def dynamic_to_json(value_json: str) -> str:
    """Kusto's dynamic_to_json: the JSON text with every bag's keys sorted, no spaces."""
    return json.dumps(json.loads(value_json), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@udf("parse_csv", ("string",), "dynamic")
def parse_csv(text: str) -> str:
    """The fields of the first CSV record of *text* ("" escapes a quote; a quoted field keeps its newlines)."""
    import csv
    import io

    first = next(csv.reader(io.StringIO(text, newline="")), None)
    return json.dumps(first if first else [""], ensure_ascii=False)


@udf("parse_command_line_windows", ("string",), "dynamic")
def parse_command_line_windows(line: str) -> str:
    """The arguments CommandLineToArgvW reads: the program name up to a space (or between quotes, with no
    escapes); then whitespace-separated arguments where quotes group, 2n backslashes before a quote are n and
    the quote counts, 2n+1 are n and a literal quote, and other backslashes are literal."""
    if not line.strip():
        raise ValueError("parse_command_line of an empty command line: Kusto's answer is not documented")
    args: list[str] = []
    i, size = 0, len(line)
    if line[0] == '"':
        end = line.find('"', 1)
        end = size if end < 0 else end
        args.append(line[1:end])
        i = end + 1
    else:
        while i < size and line[i] not in " \t":
            i += 1
        args.append(line[:i])
    while True:
        while i < size and line[i] in " \t":
            i += 1
        if i >= size:
            return json.dumps(args, ensure_ascii=False)
        cur: list[str] = []
        quoted = False
        while i < size and (quoted or line[i] not in " \t"):
            ch = line[i]
            if ch == "\\":
                j = i
                while j < size and line[j] == "\\":
                    j += 1
                count = j - i
                if j < size and line[j] == '"':
                    cur.append("\\" * (count // 2))
                    if count % 2:
                        cur.append('"')
                        i = j + 1
                    else:
                        i = j
                else:
                    cur.append("\\" * count)
                    i = j
                continue
            if ch == '"':
                if quoted and i + 1 < size and line[i + 1] == '"':
                    # Windows versions differ on "" inside quotes; not guessed.
                    raise ValueError('parse_command_line of "" inside quotes: Kusto\'s answer is not documented')
                quoted = not quoted
                i += 1
                continue
            cur.append(ch)
            i += 1
        args.append("".join(cur))


_XML_MAX = 1 << 20  # Kusto: longer text is null


@udf("parse_xml", ("string",), "dynamic")
def parse_xml(text: str) -> str | None:
    """Kusto's parse_xml as JSON text, by its documented conversion: an element with only text is the text (a
    string: the documented table, not the example's bare numbers), ``<e/>`` is null, attributes are "@name",
    text beside attributes or child elements is "#text", repeated child names become an array. Only elements,
    attributes and text count (declarations, comments, processing instructions are skipped); names keep their
    prefixes and ``xmlns`` attributes stay attributes, as written. Not XML, or over 1 MB: None (null)."""
    import xml.parsers.expat

    raw = text.encode("utf-8")
    if len(raw) > _XML_MAX:
        return None
    parser = xml.parsers.expat.ParserCreate()  # no namespace processing: names stay as written
    # Each open element: [name, attributes, children as (name, value) pairs, text pieces, written as <e/>]
    stack: list[list[Any]] = [["", {}, [], [], False]]

    def self_closing(at: int) -> bool:
        """Whether the start tag at byte *at* ends with "/>" (Kusto: null for `<e/>`, "" for `<e></e>`)."""
        quote = 0
        for i in range(at + 1, len(raw)):
            ch = raw[i]
            if quote:
                quote = 0 if ch == quote else quote
            elif ch in b"\"'":
                quote = ch
            elif ch == 0x3E:  # ">"
                return raw[i - 1] == 0x2F  # "/"
        return False

    def start(name: str, attrs: dict[str, str]) -> None:
        stack.append([name, attrs, [], [], self_closing(parser.CurrentByteIndex)])

    def end(name: str) -> None:
        _, attrs, children, texts, self_closed = stack.pop()
        pieces = [t.strip() for t in texts if t.strip()]  # whitespace-only nodes are layout, not text
        if not attrs and not children and len(pieces) < 2:
            value: Any = pieces[0] if pieces else (None if self_closed else "")
        else:
            value = {f"@{k}": v for k, v in attrs.items()}
            if pieces:
                value["#text"] = pieces[0] if len(pieces) == 1 else pieces
            for child, child_value in children:
                if child not in value:
                    value[child] = child_value
                elif isinstance(value[child], list):  # an element's own value is never a list
                    value[child].append(child_value)
                else:
                    value[child] = [value[child], child_value]
        stack[-1][2].append((name, value))

    def chars(data: str) -> None:
        stack[-1][3].append(data)  # one text node per call (buffer_text joins a node's pieces)

    parser.buffer_text = True
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, chars
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError:
        return None
    (root_name, root_value), = stack[0][2]
    return json.dumps({root_name: root_value}, ensure_ascii=False)
