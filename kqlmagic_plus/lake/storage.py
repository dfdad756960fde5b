"""Azure Storage for the lake: where a lake URL points, one client that lists and reads blobs, and the
local copies of the blobs read (keyed by ETag).

Lake URLs
---------
``abfss://<container>@<account>.dfs.core.windows.net/[path]`` (and ``abfs://``), ``az://<container>/[path]``
(the account from ``account=``), and ``https://<account>.blob.core.windows.net/[container/[path]]``
(``.dfs.`` too, any cloud's suffix). A URL without a container is the account: its ``am-*`` containers
are the lake. A container named ``am-*`` is one table; any other container (or a path in one) holds
``am-*`` folders. ADLS Gen2 accounts serve the Blob API on the same data, so every form is read through
the Blob endpoint ``https://<account>.blob.<suffix>``; ``endpoint=`` replaces it (an emulator such as
Azurite, ``http://127.0.0.1:10000/devstoreaccount1``, or a private endpoint). A SAS may follow the
URL (``https://...?sv=...&sig=...``): it is taken as the credential and never shown.

Faults
------
Throttling (503 Server Busy, 429, 500) is retried after the Retry-After the service sends (else 1, 2,
4 s), up to :data:`TRIES` tries and :data:`MAX_WAIT` seconds in all; past that the query fails saying
so. A read cut short (fewer bytes than the listing's size) is tried again; a blob still short is left
out and named. A blob deleted after it was listed is left out and named. Refused credentials (401/403:
an expired SAS or token, missing rights) fail the query naming the account and what was read: a
result without the rest of the window would be a silent wrong answer.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

from kqlmagic_plus.errors import AuthError, OptionError, QueryError
from kqlmagic_plus.redaction import redact, remember

T = TypeVar("T")

#: Schemes of a lake in Azure Storage.
SCHEMES = ("abfss", "abfs", "az", "https", "http")
#: Tries of one request under throttling or a dropped connection, and the most seconds waited in all.
TRIES = 6
MAX_WAIT = 120.0
#: Blobs read at once: a GET costs a round trip (tens of ms to a real account), little CPU.
READERS = 16
_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.(?P<kind>blob|dfs)\.(?P<suffix>core\..+)$", re.IGNORECASE)


def is_remote(text: str) -> bool:
    """Whether *text* names a lake in Azure Storage (a URL of one of :data:`SCHEMES`)."""
    scheme, sep, _ = text.strip().partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


@dataclass(frozen=True)
class LakeURL:
    """Where a lake is: account, Blob endpoint, container (None: the account's ``am-*`` containers), path."""

    account: str
    endpoint: str
    container: str | None
    prefix: str
    #: The URL as given, without any SAS: what messages show.
    display: str

    def slug(self) -> str:
        """The local cache folder of this account (endpoint host and account, no credential)."""
        host = urlparse(self.endpoint).netloc.replace(":", "_")
        return re.sub(r"[^A-Za-z0-9._-]", "_", f"{host}_{self.account}")


def parse_url(text: str, *, account: str | None = None, endpoint: str | None = None) -> tuple[LakeURL, str | None]:
    """(where the lake is, the SAS in the URL's query or None); an OptionError names what is wrong."""
    raw = text.strip()
    u = urlparse(raw)
    scheme = u.scheme.lower()
    sas = u.query or None
    if sas:
        remember(sas, *re.findall(r"sig=([^&]+)", sas))
    shown = raw.split("?", 1)[0]
    container: str | None
    if scheme in ("abfss", "abfs"):
        if "@" in u.netloc:
            container, host = u.netloc.split("@", 1)
        else:
            container, host = None, u.netloc
        m = _HOST.match(host)
        if m is None:
            raise OptionError(f"lake {shown!r}: write {scheme}://<container>@<account>.dfs.core.windows.net/...")
        acct, suffix, path = m.group("account"), m.group("suffix"), u.path
    elif scheme == "az":
        acct = account or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME") or ""
        if not acct:
            raise OptionError(f"lake {shown!r}: az:// names no account; add account='<name>' (or set "
                              "AZURE_STORAGE_ACCOUNT_NAME), or write https://<account>.blob.core.windows.net/...")
        container, suffix, path = (u.netloc or None), "core.windows.net", u.path
    else:
        m = _HOST.match(u.hostname or "")
        if m is None:
            raise OptionError(f"lake {shown!r}: write https://<account>.blob.core.windows.net/<container>/... "
                              "(an emulator or private endpoint goes in endpoint='...')")
        acct, suffix = m.group("account"), m.group("suffix")
        first, _, rest = u.path.lstrip("/").partition("/")
        container, path = (first or None), rest
    if account and account.lower() != acct.lower():
        raise OptionError(f"lake {shown!r} is in account {acct}, not account={account!r}")
    if container is not None and not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])?|\$root", container):
        raise OptionError(f"lake {shown!r}: {container!r} is not a storage container name")
    prefix = unquote(path).strip("/")
    if ".." in prefix.split("/"):
        raise OptionError(f"lake {shown!r}: a path with '..' in it")
    if endpoint:
        ep = endpoint.rstrip("/")
        if not re.match(r"^https?://", ep):
            raise OptionError(f"endpoint={endpoint!r}: give the Blob endpoint's URL, http(s)://host[:port][/account]")
    else:
        ep = f"https://{acct}.blob.{suffix}"
    return LakeURL(account=acct, endpoint=ep, container=container, prefix=prefix + "/" if prefix else "",
                   display=redact(shown)), sas


