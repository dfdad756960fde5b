"""The lake in Azure Storage: a datagen lake uploaded to Azurite (the npm emulator, on loopback), read by the
local engine and the hunts through a proxy that counts every request and injects faults.

Azurite has no hierarchical namespace (dfs endpoint): every URL form (abfss://, az://, https://) is read
through its blob endpoint, given as ``endpoint=``, as the package reads every lake URL.
"""

from __future__ import annotations

import io
import json
import os
import time
from contextlib import redirect_stdout
from datetime import UTC, datetime

import pytest
from servers.azurite import ACCOUNT, KEY, Azurite, FaultProxy, azurite_bin, day_of, upload_lake

import kqlmagic_plus
import kqlmagic_plus.connections.storage
from kqlmagic_plus.demo import datagen
from kqlmagic_plus.errors import AuthError, KqlMagicPlusError, OptionError, QueryError
from kqlmagic_plus.hunts import run_hunt
from kqlmagic_plus.lake import Lake
from kqlmagic_plus.request import TimeWindow

pytestmark = pytest.mark.skipif(azurite_bin() is None,
                                reason="Azurite is not installed (.ci/run installs it into .ci/node)")

END = "2024-03-08"
CSL = "am-commonsecuritylog"
ONE_DAY = ("CommonSecurityLog | where TimeGenerated >= datetime(2024-03-04) and TimeGenerated < datetime(2024-03-05) "
           "| summarize n = count(), bytes = sum(SentBytes) by DeviceVendor | order by DeviceVendor asc")
QUERIES = (
    ONE_DAY,
    "SigninLogs | where TimeGenerated > datetime(2024-03-07T12:00:00Z) "
    "| summarize n = count(), users = dcount(UserPrincipalName) by ResultType | order by ResultType asc",
    "CommonSecurityLog | summarize n = count(), lo = min(TimeGenerated), hi = max(TimeGenerated)",
    "CommonSecurityLog "
    "| where TimeGenerated between (datetime(2024-03-06T10:00:00Z) .. datetime(2024-03-06T11:00:00Z)) "
    "| project TimeGenerated, SourceIP, DestinationIP, DestinationPort "
    "| order by TimeGenerated asc, SourceIP asc, DestinationIP asc, DestinationPort asc",
)


@pytest.fixture(scope="module")
def lake_dir(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("azlake") / "lake")
    datagen.generate(root, days=6, end_date=END, events_per_day=3000, seed=22, layout="1h", late_fraction=0.03,
                     tables="CommonSecurityLog,SigninLogs")
    return root


@pytest.fixture(scope="module")
def azurite(tmp_path_factory, lake_dir):
    az = Azurite(str(tmp_path_factory.mktemp("azurite"))).start()
    try:
        az.counts = upload_lake(az.service(), lake_dir)
        yield az
    finally:
        az.stop()


@pytest.fixture(scope="module")
def proxy_server(azurite):
    px = FaultProxy(azurite.port).start()
    yield px
    px.stop()


@pytest.fixture
def proxy(proxy_server, monkeypatch, tmp_path):
    """The proxy, faults and counts cleared; a fresh local cache of blobs; the account key in $AZ_LAKE_KEY."""
    proxy_server.reset()
    monkeypatch.setenv("AZ_LAKE_KEY", KEY)
    monkeypatch.setenv("KQLMAGIC_PLUS_LAKE_CACHE", str(tmp_path / "blobs"))
    monkeypatch.setenv("KQLMAGIC_PLUS_LAKE_PROGRESS", "off")
    yield proxy_server
    proxy_server.reset()


def conn(proxy, url: str = f"abfss://{ACCOUNT}.dfs.core.windows.net/", *words: str, **extra: str) -> str:
    props = {"accountkey": "$AZ_LAKE_KEY", "endpoint": proxy.url, **extra}
    pairs = [f"{k}={v}" if v.startswith("$") else f"{k}='{v}'" for k, v in props.items() if v]
    return f"lake://{url};" + ";".join([*pairs, *words])


