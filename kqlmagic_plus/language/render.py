"""The ``render`` clause: found on tokens at the end of a query, parsed into a :class:`RenderSpec`.

Engines that do not return visualization metadata (the local engine, Spark) run the query without
its ``render`` clause and keep the spec from here; Log Analytics and ADX return the same information
as metadata, read by :meth:`RenderSpec.from_service`. Both paths produce the same spec, so charts
never need to know where it came from.

The parser follows the KQL grammar: ``render`` *visualization* [legacy ``name=value`` / ``by``
properties] [``with (`` *name* ``=`` *value* [``,`` ...] ``)``]. The visualization name is not
checked here: an unknown one still runs the query and the chart layer shows the table with a note,
which is kinder than refusing a query over a typo in its chart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from kqlmagic_plus.errors import QuerySyntaxError
from kqlmagic_plus.language.lexer import Token, line_col, tokenize

#: Visualizations this project draws (``table`` shows the table).
CHART_TYPES = (
    "timechart", "linechart", "areachart", "stackedareachart", "barchart", "columnchart", "piechart",
    "scatterchart", "anomalychart", "card", "ladderchart", "timepivot", "pivotchart", "treemap", "table",
)

#: Allowed values of the enumerated properties (KQL render documentation).
ENUMS: dict[str, tuple[str, ...]] = {
    "kind": ("default", "unstacked", "stacked", "stacked100", "map"),
    "legend": ("visible", "hidden"),
    "ysplit": ("none", "axes", "panels"),
    "xaxis": ("linear", "log"),
    "yaxis": ("linear", "log"),
}
_STRINGS = ("title", "xtitle", "ytitle")
_NAME_LISTS = ("ycolumns", "series", "anomalycolumns")
_NUMBERS = ("ymin", "ymax")
_LITERALS = ("xmin", "xmax")
KNOWN_PROPERTIES = (*_STRINGS, "xcolumn", *_NAME_LISTS, *ENUMS, "accumulate", *_NUMBERS, *_LITERALS)


@dataclass(frozen=True)
class RenderSpec:
    """What a ``render`` clause asks for. ``None`` means "not given": the chart guesses."""

    chart: str
    title: str | None = None
    xtitle: str | None = None
    ytitle: str | None = None
    xcolumn: str | None = None
    ycolumns: tuple[str, ...] = ()
    series: tuple[str, ...] = ()
    kind: str | None = None
    ysplit: str | None = None
    accumulate: bool = False
    legend: str | None = None
    xaxis: str | None = None
    yaxis: str | None = None
    ymin: float | None = None
    ymax: float | None = None
    anomalycolumns: tuple[str, ...] = ()
    xmin: Any = None
    xmax: Any = None
    #: Properties this project does not know, kept as given (the chart layer names them in a note).
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    # -- conversions --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the cache); :meth:`from_dict` reads it back."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RenderSpec:
        known = {f.name for f in fields(cls)}
        kwargs = {k: (tuple(v) if k in _NAME_LISTS else v) for k, v in data.items() if k in known}
        return cls(**kwargs)

    def to_kql(self) -> str:
        """The clause as KQL text (``render timechart with (title="x")``)."""
        props: list[str] = []
        for name in KNOWN_PROPERTIES:
            value = getattr(self, name)
            if value is None or value == () or (name == "accumulate" and not value):
                continue
            if name in _STRINGS:
                props.append(f"{name}={_kql_string(value)}")
            elif name in _NAME_LISTS:
                props.append(f"{name}={', '.join(_kql_name(v) for v in value)}")
            elif name == "xcolumn":
                props.append(f"{name}={_kql_name(value)}")
            elif name == "accumulate":
                props.append("accumulate=true")
            elif name in _LITERALS and hasattr(value, "isoformat"):
                props.append(f"{name}=datetime({value.isoformat()})")
            elif name in _LITERALS and not isinstance(value, int | float):
                props.append(f"{name}={_kql_string(str(value))}")
            else:
                text = _number_text(value) if isinstance(value, float) else str(value)
                props.append(f"{name}={text}")
        clause = f"render {self.chart}"
        return clause + (f" with ({', '.join(props)})" if props else "")

    @classmethod
    def from_service(cls, visualization: Mapping[str, Any] | str | None) -> RenderSpec | None:
        """Read the visualization metadata Log Analytics or ADX return with a result.

        ADX (REST v1/v2) puts a JSON string in the ``@ExtendedProperties`` / ``QueryProperties``
        table, row ``Key == "Visualization"``, with PascalCase keys (``Visualization``, ``XColumn``,
        ``YColumns``, ``Ymin`` = ``"NaN"`` when unset, ...). Log Analytics returns the same under
        ``render`` / ``visualization`` with camelCase keys (``xColumn``, ``yMin``...). Both are
        accepted, as a dict or as its JSON text; lists may be arrays or comma-separated strings.
        None when the result has no visualization.
        """
        if visualization is None:
            return None
        if isinstance(visualization, str):
            try:
                visualization = json.loads(visualization)
            except ValueError:
                return None
            if not isinstance(visualization, Mapping):
                return None
        low = {str(k).lower(): v for k, v in visualization.items()}
        chart = low.pop("visualization", None)
        if not chart or not isinstance(chart, str):
            return None
        kwargs: dict[str, Any] = {"chart": chart.strip().lower()}
        extra: dict[str, Any] = {}
        for key, value in low.items():
            if key in _STRINGS or key == "xcolumn":
                if value not in (None, ""):
                    kwargs[key] = str(value)
            elif key in _NAME_LISTS or key == "by":
                names = _service_list(value)
                if names and key == "by":
                    kwargs.setdefault("series", names)
                elif names:
                    kwargs[key] = names
            elif key in ENUMS:
                if isinstance(value, str) and value.strip():
                    kwargs[key] = value.strip().lower()
            elif key == "accumulate":
                kwargs[key] = value is True or (isinstance(value, str) and value.lower() == "true")
            elif key in _NUMBERS:
                number = _service_number(value)
                if number is not None:
                    kwargs[key] = number
            elif key in _LITERALS:
                if value is not None and _service_number(value) is not None:
                    kwargs[key] = _service_number(value)
                elif isinstance(value, str) and value and value.lower() != "nan":
                    kwargs[key] = value
            elif value not in (None, "", False):
                extra[key] = value
        # "by" is the Log Analytics spelling of series; it only wins when series is absent.
        return cls(**kwargs, extra=extra)


# -- finding the clause -----------------------------------------------------------------------------


def split_render(query: str) -> tuple[str, RenderSpec | None]:
    """Find a trailing ``| render ...`` clause: the query without it, and the parsed spec.

    Strings and comments are skipped by the lexer, so a ``render`` inside them is never taken for
    the operator. A ``render`` followed by another operator, or a malformed clause, raises
    :class:`~kqlmagic_plus.errors.QuerySyntaxError` with the line and column.
    """
    tokens = [t for t in tokenize(query) if t.kind not in ("ws", "comment")]
    depth = 0
    pipes_at_top: list[int] = []
    render_at: int | None = None
    for i, tok in enumerate(tokens):
        if tok.kind == "punct" and tok.text in "([{":
            depth += 1
        elif tok.kind == "punct" and tok.text in ")]}":
            depth = max(depth - 1, 0)
        elif tok.kind == "punct" and tok.text == "|" and depth == 0:
            pipes_at_top.append(i)
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is not None and nxt.kind == "ident" and nxt.text == "render":
                render_at = i
        elif tok.kind == "punct" and tok.text == ";" and depth == 0 and render_at is not None:
            # A statement after the render clause: the clause itself ends here.
            break
    if render_at is None:
        return query, None
    later = [p for p in pipes_at_top if p > render_at]
    if later:
        _fail("render must be the last operator in the query", query, tokens[later[0]])
    spec, end = _Parser(query, tokens, render_at + 1).parse()
    for tok in tokens[end:]:
        if tok.text == ";":
            continue
        _fail(f"unexpected {tok.text!r} after the render clause", query, tok)
    return query[: tokens[render_at].start].rstrip(), spec


class _Parser:
    """Recursive descent over the significant tokens of one ``render`` clause."""

    def __init__(self, query: str, tokens: list[Token], pos: int):
        self.query = query
        self.toks = tokens
        self.pos = pos

    # token helpers
    def peek(self, ahead: int = 0) -> Token | None:
        i = self.pos + ahead
        return self.toks[i] if i < len(self.toks) else None

    def take(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def at(self, text: str, ahead: int = 0) -> bool:
        tok = self.peek(ahead)
        return tok is not None and tok.text == text and tok.kind != "string"

    def fail(self, detail: str, tok: Token | None = None) -> None:
        """Raise at *tok*, else at the next token, else just past the end of the clause."""
        if tok is None:
            tok = self.peek() or Token("punct", "", self.toks[self.pos - 1].end)
        _fail(detail, self.query, tok)

    def parse(self) -> tuple[RenderSpec, int]:
        render_tok = self.take()
        chart_tok = self.peek()
        if chart_tok is None or chart_tok.kind != "ident" or chart_tok.text == "with":
            found = f", found {chart_tok.text!r}" if chart_tok is not None else ""
            self.fail("render needs a visualization name, e.g. `render timechart`" + found,
                      chart_tok or Token("ident", "", render_tok.end))
        self.take()
        props: dict[str, Any] = {}
        where: dict[str, Token] = {}
        # Legacy form: name=value pairs and `by a, b` before (or instead of) `with (...)`.
        while self.peek() is not None and not self.at(";"):
            tok = self.peek()
            assert tok is not None
            if tok.kind == "ident" and tok.text == "with" and self.at("(", 1):
                break
            if tok.kind == "ident" and tok.text == "by":
                self.take()
                self._store(props, where, "series", self.name_list(), tok)
                continue
            if tok.kind == "ident" and self.at("=", 1):
                self.property(props, where)
                continue
            if tok.kind == "ident" and tok.text == "with":
                self.take()
                self.fail("expected '(' after with, as in `with (title=\"...\")`")
            break
        if self.peek() is not None and self.peek().text == "with":  # type: ignore[union-attr]
            self.take()
            open_tok = self.take()
            if self.at(")"):
                self.take()
            else:
                while True:
                    if self.peek() is None:
                        self.fail("the with (...) clause is not closed", open_tok)
                    self.property(props, where)
                    if self.at(","):
                        self.take()
                        continue
                    if self.at(")"):
                        self.take()
                        break
                    if self.peek() is None:
                        self.fail("the with (...) clause is not closed: expected ')'", open_tok)
                    self.fail(f"expected ',' or ')' in the with (...) clause, found {self.peek().text!r}")  # type: ignore[union-attr]
        extra = props.pop("__extra__", {})
        return RenderSpec(chart=chart_tok.text.lower(), **props, extra=extra), self.pos

    # grammar pieces
    def property(self, props: dict[str, Any], where: dict[str, Token]) -> None:
        name_tok = self.peek()
        if name_tok is None or name_tok.kind != "ident":
            self.fail("expected a property name such as title, xcolumn, ycolumns, series or kind")
        self.take()
        name = name_tok.text.lower()  # type: ignore[union-attr]
        if not self.at("="):
            self.fail(f"expected '=' after {name_tok.text}")  # type: ignore[union-attr]
        eq = self.take()
        if self.peek() is None or self.at(",") or self.at(")"):
            self.fail(f"missing a value for {name}", self.peek() or Token("punct", "", eq.end))
        value_tok = self.peek()
        assert value_tok is not None
        if name in _STRINGS:
            value: Any = self.string_value(name)
        elif name == "xcolumn":
            value = self.name()
        elif name in _NAME_LISTS:
            value = self.name_list()
        elif name in ENUMS:
            word = self.take()
            value = word.text.lower()
            if word.kind not in ("ident", "number") or value not in ENUMS[name]:
                self.fail(f"{name} must be one of {', '.join(ENUMS[name])}; found {word.text!r}", word)
        elif name == "accumulate":
            word = self.take()
            if word.text.lower() not in ("true", "false"):
                self.fail(f"accumulate must be true or false; found {word.text!r}", word)
            value = word.text.lower() == "true"
        elif name in _NUMBERS:
            value = self.number(name)
        else:
            value = self.literal()
        if name in KNOWN_PROPERTIES:
            self._store(props, where, name, value, name_tok)  # type: ignore[arg-type]
        else:
            props.setdefault("__extra__", {})[name] = value

    def _store(self, props: dict[str, Any], where: dict[str, Token], name: str, value: Any,
               tok: Token) -> None:
        if name in props:
            self.fail(f"{name} is given twice in the render clause", tok)
        props[name] = value
        where[name] = tok

    def string_value(self, name: str) -> str:
        tok = self.peek()
        if tok is not None and tok.kind == "ident":
            # `title=Foo` reads as the word itself, the way Kusto.Explorer shows it.
            return self.take().text
        if tok is None or tok.kind != "string":
            self.fail(f"{name} needs a string literal, e.g. {name}=\"...\"", tok)
        parts = []
        while self.peek() is not None and self.peek().kind == "string":  # type: ignore[union-attr]
            parts.append(self.decode(self.take()))
        return "".join(parts)

    def name(self) -> str:
        tok = self.peek()
        if tok is not None and tok.kind == "ident":
            return self.take().text
        if tok is not None and tok.text == "[" and tok.kind == "punct":
            self.take()
            inner = self.peek()
            if inner is None or inner.kind != "string":
                self.fail("expected a quoted column name inside [...]", inner)
            self.take()
            if not self.at("]"):
                self.fail("expected ']' after the quoted column name")
            self.take()
            return self.decode(inner)  # type: ignore[arg-type]
        self.fail("expected a column name", tok)
        raise AssertionError  # unreachable: fail raises

    def name_list(self) -> tuple[str, ...]:
        names = [self.name()]
        # A comma separates both list items and properties: `name =` after it starts a property.
        while self.at(",") and self.peek(1) is not None and not self.at("=", 2) and (
                self.peek(1).kind == "ident" or self.at("[", 1)):  # type: ignore[union-attr]
            self.take()
            names.append(self.name())
        return tuple(names)

    def number(self, name: str) -> float:
        sign = 1.0
        if self.at("-") or self.at("+"):
            sign = -1.0 if self.take().text == "-" else 1.0
        tok = self.peek()
        if tok is None or tok.kind != "number":
            self.fail(f"{name} must be a number", tok)
        text = self.take().text  # type: ignore[union-attr]
        if text[-1:] in ("e", "E") and (self.at("-") or self.at("+")) and self.peek(1) is not None \
                and self.peek(1).kind == "number":  # type: ignore[union-attr]
            # The lexer splits `1e+06` at the sign; the literal is still one number.
            text += self.take().text + self.take().text
        try:
            return sign * float(text)
        except ValueError:
            self.fail(f"{name} must be a number; found {text!r}", tok)
            raise

    def literal(self) -> Any:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "string":
            return self.string_value("value")
        if self.at("-") or self.at("+") or tok.kind == "number":
            return self.number("value")
        if tok.kind == "ident" and self.at("(", 1):
            # A typed literal such as datetime(2024-01-01): kept as its text inside the parens.
            func = self.take()
            open_tok = self.take()
            depth, start = 1, self.pos
            while self.peek() is not None and depth:
                t = self.take()
                depth += t.text == "(" and t.kind == "punct"
                depth -= t.text == ")" and t.kind == "punct"
            if depth:
                self.fail(f"{func.text}( is not closed", open_tok)
            inner = self.query[self.toks[start].start:self.toks[self.pos - 1].start].strip()
            return _typed_literal(func.text.lower(), inner)
        if tok.kind == "ident":
            word = self.take().text
            return {"true": True, "false": False}.get(word.lower(), word)
        self.fail(f"unexpected {tok.text!r} as a property value", tok)
        raise AssertionError

    def decode(self, tok: Token) -> str:
        try:
            return decode_string(tok.text)
        except ValueError as exc:
            self.fail(str(exc), tok)
            raise


def decode_string(text: str) -> str:
    """The value of one KQL string literal token (quoted, verbatim, obfuscated or multi-line): the one
    decoder, :func:`kqlmagic_plus.language.literals.decode_string` (a ValueError for what KQL rejects)."""
    from kqlmagic_plus.language.literals import decode_string as decode

    return decode(text)


def _typed_literal(func: str, inner: str) -> Any:
    if func in ("datetime", "todatetime"):
        from datetime import UTC, datetime

        try:
            parsed = datetime.fromisoformat(inner.strip("'\"").replace("Z", "+00:00"))
        except ValueError:
            return inner
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if func in ("real", "double", "long", "int", "toreal", "tolong", "toint"):
        try:
            return float(inner)
        except ValueError:
            return inner
    return f"{func}({inner})"


def _fail(detail: str, query: str, tok: Token) -> None:
    line, col = line_col(query, tok.start)
    raise QuerySyntaxError(detail, query, line, col)


def _kql_name(name: str) -> str:
    from kqlmagic_plus.language.literals import identifier

    return identifier(name)


def _kql_string(text: str) -> str:
    # The project's one literal encoder (kql/literals.py), so every text this package writes reads back.
    from kqlmagic_plus.language.literals import string

    return string(text)


def _number_text(value: float) -> str:
    """A float as a KQL literal without an exponent (the lexer splits ``1e+06`` at the sign)."""
    from decimal import Decimal

    text = repr(value)
    return format(Decimal(text), "f") if "e" in text or "E" in text else text


def _service_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if v not in (None, ""))
    return ()


def _service_number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) or math.isinf(number) else number
