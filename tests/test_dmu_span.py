"""step and metrics work only on the stretch of active accounts (kamsim.dmu.span), with reused
buffers: the results are exactly those of working on every account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_dmu_cache import make_units as _make_units
from test_dmu_cache import period_input as _busy_input

from kamsim.dmu import StepInput, StepParams, metrics, select_accounts, step
from kamsim.spec.models import StakeholderRules

ROOT = Path(__file__).resolve().parents[1]
PERSON = ("attitude", "coverage", "months_in_post", "price_focus")
METRICS = ("coverage", "sentiment", "multithreading", "dm_covered", "champion", "spof_share",
           "red_flags", "strength")


@pytest.fixture(scope="module")
def rules() -> StakeholderRules:
    from kamsim.spec.yamlpos import load_yaml

    return StakeholderRules.model_validate(load_yaml(ROOT / "rules/stakeholders.yaml").data)


def make_units(rules: StakeholderRules, n: int, seed: int = 5):
    return _make_units(rules, n, seed)


def period_input(n: int, active: np.ndarray, rng: np.random.Generator) -> StepInput:
    """A busy month's input (test_dmu_cache's), for the given active accounts."""
    inp = _busy_input(n, rng)
    inp.active = active.copy()
    return inp


def portfolio_periods(n: int, periods: int, rng: np.random.Generator):
    """Active masks as in a run: slots fill in order, lost accounts never come back."""
    active = np.zeros(n, bool)
    active[: n // 2] = True
    for _ in range(periods):
        active &= rng.random(n) > 0.05
        last = int(np.flatnonzero(active).max()) if active.any() else -1
        active[last + 1: last + 1 + n // 20] = True
        yield active.copy()


def stepped_periods(rules, units, periods: int, seed: int):
    """Step ``units`` through ``periods`` periods of a run-like portfolio; yields each
    period's active mask once the step is done."""
    roles = list(rules.roles.values())
    rng = np.random.default_rng(seed)
    for active in portfolio_periods(units.n_accounts, periods, rng):
        step(units, period_input(units.n_accounts, active, rng), StepParams(), roles,
             rng.random(units.n_people) * 0.5)
        yield active


def test_metrics_from_previous_equal_a_full_recomputation(rules):
    units = make_units(rules, 300)
    prev = metrics(units, 0.3)
    for active in stepped_periods(rules, units, 12, seed=7):
        got = metrics(units, 0.3, active=active, previous=prev)
        full = metrics(units, 0.3)
        for k in METRICS:
            a, b = getattr(got, k), getattr(full, k)
            assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), k
        for k, v in full.flags.items():
            assert np.array_equal(got.flags[k], v), k
        prev = got


def test_step_on_a_stretch_equals_step_on_the_active_accounts_alone(rules):
    roles = list(rules.roles.values())
    units = make_units(rules, 200)
    rng = np.random.default_rng(8)
    for active in portfolio_periods(units.n_accounts, 6, rng):
        inp = period_input(units.n_accounts, active, rng)
        u_depart = rng.random(units.n_people) * 0.5
        on = np.flatnonzero(active)
        alone = select_accounts(units, on)
        who = np.concatenate([np.arange(units.offsets[a], units.offsets[a + 1]) for a in on])
        before = {f: getattr(units, f).copy() for f in PERSON}
        sub = StepInput(*(np.asarray(getattr(inp, f))[on] for f in (
            "am_hours", "exec_hours", "specialist_hours", "quality", "complaints_resolved",
            "complaints_unresolved", "active")))
        out_alone = step(alone, sub, StepParams(), roles, u_depart[who])
        out = step(units, inp, StepParams(), roles, u_depart)
        assert np.array_equal(out.departed, who[out_alone.departed])
        idle = np.ones(units.n_people, bool)
        idle[who] = False
        for f in PERSON:
            v = getattr(units, f)
            assert v[who].tobytes() == getattr(alone, f).tobytes(), f
            assert np.array_equal(v[idle], before[f][idle]), f  # inactive: untouched


