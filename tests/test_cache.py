"""The result cache on the real local engine: keys, modes, relative time, integrity, replay, commands."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import stat
import time
import uuid

import pandas as pd
import pyarrow as pa
import pytest

import kqlmagic_plus as kp
from kqlmagic_plus import config
from kqlmagic_plus.cache import commands
from kqlmagic_plus.cache import modes as cache
from kqlmagic_plus.cache.entry import SUFFIX
from kqlmagic_plus.cache.store import verified
from kqlmagic_plus.errors import CacheMissError, OptionError


def entries(folder) -> list[str]:
    d = folder / "results-v1"
    return sorted(p.name for p in d.iterdir() if p.name.endswith(SUFFIX)) if d.exists() else []


@pytest.fixture
def events():
    return pd.DataFrame({
        "TimeGenerated": pd.date_range("2024-05-01", periods=50, freq="min", tz="UTC"),
        "Account": [f"user{i % 4}" for i in range(50)],
        "Bytes": list(range(50)),
    })


Q = "events | where Bytes >= 10 | summarize n = count(), total = sum(Bytes) by Account | order by Account asc"


# -- a cached Result is the fresh Result ------------------------------------------------------------------

def test_hit_equals_fresh_result_including_dtypes(cache_dir, events):
    ns = {"events": events}
    fresh = kp.kql(Q, namespace=ns, cache="1h")
    hit = kp.kql(Q, namespace=ns, cache="1h")
    assert not fresh.from_cache and hit.from_cache
    assert hit.table.equals(fresh.table, check_metadata=True)
    assert hit.table.schema.equals(fresh.table.schema, check_metadata=True)
    assert hit.kql_types == fresh.kql_types == ["string", "long", "long"]
    pd.testing.assert_frame_equal(hit.df, fresh.df, check_dtype=True)
    assert (hit.query, hit.executed, hit.parameters, hit.connection, hit.engine) == (
        fresh.query, fresh.executed, fresh.parameters, fresh.connection, fresh.engine)
    assert hit.computed_at == fresh.computed_at
    assert "from cache, computed" in hit.summary()
    assert 0 <= hit.age < 60


def test_all_ten_kql_types_round_trip(cache_dir):
    """Every KQL type, with nulls, through the store and back: same Arrow, same pandas dtypes."""
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import result_from_arrow

    types = ["bool", "int", "long", "real", "decimal", "string", "datetime", "timespan", "dynamic", "guid"]
    table = pa.table({
        "b": pa.array([True, None, False]),
        "i": pa.array([1, None, -7], pa.int32()),
        "l": pa.array([2**40, None, -1], pa.int64()),
        "r": pa.array([1.5, None, float("inf")]),
        "d": pa.array([decimal.Decimal("1.10"), None, decimal.Decimal("-3.000001")], pa.decimal128(10, 6)),
        "s": pa.array(["x", None, "é ∑"]),
        "t": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC), None,
                       dt.datetime(1999, 12, 31, tzinfo=dt.UTC)]),
        "ts": pa.array([dt.timedelta(hours=1, microseconds=3), None, dt.timedelta(days=-2)]),
        "dy": pa.array(['{"a":[1,2]}', None, "[]"]),
        "g": pa.array([str(uuid.UUID(int=5)), None, str(uuid.UUID(int=2**100))]),
    })
    _, engine = connections().resolve("local://")
    made = []

    def compute(req):
        made.append(req)
        return result_from_arrow(table, types, query=req.query, connection=engine.target, engine="local")

    req = Request("print 'all types'", options={"cache": "1h"})
    fresh = cache.run(engine, req, compute)
    hit = cache.run(engine, req, compute)
    assert len(made) == 1 and hit.from_cache
    assert hit.kql_types == types
    assert hit.table.equals(fresh.table, check_metadata=True)
    pd.testing.assert_frame_equal(hit.df, fresh.df, check_dtype=True)
    assert [str(t) for t in hit.df.dtypes] == [
        "boolean", "Int32", "Int64", "float64", "object", "object", "datetime64[us, UTC]",
        "timedelta64[us]", "object", "object"]
    assert hit.df["dy"][0] == {"a": [1, 2]} and hit.df["d"][2] == decimal.Decimal("-3.000001")


def test_empty_result_is_cached_with_its_columns(cache_dir, events):
    q = "events | where Bytes > 1000 | project Account, Bytes"
    fresh = kp.kql(q, namespace={"events": events}, cache="1h")
    hit = kp.kql(q, namespace={"events": events}, cache="1h")
    assert hit.from_cache and hit.row_count == 0
    assert hit.table.schema.equals(fresh.table.schema, check_metadata=True)
    assert list(hit.df.dtypes.astype(str)) == ["object", "Int64"]


# -- the key ----------------------------------------------------------------------------------------------

def test_comments_and_whitespace_do_not_change_the_key(cache_dir, events):
    kp.kql(Q, namespace={"events": events}, cache="1h")
    reformatted = ("// who moved the most\nevents\n  | where Bytes>=10   // noise filter\n"
                   "  | summarize n=count(), total=sum(Bytes) by Account\n  | order by Account asc")
    assert kp.kql(reformatted, namespace={"events": events}, cache="1h").from_cache


def test_whitespace_inside_a_string_literal_changes_the_key(cache_dir, events):
    kp.kql("events | where Account != 'user 1' | count", namespace={"events": events}, cache="1h")
    r = kp.kql("events | where Account != 'user  1' | count", namespace={"events": events}, cache="1h")
    assert not r.from_cache


def test_parameter_values_are_part_of_the_key(cache_dir, events):
    q = "events | where Account == who | count"
    a = kp.kql(q, params={"who": "user1"}, namespace={"events": events}, cache="1h")
    b = kp.kql(q, params={"who": "user2"}, namespace={"events": events}, cache="1h")
    again = kp.kql(q, params={"who": "user1"}, namespace={"events": events}, cache="1h")
    assert not b.from_cache and again.from_cache
    assert again.df.equals(a.df)


def test_changed_dataframe_is_recomputed(cache_dir, events):
    ns = {"events": events}
    before = kp.kql(Q, namespace=ns, cache="1h")
    changed = events.copy()
    changed.loc[changed.Account == "user0", "Bytes"] += 1000
    ns["events"] = changed
    after = kp.kql(Q, namespace=ns, cache="1h")
    assert not after.from_cache
    assert after.df["total"].tolist() != before.df["total"].tolist()
    # and in place: the same object, mutated
    changed.loc[0, "Bytes"] = 99_999
    assert not kp.kql(Q, namespace=ns, cache="1h").from_cache


def test_changed_mounted_file_is_recomputed(cache_dir, tmp_path, events):
    path = tmp_path / "events.parquet"
    events.to_parquet(path)
    q = "Ev | summarize total = sum(Bytes)"
    first = kp.kql(q, mounts={"Ev": str(path)}, cache="1h")
    assert kp.kql(q, mounts={"Ev": str(path)}, cache="1h").from_cache
    bigger = events.assign(Bytes=events.Bytes * 2)
    bigger.to_parquet(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    again = kp.kql(q, mounts={"Ev": str(path)}, cache="1h")
    assert not again.from_cache
    assert again.df["total"][0] == 2 * first.df["total"][0]


def test_row_changing_options_are_part_of_the_key_and_cache_switches_are_not(cache_dir):
    from kqlmagic_plus.cache.key import query_key
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.request import Request, TimeWindow

    _, engine = connections().resolve("local://")
    base = Request("T | take 1")
    k = query_key(engine, base)
    assert query_key(engine, base.with_(options={"cache": "1h", "refresh": True, "no_cache": False})) == k
    assert query_key(engine, base.with_(options={"workspaces": ["a"]})) != k
    assert query_key(engine, base.with_(options={"query_properties": {"truncationmaxrecords": 10}})) != k
    w = TimeWindow(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
    assert query_key(engine, base.with_(window=w)) != k
    _, lake = connections().resolve("local://lake='/data/lake'")
    assert query_key(lake, base) != k


def test_unkeyable_parameter_runs_uncached_with_a_warning(cache_dir, events):
    class Opaque:
        pass

    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.request import Request
    from kqlmagic_plus.results import result_from_arrow

    _, engine = connections().resolve("local://")
    req = Request("print 1", params={"x": Opaque()}, options={"cache": "1h"})
    r = cache.run(engine, req, lambda q: result_from_arrow(pa.table({"a": [1]})))
    assert not r.from_cache
    assert any("Not cached" in w and "Opaque" in w for w in r.warnings)
    assert entries(cache_dir) == []


# -- relative time ----------------------------------------------------------------------------------------

REL = "events | extend seen = now() | where TimeGenerated > ago(3650d) | summarize n = count(), at = max(seen)"


def test_relative_query_is_pinned_and_hits_within_ttl(cache_dir, events, monkeypatch):
    ns = {"events": events}
    first = kp.kql(REL, namespace=ns, cache="1h")
    # now() in the rows is the instant stored with the entry
    pinned = first.df["at"][0].to_pydatetime()
    assert abs((pinned - first.computed_at).total_seconds()) < 5
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    monkeypatch.setattr(cache, "clock", lambda: later)
    again = kp.kql(REL, namespace=ns, cache="1h")
    assert again.from_cache and again.df["at"][0] == first.df["at"][0]


def test_relative_query_rerun_after_ttl_or_tomorrow_misses(cache_dir, events, monkeypatch):
    ns = {"events": events}
    first = kp.kql(REL, namespace=ns, cache="7d")
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    monkeypatch.setattr(cache, "clock", lambda: tomorrow)
    next_day = kp.kql(REL, namespace=ns, cache="7d")
    assert not next_day.from_cache
    # the re-run resolved now() to the new instant, not the stored one
    assert next_day.df["at"][0] - first.df["at"][0] > pd.Timedelta(hours=23)
    in_two_hours = tomorrow + dt.timedelta(hours=2)
    monkeypatch.setattr(cache, "clock", lambda: in_two_hours)
    assert not kp.kql(REL, namespace=ns, cache="1h").from_cache


def test_absolute_query_keeps_its_entry_for_the_whole_ttl(cache_dir, events, monkeypatch):
    ns = {"events": events}
    kp.kql(Q, namespace=ns, cache="7d")
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    monkeypatch.setattr(cache, "clock", lambda: tomorrow)
    assert kp.kql(Q, namespace=ns, cache="7d").from_cache
    assert not kp.kql(Q, namespace=ns, cache="12h").from_cache


@pytest.mark.skipif(not hasattr(time, "tzset"), reason="needs time.tzset (POSIX)")
def test_freshness_rule_same_local_day_within_ttl(monkeypatch):
    """The rule itself, at fixed instants and in a non-UTC local zone."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        utc = dt.UTC

        def meta(at):
            return {"sources": "s", "computed_at": at.isoformat(), "now": at.isoformat()}

        ran = dt.datetime(2024, 5, 1, 15, 0, tzinfo=utc)  # 11:00 in New York
        hour = 3600.0
        assert cache._fresh(meta(ran), "s", hour, True, ran + dt.timedelta(minutes=59))
        assert not cache._fresh(meta(ran), "s", hour, True, ran + dt.timedelta(minutes=61))
        assert not cache._fresh(meta(ran), "s", 7 * 24 * hour, True, ran + dt.timedelta(days=1))
        assert cache._fresh(meta(ran), "s", 7 * 24 * hour, False, ran + dt.timedelta(days=1))
        late = dt.datetime(2024, 5, 2, 3, 50, tzinfo=utc)  # 23:50 in New York
        # 20 minutes later is past local midnight: the day wins over the TTL
        assert not cache._fresh(meta(late), "s", hour, True, late + dt.timedelta(minutes=20))
        # ...but 04:10 UTC is still the same day in New York, so a UTC day would have been wrong
        assert cache._fresh(meta(late - dt.timedelta(minutes=30)), "s", hour, True, late + dt.timedelta(minutes=5))
        assert not cache._fresh(meta(ran), "other data", hour, False, ran)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_timespan_window_is_keyed_by_its_span(cache_dir, events):
    from kqlmagic_plus.cache.key import query_key, uses_relative_time
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.request import Request, TimeWindow

    _, engine = connections().resolve("local://")
    t1 = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    t2 = t1 + dt.timedelta(minutes=5)
    a = Request("T", window=TimeWindow(t1 - dt.timedelta(hours=1), t1), now=t1)
    b = Request("T", window=TimeWindow(t2 - dt.timedelta(hours=1), t2), now=t2)
    assert query_key(engine, a) == query_key(engine, b) and uses_relative_time(a)
    c = Request("T", window=TimeWindow(t1 - dt.timedelta(hours=2), t1), now=t1)
    assert query_key(engine, c) != query_key(engine, a)
    ns = {"events": events}
    first = kp.kql("events | count", namespace=ns, timespan="1h", cache="1h")
    assert kp.kql("events | count", namespace=ns, timespan="1h", cache="1h").from_cache
    assert not kp.kql("events | count", namespace=ns, timespan="2h", cache="1h").from_cache
    assert first.df["Count"][0] == 50


