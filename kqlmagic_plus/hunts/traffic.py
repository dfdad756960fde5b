"""Labelled firewall traffic for measuring the beacon hunt: the spec's worked example, a day of
labelled beacons and benign look-alikes, and a fast Parquet lake writer for the benchmarks.

Everything is drawn from a seeded numpy generator and built column-wise as Arrow: no Python loop
over events.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from typing import Any

_US = 1_000_000
_MIN = 60 * _US
_HOUR = 3600 * _US
_DAY = 86_400 * _US

COLUMNS = ("TimeGenerated", "SourceIP", "DestinationIP", "DestinationPort", "Protocol", "DeviceVendor",
           "SentBytes", "ReceivedBytes", "Activity")


def day_us(d: date | str) -> int:
    d = date.fromisoformat(d) if isinstance(d, str) else d
    return (d.toordinal() - date(1970, 1, 1).toordinal()) * _DAY


@dataclass
class Traffic:
    """Event columns being collected (numpy arrays / lists) and the label of each planted pair."""

    rng: Any
    vendor: str = "Fortinet"
    parts: list[dict[str, Any]] = field(default_factory=list)
    labels: list[dict[str, Any]] = field(default_factory=list)

    def add(self, times: Any, src: str | list[str], dst: str | list[str], port: int | Any, *,
            protocol: str = "TCP", label: dict[str, Any] | None = None) -> None:
        import numpy as np

        times = np.asarray(times, dtype=np.int64)
        n = len(times)
        self.parts.append({"t": times, "s": np.broadcast_to(np.asarray(src, dtype=object), (n,)),
                           "d": np.broadcast_to(np.asarray(dst, dtype=object), (n,)),
                           "p": np.broadcast_to(np.asarray(port, dtype=np.int64), (n,)), "proto": protocol})
        if label is not None:
            self.labels.append({**label, "events": n})

    def table(self) -> Any:
        """All events as an Arrow table with the CommonSecurityLog columns, in time order."""
        import numpy as np
        import pyarrow as pa

        t = np.concatenate([p["t"] for p in self.parts])
        order = np.argsort(t, kind="stable")
        n = len(t)
        s = np.concatenate([p["s"] for p in self.parts])[order]
        d = np.concatenate([p["d"] for p in self.parts])[order]
        port = np.concatenate([p["p"] for p in self.parts])[order]
        proto = np.concatenate([np.full(len(p["t"]), p["proto"], dtype=object) for p in self.parts])[order]
        return pa.table({
            "TimeGenerated": pa.array(t[order], pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "SourceIP": pa.array(s, pa.string()), "DestinationIP": pa.array(d, pa.string()),
            "DestinationPort": pa.array(port, pa.int64()), "Protocol": pa.array(proto, pa.string()),
            "DeviceVendor": pa.array(np.full(n, self.vendor, dtype=object), pa.string()),
            "SentBytes": pa.array(self.rng.integers(60, 4000, n), pa.int64()),
            "ReceivedBytes": pa.array(self.rng.integers(40, 60000, n), pa.int64()),
            "Activity": pa.array(np.full(n, "TRAFFIC", dtype=object), pa.string()),
        })


def periodic(rng: Any, first: int, end: int, period_s: float, jitter_pct: float = 0.0,
             missed: float = 0.0, model: str = "symmetric") -> Any:
    """Check-ins from *first* until *end*; each check-in is lost with probability *missed*. Each sleep is
    jittered as C2 implants do it: ``symmetric`` sleeps period x (1 + U(-j, j)); ``shorten`` sleeps
    period x (1 - U(0, j)) (Cobalt Strike's jitter: a random share of up to j taken off the sleep)."""
    import numpy as np

    j = jitter_pct / 100
    count = int((end - first) / (period_s * _US * (1 - j))) + 2
    if model == "symmetric":
        factor = 1 + rng.uniform(-j, j, count)
    elif model == "shorten":
        factor = 1 - rng.uniform(0, j, count)
    else:
        raise ValueError(f"jitter model {model!r}: use symmetric or shorten")
    gaps = period_s * _US * factor
    times = first + np.concatenate([[0], np.cumsum(gaps)]).round().astype(np.int64)
    times = times[times < end]
    if missed:
        times = times[rng.random(len(times)) >= missed]
    return times


#: The jitter levels (percent of the period) and models of C2 frameworks' defaults (issue #19).
C2_JITTER = (0.0, 10.0, 20.0, 30.0, 50.0)
JITTER_MODELS = ("symmetric", "shorten")


def worked_example(day: date | str = "2024-05-01", seed: int = 1) -> tuple[Any, list[dict[str, Any]]]:
    """The spec's worked example (4 hours from 09:00 UTC, Fortinet): hosts A-F. B and C check in on a
    60 s grid, each check-in displaced uniformly by up to 0.4 s / 5 s."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tr = Traffic(rng)
    start = day_us(day) + 9 * _HOUR
    grid = start + np.arange(240, dtype=np.int64) * 60 * _US
    tr.add(grid, "10.1.1.22", "203.0.113.51", 443, label={"host": "A", "beacon": True})
    tr.add(grid + 7 * _US + (rng.uniform(-0.4, 0.4, 240) * _US).astype(np.int64), "10.1.1.20", "203.0.113.50",
           443, label={"host": "B", "beacon": True})
    tr.add(grid + 13 * _US + (rng.uniform(-5, 5, 240) * _US).astype(np.int64), "10.1.1.21", "198.51.100.77",
           8443, label={"host": "C", "beacon": True})
    times = start + 3 * _US + np.cumsum(rng.exponential(60.0, 400) * _US).astype(np.int64)
    times = times[times < start + 4 * _HOUR]
    dest = rng.integers(0, 3, len(times))
    for k, dst in enumerate(("192.0.2.44", "198.51.100.44", "203.0.113.44")):
        tr.add(times[dest == k], "10.1.1.30", dst, 443, label={"host": "D", "beacon": False})
    tr.add(start + np.arange(480, dtype=np.int64) * 30 * _US, "10.1.1.40", "10.2.2.2", 445,
           label={"host": "E", "beacon": False})
    for i in range(30):
        t = start + int(rng.integers(0, 120 * _US)) + np.arange(120, dtype=np.int64) * 120 * _US
        tr.add(t, f"10.1.2.{i + 1}", "93.184.216.34", 443, label={"host": "F", "beacon": False})
    return tr.table(), tr.labels


def labelled_day(seed: int = 0, day: date | str = "2024-05-01", beacons: int = 40,
                 benign: int = 200, jitter: str = "c2") -> tuple[Any, list[dict[str, Any]]]:
    """One day of labelled traffic (the spec's quality data).

    Beacons: periods log-uniform from 10 s to 1 h, 0-20 % missed check-ins, half of them on sources that
    also browse and talk to other servers. Jitter: ``c2`` (default) cycles through 0/10/20/30/50 % of the
    period, alternating the symmetric and the sleep-shortening model (``C2_JITTER``, ``JITTER_MODELS``);
    ``spec`` draws it uniformly from 0-10 % (symmetric), the spec's original quality data. Benign pairs:
    Poisson traffic (mean gap 20 s - 1 h), bursty browsing sessions (requests 1-26 s apart, sessions
    minutes apart), popular periodic services (every 5 min - 1 h, 30-60 hosts each) and periodic private
    destinations.
    Labels: one dict per pair with ``beacon`` True/False, ``kind`` and the drawn facts.
    """
    import numpy as np

    rng = np.random.default_rng([seed, 0xBEAC0])
    tr = Traffic(rng)
    d0 = day_us(day)
    d1 = d0 + _DAY
    ext = _public_pool(rng, 2000)
    used = iter(ext)
    hosts = [f"10.20.{i // 250}.{i % 250 + 1}" for i in range(400)]
    host_iter = iter(hosts)
    busy_hosts = []
    for i in range(beacons):
        period = float(np.exp(rng.uniform(np.log(10), np.log(3600))))
        if jitter == "spec":
            jit, model = float(rng.uniform(0, 10)), "symmetric"
        else:
            jit, model = C2_JITTER[i % len(C2_JITTER)], JITTER_MODELS[(i // len(C2_JITTER)) % 2]
        missed = float(rng.uniform(0, 0.20))
        src = next(host_iter)
        dst = next(used)
        port = int(rng.choice([443, 8443, 80, 8080, 53]))
        first = d0 + int(rng.uniform(0, period) * _US)
        # Busy every other block of ten, so each jitter level and model (cycled by i) has busy and quiet hosts.
        busy = (i // 10) % 2 == 1
        times = periodic(rng, first, d1, period, jit, missed, model)
        tr.add(times, src, dst, port, label={"kind": "beacon", "beacon": True, "SourceIP": src,
                                             "DestinationIP": dst, "DestinationPort": port, "period_s": period,
                                             "jitter_pct": jit, "model": model, "missed": missed,
                                             "busy": busy})
        if busy:
            busy_hosts.append(src)
    # The busy beacon hosts browse and talk to other servers too (benign pairs of their own).
    for src in busy_hosts:
        for _ in range(3):
            dst = next(used)
            _poisson(tr, rng, src, dst, 443, d0, d1, float(np.exp(rng.uniform(np.log(20), np.log(900)))))
        _browsing(tr, rng, src, next(used), d0, d1)
    kinds = rng.choice(["poisson", "browsing", "popular", "private"], size=benign, p=[0.5, 0.3, 0.1, 0.1])
    for kind in kinds:
        src = hosts[int(rng.integers(len(busy_hosts) * 2 + 1, len(hosts)))]
        if kind == "poisson":
            _poisson(tr, rng, src, next(used), int(rng.choice([443, 80])), d0, d1,
                     float(np.exp(rng.uniform(np.log(20), np.log(3600)))))
        elif kind == "browsing":
            _browsing(tr, rng, src, next(used), d0, d1)
        elif kind == "popular":
            dst = next(used)
            period = float(rng.choice([300, 600, 900, 1800, 3600]))
            fleet = int(rng.integers(30, 61))
            for h in rng.choice(len(hosts), fleet, replace=False):
                tr.add(periodic(rng, d0 + int(rng.uniform(0, period) * _US), d1, period, 1.0), hosts[int(h)],
                       dst, 443, label={"kind": "popular", "beacon": False, "SourceIP": hosts[int(h)],
                                        "DestinationIP": dst, "DestinationPort": 443, "period_s": period})
        else:
            dst = f"10.{int(rng.integers(0, 255))}.{int(rng.integers(0, 255))}.{int(rng.integers(1, 255))}"
            period = float(rng.choice([30, 60, 300]))
            tr.add(periodic(rng, d0, d1, period, 0.5), src, dst, 445,
                   label={"kind": "private", "beacon": False, "SourceIP": src, "DestinationIP": dst,
                          "DestinationPort": 445, "period_s": period})
    return tr.table(), tr.labels


def _public_pool(rng: Any, n: int) -> list[str]:
    import numpy as np

    firsts = np.array([23, 34, 45, 52, 64, 81, 91, 104, 142, 151, 185, 198, 203])
    a = rng.choice(firsts, n)
    b, c, d = rng.integers(0, 256, n), rng.integers(0, 256, n), rng.integers(1, 255, n)
    out = sorted({f"{w}.{x}.{y}.{z}" for w, x, y, z in zip(a.tolist(), b.tolist(), c.tolist(), d.tolist(),
                                                            strict=True)})
    rng.shuffle(out)
    return out


def _poisson(tr: Traffic, rng: Any, src: str, dst: str, port: int, d0: int, d1: int, mean_s: float) -> None:
    import numpy as np

    n = int((d1 - d0) / (mean_s * _US) * 1.5) + 10
    times = d0 + np.cumsum(rng.exponential(mean_s, n) * _US).astype(np.int64)
    tr.add(times[times < d1], src, dst, port, label={"kind": "poisson", "beacon": False, "SourceIP": src,
                                                     "DestinationIP": dst, "DestinationPort": port,
                                                     "mean_gap_s": mean_s})


def _browsing(tr: Traffic, rng: Any, src: str, dst: str, d0: int, d1: int) -> None:
    import numpy as np

    chunks = []
    t = d0 + int(rng.uniform(7, 10) * _HOUR)
    end = min(d1, d0 + int(rng.uniform(16, 20) * _HOUR))
    while t < end:
        n = int(rng.integers(5, 60))
        chunks.append(t + np.cumsum(rng.uniform(1.0, 26.0, n) * _US).astype(np.int64))
        t = int(chunks[-1][-1]) + int(rng.exponential(15 * 60) * _US) + 60 * _US
    times = np.concatenate(chunks)
    tr.add(times[times < d1], src, dst, 443, label={"kind": "browsing", "beacon": False, "SourceIP": src,
                                                    "DestinationIP": dst, "DestinationPort": 443})


def score(result_rows: list[dict[str, Any]], labels: list[dict[str, Any]], *, min_period: float = 30.0,
          max_period: float = 3600.0) -> dict[str, Any]:
    """Recall over the beacons the quality target covers (periods *min_period*..*max_period*), recall over
    all beacons, and the benign pairs flagged."""
    flagged = {(r["SourceIP"], r["DestinationIP"], int(r["DestinationPort"])) for r in result_rows}
    beacons = [lb for lb in labels if lb["beacon"]]
    target = [lb for lb in beacons if min_period <= lb["period_s"] <= max_period]
    key = lambda lb: (lb["SourceIP"], lb["DestinationIP"], int(lb["DestinationPort"]))  # noqa: E731
    benign = {key(lb) for lb in labels if not lb["beacon"]}
    missed = [lb for lb in target if key(lb) not in flagged]
    return {"target": len(target), "target_found": len(target) - len(missed),
            "beacons": len(beacons), "beacons_found": sum(key(lb) in flagged for lb in beacons),
            "benign": len(benign), "false_positives": len(benign & flagged),
            "missed": [{k: lb.get(k) for k in ("SourceIP", "period_s", "jitter_pct", "model", "missed", "busy",
                                               "events")}
                       for lb in missed],
            "false_positive_kinds": sorted({lb["kind"] for lb in labels if not lb["beacon"] and key(lb) in flagged})}


# -- a big lake, fast -------------------------------------------------------------------------------


def write_parquet_lake(root: str, events: int, *, days: int = 1, end_date: date | str = "2024-05-01",
                       seed: int = 0, sources: int = 20_000, beacons: int = 50) -> dict[str, Any]:
    """Write *events* CommonSecurityLog events over *days* days ending *end_date* as hourly Parquet blobs
    in the export layout (``.../y=/m=/d=/h=/m=00/PT1H.parquet``), with *beacons* planted 5 min beacons.

    Sources have their own servers (pairs with hundreds of events, the expensive case for the hunt), a
    share of shared popular destinations, and private traffic. Columns are dictionary-encoded, so
    writing 100 M events takes a few minutes and a few GB of disk.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng([seed, 0x1A4E])
    last = day_us(end_date)
    d0 = last - (days - 1) * _DAY
    src_ips = np.array([f"10.{i // 62500 % 256}.{i // 250 % 250}.{i % 250 + 1}" for i in range(sources)], object)
    pool = np.array(_public_pool(rng, 60_000), object)
    n_pub = len(pool)
    private = np.array([f"10.200.{i // 250}.{i % 250 + 1}" for i in range(2000)], object)
    # Planted beacons talk to servers of their own (198.19.0.0/16, never in the public pool): drawn from the
    # pool they would, at 100 M events, share destinations with hundreds of sources and be dropped as popular.
    taken = set(pool)
    own_c2 = np.array([a for a in (f"198.19.{k // 250}.{k % 250 + 1}" for k in range(beacons + 256))
                       if a not in taken][:beacons], object)
    dst_dict = pa.array(np.concatenate([pool, private, own_c2]), pa.string())
    src_dict = pa.array(src_ips, pa.string())
    # Each source's own 16 servers: rarely shared, so their pairs reach the gap computation.
    own = rng.integers(0, n_pub, (sources, 16))
    ports = np.array([443, 80, 8443, 53, 123, 22, 445, 3389], np.int64)
    proto_dict = pa.array(["TCP", "UDP"], pa.string())
    vendor_dict = pa.array(["Fortinet", "Palo Alto Networks", "Check Point", "Cisco"], pa.string())
    act_dict = pa.array(["TRAFFIC", "accept", "deny"], pa.string())
    type_dict = pa.array(["CommonSecurityLog"], pa.string())
    container = os.path.join(root, "am-commonsecuritylog", "WorkspaceResourceId=", "subscriptions",
                             "00000000-0000-0000-0000-000000000000", "resourcegroups", "bench",
                             "providers", "microsoft.operationalinsights", "workspaces", "bench")
    hours = days * 24
    per_hour = np.full(hours, events // hours)
    per_hour[: events % hours] += 1
    beacon_src = rng.choice(sources, beacons, replace=False)
    beacon_dst = n_pub + len(private) + np.arange(beacons)
    written = 0
    files = 0
    for h in range(hours):
        n = int(per_hour[h])
        start = d0 + h * _HOUR
        # Planted beacons: every 300 s +- 5 %, this hour's check-ins.
        bt, bs, bd = [], [], []
        for k in range(beacons):
            phase = (int(beacon_src[k]) * 7919) % 300
            first = start + ((phase * _US - (start - d0)) % (300 * _US))
            times = np.arange(first, start + _HOUR, 300 * _US, dtype=np.int64)
            times = times + (rng.uniform(-15, 15, len(times)) * _US).astype(np.int64)
            bt.append(times)
            bs.append(np.full(len(times), beacon_src[k]))
            bd.append(np.full(len(times), beacon_dst[k]))
        planted = np.concatenate(bt)
        m = max(0, n - len(planted))
        t = start + rng.integers(0, _HOUR, m)
        s = rng.integers(0, sources, m)
        kind = rng.random(m)
        d = np.where(kind < 0.55, own[s, rng.integers(0, 16, m)],
                     np.where(kind < 0.85, np.minimum(rng.zipf(1.3, m) - 1, n_pub - 1),
                              n_pub + rng.integers(0, len(private), m)))
        t = np.concatenate([t, np.clip(planted, start, start + _HOUR - 1)])
        s = np.concatenate([s, np.concatenate(bs)])
        d = np.concatenate([d, np.concatenate(bd)])
        port_idx = np.concatenate([rng.integers(0, len(ports), m), np.zeros(len(planted), np.int64)])
        order = np.argsort(t, kind="stable")
        t, s, d, port_idx = t[order], s[order], d[order], port_idx[order]
        total = len(t)
        table = pa.table({
            "TimeGenerated": pa.array(t, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "Type": pa.DictionaryArray.from_arrays(pa.array(np.zeros(total, np.int32)), type_dict),
            "SourceIP": pa.DictionaryArray.from_arrays(pa.array(s.astype(np.int32)), src_dict),
            "DestinationIP": pa.DictionaryArray.from_arrays(pa.array(d.astype(np.int32)), dst_dict),
            "DestinationPort": pa.array(ports[port_idx], pa.int32()),
            "Protocol": pa.DictionaryArray.from_arrays(pa.array((port_idx == 3).astype(np.int32)
                                                                | (port_idx == 4).astype(np.int32)), proto_dict),
            "DeviceVendor": pa.DictionaryArray.from_arrays(pa.array((s % 4).astype(np.int32)), vendor_dict),
            "Activity": pa.DictionaryArray.from_arrays(pa.array(np.zeros(total, np.int32)), act_dict),
            "SentBytes": pa.array(rng.integers(60, 5000, total), pa.int64()),
            "ReceivedBytes": pa.array(rng.integers(40, 80000, total), pa.int64()),
        })
        from datetime import UTC, datetime, timedelta

        when = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start)
        folder = os.path.join(container, f"y={when.year:04d}", f"m={when.month:02d}", f"d={when.day:02d}",
                              f"h={when.hour:02d}", "m=00")
        os.makedirs(folder, exist_ok=True)
        pq.write_table(table, os.path.join(folder, "PT1H.parquet"), compression="zstd", row_group_size=1 << 20)
        written += total
        files += 1
    planted = [{"SourceIP": str(src_ips[int(a)]), "DestinationIP": str(own_c2[k])}
               for k, a in enumerate(beacon_src)]
    return {"events": written, "files": files, "days": days, "end_date": str(end_date), "beacons": planted}
