"""pytest fixtures for the remote-engine tests (import them into a test module with ``*``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from .kusto import KustoProxy, KustoServe
from .loganalytics import LoopbackLogAnalytics

WORKSPACE = "11111111-2222-3333-4444-555555555555"
WORKSPACE_2 = "66666666-7777-8888-9999-000000000000"
TENANT = "contoso.example"
APP_ID = "a1b2c3d4-0000-4000-8000-00000000c11e"
#: A client secret the tests grep for in every output, log, repr, exception and file.
APP_SECRET = "Kq1-Sup3r~S3cret.Value_9f8e7d6c"


def signin_rows(now: datetime, n: int = 48, users: tuple[str, ...] = ("alice", "bob", "carol")):
    import pyarrow as pa

    return pa.table({
        "TimeGenerated": pa.array([now - timedelta(hours=h) for h in range(n)], pa.timestamp("us", tz="UTC")),
        "UserPrincipalName": [f"{users[h % len(users)]}@contoso.example" for h in range(n)],
        "ResultType": [0 if h % 4 else 50126 for h in range(n)],
        "IPAddress": [f"10.0.{h // 10}.{h % 10}" for h in range(n)],
        "Latency": [h * 1.5 for h in range(n)],
    })


def big_table(rows: int):
    """*rows* sign-in-like rows (benchmarks)."""
    import pyarrow as pa

    now = datetime.now(UTC)
    return pa.table({
        "TimeGenerated": pa.array([now - timedelta(seconds=i) for i in range(rows)], pa.timestamp("us", tz="UTC")),
        "UserPrincipalName": [f"user{i % 977}@contoso.example" for i in range(rows)],
        "IPAddress": [f"10.{i % 256}.{i // 256 % 256}.{i % 7}" for i in range(rows)],
        "ResultType": [i % 5 for i in range(rows)],
        "Latency": [i * 0.25 for i in range(rows)],
    })


@pytest.fixture(scope="module")
def la_server():
    srv = LoopbackLogAnalytics().start()
    now = datetime.now(UTC)
    srv.load(WORKSPACE, SigninLogs=signin_rows(now))
    srv.load(WORKSPACE_2, SigninLogs=signin_rows(now, n=5, users=("mallory",)))
    srv.register_app(APP_ID, secret=APP_SECRET)
    srv.now = now
    yield srv
    srv.stop()


@pytest.fixture
def la(la_server, monkeypatch):
    """The loopback Log Analytics server, faults cleared, its CA trusted by every client in the test."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", la_server.ca_path)
    la_server.reset()
    yield la_server
    la_server.reset()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh HOME (token cache, remembered accounts) and no credentials in memory."""
    from kqlmagic_plus.connections import auth

    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_AUTHORITY_HOST",
                "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "MSI_SECRET", auth.CACHE_ENV):
        monkeypatch.delenv(var, raising=False)
    auth.forget_credentials()
    yield tmp_path
    auth.forget_credentials()


def la_conn(la, **extra: str) -> str:
    """A loganalytics:// connection string signing in with the test app's client secret."""
    props = {"workspace": WORKSPACE, "tenant": TENANT, "clientid": APP_ID, "clientsecret": APP_SECRET,
             "authority": la.url, "endpoint": la.url, **extra}
    return "loganalytics://" + ";".join(f"{k}='{v}'" for k, v in props.items())


@pytest.fixture(scope="module")
def kusto_serve(tmp_path_factory):
    """``duckdb-kql serve`` over a DuckDB file with an Events table, on a free port."""
    import duckdb_kql

    path = str(tmp_path_factory.mktemp("kusto") / "hunting.duckdb")
    con = duckdb_kql.connect(path)
    con.execute("""
        CREATE TABLE Events AS
        SELECT range AS N,
               'user' || (range % 3) AS Account,
               TIMESTAMP '2024-05-01 00:00:00' + to_seconds(range * 60) AS TimeGenerated,
               to_seconds(range) AS Duration,
               CAST(range AS DOUBLE) * 0.5 AS Score,
               range % 2 = 0 AS Even
        FROM range(200)
    """)
    con.close()
    srv = KustoServe(path).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def kusto_proxy_server(kusto_serve):
    proxy = KustoProxy(kusto_serve.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def kusto_proxy(kusto_proxy_server):
    kusto_proxy_server.reset()
    yield kusto_proxy_server
    kusto_proxy_server.reset()


def adx_conn(url: str, database: str, *auth_words: str, **extra: str) -> str:
    props = {"cluster": url, "database": database, **extra}
    words = list(auth_words) or ([] if "clientsecret" in extra else ["anonymous"])
    return "adx://" + ";".join([*(f"{k}='{v}'" for k, v in props.items()), *words])


def secret_free(*texts: object, secret: str = APP_SECRET) -> bool:
    """No form of *secret* in any of *texts* (plain, reversed)."""
    blob = "\n".join(str(t) for t in texts)
    return secret not in blob and secret[::-1] not in blob


def files_under(root: os.PathLike | str) -> list[str]:
    out = []
    for d, _, files in os.walk(root):
        out.extend(os.path.join(d, f) for f in files)
    return out