# -- modes ------------------------------------------------------------------------------------------------

def test_cache_off_by_default_and_config_turns_it_on(cache_dir, events):
    ns = {"events": events}
    kp.kql(Q, namespace=ns)
    assert not kp.kql(Q, namespace=ns).from_cache and entries(cache_dir) == []
    config.settings().cache = "30m"
    kp.kql(Q, namespace=ns)
    assert kp.kql(Q, namespace=ns).from_cache


def test_no_cache_neither_reads_nor_writes(cache_dir, events):
    ns = {"events": events}
    kp.kql(Q, namespace=ns, cache="1h")
    files = entries(cache_dir)
    mtime = os.stat(cache_dir / "results-v1" / files[0]).st_mtime_ns
    r = kp.kql(Q, namespace=ns, cache="1h", no_cache=True)
    assert not r.from_cache
    assert entries(cache_dir) == files
    assert os.stat(cache_dir / "results-v1" / files[0]).st_mtime_ns == mtime


def test_refresh_reruns_and_replaces(cache_dir, events):
    ns = {"events": events}
    q = "events | summarize at = max(TimeGenerated) | extend now_ = now()"
    first = kp.kql(q, namespace=ns, cache="1h")
    time.sleep(0.01)
    refreshed = kp.kql(q, namespace=ns, cache="1h", refresh=True)
    assert not refreshed.from_cache and refreshed.df["now_"][0] > first.df["now_"][0]
    hit = kp.kql(q, namespace=ns, cache="1h")
    assert hit.from_cache and hit.df["now_"][0] == refreshed.df["now_"][0]
    assert len(entries(cache_dir)) == 1


