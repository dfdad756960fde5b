"""An answer is served from the cache only if its inputs are unchanged and the store is trusted.

Each test is a way the cache used to serve an answer that was no longer the answer (or that someone
else wrote), on the real local engine, real files and real processes. The soak at the end runs four
kernels against a mounted folder and a lake while another process keeps changing both.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import stat
import struct
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import kqlmagic_plus as kp
from kqlmagic_plus import config
from kqlmagic_plus.cache import commands
from kqlmagic_plus.cache.entry import SUFFIX, encode, read_file
from kqlmagic_plus.cache.store import verified
from kqlmagic_plus.errors import CacheMissError

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX owners, modes, FIFOs")
OTHER_UID = 12345



def _entries(cache_dir) -> list:
    d = cache_dir / "results-v1"
    return sorted(p for p in d.iterdir() if p.name.endswith(SUFFIX)) if d.is_dir() else []


def _write_csv(path, values) -> None:
    path.write_text("Host,Bytes\n" + "".join(f"h{i},{v}\n" for i, v in enumerate(values)))


def _bump_times(path) -> None:
    """Make the change visible even on a file system with coarse timestamps (as a later edit would be)."""
    t = time.time_ns() + 2 * 10**9
    os.utime(path, ns=(t, t))


# -- 1. inputs: what the engine reads is what the key covers ------------------------------------------------

def test_mount_named_in_another_case_is_part_of_the_key(cache_dir, tmp_path):
    """--mount Flows=f.csv, then `flows | count`: DuckDB resolves the name regardless of case, so must the key."""
    f = tmp_path / "f.csv"
    _write_csv(f, [1, 2, 3])
    q = "flows | summarize n = count(), total = sum(Bytes)"
    first = kp.kql(q, mounts={"Flows": str(f)}, cache="1h")
    assert (first.df["n"][0], first.df["total"][0]) == (3, 6)
    assert kp.kql(q, mounts={"Flows": str(f)}, cache="1h").from_cache
    _write_csv(f, [1, 2, 3, 10])
    _bump_times(f)
    again = kp.kql(q, mounts={"Flows": str(f)}, cache="1h")
    assert not again.from_cache
    assert (again.df["n"][0], again.df["total"][0]) == (4, 16)


def test_file_rewritten_with_the_same_size_and_mtime_is_a_miss(cache_dir, tmp_path):
    """`cp -p`, `rsync -t`, a restore: same size, same mtime, other rows. The change time still moved."""
    f = tmp_path / "f.csv"
    _write_csv(f, [1, 2, 3])
    old = os.stat(f)
    os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns - 10 * 10**9))  # written a while ago
    old = os.stat(f)
    q = "Flows | summarize total = sum(Bytes)"
    assert kp.kql(q, mounts={"Flows": str(f)}, cache="1h").df["total"][0] == 6
    assert kp.kql(q, mounts={"Flows": str(f)}, cache="1h").from_cache
    _write_csv(f, [1, 2, 9])  # same length
    os.utime(f, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert os.stat(f).st_size == old.st_size and os.stat(f).st_mtime_ns == old.st_mtime_ns
    again = kp.kql(q, mounts={"Flows": str(f)}, cache="1h")
    assert not again.from_cache
    assert again.df["total"][0] == 12


def test_hidden_file_in_a_mounted_folder_is_part_of_the_key(cache_dir, tmp_path):
    """DuckDB's glob reads dot files; a fingerprint that skips them misses a change the query sees."""
    d = tmp_path / "flows"
    d.mkdir()
    _write_csv(d / "a.csv", [1, 2])
    q = "Flows | summarize n = count()"
    assert kp.kql(q, mounts={"Flows": str(d)}, cache="1h").df["n"][0] == 2
    assert kp.kql(q, mounts={"Flows": str(d)}, cache="1h").from_cache
    _write_csv(d / ".b.csv", [5, 6, 7])
    again = kp.kql(q, mounts={"Flows": str(d)}, cache="1h")
    assert not again.from_cache
    assert again.df["n"][0] == 5


def test_table_changed_by_an_ingestion_command_is_a_miss(cache_dir):
    """`.append T <| ...` changes a table of the DuckDB session; a query over T must not hit afterwards."""
    from kqlmagic_plus.engines.registry import connections

    connections().close_all()
    kp.kql(".set T <| print a = 1")
    q = "T | summarize n = count()"
    assert kp.kql(q, cache="1h").df["n"][0] == 1
    assert kp.kql(q, cache="1h").from_cache
    kp.kql(".append T <| print a = 2")
    again = kp.kql(q, cache="1h")
    assert not again.from_cache
    assert again.df["n"][0] == 2


