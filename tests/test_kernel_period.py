"""The compiled kernels of the period step (kamsim/engine/step_kernels.py) give the numpy
path's values to the bit: each kernel against the numpy lines it fuses (copied here from
``kamsim/engine/step.py``) on arrays with NaN, infinities, signed zeros and empty portfolios;
and whole runs of every shipped scenario, and of the variants that take other branches
(weekly periods, each strategy, no word of mouth, no churn effects, a trace), with
``KAMSIM_KERNELS=on`` against ``off``, state by state after every period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _identical import differences
from _kernels import run_noting, same_bits
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_scenarios import SCENARIOS

from kamsim import jit
from kamsim.engine.core import _ANGRY, EngineOptions
from kamsim.engine.prepare import wom_speakers
from kamsim.engine.step import _ratio
from kamsim.ufuncs import clip as _clip

#: the numpy references meet extreme values on purpose (overflow to inf, inf - inf): their
#: warnings say so, and the kernels, which warn of nothing, are compared bit for bit
_EXTREME = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")

sk = pytest.importorskip("kamsim.engine.step_kernels", reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"




# -- the kernels against the numpy lines, value by value

#: values where numpy's rules show: signed zeros, NaN, the 1e-12 of _ratio, a subnormal,
#: the clip bounds; compared bit for bit, NaN payloads included
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-12, 2e-12, -1e-12, 5e-324, -5e-324, np.nan]
FLOATS = st.one_of(st.sampled_from(SPECIAL), st.floats(-2.0, 2.0), st.floats(-1e9, 1e9))
#: and with infinities, overflows and NaNs of any sign and payload. An invalid operation
#: (inf - inf, 0 * inf) makes a NaN of the other sign than np.nan's, and when two NaNs meet in
#: an addition or a product, which one comes out is the compiler's choice of operand order
#: (LLVM's here, the C compiler's in numpy's loops: a numpy build on another CPU may differ
#: too): there a NaN has to come out where numpy's does, whichever
EXTREME = st.one_of(FLOATS, st.sampled_from([np.inf, -np.inf, 1e300, -1e300, -np.nan]),
                    st.floats(allow_nan=True, allow_infinity=True))
SCALARS = st.one_of(st.sampled_from([0.0, -0.0, 0.05, 0.15, 1.0, 2.0, -0.5, np.nan]),
                    st.floats(-3.0, 3.0))
DTS = st.sampled_from([1.0, 12.0 / 52.0, 0.5])


def _floats(n: int, extreme: bool = False) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, n, elements=EXTREME if extreme else FLOATS)


def _bools(n: int) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.bool_, n)


def test_clip_and_minimum_of_one_value_are_numpys() -> None:
    x = np.array(SPECIAL + [-5e-324, 1.0000000000000002, 0.9999999999999999, -np.nan])
    for lo, hi in ((0.0, 1.0), (-0.0, 1.0), (0.0, 0.0)):
        got = np.array([sk._clip(v, lo, hi) for v in x])
        assert same_bits(got, _clip(x, lo, hi)), (lo, hi)
    got = np.array([sk._minimum(v, 1.0) for v in x])
    assert same_bits(got, np.minimum(x, 1.0))


@_EXTREME
@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(0, 40), SCALARS, DTS, SCALARS, SCALARS, st.booleans())
def test_trust_toward_target(data: st.DataObject, n: int, trust_speed: float, dt: float,
                             penalty: float, recovery: float, extreme: bool) -> None:
    trust, service_ratio, sentiment, coverage, tenure = (data.draw(_floats(n, extreme))
                                                         for _ in range(5))
    unresolved = data.draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0, 2.0])))
    resolved = data.draw(arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0, 3.0])))
    # step.py, section "trust"
    target = (0.10 + 0.30 * service_ratio + 0.30 * (sentiment + 1.0) / 2.0
              + 0.20 * coverage + 0.10 * np.minimum(tenure / 60.0, 1.0))
    _clip(target, 0.0, 1.0, out=target)
    want = trust + trust_speed * dt * (target - trust)
    want = want - penalty * unresolved + recovery * resolved
    got = sk.trust_toward_target(trust, service_ratio, sentiment, coverage, tenure, unresolved,
                                 resolved, trust_speed * dt, penalty, recovery)
    assert same_bits(got, want, nan_bits=not extreme)


@_EXTREME
@settings(max_examples=100, deadline=None)
@given(st.data(), st.integers(0, 40), DTS, st.booleans())
def test_complaints_age(data: st.DataObject, n: int, dt: float, extreme: bool) -> None:
    since = data.draw(_floats(n, extreme))
    complaints_open = data.draw(_floats(n, extreme))
    unresolved = data.draw(arrays(np.float64, n, elements=st.sampled_from(
        [0.0, -0.0, 1.0, 2.0, np.nan])))
    # step.py, section "trust" (the complaints at its end)
    want_since = since.copy()
    want_since += dt
    want_since[unresolved > 0] = 0.0
    want_open = complaints_open * 0.5 ** (dt / 3.0) + unresolved
    got_open = sk.complaints_age(since, complaints_open, unresolved, dt, 0.5 ** (dt / 3.0))
    assert same_bits(since, want_since, nan_bits=not extreme)
    assert same_bits(got_open, want_open, nan_bits=not extreme)


@_EXTREME
@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(0, 40), DTS, st.sampled_from([1.0, 0.97, 0.5]),
       st.booleans(), st.booleans())
def test_money(data: st.DataObject, n: int, dt: float, factor: float, integer_hours: bool,
               extreme: bool) -> None:
    act = data.draw(_bools(n))
    (list_rev, discount_rate, money_ratio, cost_share, am, ex, sp, bad_debt) = (
        data.draw(_floats(n, extreme)) for _ in range(8))
    # support hours are integer zeros when no complaint was answered this period
    support_hours = (np.zeros(n, dtype=np.int64) if integer_hours
                     else data.draw(_floats(n, extreme)))
    level = data.draw(arrays(np.int64, n, elements=st.integers(0, 2)))
    fixed_cost, vip_cost, joint_dev = (data.draw(_floats(3, extreme)) for _ in range(3))
    rate_am, rate_exec, rate_specialist, rate_support = 60.0, 200.0, 80.0, 40.0
    acc = {k: data.draw(_floats(n, extreme)) for k in ("revenue", "discounts", "cogs", "cost_to_serve",
                                              "bad_debt", "profit", "clv")}
    want_acc = {k: v.copy() for k, v in acc.items()}
    # step.py, section "money of the period"
    disc = list_rev * discount_rate * money_ratio
    cogs = list_rev * cost_share
    cts = (am * rate_am + ex * rate_exec + sp * rate_specialist
           + support_hours * rate_support
           + np.where(act, fixed_cost[level] * dt, 0.0)
           + np.where(act, (vip_cost + joint_dev)[level] * dt * money_ratio, 0.0))
    want_bad = np.where(act, bad_debt, 0.0)
    profit = list_rev - disc - cogs - cts - want_bad
    for name, val in (("revenue", list_rev), ("discounts", disc), ("cogs", cogs),
                      ("cost_to_serve", cts), ("bad_debt", want_bad), ("profit", profit)):
        want_acc[name] += val
    want_acc["clv"] += profit * factor
    got = sk.money(act, list_rev, discount_rate, money_ratio, cost_share, am, ex, sp,
                   support_hours.astype(np.float64, copy=False), level, fixed_cost,
                   vip_cost + joint_dev, rate_am, rate_exec, rate_specialist, rate_support, dt,
                   bad_debt, factor, acc["revenue"], acc["discounts"], acc["cogs"],
                   acc["cost_to_serve"], acc["bad_debt"], acc["profit"], acc["clv"])
    for g, w in zip(got, (disc, cogs, cts, want_bad, profit), strict=True):
        assert same_bits(g, w, nan_bits=not extreme)
    for name in acc:
        assert same_bits(acc[name], want_acc[name], nan_bits=not extreme), name


@_EXTREME
@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(0, 40), SCALARS, DTS, st.booleans())
def test_share_toward_target(data: st.DataObject, n: int, share_speed: float, dt: float,
                             extreme: bool) -> None:
    act = data.draw(_bools(n))
    share, service_ratio = data.draw(_floats(n, extreme)), data.draw(_floats(n, extreme))
    target_share = data.draw(_floats(6, extreme))
    stage = data.draw(arrays(np.int64, n, elements=st.integers(0, 5)))
    # step.py, section "share of wallet"
    pull = target_share[stage] * (0.6 + 0.4 * service_ratio)
    moved = share + share_speed * dt * (pull - share)
    _clip(moved, 0.0, 1.0, out=moved)
    want = np.where(act, moved, share)
    got = sk.share_toward_target(act, share, stage, target_share, service_ratio,
                                 share_speed * dt)
    assert same_bits(got, want, nan_bits=not extreme)


@_EXTREME
@settings(max_examples=100, deadline=None)
@given(st.data(), st.integers(0, 40), st.booleans())
def test_wallet_grown(data: st.DataObject, n: int, extreme: bool) -> None:
    wallet, growth = data.draw(_floats(n, extreme)), data.draw(_floats(n, extreme))
    churn_period = data.draw(arrays(np.int32, n, elements=st.integers(-1, 2)))
    # step.py, section "share of wallet" (growth stands for numpy's exp)
    grown = wallet * growth
    want = np.where(churn_period < 0, grown, wallet)
    assert same_bits(sk.wallet_grown(wallet, growth, churn_period), want, nan_bits=not extreme)


def _wom_numpy(act: np.ndarray, trust: np.ndarray, trust_start: np.ndarray, churn: np.ndarray,
               cause: np.ndarray, negative_weight: float, src: np.ndarray, dst: np.ndarray,
               w: np.ndarray, word_of_mouth: float, dt: float) -> np.ndarray:
    """step.py, section "word of mouth", with the settling of trust after it."""
    n = act.shape[0]
    signal = np.where(act, trust - 0.5, 0.0)
    angry = np.zeros(n, dtype=bool)
    lost_now = churn.nonzero()[0]
    angry[lost_now] = _ANGRY[cause[lost_now]]
    signal = np.where(angry, -0.5, signal)
    signal = np.where(signal < 0, signal * negative_weight, signal)
    live_edge = (act | angry)[src]
    num = np.bincount(dst, weights=w * signal[src], minlength=n)
    den = np.bincount(dst, weights=w * live_edge, minlength=n)
    trust = trust + word_of_mouth * dt * _ratio(num, den) * (den > 0)
    return np.where(act, _clip(trust, 0.0, 1.0), trust_start)


@_EXTREME
@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(0, 30), st.integers(0, 90), SCALARS, SCALARS, DTS,
       st.booleans())
def test_word_of_mouth(data: st.DataObject, n: int, edges: int, negative_weight: float,
                       word_of_mouth: float, dt: float, extreme: bool) -> None:
    act = data.draw(_bools(n))
    # the lost this period are accounts of the portfolio (churn &= act), each with a cause
    churn = data.draw(_bools(n)) & act
    cause = np.where(churn, data.draw(arrays(np.int8, n, elements=st.integers(
        0, len(_ANGRY) - 1))), np.int8(-1))  # (a byte, as period_step's)
    trust, trust_start = data.draw(_floats(n, extreme)), data.draw(_floats(n, extreme))
    edges = edges if n else 0
    src = data.draw(arrays(np.int64, edges, elements=st.integers(0, max(n - 1, 0))))
    dst = data.draw(arrays(np.int64, edges, elements=st.integers(0, max(n - 1, 0))))
    w = data.draw(arrays(np.float64, edges, elements=st.one_of(
        st.sampled_from([0.0, 1.0, 1e-13, 1e16, -1e16]), st.floats(0.0, 3.0),
        EXTREME if extreme else FLOATS)))
    # the slots from ``top`` on never in the portfolio (nor lost): their edges passed over
    top = data.draw(st.integers(0, n))
    if data.draw(st.booleans()):
        act[top:] = churn[top:] = False
    else:
        top = None
    want = _wom_numpy(act, trust, trust_start, churn, cause, negative_weight, src, dst, w,
                      word_of_mouth, dt)
    # the speakers given (as Prepared.wom_speakers keeps them) or found by the kernel
    speakers = wom_speakers(src) if data.draw(st.booleans()) else None
    got = sk.word_of_mouth(act, trust, trust_start, churn, cause, _ANGRY, negative_weight, src,
                           dst, w, word_of_mouth * dt, None, top, speakers)
    assert same_bits(got, want, nan_bits=not extreme)


def test_word_of_mouth_adds_the_edges_in_their_order() -> None:
    # follower 3 hears signals 1e16, -1e16 and 1.0 (in edge order): added in that order,
    # as the bincount adds them, they make 1.0; the other way round 0.0
    act = np.ones(4, dtype=bool)
    trust = np.array([1e16 + 0.5, 0.5 - 0.5e16, 1.5, 0.5])
    src, dst, w = np.array([0, 1, 2]), np.array([3, 3, 3]), np.ones(3)
    churn, cause = np.zeros(4, dtype=bool), np.full(4, -1)
    want = _wom_numpy(act, trust, trust, churn, cause, 2.0, src, dst, w, 0.05, 1.0)
    got = sk.word_of_mouth(act, trust, trust, churn, cause, _ANGRY, 2.0, src, dst, w, 0.05)
    assert same_bits(got, want)
    assert got[3] > 0.5
    backwards = sk.word_of_mouth(act, trust, trust, churn, cause, _ANGRY, 2.0, src[::-1].copy(),
                                 dst, w, 0.05)
    assert backwards[3] == 0.5


def wom_inputs(data: st.DataObject, n: int, dst: np.ndarray) -> tuple[np.ndarray, ...]:
    """For the followers ``dst`` of ``n`` slots: the leaders, the weights (with values whose
    sums depend on their order), who is active, who was lost and why, and the trust."""
    src = data.draw(arrays(np.int64, dst.size, elements=st.integers(0, n - 1)))
    w = data.draw(arrays(np.float64, dst.size, elements=st.sampled_from(
        [0.0, 1.0, 0.25, 3.0, 1e16, -1e16])))
    act = data.draw(_bools(n))
    churn = data.draw(_bools(n)) & act
    cause = np.where(churn, data.draw(arrays(np.int8, n, elements=st.integers(
        0, len(_ANGRY) - 1))), np.int8(-1))  # (a byte, as period_step's)
    return src, w, act, churn, cause, data.draw(_floats(n))


@settings(max_examples=200, deadline=None)
@given(st.data(), st.integers(1, 12), st.lists(st.integers(1, 4), max_size=12))
def test_word_of_mouth_runs_of_a_follower(data: st.DataObject, n: int,
                                          runs: list[int]) -> None:
    # the edges in runs of one follower each, as prepare.industry_network writes them, and a
    # follower may come back after others (the kernel keeps a run's sums in registers: a
    # follower met again goes on from what its earlier runs added)
    dst = np.repeat(data.draw(arrays(np.int64, len(runs), elements=st.integers(0, n - 1))),
                    runs).astype(np.int64)
    src, w, act, churn, cause, trust = wom_inputs(data, n, dst)
    want = _wom_numpy(act, trust, trust, churn, cause, 2.0, src, dst, w, 0.05, 1.0)
    speakers = wom_speakers(src) if data.draw(st.booleans()) else None
    got = sk.word_of_mouth(act, trust, trust, churn, cause, _ANGRY, 2.0, src, dst, w, 0.05,
                           speakers=speakers)
    assert same_bits(got, want)


def test_word_of_mouth_follower_met_again() -> None:
    # follower 3's edges in two runs, follower 2's between them, and follower 1's last: what
    # each run adds stays (3 hears 0.5, then 0.25 twice; 2 hears -0.5; 1 hears 0.5)
    act = np.ones(4, dtype=bool)
    trust = np.array([1.0, 0.75, 0.25, 0.5])
    src, dst = np.array([0, 1, 2, 1, 0]), np.array([3, 3, 2, 3, 1])
    w = np.ones(5)
    churn, cause = np.zeros(4, dtype=bool), np.full(4, -1)
    want = _wom_numpy(act, trust, trust, churn, cause, 2.0, src, dst, w, 0.5, 1.0)
    got = sk.word_of_mouth(act, trust, trust, churn, cause, _ANGRY, 2.0, src, dst, w, 0.5)
    assert same_bits(got, want)
    assert got.tolist() == [1.0, 1.0, 0.0, 0.5 + 0.5 * (1.0 / 3.0)]


# -- whole runs, kernels on against off

#: the state the kernels write, compared after every period
STATE = ("trust", "share", "wallet", "since_unresolved", "complaints_open", "tenure",
         "service_ratio")


def _run(path: Path, over: list[str], focus: int | None) -> tuple[list[dict[str, Any]], Any]:
    return run_noting(path, over, EngineOptions(focus=focus), STATE, "acc")


def _assert_kernels_change_nothing(monkeypatch: pytest.MonkeyPatch, path: Path,
                                   over: list[str], focus: int | None = None) -> set[str]:
    """Run ``path`` with ``over`` without the kernels and with them; the kernels that ran."""
    ran: set[str] = set()

    def noting(name: str) -> Any:
        fn = getattr(sk, name)

        def noted(*args: Any) -> Any:
            ran.add(name)
            return fn(*args)
        return noted

    for name in sk.__all__:
        monkeypatch.setattr(sk, name, noting(name))
    monkeypatch.setenv(jit.ENV, "off")
    numpy_states, numpy_out = _run(path, over, focus)
    assert not ran
    monkeypatch.setenv(jit.ENV, "on")
    kernel_states, kernel_out = _run(path, over, focus)
    diffs = differences(numpy_states, kernel_states, "states")
    diffs += differences(numpy_out, kernel_out, "output")
    assert not diffs, "kernels change the run:\n" + "\n".join(diffs[:20])
    return ran


#: the kernels that run every period, whatever the settings
ALWAYS = {"complaints_age", "money", "wallet_grown"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_runs_the_same_with_kernels(monkeypatch: pytest.MonkeyPatch,
                                                   path: Path) -> None:
    ran = _assert_kernels_change_nothing(monkeypatch, path, [])
    assert ran == set(sk.__all__) or path.stem == "trainer_single_account", ran


@pytest.mark.parametrize("over, kernels", [
    (["period=week"], set(sk.__all__)),
    (["strategy.name=equal"], set(sk.__all__)),
    (["strategy.name=value_based", "strategy.by=clv"], set(sk.__all__)),
    (["strategy.name=cultivate"], set(sk.__all__)),
    (["strategy.name=custom", "strategy.priority=revenue * 2"], set(sk.__all__)),
    (["capacity.support.event_level_max=0"], set(sk.__all__)),  # the fluid complaint desk
    # no word of mouth: trust settles in numpy
    (["market.word_of_mouth=0"], set(sk.__all__) - {"word_of_mouth"}),
    # neither trust nor share move, nor is there word of mouth
    (["market.churn_effects=false"], ALWAYS),
], ids=lambda o: " ".join(o) if isinstance(o, list) else "")
def test_baseline_variants_run_the_same_with_kernels(monkeypatch: pytest.MonkeyPatch,
                                                     over: list[str], kernels: set[str]) -> None:
    assert _assert_kernels_change_nothing(monkeypatch, BASELINE, over) == kernels


def test_a_traced_run_is_the_same_with_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    # the trace reads the period's money and complaints from the step's locals
    ran = _assert_kernels_change_nothing(monkeypatch, BASELINE, [], focus=3)
    assert ran == set(sk.__all__)


@pytest.mark.parametrize("kernels", ["off", "on"])
@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_passes_stopped_at_the_slots_never_filled_change_nothing(
        monkeypatch: pytest.MonkeyPatch, path: Path, kernels: str) -> None:
    """The passes of a period that only act on accounts in the portfolio (the events, word
    of mouth's edges, the referrals, the tally) stop at the slots never filled
    (``step._filled``). Run to the last slot instead, every state after every period, the
    running sums, the series by tier and the output are the same, kernels on and off."""
    from kamsim.engine import step as step_module

    monkeypatch.setenv(jit.ENV, kernels)
    seen: list[tuple[int, int]] = []
    filled = step_module._filled

    def noting(sim: Any) -> int:
        seen.append((filled(sim), sim.n))
        return filled(sim)

    monkeypatch.setattr(step_module, "_filled", noting)
    stopped = run_noting(path, [], EngineOptions(record_events=True), STATE, "ts")
    assert any(top < n for top, n in seen)  # (some slots waited for an arrival)
    monkeypatch.setattr(step_module, "_filled", lambda sim: sim.n)
    everyone = run_noting(path, [], EngineOptions(record_events=True), STATE, "ts")
    diffs = differences(stopped[0], everyone[0], "states")
    diffs += differences(stopped[1], everyone[1], "output")
    assert not diffs, "stopping at the slots never filled changes the run:\n" + "\n".join(
        diffs[:20])


@pytest.mark.parametrize("kernels", ["off", "on"])
def test_referrals_stopped_at_the_slots_never_filled_count_the_same(
        monkeypatch: pytest.MonkeyPatch, kernels: str) -> None:
    """The same with referrals forty times as likely (many accounts refer, arrivals among
    them), over three years: the referrals' pass stopped at the slots never filled counts
    what the pass over every slot counts."""
    from kamsim.engine import core
    from kamsim.engine import step as step_module

    monkeypatch.setenv(jit.ENV, kernels)
    init = core.Simulation.__init__

    def eager(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.referral_rate = self.referral_rate * 40.0

    monkeypatch.setattr(core.Simulation, "__init__", eager)
    over = ["horizon_months=36"]
    stopped = run_noting(BASELINE, over, EngineOptions(record_events=True), STATE, "ts")
    monkeypatch.setattr(step_module, "_filled", lambda sim: sim.n)
    everyone = run_noting(BASELINE, over, EngineOptions(record_events=True), STATE, "ts")
    assert stopped[1].ts["new"].sum() > 3 * stopped[1].ts["new"][:1].sum()  # (many arrive)
    diffs = differences(stopped[0], everyone[0], "states")
    diffs += differences(stopped[1], everyone[1], "output")
    assert not diffs, "\n".join(diffs[:20])


@pytest.mark.parametrize("kernels", ["off", "on"])
def test_the_last_slot_filled_refers_too(monkeypatch: pytest.MonkeyPatch, kernels: str) -> None:
    """The referrals' pass reaches the last slot that has been in the portfolio: in one
    period only that account may refer (every other one has no influence), and it surely
    does (a referral rate no draw escapes, a full trust): one account arrives, no more, no
    less (no cold acquisition)."""
    from kamsim.engine.core import Simulation
    from kamsim.engine.rng import Streams, replication_seeds
    from kamsim.experiment import prepared
    from kamsim.spec.load import load_scenario

    monkeypatch.setenv(jit.ENV, kernels)
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=300", "horizon_months=6",
                                    "market.cold_acquisition_per_year=0"])
    sim = Simulation(prepared(spec), Streams(replication_seeds(5, 1)[0]), EngineOptions())
    step = sim.step
    seen: list[tuple[int, int, bool]] = []

    def arranged(k: int) -> None:
        if k != 3:
            step(k)
            return
        top = sim.next_free
        last = top - 1
        assert sim.active[last]
        influence = np.zeros_like(sim.influence)
        influence[last] = 1.0
        trust = sim.trust.copy()
        trust[last] = 1.0
        sim.influence, sim.trust = influence, trust
        sim.referral_rate = np.full_like(sim.referral_rate, 1e9)
        step(k)
        seen.append((top, sim.next_free, bool(sim.churn_period[last] == k)))

    sim.step = arranged  # type: ignore[method-assign]
    sim.run()
    ((top, after, lost),) = seen
    assert not lost
    assert after == top + 1


@pytest.mark.parametrize("rule", [None, "trust >= 0.45 and share >= 0.12",
                                  "trust >= 0.45 and revenue > 100000"])
def test_shares_move_beside_the_stages_only_if_no_rule_reads_them(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, rule: str | None) -> None:
    """With the kernels and two threads, a period's shares and wallets move on the other
    core after the money, beside the stages (``_money_and_moves``), only when no stage rule
    reads a share or a wallet; a rule that reads one (or the revenue, made of both) sees
    the period's moved shares, as without the kernels: the same run either way."""
    import shutil

    import yaml

    from kamsim import lanes
    from kamsim.engine import core
    from kamsim.engine import step as step_module

    monkeypatch.setattr(core, "ASIDE_MIN_SLOTS", 0)
    monkeypatch.setattr(lanes, "CORES", 2)
    path = BASELINE
    if rule is not None:  # (the shipped rules and scenario, the first stage's rule replaced)
        shutil.copytree(ROOT / "rules", tmp_path / "rules")
        (tmp_path / "scenarios").mkdir()
        path = tmp_path / "scenarios" / BASELINE.name
        shutil.copy(BASELINE, path)
        stages_file = tmp_path / "rules" / "stages.yaml"
        stages = yaml.safe_load(stages_file.read_text(encoding="utf-8"))
        stages["stages"][0]["up_when"] = rule
        stages_file.write_text(yaml.safe_dump(stages), encoding="utf-8")
    beside = []
    real = step_module._money_and_moves
    monkeypatch.setattr(step_module, "_money_and_moves",
                        lambda *a: beside.append(1) or real(*a))
    _assert_kernels_change_nothing(monkeypatch, path, [])
    assert bool(beside) == (rule is None)
