"""The exported lake as Spark temp views, one per table, with explicit schemas.

``%sparkhunt --lake PATH`` binds a lake to the session; every cell then (re)registers the views over
the files its time window needs. Columns and types are given, never inferred: Spark's partition
discovery from the lake root fails on the export's folders (``m=`` is both the month and the
minute), and inference would type a column by whatever one file holds.

Local lakes (a folder, or ``file://``) go through :class:`kqlmagic_plus.lake.Lake`: the same
discovery, time pruning, file checks and schemas the local DuckDB engine uses, so Spark reads exactly
the files DuckDB would, with the same column names (keys that differ only in case, ``ProcessID``
and ``ProcessId``, are named apart as :mod:`kqlmagic_plus.lake` documents: ``ProcessId_1``). The
session must see the same paths (local mode does; a Spark Connect or Synapse cluster needs the lake
on storage it can read).

Remote lakes (``abfss://``, ``wasbs://``, ``s3a://``, ``gs://``, ``hdfs://``) are read where they are:
the root is either an export container (``abfss://am-signinlogs@<account>.dfs.core.windows.net/``,
the table named by the container), several of them comma-separated, or a folder holding ``am-*``
folders (listed through the session's Hadoop file system; a Spark Connect client cannot list, so give
it the containers). Time pruning picks day folders by glob with the margins of
:mod:`kqlmagic_plus.lake` (``skew`` before the window, ``max_late`` after it); schemas are the
package's table reference.

Reading ``abfss://`` (ADLS Gen2)
--------------------------------
Spark needs the ``hadoop-azure`` connector and credentials for the storage account:

- Synapse pools have both: the session reads the workspace's storage with the signed-in identity
  (or the workspace's managed identity); nothing to configure.
- Local Spark: add the connector matching Spark's Hadoop (PySpark 4 ships Hadoop 3.4)::

      %sparkhunt --connect local[*] --conf spark.jars.packages=org.apache.hadoop:hadoop-azure:3.4.1

  (or copy ``hadoop-azure-3.4.x.jar`` and its ``azure-storage`` dependency into ``$SPARK_HOME/jars``), then
  one of, per account (``<acct>.dfs.core.windows.net``), as ``--conf spark.hadoop.<key>=<value>``:

  * account key: ``fs.azure.account.key.<acct>.dfs.core.windows.net = <key>``
  * service principal (OAuth client credentials):
    ``fs.azure.account.auth.type.<acct>.dfs.core.windows.net = OAuth``,
    ``fs.azure.account.oauth.provider.type.<acct>.dfs.core.windows.net =
    org.apache.hadoop.fs.azurebfs.oauth2.ClientCredsTokenProvider``,
    ``fs.azure.account.oauth2.client.id.<acct>... = <app id>``,
    ``fs.azure.account.oauth2.client.secret.<acct>... = <secret>``,
    ``fs.azure.account.oauth2.client.endpoint.<acct>... = https://login.microsoftonline.com/<tenant>/oauth2/token``
  * SAS token: ``fs.azure.account.auth.type.<acct>... = SAS`` and
    ``fs.azure.sas.fixed.token.<acct>.dfs.core.windows.net = <sas>``

  Secrets given as ``--conf`` values are not shown back (``%sparkhunt --status`` lists no conf).
- Spark Connect: configure the server (``spark-defaults.conf`` of the server) the same way.

Without the connector, or without credentials, registering the lake fails with one message saying
which of the two is missing and pointing here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from kqlmagic_plus.errors import AuthError, EngineUnavailableError, KqlMagicPlusError, OptionError, TableNotFoundError
from kqlmagic_plus.request import TimeWindow

REMOTE_SCHEMES = ("abfss", "abfs", "wasbs", "wasb", "s3a", "gs", "hdfs", "adl")
_DAY = timedelta(days=1)
_WORKSPACE_GLOB = "WorkspaceResourceId=/subscriptions/*/resourcegroups/*/providers/*/workspaces/*"
ABFSS_HELP = ("Reading abfss:// needs the hadoop-azure connector and credentials for the storage account; "
              "see `help(kqlmagic_plus.engines.spark.lake)` (Synapse pools have both).")


@dataclass
class Registration:
    """What one cell's registration covers: the spec shipped to the session, and what to tell the user."""

    spec: dict[str, Any]
    schemas: dict[str, list[tuple[str, str]]]
    summary: str
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


