"""Every Kqlmagic line of real notebooks, run through %kql: accepted, and the same meaning as Kqlmagic.

    python benchmarks/kqlmagic_notebooks.py NOTEBOOK_DIR... [--baseline-src DIR] [--details]

NOTEBOOK_DIR: fetched checkouts (e.g. Azure/Azure-Sentinel-Notebooks, Azure/Azure-Sentinel's Notebooks/);
nothing of them is kept. Each notebook's magic lines run, in order, in an in-process IPython shell with
``%load_ext kqlmagic_plus``, each with ``--dry-run`` added (nothing is sent; the text that would be sent
is what a dry run returns), on a Log Analytics connection (the notebooks connect before they query; a
first connection to a stand-in workspace is made for those that connect through msticpy).

The notebook's own variables do not exist here, so each name a line refers to gets a stand-in: a GUID for
connection values, the notebook's own string when it assigns one to a ``-query`` variable (a stand-in
query otherwise), an identifier-like string for ``{ref}`` (lists and dicts as the reference's shape needs).

"Same meaning as Kqlmagic": what Kqlmagic would send is IPython's text expansion of the line (Kqlmagic
lets IPython splice ``{expr}`` and ``$name``), or the variable's text for ``-query VAR``; ours is the dry
run's text with its parameters put back in (each ``let p = <literal>;`` the binding adds, inlined), compared
token by token (string literals by their decoded value, so ``'a'`` equals ``"a"``). A connection line
means the same when the connection has the workspace / tenant values Kqlmagic would have read.

``--baseline-src DIR``: a source tree of another version of kqlmagic_plus (e.g. ``git archive`` of the
commit before #18) run on the same lines in a child process: its column is printed beside ours.
``--schema`` lines are not sent (they ask the service for its tables): they mean the same when they ask for the
schema of the connection the notebook opened under that name.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import types
import uuid
from collections import defaultdict
from pathlib import Path

LOADER = re.compile(r"^\s*(%(re)?load_ext\s+Kqlmagic\b|import\s+Kqlmagic\b|[\w.]*load_kql_magic\(\)|"
                    r"[!%].*pip\s+install\b.*\bKqlmagic\b)")
MAGIC = re.compile(r"^\s*(?:(?P<assign>[A-Za-z_][\w.]*)\s*=\s*)?(?P<magic>%%?kql)\b(?P<rest>.*)$")
CONN_NAMES = re.compile(r"(?P<key>[A-Za-z][\w-]*)\s*(?:=|\()\s*"
                        r"(?P<name>[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*)\s*(?=[;)]|$)")
STAND_IN_WORKSPACE = "00000000-0000-4000-8000-00000000abcd"
#: Kqlmagic's --commands (its commands table's names, normalized).
COMMANDS = {"version", "banner", "usage", "submit", "help", "faq", "palette", "palettes", "config", "bugreport",
            "cache", "cachecreate", "cacheappend", "cachecreateorappend", "cacheremove", "cachelist", "cachestop",
            "usecache", "usecachestop", "clearssodb", "py", "pyro", "pyrw", "activatekernel", "deactivatekernel",
            "linemagic", "cellmagic"}
STAND_IN_QUERY = "SecurityEvent | where TimeGenerated > ago(1d) | take 10"


def kqlmagic_lines(path: Path) -> tuple[list[dict], dict[str, str]]:
    """The notebook's Kqlmagic lines (in order) and its string assignments (name -> text)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    lines: list[dict] = []
    strings: dict[str, str] = {}
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        src = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        _collect_strings(src, strings)
        rows = src.split("\n")
        first = next((i for i, r in enumerate(rows) if r.strip() and not r.lstrip().startswith("#")), None)
        for i, row in enumerate(rows):
            if row.lstrip().startswith("#"):
                continue
            if LOADER.match(row):
                lines.append({"form": "loader line (migrate)", "text": row.strip()})
                continue
            m = MAGIC.match(row)
            if m is None:
                continue
            if m.group("magic") == "%%kql":
                if i != first:
                    continue
                lines.append({"magic": "%%kql", "rest": m.group("rest"), "body": "\n".join(rows[i + 1:]),
                              "text": row.strip()})
            else:
                lines.append({"magic": "%kql", "rest": m.group("rest"), "text": row.strip()})
    return lines, strings


def _collect_strings(src: str, out: dict[str, str]) -> None:
    # Cells hold magics, which are not Python: blank them before parsing.
    code = "\n".join("" if re.match(r"^\s*[%!]|.*=\s*%", r) else r for r in src.split("\n"))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.value


