"""Log Analytics / Microsoft Sentinel, through azure-monitor-query's LogsQueryClient.

What reaches the service: the query with its parameters bound as literal ``let`` statements (the
query API has no server-side parameters; see :mod:`kqlmagic_plus.language.params`), the time window
(``--timespan``, ``--start/--end``), additional workspaces (``--workspaces a,b``), the server
timeout (``--timeout`` or ``+servertimeout``), and a request for statistics and for the render
clause's visualization metadata.

What comes back, honestly: a partial result keeps its rows and carries a warning with the
service's own error (``--fail-on-partial`` makes it an error); a result the service cut at its row
or size limit is marked truncated and says so; retries after throttling are reported.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.engines.remote import (
    NetworkSettings,
    RemoteEngine,
    RetrySettings,
    UnreadableAnswer,
    host_of,
    network_environment,
    network_reason,
    retrying,
    seconds_of,
    service_result,
    split_plus_properties,
    status_word,
)
from kqlmagic_plus.errors import (
    AuthError,
    KqlMagicPlusError,
    OptionError,
    QueryError,
    QuerySyntaxError,
    QueryTimeoutError,
    RemoteError,
)

if TYPE_CHECKING:
    from kqlmagic_plus.connections.auth import SignIn
    from kqlmagic_plus.connections.spec import ConnectionSpec
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import Result

#: Keys a loganalytics:// connection string may carry.
_KEYS = frozenset({"workspace", "tenant", "clientid", "clientsecret", "certificate", "certificatepassword",
                   "certificatethumbprint", "authority", "endpoint", "cloud"})
#: Request properties Log Analytics understands (the rest are ADX's).
_LA_PROPERTIES = frozenset({"servertimeout", "timeout", "wait"})
#: The query API refuses a longer server timeout.
MAX_SERVER_TIMEOUT = 600
#: Seconds the client waits beyond the server timeout before it gives up on the answer.
CLIENT_GRACE = 2.0
#: Markers of a result the service cut at its limits (Kusto's error code and its message).
TRUNCATION_MARKERS = ("E_QUERY_RESULT_SET_TOO_LARGE", "80DA0003", "exceeded the internal record count limit",
                      "exceeded the internal data size limit")
#: Kusto's result-size status (0x80DA0003) as the signed code Log Analytics puts in an innererror.
TRUNCATION_CODES = frozenset({"-2133196797", "80DA0003", "0x80DA0003", "E_QUERY_RESULT_SET_TOO_LARGE"})


class LogAnalyticsEngine(RemoteEngine):
    """One workspace (plus any ``--workspaces``), queried through the real LogsQueryClient."""

    name = "loganalytics"

    def __init__(self, workspace: str, *, sign_in: SignIn | None = None, credential: Any = None,
                 endpoint: str | None = None, retries: int = 4, **client_kwargs: Any):
        """*credential* (any azure-core TokenCredential) wins over *sign_in*; *client_kwargs* go to
        LogsQueryClient (e.g. ``connection_verify`` for a private CA)."""
        from kqlmagic_plus.connections import auth

        if not workspace:
            raise OptionError("loganalytics:// needs workspace='<workspace id>'")
        super().__init__()
        self.workspace = workspace
        self._sign_in = sign_in
        self._credential = credential
        default = (sign_in.cloud if sign_in else auth.CLOUDS["public"]).loganalytics
        self.endpoint = (endpoint or default).rstrip("/")
        if self.endpoint.endswith("/v1"):
            self.endpoint = self.endpoint[:-3]
        self._default_endpoint = self.endpoint == default
        self._retries = retries
        self._client_kwargs = client_kwargs
        #: network_environment() when the client was built (None: the caller's own transport).
        self._network: tuple[str | None, ...] | None = None

    @classmethod
    def from_spec(cls, spec: ConnectionSpec) -> LogAnalyticsEngine:
        from kqlmagic_plus.connections import auth

        spec.check_keys(_KEYS)
        workspace = spec.get("workspace")
        if not workspace:
            raise OptionError("loganalytics:// needs workspace='<workspace id>' (the Workspace ID on the "
                              "workspace's Overview page)")
        endpoint = spec.get("endpoint")
        if endpoint and not endpoint.startswith("https://"):
            raise OptionError(f"endpoint {endpoint!r} must be an https:// URL")
        return cls(workspace, sign_in=auth.sign_in_from_spec(spec), endpoint=endpoint)

    @property
    def target(self) -> str:
        from kqlmagic_plus.redaction import redact

        where = "" if self._default_endpoint else f";endpoint={redact(self.endpoint)}"
        return f"loganalytics://workspace={self.workspace}{where}"

    def __repr__(self) -> str:
        return f"LogAnalyticsEngine({self.target!r}, {self._sign_in!r})"

    # -- session -------------------------------------------------------------------------------------------

    def _make_client(self) -> Any:
        try:
            from azure.core.pipeline.policies import SansIOHTTPPolicy
            from azure.monitor.query import LogsQueryClient
        except ImportError:
            from kqlmagic_plus.errors import EngineUnavailableError

            raise EngineUnavailableError("Log Analytics needs azure-monitor-query and azure-identity: "
                                         "pip install azure-monitor-query azure-identity") from None
        from kqlmagic_plus.connections import auth

        auth.quiet_sdk_loggers()  # azure-core's "Incomplete download." etc.: we say it in one line
        kwargs = dict(self._client_kwargs)
        credential = self._credential
        if credential is None and self._sign_in is not None:
            credential = auth.credential_for(self._sign_in, target=self.target)
        if credential is None:
            if self._sign_in is None or self._sign_in.method != "anonymous":
                credential = auth.credential_for(auth.SignIn("default", auth.CLOUDS["public"],
                                                             auth.CLOUDS["public"].authority), target=self.target)
            else:
                # No token at all: the client insists on a credential object, and without the
                # bearer policy nothing asks it for one.
                credential = _NoCredential()
                kwargs["authentication_policy"] = SansIOHTTPPolicy()
        kwargs.setdefault("retry_policy", _query_retry_policy(self._retries))
        audience = _audience(self.endpoint)
        if audience != self.endpoint:  # the token scope never carries the endpoint's user:password@ or ?sig=
            kwargs.setdefault("audience", audience)
        if "transport" not in kwargs:
            network = NetworkSettings.for_url(self.endpoint)
            self._network = network.environment
            # The caller's CA file (connection_verify) beats REQUESTS_CA_BUNDLE.
            kwargs.update(network.transport_kwargs(verify=kwargs.pop("connection_verify", None)))
        return LogsQueryClient(credential, endpoint=self.endpoint, **kwargs)

    def _client_is_stale(self) -> bool:
        # A proxy or CA variable changed since the client was built.
        return self._network is not None and self._network != network_environment()

    # -- running -------------------------------------------------------------------------------------------

    def run(self, request: Request) -> Result:
        import pyarrow as pa

        from kqlmagic_plus.language import params as params_mod
        from kqlmagic_plus.results import Result

        started = time.perf_counter()
        plus, text = split_plus_properties(request.query)
        server_timeout = self._server_timeout(request, plus)
        bound = params_mod.bind(text, request.params, "literal")
        workspaces = _workspaces(request.options.get("workspaces"))
        timespan = _timespan(request.window)
        warnings: list[str] = []
        if request.dry_run:
            return Result(table=pa.table({}), kql_types=[], query=request.query, connection=self.target,
                          engine=self.name, executed=bound.query, parameters={},
                          elapsed=time.perf_counter() - started,
                          stats={"dry_run": True, "timespan": _iso_timespan(timespan), "workspaces": workspaces})
        statuses: list[int] = []
        client_timeout = (request.timeout + CLIENT_GRACE) if request.timeout else None

        deadline = time.monotonic() + client_timeout if client_timeout else None

        def attempt() -> Any:
            bodies: list[bytes] = []

            def keep_body(pipeline_response: Any, _stream: Any, _headers: Any) -> dict[str, Any]:
                # The SDK would build a Python object per row and parse every datetime on its own;
                # the rows go to Arrow column-wise instead, so the 200 answer's body is taken raw
                # (stream=True skips the SDK's model pass; errors still go through the SDK's mapping).
                try:
                    bodies.append(pipeline_response.http_response.read())
                except Exception as exc:  # the link died mid-answer: past the SDK's retry policy
                    raise _CutAnswer(exc) from exc
                return {}

            self._get_client().query_workspace(
                self.workspace, bound.query, timespan=timespan, server_timeout=server_timeout,
                include_statistics=True, include_visualization=True, additional_workspaces=workspaces or None,
                # A query only reads: a POST is as safe to repeat as a GET after a dropped connection.
                retry_on_methods=frozenset({"GET", "POST"}),
                raw_response_hook=lambda r: statuses.append(r.http_response.status_code),
                connection_timeout=10, read_timeout=(client_timeout or MAX_SERVER_TIMEOUT + 30),
                stream=True, cls=keep_body,
                **({"timeout": client_timeout} if client_timeout else {}),
            )
            return json.loads(bodies[0])  # a JSONDecodeError names JSON; the shape is checked in _result

        notes: list[str] = []

        def call() -> Any:
            return retrying(attempt, _cut_answer, settings=RetrySettings(attempts=max(1, self._retries)),
                            deadline=deadline, cancelled=self._runner.cancelled, notes=notes)

        try:
            response = self._runner.run(call, deadline=deadline, timeout_message=(
                f"no answer from {host_of(self.endpoint)} within {request.timeout:g} s; the query was abandoned "
                "(raise --timeout, or narrow the query)" if request.timeout else ""))
        except KqlMagicPlusError:
            if self._runner.cancelled.is_set():
                self._drop_client()
            raise
        except Exception as exc:
            raise self._explain(exc, bound, request, statuses) from None
        warnings.extend(notes)
        return self._result(response, request, bound, statuses, warnings, started, workspaces, timespan)

    def _fetch_table_schemas(self) -> dict[str, dict[str, str]]:
        """The workspace's tables and columns, from the query API's metadata endpoint (one GET, through the
        same client, sign-in and retry policy as the queries)."""
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        from kqlmagic_plus.engines.schemas import from_loganalytics_metadata
        from kqlmagic_plus.redaction import redact

        where = f"Log Analytics schema of workspace {self.workspace}"
        try:
            response = self._get_client().send_request(
                HttpRequest("GET", f"{self.endpoint}/v1/workspaces/{self.workspace}/metadata"))
        except AzureError as exc:
            cred = _credential_error(exc)
            if cred is not None:
                from kqlmagic_plus.connections.auth import first_line

                raise AuthError(f"{where}: sign-in failed: {redact(first_line(cred))}") from None
            raise RemoteError(f"{where}: {redact(network_reason(exc))} ({host_of(self.endpoint)})") from None
        if response.status_code != 200:
            raise RemoteError(f"{where}: the metadata API answered {status_word(response.status_code)}")
        try:
            return from_loganalytics_metadata(response.json())
        except (ValueError, KeyError, TypeError, AttributeError):
            raise RemoteError(f"{where}: the metadata API's answer is not the expected JSON") from None

    def _server_timeout(self, request: Request, plus: dict[str, Any]) -> int | None:
        props = {**(request.options.get("query_properties") or {}), **plus}
        unknown = sorted(set(props) - _LA_PROPERTIES)
        if unknown:
            raise OptionError(f"Log Analytics takes no request property {', '.join(unknown)}; it takes "
                              "servertimeout (request properties like notruncation are ADX's)")
        value = next((props[k] for k in ("servertimeout", "timeout", "wait") if k in props), None)
        seconds = seconds_of(value, "servertimeout") if value is not None else request.timeout
        if not seconds:
            return None
        if seconds > MAX_SERVER_TIMEOUT:
            raise OptionError(f"Log Analytics stops every query after {MAX_SERVER_TIMEOUT} s; a timeout of "
                              f"{seconds:g} s cannot be honoured")
        return max(1, math.ceil(seconds))

    def _result(self, response: Any, request: Request, bound: Any, statuses: list[int], warnings: list[str],
                started: float, workspaces: list[str], timespan: Any) -> Result:
        try:
            return self._read_answer(response, request, bound, statuses, warnings, started, workspaces, timespan)
        except UnreadableAnswer as exc:
            raise RemoteError(f"{host_of(self.endpoint)} sent an answer that cannot be read as a query result "
                              f"({exc}); a proxy may be rewriting responses, or the endpoint is not the Log "
                              "Analytics query API") from None

    def _read_answer(self, response: Any, request: Request, bound: Any, statuses: list[int], warnings: list[str],
                     started: float, workspaces: list[str], timespan: Any) -> Result:
        if not isinstance(response, Mapping):
            raise UnreadableAnswer(f"the JSON is a {type(response).__name__}, not an object")
        partial = response.get("error") or None
        tables = response.get("tables") or []
        if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
            raise UnreadableAnswer("'tables' is not a list of tables")
        stats: dict[str, Any] = {}
        if response.get("statistics"):
            stats["service"] = response["statistics"]
        if timespan is not None:
            stats["timespan"] = _iso_timespan(timespan)
        if workspaces:
            stats["workspaces"] = workspaces
        retried = [s for s in statuses[:-1] if s >= 400]
        if retried:
            stats["retries"] = retried
            warnings.append(f"The service answered {', '.join(status_word(s) for s in retried)} first; "
                            f"the query succeeded after {len(retried)} "
                            f"{'retry' if len(retried) == 1 else 'retries'}.")
        truncated = False
        if partial is not None:
            detail = partial_message(partial)
            truncated = any(m.lower() in detail.lower() for m in TRUNCATION_MARKERS) or _has_code(partial,
                                                                                                 TRUNCATION_CODES)
            if request.options.get("fail_on_partial"):
                what = "truncated" if truncated else "partial"
                raise RemoteError(f"Log Analytics returned a {what} result and --fail-on-partial is set: {detail}")
            if truncated:
                warnings.append(f"Log Analytics truncated this result: {detail} Narrow the query (a shorter "
                                "time range, fewer columns, `summarize`, or `take`) to see every row.")
            else:
                warnings.append(f"Partial result: Log Analytics reported an error and returned only the rows "
                                f"it had: {detail}")
        read = [_table_parts(t) for t in tables]
        first = read[0] if read else ("", [], [], None)
        return service_result(
            self, request, columns=first[1], column_types=first[2], rows=first[3], dynamic_as_text=True,
            visualization=response.get("render"), original=bound.original, executed=bound.query,
            parameters={}, stats=stats, warnings=warnings, truncated=truncated, started=started, name=first[0],
            more=read[1:])

    # -- errors --------------------------------------------------------------------------------------------

    def _explain(self, exc: BaseException, bound: Any, request: Request, statuses: list[int]) -> KqlMagicPlusError:
        """One line: what failed, the service's words, what to do."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            DecodeError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        from kqlmagic_plus.connections import auth

        host = host_of(self.endpoint)
        sign_in = self._sign_in
        if isinstance(exc, _CutAnswer):
            return RemoteError(f"the connection to {host} was dropped before the whole answer arrived "
                               f"({network_reason(exc.__cause__ or exc)}), also on retry. Run the query again, or "
                               "narrow it if the result is large")
        credential_error = _credential_error(exc)
        if credential_error is not None:
            return auth.explain(credential_error, sign_in, resource=host)
        if (isinstance(exc, DecodeError) or getattr(exc, "status_code", None) == 200
                or (isinstance(exc, ValueError) and "JSON" in type(exc).__name__ + str(exc))):
            return RemoteError(f"{host} sent an answer that is not valid JSON ({auth.first_line(exc)}); "
                               "a proxy may be rewriting responses. Run the query again, or check the endpoint")
        if isinstance(exc, HttpResponseError) and getattr(exc, "status_code", None):
            return self._explain_status(exc, bound, request, statuses)
        if isinstance(exc, ServiceRequestError):
            return RemoteError(f"cannot reach {host}: {network_reason(exc)}. Check the network, a proxy "
                               "(HTTPS_PROXY), or the endpoint in the connection string")
        if isinstance(exc, ServiceResponseError):
            if "timed out" in str(exc).lower() or "timeout" in type(exc).__name__.lower():
                within = f" within {request.timeout:g} s" if request.timeout else " in time"
                return QueryTimeoutError(f"no answer from {host}{within}; the query was abandoned (raise --timeout, "
                                         "or narrow the query)")
            return RemoteError(f"the connection to {host} was dropped before the answer arrived "
                               f"({network_reason(exc)}), also on retry. Run the query again")
        if isinstance(exc, ClientAuthenticationError):
            return auth.explain(exc, sign_in, resource=host)
        return RemoteError(auth.scrub(f"Log Analytics request failed: {type(exc).__name__}: "
                                      f"{auth.first_line(exc)}", sign_in))

    def _explain_status(self, exc: Any, bound: Any, request: Request, statuses: list[int]) -> KqlMagicPlusError:
        from kqlmagic_plus.connections import auth

        status = exc.status_code
        code, message, inner = _service_error(exc)
        host = host_of(self.endpoint)
        said = auth.scrub(message or auth.first_line(exc), self._sign_in)
        tries = len(statuses)
        if status == 401:
            who = self._sign_in.describe() if self._sign_in else "the credential"
            return AuthError(f"{host} refused the token of {who} (401): {said}",
                             hint="Check the tenant in the connection string matches the workspace's tenant.")
        if status == 403:
            who = self._sign_in.describe() if self._sign_in else "the credential"
            return AuthError(f"{who} may not read workspace {self.workspace} (403): {said}",
                             hint="Ask for the Log Analytics Reader role on the workspace (or Microsoft "
                                  "Sentinel Reader).")
        if status == 404:
            return RemoteError(f"workspace {self.workspace} was not found at {host} (404): {said}. Check the "
                               "workspace id (a GUID, from the workspace's Overview page) and cloud=")
        if status == 429:
            after = f"; it asked to wait {exc.response.headers.get('Retry-After')} s" \
                if exc.response is not None and exc.response.headers.get("Retry-After") else ""
            return RemoteError(f"Log Analytics is throttling this workspace (429) after {tries} attempts{after}: "
                               f"{said}. Wait a minute and run the query again")
        if status == 504 or code in ("GatewayTimeout", "RequestTimeout"):
            return QueryTimeoutError(f"Log Analytics stopped the query at its server timeout ({said}); raise "
                                     f"--timeout (at most {MAX_SERVER_TIMEOUT} s) or narrow the query")
        if status >= 500:
            return RemoteError(f"Log Analytics failed ({status_word(status)}) after {tries} attempts: "
                               f"{said}. Try again in a few minutes")
        if inner is not None and inner.get("line") is not None and _is_syntax(code, inner):
            line = int(inner.get("line") or 1)
            col = max(0, int(inner.get("pos") or 0))
            line, col = bound.original_position(line, col)
            return QuerySyntaxError(auth.scrub(inner.get("message") or said, self._sign_in),
                                    bound.original, line, col)
        return QueryError(f"Log Analytics refused the query ({code or status}): {said}")


