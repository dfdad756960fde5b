"""SecurityEvent rows: Windows security auditing (logons, Kerberos, processes), background and planted alike."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _norm
from kqlmagic_plus.demo.datagen.environment import _SERVERS, _Env
from kqlmagic_plus.demo.datagen.jsonlines import _hex_ids
from kqlmagic_plus.demo.datagen.rows import _Rows
from kqlmagic_plus.demo.datagen.vocab import _EVENTS, _LOGONS, _PROCESSES

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def _security_background(env: _Env, rng: np.random.Generator, ts: Any) -> pa.Table:
    import numpy as np

    n = len(ts)
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