def test_no_active_account_changes_nothing(rules):
    roles = list(rules.roles.values())
    units = make_units(rules, 50)
    before = units.copy()
    inp = period_input(units.n_accounts, np.zeros(units.n_accounts, bool),
                       np.random.default_rng(1))
    out = step(units, inp, StepParams(), roles, np.zeros(units.n_people))
    assert out.departed.size == 0
    for f in PERSON:
        assert np.array_equal(getattr(units, f), getattr(before, f))
    prev = metrics(before, 0.3)
    again = metrics(units, 0.3, active=inp.active, previous=prev)
    assert np.array_equal(again.coverage, prev.coverage)
    assert again.coverage is not prev.coverage  # a new array: the caller keeps the old one


def test_copies_do_not_share_scratch_buffers(rules):
    units = make_units(rules, 20)
    metrics(units, 0.3)
    assert units._scratch is not None
    assert units.copy()._scratch is None


def _same_metrics(a, b):
    for k in METRICS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), k
    assert list(a.flags) == list(b.flags)
    for k, v in b.flags.items():
        assert a.flags[k].tobytes() == v.tobytes(), k


def _same_step(out1: Any, out2: Any, one: Any, two: Any) -> None:
    """Two steps' departures and the people they left behind, bit for bit."""
    for f in ("departed", "departed_account", "departed_role", "departed_coverage",
              "departed_influence"):
        a, b = getattr(out1, f), getattr(out2, f)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f
    for f in PERSON:
        assert getattr(one, f).tobytes() == getattr(two, f).tobytes(), f


def test_rank_layout_gives_bincounts_sums_to_the_bit(rules, monkeypatch):
    """Small portfolios sum per account through a (rank, account) layout, larger ones with
    bincount: the two give the same bits, period after period."""
    import importlib

    mod = importlib.import_module("kamsim.dmu.metrics")
    monkeypatch.setenv("KAMSIM_KERNELS", "off")  # (the numpy path's layouts)
    units = make_units(rules, 300)
    prev = metrics(units, 0.3)
    for active in stepped_periods(rules, units, 8, seed=11):
        by_rank = metrics(units, 0.3, active=active, previous=prev)
        assert units._cache.extras["rank_index"].size  # the layout was used
        twin = units.copy()  # (a fresh structure: the limit is read when it is made)
        with monkeypatch.context() as m:
            m.setattr(mod, "RANK_LAYOUT_MAX", 0)
            twin._cache = None
            by_bincount = metrics(twin, 0.3, active=active, previous=prev)
            assert twin._cache.extras["rank_index"].size == 0
        _same_metrics(by_rank, by_bincount)
        # and gathered rank by rank (what stretches of many accounts do)
        twin = units.copy()
        with monkeypatch.context() as m:
            m.setattr(mod, "RANK_BY_RANK_FROM", 0)
            rank_by_rank = metrics(twin, 0.3, active=active, previous=prev)
        _same_metrics(by_rank, rank_by_rank)
        prev = by_rank


def test_rank_layout_with_negative_and_nan_coverage_matches_bincount(rules, monkeypatch):
    """The layout's zero padding can change the largest ic of an account whose values are
    all negative; its spof_share is 1 either way, so every metric stays the plain path's."""
    import importlib

    mod = importlib.import_module("kamsim.dmu.metrics")
    monkeypatch.setenv("KAMSIM_KERNELS", "off")  # (the numpy path's layouts)
    units = make_units(rules, 300)
    sizes = units.sizes
    assert sizes.min() < sizes.max()  # some accounts are padded
    units.coverage[::3] = -0.4
    small = np.flatnonzero(sizes < sizes.max())[:5]  # all-negative, padded accounts
    for a in small:
        units.coverage[units.offsets[a]:units.offsets[a + 1]] = -0.25
    units.coverage[units.offsets[small[-1] + 1]] = -0.0
    units.coverage[7] = np.nan
    by_rank = metrics(units, 0.3)
    assert units._cache.extras["rank_index"].size  # the layout was used
    twin = units.copy()
    with monkeypatch.context() as m:
        m.setattr(mod, "RANK_LAYOUT_MAX", 0)
        twin._cache = None
        by_bincount = metrics(twin, 0.3)
        assert twin._cache.extras["rank_index"].size == 0
    _same_metrics(by_rank, by_bincount)


