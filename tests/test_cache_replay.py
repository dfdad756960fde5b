"""A notebook runs against the local engine with caching, exports its cache, and then runs again in
replay mode with its data gone: every output is the same (the Result summary line aside, which says
"from cache")."""

from __future__ import annotations

import copy
import os
import re
import shutil

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def _data(folder) -> None:
    folder.mkdir()
    rng = np.random.default_rng(7)
    n = 400
    ips = [f"203.0.113.{i}" for i in range(12)]
    pd.DataFrame({
        "TimeGenerated": pd.Timestamp("2024-05-01", tz="UTC") + pd.to_timedelta(np.sort(rng.integers(0, 86400, n)),
                                                                               unit="s"),
        "UserPrincipalName": [f"user{i}@contoso.com" for i in rng.integers(0, 9, n)],
        "IPAddress": [ips[i] for i in rng.integers(0, 12, n)],
        "ResultType": rng.choice([0, 0, 0, 50126, 50053], n),
    }).to_parquet(folder / "signins.parquet")
    pd.DataFrame({"IPAddress": ips[:4], "Owner": ["vpn"] * 4}).to_csv(folder / "allowlist.csv", index=False)


def _notebook(data, export) -> object:
    v4 = nbformat.v4
    mount = f"--mount SigninLogs={data / 'signins.parquet'}"
    cells = [
        "%load_ext kqlmagic_plus",
        # Offline there is no data folder: the DataFrame the hunt joins against does not exist.
        "import os\nimport pandas as pd\nDATA = os.environ['HUNT_DATA']\n"
        "allowlist = pd.read_csv(os.path.join(DATA, 'allowlist.csv')) if os.path.isdir(DATA) else None",
        f"%%kql {mount}\nSigninLogs\n| where TimeGenerated > ago(3650d)  // relative time: pinned, replayed\n"
        "| summarize failures = countif(ResultType != 0), users = dcount(UserPrincipalName) by IPAddress\n"
        "| order by failures desc, IPAddress asc",
        f"%%kql -o failed {mount}\nSigninLogs\n| where ResultType != 0\n"
        "| project TimeGenerated, UserPrincipalName, IPAddress, ResultType\n| order by TimeGenerated asc",
        "%%kql\nfailed\n| join kind=leftanti allowlist on IPAddress\n"
        "| summarize n = count(), earliest = min(TimeGenerated) by UserPrincipalName\n| order by UserPrincipalName asc",
        "failed.df.head(5)",
        f"%%kql {mount}\nSigninLogs\n| summarize n = count() by bin(TimeGenerated, 1h), outcome = iff(ResultType == 0, "
        "'ok', 'fail')\n| order by TimeGenerated asc\n| render timechart",
        "print(len(failed), failed.kql_types)",
        f"%kql --cache export {export}",
    ]
    return v4.new_notebook(cells=[v4.new_code_cell(c) for c in cells],
                           metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                    "language": "python"}})


def _execute(nb, cwd) -> object:
    nb = copy.deepcopy(nb)
    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=300,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute()
    return nb


_SUMMARY_HTML = re.compile(r'<div class="kqlmp-summary"[^>]*>.*?</div>', re.S)
_ELEMENT_ID = re.compile(r"kqlmp-[0-9a-f]{8,}")


def _normalized(outputs) -> tuple[list, list[str]]:
    """Outputs without what must differ between a computed and a served Result: the summary line
    (elapsed, "from cache, computed ... ago"). Returns (outputs, summary lines)."""
    out, summaries = [], []
    for o in outputs:
        o = copy.deepcopy(dict(o))
        o.pop("execution_count", None)
        data = o.get("data")
        if data and "text/plain" in data and "kqlmp" in data.get("text/html", "") + str(data):
            text = data["text/plain"]
            summaries.append(text.splitlines()[0])
            data["text/plain"] = "\n".join(text.splitlines()[1:])
        if data and "text/html" in data:
            html = data["text/html"]
            summaries.extend(_SUMMARY_HTML.findall(html))
            html = _SUMMARY_HTML.sub("", html)
            data["text/html"] = _ELEMENT_ID.sub("kqlmp-ID", html)
        out.append(o)
    return out, summaries


def test_notebook_replays_offline_with_identical_outputs(tmp_path, monkeypatch):
    data, export = tmp_path / "data", tmp_path / "export"
    _data(data)
    nb = _notebook(data, export)
    monkeypatch.setenv("PYTHONPATH", os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("HUNT_DATA", str(data))
    monkeypatch.setenv("KQLMAGIC_PLUS_CACHE", "1d")
    monkeypatch.setenv("KQLMAGIC_PLUS_CACHE_DIR", str(tmp_path / "cache-online"))
    monkeypatch.delenv("KQLMAGIC_PLUS_REPLAY", raising=False)
    online = _execute(nb, tmp_path)

    errors = [o for c in online.cells for o in c.outputs if o.output_type == "error"]
    assert errors == [], errors
    assert "Exported 4 cached results" in online.cells[-1].outputs[0]["data"]["text/plain"]

    # Offline: no data folder, no cache of its own, only the exported folder.
    shutil.rmtree(data)
    shutil.rmtree(tmp_path / "cache-online")
    monkeypatch.setenv("KQLMAGIC_PLUS_CACHE_DIR", str(tmp_path / "cache-offline"))
    monkeypatch.setenv("KQLMAGIC_PLUS_REPLAY", str(export))
    offline = _execute(nb, tmp_path)

    assert len(offline.cells) == len(online.cells)
    compared = 0
    for i, (a, b) in enumerate(zip(online.cells, offline.cells, strict=True)):
        out_a, sum_a = _normalized(a.outputs)
        out_b, sum_b = _normalized(b.outputs)
        assert out_b == out_a, f"cell {i} differs:\n{a.source}"
        assert all("from cache" not in s for s in sum_a)
        assert all("from cache" in s for s in sum_b)
        compared += len(out_a)
    assert compared >= 7
    # a chart came through the replay too
    assert any("application/vnd.plotly.v1+json" in o.get("data", {}) for o in offline.cells[6].outputs)
    assert not (tmp_path / "cache-offline").exists() or not any((tmp_path / "cache-offline").rglob("*.kqlc"))