def local(lake_dir: str, query: str):
    return kqlmagic_plus.kql(query, conn=f"lake://{lake_dir}")


def blobs_in(lake_dir: str, container: str, files) -> set[str]:
    base = os.path.join(lake_dir, container)
    return {os.path.relpath(f.path, base).replace(os.sep, "/") for f in files}


# -- the same rows ----------------------------------------------------------------------------------------


def test_every_url_form_gives_the_rows_of_the_folder(proxy, lake_dir):
    forms = (f"abfss://{ACCOUNT}.dfs.core.windows.net/", f"abfss://{CSL}@{ACCOUNT}.dfs.core.windows.net/",
             f"https://{ACCOUNT}.blob.core.windows.net/", f"az://{CSL}/")
    want = local(lake_dir, ONE_DAY).df
    assert len(want) >= 3 and want["n"].sum() > 2000
    for url in forms:
        got = kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy, url, account=ACCOUNT if url.startswith("az:") else ""))
        assert got.df.equals(want), url
        assert got.connection.startswith("local://lake=") and KEY not in got.connection


def test_queries_give_the_rows_of_the_folder(proxy, lake_dir):
    c = conn(proxy)
    for q in QUERIES:
        want = local(lake_dir, q)
        got = kqlmagic_plus.kql(q, conn=c)
        assert len(want.df) > 0, q
        assert got.df.equals(want.df), q
        assert got.warnings == want.warnings, q


def test_beacon_hunt_reads_the_same_rows_there_and_on_disk(proxy, lake_dir):
    from kqlmagic_plus.cli.hunt import main

    want = run_hunt("beacon", lake=lake_dir, end_date=END)
    url = conn(proxy)[len("lake://"):]
    got = run_hunt("beacon", lake=url, end_date=END)
    assert len(want.df) >= 1 and got.df.equals(want.df)
    assert got.stats["lake"]["files_read"] == want.stats["lake"]["files_read"]
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["beacon", "--lake", url, "--end-date", END, "--format", "json"])
    assert code == 0
    rows = json.loads(out.getvalue())
    assert len(rows) == len(want.df)
    assert sorted(r["SourceIP"] for r in rows) == sorted(want.df["SourceIP"])
    assert KEY not in out.getvalue()


# -- what is listed and read ---------------------------------------------------------------------------------


def test_a_day_lists_only_its_day_folders_and_reads_only_its_blobs(proxy, lake_dir, cache_dir, azurite):
    c = conn(proxy, f"abfss://{CSL}@{ACCOUNT}.dfs.core.windows.net/")
    window = TimeWindow(datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 5, tzinfo=UTC))
    plan = Lake(lake_dir).plan("CommonSecurityLog", window)
    first = kqlmagic_plus.kql(ONE_DAY, conn=c, cache="1h")
    assert first.df.equals(local(lake_dir, ONE_DAY).df)
    # Day folders: the window's day, the hour of skew before it (03-03), 2 days 1 hour of late arrivals after.
    days = sorted({day_of(s.query.get("prefix", "")) for s in proxy.lists()} - {None})
    assert days == ["2024-03-03", "2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07"]
    assert all(s.container == CSL for s in proxy.reads())
    assert {s.blob for s in proxy.reads()} == blobs_in(lake_dir, CSL, plan.files)
    assert len(proxy.reads()) == len(plan.files) == 74  # 03-03 23h, 3 x 24 h, 03-07 00h; of 144
    lake_stats = first.stats["lake"]
    assert lake_stats["storage"]["gets"] == 74 and lake_stats["files_read"] == 74

    # Again: listed again (nothing stale), read from the local copies (nothing read twice).
    proxy.reset()
    again = kqlmagic_plus.kql(ONE_DAY, conn=c)
    assert again.df.equals(first.df) and proxy.reads() == []
    assert len(proxy.lists()) == 8  # the y=, m= and d= levels, then the 5 day folders

    # One blob rewritten (new ETag): only it is read again, and the result cache does not serve the old rows.
    blob = sorted(blobs_in(lake_dir, CSL, plan.files))[10]
    cc = azurite.service().get_container_client(CSL)
    old = cc.download_blob(blob).readall()
    line = json.loads(old.splitlines()[0])
    line["DeviceVendor"] = "Planted Vendor"
    try:
        cc.upload_blob(blob, old + json.dumps(line).encode() + b"\n", overwrite=True)
        proxy.reset()
        changed = kqlmagic_plus.kql(ONE_DAY, conn=c, cache="1h")
        assert not changed.from_cache
        assert [s.blob for s in proxy.reads()] == [blob]
        assert "Planted Vendor" in changed.df["DeviceVendor"].tolist()
        assert kqlmagic_plus.kql(ONE_DAY, conn=c, cache="1h").from_cache
    finally:
        cc.upload_blob(blob, old, overwrite=True)