def test_rank_layout_of_a_one_account_stretch_is_bincounts(rules, monkeypatch):
    """A stretch of one account of 8 or more people: numpy would reduce the layout along its
    ranks, pairwise (8 partial sums), not in bincount's order; the layout is not used there."""
    import importlib

    mod = importlib.import_module("kamsim.dmu.metrics")
    monkeypatch.setenv("KAMSIM_KERNELS", "off")  # (the numpy path's layouts)
    units = make_units(rules, 40)
    big = int(np.flatnonzero(units.sizes >= 8)[0])
    s = slice(units.offsets[big], units.offsets[big + 1])
    units.influence[s] = 1.0
    units.invalidate()
    # coverages whose sum in numpy's pairwise order rounds otherwise than in turn
    units.coverage[s] = np.random.default_rng(1).random(s.stop - s.start)
    active = np.zeros(units.n_accounts, bool)
    active[big] = True
    prev = metrics(units, 0.3)
    by_rank = metrics(units, 0.3, active=active, previous=prev)
    twin = units.copy()
    with monkeypatch.context() as m:
        m.setattr(mod, "RANK_LAYOUT_MAX", 0)
        twin._cache = None
        by_bincount = metrics(twin, 0.3, active=active, previous=prev)
    _same_metrics(by_rank, by_bincount)
    cov = units.coverage[s]
    assert np.add.reduce(cov) != np.bincount(np.zeros(cov.size, int), weights=cov)[0]


def test_previous_metrics_copied_or_rebuilt_give_the_same_results(rules):
    """The values outside the stretch come block by block from metrics' own results, or
    array by array from any other Metrics (a copy, one whose arrays were replaced)."""
    import copy
    import pickle

    roles = list(rules.roles.values())
    units = make_units(rules, 200)
    rng = np.random.default_rng(12)
    prev = metrics(units, 0.3)
    for active in portfolio_periods(units.n_accounts, 5, rng):
        step(units, period_input(units.n_accounts, active, rng), StepParams(), roles,
             rng.random(units.n_people) * 0.5)
        got = metrics(units, 0.3, active=active, previous=prev)
        replaced = copy.copy(prev)
        replaced.coverage = prev.coverage.copy()
        replaced.coverage[:] = -7.0  # noticed: its coverage is no longer the block's row
        for other in (copy.deepcopy(prev), pickle.loads(pickle.dumps(prev))):
            _same_metrics(metrics(units, 0.3, active=active, previous=other), got)
        moved = metrics(units, 0.3, active=active, previous=replaced)
        outside = ~np.isin(np.arange(units.n_accounts),
                           np.arange(np.flatnonzero(active)[0], np.flatnonzero(active)[-1] + 1))
        assert np.all(moved.coverage[outside] == -7.0)
        prev = got


@pytest.fixture
def lanes_always(monkeypatch):
    """Split every stretch over two threads, however small (the engine only splits large
    ones: LANE_MIN_PEOPLE), even on a one-core machine."""
    from kamsim import lanes
    from kamsim.dmu import span as span_module

    monkeypatch.setattr(span_module, "LANE_MIN_PEOPLE", 0)
    monkeypatch.setattr(lanes, "CORES", 2)


def test_split_parts_cover_the_stretch_at_account_boundaries(rules, lanes_always):
    from kamsim.dmu.span import span, split
    from kamsim.dmu.structure import structure

    units = make_units(rules, 300)
    st = structure(units)
    rng = np.random.default_rng(3)
    for active in portfolio_periods(units.n_accounts, 8, rng):
        sp = span(units, st, active)
        parts = split(units, st, sp, 2)
        assert len(parts) == 2
        assert (parts[0].a0, parts[-1].a1, parts[0].p0, parts[-1].p1, parts[0].e0,
                parts[-1].e1) == (sp.a0, sp.a1, sp.p0, sp.p1, sp.e0, sp.e1)
        for a, b in zip(parts, parts[1:], strict=False):
            assert (a.a1, a.p1, a.e1) == (b.a0, b.p0, b.e0)
        for p in parts:
            assert p.a1 > p.a0
            assert (p.p0, p.p1) == (units.offsets[p.a0], units.offsets[p.a1])
            dst = units.edge_dst[p.e0:p.e1]
            assert np.all((dst >= p.p0) & (dst < p.p1))  # the edges into the part's people
        # the halves hold about as many people each (cut at the account nearest the middle)
        assert abs((parts[0].p1 - parts[0].p0) - (parts[1].p1 - parts[1].p0)) \
            <= 2 * int(units.sizes.max())
    # one part only below the threshold, or when asked for one
    assert split(units, st, span(units, st, None), 1) == [span(units, st, None)]


