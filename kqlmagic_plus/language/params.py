"""Python values into queries, without ever splicing Python text into KQL.

Three entry points:

* :func:`infer_kql_type` - the KQL type a Python value stands for.
* :func:`resolve_python_lets` - Kqlmagic's ``let x = pyvar;`` form: the statement is blanked out
  (same length, newlines kept, so error carets still point at the right place) and ``x`` becomes
  a parameter with the value of ``pyvar``.
* :func:`bind` - a query plus ``{name: value}`` -> :class:`Bound`: the text to send, the values to
  bind beside it, the DataFrames to register as tables.

How each value travels (``style="declare"``, the engines that bind parameters):

=====================================  =======================================  ===========================
value                                  in the query text                        sent beside it
=====================================  =======================================  ===========================
str                                    ``name:string``                          the string itself
list / tuple / set / dict / None       ``name__json:string`` and                the JSON text
                                       ``let name = parse_json(name__json);``
bool, int, float, datetime, date,      ``name:type = <literal>`` (a default     (local engine: the typed
timedelta, UUID, numpy/pandas scalars  built from a closed alphabet: digits,    value, which overrides
                                       ``.:-TZ``, hex, a type word)             the default)
Decimal, or a null of a typed scalar   ``name:type``                            the typed value / literal
DataFrame                              nothing (``tables=True``: the engine     the DataFrame, registered
                                       registers it as a table) or              as a table
                                       ``let name = datatable(...)[...];``
=====================================  =======================================  ===========================

So the text a value could break out of - any string, inside a dynamic or not - never enters the
query in "declare" style: it is bound by the engine (duckdb-kql's prepared-statement parameters
locally, ADX request parameters remotely). Only strings travel as ADX request parameters (the one
type whose wire form, the raw value, every Kusto endpoint reads the same way); dynamics ride as
JSON strings through ``parse_json`` for the same reason.

``style="literal"`` (Log Analytics, which has no server-side parameters): ``let name = <exact
literal>;`` for everything, written by :mod:`kqlmagic_plus.language.literals`, DataFrames as
``datatable``. The literal encoder is property-tested against injection.

Both styles put what they add on ONE line in front of the query, so every line of the user's
query moves down by exactly one and keeps its columns; :meth:`Bound.original_position` maps back.
A ``declare query_parameters`` statement already in the query is merged into that line (its own
text blanked out in place).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from kqlmagic_plus.errors import ParameterError
from kqlmagic_plus.language import literals
from kqlmagic_plus.language import tables as _tables
from kqlmagic_plus.language.lexer import Token, tokenize

Style = Literal["declare", "literal"]

#: Types whose non-null values go into the declaration as defaults in "declare" style. decimal is
#: left out: duckdb-kql 1.1.2 cannot read a decimal default (it reads it as a float and refuses).
_DEFAULTED = frozenset({"bool", "int", "long", "real", "datetime", "timespan", "guid"})


def infer_kql_type(value: Any) -> str:
    """The KQL type for a Python value.

    ====================================================  ============
    str, numpy.str_                                       string
    bool, numpy.bool_                                     bool
    int, numpy int64/uint32/uint64                        long
    numpy int8/int16/int32/uint8/uint16                   int
    float, numpy floating                                 real
    decimal.Decimal                                       decimal
    datetime (naive = UTC), date, pandas Timestamp/NaT,   datetime
    numpy datetime64
    timedelta, pandas Timedelta, numpy timedelta64        timespan
    uuid.UUID                                             guid
    list, tuple, set, dict, numpy array, pandas Series,   dynamic
    None, pandas NA
    pandas DataFrame, pyarrow Table                       tabular
    ====================================================  ============

    Anything else raises :class:`~kqlmagic_plus.errors.ParameterError`.
    """
    return literals.infer_type(value)


# -- let x = pyvar; ---------------------------------------------------------------------------------

def resolve_python_lets(query: str, namespace: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """Turn Kqlmagic's ``let x = pyvar;`` statements into parameters.

    A top-level ``let NAME = IDENT;`` is resolved when IDENT is a variable in *namespace* whose
    value can be a parameter, and the query has not bound IDENT itself (an earlier ``let`` or a
    ``declare query_parameters``). Other lets - ``let t = SigninLogs;`` naming a table, a let
    inside a function body, a call - are left alone. Returns the query with the resolved
    statements replaced by spaces (line breaks kept) and ``{NAME: value}``.
    """
    tokens = tokenize(query)
    sig = [t for t in tokens if t.kind not in ("ws", "comment")]
    bound_here: set[str] = set(_declared_names(sig))
    resolved: dict[str, Any] = {}
    spans: list[tuple[int, int]] = []
    depth = 0
    for i, tok in enumerate(sig):
        if tok.text in ("(", "[", "{"):
            depth += 1
        elif tok.text in (")", "]", "}"):
            depth = max(0, depth - 1)
        if depth or tok.text != "let" or (i and sig[i - 1].text != ";"):
            continue
        if i + 1 < len(sig) and sig[i + 1].kind == "ident":
            name = sig[i + 1].text
            window = sig[i:i + 5]
            if (len(window) == 5 and window[2].text == "=" and window[3].kind == "ident"
                    and window[4].text == ";" and _is_python_value(window[3].text, namespace, bound_here)):
                resolved[name] = namespace[window[3].text]
                spans.append((tok.start, window[4].end))
            bound_here.add(name)
    if not spans:
        return query, {}
    chars = list(query)
    for start, end in spans:
        for k in range(start, end):
            if chars[k] not in "\r\n":
                chars[k] = " "
    return "".join(chars), resolved


def _is_python_value(name: str, namespace: Mapping[str, Any], bound_here: set[str]) -> bool:
    if name in bound_here or name not in namespace:
        return False
    try:
        literals.infer_type(namespace[name])
    except ParameterError:
        return False  # a module, a function...: not meant as a value
    return True


def merge_params(from_lets: Mapping[str, Any], params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Parameters from ``let x = pyvar;`` plus explicit ones; a name given both ways is an error."""
    explicit = dict(params or {})
    both = sorted(set(from_lets) & set(explicit))
    if both:
        raise ParameterError(f"parameter {both[0]!r} is given both by `let {both[0]} = <python variable>;` "
                             "in the query and by --param/params=; keep one")
    return {**from_lets, **explicit}


