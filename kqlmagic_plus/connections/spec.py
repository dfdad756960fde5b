"""Connection strings, aliases, and the current connection.

Accepted forms (Kqlmagic-compatible, plus new schemes)::

    local://                                   the embedded engine (default)
    local://db='path/to.duckdb'                a DuckDB database file
    local://lake='DIR'      lake://DIR         an exported Log Analytics lake
    lake://abfss://am-x@acct.dfs.core.windows.net/;sas='$SAS'   the lake in Azure Storage (connections/storage.py)
    loganalytics://workspace='<id>';tenant='<t>';code
    loganalytics://workspace('<id>').tenant('<t>').clientid('<app>').clientsecret('$SECRET')
    azuredataexplorer://cluster='c';database='db'    (aliases adx://, kusto://)
    adx://db@cluster          db@cluster (the sign-in of an open connection to that cluster is reused)
    sentinellake://workspacename='<name>';workspaceid='<id>';tenant='<t>';code    the Sentinel data lake

Keys are read the way Kqlmagic reads them: case, ``_`` and ``-`` do not matter (``client_secret``,
``ClientSecret`` and ``clientsecret`` are one key), and Kqlmagic's names are accepted
(``aadurl``/``datasourceurl`` -> ``authority``/``endpoint``, ``certificate_pem_file`` -> ``certificate``).
Sign-in is one bare word or a key pair: ``code`` (device code), ``interactive``, ``azcli``, ``msi``,
``default`` (DefaultAzureCredential), ``anonymous``, ``clientid``+``clientsecret``, ``clientid``+
``certificate``; see :mod:`kqlmagic_plus.connections.auth`. ``cloud='public|usgov|china'`` picks the sovereign cloud.

Values are literal text, or ``$NAME`` for an environment variable; nothing is ever evaluated.
Secret-bearing keys, and credentials inside URL values (``https://user:pass@host``, ``?sig=``), are
redacted wherever a connection is shown, by :func:`kqlmagic_plus.redaction.redact`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kqlmagic_plus import redaction
from kqlmagic_plus.errors import ConnectionStringError, OptionError
from kqlmagic_plus.redaction import REDACTED, SECRET_KEYS, redact

#: Scheme spellings -> canonical scheme.
SCHEMES = {
    "local": "local",
    "duckdb": "local",
    "lake": "local",
    "loganalytics": "loganalytics",
    "la": "loganalytics",
    "azuremonitor": "loganalytics",
    "sentinel": "loganalytics",
    "azuredataexplorer": "adx",
    "adx": "adx",
    "kusto": "adx",
    "sentinellake": "sentinellake",
}

#: Kqlmagic schemes for services this does not reach, normalized -> the one-line reason and what to use.
RETIRED_SCHEMES = {
    "appinsights": "classic Application Insights resources were retired (February 2024); workspace-based "
                   "Application Insights data is in its Log Analytics workspace (AppRequests, AppTraces, ...): "
                   "connect with loganalytics://workspace='<id>'",
    "applicationinsights": "classic Application Insights resources were retired (February 2024); workspace-based "
                           "Application Insights data is in its Log Analytics workspace: connect with "
                           "loganalytics://workspace='<id>'",
    "aimon": "Kqlmagic's Azure Monitor (aimon) engine is not provided; Azure Monitor logs are reached with "
             "loganalytics://workspace='<id>'",
    "aria": "Aria is a Microsoft-internal service this does not connect to",
}

# SECRET_KEYS (imported from kqlmagic_plus.redaction, the one list): keys whose values are secrets, never
# shown, never part of a cache key; spelled as after normalize_key().

#: Bare words that select an authentication method (Kqlmagic spells them as flags).
AUTH_FLAGS = frozenset({"code", "devicecode", "azcli", "azcli_login", "msi", "anonymous", "default",
                        "interactive", "managedidentity"})

#: Kqlmagic (and SDK) spellings of keys -> ours, after :func:`normalize_key`.
KEY_ALIASES = {
    "workspaceid": "workspace",
    "tenantid": "tenant",
    "appid": "clientid",
    "applicationid": "clientid",
    "applicationclientid": "clientid",
    "clusterurl": "cluster",
    "datasource": "cluster",
    "initialcatalog": "database",
    "certificatepemfile": "certificate",
    "certificatefile": "certificate",
    "certificatepath": "certificate",
    "aadurl": "authority",
    "loginendpoint": "authority",
    "authorityhost": "authority",
    "datasourceurl": "endpoint",
    "devicecode": "code",
    "azclilogin": "azcli",
    "managedidentity": "msi",
}

#: ``cloud=`` values -> the canonical cloud name (Kqlmagic's and Azure CLI's names included).
CLOUDS = {
    "public": "public", "azurecloud": "public", "azurepubliccloud": "public",
    "usgov": "usgov", "fairfax": "usgov", "azureusgovernment": "usgov", "azureusgovernmentcloud": "usgov",
    "china": "china", "mooncake": "china", "azurechinacloud": "china",
}

#: Keys that say how to sign in (with AUTH_FLAGS). A spec without any borrows them (db@cluster).
AUTH_KEYS = ("tenant", "clientid", "clientsecret", "certificate", "certificatepassword", "certificatethumbprint",
             "authority", "cloud")


@dataclass(frozen=True)
class ConnectionSpec:
    """A parsed connection string."""

    scheme: str
    props: dict[str, str] = field(default_factory=dict)
    flags: frozenset[str] = frozenset()
    alias: str | None = None

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.props.get(key, default)

    def check_keys(self, allowed: frozenset[str]) -> None:
        """Refuse, naming them, the keys this scheme does not take."""
        unknown = set(self.props) - allowed
        if unknown:
            raise OptionError(f"{self.scheme}:// does not take {', '.join(sorted(unknown))}; it takes "
                              + ", ".join(sorted(allowed)))

    def redacted(self) -> str:
        """The connection as text, safe to show: secret values, and credentials inside URLs, replaced by ***."""
        parts = [f"{k}='{REDACTED if is_secret(k, v) else redact(v)}'" for k, v in self.props.items()]
        parts += sorted(self.flags)
        if self.alias:
            parts.append(f"alias='{self.alias}'")
        return f"{self.scheme}://" + ";".join(parts)

    def identity(self) -> str:
        """What the connection points at, with no credential material (cache key, registry key)."""
        safe = {k: redact(v) for k, v in self.props.items() if not is_secret(k, v) and k != "alias"}
        return f"{self.scheme}://" + ";".join(f"{k}={v}" for k, v in sorted(safe.items()))

    def secret_values(self) -> list[str]:
        """The values that must never be shown: secret props, and props holding URL credentials."""
        return [v for k, v in self.props.items() if is_secret(k, v) or redact(v) != v]

    def __repr__(self) -> str:
        return f"ConnectionSpec({self.redacted()!r})"

    __str__ = redacted


def parse(text: str, env: dict[str, str] | None = None) -> ConnectionSpec:
    """Parse a connection string. Raises ConnectionStringError saying what and where."""
    env = os.environ if env is None else env
    raw = text.strip()
    scheme_raw, sep, body = raw.partition("://")
    if not sep:
        raise ConnectionStringError(f"not a connection string: {_safe_preview(raw)!r} "
                                    "(expected scheme://..., e.g. local:// or loganalytics://workspace='...')")
    scheme = SCHEMES.get(scheme_raw.strip().lower()) or SCHEMES.get(normalize_key(scheme_raw))
    if scheme is None and normalize_key(scheme_raw) in RETIRED_SCHEMES:
        raise ConnectionStringError(f"{scheme_raw}:// is not supported: {RETIRED_SCHEMES[normalize_key(scheme_raw)]}")
    if scheme is None:
        if not scheme_raw.strip().replace("-", "").replace("+", "").replace(".", "").isalnum():
            raise no_scheme_error(raw)  # the first :// is inside a value (endpoint='https://...')
        raise ConnectionStringError(f"unknown scheme {scheme_raw!r}; known: "
                                    + ", ".join(sorted(set(SCHEMES))))
    props: dict[str, str] = {}
    flags: set[str] = set()
    body = body.strip()
    if scheme_raw.lower() == "lake" and "://" in body.split(";", 1)[0]:
        # lake://abfss://...;sas=$NAME;... : a storage URL, then its keys and sign-in (connections/storage.py).
        head, _, body = body.partition(";")
        props["lake"] = _resolve(_unquote(head), env, "lake")
    elif scheme_raw.lower() == "lake" and body and not _looks_like_pairs(body):
        props["lake"] = _resolve(_unquote(body), env, "lake")
        return ConnectionSpec("local", props)
    head = body.split(";", 1)[0]
    if scheme == "adx" and "@" in head and "=" not in head and "(" not in head:
        # Kqlmagic's db@cluster; sign-in words may follow (adx://db@cluster;code).
        db, _, cluster = head.partition("@")
        if not db.strip() or not cluster.strip():
            raise ConnectionStringError(f"{head!r} needs both parts: database@cluster")
        props.update({"database": db.strip(), "cluster": cluster.strip()})
        body = body[len(head) + 1:] if ";" in body else ""
    for pos, key, value in _pairs(body):
        k = normalize_key(key)
        if value is None:
            if k in AUTH_FLAGS:
                flags.add(k)
                continue
            raise ConnectionStringError(f"{key!r} at position {pos + 1} of the connection string needs a value "
                                        f"({key}='...'), or is not a known flag ({', '.join(sorted(AUTH_FLAGS))})")
        if k in props:
            raise ConnectionStringError(f"{key!r} at position {pos + 1} of the connection string is given twice")
        props[k] = _resolve(value, env, k)
    if "appkey" in props:
        raise ConnectionStringError("API-key sign-in (the appkey key) is not supported: Log Analytics takes "
                                    "Microsoft Entra sign-in; write code, azcli, msi, or a client id with a "
                                    "client secret, instead")
    alias = props.pop("alias", None)
    # Secrets given by $NAME, or inside a URL, are hidden in every message from now on, whoever builds it.
    redaction.remember(*(v for k, v in props.items() if is_secret(k, v)))
    if "cloud" in props:
        name = CLOUDS.get(normalize_key(props["cloud"]))
        if name is None:
            raise ConnectionStringError(f"cloud={props['cloud']!r} is not a cloud this knows; use public, usgov "
                                        "or china (Kqlmagic's fairfax and mooncake work too)")
        props["cloud"] = name
    return ConnectionSpec(scheme, props, frozenset(flags), alias)


def no_scheme_error(text: str) -> ConnectionStringError:
    """The error for a connection string without its ``scheme://`` (``loganalytics//...``, ``workspace=...``),
    shown redacted: such a string may carry a client secret, and nothing has parsed it yet."""
    word = text.lstrip().split(":", 1)[0].split("/", 1)[0].strip().lower()
    fix = f"write {word}://..." if word in SCHEMES else "write scheme://..., e.g. loganalytics://workspace='...'"
    return ConnectionStringError(f"{_safe_preview(text)!r} has no scheme: {fix}")


def is_secret(key: str, value: str) -> bool:
    """Whether a property's value must never be shown (a certificate given as PEM text holds a key)."""
    return key in SECRET_KEYS or (key == "certificate" and "-----BEGIN" in value)


