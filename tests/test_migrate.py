"""``kqlmagic-plus migrate``: a Kqlmagic notebook's loader lines rewritten, outputs untouched, idempotent."""

from __future__ import annotations

import json

import nbformat
import pytest

from kqlmagic_plus.cli import main

CELLS = [
    "!{sys.executable} -m pip install Kqlmagic --no-cache-dir --upgrade",
    "try:\n    import Kqlmagic\nexcept ImportError:\n    pass",
    "# Make sure you have 0.1.90 or above\n%reload_ext Kqlmagic\n"
    "%kql loganalytics://code;workspace=ws_id;tenant=ten_id;alias=\"Sentinel\"",
    "from msticpy.nbtools import nbinit\nnbtools.kql.load_kql_magic()",
    "%kql -query ti_query\ndf = _kql_raw_result_.to_dataframe()",
    "%kql -ad SecurityEvent | take 5",
    "%%kql\nSecurityEvent | take 1",
]


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_markdown_cell("Uses %reload_ext Kqlmagic (markdown is left alone)"))
    for src in CELLS:
        cell = nbformat.v4.new_code_cell(src)
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="kept output\n")]
        cell.execution_count = 3
        nb.cells.append(cell)
    path = tmp_path / "hunt.ipynb"
    nbformat.write(nb, str(path))
    return path


def _sources(path):
    cells = json.loads(path.read_text())["cells"]
    return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]


def test_migrate_rewrites_loader_lines_and_keeps_outputs(notebook, capsys):
    assert main(["migrate", str(notebook)]) == 0
    out = capsys.readouterr().out
    migrated = notebook.with_name("hunt.migrated.ipynb")
    src = _sources(migrated)
    assert src[0] == "Uses %reload_ext Kqlmagic (markdown is left alone)"
    assert src[1] == "!{sys.executable} -m pip install kqlmagic-plus --no-cache-dir --upgrade"
    assert src[2] == "try:\n    import kqlmagic_plus\nexcept ImportError:\n    pass"
    assert src[3].splitlines()[1] == "%reload_ext kqlmagic_plus"
    assert src[4].splitlines()[1] == 'get_ipython().run_line_magic("reload_ext", "kqlmagic_plus")'
    assert src[5:] == CELLS[4:]  # lines that keep their meaning are not touched
    before = json.loads(notebook.read_text())["cells"]
    after = json.loads(migrated.read_text())["cells"]
    assert [c.get("outputs") for c in before] == [c.get("outputs") for c in after]
    assert [c.get("execution_count") for c in before] == [c.get("execution_count") for c in after]
    assert "4 line(s) rewritten" in out and "1 line(s) need a hand edit" in out
    assert "cell 7, line 1: needs a hand edit: Kqlmagic's option -ad is not supported here" in out
    assert "- %reload_ext Kqlmagic\n  + %reload_ext kqlmagic_plus" in out
    assert _sources(notebook)[3].splitlines()[1] == "%reload_ext Kqlmagic"  # the original is left alone


def test_migrate_in_place_is_idempotent(notebook, capsys):
    assert main(["migrate", str(notebook), "--in-place"]) == 0
    first = notebook.read_bytes()
    capsys.readouterr()
    assert main(["migrate", str(notebook), "--in-place"]) == 0
    out = capsys.readouterr().out
    assert notebook.read_bytes() == first
    assert "nothing to rewrite" in out and not notebook.with_name("hunt.migrated.ipynb").exists()


def test_migrate_bad_input_is_one_line(tmp_path, capsys):
    assert main(["migrate", str(tmp_path / "missing.ipynb")]) != 0
    err = capsys.readouterr().err
    assert "no such notebook" in err and "Traceback" not in err
    bad = tmp_path / "bad.ipynb"
    bad.write_text("{not json")
    assert main(["migrate", str(bad)]) != 0
    err = capsys.readouterr().err
    assert "is not a notebook this can read" in err and len(err.strip().splitlines()) == 1
