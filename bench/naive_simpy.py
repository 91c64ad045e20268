"""A NAIVE SimPy version of the reduced model (bench/reduced.py), written the way a first
SimPy model of this domain usually is: one process per account, a Python loop per month,
the account manager team as a shared ``Container`` the processes draw hours from, and
Python floats drawn one at a time.

Run alone: ``python bench/naive_simpy.py [accounts] [months]`` prints seconds and totals.
"""

from __future__ import annotations

import random
import sys
import time

import simpy
from reduced import Reduced


def run(cfg: Reduced) -> dict[str, float]:
    """Play the reduced model; returns totals (revenue, profit, active at the end)."""
    start = cfg.start()
    env = simpy.Environment()
    rng = random.Random(cfg.seed)
    asked_per_month = float(start["hours"].sum())
    team = simpy.Container(env, init=0.0, capacity=float("inf"))
    totals = {"revenue": 0.0, "profit": 0.0, "active": 0.0}

    def refill():  # type: ignore[no-untyped-def]
        while True:  # the team's hours of the month
            team.put(asked_per_month * cfg.capacity_share - team.level + 1e-9) \
                if team.level < asked_per_month * cfg.capacity_share else None
            yield env.timeout(1.0)

    def account(revenue: float, trust: float, hours: float):  # type: ignore[no-untyped-def]
        yield env.timeout(1e-6)  # after the team's refill of the month
        for _month in range(cfg.months):
            want = hours
            got = min(want * cfg.capacity_share, team.level)
            if got > 0:
                yield team.get(got)
            ratio = got / want if want else 1.0
            target = 0.2 + 0.7 * ratio
            trust += cfg.trust_speed * (target - trust)
            hazard = cfg.base_churn_per_month + cfg.trust_churn_per_month * (1.0 - trust)
            if rng.random() < hazard:
                return
            totals["revenue"] += revenue
            totals["profit"] += revenue * cfg.margin - got * cfg.cost_per_hour
            yield env.timeout(1.0)
        totals["active"] += 1.0

    env.process(refill())
    for i in range(cfg.accounts):
        env.process(account(float(start["revenue_month"][i]), float(start["trust"][i]),
                            float(start["hours"][i])))
    env.run(until=cfg.months + 0.5)
    return totals


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    months = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    t0 = time.perf_counter()
    out = run(Reduced(accounts=n, months=months))
    print(f"naive simpy {n} x {months}: {time.perf_counter() - t0:.2f} s {out}")
