"""``externaldata``: fetch a compiled plan's external sources, parse them with their declared schema, register them.

The compiler records what each source needs (``language/compiler/external.py``); an engine calls
:func:`register_duckdb` or :func:`register_spark` just before it runs the SQL. Values are cast to the declared
KQL types as the service ingests them: a value that does not parse is null (a string is never null: ""), and
each column with such values is named in the result's warnings.

Only http(s) URLs are read (the compiler refuses the rest), through the standard library: a timeout
(``KqlMagicPlus.externaldata_timeout``), a size cap over all the sources of a query, downloaded and
decompressed alike (``KqlMagicPlus.externaldata_max_bytes``), gzip (a ``.gz`` file or ``Content-Encoding``),
zip archives (``zipPattern`` chooses their files). A failure is one line naming the URL, its query string's
values hidden, and the HTTP status.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import fnmatch
import io
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import QueryError
from kqlmagic_plus.language.compiler.external import DELIMITED, ExternalSource

if TYPE_CHECKING:
    import pyarrow as pa

_CHUNK = 1 << 16
_INT = re.compile(r"[+-]?\d+")
_REAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SPECIAL_REALS = {"nan": math.nan, "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf,
                  "inf": math.inf, "-inf": -math.inf}
_GUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_BOUNDS = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)


class _Budget:
    """The bytes left for this query's sources (downloaded and decompressed)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    def take(self, n: int, url: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise QueryError(f"externaldata: {shown(url)} is over the size cap of {_size(self.limit)} for a "
                             "query's external data (KqlMagicPlus.externaldata_max_bytes)")


def shown(url: str) -> str:
    """*url* as messages show it: each query-string value hidden (a SAS is all secrets)."""
    from kqlmagic_plus.redaction import redact

    base, sep, query = url.partition("?")
    if sep:
        parts = [p.split("=", 1)[0] + ("=***" if "=" in p else "") for p in query.split("&")]
        base += "?" + "&".join(parts)
    return redact(base)


def urls_shown(sources: Sequence[ExternalSource]) -> list[str]:
    """Every URL of *sources*, as messages show them (for a Result's stats)."""
    return [shown(u) for s in sources for u in s.urls]


def _size(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} bytes"


# -- fetching --------------------------------------------------------------------------------------


def fetch(url: str, budget: _Budget, timeout: float) -> bytes:
    """The body at *url* (gzip undone), within *budget*; one-line QueryError on any failure."""
    import http.client
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip", "User-Agent": "kqlmagic_plus"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # the compiler allows http(s) URLs only
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and budget.used + int(length) > budget.limit:
                budget.take(int(length), url)
            chunks = []
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                budget.take(len(chunk), url)
                chunks.append(chunk)
            data = b"".join(chunks)
    except urllib.error.HTTPError as exc:
        raise QueryError(f"externaldata could not read {shown(url)} (HTTP {exc.code} {exc.reason})") from None
    except TimeoutError:
        raise QueryError(f"externaldata could not read {shown(url)} (no answer within {timeout:g} s: "
                         "KqlMagicPlus.externaldata_timeout)") from None
    except urllib.error.URLError as exc:
        raise QueryError(f"externaldata could not read {shown(url)} ({_reason(exc.reason)})") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # a reset or cut-short body, a malformed URL
        raise QueryError(f"externaldata could not read {shown(url)} ({_reason(exc)})") from None
    for _ in range(2):  # Content-Encoding: gzip over a .gz file is gzip twice
        if data[:2] != b"\x1f\x8b":
            break
        data = _gunzip(data, budget, url)
    return data


