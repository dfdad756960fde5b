"""The local driver JVM: the Java check, whether the JVM PySpark launched is still there (and why not), and
resetting PySpark's singletons once it is gone; the py4j log filter used around calls into it.

Local and standalone sessions (:mod:`.sessions`) both run their driver in this process's JVM.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from kqlmagic_plus.engines.spark import errors as spark_errors
from kqlmagic_plus.engines.spark.handle import Say
from kqlmagic_plus.errors import EngineUnavailableError

#: What makes PySpark build a Spark Connect session where a local one is asked for.
_CONNECT_ENV = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")
_CONNECT_OPTIONS = ("spark.remote", "spark.api.mode")


# -- runtime checks ---------------------------------------------------------------------------------


def java_version() -> tuple[str, int | None]:
    """The java executable local Spark would start, and its major version (None if unknown)."""
    home = os.environ.get("JAVA_HOME")
    exe = None
    if home:
        cand = os.path.join(home, "bin", "java")
        exe = cand if os.path.exists(cand) else None
    exe = exe or shutil.which("java")
    if exe is None:
        raise EngineUnavailableError(
            "local Spark needs Java 17 or newer, and none was found (no JAVA_HOME, no `java` on PATH)",
            hint="Install a JDK 17 or 21 (e.g. `sudo apt-get install openjdk-17-jre-headless`, "
                 "`brew install openjdk@17`, or `conda install -c conda-forge openjdk=17`) and set JAVA_HOME; "
                 "or run on a cluster: %sparkhunt --connect sc://host:15002 or synapse://workspace/pool")
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30)
        text = out.stderr + out.stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise EngineUnavailableError(f"local Spark needs Java 17 or newer; {exe} does not run ({exc})") from None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', text)
    major = None
    if m:
        major = int(m.group(1))
        if major == 1 and m.group(2):
            major = int(m.group(2))
    if major is not None and major < 17:
        raise EngineUnavailableError(
            f"local Spark (PySpark 4) needs Java 17 or newer; {exe} is Java {major}",
            hint="Install a JDK 17 or 21 and point JAVA_HOME at it.")
    return exe, major


def _require_pyspark(connect: bool = False) -> None:
    try:
        import pyspark
    except ImportError:
        raise EngineUnavailableError("pyspark is not installed: pip install 'kqlmagic-plus[spark]' "
                                     "(PySpark 4 with Spark Connect)") from None
    if connect:
        try:
            import pyspark.sql.connect.session  # noqa: F401
        except ImportError as exc:
            raise EngineUnavailableError(f"Spark Connect needs pyspark[connect] ({exc}): "
                                         "pip install 'pyspark[connect]>=4,<5'") from None


# -- the local JVM ----------------------------------------------------------------------------------


def jvm_exit() -> str | None:
    """Why the local Spark JVM this process launched is gone ("the local Spark JVM was killed (SIGKILL
    ...)"); None while it runs, or when PySpark did not launch it (an adopted gateway: then only a
    call into it tells)."""
    if "pyspark" not in sys.modules:
        return None
    try:
        from pyspark import SparkContext
    except ImportError:
        return None
    proc = getattr(SparkContext._gateway, "proc", None)
    try:
        code = proc.poll() if proc is not None else None
    except Exception:
        return None
    return None if code is None else describe_exit(code)


def jvm_exit_soon(timeout: float = 3.0) -> str | None:
    """:func:`jvm_exit`, waiting up to *timeout* s for a JVM that stopped answering to be reaped: a killed
    JVM closes its sockets (and shows as a zombie) before its last threads are gone and its exit status
    can be read."""
    gone = jvm_exit()
    if gone is not None or getattr(getattr(sys.modules.get("pyspark"), "SparkContext", None), "_gateway", None) \
            is None:
        return gone
    deadline = time.monotonic() + timeout
    while gone is None and time.monotonic() < deadline:
        time.sleep(0.05)
        gone = jvm_exit()
    return gone


def describe_exit(code: int) -> str:
    """A JVM's exit status as the notice says it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if name == "SIGKILL":
            return "the local Spark JVM was killed (SIGKILL: the out-of-memory killer, or kill -9)"
        return f"the local Spark JVM was killed ({name})"
    if code in (52, 137):  # Spark's "out of memory" exit code; 128+9 from a shell wrapper
        return f"the local Spark JVM died (exit code {code}: out of memory)"
    return f"the local Spark JVM exited (exit code {code})"


