"""The compiled events of the period step (kamsim/engine/events_kernel.py) give the numpy
path's values to the bit: against the numpy lines they fuse (copied here from
``kamsim/engine/step.py``, section "events") on arrays with NaN, signed zeros, bounds out of
order, inactive accounts, accounts without people and empty sets of slots; and whole runs of
every shipped scenario (event log on) and of the variants that take other branches, with
``KAMSIM_KERNELS=on`` against ``off``, state by state after every period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _identical import differences
from _kernels import run_noting
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from test_scenarios import SCENARIOS

from kamsim import jit
from kamsim.engine.core import CAUSE, EngineOptions, _p
from kamsim.engine.step import _ratio

ek = pytest.importorskip("kamsim.engine.events_kernel", reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"

#: the numpy path meets NaN on purpose (its comparisons and exp warn of nothing else)
_NAN = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


def _same(a: Any, b: Any) -> bool:
    """Bit for bit: same dtype, shape and bytes (NaN payloads and signed zeros count)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


class _Stages:
    """What ``step._stage_frac`` reads of the stages."""

    def __init__(self, ladder: int, uncoupled: int) -> None:
        self.ladder, self.uncoupled = ladder, uncoupled


def _stage_frac(st_: _Stages, stage: np.ndarray) -> np.ndarray:
    # step._stage_frac
    return np.where(stage == st_.uncoupled, 0.0,
                    np.minimum(stage, st_.ladder - 1) / max(1, st_.ladder - 1))


