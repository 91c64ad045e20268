"""One account's decision unit as a networkx DiGraph, and back to the flat arrays.

The graph is the form for building, checking, analysing and drawing one unit; the simulation
works on :class:`~kamsim.dmu.arrays.Units`.

Nodes are person ids with attributes ``role`` (name), ``influence``, ``attitude`` (float) and
``attitude_label``, ``coverage`` (float) and ``coverage_label``, ``held_by`` (holder name),
``seniority`` (int), ``months_in_post`` (float), ``price_focus`` (float).

A DiGraph holds one edge per ordered pair, and a person may both report to and influence the
same boss (technical evaluator -> economic buyer in the shipped rules). So an edge has
``kind`` = ``"reports_to"``, ``"influences"`` or ``"reports_to+influences"``, plus ``weight``
(influence weight, 0.0 on a pure reports_to edge) and ``sign`` (+1 support, -1 conflict, 0 on a
pure reports_to edge).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from kamsim.dmu.arrays import (
    HOLDERS,
    PersonIds,
    Units,
    attitude_label,
    attitude_value,
    coverage_label,
    coverage_value,
    sort_edges,
)

if TYPE_CHECKING:  # networkx is imported where a graph is built (0.1-0.2 s of start-up)
    import networkx as nx

__all__ = ["to_graph", "from_graphs", "REPORTS", "INFLUENCES"]

REPORTS = "reports_to"
INFLUENCES = "influences"

# defaults for node attributes a hand-made graph may leave out (StakeholderPerson/RoleArchetype)
_DEFAULTS: dict[str, Any] = {
    "influence": 0.5, "held_by": "account_manager", "seniority": 1, "months_in_post": 24.0,
    "price_focus": 0.3,
}


def to_graph(units: Units, account: int) -> nx.DiGraph:
    """The decision unit of account index ``account`` as a DiGraph (graph attr ``account``)."""
    import networkx as nx

    lo, hi = int(units.offsets[account]), int(units.offsets[account + 1])
    g = nx.DiGraph(account=int(account))
    people = np.arange(lo, hi)
    att_l = attitude_label(units.attitude[lo:hi])
    cov_l = coverage_label(units.coverage[lo:hi])
    for k, p in enumerate(people):
        g.add_node(
            str(units.person_id[p]),
            role=units.role_names[int(units.role[p])],
            influence=float(units.influence[p]),
            attitude=float(units.attitude[p]), attitude_label=str(att_l[k]),
            coverage=float(units.coverage[p]), coverage_label=str(cov_l[k]),
            held_by=HOLDERS[int(units.held_by[p])],
            seniority=int(units.seniority[p]),
            months_in_post=float(units.months_in_post[p]),
            price_focus=float(units.price_focus[p]),
        )
    pid = units.person_id
    sel = (units.reports_src >= lo) & (units.reports_src < hi)
    for s, d in zip(units.reports_src[sel], units.reports_dst[sel], strict=True):
        g.add_edge(str(pid[s]), str(pid[d]), kind=REPORTS, weight=0.0, sign=0)
    sel = (units.edge_dst >= lo) & (units.edge_dst < hi)
    for s, d, w, sg in zip(units.edge_src[sel], units.edge_dst[sel], units.edge_weight[sel],
                           units.edge_sign[sel], strict=True):
        a, b = str(pid[s]), str(pid[d])
        kind = f"{REPORTS}+{INFLUENCES}" if g.has_edge(a, b) else INFLUENCES
        g.add_edge(a, b, kind=kind, weight=float(w), sign=int(sg))
    return g


def _sign(value: Any) -> int:
    if value in ("conflict", -1, -1.0):
        return -1
    if value in ("support", 1, 1.0, None, 0):
        return 1
    raise ValueError(f"edge sign {value!r} is not support/conflict or +1/-1")


def _level(attrs: dict[str, Any], name: str, to_value: Any, node: Any) -> float:
    if attrs.get(name) is not None:
        return float(attrs[name])
    label = attrs.get(f"{name}_label")
    if label is None:
        return 0.0
    try:
        return float(to_value(label))
    except KeyError:
        raise ValueError(f"node {node!r}: unknown {name} label {label!r}") from None


def from_graphs(graphs: Sequence[nx.DiGraph], role_names: Sequence[str]) -> Units:
    """Flat Units of the given graphs, account i = graphs[i], people in node order.

    Node attributes missing from a graph take the defaults of a StakeholderPerson/RoleArchetype
    (attitude neutral, coverage none, influence 0.5, held_by account_manager, ...); ``role`` is
    required. An edge's ``kind`` says whether it reports, influences, or both (``a+b``).
    Raises ValueError on an unknown role, holder, label or sign.
    """
    role_names = tuple(role_names)
    rix = {r: i for i, r in enumerate(role_names)}
    cols: dict[str, list[Any]] = {k: [] for k in (
        "role", "influence", "attitude", "coverage", "held_by", "seniority", "months_in_post",
        "price_focus", "person_id")}
    sizes: list[int] = []
    es: list[int] = []
    ed: list[int] = []
    ew: list[float] = []
    eg: list[int] = []
    rs: list[int] = []
    rd: list[int] = []
    base = 0
    for g in graphs:
        index = {node: base + i for i, node in enumerate(g.nodes)}
        for node, attrs in g.nodes(data=True):
            role = attrs.get("role")
            if role not in rix:
                raise ValueError(f"node {node!r}: unknown role {role!r} "
                                 f"(expected one of: {', '.join(role_names)})")
            held = attrs.get("held_by") or _DEFAULTS["held_by"]
            if held not in HOLDERS:
                raise ValueError(f"node {node!r}: unknown held_by {held!r}")
            cols["role"].append(rix[role])
            cols["influence"].append(float(attrs.get("influence", _DEFAULTS["influence"])))
            cols["attitude"].append(_level(attrs, "attitude", attitude_value, node))
            cols["coverage"].append(_level(attrs, "coverage", coverage_value, node))
            cols["held_by"].append(HOLDERS.index(held))
            cols["seniority"].append(int(attrs.get("seniority", _DEFAULTS["seniority"])))
            cols["months_in_post"].append(
                float(attrs.get("months_in_post", _DEFAULTS["months_in_post"])))
            cols["price_focus"].append(float(attrs.get("price_focus", _DEFAULTS["price_focus"])))
            cols["person_id"].append(str(node))
        for a, b, attrs in g.edges(data=True):
            kinds = str(attrs.get("kind", INFLUENCES)).split("+")
            if not set(kinds) <= {REPORTS, INFLUENCES}:
                raise ValueError(f"edge {a!r}->{b!r}: unknown kind {attrs.get('kind')!r}")
            if REPORTS in kinds:
                rs.append(index[a])
                rd.append(index[b])
            if INFLUENCES in kinds:
                es.append(index[a])
                ed.append(index[b])
                ew.append(float(attrs.get("weight", 0.5)))
                eg.append(_sign(attrs.get("sign")))
        sizes.append(g.number_of_nodes())
        base += g.number_of_nodes()
    offsets = np.concatenate(([0], np.cumsum(sizes, dtype=np.int64))).astype(np.int64)
    src, dst, w, sg = sort_edges(np.array(es, np.int64), np.array(ed, np.int64),
                                 np.array(ew, np.float64), np.array(eg, np.int8))
    r_src, r_dst = sort_edges(np.array(rs, np.int64), np.array(rd, np.int64), by_dst=False)
    pid = PersonIds.of(cols["person_id"])
    return Units(
        role_names=role_names, offsets=offsets,
        account=np.repeat(np.arange(len(sizes), dtype=np.int64), sizes),
        role=np.array(cols["role"], np.int8),
        influence=np.array(cols["influence"], np.float64),
        attitude=np.array(cols["attitude"], np.float64),
        coverage=np.array(cols["coverage"], np.float64),
        held_by=np.array(cols["held_by"], np.int8),
        seniority=np.array(cols["seniority"], np.int8),
        months_in_post=np.array(cols["months_in_post"], np.float64),
        price_focus=np.array(cols["price_focus"], np.float64),
        person_id=pid, edge_src=src, edge_dst=dst, edge_weight=w, edge_sign=sg,
        reports_src=r_src, reports_dst=r_dst,
    )
