"""The compiled decision-unit step (kamsim.dmu.step_kernel) changes the units and reports the
departures exactly as the numpy path does, to the bit (values, signed zeros, NaN payloads,
dtypes, order): on units built by the project's builders over run-like periods, on two
threads, and on the corners the numpy code decides part-wide (complaint exposure, orphan
hours), unclean groups, empty and lost accounts, signed zeros and NaN. Where np.nan meets
the other NaN (the processor's, from inf * 0) in a sum or product, which one comes out is
not numpy's to the bit either: there a NaN only has to meet a NaN
(test_property_nan_and_infinities)."""

from __future__ import annotations

from dataclasses import fields

import networkx as nx
import numpy as np
import pytest
from _kernels import same_bits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_dmu_cache import make_units, period_input
from test_dmu_span import portfolio_periods

from kamsim.dmu import StepInput, StepParams, Units, from_graphs, step
from kamsim.dmu.arrays import concat_units, empty_units
from kamsim.dmu.dynamics import StepOutcome
from kamsim.spec.models import ROLE_NAMES, RoleArchetype, StakeholderRules

pytest.importorskip("numba")
# the numpy path divides by weights that add up to 0 in the unclean units, and says so
pytestmark = pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning",
                                        "ignore:divide by zero:RuntimeWarning",
                                        "ignore:overflow:RuntimeWarning")

PERSON = ("attitude", "coverage", "months_in_post", "price_focus")
ROLES = {r: RoleArchetype(turnover_per_year=0.3, price_focus=0.2) for r in ROLE_NAMES}


@pytest.fixture(scope="module")
def rules() -> StakeholderRules:
    from pathlib import Path

    from kamsim.spec.yamlpos import load_yaml

    root = Path(__file__).resolve().parents[1]
    return StakeholderRules.model_validate(load_yaml(root / "rules/stakeholders.yaml").data)


@pytest.fixture
def kernel_calls(monkeypatch):
    """How many parts the kernel worked on (so that a test knows it ran)."""
    from kamsim.dmu import step_kernel

    calls = []
    real = step_kernel.step_part

    def counted(*args, **kw):
        calls.append(args[7])  # the part's Span
        return real(*args, **kw)

    monkeypatch.setattr(step_kernel, "step_part", counted)
    return calls


@pytest.fixture
def lanes_always(monkeypatch):
    """Two lanes whatever the size (the engine splits only large stretches)."""
    from kamsim import lanes
    from kamsim.dmu import span as span_module

    monkeypatch.setattr(span_module, "LANE_MIN_PEOPLE", 0)
    monkeypatch.setattr(lanes, "CORES", 2)


def bits(a: np.ndarray) -> tuple[np.dtype, tuple[int, ...], bytes]:
    return a.dtype, a.shape, np.ascontiguousarray(a).tobytes()


def assert_same(out_np: StepOutcome, out_k: StepOutcome, u_np: Units, u_k: Units,
                nan_bits: bool = True) -> None:
    """The outcomes and the people's values, bit for bit; with ``nan_bits`` false a NaN only
    has to meet a NaN (see test_property_nan_and_infinities)."""
    for f in fields(StepOutcome):
        a, b = getattr(out_np, f.name), getattr(out_k, f.name)
        assert same_bits(a, b, nan_bits), (f.name, a, b)
    for f in PERSON:
        a, b = getattr(u_np, f), getattr(u_k, f)
        bad = np.flatnonzero(a.view(np.uint64) != b.view(np.uint64))
        if not nan_bits:
            bad = bad[~(np.isnan(a[bad]) & np.isnan(b[bad]))]
        assert not bad.size, f"{f} differs at {bad[:5]}: {a[bad[:5]]} vs {b[bad[:5]]}"