def test_dry_run_and_control_commands_are_not_cached(cache_dir, events):
    kp.kql(Q, namespace={"events": events}, cache="1h", dry_run=True)
    assert entries(cache_dir) == []


def test_bad_ttl_is_a_clear_option_error(cache_dir, events):
    with pytest.raises(OptionError, match=r"--cache.*'soon'"):
        kp.kql(Q, namespace={"events": events}, cache="soon")
    config.settings().cache = "often"
    with pytest.raises(OptionError, match=r"KqlMagicPlus\.cache"):
        kp.kql(Q, namespace={"events": events})


# -- files on disk ----------------------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_cache_files_are_private_to_the_user(cache_dir, events):
    old = os.umask(0)
    try:
        kp.kql(Q, namespace={"events": events}, cache="1h")
    finally:
        os.umask(old)
    folder = cache_dir / "results-v1"
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for f in folder.iterdir():
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600


def test_no_secret_reaches_the_cache_files(cache_dir, tmp_path, monkeypatch, events):
    """A Log Analytics-style connection string with a client secret: the engine target, the Result
    and every byte written (cache and export) are free of it."""
    from kqlmagic_plus.engines import registry as conns
    from kqlmagic_plus.engines.base import Engine
    from kqlmagic_plus.engines.local import LocalEngine

    secret = "S3cr3t-Client-Value-9f8e7d"

    class WorkspaceEngine(Engine):
        """Stands in for the service: its target is the connection's identity, rows come from a
        real local engine."""

        name = "loganalytics"

        def __init__(self, spec):
            self.spec, self.inner = spec, LocalEngine()

        @property
        def target(self):
            return self.spec.identity()

        def run(self, request):
            r = self.inner.run(request)
            r.connection, r.engine = self.target, self.name
            return r

    monkeypatch.setitem(conns._FACTORIES, "loganalytics", WorkspaceEngine)
    conn = (f"loganalytics://workspace='11111111-2222-3333-4444-555555555555';tenant='contoso';"
            f"clientid='app-1';clientsecret='{secret}'")
    ns = {"events": events}
    fresh = kp.kql(Q, conn=conn, namespace=ns, cache="1h")
    hit = kp.kql(Q, conn=conn, namespace=ns, cache="1h")
    assert hit.from_cache and secret not in repr(hit) + hit.connection + str(hit.stats)
    out = tmp_path / "export"
    commands.export(str(out))
    blobs = [p.read_bytes() for d in (cache_dir, out) for p in d.rglob("*") if p.is_file()]
    assert len(blobs) >= 2
    needles = [secret.encode(), secret.encode("utf-16-le"), secret[::-1].encode()]
    for blob in blobs:
        assert not any(n in blob for n in needles)
    # and decoded: metadata and every cell
    from kqlmagic_plus.cache.entry import read_file

    for p in (cache_dir / "results-v1").glob("*" + SUFFIX):
        meta, table, _ = read_file(str(p))
        assert secret not in repr(meta) + repr(table.to_pylist())
        assert meta["target"].startswith("loganalytics://") and "clientid=app-1" in meta["target"]
    assert fresh.df.equals(hit.df)


