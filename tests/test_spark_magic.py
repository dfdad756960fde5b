"""``%sparkhunt`` on real Spark: the shared local[2] session and its Spark Connect server (tests/spark_fixtures.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from kqlmagic_plus.demo.datagen import generate

    root = tmp_path_factory.mktemp("sparklake")
    generate(root, days=2, end_date="2024-05-01", events_per_day=8_000, seed=5, layout="1h")
    return str(root)


@pytest.fixture
def sh(ip, spark_local, run_cell, lake):
    """The shell with the test run's local Spark as the current %sparkhunt session and the lake bound."""
    _, err, out = run_cell(f"%sparkhunt --connect local[2] --lake {lake}")
    assert err is None, out
    return ip


def _cell(run_cell, line: str, body: str):
    return run_cell(f"%%sparkhunt {line}\n{body}")


def test_connect_reuses_the_running_session_and_runs_sql(sh, run_cell, spark_local):
    _, err, out = run_cell("%sparkhunt --connect local[2]")
    assert err is None and "ready" in out
    from kqlmagic_plus.engines.spark.sessions import manager

    assert manager().current().spark is spark_local  # one JVM: the running session is reused
    _value, err, out = _cell(run_cell, "--sql -o r", "SELECT 7 AS n, 'x' AS s, TIMESTAMP'2024-05-01 10:00:00' AS t, "
                            "CAST(1 AS BIGINT) AS b, 0.5D AS d")
    assert err is None, out
    r = sh.user_ns["r"]
    assert r.kql_types == ["int", "string", "datetime", "long", "real"]
    row = r.df.iloc[0]
    assert (row["n"], row["s"], str(row["t"])) == (7, "x", "2024-05-01 10:00:00+00:00")
    assert sh.user_ns["_kql_raw_result_"] is r


def test_lake_views_read_what_the_local_engine_reads(sh, run_cell, lake):
    import kqlmagic_plus

    local = kqlmagic_plus.kql("SigninLogs | summarize n = count() by ResultType", conn=f"lake://{lake}").df
    _value, err, out = _cell(run_cell, "-o r", "SigninLogs | summarize n = count() by ResultType")
    assert err is None, out
    spark = sh.user_ns["r"].df
    as_dict = lambda df: dict(zip(df["ResultType"].astype(str), df["n"].astype(int), strict=True))  # noqa: E731
    assert as_dict(spark) == as_dict(local)
    assert sum(as_dict(spark).values()) > 500
    _, err, out = _cell(run_cell, "--sql -o c", "SELECT count(*) AS n FROM SecurityEvent")
    assert err is None, out
    assert int(sh.user_ns["c"].df["n"][0]) == int(
        kqlmagic_plus.kql("SecurityEvent | count", conn=f"lake://{lake}").df["Count"][0])


def test_pyspark_cell_binds_spark_and_tables(sh, run_cell):
    _, err, out = _cell(run_cell, "--pyspark -o r",
                        "from pyspark.sql import functions as F\n"
                        "SigninLogs.groupBy('ResultType').agg(F.count('*').alias('n')).orderBy(F.desc('n'))")
    assert err is None, out
    r = sh.user_ns["r"]
    assert r.columns == ["ResultType", "n"] and r.row_count > 1
    assert list(r.df["n"]) == sorted(r.df["n"], reverse=True)
    value, err, out = _cell(run_cell, "--pyspark", "spark.range(5).count() * 2")
    assert err is None, out
    assert value == 10


def test_row_limit_is_announced(sh, run_cell):
    _, err, out = _cell(run_cell, "--sql --row-limit 3 -o r", "SELECT id FROM range(0, 100)")
    assert err is None, out
    r = sh.user_ns["r"]
    assert r.row_count == 3 and r.truncated
    assert any("first 3" in w for w in r.warnings)
    assert "first 3" in r._repr_html_()


def test_to_lake_writes_every_row_as_parquet(sh, run_cell, tmp_path):
    import pyarrow.parquet as pq

    dest = tmp_path / "out"
    _, err, out = _cell(run_cell, f"--sql --to-lake {dest}", "SELECT id, id * 2 AS twice FROM range(0, 5000)")
    assert err is None, out
    table = pq.read_table(str(dest))
    assert table.num_rows == 5000 and sorted(table.column("twice").to_pylist())[-1] == 9998


def test_spark_error_is_one_clear_message(sh, run_cell):
    _, err, out = _cell(run_cell, "--sql", "SELECT nope\nFROM SigninLogs")
    assert err is not None
    text = str(err)
    assert "UNRESOLVED_COLUMN" in text and "nope" in text and "line 1" in text
    assert "org.apache" not in text + out and "Py4J" not in text + out