# A small lake in the continuous-export layout (see kqlmagic_plus/lake/layout.py).

def _blob(root, day: int, minute: int, values, part: int = 0) -> str:
    d = os.path.join(root, "am-flows_cl", "WorkspaceResourceId=", "subscriptions", "s", "resourcegroups", "rg",
                     "providers", "microsoft.operationalinsights", "workspaces", "ws", "y=2024", "m=05",
                     f"d={day:02d}", "h=00", f"m={minute:02d}")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "PT05M.json" if not part else f"PT05M_{part}.json")
    with open(path, "w") as fh:
        fh.writelines(_record(day, minute, i, v) for i, v in enumerate(values))
    return path


def _record(day: int, minute: int, i: int, value: int) -> str:
    return json.dumps({"TimeGenerated": f"2024-05-{day:02d}T00:{minute:02d}:{i % 60:02d}Z", "Type": "Flows_CL",
                       "Bytes": value}) + "\n"


@pytest.fixture
def lake(tmp_path):
    root = str(tmp_path / "lake")
    paths = {"a": _blob(root, 1, 0, [1, 2, 3]), "b": _blob(root, 1, 5, [4]), "far": _blob(root, 10, 0, [100])}
    return root, paths


def _counts(result) -> tuple[int, int]:
    return int(result.df["n"][0]), int(result.df["total"][0])


LAKE_Q = "Flows_CL | summarize n = count(), total = sum(Bytes)"
LAKE_DAY_Q = ("Flows_CL | where TimeGenerated between (datetime(2024-05-01) .. datetime(2024-05-02))\n"
              "| summarize n = count(), total = sum(Bytes)")


def test_lake_blob_appended_deleted_or_added_is_a_miss(cache_dir, lake):
    root, paths = lake
    conn = f"local://lake='{root}'"
    assert _counts(kp.kql(LAKE_Q, conn=conn, cache="1h")) == (5, 110)
    assert kp.kql(LAKE_Q, conn=conn, cache="1h").from_cache

    with open(paths["a"], "a") as fh:  # the export appends to the blob of the current 5 minutes
        fh.write(_record(1, 0, 3, 1000))
    _bump_times(paths["a"])
    r = kp.kql(LAKE_Q, conn=conn, cache="1h")
    assert not r.from_cache and _counts(r) == (6, 1110)
    assert kp.kql(LAKE_Q, conn=conn, cache="1h").from_cache

    os.unlink(paths["b"])  # retention deletes a blob
    r = kp.kql(LAKE_Q, conn=conn, cache="1h")
    assert not r.from_cache and _counts(r) == (5, 1106)

    _blob(root, 1, 10, [7, 7])  # a new 5-minute blob
    r = kp.kql(LAKE_Q, conn=conn, cache="1h")
    assert not r.from_cache and _counts(r) == (7, 1120)

    _blob(root, 1, 10, [7, 7, 7], part=1)  # an overflow blob next to it
    r = kp.kql(LAKE_Q, conn=conn, cache="1h")
    assert not r.from_cache and _counts(r) == (10, 1141)


def test_lake_key_covers_the_files_of_the_query_window_only(cache_dir, lake):
    """Cheap and exact: a blob the window cannot read does not invalidate the entry; one it reads does."""
    root, paths = lake
    conn = f"local://lake='{root}'"
    assert _counts(kp.kql(LAKE_DAY_Q, conn=conn, cache="1h")) == (4, 10)
    with open(paths["far"], "a") as fh:  # nine days later: outside the window and its late margin
        fh.write(_record(10, 0, 1, 5))
    _bump_times(paths["far"])
    assert kp.kql(LAKE_DAY_Q, conn=conn, cache="1h").from_cache
    with open(paths["b"], "a") as fh:
        fh.write(_record(1, 5, 1, 5))
    _bump_times(paths["b"])
    r = kp.kql(LAKE_DAY_Q, conn=conn, cache="1h")
    assert not r.from_cache and _counts(r) == (5, 15)


