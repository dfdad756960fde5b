"""The planted attacks and their ground truth, all on the last day.

Planted rows go through the same row builders as the background, so they differ from it only in what
the attack makes them say.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _DAY, _HOUR, _MIN, _US, _iso
from kqlmagic_plus.demo.datagen.environment import _SERVERS, _Env
from kqlmagic_plus.demo.datagen.identity import _signin_rows
from kqlmagic_plus.demo.datagen.network import _csl_rows
from kqlmagic_plus.demo.datagen.vocab import (
    _APP_PORTAL,
    _APPS,
    _C_SCRIPT,
    _CLIENTS,
    _EV_4688,
    _FORTINET,
    _P_MASQ,
    _P_RARE,
    _PORT_443,
    _PORT_445,
    _PORT_8443,
    _PORTS,
    _PROCESSES,
    _R_BADPW,
    _R_OK,
)
from kqlmagic_plus.demo.datagen.windows import _security_rows

if TYPE_CHECKING:
    import numpy as np


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