def both(monkeypatch, units: Units, inp: StepInput, u: np.ndarray, *,
         params: StepParams | None = None, roles=None, threads: int = 1,
         nan_bits: bool = True) -> tuple[StepOutcome, StepOutcome]:
    """One step of ``units`` by the numpy path and of a copy by the kernel (``units`` ends
    as the numpy path left it; the kernel's copy is returned too)."""
    params = params or StepParams()
    roles = roles or ROLES
    other = units.copy()
    monkeypatch.setenv("KAMSIM_KERNELS", "off")
    out_np = step(units, inp, params, roles, u, threads=threads)
    monkeypatch.setenv("KAMSIM_KERNELS", "on")
    out_k = step(other, inp, params, roles, u, threads=threads)
    assert_same(out_np, out_k, units, other, nan_bits)
    return out_np, out_k


def run_periods(monkeypatch, rules, n: int, periods: int, seed: int, *, threads: int = 1,
                dt: float = 1.0, draws=np.float32) -> int:
    """Two copies of built units stepped side by side over run-like periods (slots filled in
    order, lost accounts never back), one by each path; the state is carried from period to
    period. Returns how many left."""
    roles = list(rules.roles.values())
    one = make_units(rules, n, seed)
    two = one.copy()
    rng = np.random.default_rng(seed)
    params = StepParams(dt_months=dt)
    departed = 0
    for i, active in enumerate(portfolio_periods(n, periods, rng)):
        active[:8 * i] = False  # the first accounts lost too: the stretch starts later
        inp = period_input(n, rng)
        inp.active = active
        u = (rng.random(one.n_people) * 0.3).astype(draws)
        monkeypatch.setenv("KAMSIM_KERNELS", "off")
        out1 = step(one, inp, params, roles, u, threads=threads)
        monkeypatch.setenv("KAMSIM_KERNELS", "on")
        out2 = step(two, inp, params, roles, u, threads=threads)
        assert_same(out1, out2, one, two)
        departed += out1.departed.size
    return departed


@pytest.mark.parametrize("dt", [1.0, 0.25])
@pytest.mark.parametrize("draws", [np.float32, np.float64])
def test_built_units_over_run_like_periods(monkeypatch, rules, kernel_calls, dt, draws):
    assert run_periods(monkeypatch, rules, 400, 12, 7, dt=dt, draws=draws) > 0
    assert kernel_calls
    # the stretch moved: it started after account 0 and ended before the last slot
    assert any(sp.a0 > 0 for sp in kernel_calls)
    assert any(sp.a1 < 400 for sp in kernel_calls)


def test_two_lanes(monkeypatch, rules, kernel_calls, lanes_always):
    """Each lane's half of the stretch decides its own exposure and orphan hours, as each
    numpy part does; the departures of the halves come one after the other."""
    assert run_periods(monkeypatch, rules, 300, 6, 11, threads=2) > 0
    starts = {sp.a0 for sp in kernel_calls}
    assert len(starts) > 2  # the second halves were kernel parts too


def test_the_engines_draws(monkeypatch, rules, kernel_calls):
    """The engine's u_depart: float32 ones, 0 for who is due to leave."""
    units = make_units(rules, 300, 3)
    rng = np.random.default_rng(4)
    u = np.ones(units.n_people, np.float32)
    u[rng.choice(units.n_people, 40, replace=False)] = 0.0
    out, _ = both(monkeypatch, units, period_input(300, rng), u,
                  roles=list(rules.roles.values()))
    assert out.departed.size and kernel_calls


@pytest.mark.parametrize("threads", [1, 2])
def test_the_engines_draws_with_who_is_below_one(monkeypatch, rules, kernel_calls, lanes_always,
                                                threads):
    """The engine tells the step who is leaving (``below``: every person whose draw is below
    1.0, the others' being 1.0): the compiled step looks at those only, and leaves and
    changes exactly what the numpy path does, period after period, in one lane and two
    (each finds its own share of the list). The list is read only when no leaving
    probability is above 1.0."""
    from kamsim.dmu.context import Context

    roles = list(rules.roles.values())
    n = 1500  # (several blocks of people a lane)
    one = make_units(rules, n, 5)
    two = one.copy()
    rng = np.random.default_rng(6)
    left = 0
    for i, active in enumerate(portfolio_periods(n, 4, rng)):
        active[:8 * i] = False
        inp = period_input(n, rng)
        inp.active = active
        u = np.ones(one.n_people, np.float32)
        u[rng.choice(one.n_people, 200, replace=False)] = 0.0
        u[one.offsets[1:][one.sizes > 0] - 1] = 0.0  # every account's last person (a block ends so)
        u[rng.choice(one.n_people, 50, replace=False)] = 0.05  # (below 1.0 but stays)
        below = np.flatnonzero(u < 1.0)
        monkeypatch.setenv("KAMSIM_KERNELS", "off")
        out1 = Context(one, StepParams(), roles, 0.3, threads=threads).step(inp, u)
        monkeypatch.setenv("KAMSIM_KERNELS", "on")
        out2 = Context(two, StepParams(), roles, 0.3, threads=threads).step(inp, u, below)
        assert_same(out1, out2, one, two)
        left += out1.departed.size
    assert left > 1000 and kernel_calls
    assert threads == 1 or len({sp.a0 for sp in kernel_calls}) > 6