# -- declare query_parameters(...) already in the query ---------------------------------------------

@dataclass(frozen=True)
class _Declared:
    name: str
    kql_type: str
    #: The entry as written (``name:type = default``), reused verbatim when merging.
    text: str
    default: str | None


@dataclass(frozen=True)
class _Declaration:
    start: int
    end: int
    entries: tuple[_Declared, ...]


def _declared_names(sig: list[Token]) -> list[str]:
    names = []
    for i, tok in enumerate(sig):
        if tok.text == "declare" and i + 2 < len(sig) and sig[i + 1].text == "query_parameters":
            j = i + 3
            while j < len(sig) and sig[j].text != ")":
                if sig[j].kind == "ident" and j + 1 < len(sig) and sig[j + 1].text == ":":
                    names.append(sig[j].text)
                j += 1
    return names


def _find_declarations(query: str, sig: list[Token]) -> list[_Declaration]:
    found = []
    depth = 0
    i = 0
    while i < len(sig):
        tok = sig[i]
        if tok.text in ("(", "[", "{"):
            depth += 1
        elif tok.text in (")", "]", "}"):
            depth = max(0, depth - 1)
        if (depth == 0 and tok.text == "declare" and i + 2 < len(sig)
                and sig[i + 1].text == "query_parameters" and sig[i + 2].text == "("):
            decl, i = _parse_declaration(query, sig, i)
            found.append(decl)
            continue
        i += 1
    return found


def _parse_declaration(query: str, sig: list[Token], i: int) -> tuple[_Declaration, int]:
    start = sig[i].start
    j = i + 3
    entries: list[_Declared] = []
    current: list[Token] = []
    depth = 1
    while j < len(sig):
        tok = sig[j]
        if tok.text in ("(", "[", "{"):
            depth += 1
        elif tok.text in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                break
        if tok.text == "," and depth == 1:
            entries.append(_parse_entry(query, current))
            current = []
        else:
            current.append(tok)
        j += 1
    else:
        raise ParameterError("the query's `declare query_parameters(` has no closing parenthesis")
    if current:
        entries.append(_parse_entry(query, current))
    end = sig[j].end
    if j + 1 < len(sig) and sig[j + 1].text == ";":
        end = sig[j + 1].end
        j += 1
    return _Declaration(start, end, tuple(entries)), j + 1


