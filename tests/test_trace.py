"""The narrated trace of one account.

The golden test compares the story of ``scenarios/trainer_single_account.yaml``, account A03,
seed 7, replication 0, with ``tests/golden/trace_trainer_single_account.txt``. When the model
or the wording changes on purpose, regenerate it with::

    KAMSIM_UPDATE_GOLDEN=1 pytest tests/test_trace.py

and review the diff; without the variable the test fails on any difference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from kamsim.errors import RunError
from kamsim.trace import CAUSE_TEXT, Trace, trace

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "scenarios" / "trainer_single_account.yaml"
GOLDEN = ROOT / "tests" / "golden" / "trace_trainer_single_account.txt"


def test_golden_story() -> None:
    text = trace(SCENARIO, "A03", seed=7).text()
    if os.environ.get("KAMSIM_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.is_file(), f"{GOLDEN} missing: run with KAMSIM_UPDATE_GOLDEN=1"
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the story differs from the golden file; if the change is intended, rerun with "
        "KAMSIM_UPDATE_GOLDEN=1 and review the diff")


def test_same_seed_same_story_and_replications_differ() -> None:
    a = trace(SCENARIO, "A03", seed=7)
    b = trace(SCENARIO, "A03", seed=7)
    assert a.sentences() == b.sentences()
    assert a.to_json() == b.to_json()
    c = trace(SCENARIO, "A03", seed=7, replication=1)
    assert c.records != a.records


def test_replication_matches_simulate() -> None:
    """Replication r of trace is replication r of a run with the same seed."""
    from kamsim.experiment import simulate

    res = simulate(SCENARIO, replications=3, seed=11, workers=1, focus="A05")
    t = trace(SCENARIO, "A05", seed=11, replication=2)
    assert json.dumps(t.records) == json.dumps(res.outputs[2].trace)


def test_unknown_account_lists_range() -> None:
    with pytest.raises(RunError, match=r"A01 to A12"):
        trace(SCENARIO, "B99")


def test_to_json_is_data_of_the_sentences() -> None:
    t = trace(SCENARIO, "A03", seed=7)
    data = json.loads(json.dumps(t.to_json()))
    assert [d["sentence"] for d in data] == t.sentences()
    assert data[0]["events"][0]["kind"] == "start"
    assert data[-1]["events"][-1]["kind"] in ("lost", "active_at_end")
    months = [d["month"] for d in data]
    assert months == sorted(months) and len(set(months)) == len(months)


# ---------------------------------------------------------------- narration rules


def _person(pid: str, role: str, att: float = 0.0, cov: float = 0.0, infl: float = 0.5,
            months: float = 24.0) -> dict[str, Any]:
    return {"id": pid, "role": role, "influence": infl, "attitude": att, "coverage": cov,
            "months_in_post": months}


def _rec(period: int, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "period": period, "month": float(period), "tier": "key", "stage_start": "basic",
        "stage": "basic", "trust": 0.6, "coverage": 0.4, "coverage_before": 0.4,
        "sentiment": 0.1, "multithreading": 2.0, "champion": True, "dm_covered": True,
        "red_flags": 0, "service_ratio": 1.0, "hours_asked": 6.0, "hours_delivered": 6.0,
        "revenue": 1000.0, "profit": 200.0, "cost_to_serve": 50.0, "share": 0.3,
        "complaints_resolved": 0, "complaints_unresolved": 0, "offer": False,
        "offer_gap": 0.0, "offer_outcome": None, "departed": [], "churned": False,
        "cause": None,
        "people": [_person("X-economic_buyer-1", "economic_buyer", 0.5, 2 / 3, 0.9),
                   _person("X-champion-1", "champion", 0.5, 2 / 3, 0.6)],
        "edges": [("X-champion-1", "X-economic_buyer-1", 0.6, 1)]}
    base.update(kw)
    return base


def _trace(records: list[dict[str, Any]]) -> Trace:
    return Trace(scenario="s", account="X", seed=1, replication=0, records=records,
                 stages=("exploratory", "basic", "cooperative"),
                 rules={"exploratory": {"up": "trust >= 0.45", "down": None},
                        "basic": {"up": "trust >= 0.55 and coverage >= 0.3",
                                  "down": "trust < 0.35"},
                        "cooperative": {"up": None, "down": "trust < 0.45"},
                        "uncoupled": {"when": "trust < 0.2", "recover": "trust >= 0.4"}},
                 horizon_months=36.0)


def test_only_covered_contact_departure() -> None:
    people = [_person("X-economic_buyer-1", "economic_buyer", 0.0, 0.0, 0.9),
              _person("X-purchaser-1", "purchaser", 0.0, 0.0, 0.5, months=0.0)]
    left = _rec(3, departed=[{"person": "X-purchaser-1", "role": "purchaser",
                              "coverage": 2 / 3, "influence": 0.5}],
                coverage_before=0.62, coverage=0.18, people=people)
    # (whom else we cover is counted as the month began)
    was = [people[0], _person("X-purchaser-1", "purchaser", 0.0, 2 / 3, 0.5)]
    s = _trace([_rec(0, people=was), _rec(1, people=was), _rec(2, people=was),
                left]).sentences()
    line = next(x for x in s if x.startswith("month 3:"))
    assert "the purchaser (X-purchaser-1), our only covered contact, left" in line
    assert "coverage fell from 0.62 to 0.18" in line


def test_departure_of_one_of_several_and_of_uncovered() -> None:
    people = [_person("X-economic_buyer-1", "economic_buyer", 0.5, 2 / 3, 0.9),
              _person("X-champion-1", "champion", 0.0, 0.0, 0.6, months=0.0),
              _person("X-user-1", "user", 0.0, 0.0, 0.3, months=0.0)]
    left = _rec(2, people=people, departed=[
        {"person": "X-champion-1", "role": "champion", "coverage": 2 / 3, "influence": 0.6},
        {"person": "X-user-1", "role": "user", "coverage": 0.0, "influence": 0.3}])
    line = _trace([_rec(0), _rec(1), left]).sentences()[1]
    assert "the champion (X-champion-1), one of 2 people we cover, left" in line
    assert "a user (X-user-1), someone we did not cover, left" in line
    assert "only covered" not in line


def test_quiet_months_are_skipped() -> None:
    recs = [_rec(k) for k in range(5)]
    s = _trace(recs).sentences()
    assert [x.split(":")[0] for x in s] == ["month 0", "month 4"]
    assert "still active at the end, at the basic stage" in s[-1]


def test_stage_change_gives_rule_and_values() -> None:
    up = _rec(1, stage_start="basic", stage="cooperative", trust=0.62, coverage=0.35)
    line = _trace([_rec(0), up]).sentences()[1]
    assert "moved up from basic to cooperative" in line
    assert "(trust >= 0.55 and coverage >= 0.3: trust 0.62, coverage 0.35)" in line
    down = _rec(1, stage_start="basic", stage="exploratory", trust=0.30)
    assert "fell back from basic to exploratory (trust < 0.35: trust 0.30)" in \
        _trace([_rec(0), down]).sentences()[1]
    unc = _rec(1, stage_start="basic", stage="uncoupled", trust=0.15)
    assert "the relationship broke down from basic to uncoupled (trust < 0.2" in \
        _trace([_rec(0), unc]).sentences()[1]


def test_a_broken_down_stage_of_its_own_name_is_told_by_that_name() -> None:
    """A rule set naming it `estranged` read "uncoupled: the relationship broke down from
    prospect to estranged": the shipped name as a label the user never wrote."""
    from dataclasses import replace

    t = _trace([_rec(0), _rec(1, stage_start="basic", stage="estranged", trust=0.15)])
    rules = {("estranged" if k == "uncoupled" else k): v for k, v in t.rules.items()}
    line = replace(t, uncoupled="estranged", rules=rules).sentences()[1]
    assert "the relationship broke down from basic to estranged (trust < 0.2" in line
    assert "uncoupled" not in line