def _events_numpy(a: dict[str, Any]) -> dict[str, Any]:
    """step.py, section "events", from ``uc = u[c]`` to the log (the people of the offered
    accounts as ``_people_of`` finds them); writes into ``a``'s wallet, share, churn, cause and
    bad_debt."""
    c, u, v, g_off, act = a["c"], a["u"], a["v"], a["g_off"], a["act"]
    wallet, share, churn, cause, bad_debt = (a["wallet"], a["share"], a["churn"], a["cause"],
                                             a["bad_debt"])
    trust, stage, dt, h_unc = a["trust"], a["stage"], a["dt"], a["h_unc"]
    st_ = _Stages(a["ladder"], a["uncoupled"])
    lgd = a["loss_given_default"]
    uc = u[c]
    bounds = [b[c] for b in a["event_bounds"]]
    bounds.append(bounds[-1] + a["p_offer"])
    bounds.append(bounds[-1] + a["p_default"][c])
    monthly_rev = wallet[c] / 12.0 * share[c]
    at = uc < bounds[0]
    fail = c[at]
    churn[fail] = True
    cause[fail] = CAUSE["financial_failure"]
    bad_debt[fail] += 2.0 * monthly_rev[at] * lgd
    strat = c[(uc >= bounds[0]) & (uc < bounds[1])]
    at = v[strat] < 0.5
    leave = strat[at]
    churn[leave] = True
    cause[leave] = CAUSE["strategy_change"]
    shrink = strat[~at]
    wallet[shrink[act[shrink]]] *= 0.6
    cons = c[(uc >= bounds[1]) & (uc < bounds[2])]
    keep_logit = (-1.0 + 4.0 * trust[cons] + 1.5 * _stage_frac(st_, stage[cons])
                  + 0.5 * a["dm_covered"][cons])
    at = v[cons] < 1.0 / (1.0 + np.exp(keep_logit))
    dropped = cons[at]
    churn[dropped] = True
    cause[dropped] = CAUSE["supplier_consolidation"]
    kept = cons[~at & act[cons]]
    share[kept] = np.minimum(1.0, share[kept] * 1.25)
    gap = a["price_gap"] * (0.5 + g_off)
    off = c[(uc >= bounds[2]) & (uc < bounds[3])]
    gap_eff = np.maximum(0.0, gap[off] - a["discount_rate"][off] * a["money_ratio"][off])
    offsets = a["offsets"]
    sizes = offsets[off + 1] - offsets[off]
    people = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in off]
                            + [np.zeros(0, dtype=np.int64)])
    owner = np.arange(off.size).repeat(sizes)
    focus = np.bincount(owner, weights=a["price_focus"][people] * a["influence"][people],
                        minlength=off.size)
    focus = focus.astype(np.float64, copy=False)
    price_focus = _ratio(focus, a["sum_influence"][off])
    ps = a["price_sensitivity"][off] * a["stage_ps"][stage[off]] * (0.5 + price_focus)
    mt_frac = np.minimum(a["multithreading"][off], 3.0) / 3.0
    u_defect = (1.0 + 12.0 * gap_eff * ps - 4.0 * trust[off]
                - 0.8 * _stage_frac(st_, stage[off]) - 0.6 * mt_frac
                - 0.4 * a["champion"][off])
    u_trim = u_defect + 1.0
    exp_defect, exp_trim = np.exp(u_defect), np.exp(u_trim)
    denom = 1.0 + exp_defect + exp_trim
    p_d = exp_defect / denom
    p_t = exp_trim / denom
    v_off = v[off]
    defect_off = (v_off < p_d) & ~churn[off]
    trim_off = (v_off >= p_d) & (v_off < p_d + p_t)
    churn[off[defect_off]] = True
    unfair = g_off[off[defect_off]] > 1.0 - a["unfair_share"]
    cause[off[defect_off]] = np.where(unfair, CAUSE["competitor_unfair"],
                                      CAUSE["stronger_competitor"])
    off_act = act[off]
    offered, defected, trimmed = off[off_act], off[defect_off & off_act], off[trim_off & off_act]
    share[trimmed] *= 0.7
    at = (uc >= bounds[3]) & (uc < bounds[4]) & act[c]
    dflt = c[at]
    bad_debt[dflt] += monthly_rev[at] * lgd * dt
    h = _p(a["base_churn_per_year"] * 4.0 * (1.0 - trust[c]) ** 2, dt)
    h = np.where(stage[c] == st_.uncoupled, h_unc, h)
    lost = c[(uc >= bounds[4]) & (uc < bounds[4] + h) & ~churn[c]]
    churn[lost] = True
    cause[lost] = np.where(a["since_unresolved"][lost] <= 6.0,
                           CAUSE["unresolved_complaints"], CAUSE["key_person_or_trust"])
    outcome = np.where(defect_off, 2, np.where(trim_off, 1, 0))[off_act]
    # and what the first compiled pass works out on the way
    kind = sum(np.where(mask, bit, 0) for mask, bit in (
        (uc < bounds[0], ek.FAIL), ((uc >= bounds[0]) & (uc < bounds[1]), ek.STRAT),
        ((uc >= bounds[1]) & (uc < bounds[2]), ek.CONS),
        ((uc >= bounds[2]) & (uc < bounds[3]), ek.OFFER),
        ((uc >= bounds[3]) & (uc < bounds[4]), ek.DEFAULT)))
    slots = {"kind": np.asarray(kind, dtype=np.uint8).reshape(c.shape), "b_top": bounds[4],
             "rate": a["base_churn_per_year"] * 4.0 * (1.0 - trust[c]) ** 2,
             "keep_logit": keep_logit, "u_defect": u_defect, "u_trim": u_trim}
    return {"offered": offered, "defected": defected, "trimmed": trimmed, "outcome": outcome,
            "dflt": dflt, "gap": gap[offered], "bad_debt_dflt": bad_debt[dflt], "slots": slots}


