"""Loopback servers the remote-engine tests run against: real HTTP(S), real SDK clients."""

from __future__ import annotations

import time
from typing import Any

from .kusto import KustoServe, free_port
from .loganalytics import Fault, LoopbackLogAnalytics
from .tls import Tls, make_tls

__all__ = ["Fault", "KustoServe", "LoopbackLogAnalytics", "StaticToken", "Tls", "free_port", "make_tls"]


class StaticToken:
    """A TokenCredential that hands out one fixed token (for tests that are not about sign-in)."""

    def __init__(self, token: str):
        self._token = token
        self.calls = 0

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        self.calls += 1
        return AccessToken(self._token, int(time.time()) + 3600)

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return "StaticToken(<hidden>)"
