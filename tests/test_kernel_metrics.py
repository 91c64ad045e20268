"""The compiled decision-unit metrics (kamsim.dmu.metrics_kernel) give the numpy path's
figures to the bit: every result row, its dtype, on units from the project's builders and on
hand-made ones (empty accounts, no influence, negative and zero weights, signed zeros, NaN and
infinities), full and partial stretches, one and two threads, period after period."""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import fields as dataclass_fields
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from _kernels import same_bits
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dmu_metrics import ROLES, unit_a, unit_b
from test_dmu_span import make_units, period_input, portfolio_periods

from kamsim import jit
from kamsim.dmu import StepParams, from_graphs, metrics, step
from kamsim.dmu.arrays import EPS, PersonIds, Units, sort_edges
from kamsim.spec.models import StakeholderRules

pytestmark = [pytest.mark.skipif(not jit.available(), reason="numba is not installed"),
              # (the numpy path's warnings on the NaNs and infinities given on purpose)
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]

ROOT = Path(__file__).resolve().parents[1]
M = importlib.import_module("kamsim.dmu.metrics")


@pytest.fixture(scope="module")
def rules() -> StakeholderRules:
    from kamsim.spec.yamlpos import load_yaml

    return StakeholderRules.model_validate(load_yaml(ROOT / "rules/stakeholders.yaml").data)


@pytest.fixture
def calls(monkeypatch):
    """How many parts the kernel worked on (so that no test passes on two numpy runs)."""
    kernel = importlib.import_module("kamsim.dmu.metrics_kernel")
    count = {"parts": 0, "propagated": 0}
    part, prop = kernel.metrics_part, kernel.propagated

    def counted_part(*args, **kw):
        count["parts"] += 1
        return part(*args, **kw)

    def counted_prop(*args, **kw):
        count["propagated"] += 1
        return prop(*args, **kw)

    monkeypatch.setattr(kernel, "metrics_part", counted_part)
    monkeypatch.setattr(kernel, "propagated", counted_prop)
    return count


def mode(monkeypatch, value: str) -> None:
    monkeypatch.setenv(jit.ENV, value)


def rows(m) -> list[tuple[str, np.ndarray]]:
    return list(zip(M._ROWS, M._rows_of(m), strict=True))