def _parse_entry(query: str, toks: list[Token]) -> _Declared:
    text = query[toks[0].start:toks[-1].end] if toks else ""
    if len(toks) < 3 or toks[0].kind != "ident" or toks[1].text != ":" or toks[2].kind != "ident":
        raise ParameterError(f"cannot read the entry {text!r} of the query's declare query_parameters(...)")
    default = None
    if len(toks) > 3:
        if toks[3].text != "=" or len(toks) < 5:
            raise ParameterError(f"cannot read the entry {text!r} of the query's "
                                 "declare query_parameters(...)")
        default = query[toks[4].start:toks[-1].end]
    return _Declared(toks[0].text, _normalize_type(toks[2].text, toks[0].text), text, default)


def _normalize_type(name: str, param: str) -> str:
    from kqlmagic_plus.kqltypes import normalize_type

    low = name.lower()
    if low in ("uuid", "uniqueid"):
        return "guid"
    try:
        return normalize_type(low)
    except ValueError:
        raise ParameterError(f"parameter {param!r} is declared with type {name!r}, which is not a KQL "
                             "scalar type") from None


# -- binding ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bound:
    """A query with its parameters bound for one style of engine."""

    #: The text to send.
    query: str
    #: Declared name -> value, in the Python form duckdb-kql's ``to_sql(parameters=)`` takes (str,
    #: int, float, bool, Decimal, naive-UTC datetime, timedelta, UUID; JSON text for dynamics).
    #: Every declared parameter is here; empty in "literal" style.
    values: dict[str, Any] = field(default_factory=dict)
    #: Name -> pyarrow Table, for engines that register tables (only with ``tables=True``); see
    #: :func:`typed_table` for how each column is typed.
    tables: dict[str, Any] = field(default_factory=dict)
    style: Style = "declare"
    #: The query as given to :func:`bind`.
    original: str = ""
    #: Characters added in front of ``original`` (one line, newline included; 0 when none).
    prefix_len: int = 0
    #: Parameter name -> KQL type, for every parameter bound (tables are "tabular").
    types: dict[str, str] = field(default_factory=dict)
    _wire: dict[str, str] = field(default_factory=dict, repr=False)

    def request_parameters(self) -> dict[str, str]:
        """The ADX request parameters (``ClientRequestProperties.set_parameter(name, value)``).

        Strings as the raw value; a parameter the query itself declared with another type as its
        KQL literal text. Values carried by the declaration's defaults are not repeated here.
        """
        return dict(self._wire)

    def shown(self) -> str:
        """The exact text sent and what was sent beside it (for ``--show-query``)."""
        lines = [self.query]
        if self._wire:
            # Values carried by declaration defaults are already in the text above.
            lines.append("-- request parameters: " + _display_json(self._wire))
        for name, table in self.tables.items():
            lines.append(f"-- table {name}: {table.num_rows:,} rows x {table.num_columns} columns "
                         "(registered, not sent as text)")
        return "\n".join(lines)

    def sent(self) -> dict[str, Any]:
        """Name -> what went beside the text: the bound values, and a description of each table."""
        out = dict(self.values)
        for name, table in self.tables.items():
            out[name] = f"<table: {table.num_rows:,} rows x {table.num_columns} columns>"
        return out

    def executed(self, translated: str | None = None) -> str:
        """What ran: the bound KQL, followed by what an engine translated it to (if given)."""
        if translated is None:
            return self.query
        if not self.prefix_len and not self.tables:
            return translated
        return f"{self.query}\n-- translated to:\n{translated}"

    def original_position(self, line: int, column: int) -> tuple[int, int]:
        """Map a 1-based line / 0-based column in :attr:`query` to the same place in the input."""
        if not self.prefix_len:
            return line, column
        if line <= 1:
            return 1, 0
        return line - 1, column

    def rebase(self, rewritten: Any) -> Any:
        """A :class:`~kqlmagic_plus.language.aliases.Rewritten` whose text is :attr:`query` and whose
        positions map back through the prefix and then through *rewritten*'s own renames.

        *rewritten* must be the Rewritten whose ``.text`` was given to :func:`bind`.
        """
        if not self.prefix_len:
            return rewritten
        from kqlmagic_plus.language.aliases import Rewritten

        p = self.prefix_len
        # Offsets inside the prefix map below zero, which Rewritten clamps to the query's start.
        shifts = ((0, -p), *((off + p, shift - p) for off, shift in rewritten._shifts))
        return Rewritten(self.query, rewritten.original, shifts, rewritten.renamed)


