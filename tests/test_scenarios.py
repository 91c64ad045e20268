"""Every shipped scenario is an executable example: it runs with a fixed seed at reduced size
and its summary satisfies stated invariants; and each scenario's own claim (what its
description says it shows) holds against the baseline on the same random futures.

Golden figures are deliberately not used while the model is being calibrated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def _is_scenario(path: Path) -> bool:
    """Scenario files only: lessons (kind: lesson) sit next to their scenarios."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return isinstance(data, dict) and data.get("kind") == "scenario"


SCENARIOS = sorted(p for p in [*(ROOT / "scenarios").glob("*.yaml"),
                               *(ROOT / "scenarios" / "lessons").glob("*.yaml")]
                   if _is_scenario(p))
HEADLINE = ("retention", "revenue", "profit", "cost_to_serve", "clv", "equity")
SEED = 20261123


def _reduced(path: Path, extra: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    spec = load_scenario(path)
    over = ["replications=2", "horizon_months=24", f"seed={SEED}", *extra]
    gen = spec.scenario.portfolio.generate
    if gen is not None and gen.accounts > 2000:
        over.append("portfolio.generate.accounts=2000")
    return load_scenario(path, over)


def _ordered(ci: dict[str, float]) -> bool:
    return ci["ci_low"] <= ci["mean"] + 1e-9 * abs(ci["mean"]) and \
        ci["mean"] <= ci["ci_high"] + 1e-9 * abs(ci["mean"])


def test_there_are_scenarios() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"baseline", "equal_treatment", "tiered", "value_based", "cultivate",
            "competitor_entry", "trainer_single_account"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_runs_and_its_summary_is_sane(path: Path) -> None:
    spec = _reduced(path)
    result = simulate(spec, workers=1)
    s = result.summary()
    assert s["scenario"] == spec.scenario.name
    assert s["seed"] == SEED and s["replications"] == 2 and s["horizon_months"] == 24
    assert 0.0 <= s["retention"]["mean"] <= 1.0
    assert s["revenue"]["mean"] > 0 and s["revenue"]["ci_low"] > 0
    assert s["cost_to_serve"]["mean"] >= 0
    for name in HEADLINE:
        assert _ordered(s[name]), (name, s[name])
        assert s[name]["n"] == 2
    assert set(s["by_tier"]) == set(result.tiers)
    for tier, figures in s["by_tier"].items():
        assert set(HEADLINE) <= set(figures), tier
        for name in HEADLINE:
            assert _ordered(figures[name]), (tier, name, figures[name])
        assert 0.0 <= figures["retention"]["mean"] <= 1.0
    # the tiers add up to the portfolio
    per = result.per_replication()
    for name in ("revenue", "profit", "cost_to_serve", "equity"):
        np.testing.assert_allclose(per[name][:, 1:].sum(axis=1), per[name][:, 0], rtol=1e-9)
    # the result says exactly what ran
    assert result.resolved["scenario"]["name"] == spec.scenario.name
    ever = result.n_start + per["new_accounts"][:, 0].max()
    assert 0 <= sum(s["churn_causes"].values()) <= ever


def test_scenario_is_reproducible() -> None:
    spec = _reduced(ROOT / "scenarios" / "trainer_single_account.yaml")
    a = simulate(spec, workers=1).summary()
    b = simulate(spec, workers=1).summary()
    assert a == b


# ---------------------------------------------------------------- each scenario's own claim


@pytest.fixture(scope="module")
def full_size() -> dict[str, object]:
    """Baseline and competitor entry at full size (2 replications, same seed)."""
    out = {}
    for name in ("baseline", "competitor_entry"):
        spec = load_scenario(ROOT / "scenarios" / f"{name}.yaml", ["replications=2"])
        out[name] = simulate(spec, record_events=False)
    return out


def test_competitor_entry_takes_more_accounts_than_baseline(full_size: dict) -> None:
    base, entry = full_size["baseline"], full_size["competitor_entry"]
    assert base.outputs[0].periods == 60  # full horizon
    lost_base = base.summary()["churn_causes"]
    lost_entry = entry.summary()["churn_causes"]
    assert lost_entry["stronger_competitor"] > lost_base["stronger_competitor"]
    # before the entry at month 12 the two are the same random futures and the same model
    for b, e in zip(base.outputs, entry.outputs, strict=True):
        np.testing.assert_array_equal(b.ts["offers"][:12], e.ts["offers"][:12])
        assert e.ts["offers"][12:].sum() > 2.0 * b.ts["offers"][12:].sum()
    assert entry.summary()["retention"]["mean"] < base.summary()["retention"]["mean"]


def test_equal_treatment_gives_every_tier_the_same_discount() -> None:
    """Everyone gets the `important` level: a 2% discount whatever the tier (no budget)."""
    spec = _reduced(ROOT / "scenarios" / "equal_treatment.yaml")
    assert spec.scenario.capacity.budget_per_year is None
    ts = simulate(spec, workers=1).timeseries()
    live = ts[ts["revenue"] > 0]
    np.testing.assert_allclose(live["discounts"] / live["revenue"], 0.02, rtol=1e-9)


def test_tiered_serves_key_accounts_more_than_general_ones() -> None:
    spec = _reduced(ROOT / "scenarios" / "tiered.yaml")
    ts = simulate(spec, workers=1).timeseries()
    per_account = ts.groupby("tier")["am_delivered"].sum() / ts.groupby("tier")["active"].sum()
    assert per_account["key"] > per_account["important"] > per_account["general"]
    ratio = ts.groupby("tier")["mean_service_ratio"].mean()
    assert ratio["key"] >= ratio["general"]


def test_cultivate_gives_more_contact_than_tiered_to_the_cultivate_quadrant() -> None:
    """Cultivate asks 50% more visits for low-volume, loyal accounts; with the same team the
    total asked account-manager hours rise at month 0."""
    tiered = simulate(_reduced(ROOT / "scenarios" / "tiered.yaml"), workers=1,
                      replications=1)
    cultivate = simulate(_reduced(ROOT / "scenarios" / "cultivate.yaml"), workers=1,
                         replications=1)
    assert cultivate.outputs[0].ts["am_asked"][0].sum() > \
        tiered.outputs[0].ts["am_asked"][0].sum()


def test_value_based_differs_from_tiered_only_in_who_is_served_first() -> None:
    """Same levels, same asked hours at month 0; only the order of service differs."""
    tiered = simulate(_reduced(ROOT / "scenarios" / "tiered.yaml"), workers=1,
                      replications=1)
    value = simulate(_reduced(ROOT / "scenarios" / "value_based.yaml"), workers=1,
                     replications=1)
    t0, v0 = tiered.outputs[0].ts, value.outputs[0].ts
    np.testing.assert_allclose(t0["am_asked"][0], v0["am_asked"][0])
    np.testing.assert_allclose(t0["am_delivered"][0].sum(), v0["am_delivered"][0].sum())
    assert not np.allclose(t0["am_delivered"][0], v0["am_delivered"][0])


def test_trainer_scenario_narrates_one_account() -> None:
    spec = load_scenario(ROOT / "scenarios" / "trainer_single_account.yaml")
    assert spec.scenario.portfolio.generate.accounts == 12  # type: ignore[union-attr]
    result = simulate(spec, replications=1, workers=1, focus="A01")
    trace = result.outputs[0].trace
    assert trace and trace[0]["period"] == 0
    last = trace[-1]
    assert last["churned"] or len(trace) == result.outputs[0].periods == 36