class SparkLake:
    """A lake location bound to a Spark session."""

    def __init__(self, location: str):
        text = location.strip()
        if not text:
            raise OptionError("--lake needs a path: a folder, file://..., or abfss://container@account.dfs.core."
                              "windows.net/...")
        self.location = text
        parts = [p.strip() for p in text.split(",") if p.strip()]
        schemes = {urlparse(p).scheme.lower() for p in parts}
        if schemes & {"az", "https", "http"}:
            # Hadoop has no file system for these: the session could not reach the lake, so say so now.
            raise OptionError(f"--lake {parts[0].split('?', 1)[0]}: Spark reads a lake in Azure Storage as "
                              "abfss://<container>@<account>.dfs.core.windows.net/ (hadoop-azure); az:// and "
                              "https:// lakes are read by the local engine (%%kql lake://... or hunt --lake)")
        if schemes & set(REMOTE_SCHEMES):
            if not schemes <= set(REMOTE_SCHEMES):
                raise OptionError("--lake: give either local folders or remote URLs, not both")
            self.kind = "remote"
            self.roots = [p.rstrip("/") + "/" for p in parts]
            self.lake = None
            self.display = ", ".join(self.roots)
            self._tables: dict[str, str] | None = None
        else:
            if len(parts) != 1:
                raise OptionError("--lake: one local folder at a time (comma-separated roots are for remote "
                                  "containers)")
            path = parts[0]
            if path.lower().startswith("file://"):
                path = urlparse(path).path
            from kqlmagic_plus.lake import Lake

            self.kind = "local"
            self.lake = Lake(path)
            self.roots = [self.lake.root]
            self.display = self.lake.root

    def __repr__(self) -> str:
        return f"SparkLake({self.display!r})"

    # -- tables ------------------------------------------------------------------------------------

    def table_names(self, session: Any = None) -> list[str]:
        if self.lake is not None:
            return self.lake.table_names()
        return sorted(self._remote_tables(session))

    def _remote_tables(self, session: Any) -> dict[str, str]:
        if self._tables is not None:
            return self._tables
        tables: dict[str, str] = {}
        for root in self.roots:
            name = container_table(root)
            if name is not None:
                tables.setdefault(name, root)
                continue
            if session is None:
                raise OptionError(f"--lake {root}: listing its am-* folders needs a Spark session")
            try:
                folders = session.list_folders(root)
            except KqlMagicPlusError as exc:
                raise explain_storage_error(exc, root) from None
            for folder in folders:
                name = container_table(folder.rstrip("/") + "/")
                if name is not None:
                    tables.setdefault(name, folder.rstrip("/") + "/")
        if not tables:
            raise OptionError(f"--lake {self.display}: no export containers (am-<table>) found")
        self._tables = tables
        return tables

    # -- registration ------------------------------------------------------------------------------

    def registration(self, window: TimeWindow | None, session: Any = None) -> Registration:
        """The views for a query with *window* (None: every file)."""
        if self.lake is not None:
            return self._local(window)
        return self._remote(window, session)

    def _local(self, window: TimeWindow | None) -> Registration:
        tables = []
        schemas: dict[str, list[tuple[str, str]]] = {}
        warnings: list[str] = []
        parts = []
        stats: dict[str, Any] = {}
        read = total = 0
        for name in self.lake.table_names():
            plan = self.lake.plan(name, window)
            schema = spark_schema(plan.schema)
            schemas[name] = schema
            # Only the stable parts of a plan: its files (checked, readable) and their format.
            json_files = [f.path for f in plan.files if f.fmt == "json"]
            parquet = [f.path for f in plan.files if f.fmt == "parquet"]
            # A column renamed apart from a case-variant spelling (ProcessId_1) names the JSON key it reads.
            columns = [[c, t, plan.keys[c]] if c in plan.keys else [c, t] for c, t in schema]
            tables.append({"name": name, "columns": columns, "json": json_files, "parquet": parquet, "glob": False})
            warnings.extend(plan.warnings)
            parts.append(f"{name} {plan.files_read:,} of {plan.files_total:,} files")
            read += plan.files_read
            total += plan.files_total
            stats[name] = {"files_read": plan.files_read, "files_total": plan.files_total}
        where = f" for {window}" if window is not None else ""
        summary = f"lake{where}: " + ("; ".join(parts) if parts else "no tables")
        return Registration(spec={"tables": tables}, schemas=schemas, summary=summary, warnings=warnings,
                            stats={"text": summary, "files_read": read, "files_total": total, "tables": stats,
                                   "window": None if window is None else str(window)})

    def _remote(self, window: TimeWindow | None, session: Any) -> Registration:
        from kqlmagic_plus.lake import schema_for

        tables = []
        schemas: dict[str, list[tuple[str, str]]] = {}
        warnings: list[str] = []
        days = day_globs(window)
        for name, root in sorted(self._remote_tables(session).items()):
            try:
                schema = spark_schema(schema_for(name))
            except TableNotFoundError:
                schema = [("TimeGenerated", "datetime"), ("Type", "string")]
                warnings.append(f"{name}: not in the package's table schemas; only TimeGenerated and Type are read "
                                "(register it with --pyspark and your own schema for the rest)")
            schemas[name] = schema
            base = root + _WORKSPACE_GLOB + "/"
            folders = base + glob_of(days) + "/h=*/m=*/"
            tables.append({"name": name, "columns": [list(c) for c in schema],
                           "json": [folders + "PT*.json"], "parquet": [folders + "PT*.parquet"], "glob": True})
        where = f" for {window}" if window is not None else ""
        span = "every day folder" if window is None or days == ["y=*/m=*/d=*"] else f"{len(days)} day folder(s)"
        summary = f"lake{where}: {len(tables)} table(s) at {self.display}, {span}"
        return Registration(spec={"tables": tables}, schemas=schemas, summary=summary, warnings=warnings,
                            stats={"text": summary, "window": None if window is None else str(window)})

    def check_credentials(self, session: Any) -> None:
        """Before a local session touches abfss://: the connector and some account credential are set."""
        if self.kind != "remote" or session is None or getattr(session, "kind", "") != "local":
            return
        spark = session.spark
        try:
            hconf = spark.sparkContext._jsc.hadoopConfiguration()
        except Exception:
            return
        for root in self.roots:
            u = urlparse(root)
            if u.scheme.lower() not in ("abfss", "abfs"):
                continue
            try:
                spark.sparkContext._jvm.java.lang.Class.forName("org.apache.hadoop.fs.azurebfs.SecureAzureBlobFileSystem")
            except Exception:
                raise EngineUnavailableError(
                    f"--lake {root}: this Spark has no hadoop-azure connector (no FileSystem for abfss://)",
                    hint=ABFSS_HELP) from None
            host = u.hostname or ""
            keys = [f"fs.azure.account.key.{host}", f"fs.azure.account.auth.type.{host}",
                    "fs.azure.account.auth.type", f"fs.azure.sas.fixed.token.{host}", "fs.azure.account.key"]
            if not any(hconf.get(k) for k in keys):
                raise AuthError(f"--lake {root}: no credentials for storage account {host} (no account key, "
                                "service principal or SAS setting)", hint=ABFSS_HELP)