def bind(query: str, params: Mapping[str, Any] | None, style: Style = "declare", *,
         tables: bool = True) -> Bound:
    """Bind *params* to *query* for an engine of the given *style*.

    ``"declare"``: a ``declare query_parameters(...)`` statement (merged with any in the query)
    and values bound beside the text - see the module docstring for what goes where. With
    ``tables=True`` (the local engine) DataFrames are returned in :attr:`Bound.tables` for the
    engine to register, and values DuckDB would hold less exactly than KQL are refused, never
    rounded: datetimes/timespans with ticks below the microsecond, decimals with more than
    :data:`LOCAL_DECIMAL_PLACES` places. With ``tables=False`` (ADX) DataFrames become
    ``let name = datatable(...)`` and the 100 ns ticks are kept.

    ``"literal"``: ``let name = <literal>;`` for every parameter, DataFrames as ``datatable``;
    nothing is sent beside the text (Log Analytics).

    No parameters: the query is returned unchanged. Raises ParameterError for a name that is not
    an identifier, a value KQL has no type for, a value that does not fit the type the query
    declares for it, or a declared parameter that gets no value and has no default.
    """
    if style not in ("declare", "literal"):
        raise ParameterError(f"unknown binding style {style!r}: use 'declare' or 'literal'")
    params = dict(params or {})
    if not params:
        return Bound(query=query, style=style, original=query)
    for name in params:
        if not literals.is_identifier(name):
            raise ParameterError(f"parameter name {name!r} is not a KQL identifier (letters, digits and _, "
                                 "not starting with a digit, not a KQL keyword)")

    sig = [t for t in tokenize(query) if t.kind not in ("ws", "comment")]
    declarations = _find_declarations(query, sig)
    declared = {e.name: e for d in declarations for e in d.entries}
    body = _blank(query, [(d.start, d.end) for d in declarations])

    types: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, value in params.items():
        if name in declared:
            kql_type = declared[name].kql_type
            if literals.infer_type(value) == "tabular":
                raise ParameterError(f"parameter {name!r} is declared {kql_type} in the query, but the value "
                                     "is a DataFrame (tables cannot be declared parameters)")
        else:
            kql_type = literals.infer_type(value)
        types[name] = kql_type
        if kql_type == "tabular":
            values[name] = value
            continue
        try:
            values[name] = literals.canonical(value, kql_type)
        except ParameterError as exc:
            where = "is declared" if name in declared else "is"
            raise ParameterError(f"parameter {name!r} {where} {kql_type}: {exc.message}") from None
    missing = [e for e in declared.values() if e.name not in params and e.default is None]
    if missing:
        e = missing[0]
        raise ParameterError(f"the query declares parameter {e.name!r} ({e.kql_type}) but no value was "
                             f"given: pass --param {e.name}=... (or params={{{e.name!r}: ...}})")

    if style == "literal":
        return _bind_literal(query, body, declared, types, values)
    return _bind_declare(query, body, sig, declared, types, values, tables)


def _bind_literal(query: str, body: str, declared: dict[str, _Declared], types: dict[str, str],
                  values: dict[str, Any]) -> Bound:
    lets = []
    for entry in declared.values():
        if entry.name not in values:  # keeps its default, which the user wrote as a literal
            lets.append(f"let {entry.name} = {entry.default};")
    for name, kql_type in types.items():
        text = _tables.datatable(values[name]) if kql_type == "tabular" else literals.encode(values[name], kql_type)
        lets.append(f"let {name} = {text};")
    prefix = " ".join(lets) + "\n"
    return Bound(query=prefix + body, style="literal", original=query, prefix_len=len(prefix), types=types)


