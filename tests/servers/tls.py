"""A throwaway certificate authority and a server certificate for 127.0.0.1 (trustme)."""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass


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
