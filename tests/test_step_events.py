"""``kamsim.engine.step._event_reach``: the period's events and trust-driven leaving are
worked out only for the slots whose uniform lies below it (a value for the slots not
uncoupled, one for the uncoupled), so it must lie above every slot's upper bound of the
events plus its leaving hazard, whatever the trust (not yet clipped to 0-1 at that point of
the period); ``_event_slots`` finds those slots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kamsim.engine.core import EngineOptions, Simulation, _p
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.engine.step import _event_reach, _event_slots
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
                reach, reach_unc = _event_reach(sim, p_offer, h_unc)
                # what period_step compares a slot's uniform with, uncoupled or not
                top = sim.event_bounds[2] + p_offer + sim.p_default
                h = _p(mk.base_churn_per_year * 4.0 * (1.0 - sim.trust) ** 2, dt)
                assert np.all(top + h < reach) and np.all(top + h_unc < reach_unc)
                assert reach <= reach_unc
                assert reach_unc < 1.0 or high - low > 1.0  # (still a small part of the slots)
            if low == 0.0:  # trust in 0-1: the uncoupled hazard is above any trust's
                assert reach < reach_unc - 0.1
    sim.trust[5] = np.nan  # no bound: every slot is worked out
    assert all(np.isnan(r) for r in _event_reach(sim, 0.01, h_unc))


@pytest.mark.parametrize("kernels", [False, True])
def test_event_slots_are_those_below_their_stages_reach(kernels: bool) -> None:
    """Every slot below its own reach (the uncoupled's or the others'), in order; every slot
    with no bound; with the kernels as without."""
    if kernels:
        pytest.importorskip("numba")
    rng = np.random.default_rng(11)
    for n, uncoupled_share in ((0, 0.5), (1, 1.0), (1000, 0.0), (5000, 0.01), (5000, 0.6)):
        u = rng.random(n)
        stage = np.where(rng.random(n) < uncoupled_share, 5, rng.integers(0, 5, n)).astype(np.int8)
        for reach, reach_unc in ((0.1, 0.3), (0.2, 0.2), (0.3, 0.1), (0.0, 1.0)):
            got = _event_slots(u, stage, reach, reach_unc, 5, kernels)
            want = np.flatnonzero((u < reach) | ((stage == 5) & (u < reach_unc)))
            assert got.dtype.kind == "i" and np.array_equal(got, want)
        assert np.array_equal(_event_slots(u, stage, np.nan, np.nan, 5, kernels), np.arange(n))
