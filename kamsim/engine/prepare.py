"""What every replication of a scenario shares: the starting portfolio plus the slots of the
accounts that may arrive later, their decision units, tiers, stages and the industry
network that word of mouth travels along. Built once per scenario from the scenario seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kamsim.compile import CompiledModel, initial_env, initial_stage, initial_trust
from kamsim.dmu import Units, build_units
from kamsim.dmu.structure import structure
from kamsim.portfolio import Accounts, build_portfolio, generate_portfolio

__all__ = ["Prepared", "prepare", "industry_network"]


@dataclass
class Prepared:
    model: CompiledModel
    accounts: Accounts  # n_slots rows: the first n_start are the starting portfolio
    n_start: int
    units: Units
    tier: np.ndarray
    score: np.ndarray
    quadrant: np.ndarray
    trust: np.ndarray
    stage: np.ndarray
    wom_src: np.ndarray  # leader -> follower edges of the industry network
    wom_dst: np.ndarray
    wom_weight: np.ndarray
    leader: np.ndarray  # bool per slot

    @property
    def n_slots(self) -> int:
        return self.accounts.n


def industry_network(industry: np.ndarray, influence: np.ndarray, n_start: int,
                     rng: np.random.Generator, leader_share: float = 0.05, links: int = 3
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leaders are the most influential starting accounts of each industry (top
    ``leader_share``); every other account follows up to ``links`` leaders of its industry,
    weighted by the leader's influence. Returns (src, dst, weight, leader mask)."""
    n = industry.shape[0]
    leader = np.zeros(n, dtype=bool)
    src, dst = [], []
    for ind in np.unique(industry):  # a loop over industries, not accounts
        members = np.flatnonzero(industry == ind)
        starting = members[members < n_start]
        if starting.size == 0:
            continue
        k = max(1, int(round(leader_share * starting.size)))
        leaders = starting[np.argsort(-influence[starting], kind="stable")[:k]]
        leader[leaders] = True
        followers = members[~leader[members]]
        if followers.size == 0:
            continue
        pick = rng.integers(0, leaders.size, size=(followers.size, min(links, leaders.size)))
        src.append(leaders[pick].ravel())
        dst.append(np.repeat(followers, pick.shape[1]))
    s = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    d = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    return s, d, influence[s], leader


def prepare(model: CompiledModel) -> Prepared:
    """Build the shared starting point of every replication of ``model``'s scenario."""
    spec = model.spec
    sc = spec.scenario
    start = build_portfolio(spec)
    n_new = int(np.ceil(start.n * spec.scenario.portfolio.max_new_share))
    gen = (sc.portfolio.generate if sc.portfolio.generate is not None
           else sc.portfolio.import_.defaults)  # type: ignore[union-attr]
    assert gen is not None
    future = generate_portfolio(gen.model_copy(update={"accounts": max(n_new, 1)}),
                                sc.seed + 7_919)
    future = future.take(np.arange(n_new))
    width = len(str(n_new))
    future.account_id = np.array([f"N{i:0{width}d}" for i in range(1, n_new + 1)],
                                 dtype=object)
    accounts = Accounts(
        np.concatenate([start.account_id, future.account_id]),
        {k: np.concatenate([v, future.numbers[k]]) for k, v in start.numbers.items()},
        np.concatenate([start.segment, future.segment]),
        np.concatenate([start.industry, future.industry]),
    )
    n = accounts.n
    # new accounts start young: no tenure, a small share, neutral loyalty
    accounts.numbers["tenure_months"][start.n:] = 0.0
    accounts.numbers["share"][start.n:] *= 0.5
    seeds = np.random.SeedSequence([sc.seed, 0x444D55]).spawn(2)
    # explicit maps: the stakeholder rules' named accounts, then the CRM contacts export
    explicit = {**spec.stakeholders.accounts, **(spec.contacts or {})}
    units = build_units(spec.stakeholders, accounts.segment, accounts.account_id,
                        np.random.default_rng(seeds[0]), explicit=explicit)
    env = initial_env(accounts)
    mask = np.zeros(n, dtype=bool)
    mask[: start.n] = True
    tier, score, quadrant = model.tiering.classify(env, mask)
    tier[start.n:] = len(model.tiers) - 1  # arrivals start in the lowest tier
    trust = initial_trust(env["loyalty"], env["tenure_months"])
    st = model.stages
    stage = initial_stage(st.target_share, env["tenure_months"], env["share"], trust,
                          st.ladder, spec.stages.initial == "by_tenure")
    stage[start.n:] = 0
    # the decision units' structure (fixed during a run) is derived once here, so every
    # replication, and every worker process forked after this, shares it
    structure(units)
    src, dst, w, leader = industry_network(accounts.industry, env["influence"], start.n,
                                           np.random.default_rng(seeds[1]))
    return Prepared(model, accounts, start.n, units, tier, score, quadrant, trust, stage,
                    src, dst, w, leader)
