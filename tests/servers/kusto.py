"""``duckdb-kql serve`` on a free loopback port, and a fault-injecting proxy in front of it.

``KustoServe`` runs the real ``python -m duckdb_kql serve`` (a Kusto REST v1/v2 endpoint over a
DuckDB file) as a subprocess. ``KustoProxy`` forwards every request to it unchanged unless a fault
is queued: then it answers for the service (429 with Retry-After, 503), stalls, drops the
connection, sends broken JSON, or edits the real v2 answer (a visualization row, a truncated
primary result with Kusto's completion error, a partial failure). It also records what the client
sent (the ``properties`` with Options and Parameters), so tests can see request properties arrive.

One adaptation is always on: the REST API (and azure-kusto-data) send ``properties`` as JSON
text, which duckdb-kql 1.1.2's serve does not decode (it reads only an object, and silently drops
every option and parameter otherwise); the proxy decodes it before forwarding.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from .loganalytics import Fault, write_response
from .tls import LoopbackServer, OwnedHandler, free_port

TRUNCATION_PAYLOAD = {
    "error": {"code": "LimitsExceeded", "message": "Request is invalid and cannot be executed.",
              "@type": "Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException",
              "@message": "Query result set has exceeded the internal record count limit 500000 "
                          "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)",
              "@permanent": True}}


class KustoServe:
    """``python -m duckdb_kql serve DB --port N`` on loopback, started and stopped by the tests."""

    def __init__(self, database: str, *args: str):
        self.database = database
        self.args = args
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        """The database name clients use (the file's stem)."""
        return os.path.splitext(os.path.basename(self.database))[0]

    def start(self, timeout: float = 60.0) -> KustoServe:
        last = ""
        for _ in range(5):  # a port picked free can be taken before the server binds it
            self.port = free_port()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "duckdb_kql", "serve", self.database, "--port", str(self.port), *self.args],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last = self.proc.stdout.read() if self.proc.stdout else ""
                    break
                try:
                    with urllib.request.urlopen(self.url + "/", timeout=1) as r:
                        if r.status == 200:
                            return self
                except (OSError, urllib.error.URLError):
                    time.sleep(0.1)
            else:
                self.stop()
                raise RuntimeError(f"duckdb-kql serve did not start within {timeout} s")
        raise RuntimeError(f"duckdb-kql serve failed to start: {last}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None


@dataclass
class Sent:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def properties(self) -> dict[str, Any]:
        p = self.body.get("properties") or {}
        return json.loads(p) if isinstance(p, str) else p


class KustoProxy(LoopbackServer):
    """A plain-http proxy in front of an upstream Kusto endpoint, with fault injection."""

    thread_name = "kusto-proxy"

    def __init__(self, upstream: str):
        self.upstream = upstream.rstrip("/")
        self.faults: list[Fault] = []
        self.sent: list[Sent] = []
        self.statuses: list[int] = []
        #: Canned answers: a query (or command) whose text holds ``fixture:<name>`` gets
        #: ``canned[name]`` = (status, body bytes) instead of the upstream's answer (tests/servers/answers.py).
        self.canned: dict[str, tuple[int, bytes]] = {}
        #: Answers for whole commands the upstream does not implement (``.show database schema as json``):
        #: command text -> (status, body bytes), the service's own answer shape.
        self.commands: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self.sent.clear()
            self.statuses.clear()
            self.canned.clear()
            self.commands.clear()

    def canned_for(self, text: str) -> tuple[int, bytes] | None:
        marker = text.find("fixture:")
        if marker < 0:
            return None
        name = text[marker + len("fixture:"):].split()[0] if text[marker + len("fixture:"):].strip() else ""
        with self._lock:
            return self.canned.get(name)

    def next_fault(self) -> Fault | None:
        with self._lock:
            return self.faults.pop(0) if self.faults else None


class _ProxyHandler(OwnedHandler):
    owner: KustoProxy

    def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None, *, cut: bool = False) -> None:
        """*cut*: send the headers and half the body, then close (a link that dies mid-answer)."""
        self.owner.statuses.append(-1 if cut else status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if cut:
            self.close_connection = True
            data = data[: len(data) // 2]
        write_response(self, data)

    def do_GET(self) -> None:
        status, data, _ = self._forward("GET", None)
        self._send(status, data)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        self.owner.sent.append(Sent(self.path, body, dict(self.headers.items())))
        canned = self.owner.canned_for(str(body.get("csl") or "")) or \
            self.owner.commands.get(str(body.get("csl") or "").strip())
        if canned is not None:
            self._send(*canned)
            return
        fault = self.owner.next_fault() if self.path.startswith(("/v2/rest/query", "/v1/rest/mgmt")) else None
        if fault is not None:
            if fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                err = {"error": {"code": "TooManyRequests" if fault.status == 429 else "ServiceUnavailable",
                                 "message": fault.message or "The service is busy", "@message":
                                 fault.message or "The service is busy", "@permanent": False}}
                self._send(fault.status, json.dumps(err).encode(), headers)
                return
            if fault.kind in ("delay", "hang"):
                time.sleep(fault.seconds)
            if fault.kind == "drop":
                self.close_connection = True
                self.owner.statuses.append(-1)
                return
            if fault.kind == "malformed":
                self._send(200, b'[{"FrameType": "DataSetHeader", ')
                return
        if isinstance(body.get("properties"), str):
            # The Kusto REST API carries `properties` as JSON text, and azure-kusto-data sends it so;
            # duckdb-kql 1.1.2's serve only reads a JSON object and would drop every option and
            # parameter. Hand it the object.
            body["properties"] = json.loads(body["properties"])
            raw = json.dumps(body).encode()
        status, data, headers = self._forward("POST", raw)
        if status == 200 and fault is not None and fault.kind in ("truncate", "partial", "visualization"):
            data = _edit(json.loads(data), fault)
        self._send(status, data, cut=fault is not None and fault.kind == "cut")

    def _forward(self, method: str, raw: bytes | None) -> tuple[int, bytes, dict[str, str]]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length",
                                                                           "accept-encoding")}
        req = urllib.request.Request(self.owner.upstream + self.path, data=raw, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, r.read(), dict(r.headers.items())
        except urllib.error.HTTPError as e:
            with contextlib.closing(e):
                return e.code, e.read(), dict(e.headers.items())


def _edit(frames: list[dict[str, Any]], fault: Fault) -> bytes:
    for frame in frames:
        if frame.get("FrameType") == "DataSetCompletion" and fault.kind in ("truncate", "partial"):
            frame["HasErrors"] = True
        if frame.get("FrameType") != "DataTable":
            continue
        kind = frame.get("TableKind")
        if kind == "QueryProperties" and fault.kind == "visualization":
            frame["Rows"] = [[1, "Visualization", json.dumps(fault.payload)]]
        if kind == "PrimaryResult" and fault.kind == "truncate":
            frame["Rows"] = frame["Rows"][: fault.rows]
        if kind == "QueryCompletionInformation" and fault.kind in ("truncate", "partial"):
            template = list(frame["Rows"][0])
            names = [c["ColumnName"] for c in frame["Columns"]]
            row = dict(zip(names, template, strict=True))
            payload = TRUNCATION_PAYLOAD if fault.kind == "truncate" else {"error": {
                "code": "General_InternalServerError", "message": "Partial query failure",
                "@message": fault.message or "Partial query failure: a shard was unavailable"}}
            row.update({"Level": 2, "LevelName": "Error", "StatusCode": -2133196800,
                        "StatusCodeName": "KustoServicePartialQueryFailure", "EventType": 4,
                        "EventTypeName": "QueryError", "Payload": json.dumps(payload)})
            frame["Rows"].append([row[n] for n in names])
    return json.dumps(frames).encode()


KustoProxy.handler = _ProxyHandler  # the handler class is defined below the server it answers for