def classify(line: dict) -> str:
    if "form" in line:
        return line["form"]
    rest = line["rest"]
    words = rest.split()
    if words[:1] == ["--schema"]:
        return "--schema"
    if words and words[0].startswith("--") and words[0].lstrip("-").split("=")[0].lower().replace("_", "") in COMMANDS:
        return "--command (help, version, palette...)"
    if re.search(r"(^|\s)-query\s", rest + " "):
        return "-query VAR"
    if "://" in (words[0] if words else ""):
        return "connection, values from variables" if CONN_NAMES.search(rest.split("://", 1)[1]) else \
            "connection, literal values"
    if "{" in rest and line["magic"] == "%kql":
        return "{expr} in the line"
    return "%%kql cell" if line["magic"] == "%%kql" else "line query"


# -- stand-in values ------------------------------------------------------------------------------------

def _stub(ns: dict, ref: str, leaf: str) -> None:
    """Give *ns* a value at *ref* (``a.b[0]`` ...) so a lookup finds *leaf* there."""
    try:
        node = ast.parse(ref, mode="eval").body
    except SyntaxError:
        return
    chain = []
    while not isinstance(node, ast.Name):
        if isinstance(node, ast.Attribute):
            chain.append(("attr", node.attr))
            node = node.value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            chain.append(("item", node.slice.value))
            node = node.value
        else:
            return
    chain.reverse()

    def make(kind_key):
        kind, key = kind_key
        if kind == "attr":
            return types.SimpleNamespace()
        return [None] * (key + 1) if isinstance(key, int) else {}

    if not chain:
        ns.setdefault(node.id, leaf)
        return
    obj = ns.setdefault(node.id, make(chain[0]))
    for step, nxt in zip(chain, [*chain[1:], None], strict=True):
        kind, key = step
        value = leaf if nxt is None else make(nxt)
        if kind == "attr":
            if not hasattr(obj, key):
                setattr(obj, key, value)
            obj = getattr(obj, key)
        elif isinstance(obj, list) and isinstance(key, int):
            if obj[key] is None:
                obj[key] = value
            obj = obj[key]
        elif isinstance(obj, dict):
            obj = obj.setdefault(key, value)


def stand_ins(lines: list[dict], strings: dict[str, str]) -> dict:
    ns: dict = {}
    n = 0
    for line in lines:
        rest = line.get("rest", "")
        if "://" in rest:
            for m in CONN_NAMES.finditer(rest.split("://", 1)[1]):
                if m.group("key").lower() != "alias":
                    _stub(ns, m.group("name"), str(uuid.uuid5(uuid.NAMESPACE_URL, m.group("name"))))
        for m in re.finditer(r"-query[\s=]+([A-Za-z_][\w.]*)", rest):
            ns.setdefault(m.group(1), strings.get(m.group(1), STAND_IN_QUERY))
        for m in re.finditer(r"-conn[\s=]+([A-Za-z_][\w.]*)", rest):
            ns.setdefault(m.group(1), strings.get(m.group(1), f"loganalytics://code;workspace='{STAND_IN_WORKSPACE}'"))
        for m in re.finditer(r"\{([^{}]+)\}", rest if line.get("magic") == "%kql" else ""):
            n += 1
            _stub(ns, m.group(1).strip(), f"Value{n}")
    return ns


# -- meaning ----------------------------------------------------------------------------------------------

def _tokens(text: str) -> list[tuple[str, str]]:
    from kqlmagic_plus.language.lexer import tokenize
    from kqlmagic_plus.language.literals import decode_string

    out = []
    for t in tokenize(text):
        if t.kind in ("ws", "comment"):
            continue
        if t.kind == "string":
            try:
                out.append(("string", decode_string(t.text)))
            except Exception:
                out.append(("string", t.text))
        else:
            out.append((t.kind, t.text))
    return _fold_strcat(out)


