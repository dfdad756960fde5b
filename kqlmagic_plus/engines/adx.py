"""Azure Data Explorer (Kusto), through azure-kusto-data's KustoClient.

What reaches the cluster: the query (or a ``.show`` / other control command), parameters bound
server-side (``declare query_parameters`` plus ClientRequestProperties parameters, see
:mod:`kqlmagic_plus.language.params`), and ClientRequestProperties options from three places, later ones
winning: ``--query-properties DICT``, Kqlmagic's ``+name[=value]`` words in front of the query, and
``--timeout`` (as ``servertimeout``). ``deferpartialqueryfailures`` is on unless given, so a
partial failure (truncation included) comes back with its rows and the reason, never a bare error.

What comes back: the primary result, the visualization metadata of a ``render`` clause (the
``@ExtendedProperties`` table), and the completion information, whose errors and warnings become
the Result's warnings (truncation marks it truncated), as do the errors of the closing
``DataSetCompletion`` frame (queries are read with the streaming reader, see :mod:`.adx_frames`).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.engines.remote import (
    RemoteEngine,
    RetrySettings,
    UnreadableAnswer,
    host_of,
    network_reason,
    parse_retry_after,
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
    ParameterError,
    QueryError,
    QueryTimeoutError,
    RemoteError,
)

if TYPE_CHECKING:
    from kqlmagic_plus.connections.auth import SignIn
    from kqlmagic_plus.connections.spec import ConnectionSpec
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import Result

_KEYS = frozenset({"cluster", "database", "db", "tenant", "clientid", "clientsecret", "certificate",
                   "certificatepassword", "certificatethumbprint", "authority", "endpoint", "cloud"})
#: Request properties whose value is a timespan (the SDK adds the client's slack to servertimeout).
_TIMESPAN_PROPERTIES = frozenset({"servertimeout", "query_results_cache_max_age"})
TRUNCATION_MARKERS = ("E_QUERY_RESULT_SET_TOO_LARGE", "80DA0003", "truncat")
#: Seconds the client waits beyond the server timeout before it gives up on the answer.
CLIENT_GRACE = 2.0


class AdxEngine(RemoteEngine):
    """One database of one cluster, queried through the real KustoClient."""

    name = "adx"

    def __init__(self, cluster: str, database: str, *, sign_in: SignIn | None = None, credential: Any = None,
                 retry: RetrySettings | None = None):
        if not database:
            raise OptionError("adx:// needs database='<name>' (or db@cluster)")
        super().__init__()
        self.cluster = cluster.rstrip("/")
        self.database = database
        self._sign_in = sign_in
        self._credential = credential
        self._retry = retry or RetrySettings()

    @classmethod
    def from_spec(cls, spec: ConnectionSpec) -> AdxEngine:
        from kqlmagic_plus.connections import auth

        spec.check_keys(_KEYS)
        cluster = spec.get("endpoint") or spec.get("cluster")
        if not cluster:
            raise OptionError("adx:// needs cluster='<name or URL>' (e.g. cluster='help' or "
                              "cluster='https://help.kusto.windows.net')")
        database = spec.get("database") or spec.get("db")
        if not database:
            raise OptionError("adx:// needs database='<name>' (or write adx://database@cluster)")
        return cls(cluster_url(cluster, auth.cloud_of(spec)), database, sign_in=auth.sign_in_from_spec(spec))

    @property
    def target(self) -> str:
        from kqlmagic_plus.redaction import redact

        return f"adx://{redact(self.cluster)}/{self.database}"

    def __repr__(self) -> str:
        return f"AdxEngine({self.target!r}, {self._sign_in!r})"

    # -- session -------------------------------------------------------------------------------------------

    def _make_client(self) -> Any:
        try:
            from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
        except ImportError:
            from kqlmagic_plus.errors import EngineUnavailableError

            raise EngineUnavailableError("Azure Data Explorer needs azure-kusto-data and azure-identity: "
                                         "pip install azure-kusto-data azure-identity") from None
        from kqlmagic_plus.connections import auth

        auth.quiet_sdk_loggers()

        anonymous = self._credential is None and self._sign_in is not None and self._sign_in.method == "anonymous"
        if anonymous:
            if not self.cluster.startswith("http://"):
                raise OptionError(f"anonymous works with a plain http:// endpoint (a local `duckdb-kql serve`); "
                                  f"{self.cluster} wants a sign-in method")
            kcsb = KustoConnectionStringBuilder.with_no_authentication(self.cluster)
        else:
            credential = self._credential
            if credential is None:
                sign_in = self._sign_in or auth.SignIn("default", auth.CLOUDS["public"],
                                                       auth.CLOUDS["public"].authority)
                credential = auth.credential_for(sign_in, target=self.target)
            # Closing a KustoClient closes its credential; credentials are shared between connections.
            kcsb = KustoConnectionStringBuilder.with_azure_token_credential(self.cluster,
                                                                            credential=_Borrowed(credential))
        kcsb.application_for_tracing = "kqlmagic_plus"
        return KustoClient(kcsb)

    def tables(self) -> list[str]:
        from kqlmagic_plus.request import Request

        try:
            r = self.run(Request(".show tables"))
        except KqlMagicPlusError:
            return []
        return [str(v) for v in r.table.column("TableName").to_pylist()] if "TableName" in r.columns else []

    def _fetch_table_schemas(self) -> dict[str, dict[str, str]]:
        """``.show database schema as json`` (one row of JSON); where a service refuses that command,
        ``.show databases entities`` (the command the ADX web UI draws its tree from)."""
        from kqlmagic_plus.engines import schemas
        from kqlmagic_plus.request import Request

        try:
            r = self.run(Request(".show database schema as json"))
        except KqlMagicPlusError as first:
            if isinstance(first, AuthError):
                raise
            try:
                r = self.run(Request(".show databases entities"))
            except KqlMagicPlusError:
                raise first from None
            return schemas.from_adx_entities(r.table.to_pylist(), self.database)
        if "DatabaseSchema" not in r.columns or r.table.num_rows == 0:
            raise RemoteError(f"{self.target}: .show database schema as json answered no DatabaseSchema")
        return schemas.from_adx_schema_json(str(r.table.column("DatabaseSchema")[0]), self.database)

    # -- running -------------------------------------------------------------------------------------------

    def run(self, request: Request) -> Result:
        import pyarrow as pa

        from kqlmagic_plus.results import Result

        started = time.perf_counter()
        plus, text = split_plus_properties(request.query)
        command = text.lstrip().startswith(".")
        options = self._options(request, plus, command)
        notes: list[str] = []
        # The client's non-streaming reader keeps only DataTable frames: a progressive answer would
        # come back as no table at all.
        progressive_off = bool(options.get("results_progressive_enabled"))
        if progressive_off:
            options["results_progressive_enabled"] = False
        placement = str(options.get("results_error_reporting_placement") or "in_data").lower()
        if not command:
            # Errors "in_data" come as rows the client raises on, at the point where the rows stop;
            # the DataSetCompletion frame (read too, see adx_frames) still says that something failed.
            options["results_error_reporting_placement"] = "in_data"
            if placement != "in_data":
                notes.append(f"+results_error_reporting_placement={placement} was replaced by in_data: "
                             "azure-kusto-data reads errors only there.")
        parameters: dict[str, str] = {}
        if command:
            if request.params:
                raise ParameterError("control commands (starting with '.') take no query parameters")
            executed = text.strip()
            original = text
            bound = None
        else:
            from kqlmagic_plus.language import params as params_mod

            bound = params_mod.bind(text, request.params, "declare", tables=False)
            parameters = bound.request_parameters()
            executed, original = bound.query, bound.original
        if request.dry_run:
            return Result(table=pa.table({}), kql_types=[], query=request.query, connection=self.target,
                          engine=self.name, executed=executed, parameters=dict(parameters),
                          elapsed=time.perf_counter() - started,
                          stats={"dry_run": True, "request_options": _shown_options(options)})
        from azure.kusto.data import ClientRequestProperties

        crp = ClientRequestProperties()
        crp.application = "kqlmagic_plus"
        for k, v in options.items():
            crp.set_option(k, v)
        for k, v in parameters.items():
            crp.set_parameter(k, v)

        timeout = _timeout_of(options, request)
        deadline = time.monotonic() + timeout + CLIENT_GRACE if timeout else None
        cancelled = self._runner.cancelled

        def once() -> Any:
            if command:
                return self._get_client().execute(self.database, executed, crp)
            # The streaming reader yields the DataSetCompletion frame too, where the service may put
            # the only word of a failure (execute() drops that frame).
            from kqlmagic_plus.engines.adx_frames import BrokenAnswer, read_answer

            try:
                return read_answer(self._get_client(), self.database, executed, crp, None)
            except BrokenAnswer:
                # The streaming parser refuses some valid answers (long's minimum overflows it): read
                # the answer whole, and say that its completion frame went unread.
                response = self._get_client().execute(self.database, executed, crp)
                notes.append("This answer was read without its closing completion frame (the streaming "
                             "reader could not parse it): an error the service reported only there would "
                             "not show.")
                return response

        def call() -> Any:
            return retrying(once, _transient, settings=self._retry, deadline=deadline, cancelled=cancelled,
                            notes=notes)

        try:
            response = self._runner.run(call, deadline=deadline, timeout_message=(
                f"no answer from {host_of(self.cluster)} within {timeout:g} s; the query was abandoned "
                "(raise --timeout, or narrow the query)" if timeout else ""))
        except KqlMagicPlusError:
            if cancelled.is_set():
                self._drop_client()
            raise
        except Exception as exc:
            raise self._explain(exc, original, bound, timeout) from None
        if progressive_off:
            notes.append("+results_progressive_enabled was turned off: azure-kusto-data reads only the "
                         "non-progressive answer.")
        return self._result(response, request, executed, parameters, options, notes, started, original)

    def _options(self, request: Request, plus: dict[str, Any], command: bool) -> dict[str, Any]:
        given = request.options.get("query_properties") or {}
        if not isinstance(given, dict):
            raise OptionError("--query-properties needs a dict of request property names to values")
        props = {str(k).lower(): v for k, v in given.items()}
        props.update(plus)
        out: dict[str, Any] = {}
        for name, value in props.items():
            if name in _TIMESPAN_PROPERTIES:
                out[name] = timedelta(seconds=seconds_of(value, f"+{name}"))
            elif isinstance(value, dict | list):
                out[name] = json.dumps(value)
            else:
                out[name] = value
        if request.timeout and "servertimeout" not in out:
            out["servertimeout"] = timedelta(seconds=request.timeout)
        if not command:
            # Partial failures (truncation included) come back as rows plus a reason, not as a bare error.
            out.setdefault("deferpartialqueryfailures", True)
            if request.now is not None:
                # The instant ago()/now() resolve to, as the cache pinned it.
                out.setdefault("query_now", request.now.astimezone(UTC).isoformat().replace("+00:00", "Z"))
        return out

    def _result(self, response: Any, request: Request, executed: str, parameters: dict[str, str],
                options: dict[str, Any], notes: list[str], started: float, original: str) -> Result:
        command = executed.lstrip().startswith(".")
        warnings = list(notes)
        stats: dict[str, Any] = {"request_options": _shown_options(options)}
        primary = [t for t in response.tables if _kind(t) == "PrimaryResult"] or \
            ([response.tables[0]] if response.tables and _kind(response.tables[0]) is None else [])
        visualization = None
        problems: list[tuple[int, str]] = []
        for t in response.tables:
            kind = _kind(t)
            if kind == "QueryProperties":
                for row in t.raw_rows:
                    if len(row) >= 3 and row[1] == "Visualization":
                        visualization = row[2]
            elif kind == "QueryCompletionInformation":
                stats["completion"] = [_completion_row(t, r) for r in t.raw_rows]
                problems.extend(_problems(t))
        completion_errors = list(getattr(response, "completion_errors", ()))
        if getattr(response, "has_errors", False) and not completion_errors and not problems:
            completion_errors.append("the answer's completion frame says the query had errors, without saying which")
        # An error the service put only on the DataSetCompletion frame: never a clean-looking result.
        problems.extend((2, text) for text in completion_errors)
        truncated = any(any(m.lower() in text.lower() for m in TRUNCATION_MARKERS) for _, text in problems)
        if problems and request.options.get("fail_on_partial"):
            raise RemoteError("Azure Data Explorer returned a partial result and --fail-on-partial is set: "
                              + " / ".join(t for _, t in problems))
        for level, text in problems:
            if any(m.lower() in text.lower() for m in TRUNCATION_MARKERS):
                warnings.append(f"Azure Data Explorer truncated this result: {text} Add +notruncation (or narrow "
                                "the query) to see every row.")
            elif level <= 2:
                warnings.append(f"Partial result: Azure Data Explorer reported an error and returned the rows it "
                                f"had: {text}")
            else:
                warnings.append(f"Azure Data Explorer warning: {text}")
        if not primary and not command:
            # A v2 answer without a DataTable for the result: progressive frames (TableHeader /
            # TableFragment) the client drops, or an answer cut short. Never an honest "0 rows".
            warnings.append("Azure Data Explorer sent no result table this client can read (a progressive "
                            "answer, or one cut short): the rows, if any, are missing. Run the query again "
                            "without +results_progressive_enabled.")
        parts = [(getattr(t, "table_name", "") or "", [c.column_name for c in t.columns],
                  [c.column_type for c in t.columns], t.raw_rows) for t in primary]
        first = parts[0] if parts else ("", [], [], None)
        try:
            return service_result(
                self, request, columns=first[1], column_types=first[2], rows=first[3], dynamic_as_text=False,
                visualization=visualization, original=original, executed=executed, parameters=parameters,
                stats=stats, warnings=warnings, truncated=truncated, started=started, name=first[0],
                more=parts[1:])
        except UnreadableAnswer as exc:
            raise RemoteError(f"{host_of(self.cluster)} sent a result that cannot be read ({exc}); a proxy may be "
                              "rewriting responses, or the endpoint is not a Kusto query API") from None

    # -- errors --------------------------------------------------------------------------------------------

    def _explain(self, exc: BaseException, original: str, bound: Any, timeout: float | None) -> KqlMagicPlusError:
        from azure.kusto.data.exceptions import (
            KustoApiError,
            KustoAuthenticationError,
            KustoMultiApiError,
            KustoNetworkError,
            KustoServiceError,
            KustoThrottlingError,
        )

        from kqlmagic_plus.connections import auth

        host = host_of(self.cluster)
        sign_in = self._sign_in
        if isinstance(exc, KustoAuthenticationError):
            return auth.explain(exc, sign_in, resource=host)
        if _is_credential_error(exc):
            return auth.explain(exc, sign_in, resource=host)
        from kqlmagic_plus.engines.adx_frames import CutAnswer

        if isinstance(exc, CutAnswer):
            return RemoteError(f"cannot reach {host}: {exc}. Check the network, a proxy (HTTPS_PROXY), or the "
                               "cluster URL")
        if isinstance(exc, KustoNetworkError):
            cause = exc.__cause__ or exc
            if "timed out" in str(cause).lower() or "timeout" in type(cause).__name__.lower():
                within = f" within {timeout:g} s" if timeout else " in time"
                return QueryTimeoutError(f"no answer from {host}{within}; the query was abandoned (raise "
                                         "--timeout, or narrow the query)")
            return RemoteError(f"cannot reach {host}: {network_reason(cause)}. Check the network, a proxy "
                               "(HTTPS_PROXY), or the cluster URL")
        if isinstance(exc, KustoThrottlingError):
            return RemoteError(f"Azure Data Explorer is throttling requests (429) on {host}, also after "
                               f"{self._retry.attempts} attempts. Wait a minute and run the query again")
        if isinstance(exc, KustoServiceError):
            status = getattr(_http_response(exc), "status_code", None)
            if status == 200:
                return RemoteError(f"{host} sent an answer that is not valid JSON; a proxy may be rewriting "
                                   "responses. Run the query again, or check the cluster URL")
            said = auth.scrub(_service_words(exc), sign_in)
            if status == 401:
                who = sign_in.describe() if sign_in else "the credential"
                return AuthError(f"{host} refused the token of {who} (401): {said}",
                                 hint="Check the tenant, and that this identity is a viewer on the database.")
            if status == 403:
                who = sign_in.describe() if sign_in else "the credential"
                return AuthError(f"{who} may not run this on {self.database} at {host} (403): {said}",
                                 hint="Ask for the Viewer role on the database.")
            if status == 404:
                return RemoteError(f"{host} has no database {self.database!r}, or no such endpoint (404): {said}")
            if status is not None and status >= 500:
                return RemoteError(f"Azure Data Explorer failed ({status_word(status)}) after "
                                   f"{self._retry.attempts} attempts: {said}. Try again in a few minutes")
            limit = _limit_kind(exc, said)
            if limit == "result-size":
                return QueryError(f"Azure Data Explorer refused to return a result this large (LimitsExceeded, "
                                  f"result size): {said}",
                                  hint="Narrow the query (summarize, project fewer columns, take), or add "
                                       "+notruncation to lift the limit.")
            if limit == "limits":
                return QueryError(f"Azure Data Explorer stopped the query at a service limit: {said}",
                                  hint="Narrow the query (a shorter time range, summarize early).")
            if limit == "timeout" or (limit is None and _looks_timed_out(said)):
                return QueryTimeoutError(f"Azure Data Explorer stopped the query at its server timeout ({said}); "
                                         "raise --timeout (or +servertimeout) or narrow the query")
            if isinstance(exc, KustoApiError | KustoMultiApiError) or status == 400:
                return QueryError(f"Azure Data Explorer refused the query: {said}")
            return RemoteError(f"Azure Data Explorer request failed: {said}")
        if isinstance(exc, ValueError) and "JSON" in type(exc).__name__ + str(exc):
            return RemoteError(f"{host} sent an answer that is not valid JSON ({auth.first_line(exc)}); a proxy "
                               "may be rewriting responses. Run the query again, or check the cluster URL")
        return RemoteError(auth.scrub(f"Azure Data Explorer request failed: {type(exc).__name__}: "
                                      f"{auth.first_line(exc)}", sign_in))


class _Borrowed:
    """A shared credential lent to one client: the client's close() leaves it open."""

    def __init__(self, credential: Any):
        self._credential = credential

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return self._credential.get_token(*scopes, **kwargs)

    def close(self) -> None:
        pass