@dataclass
class StorageAccess:
    """How to reach a lake's storage: its URL, a credential (an azure-identity credential, an
    ``AzureSasCredential``, an ``AzureNamedKeyCredential``, or None for public data), the local cache folder."""

    url: LakeURL
    credential: Any = field(default=None, repr=False)
    #: Said in messages: which credential was used (no secret).
    described: str = "no credential"
    cache_dir: str | None = None
    #: Where progress lines go (None: stderr); "off" keeps quiet.
    progress: Any = None


@dataclass
class Counters:
    """What one lake asked of the storage account (the report says it; tests count it)."""

    lists: int = 0
    gets: int = 0
    bytes_read: int = 0
    cache_hits: int = 0
    retries: int = 0
    waited: float = 0.0

    def text(self) -> str:
        return (f"{self.lists:,} listing(s), {self.gets:,} blob read(s) ({self.bytes_read / 1e6:,.1f} MB), "
                f"{self.cache_hits:,} from the local copy")

    def snapshot(self) -> Counters:
        return Counters(**vars(self))

    def since(self, before: Counters) -> Counters:
        """What was asked after *before* was taken."""
        return Counters(**{k: v - getattr(before, k) for k, v in vars(self).items()})


@dataclass(frozen=True)
class BlobItem:
    name: str
    size: int
    etag: str


class Gone(Exception):
    """A listed blob is no longer there, or could not be read whole: it is left out, with this reason."""