# -- integrity --------------------------------------------------------------------------------------------

def _corrupt(path, how):
    """Damage an entry file, as a new kernel finds it (this one remembers what it verified)."""
    verified.clear()
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "empty":
        data = bytearray()
    elif how == "flip_payload":
        data[len(data) - 200] ^= 0x01
    elif how == "flip_meta":
        i = data.index(b'"rows"')
        data[i + 8] ^= 0x01
    elif how == "flip_digest":
        data[-1] ^= 0x80
    elif how == "garbage":
        data = bytearray(b"PAR1" + os.urandom(3000))
    elif how == "appended":
        data += b"\0" * 10
    path.write_bytes(bytes(data))


def _as_version_1(path):
    """Rewrite an entry in the first format (same layout, SHA-256 digest), as an older release wrote it."""
    import hashlib

    from kqlmagic_plus.cache.entry import MAGIC, MAGIC_V1

    data = path.read_bytes()
    assert data.startswith(MAGIC)
    body = MAGIC_V1 + data[len(MAGIC):-16]
    path.write_bytes(body + hashlib.sha256(body).digest())


@pytest.mark.parametrize("damaged", [False, True])
def test_entries_of_the_first_format_are_still_verified_and_served(cache_dir, events, damaged):
    """Export folders written before the checksum changed keep working; damage in them is still caught."""
    ns = {"events": events}
    fresh = kp.kql(Q, namespace=ns, cache="1h")
    (entry,) = (cache_dir / "results-v1").glob("*" + SUFFIX)
    _as_version_1(entry)
    if damaged:
        _corrupt(entry, "flip_payload")
    verified.clear()
    r = kp.kql(Q, namespace=ns, cache="1h")
    assert r.from_cache is not damaged
    assert any("damaged" in w for w in r.warnings) is damaged
    pd.testing.assert_frame_equal(r.df, fresh.df)


