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
