"""The compiled service of a period (kamsim.engine.allocation_kernel) gives the numpy path's
figures to the bit: the asked service of every strategy (``demand``), each allocation with
capacity zero, short and ample, with and without a budget, tied priorities (``allocate``),
the money and service ratios (with the quality of service the decision units see), and whole short simulations of every shipped scenario."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path

import numpy as np
import pytest
from _identical import differences
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_scenarios import SCENARIOS

from kamsim import jit
from kamsim.compile import CompiledModel, compile_model
from kamsim.engine.allocation import Demand, ServiceOrder, allocate, demand
from kamsim.engine.step import _allocated, _ratio
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario
from kamsim.ufuncs import clip as _clip

pytestmark = [pytest.mark.skipif(not jit.available(), reason="numba is not installed"),
              # (the numpy path's warnings on the NaNs and infinities given on purpose)
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
STRATEGIES = {
    "equal": ["strategy.name=equal"],
    "equal_level": ["strategy.name=equal", "strategy.level=key"],
    "tiered": ["strategy.name=tiered"],
    "value_based": ["strategy.name=value_based", "strategy.by=clv"],
    "value_by_score": ["strategy.name=value_based", "strategy.by=score"],
    "cultivate": ["strategy.name=cultivate", "strategy.extra_effort=0.7"],
    # ties: two values of the expression, many accounts on each
    "custom": ["strategy.name=custom", "strategy.priority=if(trust > 0.5, 2, 1)"],
}

SHORT = ["capacity.account_managers=2.75", "capacity.executives=0.875",
         "capacity.specialists=2.625"]


@pytest.fixture
def calls(monkeypatch):
    """How many times each kernel ran (so that no test passes on two numpy runs)."""
    kernel = importlib.import_module("kamsim.engine.allocation_kernel")
    count = {"asked": 0, "allocated": 0, "ratios": 0}

    def counting(name: str):  # type: ignore[no-untyped-def]
        fn = getattr(kernel, name)

        def counted(*args):  # type: ignore[no-untyped-def]
            count[name] += 1
            return fn(*args)
        return counted

    for name in count:
        monkeypatch.setattr(kernel, name, counting(name))
    return count


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit (a NaN's payload, the sign of a zero), in the same dtype and shape."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# -- whole simulations: KAMSIM_KERNELS off against on, the same seed

def _results(monkeypatch, path: Path, over: list[str]):  # type: ignore[no-untyped-def]
    out = {}
    for value in ("off", "on"):
        monkeypatch.setenv(jit.ENV, value)
        spec = load_scenario(path, over)
        res = simulate(spec, workers=1, record_events=True)
        out[value] = (res.per_replication(), res.outputs)
    return out["off"], out["on"]


def _small(path: Path) -> list[str]:
    over = ["replications=1", "horizon_months=13", "seed=7"]
    gen = load_scenario(path).scenario.portfolio.generate
    if gen is not None and gen.accounts > 300:
        over.append("portfolio.generate.accounts=300")
    return over


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_runs_the_same(monkeypatch, calls, path: Path) -> None:
    off, on = _results(monkeypatch, path, _small(path))
    assert calls["asked"] > 0 and calls["ratios"] > 0
    assert not differences(off, on, path.stem)


@pytest.mark.parametrize("capacity", [
    # short (the baseline's team, for 2,000 accounts, scaled to 250: short of what its
    # levels ask), none, ample, a budget
    SHORT,
    ["capacity.account_managers=0", "capacity.executives=0", "capacity.specialists=0"],
    ["capacity.account_managers=1000", "capacity.executives=1000",
     "capacity.specialists=1000"],
    [*SHORT, "capacity.budget_per_year=20000"],
], ids=["short", "zero", "ample", "budget"])
@pytest.mark.parametrize("strategy", list(STRATEGIES), ids=list(STRATEGIES))
def test_every_strategy_and_capacity_runs_the_same(monkeypatch, calls, strategy: str,
                                                   capacity: list[str]) -> None:
    over = ["portfolio.generate.accounts=250", "horizon_months=13", "replications=1",
            "seed=11", *STRATEGIES[strategy], *capacity]
    off, on = _results(monkeypatch, BASELINE, over)
    assert calls["asked"] > 0
    if capacity[0] == SHORT[0]:
        assert calls["allocated"] > 0  # capacity ran short: the kernel shared it out
    if len(capacity) == 4:  # the budget ran short too (13 periods, three kinds of hours)
        assert calls["allocated"] > 3 * 13
    assert not differences(off, on, strategy)


# -- demand: every strategy on made-up accounts (NaN, infinities, signed zeros, none in)

@pytest.fixture(scope="module")
def models() -> dict[str, CompiledModel]:
    return {name: compile_model(load_scenario(BASELINE, over))
            for name, over in STRATEGIES.items()}


_floats = st.one_of(st.just(0.0), st.just(-0.0), st.just(np.nan), st.just(np.inf),
                    st.floats(-10.0, 1e6, allow_subnormal=False))


@st.composite
def portfolios(draw):  # type: ignore[no-untyped-def]
    n = draw(st.integers(0, 30))
    ints = st.integers(0, 2)
    return dict(
        tier=draw(arrays(np.int64, n, elements=ints)),
        active=draw(arrays(bool, n)),
        stage=draw(arrays(np.int64, n, elements=st.integers(0, 5))),
        list_revenue=draw(arrays(np.float64, n, elements=_floats)),
        quadrant=draw(arrays(np.int64, n, elements=st.integers(0, 3))),
        clv_rank=draw(arrays(np.float64, n, elements=st.one_of(st.just(1.0), _floats))),
        trust=draw(arrays(np.float64, n, elements=st.floats(0.0, 1.0))),
        dt=draw(st.sampled_from([1.0, 0.5, 3.0])),
    )


def _demand(model: CompiledModel, p: dict, kernels: bool) -> Demand:
    return demand(model, p["tier"], p["active"], p["stage"], p["list_revenue"],
                  {"trust": p["trust"]}, p["quadrant"], p["clv_rank"], p["dt"],
                  kernels=kernels)


def assert_same_demand(a: Demand, b: Demand) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "order":
            (cx, nx), (cy, ny) = x.classes(), y.classes()
            assert same(cx, cy) and nx == ny, ("classes", cx, cy, nx, ny)
        else:
            assert same(x, y), (f.name, x, y)


@pytest.mark.parametrize("strategy", list(STRATEGIES), ids=list(STRATEGIES))
@settings(max_examples=60, deadline=None)
@given(p=portfolios())
def test_demand_is_the_same(models, strategy: str, p: dict) -> None:
    model = models[strategy]
    assert_same_demand(_demand(model, p, True), _demand(model, p, False))


def test_demand_of_a_cultivated_top_tier_is_the_same(models) -> None:
    # cultivate: the boost, the half step up and its cap below the top tier, side by side
    p = dict(tier=np.array([0, 0, 1, 2, 2, 1]), active=np.array([1, 1, 1, 1, 0, 1], bool),
             stage=np.array([0, 1, 2, 3, 4, 5]), quadrant=np.array([2, 0, 2, 2, 2, 1]),
             list_revenue=np.array([1e3, -0.0, np.nan, 5.0, 7.0, np.inf]),
             clv_rank=np.zeros(6), trust=np.full(6, 0.5), dt=1.0)
    model = models["cultivate"]
    assert_same_demand(_demand(model, p, True), _demand(model, p, False))


# -- allocate: capacity zero, short, ample; tied priorities; NaN in the asked amounts

_asked = st.one_of(st.just(0.0), st.just(np.nan), st.just(np.inf),
                   st.floats(0.0, 100.0, allow_subnormal=False))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_allocate_is_the_same(calls, data) -> None:
    n = data.draw(st.integers(0, 40))
    asked = data.draw(arrays(np.float64, n, elements=_asked))
    # few distinct values: many ties
    priority = data.draw(arrays(np.float64, n, elements=st.sampled_from([0.0, -0.0, 1.0, 2.5])))
    among = data.draw(st.one_of(st.none(), arrays(bool, n)))
    finite = asked[np.isfinite(asked)].sum()
    capacity = data.draw(st.one_of(st.sampled_from([0.0, -1.0, np.nan, np.inf]),
                                   st.floats(0.0, 2.0 * finite + 1.0)))
    before = calls["allocated"]
    for order in (ServiceOrder(priority, among), priority):
        a = allocate(asked, order, capacity, kernels=True)
        b = allocate(asked, order, capacity, kernels=False)
        assert same(a, b), (a, b)
    if not float(asked.sum()) <= capacity and not capacity <= 0:
        assert calls["allocated"] == before + 2


@pytest.mark.parametrize("capacity", [0.0, 5.0, 12.0, 33.0, 1e9])
def test_allocate_by_level_with_ties_is_the_same(calls, capacity: float) -> None:
    table = np.array([3.0, 1.0, 3.0])
    level = np.array([0, 1, 2, 2, 0, 1, 1, 0])
    among = np.array([1, 1, 1, 0, 1, 1, 0, 1], bool)
    asked = np.array([4.0, 6.0, 10.0, 30.0, 5.0, 2.0, 7.0, 1.5])
    order = ServiceOrder.by_level(table, level, among=among)
    a = allocate(asked, order, capacity, kernels=True)
    assert same(a, allocate(asked, order, capacity))
    assert calls["allocated"] == (1 if 0.0 < capacity < asked.sum() else 0)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), kernels=st.booleans())
def test_allocated_is_allocate_and_its_sum(calls, data, kernels: bool) -> None:
    # period_step's _allocated: what allocate delivers, and its sum for the utilisation; all
    # served, the asked array itself (not a copy) and its own sum
    n = data.draw(st.integers(0, 40))
    asked = data.draw(arrays(np.float64, n, elements=_asked))
    order = ServiceOrder(data.draw(arrays(np.float64, n, elements=st.sampled_from(
        [0.0, 1.0, 2.5]))), data.draw(arrays(bool, n)))
    finite = asked[np.isfinite(asked)].sum()
    capacity = data.draw(st.one_of(st.sampled_from([0.0, -1.0, np.nan, np.inf]),
                                   st.floats(0.0, 2.0 * finite + 1.0)))
    kept = asked.copy()
    got, used = _allocated(asked, order, capacity, kernels)
    want = allocate(asked, order, capacity, kernels)
    assert same(got, want)
    assert same(np.float64(used), want.sum())
    assert (got is asked) == bool(float(asked.sum()) <= capacity)
    assert same(asked, kept)


# -- the money and service ratios period_step takes of the allocation

def _ratios_numpy(money, money_asked, am, ex, sp, need, act, service_ratio):
    # period_step's numpy lines (the quality in its section "decision units")
    money_ratio = _ratio(money, money_asked)
    new = np.where(act, np.minimum(1.0, _ratio(am + ex + sp, need)), service_ratio)
    quality = 2.0 * new - 1.0
    _clip(quality, -1.0, 1.0, out=quality)
    return money_ratio, new, quality


_amounts = st.one_of(st.just(0.0), st.just(-0.0), st.just(1e-12), st.just(np.nan),
                     st.just(np.inf), st.floats(-1.0, 100.0, allow_subnormal=False))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_ratios_are_the_same(data) -> None:
    from kamsim.engine.allocation_kernel import ratios

    n = data.draw(st.integers(0, 30))
    arrs = [data.draw(arrays(np.float64, n, elements=_amounts)) for _ in range(7)]
    money, money_asked, am, ex, sp, need, service_ratio = arrs
    act = data.draw(arrays(bool, n))
    # as period_step has it without a budget: the money delivered is the money asked
    if data.draw(st.booleans()):
        money = money_asked
    a = ratios(money, money_asked, am, ex, sp, need, act, service_ratio, np.empty(n), np.empty(n),
               np.empty(n))
    b = _ratios_numpy(money, money_asked, am, ex, sp, need, act, service_ratio)
    for x, y in zip(a, b, strict=True):
        assert same(x, y), (x, y)
