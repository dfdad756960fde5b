"""Calibrate, or check, the beacon hunt's timing-score thresholds on random traffic
(kqlmagic_plus/data/beacon_null.json).

A pair of hosts that talk at random moments (a Poisson process: given n events in the window, the times
are independent and uniform) sometimes looks periodic by chance, and the fewer its gaps the more often:
on a 100 M-event day (1.6 M pairs with 20-40 gaps) a fixed margin flagged 41 random pairs. This script
draws random pairs with each gap count, scores them with exactly the hunt's arithmetic (nearest-rank
quartiles, MAD, misfits, bursts, coverage of a 24 h window; the evidence's milli-nat sums), and writes
per gap count the timing score and the evidence that random pairs reach with probability under TARGET:
the hunt's score and evidence paths flag a pair only above them.

    python -m tools.beacon_null                   # exit 1 when the file is out of date (same seed: same file)
    python -m tools.beacon_null --write           # regenerate it
    python -m tools.beacon_null --tail            # print the tail of the random pairs' scores per gap count

The tail beyond what was drawn is extrapolated: the log of the exceedance rate falls about linearly in the
score over the last decades drawn, so the threshold is where that line reaches TARGET (never below the
highest score drawn).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NamedTuple

PATH = Path(__file__).resolve().parent.parent / "kqlmagic_plus" / "data" / "beacon_null.json"
US = 1_000_000
DAY = 86_400 * US
HOUR = 3_600 * US
BP = 10_000
#: Per pair and gap count: with a million candidate pairs, about 0.1 random pair flagged a day.
TARGET = 1e-7
#: Every gap count where the tail moves fast, then sparser; a count between two is given the threshold of the
#: lower one (the tail only shrinks with more gaps), one above the last the last one's.
GAPS = (*range(14, 61), 70, 80, 90, 100, 120, 150)
SAMPLES = 400_000
#: The hunt's default min-coverage. Bands of higher coverage were tried and bought nothing: the random
#: pairs that look periodic are the evenly spread ones, active in most hours anyway.
MIN_COVERAGE_BP = 5_000
SEED = 20261202


def _idiv(a: Any, b: Any) -> Any:
    """Integer division truncating toward zero, as the hunt's SQL does on both engines."""
    import numpy as np

    q = np.abs(a) // np.abs(b)
    return np.where((a < 0) ^ (b < 0), -q, q)


class Gaps(NamedTuple):
    """One row per pair: its events sorted (``t``), all gaps (``g``), the scored ones (over min-delta) sorted
    to the left of ``gs`` (the rest int64 max), how many (``total``), and which cells of ``gs`` they are."""

    t: Any
    g: Any
    gs: Any
    total: Any
    valid: Any

    def nearest_rank(self, values: Any, k: int) -> Any:
        """The k-th quartile (1-3) of each row of *values* (sorted, scored cells first), nearest-rank."""
        import numpy as np

        rank = np.maximum(_idiv(k * self.total + 3, 4), 1) - 1
        return np.take_along_axis(values, rank[:, None], 1)[:, 0]


def scored_gaps(times: Any, min_delta_us: int = 15 * US) -> Gaps:
    """Per row of *times* (int64 microseconds, events of one pair): its gaps, as the hunt's SQL keeps them."""
    import numpy as np

    t = np.sort(times, axis=1)
    g = np.diff(t, axis=1)
    keep = g > min_delta_us
    total = keep.sum(1)
    gs = np.sort(np.where(keep, g, np.iinfo(np.int64).max), axis=1)
    return Gaps(t, g, gs, total, np.arange(gs.shape[1])[None, :] < total[:, None])


def timing_scores(times: Any, min_delta_us: int = 15 * US, missed: int = 3, window_hours: int = 24) -> Any:
    """Per row of *times* (int64 microseconds, events of one pair): (timing_bp, scored gaps, cov_bp),
    computed as kqlmagic_plus.hunts.periodicity computes them in SQL."""
    return _timing(scored_gaps(times, min_delta_us), missed, window_hours)


