"""Building units from the shipped rules, graph round trips, appending, and the CRM import."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from kamsim.dmu import (
    ATTITUDE_VALUES,
    COVERAGE_VALUES,
    append_units,
    build_units,
    from_graphs,
    read_contacts_csv,
    select_accounts,
    to_graph,
)
from kamsim.errors import InputError
from kamsim.spec.models import ATTITUDES, COVERAGE_LEVELS, ExplicitUnit, StakeholderRules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rules() -> StakeholderRules:
    try:
        from kamsim.spec.load import load_rule_file

        r, _ = load_rule_file(ROOT / "rules" / "stakeholders.yaml", "stakeholders")
    except ImportError:  # the loader is being written by someone else
        from kamsim.spec.yamlpos import load_yaml

        r = StakeholderRules.model_validate(load_yaml(ROOT / "rules/stakeholders.yaml").data)
    return r


def portfolio(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    segs = rng.choice(np.array(["enterprise", "midmarket", "small", "public_sector"]), n)
    return segs, np.array([f"A{i}" for i in range(n)])


@pytest.fixture(scope="module")
def built(rules):
    segs, ids = portfolio(1000)
    return segs, ids, build_units(rules, segs, ids, np.random.default_rng(1))


def test_sizes_and_roles_follow_templates(rules, built):
    segs, _, u = built
    u.check()
    assert u.n_accounts == 1000
    for seg in ("enterprise", "midmarket", "small", "public_sector"):
        tmpl = rules.units.get(seg, rules.units["default"]).roles
        accs = np.flatnonzero(segs == seg)
        assert accs.size > 100
        np.testing.assert_array_equal(u.sizes[accs], sum(tmpl.values()))
        a = accs[0]
        roles = [u.role_names[r] for r in u.role[u.offsets[a]:u.offsets[a + 1]]]
        assert roles == [r for r, c in tmpl.items() for _ in range(c)]
    # enterprise has 9 people, midmarket/default 6, small 3
    assert sorted({int(s) for s in u.sizes}) == [3, 6, 9]


def test_deterministic(rules):
    segs, ids = portfolio(200)
    a = build_units(rules, segs, ids, np.random.default_rng(5))
    b = build_units(rules, segs, ids, np.random.default_rng(5))
    c = build_units(rules, segs, ids, np.random.default_rng(6))
    for f in ("attitude", "coverage", "influence", "months_in_post", "edge_src", "edge_dst",
              "reports_src", "person_id"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.attitude, c.attitude)


def test_frequencies_near_distributions(rules, built):
    _, _, u = built
    for r, name in enumerate(u.role_names):
        who = u.role == r
        arche = rules.roles[name]
        for dist, values, labels, got in (
                (arche.attitude, ATTITUDE_VALUES, ATTITUDES, u.attitude[who]),
                (arche.coverage, COVERAGE_VALUES, COVERAGE_LEVELS, u.coverage[who])):
            for label, v in zip(labels, values, strict=True):
                share = np.mean(np.isclose(got, v))
                assert abs(share - dist.get(label, 0.0)) < 0.07, (name, label, share)
        infl = u.influence[who]
        assert np.all(np.abs(infl - arche.influence) <= 0.05 + 1e-12)
    assert 0 <= u.months_in_post.min() and u.months_in_post.max() < 60


def test_edges_from_rules(built):
    segs, _, u = built
    a = int(np.flatnonzero(segs == "enterprise")[0])
    g = to_graph(u, a)
    ids = {d["role"] + str(i): n for i, (n, d) in enumerate(g.nodes(data=True))}
    assert len(ids) == 9
    pre = f"A{a}-"
    # both users report to and support the FIRST technical evaluator only
    for k in (1, 2, 3):
        e = g.edges[f"{pre}user-{k}", f"{pre}technical_evaluator-1"]
        assert e["kind"] == "reports_to+influences" and e["weight"] == 0.3 and e["sign"] == 1
        assert not g.has_edge(f"{pre}user-{k}", f"{pre}technical_evaluator-2")
    # both evaluators report to the economic buyer
    for k in (1, 2):
        assert g.edges[f"{pre}technical_evaluator-{k}", f"{pre}economic_buyer-1"]["kind"] == \
            "reports_to+influences"
    assert g.edges[f"{pre}purchaser-1", f"{pre}technical_evaluator-1"]["sign"] == -1
    assert g.edges[f"{pre}champion-1", f"{pre}economic_buyer-1"]["weight"] == 0.6
    assert g.edges[f"{pre}purchaser-1", f"{pre}economic_buyer-1"]["kind"] == "reports_to"
    # small: eb, user, purchaser; no evaluator, so users report to nobody
    s = int(np.flatnonzero(segs == "small")[0])
    gs = to_graph(u, s)
    assert gs.number_of_edges() == 1  # purchaser -> economic buyer (reports_to)


def test_explicit_maps_override(rules):
    segs, ids = portfolio(50)
    unit = ExplicitUnit.model_validate({
        "people": [
            {"id": "ceo", "role": "economic_buyer", "attitude": "mentor",
             "coverage": "in_depth", "months_in_post": 3},
            {"id": "cto", "role": "technical_evaluator", "influence": 0.8,
             "reports_to": "ceo", "held_by": "executive"},
        ],
        "influences": [["cto", "ceo", -0.7]],
    })
    u = build_units(rules, segs, ids, np.random.default_rng(1),
                    explicit={"A3": unit, "NOT-IN-PORTFOLIO": unit})
    u.check()
    g = to_graph(u, 3)
    assert list(g.nodes) == ["ceo", "cto"]
    assert g.nodes["ceo"]["attitude"] == 1.0 and g.nodes["ceo"]["coverage"] == 1.0
    assert g.nodes["ceo"]["influence"] == rules.roles["economic_buyer"].influence
    assert g.nodes["cto"]["influence"] == 0.8 and g.nodes["cto"]["held_by"] == "executive"
    assert g.edges["cto", "ceo"] == {"kind": "reports_to+influences", "weight": 0.7, "sign": -1}
    # the neighbours keep their template units, in the caller's order
    assert to_graph(u, 2).number_of_nodes() == sum(
        rules.units.get(str(segs[2]), rules.units["default"]).roles.values())
    assert str(u.person_id[u.offsets[4]]).startswith("A4-")
    bad = ExplicitUnit.model_validate({"people": [{"id": "x", "role": "ceo_role",
                                                   "reports_to": "nobody"}]})
    with pytest.raises(InputError) as err:
        build_units(rules, segs, ids, np.random.default_rng(1), explicit={"A1": bad})
    assert "unknown role 'ceo_role'" in str(err.value)


def test_round_trip_graph_arrays_graph(built):
    _, _, u = built
    graphs = [to_graph(u, a) for a in range(25)]
    back = from_graphs(graphs, u.role_names)
    back.check()
    for a in range(25):
        assert nx.utils.graphs_equal(to_graph(back, a), graphs[a])
        assert dict(to_graph(back, a).nodes(data=True)) == dict(graphs[a].nodes(data=True))
    same = select_accounts(u, np.arange(25))
    for f in ("offsets", "role", "influence", "attitude", "coverage", "held_by", "person_id",
              "edge_src", "edge_dst", "edge_weight", "edge_sign", "reports_src", "reports_dst"):
        np.testing.assert_array_equal(getattr(back, f), getattr(same, f), err_msg=f)


def test_append_units(rules):
    segs, ids = portfolio(30)
    first = build_units(rules, segs[:20], ids[:20], np.random.default_rng(1))
    more = build_units(rules, segs[20:], ids[20:], np.random.default_rng(2))
    both = append_units(first, more)
    both.check()
    assert both.n_accounts == 30 and both.n_people == first.n_people + more.n_people
    for k in range(10):
        g, h = to_graph(both, 20 + k), to_graph(more, k)
        assert list(g.nodes(data=True)) == list(h.nodes(data=True))
        assert sorted(g.edges(data=True)) == sorted(h.edges(data=True))
    assert np.all(np.diff(both.edge_dst) >= 0)  # still CSR by target


GOOD = """account_id,person,role,reports_to,attitude,coverage,influence,held_by,notes
ACME,anna,economic_buyer,,Supporter,brief,0.9,executive,the boss
ACME,bob,technical_evaluator,anna,non-supporter,In Depth,,,
ACME,cara,user,bob,,,,,
Globex,dan,purchaser,,enemy,multiple,0.4,,
"""

BAD = """account_id,person,role,reports_to,attitude
ACME,anna,economic_buyr,,supporter
ACME,bob,user,anna,frendly
ACME,cara,user,zed,neutral
"""


def test_read_contacts_csv_good(tmp_path, rules):
    p = tmp_path / "contacts.csv"
    p.write_text(GOOD)
    maps = read_contacts_csv(p, list(rules.roles))
    assert list(maps) == ["ACME", "Globex"]
    acme = maps["ACME"].people
    assert [x.id for x in acme] == ["anna", "bob", "cara"]
    assert acme[0].attitude == "supporter" and acme[0].held_by == "executive"
    assert acme[1].attitude == "non_supporter" and acme[1].coverage == "in_depth"
    assert acme[1].reports_to == "anna" and acme[1].influence is None
    assert acme[2].attitude == "neutral" and acme[2].coverage == "none"
    u = build_units(rules, np.array(["small", "small"]), np.array(["ACME", "Other"]),
                    np.random.default_rng(0), explicit=maps)
    g = to_graph(u, 0)
    assert g.edges["cara", "bob"]["kind"] == "reports_to"


def test_read_contacts_csv_bad_reports_all_at_once(tmp_path, rules):
    p = tmp_path / "bad.csv"
    p.write_text(BAD)
    with pytest.raises(InputError) as err:
        read_contacts_csv(p, list(rules.roles), display="crm/bad.csv")
    text = [pr.format() for pr in err.value.problems]
    assert len(text) == 4, text
    # missing column `coverage` (header line), unknown role at row 2 col 3, bad attitude at
    # row 3 col 5, dangling reports_to at row 4 col 4
    assert text[0].startswith("crm/bad.csv:1:1: missing column 'coverage'")
    assert text[1].startswith("crm/bad.csv:2:3: unknown role 'economic_buyr'")
    assert "did you mean 'economic_buyer'" in text[1]
    assert text[2].startswith("crm/bad.csv:3:5: unknown attitude 'frendly'")
    assert "did you mean 'neutral'" in text[2] or "one of" in text[2]
    assert text[3].startswith("crm/bad.csv:4:4: reports_to 'zed'")


def test_read_contacts_csv_bad_numbers_and_lengths(tmp_path, rules):
    p = tmp_path / "bad2.csv"
    p.write_text("account_id,person,role,reports_to,attitude,coverage,influence\n"
                 "A,x,user,,neutral,brief,1.5\n"
                 "A,y,user,,neutral,brief\n"
                 "A,x,user,,neutral,lots,0.2\n")
    with pytest.raises(InputError) as err:
        read_contacts_csv(p, list(rules.roles))
    locs = [(pr.loc.line, pr.loc.col) for pr in err.value.problems]
    assert (2, 7) in locs and (3, 7) in locs and (4, 6) in locs and (4, 2) in locs
    assert all(pr.loc.path == str(p) for pr in err.value.problems)


def test_person_ids_compact_and_as_documented(rules):
    """Ids are "<account>-<role>-<k>" (k = 1.. within the role), kept as codes, and survive
    appending and selecting accounts unchanged."""
    segs, ids = portfolio(12)
    u = build_units(rules, segs, ids, np.random.default_rng(3))
    want = []
    for a in range(u.n_accounts):
        seen: dict[str, int] = {}
        for p in range(u.offsets[a], u.offsets[a + 1]):
            r = u.role_names[int(u.role[p])]
            seen[r] = seen.get(r, 0) + 1
            want.append(f"{ids[a]}-{r}-{seen[r]}")
    assert list(u.person_id) == want
    assert all(type(x) is str for x in u.person_id)
    assert u.person_id[np.int64(5)] == want[5] and u.person_id.shape == (len(want),)
    assert u.person_id.pcode.itemsize + u.person_id.scode.itemsize == 8  # no str per person
    sel = select_accounts(u, np.array([7, 2]))
    lo, hi = u.offsets[7], u.offsets[8]
    assert list(sel.person_id)[: hi - lo] == want[lo:hi]
    both = append_units(sel, from_graphs([to_graph(u, 0)], u.role_names))
    both.check()
    assert list(both.person_id)[sel.n_people:] == want[: u.offsets[1]]


def test_explicit_map_problems_name_what_is_wrong(rules):
    """A map given in Python: every problem at once, each saying which thing is wrong (the
    role of 'eng' is unknown; 'eng' itself is in the unit, so its edges are not 'nobody')."""
    segs, ids = portfolio(5)
    bad = ExplicitUnit.model_validate({
        "people": [{"id": "boss", "role": "economic_buyer"},
                   {"id": "eng", "role": "enginer", "reports_to": "bos"},
                   {"id": "boss", "role": "user"}],
        "influences": [["eng", "boss", 0.5], ["ghost", "boss", -0.3], ["eng", "boss", 1.5]]})
    with pytest.raises(InputError) as err:
        build_units(rules, segs, ids, np.random.default_rng(1), explicit={"A1": bad})
    lines = sorted(f"{p.loc.path}: {p.message}" for p in err.value.problems)
    assert lines == sorted([
        "accounts.A1.people[1].role: unknown role 'enginer'",
        "accounts.A1.people[2].id: person id 'boss' repeats (first at entry 0)",
        "accounts.A1.people[1].reports_to: reports_to 'bos' is no other person of account 'A1'",
        "accounts.A1.influences[1][0]: the influence's source 'ghost' is no other person of "
        "account 'A1'",
        "accounts.A1.influences[2]: influence eng -> boss repeats (first at entry 0)",
        "accounts.A1.influences[2][2]: influence weight 1.5 is outside -1..1"])
