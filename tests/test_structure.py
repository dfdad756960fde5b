"""The package's shape: layers as folders, no import cycles, no upward import, no module over 1,000 lines.

`python -m tools.import_graph --layers` prints the same picture; CI runs it with --check.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools import import_graph as g

ROOT = Path(__file__).resolve().parent.parent


def test_no_import_cycles():
    edges, _ = g.graph()
    assert g.cycles(edges) == []


def test_nothing_imports_a_layer_above_it():
    edges, _ = g.graph()
    assert g.upward(edges) == []


def test_only_the_magics_import_ipython():
    _, files = g.graph()
    assert g.misplaced_imports(files) == []
    assert "IPython" in g.third_party(files["kqlmagic_plus.magics.kql"])


def test_no_module_over_1000_lines():
    _, files = g.graph()
    assert [(n, p) for n, p in g.line_counts(files) if n > 1000] == []


def test_every_module_is_in_a_layer():
    edges, _ = g.graph()
    for module in edges:
        g.layer_of(module)  # raises SystemExit naming the module otherwise


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_the_check_sees_a_cycle_through_a_lazy_import_but_not_a_type_checking_one(tmp_path):
    root = _package(tmp_path, {
        "__init__.py": "from pkg import a\n",
        "a.py": "from pkg.b import f\n",
        "b.py": "def f():\n    from pkg import a\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n",
        "d.py": "from pkg import c\n",
    })
    edges, _ = g.graph(root)
    assert g.cycles(edges) == [["pkg.a", "pkg.b"]]


def test_the_check_command_passes_on_the_package():
    ok = subprocess.run([sys.executable, "-m", "tools.import_graph", "--check"], cwd=ROOT, capture_output=True,
                        text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "cycles 0" in ok.stdout and "upward imports 0" in ok.stdout and "over 1000 lines 0" in ok.stdout
