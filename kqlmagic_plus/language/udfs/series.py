"""Series algorithms SQL cannot say, over a dynamic array given as JSON text: statistics, interpolation, filters,
seasonality and fits. Each returns JSON text (the compiler parses it back into a dynamic value), or None where
the reference answers null.

Element rules: a number is a JSON int or float (not a bool); anything else is a missing element.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np

from kqlmagic_plus.language.udfs import udf


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _array(text: str) -> list[Any] | None:
    try:
        v = json.loads(text)
    except (TypeError, ValueError):
        return None
    return v if isinstance(v, list) else None


def _floats(items: list[Any]) -> np.ndarray:
    return np.array([float(v) if _is_num(v) else math.nan for v in items], dtype=float)


def _num(x: float) -> float | None:
    """A double for JSON: NaN and infinities are kept as JSON can carry them (Python's json writes them)."""
    return float(x)


def _dumps(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"))


def _param(text: str | None) -> Any:
    """A scalar parameter passed through as JSON text (so a null placeholder stays null)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


# -- statistics ---------------------------------------------------------------------------------------------

_STATS = ("min", "min_idx", "max", "max_idx", "avg", "stdev", "variance", "sum", "len")


def stats(items: list[Any], ignore_nonfinite: bool) -> dict[str, Any]:
    vals = _floats(items)
    finite = np.isfinite(vals)
    out: dict[str, Any] = dict.fromkeys(_STATS)
    out["len"] = len(items)
    if not ignore_nonfinite and not finite.all():
        return out
    idx = np.flatnonzero(finite)
    if idx.size == 0:
        return out
    v = vals[idx]
    out["min"], out["max"] = float(v.min()), float(v.max())
    out["min_idx"], out["max_idx"] = int(idx[int(np.argmin(v))]), int(idx[int(np.argmax(v))])
    out["avg"] = float(v.mean())
    var = float(v.var(ddof=1)) if v.size > 1 else 0.0
    out["variance"], out["stdev"] = var, math.sqrt(var)
    out["sum"] = float(v.sum())
    return out


@udf("series_stats", ("string", "bool"), "string")
def series_stats(text: str, ignore_nonfinite: bool) -> str | None:
    items = _array(text)
    return None if items is None else _dumps(stats(items, bool(ignore_nonfinite)))


def _pairs(a: list[Any], b: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of the two arrays cut to the shorter, both elements numeric."""
    k = min(len(a), len(b))
    keep = [(float(x), float(y)) for x, y in zip(a[:k], b[:k], strict=True) if _is_num(x) and _is_num(y)]
    if not keep:
        return np.array([]), np.array([])
    xs, ys = zip(*keep, strict=True)
    return np.array(xs), np.array(ys)


@udf("series_cosine_similarity", ("string", "string", "real", "real"), "real", nulls=True)
def series_cosine_similarity(a: str | None, b: str | None, mag1: float | None, mag2: float | None) -> float | None:
    xs, ys = (None, None) if a is None or b is None else (_array(a), _array(b))
    if xs is None or ys is None or not xs or not ys:
        return None
    x, y = _pairs(xs, ys)
    if x.size == 0:
        return None
    m1 = float(np.sqrt(np.dot(x, x))) if mag1 is None else mag1
    m2 = float(np.sqrt(np.dot(y, y))) if mag2 is None else mag2
    if m1 == 0 or m2 == 0:
        return None
    return float(np.dot(x, y)) / (m1 * m2)


@udf("series_pearson_correlation", ("string", "string"), "real")
def series_pearson_correlation(a: str, b: str) -> float | None:
    xs, ys = _array(a), _array(b)
    if xs is None or ys is None or len(xs) != len(ys) or len(xs) < 2:
        return None
    if not all(_is_num(v) for v in xs) or not all(_is_num(v) for v in ys):
        return None
    x, y = np.array(xs, dtype=float), np.array(ys, dtype=float)
    dx, dy = x - x.mean(), y - y.mean()
    den = math.sqrt(float(np.dot(dx, dx)) * float(np.dot(dy, dy)))
    return None if den == 0 else float(np.dot(dx, dy)) / den


@udf("series_magnitude", ("string",), "real")
def series_magnitude(text: str) -> float | None:
    items = _array(text)
    if items is None:
        return None
    v = np.array([float(x) for x in items if _is_num(x)], dtype=float)
    return float(np.sqrt(np.dot(v, v)))


# -- missing values -----------------------------------------------------------------------------------------

def _missing(v: Any, placeholder: Any) -> bool:
    if placeholder is None:
        return v is None
    return _is_num(v) and _is_num(placeholder) and float(v) == float(placeholder)


def _carried(items: list[Any], ph: Any) -> list[Any]:
    """*items* with each missing one replaced by the last present one before it (kept when there is none)."""
    last, out = None, []
    for v in items:
        if _missing(v, ph):
            out.append(last if last is not None else v)
        else:
            last = v
            out.append(v)
    return out


@udf("series_fill_forward", ("string", "string"), "string", nulls=True)
def series_fill_forward(text: str | None, placeholder: str | None) -> str | None:
    items = None if text is None else _array(text)
    if items is None:
        return None
    return _dumps(_carried(items, _param(placeholder)))


@udf("series_fill_backward", ("string", "string"), "string", nulls=True)
def series_fill_backward(text: str | None, placeholder: str | None) -> str | None:
    items = None if text is None else _array(text)
    if items is None:
        return None
    return _dumps(_carried(items[::-1], _param(placeholder))[::-1])  # forward over the reversed series


@udf("series_fill_const", ("string", "string", "string"), "string", nulls=True)
def series_fill_const(text: str | None, const: str | None, placeholder: str | None) -> str | None:
    items = None if text is None else _array(text)
    if items is None:
        return None
    ph, c = _param(placeholder), _param(const)
    return _dumps([c if _missing(v, ph) else v for v in items])


@udf("series_fill_linear", ("string", "string", "bool", "string"), "string", nulls=True)
def series_fill_linear(text: str | None, placeholder: str | None, fill_edges: bool | None,
                       const: str | None) -> str | None:
    items = None if text is None else _array(text)
    if items is None:
        return None
    ph, c = _param(placeholder), _param(const)
    edges = True if fill_edges is None else bool(fill_edges)
    known = [i for i, v in enumerate(items) if not _missing(v, ph) and _is_num(v)]
    if not known:
        if c is None:
            return _dumps(items)
        return _dumps([float(c) if _is_num(c) else c] * len(items))
    whole = all(isinstance(items[i], int) for i in known)
    out = list(items)
    for left, right in itertools.pairwise(known):
        a, b = float(items[left]), float(items[right])
        for i in range(left + 1, right):
            if _missing(items[i], ph):
                v = a + (b - a) * (i - left) / (right - left)
                # Integer series get the interpolated value without its fraction, as the reference shows.
                out[i] = int(v) if whole else v
    if edges:
        for i in range(known[0]):
            if _missing(items[i], ph):
                out[i] = items[known[0]]
        for i in range(known[-1] + 1, len(items)):
            if _missing(items[i], ph):
                out[i] = items[known[-1]]
    return _dumps(out)


# -- filters ------------------------------------------------------------------------------------------------

def _all_numbers(text: str) -> np.ndarray | None:
    items = _array(text)
    if items is None or not all(_is_num(v) for v in items):
        return None
    return np.array(items, dtype=float)


@udf("series_iir", ("string", "string", "string"), "string")
def series_iir(text: str, numerators: str, denominators: str) -> str | None:
    x, b, a = _all_numbers(text), _all_numbers(numerators), _all_numbers(denominators)
    if x is None or b is None or a is None or a.size == 0 or a[0] == 0 or b.size == 0:
        return None
    y = np.zeros(x.size)
    for i in range(x.size):
        acc = sum(b[k] * x[i - k] for k in range(min(b.size, i + 1)))
        acc -= sum(a[k] * y[i - k] for k in range(1, min(a.size, i + 1)))
        y[i] = acc / a[0]
    return _dumps([_num(v) for v in y])


@udf("series_fir", ("string", "string", "bool", "bool"), "string", nulls=True)
def series_fir(text: str | None, filt: str | None, normalize: bool | None, center: bool | None) -> str | None:
    if text is None or filt is None:
        return None
    x, f = _all_numbers(text), _all_numbers(filt)
    if x is None or f is None or f.size == 0:
        return None
    negative = bool((f < 0).any())
    norm = (not negative) if normalize is None else bool(normalize)
    if norm:
        if negative or f.sum() == 0:
            return None
        f = f / f.sum()
    shift = (f.size - 1) // 2 if center else 0
    y = []
    for i in range(x.size):
        j = i + shift
        acc = 0.0
        for k in range(f.size):
            if 0 <= j - k < x.size:
                acc += f[k] * x[j - k]
        y.append(_num(acc))
    return _dumps(y)


@udf("series_seasonal", ("string", "long"), "string")
def series_seasonal(text: str, period: int) -> str | None:
    x = _all_numbers(text)
    if x is None or period <= 0:
        return None
    med = [float(np.median(x[k::period])) for k in range(min(period, x.size))]
    return _dumps([med[i % period] for i in range(x.size)])


# -- fits ---------------------------------------------------------------------------------------------------

def _fit(y: np.ndarray, x: np.ndarray, degree: int) -> dict[str, Any]:
    coef = np.polyfit(x, y, degree)
    fit = np.polyval(coef, x)
    resid = y - fit
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    rsq = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot else 1.0
    ddof = 1 if y.size > 1 else 0
    return {"rsquare": rsq, "coefficients": [float(c) for c in coef], "variance": float(y.var(ddof=ddof)),
            "rvariance": float(resid.var(ddof=ddof)), "fit": [float(v) for v in fit]}


@udf("series_fit_line", ("string",), "string")
def series_fit_line(text: str) -> str | None:
    y = _all_numbers(text)
    if y is None or y.size < 2:
        return None
    # Closed-form least squares over x = 1..n: exact where the data is (a lstsq solver leaves 1e-16 residues).
    x = np.arange(1, y.size + 1, dtype=float)
    dx = x - x.mean()
    slope = float(np.dot(dx, y - y.mean()) / np.dot(dx, dx))
    icept = float(y.mean() - slope * x.mean())
    fit = icept + slope * x
    resid = y - fit
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    rsq = 1.0 - float(np.sum(resid**2)) / ss_tot if ss_tot else 1.0
    return _dumps({"rsquare": rsq, "slope": slope, "variance": float(y.var(ddof=1)),
                   "rvariance": float(resid.var(ddof=1)), "interception": icept,
                   "line_fit": [float(v) for v in fit]})


@udf("series_fit_poly", ("string", "string", "long"), "string", nulls=True)
def series_fit_poly(text: str | None, xs: str | None, degree: int | None) -> str | None:
    y = None if text is None else _all_numbers(text)
    if y is None:
        return None
    x = np.arange(1, y.size + 1, dtype=float) if xs is None else _all_numbers(xs)
    deg = 1 if degree is None else int(degree)
    if x is None or x.size != y.size or deg < 1 or y.size <= deg:
        return None
    r = _fit(y, x, deg)
    return _dumps({"rsquare": r["rsquare"], "coefficients": r["coefficients"], "variance": r["variance"],
                   "rvariance": r["rvariance"], "poly_fit": r["fit"]})


# -- Fourier transforms -------------------------------------------------------------------------------------

def _complex(real: str | None, imag: str | None) -> np.ndarray | None:
    re_ = None if real is None else _all_numbers(real)
    if re_ is None:
        return None
    if imag is None:
        return re_.astype(complex)
    im = _all_numbers(imag)
    if im is None or im.size != re_.size:
        return None
    return re_ + 1j * im


def _parts(z: np.ndarray) -> str:
    return _dumps({"real": [float(v) for v in z.real], "imag": [float(v) for v in z.imag]})


@udf("series_fft", ("string", "string"), "string", nulls=True)
def series_fft(real: str | None, imag: str | None) -> str | None:
    z = _complex(real, imag)
    return None if z is None or z.size == 0 else _parts(np.fft.fft(z))


@udf("series_ifft", ("string", "string"), "string", nulls=True)
def series_ifft(real: str | None, imag: str | None) -> str | None:
    z = _complex(real, imag)
    return None if z is None or z.size == 0 else _parts(np.fft.ifft(z))
