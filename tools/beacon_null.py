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
    python -m tools.beacon_null --tail            # the weighted tail per gap count beside plain draws'
    python -m tools.beacon_null --tail --gaps 24 --plain 6000000   # one count, checked against 6 M plain draws

A rate of 1e-7 is out of reach of plain draws (a few million per gap count), and extrapolating their tail
was off by several nats: the draws are importance-sampled instead (:func:`weighted_pairs`: regular-looking
pairs drawn often, each weighted by how much likelier random timing makes it), which estimates the rate at
1e-7 with a standard error, and the threshold is the lowest score whose estimate plus two standard errors is
under TARGET. `--tail` prints the weighted tail beside plain draws' at the rates both reach.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

PATH = Path(__file__).resolve().parent.parent / "kqlmagic_plus" / "data" / "beacon_null.json"
US = 1_000_000
DAY = 86_400 * US
HOUR = 3_600 * US
BP = 10_000
#: Per pair and gap count: with a million candidate pairs, about 0.1 random pair flagged a day.
TARGET = 1e-7
#: The gap counts calibrated, denser where the thresholds move fast; a count between two is given the threshold
#: of the lower one (the thresholds never rise with more gaps: see table()), one above the last the last one's.
GAPS = (14, 15, 16, 17, 18, 20, 22, 24, 26, 28, 30, 33, 36, 40, 45, 50, 55, 60, 70, 80, 90, 100, 120, 150)
SAMPLES = 400_000
#: The importance sampler (weighted_pairs): the share of plain random draws, the gap shapes k of its gamma
#: gaps and the span of their means P, as a share of the day over the gap count (a pair must cover half the
#: day's hours, so regular pairs have P of 0.45-1 of that).
DEFENSIVE = 0.1
SAMPLER_SHAPES = (1.0, 2.0, 3.5, 6.0, 10.0, 18.0, 32.0)
SAMPLER_SPAN = (0.42, 1.02, 10)
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


def events_for(gaps: int) -> int:
    """Events to draw for pairs with *gaps* scored gaps: one more, and the draws where a gap falls under
    min-delta are dropped (the hunt looks a pair's threshold up by its scored gaps). A random pair with as
    many scored gaps and some short ones besides has the same scored gaps, and its timing score only loses
    the bursts' share, so leaving them out errs on the safe side."""
    return gaps + 1


def random_pairs(gaps: int, samples: int, seed: int) -> tuple[Any, Any, int, Any]:
    """(timing_bp, cov_bp) of the random pairs with exactly *gaps* scored gaps among *samples* drawn
    pairs of one day, how many those are, and their evidence (lr_mn): plain draws, no weights."""
    import numpy as np

    rng = np.random.default_rng([seed, gaps])
    events = events_for(gaps)
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


class Weighted(NamedTuple):
    """Importance-sampled draws of one gap count: the scores of the kept draws (exactly that many scored
    gaps), each draw's log weight (random-timing density over the sampler's), and how many were drawn."""

    timing: Any
    cov: Any
    lr: Any
    log_w: Any
    drawn: int


def weighted_pairs(gaps: int, samples: int, seed: int) -> Weighted:
    """Draws of one day's events for pairs with *gaps* scored gaps, from a sampler that makes regular-looking
    pairs often, weighted back to random timing.

    Random timing (n events uniform over the day) has the density n! / DAY^n at every sorted draw. The sampler
    is a mixture: with probability :data:`DEFENSIVE` a random-timing draw itself (so no weight exceeds
    1 / DEFENSIVE), otherwise a start uniform in what the gaps leave of the day and n - 1 gamma-distributed
    gaps of mean P and shape k (k = 1 is random timing, larger k more regular) for every (P, k) of a grid
    around the day over the gap count, a draw that overruns the day counted as drawn and dropped. The mean
    of weight x [score > s] over all draws is then an unbiased estimate of the chance a random pair scores
    over s, with its standard error, far below the rates plain draws can reach."""
    import numpy as np

    rng = np.random.default_rng([seed, gaps, 1])
    n = events_for(gaps)
    comps = [(p, k) for p in DAY / (n - 1) * np.geomspace(*SAMPLER_SPAN) for k in SAMPLER_SHAPES]
    mean = np.array([p for p, _ in comps])
    shape = np.array([k for _, k in comps])
    theta = mean / shape
    norm = (n - 1) * (np.array([math.lgamma(k) for k in shape]) + shape * np.log(theta))
    log_p0 = math.lgamma(n + 1) - n * math.log(DAY)
    out: list[list[Any]] = [[], [], [], []]
    left = samples
    while left > 0:
        m = min(left, 50_000)
        left -= m
        m0 = int(rng.binomial(m, DEFENSIVE))
        pick = rng.integers(0, len(comps), m - m0)
        g = rng.gamma(shape[pick][:, None], theta[pick][:, None], (m - m0, n - 1))
        span = g.sum(1)
        fits = span < DAY
        g, span = g[fits], span[fits]
        start = rng.random(len(span)) * (DAY - span)
        drawn = np.concatenate([start[:, None], start[:, None] + np.cumsum(g, 1)], 1)
        times = np.concatenate([rng.integers(0, DAY, (m0, n), dtype=np.int64),
                                np.floor(drawn).astype(np.int64)])
        p = scored_gaps(times)
        gap = np.maximum(p.g, 1).astype(np.float64)
        log_g, sum_g = np.log(gap).sum(1), gap.sum(1)
        width = np.log(DAY - (p.t[:, -1] - p.t[:, 0]).astype(np.float64))
        log_q = (shape - 1) * log_g[:, None] - sum_g[:, None] / theta - norm - width[:, None]
        top = log_q.max(1)
        log_mix = top + np.log(np.exp(log_q - top[:, None]).mean(1))
        log_w = log_p0 - np.logaddexp(math.log(DEFENSIVE) + log_p0, math.log(1 - DEFENSIVE) + log_mix)
        timing, total, cov = _timing(p)
        lr, _ = _evidence(p)
        keep = total == gaps
        for col, v in zip(out, (timing, cov, lr, log_w), strict=True):
            col.append(v[keep])
    timing, cov, lr, log_w = (np.concatenate(c) for c in out)
    return Weighted(timing, cov, lr, log_w, samples)