def test_kql_cell_with_unknown_table_names_the_tables(sh, run_cell):
    _, err, _out = _cell(run_cell, "", "SignInLogz | take 1")
    assert err is not None
    assert "SignInLogz" in str(err)


def _cancel_a_long_job_and_run_again(session) -> None:
    """A long job cancelled from another thread: QueryCancelledError within 10 s, then the session works."""
    from kqlmagic_plus.errors import QueryCancelledError
    from kqlmagic_plus.sparkhunt import sparkhunt

    outcome: dict[str, object] = {}

    def slow():
        try:
            # 4e10 pairs: minutes of work, and a count cannot overflow (a sum of products did, at times
            # before the cancel arrived).
            outcome["value"] = sparkhunt("SELECT count(*) AS n FROM range(0, 200000) a CROSS JOIN "
                                         "range(0, 200000) b WHERE (a.id + b.id) % 7 = 3", mode="sql",
                                         progress="none", no_cache=True)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(4)
    started = time.monotonic()
    session.cancel()
    worker.join(30)
    assert not worker.is_alive()
    assert time.monotonic() - started < 10
    assert isinstance(outcome.get("error"), QueryCancelledError), outcome
    again = sparkhunt("SELECT 1 AS ok", mode="sql", progress="none", no_cache=True)
    assert again.df["ok"].tolist() == [1]


def test_ctrl_c_cancels_the_job_and_the_session_stays_usable(sh):
    from kqlmagic_plus.engines.spark.sessions import manager

    _cancel_a_long_job_and_run_again(manager().current())


def test_cancel_stops_a_spark_connect_job_and_the_session_stays_usable(sh, run_cell, spark_connect_url):
    """Through Spark Connect the job runs in the server: cancel() interrupts it by tag over the wire."""
    from kqlmagic_plus.engines.spark.sessions import manager

    _, err, out = run_cell(f"%sparkhunt --connect {spark_connect_url}")
    assert err is None, out
    try:
        session = manager().current()
        assert session.kind == "connect"
        _cancel_a_long_job_and_run_again(session)
    finally:
        run_cell(f"%sparkhunt --stop --connect {spark_connect_url}")
        run_cell("%sparkhunt --connect local[2]")


def test_hunt_through_the_magic_same_rows_on_both_engines(sh, run_cell, lake):
    _, err, out = run_cell(f"%sparkhunt beacon --lake {lake} --end-date 2024-05-01 --engine duckdb -o d")
    assert err is None, out
    _, err, out = run_cell("%sparkhunt beacon --end-date 2024-05-01 --engine spark -o s")
    assert err is None, out
    d, s = sh.user_ns["d"], sh.user_ns["s"]
    assert d.row_count >= 3
    assert s.table.to_pylist() == d.table.to_pylist()
    assert "kqlmp-plot" in s._repr_mimebundle_()["text/html"]  # the gap histograms below the table
    _value, err, out = run_cell("%sparkhunt beacon --help")
    assert err is None and "--min-pair-deltas" in out
    _, err, out = run_cell(f"%sparkhunt beacon --lake {lake} --min-pair-deltas lots")
    assert err is not None and "min-pair-deltas" in str(err).replace("_", "-")


def test_spark_connect_session(sh, run_cell, spark_connect_url, spark_connect_token):
    _, err, out = run_cell(f"%sparkhunt --connect {spark_connect_url}")
    assert err is None, out
    try:
        _, err, out = _cell(run_cell, "--sql -o r", "SELECT 40 + 2 AS answer")
        assert err is None, out
        assert sh.user_ns["r"].df["answer"].tolist() == [42]
        status, err, out = run_cell("%sparkhunt --status")
        shown = out + repr(status) + status._repr_html_()
        assert "sc://localhost" in shown and "local" in shown
        assert spark_connect_token not in shown
    finally:
        run_cell(f"%sparkhunt --stop --connect {spark_connect_url}")
        run_cell("%sparkhunt --connect local[2]")


def test_java_missing_is_one_clear_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    env["JAVA_HOME"] = str(tmp_path / "no-java")
    env["PATH"] = os.path.dirname(sys.executable)  # python, but no java
    code = ("from kqlmagic_plus.sparkhunt import sparkhunt\n"
            "try:\n    sparkhunt('SELECT 1', mode='sql', connect='local[1]')\n"
            "except Exception as e:\n    print(type(e).__name__ + ': ' + str(e))\n")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "Java" in proc.stdout and "17" in proc.stdout, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_abfss_lake_without_connector_is_a_clear_error(sh, run_cell):
    _, err, out = run_cell("%sparkhunt --lake abfss://am-signinlogs@soclake.dfs.core.windows.net/")
    assert err is not None
    text = str(err) + out
    assert "hadoop-azure" in text and "abfss://" in text
    assert "org.apache" not in str(err).split("hadoop-azure")[0]


