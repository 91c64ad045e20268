"""Invariants of the engine over small random scenarios (hypothesis): whatever the portfolio
size, strategy, capacity and seed, a lost account never comes back, the money adds up, counts
are consistent, and results are a pure function of (scenario, seed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario
from kamsim.spec.models import CHURN_CAUSES

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
MONEY = ("revenue", "discounts", "cogs", "cost_to_serve", "acquisition", "bad_debt")
STRATEGIES = ("equal", "tiered", "value_based", "cultivate")


def _spec(accounts: int, strategy: str, managers: float, seed: int, horizon: int = 18,
          extra: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    over = [f"portfolio.generate.accounts={accounts}", f"horizon_months={horizon}",
            "replications=2", f"strategy.name={strategy}", f"seed={seed}",
            f"capacity.account_managers={managers}",
            # a busy desk, so complaints are late and the unresolved path is exercised
            "capacity.support.agents=1", "market.complaint_rate_per_month=0.2", *extra]
    if strategy == "equal":
        over.append("strategy.level=important")
    return load_scenario(BASELINE, over)


def _profit_identity(df, where: str) -> None:  # type: ignore[no-untyped-def]
    expect = (df["revenue"] - df["discounts"] - df["cogs"] - df["cost_to_serve"]
              - df["acquisition"] - df["bad_debt"])
    scale = max(1.0, float(df["revenue"].abs().max()))
    np.testing.assert_allclose(df["profit"], expect, rtol=0, atol=1e-9 * scale, err_msg=where)


def check_invariants(result) -> None:  # type: ignore[no-untyped-def]
    """Every invariant that must hold for any scenario (see the module docstring)."""
    f = result.to_frames()
    acc, ts, ev = f["accounts"], f["timeseries"], f["events"]
    periods = result.outputs[0].periods

    # a lost account never comes back
    lost = acc["churn_period"] >= 0
    assert not acc.loc[lost, "active"].any()
    assert (acc.loc[lost, "churn_period"] < periods).all()
    # ... and was lost for one of the seven causes; accounts still there have none
    assert acc.loc[lost, "churn_cause"].isin(CHURN_CAUSES).all()
    assert (acc.loc[~lost, "churn_cause"] == "").all()
    # the event log: at most one churn per account, and nothing it does after it
    churns = ev[ev["kind"] == "churn"]
    assert not churns.duplicated(["replication", "account_id"]).any()
    assert len(churns) == int(lost.sum())
    when = churns.set_index(["replication", "account_id"])["period"]
    own = ev[(ev["account_id"] != "-") & (ev["kind"] != "complaint")]
    joined = own.join(when.rename("churned_at"), on=["replication", "account_id"])
    after = joined[joined["period"] > joined["churned_at"]]
    assert after.empty, after.head()
    # churn causes: the summary counts exactly the lost accounts
    causes = result.summary()["churn_causes"]
    assert set(causes) == set(CHURN_CAUSES)
    assert sum(causes.values()) * result.replications == pytest.approx(float(lost.sum()))

    # money: the profit identity per account and per period and tier
    _profit_identity(acc, "accounts")
    _profit_identity(ts, "timeseries")
    for name in MONEY:
        assert (acc[name] >= -1e-9).all(), name
        assert (ts[name] >= -1e-9).all(), name
    # revenue is only earned by active accounts, so both tables agree on it exactly
    np.testing.assert_allclose(ts.groupby("replication")["revenue"].sum().to_numpy(),
                               acc.groupby("replication")["revenue"].sum().to_numpy(),
                               rtol=1e-9)

    # counts
    for name in ("active", "new", "churned", "complaints", "complaints_unresolved", "offers"):
        assert (ts[name] >= 0).all(), name
    assert (ts["churned"] <= ts["active"]).all()
    assert (ts["complaints_unresolved"] <= ts["complaints"]).all()
    for kind in ("am", "exec", "specialist"):
        assert (ts[f"{kind}_delivered"] <= ts[f"{kind}_asked"] * (1 + 1e-9) + 1e-9).all()
    # stage counts sum to the active accounts of each period and tier
    mix = f["stage_mix"].groupby(["replication", "period", "tier"])["accounts"].sum()
    act = ts.set_index(["replication", "period", "tier"])["active"]
    np.testing.assert_array_equal(mix.reindex(act.index).to_numpy(), act.to_numpy())
    # active at the start of period k+1 = active at k - lost at k + arrived at k
    for _, g in ts.groupby("replication"):
        tot = g.groupby("period")[["active", "new", "churned"]].sum()
        nxt = tot["active"].to_numpy()[1:]
        flow = (tot["active"] - tot["churned"] + tot["new"]).to_numpy()[:-1]
        np.testing.assert_array_equal(nxt, flow)
    # the end: accounts still active = the last period's survivors plus its arrivals
    per = result.per_replication()
    assert np.all((per["retention"] >= 0) & (per["retention"] <= 1))
    assert ((acc["trust"] >= 0) & (acc["trust"] <= 1)).all()
    util = f["utilisation"]
    assert (util["utilisation"] >= 0).all()
    am = util[util["resource"] != "support"]
    assert (am["utilisation"] <= 1 + 1e-9).all()


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(accounts=st.integers(20, 200), strategy=st.sampled_from(STRATEGIES),
       managers=st.sampled_from([0, 0.5, 2, 8, 1000]), seed=st.integers(0, 2**31 - 1))
def test_invariants_hold_on_random_scenarios(accounts: int, strategy: str, managers: float,
                                             seed: int) -> None:
    result = simulate(_spec(accounts, strategy, managers, seed), workers=1)
    check_invariants(result)


def test_invariants_hold_with_shocks_and_weeks() -> None:
    result = simulate(_spec(150, "tiered", 4, 11, extra=(
        "period=week", "market.cold_acquisition_per_year=0.1",
        "shocks=[{at_month: 3, kind: competitor_entry, offer_rate_multiplier: 3, "
        "price_gap: 0.2}, {at_month: 6, until_month: 12, kind: am_attrition, "
        "capacity_multiplier: 0.5}]")), workers=1)
    assert result.outputs[0].periods == 78  # 18 months of weeks
    check_invariants(result)


def _outputs_equal(a, b) -> None:  # type: ignore[no-untyped-def]
    assert len(a.outputs) == len(b.outputs)
    for x, y in zip(a.outputs, b.outputs, strict=True):
        assert x.replication == y.replication
        for k in x.ts:
            np.testing.assert_array_equal(x.ts[k], y.ts[k], err_msg=k)
        for k in x.accounts:
            np.testing.assert_array_equal(x.accounts[k], y.accounts[k], err_msg=k)
        for name in ("stage_counts", "transitions", "churn_causes", "utilisation"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
        assert x.events is not None and y.events is not None
        for k in x.events:
            np.testing.assert_array_equal(x.events[k], y.events[k], err_msg=k)


@pytest.mark.parametrize("strategy", ["tiered", "value_based"])
def test_same_seed_gives_identical_results(strategy: str) -> None:
    first = simulate(_spec(120, strategy, 3, 99), replications=3, workers=1)
    again = simulate(_spec(120, strategy, 3, 99), replications=3, workers=1)
    _outputs_equal(first, again)
    other = simulate(_spec(120, strategy, 3, 100), replications=3, workers=1)
    assert not np.array_equal(first.outputs[0].accounts["clv"], other.outputs[0].accounts["clv"])


def test_results_do_not_depend_on_workers() -> None:
    spec = _spec(150, "cultivate", 3, 5)
    one = simulate(spec, replications=5, workers=1)
    two = simulate(spec, replications=5, workers=2)
    _outputs_equal(one, two)
    assert one.summary()["profit"] == two.summary()["profit"]


def test_replication_r_is_the_same_whatever_the_count() -> None:
    """Replication r uses the r-th child seed, so asking for more replications only adds."""
    spec = _spec(80, "tiered", 2, 3)
    few = simulate(spec, replications=2, workers=1)
    more = simulate(spec, replications=4, workers=1)
    few_copy = type(few)(**{**few.__dict__, "outputs": more.outputs[:2]})
    _outputs_equal(few, few_copy)


def test_nothing_is_booked_to_an_account_after_it_is_lost() -> None:
    result = simulate(_spec(200, "tiered", 8, 20261123, horizon=24), workers=1)
    f = result.to_frames()
    acc, ts, ev = f["accounts"], f["timeseries"], f["events"]
    when = acc[acc["churn_period"] >= 0].set_index(["replication", "account_id"])
    joined = ev.join(when["churn_period"], on=["replication", "account_id"], how="inner")
    assert (joined["period"] <= joined["churn_period"]).all()
    np.testing.assert_allclose(ts.groupby("replication")["profit"].sum().to_numpy(),
                               acc.groupby("replication")["profit"].sum().to_numpy(),
                               rtol=1e-12)
