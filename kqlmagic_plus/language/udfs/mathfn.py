"""Special functions SQL lacks: ``erf``, ``erfc``, ``gamma``, ``loggamma`` and the beta distribution's
``beta_cdf``, ``beta_pdf`` and ``beta_inv`` (by SciPy).

Out-of-domain arguments give what the KQL reference shows: NaN for ``beta_cdf``/``beta_pdf`` outside
0 <= x <= 1 or with a negative alpha or beta, null for ``beta_inv`` outside 0 <= p <= 1 (NaN for a negative
alpha or beta).
"""

from __future__ import annotations

import math

from kqlmagic_plus.language.udfs import udf


@udf("erf", ("real",), "real")
def erf(x: float) -> float:
    return math.erf(x)


@udf("erfc", ("real",), "real")
def erfc(x: float) -> float:
    return math.erfc(x)


@udf("gamma", ("real",), "real")
def gamma(x: float) -> float | None:
    try:
        return math.gamma(x)
    except ValueError:  # a pole (0, -1, -2 ...): no value
        return None
    except OverflowError:
        return math.inf


@udf("loggamma", ("real",), "real")
def loggamma(x: float) -> float | None:
    try:
        return math.lgamma(x)
    except ValueError:
        return None
    except OverflowError:
        return math.inf


def _bad_shape(alpha: float, beta: float) -> bool:
    return not (alpha > 0 and beta > 0)


@udf("beta_cdf", ("real", "real", "real"), "real")
def beta_cdf(x: float, alpha: float, beta: float) -> float:
    from scipy import special

    if not 0 <= x <= 1 or _bad_shape(alpha, beta):
        return math.nan
    return float(special.betainc(alpha, beta, x))


@udf("beta_pdf", ("real", "real", "real"), "real")
def beta_pdf(x: float, alpha: float, beta: float) -> float:
    from scipy import stats

    if not 0 <= x <= 1 or _bad_shape(alpha, beta):
        return math.nan
    return float(stats.beta.pdf(x, alpha, beta))


@udf("beta_inv", ("real", "real", "real"), "real")
def beta_inv(p: float, alpha: float, beta: float) -> float | None:
    from scipy import special

    if not 0 <= p <= 1:
        return None
    if _bad_shape(alpha, beta):
        return math.nan
    return float(special.betaincinv(alpha, beta, p))