# ------------------------------------------------------------------ hand-made units

def person(g: nx.DiGraph, pid: str, role: str, held: str, infl: float = 0.5,
           att: float = 0.3, cov: float = 0.4) -> None:
    g.add_node(pid, role=role, influence=infl, attitude=att, coverage=cov, held_by=held,
               months_in_post=12.0, seniority=1, price_focus=0.2)


def full_unit() -> nx.DiGraph:
    g = nx.DiGraph()
    person(g, "eb", "economic_buyer", "executive", 0.9, 0.5, 0.6)
    person(g, "te", "technical_evaluator", "specialist", 0.6, -0.2, 0.1)
    person(g, "ch", "champion", "account_manager", 0.6, 0.8, 0.9)
    person(g, "us", "user", "account_manager", 0.3, 0.0, 0.0)
    g.add_edge("ch", "eb", kind="influences", weight=0.6, sign=1)
    g.add_edge("te", "eb", kind="influences", weight=0.4, sign=-1)
    g.add_edge("eb", "us", kind="influences", weight=0.5, sign=1)
    return g


def no_specialist() -> nx.DiGraph:
    g = full_unit()
    g.remove_node("te")
    return g


def no_account_manager() -> nx.DiGraph:
    """Executive and specialist people only: every AM hour is an orphan hour."""
    g = nx.DiGraph()
    person(g, "eb", "economic_buyer", "executive", 0.9)
    person(g, "te", "technical_evaluator", "specialist", 0.2)
    g.add_edge("te", "eb", kind="influences", weight=0.7, sign=1)
    return g


def mixed_units() -> Units:
    """Full units, units lacking a holder, units without AM people, empty accounts."""
    graphs = [full_unit(), no_specialist(), nx.DiGraph(), no_account_manager(), full_unit(),
              nx.DiGraph(), no_account_manager(), no_specialist(), full_unit()]
    return concat_units(from_graphs(graphs, ROLE_NAMES), empty_units(ROLE_NAMES, 2))


def busy(n: int, seed: int = 0) -> StepInput:
    rng = np.random.default_rng(seed)
    inp = StepInput.idle(n)
    inp.am_hours[:] = rng.uniform(0, 9, n)
    inp.exec_hours[:] = rng.uniform(0, 3, n)
    inp.specialist_hours[:] = rng.uniform(0, 4, n)
    inp.quality[:] = rng.uniform(-1, 1, n)
    inp.complaints_unresolved[:] = rng.random(n) < 0.4
    inp.complaints_resolved[:] = rng.random(n) < 0.4
    return inp


def test_orphan_hours_empty_accounts_and_lacking_holders(monkeypatch, kernel_calls):
    units = mixed_units()
    n = units.n_accounts
    for seed in range(4):
        inp = busy(n, seed)
        u = np.random.default_rng(seed).random(units.n_people) * 0.05
        both(monkeypatch, units, inp, u)
    # no orphan hours at all (the AM-less accounts get no AM hours): no orphan share added
    inp = busy(n, 9)
    inp.am_hours[[3, 6]] = 0.0
    inp.exec_hours[3] = inp.specialist_hours[6] = 0.0
    both(monkeypatch, units, inp, np.ones(units.n_people))
    assert kernel_calls