def _reason(exc: Any) -> str:
    text = str(getattr(exc, "strerror", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text or type(exc).__name__


def _gunzip(data: bytes, budget: _Budget, url: str) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    try:
        buf = data
        while buf:
            piece = d.decompress(buf, _CHUNK)
            budget.take(len(piece), url)
            out.append(piece)
            buf = d.unconsumed_tail
            if d.eof and d.unused_data:  # concatenated gzip members
                rest = d.unused_data
                d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                buf = rest
        tail = d.flush()
        budget.take(len(tail), url)
        out.append(tail)
    except zlib.error as exc:
        raise QueryError(f"externaldata: {shown(url)} is not valid gzip ({exc})") from None
    return b"".join(out)


def _files(source: ExternalSource, url: str, data: bytes, budget: _Budget) -> list[tuple[str, bytes]]:
    """The files a URL's body holds: itself, or the chosen members of a zip archive."""
    if data[:4] != b"PK\x03\x04":
        if source.zip_pattern is not None:
            raise QueryError(f"externaldata: zipPattern is given but {shown(url)} is not a zip archive")
        return [(url, data)]
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = [i.filename for i in archive.infolist() if not i.is_dir()]
        chosen = [n for n in names if _zip_match(source.zip_pattern, n)]
        if not chosen:
            raise QueryError(f"externaldata: no file of the zip archive {shown(url)} matches zipPattern "
                             f"{source.zip_pattern!r} (it holds {', '.join(names[:5]) or 'none'})")
        out = []
        for name in chosen:
            with archive.open(name) as f:
                parts = []
                while piece := f.read(_CHUNK):
                    budget.take(len(piece), url)
                    parts.append(piece)
            out.append((f"{url}!{name}", b"".join(parts)))
        return out
    except zipfile.BadZipFile as exc:
        raise QueryError(f"externaldata: {shown(url)} is not a valid zip archive ({exc})") from None


def _zip_match(pattern: str | None, name: str) -> bool:
    """zipPattern as a glob (the reference's own example is ``*.csv``) or, when it is one, a regular expression."""
    if pattern is None:
        return True
    base = name.rsplit("/", 1)[-1]
    if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(base, pattern):
        return True
    try:
        return re.fullmatch(pattern, name) is not None or re.fullmatch(pattern, base) is not None
    except re.error:
        return False


# -- records ---------------------------------------------------------------------------------------


class _Read:
    """One source's rows as Python values of their KQL types, and what was noticed reading them."""

    def __init__(self, source: ExternalSource):
        self.source = source
        #: Per declared column, its values so far.
        self.columns: list[list[Any]] = [[] for _ in source.columns]
        self.bad: dict[int, int] = {}
        self.extra_fields = 0
        self.skipped: list[str] = []

    def add_columns(self, raw: Sequence[Sequence[Any]], kinds: str) -> None:
        """One file's values, a list per declared column (text fields, or JSON / Parquet values)."""
        for i, (values, (_, t)) in enumerate(zip(raw, self.source.columns, strict=True)):
            conv = _converter(t, kinds)
            got = [conv(v) for v in values]
            bad = sum(1 for v, g in zip(values, got, strict=True) if g is None and not _is_missing(v))
            if bad:
                self.bad[i] = self.bad.get(i, 0) + bad
            if t == "string":
                got = ["" if g is None else g for g in got]
            self.columns[i].extend(got)

    def warnings(self) -> list[str]:
        out = []
        where = ", ".join(shown(u) for u in self.source.urls[:2]) + (" ..." if len(self.source.urls) > 2 else "")
        for i, n in sorted(self.bad.items()):
            name, t = self.source.columns[i]
            out.append(f"externaldata {where}: {n} value(s) of column {name!r} are not {t} and read as null")
        if self.extra_fields:
            out.append(f"externaldata {where}: {self.extra_fields} record(s) have more fields than the "
                       f"{len(self.source.columns)} declared columns; the extra fields are not read")
        out.extend(self.skipped)
        return out


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "")


def read_source(source: ExternalSource, budget: _Budget, timeout: float) -> _Read:
    out = _Read(source)
    for url in source.urls:
        fmt = source.format_of(url)
        for name, data in _files(source, url, fetch(url, budget, timeout), budget):
            if fmt == "parquet":
                _parquet(out, name, data)
                continue
            text = data.decode("utf-8-sig", errors="replace")
            if fmt in DELIMITED:
                _delimited(out, name, text, DELIMITED[fmt])
            elif fmt == "txt":
                # lines end at \n (and \r\n), not at every Unicode separator splitlines() knows; empty ones are
                # no records
                lines = [ln for ln in (x.removesuffix("\r") for x in text.split("\n")) if ln != ""]
                out.add_columns([lines[1:] if source.ignore_first_record else lines], "text")
            elif fmt == "raw":
                out.add_columns([[] if source.ignore_first_record else [text]], "text")
            else:
                _json(out, name, text)
    return out


def _delimited(out: _Read, name: str, text: str, delimiter: str) -> None:
    src = out.source
    width = len(src.columns)
    where = [_ordinal(src, i) for i in range(width)]
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 30))  # a cell may hold a whole JSON document
    try:
        records = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"') if r]
    except csv.Error as exc:  # a field over the csv module's size limit, a NUL byte
        raise QueryError(f"externaldata: {shown(name)} cannot be read as delimited text ({exc})") from None
    if src.ignore_first_record:
        records = records[1:]  # a blank line is no record, so not the first one either
    if not src.mapping:
        out.extra_fields += sum(1 for r in records if len(r) > width)
    out.add_columns([_column(records, w) for w in where], "text")


