"""``%sparkhunt --connect spark://...`` on a real Spark standalone cluster: a master and two workers, each a
separate JVM started from PySpark's own classes (tests/spark_cluster.py), 1 core / 1 GB a worker.

The notebook is a separate Python process (a real IPython shell, tests/test_spark_faults.Kernel): a process
holds one SparkContext, and the test process's own is the shared local one. The executors are the workers'
children, with their own working directories: nothing of the driver's is theirs but the lake path.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from spark_cluster import Cluster
from test_spark_faults import Kernel

pytestmark = [pytest.mark.spark, pytest.mark.slow]

#: The executors' Python is this one (a cluster names its own; "python3" on PATH may lack PySpark in CI).
_SMALL = {"KQLMAGIC_PLUS_SPARK_DRIVER_MEMORY": "768m", "PYSPARK_PYTHON": sys.executable}
#: What every executor may take: a worker offers 1 core and 1 GB.
_EXECUTORS = "--conf spark.executor.memory=512m --conf spark.executor.cores=1 --conf spark.cores.max=2"


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("cluster")


@pytest.fixture(scope="module")
def lake(tmp):
    from kqlmagic_plus.demo.datagen import generate

    root = tmp / "lake"
    generate(root, days=2, end_date="2024-05-01", events_per_day=6_000, seed=5, layout="1h")
    return str(root)


@pytest.fixture(scope="module")
def cluster(tmp):
    c = Cluster(tmp)
    try:
        yield c.start()
    finally:
        c.stop()


@pytest.fixture(scope="module")
def nb(tmp, cluster, lake):
    """A notebook connected to the cluster, with the lake bound."""
    work = tmp / "notebook"
    work.mkdir()
    k = Kernel(work, _SMALL)
    try:
        reply = k.ok(f"%sparkhunt --connect {cluster.url} {_EXECUTORS} --lake {lake}", timeout=300)
        assert "standalone cluster" in reply["out"] and "table(s)" in reply["out"], reply["out"]
        yield k
    finally:
        k.close()


def _executors(k: Kernel) -> dict[str, int]:
    """Executor id -> tasks it ran, from the driver's status store (the driver itself listed as 'driver')."""
    return k.py("(lambda seq: {seq.apply(i).id(): seq.apply(i).totalTasks() for i in range(seq.size())})("
                "__import__('kqlmagic_plus.engines.spark.sessions', fromlist=['x']).manager().peek().spark"
                ".sparkContext._jsc.sc().statusStore().executorList(True))")


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_kql_cell_runs_on_the_workers_executors_with_the_local_engines_rows(nb, cluster, lake):
    import kqlmagic_plus

    query = "SigninLogs | summarize n = count(), users = dcount(UserPrincipalName) by ResultType"
    reply = nb.ok(f"%%sparkhunt -o r\n{query}")
    assert "Traceback" not in reply["out"]
    got = {row["ResultType"]: (row["n"], row["users"]) for row in nb.py("r.df.astype(str).to_dict('records')")}
    local = kqlmagic_plus.kql(query, conn=f"lake://{lake}").df.astype(str)
    assert got == {row["ResultType"]: (row["n"], row["users"]) for row in local.to_dict("records")}
    assert nb.py("r.stats['session']") == cluster.url
    # Two executors, one on each worker, both of which ran tasks; each is a JVM the worker started.
    ran = {k: v for k, v in _executors(nb).items() if k != "driver"}
    assert len(ran) == 2 and all(v > 0 for v in ran.values()), ran
    for pid in cluster.worker_pids():
        assert any("CoarseGrainedExecutorBackend" in Path(f"/proc/{c}/cmdline").read_text() for c in _children(pid))