def assert_same(kernel_m, numpy_m, nan_bits: bool = True) -> None:
    """Every result of the two, bit for bit (a NaN's payload, the sign of a zero), in the
    same dtypes, and the flags in the same order; with ``nan_bits`` false a NaN only has to
    meet a NaN (see test_nans_of_both_kinds)."""
    assert list(kernel_m.flags) == list(numpy_m.flags)
    for (name, a), (_, b) in zip(rows(kernel_m), rows(numpy_m), strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape, name
        if not nan_bits:
            assert same_bits(a, b, nan_bits=False), (name, a[:8], b[:8])
            continue
        assert a.tobytes() == b.tobytes(), (name, np.flatnonzero(
            a.view(np.uint8).reshape(a.size, -1).any(axis=1)
            != b.view(np.uint8).reshape(b.size, -1).any(axis=1))[:5], a[:8], b[:8])


def both(monkeypatch, units: Units, threshold: float = 0.3, **kw):
    """metrics() of ``units`` on the numpy path and in the kernel (each on its own copy)."""
    mode(monkeypatch, "off")
    numpy_m = metrics(units.copy(), threshold, **kw)
    mode(monkeypatch, "on")
    kernel_m = metrics(units.copy(), threshold, **kw)
    return kernel_m, numpy_m


def units_of(accounts: list[tuple[list[tuple[float, ...]], list[tuple[int, int, float, int]]]]
             ) -> Units:
    """Units straight from arrays: per account its people (role index, influence, attitude,
    coverage, months in post, held_by) and influence edges (source, target within the
    account, weight, sign). Values are taken as given: NaN, infinities, -0.0, negatives."""
    cols: list[list[float]] = [[] for _ in range(6)]
    src, dst, w, sign, offsets = [], [], [], [], [0]
    for people, edges in accounts:
        base = offsets[-1]
        for p in people:
            for c, v in zip(cols, p, strict=True):
                c.append(v)
        for s, d, weight, sg in edges:
            if s < len(people) and d < len(people) and s != d:
                src.append(base + s)
                dst.append(base + d)
                w.append(weight)
                sign.append(sg)
        offsets.append(base + len(people))
    n = offsets[-1]
    es, ed, ew, eg = sort_edges(np.array(src, np.int64), np.array(dst, np.int64),
                                np.array(w, np.float64), np.array(sign, np.int8))
    sizes = np.diff(offsets)
    z64 = np.zeros(0, np.int64)
    return Units(role_names=ROLES, offsets=np.array(offsets, np.int64),
                 account=np.repeat(np.arange(len(accounts)), sizes).astype(np.int64),
                 role=np.array(cols[0], np.int8).reshape(n), influence=np.array(cols[1]),
                 attitude=np.array(cols[2]), coverage=np.array(cols[3]),
                 held_by=np.array(cols[5], np.int8).reshape(n),
                 seniority=np.ones(n, np.int8), months_in_post=np.array(cols[4]),
                 price_focus=np.full(n, 0.3), person_id=PersonIds.of([f"p{i}" for i in range(n)]),
                 edge_src=es, edge_dst=ed, edge_weight=ew, edge_sign=eg,
                 reports_src=z64, reports_dst=z64.copy())


def test_the_kernel_runs_only_when_wanted(monkeypatch, rules, calls):
    units = make_units(rules, 50)
    mode(monkeypatch, "off")
    metrics(units, 0.3)
    M.propagated_attitude(units)
    assert calls == {"parts": 0, "propagated": 0}
    mode(monkeypatch, "auto")  # 50 accounts: far below jit.MIN_PEOPLE
    metrics(units, 0.3)
    assert calls["parts"] == 0
    mode(monkeypatch, "on")
    metrics(units, 0.3)
    M.propagated_attitude(units)
    assert calls == {"parts": 1, "propagated": 1}


def test_numba_is_not_imported_with_kamsim():
    code = ("import sys, kamsim, kamsim.dmu, kamsim.dmu.metrics; "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT), "KAMSIM_KERNELS": "on"})
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.0])
def test_built_units_period_after_period(monkeypatch, rules, calls, threshold):
    """Units from build_units, stepped through a run-like portfolio (lost accounts inside the
    stretch, new ones after it), measured on the stretch with the previous metrics kept
    outside it, period after period (each path carrying its own previous metrics)."""
    roles = list(rules.roles.values())
    units = make_units(rules, 300)
    kernel_m, numpy_m = both(monkeypatch, units, threshold)
    assert_same(kernel_m, numpy_m)
    rng = np.random.default_rng(31)
    for active in portfolio_periods(units.n_accounts, 10, rng):
        step(units, period_input(units.n_accounts, active, rng), StepParams(), roles,
             rng.random(units.n_people) * 0.5)
        mode(monkeypatch, "off")
        numpy_m = metrics(units, threshold, active=active, previous=numpy_m)
        mode(monkeypatch, "on")
        kernel_m = metrics(units, threshold, active=active, previous=kernel_m)
        assert_same(kernel_m, numpy_m)
        assert_same(kernel_m, metrics(units, threshold))  # and a full recomputation
    assert calls["parts"] >= 20


@pytest.fixture
def lanes_always(monkeypatch):
    """Split every stretch over two threads, however small."""
    from kamsim import lanes
    from kamsim.dmu import span as span_module

    monkeypatch.setattr(span_module, "LANE_MIN_PEOPLE", 0)
    monkeypatch.setattr(lanes, "CORES", 2)


