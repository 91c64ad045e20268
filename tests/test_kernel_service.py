"""The compiled list revenue (``allocation_kernel.list_revenue``) and complaint counts
(``complaints_kernel.answered``) of a period give the numpy lines' figures to the bit (on
NaN, infinities, signed zeros, empty and inactive portfolios), and whole short simulations
of every shipped scenario run the same with them as without; the support desk's services
end at SimPy timeouts, in the order SimPy gives the events of one time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import simpy
from _identical import differences
from _kernels import count_calls, off_and_on
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_scenarios import SCENARIOS

from kamsim import jit
from kamsim.engine.complaints import SupportDesk
from kamsim.spec.models import SupportTeam

ROOT = Path(__file__).resolve().parents[1]

needs_numba = pytest.mark.skipif(not jit.available(), reason="numba is not installed")

#: signed zeros, NaN, infinities, overflow to inf, subnormals and plain values
_FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, -1.0, 5e-324, np.nan, np.inf, -np.inf,
                                     1e308, -1e308]),
                    st.floats(allow_nan=True, allow_infinity=True))


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit (a NaN's payload, the sign of a zero), in the same dtype and shape."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@needs_numba
@settings(max_examples=300, deadline=None)
@given(data=st.data(), dt=st.sampled_from([1.0, 12.0 / 52.0, 0.5]))
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_list_revenue_is_numpys(data: st.DataObject, dt: float) -> None:
    from kamsim.engine.allocation_kernel import list_revenue

    n = data.draw(st.integers(0, 30))
    act = data.draw(arrays(np.bool_, n))
    wallet = data.draw(arrays(np.float64, n, elements=_FLOATS))
    share = data.draw(arrays(np.float64, n, elements=_FLOATS))
    # period_step's numpy line
    expected = np.where(act, wallet / 12.0 * share * dt, 0.0)
    assert same(list_revenue(act, wallet, share, dt, np.empty(n)), expected)


@needs_numba
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_answered_counts_are_numpys(data: st.DataObject) -> None:
    from kamsim.engine.complaints_kernel import answered

    n = data.draw(st.integers(1, 12))
    m = data.draw(st.integers(0, 40))
    # repeated accounts (an account with several answers in a period), any order
    o_acc = data.draw(arrays(np.int64, m, elements=st.integers(0, n - 1)))
    o_ok = data.draw(arrays(np.bool_, m))
    o_hours = data.draw(arrays(np.float64, m, elements=_FLOATS))
    # period_step's numpy lines
    resolved = np.bincount(o_acc[o_ok], minlength=n).astype(np.float64)
    unresolved = np.bincount(o_acc[~o_ok], minlength=n).astype(np.float64)
    support_hours = np.bincount(o_acc, weights=o_hours, minlength=n)
    got = answered(o_acc, o_ok, o_hours, np.zeros(n), np.zeros(n), np.zeros(n))
    assert same(got[0], resolved) and same(got[1], unresolved)
    # (numpy's bincount of no answers is of integers: the money kernel takes them as floats)
    assert same(got[2], support_hours.astype(np.float64, copy=False))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each kernel ran (so that no test passes on two numpy runs)."""
    return count_calls(monkeypatch, (("allocation_kernel", "list_revenue"),
                                     ("complaints_kernel", "answered")))


@needs_numba
@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_scenario_runs_the_same(monkeypatch: pytest.MonkeyPatch, calls: dict[str, int],
                                      path: Path) -> None:
    out = off_and_on(monkeypatch, path, seed=11)
    assert calls["list_revenue"] > 0 and calls["answered"] > 0
    assert not differences(out["off"], out["on"], path.stem)


def _collected_at(starts: list[float]) -> list[tuple[float, list[int]]]:
    """One agent (an hour of work a month), complaint 0 arriving at 0 with 1 hour of work:
    its service ends at month 1 exactly. A calendar process submits it at 0, then waits to
    each of ``starts`` (a timeout made at the previous one) and collects there."""
    team = SupportTeam(agents=1, hours_per_month=1.0, service_time="fixed", mean_hours=1.0)
    env = simpy.Environment()
    desk = SupportDesk(env, team)
    seen: list[tuple[float, list[int]]] = []

    def calendar():  # type: ignore[no-untyped-def]
        desk.submit(np.array([0]), np.array([0.0]), np.ones(1), np.full(1, 100.0), np.ones(1))
        for s in starts:
            yield env.timeout(s - env.now)
            seen.append((env.now, desk.collect()[0].tolist()))

    env.process(calendar())
    env.run()
    return seen


def test_a_service_ends_at_a_timeout_in_simpys_order_of_one_time() -> None:
    """Events of one time run in the order they were made: the calendar's timeout to month 1
    made at 0, before the agent (woken by the submission) made its service's, comes first,
    and the answer is collected at the next start; one made at month 0.5, after it, comes
    second. A service's timeout put on SimPy's queue at another priority, or out of the
    order of the events' ids, would swap them."""
    assert _collected_at([1.0, 2.0]) == [(1.0, []), (2.0, [0])]
    assert _collected_at([0.5, 1.0]) == [(0.5, []), (1.0, [0])]


def test_a_service_is_a_timeout_that_ends_ok() -> None:
    team = SupportTeam(agents=1, hours_per_month=2.0, service_time="fixed", mean_hours=1.0)
    env = simpy.Environment()
    desk = SupportDesk(env, team)
    env.run(until=0.25)  # the agent is waiting for complaints
    desk.submit(np.array([3]), np.array([0.5]), np.ones(1), np.full(1, 100.0), np.ones(1))
    env.run(until=0.3)  # the submission woke the agent, which claimed the complaint
    (when, _, _, event), = [e for e in env._queue if isinstance(e[3], simpy.Timeout)]
    assert when == 1.0  # arrival 0.5 + half a month of work
    assert event.triggered and event.ok and event.value is None and not event.processed
    env.run()
    assert event.processed
    acc, days, hours, _ = desk.collect()
    assert acc.tolist() == [3] and hours.tolist() == [1.0]
