"""The one redaction: secrets out of every text the package shows, raises, logs or writes.

:func:`redact` is what every error message (:class:`kqlmagic_plus.errors.KqlMagicPlusError` passes its
message and hint through it), every connection shown (``ConnectionSpec.redacted``, engine targets,
``Result.connection``, the ``--conn`` listing, ``--show-query``) and the CLI's last line of defence use.
It replaces with ``***``:

* the password of a URL (``https://user:pass@host`` -> ``https://user:***@host``), and the user part of a
  web URL without one, which is then a token (``https://TOKEN@host`` -> ``https://***@host``); the
  ``container@account`` of ``abfss://`` and Kqlmagic's ``adx://db@cluster`` are no credentials and stay;
* the value of a secret-bearing key of a connection string (``clientsecret='...'``, ``Password=...``,
  ``;AccountKey=...``, ``.clientsecret('...')``, ``{'client_secret': '...'}``) and of a URL's query
  (``?sig=``, ``&code=``, ``?token=``, ``?key=``, ``?access_token=`` ...), the key spelled in any case,
  with or without ``_`` and ``-`` (:data:`SECRET_KEYS`);
* a bearer token (``Bearer eyJ...``), and the body of a PEM block (``-----BEGIN PRIVATE KEY-----...``);
* every secret value this process has seen in one of those places, or was told about with
  :func:`remember` (connection-string values, ``$NAME`` environment values included), wherever it shows
  up again in a message: an SDK that echoes a secret in its own words is caught too.

:func:`redact_log_records` applies the same to the log records of the SDKs (azure-core logs request URLs
at INFO, MSAL its token requests at DEBUG) and of this package, when they are made, whoever handles them.

A ``key=value`` counts only where a connection string or a query string puts one (at the start of the
text, or after ``;``, ``?``, ``&``, ``/``, ``:``, a quote, or ``.`` for ``.key(...)``), so KQL such as
``extend token = 1`` (on its own line too) is left as written.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable

REDACTED = "***"

#: Keys whose values are secrets, spelled as after :func:`normalize` (lower case, no ``_`` or ``-``);
#: the underscore forms stay for callers that build connection specs by hand.
SECRET_KEYS = frozenset({
    "clientsecret", "client_secret", "password", "passwd", "pwd", "appkey", "token", "accesstoken",
    "access_token", "refreshtoken", "idtoken", "sastoken", "certificatepassword", "certificate_password",
    "key", "accountkey", "sharedaccesskey", "apikey", "subscriptionkey", "xapikey", "sas", "sig", "signature",
    "secret", "code", "authorization", "xauthorization", "clientassertion", "privatekey",
})

#: Schemes whose user part, without a password, is a token (``https://TOKEN@host``).
_TOKEN_USER_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "ftps", "sc"})
#: Names too common to be secrets everywhere: only at the start, or after these characters (a URL's query,
#: a connection string), or as ``.code('...')``; never after a line break or a quote, nor as a JSON field
#: (``"code": 404``).
_GENERIC = {"key": "?&;:/", "code": "?&;:/"}
_ENV_REFERENCE = re.compile(r"\$[A-Za-z_][A-Za-z0-9_]*")
#: Remembered values shorter than this are not replaced everywhere (they would hit ordinary words).
_MIN_REMEMBERED = 8

_QUOTED = r"""\\'.*?(?:\\'|$)|\\".*?(?:\\"|$)|'(?:''|[^'])*(?:'|$)|"(?:""|[^"])*(?:"|$)"""
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*)://(?P<user>[^\s/@:'\"?#;]*)"
                       r"(?P<password>:[^\s/@'\"?#;]*)?@(?=[^\s@/])")
#: ``user:password@host`` without a scheme, or after a mistyped one (``sc//``, ``sc:``).
_BARE_USERINFO = re.compile(r"(?<![A-Za-z0-9._~%+-])(?P<user>[A-Za-z0-9._~%+-]+):(?P<password>[^\s/@'\"?#;:]+)@"
                            r"(?=[A-Za-z0-9\[])")
#: ``x//TOKEN@host``: a web URL whose ``:`` went missing (``sc//TOKEN@host``).
_BROKEN_TOKEN_USER = re.compile(r"(?<=[A-Za-z]//)(?P<user>[^\s/@:'\"?#;]+)@(?=[A-Za-z0-9\[])")
_PAIR = re.compile(
    r"(?:^|(?<=[;?&/.:'\"]))(?P<space>\s*)(?P<key>[A-Za-z][A-Za-z0-9_\-]*)"
    r"(?P<sep>\s*(?<![=!<>])=(?!=)\s*|\s*\(\s*)"
    r"(?P<value>" + _QUOTED + r"|[^\s;&#'\")\]},]+)")
_JSON_PAIR = re.compile(
    r"(?P<q>['\"])(?P<key>[A-Za-z][A-Za-z0-9_\-]*)(?P=q)(?P<sep>\s*:\s*)(?P<value>" + _QUOTED + r"|[^\s,}\]]+)")
