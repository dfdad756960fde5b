"""The spray and masquerade hunts on DuckDB, on small hand-made tables and on a generated lake."""

from __future__ import annotations

import json

import pytest

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.hunts import describe, run_hunt

T0 = 1_714_550_400_000_000  # 2024-05-01T08:00:00Z in microseconds


def _signins():
    import pyarrow as pa

    rows = []
    # The sprayer: 30 accounts, one wrong password each, one account falls.
    for i in range(30):
        rows.append((T0 + i * 20_000_000, "198.51.100.9", f"user{i}@contoso.com", "50126" if i else "0"))
    # The office egress: many users, mostly successful, some typos.
    for i in range(40):
        rows.append((T0 + i * 7_000_000, "203.0.113.5", f"user{i}@contoso.com", "0"))
        if i % 3 == 0:
            rows.append((T0 + i * 7_000_000 - 1, "203.0.113.5", f"user{i}@contoso.com", "50126"))
    # A brute force on one account: many failures, one account only.
    for i in range(50):
        rows.append((T0 + i * 1_000_000, "192.0.2.66", "admin@contoso.com", "50053"))
    t, ip, upn, rt = zip(*rows, strict=True)
    return pa.table({"TimeGenerated": pa.array(t, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                     "IPAddress": ip, "UserPrincipalName": upn, "ResultType": rt,
                     "AppDisplayName": ["Azure Portal"] * len(t)})


def test_spray_flags_the_sprayer_only():
    r = run_hunt("spray", dataframe=_signins())
    rows = r.table.to_pylist()
    assert [x["IPAddress"] for x in rows] == ["198.51.100.9"]
    s = rows[0]
    assert (s["FailedAccounts"], s["SuccessfulAccounts"], s["CompromisedAccounts"]) == (29, 1, "user0@contoso.com")
    assert s["SuccessPercent"] == 3.3 and s["ResultTypes"] == "50126"
    # Brute force on one account shows with min-accounts 1; the office never (mostly successes).
    got = {x["IPAddress"] for x in run_hunt("spray", dataframe=_signins(), min_accounts=1).table.to_pylist()}
    assert got == {"198.51.100.9", "192.0.2.66"}
    assert run_hunt("spray", dataframe=_signins(), failure_codes="50053").row_count == 0


def _processes():
    import pyarrow as pa

    rows = []
    common = {"svchost.exe": 300, "explorer.exe": 250, "chrome.exe": 200, "conhost.exe": 150, "cmd.exe": 120,
              "notepad.exe": 90, "taskhostw.exe": 80, "powershell.exe": 60, "winword.exe": 40, "excel.exe": 30}
    k = 0
    for name, n in common.items():
        for i in range(n):
            rows.append((T0 + k, 4688, f"C:\\Windows\\System32\\{name}", f"WKS-{i % 20:02d}"))
            k += 1_000_000
    for i in range(3):
        rows.append((T0 + 3_600_000_000 + i, 4688, "C:\\Users\\Public\\svch0st.exe", "WKS-07"))
    rows.append((T0 + 7_200_000_000, 4688, "C:/Temp/expl0rer.exe", "WKS-09"))
    rows.append((T0 + 7_300_000_000, 4688, "C:\\Tools\\rare_tool.exe", "WKS-01"))
    rows.append((T0 + 7_400_000_000, 4624, "C:\\Users\\Public\\chr0me.exe", "WKS-01"))  # not a 4688
    t, ev, path, host = zip(*rows, strict=True)
    return pa.table({"TimeGenerated": pa.array(t, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
                     "EventID": pa.array(ev, pa.int32()), "NewProcessName": path, "Computer": host})


def test_masquerade_pairs_rare_lookalikes_with_common_names():
    r = run_hunt("masquerade", dataframe=_processes())
    rows = [(x["RareProcess"], x["CommonProcess"], x["Similarity"], x["RareCount"], x["RareHosts"])
            for x in r.table.to_pylist()]
    assert rows == [("svch0st.exe", "svchost.exe", 0.909, 3, "WKS-07"),
                    ("expl0rer.exe", "explorer.exe", 0.917, 1, "WKS-09")][::-1]
    assert r.table.to_pylist()[0]["RarePaths"] == "C:/Temp/expl0rer.exe"
    assert run_hunt("masquerade", dataframe=_processes(), min_similarity=0.95).row_count == 0


def test_masquerade_parameter_checks():
    with pytest.raises(OptionError, match="rare-quantile"):
        run_hunt("masquerade", dataframe=_processes(), rare_quantile=0.9)
    with pytest.raises(OptionError, match="NewProcessName"):
        run_hunt("masquerade", dataframe=_processes().drop_columns(["NewProcessName"]))
    assert "--min-similarity" in describe("masquerade") and "--min-accounts" in describe("spray")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    from kqlmagic_plus.demo.datagen import generate

    root = tmp_path_factory.mktemp("lake")
    generate(root, days=2, end_date="2024-05-02", events_per_day=20_000, seed=9)
    return root


def test_planted_attacks_in_a_lake(lake):
    truth = {a["id"]: a for a in json.loads((lake / "_truth.json").read_text())["attacks"]}
    spray = run_hunt("spray", lake=str(lake), end_date="2024-05-02").table.to_pylist()
    assert [x["IPAddress"] for x in spray] == [truth["password_spray"]["IPAddress"]]
    assert spray[0]["CompromisedAccounts"].split(", ") == truth["password_spray"]["successful_accounts"]
    masq = run_hunt("masquerade", lake=str(lake), end_date="2024-05-02").table.to_pylist()
    assert [(x["RareProcess"], x["CommonProcess"]) for x in masq] == [("svch0st.exe", "svchost.exe")]
