"""The bench's reduced models (bench/reduced.py): the naive SimPy version and the numpy floor
of each play the same model, so the ratios the bench prints compare like with like. And the
bench's ratio rows, on made-up timings (no test asserts on a measured time)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

import naive_simpy  # noqa: E402
import numpy_floor  # noqa: E402
import run as bench_run  # noqa: E402
from reduced import Core, Reduced  # noqa: E402


def test_the_minimal_model_is_the_same_update_both_ways() -> None:
    # nobody leaves: no draw decides anything, so the totals agree to the rounding
    cfg = Reduced(accounts=1500, months=24, base_churn_per_month=0.0,
                  trust_churn_per_month=0.0)
    naive, floor = naive_simpy.run(cfg), numpy_floor.run(cfg)
    assert naive["active"] == floor["active"] == 1500
    assert naive["revenue"] == pytest.approx(floor["revenue"], rel=1e-12)
    assert naive["profit"] == pytest.approx(floor["profit"], rel=1e-12)


def test_the_domain_core_is_the_same_update_both_ways() -> None:
    # stages move whenever the support allows (p 1) and nobody leaves: the decision units'
    # attitudes, the coverage, the stages and the money must agree to the rounding
    cfg = Core(accounts=1500, months=24, p_up=1.0, p_down=1.0, churn_by_stage=(0.0,) * 5,
               support_churn=0.0)
    naive, floor = naive_simpy.run_core(cfg), numpy_floor.run_core(cfg)
    assert naive["active"] == floor["active"] == 1500
    assert naive["revenue"] == pytest.approx(floor["revenue"], rel=1e-12)
    assert naive["profit"] == pytest.approx(floor["profit"], rel=1e-12)
    # and it is not a model where nothing moves: the support takes stages both ways
    still = Core(accounts=1500, months=24, p_up=0.0, p_down=0.0, churn_by_stage=(0.0,) * 5,
                 support_churn=0.0)
    assert numpy_floor.run_core(still)["revenue"] != pytest.approx(floor["revenue"], rel=1e-3)


@pytest.mark.parametrize("kind", ["minimal", "core"])
def test_with_draws_both_ways_keep_as_many_accounts(kind: str) -> None:
    # the draws differ (Python's generator one at a time, numpy's by the array), so the
    # accounts kept over five portfolios agree within the binomial noise (~1%), not to the
    # account; a hazard read differently (a stage's churn, the support's) moves it by 10%+
    naive = floor = 0.0
    for seed in range(1, 6):
        if kind == "core":
            cfg_c = Core(accounts=4000, months=36, seed=seed)
            naive += naive_simpy.run_core(cfg_c)["active"]
            floor += numpy_floor.run_core(cfg_c)["active"]
        else:
            cfg_r = Reduced(accounts=4000, months=36, seed=seed)
            naive += naive_simpy.run(cfg_r)["active"]
            floor += numpy_floor.run(cfg_r)["active"]
    assert 0.45 * 20_000 < floor < 0.9 * 20_000  # the hazards do bite
    assert naive == pytest.approx(floor, rel=0.03)


def _case(name: str, seconds: float, work: int) -> bench_run.Case:
    c = bench_run.Case(name, name, ["x"])
    c.seconds, c.work = [seconds], work
    return c


def test_the_ratio_rows() -> None:
    am = 10_000 * 60
    by = {c.name: c for c in [
        _case("model_10k", 0.3, am), _case("model_100k", 1.2, 10 * am),
        _case("naive_10k", 1.5, am), _case("floor_10k", 0.015, am),
        _case("naive_core_10k", 6.0, am), _case("floor_core_10k", 0.05, am),
        _case("floor_core_100k", 0.4, 10 * am)]}
    rows = {r[0]: r[1:] for r in bench_run.ratios(by)}
    assert rows["speed-up over naive SimPy (minimal reduced model, 10k x 60)"] == (
        "5.00x", ">= 100x", "MISS")
    assert rows["full model / numpy floor (minimal reduced model, 10k x 60)"] == (
        "20.0x", "<= 8x", "MISS")
    # the naive version over its floor, and what both targets need of it: 100 times the full
    # model's ratio to the floor
    assert rows["naive SimPy / numpy floor (minimal reduced model, 10k x 60)"] == (
        "100x", "(both: >= 2000x)", "")
    assert rows["speed-up over naive SimPy (domain's core, 10k x 60)"][0] == "20.00x"
    assert rows["full model / numpy floor (domain's core, 10k x 60)"] == ("6.0x", "<= 8x",
                                                                           "PASS")
    assert rows["full model / numpy floor (domain's core, 100k x 60)"] == ("3.0x", "<= 8x",
                                                                            "PASS")
    # without the naive version at 100k (a --quick bench), only the floor's row
    assert "speed-up over naive SimPy (domain's core, 100k x 60)" not in rows
    assert "naive SimPy / numpy floor (domain's core, 100k x 60)" not in rows
    # at 1M, where both hold: 120x faster than the naive version and 5x the floor, so the
    # naive version is 600x its floor, above the 500x both need
    m = 1_000_000 * 12
    by.update({c.name: c for c in [_case("model_1m_12", 3.0, m),
                                   _case("naive_core_1m_12", 360.0, m),
                                   _case("floor_core_1m_12", 0.6, m)]})
    rows = {r[0]: r[1:] for r in bench_run.ratios(by)}
    assert rows["speed-up over naive SimPy (domain's core, 1M x 12)"] == (
        "120.00x", ">= 100x", "PASS")
    assert rows["full model / numpy floor (domain's core, 1M x 12)"] == ("5.0x", "<= 8x",
                                                                          "PASS")
    assert rows["naive SimPy / numpy floor (domain's core, 1M x 12)"] == (
        "600x", "(both: >= 500x)", "")
    # a full model that timed out: a bound, and a MISS
    slow = _case("model_10k", 0.0, 0)
    slow.seconds, slow.timed_out, slow.argv = [], True, ["x", "model", "10000", "60"]
    by["model_10k"] = slow
    rows = {r[0]: r[1:] for r in bench_run.ratios(by)}
    assert rows["full model / numpy floor (minimal reduced model, 10k x 60)"][2] == "MISS"