def _ordinal(src: ExternalSource, i: int) -> tuple[str, Any]:
    if not src.mapping:
        return ("ordinal", i)
    kind, value = src.mapping[i]
    if kind == "ordinal":
        return ("ordinal", int(value))
    if kind == "const":
        return ("const", value)
    if kind == "path":
        raise QueryError(f"externaldata: a mapping Path ({value!r}) reads JSON or Parquet; a delimited format's "
                         "mapping gives Ordinal")
    return ("none", None)


def _column(records: list[list[str]], where: tuple[str, Any]) -> list[Any]:
    kind, value = where
    if kind == "ordinal":  # a record with fewer fields has none there: null ("" for a string)
        return [r[value] if value < len(r) else None for r in records]
    return [value if kind == "const" else None] * len(records)


def _json(out: _Read, name: str, text: str) -> None:
    decoder = json.JSONDecoder()
    pos, n = 0, len(text)
    first = out.source.ignore_first_record
    getters = [_getter(out.source, i) for i in range(len(out.source.columns))]
    skipped = 0
    rows: list[list[Any]] = []
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            break
        try:
            value, pos = decoder.raw_decode(text, pos)
        except ValueError as exc:
            line = text.count("\n", 0, pos) + 1
            raise QueryError(f"externaldata: {shown(name)} is not JSON at line {line} ({exc.msg})") from None
        for record in value if isinstance(value, list) else [value]:
            if first:
                first = False
                continue
            if not isinstance(record, dict) and not out.source.mapping:
                skipped += 1
                continue
            rows.append([g(record) for g in getters])
    out.add_columns([[r[i] for r in rows] for i in range(len(getters))], "json")
    if skipped:
        out.skipped.append(f"externaldata {shown(name)}: {skipped} record(s) are not JSON objects and are skipped")


def _getter(src: ExternalSource, i: int) -> Any:
    kind, value = src.mapping[i] if src.mapping else ("name", src.columns[i][0])
    if kind == "name":
        return lambda r: r.get(value) if isinstance(r, dict) else None
    if kind == "path":
        steps = json_path(value)
        return lambda r: _walk(r, steps)
    if kind == "const":
        return lambda r: value
    if kind == "ordinal":
        raise QueryError(f"externaldata: a mapping Ordinal ({value}) reads a delimited format; a JSON mapping "
                         "gives Path")
    return lambda r: None


def json_path(path: str) -> list[Any]:
    """``$.a['b'][0]`` -> ["a", "b", 0] (the compiler checked its form)."""
    steps: list[Any] = []
    for m in re.finditer(r"\.([^.\[]+)|\[\s*(\d+)\s*\]|\[\s*'((?:[^'\\]|\\.)*)'\s*\]|\[\s*\"((?:[^\"\\]|\\.)*)\"\s*\]",
                         path[1:]):
        name, index, sq, dq = m.groups()
        steps.append(int(index) if index is not None else name if name is not None else (sq if sq is not None else dq))
    return steps


def _walk(value: Any, steps: Iterable[Any]) -> Any:
    for s in steps:
        if isinstance(s, int):
            value = value[s] if isinstance(value, list) and s < len(value) else None
        else:
            value = value.get(s) if isinstance(value, dict) else None
        if value is None:
            return None
    return value


