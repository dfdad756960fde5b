"""The shape of (possibly unfinished) KQL before the cursor: nested frames of pipelines, and the
columns each operator leaves in scope.

Built on :mod:`kqlmagic_plus.language.lexer`, not on a full parser: the text being typed is almost
never a valid query, so this reads what is there (brackets, pipes, ``;``, ``name = expr`` items) and
tolerates the rest. Column inference is best effort: an operator it does not model keeps its input's
columns, so completion still offers them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kqlmagic_plus.language.completion.vocabulary import FIXED_OUTPUT, SAME_COLUMNS, functions
from kqlmagic_plus.language.lexer import Token, significant, tokenize

Columns = dict[str, str]
Schema = Mapping[str, Mapping[str, str]]


@dataclass
class Group:
    """A bracketed part: its opener, and its own pipeline segments (split at ``|``)."""

    opener: str
    #: The token before the opener (a function name, ``join``, ``with`` ...), or None.
    before: Token | None
    segments: list[list[Token | Group]] = field(default_factory=lambda: [[]])
    closed: bool = False

    @property
    def text(self) -> str:  # so a Group can stand where a token is looked at
        return self.opener

    @property
    def kind(self) -> str:
        return "group"

    def is_tabular(self) -> bool:
        """A subquery (a pipeline in parentheses) rather than an expression or an argument list."""
        if len(self.segments) > 1:
            return True  # a pipeline: in parentheses, or a function body in braces
        if self.opener != "(":
            return False
        before = self.before.text.lower() if self.before is not None else ""
        return before in _TABULAR_BEFORE


#: Words after which ``(`` opens a subquery.
_TABULAR_BEFORE = frozenset({"join", "lookup", "union", "materialize", "toscalar", "view", "fork", "facet",
                             "inner", "innerunique", "leftouter", "rightouter", "fullouter", "leftanti", "rightanti",
                             "leftsemi", "rightsemi", "anti", "semi", "datatable"})

Element = Token | Group


@dataclass
class Reading:
    """What the text before the cursor is made of."""

    #: The innermost open brackets, outermost first (the statement itself is the first frame).
    frames: list[Group]
    #: Tables named by ``let X = <pipeline>`` statements before the current one.
    lets: dict[str, Columns]


def read(text: str, schema: Schema) -> Reading:
    """Split *text* (the query up to the completion point) into frames and earlier ``let`` tables."""
    lets: dict[str, Columns] = {}
    top = Group("", None)
    stack = [top]
    prev: Token | None = None
    for tok in significant(tokenize(text)):
        t = tok.text
        if tok.kind == "punct" and t in ("(", "[", "{"):
            g = Group(t, prev)
            stack[-1].segments[-1].append(g)
            stack.append(g)
        elif tok.kind == "punct" and t in (")", "]", "}") and len(stack) > 1:
            stack.pop().closed = True
        elif tok.kind == "punct" and t == "|" and (len(stack) == 1 or stack[-1].opener in ("(", "{")):
            stack[-1].segments.append([])
        elif tok.kind == "punct" and t == ";" and len(stack) == 1:
            _remember_let(top, schema, lets)
            top = Group("", None)
            stack = [top]
        else:
            stack[-1].segments[-1].append(tok)
        prev = tok
    return Reading(stack, lets)


def _remember_let(statement: Group, schema: Schema, lets: dict[str, Columns]) -> None:
    """``let X = <tabular expression>``: X's columns, for the statements after it."""
    first = statement.segments[0]
    if len(first) >= 3 and first[0].text == "let" and first[2].text == "=":
        body = Group("", None, [first[3:], *statement.segments[1:]])
        name = first[1].text
        if not (len(first) > 3 and isinstance(first[3], Group) and first[3].opener == "(" and len(first) > 4):
            cols = pipeline_columns(body.segments, {**schema, **lets}) if _is_tabular_source(body, schema, lets) \
                else None
            if cols is not None:
                lets[name] = cols


