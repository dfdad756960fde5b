"""The KQL reference's examples: every kusto block followed by its output table, and whether it is self-contained.

Self-contained means the query reads only print / datatable / range / let, and uses no clock, randomness,
table, stored function or management command; the rule is conservative (an example it cannot judge is dropped, with
the reason recorded), because an example that needs the Samples database measures nothing here.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field

QUERY_DIR = os.path.join("data-explorer", "kusto", "query")


@dataclass
class Example:
    page: str
    line: int
    heading: str
    query: str
    header: list[str]
    rows: list[list[str]]
    family: str = "other"
    dropped: str | None = None
    notes: list[str] = field(default_factory=list)


_FENCE = re.compile(r"^\s*```\s*(kusto|kql)\s*$", re.I)
_ANY_FENCE = re.compile(r"^\s*```")
#: A JSON array shown as "[ ... ]" (coordinates or geometries left out), e.g. {"coordinates": [ ... ]}.
_ELIDED_ARRAY = re.compile(r"\[\s*(?:\.\.\.|…)(?:\s+(?:\.\.\.|…))*\s*\]")
# Words in the text between a query and its table that say the table is not the whole answer.
_PARTIAL = re.compile(r"\b(first|partial|sample|excerpt|truncat|portion|some of|subset|example of the|part of|"
                      r"similar to|might look|may look|looks like|for example|e\.g\.|such as|rows? shown)\b", re.I)


def split_row(line: str) -> list[str]:
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    cells, cur, i = [], [], 0
    while i < len(s):
        ch = s[i]
        if ch == "\\" and i + 1 < len(s) and s[i + 1] == "|":
            cur.append("|")
            i += 2
            continue
        if ch == "|":
            cells.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    cells.append("".join(cur))
    return [clean_cell(c) for c in cells]


def clean_cell(c: str) -> str:
    c = html.unescape(c.strip())
    c = c.replace("<br>", "\n").replace("<br/>", "\n").replace("<br />", "\n")
    if len(c) >= 2 and c.startswith("`") and c.endswith("`") and "`" not in c[1:-1]:
        return c[1:-1]  # inside a code span a backslash is literal: no markdown escapes to undo
    if re.fullmatch(r"<(https?|ftp|mailto):[^<>\s]*>", c):  # a markdown autolink shows the bare address
        c = c[1:-1]
    c = re.sub(r"\\([\\`*_{}\[\]()#+\-.!<>~])", r"\1", c)
    return c


def _is_separator(line: str) -> bool:
    cells = split_row(line)
    return bool(cells) and all(re.fullmatch(r":?-{1,}:?", c.strip()) for c in cells if c.strip()) \
        and any(c.strip() for c in cells)


def extract(path: str, page: str) -> list[Example]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out: list[Example] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
        if not _FENCE.match(line):
            i += 1
            continue
        start = i + 1
        j = start
        while j < len(lines) and not _ANY_FENCE.match(lines[j]):
            j += 1
        query = "\n".join(lines[start:j]).strip("\n")
        # The output table: the next markdown table before another code block or heading.
        k = j + 1
        between: list[str] = []
        while k < len(lines) and not lines[k].lstrip().startswith("|"):
            if _ANY_FENCE.match(lines[k]) or lines[k].startswith("#"):
                break
            between.append(lines[k])
            k += 1
        if k < len(lines) and lines[k].lstrip().startswith("|") and k + 1 < len(lines) \
                and _is_separator(lines[k + 1]):
            header = split_row(lines[k])
            rows = []
            m = k + 2
            # GFM lets a row leave out its leading pipe ("0123|"); a row still ends at its trailing one.
            while m < len(lines) and (lines[m].lstrip().startswith("|") or lines[m].rstrip().endswith("|")):
                rows.append(split_row(lines[m]))
                m += 1
            ex = Example(page, start, heading, query, header, rows)
            text = " ".join(b for b in between if not b.strip().startswith(":::"))
            if _PARTIAL.search(text):
                ex.dropped = "output shown in part: " + _PARTIAL.search(text).group(0)
            elif any(c.strip() in ("...", "…") for r in rows for c in r):
                ex.dropped = "output shown in part: ..."
            elif any(_ELIDED_ARRAY.search(c) for r in rows for c in r):
                ex.dropped = "output shown in part: [ ... ]"
            elif any(len(r) != len(header) for r in rows):
                ex.dropped = "output table malformed"
            elif [h.lower() for h in header[:2]] in (["name", "type"], ["parameter", "type"]):
                ex.dropped = "table is not an output"
            out.append(ex)
            i = m
        else:
            i = j + 1
    return out


# -- what a query reads ---------------------------------------------------------------------------------------

_CLOCK = re.compile(r"\b(now|ago|rand|new_guid|current_\w+|ingestion_time|cursor_\w+|extent_id|extent_tags|"
                    r"cluster|database|table|external_table|materialized_view|stored_query_result|"
                    r"estimate_data_size|hll_merge_none)\s*\(", re.I)
_NONDETERMINISTIC = re.compile(r"\b(sample-distinct|sample)\b(?!\s*=)"
                               r"|\b(take_any|take_anyif|any|anyif|hll|hll_if|hll_merge|tdigest|tdigest_merge)\s*\(",
                               re.I)
_PLUGINS_OUTSIDE = re.compile(r"\bevaluate\s+(python|r|sql_request|http_request|http_request_post|cosmosdb_sql_request|"
                              r"mysql_request|postgresql_request|azure_digital_twins_query_request|ai_\w+|"
                              r"ipv4_lookup|ipv6_lookup|identity_\w+|schema_merge)\b", re.I)
_EXTERNAL = re.compile(r"\b(externaldata|external_table|facet|restrict|pattern|alias|"
                       r"declare\s+query_parameters|set|macro-expand|materialized-view-combine)\b"
                       r"|(?:^|;)\s*(find|search)\b", re.I | re.M)
_STRINGS = re.compile(r'```.*?```|~~~.*?~~~|[hH]?@"(?:[^"]|"")*"|[hH]?@\'(?:[^\']|\'\')*\'|[hH]?"(?:\\.|[^"\\\n])*"'
                      r"|[hH]?'(?:\\.|[^'\\\n])*'", re.S)
_COMMENT = re.compile(r"//[^\n]*")
_IDENT = re.compile(r"\[?[A-Za-z_][\w]*\]?")
KEYWORDS = {"print", "datatable", "range", "let", "union", "join", "lookup", "materialize", "toscalar", "view",
            "on", "kind", "with", "by", "and", "or", "not", "true", "false", "in", "has", "contains", "typeof",
            "dynamic", "null", "evaluate", "invoke", "declare"}


#: Literal and cast forms, called like functions: datetime(2020-01-01), int(null), ...
_LITERAL_TYPES = {"datetime", "date", "time", "timespan", "int", "long", "real", "double", "bool", "boolean",
                  "decimal", "guid", "dynamic", "string", "uniqueid", "int64", "float"}


def strip_strings(q: str) -> str:
    return _STRINGS.sub('""', _COMMENT.sub("", q))


def _let_names(code: str) -> set[str]:
    return set(re.findall(r"\blet\s+([A-Za-z_]\w*)\s*=", code)) | \
        set(re.findall(r"\bas\s+(?:hint\.\w+\s*=\s*\w+\s+)?([A-Za-z_]\w*)", code)) | \
        set(re.findall(r"\bwith(?:source)?\s*=\s*([A-Za-z_]\w*)", code))


def _function_params(code: str) -> set[str]:
    names: set[str] = set()
    for sig in re.findall(r"=\s*\(([^()]*)\)\s*\{", code):
        names.update(re.findall(r"([A-Za-z_]\w*)\s*:", sig))
    return names


def table_refs(code: str) -> set[str]:
    """Names in a table position: a pipeline's first word, union/join/lookup operands."""
    lets = _let_names(code) | _function_params(code)
    found: list[str] = []
    for stmt in _statements(code):
        m = re.match(r"\s*let\s+[A-Za-z_]\w*\s*=\s*(?:view\s*\(\s*\)\s*\{)?\s*([A-Za-z_]\w*)\s*(?=\||;|$|\})",
                     stmt)
        if m:
            found.append(m.group(1))
        elif not re.match(r"\s*let\b", stmt):
            m = re.match(r"\s*([A-Za-z_]\w*)\s*(?=\||$)", stmt)
            if m:
                found.append(m.group(1))
    for m in re.finditer(r"\bunion\b((?:\s+[\w.]+\s*=\s*\w+)*)\s*([^|;]*)", code):
        for leg in m.group(2).split(","):
            w = re.match(r"\s*\(?\s*([A-Za-z_]\w*)\s*(?=\||\)|$)", leg)
            if w:
                found.append(w.group(1))
    for m in re.finditer(r"\b(?:join|lookup)\b(?:\s+[\w.]+\s*=\s*[\w.]+)*\s*\(?\s*([A-Za-z_]\w*)\s*(?=\||\)|\bon\b)",
                         code):
        found.append(m.group(1))
    for m in re.finditer(r"\(\s*([A-Za-z_]\w*)\s*\|", code):
        found.append(m.group(1))
    return {n for n in found if n.lower() not in KEYWORDS and n not in lets}


