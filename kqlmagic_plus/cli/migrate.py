"""``kqlmagic-plus migrate NOTEBOOK.ipynb [--in-place]``: a Kqlmagic notebook made to load this instead.

Rewrites, in code cells only (outputs, metadata and markdown are left as they are):

=====================================================  =============================================
``%reload_ext Kqlmagic`` / ``%load_ext Kqlmagic``      ``%reload_ext kqlmagic_plus``
``import Kqlmagic``                                    ``import kqlmagic_plus``
msticpy's ``<anything>.load_kql_magic()``              ``get_ipython().run_line_magic("reload_ext",
                                                       "kqlmagic_plus")``
``!pip install Kqlmagic ...`` / ``%pip install ...``   the same line installing ``kqlmagic-plus``
=====================================================  =============================================

Every ``%kql`` / ``%%kql`` line is also read by the magic's own parser: a line that would not keep its
meaning (an option whose meaning is not reproduced, a retired service) is listed with what to write
instead, and left for the author to change - a rewrite that guesses could change what a hunt returns.
Running it again changes nothing (the rewritten lines match no rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from kqlmagic_plus.errors import KqlMagicPlusError, OptionError

#: (pattern, replacement, what the summary says). Applied to each line of a code cell, in order.
RULES: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"^(\s*)%(?:re)?load_ext\s+Kqlmagic\s*$"), r"\1%reload_ext kqlmagic_plus",
     "loads kqlmagic_plus instead of Kqlmagic"),
    (re.compile(r"^(\s*)import\s+Kqlmagic\s*$"), r"\1import kqlmagic_plus",
     "imports kqlmagic_plus instead of Kqlmagic"),
    (re.compile(r"^(\s*)(?:[A-Za-z_][\w.]*\.)?load_kql_magic\(\s*\)\s*$"),
     r'\1get_ipython().run_line_magic("reload_ext", "kqlmagic_plus")',
     "msticpy's load_kql_magic() loads kqlmagic_plus instead"),
    (re.compile(r"^(\s*[!%]\s*(?:\{[^}]*\}\s*-m\s+)?pip\s+install\b.*?)(?<![\w-])Kqlmagic(?:\[[^\]]*\])?(?![\w-])"),
     r"\1kqlmagic-plus", "installs kqlmagic-plus instead of Kqlmagic"),
)

_MAGIC = re.compile(r"^\s*(?:[A-Za-z_]\w*\s*=\s*)?(%%?kql)\b(.*)$")


@dataclass(frozen=True)
class Change:
    cell: int  # 1-based index among all cells
    line: int  # 1-based line within the cell
    before: str
    after: str | None  # None: left as it is, needs the author (see why)
    why: str

    def __str__(self) -> str:
        where = f"cell {self.cell}, line {self.line}"
        if self.after is None:
            return f"{where}: needs a hand edit: {self.why}\n    {self.before.strip()}"
        return f"{where}: {self.why}\n  - {self.before.strip()}\n  + {self.after.strip()}"


def migrate_source(source: str, cell: int = 1) -> tuple[str, list[Change]]:
    """One code cell's text, rewritten, and the changes (and the lines left for a hand edit)."""
    lines = source.split("\n")
    changes: list[Change] = []
    for i, line in enumerate(lines):
        for pattern, replacement, why in RULES:
            new = pattern.sub(replacement, line)
            if new != line:
                changes.append(Change(cell, i + 1, line, new, why))
                lines[i] = line = new
                break
        problem = _magic_problem(line, is_cell_magic_line=(i == _first_code_line(lines)))
        if problem:
            changes.append(Change(cell, i + 1, line, None, problem))
    return "\n".join(lines), changes


def _first_code_line(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        if line.strip() and not line.lstrip().startswith("#"):
            return i
    return -1


def _magic_problem(line: str, *, is_cell_magic_line: bool) -> str | None:
    """Why a ``%kql`` line would not keep its meaning here, or None."""
    m = _MAGIC.match(line)
    if m is None or line.lstrip().startswith("#"):
        return None
    magic, rest = m.group(1), m.group(2)
    if magic == "%%kql" and not is_cell_magic_line:
        return None
    from kqlmagic_plus.options import parse_kql_line

    words = rest.split()
    if words and words[0] in ("--schema", "--help", "-help", "--version", "-version"):
        return None  # commands the magic answers itself
    try:
        parsed = parse_kql_line(rest, "" if magic == "%%kql" else None)
        if parsed.conn and "://" in parsed.conn:
            from kqlmagic_plus.connections.spec import parse

            parse(parsed.conn, env={})
    except KqlMagicPlusError as exc:
        text = exc.message if hasattr(exc, "message") else str(exc)
        if "environment variable" in text:
            return None  # depends on the machine it runs on, not on the notebook
        return text
    return None


def migrate_notebook(path: str | Path, *, in_place: bool = False, out: str | Path | None = None
                     ) -> tuple[Path | None, list[Change]]:
    """Rewrite the notebook at *path*; returns where it was written (None when nothing changed) and
    the changes. Writes *out*, or the notebook itself with *in_place*, or ``NAME.migrated.ipynb``."""
    import nbformat

    src = Path(path)
    try:
        nb = nbformat.read(str(src), as_version=nbformat.NO_CONVERT)
    except FileNotFoundError:
        raise OptionError(f"migrate: no such notebook: {src}") from None
    except Exception as exc:
        raise OptionError(f"migrate: {src} is not a notebook this can read ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if nb.get("nbformat", 4) < 4:
        raise OptionError(f"migrate: {src} is in notebook format {nb.get('nbformat')}; open and save it in "
                          "Jupyter first (format 4)")
    changes: list[Change] = []
    for n, cell in enumerate(nb.cells, start=1):
        if cell.get("cell_type") != "code":
            continue
        new, found = migrate_source(cell.source, n)
        changes += found
        if new != cell.source:
            cell.source = new
    rewritten = [c for c in changes if c.after is not None]
    if not rewritten:
        return None, changes
    target = src if in_place else Path(out) if out else src.with_name(src.stem + ".migrated.ipynb")
    nbformat.write(nb, str(target))
    return target, changes


def summary(path: str | Path, target: Path | None, changes: list[Change]) -> str:
    """What a terminal shows after a migration."""
    done = [c for c in changes if c.after is not None]
    todo = [c for c in changes if c.after is None]
    lines = [str(c) for c in changes]
    if target is None:
        lines.append(f"{path}: nothing to rewrite" + (f"; {len(todo)} line(s) need a hand edit" if todo else ""))
    else:
        lines.append(f"{path}: {len(done)} line(s) rewritten, written to {target}"
                     + (f"; {len(todo)} line(s) need a hand edit" if todo else ""))
    return "\n".join(lines)