def test_two_threads(monkeypatch, rules, calls, lanes_always):
    """Two lanes, each with its own scratch buffers, each writing its half of the stretch:
    the numpy path's figures on one thread, period after period."""
    roles = list(rules.roles.values())
    units = make_units(rules, 300)
    mode(monkeypatch, "off")
    numpy_m = metrics(units, 0.3)
    mode(monkeypatch, "on")
    kernel_m = metrics(units, 0.3, threads=2)
    assert_same(kernel_m, numpy_m)
    assert calls["parts"] == 2
    rng = np.random.default_rng(32)
    for active in portfolio_periods(units.n_accounts, 6, rng):
        step(units, period_input(units.n_accounts, active, rng), StepParams(), roles,
             rng.random(units.n_people) * 0.5)
        mode(monkeypatch, "off")
        numpy_m = metrics(units, 0.3, active=active, previous=numpy_m)
        mode(monkeypatch, "on")
        kernel_m = metrics(units, 0.3, active=active, previous=kernel_m, threads=2)
        assert_same(kernel_m, numpy_m)
    assert calls["parts"] == 2 + 2 * 6


def test_a_context_in_the_kernel(monkeypatch, rules, calls, lanes_always):
    """The engine's Context (its step's stretch reused by the metrics) on two threads."""
    from kamsim.dmu.context import Context

    units = make_units(rules, 200)
    ctx = {m: Context(units.copy(), StepParams(), {r: rules.roles[r] for r in units.role_names},
                      0.3, threads=2) for m in ("off", "on")}
    prev = {}
    for m in ("off", "on"):
        mode(monkeypatch, m)
        prev[m] = ctx[m].metrics()
    assert_same(prev["on"], prev["off"])
    rng = np.random.default_rng(33)
    for active in portfolio_periods(units.n_accounts, 6, rng):
        inp, u = period_input(units.n_accounts, active, rng), rng.random(units.n_people) * 0.5
        for m in ("off", "on"):
            mode(monkeypatch, m)
            ctx[m].step(inp, u)
            prev[m] = ctx[m].metrics(prev[m])
        assert_same(prev["on"], prev["off"])
    assert calls["parts"] >= 12


@pytest.mark.parametrize("threads", [1, 2])
def test_a_context_steps_and_measures_in_one_pass(monkeypatch, rules, lanes_always, threads):
    """``Context.step_metrics`` (the engine's call: each block's metrics right after its
    step, in the step kernel) gives the outcome, the people and the metrics of a step then
    a metrics pass, bit for bit: against the numpy path and the two kernels apart, period
    after period, the stretch moving at both ends, in one lane and two."""
    from kamsim.dmu import metrics_kernel
    from kamsim.dmu.context import Context
    from kamsim.dmu.dynamics import StepOutcome

    fused = []
    real = metrics_kernel.step_metrics_part
    monkeypatch.setattr(metrics_kernel, "step_metrics_part",
                        lambda *a: fused.append(a[7]) or real(*a))
    n = 1200  # (several blocks of people a lane)
    units = make_units(rules, n)
    roles = {r: rules.roles[r] for r in units.role_names}
    ways = ("off", "apart", "fused")
    ctx = {w: Context(units.copy(), StepParams(), roles, 0.3, threads=threads) for w in ways}
    prev = {}
    for w in ways:
        mode(monkeypatch, "off" if w == "off" else "on")
        prev[w] = ctx[w].metrics()
    rng = np.random.default_rng(34)
    for i, active in enumerate(portfolio_periods(n, 5, rng)):
        active[:40 * i] = False  # (the first accounts lost too: the stretch starts later)
        inp = period_input(n, active, rng)
        u = np.ones(units.n_people, np.float32)
        u[rng.choice(units.n_people, 300, replace=False)] = 0.0
        below = np.flatnonzero(u < 1.0)
        out = {}
        for w in ways:
            mode(monkeypatch, "off" if w == "off" else "on")
            if w == "fused":
                out[w], prev[w] = ctx[w].step_metrics(inp, u, prev[w], below)
            else:
                out[w] = ctx[w].step(inp, u)
                prev[w] = ctx[w].metrics(prev[w])
        for w in ("apart", "fused"):
            assert_same(prev[w], prev["off"])
            for f in dataclass_fields(StepOutcome):
                assert same_bits(getattr(out[w], f.name), getattr(out["off"], f.name)), f.name
            for f in ("attitude", "coverage", "months_in_post", "price_focus"):
                assert same_bits(getattr(ctx[w].units, f), getattr(ctx["off"].units, f)), f
        assert out["off"].departed.size > 100
    assert len(fused) >= 5 * threads and any(sp.a0 > 0 for sp in fused)


