"""Spark sessions survive what happens to them (#24), on real Spark.

Each test runs its cells in a separate Python process (a real IPython shell with ``%load_ext
kqlmagic_plus``), because what is tested is the process's own state after a fault: the py4j gateway,
the SparkContext/SparkSession singletons, the Spark Connect client's default session and the
environment (SPARK_REMOTE, SPARK_CONNECT_MODE_ENABLED). The shared test JVM (tests/spark_fixtures.py)
is never touched. Every process a test starts (kernels, their JVMs, Spark Connect servers) runs in its
own process group and is killed at teardown, also when the test fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]

#: The child: reads one JSON command a line, answers one JSON line. ``cell`` runs a cell as a user would
#: (its printed text and its error as the notebook shows them); ``py`` evaluates an expression.
_KERNEL = r'''
import contextlib, io, json, sys, time, traceback
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "kqlmagic_plus")
real_stdout = sys.stdout
print(json.dumps({"ready": True}), file=real_stdout, flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    started = time.monotonic()
    reply = {}
    if cmd["op"] == "cell":
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            res = shell.run_cell(cmd["source"])
        err = res.error_in_exec or res.error_before_exec
        reply = {"out": out.getvalue(), "error": None if err is None else str(err),
                 "error_type": None if err is None else type(err).__name__}
    elif cmd["op"] == "py":
        try:
            reply = {"value": eval(cmd["expr"], shell.user_ns)}
        except Exception:
            reply = {"exception": traceback.format_exc()}
    reply["seconds"] = time.monotonic() - started
    print(json.dumps(reply, default=str), file=real_stdout, flush=True)
'''

#: A Spark Connect server: local Spark with the Connect plugin on PORT with TOKEN, until killed.
_SERVER = r'''
import sys
from pyspark.sql import SparkSession

port, token = sys.argv[1], sys.argv[2]
builder = SparkSession.builder.master("local[1]").appName("kqlmp-fault-connect-server")
for k, v in {"spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
             "spark.connect.grpc.binding.address": "127.0.0.1", "spark.connect.grpc.binding.port": port,
             "spark.connect.authenticate.token": token, "spark.ui.enabled": "false",
             "spark.driver.memory": "768m", "spark.sql.shuffle.partitions": "2"}.items():
    builder = builder.config(k, v)
builder.getOrCreate()
print("READY", flush=True)
sys.stdin.read()
'''

#: Cells in the kernels get a small JVM: the machine running the tests is shared.
_SMALL_JVM = {"KQLMAGIC_PLUS_SPARK_DRIVER_MEMORY": "768m"}
_SPARK_ENV = ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "SPARK_LOCAL_REMOTE", "SPARK_API_MODE", "MASTER",
              "PYSPARK_SUBMIT_ARGS")


def _env(extra: dict[str, str] | None, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SPARK_ENV and not k.startswith("KQLMAGIC_PLUS_")}
    env["KQLMAGIC_PLUS_CACHE_DIR"] = str(tmp / "cache")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def _kill_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None or _group_alive(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


class Kernel:
    """A notebook kernel stand-in in its own process group."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None):
        self.log = tmp / f"kernel-{secrets.token_hex(3)}.stderr"
        self._err = open(self.log, "w")  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, "-c", _KERNEL], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._err, text=True, cwd=str(tmp), env=_env(env, tmp),
                                     start_new_session=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._reply(120).get("ready"), self.stderr()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self._lines.put(line)
        self._lines.put(None)

    def _reply(self, timeout: float) -> dict:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the kernel did not answer in {timeout:.0f} s (hung)\n{self.stderr()}") from None
        if line is None:
            raise AssertionError(f"the kernel process died\n{self.stderr()}")
        return json.loads(line)

    def send(self, op: str, **kw: str) -> None:
        self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def cell(self, source: str, timeout: float = 400) -> dict:
        self.send("cell", source=source)
        return self._reply(timeout)

    def py(self, expr: str, timeout: float = 60):
        self.send("py", expr=expr)
        reply = self._reply(timeout)
        assert "exception" not in reply, reply["exception"]
        return reply["value"]

    def ok(self, source: str, timeout: float = 400) -> dict:
        reply = self.cell(source, timeout)
        assert reply["error"] is None, reply
        return reply

    def jvm_pid(self) -> int:
        return int(self.py("__import__('kqlmagic_plus.engines.spark.sessions', fromlist=['x']).manager().peek()"
                           ".spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()"))

    def stderr(self) -> str:
        self._err.flush()
        return self.log.read_text()[-4000:]

    def close(self) -> None:
        _kill_group(self.proc)
        self._err.close()