def _table_parts(table: Mapping[str, Any]) -> tuple[str, list[str], list[str], Any]:
    """(name, column names, column types, rows) of one table of the answer."""
    columns = table.get("columns") or []
    if not isinstance(columns, list) or not all(isinstance(c, Mapping) and c.get("name") for c in columns):
        raise UnreadableAnswer("'columns' is not a list of named columns")
    return (str(table.get("name") or ""), [str(c.get("name")) for c in columns],
            [str(c.get("type") or "string") for c in columns], table.get("rows") or [])


def _audience(endpoint: str) -> str:
    """The endpoint as a token audience: without a ``user:password@`` and without a query."""
    from urllib.parse import urlsplit, urlunsplit

    p = urlsplit(endpoint)
    if "@" not in p.netloc and not p.query and not p.fragment:
        return endpoint
    return urlunsplit((p.scheme, p.netloc.rpartition("@")[2], p.path, "", "")).rstrip("/")


def _credential_error(exc: BaseException) -> BaseException | None:
    """The credential's own failure behind *exc*: LogsQueryClient re-raises it as a plain
    HttpResponseError without a response, the original chained as its context."""
    from azure.core.exceptions import ClientAuthenticationError

    node: BaseException | None = exc
    seen: set[int] = set()
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, ClientAuthenticationError) and getattr(node, "response", None) is None:
            return node
        node = node.__cause__ or node.__context__
    return None