def cluster_url(cluster: str, cloud: Any) -> str:
    """``help`` -> ``https://help.kusto.windows.net`` (the cloud's suffix); hosts and URLs as given."""
    c = cluster.strip().rstrip("/")
    if "://" in c:
        return c
    if "." in c or ":" in c:
        return "https://" + c
    return f"https://{c}.{cloud.kusto_suffix}"


def _kind(table: Any) -> str | None:
    kind = getattr(table, "table_kind", None)
    return getattr(kind, "value", kind)


def _completion_row(table: Any, row: list[Any]) -> dict[str, Any]:
    names = [c.column_name for c in table.columns]
    return {n: v for n, v in zip(names, row, strict=False) if n in (
        "Level", "LevelName", "StatusCode", "StatusCodeName", "EventTypeName", "Payload", "Severity", "SeverityName",
        "StatusDescription")}


def _problems(table: Any) -> list[tuple[int, str]]:
    """(level, text) of the completion rows that are errors (level < 3) or warnings (3)."""
    names = [c.column_name for c in table.columns]
    out = []
    for row in table.raw_rows:
        r = dict(zip(names, row, strict=False))
        # v2: Level / Payload; v1's QueryStatus table: Severity / StatusDescription.
        level = r.get("Level", r.get("Severity"))
        if not isinstance(level, int) or level >= 4:
            continue
        payload = r.get("Payload", r.get("StatusDescription"))
        text = ""
        if isinstance(payload, str):
            try:
                data = json.loads(payload)
            except ValueError:
                data = payload
            text = _payload_text(data)
        out.append((level, text or str(r.get("StatusCodeName") or "unspecified problem")))
    return out


