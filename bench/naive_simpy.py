"""A NAIVE SimPy version of the reduced models (bench/reduced.py), written the way a first
SimPy model of this domain usually is: one process per account, a Python loop per month,
the account manager team as a shared ``Container`` the processes draw hours from, Python
floats drawn one at a time and, for the domain's core, each decision unit a networkx graph
(a person a node, an edge to the person they report to), as kamsim's own units are.

Run alone: ``python bench/naive_simpy.py [accounts] [months] [core]`` prints seconds and
totals.
"""

from __future__ import annotations

import random
import sys
import time

import simpy
from reduced import Core, Reduced, play


def _team(env: simpy.Environment, hours: float) -> simpy.Container:
    """The account managers' hours, a ``Container`` topped up to ``hours`` at the start of
    every month (the accounts draw from it just after)."""
    team = simpy.Container(env, init=0.0, capacity=float("inf"))

    def refill():  # type: ignore[no-untyped-def]
        while True:
            if team.level < hours:
                team.put(hours - team.level + 1e-9)
            yield env.timeout(1.0)

    env.process(refill())
    return team


def _world(cfg: Reduced | Core):  # type: ignore[no-untyped-def]
    """What both models start from: the portfolio, the SimPy environment, Python's generator,
    the team's hours (the share of what the starting accounts ask) and the totals."""
    start = cfg.start()
    env = simpy.Environment()
    team = _team(env, float(start["hours"].sum()) * cfg.capacity_share)
    return start, env, random.Random(cfg.seed), team, {"revenue": 0.0, "profit": 0.0,
                                                       "active": 0.0}


def run(cfg: Reduced) -> dict[str, float]:
    """Play the reduced model; returns totals (revenue, profit, active at the end)."""
    start, env, rng, team, totals = _world(cfg)

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

    for i in range(cfg.accounts):
        env.process(account(float(start["revenue_month"][i]), float(start["trust"][i]),
                            float(start["hours"][i])))
    env.run(until=cfg.months + 0.5)
    return totals


def run_core(cfg: Core) -> dict[str, float]:
    """Play the domain's core; returns totals (revenue, profit, active at the end)."""
    import networkx as nx

    start, env, rng, team, totals = _world(cfg)
    top = len(cfg.share_by_stage) - 1

    def account(wallet: float, hours: float, stage: int, unit: nx.DiGraph):  # type: ignore[no-untyped-def]
        yield env.timeout(1e-6)  # after the team's refill of the month
        for _month in range(cfg.months):
            got = min(hours * cfg.capacity_share, team.level)
            if got > 0:
                yield team.get(got)
            contacts = int(got // cfg.hours_per_contact)  # the most influential covered
            new = {}
            for person in unit:
                me = unit.nodes[person]
                target = cfg.covered_target if me["rank"] < contacts else cfg.uncovered_target
                boss = next(iter(unit.successors(person)), person)
                a = me["attitude"]
                new[person] = (a + cfg.attitude_speed * (target - a)
                               + cfg.boss_pull * (unit.nodes[boss]["attitude"] - a))
            support = 0.0
            for person, a in new.items():
                unit.nodes[person]["attitude"] = a
                support += unit.nodes[person]["influence"] * a
            u = rng.random()
            if support > cfg.up_support and u < cfg.p_up:
                stage = min(stage + 1, top)
            elif support < cfg.down_support and u < cfg.p_down:
                stage = max(stage - 1, 0)
            if rng.random() < cfg.churn_by_stage[stage] + cfg.support_churn * (1.0 - support) / 2:
                return
            revenue = wallet / 12.0 * cfg.share_by_stage[stage]
            totals["revenue"] += revenue
            totals["profit"] += revenue * cfg.margin - got * cfg.cost_per_hour
            yield env.timeout(1.0)
        totals["active"] += 1.0

    first = 0
    for i in range(cfg.accounts):
        unit = nx.DiGraph()
        k = int(start["size"][i])
        for p in range(first, first + k):
            unit.add_node(p, rank=p - first, influence=float(start["influence"][p]),
                          attitude=float(start["attitude"][p]))
        unit.add_edges_from((p, int(start["boss"][p])) for p in range(first + 1, first + k))
        first += k
        env.process(account(float(start["wallet"][i]), float(start["hours"][i]),
                            int(start["stage"][i]), unit))
    env.run(until=cfg.months + 0.5)
    return totals


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    months = int(sys.argv[2]) if len(sys.argv) > 2 else 60
    t0 = time.perf_counter()
    out = play(sys.modules[__name__], "core" in sys.argv[3:], n, months)
    print(f"naive simpy {n} x {months}: {time.perf_counter() - t0:.2f} s {out}")
