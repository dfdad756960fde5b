"""Syslog rows: Linux hosts' sshd, sudo, cron, systemd, kernel and daemon messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _norm
from kqlmagic_plus.demo.datagen.environment import _LINUX, _Env
from kqlmagic_plus.demo.datagen.rows import _Rows
from kqlmagic_plus.demo.datagen.vocab import _BAD_USERS, _SYSLOG

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


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
