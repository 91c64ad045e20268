"""Decision-unit dynamics: contact, decay, departures, inactive accounts, multi-threading."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from kamsim.dmu import StepInput, StepParams, Units, from_graphs, metrics, step
from kamsim.spec.models import ROLE_NAMES, RoleArchetype

ROLES = {r: RoleArchetype(turnover_per_year=0.12, price_focus=0.2) for r in ROLE_NAMES}
NEVER = 1.0  # u_depart of 1 never leaves


def unit(covs: tuple[float, float, float, float], att: float = 0.5) -> nx.DiGraph:
    """EB (executive), evaluator (specialist), champion and user (account manager)."""
    g = nx.DiGraph()
    for pid, role, infl, held, cov in (
            ("eb", "economic_buyer", 0.9, "executive", covs[0]),
            ("te", "technical_evaluator", 0.6, "specialist", covs[1]),
            ("ch", "champion", 0.6, "account_manager", covs[2]),
            ("us", "user", 0.3, "account_manager", covs[3])):
        g.add_node(pid, role=role, influence=infl, attitude=att, coverage=cov, held_by=held,
                   months_in_post=24.0, seniority=1, price_focus=0.2)
    g.add_edge("ch", "eb", kind="influences", weight=0.6, sign=1)
    return g


def units_of(*graphs: nx.DiGraph) -> Units:
    return from_graphs(list(graphs), ROLE_NAMES)


def test_contact_raises_coverage_and_no_contact_decays():
    u = units_of(unit((0.2, 0.2, 0.2, 0.2)), unit((0.2, 0.2, 0.2, 0.2)))
    inp = StepInput.idle(2)
    inp.am_hours[0] = 9.0  # account 0: champion 0.6/0.9 -> 6 h (effort 1), user 3 h (0.5)
    step(u, inp, StepParams(), ROLES, np.full(u.n_people, NEVER))
    p = StepParams()
    np.testing.assert_allclose(u.coverage[2], 0.2 + p.coverage_gain * 1.0 * 0.8)
    np.testing.assert_allclose(u.coverage[3], 0.2 + p.coverage_gain * 0.5 * 0.8)
    # nobody else got hours: decay
    np.testing.assert_allclose(u.coverage[[0, 1, 4, 5, 6, 7]], 0.2 * (1 - p.coverage_decay))


def test_exec_hours_reach_the_economic_buyer_and_orphans_go_to_am():
    u = units_of(unit((0.0, 0.0, 0.0, 0.0)))
    inp = StepInput.idle(1)
    inp.exec_hours[0] = 3.0
    step(u, inp, StepParams(), ROLES, np.full(u.n_people, NEVER))
    assert u.coverage[0] == pytest.approx(0.35 * 0.5)  # 3 of 6 hours: effort 0.5
    assert np.all(u.coverage[1:] == 0.0)
    # a unit with no specialist person: specialist hours go to the account-manager people
    g = unit((0.0, 0.0, 0.0, 0.0))
    g.remove_node("te")
    u = units_of(g)
    inp.exec_hours[0] = 0.0
    inp.specialist_hours[0] = 9.0
    step(u, inp, StepParams(), ROLES, np.full(u.n_people, NEVER))
    np.testing.assert_allclose(u.coverage, [0.0, 0.35, 0.35 * 0.5])


def test_departure_replaced_by_neutral_uncovered_newcomer():
    u = units_of(unit((1.0, 1.0, 1.0, 1.0), att=1.0))
    ud = np.full(u.n_people, NEVER)
    ud[0] = 0.0  # the economic buyer leaves
    out = step(u, StepInput.idle(1), StepParams(), ROLES, ud)
    assert out.departed.tolist() == [0] and out.departed_account.tolist() == [0]
    assert out.departed_coverage.tolist() == [1.0] and out.departed_influence.tolist() == [0.9]
    assert out.departed_role.tolist() == [ROLE_NAMES.index("economic_buyer")]
    assert u.coverage[0] == 0.0
    assert u.months_in_post[0] == 1.0  # 0 on arrival, then this period
    assert u.price_focus[0] == pytest.approx(0.2 + 0.15)
    # neutral, then pulled a little by the mentor champion, whose attitude has drifted first
    # toward the target 0 (1 + 0.1 * (0 - 1) = 0.9): 0.3 * 0.1 * (0.9 - 0)
    assert u.attitude[0] == pytest.approx(0.3 * 0.1 * 0.9)
    assert u.months_in_post[1] == 25.0


def test_departure_probability_matches_turnover():
    u = units_of(*[unit((0.5,) * 4) for _ in range(200)])
    p = 1 - (1 - 0.12) ** (1 / 12)
    ud = np.linspace(0, 1, u.n_people, endpoint=False)
    out = step(u, StepInput.idle(200), StepParams(), ROLES, ud)
    assert out.departed.size == int(np.sum(ud < p))


def test_departures_are_the_people_below_their_own_roles_probability():
    """Roles leave at different rates: exactly the people whose number is below their own
    role's probability leave (not the highest role's), in person order."""
    u = units_of(*[unit((0.5,) * 4) for _ in range(300)])
    turnover = {r: 0.05 + 0.9 * i / len(ROLE_NAMES) for i, r in enumerate(ROLE_NAMES)}
    roles = {r: RoleArchetype(turnover_per_year=t, price_focus=0.2) for r, t in turnover.items()}
    per_role = np.array([1 - (1 - turnover[r]) ** (1 / 12) for r in u.role_names])
    ud = np.random.default_rng(5).random(u.n_people) * per_role.max() * 1.5
    out = step(u, StepInput.idle(300), StepParams(), roles, ud)
    expected = np.flatnonzero(ud < per_role[u.role])
    assert 0 < expected.size < np.sum(ud < per_role.max())  # the roles' rates do differ
    assert out.departed.tolist() == expected.tolist()


def test_float32_draws_just_below_the_highest_probability_leave():
    """The engine draws float32 numbers: one that lies below the highest leaving probability
    in float64 but not below that probability rounded to float32 still leaves (the
    candidates are found with a float64 comparison, as each person's own one is made)."""
    u = units_of(*[unit((0.5,) * 4) for _ in range(3)])
    roles = {r: RoleArchetype(turnover_per_year=0.5, price_focus=0.2) for r in ROLE_NAMES}
    p = 1 - (1 - 0.5) ** (1 / 12)
    below = np.float32(p)
    while float(below) >= p:  # the float32 just below p (float32(p) may round up)
        below = np.nextafter(below, np.float32(0))
    ud = np.ones(u.n_people, np.float32)
    ud[[1, 7]] = below
    ud[4] = np.nextafter(below, np.float32(1))  # the next float32: not below p
    assert float(ud[4]) >= p
    out = step(u, StepInput.idle(3), StepParams(), roles, ud)
    assert out.departed.tolist() == [1, 7]


def test_inactive_accounts_untouched():
    u = units_of(unit((0.5,) * 4), unit((0.5,) * 4))
    before = u.copy()
    inp = StepInput.idle(2)
    inp.active[1] = False
    inp.am_hours[:] = 10.0
    inp.complaints_unresolved[:] = 2
    out = step(u, inp, StepParams(), ROLES, np.zeros(u.n_people))  # everyone would leave
    assert set(out.departed.tolist()) == {0, 1, 2, 3}
    for f in ("attitude", "coverage", "months_in_post", "price_focus"):
        np.testing.assert_array_equal(getattr(u, f)[4:], getattr(before, f)[4:])
        assert not np.array_equal(getattr(u, f)[:4], getattr(before, f)[:4])


def test_complaints_and_quality_move_attitudes():
    u = units_of(unit((0.5,) * 4, att=0.0), unit((0.5,) * 4, att=0.0), unit((0.5,) * 4, att=0.0))
    inp = StepInput.idle(3)
    inp.quality[:] = [1.0, 0.0, 0.0]
    inp.complaints_unresolved[1] = 1
    inp.complaints_resolved[2] = 1
    step(u, inp, StepParams(), ROLES, np.full(u.n_people, NEVER))
    s = metrics(u, 0.3).sentiment
    assert s[0] > s[2] > 0.0 > s[1]


def test_multi_threaded_keeps_more_when_key_people_leave():
    """Same people, same total strength at the start, same departures, no contact for a year."""
    n = 2000
    # single: only the EB is covered (0.9 * 1); multi: EB, evaluator, champion (0.3 each)
    single = units_of(*[unit((1.0, 0.0, 0.0, 0.0))] * n)
    multi = units_of(*[unit((1 / 3, 0.5, 0.5, 0.0))] * n)
    m0s, m0m = metrics(single, 0.3), metrics(multi, 0.3)
    np.testing.assert_allclose(m0s.strength, m0m.strength)  # equal footing
    assert m0s.flags["single_threaded"].all() and not m0m.flags["single_threaded"].any()
    rng = np.random.default_rng(11)
    eb = single.role == ROLE_NAMES.index("economic_buyer")
    for month in range(12):
        ud = rng.random(single.n_people)  # the same draws for both portfolios
        if month == 2:
            ud[eb & (single.account % 2 == 0)] = 0.0  # half the accounts lose their EB
        for units in (single, multi):
            step(units, StepInput.idle(n), StepParams(), ROLES, ud)
    ms, mm = metrics(single, 0.3), metrics(multi, 0.3)
    assert mm.strength.mean() > 1.5 * ms.strength.mean()
    assert mm.coverage.mean() > ms.coverage.mean()
    # losing the only contact leaves nothing: relationship gone in the single-threaded unit
    lost = single.account[np.flatnonzero(eb & (single.account % 2 == 0))]
    assert np.all(ms.strength[lost] == 0.0)
    assert np.mean(mm.strength[lost] > 0.0) > 0.9  # unless the others left too (random)
