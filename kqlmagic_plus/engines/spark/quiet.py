"""Spark's own output kept out of terminals and cells, unless ``--debug`` asks for it.

A driver JVM started here gets:

- a log4j2 configuration of ours (:data:`LOG4J2`, through ``spark.driver.extraJavaOptions``): warnings and
  errors only, the known start-up chatter (NativeCodeLoader, the loopback-hostname note, plan truncation)
  at ERROR, and no "Using Spark's default log4j profile" / "Setting default log level" banner;
- its stdout and stderr written to a log file (:func:`jvm_log`) instead of this process's: the JDK's
  "Using incubator modules" line, spark-submit's own lines and whatever a Python worker prints never reach
  a terminal, or a notebook cell (ipykernel forwards file descriptor 2 into the cell). A JVM that fails to
  start is reported in one line with the cause read from that log;
- ``SPARK_LOCAL_IP=127.0.0.1`` when the machine's hostname resolves to a loopback address and the master
  is local: the address Spark would pick itself, without its two-line warning about it.

Spark's console progress bar is off in every session we start (``spark.ui.showConsoleProgress``): progress is
drawn by :mod:`.progress`. Python warnings raised inside PySpark at our call sites (the pandas 3
FutureWarning) are filtered by category, module and message (:data:`WARNINGS`, :func:`quiet_warnings`),
never globally: the user's own warnings still show.

``--debug`` (the CLI flag, the magics' option, ``KqlMagicPlus.debug``, or ``KQLMAGIC_PLUS_DEBUG=1``) when the
JVM starts leaves all of this off: Spark's default log4j profile, the JVM writing to this process's stderr,
no warning filtered.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import os
import re
import socket
import tempfile
import threading
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from kqlmagic_plus.errors import EngineUnavailableError
from kqlmagic_plus.redaction import redact

DEBUG_ENV = "KQLMAGIC_PLUS_DEBUG"

#: The driver's log4j2 configuration when not debugging: WARN and up, to stderr (the JVM log file).
LOG4J2 = """\
status = error
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""

#: Loggers whose warnings are start-up or planning chatter, not a problem of the query: raised to ERROR.
QUIET_LOGGERS = (
    "org.apache.hadoop.util.NativeCodeLoader",  # "Unable to load native-hadoop library"
    "org.apache.spark.util.Utils",  # "Your hostname ... resolves to a loopback address"
    "org.apache.spark.sql.catalyst.util.SparkStringUtils",  # "Truncated the string representation of a plan"
    "org.apache.spark.util.SparkStringUtils",
    "org.apache.spark.sql.execution.window.WindowExec",  # "No Partition Defined for Window operation"
    "org.apache.spark.sql.connect.service.SparkConnectService",
    "org.sparkproject.jetty",
    "io.netty",
)

#: Python warnings raised inside PySpark that say nothing about the user's query: (category, module, message)
#: regular expressions as :func:`warnings.filterwarnings` takes them.
WARNINGS: tuple[tuple[type[Warning], str, str], ...] = (
    (FutureWarning, r"pyspark(\.|$)", r"PySpark does not yet fully support pandas"),
    (UserWarning, r"pyspark(\.|$)", r"createDataFrame attempted Arrow optimization"),
    (DeprecationWarning, r"pyspark(\.|$)", r""),
    (ResourceWarning, r"pyspark(\.|$)|py4j(\.|$)", r""),
)

#: Lines of a JVM's output that are never the cause of a failed start.
_NOISE = re.compile(r"WARNING: Using incubator modules|Using Spark's default log4j profile|Setting default log level|"
                    r"To adjust logging level|NativeCodeLoader|resolves to a loopback address|SPARK_LOCAL_IP|"
                    r"^\s*at |^\s*\.\.\. \d+ more|^\s*$")