def test_hand_built_units_and_empty_accounts(monkeypatch, calls):
    """tests/test_dmu_metrics' units (worked out by hand there) with empty accounts first,
    between and last, and a portfolio of empty accounts only, and of none."""
    empty = nx.DiGraph()
    for graphs in ([unit_a(), empty, unit_b()], [empty, unit_a(), empty, empty, unit_b(), empty],
                   [empty, empty], [], [unit_b()]):
        units = from_graphs(graphs, ROLES)
        assert_same(*both(monkeypatch, units))
    assert calls["parts"] == 5


def test_accounts_without_influence(monkeypatch, calls):
    """Accounts whose influence sums to 0 or less (coverage and sentiment zeroed after the
    division), negative influence, zero and negative edge weights (no pull: has_in false),
    edges whose weights cancel out."""
    acc = [
        ([(0, 0.0, 0.5, 1.0, 24.0, 0), (5, 0.0, 1.0, 0.5, 3.0, 1)], [(0, 1, 0.5, 1)]),
        ([(0, -0.4, 0.5, 1.0, 24.0, 0), (4, 0.4, -1.0, 1 / 3, 2.0, 1), (2, 0.3, 0.2, 0.9, 9, 2)],
         [(0, 1, 0.0, 1), (1, 0, -0.3, -1), (2, 0, 0.3, 1), (2, 1, 0.3, -1), (0, 2, 0.7, 1)]),
        ([(1, -0.5, -0.5, 0.5, 1.0, 0), (3, -0.1, 0.5, 1.0, 8.0, 2)], [(1, 0, 0.4, -1)]),
        ([(0, 0.8, 0.5, 1 / 3, 24.0, 0)], []),
    ]
    units = units_of(acc)
    units.check()
    kernel_m, numpy_m = both(monkeypatch, units)
    assert_same(kernel_m, numpy_m)
    assert kernel_m.coverage[0] == 0.0 and kernel_m.coverage[2] == 0.0  # (zeroed)
    assert calls["parts"] == 1


#: the NaN x86 makes of an invalid operation (inf * 0, inf - inf): negative, unlike np.nan
HARDWARE_NAN = float(np.array([0xFFF8_0000_0000_0000], np.uint64).view(np.float64)[0])


def nan_cases(nan: float, infinities: bool) -> list:
    """Accounts with -0.0, ``nan`` and (if ``infinities``) infinite values in every field
    the metrics read, and levels exactly and just short (1/3, 0.5 - EPS, ...)."""
    inf = float("inf") if infinities else 7.0
    return [
        ([(0, 0.8, -0.0, -0.0, 24.0, 0), (5, 0.5, -0.0, 0.5, 3.0, 1)], [(0, 1, 0.6, -1)]),
        ([(0, 0.8, nan, 1 / 3, nan, 0), (5, 0.6, 0.5 - EPS, 2 / 3, 5.0, 1),
          (1, 0.5, -0.5 + EPS, nan, 6.0, 2)], [(0, 1, 0.5, 1), (2, 1, 0.5, -1)]),
        ([(0, inf, 1.0 - EPS, 1.0, 24.0, 0), (2, 0.3 - EPS, inf, 1 / 3 - EPS, 1.0, 0)],
         [(1, 0, 1.0, 1)]),
        ([(0, -0.0, -inf, 0.0, 24.0, 0), (4, nan, 0.0, 1.0, 0.0, 0)], [(0, 1, 0.2, 1)]),
        ([(0, 0.5, -0.0, -0.0, 7.0, 0)], []),  # all ic -0.0: spof 1
        ([(0, 0.5, 0.3, -0.25, 7.0, 0), (1, 0.5, 0.3, -0.5, 7.0, 0)], []),  # all ic < 0
        ([(0, 0.5, 0.3, 0.5, 7.0, 0), (1, 0.9, 0.3, nan, 7.0, 0)], []),  # NaN ic: spof 1
        ([(0, 0.5, nan, 0.5, 7.0, 0), (1, 0.9, 1.0, 1.0, 7.0, 0)], [(0, 1, 0.5, 1)]),
    ]