def _fold_strcat(toks: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``strcat("a", "b")`` of string constants only is the string ``"ab"``."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(toks):
        if toks[i] == ("ident", "strcat") and toks[i + 1:i + 2] == [("punct", "(")]:
            j, parts = i + 2, []
            while j < len(toks) and toks[j][0] == "string":
                parts.append(toks[j][1])
                j += 1
                if toks[j:j + 1] != [("punct", ",")]:
                    break
                j += 1
            if parts and toks[j:j + 1] == [("punct", ")")]:
                out.append(("string", "".join(parts)))
                i = j + 1
                continue
        out.append(toks[i])
        i += 1
    return out


def _inline_lets(sent: str, query: str) -> str:
    """The bound text with the ``let name = <literal>;`` statements the binding put in front inlined (the
    binding adds exactly one line in front of *query*, the text it was given)."""
    head, sep, body = sent.partition("\n")
    if not sep or body != query or not head.lstrip().startswith("let "):
        return sent
    lets = dict(re.findall(r"let\s+([A-Za-z_]\w*)\s*=\s*((?:\"(?:[^\"\\]|\\.)*\"|[^;])*);", head))
    from kqlmagic_plus.language.lexer import tokenize

    return "".join(lets.get(t.text, t.text) if t.kind == "ident" else t.text for t in tokenize(body))


def same_query(ours: str, query: str, kqlmagic: str) -> bool:
    return _tokens(_inline_lets(ours, query)) == _tokens(kqlmagic)


def kqlmagic_query(ip, line: dict) -> str | None:
    """The query text Kqlmagic would send for *line* (None: not a query line)."""
    rest = line["rest"]
    m = re.search(r"(?:^|\s)-query\s+([A-Za-z_][\w.]*)", rest)
    if m:
        return ip.user_ns.get(m.group(1))
    if line["magic"] == "%%kql":
        return line["body"]
    expanded = ip.var_expand(rest, 0)
    words = expanded.split()
    if words and "://" in words[0]:
        return None
    return _without_options(expanded).strip()


def _without_options(text: str) -> str:
    """The line after Kqlmagic's leading options (``-sql -qld='X' T | ...`` -> ``T | ...``), as its parser
    reads them: ``-name=value`` or ``-name value`` for an option that takes a value, ``-name`` for a flag."""
    try:
        from kqlmagic_plus import kqlmagic_names
        from kqlmagic_plus.options import KQL_OPTIONS
    except ImportError:  # a baseline without the table: every option word is a flag
        kqlmagic_names, KQL_OPTIONS = None, ()
    ours = {a.lstrip("-").lower().replace("_", ""): o for o in KQL_OPTIONS for a in (o.long, *o.aliases)}
    words = text.split(" ")
    while words and (not words[0] or words[0].startswith("-")):
        word = words.pop(0)
        if not word or "=" in word:
            continue
        key = word.lstrip("-!").lower().replace("_", "").replace("-", "")
        found = kqlmagic_names.lookup(key) if kqlmagic_names else None
        takes = (found[0] == "ignored" and found[1]) if found else False
        if found and found[0] == "mapped":
            key = str(found[1]).replace("_", "")
        if key in ours:
            takes = ours[key].kind != "flag"
        if takes:
            while words and not words[0]:
                words.pop(0)
            if words:
                words.pop(0)
    return " ".join(words)


# -- running ---------------------------------------------------------------------------------------------

def run_notebooks(dirs: list[str]) -> list[dict]:
    from IPython.core.interactiveshell import InteractiveShell

    from kqlmagic_plus.engines.registry import connections

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "kqlmagic_plus")
    rows: list[dict] = []
    for d in dirs:
        for path in sorted(Path(d).rglob("*.ipynb")):
            try:
                lines, strings = kqlmagic_lines(path)
            except (OSError, ValueError):
                continue
            if not lines:
                continue
            ip.user_ns.update(stand_ins(lines, strings))
            _quiet(ip, f"%kql loganalytics://code;workspace='{STAND_IN_WORKSPACE}'")
            for line in lines:
                rows.append(run_line(ip, connections, line, str(path)))
    return rows


def _quiet(ip, code: str):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        res = ip.run_cell(code, store_history=False)
    return res, buf.getvalue()


