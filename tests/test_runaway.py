"""Runaway queries stop: ``range`` streams, ``--timeout`` bounds the whole local query, the local engine has a
memory limit and a spill folder, and deeply nested expressions are answered or refused in one line.

Whatever could eat the machine's memory on a regression runs in a child process with an address-space cap
(RLIMIT_AS) and a wall-clock bound, so a regression fails here as a bounded failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import kqlmagic_plus as kp
from kqlmagic_plus import config
from kqlmagic_plus.errors import OptionError, QueryError, QueryTimeoutError

posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_AS is POSIX")

#: The child's address-space cap: room for Python, DuckDB and pyarrow, far below what the runaways asked for.
CAP_MB = 4096

_PRELUDE = """
import json, os, resource, sys, time
cap = int(os.environ["RUNAWAY_CAP_MB"]) * 2**20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import kqlmagic_plus as kp
from kqlmagic_plus import config
out = {}
def attempt(key, fn):
    started = time.perf_counter()
    try:
        value = fn()
        out[key] = {"value": value}
    except BaseException as exc:
        out[key] = {"error": type(exc).__name__, "message": str(exc)}
    out[key]["seconds"] = time.perf_counter() - started
"""


def _child(code: str, tmp_path, wall: float = 90, **env: str) -> dict:
    """Run *code* (after the prelude) in a capped child; return its ``out`` dict."""
    script = _PRELUDE + textwrap.dedent(code) + "\nprint('RESULT ' + json.dumps(out, default=str))\n"
    full_env = {**os.environ, "RUNAWAY_CAP_MB": str(CAP_MB), "XDG_CACHE_HOME": str(tmp_path / "xdg-cache"),
                "KQLMAGIC_PLUS_CACHE_DIR": str(tmp_path / "cache"), **env}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=wall,
                          env=full_env, cwd=str(tmp_path))
    lines = [ln for ln in proc.stdout.splitlines() if "RESULT " in ln]  # DuckDB's progress bar may share it
    assert lines, f"child failed (rc={proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1].split("RESULT ", 1)[1])


# -- range streams ---------------------------------------------------------------------------------------------


@posix_only
def test_range_streams_instead_of_materialising_an_array(tmp_path):
    got = _child("""
        q = "range x from 1 to 3000000000 step 1"
        attempt("take", lambda: kp.kql(q + " | take 3").df["x"].tolist())
        attempt("count", lambda: int(kp.kql(q + " | count").df.iloc[0, 0]))
        attempt("sql", lambda: kp.kql(q + " | take 3").executed)
        # our own compiler's DuckDB SQL (the local engine's fallback) streams too
        from kqlmagic_plus.language.compiler import compile
        from kqlmagic_plus.language.compiler.execute import run_duckdb
        import duckdb
        con = duckdb.connect()
        attempt("ours", lambda: con.sql(compile(q + " | count", {}, dialect="duckdb").sql).fetchall()[0][0])
    """, tmp_path)
    assert got["take"].get("value") == [1, 2, 3], got["take"]
    assert got["count"].get("value") == 3_000_000_000, got["count"]
    assert "UNNEST" not in got["sql"]["value"].upper()
    assert got["ours"].get("value") == 3_000_000_000, got["ours"]


def test_range_rewrite_keeps_every_shape_of_range():
    cases = {
        "range x from 1 to 10 step 3": [1, 4, 7, 10],
        "range x from 10 to 1 step -4": [10, 6, 2],
        "range x from 1 to 10 step -1": [],
        "range x from 5 to 1 step 1": [],
        "let n = 4; range x from 1 to n step 1": [1, 2, 3, 4],
    }
    for q, want in cases.items():
        assert kp.kql(q).df["x"].tolist() == want, q
    ts = kp.kql("range t from datetime(2024-01-01) to datetime(2024-01-02) step 6h | count").df.iloc[0, 0]
    assert ts == 5
    n = kp.kql("range x from 1 to n step 1 | count", params={"n": 7}).df.iloc[0, 0]
    assert n == 7
    ns = {"T": __import__("pandas").DataFrame({"a": [1, 2, 3]})}
    assert kp.kql("range x from 1 to toscalar(T | count) step 1 | count", namespace=ns).df.iloc[0, 0] == 3
    # what runs reads DuckDB's streaming table function, not an UNNEST of a list
    from kqlmagic_plus.engines.registry import connections

    r = kp.kql("range x from 1 to 3 step 1 | summarize dcount(x)")
    plan = connections().resolve(None)[1].con.sql("EXPLAIN " + r.executed).fetchall()[0][1]
    assert ("GENERATE_SERIES" in plan.upper() or "RANGE" in plan.upper()) and "UNNEST" not in plan.upper()


# -- --timeout bounds the whole query ---------------------------------------------------------------------------


@posix_only
def test_timeout_stops_the_runaway_range_dcount_in_time(tmp_path):
    got = _child("""
        from kqlmagic_plus import api
        from kqlmagic_plus.options import parse_kql_line
        line = parse_kql_line("--timeout 3 range x from 1 to 3000000000 step 1 | summarize dcount(x)")
        attempt("runaway", lambda: api.run_line(line))
        attempt("after", lambda: int(kp.kql("print ok = 1").df.iloc[0, 0]))
        import resource
        out["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    """, tmp_path)
    runaway = got["runaway"]
    assert runaway.get("error") == "QueryTimeoutError", runaway
    assert "3 s" in runaway["message"] and "--timeout" in runaway["message"]
    assert 2.9 < runaway["seconds"] < 4.0, runaway
    assert got["after"].get("value") == 1 and got["after"]["seconds"] < 2.5, got["after"]
    print(f"\n--timeout 3: ended after {runaway['seconds']:.3f} s; peak RSS {got['maxrss_mb']} MB")