def test_an_empty_decision_unit_is_told_in_words() -> None:
    """It read "its decision unit has 0 people: ; we cover 0 of them"."""
    first = _trace([_rec(0, people=[], edges=[], champion=False, coverage=0.0,
                         multithreading=0.0)]).sentences()[0]
    assert "its decision unit has no people, so there is no one to cover" in first
    assert "0 people" not in first and ": ;" not in first


def test_offer_complaint_service_and_loss() -> None:
    recs = [_rec(0),
            _rec(1, service_ratio=0.6, hours_delivered=3.6),
            _rec(2, service_ratio=0.62, hours_delivered=3.7),  # still short: not repeated
            _rec(3, complaints_unresolved=1, complaints_resolved=1),
            _rec(4, offer=True, offer_gap=0.12, offer_outcome="stay"),
            _rec(5, offer=True, offer_gap=0.15, offer_outcome="defect", churned=True,
                 cause="stronger_competitor")]
    s = _trace(recs).sentences()
    assert any("received 60% of the contact its tier asks for" in x for x in s)
    assert not any(x.startswith("month 2:") for x in s)
    m3 = next(x for x in s if x.startswith("month 3:"))
    assert "a complaint was answered in time" in m3 and "answered late" in m3
    assert any("a competitor offered a price 12% lower; the account stayed" in x for x in s)
    assert "defected to the competitor" in s[-1]
    assert CAUSE_TEXT["stronger_competitor"] in s[-1]