class ConnectServer:
    """A local Spark Connect server on a fixed port, which can be stopped and started again."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = _free_port()
        self.token = secrets.token_urlsafe(12)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        # Spark Connect sends a token without TLS only to "localhost".
        return f"sc://localhost:{self.port}/;token={self.token}"

    def start(self, timeout: float = 300) -> float:
        started = time.monotonic()
        log = open(self.tmp / f"server-{self.port}.log", "a")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(self.port), self.token],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                                     cwd=str(self.tmp), env=_env(None, self.tmp), start_new_session=True)
        log.close()
        line = _readline(self.proc, timeout)
        assert line.strip() == "READY", (self.tmp / f"server-{self.port}.log").read_text()[-3000:]
        return time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None:
            _kill_group(self.proc)
            self.proc = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _port_open(self.port):
            time.sleep(0.2)


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    out: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: out.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    try:
        return out.get(timeout=timeout)
    except queue.Empty:
        return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_dead(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not die")


def _one_line(text: str) -> str:
    assert "Traceback" not in text and "py4j" not in text.lower() and "grpc" not in text.lower(), text
    return text


def _notice(out: str, *words: str) -> str:
    """The one line of *out* with every word in it (the cell's "what happened, what was done")."""
    lines = [ln for ln in out.splitlines() if all(w.lower() in ln.lower() for w in words)]
    assert lines, f"no line with {words} in:\n{out}"
    return lines[0]


@pytest.fixture
def procs(tmp_path):
    """Start kernels and Connect servers; all of them (and their JVMs) are killed at teardown."""
    made: list = []

    class Make:
        def kernel(self, env: dict[str, str] | None = None) -> Kernel:
            k = Kernel(tmp_path, {**_SMALL_JVM, **(env or {})})
            made.append(k)
            return k

        def server(self) -> ConnectServer:
            s = ConnectServer(tmp_path)
            made.append(s)
            return s

    yield Make()
    for p in reversed(made):
        if isinstance(p, Kernel):
            p.close()
        else:
            p.stop()


def _figure(name: str, seconds: float) -> None:
    print(f"[figure] {name}: {seconds:.1f} s")


# -- the local JVM killed ---------------------------------------------------------------------------


def test_jvm_killed_between_cells_the_next_cell_starts_a_new_session(procs):
    k = procs.kernel()
    first = k.ok("%%sparkhunt --sql\nSELECT 1 AS n")
    _figure("first local start + cell", first["seconds"])
    pid = k.jvm_pid()
    os.kill(pid, signal.SIGKILL)
    _wait_dead(pid)

    after = k.ok("%%sparkhunt --sql -o r\nSELECT 2 AS n")
    _figure("cell after the JVM kill (new JVM included)", after["seconds"])
    assert k.py("r.df['n'].tolist()") == [2]
    line = _notice(after["out"], "killed", "new")
    assert "SIGKILL" in line and "local" in line, line
    _one_line(after["out"])
    assert k.jvm_pid() != pid
    again = k.ok("%%sparkhunt --sql -o r\nSELECT 3 AS n")
    assert k.py("r.df['n'].tolist()") == [3]
    assert "killed" not in again["out"]


def test_jvm_killed_during_a_query_fails_it_at_once_then_the_next_cell_works(procs):
    k = procs.kernel()
    k.ok("%%sparkhunt --sql\nSELECT 1 AS n")
    pid = k.jvm_pid()
    # About 40 s of sleeping tasks: the query is running when the JVM dies.
    k.send("cell", source="%%sparkhunt --sql --no-progress\nSELECT count(*) AS n FROM range(0, 40, 1, 1) "
                          "WHERE java_method('java.lang.Thread', 'sleep', CAST(1000 AS BIGINT)) IS NULL")
    time.sleep(6)
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    reply = k._reply(60)
    failed_in = time.monotonic() - killed
    _figure("running query failed after the JVM kill", failed_in)
    assert reply["error"] is not None, reply
    assert failed_in < 10, failed_in
    error = reply["error"]
    assert "\n" not in error.strip() and "killed" in error and "SIGKILL" in error, error
    _one_line(reply["out"] + error)

    after = k.ok("%%sparkhunt --sql -o r\nSELECT 2 AS n")
    _figure("cell after the kill (new JVM included)", after["seconds"])
    assert k.py("r.df['n'].tolist()") == [2]
    _one_line(after["out"])
    assert "new" in after["out"], after["out"]


# -- Spark Connect ----------------------------------------------------------------------------------


def test_failed_connect_url_does_not_poison_the_next_local_session(procs):
    k = procs.kernel()
    port = _free_port()  # nothing listens there
    bad = k.cell(f"%sparkhunt --connect sc://127.0.0.1:{port}/;token=not-a-real-token")
    _figure("failed --connect to a closed port", bad["seconds"])
    assert bad["error"] is not None and "cannot reach" in bad["error"], bad
    assert "not-a-real-token" not in bad["error"] + bad["out"], bad
    _one_line(bad["out"] + bad["error"])
    assert k.py("[k for k in ('SPARK_REMOTE', 'SPARK_CONNECT_MODE_ENABLED') "
                "if k in __import__('os').environ]") == []

    after = k.cell("%%sparkhunt --sql -o r\nSELECT 1 AS n")
    assert after["error"] is None, after
    assert k.py("r.df['n'].tolist()") == [1]
    assert k.py("__import__('kqlmagic_plus.engines.spark.sessions', fromlist=['x']).manager().peek().kind") \
        == "local"


def test_connect_server_restarted_between_cells_the_next_cell_reconnects(procs):
    server = procs.server()
    _figure("Connect server start", server.start())
    k = procs.kernel()
    k.ok(f"%sparkhunt --connect {server.url}")
    k.ok("%%sparkhunt --sql -o r\nSELECT 1 AS n")
    assert k.py("r.df['n'].tolist()") == [1]

    server.stop()
    down = k.cell("%%sparkhunt --sql\nSELECT 2 AS n", timeout=120)
    _figure("cell while the Connect server is down", down["seconds"])
    assert down["error"] is not None and "cannot reach" in down["error"], down
    assert server.token not in down["error"] + down["out"]
    _one_line(down["out"] + down["error"])

    _figure("Connect server restart", server.start())
    after = k.cell("%%sparkhunt --sql -o r\nSELECT 3 AS n", timeout=120)
    _figure("first cell after the restart", after["seconds"])
    assert after["error"] is None, after
    assert k.py("r.df['n'].tolist()") == [3]
    line = _notice(after["out"], "Spark Connect", "new session")
    assert server.token not in after["out"], line
    _one_line(after["out"])
    k.ok("%%sparkhunt --sql -o r\nSELECT 4 AS n")
    assert k.py("r.df['n'].tolist()") == [4]


def test_connect_server_restarted_while_connected_reconnects_without_an_error_cell(procs):
    """The server restarts between two cells (no cell ran while it was down): the next cell works."""
    server = procs.server()
    server.start()
    k = procs.kernel()
    k.ok(f"%sparkhunt --connect {server.url}")
    k.ok("%%sparkhunt --sql -o r\nSELECT 1 AS n")
    server.stop()
    server.start()
    after = k.cell("%%sparkhunt --sql -o r\nSELECT 2 AS n", timeout=120)
    _figure("first cell after a restart between cells", after["seconds"])
    assert after["error"] is None, after
    assert k.py("r.df['n'].tolist()") == [2]
    _notice(after["out"], "Spark Connect", "new session")
    _one_line(after["out"])


# -- local defaults sized to the machine ------------------------------------------------------------


def test_local_defaults_follow_the_machine_and_settings():
    from kqlmagic_plus import config
    from kqlmagic_plus.engines.spark import sessions

    gib = 2**30
    assert sessions.local_defaults(memory=24 * gib, cores=8) == {
        "spark.driver.memory": "12g", "spark.sql.shuffle.partitions": "16"}
    assert sessions.local_defaults(memory=3 * gib, cores=1) == {
        "spark.driver.memory": "1536m", "spark.sql.shuffle.partitions": "2"}
    assert sessions.local_defaults(memory=1 * gib, cores=2)["spark.driver.memory"] == "1g"  # never below 1g
    cfg = config.settings()
    saved = cfg.spark_driver_memory, cfg.spark_shuffle_partitions
    try:
        cfg.spark_driver_memory, cfg.spark_shuffle_partitions = "6g", 24
        assert sessions.local_defaults(memory=24 * gib, cores=8) == {
            "spark.driver.memory": "6g", "spark.sql.shuffle.partitions": "24"}
        with pytest.raises(config.SettingError):
            cfg.spark_driver_memory = "lots"
    finally:
        cfg.spark_driver_memory, cfg.spark_shuffle_partitions = saved


def test_local_session_gets_the_machine_defaults_and_a_users_conf_wins(procs):
    """local[*]: shuffle partitions from the machine's cores; the user's --conf spark.driver.memory wins over
    the RAM-sized default (also in the JVM's heap), and a later --conf changes the partitions."""
    from kqlmagic_plus.engines.spark import sessions

    spark = "__import__('kqlmagic_plus.engines.spark.sessions', fromlist=['x']).manager().peek().spark"
    expected = sessions.local_defaults()
    assert expected["spark.driver.memory"] != "900m"
    k = procs.kernel(env={"KQLMAGIC_PLUS_SPARK_DRIVER_MEMORY": "auto"})
    started = k.ok("%sparkhunt --connect local[*] --conf spark.driver.memory=900m")
    partitions = expected["spark.sql.shuffle.partitions"]
    assert f"driver memory 900m, {partitions} shuffle partitions" in started["out"], started["out"]
    assert k.py(f"{spark}.conf.get('spark.sql.shuffle.partitions')") == partitions
    assert int(partitions) == 2 * sessions.machine_cores()
    max_heap = int(k.py(f"{spark}.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory()"))
    assert 0.8 * 900 * 2**20 < max_heap <= 900 * 2**20, max_heap
    k.ok("%sparkhunt --conf spark.sql.shuffle.partitions=3")
    k.ok("%%sparkhunt --sql -o r\nSELECT 1 AS n")
    assert k.py(f"{spark}.conf.get('spark.sql.shuffle.partitions')") == "3"

