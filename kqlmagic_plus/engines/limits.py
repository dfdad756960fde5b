"""What keeps a local query from taking the kernel down.

- A deadline over the whole query (``--timeout``): parse, translation, registration and execution run on a
  worker thread; at the deadline DuckDB is interrupted and the worker's Python work is stopped, and the
  caller gets the timeout error within a second of it. Ctrl-C and ``cancel()`` stop it the same way.
- A memory limit (``KqlMagicPlus.memory_limit``, default half of the RAM this process may use) with a private
  spill folder: past the limit DuckDB spills to disk; a query that still does not fit, or a result larger than
  the limit, is a one-line :class:`MemoryLimitError` and the connection stays usable.
- Room for deeply nested queries: the worker has a deep stack, and DuckDB follows expressions 5,000 deep.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kqlmagic_plus.errors import CANCELLED, QueryCancelledError, QueryError, QueryTimeoutError

_T = TypeVar("_T")

#: Seconds a stopped query gets to wind down before the caller is answered anyway (it goes on winding down
#: in the background; the next query on the connection waits for it).
GRACE = 0.5
#: DuckDB's nesting limit for expressions (its default is 1,000: a 1,000-term ``or``). 5,000 is safe on the
#: default 8 MB stack too; the queries themselves run on a 256 MB one.
MAX_EXPRESSION_DEPTH = 5000
#: Rows per Arrow batch while a result is brought into Python (DuckDB's own batch size).
_BATCH_ROWS = 1_000_000


class MemoryLimitError(QueryError):
    """A query or its result needs more memory than the local engine's limit."""

    label = "Out of memory"


# -- the memory limit --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryLimit:
    #: The setting as written ("50%", "4GB") and what it came to.
    setting: str
    bytes: int
    #: The private spill folder, and how much may be spilled there.
    spill: str
    spill_bytes: int

    def describe(self) -> str:
        shown = _size(self.bytes)
        same = shown.replace(" ", "").upper() == self.setting.replace(" ", "").upper()
        return f"KqlMagicPlus.memory_limit = {self.setting!r}" + ("" if same else f", {shown}")


def total_memory() -> int:
    """The memory this process may use: physical RAM, or less when a cgroup or RLIMIT_AS says so."""
    return _total_memory()


@functools.lru_cache(maxsize=1)
def _total_memory() -> int:
    found = [m for m in (_physical_memory(), _cgroup_limit(), _address_space_limit()) if m]
    return min(found) if found else 8 * 2**30


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    if os.name == "nt":
        import ctypes

        class _Status(ctypes.Structure):
            _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong), ("total", ctypes.c_ulonglong),
                        ("avail", ctypes.c_ulonglong), ("total_page", ctypes.c_ulonglong),
                        ("avail_page", ctypes.c_ulonglong), ("total_virtual", ctypes.c_ulonglong),
                        ("avail_virtual", ctypes.c_ulonglong), ("avail_extended", ctypes.c_ulonglong)]

        status = _Status()
        status.length = ctypes.sizeof(_Status)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.total)
    return None


def _cgroup_limit() -> int | None:
    """The memory limit of this process's cgroup (v2 ``memory.max``, v1 ``memory.limit_in_bytes``)."""
    paths = []
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, controllers, path = line.strip().split(":", 2)
                if controllers == "":
                    paths.append(f"/sys/fs/cgroup{path}/memory.max")
                elif "memory" in controllers.split(","):
                    paths.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    except (OSError, ValueError):
        return None
    paths += ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
    for path in paths:
        try:
            with open(path) as f:
                raw = f.read().strip()
        except OSError:
            continue
        if raw.isdigit() and int(raw) < 2**60:  # v1 writes a huge number for "no limit"; v2 writes "max"
            return int(raw)
        if raw == "max":
            return None
    return None


def _address_space_limit() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    return soft if soft not in (resource.RLIM_INFINITY, -1) and soft > 0 else None