def exceedance(scores: Any, log_w: Any, drawn: int) -> tuple[Any, Any, Any]:
    """(score values, high to low; the estimated chance a random pair scores over each; its standard error)."""
    import numpy as np

    order = np.argsort(-scores, kind="stable")
    s, w = scores[order], np.exp(log_w[order])
    cum = np.concatenate([[0.0], np.cumsum(w)]) / drawn
    cum2 = np.concatenate([[0.0], np.cumsum(w * w)]) / drawn
    over = np.searchsorted(-s, -s, side="left")  # how many score strictly more than each
    p = cum[over]
    se = np.sqrt(np.maximum(cum2[over] - p * p, 0.0) / drawn)
    return s, p, se


def threshold(scores: Any, log_w: Any, drawn: int, target: float = TARGET) -> tuple[int, dict[str, Any]]:
    """The lowest score s with P(random pair scores over s) under *target* even at the estimate plus two
    standard errors; the highest score drawn plus one when no drawn score qualifies."""
    import numpy as np

    if not len(scores):
        return -BP, {"top": None}
    s, p, se = exceedance(scores, log_w, drawn)
    ok = p + 2 * se <= target
    if not ok[0]:
        return int(s[0]) + 1, {"top": int(s[0])}
    k = int(np.argmin(ok)) if not ok.all() else len(ok)
    return int(s[k - 1]), {"top": int(s[0]), "p": float(p[k - 1]), "se": float(se[k - 1])}


def table(samples: int = SAMPLES, seed: int = SEED) -> dict[str, Any]:

    from kqlmagic_plus.hunts.periodicity import MIN_TIMING_GAPS

    rows: dict[str, int] = {}
    lr_rows: dict[str, int] = {}
    for g in GAPS:
        d = weighted_pairs(g, samples, seed)
        ok = d.cov >= MIN_COVERAGE_BP
        if g >= MIN_TIMING_GAPS:
            rows[str(g)], _ = threshold(d.timing[ok], d.log_w[ok], d.drawn)
        lr_rows[str(g)], _ = threshold(d.lr[ok], d.log_w[ok], d.drawn)
    # Never lower for fewer gaps, so that a count between two calibrated ones may take the lower one's: both
    # tails grow as the gap count falls (measured: the estimates only rise there, but for the noise).
    for table_ in (rows, lr_rows):
        running = -(10**9)
        for g in sorted(map(int, table_), reverse=True):
            running = max(running, table_[str(g)])
            table_[str(g)] = running
    return {"target_per_pair": TARGET, "samples_per_gap_count": samples, "seed": seed, "window_hours": 24,
            "method": "importance sampling (tools/beacon_null.py weighted_pairs), estimate + 2 SE under target",
            "min_coverage_bp": MIN_COVERAGE_BP, "timing_bp_by_gaps": rows, "lr_mn_by_gaps": lr_rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--tail", action="store_true")
    ap.add_argument("--samples", type=int, default=SAMPLES, help="weighted draws per gap count")
    ap.add_argument("--plain", type=int, default=SAMPLES, help="--tail: plain draws per gap count beside them")
    ap.add_argument("--gaps", default="", help="--tail: these gap counts (comma list) instead of all")
    args = ap.parse_args()
    if args.tail:
        import numpy as np

        rates = (1e-3, 1e-4, 1e-5, 1e-6)
        print("| gaps | score | " + " | ".join(f"{r:g} plain | {r:g} weighted" for r in rates)
              + f" | threshold at {TARGET:g} |\n|---|---|" + "---|---|" * len(rates) + "---|")
        for g in (int(x) for x in args.gaps.split(",")) if args.gaps else GAPS:
            d = weighted_pairs(g, args.samples, SEED)
            timing, cov, _, lr = random_pairs(g, args.plain, SEED)
            ok = d.cov >= MIN_COVERAGE_BP
            for name, mine, plain in (("timing", d.timing, timing), ("evidence", d.lr, lr)):
                s_, p_, _ = exceedance(mine[ok], d.log_w[ok], d.drawn)
                top = np.sort(plain[cov >= MIN_COVERAGE_BP])[::-1]
                cells = []
                for rate in rates:
                    k = int(rate * args.plain)
                    cells.append(str(int(top[k - 1])) if 1 <= k <= len(top) else "")
                    cells.append(str(int(s_[max(int(np.searchsorted(p_, rate, side="right")) - 1, 0)])))
                thr, _ = threshold(mine[ok], d.log_w[ok], d.drawn)
                print(f"| {g} | {name} | {' | '.join(cells)} | {thr} |")
        return
    text = json.dumps(table(args.samples), indent=1, sort_keys=True) + "\n"
    if args.write:
        PATH.write_text(text, encoding="utf-8")
        print(f"wrote {PATH}")
    elif not PATH.exists() or PATH.read_text(encoding="utf-8") != text:
        raise SystemExit(f"{PATH} is out of date: python -m tools.beacon_null --write")


if __name__ == "__main__":
    main()