def _payload_text(data: Any) -> str:
    if isinstance(data, dict):
        err = data.get("error") if isinstance(data.get("error"), dict) else data
        for key in ("@message", "message", "Text", "text"):
            if err.get(key):
                return str(err[key]).strip()
        return json.dumps(data)[:300]
    return str(data).strip()


def _service_words(exc: Any) -> str:
    from kqlmagic_plus.connections import auth

    errors = getattr(exc, "get_api_errors", None)
    if errors is not None:
        words = [e.description or e.message for e in errors() if (e.description or e.message)]
        if words:
            return " / ".join(str(w) for w in words)
    api = getattr(exc, "get_api_error", None)
    if api is not None:
        e = api()
        if e.description or e.message:
            return str(e.description or e.message)
    return auth.first_line(getattr(exc, "message_text", None) or str(exc))


def _looks_timed_out(text: str) -> bool:
    low = text.lower()
    return "timeout" in low or "timed out" in low


#: Kusto's result-size codes (LimitsExceeded 0x80DA0003, and its E_ name).
_RESULT_SIZE_CODES = ("80da0003", "e_query_result_set_too_large")


def _limit_kind(exc: Any, said: str) -> str | None:
    """What the service's error code says: "result-size", "timeout", "limits" (another LimitsExceeded)
    or None (no code to go by). Read from the error's code and type, not its wording."""
    code = kind = ""
    api = getattr(exc, "get_api_error", None)
    if api is not None:
        try:
            e = api()
            code, kind = str(e.code or ""), str(e.type or "")
        except Exception:  # pragma: no cover - an error body of another shape
            pass
    low = said.lower()
    if any(c in low for c in _RESULT_SIZE_CODES) or "resultsettoolarge" in kind.lower():
        return "result-size"
    if "timeout" in code.lower() or "timeout" in kind.lower():
        return "timeout"
    if code == "LimitsExceeded" or "limitsexceeded" in kind.lower():
        return "limits"
    return None