@pytest.mark.parametrize("nan, infinities", [(float("nan"), False), (HARDWARE_NAN, True)])
def test_signed_zeros_nan_and_infinities(monkeypatch, calls, nan, infinities):
    """Values the numpy path lets through: -0.0 attitudes (a person without in-edges gets
    +0.0), -0.0 and NaN coverage, NaN and infinite attitude and influence, NaN months.

    Which NaN comes out where two NaNs of different bits meet in an addition or a
    multiplication is not numpy's to the bit either (its loops give the first or the second
    operand's by the array's length and a value's place in it), so the NaNs here are all
    one: np.nan without infinities, else the NaN the processor makes of inf * 0."""
    units = units_of(nan_cases(nan, infinities))
    kernel_m, numpy_m = both(monkeypatch, units)
    assert_same(kernel_m, numpy_m)
    assert np.isnan(kernel_m.sentiment[1])  # (the NaNs do come through)
    assert kernel_m.sentiment[0] == 0.0 or infinities
    assert calls["parts"] == 1


def test_orphan_hours_and_lost_accounts(monkeypatch, rules, calls):
    """Accounts without anyone of a holder kind get that kind's hours (orphan hours) and
    accounts are lost inside the stretch: the metrics that follow match."""
    roles = list(rules.roles.values())
    units = make_units(rules, 120)
    units.held_by[units.offsets[3]:units.offsets[9]] = 0  # no executive, no specialist
    units.invalidate()
    rng = np.random.default_rng(34)
    mode(monkeypatch, "off")
    numpy_m = metrics(units, 0.3)
    kernel_m = numpy_m
    for period in range(6):
        active = np.ones(units.n_accounts, bool)
        active[[1, 5, 40 + period]] = False  # lost, inside the stretch
        active[-3:] = False
        inp = period_input(units.n_accounts, active, rng)
        inp.exec_hours[:] = 2.0
        inp.specialist_hours[:] = 1.5
        mode(monkeypatch, "off")
        step(units, inp, StepParams(), roles, rng.random(units.n_people) * 0.5)
        numpy_m = metrics(units, 0.3, active=active, previous=numpy_m)
        mode(monkeypatch, "on")
        kernel_m = metrics(units, 0.3, active=active, previous=kernel_m)
        assert_same(kernel_m, numpy_m)
    assert calls["parts"] == 6


def test_propagated_attitude(monkeypatch, rules, calls):
    """The public propagated_attitude, in the kernel and on the numpy path (and _propagated
    on a stretch, into the numpy path's buffers, against the kernel's)."""
    from kamsim.dmu.span import scratch, span
    from kamsim.dmu.structure import structure

    units = make_units(rules, 200)
    units.attitude[::7] = -0.0
    units.attitude[5] = np.nan
    for lam in (0.3, 0.0, 1.0, 0.45):
        mode(monkeypatch, "off")
        want = M.propagated_attitude(units, lam)
        mode(monkeypatch, "on")
        got = M.propagated_attitude(units, lam)
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), lam
    kernel = importlib.import_module("kamsim.dmu.metrics_kernel")
    st_ = structure(units)
    active = np.zeros(units.n_accounts, bool)
    active[20:150] = True
    sp = span(units, st_, active)
    want = M._propagated(units, st_, sp, 0.3, np.empty(sp.p1 - sp.p0), scratch(units))
    got = kernel.propagated(units, st_, sp, 0.3, np.empty(sp.p1 - sp.p0))
    assert got.tobytes() == want.tobytes()
    assert calls["propagated"] == 5