def _parquet(out: _Read, name: str, data: bytes) -> None:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow's errors name no URL
        raise QueryError(f"externaldata: {shown(name)} is not Parquet ({str(exc).splitlines()[0]})") from None
    src = out.source
    columns: list[list[Any] | None] = []
    for i, (col, _) in enumerate(src.columns):
        kind, value = src.mapping[i] if src.mapping else ("name", col)
        if kind == "ordinal":
            k = int(value)
            columns.append(table.column(k).to_pylist() if k < table.num_columns else None)
        elif kind == "const":
            columns.append([value] * table.num_rows)
        elif kind in ("name", "path"):
            steps = [value] if kind == "name" else json_path(value)
            top = steps[0] if steps else None
            if not isinstance(top, str) or top not in table.column_names:
                columns.append(None)
                continue
            cells = table.column(top).to_pylist()
            columns.append([_walk(c, steps[1:]) for c in cells] if len(steps) > 1 else cells)
        else:
            columns.append(None)
    start = 1 if src.ignore_first_record else 0
    out.add_columns([c[start:] if c is not None else [None] * (table.num_rows - start) for c in columns], "json")


# -- casting ---------------------------------------------------------------------------------------


def _converter(kql_type: str, kinds: str) -> Any:
    """The function that casts one value of *kinds* ("text" fields, "json" values) to *kql_type*: the common
    text cases without :func:`cast`'s dispatch (a million-row feed is a million calls a column)."""
    if kinds == "text" and kql_type == "string":
        return lambda v: v
    if kinds == "text" and kql_type in ("int", "long"):
        lo, hi = _BOUNDS[kql_type]
        match = _INT.fullmatch

        def integer(v: Any) -> int | None:
            if v is None:
                return None
            t = v.strip()
            if not match(t):
                return None
            n = int(t)
            return n if lo <= n <= hi else None
        return integer
    return lambda v: cast(v, kql_type, kinds)


def cast(value: Any, kql_type: str, kinds: str = "text") -> Any:
    """*value* (a text field, or a JSON / Parquet value) as a Python value of *kql_type*, or None when it does
    not parse: int / long / real / decimal / bool / str, datetime and timespan as integer microseconds, guid as
    its lower-case text, dynamic as the JSON-compatible value."""
    if value is None:
        return None
    if kql_type == "dynamic":
        return _dynamic(value, kinds)
    if kql_type == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        return _text_of(value)
    if isinstance(value, bytes):
        return None
    if not isinstance(value, str):
        return _from_value(value, kql_type)
    text = value.strip()
    if not text:
        return None
    if kql_type in ("int", "long"):
        if not _INT.fullmatch(text):
            return None
        lo, hi = _BOUNDS[kql_type]
        n = int(text)
        return n if lo <= n <= hi else None
    if kql_type == "real":
        if _REAL.fullmatch(text):
            return float(text)
        return _SPECIAL_REALS.get(text.lower())
    if kql_type == "decimal":
        if not _REAL.fullmatch(text):
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            return None
    if kql_type == "bool":
        return {"true": True, "false": False, "1": True, "0": False}.get(text.lower())
    if kql_type == "datetime":
        return _datetime(text)
    if kql_type == "timespan":
        from kqlmagic_plus.language.compiler.literals import parse_timespan_text

        try:
            return parse_timespan_text(text)
        except (ValueError, OverflowError):
            return None
    if kql_type == "guid":
        m = _GUID.fullmatch(text)
        return m.group(1).lower() if m else None
    return None


def _text_of(value: Any) -> str:
    if isinstance(value, (int, float)):
        return json.dumps(value)  # a JSON number as JSON writes it
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    return str(value)


def _from_value(value: Any, kql_type: str) -> Any:
    """A JSON or Parquet value that is not text."""
    if kql_type in ("int", "long"):
        if isinstance(value, bool):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, (int, Decimal)) and value == int(value):
            lo, hi = _BOUNDS[kql_type]
            return int(value) if lo <= int(value) <= hi else None
        return None
    if kql_type == "real":
        return float(value) if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) else None
    if kql_type == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            return None
        return Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if kql_type == "bool":
        if isinstance(value, bool):
            return value
        return value != 0 if isinstance(value, int) else None  # tobool(123) is true
    if kql_type == "datetime":
        if isinstance(value, _dt.datetime):
            aware = value if value.tzinfo is not None else value.replace(tzinfo=_dt.UTC)
            delta = aware - _EPOCH
            return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        if isinstance(value, _dt.date):
            return (value - _dt.date(1970, 1, 1)).days * 86_400_000_000
        return None
    if kql_type == "timespan":
        if isinstance(value, _dt.timedelta):
            return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return None
    if kql_type == "guid":
        return str(value).lower() if type(value).__name__ == "UUID" else None
    return None


