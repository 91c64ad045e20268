"""Decision-unit metrics on hand-built units, with the expected values worked out by hand."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kamsim.dmu import StepInput, StepParams, from_graphs, metrics, step
from kamsim.spec.models import ROLE_NAMES, RoleArchetype

ROLES = ROLE_NAMES  # economic_buyer, technical_evaluator, user, purchaser, influencer, champion


def person(g: nx.DiGraph, pid: str, role: str, infl: float, att: float, cov: float,
           months: float = 24.0, held: str = "account_manager") -> None:
    g.add_node(pid, role=role, influence=infl, attitude=att, coverage=cov, held_by=held,
               months_in_post=months, seniority=1, price_focus=0.3)


def unit_a() -> nx.DiGraph:
    """4 people: a covered supporter EB pulled up by a mentor champion and down by a purchaser."""
    g = nx.DiGraph()
    person(g, "eb", "economic_buyer", 0.8, 0.5, 1 / 3, held="executive")
    person(g, "ch", "champion", 0.5, 1.0, 2 / 3, months=3)
    person(g, "pu", "purchaser", 0.5, -0.5, 0.0)
    person(g, "us", "user", 0.2, 0.0, 1.0)
    g.add_edge("ch", "eb", kind="influences", weight=0.6, sign=1)
    g.add_edge("pu", "eb", kind="influences", weight=0.4, sign=-1)
    g.add_edge("us", "pu", kind="reports_to", weight=0.0, sign=0)
    return g


def unit_b() -> nx.DiGraph:
    """3 people, only the technical evaluator covered: single-threaded, EB uncovered."""
    g = nx.DiGraph()
    person(g, "eb", "economic_buyer", 0.9, 0.0, 0.0, held="executive")
    person(g, "te", "technical_evaluator", 0.6, 0.5, 1.0, held="specialist")
    person(g, "us", "user", 0.3, -1.0, 0.0, months=2)
    return g


@pytest.fixture
def m():
    # the empty unit in the middle checks the per-account reductions skip empty accounts
    units = from_graphs([unit_a(), nx.DiGraph(), unit_b()], ROLES)
    units.check()
    return metrics(units, threshold=0.3)


def test_coverage(m):
    # A: sum infl = 2.0; sum infl*cov = 0.8/3 + 0.5*2/3 + 0 + 0.2*1 = 0.8 -> 0.4
    # B: 0.6*1 / 1.8 = 1/3; empty: 0
    np.testing.assert_allclose(m.coverage, [0.4, 0.0, 1 / 3])


def test_sentiment_with_propagation(m):
    # A: eb's in-edges: ch (0.6, +1, att 1) and pu (0.4, -1, att -0.5):
    #    mean = (0.6*1 + 0.4*0.5) / 1.0 = 0.8; s_eb = 0.7*0.5 + 0.3*0.8 = 0.59
    #    sentiment = (0.8*0.59 + 0.5*1 + 0.5*-0.5 + 0.2*0) / 2.0 = 0.722 / 2 = 0.361
    # B: (0 + 0.6*0.5 + 0.3*-1) / 1.8 = 0
    np.testing.assert_allclose(m.sentiment, [0.361, 0.0, 0.0], atol=1e-12)


def test_multithreading_dm_champion(m):
    # A: eb (0.8, brief) and ch (0.5, multiple) count; us is covered but influence 0.2 < 0.3
    np.testing.assert_array_equal(m.multithreading, [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(m.dm_covered, [True, False, False])
    np.testing.assert_array_equal(m.champion, [True, False, False])


def test_spof_and_strength(m):
    # A: largest infl*cov is ch's 1/3 of 0.8 -> 0.41667; B: one covered person -> 1; empty -> 1
    np.testing.assert_allclose(m.spof_share, [(1 / 3) / 0.8, 1.0, 1.0])
    # A: eb 0.8/3*0.75 = 0.2, ch 1/3*1, pu 0, us 0.2*0.5 = 0.1; B: 0.6*0.75 = 0.45
    np.testing.assert_allclose(m.strength, [0.2 + 1 / 3 + 0.1, 0.0, 0.45])


def test_flags(m):
    f = m.flags
    np.testing.assert_array_equal(f["no_champion"], [False, True, True])
    np.testing.assert_array_equal(f["eb_uncovered"], [False, True, True])
    # A: purchaser is a non-supporter with influence 0.5; B's enemy user has influence 0.3
    np.testing.assert_array_equal(f["hostile_influencer"], [True, False, False])
    # A: champion (influence 0.5) 3 months in post; B's newcomer user has influence 0.3
    np.testing.assert_array_equal(f["newcomer_in_key_role"], [True, False, False])
    np.testing.assert_array_equal(f["single_threaded"], [False, True, True])
    np.testing.assert_array_equal(m.red_flags, [2, 3, 3])


def test_rules_without_special_roles():
    g = nx.DiGraph()
    person(g, "a", "boss", 0.9, 0.5, 1.0)
    person(g, "b", "fan", 0.4, 1.0, 0.0)
    m = metrics(from_graphs([g], ("boss", "fan")), 0.3)
    assert not m.dm_covered[0] and m.flags["eb_uncovered"][0]
    assert m.champion[0]  # a mentor counts as champion whatever the role


def test_all_empty_portfolio():
    m = metrics(from_graphs([nx.DiGraph(), nx.DiGraph()], ROLES), 0.3)
    np.testing.assert_array_equal(m.spof_share, [1.0, 1.0])
    np.testing.assert_array_equal(m.red_flags, [3, 3])


# ------------------------------------------------------------------ properties

people_st = st.lists(
    st.tuples(st.sampled_from(ROLES), st.floats(0.0, 1.0), st.floats(-1.0, 1.0),
              st.floats(0.0, 1.0)),
    min_size=1, max_size=8)


def graph_of(rows: list[tuple[str, float, float, float]]) -> nx.DiGraph:
    g = nx.DiGraph()
    for i, (role, infl, att, cov) in enumerate(rows):
        person(g, f"p{i}", role, infl, att, cov)
    return g


@settings(max_examples=150, deadline=None)
@given(people_st, st.sampled_from(ROLES), st.floats(0.0, 1.0), st.floats(-1.0, 1.0),
       st.floats(0.0, 1.0))
def test_adding_well_covered_person_never_lowers_coverage(rows, role, infl, att, extra):
    before = metrics(from_graphs([graph_of(rows)], ROLES), 0.3)
    cov = before.coverage[0] + extra * (1.0 - before.coverage[0])  # >= the current score
    after = metrics(from_graphs([graph_of([*rows, (role, infl, att, cov)])], ROLES), 0.3)
    assert after.coverage[0] >= before.coverage[0] - 1e-12


@settings(max_examples=150, deadline=None)
@given(people_st, st.sampled_from(ROLES), st.floats(0.0, 1.0), st.floats(-1.0, 1.0),
       st.floats(1 / 3, 1.0))
def test_adding_covered_person_never_lowers_threads_or_strength(rows, role, infl, att, cov):
    before = metrics(from_graphs([graph_of(rows)], ROLES), 0.3)
    after = metrics(from_graphs([graph_of([*rows, (role, infl, att, cov)])], ROLES), 0.3)
    assert after.multithreading[0] >= before.multithreading[0]
    assert after.strength[0] >= before.strength[0] - 1e-12


@settings(max_examples=100, deadline=None)
@given(people_st, st.floats(0.01, 1.0), st.floats(1 / 3, 1.0))
def test_removing_the_only_covered_person(rows, infl, cov):
    uncovered = [(r, i, a, 0.0) for r, i, a, _ in rows]
    g = graph_of([*uncovered, ("economic_buyer", infl, 0.0, cov)])
    m = metrics(from_graphs([g], ROLES), 0.3)
    assert m.spof_share[0] == 1.0  # exactly one covered person
    g.remove_node(f"p{len(uncovered)}")
    m = metrics(from_graphs([g], ROLES), 0.3)
    assert m.spof_share[0] == 1.0 and m.flags["single_threaded"][0]
    assert m.coverage[0] == 0.0


def test_champion_departure_raises_red_flags():
    g = unit_a()
    units = from_graphs([g], ROLES)
    before = metrics(units, 0.3).red_flags[0]
    arche = {r: RoleArchetype() for r in ROLES}
    u = np.ones(units.n_people)
    u[list(g.nodes).index("ch")] = 0.0  # forced: below any positive leaving probability
    out = step(units, StepInput.idle(1), StepParams(), arche, u)
    assert out.departed.tolist() == [1]
    after = metrics(units, 0.3)
    assert not after.champion[0]
    assert after.red_flags[0] > before


def test_counts_in_an_account_of_thousands_of_people():
    """The per-account counts share one running sum with a field per mark; an account of
    thousands of people needs wider fields than five fit in one integer, so the marks are
    then counted in two sums. Checked against plain per-account counts."""
    rng = np.random.default_rng(4)
    sizes = [3, 5000, 2, 0, 40]
    graphs = []
    for k, size in enumerate(sizes):
        g = nx.DiGraph()
        for i in range(size):
            person(g, f"a{k}-{i}", ROLES[int(rng.integers(len(ROLES)))],
                   float(rng.choice([0.1, 0.3, 0.6, 0.9])),
                   float(rng.choice([-1.0, -0.5, 0.0, 0.5, 1.0])),
                   float(rng.choice([0.0, 1 / 3, 2 / 3, 1.0])), months=float(rng.integers(0, 12)))
        graphs.append(g)
    units = from_graphs(graphs, ROLES)
    m = metrics(units, 0.3)
    eps = 1e-9
    for a in range(len(sizes)):
        s = slice(units.offsets[a], units.offsets[a + 1])
        infl, cov, att = units.influence[s], units.coverage[s], units.attitude[s]
        role, key = units.role[s], units.influence[s] >= 0.5 - eps
        covered = cov >= 1 / 3 - eps
        assert m.multithreading[a] == np.count_nonzero(covered & (infl >= 0.3 - eps))
        assert m.dm_covered[a] == bool(np.any(covered & (role == ROLES.index("economic_buyer"))))
        champ = ((att >= 0.5 - eps) & (role == ROLES.index("champion"))) | (att >= 1 - eps)
        assert m.champion[a] == bool(champ.any())
        assert m.flags["hostile_influencer"][a] == bool(np.any((att <= -0.5 + eps) & key))
        assert m.flags["newcomer_in_key_role"][a] == bool(
            np.any((units.months_in_post[s] < 6) & key))
    assert m.multithreading[1] > 63  # a count wider than 6 bits
