"""Build the decision units of a whole portfolio from the stakeholder rules, vectorised.

Each account gets the unit template of its segment (``default`` for unknown segments): the
template's roles in the template's order, each repeated by its count. Per person:

* attitude and coverage are drawn from the role's distributions (one ``rng.choice`` per role);
* influence = role influence + uniform(-0.05, 0.05) noise, clipped to [0, 1];
* months_in_post ~ uniform(0, 60); held_by, seniority, price_focus come from the role;
* person_id = ``f"{account_id}-{role}-{k}"`` with k = 1.. within the role (kept compactly as
  account id + suffix codes, see :class:`~kamsim.dmu.arrays.PersonIds`).

Edges come from ``rules.edges`` between people of the same account: every person of the source
role gets an edge to the FIRST person of the target role (no self-loops). If two rules give the
same ordered pair of the same kind, the earlier rule wins.

Accounts with an explicit map (``rules.accounts`` updated by the ``explicit`` argument, keyed by
account id as text) get that map instead: its people, their ``reports_to`` and its
``influences`` (a negative weight means a conflict edge of weight ``|w|``); template edges are not
added to explicit maps. Explicit maps for ids that are not in ``account_ids`` are ignored.
Explicit maps are few and hand-written, so they are converted one by one (a loop over explicit
accounts only); everything else is array operations over all accounts at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from kamsim.dmu.arrays import (
    ATTITUDE_VALUES,
    COVERAGE_VALUES,
    HOLDERS,
    PersonIds,
    Units,
    attitude_value,
    concat_units,
    coverage_value,
    select_accounts,
    sort_edges,
)
from kamsim.dmu.graph import INFLUENCES, REPORTS, from_graphs
from kamsim.errors import InputError, Location, Problem
from kamsim.spec.models import ATTITUDES, COVERAGE_LEVELS, ExplicitUnit, StakeholderRules

if TYPE_CHECKING:  # networkx is imported where a graph is built (0.1-0.2 s of start-up)
    import networkx as nx

__all__ = ["build_units", "append_units", "explicit_graph", "INFLUENCE_NOISE",
           "MONTHS_IN_POST_MAX"]

#: half-width of the uniform noise around the role's influence (assumption)
INFLUENCE_NOISE = 0.05
#: months_in_post of generated people is uniform on [0, this) (assumption)
MONTHS_IN_POST_MAX = 60.0


def append_units(units: Units, more: Units) -> Units:
    """``units`` followed by ``more`` (new accounts, e.g. referrals); ``more``'s indices shifted."""
    return concat_units(units, more)


def _draw(rng: np.random.Generator, dist: Mapping[Any, float], names: tuple[str, ...],
          values: np.ndarray, default: float, size: int) -> np.ndarray:
    if not dist:
        return np.full(size, default)
    p = np.array([dist.get(n, 0.0) for n in names], dtype=np.float64)
    return rng.choice(values, size=size, p=p / p.sum())


def _template_units(rules: StakeholderRules, segments: np.ndarray, ids: np.ndarray,
                    rng: np.random.Generator) -> Units:
    role_names = tuple(rules.roles)
    rix = {r: i for i, r in enumerate(role_names)}
    arche = [rules.roles[r] for r in role_names]
    tnames = list(rules.units)
    n = segments.shape[0]

    # which template each account uses (a loop over template kinds, not accounts)
    tmpl = np.full(n, tnames.index("default"), np.int64)
    for k, name in enumerate(tnames):
        tmpl[segments == name] = k
    # pattern of each template: role index and rank within the role, by position
    pats = []
    for name in tnames:
        pr = [(rix[r], j) for r, c in rules.units[name].roles.items() for j in range(c)]
        pats.append(pr)
    lengths = np.array([len(p) for p in pats], np.int64)
    width = max(1, int(lengths.max()))
    pat_role = np.zeros((len(tnames), width), np.int8)
    suffixes: list[str] = []
    suffix = np.zeros((len(tnames), width), np.int32)  # index into suffixes
    for k, pr in enumerate(pats):
        for slot, (r, j) in enumerate(pr):
            pat_role[k, slot] = r
            suffix[k, slot] = len(suffixes)
            suffixes.append(f"-{role_names[r]}-{j + 1}")

    sizes = lengths[tmpl]
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    n_people = int(offsets[-1])
    account = np.repeat(np.arange(n, dtype=np.int64), sizes)
    pos = np.arange(n_people, dtype=np.int64) - offsets[account]
    tp = tmpl[account]
    role = pat_role[tp, pos]
    person_id = PersonIds(ids, account, np.array(suffixes, object), suffix[tp, pos])

    attitude = np.empty(n_people)
    coverage = np.empty(n_people)
    for r, a in enumerate(arche):  # a loop over roles
        who = np.flatnonzero(role == r)
        attitude[who] = _draw(rng, a.attitude, ATTITUDES, ATTITUDE_VALUES, 0.0, who.size)
        coverage[who] = _draw(rng, a.coverage, COVERAGE_LEVELS, COVERAGE_VALUES, 0.0, who.size)
    r_infl = np.array([a.influence for a in arche])
    influence = np.clip(
        r_infl[role] + rng.uniform(-INFLUENCE_NOISE, INFLUENCE_NOISE, n_people), 0.0, 1.0)
    months = rng.uniform(0.0, MONTHS_IN_POST_MAX, n_people)

    es, ed, ew, eg, rs, rd = ([] for _ in range(6))
    acc_of = [np.flatnonzero(tmpl == k) for k in range(len(tnames))]
    for e in rules.edges:  # a loop over rule kinds x templates
        for k, pr in enumerate(pats):
            roles_k = np.array([r for r, _ in pr], np.int64)
            src_pos = np.flatnonzero(roles_k == rix[e.source])
            tgt = np.flatnonzero(roles_k == rix[e.target])
            if src_pos.size == 0 or tgt.size == 0 or acc_of[k].size == 0:
                continue
            src_pos = src_pos[src_pos != tgt[0]]
            starts = offsets[acc_of[k]]
            s = (starts[:, None] + src_pos[None, :]).ravel()
            d = np.repeat(starts + tgt[0], src_pos.size)
            if e.kind == "reports_to":
                rs.append(s)
                rd.append(d)
            else:
                es.append(s)
                ed.append(d)
                ew.append(np.full(s.size, e.weight))
                eg.append(np.full(s.size, 1 if e.sign == "support" else -1, np.int8))

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)

    src, dst, w, sg = sort_edges(cat(es, np.int64), cat(ed, np.int64), cat(ew, np.float64),
                                 cat(eg, np.int8))
    r_src, r_dst = sort_edges(cat(rs, np.int64), cat(rd, np.int64), by_dst=False)
    return Units(
        role_names=role_names, offsets=offsets, account=account, role=role,
        influence=influence, attitude=attitude, coverage=coverage,
        held_by=np.array([HOLDERS.index(a.held_by) for a in arche], np.int8)[role],
        seniority=np.array([a.seniority for a in arche], np.int8)[role],
        months_in_post=months,
        price_focus=np.array([a.price_focus for a in arche], np.float64)[role],
        person_id=person_id, edge_src=src, edge_dst=dst, edge_weight=w, edge_sign=sg,
        reports_src=r_src, reports_dst=r_dst,
    )


