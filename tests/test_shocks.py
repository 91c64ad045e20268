"""Shocks: a capacity multiplier of 0 empties what its kind cuts while the shock lasts (the
account managers' hours, the budget), and everything is back after until_month."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kamsim.engine.core import EngineOptions, Simulation, run_replication
from kamsim.engine.rng import Streams
from kamsim.experiment import prepared
from kamsim.spec.load import load_scenario

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
SMALL = ["portfolio.generate.accounts=200", "horizon_months=6", "capacity.budget_per_year=1e6"]


def _run(kind: str) -> dict[str, np.ndarray]:
    spec = load_scenario(BASELINE, [*SMALL, f"shocks=[{{at_month: 2, until_month: 4, kind: {kind},"
                                    " capacity_multiplier: 0}]"])
    out = run_replication(prepared(spec), np.random.SeedSequence(1).spawn(1)[0])
    return {k: v.sum(axis=1) for k, v in out.ts.items()}


@pytest.mark.parametrize(("kind", "field"), [("budget_cut", "discounts"),
                                             ("am_attrition", "am_delivered")])
def test_a_zero_multiplier_empties_what_its_kind_cuts_while_it_lasts(kind: str, field: str
                                                                      ) -> None:
    # (a budget_cut of 0 used to leave the budget whole: 0 was skipped as "no change")
    ts = _run(kind)
    assert (ts[field][:2] > 0).all() and (ts[field][4:] > 0).all(), ts[field]
    assert (ts[field][2:4] == 0).all(), ts[field]


def _in_force(shocks: str, horizon: int = 12) -> list[tuple[float, float, float, float, float]]:
    """Per period, the multipliers the period ran with: offers, AM hours, budget, the price
    gap and the unfair share (read after each step)."""
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=50", f"horizon_months={horizon}",
                                    "capacity.budget_per_year=1e6", f"shocks={shocks}"])
    seen: list[tuple[float, float, float, float, float]] = []
    sim = Simulation(prepared(spec), Streams(np.random.SeedSequence(1).spawn(1)[0]),
                     EngineOptions(), 0,
                     lambda done, periods: seen.append((sim.offer_mult, sim.capacity_mult,
                                                        sim.budget_mult, sim.price_gap,
                                                        sim.unfair_share)))
    sim.run()
    return seen


@pytest.mark.parametrize("kind", ["budget_cut", "am_attrition"])
def test_overlapping_capacity_shocks_compose_and_come_back_to_the_one_still_active(kind: str
                                                                                   ) -> None:
    # (a freeze (0) inside a halving set the multiplier back to 1 at its end, and the
    # halving's end then divided by 0.5: the budget ended doubled)
    seen = _in_force(f"[{{at_month: 2, until_month: 10, kind: {kind}, capacity_multiplier: 0.5}},"
                     f" {{at_month: 4, until_month: 6, kind: {kind}, capacity_multiplier: 0}},"
                     f" {{at_month: 7, until_month: 9, kind: {kind}, capacity_multiplier: 0.5}}]")
    col = 1 if kind == "am_attrition" else 2
    assert [s[col] for s in seen] == [1, 1, .5, .5, 0, 0, .5, .25, .25, .5, 1, 1]
    assert all(s[3 - col] == 1.0 for s in seen)  # the other kind's multiplier is untouched


def test_overlapping_market_shocks_compose_and_end_exactly_where_they_began() -> None:
    seen = _in_force("[{at_month: 1, until_month: 5, kind: competitor_entry,"
                     " offer_rate_multiplier: 0.7, price_gap: 0.3},"
                     " {at_month: 2, until_month: 4, kind: price_war, offer_rate_multiplier: 3,"
                     " price_gap: 0.2}, {at_month: 3, until_month: 6, kind: price_war}]", 7)
    base = seen[0]
    assert base[0] == 1.0
    offers, gaps, unfair = zip(*[(s[0], s[3], s[4]) for s in seen], strict=True)
    assert offers == (1.0, 0.7, 0.7 * 3, 0.7 * 3, 0.7, 1.0, 1.0)  # exactly 1 again, no drift
    assert gaps == (base[3], 0.3, 0.2, 0.2, 0.3, base[3], base[3])
    doubled = min(1.0, 2 * base[4])
    assert unfair == (base[4], base[4], doubled, doubled, doubled, doubled, base[4])
