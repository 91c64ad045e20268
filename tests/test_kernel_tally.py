"""The compiled tallies of the period step (kamsim/engine/tally_kernel.py) give the numpy
path's figures to the bit: the referral count and the aggregates by tier (with the leaving of
the lost) against the numpy lines they fuse (copied here from ``kamsim/engine/step.py``) on
arrays with NaN, infinities, signed zeros, empty portfolios and nothing to count; and whole
runs of every shipped scenario and of the variants that take other branches, with
``KAMSIM_KERNELS=on`` against ``off``, state by state after every period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from _identical import differences
from _kernels import run_noting, same_bits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_scenarios import SCENARIOS

from kamsim import jit, lanes
from kamsim.engine.core import EngineOptions
from kamsim.engine.record import TS_FIELDS
from kamsim.engine.step import tally_numpy
from kamsim.spec.models import CHURN_CAUSES

tk = pytest.importorskip("kamsim.engine.tally_kernel", reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"
NC = len(CHURN_CAUSES)


# -- the kernels against the numpy lines

#: signed zeros, NaN, a subnormal; and, with ``extreme``, infinities, overflows and NaNs of
#: either sign and any payload. When two NaNs meet in a sum, which one comes out is the
#: compiler's choice of operand order (LLVM's here, the C compiler's in numpy's bincount):
#: there a NaN has to come out where numpy's does, whichever
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-12, 5e-324, -5e-324, np.nan]
FLOATS = st.one_of(st.sampled_from(SPECIAL), st.floats(-2.0, 2.0), st.floats(-1e9, 1e9))
EXTREME = st.one_of(FLOATS, st.sampled_from([np.inf, -np.inf, 1e308, -1e308, -np.nan]),
                    st.floats(allow_nan=True, allow_infinity=True))




def _referrals_numpy(act: np.ndarray, churn: np.ndarray, u_ref: np.ndarray,
                     referral_rate: np.ndarray, stage: np.ndarray, influence: np.ndarray,
                     trust: np.ndarray) -> int:
    p_ref = referral_rate[stage] * influence * np.maximum(0.0, 2.0 * trust - 1.0)
    return int(np.count_nonzero(act & ~churn & (u_ref < p_ref)))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(0, 40), st.booleans())
def test_referrals(data: st.DataObject, n: int, extreme: bool) -> None:
    el = EXTREME if extreme else FLOATS
    ns = data.draw(st.integers(1, 5))
    args = (data.draw(arrays(np.bool_, n)), data.draw(arrays(np.bool_, n)),
            data.draw(arrays(np.float64, n, elements=st.floats(0.0, 1.0, exclude_max=True))),
            data.draw(arrays(np.float64, ns, elements=el)),
            data.draw(arrays(np.int64, n, elements=st.integers(0, ns - 1))),
            data.draw(arrays(np.float64, n, elements=el)),
            data.draw(arrays(np.float64, n, elements=el)))
    with np.errstate(all="ignore"):
        want = _referrals_numpy(*args)
    got = tk.referrals(*args)
    assert type(got) is int and got == want


def test_referrals_counts_a_trust_of_one_half_or_nan_as_no_pull() -> None:
    # np.maximum(0.0, x): 0 for x at or below 0 (a -0.0 too), NaN for NaN; neither refers
    trust = np.array([0.5, 0.25, np.nan, 0.75, 1.0])
    args = (np.ones(5, bool), np.zeros(5, bool), np.full(5, 0.1), np.array([1.0]),
            np.zeros(5, np.int64), np.ones(5), trust)
    assert tk.referrals(*args) == _referrals_numpy(*args) == 2


def _outputs(periods: int, nt: int, ns: int, n: int, active: np.ndarray) -> list[Any]:
    """Fresh aggregates and account state: ``ts``, stage counts, transitions, causes (some
    periods already written, to be kept), active, churn period and cause."""
    rng = np.random.default_rng(periods * 1000 + nt * 100 + ns * 10 + n)
    return [{f: rng.integers(0, 3, (periods, nt)).astype(np.float64) for f in TS_FIELDS},
            rng.integers(0, 3, (periods, nt, ns)).astype(np.float64),
            rng.integers(0, 3, (periods, nt, ns + 1, ns + 1)).astype(np.float64),
            rng.integers(0, 3, (periods, nt, NC)).astype(np.float64),
            active.copy(), np.full(n, -1, dtype=np.int32), np.full(n, -1, dtype=np.int8)]


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(0, 40), st.integers(1, 4), st.integers(1, 5), st.booleans())
def test_tally(data: st.DataObject, n: int, nt: int, ns: int, extreme: bool) -> None:
    periods = 3
    k = data.draw(st.integers(0, periods - 1))
    act = data.draw(arrays(np.bool_, n))
    # the lost are among the active (``churn &= act``) with a cause each; the others -1
    churn = data.draw(arrays(np.bool_, n)) & act
    cause = np.where(churn, data.draw(arrays(np.int64, n, elements=st.integers(0, NC - 1))), -1)
    tiers = arrays(np.int64, n, elements=st.integers(0, nt - 1))
    stages = arrays(np.int64, n, elements=st.integers(0, ns - 1))
    tier_start, stage_start, stage = data.draw(tiers), data.draw(stages), data.draw(stages)
    # re-tiered at the period's start (``tier_start`` is a copy of ``tier``), or not
    tier = tier_start.copy() if data.draw(st.booleans()) else data.draw(tiers)
    el = EXTREME if extreme else FLOATS
    values = [data.draw(arrays(np.float64, n, elements=el)) for _ in tk.SUMS]
    if data.draw(st.booleans()):
        # a quantity of another dtype goes in as a bincount's weights do: as float64
        values[13] = data.draw(arrays(np.float32, n, elements=st.floats(-2.0, 2.0, width=32)))
    slots = st.integers(0, max(n - 1, 0))

    def some(unique: bool = False) -> np.ndarray:
        idx = data.draw(st.lists(slots, max_size=n if n else 0, unique=unique))
        return np.array(idx, dtype=np.int64)

    o_acc = some()
    o_ok = data.draw(arrays(np.bool_, o_acc.size))
    # the arrivals: slots out of the portfolio at the start, in order; their acquisition
    # costs integers when the cost is one
    new_idx = np.flatnonzero(~act)[: data.draw(st.integers(0, n))]
    acq = data.draw(arrays(data.draw(st.sampled_from([np.float64, np.int64])), new_idx.size,
                           elements=st.integers(0, 10_000)))
    offered, defected, trimmed, kp_acc = some(True), some(True), some(True), some()
    active = act | data.draw(arrays(np.bool_, n))
    want, got = _outputs(periods, nt, ns, n, active), _outputs(periods, nt, ns, n, active)
    args = (act, churn, cause, tier_start, tier, stage_start, stage, tuple(values), o_acc,
            o_ok, new_idx, acq, offered, defected, trimmed, kp_acc)
    with np.errstate(all="ignore"):
        tally_numpy(k, *want[:4], *args, *want[4:])
    # with two threads, the counts on the other core (two cores even on one); and
    # the passes stopped at a ``top`` past every slot in the portfolio, lost, new or named
    threads = data.draw(st.sampled_from([1, 2]))
    named = [np.flatnonzero(act | churn), new_idx, o_acc, offered, defected, trimmed, kp_acc]
    low = max((int(x.max()) + 1 for x in named if x.size), default=0)
    top = data.draw(st.sampled_from([None, low, n, data.draw(st.integers(low, n))]))
    with mock.patch.object(lanes, "CORES", 2):
        tk.tally(k, *got[:4], *args, *got[4:], threads, top)
    diffs = [name for name in TS_FIELDS
             if not same_bits(want[0][name], got[0][name], nan_bits=not extreme)]
    diffs += [name for name, a, b in zip(("stage_counts", "transitions", "causes", "active",
                                           "churn_period", "churn_cause"), want[1:], got[1:],
                                          strict=True) if not same_bits(a, b)]
    assert not diffs


@pytest.mark.parametrize("threads", [1, 2])
def test_tally_adds_each_tiers_values_in_slot_order_from_plus_zero(threads: int) -> None:
    # 1e16 + 1 + 1 is 1e16 in slot order, 1e16 + 2 the other way round; -0.0 alone sums to
    # +0.0 (a bincount starts from +0.0); a NaN stays in its tier
    n = 5
    act = np.array([True, True, True, True, False])
    tier = np.array([0, 0, 0, 1, 1])
    values = [np.array([1e16, 1.0, 1.0, -0.0, 7.0])] * len(tk.SUMS)
    values[14] = np.array([np.nan, 1.0, 1.0, 2.0, np.nan])
    none = np.zeros(0, dtype=np.int64)
    args = (np.zeros(n, bool), np.full(n, -1), tier, tier, np.zeros(n, np.int64),
            np.zeros(n, np.int64), tuple(values), none, np.zeros(0, bool), none, np.zeros(0),
            none, none, none, none)
    want, got = _outputs(2, 2, 1, n, act), _outputs(2, 2, 1, n, act)
    tally_numpy(1, *want[:4], act, *args, *want[4:])
    with mock.patch.object(lanes, "CORES", 2):
        tk.tally(1, *got[:4], act, *args, *got[4:], threads)
    assert got[0]["revenue"][1].tolist() == [1e16, 0.0]
    assert np.signbit(got[0]["revenue"][1]).tolist() == [False, False]
    assert np.isnan(got[0]["service_ratio_sum"][1][0])
    assert got[0]["service_ratio_sum"][1][1] == 2.0
    assert got[0]["trust_sum"][1].tolist() == [1e16, 0.0]  # (a late sum: the other core's)
    assert not differences(want, got)


# -- whole runs, kernels on against off

#: the state the tallies write or count from, compared after every period
STATE = ("active", "churn_period", "churn_cause", "next_free", "stage_counts", "transitions",
         "causes")


def _run(path: Path, over: list[str], options: EngineOptions) -> tuple[list[Any], Any]:
    return run_noting(path, over, options, STATE, "ts")


def _assert_kernels_change_nothing(monkeypatch: pytest.MonkeyPatch, path: Path,
                                   over: list[str], options: EngineOptions | None = None,
                                   ) -> set[str]:
    """Run ``path`` with ``over`` without the kernels and with them; the tallies that ran."""
    ran: set[str] = set()

    def noting(name: str) -> Any:
        fn = getattr(tk, name)

        def noted(*args: Any, **kwargs: Any) -> Any:
            ran.add(name)
            return fn(*args, **kwargs)
        return noted

    for name in ("referrals", "tally"):
        monkeypatch.setattr(tk, name, noting(name))
    options = options or EngineOptions()
    monkeypatch.setenv(jit.ENV, "off")
    numpy_states, numpy_out = _run(path, over, options)
    assert not ran
    monkeypatch.setenv(jit.ENV, "on")
    kernel_states, kernel_out = _run(path, over, options)
    diffs = differences(numpy_states, kernel_states, "states")
    diffs += differences(numpy_out, kernel_out, "output")
    assert not diffs, "kernels change the run:\n" + "\n".join(diffs[:20])
    return ran


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_tallies_the_same_with_kernels(monkeypatch: pytest.MonkeyPatch,
                                                      path: Path) -> None:
    assert _assert_kernels_change_nothing(monkeypatch, path, []) == {"referrals", "tally"}


@pytest.mark.parametrize("over, options, ran", [
    (["period=week"], None, {"referrals", "tally"}),
    (["capacity.support.event_level_max=0"], None, {"referrals", "tally"}),
    # no event log: the lost leave without their churn events
    ([], EngineOptions(record_events=False), {"referrals", "tally"}),
    # a trace reads the period's figures from the step's locals
    ([], EngineOptions(focus=3), {"referrals", "tally"}),
    # no churn effects: a constant hazard, no offers, no referrals
    (["market.churn_effects=false"], None, {"tally"}),
], ids=["week", "fluid desk", "no event log", "trace", "no churn effects"])
def test_baseline_variants_tally_the_same_with_kernels(
        monkeypatch: pytest.MonkeyPatch, over: list[str], options: EngineOptions | None,
        ran: set[str]) -> None:
    assert _assert_kernels_change_nothing(monkeypatch, BASELINE, over, options) == ran
