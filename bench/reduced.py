"""The two REDUCED models shared by bench/naive_simpy.py and bench/numpy_floor.py, each
written both ways (a naive SimPy version and a bare numpy floor) to put the full engine's
speed between them.

``Reduced``, the minimal one: each month an account may churn with a hazard that rises as
trust falls, trust moves toward a target set by the service ratio (capacity shared pro
rata), and revenue and profit accrue. The smallest honest stand-in for "one period for every
account".

``Core``, the domain's core: the minimal one plus what makes it key-account management, a
decision unit of people for each account (4, 6 or 8 by tier, each with an influence and an
attitude, reporting to another), the service that covers the most influential of them, and
a ladder of relationship stages that the unit's support moves up and down; revenue is the
stage's share of the wallet. Still far less than kamsim's model (no rules, events,
complaints, departures, word of mouth, new accounts, re-tiering or records).

Neither is kamsim's model. Every figure is an assumption chosen to keep the dynamics alive
over 60 months (about half the accounts stay), not a calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np


@dataclass(frozen=True)
class Reduced:
    accounts: int = 10_000
    months: int = 60
    seed: int = 1
    base_churn_per_month: float = 0.004
    trust_churn_per_month: float = 0.03  # extra monthly hazard at trust 0
    trust_speed: float = 0.15
    capacity_share: float = 0.8  # hours available / hours asked
    margin: float = 0.25
    cost_per_hour: float = 90.0

    def start(self) -> dict[str, np.ndarray]:
        """The starting portfolio (the same for both implementations)."""
        rng = np.random.default_rng(self.seed)
        wallet = rng.lognormal(np.log(120_000.0), 1.3, self.accounts)
        return {"revenue_month": wallet * rng.uniform(0.2, 0.6, self.accounts) / 12.0,
                "trust": rng.uniform(0.3, 0.8, self.accounts),
                "hours": np.where(wallet > 300_000, 8.0, 2.0)}


@dataclass(frozen=True)
class Core:
    """The domain's core (see the module's text). Tiers 0 (key), 1, 2 by wallet; stages 0
    (exploratory) to 4 (integrated)."""
    accounts: int = 10_000
    months: int = 60
    seed: int = 1
    capacity_share: float = 0.8  # hours available / hours asked
    hours_by_tier: tuple[float, ...] = (8.0, 4.0, 2.0)  # asked a month
    people_by_tier: tuple[int, ...] = (8, 6, 4)  # in the decision unit
    hours_per_contact: float = 1.0  # a month of contact with one person
    covered_target: float = 0.6  # the attitude a covered person moves toward
    uncovered_target: float = -0.2
    attitude_speed: float = 0.15
    boss_pull: float = 0.1  # toward the attitude of the person one reports to
    up_support: float = 0.3  # influence-weighted attitude above which a stage may go up
    down_support: float = 0.0  # ... below which it may go down
    p_up: float = 0.08
    p_down: float = 0.15
    share_by_stage: tuple[float, ...] = (0.1, 0.2, 0.35, 0.5, 0.65)  # of the wallet
    churn_by_stage: tuple[float, ...] = (0.012, 0.008, 0.005, 0.003, 0.002)  # a month
    support_churn: float = 0.02  # extra monthly hazard at support -1 (half at 0)
    margin: float = 0.25
    cost_per_hour: float = 90.0

    def start(self) -> dict[str, np.ndarray]:
        """The starting portfolio (the same for both implementations): per account its
        wallet, tier, hours asked, unit size and stage; per person (the units one after
        the other, most influential first) its account, rank in the unit, influence (a
        unit's sum to 1), the index of the person it reports to (rank r > 0 reports to
        rank (r - 1) // 2, the decision maker to itself) and attitude."""
        rng = np.random.default_rng(self.seed)
        n = self.accounts
        wallet = rng.lognormal(np.log(120_000.0), 1.3, n)
        tier = np.where(wallet > 300_000, 0, np.where(wallet > 100_000, 1, 2))
        size = np.asarray(self.people_by_tier)[tier]
        account = np.repeat(np.arange(n), size)
        first = np.cumsum(size) - size
        rank = np.arange(account.size) - first[account]
        raw = rng.uniform(0.2, 1.0, account.size) / (1.0 + rank)
        return {"wallet": wallet, "tier": tier, "hours": np.asarray(self.hours_by_tier)[tier],
                "size": size, "stage": rng.integers(0, 3, n), "account": account,
                "rank": rank, "influence": raw / np.bincount(account, raw, n)[account],
                "boss": first[account] + np.maximum(rank - 1, 0) // 2,
                "attitude": rng.uniform(-0.2, 0.6, account.size)}


def play(way: ModuleType, core: bool, accounts: int, months: int) -> dict[str, float]:
    """``accounts`` x ``months`` of the domain's core (``core``) or of the minimal model,
    played by ``way``: bench/naive_simpy.py or bench/numpy_floor.py (``run_core`` and
    ``run``); returns its totals."""
    if core:
        return way.run_core(Core(accounts=accounts, months=months))
    return way.run(Reduced(accounts=accounts, months=months))