def _is_tabular_source(body: Group, schema: Schema, lets: Mapping[str, Columns]) -> bool:
    seg = body.segments[0]
    if not seg:
        return False
    head = seg[0]
    if isinstance(head, Group):
        return (head.opener == "(" and head.is_tabular()) or len(body.segments) > 1
    word = head.text
    return (len(body.segments) > 1 or lookup(schema, word) is not None or word in lets
            or word in ("datatable", "range", "print", "union", "materialize", "view"))


def lookup(schema: Schema, name: str) -> Mapping[str, str] | None:
    """A table by name: exact first, then ignoring case (DuckDB and Kusto names differ only in case)."""
    hit = schema.get(name)
    if hit is not None:
        return hit
    low = name.lower()
    for k, v in schema.items():
        if k.lower() == low:
            return v
    return None


# -- columns through a pipeline ------------------------------------------------------------------------


def pipeline_columns(segments: list[list[Element]], schema: Schema) -> Columns:
    """The columns after all of *segments* (the first is the source)."""
    cols = source_columns(segments[0], schema) if segments else {}
    for seg in segments[1:]:
        cols = operator_columns(seg, cols, schema)
    return cols


def source_columns(seg: list[Element], schema: Schema) -> Columns:
    if not seg:
        return {}
    if seg[0].text == "let" and len(seg) >= 3:
        seg = seg[3:]
        if not seg:
            return {}
    head = seg[0]
    if isinstance(head, Group):
        return pipeline_columns(head.segments, schema) if head.opener == "(" else {}
    word = head.text.lower()
    if word == "union":
        return _union(seg[1:], {}, schema)
    if word == "print":
        return _items_columns(seg[1:], {}, named_only=False, unnamed="print_", first=0)
    if word == "range" and len(seg) > 1:
        return {seg[1].text: "long"}
    if word == "datatable" and len(seg) > 1 and isinstance(seg[1], Group):
        return _typed_names(seg[1].segments[0])
    if word in ("materialize", "view") and len(seg) > 1 and isinstance(seg[1], Group):
        return pipeline_columns(seg[1].segments, schema)
    table = lookup(schema, head.text)
    return dict(table) if table is not None else {}


def operator_columns(seg: list[Element], cols: Columns, schema: Schema) -> Columns:
    if not seg:
        return cols
    op = seg[0].text.lower()
    if op in FIXED_OUTPUT:
        return dict(FIXED_OUTPUT[op])
    handler = _HANDLERS.get(op)
    if handler is not None:
        return handler(seg[1:], cols, schema)
    return cols  # where, take, sort, render ... and anything not modelled


