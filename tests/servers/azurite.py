"""Azurite (Microsoft's Azure Storage emulator, from npm) on loopback, and a proxy in front of it that
counts the requests and injects faults.

Azurite serves the Blob API only: the hierarchical namespace (dfs endpoint) is not emulated, so an
``abfss://`` lake is read through the blob endpoint, as the package reads every lake URL.
``.ci/run`` installs Azurite into ``.ci/node``; ``AZURITE_BIN`` names another ``azurite-blob``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from .tls import LoopbackServer, OwnedHandler, free_port

ACCOUNT = "devstoreaccount1"
#: Azurite's well-known development account key (public, in Microsoft's docs): not a secret.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_REPO = Path(__file__).resolve().parents[2]


def azurite_bin() -> str | None:
    for candidate in (os.environ.get("AZURITE_BIN"), str(_REPO / ".ci" / "node" / "node_modules" / ".bin" /
                                                         "azurite-blob"), shutil.which("azurite-blob")):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


class Azurite:
    """``azurite-blob`` in memory on a free loopback port."""

    def __init__(self, workdir: str):
        self.binary = azurite_bin()
        os.makedirs(workdir, exist_ok=True)
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def start(self) -> Azurite:
        if self.binary is None:
            raise RuntimeError("azurite-blob not found: run `npm install --prefix .ci/node azurite` (.ci/run does)")
        self.proc = subprocess.Popen(
            [self.binary, "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
             "--skipApiVersionCheck", "--loose", "--silent"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.workdir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"azurite exited: {self.proc.stderr.read().decode()[-500:]}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("azurite did not start within 60 s")

    def connection_string(self, url: str | None = None) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
                f"BlobEndpoint={url or self.url};")

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string())

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None


@dataclass
class Seen:
    """One request the proxy passed on: method, container, blob (or None), query parameters, status."""

    method: str
    container: str
    blob: str | None
    query: dict[str, str]
    status: int = 0

    @property
    def is_list(self) -> bool:
        return self.method == "GET" and self.query.get("comp") == "list"

    @property
    def is_read(self) -> bool:
        return self.method == "GET" and self.blob is not None and "comp" not in self.query


@dataclass
class Fault:
    """Answer requests *when* matches with *status* (and *headers*); status 0 cuts the body short, None
    passes the request on (after *before*, which may change what upstream holds)."""

    when: Callable[[Seen], bool]
    status: int | None
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    before: Callable[[Seen], None] | None = None
    hits: int = 0


_ERROR_BODY = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
               "</Error>")


class _FaultHandler(OwnedHandler):
    owner: FaultProxy

    def _any(self) -> None:
        self.owner._handle(self)

    do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _any


class FaultProxy(LoopbackServer):
    """A plain-HTTP reverse proxy in front of Azurite: logs every request, injects :class:`Fault` s."""

    handler = _FaultHandler
    thread_name = "azurite-proxy"
    url_path = f"/{ACCOUNT}"

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.seen: list[Seen] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.faults.clear()

    def add(self, when: Callable[[Seen], bool], status: int | None, times: int = 1,
            headers: dict[str, str] | None = None, before: Callable[[Seen], None] | None = None) -> Fault:
        fault = Fault(when, status, times, dict(headers or {}), before)
        with self._lock:
            self.faults.append(fault)
        return fault

    def lists(self) -> list[Seen]:
        return [s for s in self.seen if s.is_list]

    def reads(self) -> list[Seen]:
        return [s for s in self.seen if s.is_read]

    # -- the proxying ------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        u = urlparse(h.path)
        parts = unquote(u.path).lstrip("/").split("/", 2)
        seen = Seen(h.command, parts[1] if len(parts) > 1 else "", parts[2] if len(parts) > 2 else None,
                    {k: v[0] for k, v in parse_qs(u.query).items()})
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        fault = None
        with self._lock:
            self.seen.append(seen)
            for f in self.faults:
                if f.hits < f.times and f.when(seen):
                    f.hits += 1
                    fault = f
                    break
        if fault is not None and fault.before is not None:
            fault.before(seen)
        if fault is not None and fault.status:
            seen.status = fault.status
            code = {503: "ServerBusy", 429: "TooManyRequests", 403: "AuthenticationFailed"}.get(fault.status, "Fault")
            message = ("Server failed to authenticate the request. Signed expiry time must be after the current "
                       "time." if fault.status == 403 else "The server is busy.")
            payload = _ERROR_BODY.format(code=code, message=message).encode()
            h.send_response(fault.status)
            for k, v in {"x-ms-error-code": code, "Content-Type": "application/xml", **fault.headers}.items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=30)
        headers = {k: v for k, v in h.headers.items() if k.lower() not in ("host", "connection")}
        headers["Host"] = f"127.0.0.1:{self.upstream_port}"
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        seen.status = resp.status
        h.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        if fault is not None and fault.status == 0:  # the connection drops half-way through the body
            h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)
            return
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
        conn.close()


def upload_lake(service, root: str) -> dict[str, int]:
    """Every ``am-*`` folder under *root* as a container of the same name, its files as blobs; {container: blobs}."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = []
    counts: dict[str, int] = {}
    for container in sorted(os.listdir(root)):
        base = os.path.join(root, container)
        if not (container.startswith("am-") and os.path.isdir(base)):
            continue
        cc = service.get_container_client(container)
        if not cc.exists():
            cc.create_container()
        for d, _, files in os.walk(base):
            for name in files:
                path = os.path.join(d, name)
                jobs.append((cc, os.path.relpath(path, base).replace(os.sep, "/"), path))
        counts[container] = sum(1 for j in jobs if j[0] is cc)

    def put(job) -> None:
        cc, blob, path = job
        with open(path, "rb") as fh:
            cc.upload_blob(blob, fh, overwrite=True)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(put, jobs))
    return counts


def day_of(prefix: str) -> str | None:
    """``y=2024/m=03/d=06`` of a listing prefix that names a day folder (or something below one)."""
    m = re.search(r"y=(\d{4})/m=(\d{2})/d=(\d{2})", prefix or "")
    return None if m is None else f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
