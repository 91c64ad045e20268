"""Stylised facts of key-account management, stated as the model's verdicts (docs/model.md,
"Stylised facts"). Nothing here is forced: where the model disagrees with the fact the test is
marked xfail(strict=True) with the measured figures, so a model change that makes it agree
shows up as an unexpected pass.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario
from kamsim.stats import mean_ci

ROOT = Path(__file__).resolve().parents[1]
DEGENERATE = ROOT / "tests" / "rules_degenerate"

pytestmark = pytest.mark.slow


def _paired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Mean of the per-replication differences a - b with a 95% t-interval."""
    return mean_ci(np.asarray(a) - np.asarray(b), 0.95)


def test_tiered_beats_equal_treatment_in_profit_under_tight_capacity() -> None:
    """[000, 002]: treating every account alike misallocates scarce people. Same portfolio,
    same team (short of what the service levels ask), same random futures."""
    reps = 6
    tiered = simulate(load_scenario(ROOT / "scenarios" / "tiered.yaml"), replications=reps,
                      record_events=False)
    equal = simulate(load_scenario(ROOT / "scenarios" / "equal_treatment.yaml"),
                     replications=reps, record_events=False)
    # the premise: capacity is tight (at month 0 both ask for more account-manager hours
    # than the team has)
    cap = tiered.resolved["scenario"]["capacity"]
    hours = cap["account_managers"] * cap["am_hours_per_month"]
    for result in (tiered, equal):
        asked = result.outputs[0].ts["am_asked"][0].sum()
        assert asked > hours, (result.scenario, asked, hours)
    diff = _paired(tiered.per_replication()["profit"][:, 0],
                   equal.per_replication()["profit"][:, 0])
    assert diff["ci_low"] > 0, diff


def _workspace(tmp: Path, variant: str, turnover: float, accounts: int, horizon: int) -> Path:
    """A scenario in ``tmp`` playing the baseline with the decision units of
    ``stakeholders_<variant>.yaml`` at the given yearly turnover of every person."""
    rules = tmp / "rules"
    rules.mkdir(exist_ok=True)
    for p in (ROOT / "rules").glob("*.yaml"):
        shutil.copy(p, rules / p.name)
    text = (DEGENERATE / f"stakeholders_{variant}.yaml").read_text()
    assert "turnover_per_year: 0.3" in text
    name = f"stakeholders_{variant}_{int(turnover * 100)}.yaml"
    (rules / name).write_text(text.replace("turnover_per_year: 0.3",
                                           f"turnover_per_year: {turnover}"))
    sc = yaml.safe_load((ROOT / "scenarios" / "baseline.yaml").read_text())
    sc["name"] = f"dmu_{variant}_{int(turnover * 100)}"
    sc["rules"] = {k: f"rules/{Path(v).name}" for k, v in sc["rules"].items()}
    sc["rules"]["stakeholders"] = f"rules/{name}"
    sc["portfolio"]["generate"]["accounts"] = accounts
    sc["horizon_months"] = horizon
    path = tmp / f"{sc['name']}.yaml"
    path.write_text(yaml.safe_dump(sc, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def threads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, np.ndarray]]:
    """Retention and end-of-horizon trust per replication for single- and multi-threaded
    units, with key people leaving (turnover 0.3 a year) and never leaving (0). The two
    variants have the same people, so the same people leave at the same times (common random
    numbers); they differ only in whether our coverage is on one person or spread."""
    tmp = tmp_path_factory.mktemp("threads")
    out: dict[str, dict[str, np.ndarray]] = {}
    for variant in ("single", "multi"):
        for turnover in (0.3, 0.0):
            path = _workspace(tmp, variant, turnover, accounts=1000, horizon=36)
            result = simulate(load_scenario(path), replications=8, record_events=False)
            ts = result.timeseries()
            last = ts[ts["period"] == ts["period"].max()]
            trust = (last["mean_trust"] * last["active"]).groupby(last["replication"]).sum() \
                / last.groupby("replication")["active"].sum()
            departures = ts.groupby("replication")["key_person_departures"].sum().to_numpy()
            out[f"{variant}_{turnover}"] = {
                "retention": result.per_replication()["retention"][:, 0],
                "trust": trust.to_numpy(), "departures": departures}
    return out


def test_key_people_do_leave_in_the_threads_design(threads: dict) -> None:
    assert threads["single_0.3"]["departures"].mean() > 100
    assert threads["single_0.0"]["departures"].sum() == 0
    np.testing.assert_array_equal(threads["single_0.3"]["departures"] > 0,
                                  threads["multi_0.3"]["departures"] > 0)


def test_multi_threaded_accounts_are_retained_more_when_key_people_leave(threads: dict
                                                                        ) -> None:
    """[003]: a relationship that depends on one contact is fragile. With key people leaving,
    accounts whose coverage is spread over three people are retained more often."""
    diff = _paired(threads["multi_0.3"]["retention"], threads["single_0.3"]["retention"])
    assert diff["ci_low"] > 0, diff


@pytest.mark.xfail(strict=True, reason=(
    "model only half agrees: with the orphaned-relationship trust hit ([003], "
    "market.orphaned_trust_hit 0.15) departures cost single-threaded accounts more TRUST "
    "(difference +0.0039 [0.0031, 0.0048]) but not more RETENTION (difference -0.0024 "
    "[-0.0058, 0.0010]); measured with 1000 accounts, 36 months, 8 paired replications. Delivered "
    "contact covers the newcomer and the other people within months, so a single-threaded "
    "unit does not stay single-threaded and the trust hit is rarely enough to tip an account "
    "out"))
def test_departures_cost_multi_threaded_accounts_less(threads: dict) -> None:
    """Difference in differences: what departures take away (turnover 0 minus turnover 0.3)
    is smaller for multi-threaded accounts, in retention and in trust."""
    loss_single = threads["single_0.0"]["retention"] - threads["single_0.3"]["retention"]
    loss_multi = threads["multi_0.0"]["retention"] - threads["multi_0.3"]["retention"]
    diff = _paired(loss_single, loss_multi)
    trust_single = threads["single_0.0"]["trust"] - threads["single_0.3"]["trust"]
    trust_multi = threads["multi_0.0"]["trust"] - threads["multi_0.3"]["trust"]
    trust_diff = _paired(trust_single, trust_multi)
    assert diff["ci_low"] > 0 and trust_diff["ci_low"] > 0, (diff, trust_diff)


def test_service_matters_no_capacity_loses_more_accounts_than_ample() -> None:
    """[001]: contact is the main lever. Same portfolio and futures, no team vs a huge one."""
    base = ["portfolio.generate.accounts=400", "horizon_months=36", "replications=4"]
    none = simulate(load_scenario(ROOT / "scenarios" / "baseline.yaml", [
        *base, "capacity.account_managers=0", "capacity.executives=0",
        "capacity.specialists=0"]), record_events=False)
    ample = simulate(load_scenario(ROOT / "scenarios" / "baseline.yaml", [
        *base, "capacity.account_managers=100000", "capacity.executives=100000",
        "capacity.specialists=100000"]), record_events=False)
    diff = _paired(ample.per_replication()["retention"][:, 0],
                   none.per_replication()["retention"][:, 0])
    assert diff["ci_low"] > 0, diff