def test_split_leaves_a_stretch_of_no_account_or_one_whole(rules, lanes_always):
    # (with the threshold at 0: an empty stretch was cut into a part before its start)
    from kamsim.dmu.span import span, split
    from kamsim.dmu.structure import structure

    roles = list(rules.roles.values())
    units = make_units(rules, 50)
    st = structure(units)
    rng = np.random.default_rng(4)
    active = np.zeros(units.n_accounts, dtype=bool)
    for chosen in ([], [7], [0], [units.n_accounts - 1]):
        active[:] = False
        active[chosen] = True
        sp = span(units, st, active)
        assert split(units, st, sp, 2) == [sp]
        # and a step and the metrics of such a period on two threads are one thread's
        one, two = units.copy(), units.copy()
        inp = period_input(units.n_accounts, active, rng)
        u = rng.random(units.n_people) * 0.5
        _same_step(step(one, inp, StepParams(), roles, u),
                   step(two, inp, StepParams(), roles, u, threads=2), one, two)
        _same_metrics(metrics(one, 0.3, active=active), metrics(two, 0.3, active=active,
                                                                threads=2))


def test_two_threads_give_exactly_what_one_gives(rules, lanes_always):
    """step and metrics on two threads (each half of the stretch in its own thread, with its
    own buffers) change the same people the same way and give the same metrics, bit for bit,
    over periods with lost and new accounts."""
    roles = list(rules.roles.values())
    one = make_units(rules, 300)
    two = one.copy()
    rng = np.random.default_rng(21)
    prev1 = metrics(one, 0.3)
    prev2 = metrics(two, 0.3, threads=2)
    _same_metrics(prev1, prev2)
    departed = 0
    for active in portfolio_periods(one.n_accounts, 8, rng):
        inp = period_input(one.n_accounts, active, rng)
        u = rng.random(one.n_people) * 0.5
        out1 = step(one, inp, StepParams(), roles, u)
        out2 = step(two, inp, StepParams(), roles, u, threads=2)
        _same_step(out1, out2, one, two)
        departed += out1.departed.size
        prev1 = metrics(one, 0.3, active=active, previous=prev1)
        prev2 = metrics(two, 0.3, active=active, previous=prev2, threads=2)
        _same_metrics(prev1, prev2)
    assert departed > 0  # the departures path was exercised


@pytest.mark.parametrize("threads", [1, 2])
def test_a_context_steps_and_measures_exactly_as_the_functions_do(rules, lanes_always,
                                                                   threads):
    """A Context (set-up once, the step's stretch reused by the metrics that follow it) gives
    the departures, people and metrics of step() and metrics(active=, previous=), bit for bit,
    over periods with lost and new accounts (on one thread and on two)."""
    from kamsim.dmu.context import Context

    roles = list(rules.roles.values())
    one = make_units(rules, 300)
    two = one.copy()
    ctx = Context(two, StepParams(), {r: rules.roles[r] for r in two.role_names}, 0.3,
                  threads=threads)
    with pytest.raises(ValueError, match="follow a step"):
        ctx.metrics(metrics(two, 0.3))
    rng = np.random.default_rng(22)
    prev1, prev2 = metrics(one, 0.3), ctx.metrics()
    _same_metrics(prev1, prev2)
    departed = 0
    for active in portfolio_periods(one.n_accounts, 10, rng):
        inp = period_input(one.n_accounts, active, rng)
        u = rng.random(one.n_people) * 0.5
        out1 = step(one, inp, StepParams(), roles, u)
        out2 = ctx.step(inp, u)
        _same_step(out1, out2, one, two)
        departed += out1.departed.size
        prev1 = metrics(one, 0.3, active=active, previous=prev1)
        prev2 = ctx.metrics(prev2)
        _same_metrics(prev1, prev2)
    assert departed > 0
    with pytest.raises(ValueError, match="u_depart"):
        ctx.step(inp, u[:-1])