def test_executors_import_the_package_shipped_with_the_job_not_the_drivers_files(nb, cluster):
    # The executors' Python finds kqlmagic_plus in the zip the session shipped (in the worker's folder).
    reply = nb.ok("%%sparkhunt --pyspark\nfiles = spark.sparkContext.parallelize(range(4), 4).map(lambda _: "
                  "__import__('os').path.abspath(__import__('kqlmagic_plus').__file__)).distinct().collect()")
    assert "Traceback" not in reply["out"]
    files = nb.py("files")
    assert files and all("kqlmagic_plus.zip" in f and str(cluster.tmp / "worker") in f for f in files), files
    # So a query whose SQL calls the package's Python functions (erf is a kqlmp_ UDF) runs there.
    nb.ok("%%sparkhunt -o r\nSigninLogs | take 3 | project e = round(erf(1.0), 6)")
    assert nb.py("r.df['e'].tolist()") == [0.842701] * 3


def test_to_lake_with_a_relative_path_lands_under_the_notebooks_folder(nb, cluster, tmp, lake):
    reply = nb.ok("%%sparkhunt --to-lake out/failed -o w\nSigninLogs | where ResultType != '0' "
                  "| project TimeGenerated, UserPrincipalName, ResultType")
    import pyarrow.parquet as pq

    folder = tmp / "notebook" / "out" / "failed"
    parts = glob.glob(str(folder / "*.parquet"))
    assert parts, (reply["out"], os.listdir(tmp / "notebook"))
    rows = sum(pq.read_metadata(p).num_rows for p in parts)
    assert nb.py("w.df[['Path', 'Rows']].values.tolist()") == [[str(folder), rows]] and rows > 0
    n = nb.py("__import__('kqlmagic_plus').kql(\"SigninLogs | where ResultType != '0' | count\", "
              f"conn='lake://{lake}').df.iloc[0, 0]")
    assert int(n) == rows
    # Not in an executor's working directory (where a relative path resolves on a worker).
    assert not glob.glob(str(cluster.tmp / "worker*" / "**" / "out" / "failed"), recursive=True)


def test_hunt_runs_on_the_cluster_with_the_duckdb_rows(nb, lake):
    nb.ok(f"%sparkhunt beacon --lake {lake} --end-date 2024-05-01 --engine duckdb -o d", timeout=300)
    nb.ok("%sparkhunt beacon --end-date 2024-05-01 --engine spark -o s", timeout=600)
    assert nb.py("d.row_count") >= 3
    assert nb.py("s.table.to_pylist() == d.table.to_pylist()")


def test_ctrl_c_cancels_the_clusters_tasks_and_the_next_cell_runs(nb, cluster):
    before = _executors(nb)
    nb.send("cell", source="%%sparkhunt --sql\nSELECT sum(hash(id)) AS h FROM range(0, 200000000000, 1, 8)")
    time.sleep(12)  # the job is running on both executors by now
    started = time.monotonic()
    os.kill(nb.proc.pid, signal.SIGINT)  # the notebook's interrupt: to the Python process, not its JVM
    reply = nb._reply(60)
    took = time.monotonic() - started
    assert reply["error_type"] == "QueryCancelledError" and took < 30, (reply, took)
    assert "Traceback" not in reply["out"] and "py4j" not in reply["out"].lower(), reply["out"]
    # The executors were told to kill their tasks (their own logs say so), and are free for the next cell.
    logs = "".join(Path(p).read_text() for p in glob.glob(str(cluster.tmp / "worker*" / "app-*" / "*" / "stderr")))
    assert "kill task" in logs.lower() or "killed" in logs.lower()
    after = nb.ok("%%sparkhunt --sql -o r\nSELECT count(*) AS n FROM range(0, 1000, 1, 4)", timeout=120)
    assert nb.py("r.df['n'].tolist()") == [1000], after
    assert sum(_executors(nb).values()) > sum(before.values())


def test_spark_urls_name_a_standalone_cluster_and_a_wrong_target_says_the_forms():
    from kqlmagic_plus.engines.spark.sessions import parse_target
    from kqlmagic_plus.errors import OptionError

    t = parse_target("spark://10.0.0.5:7077,10.0.0.6:7077/")
    assert (t.kind, t.spec) == ("standalone", "spark://10.0.0.5:7077,10.0.0.6:7077")
    with pytest.raises(OptionError, match=r"spark://host:port for a standalone cluster"):
        parse_target("spark:/10.0.0.5")
