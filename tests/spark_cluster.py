"""A real Spark standalone cluster on this machine: one master and two workers, each a separate JVM started
from the pip-installed PySpark distribution's own classes (``bin/spark-class
org.apache.spark.deploy.master.Master`` / ``...worker.Worker``), on loopback, 1 core and 1 GB a worker.

Every process runs in its own process group and is killed (by that group's id) at teardown, executors
included (a worker starts them as its children).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spark_home() -> str:
    import pyspark

    return os.path.dirname(os.path.abspath(pyspark.__file__))


class Cluster:
    """``with Cluster(tmp) as c: ... c.url``: a master and *workers* workers, each 1 core / 1 GB."""

    def __init__(self, tmp: Path, workers: int = 2):
        self.tmp = tmp
        self.workers = workers
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARK_", "PYSPARK_"))}
        home = spark_home()
        conf_dir = self.tmp / "conf"
        conf_dir.mkdir(exist_ok=True)
        # No REST submission server (its port is fixed: two clusters would clash), no Web UI port clash.
        (conf_dir / "spark-defaults.conf").write_text("spark.master.rest.enabled false\n")
        env.update(SPARK_HOME=home, SPARK_CONF_DIR=str(conf_dir), SPARK_LOCAL_IP="127.0.0.1",
                   SPARK_DAEMON_MEMORY="256m", SPARK_LOG_DIR=str(self.tmp / "logs"))
        return env

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self.logs.append(log)
        with open(log, "w") as out:
            proc = subprocess.Popen([os.path.join(spark_home(), "bin", "spark-class"), *args], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._env(),
                                    cwd=str(self.tmp), start_new_session=True)
        self.procs.append(proc)
        return proc

    def _wait_for(self, log: Path, pattern: str, proc: subprocess.Popen, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text() if log.exists() else ""
            if re.search(pattern, text):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.3)
        raise AssertionError(f"{log.name}: no {pattern!r} within {timeout:.0f} s\n{self.tail(log)}")

    def start(self, timeout: float = 180) -> Cluster:
        master = self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
                             str(self.port), "--webui-port", "0")
        self._wait_for(self.logs[-1], r"I have been elected leader", master, timeout)
        for i in range(self.workers):
            work = self.tmp / f"worker{i + 1}"
            work.mkdir(exist_ok=True)
            proc = self._start(f"worker{i + 1}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                               "--cores", "1", "--memory", "1g", "--webui-port", "0", "--work-dir", str(work),
                               self.url)
            self._wait_for(self.logs[-1], r"Successfully registered with master", proc, timeout)
        return self

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.procs[1:]]

    def tail(self, log: Path, n: int = 30) -> str:
        return "\n".join(log.read_text().splitlines()[-n:]) if log.exists() else "(no log)"

    def stop(self) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: the JVM and the executors it started
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        self.procs.clear()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