def test_every_cause_has_words() -> None:
    from kamsim.spec.models import CHURN_CAUSES

    assert set(CAUSE_TEXT) == set(CHURN_CAUSES)
    for cause in CHURN_CAUSES:
        s = _trace([_rec(0), _rec(1, churned=True, cause=cause)]).sentences()
        assert CAUSE_TEXT[cause] in s[-1]


def test_trust_moves_champion_flags_and_yearly_line() -> None:
    recs = [_rec(k, trust=0.6 + 0.02 * k) for k in range(12)]
    recs[6] = _rec(6, trust=0.72, champion=False,
                   people=[_person("X-economic_buyer-1", "economic_buyer", 0.5, 2 / 3, 0.9),
                           _person("X-champion-1", "champion", 0.1, 2 / 3, 0.6)])
    s = _trace(recs).sentences()
    # drift adds up, then is told over the months it took
    assert any("trust rose 0.60 → 0.66 over months 0-3" in x for x in s)
    m6 = next(x for x in s if x.startswith("month 6:"))
    assert "we no longer have a champion: the champion (X-champion-1) cooled to neutral" in m6
    assert "red flag: no champion" in m6
    assert any("we no longer" not in x and "warmed to a supporter" in x for x in s)
    last = s[-1]
    assert last.startswith("month 11:")
    assert "year 1 (months 0-11): revenue EUR 12,000, profit EUR 2,400" in last


# ---------------------------------------------------------------- the QA review's findings


def test_service_shortfall_says_whose_it_is() -> None:
    """The hours shown are the tier's need and what was delivered (as the percentage); a
    strategy that offers less than the need is not a stretched team."""
    base = [_rec(0, tier="key", hours_needed=15.0, level="key", hours_asked=15.0,
                 hours_delivered=15.0)]
    by_choice = _rec(1, tier="key", service_ratio=0.28, hours_needed=15.0, level="important",
                     hours_asked=4.2, hours_delivered=4.2)
    line = _trace(base + [by_choice]).sentences()[1]
    assert "received 28% of the contact its tier asks for (4.2 of 15.0 hours)" in line
    assert "the tiered strategy offers it only the important level (4.2 hours)" in line
    assert "the strategy's choice, not the team's capacity" in line
    assert "stretched" not in line
    by_team = _rec(1, tier="key", service_ratio=0.4, hours_needed=15.0, level="key",
                   hours_asked=15.0, hours_delivered=6.0)
    line = _trace(base + [by_team]).sentences()[1]
    assert "received 40% of the contact its tier asks for (6.0 of 15.0 hours): the team is " \
        "stretched" in line
    both = _rec(1, tier="key", service_ratio=0.14, hours_needed=13.5, level="important",
                hours_asked=3.8, hours_delivered=1.9)
    line = _trace(base + [both]).sentences()[1]
    assert "(1.9 of 13.5 hours): the tiered strategy offers it only the important level " \
        "(3.8 hours), and the team is stretched: it delivered 1.9 of those" in line
    # the same ratio for another reason is told again
    s = _trace(base + [by_choice, _rec(2, tier="key", service_ratio=0.28, hours_needed=15.0,
                                        level="key", hours_asked=15.0,
                                        hours_delivered=4.2)]).sentences()
    assert "the team is stretched" in s[-1]


def test_equal_strategy_with_ample_capacity_is_not_a_stretched_team() -> None:
    t = trace(ROOT / "scenarios" / "equal_treatment.yaml", "A0007",
              overrides=["capacity.account_managers=1000", "capacity.executives=1000",
                         "capacity.specialists=1000", "horizon_months=12"])
    text = t.text()
    assert "stretched" not in text
    first = t.sentences()[0]
    assert "received 28% of the contact its tier asks for (4.2 of 15.0 hours): the equal " \
        "strategy offers it only the important level (4.2 hours)" in first


