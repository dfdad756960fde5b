"""Writing a lake: :func:`generate`, its summary, and the ``kqlmagic-plus datagen`` command."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from kqlmagic_plus.demo.datagen.chunks import _generate_table
from kqlmagic_plus.demo.datagen.common import (
    _DAY,
    _LAYOUTS,
    _SHARE,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    TABLES,
    WORKSPACE,
    _day_us,
    _dt,
    _iso,
)
from kqlmagic_plus.demo.datagen.environment import _environment
from kqlmagic_plus.demo.datagen.plants import _plants
from kqlmagic_plus.demo.datagen.writer import _Writer
from kqlmagic_plus.errors import OptionError

#: The package docstring's first line, spelt out: reading it from here would import the package (a cycle).
_DESCRIPTION = "Synthetic Microsoft Sentinel tables, written in the Log Analytics continuous-export layout."


@dataclass
class DatagenSummary:
    """What :func:`generate` wrote."""

    out_dir: str
    start: datetime
    end: datetime
    fmt: str
    layout: str
    seed: int
    rows: dict[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    elapsed: float = 0.0
    truth_path: str = ""
    attacks: list[str] = field(default_factory=list)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def __str__(self) -> str:
        lines = [f"wrote {self.total_rows:,} events ({self.bytes / 1e6:,.1f} MB, {self.fmt}, {self.layout} "
                 f"folders) to {self.out_dir} in {self.elapsed:.1f} s",
                 f"TimeGenerated {self.start:%Y-%m-%d} .. {self.end - timedelta(microseconds=1):%Y-%m-%d} "
                 f"(UTC), seed {self.seed}"]
        for name in self.rows:
            lines.append(f"  {name:<18} {self.rows[name]:>12,} rows {self.files[name]:>7,} files")
        lines.append(f"planted: {', '.join(self.attacks) or 'nothing'}; ground truth in {self.truth_path}")
        return "\n".join(lines)


# -- public API -------------------------------------------------------------------------------------


def generate(out_dir: str | os.PathLike[str], days: int = 1, end_date: date | str | None = None,
             events_per_day: int = 100_000, seed: int = 0, tables: Sequence[str] | str | None = None,
             fmt: str = "json", layout: str = "5m", *, late_fraction: float = 0.002,
             max_rows_per_file: int | None = None, overwrite: bool = False,
             workers: int = 2) -> DatagenSummary:
    """Write a synthetic lake of *days* days ending with *end_date* (UTC, default today) to *out_dir*.

    *events_per_day* is the number of records per day over all *tables* (planted ones included);
    *fmt* is ``json`` (JSON lines, as the export writes) or ``parquet`` (same folders);
    *layout* ``5m`` writes ``m=MM/PT05M.json`` per 5 minutes, ``1h`` the older ``m=00/PT1H.json``;
    *max_rows_per_file* splits a folder into overflow blobs (``PT05M_1.json``, ...).
    """
    started = time.perf_counter()
    names = _resolve_tables(tables)
    fmt = fmt.lower()
    if fmt not in ("json", "parquet"):
        raise OptionError(f"--format {fmt!r}: use json or parquet")
    if layout not in _LAYOUTS:
        raise OptionError(f"--layout {layout!r}: use 5m or 1h")
    if not isinstance(days, int) or days < 1:
        raise OptionError(f"--days {days!r}: give a whole number of days, 1 or more")
    if not isinstance(events_per_day, int) or events_per_day < 0:
        raise OptionError(f"--events-per-day {events_per_day!r}: give a whole number, 0 or more")
    if not 0 <= late_fraction <= 1:
        raise OptionError(f"late_fraction {late_fraction!r} must be between 0 and 1")
    if max_rows_per_file is not None and max_rows_per_file < 1:
        raise OptionError(f"--max-rows-per-file {max_rows_per_file!r} must be 1 or more")
    last_day = _parse_date(end_date)
    first_day = last_day - timedelta(days=days - 1)
    out = os.path.abspath(os.fspath(out_dir))
    _prepare_out_dir(out, names, overwrite)

    env = _environment(seed)
    day0_us = _day_us(first_day)
    last_day_us = day0_us + (days - 1) * _DAY
    plants, truth = _plants(env, seed, last_day_us, names)

    summary = DatagenSummary(out_dir=out, start=_dt(day0_us), end=_dt(day0_us + days * _DAY), fmt=fmt,
                             layout=layout, seed=seed, attacks=[t["id"] for t in truth])
    weights = {n: _SHARE[n] for n in names}
    total_w = sum(weights.values())
    for name in names:
        per_day = round(events_per_day * weights[name] / total_w)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as io_pool:
            writer = _Writer(_container_dir(out, name), fmt, layout, max_rows_per_file,
                             pool=io_pool if fmt == "parquet" else None)
            _generate_table(name, env, seed, day0_us, days, per_day, plants.get(name), late_fraction, writer,
                            workers)
        summary.rows[name] = writer.rows
        summary.files[name] = writer.files
        summary.bytes += writer.bytes

    truth_doc = {
        "generator": {"module": "kqlmagic_plus.demo.datagen", "seed": seed, "days": days,
                      "start": _iso(day0_us), "end": _iso(day0_us + days * _DAY),
                      "events_per_day": events_per_day, "tables": list(names), "format": fmt,
                      "layout": layout, "late_fraction": late_fraction,
                      "workspace": {"subscription": SUBSCRIPTION, "resource_group": RESOURCE_GROUP,
                                    "workspace": WORKSPACE, "tenant_id": env.tenant_id}},
        "attacks": truth,
    }
    summary.truth_path = os.path.join(out, "_truth.json")
    with open(summary.truth_path, "w", encoding="utf-8") as f:
        json.dump(truth_doc, f, indent=2)
        f.write("\n")
    summary.elapsed = time.perf_counter() - started
    return summary


def add_datagen_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``kqlmagic-plus datagen`` options."""
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the lake into")
    parser.add_argument("--days", type=int, default=1, help="number of days (default 1)")
    parser.add_argument("--end-date", metavar="YYYY-MM-DD", help="last day, UTC (default today)")
    parser.add_argument("--events-per-day", type=int, default=100_000, metavar="N",
                        help="events per day over all tables (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default 0)")
    parser.add_argument("--tables", metavar="A,B", help=f"tables to write (default all: {','.join(TABLES)})")
    parser.add_argument("--format", dest="fmt", choices=("json", "parquet"), default="json",
                        help="JSON lines as the export writes them, or Parquet in the same folders")
    parser.add_argument("--layout", choices=tuple(_LAYOUTS), default="5m",
                        help="5m: m=MM/PT05M.json (current export); 1h: m=00/PT1H.json (older exports)")
    parser.add_argument("--max-rows-per-file", type=int, metavar="N",
                        help="split folders into overflow blobs (PT05M_1.json, ...) above N rows")
    parser.add_argument("--late-fraction", type=float, default=0.002, metavar="F",
                        help="share of records arriving 10 min to 36 h late (default 0.002)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the am-* containers and _truth.json already in --out")


