"""A BARE NUMPY kernel of the reduced model (bench/reduced.py): the same monthly update as
bench/naive_simpy.py for all accounts at once, nothing else (no SimPy, no rules, no
records). It is the floor the full engine's per-account-month cost is measured against.

Run alone: ``python bench/numpy_floor.py [accounts] [months]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from reduced import Reduced


def run(cfg: Reduced) -> dict[str, float]:
    """Play the reduced model vectorised; returns the same totals as the naive version."""
    s = cfg.start()
    rng = np.random.default_rng(cfg.seed)
    revenue_month, trust, hours = s["revenue_month"], s["trust"].copy(), s["hours"]
    active = np.ones(cfg.accounts, dtype=bool)
    totals = {"revenue": 0.0, "profit": 0.0}
    for _month in range(cfg.months):
        # the team has capacity_share of what all starting accounts ask: each active
        # account gets that share of its hours (as in the naive version)
        got = np.where(active, hours * cfg.capacity_share, 0.0)
        ratio = np.divide(got, hours, out=np.ones_like(got), where=hours > 0)
        trust += cfg.trust_speed * (0.2 + 0.7 * ratio - trust)
        hazard = cfg.base_churn_per_month + cfg.trust_churn_per_month * (1.0 - trust)
        active &= rng.random(cfg.accounts) >= hazard
        totals["revenue"] += float(revenue_month[active].sum())
        totals["profit"] += float((revenue_month * cfg.margin - got * cfg.cost_per_hour)
                                  [active].sum())
    totals["active"] = float(active.sum())
    return totals


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    months = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    t0 = time.perf_counter()
    out = run(Reduced(accounts=n, months=months))
    print(f"numpy floor {n} x {months}: {time.perf_counter() - t0:.3f} s {out}")