def test_tier_change_is_told_with_the_new_need() -> None:
    recs = [_rec(0, tier="important", hours_needed=3.8, hours_asked=3.8, level="important",
                 hours_delivered=3.8),
            _rec(1, tier="key", service_ratio=0.14, hours_needed=13.5, level="important",
                 hours_asked=3.8, hours_delivered=1.9)]
    line = _trace(recs).sentences()[1]
    assert line.startswith("month 1: re-tiered from important to key (its tier now asks for "
                           "13.5 hours of contact this month); received 14%")


def test_opening_is_the_unit_at_the_start_of_the_run() -> None:
    """The opening agrees with ``dmu show`` at month 0; month 0's events follow as events."""
    from kamsim.dmu_maps import account_map
    from kamsim.spec.load import load_scenario

    for path, account, seed in ((ROOT / "scenarios" / "lessons" / "champion_leaves.yaml",
                                 "A004", None), (SCENARIO, "A03", 7)):
        spec = load_scenario(path)
        m = account_map(spec, account).description["metrics"]
        t = trace(spec, account, seed=seed)
        start = t.timeline()[0].events[0]
        assert start["kind"] == "start"
        assert start["champion"] == bool(m["champion"])
        assert start["multithreading"] == m["multithreading"]
        assert round(start["coverage"], 9) == round(m["coverage"], 9)
        first = t.sentences()[0]
        assert "with a champion" in first and "leaving this month" not in first
        threads = int(m["multithreading"])
        assert f"{threads} influential thread" in first
        # the champion leaving in month 0 is told as an event of month 0
        assert "we no longer have a champion: our champion left" in first
    first = trace(SCENARIO, "A03", seed=7).sentences()[0]
    assert "we cover 8 of them" in first and "one of 8 people we cover, left" in first


def test_attitude_words_agree_with_the_metrics_thresholds() -> None:
    from kamsim.trace import attitude_words

    assert attitude_words(0.5) == attitude_words(0.5 - 1e-12) == "a supporter"
    assert attitude_words(0.49) == "almost a supporter"
    assert attitude_words(0.9) == "almost a mentor" and attitude_words(1.0) == "a mentor"
    assert attitude_words(-0.45) == "almost a non-supporter"
    assert attitude_words(-0.5) == "a non-supporter" and attitude_words(0.2) == "neutral"
    cooled = _rec(1, champion=False,
                  people=[_person("X-economic_buyer-1", "economic_buyer", 0.5, 2 / 3, 0.9),
                          _person("X-champion-1", "champion", 0.49, 2 / 3, 0.6)])
    line = _trace([_rec(0), cooled]).sentences()[1]
    assert "the champion (X-champion-1) cooled to almost a supporter; red flag: no champion" \
        in line


def test_trust_is_told_from_the_start_of_the_month_or_over_the_months() -> None:
    """QA: "month 2: ... trust 0.57", then "month 4: trust rose 0.55 → 0.61" (from where it
    was last told, as if it were month 4's start: trust went 0.59 → 0.61 in month 4)."""
    trusts = [0.50, 0.55, 0.57, 0.59, 0.61, 0.70]
    recs = [_rec(k, trust=t) for k, t in enumerate(trusts)]
    recs[2] = _rec(2, trust=0.57, stage_start="basic", stage="cooperative", coverage=0.35)
    t = _trace(recs)
    s = t.sentences()
    assert "trust 0.57" in s[2]  # the stage change tells it
    assert s[3] == "month 4: trust rose 0.55 → 0.61 over months 2-4"
    assert s[4].startswith("month 5: trust rose 0.61 → 0.70")  # over month 5 alone
    assert "over months" not in s[4]
    moves = [e for m in t.timeline() for e in m.events if e["kind"] == "trust"]
    assert [(e["before"], e["after"], e["since"], e["since_month"]) for e in moves] == [
        (0.50, 0.55, 0.50, 0.0), (0.59, 0.61, 0.55, 2.0), (0.61, 0.70, 0.61, 5.0)]


def test_every_trust_before_is_the_trust_at_the_start_of_its_month() -> None:
    t = trace(SCENARIO, "A03", seed=7)
    ends = {r["month"]: r["trust"] for r in t.records}
    opening = t.timeline()[0].events[0]["trust"]
    moves = [(m.month, e) for m in t.timeline() for e in m.events if e["kind"] == "trust"]
    assert moves
    for month, e in moves:
        assert e["before"] == ends.get(month - 1, opening)
        assert e["since"] == ends.get(e["since_month"] - 1, opening)
    month1 = t.sentences()[1]
    assert month1.startswith("month 1:") and "trust rose 0.50 → 0.55 over months 0-1" in month1