def reset_local_pyspark() -> None:
    """Forget a local JVM that is gone: PySpark's py4j gateway, its SparkContext, SparkSession and
    SQLContext singletons. The next local session then launches a new JVM (PySpark alone would keep
    talking to the dead gateway: "Connection refused" on every cell)."""
    if "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    with SparkContext._lock:
        sc = SparkContext._active_spark_context
        gateway = SparkContext._gateway
        if sc is not None:
            sc._jsc = None
            server = getattr(sc, "_accumulatorServer", None)
            if server is not None:
                with contextlib.suppress(Exception):
                    server.shutdown()
                    server.server_close()
                sc._accumulatorServer = None
        SparkContext._active_spark_context = None
        SparkContext._gateway = None
        SparkContext._jvm = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None
    with contextlib.suppress(Exception):
        from pyspark.sql.context import SQLContext

        SQLContext._instantiatedContext = None
    if gateway is not None:
        with _quiet_py4j():
            with contextlib.suppress(Exception):
                gateway._gateway_client.close()
            with contextlib.suppress(Exception):
                gateway.shutdown_callback_server()
        proc = getattr(gateway, "proc", None)
        if proc is not None:
            with contextlib.suppress(Exception):
                if proc.poll() is None:
                    proc.kill()
                proc.wait(timeout=10)  # no zombie left behind


def classic_mode(say: Say | None = None) -> None:
    """Make PySpark build a local (classic) session: no Spark Connect mode left in the environment or in
    the builder options (a failed or stopped ``--connect`` must not make the next local cell fail with
    CONNECT_URL_NOT_SET)."""
    found = [k for k in _CONNECT_ENV if k in os.environ]
    for k in found:
        os.environ.pop(k, None)
    with contextlib.suppress(Exception):
        from pyspark.sql import SparkSession

        options = getattr(SparkSession.Builder, "_options", None)  # PySpark 3.x: one dict for all builders
        if isinstance(options, dict):
            for k in _CONNECT_OPTIONS:
                options.pop(k, None)
    if say is not None and "SPARK_REMOTE" in found:
        say("Spark: SPARK_REMOTE is set in the environment; cleared for this process, so the local session "
            "starts (use --connect sc://... for Spark Connect).")


def _looks_like_io(exc: BaseException) -> bool:
    """An error from the wire (py4j, a cut socket), not from the query."""
    return (spark_errors.is_connection_loss(exc) or isinstance(exc, (EOFError, OSError))
            or (type(exc).__module__.startswith("py4j") and type(exc).__name__ != "Py4JJavaError"))


def _answers(sc: Any) -> bool:
    """Whether a running SparkContext's JVM answers a call."""
    try:
        with _quiet_py4j():
            sc._jsc.sc().isStopped()
        return True
    except Exception:
        return False


class _Py4jQuiet(logging.Filter):
    """Py4J logs tracebacks (ERROR, through its own loggers and the root logger) when the JVM is gone or a
    call is interrupted; the cell says what happened in one line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        from_py4j = record.name.startswith("py4j") or "py4j" in (record.pathname or "")
        return not (from_py4j and (record.levelno >= logging.WARNING or record.exc_info))


@contextlib.contextmanager
def _quiet_py4j():
    quiet = _Py4jQuiet()
    loggers = [logging.getLogger(n) for n in ("", "py4j", "py4j.java_gateway", "py4j.clientserver")]
    for lg in loggers:
        lg.addFilter(quiet)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(quiet)