@pytest.mark.parametrize("how", ["truncated", "empty", "flip_payload", "flip_meta", "flip_digest", "garbage",
                                 "appended"])
def test_damaged_entry_is_discarded_with_a_warning_and_recomputed(cache_dir, events, how):
    ns = {"events": events}
    fresh = kp.kql(Q, namespace=ns, cache="1h")
    (entry,) = (cache_dir / "results-v1").glob("*" + SUFFIX)
    _corrupt(entry, how)
    r = kp.kql(Q, namespace=ns, cache="1h")
    assert not r.from_cache
    assert any("damaged" in w and "re-run" in w for w in r.warnings)
    pd.testing.assert_frame_equal(r.df, fresh.df)
    # the entry was rewritten whole: the next run is a clean hit
    hit = kp.kql(Q, namespace=ns, cache="1h")
    assert hit.from_cache and not hit.warnings
    pd.testing.assert_frame_equal(hit.df, fresh.df)
    assert cache.session.discarded == 1


def test_same_kernel_hit_skips_the_read_but_sees_another_kernels_write(cache_dir, events, monkeypatch):
    from kqlmagic_plus.cache import store as cache_store
    from kqlmagic_plus.cache.entry import encode, read_file

    ns = {"events": events}
    kp.kql(Q, namespace=ns, cache="1h")
    reads = []
    monkeypatch.setattr(cache_store, "read_file", lambda p, **kw: reads.append(p) or read_file(p, **kw))
    assert kp.kql(Q, namespace=ns, cache="1h").from_cache
    assert reads == []  # verified when written; the file is unchanged
    # another kernel refreshes the entry: same key, other rows
    (path,) = (cache_dir / "results-v1").glob("*" + SUFFIX)
    meta, table, _ = read_file(str(path))
    meta = {**meta, "rows": 1}
    other = table.slice(0, 1)
    time.sleep(0.02)
    path.with_suffix(".new").write_bytes(b"".join(bytes(c) for c in encode(meta, other)))
    os.replace(path.with_suffix(".new"), path)
    r = kp.kql(Q, namespace=ns, cache="1h")
    assert r.from_cache and r.row_count == 1 and reads == [str(path)]