def run_line(ip, connections, line: dict, path: str) -> dict:
    form = classify(line)
    row = {"form": form, "path": path, "text": line["text"], "accepted": False, "same": False, "why": ""}
    if form == "loader line (migrate)":
        try:
            from kqlmagic_plus.cli.migrate import migrate_source
        except ImportError:
            return row
        _, changes = migrate_source(line["text"])
        row["accepted"] = row["same"] = any(c.after is not None for c in changes)
        return row
    if form.startswith("--schema"):
        # Not sent here (it asks the service for its tables): same meaning when the line asks for the schema of
        # the connection the notebook opened under that name, as Kqlmagic's `--schema "alias@loganalytics"` does.
        from kqlmagic_plus.errors import KqlMagicPlusError
        from kqlmagic_plus.options import parse_kql_line

        try:
            parsed = parse_kql_line(line["rest"])
            name = (parsed.conn or "").strip().strip("'\"")
            reg = connections()
            key = reg._kqlmagic_workspace(name) if name.lower().endswith("@loganalytics") else name
        except KqlMagicPlusError as exc:
            row["why"] = str(exc).splitlines()[0][:160]
            return row
        row["accepted"] = bool(parsed.schema)
        row["same"] = row["accepted"] and key in getattr(reg, "_specs", {})
        return row
    if form.startswith("--command"):  # answered, not sent: same meaning when it answers
        res, out = _quiet(ip, f"%kql {line['rest'].strip()}")
        err = res.error_in_exec or res.error_before_exec
        row["accepted"] = row["same"] = err is None
        row["why"] = "" if err is None else (out.strip().splitlines() or [repr(err)])[-1][:160]
        return row
    ip.user_ns.pop("_kql_raw_result_", None)
    code = f"{line['magic']} --dry-run {line['rest'].strip()}"
    if line["magic"] == "%%kql":
        code += "\n" + line["body"]
    res, out = _quiet(ip, code)
    err = res.error_in_exec or res.error_before_exec
    if err is not None:
        row["why"] = (out.strip().splitlines() or [repr(err)])[-1][:160]
        return row
    row["accepted"] = True
    expected = kqlmagic_query(ip, line)
    if expected is None:  # a connection line: the values Kqlmagic would have read
        reg = connections()
        spec = getattr(reg, "_specs", {}).get(reg.current)
        want = {}
        for m in CONN_NAMES.finditer(line["rest"].split("://", 1)[1]):
            key = m.group("key").lower().replace("_", "").replace("-", "")
            if key in ("workspace", "tenant", "workspaceid", "tenantid"):
                want[key.replace("id", "")] = ip.user_ns.get(m.group("name"), m.group("name"))
        row["same"] = spec is not None and all(spec.props.get(k) == v for k, v in want.items())
        if not row["same"]:
            row["why"] = f"connection props {dict(spec.props) if spec else None} != {want}"
        return row
    result = ip.user_ns.get("_kql_raw_result_")
    sent = (result.executed or result.query) if result is not None else ""
    row["same"] = same_query(sent, result.query if result is not None else "", expected)
    if not row["same"]:
        row["why"] = f"sent {sent[:80]!r} vs Kqlmagic {expected[:80]!r}"
    return row


def summarize(rows: list[dict]) -> dict[str, tuple[int, int, int]]:
    by: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in rows:
        c = by[r["form"]]
        c[0] += 1
        c[1] += r["accepted"]
        c[2] += r["same"]
    return {k: tuple(v) for k, v in by.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", help="folders of fetched notebooks")
    ap.add_argument("--baseline-src", help="source tree of the kqlmagic_plus version to compare with")
    ap.add_argument("--details", action="store_true", help="list every line that was refused or changed meaning")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the child's output
    args = ap.parse_args()
    rows = run_notebooks(args.dirs)
    if args.json:
        print(json.dumps(rows))
        return
    ours = summarize(rows)
    base = None
    if args.baseline_src:
        env = {**os.environ, "PYTHONPATH": os.path.abspath(args.baseline_src)}
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), *args.dirs, "--json"], env=env,
                              capture_output=True, text=True, cwd=args.baseline_src)
        if proc.returncode != 0:
            sys.exit("baseline run failed: " + proc.stderr.strip().splitlines()[-1])
        base = summarize(json.loads(proc.stdout.strip().splitlines()[-1]))
    notebooks = len({r["path"] for r in rows})
    print(f"Kqlmagic lines of {notebooks} notebooks in {', '.join(args.dirs)}")
    head = f"{'form':<38}{'lines':>6}{'accepted':>10}{'same meaning':>14}"
    if base is not None:
        head += f"{'baseline acc.':>15}{'baseline same':>15}"
    print(head)
    order = sorted(ours, key=lambda k: (-ours[k][0], k))
    for form in order:
        n, acc, same = ours[form]
        line = f"{form:<38}{n:>6}{acc:>10}{same:>14}"
        if base is not None:
            b = base.get(form, (n, 0, 0))
            line += f"{b[1]:>15}{b[2]:>15}"
        print(line)

    def total(s: dict) -> tuple[int, int, int]:
        # Magic lines only: the loader lines are Python, rewritten by `kqlmagic-plus migrate` (their own row).
        vals = [v for k, v in s.items() if not k.startswith("loader")]
        return tuple(sum(v[i] for v in vals) for i in range(3))  # type: ignore[return-value]

    for label in ("all magic lines",):
        n, acc, same = total(ours)
        line = f"{label:<38}{n:>6}{acc:>10}{same:>14}"
        if base is not None:
            b = total(base)
            line += f"{b[1]:>15}{b[2]:>15}"
        print(line)
        pct = f"  -> accepted {100 * acc / max(n, 1):.1f} %, same meaning {100 * same / max(n, 1):.1f} %"
        if base is not None:
            pct += f" (baseline {100 * b[1] / max(n, 1):.1f} % / {100 * b[2] / max(n, 1):.1f} %)"
        print(pct)
    print("target: same meaning >= 95 %")
    if args.details:
        for r in rows:
            if not r["same"]:
                print(f"- [{r['form']}] {Path(r['path']).name}: {r['text'][:100]}\n    {r['why']}")


if __name__ == "__main__":
    main()
