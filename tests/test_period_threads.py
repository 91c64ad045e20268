"""A replication with two threads gives exactly what it gives with one.

With two threads (a large portfolio in a process of its own), a replication does the work
that does not wait for the rest on the other core (:func:`kamsim.lanes.aside`): the people's
first clocks while it is set up, and in each period the departures due and the period's
draws, then the money; and, with the kernels, word of mouth in two lanes
(:func:`kamsim.engine.prepare.wom_split`). Here they run on every portfolio
(``ASIDE_MIN_SLOTS`` 0, two cores even on a one-core machine) and every shipped scenario is
compared state by state, after every period, with the one-thread run, kernels on and off.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from _identical import differences
from _kernels import run_noting, same_bits
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernel_period import STATE, _floats, _wom_numpy, wom_inputs
from test_scenarios import SCENARIOS

from kamsim import jit, lanes
from kamsim.engine import core
from kamsim.engine import step as step_module
from kamsim.engine.core import _ANGRY, EngineOptions
from kamsim.engine.prepare import wom_speakers, wom_split

# -- lanes.aside


def test_aside_runs_on_another_thread_and_gives_its_result() -> None:
    started, release = threading.Event(), threading.Event()

    def work(a: int, b: int) -> tuple[int, str]:
        started.set()
        release.wait(10)
        return a + b, threading.current_thread().name

    if lanes.CORES < 2:
        pytest.skip("one core: aside runs the work in the caller")  # (CI has two)
    result = lanes.aside(2, work, 2, 3)
    assert started.wait(10)  # running while the caller goes on
    release.set()
    assert result() == (5, "kamsim-aside")
    assert result() == (5, "kamsim-aside")  # (asked again: the same result)


def test_aside_with_one_thread_runs_now_in_the_caller() -> None:
    ran: list[str] = []
    result = lanes.aside(1, lambda: ran.append(threading.current_thread().name) or 7)
    assert ran == [threading.current_thread().name]  # before the result is asked for
    assert result() == 7


@pytest.mark.parametrize("threads", [1, 2])
def test_aside_raises_the_error_in_the_caller(threads: int) -> None:
    def fail() -> None:
        raise ValueError("in the helper")

    result = lanes.aside(threads, fail) if threads == 2 else None
    if threads == 1:
        with pytest.raises(ValueError, match="in the helper"):
            lanes.aside(threads, fail)
        return
    assert result is not None
    with pytest.raises(ValueError, match="in the helper"):
        result()


def test_aside_takes_its_arguments_when_called() -> None:
    # the values given, not names bound again by the caller meanwhile
    release = threading.Event()
    x = np.arange(3)

    def work(a: np.ndarray) -> int:
        release.wait(10)
        return int(a.sum())

    result = lanes.aside(2, work, x)
    x = np.arange(100)  # noqa: F841 - rebound while the helper waits
    release.set()
    assert result() == 3


def test_aside_each_gives_each_result_as_its_call_ends() -> None:
    """Calls one after the other on one helper thread: the first result is there while the
    helper still works on the second; an error is raised by its own call's function."""
    if lanes.CORES < 2:
        pytest.skip("one core: aside runs the work in the caller")  # (CI has two)
    release = threading.Event()
    order: list[str] = []

    def first(a: int) -> str:
        order.append("first")
        return threading.current_thread().name + str(a)

    def second() -> int:
        release.wait(10)
        order.append("second")
        raise ValueError("the second's")

    got_first, got_second = lanes.aside_each(2, (first, 1), (second,))
    assert got_first() == "kamsim-aside1"  # (the second still waits)
    assert order == ["first"]
    release.set()
    with pytest.raises(ValueError, match="the second's"):
        got_second()
    assert order == ["first", "second"]


def test_aside_each_with_one_thread_runs_the_calls_now_in_order() -> None:
    ran: list[int] = []
    results = lanes.aside_each(1, (lambda: ran.append(1) or "a",), (lambda x: ran.append(x) or x, 2))
    assert ran == [1, 2]  # before any result is asked for
    assert [r() for r in results] == ["a", 2]


# -- where word of mouth's edges are cut


def test_wom_split_cuts_between_followers_near_the_middle() -> None:
    dst = np.array([4, 4, 4, 1, 1, 1, 7, 7, 7, 0, 0, 0])
    assert wom_split(dst) == 6
    dst = np.array([4, 4, 4, 1, 1, 7, 7, 7, 7, 7, 0, 0])  # the nearest boundary to 6 is 5
    assert wom_split(dst) == 5


def test_wom_split_none_when_a_follower_cannot_be_kept_whole() -> None:
    assert wom_split(np.array([3, 3, 3, 3])) is None  # one follower
    assert wom_split(np.array([2])) is None
    assert wom_split(np.zeros(0, dtype=np.int64)) is None
    # follower 3 in two runs: no cut keeps each follower on one side
    assert wom_split(np.array([3, 3, 1, 1, 3, 3])) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=2, max_size=40), st.randoms())