def test_recently_written_inputs_hit_while_their_content_is_unchanged(cache_dir, tmp_path):
    """A file written a moment ago (timestamps too close to tell a next write apart) is checked by
    content: re-running the cell still hits, and the entry says which files it checks that way."""
    f = tmp_path / "f.csv"
    _write_csv(f, [1, 2, 3])
    q = "Flows | summarize total = sum(Bytes)"
    kp.kql(q, mounts={"Flows": str(f)}, cache="1h")
    hit = kp.kql(q, mounts={"Flows": str(f)}, cache="1h")
    assert hit.from_cache
    meta, _, _ = read_file(str(_entries(cache_dir)[0]))
    assert str(f) in json.dumps(meta.get("contents"))


# -- 2. the store: refused unless only this user can have written it ------------------------------------------

def _forge(entry_path, n: int) -> None:
    """Rewrite an entry with other rows but a valid checksum, as anyone who can write the file could."""
    meta, table, _ = read_file(str(entry_path))
    forged = pa.table({name: pa.array([n] * table.num_rows, type=table.schema.field(name).type)
                       for name in table.column_names})
    header, payload, digest = encode(meta, forged)
    with open(entry_path, "wb") as fh:
        fh.write(header + payload.to_pybytes() + digest)


@pytest.fixture
def events_csv(tmp_path):
    f = tmp_path / "events.csv"
    _write_csv(f, [1, 2, 3])
    old = time.time_ns() - 60 * 10**9
    os.utime(f, ns=(old, old))
    return str(f)


TRUST_Q = "Ev | summarize n = count()"


def _refused(result) -> list[str]:
    return [w for w in result.warnings if w.startswith("Cache not used")]


@posix_only
@pytest.mark.parametrize("how", ["folder owned by another user", "subfolder owned by another user",
                                 "entry owned by another user", "folder writable by the group",
                                 "folder writable by everyone", "subfolder writable by everyone",
                                 "entry writable by everyone"])
def test_forged_entry_in_an_untrusted_store_is_not_served(cache_dir, events_csv, how):
    mounts = {"Ev": events_csv}
    assert kp.kql(TRUST_Q, mounts=mounts, cache="1h").df["n"][0] == 3
    (entry,) = _entries(cache_dir)
    _forge(entry, 0)  # "0 rows": read as "no compromise"
    verified.clear()
    target = {"folder": cache_dir, "subfolder": cache_dir / "results-v1", "entry": entry}[how.split()[0]]
    if "owned" in how:
        os.chown(target, OTHER_UID, OTHER_UID)
    else:
        os.chmod(target, stat.S_IMODE(os.stat(target).st_mode) | (0o020 if "group" in how else 0o002))
    before = sorted(p.name for p in (cache_dir / "results-v1").iterdir())

    r = kp.kql(TRUST_Q, mounts=mounts, cache="1h")
    assert not r.from_cache
    assert r.df["n"][0] == 3
    (warning,) = _refused(r)
    assert "\n" not in warning and str(target) in warning
    assert ("owned by uid 12345" in warning) if "owned" in how else ("writable by" in warning)
    # nothing was written, replaced or removed in a refused store
    assert sorted(p.name for p in (cache_dir / "results-v1").iterdir()) == before
    # and the commands say so; a refused folder is not cleared, a refused entry in a folder of one's own is
    assert "Cache not used" in repr(commands.list_entries())
    cleared = repr(commands.clear())
    if target == entry:
        assert "Removed 1 cached results" in cleared and not entry.exists()
    else:
        assert "not cleared" in cleared and entry.exists()


@posix_only
def test_planted_symlinked_subfolder_is_refused_and_its_target_untouched(cache_dir, tmp_path, events_csv):
    victim = tmp_path / "victim"
    victim.mkdir()
    os.chmod(victim, 0o755)
    (victim / "notes.txt").write_text("mine")
    cache_dir.mkdir()
    os.chmod(cache_dir, 0o700)
    os.symlink(victim, cache_dir / "results-v1")

    r = kp.kql(TRUST_Q, mounts={"Ev": events_csv}, cache="1h")
    assert r.df["n"][0] == 3 and not r.from_cache
    (warning,) = _refused(r)
    assert "symbolic link" in warning
    assert stat.S_IMODE(os.stat(victim).st_mode) == 0o755
    assert sorted(p.name for p in victim.iterdir()) == ["notes.txt"]