def test_discovery_lists_containers_not_blobs(proxy):
    lake = kqlmagic_plus.connections.storage.open_lake(conn(proxy)[len("lake://"):])
    assert lake.table_names() == ["CommonSecurityLog", "SigninLogs"]
    assert proxy.reads() == []
    assert [s.query.get("comp") for s in proxy.seen] == ["list"]  # one listing of the account's am-* containers
    assert "abfss://devstoreaccount1.dfs.core.windows.net/" in repr(lake)


# -- faults ----------------------------------------------------------------------------------------------------


def test_throttling_is_waited_out_as_the_service_asks(proxy, lake_dir):
    proxy.add(lambda s: s.is_list, 503, times=2, headers={"Retry-After": "1"})
    proxy.add(lambda s: s.is_read, 429, times=2, headers={"Retry-After": "1"})
    started = time.monotonic()
    got = kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy))
    assert time.monotonic() - started >= 2.0
    assert got.df.equals(local(lake_dir, ONE_DAY).df)
    storage = got.stats["lake"]["storage"]
    assert storage["retries"] == 4 and storage["waited"] >= 4.0


def test_throttling_that_does_not_stop_fails_by_name(proxy):
    proxy.add(lambda s: s.is_list, 503, times=1000, headers={"Retry-After": "1"})
    with pytest.raises(QueryError) as err:
        kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy))
    msg = str(err.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert msg.startswith(f"{ACCOUNT}: 503 ServerBusy listing") and "after 6 tries" in msg


def _rows_of(lake_dir: str, container: str, blob: str, day: str) -> int:
    with open(os.path.join(lake_dir, container, *blob.split("/")), "rb") as fh:
        return sum(1 for ln in fh if json.loads(ln)["TimeGenerated"].startswith(day))


def test_a_blob_deleted_between_listing_and_reading_is_named_and_the_rest_read(proxy, lake_dir, azurite):
    plan = Lake(lake_dir).plan("CommonSecurityLog", TimeWindow(datetime(2024, 3, 4, tzinfo=UTC),
                                                                datetime(2024, 3, 5, tzinfo=UTC)))
    blob = sorted(blobs_in(lake_dir, CSL, plan.files))[20]
    cc = azurite.service().get_container_client(CSL)
    kept = cc.download_blob(blob).readall()
    proxy.add(lambda s: s.is_read and s.blob == blob, None, before=lambda s: cc.delete_blob(blob))
    try:
        got = kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy))
    finally:
        cc.upload_blob(blob, kept, overwrite=True)
    lost = [w for w in got.warnings if "deleted after it was listed" in w]
    assert len(lost) == 1 and blob.split("/")[-3] in lost[0] and lost[0].endswith("not read")
    want = local(lake_dir, ONE_DAY).df["n"].sum()
    assert got.df["n"].sum() == want - _rows_of(lake_dir, CSL, blob, "2024-03-04") < want
    assert got.stats["lake"]["tables"]["CommonSecurityLog"]["files_skipped"] == 1