def test_wom_split_leaves_no_follower_on_both_sides(runs: list[int], rnd: Any) -> None:
    followers = list(range(len(runs)))
    rnd.shuffle(followers)
    dst = np.repeat(np.array(followers), runs)
    cut = wom_split(dst)
    assert cut is not None and 0 < cut < dst.size
    assert not set(dst[:cut].tolist()) & set(dst[cut:].tolist())
    # and no other run boundary is nearer the middle
    bounds = np.cumsum(runs)[:-1]
    assert abs(cut - dst.size // 2) == np.abs(bounds - dst.size // 2).min()


@given(st.lists(st.integers(0, 60), max_size=80))
def test_wom_speakers_are_the_unique_sources_and_each_edges_place(src: list[int]) -> None:
    slots, place = wom_speakers(np.array(src, dtype=np.int64))
    assert slots.tolist() == sorted(set(src))
    assert place.dtype == np.int32 and place.tolist() == [slots.tolist().index(s) for s in src]


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(2, 40), st.lists(st.integers(1, 4), min_size=2, max_size=30))
def test_word_of_mouth_in_two_lanes_is_numpys(data: st.DataObject, n: int,
                                              runs: list[int]) -> None:
    sk = pytest.importorskip("kamsim.engine.step_kernels", reason="numba is not installed")
    # each follower's edges in one run, in any order of followers, as industry_network
    # writes them; the two lanes split the slots at n // 2 and the edges at the cut
    followers = data.draw(st.permutations(range(n)))[:len(runs)]
    dst = np.repeat(np.array(followers, dtype=np.int64), runs[:len(followers)])
    src, w, act, churn, cause, trust = wom_inputs(data, n, dst)
    trust_start = data.draw(_floats(n))
    cut = wom_split(dst)
    # the slots from ``top`` on never in the portfolio: each lane passes their edges over
    top = data.draw(st.integers(0, n))
    act[top:] = churn[top:] = False
    want = _wom_numpy(act, trust, trust_start, churn, cause, 2.0, src, dst, w, 0.05, 1.0)
    # the speakers given (as Prepared.wom_speakers keeps them) or found by the kernel
    speakers = wom_speakers(src) if data.draw(st.booleans()) else None
    with mock.patch.object(lanes, "CORES", 2):
        got = sk.word_of_mouth(act, trust, trust_start, churn, cause, _ANGRY, 2.0, src, dst, w,
                               0.05, cut, top, speakers)
    assert same_bits(got, want)


# -- whole runs, one thread against two


@pytest.fixture
def two_threads_always(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """The period's two-thread work on every portfolio, on two cores; notes what ran where."""
    monkeypatch.setattr(core, "ASIDE_MIN_SLOTS", 0)
    monkeypatch.setattr(lanes, "CORES", 2)
    seen: dict[str, list[Any]] = {"draws": [], "money": [], "split": [], "clocks": []}
    event_draws, later_draws = step_module._event_draws, step_module._later_draws
    money, clocks = step_module._money, core.Simulation._clocks

    def noting(draws: Any) -> Any:
        def noted(*args: Any) -> Any:
            seen["draws"].append(threading.current_thread().name)
            return draws(*args)
        return noted

    def noting_money(*args: Any) -> Any:
        seen["money"].append(threading.current_thread().name)
        return money(*args)

    def noting_clocks(*args: Any) -> Any:
        seen["clocks"].append(threading.current_thread().name)
        return clocks(*args)

    monkeypatch.setattr(step_module, "_event_draws", noting(event_draws))
    monkeypatch.setattr(step_module, "_later_draws", noting(later_draws))
    monkeypatch.setattr(core.Simulation, "_clocks", noting_clocks)
    monkeypatch.setattr(step_module, "_money", noting_money)
    if jit.available():
        from kamsim.engine import step_kernels as sk

        wom = sk.word_of_mouth

        def noting_wom(*args: Any) -> Any:
            seen["split"].append(args[11] if len(args) > 11 else None)
            return wom(*args)

        monkeypatch.setattr(sk, "word_of_mouth", noting_wom)
    return seen


@pytest.mark.parametrize("kernels", ["off", "on"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_two_threads_run_every_scenario_as_one(monkeypatch: pytest.MonkeyPatch,
                                              two_threads_always: dict[str, list[Any]],
                                              path: Path, kernels: str) -> None:
    if kernels == "on" and not jit.available():
        pytest.skip("numba is not installed")
    monkeypatch.setenv(jit.ENV, kernels)
    seen = two_threads_always
    one_states, one_out = run_noting(path, [], EngineOptions(threads=1), STATE, "acc")
    assert set(seen["draws"]) == set(seen["money"]) == set(seen["clocks"]) \
        == {threading.current_thread().name}
    assert not any(seen["split"])
    for notes in seen.values():
        notes.clear()
    two_states, two_out = run_noting(path, [], EngineOptions(threads=2), STATE, "acc")
    # (the work was done on the other thread, and word of mouth in two lanes)
    assert set(seen["draws"]) == set(seen["money"]) == set(seen["clocks"]) == {"kamsim-aside"}
    if kernels == "on" and path.stem != "trainer_single_account":
        assert seen["split"] and all(isinstance(s, int) for s in seen["split"])
    diffs = differences(one_states, two_states, "states")
    diffs += differences(one_out, two_out, "output")
    assert not diffs, "two threads change the run:\n" + "\n".join(diffs[:20])