@posix_only
def test_cache_dir_set_to_a_link_is_followed_only_if_it_is_the_users(cache_dir, tmp_path, events_csv):
    """cache_dir = ~/.cache/kqlmp -> /data/me/kqlmp is a normal setup; the same link planted by someone
    else (in /tmp, say) is not followed."""
    real = tmp_path / "real-cache"
    real.mkdir(mode=0o700)
    os.symlink(real, cache_dir)
    mounts = {"Ev": events_csv}
    kp.kql(TRUST_Q, mounts=mounts, cache="1h")
    r = kp.kql(TRUST_Q, mounts=mounts, cache="1h")
    assert r.from_cache and not _refused(r)
    os.lchown(cache_dir, OTHER_UID, OTHER_UID)
    r = kp.kql(TRUST_Q, mounts=mounts, cache="1h")
    assert not r.from_cache
    (warning,) = _refused(r)
    assert "symbolic link owned by uid 12345" in warning


@posix_only
def test_symlinked_entry_is_not_followed(cache_dir, tmp_path, events_csv):
    mounts = {"Ev": events_csv}
    kp.kql(TRUST_Q, mounts=mounts, cache="1h")
    (entry,) = _entries(cache_dir)
    elsewhere = tmp_path / "forged.kqlc"
    os.replace(entry, elsewhere)
    _forge(elsewhere, 0)
    os.symlink(elsewhere, entry)
    verified.clear()
    r = kp.kql(TRUST_Q, mounts=mounts, cache="1h")
    assert not r.from_cache and r.df["n"][0] == 3
    (warning,) = _refused(r)
    assert "not a regular file" in warning


_FIFO_SCRIPT = """
import json, os, sys
import kqlmagic_plus as kp
from kqlmagic_plus import config
from kqlmagic_plus.cache import commands
config.settings().cache_dir = sys.argv[1]
q, mounts = "Ev | summarize n = count()", {"Ev": sys.argv[2]}
kp.kql(q, mounts=mounts, cache="1h")
folder = os.path.join(sys.argv[1], "results-v1")
(name,) = [n for n in os.listdir(folder) if n.endswith(".kqlc")]
os.unlink(os.path.join(folder, name))
os.mkfifo(os.path.join(folder, name), 0o600)
from kqlmagic_plus.cache.store import verified
verified.clear()
r = kp.kql(q, mounts=mounts, cache="1h")
listing = repr(commands.list_entries())
print(json.dumps({"n": int(r.df["n"][0]), "from_cache": r.from_cache, "warnings": r.warnings,
                  "listing": listing}))
"""


@posix_only
def test_planted_fifo_never_blocks_a_query(cache_dir, events_csv):
    try:
        proc = subprocess.run([sys.executable, "-c", _FIFO_SCRIPT, str(cache_dir), events_csv],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("a FIFO in the cache folder blocked the query (killed after 60 s)")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["n"] == 3 and not out["from_cache"]
    assert any("not a regular file" in w for w in out["warnings"]), out["warnings"]


# -- 3. export: private files, other folders' modes left alone ------------------------------------------------

@posix_only
def test_export_into_an_existing_folder_keeps_its_mode(cache_dir, tmp_path, events_csv):
    kp.kql(TRUST_Q, mounts={"Ev": events_csv}, cache="1h")
    shared = tmp_path / "team-share"
    shared.mkdir()
    os.chmod(shared, 0o2775)  # a shared team folder
    report = repr(commands.export(str(shared)))
    assert "Exported 1 cached results" in report
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o2775
    files = [p for p in shared.iterdir()]
    assert len(files) == 1 and stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600


@posix_only
def test_export_creates_a_missing_folder_private(cache_dir, tmp_path, events_csv):
    kp.kql(TRUST_Q, mounts={"Ev": events_csv}, cache="1h")
    dest = tmp_path / "new" / "replay"
    old = os.umask(0)
    try:
        assert "Exported 1" in repr(commands.export(str(dest)))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(dest).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(dest.parent).st_mode) == 0o700
    assert all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in dest.iterdir())


@posix_only
def test_cache_folder_that_exists_keeps_its_mode(cache_dir, events_csv):
    """The user's own cache_dir (0755, say): the cache creates its private subfolder, not chmod the folder."""
    cache_dir.mkdir()
    os.chmod(cache_dir, 0o755)
    kp.kql(TRUST_Q, mounts={"Ev": events_csv}, cache="1h")
    assert kp.kql(TRUST_Q, mounts={"Ev": events_csv}, cache="1h").from_cache
    assert stat.S_IMODE(os.stat(cache_dir).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(cache_dir / "results-v1").st_mode) == 0o700


