"""The beacon hunt's periodicity score: how regular a pair's gaps are relative to their own period.

C2 implants jitter their sleep by a share of it (Cobalt Strike takes up to j off each sleep; others add
+- j), so a tolerance in seconds around one gap value cannot see a 60 s beacon with 50 % jitter. As the
best detectors do (RITA: median absolute deviation over the median, and Bowley's quartile skew;
Elastic: jitter as a fraction of the period), everything here is relative to the period estimate, the
median gap:

* spread  = MAD / median (uniform jitter of +-j gives j / 2);
* skew    = Bowley's (Q3 + Q1 - 2 Q2) / (Q3 - Q1) (Poisson traffic: +0.26; a jittered beacon: ~0);
* misfits = gaps that fit no check-in count: shorter than 0.45 x the median (Poisson's many short gaps)
  or longer than (missed + 0.5) x it (a session break; a missed check-in only doubles or triples a gap);
* bursts  = gaps at most min-delta long, of all the pair's gaps (browsing sessions);
* timing  = 1 - spread - skew_weight x |skew| - 2 x misfits - bursts, in 0..1;
* coverage = the UTC hours the pair is active over the hours of the window;
* evidence = the log-likelihood ratio of the gaps under a jittered beacon (see :data:`JITTER_SHAPES`)
  against random timing (exponential gaps shifted by min-delta, as only longer gaps are scored), in
  milli-nats: the Neyman-Pearson optimal test of "periodic" against "random", which the heuristic
  timing score approximates. On 20-50 gaps with 30-50 % jitter it is the only sub-score that keeps a
  1e-7 false-alarm rate and still sees the beacon.

The median and MAD are robust to missed check-ins (up to half the gaps may be doubled), which is why
they, and not a mean and standard deviation, carry the score. Quantiles are nearest-rank (the
``ceil(q n)``-th smallest gap), so every number is an integer (microseconds, basis points) and DuckDB
and Spark agree exactly; each quantile is one running count over the gaps sorted once per pair.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Mapping
from typing import Any

from kqlmagic_plus.hunts.sql import Dialect, Plan

_BP = 10_000
#: Weight of |Bowley skew| in the timing score: measured, a larger weight costs recall on slow beacons
#: with few gaps (their quartiles are noisy) more than it gains against Poisson traffic.
SKEW_WEIGHT_BP = 1_000


def relative(plan: Plan, d: Dialect, v: Mapping[str, Any], window: tuple[int, int] | None) -> None:
    """Add the steps ``qtl`` (quartiles), ``mad`` and ``rel`` (the sub-scores per scored pair) to *plan*;
    they read ``h2`` (scored gaps by value, with ``n``) and ``tot`` (gap counts and active hours)."""
    K = d.key
    missed = int(v["missed"])
    plan.add("rk", f"""
        SELECT {K}, g, n, CAST(sum(n) OVER (PARTITION BY {K} ORDER BY g
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cum
        FROM @h2""")

    def pick(rank: str, value: str = "r.g") -> str:
        return f"max(CASE WHEN r.cum - r.n < {rank} AND {rank} <= r.cum THEN {value} END)"

    r1, r2, r3 = (f"{d.idiv(e, '4')}" for e in ("t.total + 3", "2 * t.total + 3", "3 * t.total + 3"))
    plan.add("qtl", f"""
        SELECT {d.key_select('r')}, {pick(r1)} AS q1, {pick(r2)} AS q2, {pick(r3)} AS q3,
               max(t.total) AS total, max(t.all_gaps) AS all_gaps, max(t.hours) AS hours
        FROM @rk r JOIN @tot t ON {d.key_join('r', 't')}
        GROUP BY {d.key_select('r')}""", materialize=True)
    # Deviations from the median, by value: a second sort per pair (the MAD), and the misfit counts.
    plan.add("dev", f"""
        SELECT {d.key_select('h')}, abs(h.g - q.q2) AS dv, CAST(sum(h.n) AS BIGINT) AS n,
               CAST(sum(CASE WHEN 20 * h.g < 9 * q.q2 OR 2 * h.g > {2 * missed + 1} * q.q2 THEN h.n ELSE 0 END)
                    AS BIGINT) AS misfit
        FROM @h2 h JOIN @qtl q ON {d.key_join('h', 'q')}
        GROUP BY {d.key_select('h')}, abs(h.g - q.q2)""")
    plan.add("dcum", f"""
        SELECT {K}, dv, n, misfit, CAST(sum(n) OVER (PARTITION BY {K} ORDER BY dv
            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS cum
        FROM @dev""")
    plan.add("mad", f"""
        SELECT {d.key_select('r')}, {pick(r2, 'r.dv')} AS mad, CAST(sum(r.misfit) AS BIGINT) AS misfit
        FROM @dcum r JOIN @qtl t ON {d.key_join('r', 't')}
        GROUP BY {d.key_select('r')}""")
    hours = max(1, (window[1] - window[0]) // 3_600_000_000) if window else 24 * int(v.get("lookback_days", 1))
    spread = f"{d.idiv(f'm.mad * {_BP}', 'q.q2')}"
    skew = (f"CASE WHEN q.q3 > q.q1 THEN {d.idiv(f'(q.q3 + q.q1 - 2 * q.q2) * {_BP}', 'q.q3 - q.q1')} "
            "ELSE 0 END")
    misfit = f"{d.idiv(f'm.misfit * {_BP}', 'q.total')}"
    bursts = f"{d.idiv(f'(q.all_gaps - q.total) * {_BP}', 'q.all_gaps')}"
    plan.add("rel", f"""
        SELECT {K}, q2, mad, skew_bp, out_bp, hours, cov_bp, total, burst_bp,
               {_BP} - spread_bp - {d.idiv(f'abs(skew_bp) * {SKEW_WEIGHT_BP}', str(_BP))} - 2 * out_bp
                   - burst_bp AS timing_bp
        FROM (SELECT {d.key_select('q')}, q.q2, m.mad, {spread} AS spread_bp, {skew} AS skew_bp,
                     {misfit} AS out_bp, {bursts} AS burst_bp, q.hours, q.total,
                     {d.idiv(f'q.hours * {_BP}', str(hours))} AS cov_bp
              FROM @qtl q JOIN @mad m ON {d.key_join('q', 'm')}) x""", materialize=True)


#: The jittered beacon the evidence tests for, relative to the median gap x = g / median: with
#: probability W1 one sleep, a flat-topped bump of half-width a around 1 (a uniform jitter of +-a,
#: softened at the edges because the median only estimates the period; Cobalt Strike's shortened sleeps
#: of up to j are +-j/(2-j) around their median), W2 / W3 a missed check-in (two / three sleeps: bumps at
#: 2 and 3 as wide as their jitter adds up), EPS anything else (exponential). Each half-width a is tried
#: and the best kept; tools/beacon_null.py calibrates that maximum on random pairs.
JITTER_SHAPES = (0.2, 0.35, 0.55)
W1, W2, W3, EPS = 0.85, 0.12, 0.02, 0.01
#: x is capped here: a gap 20 medians long already costs ~25 nats.
X_CAP = 20.0
#: The evidence test needs this many gaps: under it no beacon with 30 % jitter or more clears the 1e-7
#: threshold anyway, and the mode decides.
MIN_EVIDENCE_GAPS = 14
#: Browsing sessions leave many gaps under min-delta and a pile of 16-26 s ones just over it, which look
#: like a fast beacon; a beacon's own gaps are never that short. The evidence path takes pairs with at most
#: this share (basis points) of their gaps at or under min-delta (the labelled days' browsing pairs: most).
MAX_EVIDENCE_BURSTS_BP = 2_000
#: The evidence is computed only for pairs whose spread (MAD / median) is at most this (JitterPct 90): a beacon
#: with 50 % jitter and missed check-ins spreads about 0.3, random pairs 0.7, and random pairs of 14-100 gaps
#: over this spread were measured never to come near the evidence thresholds (at most 4.8 nats at 15 gaps,
#: 2.9 at 25, against 16.7 and 14.9). On a 100 M-event day it leaves ~10 % of the pairs to score. The
#: calibration scores every draw, so the thresholds hold for the screened pairs too.
MAX_EVIDENCE_SPREAD_BP = 4_500


def shape_constants(a: float) -> tuple[float, float, float, float, float]:
    """(c1, s2, c2, s3, c3): the mixture's coefficients for half-width *a*, as the SQL and
    tools/beacon_null.py both use them (the same doubles, so both compute the same sums)."""
    c1 = W1 / (2 * math.gamma(1 + 1 / 8) * a)
    s2, s3 = a * math.sqrt(2 / 3), a
    c2 = W2 / (s2 * math.sqrt(2 * math.pi))
    c3 = W3 / (s3 * math.sqrt(2 * math.pi))
    return c1, s2, c2, s3, c3


def _dbl(value: float) -> str:
    # A bare 0.2 is a DECIMAL on both engines; the doubles must be the very ones numpy uses.
    return f"CAST({value!r} AS DOUBLE)"


def likelihood(plan: Plan, d: Dialect, v: Mapping[str, Any], min_delta_us: int) -> None:
    """Add ``lr`` (per scored pair: ``lr_mn``, the evidence in milli-nats) to *plan*; reads ``h2``, ``qtl`` and
    ``rel`` (only pairs the evidence verdict can take, under :data:`MAX_EVIDENCE_SPREAD_BP`, are scored). Only
    gaps over min-delta are scored, so random timing is an exponential shifted by min-delta (mean: the gaps'
    mean minus min-delta): against a plain exponential a fast Poisson pair, its short gaps cut away, looks like
    a beacon by hundreds of nats. Each gap's log density is rounded to a whole milli-nat before it is summed, so
    the sums are integers and DuckDB and Spark agree (a libm and a JVM exp/ln differ at most in the last bit)."""
    K = d.key
    shapes = " UNION ALL ".join(
        "SELECT " + ", ".join(f"{_dbl(val)} AS {name}" for name, val in zip(
            ("a", "c1", "s2", "c2", "s3", "c3"), (a, *shape_constants(a)), strict=True))
        for a in JITTER_SHAPES)
    plan.add("lrx", f"""
        SELECT {d.key_select('h')}, h.g, h.n, z.a, z.c1, z.s2, z.c2, z.s3, z.c3,
               least(CAST(h.g AS DOUBLE) / q.q2, {_dbl(X_CAP)}) AS x
        FROM @h2 h JOIN @rel q ON {d.key_join('h', 'q')} CROSS JOIN ({shapes}) z
        WHERE q.total >= {MIN_EVIDENCE_GAPS} AND {_evidence_takes(v, 'q')}
          AND q.mad * {_BP} <= {MAX_EVIDENCE_SPREAD_BP} * q.q2""")
    one, two, three, half = _dbl(1.0), _dbl(2.0), _dbl(3.0), _dbl(0.5)
    plan.add("lru", f"""
        SELECT {K}, g, n, a, x, c1, s2, c2, s3, c3, ((x - {one}) / a) * ((x - {one}) / a) AS u2 FROM @lrx""")
    mix = (f"c1 * exp(-((u2 * u2) * (u2 * u2))) + c2 * exp(-{half} * (((x - {two}) / s2) * ((x - {two}) / s2)))"
           f" + c3 * exp(-{half} * (((x - {three}) / s3) * ((x - {three}) / s3))) + {_dbl(EPS)} * exp(-x)")
    plan.add("lra", f"""
        SELECT {K}, a, CAST(sum(n * CAST(round({_dbl(1000.0)} * ln({mix})) AS BIGINT)) AS BIGINT) AS s,
               CAST(sum(g * n) AS BIGINT) AS sg
        FROM @lru GROUP BY {K}, a""")
    ratio = f"CAST(b.sg - q.total * {int(min_delta_us)} AS DOUBLE) / (CAST(q.total AS DOUBLE) * q.q2)"
    plan.add("lr", f"""
        SELECT {d.key_select('b')},
               max(b.s) + max(q.total) * max(CAST(round({_dbl(1000.0)} * ln({ratio})) AS BIGINT))
                   + 1000 * max(q.total) AS lr_mn
        FROM @lra b JOIN @qtl q ON {d.key_join('b', 'q')}
        GROUP BY {d.key_select('b')}""", materialize=True)


#: Few gaps make a noisy score: a pair needs this many for the timing test (measured on a 30 M-event lake of
#: uniformly random traffic: 335 random pairs of 12-13 gaps scored 53-65).
MIN_TIMING_GAPS = 20
#: Per scored-gap count, the timing score (basis points) random (Poisson) pairs reach with probability
#: under 1e-7, drawn and fitted by tools/beacon_null.py. A fixed margin flagged 41 of 1.6 M random pairs of
#: 20-40 gaps on a 100 M-event day; the score must clear both this and min-timing.
NULL_FILE = "data/beacon_null.json"


@functools.lru_cache(maxsize=2)
def null_thresholds(key: str = "timing_bp_by_gaps") -> tuple[tuple[int, int], ...]:
    """(scored gaps, threshold) from :data:`NULL_FILE`, by gap count, for the timing score
    (``timing_bp_by_gaps``, basis points) or the evidence (``lr_mn_by_gaps``, milli-nats); a count between
    two takes the lower one's threshold, a count over the last the last one's (the tail only shrinks with
    more gaps)."""
    from importlib import resources

    doc = json.loads(resources.files("kqlmagic_plus").joinpath(NULL_FILE).read_text(encoding="utf-8"))
    return tuple(sorted((int(k), int(v)) for k, v in doc[key].items()))


def _null_threshold_sql(total: str, key: str = "timing_bp_by_gaps") -> str:
    table = null_thresholds(key)
    steps = [s for k, s in enumerate(table) if k == 0 or s[1] != table[k - 1][1]]
    whens = " ".join(f"WHEN {total} < {nxt} THEN {thr}" for (_, thr), (nxt, _) in itertools.pairwise(steps))
    return f"CASE {whens} ELSE {steps[-1][1]} END"


def score_verdict(v: Mapping[str, Any], alias: str = "r") -> str:
    """SQL: the pair is periodic by the relative score (FALSE when the method is ``mode``): at least
    min-timing and over what random traffic with as many gaps reaches, integers only, so both engines
    decide alike."""
    if v["method"] == "mode":
        return "FALSE"
    timing = round(v["min_timing"] * 100)
    cov = round(v["min_coverage"] * 100)
    a = alias
    return (f"({a}.total >= {MIN_TIMING_GAPS} AND {a}.cov_bp >= {cov} AND {a}.timing_bp > {timing} AND "
            f"{a}.timing_bp > {_null_threshold_sql(f'{a}.total')})")


def evidence_verdict(v: Mapping[str, Any], alias: str = "r") -> str:
    """SQL: the pair's evidence (``lr_mn``, NULL under MIN_EVIDENCE_GAPS gaps) is over what random traffic
    with as many gaps reaches with probability 1e-7, and it covers min-coverage of the window's hours
    (FALSE when the method is ``mode``)."""
    if v["method"] == "mode":
        return "FALSE"
    a = alias
    return (f"({a}.lr_mn IS NOT NULL AND {_evidence_takes(v, a)} AND "
            f"{a}.lr_mn > {_null_threshold_sql(f'{a}.total', 'lr_mn_by_gaps')})")


def _evidence_takes(v: Mapping[str, Any], a: str) -> str:
    """SQL: the pair (a ``rel`` row) is one the evidence judges: min-coverage, and few enough bursts."""
    return f"{a}.cov_bp >= {round(v['min_coverage'] * 100)} AND {a}.burst_bp <= {MAX_EVIDENCE_BURSTS_BP}"


def size_score(n: int | None, s1: Any, s2: Any) -> float | None:
    """Data-size regularity, 0-100: 100 x (1 - coefficient of variation of SentBytes), from exact integer
    sums (the same on every engine). None without sizes."""
    if not n or s1 is None or s2 is None:
        return None
    n, s1, s2 = int(n), int(s1), int(s2)
    if s1 <= 0:
        return 100.0
    var = max(0, n * s2 - s1 * s1) / (n * n)
    cv = var ** 0.5 / (s1 / n)
    return round(100 * max(0.0, 1 - cv), 1)


#: The verdict's bits: which tests flagged the pair.
FLAGGED_BY = {bits: "+".join(name for bit, name in ((1, "mode"), (2, "timing"), (4, "evidence")) if bits & bit)
              for bits in range(1, 8)}
