"""One real Spark per test run: a local session (``local[2]``) that also serves Spark Connect.

Import the fixtures into a test module (``from spark_fixtures import *  # noqa: F403``) or use them
through ``pytest_plugins``. Every module that needs Spark should use these, not start its own:

- ``spark_local``: the classic ``SparkSession`` (local[2], UTC, 4 shuffle partitions, no UI, 2 GB
  driver). Started once, with the Spark Connect plugin on a free loopback port and a token, because
  a JVM holds one SparkContext and the plugin cannot be added to a running one.
- ``spark_connect_url``: ``sc://localhost:<port>/;token=<token>`` of that server.
- ``spark_connect``: a Spark Connect client session on it (``pyspark.sql.connect``).

The JVM starts in 15-40 s on 2 cores; it stops when the test process exits.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading

import pytest

#: Settings of the test session (the issue's: UTC, 4 shuffle partitions, no UI, 2 GB driver).
TEST_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "2g",
    "spark.sql.adaptive.enabled": "false",
}

_lock = threading.Lock()
_state: dict[str, object] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_spark() -> tuple[object, str]:
    """The process's local Spark session and its Spark Connect URL (started on first call)."""
    with _lock:
        if "spark" in _state:
            spark = _state["spark"]
            if spark.sparkContext._jsc is not None:  # type: ignore[attr-defined]
                return spark, _state["url"]  # type: ignore[return-value]
        from pyspark import SparkContext
        from pyspark.sql import SparkSession

        if SparkContext._active_spark_context is not None:
            active = SparkContext._active_spark_context
            plugins = active.getConf().get("spark.plugins", "") or ""
            if "SparkConnectPlugin" not in plugins:
                pytest.fail("a SparkContext without the Spark Connect plugin is already running in this test "
                            "process; start Spark through tests/spark_fixtures.py (spark_local) instead")
        port = free_port()
        token = secrets.token_urlsafe(16)
        builder = SparkSession.builder.master("local[2]").appName("kqlmagic_plus-tests")
        for k, v in {**TEST_CONF,
                     "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
                     "spark.connect.grpc.binding.address": "127.0.0.1",
                     "spark.connect.grpc.binding.port": str(port),
                     "spark.connect.authenticate.token": token}.items():
            builder = builder.config(k, v)
        # Spark Connect sends a token only over TLS, except to "localhost" (local channel credentials).
        os.environ.pop("SPARK_REMOTE", None)
        spark = builder.getOrCreate()
        url = f"sc://localhost:{port}/;token={token}"
        _state.update(spark=spark, url=url, token=token, port=port)
        return spark, url


@pytest.fixture(scope="session")
def spark_local():
    spark, _ = start_spark()
    return spark


@pytest.fixture(scope="session")
def spark_connect_url(spark_local):
    return _state["url"]


@pytest.fixture(scope="session")
def spark_connect_token(spark_local):
    return _state["token"]


@pytest.fixture(scope="session")
def spark_connect(spark_connect_url):
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    session = RemoteSession.builder.remote(spark_connect_url).create()
    yield session
    session.stop()