def _is_credential_error(exc: BaseException) -> bool:
    try:
        from azure.core.exceptions import ClientAuthenticationError
    except ImportError:  # pragma: no cover - azure-core comes with azure-identity
        return False
    return isinstance(exc, ClientAuthenticationError)


def _transient(exc: BaseException) -> tuple[str, float | None] | None:
    """Retry throttling, unavailability and dropped connections; everything else is the answer."""
    from azure.kusto.data.exceptions import KustoNetworkError, KustoServiceError, KustoThrottlingError

    response = _http_response(exc)
    status = getattr(response, "status_code", None)
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if response is not None else None
    if isinstance(exc, KustoThrottlingError):
        return "throttled (429)", retry_after
    if isinstance(exc, KustoServiceError) and status in (502, 503):
        return status_word(status), retry_after
    from kqlmagic_plus.engines.adx_frames import CutAnswer

    if isinstance(exc, CutAnswer):
        return f"connection failed ({exc})", None
    if isinstance(exc, KustoNetworkError):
        cause = exc.__cause__
        if cause is not None and ("timed out" in str(cause).lower() or "timeout" in type(cause).__name__.lower()):
            return None  # a read timeout already spent the query's time
        return f"connection failed ({network_reason(cause or exc)})", None
    return None


def _http_response(exc: BaseException) -> Any:
    # KustoThrottlingError carries the response as its second argument, the others as an attribute.
    found = getattr(exc, "http_response", None)
    if found is None:
        found = next((a for a in exc.args if hasattr(a, "status_code") and hasattr(a, "headers")), None)
    return found


def _timeout_of(options: dict[str, Any], request: Request) -> float | None:
    st = options.get("servertimeout")
    if isinstance(st, timedelta):
        return st.total_seconds()
    return request.timeout


def _shown_options(options: dict[str, Any]) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, timedelta | datetime) else v) for k, v in options.items()}