def explicit_graph(rules: StakeholderRules, account_id: str, unit: ExplicitUnit) -> nx.DiGraph:
    """The DiGraph of one explicit map, with the role defaults filled in.

    Raises InputError (located at ``accounts.<id>...``) for an unknown role, a repeated person id,
    or a ``reports_to``/influence end that names nobody in the unit; all problems at once.
    """
    import networkx as nx

    problems: list[Problem] = []
    where = f"accounts.{account_id}"
    g = nx.DiGraph()
    for i, p in enumerate(unit.people):
        a = rules.roles.get(p.role)
        if a is None:
            problems.append(Problem(Location(f"{where}.people[{i}].role"),
                                    f"unknown role {p.role!r}",
                                    f"one of: {', '.join(rules.roles)}"))
            continue
        if p.id in g:
            problems.append(Problem(Location(f"{where}.people[{i}].id"),
                                    f"person id {p.id!r} repeats", "unique ids within a unit"))
            continue
        g.add_node(p.id, role=p.role,
                   influence=float(a.influence if p.influence is None else p.influence),
                   attitude=attitude_value(p.attitude), coverage=coverage_value(p.coverage),
                   held_by=p.held_by or a.held_by, seniority=a.seniority,
                   months_in_post=float(p.months_in_post), price_focus=a.price_focus)
    for i, p in enumerate(unit.people):
        if p.reports_to is None or p.id not in g:
            continue
        if p.reports_to not in g:
            problems.append(Problem(Location(f"{where}.people[{i}].reports_to"),
                                    f"reports_to {p.reports_to!r} is not in the unit",
                                    "the id of a person of the same account"))
            continue
        g.add_edge(p.id, p.reports_to, kind=REPORTS, weight=0.0, sign=0)
    for i, (s, d, w) in enumerate(unit.influences):
        if s not in g or d not in g:
            missing = s if s not in g else d
            problems.append(Problem(Location(f"{where}.influences[{i}]"),
                                    f"{missing!r} is not in the unit",
                                    "ids of people of the same account"))
            continue
        kind = f"{REPORTS}+{INFLUENCES}" if g.has_edge(s, d) else INFLUENCES
        g.add_edge(s, d, kind=kind, weight=abs(float(w)), sign=-1 if w < 0 else 1)
    if problems:
        raise InputError(problems)
    return g


def build_units(rules: StakeholderRules, segments: np.ndarray, account_ids: np.ndarray,
                rng: np.random.Generator, *,
                explicit: Mapping[str, ExplicitUnit] | None = None) -> Units:
    """The decision units of all accounts; account i has ``segments[i]`` and ``account_ids[i]``.

    Deterministic given the state of ``rng`` (explicit maps draw nothing). Explicit maps are
    ``rules.accounts`` updated with ``explicit``; their keys are compared with ``str(id)``.
    """
    segments = np.asarray(segments).astype(str)
    ids = np.asarray(account_ids).astype(str)
    if segments.shape != ids.shape or segments.ndim != 1:
        raise ValueError(f"segments {segments.shape} and account_ids {ids.shape} must be 1-d "
                         "and of equal length")
    maps: dict[str, ExplicitUnit] = dict(rules.accounts)
    maps.update(explicit or {})
    is_explicit = np.isin(ids, np.array(list(maps), dtype=str)) if maps else \
        np.zeros(ids.shape, bool)
    if not is_explicit.any():
        return _template_units(rules, segments, ids, rng)
    idx_t = np.flatnonzero(~is_explicit)
    idx_e = np.flatnonzero(is_explicit)
    templ = _template_units(rules, segments[idx_t], ids[idx_t], rng)
    problems: list[Problem] = []
    graphs = []
    for e in idx_e:  # explicit accounts only (few, hand-written)
        try:
            graphs.append(explicit_graph(rules, str(ids[e]), maps[str(ids[e])]))
        except InputError as err:
            problems += err.problems
    if problems:
        raise InputError(problems)
    both = concat_units(templ, from_graphs(graphs, tuple(rules.roles)))
    # put the accounts back in the caller's order
    return select_accounts(both, np.argsort(np.concatenate((idx_t, idx_e)), kind="stable"))