def test_progress_follows_the_job_and_can_be_turned_off(sh, run_cell):
    slow = "SELECT count(DISTINCT a.id % 1000003) AS n FROM range(0, 3000000) a"
    _, err, out = _cell(run_cell, "--sql --no-cache", slow)
    assert err is None, out
    assert "Spark:" in out and "tasks" in out and "finished" in out
    _, err, out = _cell(run_cell, "--sql --no-cache --no-progress", slow)
    assert err is None, out
    assert "tasks" not in out


def test_notebook_progress_is_a_tqdm_bar():
    import io

    from kqlmagic_plus.engines.spark.progress import ProgressSink, StageSnapshot

    sink = ProgressSink("notebook", delay=0, interval=0, stream=io.StringIO())
    sink.stages([StageSnapshot(stage_id=3, num_tasks=10, completed=4, active=2)])
    bar = sink._bar
    assert bar is not None and type(bar).__module__.startswith("tqdm")
    assert (bar.n, bar.total) == (4, 10)
    sink.stages([StageSnapshot(stage_id=3, num_tasks=10, completed=10)])
    sink.close()
    assert bar.n == 10


def test_list_names_every_hunt_with_what_it_finds(ip):
    from kqlmagic_plus.hunts import get_hunt, list_hunts

    listing = ip.run_line_magic("sparkhunt", "--list")
    text, page = repr(listing), listing._repr_html_()
    assert list(listing) == list_hunts() == ["beacon", "masquerade", "spray"]
    for name in list_hunts():
        hunt = get_hunt(name)
        assert f"{name}  " in text and hunt.title in text and hunt.table in text
        assert f"<code>{name}</code>" in page
    assert "--help" in text


def test_a_cached_spark_result_is_not_served_after_the_lake_changes(ip, spark_local, run_cell, tmp_path, monkeypatch):
    import glob
    import shutil

    from kqlmagic_plus import config
    from kqlmagic_plus.demo.datagen import generate

    monkeypatch.setenv("KQLMAGIC_PLUS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(config.settings(), "cache_dir", str(tmp_path / "cache"))
    root = tmp_path / "lake"
    generate(root, days=1, end_date="2024-05-01", events_per_day=2_000, seed=11, layout="1h",
             tables=["SigninLogs"])
    _, err, out = run_cell(f"%sparkhunt --connect local[2] --lake {root}")
    assert err is None, out
    query = "SigninLogs | count"
    _, err, out = _cell(run_cell, "--cache 1h -o first", query)
    assert err is None, out
    _, err, out = _cell(run_cell, "--cache 1h -o hit", query)
    assert err is None and ip.user_ns["hit"].from_cache
    blob = sorted(glob.glob(str(root / "**" / "PT1H.json"), recursive=True))[0]
    shutil.copy(blob, blob.replace("PT1H.json", "PT1H_1.json"))  # an overflow blob arrives
    _, err, out = _cell(run_cell, "--cache 1h -o after", query)
    assert err is None, out
    after = ip.user_ns["after"]
    assert not after.from_cache
    import kqlmagic_plus

    truth = kqlmagic_plus.kql(query, conn=f"lake://{root}").df["Count"].tolist()
    assert after.df["Count"].tolist() == truth != ip.user_ns["first"].df["Count"].tolist()

    # Rewritten in place with the same size and modification time (as `cp -p` or rsync leave it).
    failed = 'SigninLogs | where ResultType == "1" | count'
    _, err, out = _cell(run_cell, "--cache 1h -o before_edit", failed)
    assert err is None, out
    st = os.stat(blob)
    with open(blob, "rb") as fh:
        data = fh.read()
    with open(blob, "wb") as fh:
        fh.write(data.replace(b'"ResultType":"0"', b'"ResultType":"1"', 1))
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(blob).st_size == st.st_size
    _, err, out = _cell(run_cell, "--cache 1h -o edited", failed)
    assert err is None, out
    edited = ip.user_ns["edited"]
    assert not edited.from_cache
    assert edited.df["Count"].tolist() == kqlmagic_plus.kql(failed, conn=f"lake://{root}").df["Count"].tolist()
    assert edited.df["Count"].tolist() != ip.user_ns["before_edit"].df["Count"].tolist()
