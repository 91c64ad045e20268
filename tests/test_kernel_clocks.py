"""The compiled bits of the period step around its clocks give the numpy lines' figures to
the bit: the next clocks of the people due to leave and who of them leaves, who of the people
who left was key and the trust hit of the accounts they leave without a thread
(``departures_kernel``), and the complaints that arrive
(``complaints_kernel.arrivals_due`` and ``queued``), on NaN, infinities, empty and inactive
portfolios; whole short simulations of every shipped scenario run the same with them as
without. And what a simulation decides once for its run (whether the kernels run, the
decision units' step constants) is what asking every period gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _identical import differences
from _kernels import count_calls, off_and_on
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_scenarios import SCENARIOS

from kamsim import jit
from kamsim.engine.step import KEY_COVERAGE, KEY_INFLUENCE
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"

needs_numba = pytest.mark.skipif(not jit.available(), reason="numba is not installed")

#: clocks: NaN, infinities (a rate of 0), ties with the limit and plain values
_CLOCKS = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, np.nan, np.inf, 5e-324]),
                    st.floats(-1.0, 10.0))
_GAPS = st.one_of(st.sampled_from([0.0, np.inf, np.nan, 1e308]), st.floats(0.0, 50.0))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit (a NaN's payload, the sign of a zero), in the same dtype and shape."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@needs_numba
@settings(max_examples=300, deadline=None)
@given(data=st.data(), limit=st.sampled_from([1.0, 2.0, 2.5, np.inf]))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_complaints_that_arrive_are_numpys(data: st.DataObject, limit: float) -> None:
    from kamsim.engine import complaints_kernel as ck

    n = data.draw(st.integers(0, 30))
    n_levels = data.draw(st.integers(1, 4))
    act = data.draw(arrays(np.bool_, n))
    level = data.draw(arrays(np.int64, n, elements=st.integers(0, n_levels - 1)))
    priority = data.draw(arrays(data.draw(st.sampled_from([np.float64, np.int64])), n_levels,
                                elements=st.integers(-3, 5)))
    response_days = data.draw(arrays(np.float64, n_levels, elements=_CLOCKS))
    clocks = data.draw(arrays(np.float64, n, elements=_CLOCKS))
    # period_step's numpy lines, the draws given
    want = clocks.copy()
    due = np.flatnonzero(want < limit)
    arrivals = want[due]
    gaps = data.draw(arrays(np.float64, due.size, elements=_GAPS))
    want[due] = np.maximum(arrivals + gaps, limit)
    u_work = data.draw(arrays(np.float64, due.size, elements=st.floats(0.0, 1.0)))
    live = act[due]
    c_acc = due[live]
    lvl = level[c_acc]
    got = clocks.copy()
    got_due, got_arrivals = ck.arrivals_due(got, limit)
    assert same(got_due, due) and same(got_arrivals, arrivals)
    queued = ck.queued(got, got_due, got_arrivals, gaps, limit, act, u_work, level, priority,
                       response_days)
    assert same(got, want)
    for g, w in zip(queued, (c_acc, arrivals[live], u_work[live], priority[lvl],
                             response_days[lvl]), strict=True):
        assert same(g, w)


@needs_numba
@settings(max_examples=300, deadline=None)
@given(data=st.data())
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_key_people_and_the_orphaned_are_numpys(data: st.DataObject) -> None:
    """Who of those who left was a key person, and the trust hit of the accounts left
    without a thread: several people of one account may leave in a period (the account is
    hit once), and a NaN compares as numpy compares it."""
    from kamsim.engine import departures_kernel as dk

    n = data.draw(st.integers(1, 8))
    k = data.draw(st.integers(0, 12))
    left = np.sort(data.draw(arrays(np.int64, k, elements=st.integers(0, n - 1))))
    influence = data.draw(arrays(np.float64, k, elements=st.sampled_from(
        [0.0, 0.2, 0.5, 0.4999999, 1.0, np.nan])))
    coverage = data.draw(arrays(np.float64, k, elements=st.sampled_from(
        [0.0, 1 / 3, 1 / 3 - 1e-9, 1 / 3 - 2e-9, 0.9, np.nan])))
    threads = st.sampled_from([0.0, 1.0, 2.0, np.nan, -0.0])
    before = data.draw(arrays(np.float64, n, elements=threads))
    after = data.draw(arrays(np.float64, n, elements=threads))
    trust = data.draw(arrays(np.float64, n, elements=_CLOCKS))
    hit = data.draw(st.sampled_from([0.15, 0.0, -0.0, np.nan]))
    # period_step's numpy lines
    key = (influence >= KEY_INFLUENCE) | (coverage >= KEY_COVERAGE)
    kp_acc = left[key]
    want = trust.copy()
    orphaned = left[(before[left] > 0) & (after[left] == 0)]
    want[orphaned] = want[orphaned] - hit
    got_key, got_kp = dk.key_people(influence, coverage, left, KEY_INFLUENCE,
                                    KEY_COVERAGE)
    assert same(got_key, key) and same(got_kp, kp_acc)
    got = trust.copy()
    dk.orphaned_hit(left, before, after, got, hit)
    assert same(got, want)


class _Draws:
    """A stream that hands out the given uniforms (what ``Simulation._exp_times`` draws)."""

    def __init__(self, u: np.ndarray):
        self.u = u

    def random(self, size: int | tuple[int]) -> np.ndarray:
        assert (size if isinstance(size, tuple) else (size,)) == self.u.shape
        return self.u.copy()  # (a new array, as a generator's: _exp_times works in it)


@needs_numba
@settings(max_examples=300, deadline=None)
@given(data=st.data(), limit=st.sampled_from([1.0, 2.0, 2.5, np.inf]))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_the_people_who_leave_are_numpys(data: st.DataObject, limit: float) -> None:
    """The next clocks of the people due and who of them leave (those of accounts in the
    portfolio, whose draw becomes 0): a rate of 0, negative or NaN (never positive: a clock
    at infinity), a NaN coming through the maximum, none due."""
    from kamsim.engine import departures_kernel as dk
    from kamsim.engine.core import Simulation

    n = data.draw(st.integers(1, 6))
    people = data.draw(st.integers(0, 20))
    account = np.sort(data.draw(arrays(np.int64, people, elements=st.integers(0, n - 1))))
    act = data.draw(arrays(np.bool_, n))
    n_roles = data.draw(st.integers(1, 3))
    role = data.draw(arrays(np.int8, people, elements=st.integers(0, n_roles - 1)))
    departure_lam = data.draw(arrays(np.float64, n_roles, elements=st.one_of(
        st.sampled_from([0.0, -0.0, -1.0, np.nan, np.inf, 1e-300]), st.floats(0.0, 2.0))))
    # (-inf: a clock that the infinite gap of a rate of 0 makes NaN)
    clocks = data.draw(arrays(np.float64, people, elements=st.one_of(_CLOCKS,
                                                                     st.just(-np.inf))))
    # period_step's numpy lines, the draws given
    want, want_u = clocks.copy(), np.ones(people, dtype=np.float32)
    idx_p = (want < limit).nonzero()[0]
    u = data.draw(arrays(np.float64, idx_p.size, elements=st.one_of(
        st.sampled_from([0.0, 0.5, 1 - 2**-53]), st.floats(0.0, 1.0, exclude_max=True))))
    lam_p = departure_lam[role[idx_p]]
    want[idx_p] = np.maximum(want[idx_p] + Simulation._exp_times(_Draws(u), lam_p), limit)
    leave_now = idx_p[act[account[idx_p]]]
    want_u[leave_now] = 0.0
    got, got_u = clocks.copy(), np.ones(people, dtype=np.float32)
    got_leave = dk.leaving(idx_p, np.log1p(-u), got, departure_lam, role, account, act, limit,
                           got_u)
    assert same(got, want) and same(got_u, want_u) and same(got_leave, leave_now)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each kernel ran (so that no test passes on two numpy runs)."""
    return count_calls(monkeypatch, (("departures_kernel", "leaving"),
                                     ("departures_kernel", "key_people"),
                                     ("departures_kernel", "orphaned_hit"),
                                     ("complaints_kernel", "arrivals_due"),
                                     ("complaints_kernel", "queued")))


