"""``%sparkhunt --connect synapse://ws/pool``: the real Livy client code against a loopback Synapse over TLS.

The loopback server (tests/servers_livy) speaks Synapse's Livy API and Entra ID's client-credentials flow;
its sessions run statements in a real PySpark process on the test run's Spark Connect server. The sign-in is
azure-identity's ClientSecretCredential pointed at the loopback authority.
"""

from __future__ import annotations

import time

import pytest
from servers_livy import HttpFault, LoopbackSynapse

pytestmark = [pytest.mark.spark, pytest.mark.slow]

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
SECRET = "syn~TopSecretValue_12345"


@pytest.fixture(scope="module")
def synapse(spark_connect_url):
    srv = LoopbackSynapse(spark_connect_url).start()
    srv.register_app(APP, SECRET)
    yield srv
    srv.stop()


@pytest.fixture
def syn(synapse, monkeypatch, ip):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", synapse.ca_path)
    synapse.reset()
    yield synapse
    from kqlmagic_plus.engines.spark.sessions import manager

    manager().stop(_target(synapse))


def _target(srv: LoopbackSynapse, **extra: str) -> str:
    parts = {"tenant": TENANT, "clientid": APP, "clientsecret": SECRET, "authority": srv.url,
             "endpoint": srv.url, "executors": "2", "executorsize": "Small", **extra}
    return "synapse://soc-ws/huntpool;" + ";".join(f"{k}={v}" for k, v in parts.items())


def test_statement_round_trip_reuses_one_session(syn, run_cell, ip):
    target = _target(syn)
    before = len(syn.sessions)
    _, err, out = run_cell(f"%%sparkhunt --connect {target} --sql -o r\nSELECT 40 + 2 AS answer, 'x' AS s")
    assert err is None, out
    assert ip.user_ns["r"].df["answer"].tolist() == [42]
    _, err, out = run_cell("%%sparkhunt --pyspark -o v\nspark.range(10).count() + 1")
    assert err is None, out
    assert str(ip.user_ns["v"]) == "11"  # a value other than a DataFrame comes back as its repr, as Livy shows it
    assert len(syn.sessions) == before + 1  # the second cell reused the session
    body = syn.bodies[0] if syn.bodies else {}
    assert body.get("numExecutors") == 2 and body.get("executorCores") == 4
    status, err, out = run_cell("%sparkhunt --status")
    shown = out + repr(status) + status._repr_html_() + repr(ip.user_ns["r"]) + str(ip.user_ns["r"].connection)
    assert "synapse://soc-ws/huntpool" in shown
    assert SECRET not in shown


def test_spark_error_comes_back_as_one_line(syn, run_cell):
    _, err, out = run_cell(f"%%sparkhunt --connect {_target(syn)} --sql\nSELECT nope")
    assert err is not None
    assert "UNRESOLVED_COLUMN" in str(err) and "nope" in str(err)
    assert "Traceback" not in str(err) and SECRET not in str(err) + out


def test_dead_session_reported_with_state_and_log_then_replaced(syn, run_cell, ip):
    target = _target(syn)
    _, err, out = run_cell(f"%%sparkhunt --connect {target} --sql\nSELECT 1 AS a")
    assert err is None, out
    sid = syn.live_sessions()[0].id
    syn.kill_session(sid)
    _, err, out = run_cell("%%sparkhunt --sql\nSELECT 2 AS a")
    text = str(err) + out
    assert "dead" in text and "out of memory" in text
    _, err, out = run_cell("%%sparkhunt --sql -o r\nSELECT 3 AS a")
    assert err is None, out
    assert ip.user_ns["r"].df["a"].tolist() == [3]
    assert len(syn.live_sessions()) == 1 and syn.live_sessions()[0].id != sid


def test_throttling_is_retried(syn, run_cell, ip):
    target = _target(syn)
    _, err, out = run_cell(f"%sparkhunt --connect {target}")
    assert err is None, out
    syn.inject(HttpFault(429, path_contains="/statements", method="POST", retry_after="1"))
    started = time.monotonic()
    _, err, out = run_cell("%%sparkhunt --sql -o r\nSELECT 5 AS a")
    assert err is None, out
    assert ip.user_ns["r"].df["a"].tolist() == [5]
    assert time.monotonic() - started >= 1  # Retry-After honoured


def test_wrong_secret_is_an_auth_error_without_the_secret(syn, run_cell):
    bad = _target(syn, clientsecret="wrong-secret-value-999")
    _, err, out = run_cell(f"%%sparkhunt --connect {bad} --sql\nSELECT 1")
    assert err is not None
    text = str(err) + out
    assert "secret" in text.lower() and "wrong-secret-value-999" not in text and SECRET not in text


def test_bad_target_names_the_part(run_cell):
    _, err, _ = run_cell("%sparkhunt --connect synapse://soc-ws")
    assert err is not None and "pool" in str(err)
    _, err, _ = run_cell("%sparkhunt --connect synapse://soc-ws/pool;executorsize=Huge")
    assert err is not None and "executorsize" in str(err)