def test_entry_copied_under_another_key_is_not_served(cache_dir, events):
    ns = {"events": events}
    kp.kql(Q, namespace=ns, cache="1h")
    q2 = "events | count"
    kp.kql(q2, namespace=ns, cache="1h")
    folder = cache_dir / "results-v1"
    a, b = sorted(folder.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime_ns)
    verified.clear()
    b.write_bytes(a.read_bytes())  # the count query's file now holds the summarize rows
    r = kp.kql(q2, namespace=ns, cache="1h")
    assert not r.from_cache and r.columns == ["Count"]
    assert any("another query" in w for w in r.warnings)


def test_leftover_temp_files_are_never_served_and_get_swept(cache_dir, events):
    ns = {"events": events}
    kp.kql(Q, namespace=ns, cache="1h")
    folder = cache_dir / "results-v1"
    (entry,) = folder.glob("*" + SUFFIX)
    tmp = folder / f".tmp-{entry.name[:24]}-1-dead"
    tmp.write_bytes(entry.read_bytes()[:100])
    entry.unlink()
    assert not kp.kql(Q, namespace=ns, cache="1h").from_cache
    old = time.time() - 2 * 3600
    os.utime(tmp, (old, old))
    from kqlmagic_plus.cache.store import ResultStore

    assert ResultStore(str(folder)).sweep_tmp() == 1 and not tmp.exists()


# -- size cap ---------------------------------------------------------------------------------------------

def test_lru_eviction_keeps_recently_used_entries(cache_dir, events):
    ns = {"events": events}
    queries = [f"events | where Bytes > {i} | project Account, Bytes" for i in range(4)]
    for q in queries[:3]:
        kp.kql(q, namespace=ns, cache="1h")
    folder = cache_dir / "results-v1"
    sizes = [p.stat().st_size for p in folder.glob("*" + SUFFIX)]
    # make use order explicit (mtime = last use): q0 oldest, then q1, then q2; then use q0 again
    for i, p in enumerate(sorted(folder.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime_ns)):
        os.utime(p, (1_000_000 + i, 1_000_000 + i))
    assert kp.kql(queries[0], namespace=ns, cache="1h").from_cache
    # room for two entries once eviction has freed down to 90 % of the cap, not for three
    config.settings().cache_max_bytes = int((2 * max(sizes) + 3 * min(sizes)) / 2 / 0.9)
    kp.kql(queries[3], namespace=ns, cache="1h")  # 4 entries > cap: the least recently used goes
    assert len(entries(cache_dir)) == 2
    assert kp.kql(queries[0], namespace=ns, cache="1h").from_cache
    assert kp.kql(queries[3], namespace=ns, cache="1h").from_cache
    assert not kp.kql(queries[1], namespace=ns, cache="1h").from_cache


def test_result_larger_than_the_cap_is_not_cached(cache_dir, events):
    config.settings().cache_max_bytes = 500
    r = kp.kql(Q, namespace={"events": events}, cache="1h")
    assert any("size cap" in w for w in r.warnings)
    assert entries(cache_dir) == []


# -- replay -----------------------------------------------------------------------------------------------

