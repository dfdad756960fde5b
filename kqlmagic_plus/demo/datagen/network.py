"""CommonSecurityLog rows: firewall traffic from four vendors, background and planted alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _norm
from kqlmagic_plus.demo.datagen.environment import _LINUX, _SERVERS, _Env
from kqlmagic_plus.demo.datagen.rows import _idx, _Rows
from kqlmagic_plus.demo.datagen.vocab import _ACTIONS, _PORTS, _VENDORS

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def _csl_background(env: _Env, rng: np.random.Generator, ts: Any) -> pa.Table:
    import numpy as np

    n = len(ts)
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