def test_unclean_groups_negative_and_zero_influence(monkeypatch, kernel_calls):
    """Influences adding up to no positive weight: such a group counts as lacking (its hours
    move to the AM group), its people still read its rate (0 over a weight <= 0: -0.0 or
    NaN), and the orphan share divides by account weights that may be negative or 0."""
    units = mixed_units()
    units.influence[[0, 2, 5]] = -0.7  # an executive, AM people of accounts 0 and 1
    units.influence[[7, 8]] = -1e-9  # AM-less account 3: its weights add up to exactly 0
    units.influence[16] = 0.0
    units.influence[18] = np.nan  # an executive of account 8: the account's weight is NaN
    units.invalidate()
    n = units.n_accounts
    for seed in range(3):
        inp = busy(n, seed)
        both(monkeypatch, units, inp, np.random.default_rng(seed).random(units.n_people))
    # no orphan hours anywhere (no hours for the accounts whose AM group has no positive
    # weight, the empty ones included): the numpy code adds no orphan share, which would be
    # 0 * weight / NaN = NaN in account 8
    inp = busy(n, 4)
    for orphaned in (0, 1, 2, 3, 5, 6, 9, 10):
        inp.am_hours[orphaned] = inp.exec_hours[orphaned] = 0.0
        inp.specialist_hours[orphaned] = 0.0
    both(monkeypatch, units, inp, np.ones(units.n_people))
    # no hours at all: the rates are 0 over the weights (-0.0 for a negative one), the
    # coverage of -0.0 people decays to -0.0
    units.coverage[::2] = -0.0
    inp = StepInput.idle(n)
    inp.quality[:] = -0.0
    both(monkeypatch, units, inp, np.ones(units.n_people))
    inp.complaints_unresolved[2] = 1.0
    both(monkeypatch, units, inp, np.ones(units.n_people))
    assert kernel_calls


def test_lost_accounts_decide_exposure_and_orphans_for_the_part(monkeypatch, kernel_calls):
    """Only a lost account inside the stretch has a complaint (or orphan hours): the numpy
    code still adds the exposure (and the orphan share) to every person of the part, which
    turns an attitude of -0.0 into +0.0 and makes a NaN coverage's attitude NaN. The lost
    account's people themselves stay as they were."""
    units = mixed_units()
    units.attitude[:] = -0.0
    units.coverage[:] = 0.0
    units.coverage[1] = np.nan
    inp = StepInput.idle(units.n_accounts)
    inp.active[4] = False
    inp.complaints_unresolved[4] = 1.0
    inp.am_hours[6] = 0.0
    inp.active[3] = False
    inp.am_hours[3] = 2.0  # orphan hours, of a lost account only
    before = units.copy()
    both(monkeypatch, units, inp, np.ones(units.n_people))
    lost = np.arange(units.offsets[3], units.offsets[5])
    for f in PERSON:
        assert getattr(units, f)[lost].tobytes() == getattr(before, f)[lost].tobytes()
    assert np.isnan(units.attitude[1])
    assert kernel_calls


def test_signed_zeros_and_nan(monkeypatch, kernel_calls):
    """-0.0 and NaN in the inputs go where the numpy path takes them (a NaN complaint count
    is a kick, -0.0 counts are none)."""
    units = mixed_units()
    n, rng = units.n_accounts, np.random.default_rng(5)
    units.attitude[::3] = -0.0
    units.coverage[1::4] = -0.0
    units.coverage[7] = np.nan
    units.attitude[11] = np.nan
    units.months_in_post[2] = np.nan
    inp = busy(n, 1)
    inp.complaints_resolved[:] = inp.complaints_unresolved[:] = -0.0
    inp.quality[::2] = -0.0
    inp.am_hours[1] = inp.exec_hours[0] = -0.0
    # no kick anywhere: no exposure added
    both(monkeypatch, units, inp, rng.random(units.n_people))
    inp.quality[3] = np.nan
    inp.specialist_hours[8] = np.nan
    inp.complaints_unresolved[7] = np.nan  # a NaN kick: exposure added everywhere
    both(monkeypatch, units, inp, rng.random(units.n_people))
    # no contact: -0.0 coverage decays to -0.0 and stays so through the clip
    units.coverage[::2] = -0.0
    units.attitude[1::2] = -0.0
    idle = StepInput.idle(n)
    idle.quality[::3] = -0.0
    both(monkeypatch, units, idle, np.ones(units.n_people))
    assert kernel_calls