def test_unsorted_edges_and_float32_take_the_numpy_path(monkeypatch, calls):
    """Where the kernel would not give the numpy path's figures (edges not by target: the
    in-sums' order; float32 coverage: numpy compares it with the levels in float32), the
    numpy path runs."""
    units = units_of(nan_cases(float("nan"), False))
    mode(monkeypatch, "on")
    odd = units.copy()
    odd.edge_src, odd.edge_dst = odd.edge_src[::-1].copy(), odd.edge_dst[::-1].copy()
    odd.edge_weight, odd.edge_sign = odd.edge_weight[::-1].copy(), odd.edge_sign[::-1].copy()
    assert np.any(np.diff(odd.edge_dst) < 0)
    metrics(odd, 0.3)
    single = units.copy()
    single.coverage = single.coverage.astype(np.float32)
    metrics(single, 0.3)
    assert calls["parts"] == 0
    metrics(units, 0.3)
    assert calls["parts"] == 1


# ------------------------------------------------------------------ property

#: the levels exactly and just short of them, zeros of both signs
SPECIAL = (0.0, -0.0, 1 / 3, 1 / 3 - EPS, 2 / 3, 0.5, 0.5 - EPS, -0.5, -0.5 + EPS, 1.0,
           1.0 - EPS, -1.0, 0.3 - EPS, 6.0)


@st.composite
def portfolios(draw, mixed: bool = False):
    """Accounts of up to 8 people (any values, special ones often) and up to 12 influence
    edges of any weight and sign. NaNs are all one (see test_signed_zeros_nan_and_infinities):
    np.nan without infinities, or infinities with the processor's NaN; with ``mixed`` both
    NaNs and the infinities."""
    infinities = draw(st.booleans())
    extra = (HARDWARE_NAN, float("inf"), -float("inf")) if infinities else (float("nan"),)
    if mixed:
        extra = (float("nan"), HARDWARE_NAN, float("inf"), -float("inf"))
    values = st.one_of(st.sampled_from(SPECIAL + extra), st.floats(-1.5, 1.5),
                       st.floats(0.0, 1.0))
    person = st.tuples(st.integers(0, len(ROLES) - 1), values, values, values,
                       st.one_of(st.sampled_from((0.0, 6.0, 5.999, extra[0])),
                                 st.floats(0.0, 60.0)),
                       st.integers(0, 2))
    edge = st.tuples(st.integers(0, 7), st.integers(0, 7),
                     st.one_of(st.sampled_from((0.0, -0.0, 1.0, *extra)),
                               st.floats(-1.0, 1.0)),
                     st.sampled_from((1, -1)))
    account = st.tuples(st.lists(person, max_size=8), st.lists(edge, max_size=12))
    return draw(st.lists(account, max_size=12))


def _full_and_stretch(accounts, threshold, active, split, nan_bits=True):
    """The metrics of ``accounts`` in full, then on the stretch of the active ones with the
    full metrics kept outside, and the propagated attitudes, on one thread or two: the
    kernel's against the numpy path's (``nan_bits``: a NaN's bits too)."""
    from kamsim import lanes
    from kamsim.dmu import span as span_module

    with pytest.MonkeyPatch.context() as mp:
        if split:
            # (1, not 0: split() would cut a stretch of nobody into a part of slot -1)
            mp.setattr(span_module, "LANE_MIN_PEOPLE", 1)
            mp.setattr(lanes, "CORES", 2)
        threads = 2 if split else 1
        units = units_of(accounts)
        mask = np.array(active[:units.n_accounts], bool)
        kernel_m, numpy_m = both(mp, units, threshold, threads=threads)
        assert_same(kernel_m, numpy_m, nan_bits=nan_bits)
        mp.setenv(jit.ENV, "off")
        numpy_part = metrics(units, threshold, active=mask, previous=numpy_m, threads=threads)
        want = M.propagated_attitude(units)
        mp.setenv(jit.ENV, "on")
        kernel_part = metrics(units, threshold, active=mask, previous=kernel_m,
                              threads=threads)
        assert_same(kernel_part, numpy_part, nan_bits=nan_bits)
        assert same_bits(M.propagated_attitude(units), want, nan_bits=nan_bits)


