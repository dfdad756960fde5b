"""The organisation: users, workstations, servers, Linux hosts and the address pools they use.

It depends on the seed only, so every table and day agrees on who and what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _norm
from kqlmagic_plus.demo.datagen.jsonlines import _guids

if TYPE_CHECKING:
    import numpy as np

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
