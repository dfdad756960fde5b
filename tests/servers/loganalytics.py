"""A Log Analytics query API and a Microsoft Entra ID token endpoint on loopback, over TLS.

The query API answers ``POST /v1/workspaces/{id}/query`` the way api.loganalytics.io does (tables,
statistics, render metadata, partial errors, error bodies), computing the rows with kqlmagic_plus's
local engine over the tables a test loads per workspace. It honours the request's timespan (rows
outside it are not visible), additional workspaces (their tables are unioned in), and the
``Prefer`` header (``wait=``, ``include-statistics``, ``include-render``).

The identity side speaks enough OpenID Connect for MSAL (through azure-identity) to sign in
against it: tenant discovery, client credentials (secret or certificate assertion), device code,
refresh tokens. Tokens it issues are what the query API accepts.

Faults are queued with :meth:`LoopbackLogAnalytics.inject` and consumed one per query request.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from .tls import OwnedHandler, Tls, TlsLoopbackServer, make_tls

PARTIAL_TOP = "There were some errors when processing your query."
TRUNCATION_MESSAGE = ("Query result set has exceeded the internal record count limit 500000 "
                      "(E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)")


@dataclass
class Fault:
    """One misbehaviour, applied to the next query request."""

    kind: str  # status | delay | hang | drop | cut | malformed | answer | error | partial | truncate | visualization
    status: int = 0
    retry_after: str | None = None
    seconds: float = 0.0
    message: str = ""
    rows: int = 0
    payload: Any = None
    #: Only for a request whose timespan text starts with this (one slice of a sliced query); "" for any.
    match: str = ""


@dataclass
class App:
    client_id: str
    secret: str | None = None
    certificate: bool = False


@dataclass
class Seen:
    """What one query request carried (for assertions)."""

    workspace: str
    body: dict[str, Any]
    prefer: str
    authorization: str | None
    status: int = 0


@dataclass
class _State:
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    apps: dict[str, App] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    device_codes: dict[str, str] = field(default_factory=dict)
    static_tokens: set[str] = field(default_factory=set)
    requests: list[Seen] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    forms: list[dict[str, str]] = field(default_factory=list)


class LoopbackLogAnalytics(TlsLoopbackServer):
    """Start with :meth:`start`; ``url`` is the https base for both the query API and sign-in."""

    thread_name = "loopback-la"

    def __init__(self, tls: Tls | None = None):
        self.tls = tls or make_tls()
        self.state = _State()
        self._lock = threading.Lock()
        self._engine_lock = threading.Lock()
        self._engine: Any = None
        #: What IDENTITY_HEADER must carry for the managed-identity endpoint.
        self.msi_header = "msi-" + secrets.token_urlsafe(8)

    # -- setup -------------------------------------------------------------------------------------------

    def load(self, workspace: str, **tables: Any) -> None:
        """Tables (pyarrow Tables or pandas DataFrames) visible in *workspace*."""
        import pyarrow as pa

        with self._lock:
            ws = self.state.tables.setdefault(workspace, {})
            for name, t in tables.items():
                ws[name] = t if isinstance(t, pa.Table) else pa.Table.from_pandas(t, preserve_index=False)

    def register_app(self, client_id: str, secret: str | None = None, certificate: bool = False) -> None:
        with self._lock:
            self.state.apps[client_id] = App(client_id, secret, certificate)

    def static_token(self) -> str:
        """A token the query API accepts, for tests that are not about sign-in."""
        token = "static-" + secrets.token_urlsafe(16)
        with self._lock:
            self.state.static_tokens.add(token)
        return token

    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self.state.faults.extend(faults)

    def reset(self) -> None:
        with self._lock:
            self.state.faults.clear()
            self.state.requests.clear()
            self.state.counts.clear()
            self.state.forms.clear()

    @property
    def requests(self) -> list[Seen]:
        return list(self.state.requests)

    @property
    def counts(self) -> Counter:
        return self.state.counts

    def _next_fault(self, timespan: str = "") -> Fault | None:
        with self._lock:
            for i, f in enumerate(self.state.faults):
                if not f.match or timespan.startswith(f.match):
                    return self.state.faults.pop(i)
            return None

    # -- tokens ------------------------------------------------------------------------------------------

    def _issue(self, client_id: str, tenant: str, user: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self.state.tokens[access] = time.time() + 3600
        out: dict[str, Any] = {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                               "access_token": access}
        if user:
            refresh = "rt-" + secrets.token_urlsafe(24)
            with self._lock:
                self.state.refresh_tokens.add(refresh)
            tid = tenant if _is_guid(tenant) else "72f988bf-86f1-41af-91ab-2d7cd011db47"
            oid = "00000000-0000-0000-0000-00000000a11c"
            now = int(time.time())
            claims = {"aud": client_id, "iss": f"{self.url}/{tid}/v2.0", "iat": now, "nbf": now, "exp": now + 3600,
                      "name": "Alice Analyst", "oid": oid, "preferred_username": "alice@contoso.example",
                      "sub": "alice-sub", "tid": tid, "ver": "2.0"}
            out.update({
                "refresh_token": refresh, "scope": "https://api.loganalytics.io/.default",
                "id_token": _jwt(claims),
                "client_info": _b64(json.dumps({"uid": oid, "utid": tid}).encode()),
            })
        return out

    def token_valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        token = authorization[7:]
        with self._lock:
            return token in self.state.static_tokens or self.state.tokens.get(token, 0) > time.time()

    # -- queries -----------------------------------------------------------------------------------------

    def run_query(self, workspace: str, body: dict[str, Any]) -> Any:
        """The local engine's Result for *body* against *workspace* (and additional workspaces)."""
        import pyarrow as pa

        from kqlmagic_plus.engines.local import LocalEngine
        from kqlmagic_plus.request import Request

        names = [workspace, *list(body.get("workspaces") or [])]
        start, end = _parse_timespan(body.get("timespan"))
        namespace: dict[str, Any] = {}
        with self._lock:
            for ws in names:
                for tname, t in self.state.tables.get(ws, {}).items():
                    namespace.setdefault(tname, []).append(t)
        merged = {}
        for tname, parts in namespace.items():
            t = pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]
            merged[tname] = _window(t, start, end)
        with self._engine_lock:
            if self._engine is None:
                self._engine = LocalEngine()
            return self._engine.run(Request(query=body.get("query") or "", namespace=merged))