def normalize_key(key: str) -> str:
    """A key as Kqlmagic compares it: lower case, without ``_`` and ``-``, aliases folded."""
    k = key.strip().lower().replace("_", "").replace("-", "")
    return KEY_ALIASES.get(k, k)


def has_sign_in(spec: ConnectionSpec) -> bool:
    """Whether the connection string says how to sign in (a flag, or a secret or certificate)."""
    return bool(spec.flags & AUTH_FLAGS) or any(k in spec.props for k in ("clientsecret", "certificate"))


def _looks_like_pairs(body: str) -> bool:
    return "=" in body.split("/")[0] or (body.split("(")[0].isidentifier() and "(" in body)


def _safe_preview(raw: str) -> str:
    # Never echo something that might be a secret, not even its start: redact, then shorten.
    shown = redact(raw)
    return shown if len(shown) <= 200 else shown[:197] + "..."


def _unquote(v: str) -> str:
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def _resolve(value: str, env, key: str) -> str:
    if value.startswith("$") and len(value) > 1 and value[1:].replace("_", "a").isalnum():
        name = value[1:]
        if name not in env:
            raise ConnectionStringError(f"{key} refers to environment variable ${name}, which is not set")
        return env[name]
    return value


def _pairs(body: str):
    """Yield (position, key, value-or-None) from ``k='v';k2=v2;flag`` or ``k('v').k2('v').flag()``."""
    i, n = 0, len(body)
    while i < n:
        while i < n and body[i] in " ;.\t\n":
            i += 1
        if i >= n:
            break
        start = i
        while i < n and (body[i].isalnum() or body[i] in "_-"):
            i += 1
        key = body[start:i]
        if not key:
            raise ConnectionStringError(f"unexpected {body[i]!r} at position {i + 1} of the connection string")
        while i < n and body[i] == " ":
            i += 1
        if i < n and body[i] == "=":
            i += 1
            value, i = _value(body, i, ";")
            yield start, key, value
        elif i < n and body[i] == "(":
            i += 1
            while i < n and body[i] == " ":
                i += 1
            if i < n and body[i] == ")":
                i += 1
                yield start, key, None
                continue
            value, i = _value(body, i, ")")
            while i < n and body[i] == " ":
                i += 1
            if i >= n or body[i] != ")":
                raise ConnectionStringError(f"missing ')' after the value of {key!r} at position {start + 1}")
            i += 1
            yield start, key, value
        else:
            yield start, key, None


def _value(body: str, i: int, stop: str) -> tuple[str, int]:
    n = len(body)
    while i < n and body[i] == " ":
        i += 1
    if i < n and body[i] in "'\"":
        q = body[i]
        j = i + 1
        out = []
        while j < n:
            if body[j] == q:
                if j + 1 < n and body[j + 1] == q:  # doubled quote inside
                    out.append(q)
                    j += 2
                    continue
                return "".join(out), j + 1
            out.append(body[j])
            j += 1
        raise ConnectionStringError(f"unterminated quote starting at position {i + 1} of the connection string")
    j = i
    while j < n and body[j] != stop and not (stop == ")" and body[j] == ")"):
        j += 1
    return body[i:j].strip(), j
