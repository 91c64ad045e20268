"""Accounts not in the portfolio do not move (docs/model.md, "New accounts" and "State"): a
slot waiting for a future arrival does not age, drift or suffer events, so an arrival starts
in the first stage at 0 months with half its drawn share, and stays the stage's minimum
dwell like any account; a lost account keeps what it left with. Wallets of future arrivals
move with the market only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kamsim.engine.core import EngineOptions, Simulation
from kamsim.engine.record import EVENT_KINDS
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.experiment import prepared, simulate
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def _run() -> tuple[Simulation, list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """A small baseline with many arrivals and frequent events that change wallets and
    shares (strategy changes, consolidations, trimming offers), a flat market (no drift, no
    volatility); the state of every account as it arrives, and as it leaves."""
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", [
        "portfolio.generate.accounts=200", "horizon_months=24",
        "market.cold_acquisition_per_year=0.2", "market.strategy_change_per_year=0.5",
        "market.consolidation_per_year=0.5", "market.offer_rate_per_year=3",
        "market.wallet_growth_per_year=0", "market.wallet_volatility=0"])
    sim = Simulation(prepared(spec), Streams(replication_seeds(3, 1)[0]), EngineOptions())
    arrived: list[dict[str, Any]] = []
    left: dict[int, dict[str, Any]] = {}
    step = sim.step

    def noting(k: int) -> None:
        for a in np.flatnonzero(sim.active & (sim.born == k) & (k > 0)):
            arrived.append({"slot": int(a), "k": k, **{
                name: float(getattr(sim, name)[a])
                for name in ("months_in_stage", "share", "wallet", "stage", "tier", "tenure",
                             "trust")}})
        step(k)
        for a in np.flatnonzero(sim.churn_period == k):
            left[int(a)] = {name: float(getattr(sim, name)[a])
                            for name in ("months_in_stage", "share", "wallet", "stage", "trust")}

    sim.step = noting  # type: ignore[method-assign]
    sim.run()
    return sim, arrived, left


def test_an_arrival_starts_as_documented_and_stays_the_minimum_dwell() -> None:
    sim, arrived, left = _run()
    prep = sim.prep
    nums = prep.accounts.numbers
    assert len(arrived) > 30 and len(left) > 30
    for a in arrived:
        s = a["slot"]
        assert a["months_in_stage"] == 0.0
        assert a["stage"] == 0 and a["tier"] == len(sim.model.tiers) - 1 and a["tenure"] == 0
        assert a["share"] == nums["share"][s]  # half the drawn share, untouched by events
        # its wallet moved with the market only (here its own growth potential)
        grown = nums["wallet"][s] * np.exp(nums["growth_potential"][s] / 12.0) ** a["k"]
        assert np.isclose(a["wallet"], grown, rtol=1e-9)
    # no arrival moves up or down before the first stage's minimum dwell
    ev = sim.log.arrays()  # type: ignore[union-attr]
    born = {a["slot"]: a["k"] for a in arrived}
    sel = ev["kind"] == EVENT_KINDS.index("stage_change")
    dwell = sim.model.stages.min_dwell[0]
    first: dict[int, int] = {}
    for k, acc, code in zip(ev["period"][sel], ev["account"][sel], ev["code"][sel], strict=True):
        if int(acc) in born and int(acc) not in first:
            first[int(acc)] = int(k)
            if code != sim.model.stages.uncoupled:  # (uncoupling has no minimum dwell)
                assert (k - born[int(acc)] + 1) * sim.dt >= dwell
    assert first, "some arrival changed stage within the horizon"
    # a lost account keeps what it left with
    for s, state in left.items():
        for name, value in state.items():
            assert getattr(sim, name)[s] == value, (s, name)


def test_an_account_is_paid_for_in_the_period_it_is_won() -> None:
    """Acquisition is booked when the account is won, with its new_account event: the
    events, the accounts and the time series agree period by period, the last period's
    arrivals (counted as new, active past the horizon) included. (Booked in the account's
    first active period, the last period's cost fell past the horizon: events 4,565,000
    against 4,505,000 booked in a tiered run.) Profit is net of it in both tables."""
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", [
        "portfolio.generate.accounts=200", "horizon_months=12", "replications=2",
        "market.cold_acquisition_per_year=0.3"])
    result = simulate(spec, workers=1, record_events=True)
    ev = result.events()
    acc = result.accounts()
    ts = result.timeseries()
    won = ev[ev["kind"] == "new_account"]
    assert (won["period"] == 11).sum() > 0  # arrivals in the last period too
    by_period = won.groupby(["replication", "period"])["value"].sum()
    booked = ts.groupby(["replication", "period"])["acquisition"].sum()
    np.testing.assert_allclose(booked[booked > 0], by_period, rtol=1e-12)
    assert booked.sum() == pytest.approx(by_period.sum(), rel=1e-12)
    for r, mine in acc.groupby("replication"):
        assert mine["acquisition"].sum() == pytest.approx(
            won.loc[won["replication"] == r, "value"].sum(), rel=1e-12)
        assert mine.loc[mine["starting"], "acquisition"].eq(0).all()
        assert mine["profit"].sum() == pytest.approx(
            ts.loc[ts["replication"] == r, "profit"].sum(), rel=1e-9)


def test_an_arrival_is_booked_on_its_own_slot() -> None:
    """Each arrival's acquisition is its new_account event's (a referral's cheaper), booked
    on its own slot, and it arrives with its starting trust, a referral with 0.1 more: what
    period_step writes for the period's arrivals (the next slots in a row), on them only."""
    sim, arrived, _left = _run()
    ev = sim.log.arrays()  # type: ignore[union-attr]
    won = ev["kind"] == EVENT_KINDS.index("new_account")
    code = dict(zip(ev["account"][won].tolist(), ev["code"][won].tolist(), strict=True))
    cost = dict(zip(ev["account"][won].tolist(), ev["value"][won].tolist(), strict=True))
    assert 0 < sum(code.values()) < len(code)  # referrals and cold arrivals
    for a in arrived:
        s = a["slot"]
        assert a["trust"] == sim.prep.trust[s] + (0.1 if code[s] else 0.0)
    paid = np.flatnonzero(sim.acc["acquisition"])
    assert paid.tolist() == sorted(cost)
    assert all(sim.acc["acquisition"][s] == cost[s] for s in paid.tolist())
