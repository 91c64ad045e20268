"""``kamsim.engine.step._event_reach``: the period's events and trust-driven leaving are
worked out only for the slots whose uniform lies below it, so it must lie above every slot's
upper bound of the events plus its leaving hazard, whatever the trust (not yet clipped to
0-1 at that point of the period)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kamsim.engine.core import EngineOptions, Simulation, _p
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.engine.step import _event_reach
from kamsim.experiment import prepared
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_event_reach_lies_above_every_slots_events_and_hazard() -> None:
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", ["portfolio.generate.accounts=300"])
    sim = Simulation(prepared(spec), Streams(replication_seeds(1, 1)[0]), EngineOptions(False))
    mk, dt, n = sim.market, sim.dt, sim.n
    h_unc = 1 - (1 - sim.model.stages.uncoupled_churn) ** dt
    rng = np.random.default_rng(7)
    for same_bounds in (False, True):
        if same_bounds:  # every slot the highest bounds: then the hazard alone decides
            sim.event_bounds = tuple(np.full(n, b.max()) for b in sim.event_bounds)
            sim.p_default = np.full(n, sim.p_default.max())
            assert sim.event_reach == sim.event_bounds[2][0] + sim.p_default[0]
        for low, high in ((0.0, 1.0), (-5.0, 1.1), (0.9, 5.0), (-0.5, 1.2), (0.45, 0.55)):
            sim.trust = rng.uniform(low, high, n)
            sim.trust[:2] = (low, high)
            for p_offer in (0.0, 0.004, 0.3):
                reach = _event_reach(sim, p_offer, h_unc)
                # what period_step compares a slot's uniform with, uncoupled or not
                top = sim.event_bounds[2] + p_offer + sim.p_default
                h = _p(mk.base_churn_per_year * 4.0 * (1.0 - sim.trust) ** 2, dt)
                assert np.all(top + h < reach) and np.all(top + h_unc < reach)
                assert reach < 1.0 or high - low > 1.0  # (still a small part of the slots)
    sim.trust[5] = np.nan  # no bound: every slot is worked out
    assert np.isnan(_event_reach(sim, 0.01, h_unc))