def configure(con: Any, previous: MemoryLimit | None) -> MemoryLimit:
    """Give *con* the memory limit the settings ask for now (a no-op when it has it already)."""
    from kqlmagic_plus.config import parse_memory_limit, settings

    setting = settings().memory_limit
    parsed = parse_memory_limit(setting)
    size = int(parsed * total_memory()) if isinstance(parsed, float) else int(parsed)
    if previous is not None and previous.setting == setting and previous.bytes == size:
        return previous
    if previous is None:
        import shutil

        spill = spill_folder()
        spill_bytes = max(shutil.disk_usage(spill).free // 2, 64 * 2**20)
        try:
            con.execute(f"SET temp_directory = '{_sql_text(spill)}'")
        except Exception:  # a database another connection already spilled from keeps its folder
            os.rmdir(spill)
            spill = str(con.execute("SELECT current_setting('temp_directory')").fetchone()[0])
        con.execute(f"SET max_temp_directory_size = '{spill_bytes}B'")
        con.execute(f"SET max_expression_depth = {MAX_EXPRESSION_DEPTH}")
    else:
        spill, spill_bytes = previous.spill, previous.spill_bytes
    con.execute(f"SET memory_limit = '{size}B'")
    return MemoryLimit(setting, size, spill, spill_bytes)


def release(limit: MemoryLimit | None) -> None:
    """Remove the spill folder of a closed connection."""
    if limit is not None:
        import shutil

        shutil.rmtree(limit.spill, ignore_errors=True)


def spill_folder() -> str:
    """A new private folder (0700) for DuckDB to spill to, under the user's cache folder.

    Named host-pid-random; folders of this host whose process is gone (a kernel that crashed) are removed."""
    import atexit
    import shutil
    import socket
    import tempfile

    import platformdirs

    root = os.path.join(platformdirs.user_cache_dir("kqlmagic_plus", appauthor=False), "spill")
    os.makedirs(root, mode=0o700, exist_ok=True)
    host = socket.gethostname().replace("-", "_") or "host"
    if os.name == "posix":  # os.kill(pid, 0) only asks on POSIX; on Windows it would end the process
        for entry in os.listdir(root):
            parts = entry.split("-")
            if len(parts) == 3 and parts[0] == host and parts[1].isdigit() and not _alive(int(parts[1])):
                shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
    folder = tempfile.mkdtemp(prefix=f"{host}-{os.getpid()}-", dir=root)
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000:
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} TB"


def out_of_memory(exc: BaseException, limit: MemoryLimit | None) -> MemoryLimitError:
    """DuckDB's out-of-memory error as one line: which limit, and how to raise it."""
    text = str(exc).strip()
    detail = (text.splitlines() or [""])[0].removeprefix("Out of Memory Error: ").rstrip(".")
    raise_it = "or raise it: %config KqlMagicPlus.memory_limit = '8GB' (or KQLMAGIC_PLUS_MEMORY_LIMIT)"
    if limit is None:
        return MemoryLimitError(f"the query ran out of memory ({detail}); narrow it, {raise_it}")
    if "max_temp_directory_size" in text:
        return MemoryLimitError(
            f"the query needs more than the local engine's memory limit ({limit.describe()}) and more spill "
            f"space than it may use ({_size(limit.spill_bytes)}, half the free disk at {limit.spill}); narrow it "
            f"(a shorter window, | where before | summarize, fewer columns), {raise_it}")
    if " used)" not in detail:  # not DuckDB's limit: the system (or an address-space cap) refused memory
        return MemoryLimitError(
            f"the system refused the memory the query asked for ({detail}) within the local engine's limit "
            f"({limit.describe()}); narrow the query, or lower the limit so DuckDB spills sooner: "
            "%config KqlMagicPlus.memory_limit = '25%'")
    return MemoryLimitError(
        f"the query needs more memory than the local engine's limit ({limit.describe()}), even spilling to disk "
        f"({detail}); narrow it (a shorter window, | where before | summarize, fewer columns), {raise_it}")


def fetch_arrow(rel: Any, con: Any, limit: MemoryLimit | None) -> Any:
    """The rows of *rel* as an Arrow table, brought in batch by batch: a result that would take the
    connection past its memory limit (DuckDB's own use counted in) stops with MemoryLimitError."""
    import pyarrow as pa

    reader = rel.to_arrow_reader(_BATCH_ROWS) if hasattr(rel, "to_arrow_reader") else \
        rel.fetch_record_batch(_BATCH_ROWS)
    batches: list[Any] = []
    size = rows = 0
    check_at = limit.bytes // 2 if limit is not None else None
    try:
        for batch in reader:
            batches.append(batch)
            size += batch.nbytes
            rows += batch.num_rows
            if check_at is not None and limit is not None and size > check_at:
                if size + _duckdb_bytes(con) > limit.bytes:
                    raise MemoryLimitError(
                        f"the result is larger than the local engine's memory limit ({limit.describe()}) allows: "
                        f"{rows:,} rows ({_size(size)}) and more; narrow it (| take, | summarize, | project fewer "
                        "columns) or raise the limit: %config KqlMagicPlus.memory_limit = '8GB'")
                check_at = size + limit.bytes // 16
        return pa.Table.from_batches(batches, schema=reader.schema)
    except (OSError, pa.ArrowException) as exc:  # DuckDB's errors while streaming arrive through Arrow
        text = str(exc).strip()
        if text.startswith("INTERRUPT"):
            raise QueryCancelledError(CANCELLED) from None
        if text.startswith("Out of Memory"):
            raise out_of_memory(exc, limit) from None
        raise QueryError((text.splitlines() or [type(exc).__name__])[0]) from None
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


