"""The REDUCED model shared by bench/naive_simpy.py and bench/numpy_floor.py: each month an
account may churn with a hazard that rises as trust falls, trust moves toward a target set
by the service ratio (capacity shared pro rata), and revenue and profit accrue.

It is not kamsim's model; it is the smallest honest stand-in for "one period for every
account", used to put the full engine's speed between a naive and a floor implementation.
"""

from __future__ import annotations

from dataclasses import dataclass

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