def _slots_kernel(a: dict[str, Any]) -> dict[str, np.ndarray]:
    """The first compiled pass alone, called as ``events`` calls it."""
    m = a["c"].shape[0]
    kind = np.empty(m, dtype=np.uint8)
    b_top, rate, keep_logit, u_defect, u_trim = (np.empty(m) for _ in range(5))
    b = a["event_bounds"]
    n_cons, n_off = ek._slots(
        a["c"], a["u"], b[0], b[1], b[2], a["p_offer"], a["p_default"], a["trust"],
        a["stage"], a["dm_covered"], a["uncoupled"], a["ladder"] - 1, max(1, a["ladder"] - 1),
        a["base_churn_per_year"] * 4.0, a["price_gap"], a["g_off"], a["discount_rate"],
        a["money_ratio"], a["offsets"], a["price_focus"], a["influence"], a["sum_influence"],
        a["price_sensitivity"], a["stage_ps"], a["multithreading"], a["champion"], kind, b_top,
        rate, keep_logit, u_defect, u_trim)
    return {"kind": kind, "b_top": b_top, "rate": rate, "keep_logit": keep_logit[:n_cons],
            "u_defect": u_defect[:n_off], "u_trim": u_trim[:n_off]}


def _events_kernel(a: dict[str, Any]) -> dict[str, Any]:
    slots = _slots_kernel(_copy(a))
    ev = ek.events(
        a["c"], a["u"], a["v"], a["g_off"], a["act"], a["event_bounds"], a["p_offer"],
        a["p_default"], a["trust"], a["stage"], a["dm_covered"], a["uncoupled"], a["ladder"],
        a["base_churn_per_year"], a["dt"], a["h_unc"], a["price_gap"], a["discount_rate"],
        a["money_ratio"], a["offsets"], a["price_focus"], a["influence"], a["sum_influence"],
        a["price_sensitivity"], a["stage_ps"], a["multithreading"], a["champion"],
        a["since_unresolved"], a["loss_given_default"], a["unfair_share"], a["wallet"],
        a["share"], a["churn"], a["cause"], a["bad_debt"])
    # what step.py logs of them
    gap = a["price_gap"] * (0.5 + a["g_off"])
    return {"offered": ev.offered, "defected": ev.defected, "trimmed": ev.trimmed,
            "outcome": ev.outcome, "dflt": ev.dflt, "gap": gap[ev.offered],
            "bad_debt_dflt": a["bad_debt"][ev.dflt], "slots": slots}


def _assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    for name, value in want.items():
        if isinstance(value, dict):
            _assert_same(got[name], value)
        else:
            assert _same(got[name], value), name


#: values where numpy's rules show: signed zeros, NaN, the 1e-12 of _ratio, a subnormal
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-12, 2e-12, 5e-324, np.nan, 3.0, 0.8]
FLOATS = st.one_of(st.sampled_from(SPECIAL), st.floats(-2.0, 2.0), st.floats(-50.0, 50.0))
UNIT = st.one_of(st.sampled_from([0.0, 0.5, 0.999, np.nan]), st.floats(0.0, 1.0))
#: a slot's uniform, spread over the events' intervals (hypothesis's floats keep to the ends)
UNIFORM = st.sampled_from([i / 40 for i in range(40)])
PROB = st.one_of(st.floats(0.0, 0.1), st.sampled_from([0.0, 0.01, 0.3, 1.0, -0.01, np.nan]))


def _floats(n: int, elements: st.SearchStrategy[float] = FLOATS) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, n, elements=elements)