@needs_numba
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_runs_the_same(monkeypatch: pytest.MonkeyPatch, calls: dict[str, int],
                                      path: Path) -> None:
    out = off_and_on(monkeypatch, path, seed=5)
    assert all(calls.values()), calls
    assert not differences(out["off"], out["on"], path.stem)


def test_a_simulation_asks_whether_the_kernels_run_once(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """Once for its run, not every period (nor twice more a period for its decision units):
    reading the environment costs ~10 µs a call in a period's cold cache."""
    asked = []
    real = jit.wanted
    monkeypatch.setattr(jit, "wanted", lambda people, *work: asked.append(people)
                        or real(people, *work))
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=60", "horizon_months=12",
                                    "replications=1"])
    simulate(spec, workers=1)
    assert len(asked) == 1


def test_a_context_follows_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Context keeps its step's constants, but takes new ones when its parameters' values
    change (in place too): the same step as kamsim.dmu.step's, which works them out on
    every call."""
    from kamsim.dmu import StepInput, StepParams, metrics, step
    from kamsim.dmu.context import Context
    from kamsim.engine.core import replication_units
    from kamsim.experiment import prepared

    monkeypatch.setenv(jit.ENV, "off")
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=40", "replications=1"])
    roles = spec.stakeholders.roles
    units = replication_units(prepared(spec).units)
    na, n = units.n_accounts, units.n_people
    rng = np.random.default_rng(3)
    params = StepParams()
    ctx, twin = Context(units.copy(), params, roles, 0.3), units.copy()
    for period in range(4):
        if period == 2:
            params.attitude_speed *= 3.0  # (in place: the same object)
        hours = [rng.random(na) * 10 for _ in range(3)]
        inp = StepInput(am_hours=hours[0], exec_hours=hours[1], specialist_hours=hours[2],
                        quality=rng.random(na) * 2 - 1, complaints_resolved=np.zeros(na),
                        complaints_unresolved=np.zeros(na), active=rng.random(na) < 0.9)
        u = rng.random(n)
        got, want = ctx.step(inp, u), step(twin, inp, params, roles, u)
        assert same(got.departed, want.departed)
        for name in ("coverage", "attitude", "months_in_post"):
            assert same(getattr(ctx.units, name), getattr(twin, name))
    assert same(ctx.metrics().coverage, metrics(twin, 0.3).coverage)


@needs_numba
@pytest.mark.parametrize("kernels, runs", [(None, True), (True, True), (False, False)])
def test_a_context_runs_the_kernels_as_told(monkeypatch: pytest.MonkeyPatch,
                                            kernels: bool | None, runs: bool) -> None:
    """``kernels``: what the simulation decided for its run; None asks kamsim.jit.wanted
    (here: on)."""
    from kamsim.dmu import StepInput, StepParams, metrics_kernel, step_kernel
    from kamsim.dmu.context import Context
    from kamsim.engine.core import replication_units
    from kamsim.experiment import prepared

    monkeypatch.setenv(jit.ENV, "on")
    ran = []
    for module, name in ((step_kernel, "step_part"), (metrics_kernel, "metrics_part")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _name=name: ran.append(_name) or _real(*a))
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=40", "replications=1"])
    units = replication_units(prepared(spec).units)
    ctx = Context(units, StepParams(), spec.stakeholders.roles, 0.3, kernels=kernels)
    before = ctx.metrics()
    ctx.step(StepInput.idle(units.n_accounts), np.ones(units.n_people))
    ctx.metrics(before)
    assert ran == (["metrics_part", "step_part", "metrics_part"] if runs else [])