def test_draws_at_and_next_to_the_leaving_probabilities(monkeypatch, kernel_calls):
    """A draw equal to the role's probability stays; a float32 draw below the probability in
    float64 leaves, also when it is the probability rounded down to float32 (the
    comparisons are made in float64, as numpy makes them)."""
    units = mixed_units()
    # a turnover whose monthly probability rounds down to float32
    for t in np.linspace(0.2, 0.4, 200):
        p = 1 - (1 - t) ** (1 / 12)
        if float(np.float32(p)) < p:
            break
    roles = {r: RoleArchetype(turnover_per_year=float(t) * (1 - 0.1 * (i % 2)),
                              price_focus=0.1 * i)
             for i, r in enumerate(ROLE_NAMES)}
    per_role = np.array([1 - (1 - roles[r].turnover_per_year) ** (1 / 12)
                         for r in units.role_names])
    exact = per_role[units.role]
    both(monkeypatch, units, busy(units.n_accounts), exact.copy(), roles=roles)
    u = np.ones(units.n_people, np.float32)
    top = units.role == int(per_role.argmax())
    u[top] = np.float32(per_role.max())  # rounded down: below the probability
    out, _ = both(monkeypatch, units, busy(units.n_accounts), u, roles=roles)
    assert out.departed.size == int(top.sum())
    assert kernel_calls


def test_unsorted_edges_take_the_numpy_path(monkeypatch, kernel_calls):
    units = mixed_units()
    order = np.arange(units.edge_dst.size)[::-1].copy()
    units.edge_src, units.edge_dst = units.edge_src[order], units.edge_dst[order]
    units.edge_weight, units.edge_sign = units.edge_weight[order], units.edge_sign[order]
    both(monkeypatch, units, busy(units.n_accounts), np.ones(units.n_people))
    assert not kernel_calls


def test_an_account_of_thousands_of_people(monkeypatch, kernel_calls):
    """One account larger than a block of the kernel, between small ones."""
    g = nx.DiGraph()
    rng = np.random.default_rng(2)
    holders = ("account_manager", "executive", "specialist")
    for i in range(5000):
        person(g, f"p{i}", ROLE_NAMES[i % len(ROLE_NAMES)], holders[i % 3],
               float(rng.random()), float(rng.uniform(-1, 1)), float(rng.random()))
    for i in range(1, 5000, 3):
        g.add_edge(f"p{i - 1}", f"p{i}", kind="influences", weight=0.5, sign=1 - 2 * (i % 2))
        g.add_edge(f"p{(i * 7) % 5000}", f"p{i}", kind="influences", weight=0.2, sign=1)
    units = from_graphs([full_unit(), g, no_specialist()], ROLE_NAMES)
    for seed in range(2):
        both(monkeypatch, units, busy(3, seed), rng.random(units.n_people) * 0.1)
    assert kernel_calls


# ------------------------------------------------------------------ property

special = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, np.nan, 1e-300])
value = st.one_of(st.floats(-1.5, 1.5), special)
person_st = st.tuples(st.sampled_from(ROLE_NAMES),
                      st.sampled_from(("account_manager", "executive", "specialist")),
                      st.one_of(st.floats(-0.2, 1.0), st.just(0.0)), value, value)
unit_st = st.lists(person_st, min_size=0, max_size=7)


