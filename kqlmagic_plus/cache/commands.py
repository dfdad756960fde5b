"""``%kql --cache list | stats | clear | export DIR`` and ``--replay DIR``: the cache's commands.

The lookup itself (modes, freshness, replay of a query) is :mod:`kqlmagic_plus.cache.modes`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from kqlmagic_plus.cache import modes
from kqlmagic_plus.cache.entry import CorruptEntry, UntrustedStore
from kqlmagic_plus.cache.modes import (
    OFF_WORDS,
    cache_settings,
    megabytes,
    parse_time,
    replay_folder,
    ttl_seconds,
)
from kqlmagic_plus.cache.store import ResultStore
from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.redaction import redact

# -- %kql --cache list | stats | clear | export, and --replay --------------------------------------------

class Report:
    """Text a cache command shows (as the cell's output)."""

    def __init__(self, lines: list[str], entries: list[dict[str, Any]] | None = None):
        self.lines = lines
        #: For ``list``: one dict per entry (key, query, target, computed_at, age_s, rows, bytes, ...).
        self.entries = entries or []

    def __repr__(self) -> str:
        return "\n".join(self.lines)

    def to_dataframe(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.entries)


def command(name: str | None, *, export_to: str | None = None, older_than: str | None = None,
            replay: str | None = None, ttl: str | bool | None = None) -> Report | None:
    """Run ``--cache list|stats|clear|export DIR`` and set ``--replay DIR``. Returns None when the
    options only set up how the query on the same line/cell runs (``--cache 1h``, ``--replay DIR``);
    a bad TTL fails here, before any query runs."""
    if replay is not None:
        _set_replay(str(replay))
    if name == "list":
        return list_entries()
    if name == "stats":
        return stats()
    if name == "clear":
        return clear(older_than)
    if name == "export":
        return export(export_to or "")
    if isinstance(ttl, str):
        ttl_seconds(ttl, False)
    return None


def _set_replay(folder: str) -> None:
    cfg = cache_settings()
    if folder.strip().lower() in OFF_WORDS:
        if cfg.replay:
            print("Replay mode off: queries run on their engines again.")
        cfg.replay = ""
        return
    path = os.path.abspath(os.path.expanduser(folder))
    if not os.path.isdir(path):
        raise OptionError(f"--replay {folder}: no such folder")
    n = len(ResultStore.for_folder(path).files())
    cfg.replay = path
    print(f"Replay mode: queries are served from {path} ({n} entries); none reaches an engine.")


def _store_for_commands() -> ResultStore:
    return ResultStore.for_cache_dir(cache_settings().cache_dir)


def list_entries() -> Report:
    """The entries in the cache folder, most recently used first."""
    store = _store_for_commands()
    try:
        store.check()
    except UntrustedStore as exc:
        return Report([modes.untrusted_warning(exc)])
    now = modes.clock()
    rows = []
    refused = []
    for info, meta in sorted(store.entries(), key=lambda im: -im[0].last_used):
        reason = store.untrusted_entry(info.path) if meta is None else None
        if reason:
            refused.append(reason)
        meta = meta or {}
        try:
            age = (now - parse_time(meta["computed_at"])).total_seconds()
        except (KeyError, TypeError, ValueError):
            age = None
        rows.append({
            "key": info.key[:12], "query": redact(str(meta.get("query", "?"))),
            "target": redact(str(meta.get("target", "?"))),
            "computed_at": meta.get("computed_at"), "age_s": age, "rows": meta.get("rows"),
            "bytes": info.size, "last_used": datetime.fromtimestamp(info.last_used, UTC).isoformat(),
        })
    if not rows:
        return Report([f"The cache is empty ({store.path})."])
    lines = [f"{len(rows)} cached results, {megabytes(sum(r['bytes'] for r in rows))} in {store.path}",
             f"{'key':<12}  {'age':>6}  {'rows':>9}  {'size':>9}  query"]
    for r in rows:
        from kqlmagic_plus.results import _human_age

        age = _human_age(r["age_s"]) if r["age_s"] is not None else "?"
        q = " ".join(str(r["query"]).split())
        q = q if len(q) <= 70 else q[:67] + "..."
        lines.append(f"{r['key']:<12}  {age:>6}  {r['rows'] if r['rows'] is not None else '?':>9}  "
                     f"{megabytes(r['bytes']):>9}  {q}")
    if refused:
        lines.append(f"Cache not used for {len(refused)} of these (someone else could have written them): "
                     + "; ".join(refused[:3]) + (" ..." if len(refused) > 3 else ""))
    return Report(lines, rows)


def stats() -> Report:
    cfg = cache_settings()
    store = _store_for_commands()
    files = store.files()
    total = sum(f.size for f in files)
    mode = f"replay from {cfg.replay}" if replay_folder() else f"cache {cfg.cache or 'off'}"
    try:
        store.check()
    except UntrustedStore as exc:
        mode += f" (refused: {exc})"
    return Report([
        f"Cache folder: {store.path}",
        f"Entries: {len(files)}, {megabytes(total)} of {megabytes(cfg.cache_max_bytes)} cap",
        f"Mode: {mode}",
        f"This session: {modes.session.hits} hits, {modes.session.misses} misses, {modes.session.stores} stored, "
        f"{modes.session.replayed} replayed, {modes.session.discarded} damaged entries discarded, "
        f"{modes.session.write_failures} failed writes",
    ])


def clear(older_than: str | None = None) -> Report:
    from kqlmagic_plus.request import parse_duration

    store = _store_for_commands()
    cutoff = modes.clock().timestamp() - parse_duration(older_than, "--older-than") if older_than else None
    try:
        n, freed = store.clear(computed_before=cutoff)
    except UntrustedStore as exc:
        return Report([f"Cache not cleared: {exc}; someone else could have set it up, so nothing in it was "
                       "removed. Check it, then remove it yourself or set KqlMagicPlus.cache_dir elsewhere."])
    if older_than:
        return Report([f"Removed {n} cached results computed more than {older_than} ago ({megabytes(freed)})."])
    return Report([f"Removed {n} cached results ({megabytes(freed)})."])


def export(folder: str) -> Report:
    """Copy every entry this process served or stored into *folder* (a replay folder)."""
    dest = ResultStore(folder)
    if not modes.session.used:
        return Report(["No cached results were used in this session, so there is nothing to export. "
                       "Turn caching on (%config KqlMagicPlus.cache = '1d') and run the notebook first."])
    copied, missing = 0, []
    for key, src in sorted(modes.session.used.items()):
        target = dest.file_for(key)
        try:
            if os.path.exists(target) and os.path.samefile(src, target):
                copied += 1
                continue
            dest.copy_in(src, key)
            copied += 1
        except (OSError, CorruptEntry, UntrustedStore) as exc:
            missing.append(f"{key[:12]} ({(exc.strerror if isinstance(exc, OSError) else None) or exc})")
    lines = [f"Exported {copied} cached results to {folder}"]
    if missing:
        lines.append(f"{len(missing)} could not be exported (evicted, cleared or damaged since use): "
                     + ", ".join(missing))
    return Report(lines)
