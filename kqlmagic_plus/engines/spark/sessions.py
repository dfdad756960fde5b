"""Spark sessions: where ``%%sparkhunt`` runs, one session per target, kept and reused.

Targets (``%sparkhunt --connect TARGET``):

=================================  ==============================================================
``local[N]`` / ``local[*]``        Spark in this process (needs Java 17+). The default target.
``sc://host:port/;token=...``      a Spark Connect server (``pyspark[connect]``); the token is never shown
``spark://host:port``              a Spark standalone cluster: the driver runs in this process, the executors on
                                   the cluster's workers (see :class:`StandaloneSession`)
``synapse://<workspace>/<pool>``   an Azure Synapse Spark pool through its Livy API (see :mod:`.livy`)
=================================  ==============================================================

A JVM holds one local SparkContext: asking for ``local[4]`` while ``local[2]`` runs stops the old
one first (said in a notice); ``local`` alone (or the default) reuses whatever local session runs. A
session found dead at the start of a cell (the JVM killed or crashed, stopped, a Spark Connect server
restarted, a Synapse session expired) is replaced by a new one, with a one-line notice saying what
happened, what is started instead and what was lost; the lake is registered again. A local JVM that
dies takes PySpark's py4j gateway and its SparkContext/SparkSession singletons with it: they are reset
(:func:`reset_local_pyspark`) so the new session launches a new JVM. A query running when the JVM dies
fails at once with that line. Spark Connect sessions leave no Connect state behind when they fail or
stop (``SPARK_CONNECT_MODE_ENABLED``, the client's default session), and a local session starts in
classic mode whatever the environment says (``SPARK_REMOTE``, ``spark.remote``).

Local sessions get defaults sized to the machine (:func:`local_defaults`): the driver memory (half the
RAM, at least 1 GB) and ``spark.sql.shuffle.partitions`` (twice the cores); the settings
``KqlMagicPlus.spark_driver_memory`` / ``spark_shuffle_partitions`` and any ``--conf`` override them.

Sessions run with ``spark.sql.session.timeZone=UTC`` (KQL datetimes are UTC; the KQL compiler's SQL
relies on it) and with Spark's console progress bar off (``%%sparkhunt`` draws its own).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import sys
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kqlmagic_plus.engines.spark import errors as spark_errors
from kqlmagic_plus.engines.spark import quiet
from kqlmagic_plus.engines.spark.handle import BASE_CONF, RUNTIME_CONF, Say, SparkHandle, Target
from kqlmagic_plus.engines.spark.jvm import (  # noqa: F401 - re-exported: the local JVM's helpers
    _answers,
    _looks_like_io,
    _quiet_py4j,
    _require_pyspark,
    classic_mode,
    describe_exit,
    java_version,
    jvm_exit,
    jvm_exit_soon,
    reset_local_pyspark,
)
from kqlmagic_plus.engines.spark.progress import ConnectProgressHandler, ProgressSink, StatusTrackerWatcher
from kqlmagic_plus.errors import (
    AuthError,
    EngineUnavailableError,
    KqlMagicPlusError,
    OptionError,
    QueryCancelledError,
    RemoteError,
)
from kqlmagic_plus.redaction import redact

LOCAL_DEFAULT = "local[*]"
_LOCAL = re.compile(r"^local(\[(\*|\d+)(,\s*\d+)?\])?$", re.IGNORECASE)
#: A standalone master, or several (``spark://h1:7077,h2:7077``, for a master with standby ones).
_STANDALONE = re.compile(r"^spark://[A-Za-z0-9._\[\]:-]+(,[A-Za-z0-9._\[\]:-]+)*/?$")
#: Target kinds whose driver is a SparkContext in this process: one per process, so they share one slot.
IN_PROCESS_KINDS = ("local", "standalone")


def local_defaults(*, memory: int | None = None, cores: int | None = None) -> dict[str, str]:
    """The settings a local session gets unless a ``--conf`` says otherwise, sized to the machine.

    ``spark.driver.memory``: ``KqlMagicPlus.spark_driver_memory``, or ('auto') half of *memory* (the
    RAM this process may use, cgroup limits included), at least 1 GB, in whole GB from 4 GB.
    ``spark.sql.shuffle.partitions``: ``KqlMagicPlus.spark_shuffle_partitions``, or (0) twice *cores*
    (the local session's threads: N of ``local[N]``, else the cores this process may use), at least 2.
    """
    from kqlmagic_plus.config import settings

    cfg = settings()
    driver = str(cfg.spark_driver_memory or "auto").strip()
    if driver.lower() == "auto":
        if memory is None:
            from kqlmagic_plus.engines.limits import total_memory

            memory = total_memory()
        mb = max(1024, memory // 2 // 2**20)
        driver = f"{mb // 1024}g" if mb >= 4096 or mb % 1024 == 0 else f"{mb}m"
    partitions = int(cfg.spark_shuffle_partitions or 0)
    if partitions <= 0:
        partitions = max(2, 2 * (cores if cores is not None else machine_cores()))
    return {"spark.driver.memory": driver, "spark.sql.shuffle.partitions": str(partitions)}


def machine_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _threads(master: str) -> int | None:
    m = _LOCAL.match(master)
    return int(m.group(2)) if m and m.group(2) and m.group(2).isdigit() else None


# -- targets ----------------------------------------------------------------------------------------


def parse_target(text: str | None) -> Target:
    """A ``--connect`` value as a :class:`Target`; an unknown form is an OptionError naming the forms."""
    raw = (text or "").strip()
    if not raw:
        return Target("local", LOCAL_DEFAULT, LOCAL_DEFAULT, "local", any_local=True)
    if _LOCAL.match(raw):
        master = raw.lower().replace(" ", "")
        return Target("local", master, master, "local", any_local=(master == "local"))
    if _STANDALONE.match(raw):
        master = raw.rstrip("/")
        return Target("standalone", master, master, f"standalone:{master}")
    if raw.lower().startswith("sc://"):
        display, secret = redact_connect_url(raw)
        digest = hashlib.sha256(secret.encode()).hexdigest()[:12] if secret else ""
        return Target("connect", raw, display, f"connect:{display}:{digest}")
    if raw.lower().startswith("synapse://"):
        from kqlmagic_plus.engines.spark.livy import parse_synapse

        syn = parse_synapse(raw)
        return Target("synapse", raw, syn.display, syn.key)
    raise OptionError(f"--connect {_preview(redact(raw))!r} is not a Spark target. Use local[N] (or local[*]), "
                      "spark://host:port for a standalone cluster, sc://host:port for Spark Connect, or "
                      "synapse://<workspace>/<pool> for Azure Synapse")


def redact_connect_url(url: str) -> tuple[str, str]:
    """``sc://host:port/;token=...;k=v`` without secret values (nor a ``user:password@``), and the secret
    text (for keys)."""
    from kqlmagic_plus.connections.spec import REDACTED, is_secret, normalize_key

    head, sep, params = url.partition("/;")
    if not sep:
        head, sep, params = url.partition(";")
    shown, secrets = [], []
    for part in params.split(";") if params else []:
        if not part:
            continue
        k, eq, v = part.partition("=")
        if eq and (is_secret(normalize_key(k), v) or normalize_key(k) in ("authorization", "xauthorization")):
            shown.append(f"{k}={REDACTED}")
            secrets.append(v)
        else:
            shown.append(part)
    display = redact(head.rstrip("/") + ("/;" + ";".join(shown) if shown else ""))
    if redact(head) != head:
        secrets.append(head)  # a user:password@ in the host part
    return display, "\0".join(secrets)


def _preview(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


# -- sessions ---------------------------------------------------------------------------------------


class InProcessSession(SparkHandle):
    """A PySpark session object in this process: local (classic) or a Spark Connect client."""

    def __init__(self, target: Target, conf: Mapping[str, str] | None = None):
        super().__init__(target, conf)
        self._spark: Any = None
        self._running: str | None = None
        #: The tag of the job cancel() was called for.
        self._cancelled: str | None = None

    @property
    def spark(self) -> Any:
        return self._spark

    def stop(self) -> None:
        if self._spark is not None:
            with contextlib.suppress(Exception):
                self._spark.stop()
        self._spark = None

    def run_cell(self, mode: str, code: str, *, namespace: dict[str, Any] | None, limit: int | None,
                 to_lake: str | None, overwrite: bool, lake_spec: dict[str, Any] | None,
                 progress: Callable[[], ProgressSink], what: str = "",
                 tables: Iterable[str] | None = None) -> dict[str, Any]:
        from kqlmagic_plus.engines.spark import remote

        spark = self._spark
        self.cells += 1
        if to_lake and "://" not in to_lake and not to_lake.lower().startswith("file:"):
            # Resolved here, against this Python's working directory: the JVM's (the driver's, after an
            # os.chdir in the notebook) or an executor's (on a cluster) is another one.
            to_lake = os.path.abspath(os.path.expanduser(to_lake))
        if lake_spec:
            made = self.job(lambda: remote.register_lake(spark, lake_spec), progress, "", what="the lake views")
            if namespace is not None and mode == "pyspark":
                for t in lake_spec.get("tables", []):
                    namespace[t["name"]] = spark.table(t["name"])
            self.lake_warnings = list(made.get("warnings") or [])
        return self.job(lambda: remote.run_cell(spark, mode, code, namespace, limit, to_lake, overwrite),
                        progress, code, what=what, tables=tables)

    def list_folders(self, uri: str) -> list[str]:
        from kqlmagic_plus.engines.spark import remote

        try:
            return remote.list_folders(self._spark, uri)
        except RuntimeError as exc:
            if str(exc) == "NO_JVM":
                raise OptionError(f"--lake {uri}: a Spark Connect client cannot list folders. Give the export "
                                  "containers themselves, comma-separated (abfss://am-signinlogs@<account>.dfs."
                                  "core.windows.net/,abfss://am-securityevent@...)") from None
            raise

    def job(self, fn: Callable[[], Any], progress: Callable[[], ProgressSink], code: str, *, what: str = "",
            tables: Iterable[str] | None = None) -> Any:
        """Run *fn* as one tagged Spark job: progress shown, Ctrl-C cancels it, errors made readable."""
        tag = "kqlmp-" + uuid.uuid4().hex[:12]
        sink = progress()
        watcher = self._begin(tag, sink)
        _quiet_query_context_loggers()
        interrupts = _Py4jInterruptFilter()
        root = logging.getLogger()
        root.addFilter(interrupts)
        py4j_quiet = _quiet_py4j()
        py4j_quiet.__enter__()
        self._running = tag
        try:
            with quiet.quiet_warnings():  # PySpark's own (the pandas 3 FutureWarning), not the user's
                return fn()
        except KeyboardInterrupt:
            self._cancel(tag)
            raise QueryCancelledError(spark_errors.CANCELLED) from None
        except KqlMagicPlusError:
            raise
        except Exception as exc:
            if self._cancelled == tag:
                raise QueryCancelledError(spark_errors.CANCELLED) from None
            reason = self._loss(exc)
            if reason is not None:
                self.lost = reason
                raise RemoteError(self._lost_while_running(reason)) from None
            raise spark_errors.translate(exc, code, what=what, tables=tables) from None
        finally:
            self._running = None
            with contextlib.suppress(Exception):
                watcher()
            with contextlib.suppress(Exception):
                self._end(tag)
            root.removeFilter(interrupts)
            py4j_quiet.__exit__(None, None, None)

    def _loss(self, exc: BaseException) -> str | None:
        """Why the session is gone, when *exc* comes from losing it (not from the query); else None."""
        if spark_errors.is_connection_loss(exc):
            return self.alive()
        return None

    def _lost_while_running(self, reason: str) -> str:
        return (f"Spark: {reason} while the cell ran; the cell failed. The next cell starts a new session "
                "(temp views and cached tables of this one are lost).")

    def cancel(self) -> None:
        tag = self._running
        if tag is None:
            return
        self._cancelled = tag
        self._cancel(tag)

        def again() -> None:
            # A cancel reaches only the jobs running at that instant; a statement may not have
            # started its first job yet, or start another after (a broadcast, then the join).
            while self._running == tag:
                time.sleep(0.25)
                if self._running == tag:
                    self._cancel(tag)

        threading.Thread(target=again, name="kqlmagic-plus-spark-cancel", daemon=True).start()

    @abstractmethod
    def _begin(self, tag: str, sink: ProgressSink) -> Callable[[], None]:
        """Tag the jobs this thread starts, start progress; returns the function that stops progress."""

    @abstractmethod
    def _end(self, tag: str) -> None: ...

    @abstractmethod
    def _cancel(self, tag: str) -> None: ...


class _Py4jInterruptFilter(logging.Filter):
    """Py4J logs a traceback (through the root logger) when Ctrl-C interrupts a call; the user already
    sees "cancelled", so that record is dropped while a cell runs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "KeyboardInterrupt while sending command" not in str(record.msg)


def _quiet_query_context_loggers() -> None:
    """PySpark logs each analysis error, JVM stack included, to stderr; the cell shows it as one line instead."""
    try:
        from pyspark.logger import PySparkLogger
    except ImportError:
        return
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


class LocalSession(InProcessSession):
    """Spark in this process (classic PySpark, a local master)."""

    kind = "local"

    def start(self, say: Say) -> None:
        _require_pyspark()
        java_version()
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        started = time.monotonic()
        active = SparkContext._active_spark_context
        if jvm_exit() is not None or (active is not None and getattr(active, "_jsc", None) is not None
                                      and not _answers(active)):
            reset_local_pyspark()  # a dead JVM: its gateway and singletons would fail every cell
            active = None
        classic_mode(say)
        if active is not None and getattr(active, "_jsc", None) is not None:
            # A session started elsewhere (the user's own, or an earlier one): one per JVM, so use it.
            spark = SparkSession.builder.getOrCreate()
            master = active.master
            if not self.target.any_local and master != self.target.spec:
                say(f"Spark: a local session ({master}) already runs in this process; stopping it to start "
                    f"{self.target.spec} (temp views and cached data of the old session are gone).")
                spark.stop()
                active = None
            else:
                self._adopt(spark)
        if active is None or getattr(active, "_jsc", None) is None:
            master = self.target.spec if not self.target.any_local else LOCAL_DEFAULT
            conf = {**BASE_CONF, **self._defaults(master), **self.conf}
            self.sizing = self._sizing(conf, new_jvm=SparkContext._gateway is None)
            if not self.announced:
                say(self._starting(master))
            conf = quiet.session_conf(conf)  # our log4j2 file, no console progress bar (unless --debug)
            builder = SparkSession.builder.master(master).appName("kqlmagic_plus")
            for k, v in conf.items():
                builder = builder.config(k, v)
            try:
                spark = quiet.get_or_create(builder, {"spark.master": master, "spark.app.name": "kqlmagic_plus",
                                                      **conf})
            except KqlMagicPlusError:
                raise
            except Exception as exc:
                raise EngineUnavailableError(f"local Spark did not start: {spark_errors.translate(exc, '')}") from None
            self._spark = spark
        self._started(self._spark)
        self.start_seconds = time.monotonic() - started
        self.started_at = time.time()

    def _defaults(self, master: str) -> dict[str, str]:
        """The settings a new session gets unless a --conf says otherwise."""
        return local_defaults(cores=_threads(master))

    def _starting(self, master: str) -> str:
        return f"Spark: starting a local session ({master}, {self.sizing}); this takes 15-40 s..."

    def _started(self, spark: Any) -> None:
        """Called once the session runs (or was adopted)."""

    @staticmethod
    def _sizing(conf: Mapping[str, str], *, new_jvm: bool) -> str:
        partitions = conf.get("spark.sql.shuffle.partitions")
        parts = f"{partitions} shuffle partitions" if partitions else "shuffle partitions sized to the cluster"
        # A JVM that already runs (after --stop) keeps the memory it started with.
        return f"driver memory {conf.get('spark.driver.memory')}, {parts}" if new_jvm else parts

    def replacement(self) -> str:
        master = self.target.spec if not self.target.any_local else LOCAL_DEFAULT
        conf = {**local_defaults(cores=_threads(master)), **self.conf}
        gateway = getattr(sys.modules.get("pyspark"), "SparkContext", None)
        new_jvm = gateway is None or gateway._gateway is None or jvm_exit() is not None
        return f"starting a new local session ({master}, {self._sizing(conf, new_jvm=new_jvm)})"

    @property
    def log_tail(self) -> list[str]:
        """The driver JVM's last log lines once it died (its output goes to a file, not to the cell: they
        are the only place an OutOfMemoryError shows)."""
        if self.lost is None or "JVM" not in self.lost:
            return []
        return quiet.log_tail()

    def _adopt(self, spark: Any) -> None:
        for k, v in {**RUNTIME_CONF, **self.conf}.items():
            with contextlib.suppress(Exception):  # static settings cannot change on a running context
                spark.conf.set(k, v)
        self._spark = spark

    def alive(self) -> str | None:
        spark = self._spark
        if spark is None:
            return "not started"
        gone = jvm_exit()
        if gone is not None:
            return gone
        sc = spark.sparkContext
        jsc = getattr(sc, "_jsc", None)
        if jsc is None:
            return "the local SparkContext was stopped"
        try:
            with _quiet_py4j():
                if jsc.sc().isStopped():
                    return "the local SparkContext was stopped (out of memory, or spark.stop())"
        except Exception as exc:
            return jvm_exit_soon() or f"the local Spark JVM does not answer ({type(exc).__name__})"
        return None

    def stop(self) -> None:
        spark, self._spark = self._spark, None
        if spark is None:
            return
        if jvm_exit() is None:
            import warnings

            try:
                with _quiet_py4j(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    spark.stop()
                return
            except Exception:
                pass
        reset_local_pyspark()

    def _loss(self, exc: BaseException) -> str | None:
        gone = jvm_exit()
        if gone is None and _looks_like_io(exc) and not _answers(getattr(self._spark, "sparkContext", None)):
            gone = jvm_exit_soon()  # the sockets close a moment before the process can be reaped
        if gone is not None:
            # Whatever the error looks like (py4j, a cut Arrow stream): the JVM is gone. Its gateway and
            # singletons are reset when the next cell replaces the session (stop()).
            return gone
        return super()._loss(exc)

    def _lost_while_running(self, reason: str) -> str:
        return (f"Spark: {reason} while the cell ran; the cell failed. The next cell starts a new local session "
                "(temp views and cached tables of this one are lost).")

    def _begin(self, tag: str, sink: ProgressSink) -> Callable[[], None]:
        sc = self._spark.sparkContext
        sc.setJobGroup(tag, "kqlmagic_plus %%sparkhunt", interruptOnCancel=True)
        watcher = StatusTrackerWatcher(sc, tag, sink).start()
        return watcher.stop

    def _end(self, tag: str) -> None:
        if jvm_exit() is not None or self._spark is None:
            return
        sc = self._spark.sparkContext
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
        sc.setLocalProperty("spark.job.interruptOnCancel", None)

    def _cancel(self, tag: str) -> None:
        if jvm_exit() is not None:
            return
        with contextlib.suppress(Exception):
            self._spark.sparkContext.cancelJobGroup(tag)

    def status(self) -> dict[str, Any]:
        out = super().status()
        spark = self._spark
        if spark is not None and self.alive() is None:
            sc = spark.sparkContext
            out.update({"master": sc.master, "spark_version": spark.version, "app_id": sc.applicationId,
                        "parallelism": sc.defaultParallelism})
        return out


class StandaloneSession(LocalSession):
    """A Spark standalone cluster (``spark://host:port``): the driver is a SparkContext in this process (one a
    process, as for local sessions: they share its slot), the work runs in executors on the cluster's workers.

    Nothing assumes the executors see this machine's files beyond the lake path itself: a ``--to-lake`` path
    is made absolute here (an executor's working directory is its own), and this package's Python functions
    (the ``kqlmp_*`` UDFs some compiled SQL calls) are shipped to the executors with the jobs (``addPyFile``)
    instead of being imported from wherever the executors' Python finds them.
    """

    kind = "standalone"

    def _defaults(self, master: str) -> dict[str, str]:
        from kqlmagic_plus.config import settings

        cfg = settings()
        driver = str(cfg.spark_driver_memory or "auto").strip()
        # The driver plans and receives results; the executors hold the data (their memory is the cluster's).
        out = {"spark.driver.memory": "1g" if driver.lower() == "auto" else driver}
        if int(cfg.spark_shuffle_partitions or 0) > 0:
            out["spark.sql.shuffle.partitions"] = str(cfg.spark_shuffle_partitions)
        hosts = [h.rsplit(":", 1)[0] for h in master[len("spark://"):].split(",")]
        if all(h in ("127.0.0.1", "localhost", "[::1]") for h in hosts):
            # A cluster on this machine: executors reach the driver on loopback, not on the address the
            # hostname resolves to (and Spark does not warn that it resolves to a loopback address).
            out.update({"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1"})
        return out

    def _starting(self, master: str) -> str:
        return f"Spark: starting a session on the standalone cluster {master} ({self.sizing}); this takes 15-40 s..."

    def _started(self, spark: Any) -> None:
        sc = spark.sparkContext
        if "spark.sql.shuffle.partitions" not in self.conf and not _setting_partitions():
            # Sized to the cluster once it is known: twice the cores its executors have (Spark's 200 is for
            # big clusters; on a small one each of them is a task to schedule).
            with contextlib.suppress(Exception):
                spark.conf.set("spark.sql.shuffle.partitions", str(max(2, 2 * sc.defaultParallelism)))
        if not getattr(sc, "_kqlmp_shipped", False):  # once per SparkContext (an adopted one may have it)
            sc.addPyFile(package_zip())
            sc._kqlmp_shipped = True

    def replacement(self) -> str:
        return f"starting a new session on the standalone cluster {self.target.display}"


def _setting_partitions() -> bool:
    from kqlmagic_plus.config import settings

    return int(settings().spark_shuffle_partitions or 0) > 0


_zip_lock = threading.Lock()
_zip_path: list[str] = []


def package_zip() -> str:
    """This package's Python source as one zip (made once per process), for the executors' Python path."""
    import atexit
    import shutil
    import tempfile
    import zipfile

    with _zip_lock:
        if _zip_path and os.path.exists(_zip_path[0]):
            return _zip_path[0]
        # This file is kqlmagic_plus/engines/spark/sessions.py: the package is three folders up.
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        folder = tempfile.mkdtemp(prefix="kqlmp-pyfiles-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "kqlmagic_plus.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                for name in filenames:
                    if name.endswith(".py"):
                        full = os.path.join(dirpath, name)
                        zf.write(full, os.path.join("kqlmagic_plus", os.path.relpath(full, root)))
        _zip_path[:] = [path]
        return path


class ConnectSession(InProcessSession):
    """A Spark Connect client session (``sc://``)."""

    kind = "connect"
    #: Retries when the server cannot be reached: ~20 s in all, not the client's default 10 minutes.
    MAX_RETRIES = 6
    MAX_BACKOFF_MS = 8000

    def start(self, say: Say) -> None:
        with quiet.quiet_warnings():  # importing the client warns about pandas 3 (PySpark's, not the user's)
            _require_pyspark(connect=True)
        from pyspark import SparkContext
        from pyspark.sql.connect.session import SparkSession as RemoteSession

        if SparkContext._active_spark_context is None:
            # What SparkSession.builder.remote() sets: pyspark.sql.functions in the user's cells then
            # build Spark Connect columns. Left alone while a local session runs in this process;
            # taken back when the last Connect session stops or fails to start.
            _hold_connect_mode(self)

        started = time.monotonic()
        try:
            with quiet.quiet_warnings():
                spark = RemoteSession.builder.remote(self.target.spec).create()
        except Exception as exc:
            _release_connect_mode(self)
            raise OptionError(f"--connect {self.target.display}: {spark_errors.translate(exc, '')}") from None
        self._bound_retries(spark)
        try:
            for k, v in {**RUNTIME_CONF, **self.conf}.items():
                spark.conf.set(k, v)
            self.version = spark.version
        except Exception as exc:
            _discard_connect(spark)
            _release_connect_mode(self)
            raise self._connect_error(exc) from None
        self._spark = spark
        self.start_seconds = time.monotonic() - started
        self.started_at = time.time()

    def stop(self) -> None:
        spark, self._spark = self._spark, None
        if spark is not None:
            if self.lost is not None:
                _discard_connect(spark)  # the server forgot the session: nothing to release there
            else:
                with contextlib.suppress(Exception):
                    spark.stop()
        _release_connect_mode(self)

    def replacement(self) -> str:
        return "opening a new session on it"

    def _bound_retries(self, spark: Any) -> None:
        try:
            from pyspark.sql.connect.client.retries import DefaultPolicy

            spark.client.set_retry_policies([DefaultPolicy(max_retries=self.MAX_RETRIES,
                                                           max_backoff=self.MAX_BACKOFF_MS)])
        except Exception:
            # Older clients keep their own policy: slower to give up, nothing worse.
            pass

    def _connect_error(self, exc: BaseException) -> KqlMagicPlusError:
        text = str(exc)
        if "UNAUTHENTICATED" in text or "authentication" in text.lower():
            return AuthError(f"the Spark Connect server at {self.target.display} refused the token "
                             "(UNAUTHENTICATED)", hint="Check the token=... part of the sc:// URL.")
        if _unreachable(text):
            detail = re.search(r'details = "([^"]*)"', text)
            return RemoteError(f"cannot reach the Spark Connect server at {self.target.display}"
                               + (f": {detail.group(1)}" if detail else ""),
                               hint="Is the server running (start-connect-server.sh), and is host:port right? "
                                    "A token without use_ssl=true is sent only to localhost.")
        return RemoteError(f"Spark Connect {self.target.display}: {spark_errors.translate(exc, '')}")

    #: Set when a check could not reach the server: the next check opens a new session instead of waiting
    #: out the old channel's reconnect backoff (a restarted server does not know the old session anyway).
    unreachable = False

    def alive(self) -> str | None:
        spark = self._spark
        if spark is None:
            return "not started"
        if self.unreachable:
            return (f"the Spark Connect server at {self.target.display} could not be reached by the last cell (it "
                    "stopped or restarted)")
        if getattr(spark, "is_stopped", False):
            # Stopped, or closed by the client itself on seeing a restarted server's new session id.
            return (f"the Spark Connect session on {self.target.display} was closed (the server restarted, or "
                    "the session was stopped)")
        try:
            spark.conf.get("spark.sql.session.timeZone")
        except Exception as exc:
            text = str(exc)
            if any(m in text for m in ("SESSION_CLOSED", "SESSION_NOT_FOUND", "SESSION_CHANGED", "NO_ACTIVE_SESSION",
                                       "incorrect server side session identifier")):
                return (f"the Spark Connect server at {self.target.display} no longer knows this session (it "
                        "restarted, or the session expired)")
            if _unreachable(text):
                self.unreachable = True
            raise self._connect_error(exc) from None
        return None

    def _begin(self, tag: str, sink: ProgressSink) -> Callable[[], None]:
        spark = self._spark
        spark.addTag(tag)
        handler = ConnectProgressHandler(sink)
        try:
            spark.registerProgressHandler(handler)
        except Exception:
            handler = None

        def stop() -> None:
            if handler is not None:
                with contextlib.suppress(Exception):
                    spark.removeProgressHandler(handler)
            sink.close()

        return stop

    def _end(self, tag: str) -> None:
        self._spark.removeTag(tag)

    def _cancel(self, tag: str) -> None:
        with contextlib.suppress(Exception):
            self._spark.interruptTag(tag)

    def status(self) -> dict[str, Any]:
        out = super().status()
        if self._spark is not None and not getattr(self._spark, "is_stopped", True):
            out.update({"spark_version": getattr(self, "version", None), "session_id": self._spark.session_id})
        return out


def _unreachable(text: str) -> bool:
    return "UNAVAILABLE" in text or "RETRIES_EXCEEDED" in text or "failed to connect" in text


#: The Connect sessions that set SPARK_CONNECT_MODE_ENABLED (it goes when the last one stops).
_connect_mode_holders: set[int] = set()


def _hold_connect_mode(session: Any) -> None:
    if "SPARK_CONNECT_MODE_ENABLED" not in os.environ:
        os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
        _connect_mode_holders.add(id(session))
    elif _connect_mode_holders:
        _connect_mode_holders.add(id(session))


def _release_connect_mode(session: Any) -> None:
    if id(session) in _connect_mode_holders:
        _connect_mode_holders.discard(id(session))
        if not _connect_mode_holders:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


def _discard_connect(spark: Any) -> None:
    """Drop a Spark Connect client session without asking the server anything (it cannot be reached, or
    forgot the session): the channel is closed and the client's default/active session cleared, so no
    later builder picks it up."""
    with contextlib.suppress(Exception):
        spark.release_session_on_close = False
    with contextlib.suppress(Exception):
        spark.stop()
    with contextlib.suppress(Exception):
        from pyspark.sql.connect.session import SparkSession as RemoteSession

        if RemoteSession._default_session is spark:
            RemoteSession._default_session = None
        if getattr(RemoteSession._active_session, "session", None) is spark:
            RemoteSession._active_session.session = None


def make_session(target: Target, conf: Mapping[str, str] | None = None) -> SparkHandle:
    if target.kind == "local":
        return LocalSession(target, conf)
    if target.kind == "standalone":
        return StandaloneSession(target, conf)
    if target.kind == "connect":
        return ConnectSession(target, conf)
    from kqlmagic_plus.engines.spark.livy import SynapseSession

    return SynapseSession(target, conf)


# -- the registry -----------------------------------------------------------------------------------


def _running_master(session: SparkHandle) -> str:
    """The master an in-process session's SparkContext runs on: a session asked for as plain `local` may have
    adopted a `local[2]` one started elsewhere (the user's own), which `--connect local[2]` must reuse, not stop."""
    try:
        return str(session.spark.sparkContext.master)
    except Exception:  # no context to ask: what the session was asked for
        return session.target.spec


class SessionManager:
    """The sessions of this process, by target; the current one is where cells run."""

    def __init__(self) -> None:
        self._sessions: dict[str, SparkHandle] = {}
        self._current: str | None = None
        self._lock = threading.RLock()

    def connect(self, text: str | None, *, conf: Mapping[str, str] | None = None, say: Say = print) -> SparkHandle:
        """The session for *text* (started, or reused when alive); it becomes the current one."""
        target = parse_target(text)
        with self._lock:
            key = target.key
            if target.kind in IN_PROCESS_KINDS:
                key = "local"
            session = self._sessions.get(key)
            # One SparkContext per process: a local or standalone target other than the running one stops it.
            if session is not None and target.kind in IN_PROCESS_KINDS and (session.kind != target.kind or (
                    not target.any_local and _running_master(session) != target.spec and session.alive() is None)):
                if session.alive() is None:
                    say(f"Spark: stopping the session on {session.target.display} to start {target.display} "
                        "(one SparkContext per process).")
                session.stop()
                self._sessions.pop(key, None)
                session = None
            if session is not None:
                reason = session.lost or session.alive()
                if reason is not None:  # replaced first: a --conf cannot be applied to a dead session
                    session = self._replace(key, session, reason, say, conf=conf)
                elif conf and any(session.conf.get(k) != v for k, v in conf.items()):
                    self._apply_conf(session, conf, say)
            else:
                session = make_session(target, conf)
                session.start(say)
                self._sessions[key] = session
            self._current = key
            return session

    def _apply_conf(self, session: SparkHandle, conf: Mapping[str, str], say: Say) -> None:
        spark = session.spark
        if spark is None:
            say("Spark: --conf applies when a Synapse session starts; stop this one (--stop) to change it.")
            return
        for k, v in conf.items():
            try:
                spark.conf.set(k, v)
                session.conf[k] = v
            except Exception as exc:
                raise OptionError(f"--conf {k}={v}: {spark_errors.translate(exc, '')} (static settings need a new "
                                  "session: %sparkhunt --stop, then --connect with --conf)") from None

    def _replace(self, key: str, old: SparkHandle, reason: str, say: Say,
                 conf: Mapping[str, str] | None = None) -> SparkHandle:
        old.lost = old.lost or reason  # nothing is asked of what is gone (a Connect release, a py4j stop)
        with contextlib.suppress(Exception):
            old.stop()  # a dead local JVM: PySpark's gateway and singletons are reset here
        new = make_session(old.target, {**old.conf, **(conf or {})})
        new.announced = True
        what = reason if old.target.display in reason or old.kind in IN_PROCESS_KINDS else \
            f"the session on {old.target.display} is gone ({reason})"
        say(f"Spark: {what}; {new.replacement()} (temp views, cached tables and DataFrames of the old session "
            "are lost; " + ("the lake is registered again)." if old.lake is not None else "run earlier cells "
                            "again if this one needs them)."))
        if hasattr(old, "log_tail") and old.log_tail:  # a Synapse session's last log lines, when it died
            say("Last log lines of the old session:\n" + "\n".join(f"  {ln}" for ln in old.log_tail))
        new.start(say)
        new.lake = old.lake
        self._sessions[key] = new
        return new

    def current(self, *, say: Say = print) -> SparkHandle:
        """The current session (the default local one if none), replaced with a notice when lost."""
        with self._lock:
            if self._current is None or self._current not in self._sessions:
                return self.connect(None, say=say)
            session = self._sessions[self._current]
            reason = session.lost or session.alive()
            if reason is None:
                return session
            return self._replace(self._current, session, reason, say)

    def peek(self) -> SparkHandle | None:
        """The current session without starting or checking anything."""
        return self._sessions.get(self._current) if self._current else None

    def stop(self, text: str | None = None) -> list[str]:
        """Stop the session on *text* (default: the current one); the targets stopped."""
        with self._lock:
            if text:
                target = parse_target(text)
                keys = ["local" if target.kind in IN_PROCESS_KINDS else target.key]
            else:
                keys = [self._current] if self._current else []
            stopped = []
            for key in keys:
                session = self._sessions.pop(key, None)
                if session is None:
                    continue
                session.stop()
                stopped.append(session.target.display)
                if self._current == key:
                    self._current = None
            return stopped

    def stop_all(self) -> None:
        with self._lock:
            for session in list(self._sessions.values()):
                with contextlib.suppress(Exception):
                    session.stop()
            self._sessions.clear()
            self._current = None

    def forget(self) -> None:
        """Drop every session without stopping it (the sessions stay usable for whoever made them)."""
        with self._lock:
            self._sessions.clear()
            self._current = None

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = []
            for key, session in self._sessions.items():
                try:
                    row = session.status()
                except KqlMagicPlusError as exc:
                    row = {"target": session.target.display, "kind": session.kind, "state": str(exc)}
                row["current"] = key == self._current
                rows.append(row)
            return rows


_manager = SessionManager()


def manager() -> SessionManager:
    return _manager