def container_table(uri: str) -> str | None:
    """The table an export container URI holds (``am-signinlogs`` -> SigninLogs), or None."""
    u = urlparse(uri)
    container = u.username if u.scheme.lower() in ("abfss", "abfs", "wasbs", "wasb") and u.username else None
    path = [p for p in u.path.split("/") if p]
    candidates = ([path[-1]] if path else []) + ([container] if container and not path else [])
    for cand in candidates:
        if cand.lower().startswith("am-") and len(cand) > 3:
            return table_of_container(cand[3:])
    return None


def table_of_container(suffix: str) -> str:
    from kqlmagic_plus.lake import package_schemas

    for known in package_schemas():
        if known.lower() == suffix.lower():
            return known
    return suffix


def spark_schema(schema: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A lake schema as Spark views hold it: timespans stay text (the export writes them as text)."""
    return [(c, "string" if t == "timespan" else t) for c, t in schema]


def day_globs(window: TimeWindow | None, *, skew: timedelta | None = None,
              max_late: timedelta | None = None) -> list[str]:
    """``y=YYYY/m=MM/d=DD`` folders that can hold rows of *window* (Lake's margins), or one ``*`` glob.

    A blob in a day folder covers at most the hour after its folder time; a record sits in a folder
    at most ``skew`` before its TimeGenerated and ``max_late`` after it (see :mod:`kqlmagic_plus.lake`).
    """
    from kqlmagic_plus.lake import DEFAULT_MAX_LATE, DEFAULT_SKEW

    skew = DEFAULT_SKEW if skew is None else skew
    max_late = DEFAULT_MAX_LATE if max_late is None else max_late
    if window is None or window.start is None:
        # No lower bound: every day folder (the rows are still filtered by the query).
        return ["y=*/m=*/d=*"]
    start = _utc(window.start) - skew - timedelta(hours=1)
    # A window open at its end (ago(7d)) reads up to today; export folders never lie in the future.
    end = _utc(window.end) + max_late if window.end is not None else datetime.now(UTC) + _DAY
    day = datetime(start.year, start.month, start.day, tzinfo=UTC)
    out = []
    while day < end and len(out) <= 3660:
        out.append(f"y={day:%Y}/m={day:%m}/d={day:%d}")
        day += _DAY
    return out or ["y=*/m=*/d=*"]


def glob_of(days: list[str]) -> str:
    """One Hadoop glob for the day folders: a glob matching nothing for some days still reads the rest."""
    return days[0] if len(days) == 1 else "{" + ",".join(days) + "}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def explain_storage_error(exc: KqlMagicPlusError, where: str) -> KqlMagicPlusError:
    """A Spark error from reading remote storage, said in terms of connector and credentials."""
    text = str(exc)
    if re.search(r"No FileSystem for scheme|UnsupportedFileSystemException|ClassNotFoundException.*azurebfs|"
                 r"AzureBlobFileSystem not found", text):
        return EngineUnavailableError(f"--lake {where}: this Spark has no connector for that scheme "
                                      "(hadoop-azure for abfss://)", hint=ABFSS_HELP)
    if re.search(r"Configuration property .* not found|No credentials|AuthorizationPermissionMismatch|"
                 r"AuthenticationFailed|Failure to initialize configuration|HTTP Error 403|403", text):
        return AuthError(f"--lake {where}: the storage account refused or lacks credentials "
                         f"({text.splitlines()[0][:200]})", hint=ABFSS_HELP)
    return exc


def local_path(text: str) -> str:
    """A ``file://`` URL or a path as an absolute local path."""
    if text.lower().startswith("file://"):
        text = urlparse(text).path
    return os.path.abspath(os.path.expanduser(text))