def test_timeout_covers_translation():
    # The ANTLR parse of a 40,000-value `in` list takes ~5 s of pure Python (measured on a quiet 2-core
    # machine); a 1 s timeout must end it well before that, even on a loaded machine.
    q = "print x = 1 | where x in (" + ", ".join(str(i) for i in range(40000)) + ")"
    started = time.perf_counter()
    with pytest.raises(QueryTimeoutError) as e:
        kp.kql(q, timeout=1)
    took = time.perf_counter() - started
    assert took < 3.0, took
    assert "1 s" in str(e.value)
    started = time.perf_counter()
    assert kp.kql("print ok = 1").df.iloc[0, 0] == 1
    assert time.perf_counter() - started < 1.5


def test_timeout_covers_registration(monkeypatch):
    from kqlmagic_plus.engines.local import LocalEngine

    real = LocalEngine._register_namespace

    def slow_registration(self, query, namespace):  # Python work: e.g. many DataFrames, a large lake
        deadline = time.perf_counter() + 8
        while time.perf_counter() < deadline:
            sum(range(1000))
        return real(self, query, namespace)

    monkeypatch.setattr(LocalEngine, "_register_namespace", slow_registration)
    started = time.perf_counter()
    with pytest.raises(QueryTimeoutError):
        kp.kql("print x = 1", timeout=0.5)
    assert time.perf_counter() - started < 1.5
    monkeypatch.setattr(LocalEngine, "_register_namespace", real)
    started = time.perf_counter()
    assert kp.kql("print ok = 1").df.iloc[0, 0] == 1
    assert time.perf_counter() - started < 1.5


def test_cancel_during_translation_keeps_the_engine_usable():
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.errors import QueryCancelledError

    _, engine = connections().resolve("local://")
    q = "print x = 1 | where x in (" + ", ".join(str(i) for i in range(20000)) + ")"
    threading.Timer(0.5, engine.cancel).start()
    started = time.perf_counter()
    with pytest.raises(QueryCancelledError):
        kp.kql(q)
    assert time.perf_counter() - started < 2.0
    assert kp.kql("print ok = 1").df.iloc[0, 0] == 1


def test_timeout_values_are_checked():
    from kqlmagic_plus.options import parse_kql_line

    for bad in ("-1", "nan", "NaN", "inf", "-inf"):
        with pytest.raises(OptionError, match="--timeout"):
            parse_kql_line(f"--timeout {bad} print 1")
        with pytest.raises(OptionError, match="timeout"):
            kp.kql("print x = 1", timeout=float(bad))
    with pytest.raises(OptionError, match="timeout"):
        config.KqlMagicPlus(timeout=float("nan"))
    assert parse_kql_line("--timeout 0 print 1").timeout == 0  # 0 still means no limit
    assert kp.kql("print x = 1", timeout=0).df.iloc[0, 0] == 1
    assert parse_kql_line("--timeout 2.5 print 1").timeout == 2.5


# -- the memory limit and the spill folder ----------------------------------------------------------------------


def test_memory_limit_setting_values():
    assert config.KqlMagicPlus().memory_limit == "50%"
    for good, want in (("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1.5 GB", 15 * 10**8), ("75%", 0.75)):
        assert config.KqlMagicPlus(memory_limit=good).memory_limit == good
        assert config.parse_memory_limit(good) == want
    for bad in ("lots", "0%", "150%", "10KB", "-4GB", "", "4", "GB"):
        with pytest.raises(OptionError, match="memory_limit"):
            config.KqlMagicPlus(memory_limit=bad)


def test_config_refuses_a_bad_memory_limit_and_keeps_the_old_one(ip):
    ip.run_line_magic("config", "KqlMagicPlus.memory_limit = '6GB'")
    assert config.settings().memory_limit == "6GB"
    ip.run_line_magic("config", "KqlMagicPlus.memory_limit = 'lots'")  # IPython logs the one-line error
    assert config.settings().memory_limit == "6GB"
    ip.run_line_magic("config", "KqlMagicPlus.timeout = -1")
    assert config.settings().timeout == 0


