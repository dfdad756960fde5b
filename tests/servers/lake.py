"""A loopback stand-in for the Sentinel data lake's KQL endpoint: Kusto REST v2 over TLS on 127.0.0.1.

It serves ``/lake/kql/v2/rest/query`` as the lake does: one database, ``<workspace name>-<workspace id>``;
lake tables readable only through ``external_table("T")`` (a bare table name is the lake's "could not be
resolved" error); bearer tokens issued by the loopback Log Analytics server's sign-in endpoint (the same
CA, so one ``REQUESTS_CA_BUNDLE`` trusts both). Queries run on the local engine over the tables a test
loads; answers are v2 frames (answers.py). A queued fault applies to the next query: ``("truncate", N)``
keeps N rows and reports the service's result-size cap on the completion information.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import answers
from .loganalytics import LoopbackLogAnalytics, _kusto_timespan, write_response
from .tls import OwnedHandler, Tls, TlsLoopbackServer

_EXTERNAL = re.compile(r"""external_table\s*\(\s*(["'])([^"']+)\1\s*\)""")


@dataclass
class LakeSeen:
    database: str
    csl: str
    authorization: str | None
    status: int = 0


class LoopbackLake(TlsLoopbackServer):
    thread_name = "loopback-lake"
    url_path = "/lake/kql"

    def __init__(self, sign_in: LoopbackLogAnalytics, database: str):
        self.sign_in = sign_in
        self.database = database
        self.tables: dict[str, Any] = {}
        self.seen: list[LakeSeen] = []
        self.faults: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._engine_lock = threading.Lock()
        self._engine = None

    @property
    def tls(self) -> Tls:
        return self.sign_in.tls  # one sign-in service and one certificate for both

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.faults.clear()

    def run(self, csl: str) -> Any:
        from kqlmagic_plus.engines.local import LocalEngine
        from kqlmagic_plus.request import Request

        local = _EXTERNAL.sub(lambda m: "__lake_" + m.group(2), csl)
        namespace = {"__lake_" + k: v for k, v in self.tables.items()}
        with self._engine_lock:
            if self._engine is None:
                self._engine = LocalEngine()
            return self._engine.run(Request(query=local, namespace=namespace))


def _kusto_value(kt: str, v: Any) -> Any:
    if v is None:
        return None
    if kt == "datetime":
        return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if isinstance(v, datetime) else str(v)
    if kt == "timespan":
        return _kusto_timespan(v) if isinstance(v, timedelta) else str(v)
    if kt == "dynamic":
        return json.loads(v) if isinstance(v, str) else v
    return v


def _frames(result: Any, keep: int | None) -> bytes:
    cols = []
    for name, kt in zip(result.columns, result.kql_types, strict=True):
        values = result.table.column(name).to_pylist()
        if keep is not None:
            values = values[:keep]
        cols.append((name, kt, [_kusto_value(kt, v) for v in values]))
    completion = []
    if keep is not None:
        completion = [answers._completion_row(2, "Error", "QueryError", answers.TRUNCATION_CURRENT)]
    return answers.v2([answers.primary(cols)], completion=completion)


class _Handler(OwnedHandler):
    owner: LoopbackLake | None

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        write_response(self, body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send(status, json.dumps({"error": {"code": code, "message": message, "@message": message,
                                                  "@permanent": True}}).encode())

    def do_GET(self) -> None:
        # Cloud metadata (/v1/rest/auth/metadata): as a proxy without it, 404 -> the client's defaults.
        self._error(404, "NotFound", f"no route for {self.path}")

    def do_POST(self) -> None:
        owner = self.owner
        assert owner is not None
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.path.startswith("/lake/kql/v2/rest/query"):
            self._error(404, "NotFound", f"no route for {self.path}")
            return
        body = json.loads(raw or b"{}")
        seen = LakeSeen(str(body.get("db") or ""), str(body.get("csl") or ""), self.headers.get("Authorization"))
        with owner._lock:
            owner.seen.append(seen)
            fault = owner.faults.pop(0) if owner.faults else None
        if not owner.sign_in.token_valid(seen.authorization):
            seen.status = 401
            self._error(401, "Unauthorized", "The token is missing or not valid for the data lake")
            return
        if seen.database != owner.database:
            seen.status = 400
            self._error(400, "General_BadRequest", f"Database '{seen.database}' was not found")
            return
        try:
            result = owner.run(seen.csl)
        except Exception as exc:  # the local engine's refusal is the lake's 400 (a bare table name included)
            seen.status = 400
            text = str(exc).splitlines()[0]
            if "does not exist" in text or "Unknown table" in text:
                text = (f"Semantic error: {text}; lake tables are read with external_table('<name>')")
            self._error(400, "General_BadRequest", text)
            return
        seen.status = 200
        self._send(200, _frames(result, fault[1] if fault and fault[0] == "truncate" else None))


LoopbackLake.handler = _Handler  # the handler class is defined below the server it answers for