def _statements(code: str) -> list[str]:
    out, depth, cur = [], 0, []
    for ch in code:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == ";" and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [s for s in out if s.strip()]


def called(code: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"(?<![.\w])([A-Za-z_]\w*)\s*\(", code)}


def builtin_functions(query_dir: str) -> set[str]:
    """Every function name the reference documents (a page title `name()` or a syntax line)."""
    names: set[str] = set()
    for root, _, files in os.walk(query_dir):
        for fname in files:
            if not fname.endswith(".md"):
                continue
            with open(os.path.join(root, fname), encoding="utf-8") as f:
                text = f.read()
            names.update(re.findall(r"^#\s+([a-z_][\w]*)\(\)", text, re.M))
            names.update(re.findall(r"`([a-z_][\w]*)`\s*`\(`", text))
            names.update(re.findall(r"\[([a-z_][\w]*)\(\)\]\(", text))
    return names


def self_contained(ex: Example, builtins: set[str], tables: set[str]) -> str | None:
    """None when the example reads nothing but itself; else why it is dropped."""
    q = ex.query
    if not q.strip():
        return "empty query"
    if q.lstrip().startswith("."):
        return "management command"
    code = strip_strings(q)
    if _CLOCK.search(code):
        return f"clock, randomness or metadata: {_CLOCK.search(code).group(1)}()"
    m = _PLUGINS_OUTSIDE.search(code)
    if m:
        return f"plugin reaching outside: {m.group(1)}"
    for m in _EXTERNAL.finditer(code):
        if (m.group(1) or "").lower() != "set" or re.match(r"^\s*set\s+\w", code[code.rfind("\n", 0, m.start()) + 1:]):
            return f"reads outside the query: {m.group(1) or m.group(2)}"
    m = _NONDETERMINISTIC.search(code)
    if m:
        return f"nondeterministic: {m.group(1) or m.group(2)}"
    if not re.search(r"\b(print|datatable|range)\b", code):
        return "reads no inline data"
    refs = table_refs(code)
    if refs:
        return f"reads table {sorted(refs)[0]}"
    lets = _let_names(code) | _function_params(code)
    for word in set(re.findall(r"(?<![.\w$])[A-Za-z_]\w*", code)) & tables:
        if word not in lets:
            return f"reads table {word}"
    for fn in called(code):
        if fn not in builtins and fn not in lets and fn.lower() not in KEYWORDS and not fn[0].isupper() \
                and fn not in _LITERAL_TYPES and fn not in ("inner", "broadcast", "match", "paths"):
            return f"calls a function not in the reference: {fn}"
        if fn[0].isupper() and fn not in lets:
            return f"calls a stored function: {fn}"
    return None


