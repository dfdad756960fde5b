"""Synthetic Microsoft Sentinel tables, written in the Log Analytics continuous-export layout.

:func:`generate` writes SigninLogs, SecurityEvent, CommonSecurityLog and Syslog with the real column
names and KQL types (``data/la_table_schemas.json``), plausible values for a small organisation
(users, workstations, servers, Linux hosts, firewalls of four vendors), and planted attacks whose
ground truth goes to ``DIR/_truth.json``, all on the last day:

- a C2 beacon with its look-alikes: the worked example of the beacon hunt spec (hosts A-F), plus a
  slow beacon, a beacon on a busy host and a bursty browser (CommonSecurityLog);
- a password spray: one IP, failed sign-ins (ResultType 50126) across many accounts, two successes;
- a masquerading process, ``svch0st.exe``, in SecurityEvent 4688;
- a process executed once in the whole data set (SecurityEvent 4688).

Where records land: the export files a record under the 5-minute interval (or hour, in the older
layout) in which it reached the workspace, not under its TimeGenerated. Records here arrive 20 s
to a few minutes after TimeGenerated; ``late_fraction`` of them arrive 10 minutes to 36 hours late,
and one in a thousand carries a TimeGenerated up to 90 s ahead of its arrival (a source clock
running fast). That is what :mod:`kqlmagic_plus.lake` has to prune correctly.

Every random draw comes from a numpy generator seeded from ``seed`` and the (table, day, hour) of
its chunk, so the same arguments write the same bytes whatever the thread count. JSON lines are
rendered column-wise with Arrow string kernels: a column drawn from a vocabulary is escaped once
per distinct value, and columns drawn with the same index share one fragment.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.errors import OptionError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

TABLES = ("SigninLogs", "SecurityEvent", "CommonSecurityLog", "Syslog")
#: Share of the events of a day each table gets (renormalised over the tables asked for).
_SHARE = {"CommonSecurityLog": 0.60, "SecurityEvent": 0.25, "Syslog": 0.10, "SigninLogs": 0.05}
_TABLE_ID = {name: i for i, name in enumerate(TABLES)}

_US = 1_000_000
_MIN = 60 * _US
_HOUR = 3600 * _US
_DAY = 86_400 * _US
#: A record's TimeGenerated is at most this far ahead of its arrival (fast source clocks).
_MAX_EARLY = 90 * _US
_LAYOUTS = {"5m": (5 * _MIN, "PT05M"), "1h": (_HOUR, "PT1H")}
#: Relative event volume per UTC hour (office hours are busier).
_DIURNAL = (4, 3, 3, 3, 3, 4, 6, 9, 12, 14, 15, 15, 14, 15, 15, 14, 13, 11, 9, 8, 7, 6, 5, 5)

SUBSCRIPTION = "7d2a94c1-3f0e-4b8a-9d61-5c2e8f1a0b37"
RESOURCE_GROUP = "soc-rg"
WORKSPACE = "sentinel-ws"


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
    parser = argparse.ArgumentParser(prog="kqlmagic-plus datagen", description=__doc__.splitlines()[0])
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


def _day_us(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * _US


def _dt(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def _iso(us: int) -> str:
    return _dt(us).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


# -- the organisation -------------------------------------------------------------------------------

_FIRST = ("james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william",
          "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
          "charles", "karen", "christopher", "nancy", "daniel", "lisa", "matthew", "betty", "anthony",
          "margaret", "mark", "sandra", "donald", "ashley", "steven", "kimberly", "paul", "emily", "andrew",
          "donna", "joshua", "michelle", "kenneth", "carol", "kevin", "amanda", "brian", "dorothy", "george",
          "melissa", "timothy", "deborah")
_LAST = ("smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
         "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore",
         "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark", "ramirez",
         "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres", "nguyen",
         "hill", "flores")
_SERVERS = ("SRV-DC01", "SRV-DC02", "SRV-FS01", "SRV-SQL01", "SRV-EXCH01", "SRV-WEB01", "SRV-APP01",
            "SRV-APP02", "SRV-APP03", "SRV-PRINT01", "SRV-BACKUP01", "SRV-CA01")
_LINUX = ("web-01", "web-02", "web-03", "web-04", "db-01", "db-02", "k8s-node-01", "k8s-node-02",
          "k8s-node-03", "k8s-node-04", "bastion-01", "mail-01", "monitor-01", "ci-runner-01", "vpn-01",
          "dns-01")
_CITIES = (("Seattle", "Washington", "US", 47.61, -122.33), ("Redmond", "Washington", "US", 47.67, -122.12),
           ("Portland", "Oregon", "US", 45.52, -122.68), ("Chicago", "Illinois", "US", 41.88, -87.63),
           ("New York", "New York", "US", 40.71, -74.01), ("Austin", "Texas", "US", 30.27, -97.74),
           ("London", "England", "GB", 51.51, -0.13), ("Berlin", "Berlin", "DE", 52.52, 13.40),
           ("Bengaluru", "Karnataka", "IN", 12.97, 77.59), ("Toronto", "Ontario", "CA", 43.65, -79.38))
_CITY_WEIGHTS = (30, 20, 10, 8, 8, 6, 6, 4, 4, 4)


@dataclass
class _Env:
    """Who and what exists; depends on the seed only, so every table and day agrees on it."""

    tenant_id: str
    workspace_id: str
    domain: str
    netbios: str
    sam: list[str]
    upn: list[str]
    display: list[str]
    user_id: list[str]
    sid: list[str]
    home_ip: list[str]
    home_city: Any  # np.ndarray of city indices
    office_ip: list[str]
    ws: list[str]
    ws_ip: list[str]
    ws_user: Any  # np.ndarray: primary user of each workstation
    srv_ip: list[str]
    lin_ip: list[str]
    ext_ip: list[str]
    ext_w: Any  # np.ndarray: popularity of each external address
    src_w: Any  # np.ndarray: how busy each internal host (workstations, servers, Linux) is


def _environment(seed: int) -> _Env:
    import numpy as np

    rng = np.random.default_rng([seed, 0xE17])
    n_users = 200
    pairs = rng.choice(len(_FIRST) * len(_LAST), size=n_users, replace=False)
    sam: list[str] = []
    upn: list[str] = []
    display: list[str] = []
    for p in pairs.tolist():
        first, last = _FIRST[p // len(_LAST)], _LAST[p % len(_LAST)]
        base = (first[0] + last)[:18]
        name = base
        k = 2
        while name in sam:
            name = f"{base}{k}"
            k += 1
        sam.append(name)
        upn.append(f"{first}.{last}@contoso.com")
        display.append(f"{first.title()} {last.title()}")
    guids = _guid_list(rng, n_users + 2)
    public = _public_ips(rng, 4000 + n_users + 2)
    ext_ip = public[:4000]
    ext_w = 1.0 / (np.arange(len(ext_ip)) + 8.0) ** 1.1
    n_ws = 150
    return _Env(
        tenant_id=guids[-2], workspace_id=guids[-1], domain="contoso.com", netbios="CONTOSO",
        sam=sam, upn=upn, display=display, user_id=guids[:n_users],
        sid=[f"S-1-5-21-3623811015-3361044348-30300820-{1100 + i}" for i in range(n_users)],
        home_ip=public[4000:4000 + n_users],
        home_city=rng.choice(len(_CITIES), size=n_users, p=_norm(_CITY_WEIGHTS)),
        office_ip=public[-2:],
        ws=[f"WKS-{i + 1:04d}" for i in range(n_ws)],
        ws_ip=[f"10.0.{i // 200}.{i % 200 + 20}" for i in range(n_ws)],
        ws_user=rng.choice(n_users, size=n_ws, replace=False),
        srv_ip=[f"10.10.0.{i + 10}" for i in range(len(_SERVERS))],
        lin_ip=[f"10.20.0.{i + 10}" for i in range(len(_LINUX))],
        ext_ip=ext_ip, ext_w=ext_w / ext_w.sum(),
        src_w=_norm(rng.lognormal(0, 1, n_ws + len(_SERVERS) + len(_LINUX))),
    )


def _norm(weights: Sequence[float]) -> Any:
    import numpy as np

    w = np.asarray(weights, dtype=float)
    return w / w.sum()


def _guid_list(rng: np.random.Generator, n: int) -> list[str]:
    return _guids(rng, n).to_pylist()


# Documentation ranges (RFC 5737) and the beacon spec's popular host belong to the planted actors.
_RESERVED_NETS = ((0x0A000000, 8), (0x7F000000, 8), (0x64400000, 10), (0xA9FE0000, 16), (0xAC100000, 12),
                  (0xC0A80000, 16), (0xC0000200, 24), (0xC6336400, 24), (0xCB007100, 24), (0xC6120000, 15),
                  (0x5DB8D822, 32), (0x00000000, 8))


def _public_ips(rng: np.random.Generator, n: int) -> list[str]:
    import numpy as np

    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        cand = rng.integers(0x01000000, 0xDF000000, size=2 * n, dtype=np.int64)
        ok = np.ones(len(cand), dtype=bool)
        for net, bits in _RESERVED_NETS:
            ok &= (cand >> (32 - bits)) != (net >> (32 - bits))
        for v in cand[ok].tolist():
            if v not in seen and v & 0xFF not in (0, 255):
                seen.add(v)
                out.append(v)
                if len(out) == n:
                    break
    return [f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in out]


# -- vocabularies -----------------------------------------------------------------------------------

# vendor: DeviceVendor, DeviceProduct, DeviceVersion, DeviceName
_VENDORS = (("Palo Alto Networks", "PAN-OS", "10.2.7", "PA-3220-HQ"),
            ("Fortinet", "Fortigate", "7.2.5", "FGT-100F-BR1"),
            ("Check Point", "VPN-1 & FireWall-1", "R81.20", "cp-gw-dc01"),
            ("Cisco", "ASA", "9.16", "asa-dmz-01"))
_FORTINET = 1
# (vendor, allowed?): Activity, DeviceAction, DeviceEventClassID, LogSeverity
_ACTIONS = (("TRAFFIC", "allow", "end", "1"), ("TRAFFIC", "deny", "deny", "3"),
            ("traffic:forward accept", "accept", "0000000013", "3"),
            ("traffic:forward deny", "deny", "0000000013", "4"),
            ("Accept", "Accept", "Log", "1"), ("Drop", "Drop", "Log", "5"),
            ("Built outbound TCP connection", "Built", "302013", "6"),
            ("Deny tcp src outside", "Deny", "106023", "4"))
# DestinationPort, Protocol, ApplicationProtocol, weight (outbound), weight (east-west)
_PORTS = ((443, "TCP", "ssl", 70, 0), (80, "TCP", "web-browsing", 10, 0), (53, "UDP", "dns", 6, 10),
          (123, "UDP", "ntp", 2, 2), (8443, "TCP", "ssl", 2, 0), (22, "TCP", "ssh", 1, 4),
          (25, "TCP", "smtp", 1, 0), (993, "TCP", "imap", 1, 0), (445, "TCP", "ms-ds-smb", 0, 40),
          (389, "TCP", "ldap", 0, 15), (88, "TCP", "kerberos", 0, 15), (135, "TCP", "msrpc", 0, 8),
          (3389, "TCP", "ms-rdp", 0, 6))
_PORT_443, _PORT_445, _PORT_8443 = 0, 8, 4

# EventID, description, Task, weight, kind
_EVENTS = ((4624, "An account was successfully logged on.", 12544, 24, "logon"),
           (4625, "An account failed to log on.", 12544, 2, "fail"),
           (4634, "An account was logged off.", 12545, 14, "logoff"),
           (4648, "A logon was attempted using explicit credentials.", 12544, 2, "logon"),
           (4672, "Special privileges assigned to new logon.", 12548, 8, "priv"),
           (4688, "A new process has been created.", 13312, 26, "proc"),
           (4689, "A process has exited.", 13313, 14, "exit"),
           (4768, "A Kerberos authentication ticket (TGT) was requested.", 14339, 4, "krb"),
           (4769, "A Kerberos service ticket was requested.", 14337, 5, "krb"),
           (4776, "The computer attempted to validate the credentials for an account.", 14336, 1, "krb"))
_EV_4688 = 5
# LogonType, LogonTypeName, LogonProcessName, AuthenticationPackageName, weight, remote?
_LOGONS = ((2, "2 - Interactive", "User32 ", "Negotiate", 8, False), (3, "3 - Network", "NtLmSsp ", "NTLM", 30, True),
           (3, "3 - Network", "Kerberos", "Kerberos", 30, True), (5, "5 - Service", "Advapi  ", "Negotiate", 14, False),
           (7, "7 - Unlock", "User32 ", "Negotiate", 6, False),
           (10, "10 - RemoteInteractive", "User32 ", "Negotiate", 4, True),
           (11, "11 - CachedInteractive", "User32 ", "Negotiate", 4, False))
_S32 = "C:\\Windows\\System32\\"
_EXPLORER = "C:\\Windows\\explorer.exe"
# NewProcessName, ParentProcessName, CommandLine, weight, runs as SYSTEM?
_PROCESSES = (
    (_S32 + "svchost.exe", _S32 + "services.exe", "C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule",
     14, True),
    (_S32 + "conhost.exe", _S32 + "cmd.exe", "\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1", 8, False),
    (_S32 + "RuntimeBroker.exe", _S32 + "svchost.exe", "C:\\Windows\\System32\\RuntimeBroker.exe -Embedding", 6,
     False),
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", _EXPLORER,
     '"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe" --type=renderer --lang=en-US', 12, False),
    ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", _EXPLORER,
     '"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe" --type=utility', 10, False),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", _EXPLORER,
     '"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE"', 3, False),
    ("C:\\Program Files\\WindowsApps\\MSTeams_24004.1307.2669.7070_x64__8wekyb3d8bbwe\\ms-teams.exe", _EXPLORER,
     '"ms-teams.exe" --system-initiated', 4, False),
    (_S32 + "WindowsPowerShell\\v1.0\\powershell.exe", _EXPLORER, "powershell.exe -NoProfile", 2, False),
    (_S32 + "cmd.exe", _EXPLORER, '"C:\\Windows\\system32\\cmd.exe"', 3, False),
    (_S32 + "SearchProtocolHost.exe", _S32 + "SearchIndexer.exe",
     '"C:\\Windows\\system32\\SearchProtocolHost.exe" Global\\UsGthrFltPipeMssGthrPipe1', 5, True),
    (_S32 + "backgroundTaskHost.exe", _S32 + "svchost.exe",
     '"C:\\Windows\\system32\\backgroundTaskHost.exe" -ServerName:BackgroundTaskHost.WebAccountProvider', 4,
     False),
    (_S32 + "taskhostw.exe", _S32 + "svchost.exe", "taskhostw.exe", 4, False),
    (_S32 + "dllhost.exe", _S32 + "svchost.exe",
     "C:\\Windows\\system32\\DllHost.exe /Processid:{AB8902B4-09CA-4BB6-B78D-A8F59079A8D5}", 5, True),
    (_S32 + "wbem\\WmiPrvSE.exe", _S32 + "svchost.exe", "C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding",
     3, True),
    (_S32 + "gpupdate.exe", _S32 + "svchost.exe", "gpupdate.exe /target:computer", 1, True),
    (_S32 + "smartscreen.exe", _S32 + "svchost.exe", "C:\\Windows\\System32\\smartscreen.exe -Embedding", 2,
     False),
    # Planted only (weight 0): never drawn for background traffic.
    ("C:\\Users\\Public\\svch0st.exe", _S32 + "cmd.exe", "C:\\Users\\Public\\svch0st.exe -k netsvcs", 0, False),
    ("C:\\Windows\\Temp\\pd64.exe", _S32 + "cmd.exe",
     "C:\\Windows\\Temp\\pd64.exe -accepteula -ma lsass.exe C:\\Windows\\Temp\\lsass.dmp", 0, False),
)
_P_MASQ, _P_RARE = len(_PROCESSES) - 2, len(_PROCESSES) - 1

# AppDisplayName, AppId, ResourceDisplayName, weight
_APPS = (("Office 365 Exchange Online", "00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online", 25),
         ("Microsoft Teams", "1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams Services", 25),
         ("Office 365 SharePoint Online", "00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online",
          15),
         ("Microsoft Office", "d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Graph", 15),
         ("Azure Portal", "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Windows Azure Service Management API", 5),
         ("Microsoft Authentication Broker", "29d9ed98-a469-4536-ade2-f981bc1d605e", "Microsoft Graph", 10),
         ("Azure Active Directory PowerShell", "1b730954-1685-4b74-9bfd-dac224a7b894", "Windows Azure Active Directory",
          1),
         ("Microsoft Office 365 Portal", "00000006-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online", 5))
_APP_PORTAL = 7
# ResultType, ResultDescription, Status failureReason, ConditionalAccessStatus, weight
_RESULTS = (("0", "", None, "success", 92),
            ("50126", "Invalid username or password or Invalid on-premise username or password.",
             "Invalid username or password or Invalid on-premise username or password.", "notApplied", 1.5),
            ("50074", "Strong Authentication is required.", "Strong Authentication is required.", "notApplied", 2),
            ("50140", "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
             "This error occurred due to 'Keep me signed in' interrupt when the user was signing in.",
             "notApplied", 2),
            ("50076", "Due to a configuration change made by your administrator, or because you moved to a new "
             "location, you must use multi-factor authentication to access the resource.",
             "Due to a configuration change made by your administrator, or because you moved to a new location, "
             "you must use multi-factor authentication to access the resource.", "notApplied", 1),
            ("53003", "Access has been blocked by Conditional Access policies. The access policy does not allow "
             "token issuance.", "Access has been blocked by Conditional Access policies. The access policy does "
             "not allow token issuance.", "failure", 0.5),
            ("50125", "Sign-in was interrupted due to a password reset or password registration entry.",
             "Sign-in was interrupted due to a password reset or password registration entry.", "notApplied", 0.3))
_R_OK, _R_BADPW = 0, 1
# ClientAppUsed, UserAgent, operatingSystem, browser, IsInteractive, weight
_CLIENTS = (("Browser", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0", "Windows10", "Edge 120.0.0", True, 40),
            ("Mobile Apps and Desktop clients", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/114.0.5735.289 Electron/25.9.3 Safari/537.36 Teams/1.7.00.1960",
             "Windows10", "Rich Client 5.2.0", True, 35),
            ("Mobile Apps and Desktop clients", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) "
             "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148", "Ios 17.2", "Mobile Safari 17.2", True, 15),
            ("Exchange ActiveSync", "Outlook-iOS/723.4027091.prod.iphone (4.2405.0)", "Ios", "", False, 5),
            ("Browser", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
             "Version/17.2 Safari/605.1.15", "MacOs", "Safari 17.2", True, 5),
            # Planted only: a password spraying script.
            ("Other clients", "python-requests/2.31.0", "", "Python Requests 2.31", True, 0))
_C_SCRIPT = len(_CLIENTS) - 1

# Facility, SeverityLevel, ProcessName, message template, weight
_SYSLOG = (("auth", "info", "sshd", "Accepted publickey for {user} from {iip} port {port} ssh2: ED25519 SHA256:"
            "p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM", 10),
           ("authpriv", "info", "sshd", "pam_unix(sshd:session): session opened for user {user}(uid={uid}) by "
            "(uid=0)", 10),
           ("auth", "info", "sshd", "Disconnected from user {user} {iip} port {port}", 8),
           ("auth", "notice", "sshd", "Invalid user {bad} from {eip} port {port}", 6),
           ("authpriv", "notice", "sudo", "{user} : TTY=pts/{n} ; PWD=/home/{user} ; USER=root ; "
            "COMMAND=/usr/bin/systemctl restart nginx", 4),
           ("cron", "info", "CRON", "(root) CMD (run-parts /etc/cron.hourly)", 14),
           ("daemon", "info", "systemd", "Started Session {n} of User {user}.", 12),
           ("daemon", "info", "systemd", "Starting Daily apt download activities...", 4),
           ("kern", "warning", "kernel", "[UFW BLOCK] IN=eth0 OUT= MAC= SRC={eip} DST={hip} LEN=60 TOS=0x00 "
            "PREC=0x00 TTL=50 ID=0 DF PROTO=TCP SPT={port} DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0", 16),
           ("mail", "info", "postfix/smtpd", "connect from unknown[{eip}]", 6),
           ("syslog", "info", "rsyslogd", '[origin software="rsyslogd" swVersion="8.2112.0" x-pid="{n}" '
            'x-info="https://www.rsyslog.com"] rsyslogd was HUPed', 2),
           ("daemon", "err", "containerd", 'level=error msg="failed to reload cni configuration" '
            'error="cni config load failed: no network config found in /etc/cni/net.d"', 3),
           ("local0", "debug", "haproxy", "{iip}:{port} [frontend~] backend/web-0{n} 0/0/1/12/13 200 1432", 5))
_BAD_USERS = ("admin", "test", "oracle", "ubuntu", "pi", "guest", "postgres", "ftpuser", "git", "user")


# -- planted attacks --------------------------------------------------------------------------------


def _plants(env: _Env, seed: int, day_us: int, names: Sequence[str]) -> tuple[dict[str, Any], list[dict]]:
    """Planted rows per table (one typed Arrow table each) and their ground truth."""
    import numpy as np
    import pyarrow as pa

    rows: dict[str, Any] = {}
    truth: list[dict] = []
    if "CommonSecurityLog" in names:
        rng = np.random.default_rng([seed, 0xBEAC])
        tables, facts = _plant_beacons(env, rng, day_us)
        rows["CommonSecurityLog"] = tables
        truth.append(facts)
    if "SigninLogs" in names:
        rng = np.random.default_rng([seed, 0x5B7A])
        tables, facts = _plant_spray(env, rng, day_us)
        rows["SigninLogs"] = tables
        truth.append(facts)
    if "SecurityEvent" in names:
        rng = np.random.default_rng([seed, 0x4688])
        tables, facts = _plant_processes(env, rng, day_us)
        rows["SecurityEvent"] = tables
        truth.extend(facts)
    out: dict[str, Any] = {}
    for name, parts in rows.items():
        t = pa.concat_tables(parts, promote_options="default")
        ts = t.column("TimeGenerated").cast(pa.int64()).to_numpy()
        order = np.argsort(ts, kind="stable")
        out[name] = (ts[order], t.take(pa.array(order)))
    return out, truth


def _plant_beacons(env: _Env, rng: np.random.Generator, day_us: int) -> tuple[list, dict]:
    import numpy as np

    start = day_us + 9 * _HOUR
    span = 4 * _HOUR
    pairs: list[dict] = []
    parts = []

    def add(label: str, src: str, dst: str, port: int, times: Any, expect: str, **facts: Any) -> None:
        times = np.asarray(times, dtype=np.int64)
        parts.append(_csl_rows(env, rng, times, src=([src], None), dst=([dst], None), port=port,
                               vendor=_FORTINET))
        pairs.append({"label": label, "SourceIP": src, "DestinationIP": dst, "DestinationPort": _PORTS[port][0],
                      "events": len(times), "first_seen": _iso(int(times.min())),
                      "last_seen": _iso(int(times.max())), "expected": expect, **facts})

    def periodic(first: int, period_s: float, count: int, jitter_s: float = 0.0, missed: float = 0.0) -> Any:
        gaps = np.full(count - 1, period_s * _US)
        if jitter_s:
            gaps = gaps + rng.uniform(-jitter_s, jitter_s, count - 1) * _US
        times = first + np.concatenate([[0], np.cumsum(gaps)]).round().astype(np.int64)
        if missed:
            keep = rng.random(count) >= missed
            keep[0] = keep[-1] = True
            times = times[keep]
        return times

    add("A", "10.1.1.22", "203.0.113.51", _PORT_443, start + np.arange(240, dtype=np.int64) * 60 * _US, "flagged",
        period_s=60, jitter_s=0, missed_pct=0,
        expected_row={"ModeTimedelta": 60, "BeaconCount": 239, "TotalDeltas": 239, "TotalEvents": 240,
                      "PercentBeacon": 100.0},
        expected_compat_notebook="flagged")
    # B and C check in on a fixed 60 s grid, each check-in displaced by up to 0.4 s / 5 s (the spec's example).
    grid = start + np.arange(240, dtype=np.int64) * 60 * _US
    on_grid = lambda offset_s, jitter_s: grid + offset_s * _US + (  # noqa: E731
        rng.uniform(-jitter_s, jitter_s, 240) * _US).astype(np.int64)
    add("B", "10.1.1.20", "203.0.113.50", _PORT_443, on_grid(7, 0.4), "flagged",
        period_s=60, jitter_s=0.4, missed_pct=0, expected_row={"PercentBeacon": 100.0},
        expected_compat_notebook="not flagged")
    add("C", "10.1.1.21", "198.51.100.77", _PORT_8443, on_grid(13, 5.0), "flagged",
        period_s=60, jitter_s=5, missed_pct=0, expected_compat_notebook="not flagged",
        note="with --jitter 1 --jitter-pct 0: 20-35 %, not flagged")
    # D: Poisson traffic to three destinations, mean gap 60 s.
    gaps = rng.exponential(60.0, size=400) * _US
    times = start + 3 * _US + np.cumsum(gaps).astype(np.int64)
    times = times[times < start + span]
    dest = rng.integers(0, 3, size=len(times))
    for k, dst in enumerate(("192.0.2.44", "198.51.100.44", "203.0.113.44")):
        add("D", "10.1.1.30", dst, _PORT_443, times[dest == k], "not flagged", period_s=None,
            note="exponential gaps, mean 60 s over three destinations", expected_compat_notebook="not flagged")
    add("E", "10.1.1.40", "10.2.2.2", _PORT_445, start + np.arange(480, dtype=np.int64) * 30 * _US,
        "dropped: private destination", period_s=30, jitter_s=0, missed_pct=0,
        expected_compat_notebook="not flagged")
    f_times = []
    f_src = []
    for i in range(30):
        t = start + int(rng.integers(0, 120 * _US)) + np.arange(120, dtype=np.int64) * 120 * _US
        f_times.append(t)
        f_src.append(f"10.1.2.{i + 1}")
    srcs = np.repeat(np.arange(30), 120)
    allt = np.concatenate(f_times)
    parts.append(_csl_rows(env, rng, allt, src=(f_src, srcs), dst=(["93.184.216.34"], None), port=_PORT_443,
                           vendor=_FORTINET))
    pairs.append({"label": "F", "SourceIP": f_src, "DestinationIP": "93.184.216.34", "DestinationPort": 443,
                  "events": len(allt), "first_seen": _iso(int(allt.min())), "last_seen": _iso(int(allt.max())),
                  "expected": "dropped: destination degree 30 >= 25", "period_s": 120,
                  "expected_compat_notebook": "not flagged"})
    # Beyond the worked example, the spec's quality target: slow beacons, beacons on busy hosts, and
    # bursty browsing that must not be flagged.
    add("G", "10.1.1.23", "198.51.100.23", _PORT_443, periodic(day_us + 17 * _MIN, 1800, 48, 90.0, 0.10),
        "flagged", period_s=1800, jitter_s=90, missed_pct=10,
        note="slow beacon: 30 min period, 5 % jitter, ~10 % missed check-ins, whole day")
    add("H", "10.1.1.24", "203.0.113.80", _PORT_443, periodic(day_us + 41 * _US, 300, 288, 24.0, 0.20),
        "flagged", period_s=300, jitter_s=24, missed_pct=20,
        note="5 min beacon with 8 % jitter and ~20 % missed check-ins on a busy host")
    busy = day_us + np.sort(rng.integers(0, _DAY, size=2500))
    busy_dst = rng.choice(len(env.ext_ip), size=len(busy), p=env.ext_w)
    parts.append(_csl_rows(env, rng, busy, src=(["10.1.1.24"], None), dst=(env.ext_ip, busy_dst), port=None,
                           vendor=_FORTINET))
    sess_t: list[Any] = []
    sess_d: list[Any] = []
    t = day_us + 8 * _HOUR
    while t < day_us + 18 * _HOUR:
        n = int(rng.integers(5, 40))
        sess_t.append(t + np.cumsum(rng.uniform(1.0, 26.0, n) * _US).astype(np.int64))
        sess_d.append(np.full(n, int(rng.integers(0, 2))))
        t += int(rng.exponential(15 * 60) * _US) + 60 * _US
    bt = np.concatenate(sess_t)
    bd = np.concatenate(sess_d)
    for k, dst in enumerate(("198.51.100.150", "203.0.113.150")):
        add("I", "10.1.1.31", dst, _PORT_443, bt[bd == k], "not flagged", period_s=None,
            note="bursty browsing sessions: requests 1-26 s apart, sessions ~15 min apart")
    facts = {"id": "beacon", "table": "CommonSecurityLog", "technique": "T1071 Application Layer Protocol (C2)",
             "description": "beacon hunt spec worked example (A-F, 09:00-13:00 UTC, Fortinet) plus slow, busy-host "
                            "and bursty cases (G-I)", "DeviceVendor": "Fortinet", "pairs": pairs}
    return parts, facts


def _plant_spray(env: _Env, rng: np.random.Generator, day_us: int) -> tuple[list, dict]:
    import numpy as np

    attacker = "198.51.100.200"
    n = 60
    victims = rng.choice(len(env.upn), size=n, replace=False)
    start = day_us + 14 * _HOUR + 10 * _MIN
    times = start + np.sort(rng.integers(0, 40 * _MIN, size=n))
    results = np.full(n, _R_BADPW)
    hits = rng.choice(n, size=2, replace=False)
    results[hits] = _R_OK
    t = _signin_rows(env, rng, times, user=victims, ip=([attacker], None, "Amsterdam", "North Holland", "NL"),
                     app=np.full(n, _APP_PORTAL), result=results, client=np.full(n, _C_SCRIPT))
    facts = {"id": "password_spray", "table": "SigninLogs", "technique": "T1110.003 Password Spraying",
             "IPAddress": attacker, "ResultType": "50126", "start": _iso(int(times[0])),
             "end": _iso(int(times[-1])), "accounts_targeted": n, "failed_signins": int((results == _R_BADPW).sum()),
             "accounts": sorted(env.upn[i] for i in victims.tolist()),
             "successful_accounts": sorted(env.upn[int(victims[i])] for i in hits.tolist()),
             "UserAgent": _CLIENTS[_C_SCRIPT][1], "AppDisplayName": _APPS[_APP_PORTAL][0]}
    return [t], facts


def _plant_processes(env: _Env, rng: np.random.Generator, day_us: int) -> tuple[list, list[dict]]:
    import numpy as np

    ws = int(rng.integers(0, len(env.ws)))
    user = int(env.ws_user[ws])
    times = day_us + 10 * _HOUR + 15 * _MIN + np.arange(6, dtype=np.int64) * 37 * _MIN + rng.integers(0, _MIN, 6)
    masq = _security_rows(env, rng, times, event=np.full(6, _EV_4688), host=np.full(6, ws),
                          user=np.full(6, user), process=np.full(6, _P_MASQ))
    srv = _SERVERS.index("SRV-APP02")
    rare_t = np.array([day_us + 15 * _HOUR + 42 * _MIN + 17 * _US], dtype=np.int64)
    rare = _security_rows(env, rng, rare_t, event=np.array([_EV_4688]), host=np.array([len(env.ws) + srv]),
                          user=np.array([user]), process=np.array([_P_RARE]))
    account = f"{env.netbios}\\{env.sam[user]}"
    facts = [
        {"id": "masquerading_process", "table": "SecurityEvent", "technique": "T1036.005 Match Legitimate Name",
         "EventID": 4688, "Computer": f"{env.ws[ws]}.{env.domain}", "Account": account,
         "NewProcessName": _PROCESSES[_P_MASQ][0], "ParentProcessName": _PROCESSES[_P_MASQ][1],
         "CommandLine": _PROCESSES[_P_MASQ][2], "imitates": _PROCESSES[0][0], "count": len(times),
         "times": [_iso(int(t)) for t in times]},
        {"id": "rare_process", "table": "SecurityEvent", "technique": "T1003.001 LSASS Memory",
         "EventID": 4688, "Computer": f"SRV-APP02.{env.domain}", "Account": account,
         "NewProcessName": _PROCESSES[_P_RARE][0], "CommandLine": _PROCESSES[_P_RARE][2], "count": 1,
         "times": [_iso(int(rare_t[0]))],
         "note": "the only execution of this process in the data set"},
    ]
    return [masq, rare], facts


# -- background rows --------------------------------------------------------------------------------


def _background(name: str, env: _Env, rng: np.random.Generator, ts: Any) -> pa.Table:
    import numpy as np

    n = len(ts)
    if name == "CommonSecurityLog":
        n_ws, n_srv, n_lin = len(env.ws), len(_SERVERS), len(_LINUX)
        hosts = env.ws_ip + env.srv_ip + env.lin_ip
        vendor_of = np.concatenate([np.where(np.arange(n_ws) < 100, 0, 1), np.full(n_srv, 2), np.full(n_lin, 3)])
        src = rng.choice(len(hosts), size=n, p=env.src_w)
        east_west = rng.random(n) < 0.12
        dst = rng.choice(len(env.ext_ip), size=n, p=env.ext_w)
        internal = env.srv_ip
        dst_all = env.ext_ip + internal
        dst = np.where(east_west, len(env.ext_ip) + rng.integers(0, len(internal), n), dst)
        user = np.where(np.arange(len(hosts)) < n_ws, np.concatenate([env.ws_user, np.zeros(n_srv + n_lin, int)]),
                        -1)[src]
        return _csl_rows(env, rng, ts, src=(hosts, src), dst=(dst_all, dst), port=None, vendor=vendor_of[src],
                         east_west=east_west, user=user)
    if name == "SecurityEvent":
        w = _norm([e[3] for e in _EVENTS])
        event = rng.choice(len(_EVENTS), size=n, p=w)
        n_ws = len(env.ws)
        host = np.where(rng.random(n) < 0.85, rng.integers(0, n_ws, n), n_ws + rng.integers(0, len(_SERVERS), n))
        kinds = np.array([e[4] for e in _EVENTS])[event]
        host = np.where(kinds == "krb", n_ws + rng.integers(0, 2, n), host)  # Kerberos/NTLM: the DCs
        primary = np.concatenate([env.ws_user, rng.integers(0, len(env.sam), len(_SERVERS))])[host]
        user = np.where(rng.random(n) < 0.8, primary, rng.integers(0, len(env.sam), n))
        pw = _norm([p[3] for p in _PROCESSES])
        process = rng.choice(len(_PROCESSES), size=n, p=pw)
        return _security_rows(env, rng, ts, event=event, host=host, user=user, process=process)
    if name == "SigninLogs":
        user = rng.integers(0, len(env.upn), n)
        result = rng.choice(len(_RESULTS), size=n, p=_norm([r[4] for r in _RESULTS]))
        client = rng.choice(len(_CLIENTS), size=n, p=_norm([c[5] for c in _CLIENTS]))
        app = rng.choice(len(_APPS), size=n, p=_norm([a[3] for a in _APPS]))
        # Mistyped passwords come from a user's own address; shared office addresses see successes,
        # MFA prompts and interrupts, so no background address fails for many accounts.
        at_home = (rng.random(n) < 0.35) | (result == _R_BADPW)
        ip = np.where(at_home, 2 + user, rng.integers(0, 2, n))
        cities = np.concatenate([[0, 0], env.home_city])
        ip_vocab = env.office_ip + env.home_ip
        return _signin_rows(env, rng, ts, user=user, ip=(ip_vocab, ip, cities), app=app, result=result,
                            client=client)
    if name == "Syslog":
        return _syslog_rows(env, rng, ts)
    raise AssertionError(name)


# -- row assembly (one function per table: background and planted rows go through the same code) ------


def _csl_rows(env: _Env, rng: np.random.Generator, ts: Any, *, src: tuple, dst: tuple, port: int | None,
              vendor: Any, east_west: Any = None, user: Any = None) -> pa.Table:
    import numpy as np

    n = len(ts)
    r = _Rows("CommonSecurityLog", ts)
    r.const("TenantId", env.tenant_id)
    r.const("SourceSystem", "OpsManager")
    r.const("Computer", "cef-collector-01")
    r.const("EventCount", 1)
    vendor = np.broadcast_to(np.asarray(vendor), (n,))
    r.group(vendor, DeviceVendor=[v[0] for v in _VENDORS], DeviceProduct=[v[1] for v in _VENDORS],
            DeviceVersion=[v[2] for v in _VENDORS], DeviceName=[v[3] for v in _VENDORS])
    ew = np.zeros(n, bool) if east_west is None else east_west
    if port is None:
        out_w = _norm([p[3] for p in _PORTS])
        in_w = _norm([p[4] for p in _PORTS])
        port_idx = np.where(ew, rng.choice(len(_PORTS), n, p=in_w), rng.choice(len(_PORTS), n, p=out_w))
        denied = rng.random(n) < np.where(port_idx == 5, 0.5, 0.04)
    else:
        port_idx = np.full(n, port)
        denied = np.zeros(n, bool)
    r.group(port_idx, Protocol=[p[1] for p in _PORTS], ApplicationProtocol=[p[2] for p in _PORTS])
    r.num("DestinationPort", np.array([p[0] for p in _PORTS])[port_idx])
    r.group(vendor * 2 + denied, Activity=[a[0] for a in _ACTIONS], DeviceAction=[a[1] for a in _ACTIONS],
            DeviceEventClassID=[a[2] for a in _ACTIONS], LogSeverity=[a[3] for a in _ACTIONS])
    r.group(ew.astype(np.int32), CommunicationDirection=["Outbound", "Internal"])
    r.group(_idx(src[1], n), SourceIP=src[0])
    r.group(_idx(dst[1], n), DestinationIP=dst[0])
    r.num("SourcePort", rng.integers(49152, 65536, n))
    if user is not None:
        # Only the Palo Alto firewall maps addresses to users (User-ID).
        mask = (user < 0) | (vendor != 0)
        r.group(np.where(mask, 0, user), mask=mask,
                SourceUserName=[f"{env.domain.split('.')[0]}\\{s}" for s in env.sam])
    sent = rng.lognormal(6.5, 1.1, n).astype(np.int64) + 60
    received = np.where(denied, 0, rng.lognormal(8.5, 1.8, n).astype(np.int64) + 40)
    r.num("SentBytes", sent)
    r.num("ReceivedBytes", received)
    return r.table()


def _security_rows(env: _Env, rng: np.random.Generator, ts: Any, *, event: Any, host: Any, user: Any,
                   process: Any) -> pa.Table:
    import numpy as np

    n = len(ts)
    n_ws = len(env.ws)
    r = _Rows("SecurityEvent", ts)
    r.const("TenantId", env.tenant_id)
    r.const("SourceSystem", "OpsManager")
    r.const("ManagementGroupName", f"AOI-{env.workspace_id}")
    r.const("Channel", "Security")
    r.const("EventSourceName", "Microsoft-Windows-Security-Auditing")
    r.group(event, Activity=[f"{e[0]} - {e[1]}" for e in _EVENTS])
    r.num("EventID", np.array([e[0] for e in _EVENTS])[event])
    r.num("Task", np.array([e[2] for e in _EVENTS])[event])
    names = env.ws + list(_SERVERS)
    r.group(host, Computer=[f"{h}.{env.domain}" for h in names])
    kinds = np.array([e[4] for e in _EVENTS])[event]
    system = np.array([p[4] for p in _PROCESSES])[process] & np.isin(kinds, ("proc", "exit"))
    # Account: a user, or the computer account for system processes.
    n_u = len(env.sam)
    acct = np.where(system, n_u + host, user)
    accounts = [f"{env.netbios}\\{s}" for s in env.sam] + [f"{env.netbios}\\{h}$" for h in names]
    r.group(acct, Account=accounts, AccountType=["User"] * n_u + ["Machine"] * len(names))
    subject = np.isin(kinds, ("proc", "exit", "priv", "logon"))
    r.group(acct, mask=~subject, SubjectUserName=env.sam + [f"{h}$" for h in names],
            SubjectUserSid=env.sid + ["S-1-5-18"] * len(names))
    r.group(np.zeros(n, np.int32), mask=~subject, SubjectDomainName=[env.netbios])
    r.text("SubjectLogonId", _hex_ids(rng, n, 6), mask=~subject)
    target = np.isin(kinds, ("logon", "fail", "logoff", "krb"))
    r.group(user, mask=~target, TargetUserName=env.sam, TargetUserSid=env.sid)
    r.group(np.zeros(n, np.int32), mask=~target, TargetDomainName=[env.netbios])
    is_logon = np.isin(kinds, ("logon", "fail", "logoff"))
    logon = rng.choice(len(_LOGONS), size=n, p=_norm([lg[4] for lg in _LOGONS]))
    r.group(logon, mask=~is_logon, LogonTypeName=[lg[1] for lg in _LOGONS])
    r.num("LogonType", np.array([lg[0] for lg in _LOGONS])[logon], mask=~is_logon)
    auth = is_logon & (kinds != "logoff")
    r.group(logon, mask=~auth, LogonProcessName=[lg[2] for lg in _LOGONS],
            AuthenticationPackageName=[lg[3] for lg in _LOGONS])
    remote = np.array([lg[5] for lg in _LOGONS])[logon]
    peer = rng.integers(0, n_ws, n)
    with_peer = (auth & remote) | (kinds == "krb")
    r.group(peer, mask=~with_peer, IpAddress=env.ws_ip, WorkstationName=env.ws)
    r.text("TargetLogonId", _hex_ids(rng, n, 6), mask=~is_logon)
    fail = kinds == "fail"
    r.group(np.zeros(n, np.int32), mask=~fail, Status=["0xc000006d"], SubStatus=["0xc000006a"],
            FailureReason=["%%2313"])
    proc = kinds == "proc"
    r.group(process, mask=~proc, NewProcessName=[p[0] for p in _PROCESSES],
            ParentProcessName=[p[1] for p in _PROCESSES], CommandLine=[p[2] for p in _PROCESSES],
            Process=[p[0].rsplit("\\", 1)[1] for p in _PROCESSES])
    r.group(np.zeros(n, np.int32), mask=~proc, TokenElevationType=["%%1938"], MandatoryLabel=["S-1-16-8192"])
    r.text("NewProcessId", _hex_ids(rng, n, 4), mask=~proc)
    exited = kinds == "exit"
    r.group(process, mask=~exited, ProcessName=[p[0] for p in _PROCESSES])
    r.text("ProcessId", _hex_ids(rng, n, 4), mask=~(proc | exited))
    priv = kinds == "priv"
    r.group(np.zeros(n, np.int32), mask=~priv,
            PrivilegeList=["SeSecurityPrivilege\r\n\t\t\tSeBackupPrivilege\r\n\t\t\tSeRestorePrivilege\r\n\t\t\t"
                           "SeDebugPrivilege\r\n\t\t\tSeImpersonatePrivilege"])
    return r.table()


def _signin_rows(env: _Env, rng: np.random.Generator, ts: Any, *, user: Any, ip: tuple, app: Any, result: Any,
                 client: Any) -> pa.Table:
    import numpy as np

    n = len(ts)
    r = _Rows("SigninLogs", ts)
    r.time("CreatedDateTime", ts)
    for col, value in (("Category", "SignInLogs"), ("OperationName", "Sign-in activity"),
                       ("OperationVersion", "1.0"), ("Level", "4"), ("SourceSystem", "Azure AD"),
                       ("AADTenantId", env.tenant_id), ("TokenIssuerType", "AzureAD"), ("UserType", "Member"),
                       ("RiskLevelDuringSignIn", "none"), ("RiskState", "none")):
        r.const(col, value)
    r.flag("IsRisky", np.zeros(n, bool))
    r.group(user, UserPrincipalName=env.upn, UserDisplayName=env.display, Identity=env.display,
            UserId=env.user_id)
    r.group(app, AppDisplayName=[a[0] for a in _APPS], AppId=[a[1] for a in _APPS],
            ResourceDisplayName=[a[2] for a in _APPS])
    r.group(result, ResultType=[x[0] for x in _RESULTS], ResultDescription=[x[1] for x in _RESULTS],
            ConditionalAccessStatus=[x[3] for x in _RESULTS],
            Status=[json.dumps({"errorCode": int(x[0])} if x[2] is None else
                               {"errorCode": int(x[0]), "failureReason": x[2]}, separators=(",", ":"))
                    for x in _RESULTS])
    mfa = rng.random(n) < 0.4
    r.group(mfa.astype(np.int32), AuthenticationRequirement=["singleFactorAuthentication",
                                                             "multiFactorAuthentication"])
    r.group(client, ClientAppUsed=[c[0] for c in _CLIENTS], UserAgent=[c[1] for c in _CLIENTS],
            DeviceDetail=[json.dumps({"deviceId": "", "operatingSystem": c[2], "browser": c[3]},
                                     separators=(",", ":")) for c in _CLIENTS])
    r.flag("IsInteractive", np.array([c[4] for c in _CLIENTS])[client])
    if len(ip) == 3:
        vocab, idx, cities = ip
        places = [_CITIES[c] for c in cities.tolist()]
    else:
        vocab, idx, city, state, country = ip
        places = [(city, state, country, 52.37, 4.90)]
    r.group(_idx(idx, n), IPAddress=vocab, Location=[p[2] for p in places],
            LocationDetails=[json.dumps({"city": p[0], "state": p[1], "countryOrRegion": p[2],
                                         "geoCoordinates": {"latitude": p[3], "longitude": p[4]}},
                                        separators=(",", ":")) for p in places])
    r.text("Id", _guids(rng, n))
    r.text("CorrelationId", _guids(rng, n))
    return r.table()


def _syslog_rows(env: _Env, rng: np.random.Generator, ts: Any) -> pa.Table:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = len(ts)
    r = _Rows("Syslog", ts)
    r.time("EventTime", ts)
    r.const("SourceSystem", "Linux")
    host = rng.integers(0, len(_LINUX), n)
    r.group(host, Computer=list(_LINUX), HostName=list(_LINUX), HostIP=env.lin_ip)
    tpl = rng.choice(len(_SYSLOG), size=n, p=_norm([s[4] for s in _SYSLOG]))
    r.group(tpl, Facility=[s[0] for s in _SYSLOG], SeverityLevel=[s[1] for s in _SYSLOG],
            ProcessName=[s[2] for s in _SYSLOG])
    r.num("ProcessID", rng.integers(300, 65000, n))
    slots = {
        "user": lambda m: pa.array(env.sam).take(pa.array(rng.integers(0, len(env.sam), m))),
        "iip": lambda m: pa.array(env.ws_ip).take(pa.array(rng.integers(0, len(env.ws_ip), m))),
        "eip": lambda m: pa.array(env.ext_ip).take(pa.array(rng.integers(0, len(env.ext_ip), m))),
        "port": lambda m: pa.array(rng.integers(1024, 65536, m)).cast(pa.string()),
        "uid": lambda m: pa.array(rng.integers(1001, 1200, m)).cast(pa.string()),
        "n": lambda m: pa.array(rng.integers(1, 9, m)).cast(pa.string()),
        "bad": lambda m: pa.array(_BAD_USERS).take(pa.array(rng.integers(0, len(_BAD_USERS), m))),
    }
    pieces: list[Any] = []
    order: list[Any] = []
    for k, spec in enumerate(_SYSLOG):
        rows = np.flatnonzero(tpl == k)
        if not len(rows):
            continue
        parts: list[Any] = []
        values: dict[str, Any] = {}
        for literal, slot in _template_parts(spec[3]):
            if literal:
                parts.append(literal)
            if slot == "hip":
                parts.append(pa.array(env.lin_ip).take(pa.array(host[rows])))
            elif slot:
                # A slot named twice in a template repeats one value (sudo's user and home folder).
                if slot not in values:
                    values[slot] = slots[slot](len(rows))
                parts.append(values[slot])
        if any(isinstance(p, pa.Array) for p in parts):
            pieces.append(pc.binary_join_element_wise(*parts, ""))
        else:
            pieces.append(pa.array([spec[3]]).take(pa.array(np.zeros(len(rows), np.int32))))
        order.append(rows)
    if pieces:
        msgs = pa.concat_arrays(pieces)
        inverse = np.empty(n, np.int64)
        inverse[np.concatenate(order)] = np.arange(n)
        r.text("SyslogMessage", msgs.take(pa.array(inverse)))
    else:
        r.text("SyslogMessage", pa.array([], pa.string()))
    return r.table()


def _template_parts(template: str) -> list[tuple[str, str | None]]:
    """``'a {x} b'`` -> ``[('a ', 'x'), (' b', None)]``."""
    out: list[tuple[str, str | None]] = []
    rest = template
    while "{" in rest:
        head, _, tail = rest.partition("{")
        slot, _, rest = tail.partition("}")
        out.append((head, slot))
    out.append((rest, None))
    return out


def _idx(idx: Any, n: int) -> Any:
    import numpy as np

    return np.zeros(n, np.int64) if idx is None else np.asarray(idx)


class _Rows:
    """The columns of one chunk of one table, in the Arrow types of the table's KQL schema.

    Vocabulary columns are dictionary arrays; columns given in one ``group`` call share one index
    array, which the JSON renderer turns into one fragment per distinct value.
    """

    def __init__(self, table: str, ts: Any):
        from kqlmagic_plus.lake import schema_for

        self.name = table
        self.types = dict(schema_for(table))
        self.n = len(ts)
        self.cols: dict[str, Any] = {}
        self.time("TimeGenerated", ts)
        self.const("Type", table)

    def _type(self, col: str) -> str:
        if col not in self.types:
            raise AssertionError(f"{self.name} has no column {col!r}")
        return self.types[col]

    def time(self, col: str, us: Any) -> None:
        import pyarrow as pa

        self._type(col)
        self.cols[col] = pa.array(us, pa.timestamp("us", tz="UTC"))

    def const(self, col: str, value: Any) -> None:
        import numpy as np

        if isinstance(value, int):
            self.num(col, np.full(self.n, value))
        else:
            self.group(np.zeros(self.n, np.int32), **{col: [value]})

    def group(self, idx: Any, mask: Any = None, **columns: Sequence[str]) -> None:
        import numpy as np
        import pyarrow as pa

        idx = np.broadcast_to(np.asarray(idx), (self.n,)).astype(np.int32)
        indices = pa.array(idx, mask=None if mask is None or not mask.any() else mask)
        for col, values in columns.items():
            if self._type(col) not in ("string", "dynamic"):
                raise AssertionError(f"{self.name}.{col} is {self._type(col)}, not a string")
            self.cols[col] = pa.DictionaryArray.from_arrays(indices, pa.array(list(values), pa.string()))

    def num(self, col: str, values: Any, mask: Any = None) -> None:
        import pyarrow as pa

        from kqlmagic_plus.kqltypes import arrow_type

        typ = arrow_type(self._type(col))
        self.cols[col] = pa.array(values, typ, mask=None if mask is None or not mask.any() else mask)

    def flag(self, col: str, values: Any) -> None:
        self.num(col, values)

    def text(self, col: str, values: Any, mask: Any = None) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self._type(col)
        if mask is not None and mask.any():
            values = pc.if_else(pa.array(mask), pa.scalar(None, pa.string()), values)
        self.cols[col] = values

    def table(self) -> pa.Table:
        import pyarrow as pa

        return pa.table(self.cols)


# -- vectorised text --------------------------------------------------------------------------------


def _fixed_width(chars: Any) -> pa.Array:
    """An (n, w) uint8 array of ASCII as n strings of width w, without a Python loop."""
    import numpy as np
    import pyarrow as pa

    n, w = chars.shape
    big = n * w >= 2**31
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64 if big else np.int32)
    data = pa.py_buffer(np.ascontiguousarray(chars).tobytes())
    cls = pa.LargeStringArray if big else pa.StringArray
    return cls.from_buffers(n, pa.py_buffer(offsets.tobytes()), data)


def _put_digits(out: Any, col: int, values: Any, width: int) -> None:
    for k in range(width):
        out[:, col + width - 1 - k] = values // 10**k % 10 + 48


def _iso_chars(us: Any) -> Any:
    """``YYYY-MM-DDTHH:MM:SS.fffffffZ`` (the export's seven fractional digits) for each microsecond time."""
    import numpy as np

    us = np.asarray(us, dtype=np.int64)
    secs, frac = np.divmod(us, _US)
    days, sod = np.divmod(secs, 86_400)
    d = days.astype("datetime64[D]")
    month_start = d.astype("datetime64[M]")
    year = month_start.astype("datetime64[Y]").astype(np.int64) + 1970
    month = month_start.astype(np.int64) % 12 + 1
    day = (d - month_start).astype(np.int64) + 1
    out = np.empty((len(us), 28), np.uint8)
    _put_digits(out, 0, year, 4)
    out[:, 4] = out[:, 7] = ord("-")
    _put_digits(out, 5, month, 2)
    _put_digits(out, 8, day, 2)
    out[:, 10] = ord("T")
    _put_digits(out, 11, sod // 3600, 2)
    out[:, 13] = out[:, 16] = ord(":")
    _put_digits(out, 14, sod // 60 % 60, 2)
    _put_digits(out, 17, sod % 60, 2)
    out[:, 19] = ord(".")
    _put_digits(out, 20, frac, 6)
    out[:, 26] = ord("0")
    out[:, 27] = ord("Z")
    return out


def _with_affixes(chars: Any, prefix: str, suffix: str) -> Any:
    import numpy as np

    n = chars.shape[0]
    pre = np.broadcast_to(np.frombuffer(prefix.encode(), np.uint8), (n, len(prefix)))
    suf = np.broadcast_to(np.frombuffer(suffix.encode(), np.uint8), (n, len(suffix)))
    return np.concatenate([pre, chars, suf], axis=1)


_HEXDIGITS = b"0123456789abcdef"


def _guids(rng: np.random.Generator, n: int) -> pa.Array:
    import numpy as np

    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexd = np.empty((n, 32), np.uint8)
    table = np.frombuffer(_HEXDIGITS, np.uint8)
    hexd[:, 0::2] = table[b >> 4]
    hexd[:, 1::2] = table[b & 15]
    out = np.full((n, 36), ord("-"), np.uint8)
    for dst, src, w in ((0, 0, 8), (9, 8, 4), (14, 12, 4), (19, 16, 4), (24, 20, 12)):
        out[:, dst:dst + w] = hexd[:, src:src + w]
    return _fixed_width(out)


def _hex_ids(rng: np.random.Generator, n: int, digits: int) -> pa.Array:
    """Windows-style ``0x1a2b3c`` identifiers."""
    import numpy as np

    v = rng.integers(0x1000, 16**digits, size=n, dtype=np.int64)
    out = np.empty((n, digits + 2), np.uint8)
    out[:, 0] = ord("0")
    out[:, 1] = ord("x")
    table = np.frombuffer(_HEXDIGITS, np.uint8)
    for k in range(digits):
        out[:, 2 + digits - 1 - k] = table[v >> (4 * k) & 15]
    return _fixed_width(out)


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_escape_array(arr: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    if not pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
        return arr
    for raw, esc in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        arr = pc.replace_substring(arr, raw, esc)
    if pc.any(pc.match_substring_regex(arr, r"[\x00-\x1f]")).as_py():
        raise AssertionError("control characters in generated text")
    return arr


def render_json_lines(table: pa.Table, kql_types: dict[str, str]) -> pa.Array:
    """One JSON object per row, each ending in a newline, as an Arrow string array.

    Null values are left out of their record, as the export does. *table* must hold TimeGenerated.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    n = table.num_rows
    if n == 0:
        return pa.array([], pa.string())
    parts: list[Any] = []
    groups: dict[tuple[int, int], list[tuple[str, pa.DictionaryArray]]] = {}
    slots: dict[tuple[int, int], int] = {}
    for name in table.column_names:
        col = table.column(name).combine_chunks()
        kql = kql_types.get(name, "string")
        if name == "TimeGenerated":
            us = col.cast(pa.int64()).to_numpy(zero_copy_only=False)
            parts.insert(0, _fixed_width(_with_affixes(_iso_chars(us), '{"TimeGenerated":"', '"')))
            continue
        key = ',"' + name + '":'
        if pa.types.is_dictionary(col.type):
            gkey = (col.indices.buffers()[1].address, col.indices.offset)
            if gkey not in groups:
                # The group's fragment goes where its first column stands, keeping the schema's order.
                slots[gkey] = len(parts)
                parts.append(None)
            groups.setdefault(gkey, []).append((name, col))
        elif pa.types.is_timestamp(col.type):
            us = col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
            frag = _fixed_width(_with_affixes(_iso_chars(us), key + '"', '"'))
            parts.append(pc.if_else(col.is_null(), pa.scalar(None, pa.string()), frag) if col.null_count else frag)
        elif pa.types.is_boolean(col.type):
            parts.append(pa.array([key + "false", key + "true"]).take(col.cast(pa.int8())))
        elif pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            s = col.cast(pa.string())
            parts.extend([pc.binary_join_element_wise(key, s, "")] if col.null_count else [key, s])
        else:
            s = col if kql == "dynamic" else _json_escape_array(col.cast(pa.string()))
            q = "" if kql == "dynamic" else '"'
            parts.extend([pc.binary_join_element_wise(key + q, s, q, "")] if col.null_count else [key + q, s, q])
    for gkey, members in groups.items():
        indices = members[0][1].indices
        vocab = [d[1].dictionary.to_pylist() for d in members]
        frags = []
        for j in range(len(vocab[0])):
            text = []
            for (name, _), values in zip(members, vocab, strict=True):
                v = values[j]
                if v is None:
                    continue
                raw = kql_types.get(name) == "dynamic"
                text.append(f',"{name}":' + (v if raw else json.dumps(v)))
            frags.append("".join(text))
        if len(frags) == 1 and indices.null_count == 0:
            parts[slots[gkey]] = frags[0]
        else:
            parts[slots[gkey]] = pa.array(frags, pa.string()).take(indices)
    return pc.binary_join_element_wise(*parts, "}\n", "", null_handling="replace", null_replacement="")


# -- chunks, arrival times and files ------------------------------------------------------------------


def _generate_table(name: str, env: _Env, seed: int, day0_us: int, days: int, per_day: int, plants: Any,
                    late_fraction: float, writer: _Writer, workers: int) -> None:
    import numpy as np

    tid = _TABLE_ID[name]
    diurnal = _norm(_DIURNAL)
    p_ts, p_rows = plants if plants is not None else (np.zeros(0, np.int64), None)
    kql_types = dict(_kql_types(name))

    def chunk(day: int, hour: int, count: int) -> list[tuple[Any, Any]]:
        """The rows of one hour of TimeGenerated, as segments sorted by arrival time."""
        import pyarrow as pa

        rng = np.random.default_rng([seed, tid, day, hour])
        start = day0_us + day * _DAY + hour * _HOUR
        segments = []
        if count:
            ts = start + np.sort(rng.integers(0, _HOUR, size=count))
            arrival = ts + _latency(rng, count, late_fraction)
            # Rows are built in arrival order, so the writer never has to move rendered text.
            order = np.argsort(arrival, kind="stable")
            segments.append((arrival[order], _background(name, env, rng, ts[order])))
        lo, hi = np.searchsorted(p_ts, [start, start + _HOUR])
        if hi > lo:
            arrival = p_ts[lo:hi] + _latency(rng, int(hi - lo), late_fraction)
            order = np.argsort(arrival, kind="stable")
            segments.append((arrival[order], p_rows.slice(lo, hi - lo).take(pa.array(order))))
        if writer.fmt == "json":
            return [(a, render_json_lines(t, kql_types)) for a, t in segments]
        # Plain columns: concatenating and taking dictionary columns with differing dictionaries gave
        # Parquet files whose bytes varied from run to run; the Parquet writer dictionary-encodes anyway.
        return [(a, _plain(t)) for a, t in segments]

    jobs = []
    for day in range(days):
        day_start = day0_us + day * _DAY
        lo, hi = np.searchsorted(p_ts, [day_start, day_start + _DAY])
        background = max(0, per_day - int(hi - lo))
        counts = np.random.default_rng([seed, tid, day, 99]).multinomial(background, diurnal)
        jobs.extend((day, hour, int(counts[hour])) for hour in range(24))

    depth = max(1, workers) + 1
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        it = iter(jobs)
        for job in it:
            pending.append((job, pool.submit(chunk, *job)))
            if len(pending) >= depth:
                break
        while pending:
            (day, hour, _), fut = pending.popleft()
            nxt = next(it, None)
            if nxt is not None:
                pending.append((nxt, pool.submit(chunk, *nxt)))
            for arrival, payload in fut.result():
                writer.add(arrival, payload)
            # Later chunks hold TimeGenerated >= hour_end, so nothing arrives before hour_end - _MAX_EARLY.
            writer.flush(before=day0_us + day * _DAY + (hour + 1) * _HOUR - _MAX_EARLY)
    writer.flush(before=None)


def _plain(table: pa.Table) -> pa.Table:
    import pyarrow as pa

    cols = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in table.columns]
    return pa.table(cols, names=table.column_names)


def _kql_types(name: str) -> list[tuple[str, str]]:
    from kqlmagic_plus.lake import schema_for

    return schema_for(name)


def _latency(rng: np.random.Generator, n: int, late_fraction: float) -> Any:
    """Microseconds from TimeGenerated to arrival in the workspace."""
    import numpy as np

    lat = (20 * _US + rng.exponential(40.0, n) * _US).astype(np.int64)
    lat = np.minimum(lat, 5 * _MIN)
    late = rng.random(n) < late_fraction
    lat[late] += rng.integers(10 * _MIN, 36 * _HOUR, int(late.sum()))
    early = rng.random(n) < 0.001
    lat[early] = -rng.integers(0, _MAX_EARLY, int(early.sum()))
    return lat


class _Writer:
    """Files records under the folder of their arrival time, once no later chunk can add to it.

    Segments are (arrival times, payload) pairs sorted by arrival; a folder's file is the
    concatenation of its runs from each segment, in the order the segments were added.
    """

    def __init__(self, container: str, fmt: str, layout: str, max_rows: int | None, pool: Any = None):
        self.container = container
        self.fmt = fmt
        #: Parquet encoding releases the GIL: files are written on this pool while chunks are built.
        self.pool = pool
        self.pending_writes: list[Any] = []
        self.step, self.stem = _LAYOUTS[layout]
        self.max_rows = max_rows
        self.segments: list[tuple[Any, Any]] = []
        self.rows = self.files = self.bytes = 0

    def add(self, arrival: Any, payload: Any) -> None:
        if len(arrival):
            self.segments.append((arrival, payload))

    def flush(self, before: int | None) -> None:
        """Write every folder that ends at or before *before* (all of them when None)."""
        import numpy as np
        import pyarrow as pa

        runs: dict[int, list[tuple[Any, int, int]]] = {}
        kept: list[tuple[Any, Any]] = []
        boundary = None if before is None else before // self.step * self.step
        for arrival, payload in self.segments:
            folder = arrival // self.step * self.step
            cut = len(folder) if boundary is None else int(np.searchsorted(folder, boundary))
            if cut:
                starts = np.flatnonzero(np.diff(folder[:cut], prepend=folder[0] - 1))
                ends = np.append(starts[1:], cut)
                for lo, hi in zip(starts.tolist(), ends.tolist(), strict=True):
                    runs.setdefault(int(folder[lo]), []).append((payload, lo, hi))
            if cut < len(folder):
                kept.append((arrival[cut:], payload.slice(cut)))
        for when in sorted(runs):
            self._write(when, runs[when])
        # Bound the files in flight (and the tables they hold), and surface write errors early.
        while len(self.pending_writes) > 64 or (before is None and self.pending_writes):
            self.bytes += self.pending_writes.pop(0).result()
        if len(kept) > 1 or (kept and len(kept[0][0]) * 4 < len(self.segments[-1][0])):
            # Copy what waits (the next minutes, and late rows) so a big chunk's buffers can go.
            arrival = np.concatenate([a for a, _ in kept])
            order = pa.array(np.argsort(arrival, kind="stable"))
            if self.fmt == "json":
                payload = pa.concat_arrays([p.cast(pa.large_string()) for _, p in kept]).take(order)
            else:
                payload = pa.concat_tables([p for _, p in kept], promote_options="default").take(order)
            kept = [(np.sort(arrival, kind="stable"), payload)]
        self.segments = kept

    def _write(self, when_us: int, runs: list[tuple[Any, int, int]]) -> None:
        import pyarrow as pa

        when = _dt(when_us)
        base = os.path.join(self.container, f"y={when.year:04d}", f"m={when.month:02d}", f"d={when.day:02d}",
                            f"h={when.hour:02d}", f"m={when.minute:02d}")
        os.makedirs(base, exist_ok=True)
        for part, pieces in enumerate(_split_rows(runs, self.max_rows)):
            path = os.path.join(base, f"{self.stem}{f'_{part}' if part else ''}.{self.fmt}")
            if self.fmt == "json":
                with open(path, "wb") as f:
                    for payload, lo, hi in pieces:
                        data = _text_bytes(payload, lo, hi)
                        f.write(data)
                        self.bytes += len(data)
            else:
                table = pa.concat_tables([p.slice(lo, hi - lo) for p, lo, hi in pieces], promote_options="default")
                if self.pool is None:
                    self.bytes += _write_parquet(table, path)
                else:
                    self.pending_writes.append(self.pool.submit(_write_parquet, table, path))
            self.files += 1
            self.rows += sum(hi - lo for _, lo, hi in pieces)


def _write_parquet(table: pa.Table, path: str) -> int:
    import pyarrow.parquet as pq

    pq.write_table(table, path, compression="zstd")
    return os.path.getsize(path)


def _split_rows(runs: list[tuple[Any, int, int]], max_rows: int | None) -> list[list[tuple[Any, int, int]]]:
    """The runs of one folder cut into files of at most *max_rows* rows (overflow blobs)."""
    if not max_rows:
        return [runs]
    files: list[list[tuple[Any, int, int]]] = [[]]
    room = max_rows
    for payload, lo, hi in runs:
        while lo < hi:
            if not room:
                files.append([])
                room = max_rows
            take = min(room, hi - lo)
            files[-1].append((payload, lo, lo + take))
            lo += take
            room -= take
    return files


def _text_bytes(arr: pa.Array, lo: int, hi: int) -> memoryview:
    """The UTF-8 bytes of rows lo..hi of a string array, without copying them."""
    import numpy as np
    import pyarrow as pa

    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    size = np.dtype(width).itemsize
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], width, count=len(arr) + 1, offset=arr.offset * size)
    return memoryview(bufs[2])[int(offsets[lo]):int(offsets[hi])]


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(datagen_main())
