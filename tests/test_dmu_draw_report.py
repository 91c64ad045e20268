"""Drawing a unit and the plain-data reports."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from kamsim.dmu import from_graphs, metrics, to_graph
from kamsim.dmu.draw import draw_unit
from kamsim.dmu.report import describe_unit, portfolio_stats
from kamsim.errors import RunError
from kamsim.spec.models import ROLE_NAMES


def graphs() -> list[nx.DiGraph]:
    g = nx.DiGraph()
    g.add_node("eb", role="economic_buyer", influence=0.9, attitude=-1.0, coverage=1.0,
               held_by="executive", seniority=4, months_in_post=2.0)
    g.add_node("ch", role="champion", influence=0.5, attitude=1.0, coverage=1 / 3)
    g.add_node("pu", role="purchaser", influence=0.5, attitude=0.0, coverage=0.0)
    g.add_edge("ch", "eb", kind="reports_to+influences", weight=0.6, sign=1)
    g.add_edge("pu", "ch", kind="influences", weight=0.3, sign=-1)
    h = nx.DiGraph()
    h.add_node("solo", role="user", influence=0.3, attitude=0.5, coverage=0.0)
    return [g, h]


@pytest.mark.parametrize("suffix,magic", [(".svg", b"<?xml"), (".png", b"\x89PNG")])
def test_draw_unit_writes_file(tmp_path, suffix, magic):
    u = from_graphs(graphs(), ROLE_NAMES)
    out = draw_unit(to_graph(u, 0), tmp_path / f"unit{suffix}", title="ACME")
    assert out.read_bytes().startswith(magic)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp file left
    with pytest.raises(ValueError):
        draw_unit(to_graph(u, 0), tmp_path / "unit.pdf")


def test_draw_unit_refuses_a_missing_folder(tmp_path):
    # it created the folder silently, where `lesson page` refuses: a typo made a new folder
    u = from_graphs(graphs(), ROLE_NAMES)
    with pytest.raises(RunError, match=r"^--out .*unit\.svg: folder .*sub does not exist$"):
        draw_unit(to_graph(u, 0), tmp_path / "sub" / "unit.svg")
    assert not (tmp_path / "sub").exists()


def test_draw_is_deterministic(tmp_path):
    g = to_graph(from_graphs(graphs(), ROLE_NAMES), 0)
    a = draw_unit(g, tmp_path / "a.svg").read_text()
    b = draw_unit(g, tmp_path / "b.svg").read_text()
    assert a == b


def test_describe_unit():
    u = from_graphs(graphs(), ROLE_NAMES)
    m = metrics(u, 0.3)
    d = describe_unit(u, m, 0, "ACME")
    assert d["account_id"] == "ACME" and [p["id"] for p in d["people"]] == ["eb", "ch", "pu"]
    eb = d["people"][0]
    assert eb["attitude_label"] == "enemy" and eb["coverage_label"] == "in_depth"
    assert eb["held_by"] == "executive"
    assert d["people"][1]["coverage_label"] == "brief"
    assert [f["flag"] for f in d["flags"]] == ["hostile_influencer", "newcomer_in_key_role"]
    assert d["metrics"]["multithreading"] == 2.0 and d["metrics"]["dm_covered"] is True


def test_labels_say_almost_when_short_of_a_level():
    """`dmu show` called a champion at +0.46 a "supporter" next to "champion no", and an
    economic buyer at 0.31 "brief" next to "economic buyer not covered": the nearest level.
    A label now claims a level only when the value reaches it (as the metrics count)."""
    from kamsim.dmu import attitude_label, coverage_label

    att = [0.46, 0.5 - 1e-12, 0.5, 0.9, 1.0, 0.2, 0.25, -0.39, -0.5, -0.9, -1.0]
    assert attitude_label(np.array(att)).tolist() == [
        "almost supporter", "supporter", "supporter", "almost mentor", "mentor", "neutral",
        "neutral", "almost non_supporter", "non_supporter", "almost enemy", "enemy"]
    cov = [0.0, 0.12, 0.25, 0.31, 1 / 3, 0.34, 0.63, 2 / 3, 0.97, 1.0]
    assert coverage_label(np.array(cov)).tolist() == [
        "none", "none", "almost brief", "almost brief", "brief", "brief", "almost multiple",
        "multiple", "almost in_depth", "in_depth"]
    assert attitude_label(0.46)[()] == "almost supporter"  # a scalar's label is 0-d


def test_labels_agree_with_the_metrics_on_every_account():
    """For units with values anywhere in their range, what the labels of `dmu show` say is
    what the metrics count: a covered economic buyer, a champion, threads, a hostile person."""
    from kamsim.dmu.metrics import KEY_INFLUENCE

    rng = np.random.default_rng(3)
    u = from_graphs(graphs() * 150, ROLE_NAMES)
    # anywhere, and on or just short of the levels the metrics compare with
    u.attitude[:] = np.where(rng.random(u.n_people) < 0.7, rng.uniform(-1, 1, u.n_people),
                             rng.choice([0.46, 0.5 - 1e-12, 0.5, 1.0, -0.5], u.n_people))
    u.coverage[:] = np.where(rng.random(u.n_people) < 0.8, rng.uniform(0, 1, u.n_people),
                             rng.choice([1 / 3, 0.31, 2 / 3], u.n_people))
    m = metrics(u, 0.3)
    covered = {"brief", "multiple", "almost multiple", "in_depth", "almost in_depth"}
    for a in range(u.n_accounts):
        d = describe_unit(u, m, a, f"A{a}")
        people = d["people"]
        assert d["metrics"]["dm_covered"] == any(
            p["role"] == "economic_buyer" and p["coverage_label"] in covered for p in people)
        assert d["metrics"]["champion"] == any(
            p["attitude_label"] == "mentor" or (p["role"] == "champion" and p["attitude_label"]
                                                in ("supporter", "almost mentor"))
            for p in people)
        assert d["metrics"]["multithreading"] == sum(
            p["coverage_label"] in covered and p["influence"] >= 0.3 for p in people)
        hostile = any(p["influence"] >= KEY_INFLUENCE and p["attitude_label"]
                      in ("non_supporter", "almost enemy", "enemy") for p in people)
        assert hostile == any(f["flag"] == "hostile_influencer" for f in d["flags"])


def test_portfolio_stats():
    u = from_graphs(graphs() * 2, ROLE_NAMES)  # accounts: big, solo, big, solo
    m = metrics(u, 0.3)
    rows = portfolio_stats(m, np.array(["gold", "bronze", "gold", "gold"]))
    assert [r["tier"] for r in rows] == ["gold", "bronze", "all"]
    gold, bronze, total = rows
    assert gold["accounts"] == 3 and bronze["accounts"] == 1 and total["accounts"] == 4
    assert gold["share_dm_covered"] == pytest.approx(2 / 3)
    assert bronze["share_single_threaded"] == 1.0 and bronze["mean_coverage"] == 0.0
    assert total["share_champion"] == pytest.approx(0.5)
    assert gold["mean_red_flags"] == pytest.approx((2 + 2 + 3) / 3)
