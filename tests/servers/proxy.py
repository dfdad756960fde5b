"""A forwarding HTTP proxy on loopback that understands CONNECT (what HTTPS_PROXY points at).

It records the ``host:port`` of every tunnel it opened, so a test can tell whether a client went
through it; the TLS inside the tunnel is between the client and the real server, untouched.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        line = self.rfile.readline(8192).decode("latin-1")
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # headers: nothing in them matters here
        method, _, rest = line.partition(" ")
        target = rest.split(" ")[0]
        if method != "CONNECT" or ":" not in target:
            self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            return
        host, _, port = target.rpartition(":")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        self.server.tunnels.append(target)  # type: ignore[attr-defined]
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.wfile.flush()
        client = self.connection
        with upstream:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 30)
                if not ready:
                    return
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (upstream if src is client else client).sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class ConnectProxy:
    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.tunnels = []  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def tunnels(self) -> list[str]:
        return self._server.tunnels  # type: ignore[attr-defined]

    def start(self) -> ConnectProxy:
        threading.Thread(target=self._server.serve_forever, daemon=True, name="connect-proxy").start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
