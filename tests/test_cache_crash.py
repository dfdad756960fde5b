"""The cache under abuse: writers killed mid-write, kernels racing on one key, a full disk."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pytest

from kqlmagic_plus import config, kqltypes
from kqlmagic_plus.cache import modes as cache
from kqlmagic_plus.cache.entry import SUFFIX, TMP_PREFIX, CorruptEntry, encode, read_file, write_atomic
from kqlmagic_plus.cache.store import ResultStore

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX: fork, SIGKILL, rlimits, mount")]


def _generation(gen: int, rows: int) -> tuple[dict, pa.Table]:
    """An entry whose every row says which generation wrote it, with incompressible filler so the
    file is big and a kill is likely to land while it is being written."""
    rng = np.random.default_rng(gen)
    table = kqltypes.canonical_table(pa.table({
        "gen": pa.array(np.full(rows, gen, dtype=np.int64)),
        "x": pa.array(np.arange(rows, dtype=np.int64) + gen),
        "noise": pa.array(rng.random(rows)),
    }), ["long", "long", "real"])
    meta = {"format": cache.FORMAT, "key": "", "gen": gen, "rows": rows, "kql_types": ["long", "long", "real"],
            "computed_at": "2024-01-01T00:00:00+00:00", "now": "2024-01-01T00:00:00+00:00", "sources": ""}
    return meta, table


def _consistent(meta: dict, table: pa.Table) -> bool:
    gen, rows = meta["gen"], meta["rows"]
    return (table.num_rows == rows
            and bool((table.column("gen").to_numpy() == gen).all())
            and bool((table.column("x").to_numpy() == np.arange(gen, gen + rows)).all()))


def test_sigkill_during_writes_never_leaves_a_servable_bad_entry(tmp_path):
    """>= 100 writers killed with SIGKILL at random instants; after each, every entry file on disk
    is whole and consistent, and the cache's read path serves only such entries."""
    folder = tmp_path / "entries"
    store = ResultStore(str(folder))
    store.ensure()
    keys = [f"{k:064x}" for k in (1, 2, 3)]
    # Encoded up front: the forked writer only makes the syscalls of the real write path.
    blobs = []
    for gen in range(6):
        meta, table = _generation(gen, 250_000 + gen * 10_000)
        meta["key"] = keys[gen % 3]
        header, payload, digest = encode(meta, table)
        blobs.append((meta["key"], [header, payload.to_pybytes(), digest]))
    rnd = random.Random(1234)
    runs, killed_mid_write = 120, 0
    for run in range(runs):
        slow = run % 2 == 0
        ready_r, ready_w = os.pipe()
        start = rnd.randrange(6)
        pid = os.fork()
        if pid == 0:  # the writer: rewrite entries until killed
            try:
                if not slow:
                    os.write(ready_w, b"r")
                i = start
                while True:
                    key, chunks = blobs[i % 6]
                    if slow:
                        chunks = _SlowDisk(chunks, lambda fd=ready_w: os.write(fd, b"r"))
                    write_atomic(str(folder), key + SUFFIX, chunks)
                    i += 1
            finally:
                os._exit(0)
        # Wait until the writer runs (slow runs: until its first write has begun), then kill it at a
        # random instant: plain runs at native speed, where the rename is most of the time; slow
        # runs inside the ~30 ms the bytes take to go out.
        os.read(ready_r, 1)
        time.sleep(rnd.uniform(0.0, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)
        leftovers = [p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]
        killed_mid_write += bool(leftovers)
        for p in folder.glob("*" + SUFFIX):
            meta, table, _ = read_file(str(p))  # raises CorruptEntry if a partial file were published
            assert p.name == meta["key"] + SUFFIX and _consistent(meta, table)
        for key in keys:
            notes: list[str] = []
            served = cache._load(store, key, notes)
            assert not notes
            if served is not None:
                assert _consistent(*served)
        for p in leftovers:  # what a later sweep does; a partial temp file is never read as an entry
            p.unlink()
    # The kills really landed inside writes (a temp file was open), not only between them.
    print(f"{killed_mid_write}/{runs} kills landed while a temp file was being written")
    assert killed_mid_write >= runs // 2, killed_mid_write


class _SlowDisk:
    """The chunks of an entry in 64 kB pieces with a pause between (a slow disk), announcing the
    start of the write once."""

    def __init__(self, chunks, on_start):
        self.chunks, self.on_start = chunks, on_start

    def __iter__(self):
        if self.on_start is not None:
            self.on_start()
            self.on_start = None
        for chunk in self.chunks:
            view = memoryview(chunk)
            for at in range(0, len(view), 65536):
                yield view[at:at + 65536]
                time.sleep(0.0003)


def test_partial_file_published_by_a_broken_writer_is_detected(tmp_path):
    """Belt and braces: even a truncated file under the final name (a copy gone wrong, a power cut
    before the data reached the disk) is refused by the checksum, at every truncation point tried."""
    meta, table = _generation(7, 2000)
    meta["key"] = "ab" * 32
    header, payload, digest = encode(meta, table)
    whole = header + payload.to_pybytes() + digest
    folder = tmp_path / "e"
    folder.mkdir()
    path = folder / (meta["key"] + SUFFIX)
    for cut in sorted({*range(0, len(whole), max(1, len(whole) // 150)), len(whole) - 1}):
        path.write_bytes(whole[:cut])
        with pytest.raises(CorruptEntry):
            read_file(str(path))


# -- concurrent kernels --------------------------------------------------------------------------------

def _kernel(cache_dir: str, writer: int, rounds: int, query: str, errors) -> None:
    """One 'kernel': runs the same query (same key) over its own data, refreshing each time."""
    os.environ["KQLMAGIC_PLUS_CACHE_DIR"] = cache_dir
    import pandas as pd

    import kqlmagic_plus as kp

    df = pd.DataFrame({"writer": [writer] * 2000, "x": list(range(2000))})
    try:
        for _ in range(rounds):
            r = kp.kql(query, namespace={"df": df}, cache="1h", refresh=True)
            if r.warnings or r.df["writer"].nunique() != 1:
                errors.put(f"writer {writer}: {r.warnings}")
    except Exception as exc:
        errors.put(f"writer {writer}: {type(exc).__name__}: {exc}")


def _reader(cache_dir: str, key_holder, stop, errors) -> None:
    store = ResultStore.for_cache_dir(cache_dir)
    seen = 0
    while not stop.is_set():
        key = key_holder.value.decode()
        if not key:
            time.sleep(0.005)
            continue
        notes: list[str] = []
        served = cache._load(store, key, notes)
        if notes:
            errors.put(f"reader: {notes}")
        if served is not None:
            _, table = served
            writers = set(table.column("writer").to_pylist())
            if len(writers) != 1 or table.num_rows != 2000:
                errors.put(f"reader: mixed entry {writers}")
            seen += 1
    errors.put(("reads", seen))


def test_concurrent_kernels_writing_one_key_end_with_one_valid_entry(tmp_path):
    from kqlmagic_plus.cache.key import query_key
    from kqlmagic_plus.engines.registry import connections
    from kqlmagic_plus.request import Request

    cache_dir = str(tmp_path / "cache")
    query = "df | extend y = x * 2 | order by x asc"
    _, engine = connections().resolve("local://")
    key = query_key(engine, Request(query))
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    stop = ctx.Event()
    key_holder = ctx.Array("c", 64)
    key_holder.value = key.encode()
    reader = ctx.Process(target=_reader, args=(cache_dir, key_holder, stop, errors))
    kernels = [ctx.Process(target=_kernel, args=(cache_dir, w, 8, query, errors)) for w in range(3)]
    reader.start()
    for p in kernels:
        p.start()
    for p in kernels:
        p.join(300)
    stop.set()
    reader.join(60)
    assert all(p.exitcode == 0 for p in [*kernels, reader])
    msgs = []
    while not errors.empty():
        msgs.append(errors.get())
    problems = [m for m in msgs if not (isinstance(m, tuple) and m[0] == "reads")]
    assert problems == []
    reads = [m[1] for m in msgs if isinstance(m, tuple)]
    assert reads and reads[0] > 0  # the reader really read entries while they were being replaced
    folder = tmp_path / "cache" / "results-v1"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [key + SUFFIX]  # one entry, no temp files
    meta, table, _ = read_file(str(folder / names[0]))
    assert meta["key"] == key and len(set(table.column("writer").to_pylist())) == 1


# -- full disk ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _tiny_filesystem(path):
    """A 64 kB tmpfs at *path* (needs root); yields 'tmpfs', or None when mounting is not allowed."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(path)],
                          capture_output=True)
    if done.returncode != 0:
        yield None
        return
    try:
        yield "tmpfs"
    finally:
        subprocess.run(["umount", str(path)], check=True)


@pytest.fixture
def settings_restored():
    cfg = config.settings()
    saved = (cfg.cache_dir, cfg.cache, cfg.replay, cfg.cache_max_bytes)
    yield cfg
    cfg.cache_dir, cfg.cache, cfg.replay, cfg.cache_max_bytes = saved
    cache.session = cache.SessionStats()


def test_full_disk_fails_the_write_not_the_query(tmp_path, settings_restored):
    import pandas as pd

    import kqlmagic_plus as kp

    mount = tmp_path / "tiny"
    with _tiny_filesystem(mount) as kind:
        if kind is None:
            pytest.skip("mount not allowed here; test_full_disk_with_a_file_size_limit covers it")
        cfg = settings_restored
        cfg.cache_dir, cfg.replay = str(mount), ""
        small = pd.DataFrame({"a": [1, 2, 3]})
        big = pd.DataFrame({"v": np.random.default_rng(0).random(40_000)})  # ~320 kB, incompressible
        ok = kp.kql("small | count", namespace={"small": small}, cache="1h")
        assert not ok.warnings
        r = kp.kql("big | extend w = v * 2", namespace={"big": big}, cache="1h")
        assert r.row_count == 40_000 and r.df["w"].iloc[5] == big["v"].iloc[5] * 2
        assert any("disk is full" in w and "query itself succeeded" in w for w in r.warnings), r.warnings
        folder = mount / "results-v1"
        assert not [p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]
        # what was cached before is intact and still served
        assert kp.kql("small | count", namespace={"small": small}, cache="1h").from_cache
        assert cache.session.write_failures == 1


_FSIZE_SCRIPT = r"""
import os, resource, signal, sys
import numpy as np, pandas as pd
import kqlmagic_plus as kp
from kqlmagic_plus import config
config.settings().cache_dir = sys.argv[1]
small = pd.DataFrame({"a": [1, 2, 3]})
assert not kp.kql("small | count", namespace={"small": small}, cache="1h").warnings
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
big = pd.DataFrame({"v": np.random.default_rng(0).random(40_000)})
r = kp.kql("big | extend w = v * 2", namespace={"big": big}, cache="1h")
assert r.row_count == 40_000, r.row_count
print("WARN:", " | ".join(r.warnings))
print("HIT:", kp.kql("small | count", namespace={"small": small}, cache="1h").from_cache)
"""


def test_full_disk_with_a_file_size_limit(tmp_path):
    """The same failure without root: RLIMIT_FSIZE makes the write fail with EFBIG."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run([sys.executable, "-c", _FSIZE_SCRIPT, str(tmp_path / "c")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "file size limit" in out.stdout and "query itself succeeded" in out.stdout
    assert "HIT: True" in out.stdout
    folder = tmp_path / "c" / "results-v1"
    assert not [p for p in folder.iterdir() if p.name.startswith(TMP_PREFIX)]
