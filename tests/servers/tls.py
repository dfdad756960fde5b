"""A throwaway certificate authority and a server certificate for 127.0.0.1 (trustme), and the
start / stop / address every loopback protocol server of the tests shares (:class:`LoopbackServer`)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self


@dataclass
class Tls:
    """The CA file a client trusts, and the context a loopback server serves with."""

    ca_path: str
    server_context: ssl.SSLContext


def make_tls(folder: str | None = None) -> Tls:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    if folder is None:
        folder = tempfile.mkdtemp(prefix="kqlmp-tls-")
        atexit.register(shutil.rmtree, folder, True)  # the test run leaves no CA files behind
    ca_path = os.path.join(folder, "loopback-ca.pem")
    ca.cert_pem.write_to_path(ca_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(ctx)
    return Tls(ca_path=ca_path, server_context=ctx)


def free_port() -> int:
    """A loopback port free now (for servers that bind it themselves: it can be taken before they do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnedHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 request handler that knows the :class:`LoopbackServer` it answers for (``owner``)."""

    protocol_version = "HTTP/1.1"

    def __init__(self, request: Any, client_address: Any, server: Any, owner: Any = None):
        self.owner = owner
        super().__init__(request, client_address, server)

    def log_message(self, fmt: str, *args: Any) -> None:  # the test output stays the test's own
        pass


class LoopbackServer:
    """A ThreadingHTTPServer on a free 127.0.0.1 port, one thread per request, serving :attr:`handler`
    (an :class:`OwnedHandler`) with this object as its owner. Plain HTTP; :class:`TlsLoopbackServer` for HTTPS.

    Subclasses set :attr:`handler`, and :attr:`thread_name` / :attr:`url_path` when they differ.
    """

    handler: ClassVar[type[OwnedHandler]]
    #: The serving thread's name (what a stuck test's thread dump shows).
    thread_name: ClassVar[str] = "loopback"
    #: Appended to ``scheme://127.0.0.1:port`` in :attr:`url`.
    url_path: ClassVar[str] = ""
    _server: ThreadingHTTPServer | None = None

    def server_context(self) -> ssl.SSLContext | None:
        """The context HTTPS is served with; None serves plain HTTP."""
        return None

    def start(self) -> Self:
        ctx, owner, handler = self.server_context(), self, self.handler

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                if ctx is None:
                    handler(request, client_address, self, owner)
                    return
                try:  # the TLS handshake runs in the request's own thread: a failed one stops no other client
                    tls_sock = ctx.wrap_socket(request, server_side=True)
                except OSError:
                    return
                try:
                    handler(tls_sock, client_address, self, owner)
                finally:
                    with contextlib.suppress(OSError):
                        tls_sock.close()

        self._scheme = "http" if ctx is None else "https"
        self._server = Server(("127.0.0.1", 0), handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name=self.thread_name).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the server first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        port = self.port  # first: says the server was not started
        return f"{self._scheme}://127.0.0.1:{port}{self.url_path}"


class TlsLoopbackServer(LoopbackServer):
    """A :class:`LoopbackServer` over HTTPS with the certificate of :attr:`tls` (a client trusts :attr:`ca_path`)."""

    tls: Tls

    def server_context(self) -> ssl.SSLContext | None:
        return self.tls.server_context

    @property
    def ca_path(self) -> str:
        return self.tls.ca_path