def _extend(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    return {**cols, **_items_columns(rest, cols, named_only=False, unnamed="Column")}


def _project(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    return _items_columns(rest, cols, named_only=False, unnamed="Column")


def _project_away(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    patterns = [_joined(item) for item in split_items(rest)]
    return {c: t for c, t in cols.items() if not any(fnmatch.fnmatchcase(c, p) for p in patterns if p)}


def _project_keep(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    patterns = [_joined(item) for item in split_items(rest)]
    return {c: t for c, t in cols.items() if any(fnmatch.fnmatchcase(c, p) for p in patterns if p)}


def _project_rename(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    out = dict(cols)
    for item in split_items(rest):
        if len(item) == 3 and item[1].text == "=":
            new, old = item[0].text, item[2].text
            if old in out:
                out = {(new if k == old else k): v for k, v in out.items()}
    return out


def _summarize(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    aggs, by = split_at_word(rest, "by")
    groups = _items_columns(by or [], cols, named_only=False, unnamed="Column", by=True)
    return {**groups, **_items_columns(aggs, cols, named_only=False, aggregate=True)}


def _make_series(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    head, by = split_at_word(rest, "by")
    aggs, axis = split_at_word(head, "on")
    out = _items_columns(by or [], cols, named_only=False, unnamed="Column")
    if axis:
        out[axis[0].text] = "dynamic"
    for name in _items_columns(_before_words(aggs, ("default",)), cols, named_only=False, aggregate=True):
        out[name] = "dynamic"
    return out


def _distinct(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    if rest and rest[0].text == "*":
        return cols
    return _items_columns(rest, cols, named_only=False, unnamed="Column")


def _mv_expand(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    out = dict(cols)
    for item in split_items(_before_words(rest, ("limit",))):
        words = [e for e in item if not isinstance(e, Group)]
        if len(item) >= 3 and item[1].text == "=":
            out[item[0].text] = "dynamic"
        elif words and words[0].text in out:
            out[words[0].text] = "dynamic"
    return out


def _parse(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    """``parse Col with "x" Name:type "y" *``: the names between the literals become columns."""
    out = dict(cols)
    _, pattern = split_at_word(rest, "with")
    items = pattern or []
    for i, el in enumerate(items):
        if el.kind == "ident" and (i == 0 or items[i - 1].text != ":") and el.text not in ("kind", "flags"):
            if i + 1 < len(items) and items[i + 1].text == "=":
                continue
            typ = items[i + 2].text if i + 2 < len(items) and items[i + 1].text == ":" else "string"
            out[el.text] = typ
    return out


def _parse_kv(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    """``parse-kv Col as (key:type, ...)``: the keys become columns."""
    _, typed = split_at_word(rest, "as")
    if typed and isinstance(typed[0], Group):
        return {**cols, **_typed_names(typed[0].segments[0])}
    return cols


def _serialize(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    return {**cols, **_items_columns(rest, cols, named_only=True)}


def _join(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    right = right_side(rest, schema)
    kind = _join_kind(rest)
    if kind in ("leftsemi", "leftanti", "anti", "semi", "leftantisemi"):
        return dict(cols)
    if kind in ("rightsemi", "rightanti", "rightantisemi"):
        return right
    out = dict(cols)
    for c, t in right.items():
        out[c + "1" if c in cols else c] = t
    return out


def _join_kind(rest: list[Element]) -> str:
    for i, el in enumerate(rest[:-2]):
        if el.text == "kind" and rest[i + 1].text == "=":
            return rest[i + 2].text.lower()
    return ""


def _lookup(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    right = right_side(rest, schema)
    return {**cols, **{c: t for c, t in right.items() if c not in cols}}


def _union_op(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    return _union(rest, cols, schema)


def _top_hitters(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    _, of = split_at_word(rest, "of")
    name = of[0].text if of else ""
    return {name: cols.get(name, ""), "approximate_count_" + name: "long"} if name else cols


def _sample_distinct(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    _, of = split_at_word(rest, "of")
    return {of[0].text: cols.get(of[0].text, "")} if of else cols


_HANDLERS: dict[str, Callable[[list[Element], Columns, Schema], Columns]] = {
    "extend": _extend, "project": _project, "project-away": _project_away, "project-keep": _project_keep,
    "project-rename": _project_rename, "summarize": _summarize, "make-series": _make_series,
    "distinct": _distinct, "mv-expand": _mv_expand, "parse": _parse, "parse-where": _parse,
    "serialize": _serialize, "join": _join, "lookup": _lookup, "union": _union_op,
    "top-hitters": _top_hitters, "sample-distinct": _sample_distinct,
    **{op: (lambda rest, cols, schema: cols) for op in SAME_COLUMNS}, "parse-kv": _parse_kv,
}


def right_side(rest: list[Element], schema: Schema) -> Columns:
    """The columns of a join's or lookup's right side: a parenthesised subquery or a table name."""
    before_on, _ = split_at_word(rest, "on")
    for i, el in enumerate(before_on):
        if isinstance(el, Group) and el.opener == "(":
            return pipeline_columns(el.segments, schema)
        if el.kind == "ident" and el.text not in ("kind", "hint") and (i == 0 or before_on[i - 1].text != "="):
            if i + 1 < len(before_on) and before_on[i + 1].text == "=":
                continue
            table = lookup(schema, el.text)
            if table is not None:
                return dict(table)
    return {}


def _union(rest: list[Element], cols: Columns, schema: Schema) -> Columns:
    out = dict(cols)
    for i, el in enumerate(rest[:-2]):
        if el.text == "withsource" and rest[i + 1].text == "=":
            out[rest[i + 2].text] = "string"  # the name of each row's table
    for item in split_items(rest):
        for el in item:
            if isinstance(el, Group) and el.opener == "(":
                out.update({k: v for k, v in pipeline_columns(el.segments, schema).items() if k not in out})
            elif el.kind == "ident":
                table = lookup(schema, el.text)
                if table is not None:
                    out.update({k: v for k, v in table.items() if k not in out})
    return out


# -- items: `name = expr, expr, ...` ------------------------------------------------------------------


def split_items(elements: list[Element]) -> list[list[Element]]:
    """Split at top-level commas (brackets are already Groups, so every comma here is top level)."""
    items: list[list[Element]] = [[]]
    for el in elements:
        if el.kind == "punct" and el.text == ",":
            items.append([])
        else:
            items[-1].append(el)
    return [i for i in items if i]


def split_at_word(elements: list[Element], word: str) -> tuple[list[Element], list[Element] | None]:
    """(before, after) the first top-level *word*; after is None when the word is not there."""
    for i, el in enumerate(elements):
        if el.kind == "ident" and el.text.lower() == word:
            return elements[:i], elements[i + 1:]
    return elements, None


def _before_words(elements: list[Element], words: tuple[str, ...]) -> list[Element]:
    for i, el in enumerate(elements):
        if el.kind == "ident" and el.text.lower() in words:
            return elements[:i]
    return elements


def _items_columns(elements: list[Element], cols: Columns, *, named_only: bool, unnamed: str = "",
                   aggregate: bool = False, first: int = 1, by: bool = False) -> Columns:
    out: Columns = {}
    n = first - 1
    for item in split_items(elements):
        if len(item) >= 2 and item[0].kind == "ident" and item[1].text == "=":
            out[item[0].text] = expression_type(item[2:], cols)
            continue
        if aggregate and (_arg_extreme(item, cols, out) or _percentiles(item, cols, out)):
            continue
        if len(item) >= 2 and isinstance(item[0], Group) and item[0].opener == "(" and item[1].text == "=":
            for name in _typed_names(item[0].segments[0]):  # (a, b) = f(x)
                out[name] = ""
            continue
        if named_only:
            continue
        name = _implied_name(item, cols, aggregate, by)
        if name is None:
            n += 1
            name = f"{unnamed or 'Column'}{n}"
        out[name] = expression_type(item, cols)
    return out


#: Aggregates whose unnamed result is not ``<name>_<column>``.
_AGGREGATE_PREFIX = {"make_set": "set_", "makeset": "set_", "make_list": "list_", "makelist": "list_",
                     "make_bag": "bag_", "make_set_if": "set_", "make_list_if": "list_", "make_bag_if": "bag_"}
#: Aggregates whose unnamed result keeps the column's own name.
_AGGREGATE_SAME_NAME = frozenset({"take_any", "any"})


def _implied_name(item: list[Element], cols: Columns, aggregate: bool, by: bool = False) -> str | None:
    """The name KQL gives an unnamed item: the column itself, ``bin(Col, 1h)`` -> Col (and any function of
    one column in ``summarize ... by``), ``count()`` -> ``count_``, ``dcount(Col)`` -> ``dcount_Col``,
    ``make_set(Col)`` -> ``set_Col``, ``take_any(Col)`` -> ``Col``."""
    first = item[0]
    if len(item) == 1 and first.kind == "ident":
        return first.text
    if len(item) >= 2 and first.kind == "ident" and isinstance(item[1], Group) and item[1].opener == "(":
        args = [a for a in item[1].segments[0] if a.kind == "ident" and a.text in cols]
        name = first.text
        if aggregate:
            if name in _AGGREGATE_SAME_NAME and args:
                return args[0].text
            if name.startswith("covariance") and len(args) >= 2:
                return f"{name}_{args[0].text}_{args[1].text}"
            return _AGGREGATE_PREFIX.get(name, f"{name}_") + (args[0].text if args else "")
        if (by or name in ("bin", "floor", "bin_at", "startofday", "startofweek", "startofmonth")) and args:
            return args[0].text
    return None


def _percentiles(item: list[Element], cols: Columns, out: Columns) -> bool:
    """``percentiles(Col, 25, 75)`` -> ``percentile_Col_25``, ``percentile_Col_75`` (``percentilesw`` too)."""
    if not (len(item) == 2 and item[0].text in ("percentiles", "percentilesw") and isinstance(item[1], Group)):
        return False
    args = split_items(item[1].segments[0])
    skip = 2 if item[0].text == "percentilesw" else 1
    if not args or len(args[0]) != 1:
        return False
    for arg in args[skip:]:
        if len(arg) == 1 and arg[0].kind == "number":
            out[f"percentile_{args[0][0].text}_{arg[0].text.replace('.', '_')}"] = cols.get(args[0][0].text, "")
    return True


def _arg_extreme(item: list[Element], cols: Columns, out: Columns) -> bool:
    """``arg_max(By, Col, ...)`` / ``arg_min``: the by-expression and the named columns (``*``: all of them)."""
    if not (len(item) == 2 and item[0].text in ("arg_max", "arg_min") and isinstance(item[1], Group)):
        return False
    args = split_items(item[1].segments[0])
    if not args:
        return False
    for arg in args:
        if len(arg) == 1 and arg[0].text == "*":
            out.update({c: t for c, t in cols.items() if c not in out})
        elif len(arg) >= 2 and arg[1].text == "=":
            out[arg[0].text] = expression_type(arg[2:], cols)
        elif len(arg) == 1 and arg[0].kind == "ident":
            out[arg[0].text] = cols.get(arg[0].text, "")
    return True


def expression_type(expr: list[Element], cols: Columns) -> str:
    """A KQL type for a simple expression (a column, a literal, a catalogued function call), else ''."""
    if not expr:
        return ""
    first = expr[0]
    if len(expr) == 1:
        if first.kind == "ident":
            return cols.get(first.text) or ("bool" if first.text in ("true", "false") else "")
        if first.kind == "string":
            return "string"
        if first.kind == "number":
            text = first.text.lower()
            if text[-1:].isalpha() and not text.startswith("0x") and "e" not in text:
                return "timespan"
            return "real" if "." in text or "e" in text else "long"
    if first.kind == "ident" and len(expr) >= 2 and isinstance(expr[1], Group):
        name = first.text
        if name in ("datetime", "timespan", "dynamic", "guid", "bool", "int", "long", "real", "decimal"):
            return name
        scalars, aggregates = functions()
        sig = scalars.get(name) or aggregates.get(name) or ""
        ret = sig.rpartition(" -> ")[2] if " -> " in sig else ""
        if ret:
            return ret
        args = [a for a in expr[1].segments[0] if a.kind == "ident"]
        return cols.get(args[0].text, "") if args else ""
    return ""


def _typed_names(elements: list[Element]) -> Columns:
    """``a:string, b:long`` (datatable, parse) as columns."""
    out: Columns = {}
    for item in split_items(elements):
        if item and item[0].kind == "ident":
            out[item[0].text] = item[2].text if len(item) >= 3 and item[1].text == ":" else ""
    return out


def _joined(item: list[Element]) -> str:
    return "".join(e.text for e in item if not isinstance(e, Group))