def test_a_read_cut_short_is_read_again_or_named(proxy, lake_dir):
    plan = Lake(lake_dir).plan("CommonSecurityLog", TimeWindow(datetime(2024, 3, 4, tzinfo=UTC),
                                                                datetime(2024, 3, 5, tzinfo=UTC)))
    names = sorted(blobs_in(lake_dir, CSL, plan.files))
    once, always = names[5], names[30]
    proxy.add(lambda s: s.is_read and s.blob == once, 0, times=1)
    proxy.add(lambda s: s.is_read and s.blob == always, 0, times=1000)
    got = kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy))
    short = [w for w in got.warnings if "read cut short" in w]
    assert len(short) == 1 and always.split("/")[-3] in short[0]
    want = local(lake_dir, ONE_DAY).df["n"].sum()
    assert got.df["n"].sum() == want - _rows_of(lake_dir, CSL, always, "2024-03-04")
    assert len([s for s in proxy.reads() if s.blob == once]) >= 2


def test_credentials_expiring_mid_query_fail_it_by_name(proxy):
    reads = []

    def after_ten(s) -> bool:
        if s.is_read:
            reads.append(s)
        return s.is_read and len(reads) > 10

    proxy.add(after_ten, 403, times=10_000)
    with pytest.raises(AuthError) as err:
        kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy))
    msg = err.value.message
    assert KEY not in str(err.value) and "Renew the SAS" in err.value.hint
    assert msg.startswith(f"storage account {ACCOUNT} refused the account key (403 AuthenticationFailed) reading "
                          f"{CSL}/")
    assert "nothing was returned" in msg and "\n" not in msg and KEY not in msg and KEY[:20] not in msg


# -- credentials and bad input ------------------------------------------------------------------------------------


def test_a_sas_reads_the_lake_and_is_never_shown(proxy, lake_dir, monkeypatch):
    from datetime import timedelta

    from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas

    sas = generate_account_sas(ACCOUNT, KEY, ResourceTypes(service=True, container=True, object=True),
                               AccountSasPermissions(read=True, list=True),
                               expiry=datetime.now(UTC) + timedelta(hours=1))
    sig = next(p for p in sas.split("&") if p.startswith("sig="))[4:]
    monkeypatch.setenv("AZ_LAKE_SAS", sas)
    want = local(lake_dir, ONE_DAY).df
    by_env = kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy, accountkey="", sas="$AZ_LAKE_SAS"))
    assert by_env.df.equals(want)
    in_url = kqlmagic_plus.kql(ONE_DAY, conn=conn(proxy, f"https://{ACCOUNT}.blob.core.windows.net/?{sas}",
                                                  accountkey=""))
    assert in_url.df.equals(want)
    proxy.add(lambda s: s.is_list, 403, times=1000)
    with pytest.raises(AuthError) as err:
        kqlmagic_plus.kql("SigninLogs | take 1", conn=conn(proxy, f"https://{ACCOUNT}.blob.core.windows.net/?{sas}",
                                                           accountkey=""))
    shown = "\n".join([repr(by_env), by_env.connection, repr(in_url), in_url.connection, str(in_url.stats),
                       *in_url.warnings, str(err.value)])
    assert sig not in shown and sig.replace("%2B", "+") not in shown
    assert "refused the SAS" in str(err.value)


