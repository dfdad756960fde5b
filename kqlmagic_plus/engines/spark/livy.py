"""Azure Synapse Spark pools through their Livy API: sessions, statements, cancel, stop.

Target: ``synapse://<workspace>/<pool>[;key=value;...]``. Keys (case, ``_`` and ``-`` do not matter):

- sign-in, as for ``loganalytics://`` (:mod:`kqlmagic_plus.connections.auth`): ``code``, ``azcli``, ``msi``,
  ``default`` (the default), ``tenant`` + ``clientid`` + ``clientsecret`` (or ``certificate``),
  ``authority``, ``cloud``. The token is for ``https://dev.azuresynapse.net/.default``; the signed-in
  identity needs a Synapse role that may run Spark (Synapse Compute Operator or Administrator).
- session settings: ``executors`` (numExecutors), ``executorsize`` (Small, Medium, Large, XLarge,
  XXLarge: cores and memory of the pool's node sizes) or ``executorcores``/``executormemory``,
  ``drivercores``/``drivermemory`` (default: as the executors), ``name`` (default derived from the
  pool and identity, so a restarted kernel finds its session again), ``session=<id>`` (attach to a
  Livy session that already runs), ``starttimeout`` (seconds to wait for a session to start,
  default 900); Spark settings come from ``%sparkhunt --conf KEY=VALUE``.
- ``endpoint`` (default ``https://<workspace>.dev.azuresynapse.net``), ``apiversion``
  (default ``2019-11-01-preview``).

Values may be ``$NAME`` (an environment variable); secret values never appear in output.

A session is created once and reused by every cell (and found again by name after a kernel
restart while it lives). Each cell is one Livy statement of kind ``pyspark`` that calls the helper
code of :mod:`kqlmagic_plus.engines.spark.remote`, shipped into the session when it starts; results come
back as Arrow IPC in the statement's text output. Ctrl-C cancels the statement
(``POST .../statements/{id}/cancel``) and the session stays. A session that dies or times out is
reported with its Livy state and the last lines of its log, and the next cell starts a new one.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import inspect
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kqlmagic_plus.engines.spark import errors as spark_errors
from kqlmagic_plus.engines.spark.handle import BASE_CONF, SparkHandle, Target
from kqlmagic_plus.engines.spark.progress import ProgressSink
from kqlmagic_plus.errors import AuthError, ConnectionStringError, QueryCancelledError, QueryError, RemoteError
from kqlmagic_plus.redaction import redact

API_VERSION = "2019-11-01-preview"
SCOPE = "https://dev.azuresynapse.net/.default"
#: Livy session states: usable, on the way, and gone.
READY = ("idle",)
BUSY = ("busy",)
STARTING = ("not_started", "starting", "recovering")
GONE = ("shutting_down", "error", "dead", "killed", "success")
#: Synapse node sizes: (cores, memory) per executor.
SIZES = {"small": (4, "28g"), "medium": (8, "56g"), "large": (16, "112g"), "xlarge": (32, "224g"),
         "xxlarge": (64, "400g")}
_SETTING_KEYS = ("executors", "executorsize", "executorcores", "executormemory", "drivercores", "drivermemory",
                 "name", "session", "starttimeout", "endpoint", "apiversion")
_AUTH_KEYS = ("tenant", "clientid", "clientsecret", "certificate", "certificatepassword", "authority", "cloud")
_LOG_TAIL = 12


@dataclass(frozen=True)
class SynapseTarget:
    workspace: str
    pool: str
    endpoint: str = field(repr=False)  # may hold a user:password@ or ?sig=; display shows it redacted
    api_version: str
    props: dict[str, str] = field(repr=False)
    flags: frozenset[str]
    display: str
    key: str
    session_id: int | None
    start_timeout: float
    name: str

    def body(self, conf: Mapping[str, str]) -> dict[str, Any]:
        """The Livy session request: name, sizes, conf, tags."""
        p = self.props
        size = (p.get("executorsize") or "").lower()
        cores, memory = SIZES.get(size, (None, None))
        body: dict[str, Any] = {"name": self.name, "tags": {"createdBy": "kqlmagic_plus"},
                                "conf": {**BASE_CONF, **conf}}
        ecores = _int(p.get("executorcores"), "executorcores") or cores or 4
        ememory = p.get("executormemory") or memory or "28g"
        body.update({"executorCores": ecores, "executorMemory": ememory,
                     "driverCores": _int(p.get("drivercores"), "drivercores") or ecores,
                     "driverMemory": p.get("drivermemory") or ememory,
                     "numExecutors": _int(p.get("executors"), "executors") or 2})
        return body


def _int(value: str | None, key: str) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ConnectionStringError(f"{key}={value!r} in the synapse:// target needs a whole number") from None
    if n < 1:
        raise ConnectionStringError(f"{key}={value} in the synapse:// target must be 1 or more")
    return n


def parse_synapse(text: str) -> SynapseTarget:
    """Parse ``synapse://workspace/pool;k=v;...``; errors name the part that is wrong."""
    from kqlmagic_plus.connections.spec import AUTH_FLAGS, _pairs, _resolve, is_secret, normalize_key

    body = text.strip()[len("synapse://"):]
    head, _, rest = body.partition(";")
    workspace, _, pool = head.strip().strip("/").partition("/")
    for label, value in (("workspace", workspace), ("pool", pool)):
        if not value or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", value):
            raise ConnectionStringError(f"synapse:// target needs synapse://<workspace>/<pool>; the {label} part "
                                        f"{value!r} is {'missing' if not value else 'not a Synapse name'}")
    props: dict[str, str] = {}
    flags: set[str] = set()
    for pos, key, value in _pairs(rest):
        k = normalize_key(key)
        if value is None:
            if k in AUTH_FLAGS:
                flags.add(k)
                continue
            raise ConnectionStringError(f"{key!r} in the synapse:// target needs a value ({key}=...)")
        if k not in _SETTING_KEYS and k not in _AUTH_KEYS:
            raise ConnectionStringError(f"{key!r} (position {pos + 1} after the pool) is not a synapse:// key; "
                                        f"known: {', '.join(_SETTING_KEYS + _AUTH_KEYS)}")
        props[k] = _resolve(value, __import__("os").environ, k)
    size = props.get("executorsize")
    if size and size.lower() not in SIZES:
        raise ConnectionStringError(f"executorsize={size!r}: use one of {', '.join(s.title() for s in SIZES)}")
    endpoint = (props.get("endpoint") or f"https://{workspace}.dev.azuresynapse.net").rstrip("/")
    if not endpoint.startswith("https://"):
        raise ConnectionStringError(f"endpoint {redact(endpoint)!r} must be https:// (a bearer token is sent to it)")
    session_id = _int(props.get("session"), "session") if props.get("session") else None
    timeout = float(props.get("starttimeout") or 900)
    shown = [f"{k}={'***' if is_secret(k, v) else redact(v)}" for k, v in props.items() if k in ("endpoint", "session")]
    display = f"synapse://{workspace}/{pool}" + ("".join(";" + s for s in shown) if shown else "")
    h = hashlib.sha256()
    for part in (workspace.lower(), pool.lower(), endpoint, json.dumps(sorted(props.items())),
                 json.dumps(sorted(flags))):
        h.update(part.encode() + b"\0")
    digest = h.hexdigest()
    ident = hashlib.sha256(json.dumps([props.get("tenant"), props.get("clientid"), sorted(flags),
                                       props.get("executorsize"), props.get("executors")]).encode()).hexdigest()[:8]
    name = props.get("name") or f"kqlmagic_plus-{pool}-{ident}"
    return SynapseTarget(workspace=workspace, pool=pool, endpoint=endpoint,
                         api_version=props.get("apiversion") or API_VERSION, props=props, flags=frozenset(flags),
                         display=display, key=f"synapse:{digest[:24]}", session_id=session_id,
                         start_timeout=timeout, name=name)


