"""The beacon hunt against C2 frameworks' real jitter (issue #19): the relative timing score, its
sub-scores, allowlists, and the Sentinel notebook's own method under compat=notebook."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kqlmagic_plus.errors import OptionError
from kqlmagic_plus.hunts import run_hunt
from kqlmagic_plus.hunts.traffic import (
    _HOUR,
    _US,
    Traffic,
    _poisson,
    day_us,
    labelled_day,
    periodic,
    score,
    worked_example,
)

DAY = day_us("2024-05-01")


def _day(*pairs):
    """One day of traffic: each pair (src, dst, times)."""
    tr = Traffic(np.random.default_rng(3))
    for src, dst, times in pairs:
        tr.add(times, src, dst, 443)
    return tr.table()


def _rows(table, **kw):
    return {r["SourceIP"]: r for r in run_hunt("beacon", dataframe=table, **kw).table.to_pylist()}


@pytest.mark.parametrize("model", ["symmetric", "shorten"])
def test_fifty_percent_jitter_with_missed_check_ins_is_flagged(model):
    rng = np.random.default_rng(7)
    table = _day(("10.5.0.1", "198.51.100.9", periodic(rng, DAY + 17 * _US, DAY + 24 * _HOUR, 60, 50, 0.2, model)),
                 ("10.5.0.2", "198.51.100.10", periodic(rng, DAY, DAY + 24 * _HOUR, 900, 30, 0.15, model)))
    rows = _rows(table)
    assert set(rows) == {"10.5.0.1", "10.5.0.2"}
    fast, slow = rows["10.5.0.1"], rows["10.5.0.2"]
    assert "mode" not in fast["FlaggedBy"] and fast["PercentBeacon"] < 75  # the mode alone misses it
    # The period estimate is the sleep (or the mean shortened sleep), not a doubled gap from a missed check-in.
    expected = 60 if model == "symmetric" else 45
    assert expected * 0.85 <= fast["Period"] <= expected * 1.2
    assert (30 if model == "symmetric" else 10) <= fast["JitterPct"] <= 65
    assert fast["TimingScore"] >= 50 and fast["CoveragePct"] == 100.0 and fast["ActiveHours"] == 24
    assert slow["Period"] <= 900 * 1.1 and slow["TimingScore"] >= 50
    # method=mode is the spec's method alone: neither is found.
    assert not _rows(table, method="mode")


def test_benign_look_alikes_stay_unflagged_with_any_coverage():
    """Poisson traffic (any rate) and bursty browsing never reach the timing threshold, even with the
    coverage test off."""
    rng = np.random.default_rng(11)
    tr = Traffic(rng)
    for i, mean in enumerate((16, 20, 30, 60, 300, 900, 3600)):
        _poisson(tr, rng, f"10.6.0.{i + 1}", f"198.51.100.{i + 20}", 443, DAY, DAY + 24 * _HOUR, mean)
    from kqlmagic_plus.hunts.traffic import _browsing

    for i in range(10):
        _browsing(tr, rng, f"10.6.1.{i + 1}", f"203.0.113.{i + 20}", DAY, DAY + 24 * _HOUR)
    table = tr.table()
    assert not _rows(table, min_coverage=0)
    # min-timing 0 still leaves the random-traffic threshold per gap count: no Poisson pair clears it. Browsing
    # (100-200 scored gaps, a pile of 16-26 s ones) is not random timing: min-timing and the bursts rule stop it.
    loose = _rows(table, method="score", min_timing=0, min_coverage=0, allow_ports="80")
    assert not [ip for ip in loose if ip.startswith("10.6.0.")]
    assert all(r["TimingScore"] < 50 and "evidence" not in r["FlaggedBy"] for r in loose.values())


def test_sparse_random_pairs_are_not_periodic():
    """Thousands of pairs with 13-40 uniformly random events a day (a big lake's long tail): a dozen gaps
    can look regular by chance; the timing test needs 20 gaps and a score random pairs with as many gaps do not reach.
    (Found on a 30 M-event lake, where 335 such pairs were flagged.)"""
    rng = np.random.default_rng(2)
    tr = Traffic(rng)
    for i in range(3000):
        n = int(rng.integers(13, 41))
        tr.add(np.sort(DAY + rng.integers(0, 24 * _HOUR, n)), f"10.8.{i // 250}.{i % 250 + 1}",
               f"198.51.{i // 250}.{i % 250 + 1}", 443)
    assert not _rows(tr.table(), method="score")


def test_labelled_c2_day_every_jitter_level_and_model():
    """Two seeds of the labelled C2 mix: every target beacon (30 s - 1 h, jitter 0-50 %, both models,
    busy hosts too) flagged but slow ones with 20-50 % jitter (20-50 gaps a day: random pairs score as well),
    no benign pair; the mode alone misses the 30 % and 50 % ones."""
    found, target, mode_found, fp = 0, 0, 0, 0
    for seed in (0, 1):
        table, labels = labelled_day(seed)
        s = score(run_hunt("beacon", dataframe=table).table.to_pylist(), labels)
        assert all(m["period_s"] >= 1800 and m["jitter_pct"] >= 20 for m in s["missed"]), s["missed"]
        found += s["target_found"]
        target += s["target"]
        fp += s["false_positives"]
        high = [lb for lb in labels if lb["beacon"] and lb["jitter_pct"] >= 30 and 30 <= lb["period_s"] <= 3600]
        m = score(run_hunt("beacon", dataframe=table, method="mode").table.to_pylist(), high)
        mode_found += m["target_found"]
        assert {lb["model"] for lb in high} == {"symmetric", "shorten"}
    assert target >= 55 and found >= 0.9 * target and fp == 0
    assert mode_found <= 2


def test_worked_example_keeps_the_spec():
    table, _ = worked_example()
    rows = _rows(table)
    assert set(rows) == {"10.1.1.22", "10.1.1.20", "10.1.1.21"}
    # Four hours of a day: the coverage test keeps the timing path out; the mode flags all three.
    assert {r["FlaggedBy"] for r in rows.values()} == {"mode"}
    assert rows["10.1.1.22"]["Period"] == 60.0 and rows["10.1.1.22"]["JitterPct"] == 0.0
    assert rows["10.1.1.22"]["CoveragePct"] == round(100 * 4 / 24, 1)


def test_compat_notebook_is_the_notebooks_method():
    table, _ = worked_example()
    r = run_hunt("beacon", dataframe=table, compat="notebook")
    assert [(x["SourceIP"], x["ModeTimedelta"], x["BeaconCount"], x["PercentBeacon"], x["FlaggedBy"])
            for x in r.table.to_pylist()] == [("10.1.1.22", 60.0, 239, 100.0, "notebook")]
    # B: whole-second gaps of 59, 60 and 61 s; the 3-row running sum over them reaches all 239 gaps, but the
    # notebook divides by the sum of the running sums (61 + 179 + 239 = 479): 49.9 %, not flagged.
    b = [x for x in run_hunt("beacon", dataframe=table, compat="notebook", percent=0).table.to_pylist()
         if x["SourceIP"] == "10.1.1.20"]
    assert (b[0]["ModeTimedelta"], b[0]["BeaconCount"], b[0]["TotalDeltas"]) == (61.0, 239, 479)
    assert b[0]["PercentBeacon"] == 49.9 and sorted(x["ModeTimedelta"] for x in b) == [59.0, 60.0, 61.0]


def test_compat_notebook_gaps_are_per_source():
    """A beacon on a host that also browses: the notebook's per-source gaps break it; ours find it."""
    rng = np.random.default_rng(5)
    beacon = DAY + np.arange(1440, dtype=np.int64) * 60 * _US
    other = np.sort(DAY + rng.integers(0, 24 * _HOUR, 3000))
    table = _day(("10.7.0.1", "198.51.100.5", beacon), ("10.7.0.1", "203.0.113.99", other))
    assert "10.7.0.1" in _rows(table)
    assert not _rows(table, compat="notebook")
    alone = _day(("10.7.0.1", "198.51.100.5", beacon))
    assert "10.7.0.1" in _rows(alone, compat="notebook")


def test_allowlists_before_scoring(tmp_path):
    table, _ = worked_example()
    base = set(_rows(table))
    assert base == {"10.1.1.22", "10.1.1.20", "10.1.1.21"}
    assert set(_rows(table, allow_destinations="203.0.113.50")) == base - {"10.1.1.20"}
    assert set(_rows(table, allow_destinations=["203.0.113.48/29"])) == {"10.1.1.21"}
    assert set(_rows(table, allow_sources="10.1.1.20/31")) == {"10.1.1.22"}
    assert set(_rows(table, allow_ports="8443")) == base - {"10.1.1.21"}
    df = pd.DataFrame({"SourceIP": ["10.1.1.22", None], "DestinationPort": [None, 8443]})
    assert set(_rows(table, allowlist=df)) == {"10.1.1.20"}
    csv = tmp_path / "allow.csv"
    csv.write_text("SourceIP,DestinationIP,DestinationPort\n10.1.1.20,203.0.113.50,443\n,198.51.100.0/24,\n")
    assert set(_rows(table, allowlist=str(csv))) == {"10.1.1.22"}
    lst = tmp_path / "dst.txt"
    lst.write_text("# known update servers\n203.0.113.51\n")
    assert set(_rows(table, allow_destinations=f"@{lst}")) == base - {"10.1.1.22"}
    # Before degrees are counted: allowlisting 8 of the 30 hosts calling F's destination brings its degree
    # to 22 (< 25), and the other 22 pairs, every 120 s, are scored and flagged.
    r = run_hunt("beacon", dataframe=table, allow_sources="10.1.2.1/29,10.1.2.9").table.to_pylist()
    f = [x for x in r if x["DestinationIP"] == "93.184.216.34"]
    assert len(f) == 22 and {x["DegreeofSourceIps"] for x in f} == {22}


@pytest.mark.parametrize("kw, text", [
    ({"allow_ports": "https"}, "--allow-ports: 'https' is not a port number"),
    ({"allow_sources": "10.1.1.300"}, "--allow-sources: '10.1.1.300' is not an address or CIDR range"),
    ({"allow_destinations": "2001:db8::/32"}, "give single IPv6 addresses"),
    ({"allowlist": "/no/such/allow.csv"}, "--allowlist: '/no/such/allow.csv' is not a file"),
    ({"allowlist": pd.DataFrame({"host": ["a"]})}, "needs a SourceIP, DestinationIP or DestinationPort column"),
    ({"allow_destinations": "@/no/such/list.txt"}, "cannot read '/no/such/list.txt'"),
])
def test_bad_allowlists_say_what_and_where(kw, text):
    table, _ = worked_example()
    with pytest.raises(OptionError) as err:
        run_hunt("beacon", dataframe=table, **kw)
    assert text in str(err.value) and "\n" not in str(err.value)
