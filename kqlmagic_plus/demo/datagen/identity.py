"""SigninLogs rows: Entra ID sign-ins, background and planted alike."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kqlmagic_plus.demo.datagen.common import _norm
from kqlmagic_plus.demo.datagen.environment import _CITIES, _Env
from kqlmagic_plus.demo.datagen.jsonlines import _guids
from kqlmagic_plus.demo.datagen.rows import _idx, _Rows
from kqlmagic_plus.demo.datagen.vocab import _APPS, _CLIENTS, _R_BADPW, _RESULTS

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def _signin_background(env: _Env, rng: np.random.Generator, ts: Any) -> pa.Table:
    import numpy as np

    n = len(ts)
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