# -- families: where the reference files a page -------------------------------------------------------------

def families(query_dir: str) -> dict[str, str]:
    """Page file name -> family, from the reference's table of contents and its scalar-function groups."""
    import yaml

    fam: dict[str, str] = {}
    with open(os.path.join(query_dir, "toc.yml"), encoding="utf-8") as f:
        toc = yaml.safe_load(f)

    def walk(items: list[dict], path: list[str]) -> None:
        for it in items:
            if "items" in it:
                walk(it["items"], [*path, it["name"]])
            href = it.get("href")
            if href and href.endswith(".md"):
                fam.setdefault(os.path.basename(href), _family_of(path or [it.get("name", "other")]))
    walk(toc["items"], [])
    groups = os.path.join(query_dir, "scalar-functions.md")
    if os.path.exists(groups):
        group = None
        with open(groups, encoding="utf-8") as f:
            for line in f:
                if line.startswith("## "):
                    group = line[3:].strip()
                for href in re.findall(r"\]\(([\w\-]+\.md)\)", line):
                    if group and fam.get(href, "Scalar functions").startswith("Scalar functions"):
                        fam[href] = f"Scalar: {group}"
    return fam


def _family_of(path: list[str]) -> str:
    top = path[0]
    if top in ("Tabular operators",) and len(path) > 1 and path[1] not in ("Query operators",):
        return f"Tabular operators: {path[1]}"
    return top


def load_examples(docs: str) -> list[Example]:
    query_dir = os.path.join(docs, QUERY_DIR)
    if not os.path.isdir(query_dir):
        raise SystemExit(f"{docs}: not a checkout of MicrosoftDocs/dataexplorer-docs (no {QUERY_DIR})")
    fam = families(query_dir)
    examples: list[Example] = []
    for root, _, files in os.walk(query_dir):
        for fname in sorted(files):
            if fname.endswith(".md"):
                page = os.path.relpath(os.path.join(root, fname), query_dir)
                for ex in extract(os.path.join(root, fname), page):
                    ex.family = fam.get(fname, "other")
                    examples.append(ex)
    examples.sort(key=lambda e: (e.page, e.line))
    builtins = builtin_functions(query_dir)
    tables = _sample_tables(examples)
    seen: set[str] = set()
    for ex in examples:
        key = " ".join(ex.query.split())
        if key in seen and ex.dropped is None:
            ex.dropped = "duplicate of an earlier example"
        seen.add(key)
        if ex.dropped is None:
            ex.dropped = self_contained(ex, builtins, tables)
    return examples


def _sample_tables(examples: list[Example]) -> set[str]:
    """The names the reference's examples read as tables (StormEvents...): a pipeline's first word that the
    example itself does not define."""
    names: set[str] = set()
    for ex in examples:
        names |= table_refs(strip_strings(ex.query))
    return {n for n in names if n[0].isupper()}