#: The JVM's closing lines after the one that says why it did not start.
_GENERIC = re.compile(r"Could not create the Java Virtual Machine|A fatal exception has occurred|"
                      r"Error occurred during initialization of VM|^\S+ \S+ (WARN|INFO|DEBUG) ")
#: A Java exception's message, on the line that names it.
_EXCEPTION = re.compile(r"Exception in thread \S+ (.+)|Caused by: (.+)")

_lock = threading.Lock()
_state: dict[str, Any] = {}


def debug() -> bool:
    """Whether everything is to be shown: a ``--debug`` cell or command, ``KqlMagicPlus.debug``, or the
    ``KQLMAGIC_PLUS_DEBUG`` environment variable."""
    from kqlmagic_plus import errors

    return bool(errors.DEBUG) or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def jvm_log() -> str | None:
    """The file the driver JVM started here writes its output to (None when it writes to stderr, under
    ``--debug``, or when no JVM was started here)."""
    return _state.get("log")


def _private_dir() -> str:
    """A folder of this user's only (0700) for the log4j2 file and the JVM logs: another user of the machine
    must not be able to plant the configuration our JVM reads."""
    base = tempfile.gettempdir()
    uid = getattr(os, "getuid", lambda: None)()
    if uid is None:  # Windows: the user's own temp folder already
        return base
    path = os.path.join(base, f"kqlmp-spark-{uid}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if not os.path.isdir(path) or os.path.islink(path) or st.st_uid != uid or st.st_mode & 0o077:
        path = _state.get("own_dir") or tempfile.mkdtemp(prefix="kqlmp-spark-")
        _state["own_dir"] = path
    return path


def log4j2_file() -> str:
    """Our log4j2 properties file (one per content, shared by this user's processes)."""
    with _lock:
        path = _state.get("log4j2")
        if path and os.path.exists(path):
            return path
        text = LOG4J2 + "".join(f"logger.q{i}.name = {name}\nlogger.q{i}.level = error\n"
                                for i, name in enumerate(QUIET_LOGGERS))
        folder = _private_dir()
        path = os.path.join(folder, f"log4j2-{hashlib.sha256(text.encode()).hexdigest()[:12]}.properties")
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(prefix=".log4j2-", dir=folder)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, path)  # whole or absent, for a process starting at the same moment
        _state["log4j2"] = path
        return path


