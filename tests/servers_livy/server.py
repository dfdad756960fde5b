"""Azure Synapse's Livy API and a Microsoft Entra ID token endpoint on loopback, over TLS.

Livy routes (``/livyApi/versions/2019-11-01-preview/sparkPools/{pool}/...``), as Synapse serves them:
sessions (list with ``from``/``size``, create, get, ``/log``, delete, ``reset-timeout``) and
statements (list, create, get, ``/cancel``). A session is a real Python process with PySpark
(:mod:`servers_livy.worker`) that runs each statement; its states go ``not_started`` -> ``starting``
-> ``idle``/``busy``, and ``dead``/``killed``/``error`` when it fails, dies or times out, with its log
(the worker's stderr and the server's own lines) served as Livy does. Statements go ``waiting`` ->
``running`` -> ``available`` (or ``cancelling`` -> ``cancelled``), with ``progress`` from the worker.

Every Livy request needs ``Authorization: Bearer`` with a token this server issued for
``https://dev.azuresynapse.net/.default``; the identity side speaks the OpenID Connect discovery
and client-credentials token request that MSAL (inside azure-identity's ClientSecretCredential)
makes. Faults: slow starts (``start_delay``), failed starts, HTTP errors for the next requests,
session death and timeout.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

from servers.tls import OwnedHandler, TlsLoopbackServer, make_tls

SCOPE = "https://dev.azuresynapse.net/.default"
API = "2019-11-01-preview"
_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py")


@dataclass
class HttpFault:
    status: int
    path_contains: str = ""
    method: str = ""
    count: int = 1
    retry_after: str | None = None
    message: str = "injected"


@dataclass
class Statement:
    id: int
    code: str
    kind: str
    state: str = "waiting"
    output: dict[str, Any] | None = None
    progress: float = 0.0
    cancel_requested: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "state": self.state, "output": self.output,
                "progress": round(self.progress, 3)}


@dataclass
class LivySession:
    id: int
    name: str
    pool: str
    request: dict[str, Any]
    state: str = "not_started"
    app_id: str = ""
    log: list[str] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    queue: list[Statement] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    ready_at: float = 0.0
    fail_start: bool = False
    stderr_path: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "appId": self.app_id or None, "state": self.state,
                "sparkPoolName": self.pool, "workspaceName": "loopback", "tags": self.request.get("tags") or {},
                "log": self.log_lines()[-100:], "livyInfo": {"currentState": self.state,
                                                            "jobCreationRequest": {k: v for k, v in self.request.items()
                                                                                   if k != "tags"}}}

    def log_lines(self) -> list[str]:
        lines = list(self.log)
        if self.stderr_path and os.path.exists(self.stderr_path):
            with open(self.stderr_path, encoding="utf-8", errors="replace") as fh:
                lines += [ln.rstrip("\n") for ln in fh if ln.strip()][-200:]
        return lines


class LoopbackSynapse(TlsLoopbackServer):
    """Start with :meth:`start`; ``url`` is the https base of both the Livy API and sign-in."""

    thread_name = "loopback-synapse"

    def __init__(self, spark_url: str, *, tls: Any = None, start_delay: float = 0.0, log_dir: str | None = None):
        self.spark_url = spark_url
        self.tls = tls or make_tls()
        self.start_delay = start_delay
        self.log_dir = log_dir or os.path.dirname(self.tls.ca_path)
        self.sessions: dict[int, LivySession] = {}
        self.apps: dict[str, str] = {}
        self.tokens: dict[str, float] = {}
        self.faults: list[HttpFault] = []
        self.counts: Counter = Counter()
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[dict[str, Any]] = []
        self.fail_next_start = False
        self._next_session = 0
        self._lock = threading.Lock()

    # -- control -----------------------------------------------------------------------------------

    def stop(self) -> None:
        for s in list(self.sessions.values()):
            self._kill_worker(s)
        super().stop()

    def register_app(self, client_id: str, secret: str) -> None:
        self.apps[client_id] = secret

    def inject(self, *faults: HttpFault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.counts.clear()
            self.requests.clear()
            self.bodies.clear()
            self.fail_next_start = False
            self.start_delay = 0.0

    def kill_session(self, sid: int, reason: str = "Driver process exited with code 137 (out of memory)") -> None:
        """The session's driver dies: state ``dead``, the reason in its log."""
        s = self.sessions[sid]
        s.log.append(f"ERROR ApplicationMaster: {reason}")
        s.log.append("INFO Livy: session state changed to dead")
        self._kill_worker(s)
        s.state = "dead"

    def expire_session(self, sid: int) -> None:
        """The session times out (Synapse ends idle sessions): state ``killed``."""
        s = self.sessions[sid]
        s.log.append("INFO Livy: session idle for more than 30 minutes; timing out")
        s.log.append("INFO Livy: session state changed to killed")
        self._kill_worker(s)
        s.state = "killed"

    def live_sessions(self) -> list[LivySession]:
        return [s for s in self.sessions.values() if s.state in ("idle", "busy", "starting", "not_started")]

    # -- tokens ------------------------------------------------------------------------------------

    def issue(self) -> dict[str, Any]:
        token = "syn-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.time() + 3600
        return {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token}

    def token_ok(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self._lock:
            return self.tokens.get(header[7:], 0) > time.time()

    def next_fault(self, method: str, path: str) -> HttpFault | None:
        with self._lock:
            for f in self.faults:
                if f.path_contains in path and (not f.method or f.method == method):
                    f.count -= 1
                    if f.count <= 0:
                        self.faults.remove(f)
                    return f
        return None

    # -- sessions ----------------------------------------------------------------------------------

    def create_session(self, pool: str, body: dict[str, Any]) -> LivySession:
        with self._lock:
            sid = self._next_session
            self._next_session += 1
            s = LivySession(id=sid, name=body.get("name") or f"session-{sid}", pool=pool, request=body,
                            app_id=f"application_{int(time.time())}_{sid:04d}",
                            ready_at=time.monotonic() + self.start_delay, fail_start=self.fail_next_start)
            self.fail_next_start = False
            self.sessions[sid] = s
        s.log.append(f"INFO Livy: creating session {sid} on pool {pool} with {body.get('numExecutors')} executors")
        threading.Thread(target=self._boot, args=(s,), daemon=True, name=f"livy-boot-{sid}").start()
        return s

    def _boot(self, s: LivySession) -> None:
        time.sleep(min(0.3, self.start_delay))
        s.state = "starting"
        if s.fail_start:
            time.sleep(max(0.0, s.ready_at - time.monotonic()))
            s.log.append("ERROR YARN: Application failed 2 times due to AM Container exited with exitCode: 1")
            s.log.append("ERROR Livy: session 'starting' -> 'error': Spark pool has no capacity (quota exceeded)")
            s.state = "error"
            return
        s.stderr_path = os.path.join(self.log_dir, f"livy-session-{s.id}-{uuid.uuid4().hex[:6]}.log")
        env = {**os.environ, "KQLMP_LIVY_SPARK_URL": self.spark_url, "PYTHONUNBUFFERED": "1"}
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        tests_dir = os.path.dirname(os.path.dirname(_WORKER))
        with open(s.stderr_path, "w") as err:
            s.proc = subprocess.Popen([sys.executable, _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=err, env=env, cwd=tests_dir, text=True, bufsize=1)
        line = s.proc.stdout.readline() if s.proc.stdout else ""
        if not line or not json.loads(line).get("ready"):
            s.log.append("ERROR Livy: the interpreter process did not start")
            s.state = "dead"
            return
        time.sleep(max(0.0, s.ready_at - time.monotonic()))
        if s.state != "starting":
            return
        s.log.append("INFO Livy: session state changed to idle")
        s.state = "idle"
        threading.Thread(target=self._run_statements, args=(s,), daemon=True, name=f"livy-run-{s.id}").start()

    def _run_statements(self, s: LivySession) -> None:
        proc = s.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        while True:
            with s.cond:
                while not s.queue and s.state in ("idle", "busy"):
                    s.cond.wait(0.5)
                if s.state not in ("idle", "busy"):
                    return
                st = s.queue.pop(0)
            if st.cancel_requested:
                st.state = "cancelled"
                continue
            st.state = "running"
            s.state = "busy"
            try:
                proc.stdin.write(json.dumps({"id": st.id, "code": st.code, "kind": st.kind}) + "\n")
                proc.stdin.flush()
                while True:
                    line = proc.stdout.readline()
                    if not line:
                        raise EOFError
                    msg = json.loads(line)
                    if "progress" in msg:
                        st.progress = float(msg["progress"])
                    elif "output" in msg:
                        break
            except (EOFError, OSError, ValueError):
                st.state = "error"
                st.output = {"status": "error", "execution_count": st.id, "ename": "SessionDied",
                             "evalue": "the Livy session's interpreter died", "traceback": []}
                if s.state not in ("dead", "killed"):
                    s.log.append("ERROR Livy: interpreter process died")
                    s.state = "dead"
                return
            out = msg["output"]
            if out.pop("cancelled", False) or st.cancel_requested:
                st.state = "cancelled"
                st.output = None
            else:
                st.output = out
                st.state = "available"
                st.progress = 1.0
            if s.state == "busy":
                s.state = "idle"

    def submit(self, s: LivySession, code: str, kind: str) -> Statement:
        with s.cond:
            st = Statement(id=len(s.statements), code=code, kind=kind)
            s.statements.append(st)
            s.queue.append(st)
            s.cond.notify_all()
        return st

    def cancel(self, s: LivySession, st: Statement) -> None:
        st.cancel_requested = True
        if st.state == "running":
            st.state = "cancelling"
            if s.proc is not None and s.proc.poll() is None:
                s.proc.send_signal(2)  # SIGINT: the worker interrupts the statement

    def delete(self, s: LivySession) -> None:
        s.log.append("INFO Livy: session deleted by the user")
        self._kill_worker(s)
        s.state = "killed"

    def _kill_worker(self, s: LivySession) -> None:
        proc = s.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        with s.cond:
            s.cond.notify_all()


class _Handler(OwnedHandler):
    owner: LoopbackSynapse | None

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def do_PUT(self) -> None:
        self._route("PUT")

    def _route(self, method: str) -> None:
        owner = self.owner
        assert owner is not None
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        raw = self._body() if method in ("POST", "PUT") else b""
        owner.requests.append((method, url.path))
        if parts[-3:] == ["v2.0", ".well-known", "openid-configuration"] and method == "GET":
            owner.counts["discovery"] += 1
            base = f"{owner.url}/{parts[0]}"
            self._send(200, {"token_endpoint": f"{base}/oauth2/v2.0/token",
                             "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                             "issuer": f"{base}/v2.0", "jwks_uri": f"{base}/discovery/v2.0/keys",
                             "response_types_supported": ["code", "id_token"],
                             "token_endpoint_auth_methods_supported": ["client_secret_post"]})
            return
        if len(parts) >= 3 and parts[1] == "oauth2" and parts[-1] == "token" and method == "POST":
            self._token(raw)
            return
        if len(parts) < 5 or parts[0] != "livyApi" or parts[1] != "versions" or parts[3] != "sparkPools":
            self._send(404, {"code": "NotFound", "message": f"no route for {url.path}"})
            return
        if parts[2] != API:
            self._send(400, {"code": "InvalidApiVersion", "message": f"api version {parts[2]} is not supported"})
            return
        if not owner.token_ok(self.headers.get("Authorization")):
            owner.counts["unauthorized"] += 1
            self._send(401, {"code": "Unauthorized", "message": "Token Authentication failed - invalid token"})
            return
        fault = owner.next_fault(method, url.path)
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
            self._send(fault.status, {"code": f"Http{fault.status}", "message": fault.message}, headers)
            return
        pool, rest = parts[4], parts[5:]
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._send(400, {"code": "BadRequest", "message": "body is not JSON"})
            return
        owner.counts[f"{method} {'/'.join(p if not p.isdigit() else '{id}' for p in rest)}"] += 1
        self._livy(method, pool, rest, q, body)

    def _token(self, raw: bytes) -> None:
        owner = self.owner
        assert owner is not None
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        owner.counts["token"] += 1
        if form.get("grant_type") != "client_credentials":
            self._send(400, {"error": "unsupported_grant_type", "error_description": form.get("grant_type")})
            return
        if owner.apps.get(form.get("client_id", "")) != form.get("client_secret"):
            self._send(401, {"error": "invalid_client", "error_codes": [7000215],
                             "error_description": "AADSTS7000215: Invalid client secret provided."})
            return
        if SCOPE not in (form.get("scope") or "").split():
            self._send(400, {"error": "invalid_scope",
                             "error_description": f"AADSTS70011: scope {form.get('scope')!r} is not valid here"})
            return
        self._send(200, owner.issue())

    def _livy(self, method: str, pool: str, rest: list[str], q: dict[str, str], body: dict[str, Any]) -> None:
        owner = self.owner
        assert owner is not None
        if rest == ["sessions"] and method == "GET":
            items = [s for s in owner.sessions.values() if s.pool == pool]
            start, size = int(q.get("from", 0)), int(q.get("size", 20))
            self._send(200, {"from": start, "total": len(items),
                             "sessions": [s.to_json() for s in items[start:start + size]]})
            return
        if rest == ["sessions"] and method == "POST":
            owner.bodies.append(body)
            if not body.get("name"):
                self._send(400, {"code": "BadRequest", "message": "name is required"})
                return
            self._send(200, owner.create_session(pool, body).to_json())
            return
        if not rest or rest[0] != "sessions" or len(rest) < 2 or not rest[1].isdigit():
            self._send(404, {"code": "NotFound", "message": "no such route"})
            return
        s = owner.sessions.get(int(rest[1]))
        if s is None or s.pool != pool:
            self._send(404, {"code": "SessionNotFound", "message": f"session {rest[1]} not found"})
            return
        tail = rest[2:]
        if not tail and method == "GET":
            self._send(200, s.to_json())
        elif not tail and method == "DELETE":
            owner.delete(s)
            self._send(200, {"msg": "deleted"})
        elif tail == ["log"] and method == "GET":
            lines = s.log_lines()
            start, size = int(q.get("from", 0)), int(q.get("size", 100))
            self._send(200, {"id": s.id, "from": start, "total": len(lines), "log": lines[start:start + size]})
        elif tail == ["reset-timeout"] and method == "PUT":
            self._send(200, {})
        elif tail == ["statements"] and method == "GET":
            self._send(200, {"total_statements": len(s.statements),
                             "statements": [st.to_json() for st in s.statements]})
        elif tail == ["statements"] and method == "POST":
            if s.state not in ("idle", "busy"):
                self._send(400, {"code": "BadRequest",
                                 "message": f"Session {s.id} is in state {s.state}; statements need idle or busy"})
                return
            self._send(200, owner.submit(s, body.get("code") or "", body.get("kind") or "pyspark").to_json())
        elif len(tail) >= 2 and tail[0] == "statements" and tail[1].isdigit():
            sid = int(tail[1])
            if sid >= len(s.statements):
                self._send(404, {"code": "NotFound", "message": f"statement {sid} not found"})
                return
            st = s.statements[sid]
            if len(tail) == 2 and method == "GET":
                self._send(200, st.to_json())
            elif tail[2:] == ["cancel"] and method == "POST":
                owner.cancel(s, st)
                self._send(200, {"msg": "canceled"})
            else:
                self._send(404, {"code": "NotFound", "message": "no such route"})
        else:
            self._send(404, {"code": "NotFound", "message": "no such route"})


LoopbackSynapse.handler = _Handler  # the handler class is defined below the server it answers for