class _NoCredential:
    """Stands in for a credential where nothing asks for a token (``anonymous``)."""

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        raise AuthError("this connection is anonymous and has no token to give")

    def close(self) -> None:
        pass


def _query_retry_policy(retries: int) -> Any:
    from azure.core.pipeline.policies import RetryPolicy

    class QueryRetryPolicy(RetryPolicy):
        """Retries throttling and failures, but not a gateway timeout: the server already spent the
        whole timeout on the query, and a second run would spend it again."""

        def is_retry(self, settings: Any, response: Any) -> bool:
            if response.http_response.status_code == 504:
                return False
            return super().is_retry(settings, response)

    return QueryRetryPolicy(retry_total=retries, retry_backoff_factor=0.5, retry_backoff_max=30)


class _CutAnswer(Exception):
    """The answer's body broke off (the connection closed mid-stream)."""


def _cut_answer(exc: BaseException) -> tuple[str, float | None] | None:
    return ("the connection broke while the answer arrived", None) if isinstance(exc, _CutAnswer) else None


def _has_code(error: Any, codes: frozenset[str]) -> bool:
    """Some error in the tree (details, innererror) carries one of *codes*."""
    if not isinstance(error, Mapping):  # the SDK's LogsQueryError
        error = {"code": getattr(error, "code", None), "details": getattr(error, "details", None)}
    todo = [error]
    while todo:
        node = todo.pop()
        if not isinstance(node, Mapping):
            continue
        if str(node.get("code")) in codes:
            return True
        todo.extend(node.get("details") or [])
        todo.append(node.get("innererror"))
    return False