class Storage:
    """The account's Blob API: list prefixes, read blobs; retries and one-line errors."""

    def __init__(self, access: StorageAccess):
        self.access = access
        self.url = access.url
        self.counters = Counters()
        self._lock = threading.Lock()
        self._service: Any = None

    def _client(self) -> Any:
        if self._service is None:
            try:
                from azure.storage.blob import BlobServiceClient
            except ImportError:
                raise OptionError("a lake in Azure Storage needs azure-storage-blob: "
                                  "pip install 'kqlmagic-plus[azure]'") from None
            # Retries are ours (Retry-After, one clear line at the end); the SDK's default waits 15 s and more.
            self._service = BlobServiceClient(self.url.endpoint, credential=self.access.credential, retry_total=0,
                                              connection_timeout=20, read_timeout=60)
        return self._service

    # -- requests ----------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """*fn* with retries under throttling and dropped connections; errors as one line."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            DecodeError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        waited = 0.0
        for attempt in range(1, TRIES + 1):
            try:
                return fn()
            except (ResourceNotFoundError, DecodeError):
                raise  # the caller's to judge: a blob gone, or a body cut short (IncompleteReadError)
            except ClientAuthenticationError as exc:
                raise self._refused(what, exc) from None
            except HttpResponseError as exc:
                status = exc.status_code or 0
                if not status and "IncompleteRead" in str(exc):
                    raise DecodeError(_first_line(exc)) from None  # the body was cut short
                if status in (401, 403):
                    raise self._refused(what, exc) from None
                if status not in (429, 500, 502, 503, 504) or attempt == TRIES:
                    raise self._failed(what, exc, attempt, waited) from None
                delay = _retry_after(exc, attempt)
            except (ServiceRequestError, ServiceResponseError) as exc:
                if attempt == TRIES:
                    raise self._failed(what, exc, attempt, waited) from None
                delay = min(2.0 ** (attempt - 1), 8.0)
            if waited + delay > MAX_WAIT:
                raise QueryError(f"{self.url.account}: still throttled {what} after {attempt} tries over "
                                 f"{waited:.0f} s (the service asked to wait {delay:.0f} s more); try again later")
            with self._lock:
                self.counters.retries += 1
                self.counters.waited += delay
            time.sleep(delay)
            waited += delay
        raise AssertionError("unreachable")  # pragma: no cover

    def _refused(self, what: str, exc: BaseException) -> AuthError:
        code = _code(exc) or getattr(getattr(exc, "response", None), "reason", "") or ""
        status = getattr(exc, "status_code", None) or 403
        return AuthError(f"storage account {self.url.account} refused {self.access.described} ({status} {code}) "
                         f"{what}: an expired SAS or token, or no read/list right; nothing was returned",
                         hint="Renew the SAS (give it as $NAME) or sign in again, then run the query again.")

    def _failed(self, what: str, exc: BaseException, attempt: int, waited: float) -> QueryError:
        status = getattr(exc, "status_code", None)
        code = _code(exc)
        said = f"{status} {code}".strip() if status else _first_line(exc)
        tries = f" after {attempt} tries over {waited:.0f} s" if attempt > 1 else ""
        return QueryError(f"{self.url.account}: {said} {what}{tries}")

    # -- listing -----------------------------------------------------------------------------------

    def containers(self, prefix: str = "am-") -> list[str]:
        def run() -> list[str]:
            with self._lock:
                self.counters.lists += 1
            return sorted(c.name for c in self._client().list_containers(name_starts_with=prefix))

        return self._call(f"listing the containers of {self.url.endpoint}", run)

    def walk(self, container: str, prefix: str) -> tuple[list[str], list[BlobItem]]:
        """One level below *prefix*: (sub-prefixes, blobs), as the delimiter ``/`` splits them."""
        def run() -> tuple[list[str], list[BlobItem]]:
            prefixes, blobs = [], []
            pages = self._client().get_container_client(container).walk_blobs(
                name_starts_with=prefix or None, delimiter="/").by_page()
            for page in _counted(pages, self.counters, self._lock):
                for item in page:
                    if hasattr(item, "etag") and getattr(item, "size", None) is not None:
                        blobs.append(BlobItem(item.name, int(item.size), _etag(item.etag)))
                    else:
                        prefixes.append(item.name)
            return prefixes, blobs

        return self._guarded(container, lambda: self._call(f"listing {container}/{prefix}", run))

    def flat(self, container: str, prefix: str, first: int | None = None) -> list[BlobItem]:
        """Every blob below *prefix* (or only the *first* few)."""
        def run() -> list[BlobItem]:
            out: list[BlobItem] = []
            pages = self._client().get_container_client(container).list_blobs(
                name_starts_with=prefix or None, results_per_page=first).by_page()
            for page in _counted(pages, self.counters, self._lock):
                out.extend(BlobItem(b.name, int(b.size), _etag(b.etag)) for b in page)
                if first is not None and len(out) >= first:
                    break
            return out

        return self._guarded(container, lambda: self._call(f"listing {container}/{prefix}", run))

    def _guarded(self, container: str, fn: Callable[[], T]) -> T:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return fn()
        except ResourceNotFoundError:
            raise OptionError(f"{self.url.account}: there is no container {container!r}") from None

    # -- reading -----------------------------------------------------------------------------------

    def read(self, container: str, blob: BlobItem, dest: str, *, length: int | None = None) -> str:
        """Write the blob (or its first *length* bytes) to *dest*; returns the ETag read. Raises Gone."""
        from azure.core.exceptions import DecodeError, IncompleteReadError, ResourceNotFoundError

        where = f"{container}/{blob.name}"
        short = ""
        for _attempt in range(3):
            def run() -> tuple[bytes, str, int]:
                with self._lock:
                    self.counters.gets += 1
                d = self._client().get_container_client(container).download_blob(
                    blob.name, offset=0 if length else None, length=length, max_concurrency=1)
                return d.readall(), _etag(d.properties.etag), int(d.properties.size)

            try:
                data, etag, size = self._call(f"reading {where}", run)
            except ResourceNotFoundError:
                raise Gone("deleted after it was listed") from None
            except (IncompleteReadError, DecodeError) as exc:
                short = _first_line(exc)
                continue
            with self._lock:
                self.counters.bytes_read += len(data)
            want = min(length, size) if length else size
            if len(data) != want:
                short = f"{len(data):,} of {want:,} bytes"
                continue
            tmp = f"{dest}.{os.getpid()}.{threading.get_ident()}.part"
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, dest)
            return etag
        raise Gone(f"read cut short 3 times ({short}); left out")


