"""Spark sessions: where ``%%sparkhunt`` runs, one session per target, kept and reused.

Targets (``%sparkhunt --connect TARGET``):

=================================  ==============================================================
``local[N]`` / ``local[*]``        Spark in this process (needs Java 17+). The default target.
``sc://host:port/;token=...``      a Spark Connect server (``pyspark[connect]``); the token is never shown
``synapse://<workspace>/<pool>``   an Azure Synapse Spark pool through its Livy API (see :mod:`.livy`)
=================================  ==============================================================

A JVM holds one local SparkContext: asking for ``local[4]`` while ``local[2]`` runs stops the old
one first (said in a notice); ``local`` alone (or the default) reuses whatever local session runs. A
session found dead at the start of a cell (stopped, server restarted, Synapse session expired) is
replaced by a new one, with a notice saying what was lost; the lake is registered again.

Sessions run with ``spark.sql.session.timeZone=UTC`` (KQL datetimes are UTC; the KQL compiler's SQL
relies on it) and with Spark's console progress bar off (``%%sparkhunt`` draws its own).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from kqlmagic_plus.engines.spark import errors as spark_errors
from kqlmagic_plus.engines.spark.handle import BASE_CONF, RUNTIME_CONF, Say, SparkHandle, Target
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


# -- targets ----------------------------------------------------------------------------------------


def parse_target(text: str | None) -> Target:
    """A ``--connect`` value as a :class:`Target`; an unknown form is an OptionError naming the forms."""
    raw = (text or "").strip()
    if not raw:
        return Target("local", LOCAL_DEFAULT, LOCAL_DEFAULT, "local", any_local=True)
    if _LOCAL.match(raw):
        master = raw.lower().replace(" ", "")
        return Target("local", master, master, "local", any_local=(master == "local"))
    if raw.lower().startswith("sc://"):
        display, secret = redact_connect_url(raw)
        digest = hashlib.sha256(secret.encode()).hexdigest()[:12] if secret else ""
        return Target("connect", raw, display, f"connect:{display}:{digest}")
    if raw.lower().startswith("synapse://"):
        from kqlmagic_plus.engines.spark.livy import parse_synapse

        syn = parse_synapse(raw)
        return Target("synapse", raw, syn.display, syn.key)
    raise OptionError(f"--connect {_preview(redact(raw))!r} is not a Spark target. Use local[N] (or local[*]), "
                      "sc://host:port for Spark Connect, or synapse://<workspace>/<pool> for Azure Synapse")


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
        quiet = _Py4jInterruptFilter()
        root = logging.getLogger()
        root.addFilter(quiet)
        self._running = tag
        try:
            return fn()
        except KeyboardInterrupt:
            self._cancel(tag)
            raise QueryCancelledError(spark_errors.CANCELLED) from None
        except KqlMagicPlusError:
            raise
        except Exception as exc:
            if self._cancelled == tag:
                raise QueryCancelledError(spark_errors.CANCELLED) from None
            if spark_errors.is_connection_loss(exc):
                reason = self.alive()
                if reason is not None:
                    self.lost = reason
                    raise RemoteError(f"the Spark session ({self.target.display}) was lost: {reason}. "
                                      "The next cell starts a new one.") from None
            raise spark_errors.translate(exc, code, what=what, tables=tables) from None
        finally:
            self._running = None
            root.removeFilter(quiet)
            with contextlib.suppress(Exception):
                watcher()
            with contextlib.suppress(Exception):
                self._end(tag)

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
            say(f"Spark: starting a local session ({master}); this takes 15-40 s...")
            builder = SparkSession.builder.master(master).appName("kqlmagic_plus")
            for k, v in {**BASE_CONF, **self.conf}.items():
                builder = builder.config(k, v)
            try:
                spark = builder.getOrCreate()
            except Exception as exc:
                raise EngineUnavailableError(f"local Spark did not start: {spark_errors.translate(exc, '')}") from None
            self._spark = spark
        self.start_seconds = time.monotonic() - started
        self.started_at = time.time()

    def _adopt(self, spark: Any) -> None:
        for k, v in {**RUNTIME_CONF, **self.conf}.items():
            with contextlib.suppress(Exception):  # static settings cannot change on a running context
                spark.conf.set(k, v)
        self._spark = spark

    def alive(self) -> str | None:
        spark = self._spark
        if spark is None:
            return "not started"
        sc = spark.sparkContext
        jsc = getattr(sc, "_jsc", None)
        if jsc is None:
            return "the local SparkContext was stopped"
        try:
            if jsc.sc().isStopped():
                return "the local SparkContext was stopped"
        except Exception as exc:
            return f"the local Spark JVM does not answer ({type(exc).__name__})"
        return None

    def _begin(self, tag: str, sink: ProgressSink) -> Callable[[], None]:
        sc = self._spark.sparkContext
        sc.setJobGroup(tag, "kqlmagic_plus %%sparkhunt", interruptOnCancel=True)
        watcher = StatusTrackerWatcher(sc, tag, sink).start()
        return watcher.stop

    def _end(self, tag: str) -> None:
        sc = self._spark.sparkContext
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
        sc.setLocalProperty("spark.job.interruptOnCancel", None)

    def _cancel(self, tag: str) -> None:
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


class ConnectSession(InProcessSession):
    """A Spark Connect client session (``sc://``)."""

    kind = "connect"
    #: Retries when the server cannot be reached: ~20 s in all, not the client's default 10 minutes.
    MAX_RETRIES = 6
    MAX_BACKOFF_MS = 8000

    def start(self, say: Say) -> None:
        _require_pyspark(connect=True)
        from pyspark import SparkContext
        from pyspark.sql.connect.session import SparkSession as RemoteSession

        if SparkContext._active_spark_context is None:
            # What SparkSession.builder.remote() sets: pyspark.sql.functions in the user's cells then
            # build Spark Connect columns. Left alone while a local session runs in this process.
            os.environ.setdefault("SPARK_CONNECT_MODE_ENABLED", "1")

        started = time.monotonic()
        try:
            spark = RemoteSession.builder.remote(self.target.spec).create()
        except Exception as exc:
            raise OptionError(f"--connect {self.target.display}: {spark_errors.translate(exc, '')}") from None
        self._bound_retries(spark)
        try:
            for k, v in {**RUNTIME_CONF, **self.conf}.items():
                spark.conf.set(k, v)
            self.version = spark.version
        except Exception as exc:
            with contextlib.suppress(Exception):
                spark.stop()
            raise self._connect_error(exc) from None
        self._spark = spark
        self.start_seconds = time.monotonic() - started
        self.started_at = time.time()

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
        if "UNAVAILABLE" in text or "RETRIES_EXCEEDED" in text or "failed to connect" in text:
            detail = re.search(r'details = "([^"]*)"', text)
            return RemoteError(f"cannot reach the Spark Connect server at {self.target.display}"
                               + (f": {detail.group(1)}" if detail else ""),
                               hint="Is the server running (start-connect-server.sh), and is host:port right? "
                                    "A token without use_ssl=true is sent only to localhost.")
        return RemoteError(f"Spark Connect {self.target.display}: {spark_errors.translate(exc, '')}")

    def alive(self) -> str | None:
        spark = self._spark
        if spark is None:
            return "not started"
        if getattr(spark, "is_stopped", False):
            return "the Spark Connect client session was stopped"
        try:
            spark.conf.get("spark.sql.session.timeZone")
        except Exception as exc:
            text = str(exc)
            if "SESSION_CLOSED" in text or "SESSION_NOT_FOUND" in text or "SESSION_CHANGED" in text:
                return "the Spark Connect server closed the session (it restarted, or the session expired)"
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


def make_session(target: Target, conf: Mapping[str, str] | None = None) -> SparkHandle:
    if target.kind == "local":
        return LocalSession(target, conf)
    if target.kind == "connect":
        return ConnectSession(target, conf)
    from kqlmagic_plus.engines.spark.livy import SynapseSession

    return SynapseSession(target, conf)


# -- the registry -----------------------------------------------------------------------------------


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
            if target.kind == "local":
                key = "local"
            session = self._sessions.get(key)
            if session is not None and target.kind == "local" and not target.any_local and \
                    session.target.spec != target.spec and session.alive() is None:
                say(f"Spark: stopping the local session ({session.target.spec}) to start {target.spec} "
                    "(one local Spark per process).")
                session.stop()
                self._sessions.pop(key, None)
                session = None
            if session is not None and conf and any(session.conf.get(k) != v for k, v in conf.items()):
                self._apply_conf(session, conf, say)
            if session is not None:
                reason = session.lost or session.alive()
                if reason is None:
                    self._current = key
                    return session
                session = self._replace(key, session, reason, say)
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

    def _replace(self, key: str, old: SparkHandle, reason: str, say: Say) -> SparkHandle:
        say(f"Spark: the session on {old.target.display} is gone ({reason}); starting a new one. "
            "Temp views, cached tables and Python variables of the old session are lost; "
            + ("the lake is registered again." if old.lake is not None else "run the cell again if needed."))
        with contextlib.suppress(Exception):
            old.stop()
        if hasattr(old, "log_tail") and old.log_tail:  # a Synapse session's last log lines, when it died
            say("Last log lines of the old session:\n" + "\n".join(f"  {ln}" for ln in old.log_tail))
        new = make_session(old.target, old.conf)
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
                keys = ["local" if target.kind == "local" else target.key]
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