class _Handler(OwnedHandler):
    owner: LoopbackLogAnalytics | None

    # -- plumbing --------------------------------------------------------------------------------------

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None, *,
                   cut: bool = False) -> None:
        """*cut*: send the headers and half the body, then close (a link that dies mid-answer)."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if "gzip" in (self.headers.get("Accept-Encoding") or "") and len(data) > 256:
            # As the real query API does: clients that accept gzip get it.
            import gzip

            data = gzip.compress(data, compresslevel=1)
            self.send_header("Content-Encoding", "gzip")
            if self.owner is not None:
                self.owner.state.counts["gzip"] += 1
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if cut:
            self.close_connection = True
            data = data[: len(data) // 2]
        write_response(self, data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- routes ----------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        parts = [p for p in path.split("/") if p]
        owner = self.owner
        assert owner is not None
        if path.endswith("/.well-known/openid-configuration") and parts:
            tenant = parts[0]
            base = f"{owner.url}/{tenant}"
            owner.counts["discovery"] += 1
            self._send_json(200, {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "issuer": f"{base}/v2.0",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                "tenant_region_scope": None,
            })
            return
        if path == "/msi/token":
            # App Service's managed identity endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER).
            owner.counts["msi"] += 1
            if self.headers.get("X-IDENTITY-HEADER") != owner.msi_header:
                self._send_json(401, {"error": "invalid_header", "error_description": "bad identity header"})
                return
            q = parse_qs(urlparse(self.path).query)
            token = owner._issue("msi", "msi", user=False)
            self._send_json(200, {"access_token": token["access_token"], "expires_on": str(int(time.time()) + 3600),
                                  "resource": (q.get("resource") or [""])[0], "token_type": "Bearer"})
            return
        if len(parts) == 4 and parts[0] == "v1" and parts[1] == "workspaces" and parts[3] == "metadata":
            self._metadata(parts[2])
            return
        self._send_json(404, {"error": {"code": "PathNotFoundError", "message": f"no route for {path}"}})

    def _metadata(self, workspace: str) -> None:
        """``GET /v1/workspaces/{id}/metadata``: the workspace's tables and columns, as the query API's
        metadata endpoint answers (``tables[]`` with ``columns[]`` of ``name`` and KQL ``type``)."""
        from kqlmagic_plus.kqltypes import kql_type_of_arrow

        owner = self.owner
        assert owner is not None
        owner.counts["metadata"] += 1
        if not owner.token_valid(self.headers.get("Authorization")):
            self._send_json(401, {"error": {"code": "InvalidTokenError",
                                            "message": "The provided authentication is not valid for this resource"}})
            return
        if workspace not in owner.state.tables:
            self._send_json(404, {"error": {"code": "WorkspaceNotFoundError",
                                            "message": f"Workspace {workspace} not found"}})
            return
        tables = [{"id": f"t_{name}", "name": name, "timespanColumn": "TimeGenerated",
                   "columns": [{"name": f.name, "type": kql_type_of_arrow(f.type)} for f in t.schema]}
                  for name, t in owner.state.tables[workspace].items()]
        workspaces = [{"id": workspace, "name": workspace, "tables": [t["id"] for t in tables]}]
        self._send_json(200, {"tables": tables, "tableGroups": [], "functions": [], "workspaces": workspaces})

    def do_POST(self) -> None:
        path = urlparse(self.path).path
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[1] == "oauth2":
            self._oauth(parts[0], parts[-1])
            return
        if len(parts) == 4 and parts[0] == "v1" and parts[1] == "workspaces" and parts[3] == "query":
            self._query(parts[2])
            return
        self._body()
        self._send_json(404, {"error": {"code": "PathNotFoundError", "message": f"no route for {path}"}})

    def _oauth(self, tenant: str, action: str) -> None:
        owner = self.owner
        assert owner is not None
        form = {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
        owner.state.forms.append(form)
        client_id = form.get("client_id", "")
        if action == "devicecode":
            owner.counts["devicecode"] += 1
            code = "dc-" + secrets.token_urlsafe(16)
            user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
            with owner._lock:
                owner.state.device_codes[code] = client_id
            self._send_json(200, {"device_code": code, "user_code": user_code,
                                  "verification_uri": "https://microsoft.com/devicelogin", "expires_in": 900,
                                  "interval": 1,
                                  "message": f"To sign in, use a web browser to open the page "
                                             f"https://microsoft.com/devicelogin and enter the code {user_code}."})
            return
        if action != "token":
            self._send_json(404, {"error": "invalid_request", "error_description": f"no {action}"})
            return
        grant = form.get("grant_type", "")
        owner.counts[f"token:{grant}"] += 1
        if grant == "client_credentials":
            app = owner.state.apps.get(client_id)
            ok = app is not None and (
                (app.secret is not None and form.get("client_secret") == app.secret)
                or (app.certificate and bool(form.get("client_assertion"))))
            if not ok:
                self._send_json(401, {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being "
                                         "sent in the request is the client secret value, not the client secret "
                                         f"ID, for a secret added to app '{client_id}'.\r\nTrace ID: "
                                         f"{uuid.uuid4()}\r\nCorrelation ID: {uuid.uuid4()}\r\nTimestamp: "
                                         f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
                    "error_codes": [7000215], "timestamp": f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}",
                    "trace_id": str(uuid.uuid4()), "correlation_id": str(uuid.uuid4())})
                return
            self._send_json(200, owner._issue(client_id, tenant, user=False))
            return
        if grant in ("device_code", "urn:ietf:params:oauth:grant-type:device_code"):
            with owner._lock:
                known = owner.state.device_codes.pop(form.get("device_code", ""), None)
            if known is None:
                self._send_json(400, {"error": "expired_token", "error_description": "AADSTS70020: expired"})
                return
            self._send_json(200, owner._issue(client_id, tenant, user=True))
            return
        if grant == "refresh_token":
            with owner._lock:
                ok = form.get("refresh_token") in owner.state.refresh_tokens
            if not ok:
                self._send_json(400, {"error": "invalid_grant", "error_description": "AADSTS70000: bad refresh"})
                return
            self._send_json(200, owner._issue(client_id, tenant, user=True))
            return
        self._send_json(400, {"error": "unsupported_grant_type", "error_description": grant})

    def _query(self, workspace: str) -> None:
        owner = self.owner
        assert owner is not None
        raw = self._body()
        prefer = self.headers.get("Prefer") or ""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        seen = Seen(workspace, body, prefer, self.headers.get("Authorization"))
        owner.state.requests.append(seen)
        owner.counts["query"] += 1
        if not owner.token_valid(seen.authorization):
            seen.status = 401
            self._send_json(401, {"error": {"code": "InvalidTokenError",
                                            "message": "The provided authentication is not valid for this resource"}},
                            {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/x"'})
            return
        if workspace not in owner.state.tables:
            seen.status = 404
            self._send_json(404, {"error": {"code": "WorkspaceNotFoundError",
                                            "message": f"Workspace {workspace} not found"}})
            return
        fault = owner._next_fault(str(body.get("timespan") or ""))
        wait = _prefer_wait(prefer)
        if fault is not None:
            if fault.kind == "status":
                seen.status = fault.status
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._send_json(fault.status, {"error": {
                    "code": "ThrottledError" if fault.status == 429 else "ServiceUnavailable",
                    "message": fault.message or ("Too many requests" if fault.status == 429 else
                                                 "The service is temporarily unavailable")}}, headers)
                return
            if fault.kind == "delay":
                if wait is not None and fault.seconds > wait:
                    time.sleep(wait)
                    seen.status = 504
                    self._send_json(504, {"error": {"code": "GatewayTimeout",
                                                    "message": f"The query did not finish within {wait} seconds"}})
                    return
                time.sleep(fault.seconds)
            if fault.kind == "hang":
                time.sleep(fault.seconds)
            if fault.kind == "drop":
                self.close_connection = True
                seen.status = -1
                return
            if fault.kind == "malformed":
                seen.status = 200
                self._send_json(200, b'{"tables": [{"name": "PrimaryResult", "columns": [')
                return
            if fault.kind == "error":  # an error answer of the test's choosing: status and body
                seen.status = fault.status
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._send_json(fault.status, fault.payload, headers)
                return
            if fault.kind == "answer":  # valid JSON of the test's choosing
                seen.status = 200
                self._send_json(200, fault.payload)
                return
        try:
            result = owner.run_query(workspace, body)
        except Exception as exc:  # the local engine's error is the service's 400
            seen.status = 400
            self._send_json(400, _error_body(exc))
            return
        payload = _payload(result, prefer, fault)
        seen.status = 200
        self._send_json(200, payload, cut=fault is not None and fault.kind == "cut")


LoopbackLogAnalytics.handler = _Handler  # the handler class is defined below the server it answers for


def write_response(handler: BaseHTTPRequestHandler, body: bytes) -> None:
    """Headers and body in one write: written apart, Nagle's algorithm and the client's delayed ACK
    add ~40 ms to a reply on a kept-alive connection, which would drown what the benchmarks measure."""
    handler._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
    head = b"".join(handler._headers_buffer)  # type: ignore[attr-defined]
    handler._headers_buffer = []  # type: ignore[attr-defined]
    handler.wfile.write(head + body)
    handler.wfile.flush()


def _payload(result: Any, prefer: str, fault: Fault | None) -> dict[str, Any]:
    names = list(result.table.column_names)
    rows = _rows(result)
    if fault is not None and fault.kind == "truncate":
        rows = rows[: fault.rows]
    payload: dict[str, Any] = {"tables": [{
        "name": "PrimaryResult",
        "columns": [{"name": n, "type": t} for n, t in zip(names, result.kql_types, strict=True)],
        "rows": rows,
    }]}
    if "include-statistics=true" in prefer:
        payload["statistics"] = {"query": {
            "executionTime": round(result.elapsed, 6),
            "resourceUsage": {"cache": {"memory": {"hitCount": 0, "missCount": 0}}, "cpu": {"totalCpu": "00:00:00"}},
            "datasetStatistics": [{"tableRowCount": len(rows), "tableSize": result.table.nbytes}],
        }}
    if "include-render=true" in prefer:
        if fault is not None and fault.kind == "visualization":
            payload["render"] = fault.payload
        elif result.render is not None:
            payload["render"] = _render_block(result.render)
    if fault is not None and fault.kind in ("partial", "truncate"):
        message = TRUNCATION_MESSAGE if fault.kind == "truncate" else (fault.message or "Partial query failure")
        payload["error"] = {"code": "PartialError", "message": PARTIAL_TOP, "details": [{
            "code": "EngineError", "message": "Something went wrong processing your query on the server.",
            "innererror": {"code": "-2133196800", "message": message, "severity": 2, "severityName": "Error"},
        }]}
    return payload


def _render_block(spec: Any) -> dict[str, Any]:
    def names(v: Any) -> Any:
        return ",".join(v) if v else None

    return {"visualization": spec.chart, "title": spec.title, "xTitle": spec.xtitle, "yTitle": spec.ytitle,
            "xColumn": spec.xcolumn, "yColumns": names(spec.ycolumns), "series": names(spec.series),
            "kind": spec.kind, "ySplit": spec.ysplit, "accumulate": spec.accumulate, "legend": spec.legend,
            "xAxis": spec.xaxis, "yAxis": spec.yaxis, "yMin": "NaN" if spec.ymin is None else spec.ymin,
            "yMax": "NaN" if spec.ymax is None else spec.ymax, "anomalyColumns": names(spec.anomalycolumns),
            "isQuerySorted": False}


def _rows(result: Any) -> list[list[Any]]:
    cols = []
    for col, kt in zip(result.table.columns, result.kql_types, strict=True):
        values = col.to_pylist()
        if kt == "datetime":
            values = [None if v is None else v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") for v in values]
        elif kt == "timespan":
            values = [None if v is None else _kusto_timespan(v) for v in values]
        elif kt == "real":
            values = [v if v is None or v == v else "NaN" for v in values]
        cols.append(values)
    return [list(r) for r in zip(*cols, strict=True)] if cols else []


def _kusto_timespan(td: timedelta) -> str:
    us = td // timedelta(microseconds=1)
    sign = "-" if us < 0 else ""
    us = abs(us)
    days, rem = divmod(us, 86_400_000_000)
    h, rem = divmod(rem, 3_600_000_000)
    m, rem = divmod(rem, 60_000_000)
    s, frac = divmod(rem, 1_000_000)
    text = f"{h:02d}:{m:02d}:{s:02d}" + (f".{frac:06d}0" if frac else "")
    return sign + (f"{days}.{text}" if days else text)


def _error_body(exc: BaseException) -> dict[str, Any]:
    from kqlmagic_plus.errors import QuerySyntaxError, TableNotFoundError

    if isinstance(exc, QuerySyntaxError):
        return {"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
                          "innererror": {"code": "SyntaxError", "message": "A recognition error occurred in the query.",
                                         "innererror": {"code": "SYN0002", "message": exc.detail,
                                                        "line": exc.line, "pos": exc.column}}}}
    if isinstance(exc, TableNotFoundError):
        return {"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
                          "innererror": {"code": "SemanticError",
                                         "message": f"'{exc.name}' could not be resolved as a table"}}}
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return {"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
                      "innererror": {"code": "SemanticError", "message": text}}}


def _prefer_wait(prefer: str) -> float | None:
    for part in prefer.split(","):
        k, _, v = part.strip().partition("=")
        if k == "wait":
            try:
                return float(v)
            except ValueError:
                return None
    return None


def _parse_timespan(text: str | None) -> tuple[datetime | None, datetime | None]:
    if not text:
        return None, None
    now = datetime.now(UTC)
    if "/" not in text:
        return now - _iso_duration(text), now
    a, b = text.split("/", 1)
    start = _iso_datetime(a)
    end = start + _iso_duration(b) if b.startswith("P") else _iso_datetime(b)
    return start, end


def _iso_datetime(text: str) -> datetime:
    t = text.strip().replace("Z", "+00:00")
    dt = datetime.fromisoformat(t)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _iso_duration(text: str) -> timedelta:
    t = text.strip().upper()
    assert t.startswith("PT") and t.endswith("S"), t
    return timedelta(seconds=float(t[2:-1]))


def _window(table: Any, start: datetime | None, end: datetime | None) -> Any:
    if (start is None and end is None) or "TimeGenerated" not in table.column_names:
        return table
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table["TimeGenerated"]
    if not pa.types.is_timestamp(col.type):
        return table
    tz = col.type.tz
    mask = None
    for bound, op in ((start, pc.greater_equal), (end, pc.less)):
        if bound is None:
            continue
        value = pa.scalar(bound if tz else bound.replace(tzinfo=None), type=col.type)
        m = op(col, value)
        mask = m if mask is None else pc.and_(mask, m)
    return table.filter(mask)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(claims: dict[str, Any]) -> str:
    head = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{_b64(json.dumps(claims).encode())}.sig"


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
        return True
    except ValueError:
        return False


def main() -> None:
    """``python -m servers.loganalytics``: serve sample workspaces until stdin closes (for benchmarks,
    so that the server does not share the client's interpreter). Prints one JSON line: url, ca_path,
    and the static token to use."""
    import argparse
    import sys

    from .fixtures import APP_ID, APP_SECRET, WORKSPACE, big_table, signin_rows

    p = argparse.ArgumentParser()
    p.add_argument("--big-rows", type=int, default=100_000)
    args = p.parse_args()
    srv = LoopbackLogAnalytics().start()
    srv.load(WORKSPACE, SigninLogs=signin_rows(datetime.now(UTC)), Big=big_table(args.big_rows))
    srv.register_app(APP_ID, secret=APP_SECRET)
    print(json.dumps({"url": srv.url, "ca_path": srv.ca_path, "token": srv.static_token()}), flush=True)
    sys.stdin.read()
    srv.stop()


if __name__ == "__main__":
    main()
