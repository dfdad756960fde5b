"""Sign-in for Log Analytics and Azure Data Explorer: one azure-identity credential per connection.

The connection string says how to sign in (Kqlmagic's words, see :mod:`kqlmagic_plus.connections.spec`):

==============================  ===============================================================
``code`` (``devicecode``)       DeviceCodeCredential: prints a URL and a code, in plain text, that
                                work in every frontend (browser, VS Code, a terminal over SSH)
``interactive``                 InteractiveBrowserCredential (needs a browser on this machine)
``azcli``                       AzureCliCredential (``az login`` first)
``msi`` (``managedidentity``)   ManagedIdentityCredential; ``clientid`` picks a user-assigned one
``clientid`` + ``clientsecret`` ClientSecretCredential (``tenant`` required)
``clientid`` + ``certificate``  CertificateCredential: a PEM/PFX path, or the PEM text itself
                                (``certificatepassword`` for an encrypted key; ``tenant`` required)
``default`` (or nothing)        DefaultAzureCredential
``anonymous``                   no token at all (a local or proxy endpoint)
==============================  ===============================================================

``cloud='public|usgov|china'`` picks the sign-in authority and the services' endpoints;
``authority='https://...'`` overrides the authority (an Azure Stack or test identity provider).

Tokens persist across kernel restarts: user sign-ins (``code``, ``interactive``) keep their tokens in
azure-identity's persistent cache (``TokenCachePersistenceOptions(name="kqlmagic_plus")``), encrypted by the
platform keyring (libsecret, Keychain, DPAPI). Where no keyring exists (a container, a server over
SSH) the cache falls back to a plain file, ``~/.IdentityService/kqlmagic_plus.nocae``, readable by
this user only: it holds access and refresh tokens, never a client secret or a certificate. Set
``KQLMAGIC_PLUS_TOKEN_CACHE=encrypted`` to refuse that fallback, or ``off`` to keep tokens in memory
only. User sign-ins also remember which account signed in (an ``AuthenticationRecord``: user name,
tenant and account ids, no token) next to the cache, so a new kernel finds its tokens without asking
again. App sign-ins (secret, certificate) keep tokens in memory only: they get a new one without
asking anybody, and MSAL's cache, keyed by app and tenant, would otherwise hand a cached token to a
connection string whose secret is wrong.

Nothing here prints secrets or puts them in a repr, an exception or a file: :class:`SignIn` keeps
them out of its repr, and :func:`explain` scrubs every message it builds from an SDK error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import AuthError, ConnectionStringError
from kqlmagic_plus.redaction import redact, redact_log_records

if TYPE_CHECKING:
    from kqlmagic_plus.connections.spec import ConnectionSpec

#: The name azure-identity gives the persistent token cache (a file or a keyring entry).
CACHE_NAME = "kqlmagic_plus"
#: Environment variable: ``on`` (default), ``encrypted`` (no plaintext fallback) or ``off``.
CACHE_ENV = "KQLMAGIC_PLUS_TOKEN_CACHE"


@dataclass(frozen=True)
class Cloud:
    """Where one Azure cloud signs in and serves queries."""

    name: str
    authority: str
    loganalytics: str
    kusto_suffix: str


CLOUDS = {
    "public": Cloud("public", "https://login.microsoftonline.com", "https://api.loganalytics.io",
                    "kusto.windows.net"),
    "usgov": Cloud("usgov", "https://login.microsoftonline.us", "https://api.loganalytics.us",
                   "kusto.usgovcloudapi.net"),
    "china": Cloud("china", "https://login.chinacloudapi.cn", "https://api.loganalytics.azure.cn",
                   "kusto.chinacloudapi.cn"),
}

#: Sign-in methods, in the order a connection string is checked for them.
METHODS = ("anonymous", "clientsecret", "certificate", "code", "interactive", "azcli", "msi", "default")

#: What to do when a method fails, shown after the reason.
_ADVICE = {
    "code": "Run the query again and complete the device-code sign-in within its time limit.",
    "interactive": "Complete the browser sign-in, or use `code` where no browser can open on this machine.",
    "azcli": "Run `az login` (and `az account set -s <subscription>`) in a terminal, then run the query again.",
    "msi": "Managed identity only exists on Azure compute (VM, App Service, ML compute); elsewhere use "
           "`code` or `azcli`.",
    "clientsecret": "Check tenant, clientid and clientsecret (secrets expire; create a new one in the app "
                    "registration).",
    "certificate": "Check the certificate file, its password, and that it is uploaded to the app registration.",
    "default": "Sign in with `az login`, set the AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET "
               "variables, or use `code` in the connection string.",
    "anonymous": "This endpoint wants a token: pick a sign-in method instead of `anonymous`.",
}

_WELL_KNOWN_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn", "login.microsoft.com",
    "login.windows.net", "login.partner.microsoftonline.cn", "login.usgovcloudapi.net", "sts.windows.net",
})


@dataclass(frozen=True, repr=False)
class SignIn:
    """How one connection signs in. The repr names the method and identity, never a secret."""

    method: str
    cloud: Cloud
    authority: str
    tenant: str | None = None
    client_id: str | None = None
    secret: str | None = field(default=None, compare=False)
    certificate: str | None = field(default=None, compare=False)
    certificate_password: str | None = field(default=None, compare=False)

    def describe(self) -> str:
        """The identity in words, for messages: no secret."""
        who = {
            "clientsecret": f"app {self.client_id} (client secret)",
            "certificate": f"app {self.client_id} (certificate)",
            "code": "device-code sign-in",
            "interactive": "browser sign-in",
            "azcli": "the Azure CLI's signed-in account",
            "msi": "managed identity" + (f" {self.client_id}" if self.client_id else ""),
            "default": "DefaultAzureCredential",
            "anonymous": "no sign-in",
        }[self.method]
        return who + (f" in tenant {self.tenant}" if self.tenant else "")

    def secrets(self) -> list[str]:
        """Values that must never appear in output (for scrubbing messages)."""
        out = [s for s in (self.secret, self.certificate_password) if s]
        if self.certificate and "-----BEGIN" in self.certificate:
            out.append(self.certificate)
        return out

    def key(self) -> str:
        """Identifies the credential (secrets hashed): equal keys share one credential object."""
        h = hashlib.sha256()
        for part in (self.method, self.cloud.name, self.authority, self.tenant, self.client_id, self.secret,
                     self.certificate, self.certificate_password, _cache_mode()):
            h.update(b"\0" + (part or "").encode())
        return h.hexdigest()

    def __repr__(self) -> str:
        return f"SignIn({self.method}, {self.describe()}, authority={redact(self.authority)})"

    __str__ = __repr__


def cloud_of(spec: ConnectionSpec) -> Cloud:
    return CLOUDS[spec.get("cloud") or "public"]


def sign_in_from_spec(spec: ConnectionSpec) -> SignIn:
    """The sign-in a connection string asks for; a contradiction or a missing part is an error."""
    flags = set(spec.flags)
    chosen = [m for m in METHODS if m in flags]
    if spec.get("clientsecret"):
        chosen.insert(0, "clientsecret")
    if spec.get("certificate"):
        chosen.insert(0, "certificate")
    if spec.get("username") or spec.get("password"):
        raise ConnectionStringError("username/password sign-in is not supported (Microsoft Entra ID blocks it "
                                    "for accounts with MFA); use `code` or `azcli` instead")
    if spec.get("appkey"):
        raise ConnectionStringError("appkey (API key) sign-in was retired by Log Analytics; use `code`, `azcli`, "
                                    "or clientid/clientsecret")
    methods = list(dict.fromkeys(chosen))
    if len(methods) > 1:
        raise ConnectionStringError(f"the connection string names {len(methods)} ways to sign in "
                                    f"({', '.join(methods)}); keep one")
    method = methods[0] if methods else "default"
    cloud = cloud_of(spec)
    authority = _authority(spec.get("authority") or cloud.authority)
    tenant = spec.get("tenant")
    client_id = spec.get("clientid")
    if method in ("clientsecret", "certificate"):
        missing = [k for k, v in (("tenant", tenant), ("clientid", client_id)) if not v]
        if missing:
            raise ConnectionStringError(f"{method} sign-in needs {' and '.join(missing)} in the connection string")
    return SignIn(method=method, cloud=cloud, authority=authority, tenant=tenant, client_id=client_id,
                  secret=spec.get("clientsecret"), certificate=spec.get("certificate"),
                  certificate_password=spec.get("certificatepassword"))


def _authority(value: str) -> str:
    v = value.strip().rstrip("/")
    if "://" not in v:
        v = "https://" + v
    if not v.startswith("https://"):
        raise ConnectionStringError(f"authority {value!r} must be an https:// URL (sign-in never goes over "
                                    "plain http)")
    return v


# -- credentials ------------------------------------------------------------------------------------------

_lock = threading.Lock()
_credentials: dict[str, Any] = {}


def quiet_sdk_loggers() -> None:
    """Keep the SDKs' warnings out of cell output unless logging is configured.

    azure-identity logs a multi-line WARNING for every failed token request; with no handler
    configured, Python prints it to stderr next to our one-line error. A NullHandler on the SDKs'
    loggers stops only that fallback: records still reach any handler the user configures.
    """
    import logging

    for name in ("azure", "msal"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
            logger.addHandler(logging.NullHandler())
    # Records that do reach a handler carry no credential (azure-core logs request URLs, MSAL token requests).
    redact_log_records()


def credential_for(sign_in: SignIn, *, target: str = "") -> Any:
    """The azure-identity credential for *sign_in* (None for ``anonymous``), shared by every
    connection that signs in the same way, so one device-code prompt serves them all."""
    if sign_in.method == "anonymous":
        return None
    quiet_sdk_loggers()
    with _lock:
        key = sign_in.key()
        cred = _credentials.get(key)
        if cred is None:
            cred = _build(sign_in, target)
            _credentials[key] = cred
        return cred


def forget_credentials() -> None:
    """Drop the in-memory credentials (what a kernel restart does; the persistent cache stays)."""
    with _lock:
        creds = list(_credentials.values())
        _credentials.clear()
    for cred in creds:
        with contextlib.suppress(Exception):  # closing is best effort
            cred.close()


def _cache_mode() -> str:
    mode = os.environ.get(CACHE_ENV, "on").strip().lower() or "on"
    if mode not in ("on", "encrypted", "off"):
        raise AuthError(f"{CACHE_ENV}={mode!r} is not valid: use on, encrypted or off")
    return mode


def _cache_options() -> dict[str, Any]:
    mode = _cache_mode()
    if mode == "off":
        return {}
    from azure.identity import TokenCachePersistenceOptions

    return {"cache_persistence_options": TokenCachePersistenceOptions(
        name=CACHE_NAME, allow_unencrypted_storage=(mode == "on"))}


def _common(sign_in: SignIn) -> dict[str, Any]:
    from urllib.parse import urlparse

    kwargs: dict[str, Any] = {"authority": sign_in.authority}
    if (urlparse(sign_in.authority).hostname or "") not in _WELL_KNOWN_AUTHORITY_HOSTS:
        # Instance discovery asks login.microsoftonline.com about the host; a private or test authority
        # is not in its list and would be refused.
        kwargs["disable_instance_discovery"] = True
    return kwargs


def _build(sign_in: SignIn, target: str) -> Any:
    try:
        import azure.identity as ai
    except ImportError:
        from kqlmagic_plus.errors import EngineUnavailableError

        raise EngineUnavailableError("azure-identity is not installed: pip install azure-identity") from None
    m = sign_in.method
    try:
        if m == "clientsecret":
            return ai.ClientSecretCredential(sign_in.tenant, sign_in.client_id, sign_in.secret, **_common(sign_in))
        if m == "certificate":
            cert = sign_in.certificate or ""
            source: dict[str, Any] = ({"certificate_data": cert.encode()} if "-----BEGIN" in cert
                                      else {"certificate_path": os.path.expanduser(cert)})
            if "certificate_path" in source and not os.path.exists(source["certificate_path"]):
                raise ConnectionStringError(f"certificate file {cert!r} does not exist")
            pw = sign_in.certificate_password.encode() if sign_in.certificate_password else None
            return ai.CertificateCredential(sign_in.tenant, sign_in.client_id, password=pw, **source,
                                            **_common(sign_in))
        if m in ("code", "interactive"):
            return _RememberedUser(sign_in, target)
        if m == "azcli":
            return ai.AzureCliCredential(tenant_id=sign_in.tenant) if sign_in.tenant else ai.AzureCliCredential()
        if m == "msi":
            return ai.ManagedIdentityCredential(client_id=sign_in.client_id) if sign_in.client_id \
                else ai.ManagedIdentityCredential()
        kwargs = _common(sign_in)
        if sign_in.tenant:
            kwargs["interactive_browser_tenant_id"] = sign_in.tenant
        if sign_in.client_id:
            kwargs["managed_identity_client_id"] = sign_in.client_id
        return ai.DefaultAzureCredential(**kwargs)
    except (ConnectionStringError, AuthError):
        raise
    except (ValueError, TypeError, OSError) as exc:
        raise AuthError(f"cannot set up {sign_in.describe()}: {scrub(first_line(exc), sign_in)}",
                        hint=_ADVICE[m]) from None


# -- remembered user sign-ins -------------------------------------------------------------------------------

#: Replaceable: how a sign-in prompt reaches the user (the magic's cell output by default).
_prompt: Callable[[str], None] = lambda text: print(text, file=sys.stdout, flush=True)  # noqa: E731


def set_prompt(fn: Callable[[str], None]) -> Callable[[str], None]:
    """Send sign-in prompts (device codes) to *fn* instead of stdout; returns the previous handler."""
    global _prompt
    previous, _prompt = _prompt, fn
    return previous


def records_dir() -> str:
    """Where remembered accounts (AuthenticationRecords: no tokens, no secrets) are kept."""
    return os.path.join(os.path.expanduser("~"), ".IdentityService", CACHE_NAME + "-accounts")


class _RememberedUser:
    """A user credential that signs in once and is found again by the next kernel.

    The first token request signs in (prompting) and saves the AuthenticationRecord; a new kernel
    reads it back, and azure-identity then finds the refresh token in the persistent cache.
    """

    def __init__(self, sign_in: SignIn, target: str):
        self._sign_in = sign_in
        self._target = target
        ident = hashlib.sha256(f"{sign_in.method}|{sign_in.authority}|{sign_in.tenant}|{sign_in.client_id}"
                               .encode()).hexdigest()[:24]
        self._path = os.path.join(records_dir(), ident + ".json")
        self._lock = threading.Lock()
        self._record = self._load() if _cache_mode() != "off" else None
        self._cred = self._make(self._record)

    def _make(self, record: Any) -> Any:
        import azure.identity as ai

        kwargs: dict[str, Any] = {**_common(self._sign_in), **_cache_options()}
        if self._sign_in.tenant:
            kwargs["tenant_id"] = self._sign_in.tenant
        if self._sign_in.client_id:
            kwargs["client_id"] = self._sign_in.client_id
        if record is not None:
            # The record names the authority, tenant and client it signed in with.
            kwargs["authentication_record"] = record
            kwargs.pop("authority", None)
            kwargs.pop("client_id", None)
        if self._sign_in.method == "code":
            return ai.DeviceCodeCredential(prompt_callback=self._show_code, **kwargs)
        return ai.InteractiveBrowserCredential(**kwargs)

    def _show_code(self, verification_uri: str, user_code: str, expires_on: Any) -> None:
        where = f" for {self._target}" if self._target else ""
        until = f" (valid until {expires_on:%H:%M} UTC)" if expires_on is not None else ""
        _prompt(f"To sign in{where}, open {verification_uri} in a browser and enter the code {user_code}{until}.")

    def _load(self) -> Any:
        from azure.identity import AuthenticationRecord

        try:
            with open(self._path, encoding="utf-8") as fh:
                return AuthenticationRecord.deserialize(fh.read())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, record: Any) -> None:
        os.makedirs(os.path.dirname(self._path), mode=0o700, exist_ok=True)
        tmp = self._path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(record.serialize())
        os.replace(tmp, self._path)

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        with self._lock:
            if self._record is None:
                record = self._cred.authenticate(scopes=list(scopes))
                self._record = record
                if _cache_mode() != "off":
                    self._save(record)
        return self._cred.get_token(*scopes, **kwargs)

    def close(self) -> None:
        self._cred.close()

    def __repr__(self) -> str:
        return f"<signed-in user: {self._sign_in.describe()}>"


# -- errors ------------------------------------------------------------------------------------------------


def first_line(exc: BaseException | str) -> str:
    """The first line of an SDK message that says something (no tracebacks, trace ids or blanks)."""
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    for line in text.splitlines():
        s = line.strip()
        if s and not s.lower().startswith(("trace id", "correlation id", "timestamp", "content:", "traceback")):
            return s[:400]
    return text.strip()[:400] or type(exc).__name__


def scrub(text: str, sign_in: SignIn | None) -> str:
    """*text* with every secret of *sign_in*, and any credential :func:`redact` knows, replaced by ***."""
    return redact(text, sign_in.secrets() if sign_in is not None else ())


def explain(exc: BaseException, sign_in: SignIn | None, *, resource: str = "") -> AuthError:
    """One line: which sign-in failed, the service's reason, what to do."""
    method = sign_in.method if sign_in is not None else "default"
    reason = _auth_reason(exc)
    who = sign_in.describe() if sign_in is not None else "the credential"
    where = f" for {resource}" if resource else ""
    return AuthError(scrub(f"{who} could not get a token{where}: {reason}", sign_in), hint=_ADVICE[method])


def _auth_reason(exc: BaseException) -> str:
    # CredentialUnavailableError chains (DefaultAzureCredential) and MSAL's AADSTS lines are long;
    # the AADSTS code line, or the first line, is what a person can act on.
    text = str(getattr(exc, "message", None) or exc)
    if "Attempted credentials:" in text:
        # DefaultAzureCredential: one indented line per credential it tried.
        tried = [ln.strip() for ln in text.split("Attempted credentials:", 1)[1].splitlines()
                 if ln.startswith(("\t", " ")) and ln.strip()]
        if tried:
            return ("no credential worked: " + "; ".join(tried))[:600]
    for line in text.splitlines():
        if "AADSTS" in line:
            return line.strip()[:300]
    inner = getattr(exc, "exception", None)  # KustoAuthenticationError wraps the credential's error
    if isinstance(inner, BaseException):
        return _auth_reason(inner)
    return first_line(text)