def _units_of(units_rows, edges):
    """Units of one account a list of people rows (role, holder, influence, attitude,
    coverage), each with the edges (source, target, weight, sign) whose ends it has."""
    graphs = []
    for rows in units_rows:
        g = nx.DiGraph()
        for i, (role, held, infl, att, cov) in enumerate(rows):
            person(g, f"p{i}", role, held, infl, att, cov)
        for s, d, w, sign in edges:
            if s < len(rows) and d < len(rows) and s != d:
                g.add_edge(f"p{s}", f"p{d}", kind="influences", weight=w, sign=sign)
        graphs.append(g)
    return from_graphs(graphs, ROLE_NAMES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(st.lists(unit_st, min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6), st.floats(0.0, 1.0),
                          st.sampled_from((1, -1))), max_size=12),
       st.lists(st.tuples(st.floats(0, 9), st.floats(0, 4), value, st.sampled_from(
           (0.0, 1.0, -0.0, np.nan)), st.booleans()), min_size=6, max_size=6),
       st.integers(0, 2**32 - 1))
def test_property_kernel_equals_numpy(units_rows, edges, accounts, seed):
    units = _units_of(units_rows, edges)
    n = units.n_accounts
    inp = StepInput.idle(n)
    for a in range(n):
        hours, spec, quality, complaint, alive = accounts[a]
        inp.am_hours[a], inp.specialist_hours[a], inp.quality[a] = hours, spec, quality
        inp.exec_hours[a] = hours / 3
        inp.complaints_unresolved[a] = complaint
        inp.active[a] = alive
    u = np.random.default_rng(seed).random(units.n_people).astype(np.float32)
    with pytest.MonkeyPatch.context() as mp:
        both(mp, units, inp, u)


def test_a_nan_attitude_meets_the_nan_of_an_infinite_influence(monkeypatch, kernel_calls):
    """A person of infinite influence in a group of two gets 0 hours * inf = the processor's
    NaN (0xfff8...) as effort; with a NaN attitude (np.nan, 0x7ff8...) the drift adds the two
    NaNs, and which comes out depends on the order of the operands the compiler chose (numpy
    here: its loops' first operand's, but its tail loop's the second's; the kernel: the
    attitude's). Both paths give a NaN, the other person's values are the same to the bit."""
    g = nx.DiGraph()
    person(g, "p0", "champion", "account_manager", np.inf, np.nan, 0.4)
    person(g, "p1", "user", "account_manager", 0.5, 0.2, 0.3)
    units = from_graphs([g], ROLE_NAMES)
    both(monkeypatch, units, StepInput.idle(1), np.ones(units.n_people), nan_bits=False)
    assert np.isnan(units.attitude[0])  # (and the kernel's: a NaN meets a NaN)
    assert kernel_calls


#: the NaN x86 makes of an invalid operation (inf * 0, inf - inf, 0 / 0): negative, unlike np.nan
HARDWARE_NAN = float(np.array([0xFFF8_0000_0000_0000], np.uint64).view(np.float64)[0])
extreme = st.sampled_from([0.0, -0.0, 1.0, -1.0, np.nan, HARDWARE_NAN, np.inf, -np.inf, 1e308,
                           5e-324])
wild = st.one_of(st.floats(-1.5, 1.5), extreme)
wild_person = st.tuples(st.sampled_from(ROLE_NAMES),
                        st.sampled_from(("account_manager", "executive", "specialist")),
                        st.one_of(st.floats(-0.2, 1.0), extreme), wild, wild)
wild_hours = st.one_of(st.floats(0, 9), extreme)
#: complaint counts: none (often: the exposure is added only if some account has a kick)
wild_count = st.one_of(st.sampled_from((0.0, -0.0)), wild)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(st.lists(st.lists(wild_person, max_size=7), min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6),
                          st.one_of(st.floats(0.0, 1.0), extreme), st.sampled_from((1, -1))),
                max_size=12),
       st.lists(st.tuples(wild_hours, wild_hours, wild, wild_count, wild_count, st.booleans()),
                min_size=6, max_size=6),
       st.integers(0, 2**32 - 1), st.booleans())