def test_coverage_words_agree_with_the_metrics_thresholds() -> None:
    """The words of coverage follow the rule of the attitudes (and of `dmu show`'s labels):
    nobody the story calls briefly covered falls short of a covered economic buyer."""
    from kamsim.trace import coverage_words

    assert coverage_words(1 / 3) == coverage_words(1 / 3 - 1e-12) == "briefly covered"
    assert coverage_words(0.31) == "almost briefly covered"
    assert coverage_words(0.12) == "not covered"
    assert coverage_words(0.63) == "almost covered by several contacts"
    assert coverage_words(1.0) == "covered in depth"
    start = {"tier": "key", "stage": "basic", "trust": 0.6, "coverage": 0.3,
             "multithreading": 1.0, "champion": True, "dm_covered": False, "red_flags": 1,
             "people": [_person("X-economic_buyer-1", "economic_buyer", 0.0, 0.31, 0.9),
                        _person("X-champion-1", "champion", 0.5, 2 / 3, 0.6)]}
    first = _trace([_rec(0, start=start), _rec(1)]).sentences()[0]
    assert "the economic buyer (neutral, almost briefly covered)" in first


def test_month_0_events_are_told_after_the_opening() -> None:
    """QA: A03's opening said "the economic buyer (neutral, briefly covered)" and the same
    sentence "red flag: economic buyer not covered": the start, then the end of month 0 (its
    coverage slipped from 1/3 to 0.31), with nothing to tell the two apart."""
    first = trace(SCENARIO, "A03", seed=7).sentences()[0]
    opening, during = first.split("; then, during month 0: ")
    assert "the economic buyer (neutral, briefly covered)" in opening
    assert "red flag: economic buyer not covered" in during and "red flag" not in opening


def test_account_won_during_the_run_is_named_as_such() -> None:
    from kamsim.dmu_maps import account_map
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    spec = load_scenario(SCENARIO, ["market.cold_acquisition_per_year=1.0"])
    msg = (r"'N2' in scenario 'trainer_single_account' names an account won during the run "
           r".*only the starting accounts \(A01 to A12, 12 accounts\) can be followed")
    with pytest.raises(RunError, match=msg):
        trace(spec, "N2")
    with pytest.raises(RunError, match=msg):
        account_map(spec, "N2")
    with pytest.raises(RunError, match=msg):
        simulate(spec, replications=1, workers=1, focus="N2")
    with pytest.raises(RunError, match=r"no account 'B99' .*\(ids run from A01 to A12, 12 "):
        account_map(spec, "B99")


def test_yearly_lines_add_up_to_the_account_total() -> None:
    """The last part-year and the year of a loss have their line too."""
    import re

    def years(t: Trace) -> tuple[float, float]:
        ev = [e for m in t.timeline() for e in m.events if e["kind"] == "year"]
        return sum(e["revenue"] for e in ev), sum(e["profit"] for e in ev)

    t = trace(SCENARIO, "A03", seed=7, overrides=["horizon_months=30"])
    total = (sum(r["revenue"] for r in t.records), sum(r["profit"] for r in t.records))
    assert years(t) == pytest.approx(total)
    assert "year 3 (months 24-29, part of the year): revenue" in t.sentences()[-1]
    lost = [_rec(k) for k in range(16)] + [_rec(16, churned=True, cause="strategy_change")]
    s = _trace(lost).sentences()
    assert "year 2 (months 12-16, part of the year): revenue EUR 5,000, profit EUR 1,000; " \
        "the account was lost" in s[-1]
    assert sum(int(re.sub(",", "", x)) for line in s
               for x in re.findall(r"revenue EUR ([\d,]+)", line)) == 17_000


def test_trace_seed_is_the_scenarios_seed():
    """trace(seed=N) tells replication r of `kamsim run --seed N`, which now builds its
    portfolio from N as `seed: N` in the file does."""
    from kamsim.spec.load import load_scenario
    from kamsim.trace import trace

    path = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    small = ["portfolio.generate.accounts=60", "horizon_months=6"]
    by_option = trace(load_scenario(path, small), "A03", seed=5)
    in_file = trace(load_scenario(path, [*small, "seed=5"]), "A03")
    assert by_option.seed == in_file.seed == 5
    assert by_option.sentences() == in_file.sentences()


def test_option_seed_bound_is_the_schemas():
    from kamsim.cli.main import SEED_MAX
    from kamsim.spec.models import SEED_MAX as SCHEMA_MAX

    assert SEED_MAX == SCHEMA_MAX == 2**63 - 1