def test_replay_serves_without_the_data_and_misses_loudly(cache_dir, tmp_path, events):
    ns = {"events": events}
    path = tmp_path / "ev.parquet"
    events.to_parquet(path)
    a = kp.kql(Q, namespace=ns, cache="1h")
    b = kp.kql("Ev | summarize n = count()", mounts={"Ev": str(path)}, cache="1h")
    out = tmp_path / "replay"
    report = commands.export(str(out))
    assert "Exported 2" in repr(report)
    path.unlink()
    cfg = config.settings()
    cfg.replay = str(out)
    ra = kp.kql(Q, namespace={})  # the DataFrame is gone
    rb = kp.kql("Ev | summarize n = count()", mounts={"Ev": str(path)})  # so is the file
    assert ra.from_cache and rb.from_cache
    pd.testing.assert_frame_equal(ra.df, a.df)
    pd.testing.assert_frame_equal(rb.df, b.df)
    with pytest.raises(CacheMissError) as err:
        kp.kql("events | take 3", namespace=ns)
    assert "events | take 3" in str(err.value) and str(out) in str(err.value)
    # an option beats the setting
    assert not kp.kql(Q, namespace=ns, replay="off").from_cache


def test_replay_refuses_a_damaged_entry(cache_dir, tmp_path, events):
    kp.kql(Q, namespace={"events": events}, cache="1h")
    out = tmp_path / "replay"
    commands.export(str(out))
    (entry,) = out.glob("*" + SUFFIX)
    _corrupt(entry, "flip_payload")
    with pytest.raises(CacheMissError, match="damaged"):
        kp.kql(Q, namespace={}, replay=str(out))
    assert entry.exists()  # a replay folder is the user's: nothing is deleted from it


def test_replay_from_a_cache_dir_and_missing_folder(cache_dir, tmp_path, events):
    kp.kql(Q, namespace={"events": events}, cache="1h")
    assert kp.kql(Q, namespace={}, replay=str(cache_dir)).from_cache
    with pytest.raises(CacheMissError, match="does not exist"):
        kp.kql(Q, namespace={}, replay=str(tmp_path / "nope"))


def test_export_with_nothing_used(cache_dir, tmp_path):
    assert "nothing to export" in repr(commands.export(str(tmp_path / "x")))


# -- the magic --------------------------------------------------------------------------------------------

def test_magic_cache_commands(cache_dir, run_cell, ip, events, tmp_path):
    ip.user_ns["events"] = events
    _, err, _ = run_cell(f"%%kql --cache 1h\n{Q}")
    assert err is None
    value, err, _ = run_cell(f"%%kql --cache 1h\n{Q}")
    assert err is None and value.from_cache
    run_cell("%%kql --cache 1h\nevents | count")
    listing, err, _ = run_cell("%kql --cache list")
    assert err is None
    text = repr(listing)
    assert "2 cached results" in text and "events | where Bytes >= 10" in text and "events | count" in text
    st, _, _ = run_cell("%kql --cache stats")
    assert "Entries: 2" in repr(st) and "1 hits" in repr(st)
    kept, _, _ = run_cell("%kql --cache clear --older-than 7d")
    assert "Removed 0" in repr(kept) and len(entries(cache_dir)) == 2
    out = tmp_path / "exp dir"
    exported, err, _ = run_cell(f"%kql --cache export '{out}'")
    assert err is None and "Exported 2" in repr(exported) and len(list(out.glob("*" + SUFFIX))) == 2
    cleared, _, _ = run_cell("%kql --cache clear")
    assert "Removed 2" in repr(cleared) and entries(cache_dir) == []
    _, err, _ = run_cell("%kql --cache stats --older-than 7d")
    assert isinstance(err, OptionError)


def test_magic_replay_mode(cache_dir, run_cell, ip, events, tmp_path):
    ip.user_ns["events"] = events
    fresh, _, _ = run_cell(f"%%kql --cache 1h\n{Q}")
    run_cell(f"%kql --cache export {tmp_path / 'r'}")
    del ip.user_ns["events"]
    _, err, out = run_cell(f"%kql --replay {tmp_path / 'r'}")
    assert err is None and "Replay mode" in out
    value, err, _ = run_cell(f"%%kql\n{Q}")
    assert err is None and value.from_cache
    pd.testing.assert_frame_equal(value.df, fresh.df)
    _, err, _ = run_cell("%kql events | take 1")
    assert isinstance(err, CacheMissError)
    assert "Not in replay cache" in "\n".join(err._render_traceback_())
    run_cell("%kql --replay off")
    assert config.settings().replay == ""


def test_magic_bare_cache_flag_uses_the_default_ttl(cache_dir, run_cell, ip, events):
    ip.user_ns["events"] = events
    run_cell(f"%%kql --cache\n{Q}")
    value, _, _ = run_cell(f"%%kql --cache\n{Q}")
    assert value.from_cache
