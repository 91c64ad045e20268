"""A BARE NUMPY kernel of the reduced models (bench/reduced.py): the same monthly update as
bench/naive_simpy.py for all accounts (and all people) at once, nothing else (no SimPy, no
rules, no records). It is the floor the full engine's per-account-month cost is measured
against.

Run alone: ``python bench/numpy_floor.py [accounts] [months] [core]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from reduced import Core, Reduced, play


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


def run_core(cfg: Core) -> dict[str, float]:
    """Play the domain's core vectorised; returns the same totals as the naive version
    (equal to the rounding where no draw decides: the attitudes' update is written with
    its constant parts taken out of the loop; the same distribution where a draw does).
    Every person and account is updated every month, the lost ones too (their values are
    never read again): masking them out would cost more than it saves."""
    s = cfg.start()
    rng = np.random.default_rng(cfg.seed)
    n = cfg.accounts
    wallet_month, account, rank = s["wallet"] / 12.0, s["account"], s["rank"]
    influence, boss = s["influence"], s["boss"]
    attitude, stage = s["attitude"].copy(), s["stage"].copy()
    share, churn = np.asarray(cfg.share_by_stage), np.asarray(cfg.churn_by_stage)
    # what no month changes, worked out once: an active account always gets its share of
    # the hours, so who is covered and what the hours cost are fixed
    served = s["hours"] * cfg.capacity_share
    contacts = np.floor(served / cfg.hours_per_contact)
    pull = cfg.attitude_speed * np.where(rank < contacts[account], cfg.covered_target,
                                         cfg.uncovered_target)
    cost = served * cfg.cost_per_hour
    keep = 1.0 - cfg.attitude_speed - cfg.boss_pull
    active = np.ones(cfg.accounts, dtype=bool)
    totals = {"revenue": 0.0, "profit": 0.0}
    for _month in range(cfg.months):
        attitude = keep * attitude + pull + cfg.boss_pull * attitude[boss]
        support = np.bincount(account, influence * attitude, n)
        u = rng.random((2, n))
        up = (support > cfg.up_support) & (u[0] < cfg.p_up)
        down = ~up & (support < cfg.down_support) & (u[0] < cfg.p_down)
        stage = np.clip(stage + up - down, 0, share.size - 1)
        active &= u[1] >= churn[stage] + cfg.support_churn * (1.0 - support) / 2
        revenue = wallet_month * share[stage]
        totals["revenue"] += float(revenue[active].sum())
        totals["profit"] += float((revenue * cfg.margin - cost)[active].sum())
    totals["active"] = float(active.sum())
    return totals


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    months = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    t0 = time.perf_counter()
    out = play(sys.modules[__name__], "core" in sys.argv[3:], n, months)
    print(f"numpy floor {n} x {months}: {time.perf_counter() - t0:.3f} s {out}")
