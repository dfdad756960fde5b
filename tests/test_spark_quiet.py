"""Spark's own output stays out of the terminal and the notebook; ``--debug`` shows it (issue #20 item 4).

Every test here starts a fresh process (a CLI run, a Jupyter kernel): a JVM's start-up output is printed
once, when it starts, so the test process's own Spark (tests/spark_fixtures.py) cannot show it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: What Spark, the JVM and PySpark print by themselves; none of it may reach the user by default.
NOISE = re.compile(
    r"log4j|Setting default log level|To adjust logging level|NativeCodeLoader|native-hadoop|"
    r"resolves to a loopback address|SPARK_LOCAL_IP|incubator modules|\[Stage \d+:|FutureWarning|"
    r"PySpark does not yet fully support pandas|\b(WARN|INFO|ERROR)\b [A-Za-z.$]+: ", re.IGNORECASE)


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KQLMAGIC_PLUS_DEBUG", "PYSPARK_GATEWAY_PORT",
                                                             "SPARK_REMOTE", "PYSPARK_SUBMIT_ARGS")}
    env.pop("PYTHONWARNINGS", None)  # warnings as a user's interpreter shows them
    env.update({"PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "HOME": home})
    return env


@pytest.fixture(scope="module")
def small_input(tmp_path_factory):
    """CommonSecurityLog of a small synthetic day (with planted beacons) as one Parquet file."""
    import glob

    import pyarrow as pa
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    from kqlmagic_plus.demo.datagen import generate

    root = tmp_path_factory.mktemp("quiet-lake")
    generate(root, days=1, end_date="2024-05-02", events_per_day=4_000, seed=5, tables="CommonSecurityLog",
             layout="1h")
    files = sorted(glob.glob(str(root / "am-commonsecuritylog" / "**" / "*.json"), recursive=True))
    table = pa.concat_tables([pj.read_json(f) for f in files], promote_options="permissive")
    path = root / "csl.parquet"
    pq.write_table(table, path)
    return path


def _cli(args: list[str], tmp_path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kqlmagic_plus.cli", *args], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path, env=env or _env(str(tmp_path)))


def test_cli_hunt_on_spark_prints_only_our_progress_and_the_rows(small_input, tmp_path):
    run = _cli(["hunt", "beacon", "--input", str(small_input), "--end-date", "2024-05-02", "--engine", "spark",
                "--format", "json"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    rows = json.loads(run.stdout)  # stdout is the rows alone
    assert rows and {"SourceIP", "DestinationIP", "PercentBeacon"} <= set(rows[0])
    both = run.stdout + run.stderr
    assert not NOISE.search(both), NOISE.search(both).group(0) + "\n" + run.stderr[-3000:]
    err = run.stderr.splitlines()
    assert err[0].startswith("Spark: starting a local session")
    assert any(re.match(r"Spark beacon: (finished|stage|\d+ stages)", ln) for ln in err), run.stderr
    assert any(ln.startswith("beacon: ") and "rows" in ln for ln in err), run.stderr
    assert "Traceback" not in both


def test_cli_debug_shows_the_jvm_output(small_input, tmp_path):
    run = _cli(["--debug", "hunt", "beacon", "--input", str(small_input), "--end-date", "2024-05-02",
                "--engine", "spark", "--format", "json"], tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)
    # Spark's own log4j banner and log lines, as Spark prints them without us.
    assert "Using Spark's default log4j profile" in run.stderr, run.stderr[-3000:]
    assert re.search(r"\bWARN [A-Za-z]+: ", run.stderr), run.stderr[-3000:]
    assert "[Stage " not in run.stderr  # still our progress, not Spark's console bar on top of it


def test_a_jvm_that_cannot_start_is_one_line_with_the_cause(tmp_path):
    code = ("from kqlmagic_plus.sparkhunt import sparkhunt\n"
            "sparkhunt('SELECT 1 AS one', mode='sql', connect='local[1]', progress='none',\n"
            "          conf={'spark.driver.extraJavaOptions': '-Xss1'})\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env=_env(str(tmp_path)))
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "EngineUnavailableError: local Spark did not start" in last, run.stderr[-2000:]
    # The JVM's own reason, not PySpark's "Java gateway process exited before sending its port number".
    assert "stack size specified is too small" in last and "port number" not in last
    assert not NOISE.search(run.stderr), run.stderr[-2000:]


def test_notebook_sparkhunt_cell_shows_no_spark_output(small_input, tmp_path, spark_connect_url):
    from test_completion_kernel import Kernel

    out: list[dict] = []
    k = Kernel(_env(str(tmp_path)), cwd=str(tmp_path))
    try:
        k.run("%load_ext kqlmagic_plus")

        def cell(code: str) -> str:
            texts: list[str] = []

            def hook(msg: dict) -> None:
                c = msg["content"]
                out.append(msg)
                if msg["msg_type"] == "stream":
                    texts.append(c["text"])
                elif msg["msg_type"] == "error":
                    texts.append("\n".join(c["traceback"]))

            reply = k.kc.execute_interactive(code, timeout=600, output_hook=hook)
            assert reply["content"]["status"] == "ok", "".join(texts)
            return "".join(texts)

        # A JVM that cannot start: the cell's error is one line with the JVM's reason, and the next cell starts one.
        failed = []
        k.kc.execute_interactive("%sparkhunt --connect local[1] --conf spark.driver.extraJavaOptions=-Xss1",
                                 timeout=300, output_hook=lambda m: failed.append(m))
        errors = [m["content"]["traceback"] for m in failed if m["msg_type"] == "error"]
        assert len(errors) == 1 and len(errors[0]) == 1, failed
        assert "local Spark did not start" in errors[0][0] and "stack size" in errors[0][0], errors
        assert not any(m["msg_type"] == "stream" and NOISE.search(m["content"]["text"]) for m in failed), failed
        started = cell("%sparkhunt --connect local[2]")
        assert "ready" in started
        lake = small_input.parent
        text = cell(f"%%sparkhunt --lake {lake} --start 2024-05-02 --end 2024-05-03 -o r\n"
                    "CommonSecurityLog | summarize n = count() by SourceIP | top 5 by n")
        text += cell("%sparkhunt beacon --end-date 2024-05-02 --engine spark -o h")
        # The user's own warnings still show, inside a Spark cell too: only PySpark's are filtered.
        mine = cell("%%sparkhunt --pyspark\nimport warnings\nwarnings.warn('kqlmp-users-own', FutureWarning)")
        assert "FutureWarning: kqlmp-users-own" in mine, mine
        out[:] = [m for m in out if "kqlmp-users-own" not in m["content"].get("text", "")]
        # A Spark Connect session (the test process's server): the client's import and cells are quiet too.
        text += cell(f"%sparkhunt --connect {spark_connect_url}")
        text += cell("%%sparkhunt --sql -o c\nSELECT id, id * 2 AS twice FROM range(1000)")
        text += cell("print(r.row_count > 0, h.row_count > 0, c.row_count == 1000)")
        assert "True True True" in text
        streams = "".join(m["content"]["text"] for m in out if m["msg_type"] == "stream")
        assert not NOISE.search(streams), NOISE.search(streams).group(0) + "\n" + streams[-3000:]
        assert "Spark beacon" in streams  # the hunt's Spark progress, as our bar
    finally:
        k.stop()