def partial_message(error: Any) -> str:
    """The service's own words for a partial error: the innermost messages of its details."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            inner = node.get("innererror")
            if isinstance(inner, Mapping):
                walk(inner)
            elif node.get("message"):
                found.append(str(node["message"]))
            for d in node.get("details") or []:
                walk(d)

    if not isinstance(error, Mapping):  # the SDK's LogsQueryError
        error = {"code": getattr(error, "code", None), "message": getattr(error, "message", None),
                 "details": getattr(error, "details", None)}
    for d in error.get("details") or []:
        walk(d)
    if not found and error.get("message"):
        found.append(str(error["message"]))
    out = " / ".join(dict.fromkeys(m.strip() for m in found if m.strip()))
    return (out or str(error.get("code") or "no detail given")).rstrip(".") + "."


def _service_error(exc: Any) -> tuple[str | None, str | None, dict[str, Any] | None]:
    """(code, message, innermost error dict) from an HttpResponseError's JSON body."""
    body: Any = None
    try:
        body = exc.response.json() if exc.response is not None else None
    except Exception:  # not JSON: the message is all there is
        body = None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        model = getattr(exc, "model", None)
        return getattr(model, "code", None), getattr(model, "message", None), None
    inner = err
    while isinstance(inner.get("innererror"), dict):
        inner = inner["innererror"]
    details = err.get("details") or []
    if inner is err and details and isinstance(details[0], dict):
        inner = details[0]
        while isinstance(inner.get("innererror"), dict):
            inner = inner["innererror"]
    message = inner.get("message") or err.get("message")
    return err.get("code"), message, inner if inner is not err else None


def _is_syntax(code: str | None, inner: dict[str, Any]) -> bool:
    c = f"{code} {inner.get('code')}".lower()
    return "syntax" in c or str(inner.get("code", "")).upper().startswith("SYN")


def _workspaces(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [str(w).strip() for w in value if str(w).strip()]


def _timespan(window: Any) -> Any:
    """The SDK's timespan for a TimeWindow: (start, end); an open side becomes the epoch or now."""
    if window is None or (window.start is None and window.end is None):
        return None
    from datetime import UTC, datetime

    start = window.start or datetime(1970, 1, 1, tzinfo=UTC)
    end = window.end or datetime.now(UTC)
    return (start, end)


def _iso_timespan(timespan: Any) -> str | None:
    if timespan is None:
        return None
    return f"{timespan[0].isoformat()}/{timespan[1].isoformat()}"