# -- the REST client --------------------------------------------------------------------------------


class LivyClient:
    """The Synapse Livy REST API for one pool, authenticated with an azure-identity credential."""

    def __init__(self, endpoint: str, pool: str, credential: Any, *, api_version: str = API_VERSION,
                 sign_in: Any = None, timeout: float = 60.0, retries: int = 3):
        import requests

        self.base = f"{endpoint.rstrip('/')}/livyApi/versions/{api_version}/sparkPools/{pool}"
        self.pool = pool
        self.credential = credential
        self.sign_in = sign_in
        self.timeout = timeout
        self.retries = retries
        self._http = requests.Session()

    def __repr__(self) -> str:
        return f"LivyClient({redact(self.base)!r})"

    def _token(self) -> str:
        if self.credential is None:
            return ""
        try:
            return self.credential.get_token(SCOPE).token
        except AuthError:
            raise
        except Exception as exc:
            from kqlmagic_plus.connections.auth import explain

            raise explain(exc, self.sign_in, resource="Azure Synapse") from None

    def request(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None,
                missing_ok: bool = False) -> Any:
        import requests

        url = self.base + path
        delay = 1.0
        for attempt in range(self.retries + 1):
            headers = {"Accept": "application/json"}
            token = self._token()
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                resp = self._http.request(method, url, json=body, params=params, headers=headers,
                                          timeout=self.timeout)
            except requests.RequestException as exc:
                if attempt < self.retries:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise RemoteError(f"cannot reach Azure Synapse at {self.base.split('/livyApi')[0]}: "
                                  f"{_first(str(exc))}") from None
            if resp.status_code in (429, 502, 503, 504) and attempt < self.retries:
                wait = _retry_after(resp.headers.get("Retry-After"), delay)
                time.sleep(wait)
                delay *= 2
                continue
            if resp.status_code == 404 and missing_ok:
                return None
            if resp.status_code >= 400:
                raise self._error(resp, method, path)
            if not resp.content:
                return {}
            try:
                return resp.json()
            except ValueError:
                raise RemoteError(f"Azure Synapse answered {method} {path} with something that is not JSON "
                                  f"({resp.text[:80]!r})") from None
        raise RemoteError("unreachable")  # pragma: no cover - the loop returns or raises

    def _error(self, resp: Any, method: str, path: str) -> Exception:
        detail = _error_text(resp)
        status = resp.status_code
        if status == 401:
            return AuthError(f"Azure Synapse refused the token (401): {detail}",
                             hint="The sign-in worked but the token is not accepted here: check the tenant.")
        if status == 403:
            return AuthError(f"Azure Synapse: no permission to use Spark pool {self.pool!r} (403): {detail}",
                             hint="The identity needs the Synapse Compute Operator (or Administrator) role "
                                  "on the workspace or the pool.")
        if status == 404:
            return RemoteError(f"Azure Synapse: {method} {path or '/'} not found (404): {detail}",
                               hint="Check the workspace and pool names of the synapse:// target.")
        return RemoteError(f"Azure Synapse answered {status} to {method} {path or '/'}: {detail}")

    # -- operations --------------------------------------------------------------------------------

    def sessions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        while True:
            page = self.request("GET", "/sessions", params={"from": start, "size": 20})
            items = page.get("sessions") or []
            out.extend(items)
            total = int(page.get("total") or 0)
            start += len(items)
            if not items or start >= total:
                return out

    def create_session(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/sessions", body=dict(body))

    def session(self, sid: int) -> dict[str, Any] | None:
        return self.request("GET", f"/sessions/{sid}", missing_ok=True)

    def log(self, sid: int, size: int = _LOG_TAIL) -> list[str]:
        first = self.request("GET", f"/sessions/{sid}/log", params={"from": 0, "size": 0}, missing_ok=True)
        if not first:
            return []
        total = int(first.get("total") or 0)
        page = self.request("GET", f"/sessions/{sid}/log", params={"from": max(0, total - size), "size": size},
                            missing_ok=True) or {}
        return [str(x) for x in page.get("log") or []]

    def delete_session(self, sid: int) -> None:
        self.request("DELETE", f"/sessions/{sid}", missing_ok=True)

    def reset_timeout(self, sid: int) -> None:
        self.request("PUT", f"/sessions/{sid}/reset-timeout", missing_ok=True)

    def submit(self, sid: int, code: str, kind: str = "pyspark") -> dict[str, Any]:
        return self.request("POST", f"/sessions/{sid}/statements", body={"code": code, "kind": kind})

    def statement(self, sid: int, stmt: int) -> dict[str, Any] | None:
        return self.request("GET", f"/sessions/{sid}/statements/{stmt}", missing_ok=True)

    def cancel(self, sid: int, stmt: int) -> None:
        self.request("POST", f"/sessions/{sid}/statements/{stmt}/cancel", missing_ok=True)


def _first(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _retry_after(value: str | None, default: float) -> float:
    try:
        return min(max(float(value or default), 0.1), 30.0)
    except ValueError:
        return default


def _error_text(resp: Any) -> str:
    try:
        data = resp.json()
    except ValueError:
        return _first(resp.text) or resp.reason
    if isinstance(data, dict):
        for key in ("message", "msg", "error"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("message") or value.get("code")
            if value:
                return _first(str(value))
    return _first(json.dumps(data))


# -- the session ------------------------------------------------------------------------------------


class SynapseSession(SparkHandle):
    """A Livy session on a Synapse Spark pool, driven one statement per cell."""

    kind = "synapse"
    POLL_START = 0.2
    POLL_MAX = 1.0

    def __init__(self, target: Target, conf: Mapping[str, str] | None = None):
        super().__init__(target, conf)
        self.syn = parse_synapse(target.spec)
        self.client: LivyClient | None = None
        self.id: int | None = None
        self.app_id: str | None = None
        self.state: str | None = None
        self.log_tail: list[str] = []
        self._statement: int | None = None
        self._loaded = False

    # -- lifecycle ---------------------------------------------------------------------------------

    def _client(self) -> LivyClient:
        if self.client is None:
            from kqlmagic_plus.connections.auth import credential_for, sign_in_from_spec
            from kqlmagic_plus.connections.spec import ConnectionSpec

            props = {k: v for k, v in self.syn.props.items() if k in _AUTH_KEYS}
            spec = ConnectionSpec("synapse", props, self.syn.flags)
            sign_in = sign_in_from_spec(spec)
            cred = credential_for(sign_in, target=self.syn.display)
            self.client = LivyClient(self.syn.endpoint, self.syn.pool, cred, api_version=self.syn.api_version,
                                     sign_in=sign_in)
        return self.client

    def start(self, say: Callable[[str], None]) -> None:
        client = self._client()
        started = time.monotonic()
        info = None
        if self.syn.session_id is not None:
            info = client.session(self.syn.session_id)
            if info is None or info.get("state") in GONE:
                state = "not found" if info is None else f"Livy state {info.get('state')}"
                raise RemoteError(f"Synapse session {self.syn.session_id} on pool {self.syn.pool} cannot be used "
                                  f"({state}); leave out session= to start a new one")
            say(f"Synapse: attached to session {info['id']} ({info.get('state')}).")
        else:
            for s in client.sessions():
                if s.get("name") == self.syn.name and s.get("state") in READY + BUSY + STARTING:
                    info = s
                    say(f"Synapse: reusing session {s['id']} ({s.get('state')}) on pool {self.syn.pool}.")
                    break
        if info is None:
            info = client.create_session(self.syn.body(self.conf))
            say(f"Synapse: starting session {info.get('id')} on pool {self.syn.pool} (a cold pool takes 2-5 "
                "minutes)...")
        self.id = int(info["id"])
        self._wait_ready(say, started)
        self._load_helpers()
        self.start_seconds = time.monotonic() - started
        self.started_at = time.time()

    def _wait_ready(self, say: Callable[[str], None], started: float) -> dict[str, Any]:
        client = self._client()
        delay = self.POLL_START
        last_note = time.monotonic()
        while True:
            info = client.session(self.id)  # type: ignore[arg-type]
            if info is None:
                raise RemoteError(f"Synapse session {self.id} disappeared while starting")
            self.state = info.get("state")
            self.app_id = info.get("appId") or self.app_id
            if self.state in READY + BUSY:
                return info
            if self.state in GONE:
                self.log_tail = self._tail(info)
                raise RemoteError(self._death(f"did not start (Livy state {self.state})"))
            waited = time.monotonic() - started
            if waited > self.syn.start_timeout:
                raise RemoteError(f"Synapse session {self.id} is still {self.state} after {waited:.0f} s "
                                  "(starttimeout); the pool may have no free capacity. It keeps starting in the "
                                  "background: run the cell again to wait for it, or %sparkhunt --stop")
            if time.monotonic() - last_note > 15:
                say(f"Synapse: session {self.id} is {self.state} ({waited:.0f} s)...")
                last_note = time.monotonic()
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def _load_helpers(self) -> None:
        from kqlmagic_plus.engines.spark import remote

        source = inspect.getsource(remote)
        code = ("import types as _kqlmp_types\n"
                "_kqlmp = _kqlmp_types.ModuleType('kqlmagic_plus_remote')\n"
                f"exec(compile({source!r}, 'kqlmagic_plus/spark/remote.py', 'exec'), _kqlmp.__dict__)\n"
                "_kqlmp.emit({'return': _kqlmp.VERSION})\n")
        out = self._run_statement(code, None, "", what="the helper code")
        if out.get("return") != remote.VERSION:
            raise RemoteError(f"Synapse session {self.id}: the helper code did not load ({out})")
        self._loaded = True

    def _tail(self, info: Mapping[str, Any] | None) -> list[str]:
        lines = [str(x) for x in (info or {}).get("log") or []]
        if not lines and self.client is not None and self.id is not None:
            with contextlib.suppress(Exception):
                lines = self.client.log(self.id)
        return [ln for ln in lines if ln.strip()][-_LOG_TAIL:]

    def _death(self, what: str) -> str:
        text = f"Synapse session {self.id} on pool {self.syn.pool} {what}"
        if self.log_tail:
            text += ". Last log lines:\n" + "\n".join(f"  {ln}" for ln in self.log_tail)
        return text

    def alive(self) -> str | None:
        if self.id is None or self.client is None:
            return "not started"
        info = self.client.session(self.id)
        if info is None:
            return f"Livy session {self.id} no longer exists"
        self.state = info.get("state")
        if self.state in GONE:
            self.log_tail = self._tail(info)
            return f"Livy state {self.state}"
        return None

    def stop(self) -> None:
        if self.client is not None and self.id is not None:
            with contextlib.suppress(Exception):
                self.client.delete_session(self.id)
        self.id = None

    def status(self) -> dict[str, Any]:
        out = super().status()
        out.update({"livy_session": self.id, "livy_state": self.state, "app_id": self.app_id,
                    "pool": self.syn.pool, "workspace": self.syn.workspace})
        return out

    # -- statements --------------------------------------------------------------------------------

    def cancel(self) -> None:
        stmt = self._statement
        if stmt is not None and self.client is not None and self.id is not None:
            with contextlib.suppress(Exception):
                self.client.cancel(self.id, stmt)

    def run_cell(self, mode: str, code: str, *, namespace: dict[str, Any] | None, limit: int | None,
                 to_lake: str | None, overwrite: bool, lake_spec: dict[str, Any] | None,
                 progress: Callable[[], ProgressSink], what: str = "",
                 tables: Iterable[str] | None = None) -> dict[str, Any]:
        from kqlmagic_plus.engines.spark.remote import decode_table

        if not self._loaded:
            self._load_helpers()
        self.cells += 1
        b64 = base64.b64encode(code.encode()).decode()
        spec = base64.b64encode(json.dumps(lake_spec).encode()).decode() if lake_spec else None
        call = (f"_kqlmp.livy_cell(spark, globals(), {mode!r}, {b64!r}, {limit!r}, {to_lake!r}, {overwrite!r}, "
                f"{spec!r})")
        out = self._run_statement(call, progress, code, what=what, tables=tables)
        if "lake" in out:
            self.lake_warnings = list(out["lake"].get("warnings") or [])
        if "table" in out:
            return {"kind": "table", "table": decode_table(out["table"]), "truncated": bool(out.get("truncated")),
                    "stdout": out.get("stdout", "")}
        if "written" in out:
            return {"kind": "written", **out["written"], "stdout": out.get("stdout", "")}
        return {"kind": "value", "value": _Shown(out["value"]) if out.get("value") is not None else None,
                "stdout": out.get("stdout", "")}

    def list_folders(self, uri: str) -> list[str]:
        if not self._loaded:
            self._load_helpers()
        out = self._run_statement(f"_kqlmp.livy_call(_kqlmp.list_folders, spark, {uri!r})", None, "",
                                  what=f"listing {uri}")
        return list(out.get("return") or [])

    def _run_statement(self, code: str, progress: Callable[[], ProgressSink] | None, user_code: str, *,
                       what: str = "", tables: Iterable[str] | None = None) -> dict[str, Any]:
        """Submit one statement, wait for it (Ctrl-C cancels it), and read the helper's messages."""
        client = self._client()
        assert self.id is not None
        stmt = client.submit(self.id, code)
        self._statement = int(stmt["id"])
        sink = progress() if progress is not None else None
        delay = self.POLL_START
        try:
            while True:
                state = stmt.get("state")
                if sink is not None and isinstance(stmt.get("progress"), int | float):
                    sink.fraction(stmt["progress"])
                if state in ("available", "error", "cancelled"):
                    break
                time.sleep(delay)
                delay = min(delay * 1.5, self.POLL_MAX)
                nxt = client.statement(self.id, self._statement)
                if nxt is None:
                    self._lost()
                stmt = nxt  # type: ignore[assignment]
        except KeyboardInterrupt:
            self._cancel_and_wait()
            raise QueryCancelledError(spark_errors.CANCELLED) from None
        finally:
            self._statement = None
            if sink is not None:
                sink.close()
        if state == "cancelled":
            raise QueryCancelledError("the Synapse statement was cancelled; the session is still usable")
        output = stmt.get("output") or {}
        if output.get("status") == "error" or state == "error":
            reason = self.alive()
            if reason is not None:
                self.lost = reason
                raise RemoteError(self._death(f"died while the cell ran ({reason})") +
                                  "\nThe next cell starts a new session.")
            ename = output.get("ename") or "Error"
            evalue = _first(str(output.get("evalue") or ""))
            raise QueryError(f"Synapse statement failed: {ename}: {evalue}")
        return self._messages(output, user_code, what, tables)

    def _lost(self) -> None:
        reason = self.alive() or "the statement disappeared"
        self.lost = reason
        raise RemoteError(self._death(f"was lost while the cell ran ({reason})") + "\nThe next cell starts a new "
                          "session.")

    def _cancel_and_wait(self) -> None:
        client = self._client()
        stmt = self._statement
        if stmt is None or self.id is None:
            return
        with contextlib.suppress(Exception):
            client.cancel(self.id, stmt)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            info = None
            with contextlib.suppress(Exception):
                info = client.statement(self.id, stmt)
            if info is None or info.get("state") in ("cancelled", "available", "error"):
                return
            time.sleep(0.3)

    def _messages(self, output: Mapping[str, Any], user_code: str, what: str,
                  tables: Iterable[str] | None) -> dict[str, Any]:
        from kqlmagic_plus.engines.spark.remote import MARKER

        data = output.get("data") or {}
        text = data.get("text/plain") or ""
        merged: dict[str, Any] = {}
        plain: list[str] = []
        for line in str(text).splitlines():
            if line.startswith(MARKER):
                try:
                    merged.update(json.loads(line[len(MARKER):]))
                except ValueError:
                    raise RemoteError("Synapse returned a damaged result message (output cut short?)") from None
            else:
                plain.append(line)
        merged["stdout"] = "\n".join(plain).strip("\n")
        if "error" in merged:
            raise spark_errors.from_info(merged["error"], user_code, what=what, tables=tables)
        return merged


class _Shown:
    """A value shown by its text: what the last line of a Synapse PySpark cell evaluated to."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text