def test_property_nan_and_infinities(units_rows, edges, accounts, seed, split):
    """NaN (np.nan's bits and the processor's), infinities, -0.0 and the extremes of float64
    in the attitudes, coverage and influences, the edge weights and the accounts' hours,
    quality and complaints, on one lane or two: the kernel gives the numpy path's departures
    and values, signed zeros included, and a NaN wherever numpy has one.

    Only which NaN it is can differ, where two NaNs of different bits (np.nan, 0x7ff8..., and
    the 0xfff8... x86 makes of inf * 0, inf - inf or 0 / 0) meet in an addition or a
    multiplication: numpy's own loops give the first or the second operand's by the array's
    length, a value's place in it and the SIMD level numpy dispatches to (docs/dmu.md,
    "Compiled step"), so that is not part of either path's result."""
    from kamsim import lanes
    from kamsim.dmu import span as span_module
    from kamsim.dmu import step_kernel

    units = _units_of(units_rows, edges)
    n = units.n_accounts
    inp = StepInput.idle(n)
    for a in range(n):
        am, spec, quality, unresolved, resolved, alive = accounts[a]
        inp.am_hours[a], inp.specialist_hours[a], inp.quality[a] = am, spec, quality
        inp.exec_hours[a] = am / 3
        inp.complaints_unresolved[a] = unresolved
        inp.complaints_resolved[a] = resolved
        inp.active[a] = alive
    u = (np.random.default_rng(seed).random(units.n_people) * 0.1).astype(np.float32)
    with pytest.MonkeyPatch.context() as mp:
        calls = []
        real = step_kernel.step_part
        mp.setattr(step_kernel, "step_part", lambda *a, **kw: calls.append(1) or real(*a, **kw))
        if split:
            # (1, not 0: split() would cut a stretch of nobody into a part of slot -1)
            mp.setattr(span_module, "LANE_MIN_PEOPLE", 1)
            mp.setattr(lanes, "CORES", 2)
        both(mp, units, inp, u, threads=2 if split else 1, nan_bits=False)
        assert calls or not inp.active.any() or not units.n_people


def test_float32_values_take_the_numpy_path(monkeypatch, rules, kernel_calls):
    # numpy works some steps of float32 coverage in float32 (1 - cov, cov * keep), the kernel
    # in float64: such units (no builder makes them) stay with numpy, so the paths agree
    units = make_units(rules, 60, 4)
    units.coverage = units.coverage.astype(np.float32)
    rng = np.random.default_rng(4)
    inp = period_input(60, rng)
    both(monkeypatch, units, inp, rng.random(units.n_people))
    assert kernel_calls == []


def test_the_models_weights_are_read_at_each_step(monkeypatch, rules, kernel_calls):
    # the attitude target's weights are module values (assumptions, docs/dmu.md): the kernel
    # is handed them at each call, so a changed weight reaches both paths (numba would have
    # compiled a global in as it was, and kept it in its on-disk cache)
    from kamsim.dmu import dynamics

    monkeypatch.setattr(dynamics, "QUALITY_WEIGHT", 0.45)
    monkeypatch.setattr(dynamics, "CONTACT_BONUS", 0.35)
    units = make_units(rules, 60, 5)
    rng = np.random.default_rng(5)
    both(monkeypatch, units, period_input(60, rng), rng.random(units.n_people))
    assert kernel_calls


@pytest.mark.parametrize("field, value", [("role", len(ROLE_NAMES)), ("role", -1),
                                          ("held_by", 3), ("held_by", -1), ("account", 0)])
def test_ids_out_of_range_take_the_numpy_path(monkeypatch, kernel_calls, field, value):
    # a person's role, holder or account out of range (no builder makes one): the kernel
    # would read or write past its tables unchecked (a negative id counts from the end), so
    # the numpy path runs, with its figures or its error
    def outcome(mode: str):
        units = mixed_units()
        ids = getattr(units, field).copy()
        ids[units.n_people // 2] = value
        setattr(units, field, ids)
        monkeypatch.setenv("KAMSIM_KERNELS", mode)
        try:
            out = step(units, busy(units.n_accounts), StepParams(), ROLES,
                       np.zeros(units.n_people))
        except (IndexError, ValueError) as e:
            return type(e), str(e)
        return [bits(getattr(out, f.name)) for f in fields(StepOutcome)] + [
            bits(getattr(units, f)) for f in PERSON]

    assert outcome("on") == outcome("off")
    assert kernel_calls == []