def _timing(p: Gaps, missed: int = 3, window_hours: int = 24) -> Any:
    import numpy as np

    hours = 1 + (np.diff(p.t // HOUR, axis=1) != 0).sum(1)
    all_gaps = p.g.shape[1]
    gs, total, valid = p.gs, p.total, p.valid
    q1, q2, q3 = (p.nearest_rank(gs, k) for k in (1, 2, 3))
    dev = np.sort(np.where(valid, np.abs(gs - q2[:, None]), np.iinfo(np.int64).max), axis=1)
    mad = p.nearest_rank(dev, 2)
    misfit = (((20 * gs < 9 * q2[:, None]) | (2 * gs > (2 * missed + 1) * q2[:, None])) & valid).sum(1)
    spread = _idiv(mad * BP, q2)
    skew = np.where(q3 > q1, _idiv((q3 + q1 - 2 * q2) * BP, np.maximum(q3 - q1, 1)), 0)
    out = _idiv(misfit * BP, total)
    bursts = _idiv((all_gaps - total) * BP, all_gaps)
    timing = BP - spread - _idiv(np.abs(skew) * 1000, BP) - 2 * out - bursts
    return timing, total, _idiv(hours * BP, window_hours)


def _round_half_away(x: Any) -> Any:
    import numpy as np

    return (np.sign(x) * np.floor(np.abs(x) + 0.5)).astype(np.int64)


def evidence_scores(times: Any, min_delta_us: int = 15 * US) -> tuple[Any, Any]:
    """Per row of *times*: (lr_mn, scored gaps), computed as kqlmagic_plus.hunts.periodicity.likelihood
    computes them in SQL: the same doubles in the same order, each gap's term rounded to a milli-nat."""
    return _evidence(scored_gaps(times, min_delta_us), min_delta_us)


def _evidence(p: Gaps, min_delta_us: int = 15 * US) -> tuple[Any, Any]:
    import numpy as np

    from kqlmagic_plus.hunts.periodicity import EPS, JITTER_SHAPES, X_CAP, shape_constants

    gs, total, valid = p.gs, p.total, p.valid
    q2 = p.nearest_rank(gs, 2)
    x = np.minimum(np.where(valid, gs, q2[:, None]).astype(np.float64) / q2[:, None].astype(np.float64), X_CAP)
    best = None
    for a in JITTER_SHAPES:
        c1, s2, c2, s3, c3 = shape_constants(a)
        u2 = ((x - 1.0) / a) * ((x - 1.0) / a)
        mix = (c1 * np.exp(-((u2 * u2) * (u2 * u2))) + c2 * np.exp(-0.5 * (((x - 2.0) / s2) * ((x - 2.0) / s2)))
               + c3 * np.exp(-0.5 * (((x - 3.0) / s3) * ((x - 3.0) / s3))) + EPS * np.exp(-x))
        s = np.where(valid, _round_half_away(1000.0 * np.log(mix)), 0).sum(1)
        best = s if best is None else np.maximum(best, s)
    sg = np.where(valid, gs, 0).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (sg - total * min_delta_us).astype(np.float64) / (total.astype(np.float64) * q2.astype(np.float64))
        lr = best + total * _round_half_away(1000.0 * np.log(np.where(total > 0, ratio, 1.0))) + 1000 * total
    return lr, total


def random_pairs(gaps: int, samples: int, seed: int) -> tuple[Any, Any, int, Any]:
    """(timing_bp, cov_bp) of the random pairs with exactly *gaps* scored gaps among *samples* drawn
    pairs of one day, how many those are, and their evidence (lr_mn)."""
    import numpy as np

    rng = np.random.default_rng([seed, gaps])
    # Draw as many events as make *gaps* scored gaps the likeliest count (some gaps fall under min-delta),
    # and keep the pairs with exactly that many: the hunt looks a pair's threshold up by its scored gaps.
    short = 1 - np.exp(-(gaps + 1) * 15 * US / DAY)
    events = gaps + 1 + round(gaps * short / (1 - short))
    timings, covs, lrs = [], [], []
    left = samples
    while left > 0:
        m = min(left, 100_000)
        # Both scores of the same draws, from one sort of their events and gaps.
        p = scored_gaps(rng.integers(0, DAY, (m, events), dtype=np.int64))
        timing, total, cov = _timing(p)
        lr, _ = _evidence(p)
        timings.append(timing[total == gaps])
        covs.append(cov[total == gaps])
        lrs.append(lr[total == gaps])
        left -= m
    timing, cov, lr = np.concatenate(timings), np.concatenate(covs), np.concatenate(lrs)
    return timing, cov, len(timing), lr


def threshold(scores: Any, drawn: int, target: float = TARGET) -> tuple[int, dict[str, Any]]:
    """The score random pairs exceed with probability *target*: the log-linear tail fitted to the top
    exceedance decades drawn, extrapolated; at least the highest score drawn plus one."""
    import numpy as np

    n = len(scores)
    top = int(scores[-1]) if n else -BP
    # Exceedance rate at the k-th highest score, for k = 10 .. 1000 (the well-sampled part of the tail).
    ks = np.unique(np.clip(np.logspace(1, 3, 9).astype(int), 1, max(n, 1)))
    ks = ks[ks <= n]
    if len(ks) < 3:
        return top + 1, {"top": top, "fit": None}
    xs = np.array([scores[n - k] for k in ks], float)
    ys = np.log10(ks / drawn)
    slope, icept = np.polyfit(xs, ys, 1)
    if slope >= 0:
        return top + 1, {"top": top, "fit": None}
    x = (np.log10(target) - icept) / slope
    return max(top + 1, int(np.ceil(x))), {"top": top, "slope_per_1000bp": round(float(slope) * 1000, 3)}


def table(samples: int = SAMPLES, seed: int = SEED) -> dict[str, Any]:
    import numpy as np

    from kqlmagic_plus.hunts.periodicity import MIN_TIMING_GAPS

    rows: dict[str, int] = {}
    lr_rows: dict[str, int] = {}
    for g in GAPS:
        timing, cov, drawn, lr = random_pairs(g, samples, seed)
        if g >= MIN_TIMING_GAPS:
            rows[str(g)], _ = threshold(np.sort(timing[cov >= MIN_COVERAGE_BP]), drawn)
        lr_rows[str(g)], _ = threshold(np.sort(lr[cov >= MIN_COVERAGE_BP]), drawn)
    # Never lower for fewer gaps: the tail only grows as the gap count falls.
    for table_ in (rows, lr_rows):
        running = -(10**9)
        for g in sorted(map(int, table_), reverse=True):
            running = max(running, table_[str(g)])
            table_[str(g)] = running
    return {"target_per_pair": TARGET, "samples_per_gap_count": samples, "seed": seed, "window_hours": 24,
            "min_coverage_bp": MIN_COVERAGE_BP, "timing_bp_by_gaps": rows, "lr_mn_by_gaps": lr_rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--tail", action="store_true")
    ap.add_argument("--evidence", action="store_true", help="--tail of the evidence (milli-nats), not timing")
    ap.add_argument("--samples", type=int, default=SAMPLES)
    args = ap.parse_args()
    if args.tail:
        import numpy as np

        print("| gaps | pairs drawn | with coverage | 1e-3 | 1e-4 | 1e-5 | top | threshold at "
              f"{TARGET:g} |\n|---|---|---|---|---|---|---|---|")
        for g in GAPS:
            timing, cov, drawn, lr = random_pairs(g, args.samples, SEED)
            scores = np.sort((lr if args.evidence else timing)[cov >= MIN_COVERAGE_BP])
            q = [int(np.quantile(scores, 1 - p * drawn / max(len(scores), 1))) if p * drawn >= 1 else ""
                 for p in (1e-3, 1e-4, 1e-5)]
            thr, info = threshold(scores, drawn)
            print(f"| {g} | {drawn:,} | {len(scores):,} | {q[0]} | {q[1]} | {q[2]} | {info['top']} | {thr} |")
        return
    text = json.dumps(table(args.samples), indent=1, sort_keys=True) + "\n"
    if args.write:
        PATH.write_text(text, encoding="utf-8")
        print(f"wrote {PATH}")
    elif not PATH.exists() or PATH.read_text(encoding="utf-8") != text:
        raise SystemExit(f"{PATH} is out of date: python -m tools.beacon_null --write")


if __name__ == "__main__":
    main()