@st.composite
def _inputs(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 30))
    ladder = draw(st.integers(1, 5))
    uncoupled = ladder  # the stage after the ladder, as Stages numbers it
    # the slots whose uniform lies below the reach: ascending, any of them (or none)
    c = np.flatnonzero(draw(arrays(np.bool_, n, elements=st.sampled_from([True, True, False]))))
    # bounds drawn one by one: mostly rising, but a negative or NaN probability puts them
    # out of order, where a slot may lie in two intervals
    b0 = draw(_floats(n, PROB))
    b1 = b0 + draw(_floats(n, PROB))
    b2 = b1 + draw(_floats(n, PROB))
    # people: 0 to 4 an account, with influence and price focus
    sizes = draw(arrays(np.int64, n, elements=st.integers(0, 4)))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    n_people = int(offsets[-1])
    influence = draw(_floats(n_people, st.one_of(UNIT, st.sampled_from([1e-13, -0.0]))))
    sum_influence = np.bincount(np.arange(n).repeat(sizes), weights=influence, minlength=n)
    if draw(st.booleans()):  # as the structure has it, or anything
        sum_influence = draw(_floats(n))
    return {
        "c": c, "u": draw(_floats(n, st.one_of(UNIFORM, UNIT))),
        "v": draw(_floats(n, UNIT)), "g_off": draw(_floats(n, UNIT)),
        "act": draw(arrays(np.bool_, n)), "event_bounds": (b0, b1, b2),
        "p_offer": float(draw(st.sampled_from([0.3, 0.6, 0.0, 0.05, np.nan]))),
        "p_default": draw(_floats(n, PROB)), "trust": draw(_floats(n, st.one_of(UNIT, FLOATS))),
        "stage": draw(arrays(np.int64, n, elements=st.integers(0, uncoupled))),
        "dm_covered": draw(arrays(np.bool_, n)), "uncoupled": uncoupled, "ladder": ladder,
        "base_churn_per_year": draw(st.sampled_from([0.0, 0.1, 0.5, 2.0])),
        "dt": draw(st.sampled_from([1.0, 12.0 / 52.0, 0.5])),
        "h_unc": draw(st.sampled_from([0.0, 0.02, 1.0, np.nan])),
        "price_gap": draw(st.sampled_from([0.0, -0.0, 0.05, 0.2, -0.1, np.nan])),
        "discount_rate": draw(_floats(n)), "money_ratio": draw(_floats(n)),
        "offsets": offsets, "price_focus": draw(_floats(n_people, UNIT)),
        "influence": influence, "sum_influence": sum_influence,
        "price_sensitivity": draw(_floats(n)), "stage_ps": draw(_floats(uncoupled + 1)),
        "multithreading": draw(_floats(n, st.one_of(FLOATS, st.sampled_from([4.0, 6.0])))),
        "champion": draw(arrays(np.bool_, n)),
        "since_unresolved": draw(_floats(n, st.sampled_from([0.0, 6.0, 7.0, 1e9, np.nan]))),
        "loss_given_default": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "unfair_share": draw(st.sampled_from([0.0, 0.2, 1.0])),
        "wallet": draw(_floats(n, st.one_of(FLOATS, st.floats(0.0, 1e7)))),
        "share": draw(_floats(n, st.one_of(UNIT, st.sampled_from([0.9, 0.85, -0.0])))),
        "churn": np.zeros(n, dtype=bool), "cause": np.full(n, -1, dtype=np.int8),
        "bad_debt": np.zeros(n),
    }


def _copy(a: dict[str, Any]) -> dict[str, Any]:
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in a.items()}


WRITTEN = ("wallet", "share", "churn", "cause", "bad_debt")


@_NAN
@settings(max_examples=400, deadline=None)
@given(_inputs())
def test_events_are_numpys(a: dict[str, Any]) -> None:
    want_a, got_a = _copy(a), _copy(a)
    want, got = _events_numpy(want_a), _events_kernel(got_a)
    for name in WRITTEN:
        assert _same(got_a[name], want_a[name]), name
    _assert_same(got, want)