# -- 4. replay: reading an entry takes memory bounded by what it really holds --------------------------------

_REPLAY_SCRIPT = """
import json, resource, sys
import kqlmagic_plus as kp
from kqlmagic_plus.errors import CacheMissError
try:
    r = kp.kql(sys.argv[2], replay=sys.argv[1])
    outcome = f"served {r.row_count} rows"
except CacheMissError as exc:
    outcome = "refused: " + str(exc)
print(json.dumps({"outcome": outcome, "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _replay_in_a_process(folder, query) -> dict:
    proc = subprocess.run([sys.executable, "-c", _REPLAY_SCRIPT, str(folder), query], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in kB")
def test_replay_of_a_tiny_entry_cannot_take_a_gigabyte(cache_dir, tmp_path):
    """An entry of a few kB whose Parquet says "one 1 MB string, repeated 1,200 times" (dictionary
    encoding): decoding it whole took 1.2 GB. It is refused before that, with one clear line."""
    import xxhash

    from kqlmagic_plus.cache.entry import MAGIC

    q = "print s = 'x'"
    kp.kql(q, cache="1h")
    (entry,) = _entries(cache_dir)
    meta, _, _ = read_file(str(entry))
    rows = 1200
    bomb = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["x" * 1_000_000]))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"s": bomb}), sink, compression="lz4", use_dictionary=True, store_schema=False)
    payload = sink.getvalue().to_pybytes()
    meta = {**meta, "rows": rows}
    meta_bytes = json.dumps(meta, sort_keys=True).encode()
    body = MAGIC + struct.pack("<I", len(meta_bytes)) + meta_bytes + struct.pack("<Q", len(payload)) + payload
    folder = tmp_path / "replay"
    folder.mkdir()
    (folder / entry.name).write_bytes(body + xxhash.xxh3_128(body).digest())
    assert os.path.getsize(folder / entry.name) < 64 * 1024

    out = _replay_in_a_process(folder, q)
    print(f"replay of a {os.path.getsize(folder / entry.name):,}-byte entry: {out}")
    assert out["outcome"].startswith("refused:"), out
    assert "memory" in out["outcome"] and "\n" not in out["outcome"]
    assert out["maxrss_mb"] < 700, out


def test_entries_the_cache_writes_replay_within_the_bound(cache_dir, tmp_path):
    """The bound never refuses what the cache itself wrote: a result of repeated strings, one of them
    100 kB long (so "rows x longest value" is far over the bound and the exact count decides), is
    stored, exported and replayed in a fresh process."""
    q = ("range i from 1 to 200000 step 1\n"
         "| extend s = iff(i == 1, strrep('x', 100000), strcat('proc-', tostring(i % 7)))")
    r = kp.kql(q, cache="1h")
    assert r.row_count == 200_000 and not [w for w in r.warnings if "not cached" in w.lower()]
    assert "Exported 1" in repr(commands.export(str(tmp_path / "out")))
    out = _replay_in_a_process(tmp_path / "out", q)
    assert out["outcome"] == "served 200000 rows", out


def test_result_too_compressible_to_read_back_safely_is_not_cached(cache_dir):
    """73 MB of one repeated string compress to a few kB; stored, it would be an entry the reader
    refuses as a bomb. It is not stored, and the result says why, in one line."""
    q = "range i from 1 to 700000 step 1 | project s = strrep('x', 100)"
    r = kp.kql(q, cache="1h")
    assert r.row_count == 700_000
    (warning,) = [w for w in r.warnings if w.startswith("Result not cached")]
    assert "memory" in warning and "\n" not in warning
    assert _entries(cache_dir) == []
    assert not kp.kql(q, cache="1h").from_cache


def test_replay_refuses_a_bomb_with_a_clear_error_in_process(cache_dir, tmp_path):
    """The same refusal, seen from the API: a CacheMissError, one line, no dependency traceback."""
    q = "print s = 'y'"
    kp.kql(q, cache="1h")
    (entry,) = _entries(cache_dir)
    meta, _, _ = read_file(str(entry))
    rows = 200
    bomb = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["y" * 1_000_000]))
    import xxhash

    from kqlmagic_plus.cache.entry import MAGIC

    sink = pa.BufferOutputStream()
    pq.write_table(pa.table({"s": bomb}), sink, compression="lz4", use_dictionary=True, store_schema=False)
    payload = sink.getvalue().to_pybytes()
    meta_bytes = json.dumps({**meta, "rows": rows}, sort_keys=True).encode()
    body = MAGIC + struct.pack("<I", len(meta_bytes)) + meta_bytes + struct.pack("<Q", len(payload)) + payload
    folder = tmp_path / "replay"
    folder.mkdir()
    (folder / entry.name).write_bytes(body + xxhash.xxh3_128(body).digest())
    with pytest.raises(CacheMissError) as info:
        kp.kql(q, replay=str(folder))
    assert "memory" in str(info.value) and "\n" not in str(info.value)



# -- 5. the soak: four kernels, one writer, a mounted folder and a lake ---------------------------------------

SOAK_SECONDS = 60
SOAK_QUERIES = {
    "mount": "Flows | summarize n = count(), total = sum(Bytes)",
    "mount, lower case": "flows | summarize n = count(), total = sum(Bytes)",
    "lake": LAKE_Q,
    "lake, one day": LAKE_DAY_Q,
}
_TRUTH_OF = {"mount": "mount", "mount, lower case": "mount", "lake": "lake", "lake, one day": "lake, one day"}


class _World:
    """The writer's model of the files: mounted CSVs and lake blobs, each row a one-digit Bytes value (so an
    in-place one-byte write changes a value and keeps the size)."""

    def __init__(self, mnt: str, lake: str, rng: random.Random):
        self.mnt, self.lake, self.rng = mnt, lake, rng
        self.csv: dict[str, list[int]] = {}
        self.blobs: dict[str, tuple[int, int, list[int]]] = {}  # path -> (day, minute, values)
        self.serial = 0

    def truth(self) -> dict[str, list[int]]:
        mount = [v for vals in self.csv.values() for v in vals]
        lake = [v for _, _, vals in self.blobs.values() for v in vals]
        day = [v for d, _, vals in self.blobs.values() if d == 1 for v in vals]
        return {k: [len(vals), sum(vals)] for k, vals in (("mount", mount), ("lake", lake), ("lake, one day", day))}

    # files, each published by one atomic step (a rename, a one-byte write, an append within a page)
    def _publish(self, path: str, text: str) -> None:
        self.serial += 1
        tmp = os.path.join(os.path.dirname(path), f".tmp-{self.serial}")
        with open(tmp, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)

    def write_csv(self, name: str) -> None:
        self._publish(os.path.join(self.mnt, name),
                      "Host,Bytes\n" + "".join(f"h{i},{v}\n" for i, v in enumerate(self.csv[name])))

    def blob_path(self, day: int, minute: int) -> str:
        return os.path.join(self.lake, "am-flows_cl", "WorkspaceResourceId=", "subscriptions", "s", "resourcegroups",
                            "rg", "providers", "microsoft.operationalinsights", "workspaces", "ws", "y=2024", "m=05",
                            f"d={day:02d}", "h=00", f"m={minute:02d}", "PT05M.json")

    def write_blob(self, path: str) -> None:
        day, minute, values = self.blobs[path]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._publish(path, "".join(_record(day, minute, i, v) for i, v in enumerate(values)))

    def pwrite_digit(self, path: str, offset: int, digit: int) -> None:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, str(digit).encode(), offset)
        finally:
            os.close(fd)

    def step(self) -> str:
        r, rng = self.rng.random(), self.rng
        if r < 0.12:  # a row appended to a mounted file
            name = rng.choice(sorted(self.csv))
            self.csv[name].append(rng.randint(1, 9))
            self.write_csv(name)
            return "mount: append"
        if r < 0.27:  # one value changed in place: same size, same inode
            name = rng.choice(sorted(self.csv))
            vals = self.csv[name]
            i = rng.randrange(len(vals))
            offset = len("Host,Bytes\n") + sum(len(f"h{j},{v}\n") for j, v in enumerate(vals[:i])) + len(f"h{i},")
            vals[i] = rng.choice([d for d in range(1, 10) if d != vals[i]])
            self.pwrite_digit(os.path.join(self.mnt, name), offset, vals[i])
            return "mount: rewrite in place"
        if r < 0.34:  # rows removed
            name = rng.choice(sorted(self.csv))
            self.csv[name] = self.csv[name][: max(1, len(self.csv[name]) // 2)]
            self.write_csv(name)
            return "mount: shrink"
        if r < 0.40 and len(self.csv) < 8:  # a new file in the mounted folder
            name = f"f{self.serial}.csv"
            self.csv[name] = [rng.randint(1, 9) for _ in range(rng.randint(1, 4))]
            self.write_csv(name)
            return "mount: new file"
        if r < 0.58:  # the export appends to a blob, in place
            path = rng.choice(sorted(self.blobs))
            day, minute, values = self.blobs[path]
            line = _record(day, minute, len(values), rng.randint(1, 9))
            size = os.path.getsize(path)
            values.append(json.loads(line)["Bytes"])
            if size // 4096 == (size + len(line) - 1) // 4096:  # one page: readers see all of it or none
                with open(path, "a") as fh:
                    fh.write(line)
            else:
                self.write_blob(path)
            return "lake: append"
        if r < 0.72:  # a value changed in place
            path = rng.choice(sorted(self.blobs))
            day, minute, values = self.blobs[path]
            i = rng.randrange(len(values))
            offset = sum(len(_record(day, minute, j, v)) for j, v in enumerate(values[: i + 1])) - 3
            values[i] = rng.choice([d for d in range(1, 10) if d != values[i]])
            self.pwrite_digit(path, offset, values[i])
            return "lake: rewrite in place"
        if r < 0.86:  # a new 5-minute blob (on the queried day or four days later)
            free = [(d, m) for d in (1, 5) for m in range(0, 60, 5) if self.blob_path(d, m) not in self.blobs]
            if free:
                day, minute = rng.choice(free)
                path = self.blob_path(day, minute)
                self.blobs[path] = (day, minute, [rng.randint(1, 9) for _ in range(rng.randint(1, 3))])
                self.write_blob(path)
                return "lake: new blob"
        day1 = [p for p, (d, _, _) in self.blobs.items() if d == 1]
        victims = sorted(p for p in self.blobs if self.blobs[p][0] != 1 or len(day1) > 1)
        if victims:  # retention deletes a blob
            path = rng.choice(victims)
            del self.blobs[path]
            os.unlink(path)
            return "lake: delete blob"
        return "none"


def _soak_writer(mnt: str, lake: str, log_path: str, ready, stop) -> None:
    """Set up the files, then change one thing at a time until *stop*; each state is logged with the
    instants around the step that published it."""
    w = _World(mnt, lake, random.Random(20240501))
    os.makedirs(mnt, exist_ok=True)
    for i in range(3):
        w.csv[f"f{i}.csv"] = [1, 2, 3][: i + 1]
        w.write_csv(f"f{i}.csv")
    for day, minute, vals in ((1, 0, [1, 2, 3]), (1, 5, [4]), (5, 0, [9])):
        path = w.blob_path(day, minute)
        w.blobs[path] = (day, minute, vals)
        w.write_blob(path)
    with open(log_path, "w") as log:
        log.write(json.dumps({"op": "initial", "before": 0.0, "after": 0.0, "truth": w.truth()}) + "\n")
        log.flush()
        ready.set()
        quiet_at = time.time() + 12
        while not stop.is_set():
            if time.time() > quiet_at:  # now and then a few quiet seconds: entries of settled files
                time.sleep(3)
                quiet_at = time.time() + 12
            before = time.time()
            op = w.step()
            after = time.time()
            log.write(json.dumps({"op": op, "before": before, "after": after, "truth": w.truth()}) + "\n")
            log.flush()
            time.sleep(w.rng.uniform(0.05, 0.5))


def _soak_reader(n: int, cache_dir: str, mnt: str, lake: str, out_path: str, ready, seconds: float) -> None:
    import kqlmagic_plus as kp

    config.settings().cache_dir = cache_dir
    conn = f"local://lake='{lake}'"
    rng = random.Random(n)
    ready.wait(60)
    kp.kql("print x = 1", conn=conn, mounts={"Flows": mnt})
    deadline = time.time() + seconds
    with open(out_path, "w") as out:
        while time.time() < deadline:
            label = rng.choice(sorted(SOAK_QUERIES))
            t0 = time.time()
            try:
                r = kp.kql(SOAK_QUERIES[label], conn=conn, cache="1h")
                row = {"q": label, "t0": t0, "t1": time.time(), "answer": [int(r.df["n"][0]),
                       int(r.df["total"][0]) if r.df["n"][0] else 0], "hit": r.from_cache,
                       "warnings": [w for w in r.warnings if "cache" in w.lower()]}
            except Exception as exc:  # counted: the soak allows none
                row = {"q": label, "t0": t0, "t1": time.time(), "error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(row) + "\n")
            out.flush()
            time.sleep(rng.uniform(0.0, 0.03))


def _changes_during(versions: list[dict], t0: float, t1: float) -> int:
    return sum(1 for v in versions[1:] if v["before"] <= t1 and v["after"] >= t0)


def _valid_answers(versions: list[dict], family: str, t0: float, t1: float) -> list[list[int]]:
    """The answers of every state that existed at some instant of [t0, t1]: state k holds from just
    before the step that published it until just after the next step."""
    out = []
    for k, v in enumerate(versions):
        start = v["before"] if k else float("-inf")
        end = versions[k + 1]["after"] if k + 1 < len(versions) else float("inf")
        if start <= t1 and end >= t0:
            out.append(v["truth"][family])
    return out


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "pwrite"), reason="POSIX pwrite")
def test_soak_four_kernels_while_a_mount_and_a_lake_change(tmp_path):
    """Four kernel processes query a mounted folder and a lake with the cache on, sharing one cache
    folder, for a minute, while a fifth process keeps appending, rewriting in place, adding and deleting
    files under both. Every answer must be the answer of a state the files were in during that query:
    0 stale hits, 0 errors."""
    cache_dir, mnt, lake = str(tmp_path / "cache"), str(tmp_path / "mnt"), str(tmp_path / "lake")
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    log = str(tmp_path / "versions.jsonl")
    writer = ctx.Process(target=_soak_writer, args=(mnt, lake, log, ready, stop))
    writer.start()
    outs = [str(tmp_path / f"reader{i}.jsonl") for i in range(4)]
    readers = [ctx.Process(target=_soak_reader, args=(i, cache_dir, mnt, lake, outs[i], ready, SOAK_SECONDS))
               for i in range(4)]
    for p in readers:
        p.start()
    for p in readers:
        p.join(SOAK_SECONDS + 120)
    stop.set()
    writer.join(30)
    assert writer.exitcode == 0 and all(p.exitcode == 0 for p in readers)

    with open(log) as fh:
        versions = [json.loads(line) for line in fh]
    rows = []
    for path in outs:
        with open(path) as fh:
            rows.extend(json.loads(line) for line in fh)
    errors = [r for r in rows if "error" in r]
    answered = [r for r in rows if "error" not in r]
    stale = [r for r in answered if r["hit"] and r["answer"] not in
             _valid_answers(versions, _TRUTH_OF[r["q"]], r["t0"], r["t1"])]
    # A computed answer reads the files one after another, as DuckDB does, with no snapshot of the folder:
    # with two changes during the query it can mix them (a state that never was). One change cannot. Such a
    # mixed answer is never served later: the fingerprint was taken before the read, and the files changed.
    computed = [r for r in answered if not r["hit"] and r["answer"] not in
                _valid_answers(versions, _TRUTH_OF[r["q"]], r["t0"], r["t1"])]
    mixed = [r for r in computed if _changes_during(versions, r["t0"], r["t1"]) >= 2]
    wrong = [r for r in computed if r not in mixed]
    hits = sum(r["hit"] for r in answered)
    ops: dict[str, int] = {}
    for v in versions[1:]:
        ops[v["op"]] = ops.get(v["op"], 0) + 1
    summary = (f"{len(rows)} queries by 4 kernels in {SOAK_SECONDS} s: {hits} hits, {len(answered) - hits} misses, "
               f"{len(stale)} stale hits, {len(errors)} errors, {len(wrong)} wrong computed answers "
               f"({len(mixed)} computed while two or more changes landed); "
               f"{len(versions) - 1} changes by the writer: {ops}")
    print(summary)
    assert stale == [], summary + f"\nfirst stale: {stale[:3]}"
    assert errors == [], summary + f"\nfirst errors: {errors[:3]}"
    assert wrong == [], summary + f"\nfirst wrong: {wrong[:3]}"
    assert hits >= 200 and len(answered) - hits >= 100, summary
    assert len(versions) > 100 and all(ops.get(k) for k in ("mount: rewrite in place", "lake: append",
                                                             "lake: delete blob", "lake: new blob")), summary