def test_memory_limit_from_the_environment(monkeypatch):
    monkeypatch.setenv("KQLMAGIC_PLUS_MEMORY_LIMIT", "3GB")
    assert config.KqlMagicPlus().memory_limit == "3GB"
    monkeypatch.setenv("KQLMAGIC_PLUS_MEMORY_LIMIT", "plenty")
    with pytest.raises(OptionError, match="KQLMAGIC_PLUS_MEMORY_LIMIT"):
        config.KqlMagicPlus()


def test_local_engine_runs_with_the_memory_limit_and_a_private_spill_folder(tmp_path, monkeypatch):
    import platformdirs

    from kqlmagic_plus.engines import limits
    from kqlmagic_plus.engines.registry import connections

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cfg = config.settings()
    _, engine = connections().resolve("local://")
    kp.kql("print x = 1")

    def setting(name):
        return engine.con.execute(f"SELECT value FROM duckdb_settings() WHERE name = '{name}'").fetchone()[0]

    def as_bytes(text):  # DuckDB shows sizes as '11.7 GiB'
        num, unit = text.split()
        return float(num) * {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]

    total = limits.total_memory()
    assert abs(as_bytes(setting("memory_limit")) - total / 2) < total * 0.01
    spill = setting("temp_directory")
    root = os.path.join(platformdirs.user_cache_dir("kqlmagic_plus", appauthor=False), "spill")
    assert os.path.commonpath([spill, root]) == root
    assert os.stat(spill).st_mode & 0o777 == 0o700
    cfg.memory_limit = "1GB"  # %config KqlMagicPlus.memory_limit = "1GB" applies to the next query
    kp.kql("print x = 1")
    assert abs(as_bytes(setting("memory_limit")) - 10**9) < 10**7
    engine.close()
    assert not os.path.exists(spill)


@posix_only
def test_a_query_over_the_memory_limit_is_a_one_line_error(tmp_path):
    got = _child("""
        config.settings().memory_limit = "256MB"
        attempt("spills", lambda: int(kp.kql("range x from 1 to 20000000 step 1 | summarize dcount(x)").df.iloc[0, 0]))
        attempt("list", lambda: kp.kql("range x from 1 to 60000000 step 1 | summarize make_list(x)").row_count)
        attempt("after", lambda: int(kp.kql("print ok = 1").df.iloc[0, 0]))
        attempt("result", lambda: kp.kql("range x from 1 to 100000000 step 1").row_count)
        attempt("after2", lambda: int(kp.kql("range x from 1 to 10 step 1 | count").df.iloc[0, 0]))
    """, tmp_path)
    assert got["spills"].get("value") == 20_000_000, got["spills"]  # larger than the limit, spilled
    for key in ("list", "result"):
        err = got[key]
        assert err.get("error") == "MemoryLimitError", err
        assert "\n" not in err["message"], err["message"]
        assert "memory_limit" in err["message"] and "256" in err["message"], err["message"]
    assert "result" in got["result"]["message"]
    assert got["after"].get("value") == 1 and got["after2"].get("value") == 10


# -- deep nesting ------------------------------------------------------------------------------------------------

PARENS_80 = "print x = " + "(" * 80 + "1" + ")" * 80
OR_1500 = "range x from 1 to 10 step 1 | where " + " or ".join(f"x == {i}" for i in range(1500)) + " | count"


def test_eighty_nested_parentheses_answer():
    from kqlmagic_plus.language.compiler import compile

    assert kp.kql(PARENS_80).df.iloc[0, 0] == 1
    for dialect in ("spark", "duckdb"):
        assert compile(PARENS_80, {}, dialect=dialect).columns == [("x", "long")]


def test_a_fifteen_hundred_term_or_answers():
    from kqlmagic_plus.language.compiler import compile

    assert kp.kql(OR_1500).df.iloc[0, 0] == 10
    assert compile(OR_1500, {}, dialect="spark").columns == [("Count", "long")]


def test_nesting_past_what_the_parser_follows_is_a_one_line_error():
    from kqlmagic_plus.language.compiler import compile

    deep = "print x = " + "(" * 3000 + "1" + ")" * 3000
    for run in (lambda: kp.kql(deep), lambda: compile(deep, {}, dialect="spark"),
                lambda: compile(deep, {}, dialect="duckdb")):
        started = time.perf_counter()
        with pytest.raises(QueryError) as e:
            run()
        assert time.perf_counter() - started < 5
        first = str(e.value).splitlines()[0]
        assert "nest" in first and "line 1, column" in first, first
    chain = "range x from 1 to 10 step 1 | where " + " or ".join(f"x == {i}" for i in range(6000)) + " | count"
    try:
        assert kp.kql(chain).df.iloc[0, 0] == 10
    except QueryError as exc:
        first = str(exc).splitlines()[0]
        assert "'or'" in first and "line 1, column" in first, first
