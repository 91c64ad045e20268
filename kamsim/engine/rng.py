"""Random streams: one per process, derived from one seed, so that two scenarios run with
the same seed share their random futures (common random numbers).

Every process draws the same amount of randomness each period whatever the state (one value
per account slot, active or not), so a change of strategy never shifts another process's
stream. Event clocks (key-person departures, complaints) are drawn for every slot too.
"""

from __future__ import annotations

import numpy as np

__all__ = ["STREAMS", "Streams", "replication_seeds", "norm_ppf"]

#: process name -> spawn index; append only (reordering changes every result)
STREAMS = (
    "departures", "complaints", "complaint_work", "events", "decisions", "wallet",
    "referrals", "offers", "clocks",
)


def replication_seeds(seed: int, replications: int) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per replication, the same whatever the number of
    workers that will run them."""
    return np.random.SeedSequence(seed).spawn(replications)


class Streams:
    """Named generators of one replication."""

    def __init__(self, seq: np.random.SeedSequence):
        children = seq.spawn(len(STREAMS))
        self._g = {name: np.random.default_rng(s) for name, s in zip(STREAMS, children,
                                                                      strict=True)}

    def __getitem__(self, name: str) -> np.random.Generator:
        return self._g[name]


# Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9)
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02,
      1.383577518672690e02, -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02,
      6.680131188771972e01, -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00,
      -2.549732539343734e00, 4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00,
      3.754408661907416e00)


def norm_ppf(p: np.ndarray | float) -> np.ndarray:
    """Standard normal quantile, vectorised (p clipped to (1e-300, 1 - 1e-16))."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-300, 1 - 1e-16)
    out = np.empty_like(p)
    lo = p < 0.02425
    hi = p > 1 - 0.02425
    mid = ~(lo | hi)
    q = p[mid] - 0.5
    r = q * q
    out[mid] = (((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q / (
        ((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1)
    for mask, sign, src in ((lo, 1.0, p), (hi, -1.0, 1 - p)):
        if mask.any():
            q = np.sqrt(-2 * np.log(src[mask]))
            out[mask] = sign * (((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4])
                                * q + _C[5]) / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3])
                                                * q + 1)
    return out
