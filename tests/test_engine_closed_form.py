"""Degenerate settings in which the engine must reduce to closed forms (docs/model.md,
"Degenerate settings").

(a) textbook lifetime value: constant monthly margin m_i, constant monthly retention r, no
    service cost, so E[CLV_i] = m_i (1 - q^H) / (1 - q) with q = r / (1 + d_m), and the
    expected number of active accounts in period k is N r^k;
(b) ample capacity: every account gets all it asks (service ratio exactly 1);
(c) no capacity: nobody gets anything (service ratio 0 where something was asked).
The allocation kernel itself is tested in tests/test_allocation.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from kamsim.experiment import prepared, simulate
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]
TEXTBOOK = ROOT / "tests" / "rules_degenerate" / "textbook_clv.yaml"
BASELINE = ROOT / "scenarios" / "baseline.yaml"
SMALL = ["portfolio.generate.accounts=200", "horizon_months=24", "replications=2"]
AMPLE = ["capacity.account_managers=1000000", "capacity.executives=1000000",
         "capacity.specialists=1000000"]


def _lifetime_moments(r: float, b: float, horizon: int) -> tuple[float, float]:
    """Mean and variance of Y = sum_{k < T} b^k, where the account is still there in period k
    with probability r^k (k < horizon): Y is the discounted number of paying months."""
    k = np.arange(horizon)
    mean = float(np.sum((b * r) ** k))
    j, kk = np.meshgrid(k, k, indexing="ij")
    second = float(np.sum(b ** (j + kk) * r ** np.maximum(j, kk)))
    return mean, second - mean * mean


@pytest.fixture(scope="module")
def textbook() -> tuple:
    spec = load_scenario(TEXTBOOK)
    result = simulate(spec, workers=1)
    return spec, result


def _monthly_margin(spec) -> np.ndarray:  # type: ignore[no-untyped-def]
    prep = prepared(spec)
    nums = prep.accounts.numbers
    n = prep.n_start
    return nums["wallet"][:n] / 12.0 * nums["share"][:n] * nums["margin"][:n]


def _rates(spec) -> tuple[float, float, int]:  # type: ignore[no-untyped-def]
    sc = spec.scenario
    r = (1.0 - sc.market.base_churn_per_year) ** (1.0 / 12.0)
    d_m = (1.0 + sc.discount_rate) ** (1.0 / 12.0) - 1.0
    return r, 1.0 / (1.0 + d_m), sc.horizon_months


def test_textbook_clv_matches_closed_form_in_expectation(textbook: tuple) -> None:
    spec, result = textbook
    m = _monthly_margin(spec)
    r, b, horizon = _rates(spec)
    q = r * b
    factor = (1.0 - q ** horizon) / (1.0 - q)  # the closed form, per unit of monthly margin
    mean_y, var_y = _lifetime_moments(r, b, horizon)
    assert mean_y == pytest.approx(factor, rel=1e-12)  # the series sums to the closed form

    reps = result.replications
    n = m.shape[0]
    clv = np.vstack([o.accounts["clv"][np.argsort(o.accounts["slot"])] for o in result.outputs])
    assert clv.shape == (reps, n)
    # mean CLV over replications x accounts against m_bar x factor; accounts and replications
    # are independent, so Var(mean) = sum_i m_i^2 Var(Y) / (n^2 reps)
    observed = float(clv.mean())
    expected = float(m.mean()) * factor
    se = math.sqrt(float(np.sum(m * m)) * var_y / (n * n * reps))
    assert abs(observed - expected) < 4.0 * se, (observed, expected, se)
    # the same per unit of margin, which weighs every account equally
    y = clv / m
    se_y = math.sqrt(var_y / (n * reps))
    assert abs(float(y.mean()) - factor) < 4.0 * se_y, (float(y.mean()), factor, se_y)
    # the headline figure is the same mean, per starting account
    per_rep = result.per_replication()["clv"][:, 0]
    np.testing.assert_allclose(per_rep, clv.mean(axis=1), rtol=1e-9)


def test_textbook_clv_is_exact_given_each_lifetime(textbook: tuple) -> None:
    """Conditional on when each account left, its CLV is the discounted sum of its margins:
    it pays in every period it starts active, including the period it is lost in."""
    spec, result = textbook
    m = _monthly_margin(spec)
    r, b, horizon = _rates(spec)
    for out in result.outputs:
        a = out.accounts
        order = np.argsort(a["slot"])
        churn = a["churn_period"][order]
        paying = np.where(churn >= 0, churn + 1, horizon)  # periods paid for
        expected = m * (1.0 - b ** paying) / (1.0 - b)
        np.testing.assert_allclose(a["clv"][order], expected, rtol=1e-9)
        np.testing.assert_allclose(a["profit"][order], m * paying, rtol=1e-9)
        assert np.all(a["cost_to_serve"] == 0.0)
        assert np.all(a["acquisition"] == 0.0) and np.all(a["bad_debt"] == 0.0)
        # per period: the profit of the period is the margin of the accounts active at its start
        k = np.arange(horizon)
        active_k = (churn[None, :] < 0) | (churn[None, :] >= k[:, None])
        np.testing.assert_allclose(out.ts["profit"].sum(axis=1), active_k @ m, rtol=1e-9)
        np.testing.assert_array_equal(out.ts["active"].sum(axis=1), active_k.sum(axis=1))


def test_textbook_active_count_is_n_r_to_the_k(textbook: tuple) -> None:
    spec, result = textbook
    r, _, horizon = _rates(spec)
    n = spec.scenario.portfolio.generate.accounts
    counts = np.vstack([o.ts["active"].sum(axis=1) for o in result.outputs])  # (reps, periods)
    k = np.arange(horizon)
    p = r ** k
    expected = n * p
    # binomial: Var(mean of reps counts) = n p (1 - p) / reps
    sd = np.sqrt(n * p * (1 - p) / result.replications)
    z = np.divide(counts.mean(axis=0) - expected, sd, out=np.zeros(horizon), where=sd > 0)
    assert np.all(np.abs(z) < 4.5), z
    assert counts[:, 0].tolist() == [n] * result.replications  # nobody leaves before month 0
    # no account arrives (no referrals without effects, no cold acquisition, no room)
    assert all(o.ts["new"].sum() == 0 for o in result.outputs)


def test_textbook_retention_headline_matches_r_to_the_horizon(textbook: tuple) -> None:
    spec, result = textbook
    r, _, horizon = _rates(spec)
    n = spec.scenario.portfolio.generate.accounts
    ret = result.per_replication()["retention"][:, 0]
    p = r ** horizon  # still there at the end: survived all `horizon` periods
    sd = math.sqrt(p * (1 - p) / (n * result.replications))
    assert abs(float(ret.mean()) - p) < 4.5 * sd
    # with churn_effects off, every loss is the constant hazard, booked as trust/key person
    causes = result.summary()["churn_causes"]
    assert sum(v for c, v in causes.items() if c != "key_person_or_trust") == 0


@pytest.mark.parametrize("strategy", ["tiered", "value_based", "cultivate"])
def test_ample_capacity_serves_everyone_fully(strategy: str) -> None:
    spec = load_scenario(BASELINE, [*SMALL, f"strategy.name={strategy}", *AMPLE])
    result = simulate(spec, workers=1)
    ts = result.timeseries()
    live = ts[ts["active"] > 0]
    assert len(live) > 0
    np.testing.assert_allclose(live["mean_service_ratio"], 1.0, rtol=0, atol=1e-12)
    for kind in ("am", "exec", "specialist"):
        np.testing.assert_array_equal(ts[f"{kind}_delivered"], ts[f"{kind}_asked"])
    assert (ts["am_asked"] > 0).any()  # something was asked, so the check is not empty


def test_ample_capacity_equal_treatment_serves_the_offered_level() -> None:
    """Equal treatment delivers all it offers, but the service ratio is measured against the
    account's own tier's level: min(1, hours of the offered level / hours of its tier's)."""
    spec = load_scenario(BASELINE, [*SMALL, "strategy.name=equal", "strategy.level=important",
                                    *AMPLE])
    result = simulate(spec, workers=1)
    sv = prepared(spec).model.service
    hours = sv.am_hours + sv.exec_hours + sv.specialist_hours  # per tier's level
    level = result.tiers.index("important")
    expected = dict(zip(result.tiers, np.minimum(1.0, hours[level] / hours), strict=True))
    ts = result.timeseries()
    for kind in ("am", "exec", "specialist"):
        np.testing.assert_array_equal(ts[f"{kind}_delivered"], ts[f"{kind}_asked"])
    live = ts[ts["active"] > 0]
    want = live["tier"].map(expected).to_numpy(dtype=float)
    np.testing.assert_allclose(live["mean_service_ratio"].to_numpy(), want, rtol=1e-12)
    assert want.min() < 1.0  # the key tier is offered less than it needs


def test_zero_capacity_delivers_nothing() -> None:
    spec = load_scenario(BASELINE, [*SMALL, "capacity.account_managers=0",
                                    "capacity.executives=0", "capacity.specialists=0"])
    prep = prepared(spec)
    focus = str(prep.accounts.account_id[0])
    result = simulate(spec, workers=1, focus=focus)
    ts = result.timeseries()
    live = ts[ts["active"] > 0]
    # every service level asks for account-manager visits, so every active account asked
    assert (live["am_asked"] > 0).all()
    np.testing.assert_array_equal(live["mean_service_ratio"], 0.0)
    for kind in ("am", "exec", "specialist"):
        assert (ts[f"{kind}_delivered"] == 0).all()
    util = result.summary()["utilisation"]
    assert util["account_managers"] == 0.0 and util["executives"] == 0.0
    for out in result.outputs:
        assert out.trace, "the focus account is traced"
        for rec in out.trace:
            assert rec["hours_asked"] > 0 and rec["hours_delivered"] == 0.0
            assert rec["service_ratio"] == 0.0