@settings(max_examples=150, deadline=None)
@given(portfolios(), st.sampled_from((0.3, 0.0, 0.5 - EPS, 1.0)),
       st.lists(st.booleans(), min_size=12, max_size=12), st.booleans())
def test_any_units_any_stretch(accounts, threshold, active, split):
    """Random accounts (any size, special values, edges of any weight and sign), measured in
    full and then on the stretch of the active accounts with the full metrics kept outside,
    on one thread or two: the kernel gives the numpy path's bits."""
    _full_and_stretch(accounts, threshold, active, split)


@settings(max_examples=100, deadline=None)
@given(portfolios(mixed=True), st.sampled_from((0.3, 0.0, 0.5 - EPS, 1.0)),
       st.lists(st.booleans(), min_size=12, max_size=12), st.booleans())
def test_nans_of_both_kinds(accounts, threshold, active, split):
    """np.nan, the processor's NaN and infinities (which make more of it: inf * 0, inf - inf)
    in the same units: every figure the numpy path's, signed zeros included, and a NaN
    wherever numpy has one. Which NaN it is may differ where two NaNs of different bits meet
    in an addition or a multiplication: numpy's own loops give the first or the second
    operand's by the array's length, a value's place in it and the SIMD level numpy
    dispatches to (docs/dmu.md, "Compiled metrics"), so that is not part of the result."""
    _full_and_stretch(accounts, threshold, active, split, nan_bits=False)


@pytest.mark.parametrize("way", ["off", "on"])
def test_a_context_writes_over_only_the_blocks_nothing_holds(monkeypatch, rules, lanes_always,
                                                             way):
    """A Context makes each step's metrics in the memory of the blocks of two steps before
    when nothing holds them any more (no Metrics of theirs, no array or view of one): the
    same metrics, period after period, as a run that keeps every Metrics alive (where none
    is written over), and a Metrics, a row or a view held stays as it was."""
    from kamsim.dmu.context import Context
    from kamsim.dmu.metrics import _Blocks, _rows_of

    def snapshot(m):  # type: ignore[no-untyped-def]
        return [row.copy() for row in _rows_of(m)]

    n = 600
    units = make_units(rules, n)
    roles = {r: rules.roles[r] for r in units.role_names}
    mode(monkeypatch, way)
    unheld = []
    real = _Blocks.unheld
    monkeypatch.setattr(_Blocks, "unheld", lambda self: unheld.append(real(self)) or real(self))
    keep, drop = (Context(units.copy(), StepParams(), roles, 0.3, threads=2) for _ in "kd")
    kept = [keep.metrics()]
    shots = [snapshot(kept[0])]
    last = drop.metrics()
    held: list[tuple[np.ndarray, np.ndarray]] = []  # (an array held, a copy of it then)
    rng = np.random.default_rng(35)
    for i, active in enumerate(portfolio_periods(n, 8, rng)):
        inp = period_input(n, active, rng)
        u = np.ones(units.n_people, np.float32)
        u[rng.choice(units.n_people, 60, replace=False)] = 0.0
        below = np.flatnonzero(u < 1.0)
        _, m = keep.step_metrics(inp, u, kept[-1], below)
        kept.append(m)
        shots.append(snapshot(m))
        _, last = drop.step_metrics(inp, u, last, below)
        assert_same(last, m)
        if i == 2:  # a row of this period's metrics, and a view of another row, held
            held += [(last.coverage, last.coverage.copy()),
                     (last.sentiment[5:50], last.sentiment[5:50].copy())]
        if i == 4:  # a whole Metrics held
            held += list(zip(_rows_of(last), snapshot(last), strict=True))
    # the dropped run wrote over blocks nothing held, and held some back; the kept run
    # wrote over none, and every Metrics it kept is still its period's
    assert True in unheld and False in unheld
    assert unheld.count(True) < len(kept) - 3
    for now, then in held:
        assert same_bits(now, then)
    assert len({id(m._blocks) for m in kept[1:]}) == len(kept) - 1
    for m, shot in zip(kept, shots, strict=True):
        for now, then in zip(_rows_of(m), shot, strict=True):
            assert same_bits(now, then)