@pytest.mark.parametrize(("url", "words"), [
    ("abfss://am-x@not-an-account/", "abfss://<container>@<account>.dfs.core.windows.net"),
    ("az://am-x/", "names no account"),
    ("https://example.com/am-x/", "https://<account>.blob.core.windows.net"),
    (f"abfss://Bad_Container@{ACCOUNT}.dfs.core.windows.net/", "not a storage container name"),
])
def test_bad_lake_urls_say_what_is_wrong(proxy, monkeypatch, url, words):
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)
    with pytest.raises(OptionError) as err:
        kqlmagic_plus.kql("SigninLogs | take 1", conn=conn(proxy, url))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_missing_container_is_named(proxy):
    with pytest.raises(KqlMagicPlusError) as err:
        kqlmagic_plus.kql("SigninLogs | take 1", conn=conn(proxy, f"abfss://am-nosuchtable@{ACCOUNT}.dfs.core.windows.net/"))
    assert "there is no container 'am-nosuchtable'" in str(err.value)


def test_a_prefix_with_no_export_containers_is_refused_by_name(proxy):
    lake = kqlmagic_plus.connections.storage.open_lake(
        conn(proxy, f"abfss://{CSL}@{ACCOUNT}.dfs.core.windows.net/y=1999/")[len("lake://"):])
    with pytest.raises(OptionError) as err:
        lake.table_names()
    assert str(err.value) == f"no export containers (am-<table>) in abfss://{CSL}@{ACCOUNT}.dfs.core.windows.net/y=1999/"


def test_a_second_container_of_a_table_is_said_and_ignored(proxy, azurite, lake_dir):
    service = azurite.service()
    copy = service.get_container_client("am-signins-copy")  # its records name SigninLogs too
    copy.create_container()
    try:
        base = os.path.join(lake_dir, "am-signinlogs")
        first = sorted(os.path.join(d, f) for d, _, files in os.walk(base) for f in files)[0]
        with open(first, "rb") as fh:
            copy.upload_blob(os.path.relpath(first, base).replace(os.sep, "/"), fh)
        lake = kqlmagic_plus.connections.storage.open_lake(conn(proxy)[len("lake://"):])
        assert lake.table_names() == ["CommonSecurityLog", "SigninLogs"]
        assert lake.container_of("SigninLogs").endswith("am-signinlogs")
        assert [w for w in lake.describe().warnings if "am-signins-copy" in w] == [
            "am-signins-copy: records of SigninLogs, already read from am-signinlogs; ignored"]
    finally:
        copy.delete_container()


def test_spark_refuses_urls_it_cannot_reach():
    from kqlmagic_plus.engines.spark.lake import SparkLake

    for url in ("az://am-signinlogs/", f"https://{ACCOUNT}.blob.core.windows.net/am-signinlogs/"):
        with pytest.raises(OptionError) as err:
            SparkLake(url)
        assert "abfss://" in str(err.value) and "local engine" in str(err.value)


def test_the_magic_connects_to_the_lake_and_runs_a_cell(proxy, lake_dir, run_cell):
    value, err, out = run_cell(f"%kql {conn(proxy)}")
    assert err is None, out
    value, err, out = run_cell("%%kql\n" + ONE_DAY)
    assert err is None, out
    assert value.df.equals(local(lake_dir, ONE_DAY).df)
    assert KEY not in out and KEY not in repr(value)


@pytest.mark.spark
@pytest.mark.slow
def test_beacon_on_local_spark_over_the_lake_in_storage(proxy, lake_dir, spark_local):
    """A local Spark session reads the same local copies of the window's blobs as DuckDB."""
    want = run_hunt("beacon", lake=lake_dir, end_date=END)
    got = run_hunt("beacon", engine="spark", session=spark_local, lake=conn(proxy)[len("lake://"):], end_date=END)
    assert len(want.df) >= 1
    assert got.table.to_pylist() == want.table.to_pylist()


@pytest.mark.spark
@pytest.mark.slow
def test_a_spark_connect_session_is_refused_the_local_copies_by_name(proxy, spark_connect):
    with pytest.raises(OptionError) as err:
        run_hunt("beacon", engine="spark", session=spark_connect, lake=conn(proxy)[len("lake://"):], end_date=END)
    assert "does not run on this machine" in err.value.message and "--engine duckdb" in err.value.message