def _sweep(folder: str) -> None:
    """Remove the JVM logs of processes that are gone (a kernel killed by a restart runs no exit handler)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            m = re.match(r"jvm-(\d+)-.*\.log$", name)
            if not m or int(m.group(1)) == os.getpid():
                continue
            try:
                os.kill(int(m.group(1)), 0)
            except ProcessLookupError:
                _remove(os.path.join(folder, name))
            except OSError:
                pass  # alive, another user's pid number: left alone


def session_conf(conf: Mapping[str, str], *, quiet: bool | None = None) -> dict[str, str]:
    """*conf* with what a quiet driver needs: no console progress bar, and (unless *quiet* is False, or
    debugging) our log4j2 file in ``spark.driver.extraJavaOptions``, after any options given there."""
    out = {**conf, "spark.ui.showConsoleProgress": "false"}
    if quiet is None:
        quiet = not debug()
    if quiet:
        given = str(out.get("spark.driver.extraJavaOptions") or "")
        own = os.path.join(os.environ.get("SPARK_CONF_DIR") or "/nonexistent", "log4j2.properties")
        # The user's own log4j2 configuration (in the options, or in SPARK_CONF_DIR) wins over ours.
        if "log4j.configurationFile" not in given and "log4j2.configurationFile" not in given and \
                not os.path.exists(own):
            opt = f"-Dlog4j.configurationFile=file:{log4j2_file()}"
            out["spark.driver.extraJavaOptions"] = f"{given} {opt}".strip()
    return out


def _loopback_hostname() -> bool:
    try:
        return socket.gethostbyname(socket.gethostname()).startswith("127.")
    except OSError:
        return False


def launch(conf: Mapping[str, str]) -> None:
    """Start the driver JVM for a session with *conf* (``spark.master`` included), as PySpark would, but with
    its output in :func:`jvm_log` unless debugging; nothing when a gateway is already up (or given by
    ``PYSPARK_GATEWAY_PORT``). A JVM that exits before it answers is an EngineUnavailableError naming the
    cause from its output."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return
    loud = debug()
    sconf = SparkConf(loadDefaults=False)
    for k, v in conf.items():
        sconf.set(k, v)
    env_set = None
    master = str(conf.get("spark.master") or "")
    if (master.startswith("local") and "SPARK_LOCAL_IP" not in os.environ and not conf.get("spark.driver.host")
            and not conf.get("spark.driver.bindAddress") and _loopback_hostname()):
        env_set = os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    log_path = None
    fd = None
    popen: dict[str, Any] = {}  # PySpark adds its own keys (stdin, env) to it
    if not loud:
        folder = _private_dir()
        _sweep(folder)
        fd, log_path = tempfile.mkstemp(prefix=f"jvm-{os.getpid()}-", suffix=".log", dir=folder)
        popen = {"stdout": fd, "stderr": fd}
    try:
        gateway = launch_gateway(sconf, popen_kwargs=popen)
    except Exception as exc:
        cause = failure_cause(log_path) if log_path else None
        if log_path:
            _remove(log_path)
        why = cause or redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise EngineUnavailableError(f"local Spark did not start: the Java process exited: {why} "
                                     "(--debug shows all of its output)") from None
    finally:
        if fd is not None:
            os.close(fd)  # the JVM has its own copy
        if env_set is not None:
            os.environ.pop("SPARK_LOCAL_IP", None)  # for the child only: this process's env stays the user's
    SparkContext._ensure_initialized(gateway=gateway)
    old = _state.pop("log", None)  # the log of a JVM that is gone (a new one starts only then)
    if old and old != log_path:
        _remove(old)
    if log_path is not None:
        _state["log"] = log_path
        atexit.register(_remove, log_path)


def failure_cause(path: str | None) -> str | None:
    """The line of a JVM's output that says why it did not start (redacted): the first one that is neither
    start-up chatter nor the JVM's closing "Could not create the Java Virtual Machine"."""
    try:
        with open(path or "", encoding="utf-8", errors="replace") as fh:
            lines = [ln.strip() for ln in fh.read().splitlines()[-200:]]
    except OSError:
        return None
    useful = [ln for ln in lines if not _NOISE.search(ln)]
    specific = [ln for ln in useful if not _GENERIC.search(ln)]
    found = (specific or useful or [""])[0]
    m = _EXCEPTION.search(found)
    if m:
        found = next(g for g in m.groups() if g)
    return redact(found)[:300] or None


def log_tail(n: int = 5) -> list[str]:
    """The last *n* meaningful lines the driver JVM wrote (for a notice about a JVM that died)."""
    path = jvm_log()
    if not path:
        return []
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()[-400:]
    except OSError:
        return []
    return [redact(ln)[:300] for ln in lines if not _NOISE.search(ln)][-n:]


@contextlib.contextmanager
def quiet_warnings() -> Iterator[None]:
    """PySpark's own warnings (:data:`WARNINGS`) not shown while our code calls into it; all shown under
    ``--debug``. Only these categories from these modules: the user's warnings are untouched."""
    if debug():
        yield
        return
    with warnings.catch_warnings():
        for category, module, message in WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category, module=module)
        yield


def get_or_create(builder: Any, conf: Mapping[str, str]) -> Any:
    """``builder.getOrCreate()`` with the JVM launched quietly first (:func:`launch`); *conf* holds what was
    set on the builder (``spark.master`` included), to start the JVM with."""
    with quiet_warnings():
        launch(conf)
        return builder.getOrCreate()


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