def run_datagen(args: argparse.Namespace) -> int:
    """Run ``kqlmagic-plus datagen`` with parsed *args*; prints the summary."""
    summary = generate(args.out, days=args.days, end_date=args.end_date, events_per_day=args.events_per_day,
                       seed=args.seed, tables=args.tables, fmt=args.fmt, layout=args.layout,
                       late_fraction=args.late_fraction, max_rows_per_file=args.max_rows_per_file,
                       overwrite=args.overwrite)
    print(summary)
    return 0


def datagen_main(argv: Sequence[str] | None = None) -> int:
    """``python -m kqlmagic_plus.demo.datagen --out DIR ...``: the CLI without the rest of the package's."""
    parser = argparse.ArgumentParser(prog="kqlmagic-plus datagen", description=_DESCRIPTION)
    add_datagen_arguments(parser)
    try:
        return run_datagen(parser.parse_args(argv))
    except OptionError as exc:
        print(exc.user_message(), file=__import__("sys").stderr)
        return 2


# -- arguments and layout ---------------------------------------------------------------------------


def _resolve_tables(tables: Sequence[str] | str | None) -> tuple[str, ...]:
    if tables is None or tables == "":
        return TABLES
    items = [t.strip() for t in tables.split(",")] if isinstance(tables, str) else [str(t) for t in tables]
    by_lower = {t.lower(): t for t in TABLES}
    out: list[str] = []
    for item in items:
        if not item:
            continue
        name = by_lower.get(item.lower())
        if name is None:
            raise OptionError(f"--tables: cannot generate {item!r}; choose from {', '.join(TABLES)}")
        if name not in out:
            out.append(name)
    if not out:
        raise OptionError("--tables: name at least one table")
    return tuple(out)


def _parse_date(value: date | str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise OptionError(f"--end-date {value!r}: give a date as YYYY-MM-DD") from None


def _prepare_out_dir(out: str, names: Sequence[str], overwrite: bool) -> None:
    if os.path.exists(out) and not os.path.isdir(out):
        raise OptionError(f"--out {out!r} is a file, not a folder")
    existing = [os.path.join(out, e) for e in (os.listdir(out) if os.path.isdir(out) else [])
                if e.startswith("am-") or e == "_truth.json"]
    if existing and not overwrite:
        raise OptionError(f"--out {out!r} already holds a lake ({os.path.basename(existing[0])}, ...); "
                          "choose an empty folder or pass --overwrite")
    for path in existing:
        # Only what this generator writes: a container or a truth file, never anything else in DIR.
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    os.makedirs(out, exist_ok=True)


def _container_dir(out: str, table: str) -> str:
    return os.path.join(out, "am-" + table.lower(), "WorkspaceResourceId=", "subscriptions", SUBSCRIPTION,
                        "resourcegroups", RESOURCE_GROUP, "providers", "microsoft.operationalinsights",
                        "workspaces", WORKSPACE)