def _bind_declare(query: str, body: str, sig: list[Token], declared: dict[str, _Declared],
                  types: dict[str, str], values: dict[str, Any], tables: bool) -> Bound:
    taken = {t.text for t in sig if t.kind == "ident"} | set(types)
    entries = [e.text for e in declared.values()]
    lets: list[str] = []
    bound: dict[str, Any] = {}
    wire: dict[str, str] = {}
    out_tables: dict[str, Any] = {}
    for name, kql_type in types.items():
        value = values[name]
        if kql_type == "tabular":
            if tables:
                out_tables[name] = typed_table(value, name)
            else:
                lets.append(f"let {name} = {_tables.datatable(value)};")
            continue
        if tables:
            _check_local(name, value, kql_type)
        if name in declared:
            bound[name] = literals.json_text(value) if kql_type == "dynamic" else value
            wire[name] = value if kql_type == "string" else literals.encode(value, kql_type)
        elif kql_type == "string":
            entries.append(f"{name}:string")
            bound[name] = wire[name] = value
        elif kql_type == "dynamic":
            hidden = _fresh(f"{name}__json", taken)
            entries.append(f"{hidden}:string")
            lets.append(f"let {name} = parse_json({hidden});")
            bound[hidden] = wire[hidden] = literals.json_text(value)
        elif kql_type in _DEFAULTED and value is not None:
            entries.append(f"{name}:{kql_type} = {literals.encode(value, kql_type)}")
            bound[name] = value
        else:
            entries.append(f"{name}:{kql_type}")
            bound[name] = value
            wire[name] = literals.encode(value, kql_type)
    pieces = []
    if entries:
        pieces.append(f"declare query_parameters({', '.join(entries)});")
    pieces.extend(lets)
    if not pieces:
        return Bound(query=query, tables=out_tables, style="declare", original=query, types=types)
    prefix = " ".join(pieces) + "\n"
    return Bound(query=prefix + body, values=bound, tables=out_tables, style="declare", original=query,
                 prefix_len=len(prefix), types=types, _wire=wire)


#: duckdb-kql binds a declared decimal as DECIMAL(38, 9): more places would be rounded away.
LOCAL_DECIMAL_PLACES = 9


def _check_local(name: str, value: Any, kql_type: str) -> None:
    """Refuse what the embedded engine would hold less exactly than KQL (never round silently)."""
    if value is None:
        return
    if kql_type in ("datetime", "timespan") and literals.sub_microsecond(value):
        how = "ts.floor('us')" if kql_type == "datetime" else "td.floor('us')"
        raise ParameterError(f"parameter {name!r} ({value}) has ticks below the microsecond, which the local "
                             f"engine (DuckDB) cannot hold: round it first (e.g. {how}); Log Analytics and ADX "
                             "hold KQL's 100 ns ticks")
    places = -value.normalize().as_tuple().exponent if kql_type == "decimal" else 0
    if places > LOCAL_DECIMAL_PLACES:
        raise ParameterError(f"parameter {name!r} ({value}) has {places} decimal places; the local engine binds "
                             f"decimals with {LOCAL_DECIMAL_PLACES} (duckdb-kql's DECIMAL(38, 9)), so the rest "
                             f"would be rounded away: round it first (p.quantize(Decimal('1e-9'))), or pass it "
                             "as a table column (DataFrame decimals keep up to 28 places), or run the query on "
                             "Log Analytics or ADX")


def typed_table(value: Any, name: str | None = None) -> Any:
    """A DataFrame (or Arrow table) as the Arrow table the local engine registers, every column in
    its KQL type: :func:`kqlmagic_plus.language.tables.typed_table`, the conversion a DataFrame read
    by name takes too."""
    return _tables.typed_table(value, name)


def _fresh(name: str, taken: set[str]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    taken.add(candidate)
    return candidate


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        for k in range(start, end):
            if chars[k] not in "\r\n":
                chars[k] = " "
    return "".join(chars)


def _display_json(obj: Mapping[str, Any]) -> str:
    """JSON for people: non-ASCII letters kept, every invisible or control character escaped."""
    import json
    import unicodedata

    text = json.dumps(obj, ensure_ascii=False, default=str)
    return "".join(_json_escape(c) if unicodedata.category(c)[0] in "CZ" and c != " " else c for c in text)


def _json_escape(c: str) -> str:
    units = c.encode("utf-16-be", "surrogatepass")
    return "".join(f"\\u{int.from_bytes(units[k:k + 2], 'big'):04x}" for k in range(0, len(units), 2))