_PEM = re.compile(r"(?P<begin>-----BEGIN [A-Z0-9 ]+-----)(?P<body>.*?)(?P<end>-----END [A-Z0-9 ]+-----|$)", re.DOTALL)
#: ``Bearer <token>``, not ``Bearer authorization_uri="..."`` (a WWW-Authenticate challenge).
_BEARER = re.compile(r"(?i)\b(?P<word>bearer)(?P<space>\s+|%20)(?![A-Za-z0-9\-._~+/]*=\")"
                     r"(?P<value>[A-Za-z0-9\-._~+/]{8,}=*)")

_lock = threading.Lock()
_known: set[str] = set()
_known_sorted: tuple[str, ...] = ()
#: Loggers whose records are redacted (name prefixes): the SDKs a connection talks through, and ours.
_LOGGERS = ("azure", "msal", "urllib3", "requests", "kqlmagic_plus", "py4j", "pyspark", "grpc")
_log_factory_installed = False


def normalize(key: str) -> str:
    """A key as connection strings compare it: lower case, without ``_`` and ``-``."""
    return key.strip().lower().replace("_", "").replace("-", "")


def is_secret_key(key: str) -> bool:
    """Whether *key* (in any spelling) names a secret."""
    return normalize(key) in SECRET_KEYS


def remember(*values: str | None) -> None:
    """Treat these values as secrets in everything :func:`redact` sees from now on (this process only)."""
    global _known_sorted
    new = {v for v in values if v and len(v) >= _MIN_REMEMBERED and v not in _known}
    if new:
        with _lock:
            _known.update(new)
            _known_sorted = tuple(sorted(_known, key=len, reverse=True))


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """*text* with every credential in it replaced by ``***`` (see the module docstring); *secrets* are
    further values to replace (4 characters or more)."""
    if not text:
        return text
    found: list[str] = []
    out = _USERINFO.sub(lambda m: _userinfo(m, found), text)
    out = _BARE_USERINFO.sub(lambda m: _userinfo(m, found), out)
    out = _BROKEN_TOKEN_USER.sub(lambda m: _userinfo(m, found), out)
    out = _PAIR.sub(lambda m: _pair(m, found), out)
    out = _JSON_PAIR.sub(lambda m: _pair(m, found), out)
    out = _BEARER.sub(lambda m: _bearer(m, found), out)
    out = _PEM.sub(lambda m: f"{m.group('begin')}{REDACTED}{m.group('end')}", out)
    remember(*found)
    extra = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    for value in (*extra, *_known_sorted):
        if value in out:
            out = out.replace(value, REDACTED)
    return out


def _userinfo(m: re.Match[str], found: list[str]) -> str:
    groups = m.groupdict()
    scheme, user, password = groups.get("scheme"), m.group("user"), groups.get("password")
    head = f"{scheme}://" if scheme else ""
    if password is not None:
        found.append(password.removeprefix(":"))
        return f"{head}{user}:{REDACTED}@"
    if user and (scheme is None or scheme.lower() in _TOKEN_USER_SCHEMES):
        found.append(user)
        return f"{head}{REDACTED}@"
    return m.group(0)


def _pair(m: re.Match[str], found: list[str]) -> str:
    key = normalize(m.group("key"))
    json = "q" in m.groupdict()
    before = m.string[m.start() - 1] if m.start() else ""
    value = m.group("value")
    paren = "(" in m.group("sep")
    if key not in SECRET_KEYS or (before == "." and not paren) \
            or (key in _GENERIC and (json or (before not in _GENERIC[key] and not (before == "." and paren)))):
        # Not a secret, but its value may hold one (endpoint='https://h/?sig=...'): look inside it.
        pattern = _JSON_PAIR if json else _PAIR
        return m.group(0)[:m.start("value") - m.start()] + pattern.sub(lambda v: _pair(v, found), value)
    quote = re.match(r"\\?['\"]", value)
    q = quote.group(0) if quote else ""
    inner = value[len(q):]
    closed = bool(q) and inner.endswith(q)
    if closed:
        inner = inner[:-len(q)]
    if _ENV_REFERENCE.fullmatch(inner):  # $NAME names where the secret is; it is none itself
        return m.group(0)
    found.append(inner)
    shown = f"{q}{REDACTED}{q if closed else ''}"
    if json:
        return f"{m.group('q')}{m.group('key')}{m.group('q')}{m.group('sep')}{shown}"
    return f"{m.group('space')}{m.group('key')}{m.group('sep')}{shown}"


def _bearer(m: re.Match[str], found: list[str]) -> str:
    found.append(m.group("value"))
    return f"{m.group('word')}{m.group('space')}{REDACTED}"


def redact_log_records() -> None:
    """Redact every record of the SDKs' loggers (and this package's) as it is made, so no handler (a
    notebook's logging at DEBUG, pytest's caplog, a file) ever gets a credential. Installed once."""
    global _log_factory_installed
    with _lock:
        if _log_factory_installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs):
            record = previous(*args, **kwargs)
            if record.name.startswith(_LOGGERS):
                _redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _log_factory_installed = True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        text = record.getMessage()
    except Exception:  # a record whose arguments do not fit its format: logging reports that itself
        return
    shown = redact(text)
    if shown != text:
        record.msg, record.args = shown, ()
    if record.exc_info and not record.exc_text:
        # Formatters use exc_text when it is set: the traceback's messages pass the same redaction.
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