def _counted(pages: Iterator[Any], counters: Counters, lock: threading.Lock) -> Iterator[Any]:
    """The pages of a listing, each counted as one request."""
    for page in pages:
        with lock:
            counters.lists += 1
        yield page


def _code(exc: BaseException) -> str:
    """The service's error code (``ServerBusy``), as it sent it."""
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def _etag(value: Any) -> str:
    """An ETag as listings and reads both give it (a read quotes it, a listing may not)."""
    return str(value or "").strip('"')


def _retry_after(exc: Any, attempt: int) -> float:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return max(0.0, min(float(value), MAX_WAIT))
    except (TypeError, ValueError):
        return min(2.0 ** (attempt - 1), 8.0)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return redact(text.splitlines()[0][:300] if text else type(exc).__name__)


# -- the local copies --------------------------------------------------------------------------------


def default_cache_dir() -> str:
    """``$KQLMAGIC_PLUS_LAKE_CACHE``, else the user cache folder's ``lake``."""
    env = os.environ.get("KQLMAGIC_PLUS_LAKE_CACHE")
    if env:
        return os.path.abspath(os.path.expanduser(env))
    import platformdirs

    return os.path.join(platformdirs.user_cache_dir("kqlmagic_plus"), "lake")


class BlobCache:
    """Local copies of blobs, each valid while its ETag is the listed one (the ETag is kept beside it)."""

    def __init__(self, root: str):
        self.root = root
        os.makedirs(root, exist_ok=True)

    def path(self, container: str, name: str) -> str | None:
        """The local copy's path, or None for a blob name that would leave the cache folder."""
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in name or "\0" in name:
            return None
        return os.path.join(self.root, container, *parts)

    def fresh(self, path: str, blob: BlobItem) -> bool:
        try:
            with open(path + ".etag", encoding="utf-8") as fh:
                kept = json.load(fh)
            return kept.get("etag") == blob.etag and os.path.getsize(path) == blob.size
        except (OSError, ValueError, AttributeError):
            return False

    def keep(self, path: str, etag: str) -> None:
        tmp = f"{path}.etag.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"etag": etag}, fh)
        os.replace(tmp, path + ".etag")
