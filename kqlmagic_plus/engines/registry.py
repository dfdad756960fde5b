"""The open connections: one engine per distinct target, aliases, and the current connection.

Connection strings are parsed by :mod:`kqlmagic_plus.connections.spec`; this registry turns a
parsed spec into its engine (imported on first use) and keeps it for reuse.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.connections.spec import (
    AUTH_FLAGS,
    AUTH_KEYS,
    SCHEMES,
    ConnectionSpec,
    has_sign_in,
    no_scheme_error,
    parse,
)
from kqlmagic_plus.errors import ConnectionStringError
from kqlmagic_plus.redaction import redact

if TYPE_CHECKING:
    from kqlmagic_plus.engines.base import Engine


# -- engines -------------------------------------------------------------------------------------------

def _local(spec: ConnectionSpec) -> Engine:
    from kqlmagic_plus.engines.local import LocalEngine

    return LocalEngine.from_spec(spec)


def _loganalytics(spec: ConnectionSpec) -> Engine:
    from kqlmagic_plus.engines.loganalytics import LogAnalyticsEngine

    return LogAnalyticsEngine.from_spec(spec)


def _adx(spec: ConnectionSpec) -> Engine:
    from kqlmagic_plus.engines.adx import AdxEngine

    return AdxEngine.from_spec(spec)


def _sentinellake(spec: ConnectionSpec) -> Engine:
    from kqlmagic_plus.engines.sentinellake import SentinelLakeEngine

    return SentinelLakeEngine.from_spec(spec)


#: canonical scheme -> factory(spec) -> Engine. Each imports its engine on first use, so a scheme
#: costs nothing until a connection uses it.
_FACTORIES: dict[str, Callable[[ConnectionSpec], Engine]] = {
    "local": _local,
    "loganalytics": _loganalytics,
    "adx": _adx,
    "sentinellake": _sentinellake,
}


def register_scheme(scheme: str, factory: Callable[[ConnectionSpec], Engine]) -> None:
    _FACTORIES[scheme] = factory


def _factory(scheme: str) -> Callable[[ConnectionSpec], Engine]:
    try:
        return _FACTORIES[scheme]
    except KeyError:
        raise ConnectionStringError(f"no engine for scheme {scheme!r}") from None


class Connections:
    """Named connections and the current one. One engine per distinct target, reused."""

    def __init__(self, default: str = "local://"):
        self._lock = threading.RLock()
        self._engines: dict[str, Engine] = {}
        self._specs: dict[str, ConnectionSpec] = {}
        self._aliases: dict[str, str] = {}
        self.default = default
        self.current: str | None = None

    def resolve(self, conn: str | None = None, namespace: Mapping[str, Any] | None = None) -> tuple[str, Engine]:
        """The engine for a connection string, alias or name (None: the current, else the default).

        Kqlmagic's ``-conn VAR``: a bare name that is no alias but a string variable in *namespace*
        is read as the connection string it holds (looked up, never evaluated). ``db@cluster``
        without a scheme is an ADX connection.
        """
        with self._lock:
            text = conn if conn is not None else (self.current or self.default)
            text = text.strip()
            if (namespace is not None and text.isidentifier() and text not in self._aliases
                    and isinstance(namespace.get(text), str)):
                text = namespace[text].strip()
            key = self._aliases.get(text, text)
            if key not in self._engines and "://" not in key and key.lower().endswith("@loganalytics"):
                key = self._kqlmagic_workspace(key)
            if key not in self._engines:
                if ("://" not in key or "@" in key.split("://", 1)[0]) and _is_db_at_cluster(key):
                    key = "adx://" + key  # db@cluster, the cluster a name, host or URL
                if "://" not in key:
                    raise _not_a_connection(text, self.names())
                spec = self._with_borrowed_sign_in(parse(key))
                key = spec.identity() + (";" + ",".join(sorted(spec.flags)) if spec.flags else "") \
                    + _secret_tag(spec)
                if key not in self._engines:
                    factory = _factory(spec.scheme)
                    self._engines[key] = factory(spec)
                    self._specs[key] = spec
                if spec.alias:
                    self._aliases[spec.alias] = key
            self.current = key
            return key, self._engines[key]

    def _kqlmagic_workspace(self, text: str) -> str:
        """Kqlmagic's name of a Log Analytics connection, ``<alias or workspace id>@loganalytics``
        (``%kql --schema "SecOps@loganalytics"``): the open connection it names."""
        name = text[: -len("@loganalytics")].strip().strip("'\"")
        for alias, key in self._aliases.items():  # every alias the workspace was connected under, not only the first
            if alias.lower() == name.lower() and key in self._specs and self._specs[key].scheme == "loganalytics":
                return key
        for key, spec in self._specs.items():
            if spec.scheme == "loganalytics" and name.lower() in (
                    (spec.alias or "").lower(), (spec.get("workspace") or "").lower()):
                return key
        raise ConnectionStringError(f"no open Log Analytics connection named {name!r} (its alias or workspace id); "
                                    "connect first: %kql loganalytics://...;alias='NAME'")

    def _with_borrowed_sign_in(self, spec: ConnectionSpec) -> ConnectionSpec:
        """A remote spec that says nothing about sign-in takes it from an open connection to the same
        cluster or workspace (Kqlmagic's ``db@cluster`` switches databases this way)."""
        if spec.scheme == "local" or has_sign_in(spec):
            return spec
        where = "cluster" if spec.scheme == "adx" else "workspace"
        target = (spec.get(where) or "").lower()
        for other in reversed(list(self._specs.values())):
            if other.scheme == spec.scheme and (other.get(where) or "").lower() == target and has_sign_in(other):
                props = dict(spec.props)
                for k in AUTH_KEYS:
                    if k in other.props and k not in props:
                        props[k] = other.props[k]
                return ConnectionSpec(spec.scheme, props, spec.flags | (other.flags & AUTH_FLAGS), spec.alias)
        return spec

    def peek(self, conn: str | None = None) -> Engine | None:
        """The engine of an already open connection (alias, connection string, or the current one),
        without opening one or changing the current connection (completion asks on every keystroke).

        A local connection is opened if need be (no network, no sign-in); a remote one never is.
        """
        with self._lock:
            text = (conn if conn is not None else (self.current or self.default)).strip()
            key = self._aliases.get(text, text)
            if key not in self._engines and "://" not in key and key.lower().endswith("@loganalytics"):
                try:
                    key = self._kqlmagic_workspace(key)
                except ConnectionStringError:
                    return None
            if key in self._engines:
                return self._engines[key]
            try:
                spec = parse(key) if "://" in key else None
            except ConnectionStringError:
                return None
            if spec is None:
                return None
            for k, other in self._specs.items():
                if other.identity() == spec.identity() and other.flags == spec.flags:
                    return self._engines[k]
            if spec.scheme != "local":
                return None
            current = self.current
            try:
                return self.resolve(key)[1]
            finally:
                self.current = current

    def names(self) -> list[str]:
        return sorted(self._aliases) + [k for k in self._engines if k not in self._aliases.values()]

    def listing(self) -> list[tuple[str, str, bool]]:
        """(alias or '', redacted connection, is current) for every open connection."""
        with self._lock:
            back = {v: k for k, v in self._aliases.items()}
            return [(back.get(key, ""), self._specs[key].redacted(), key == self.current)
                    for key in self._engines]

    def close_all(self) -> None:
        with self._lock:
            for eng in self._engines.values():
                with contextlib.suppress(Exception):  # closing is best effort at shutdown
                    eng.close()
            self._engines.clear()
            self._specs.clear()
            self._aliases.clear()
            self.current = None


#: Per-process key: secrets are told apart in registry keys without a reversible trace of them.
_TAG_KEY = os.urandom(32)


def _secret_tag(spec: ConnectionSpec) -> str:
    """Distinguishes connections that differ only in a secret (a corrected client secret must not
    reuse the engine built with the wrong one), without the secret in the key."""
    import hashlib
    import hmac

    secret = "\0".join(sorted(spec.secret_values()))
    if not secret:
        return ""
    return ";#" + hmac.new(_TAG_KEY, secret.encode(), hashlib.sha256).hexdigest()[:12]


def _not_a_connection(text: str, known: list[str]) -> ConnectionStringError:
    """A name that is no open connection, or a connection string without its ``scheme://`` (shown redacted:
    such a string may carry a client secret)."""
    word = text.lstrip().split(":", 1)[0].split("/", 1)[0].strip().lower()
    if any(c in text for c in ("=", ";", "//", ").")) or (word in SCHEMES and word != text.strip().lower()):
        return no_scheme_error(text)
    return ConnectionStringError(f"no connection named {redact(text)!r}. Known: {', '.join(known) or 'none'}")


def _is_db_at_cluster(text: str) -> bool:
    db, at, cluster = text.partition("@")
    return bool(at) and db.strip().replace("_", "a").replace("-", "a").isalnum() and bool(cluster.strip()) \
        and not any(c in text for c in " '\"|;=()")


_connections: Connections | None = None


def connections() -> Connections:
    """The process-wide registry (shared by the magics and the Python API)."""
    global _connections
    if _connections is None:
        _connections = Connections()
    return _connections
