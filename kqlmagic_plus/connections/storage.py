"""Opening a lake in Azure Storage: the URL, and the credential to read it with.

``lake://<URL>[;key=value;...;signin]`` (or ``local://lake='<URL>';...``, or ``--lake '<URL>[;...]'`` for
hunts), where the URL is one of :mod:`kqlmagic_plus.lake.storage`'s forms. The credential, first match:

==================================  =================================================================
``sas='$NAME'``                      a SAS token (``sv=...&sig=...``) from environment variable NAME
a SAS after the URL (``?sv=...``)    the same, given in the URL
``accountkey='$NAME'``               the account's shared key from environment variable NAME
``anonymous``                        no credential (a public container)
anything else                        an azure-identity sign-in, the same words as every connection
                                     (``code``, ``azcli``, ``msi``, ``clientid``+``clientsecret`` ...,
                                     nothing: DefaultAzureCredential), see
                                     :mod:`kqlmagic_plus.connections.auth`
==================================  =================================================================

``account='<name>'`` names the account of an ``az://`` URL; ``endpoint='http(s)://...'`` replaces the
Blob endpoint (an emulator, a private endpoint); ``cache='DIR'`` the local copies' folder
(default ``$KQLMAGIC_PLUS_LAKE_CACHE`` or the user cache folder). Secrets are redacted wherever
anything is shown (their values are remembered by :mod:`kqlmagic_plus.redaction`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import ConnectionStringError
from kqlmagic_plus.redaction import remember

if TYPE_CHECKING:
    from kqlmagic_plus.connections.spec import ConnectionSpec
    from kqlmagic_plus.lake import Lake

#: Keys a lake URL takes beside the sign-in's.
LAKE_KEYS = frozenset({"lake", "sas", "accountkey", "account", "endpoint", "cache"})


def open_lake(url: str, spec: ConnectionSpec | None = None, *, progress: Any = None) -> Lake:
    """The :class:`~kqlmagic_plus.lake.Lake` at *url* (a path or a storage URL), signed in as *spec* says.

    *url* may carry ``;key=value`` pairs and sign-in words after it (``abfss://...;sas=$LAKE_SAS``)."""
    from kqlmagic_plus.lake import Lake
    from kqlmagic_plus.lake.storage import is_remote

    text = url.strip()
    if not is_remote(text):
        return Lake(text)
    if spec is None or ";" in text:
        from kqlmagic_plus.connections.spec import parse

        spec = parse("lake://" + text)
        text = spec.get("lake") or text
    return Lake(text, storage=access_for(text, spec, progress=progress))


def access_for(url: str, spec: ConnectionSpec, *, progress: Any = None) -> Any:
    """The :class:`~kqlmagic_plus.lake.storage.StorageAccess` for *url*: where, with which credential."""
    from kqlmagic_plus.lake.storage import StorageAccess, parse_url

    where, url_sas = parse_url(url, account=spec.get("account"), endpoint=spec.get("endpoint"))
    sas = spec.get("sas") or url_sas
    key = spec.get("accountkey")
    if sas and key:
        raise ConnectionStringError("the lake is given both a SAS and an account key: keep one")
    if sas:
        from azure.core.credentials import AzureSasCredential

        token = sas.lstrip("?")
        remember(token, *[p[4:] for p in token.split("&") if p.startswith("sig=")])
        return StorageAccess(where, AzureSasCredential(token), "the SAS", spec.get("cache"), progress)
    if key:
        from azure.core.credentials import AzureNamedKeyCredential

        remember(key)
        return StorageAccess(where, AzureNamedKeyCredential(where.account, key), "the account key",
                             spec.get("cache"), progress)
    from kqlmagic_plus.connections import auth

    sign_in = auth.sign_in_from_spec(spec)
    credential = auth.credential_for(sign_in, target=where.display)
    return StorageAccess(where, credential, sign_in.describe(), spec.get("cache"), progress)
