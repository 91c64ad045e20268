"""``market.wallet_volatility`` is yearly (docs/model.md, "Share and wallet"; docs/rules.md:
rates per year unless named per month): beyond its drift, a wallet's log change over a year
has that standard deviation, with monthly periods as with weekly ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kamsim.engine.core import EngineOptions, Simulation
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.experiment import prepared
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("period", ["month", "week"])
def test_yearly_log_change_of_a_wallet_has_the_yearly_volatility(period: str) -> None:
    # no events (they would cut wallets), no market growth; a year of periods
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", [
        "portfolio.generate.accounts=3000", "horizon_months=12", f"period={period}",
        "market.churn_effects=false", "market.wallet_growth_per_year=0",
        "market.wallet_volatility=0.2"])
    prep = prepared(spec)
    sim = Simulation(prep, Streams(replication_seeds(5, 1)[0]), EngineOptions(False))
    sim.run()
    kept = sim.churn_period < 0  # (a lost account's wallet stops where it left)
    # each account's own drift (its growth potential) taken out: what is left is the noise
    change = (np.log(sim.wallet / prep.accounts.numbers["wallet"])
              - sim.wallet_drift * sim.periods)[kept]
    assert kept.sum() > 4000
    # the sample sd of > 4,000 normals is within 2.3% of sigma with 99.9999% probability
    # (its relative standard error is 1/sqrt(2n) < 1.1%); the old monthly reading gave 0.69
    assert abs(change.std() / 0.2 - 1.0) < 0.05
    assert abs(change.mean()) < 0.02