def _realistic(seed: int, n: int = 3000) -> dict[str, Any]:
    """Many slots with values as a run has them (and some NaN): each event happens to many."""
    rng = np.random.default_rng(seed)
    ladder = 4
    sizes = rng.integers(0, 8, n)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    influence = rng.uniform(0.0, 1.0, offsets[-1])
    b0 = rng.uniform(0.0, 0.05, n)
    b1 = b0 + rng.uniform(0.0, 0.05, n)
    b2 = b1 + rng.uniform(0.0, 0.05, n)
    trust = rng.uniform(-0.2, 1.2, n)
    trust[rng.random(n) < 0.02] = np.nan
    share = rng.uniform(0.0, 1.0, n)
    share[rng.random(n) < 0.05] = np.nan
    u = rng.random(n)
    p_offer, p_default = 0.1, rng.uniform(0.0, 0.05, n)
    # some uniforms right on a bound (each interval holds its lower bound, not its upper)
    for j, bound in enumerate((b0, b1, b2, b2 + p_offer, b2 + p_offer + p_default)):
        u[j::25] = bound[j::25]
    return {
        "c": np.flatnonzero(u < 0.5), "u": u, "v": rng.random(n), "g_off": rng.random(n),
        "act": rng.random(n) < 0.9, "event_bounds": (b0, b1, b2), "p_offer": p_offer,
        "p_default": p_default, "trust": trust,
        "stage": rng.integers(0, ladder + 1, n), "dm_covered": rng.random(n) < 0.5,
        "uncoupled": ladder, "ladder": ladder, "base_churn_per_year": 2.0, "dt": 1.0,
        "h_unc": 0.05, "price_gap": 0.1, "discount_rate": rng.uniform(0.0, 0.2, n),
        "money_ratio": rng.uniform(0.0, 1.0, n), "offsets": offsets,
        "price_focus": rng.uniform(0.0, 1.0, offsets[-1]), "influence": influence,
        "sum_influence": np.bincount(np.arange(n).repeat(sizes), weights=influence,
                                     minlength=n),
        "price_sensitivity": rng.uniform(0.0, 2.0, n), "stage_ps": rng.uniform(0.5, 2.0, 5),
        "multithreading": np.where(rng.random(n) < 0.02, np.nan, rng.uniform(0.0, 6.0, n)),
        "champion": rng.random(n) < 0.5,
        "since_unresolved": rng.choice([0.0, 3.0, 6.0, 9.0, 1e9], n),
        "loss_given_default": 0.5, "unfair_share": 0.3, "wallet": rng.uniform(0.0, 1e6, n),
        "share": share, "churn": np.zeros(n, dtype=bool),
        "cause": np.full(n, -1, dtype=np.int8), "bad_debt": np.zeros(n)}


@_NAN
@pytest.mark.parametrize("seed", range(5))
def test_events_are_numpys_on_many_slots(seed: int) -> None:
    a = _realistic(seed)
    want_a, got_a = _copy(a), _copy(a)
    want, got = _events_numpy(want_a), _events_kernel(got_a)
    for name in WRITTEN:
        assert _same(got_a[name], want_a[name]), name
    _assert_same(got, want)
    # every event and outcome happened to some (the comparison above means something)
    for name in ("offered", "defected", "trimmed", "dflt"):
        assert got[name].size > 10, name
    assert set(np.unique(got_a["cause"])) == {-1, *CAUSE.values()}
    assert (got_a["wallet"] != a["wallet"]).sum() > 10
    assert (got_a["share"] != a["share"]).sum() > 10


