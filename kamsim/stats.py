"""Small statistics kamsim needs without SciPy: Student-t quantiles, confidence intervals
of a mean over replications, and Fieller's interval of a ratio of two means."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["t_ppf", "t_two_sided", "mean_ci", "defined_mean", "fieller"]


def _betacf(a: float, b: float, x: float) -> float:
    # continued fraction of the incomplete beta function (Lentz's method)
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        de = d * c
        h *= de
        if abs(de - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbt = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbt) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbt) * _betacf(b, a, 1.0 - x) / b


def _t_tail(t: float, df: float) -> float:
    """P(T > |t|): the upper tail itself, not ``1 - cdf``, which loses it to rounding once it
    is below ~1e-16 (the tail a quantile past 1000 with 1 or 2 degrees of freedom sits in)."""
    return 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_cdf(t: float, df: float) -> float:
    tail = _t_tail(t, df)
    return 1.0 - tail if t > 0 else tail


# The bisection below starts from [-BRACKET, BRACKET]: wide enough for every quantile but the
# far tails of 1 or 2 degrees of freedom (t(0.99975, 1) is 1273), which _t_isf finds.
BRACKET = 1e3


def _t_isf(tail: float, df: float) -> float:
    """The t >= 0 whose upper tail is ``tail`` (< 1/2): the bracket is doubled until it
    holds it, then bisected to a relative (not absolute) width, since the quantile can be as
    large as 3e15 (1 degree of freedom at a confidence of 1 - 2e-16) and a float that size
    has no digits below 0.5. Works on the tail, which ``1 - p`` gives exactly for p >= 0.5."""
    lo, hi = 0.0, BRACKET
    while _t_tail(hi, df) > tail:
        lo, hi = hi, 2.0 * hi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _t_tail(mid, df) > tail:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return 0.5 * (lo + hi)


def t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p ({p}) must be in (0, 1)")
    return _t_quantile(p, min(p, 1.0 - p), df)


def t_two_sided(confidence: float, df: float) -> float:
    """The quantile a two-sided ``confidence`` interval takes, ``t_ppf(0.5 + confidence / 2)``,
    with its tail ``(1 - confidence) / 2`` given exactly: the sum rounds to 1 for a confidence
    within 2e-16 of 1 (which a scenario accepts, and which t_ppf would refuse)."""
    p = 0.5 + confidence / 2.0
    return _t_quantile(p, 1.0 - p if p < 1.0 else (1.0 - confidence) / 2.0, df)


@lru_cache(maxsize=64)
def _t_quantile(p: float, tail: float, df: float) -> float:
    """The ``p`` quantile, ``tail`` its distance from the nearer end (``min(p, 1 - p)``, or
    exact where ``p`` rounded to 1). Bisection on the CDF within [-BRACKET, BRACKET], to an
    absolute width (the figures pinned by the tests are of it); past the bracket, or where p
    is 1, on the tail (:func:`_t_isf`). ~2 ms, and a summary asks for the same one for every
    figure: kept per (p, tail, df)."""
    if p == 0.5:
        return 0.0
    if p == 1.0 or _t_tail(BRACKET, df) > tail:  # the bisection would stop at its edge
        return math.copysign(_t_isf(tail, df), p - 0.5)
    lo, hi = -BRACKET, BRACKET
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def defined_mean(values: np.ndarray) -> float:
    """Mean of the defined (not NaN) values; NaN when there are none (without the warning
    ``np.nanmean`` gives for an empty slice)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.shape[0] else float("nan")


def mean_ci(values: np.ndarray, confidence: float = 0.95,
            bounds: tuple[float, float] | None = None) -> dict[str, float]:
    """Mean of ``values`` (one per replication) with a Student-t confidence interval.

    NaN values are replications where the figure is undefined (a share of a tier that had no
    accounts to take it of) and are left out: ``n`` counts the defined ones, and the mean
    and interval are over those. With no defined value the mean is NaN; with one, the
    interval is NaN, not the point: one replication measures no spread, and a zero-width
    interval would read as certainty.

    ``bounds`` is the range the quantity cannot leave (a share: ``(0, 1)``). The t-interval
    of a few replications of a share near 0 or 1 can reach past it (93% ± 11% of a small
    tier), which no reader should be shown: the interval is cut at the bounds, and is then
    no longer symmetric about the mean."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    n = v.shape[0]
    nan = float("nan")
    mean = defined_mean(v)
    if n < 2:
        return {"mean": mean, "ci_low": nan, "ci_high": nan, "n": n}
    half = t_two_sided(confidence, n - 1) * float(v.std(ddof=1)) / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"mean": mean, "ci_low": low, "ci_high": high, "n": n}


def fieller(num: float, den: float, v_num: float, v_cov: float, v_den: float,
            q: float) -> tuple[float, float]:
    """Fieller's interval of the ratio ``num / den`` of two estimated means: every ratio
    ``f`` for which the t-test of ``num - f * den == 0`` is not rejected at quantile ``q``,
    i.e. ``(num - f * den)**2 <= q**2 * (v_num - 2 f v_cov + f**2 v_den)``, where ``v_num``,
    ``v_den`` are the variances of the two means and ``v_cov`` their covariance.

    Unlike dividing the numerator's interval by ``den`` as if it were known, this counts the
    uncertainty of the denominator, and it is not symmetric about the ratio. When ``den`` is
    not clearly away from 0 (``den**2 <= q**2 v_den``) the set is unbounded (or two rays):
    there is no interval, and both ends are NaN. Zero variances give the ratio itself."""
    a = den * den - q * q * v_den
    if not a > 0:  # (NaN too)
        return float("nan"), float("nan")
    b = num * den - q * q * v_cov  # half of -B in A f^2 + B f + C <= 0
    c = num * num - q * q * v_num
    root = math.sqrt(max(b * b - a * c, 0.0))  # >= 0 but for rounding: num/den is inside
    return (b - root) / a, (b + root) / a