def _duckdb_bytes(con: Any) -> int:
    """Memory DuckDB's buffer manager holds now (through a second connection: the first is streaming)."""
    cur = con.cursor()
    try:
        row = cur.execute("SELECT CAST(coalesce(sum(memory_usage_bytes), 0) AS BIGINT) FROM duckdb_memory()"
                          ).fetchone()
        return int(row[0]) if row else 0
    except Exception:  # an older DuckDB without duckdb_memory(): count the result alone
        return 0
    finally:
        cur.close()


# -- the deadline ------------------------------------------------------------------------------------------


class _Stop(BaseException):
    """Raised inside a stopped query's worker thread to end its Python work (not an Exception: no handler
    that catches Exception swallows it)."""


class _Job:
    def __init__(self, fn: Callable[[], Any]):
        self.fn = fn
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.finished = False
        self.stopped = False
        self.state = threading.Lock()
        self.thread: threading.Thread | None = None


class Runner:
    """Runs one engine's queries on worker threads, one at a time, each within its deadline."""

    def __init__(self, interrupt: Callable[[], None]):
        self._interrupt = interrupt
        self._serial = threading.Lock()
        self._state = threading.Lock()
        self._active: _Job | None = None
        self._jobs: set[_Job] = set()

    def run(self, fn: Callable[[], _T], timeout: float | None) -> _T:
        """``fn()`` on a worker (deep stack): its value or error; QueryTimeoutError after *timeout* seconds
        (None or 0: none), QueryCancelledError after :meth:`cancel`."""
        from kqlmagic_plus.language.compiler.syntax import start_deep_thread

        job = _Job(fn)
        with self._state:
            self._jobs.add(job)
        try:
            try:
                job.thread = start_deep_thread(lambda: self._work(job), "kqlmp-local-query")
            except RuntimeError:  # no thread can start (an exhausted address space): here, DuckDB still bounded
                self._work(job)
            deadline = time.monotonic() + timeout if timeout else None
            timed_out = False
            try:
                while not job.done.is_set():
                    if job.stopped:  # cancel() from another thread: make sure the stop lands
                        self._stop_and_wait(job, GRACE)
                        break
                    wait = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
                    if wait <= 0:
                        timed_out = True
                        self._stop_and_wait(job, GRACE)
                        break
                    job.done.wait(wait)
            except BaseException:  # Ctrl-C while waiting: stop the query, leave the connection usable
                self._stop_and_wait(job, GRACE)
                raise
            if timed_out and (job.error is not None or not job.done.is_set()):
                raise QueryTimeoutError(f"the query ran longer than {timeout:g} s and was cancelled "
                                        "(raise --timeout to allow more)") from None
            if not job.done.is_set():  # cancelled, and still winding down: the next query waits for it
                raise QueryCancelledError(CANCELLED)
        finally:
            with self._state:
                self._jobs.discard(job)
        if job.error is not None:
            if isinstance(job.error, _Stop) or (job.stopped and isinstance(job.error, QueryCancelledError)):
                raise QueryCancelledError(CANCELLED) from None
            raise job.error
        return job.value  # type: ignore[no-any-return]

    def cancel(self) -> None:
        """Stop every query running now (from any thread)."""
        with self._state:
            jobs = list(self._jobs)
        for job in jobs:
            self._stop(job)

    def _work(self, job: _Job) -> None:
        try:
            try:
                with self._serial:
                    with self._state:
                        self._active = job
                    try:
                        job.value = job.fn()
                    finally:
                        with self._state:
                            self._active = None
            except BaseException as exc:  # handed to the caller, whatever it is
                job.error = exc
            finally:
                with job.state:
                    job.finished = True
                    _async_raise(threading.get_ident(), None)  # a stop that came too late: drop it
                job.done.set()
        except _Stop:
            job.error = job.error or _Stop()
            job.done.set()

    def _stop_and_wait(self, job: _Job, seconds: float) -> None:
        """Stop *job*, again every 0.1 s, for up to *seconds* or until it ends: an asynchronous exception that
        lands in a weakref callback or a finalizer is swallowed there, so one stop can be lost."""
        end = time.monotonic() + seconds
        while True:
            self._stop(job)
            left = end - time.monotonic()
            if job.done.wait(min(0.1, max(left, 0))) or left <= 0:
                return

    def _stop(self, job: _Job) -> None:
        with self._state:
            if self._active is job:
                self._interrupt()  # DuckDB stops at its next check
        with job.state:
            job.stopped = True
            if not job.finished and job.thread is not None and job.thread.ident is not None:
                _async_raise(job.thread.ident, _Stop)  # Python work (parsing, registering) stops at once


def _async_raise(ident: int, exc: type[BaseException] | None) -> None:
    try:
        import ctypes

        set_async = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):  # not CPython: DuckDB's interrupt alone
        return
    set_async(ctypes.c_ulong(ident), ctypes.py_object(exc) if exc is not None else None)