def test_events_keep_numpys_order_where_a_slot_is_in_two_intervals() -> None:
    # bounds out of order (a consolidation bound below the strategy change's) put slot 0 in
    # the failure's and the offer's intervals: failed, it cannot defect however low its draw;
    # and slot 1 in the strategy change's and the default's: its wallet shrinks, and the
    # default's bad debt is of the revenue before that
    n = 2
    a = {
        "c": np.arange(n), "u": np.array([0.02, 0.15]), "v": np.array([0.0, 0.99]),
        "g_off": np.zeros(n), "act": np.ones(n, dtype=bool),
        "event_bounds": (np.array([0.1, 0.1]), np.array([0.2, 0.2]), np.array([0.0, 0.0])),
        "p_offer": 0.05, "p_default": np.array([0.5, 0.5]), "trust": np.array([0.5, 0.5]),
        "stage": np.zeros(n, dtype=np.int64), "dm_covered": np.ones(n, dtype=bool),
        "uncoupled": 4, "ladder": 4, "base_churn_per_year": 0.1, "dt": 1.0, "h_unc": 0.0,
        "price_gap": 5.0, "discount_rate": np.zeros(n), "money_ratio": np.zeros(n),
        "offsets": np.array([0, 1, 2]), "price_focus": np.ones(2), "influence": np.ones(2),
        "sum_influence": np.ones(n), "price_sensitivity": np.ones(n), "stage_ps": np.ones(5),
        "multithreading": np.zeros(n), "champion": np.zeros(n, dtype=bool),
        "since_unresolved": np.zeros(n), "loss_given_default": 0.5, "unfair_share": 0.2,
        "wallet": np.full(n, 120.0), "share": np.array([0.5, 0.9]),
        "churn": np.zeros(n, dtype=bool), "cause": np.full(n, -1, dtype=np.int8),
        "bad_debt": np.zeros(n)}
    want_a, got_a = _copy(a), _copy(a)
    want, got = _events_numpy(want_a), _events_kernel(got_a)
    for name in WRITTEN:
        assert _same(got_a[name], want_a[name]), name
    _assert_same(got, want)
    assert got_a["cause"][0] == CAUSE["financial_failure"]
    assert list(got["offered"]) == [0] and list(got["outcome"]) == [0]
    assert got_a["wallet"][1] == 120.0 * 0.6
    assert list(got["dflt"]) == [1] and got_a["bad_debt"][1] == 120.0 / 12.0 * 0.9 * 0.5


# -- whole runs, kernels on against off

#: the state the events write, compared after every period
STATE = ("trust", "share", "wallet", "stage", "active", "churn_period", "churn_cause")


def _run(path: Path, over: list[str], focus: int | None,
         record_events: bool) -> tuple[list[dict[str, Any]], Any]:
    return run_noting(path, over, EngineOptions(record_events=record_events, focus=focus),
                      STATE, "acc")


def _assert_kernels_change_nothing(monkeypatch: pytest.MonkeyPatch, path: Path,
                                   over: list[str], focus: int | None = None,
                                   record_events: bool = True) -> int:
    """Run ``path`` with ``over`` without the kernels and with them; how many periods the
    compiled events ran."""
    calls = [0]
    events = ek.events

    def noted(*args: Any) -> Any:
        calls[0] += 1
        return events(*args)

    monkeypatch.setattr(ek, "events", noted)
    monkeypatch.setenv(jit.ENV, "off")
    numpy_states, numpy_out = _run(path, over, focus, record_events)
    assert calls[0] == 0
    monkeypatch.setenv(jit.ENV, "on")
    kernel_states, kernel_out = _run(path, over, focus, record_events)
    diffs = differences(numpy_states, kernel_states, "states")
    diffs += differences(numpy_out, kernel_out, "output")
    assert not diffs, "kernels change the run:\n" + "\n".join(diffs[:20])
    return calls[0]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_scenario_runs_the_same_with_compiled_events(monkeypatch: pytest.MonkeyPatch,
                                                           path: Path) -> None:
    assert _assert_kernels_change_nothing(monkeypatch, path, []) > 0


@pytest.mark.parametrize("over, compiled", [
    (["period=week"], True),
    (["strategy.name=cultivate"], True),
    # no churn effects: a constant hazard, in numpy
    (["market.churn_effects=false"], False),
], ids=lambda o: " ".join(o) if isinstance(o, list) else "")
def test_baseline_variants_run_the_same_with_compiled_events(
        monkeypatch: pytest.MonkeyPatch, over: list[str], compiled: bool) -> None:
    assert (_assert_kernels_change_nothing(monkeypatch, BASELINE, over) > 0) == compiled


@pytest.mark.parametrize("record_events", [False, True])
def test_a_traced_run_is_the_same_with_compiled_events(monkeypatch: pytest.MonkeyPatch,
                                                       record_events: bool) -> None:
    # the trace reads the offers and every slot's gap from the step's locals (the gap is
    # worked out for the log too)
    assert _assert_kernels_change_nothing(monkeypatch, BASELINE, [], focus=3,
                                          record_events=record_events) > 0