def _datetime(text: str) -> int | None:
    from kqlmagic_plus.language.compiler.literals import parse_datetime_text

    m = _ISO.match(text)
    if m:  # the parser computes a 31 February as 3 March: a date that does not exist is not one
        y, mo, d, hh, mi, ss = (int(x or 0) for x in m.groups())
        try:
            _dt.datetime(y, mo, d, hh, mi, ss)
        except ValueError:
            return None
    try:
        us = parse_datetime_text(text)
    except (ValueError, OverflowError):
        return None
    return None if us is None else int(us)


def _dynamic(value: Any, kinds: str) -> Any:
    if kinds == "json" or not isinstance(value, str):
        return _jsonable(value)
    if value.strip() == "":
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value  # text that is not JSON is a dynamic string, as parse_json() reads it


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, _dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


# -- tables ----------------------------------------------------------------------------------------


def _arrow(read: _Read, spark: bool = False) -> pa.Table:
    """The rows as Arrow: canonical KQL types with their ``kql_type`` metadata (DuckDB), or the column types the
    compiled Spark SQL expects of a table (decimal(38, 18), dynamic as JSON text)."""
    import pyarrow as pa

    from kqlmagic_plus.kqltypes import arrow_type

    arrays, fields = [], []
    for i, (name, t) in enumerate(read.source.columns):
        cells = read.columns[i]
        if t in ("datetime", "timespan"):
            arr = pa.array(cells, pa.int64()).cast(arrow_type(t))
        elif t == "dynamic":
            arr = pa.array([None if c is None else json.dumps(c, separators=(",", ":"), ensure_ascii=False)
                            for c in cells], pa.string())
        elif t == "decimal":
            if spark:
                arr = pa.array([None if c is None else _decimal18(c) for c in cells], pa.decimal128(38, 18))
            else:
                arr = pa.array([None if c is None else format(c, "f") for c in cells], pa.string())
        else:
            arr = pa.array(cells, arrow_type(t))
        arrays.append(arr)
        fields.append(pa.field(name, arr.type, metadata={b"kql_type": t.encode()}))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _decimal18(d: Decimal) -> Decimal | None:
    try:
        return d.quantize(Decimal(1).scaleb(-18))
    except InvalidOperation:
        return None


def _read_all(sources: Sequence[ExternalSource]) -> Iterator[_Read]:
    from kqlmagic_plus.config import settings

    s = settings()
    budget = _Budget(int(s.externaldata_max_bytes))
    for source in sources:
        yield read_source(source, budget, float(s.externaldata_timeout))


def register_duckdb(con: Any, sources: Sequence[ExternalSource]) -> list[str]:
    """Fetch and register each source as its table on *con*; the warnings to show with the result."""
    from kqlmagic_plus.language.tables import typed_table

    warnings: list[str] = []
    for read in _read_all(sources):
        con.register(read.source.table, typed_table(_arrow(read)))
        warnings.extend(read.warnings())
    return warnings


def unregister_duckdb(con: Any, sources: Sequence[ExternalSource]) -> None:
    for source in sources:
        with contextlib.suppress(Exception):  # never registered (its fetch failed): nothing to drop
            con.unregister(source.table)


def register_spark(spark: Any, sources: Sequence[ExternalSource]) -> list[str]:
    """Fetch each source here (the driver's side) and register it as a temp view built from Arrow: the
    executors never need to reach the URL or a file of this machine."""
    from kqlmagic_plus.language.compiler.execute import spark_schema

    warnings: list[str] = []
    for read in _read_all(sources):
        table = _arrow(read, spark=True)
        df = spark.createDataFrame(table.replace_schema_metadata(None), schema=spark_schema(list(read.source.columns)))
        df.createOrReplaceTempView(read.source.table)
        warnings.extend(read.warnings())
    return warnings
