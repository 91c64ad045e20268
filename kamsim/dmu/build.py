"""Build the decision units of a whole portfolio from the stakeholder rules, vectorised.

Each account gets the unit template of its segment (``default`` for unknown segments): the
template's roles in the template's order, each repeated by its count. Per person:

* attitude and coverage are drawn from the role's distributions (role by role, the numbers
  ``rng.choice`` would draw);
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
added to explicit maps. Explicit maps for ids that are not in ``account_ids`` are ignored here
(loading a scenario refuses a stakeholders file's maps for accounts its portfolio lacks).
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
)
from kamsim.dmu.graph import INFLUENCES, REPORTS, from_graphs
from kamsim.errors import InputError, Location, Problem
from kamsim.spec.models import (
    ATTITUDES,
    COVERAGE_LEVELS,
    ExplicitUnit,
    StakeholderRules,
    unit_checks,
)

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


def _draw_into(out: np.ndarray, who: np.ndarray, rng: np.random.Generator,
               dist: Mapping[Any, float], names: tuple[str, ...], values: np.ndarray,
               default: float, scratch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """``out[who]`` = ``who.size`` draws of ``values`` with the probabilities ``dist`` gives
    their ``names`` (``default`` without a dist), through reused buffers (``scratch``: float64,
    int8 and bool, at least ``who.size`` long each).

    It draws what ``rng.choice(values, size, p=p / p.sum())`` draws and picks the same
    values: numpy's choice takes ``cdf = p.cumsum(); cdf /= cdf[-1]``, ``u =
    rng.random(size)`` and the index ``cdf.searchsorted(u, side="right")``, i.e. the number
    of cdf entries <= u (the cdf rises), counted here one entry at a time into an int8
    buffer. Building 8.5M people called choice 12 times, and its three fresh arrays per
    draw were the cost (tests/test_prepare_identity.py checks this against choice)."""
    m = who.size
    if not dist:
        out[who] = default
        return
    p = np.array([dist.get(n, 0.0) for n in names], dtype=np.float64)
    p = p / p.sum()
    if not (np.isfinite(p).all() and (p >= 0).all()) or values.shape != p.shape:
        out[who] = rng.choice(values, size=m, p=p)  # let numpy say what is wrong
        return
    cdf = p.cumsum()
    cdf /= cdf[-1]
    u, index, above = scratch[0][:m], scratch[1][:m], scratch[2][:m]
    rng.random(out=u)
    index[...] = 0
    for c in cdf:  # a loop over the (few) levels
        np.greater_equal(u, c, out=above)
        index += above
    np.take(values, index, out=u)
    out[who] = u


def _template_index(rules: StakeholderRules, segments: np.ndarray) -> np.ndarray:
    """Index (into ``list(rules.units)``) of the template of each account: its segment's, else
    ``default``. A loop over templates, not accounts. Object arrays (a generated or imported
    portfolio) are compared as they are: converting 1.5M strs to a fixed-width str array first
    cost more than the comparisons."""
    tnames = list(rules.units)
    tmpl = np.full(segments.shape[0], tnames.index("default"), np.intp)
    for k, name in enumerate(tnames):
        tmpl[segments == name] = k
    return tmpl


def _local_edges(pats: list[list[tuple[int, int]]], rules: StakeholderRules,
                 rix: Mapping[str, int], reports: bool) -> list[list[tuple[int, int, int]]]:
    """Per template, the edges of one of its accounts as (source position, target position,
    rule number), sorted as :func:`~kamsim.dmu.arrays.sort_edges` sorts them (by (target,
    source) for influence edges, by (source, target) for reports_to) with the first rule of
    equal pairs kept. Every source-role person gets an edge to the FIRST target-role person."""
    out = []
    for pr in pats:
        roles_k = [r for r, _ in pr]
        found: dict[tuple[int, int], int] = {}
        for i, e in enumerate(rules.edges):  # rule order: earlier rules win
            if (e.kind == "reports_to") != reports or rix[e.target] not in roles_k:
                continue
            tgt = roles_k.index(rix[e.target])
            for pos, r in enumerate(roles_k):
                if r == rix[e.source] and pos != tgt:
                    found.setdefault((tgt, pos) if not reports else (pos, tgt), i)
        out.append([(b, a, i) if not reports else (a, b, i)
                    for (a, b), i in sorted(found.items())])
    return out


def _entries(counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """For accounts with ``counts[a]`` items each (people or edges, in template order): the
    index of every item into a table of per-template patterns, where account ``a``'s items
    are entries ``starts[a], starts[a] + 1, ...`` (int32).

    A running sum of +1 steps with a jump at each account's first item: one int32 array,
    where arange + a per-item gather needed three int64 ones (fresh memory is the dearest
    part of building units for 1M accounts)."""
    step = np.ones(int(counts.sum()), np.int32)
    filled = np.flatnonzero(counts)
    if filled.size:
        first = (np.cumsum(counts) - counts)[filled]
        jump = starts[filled]  # a copy (fancy indexing)
        jump[1:] -= starts[filled[:-1]] + counts[filled[:-1]] - 1  # from the previous last
        step[first] = jump
        np.cumsum(step, dtype=np.int32, out=step)
    return step


def _template_units(rules: StakeholderRules, segments: np.ndarray, ids: np.ndarray,
                    rng: np.random.Generator) -> Units:
    role_names = tuple(rules.roles)
    rix = {r: i for i, r in enumerate(role_names)}
    arche = [rules.roles[r] for r in role_names]
    tnames = list(rules.units)

    # which template each account uses (a loop over template kinds, not accounts)
    tmpl = _template_index(rules, segments)
    # pattern of each template: role index and rank within the role, by position; the
    # patterns side by side form one table (person k of an account of template t is entry
    # pat_start[t] + k), and the table's entries are also the person-id suffixes
    pats = [[(rix[r], j) for r, c in rules.units[name].roles.items() for j in range(c)]
            for name in tnames]
    lengths = np.array([len(p) for p in pats], np.int64)
    pat_start = np.cumsum(lengths) - lengths
    table_role = np.array([r for pr in pats for r, _ in pr], np.int8)
    suffixes = np.array([f"-{role_names[r]}-{j + 1}" for pr in pats for r, j in pr], object)

    sizes = lengths[tmpl]
    offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    n_people = int(offsets[-1])
    # people are built from the table, not by sorting: each account's people in template order
    account = np.repeat(np.arange(tmpl.shape[0], dtype=np.int64), sizes)
    entry = _entries(sizes, pat_start[tmpl])
    role = table_role[entry]
    person_id = PersonIds(ids, account, suffixes, entry)

    attitude = np.empty(n_people)
    coverage = np.empty(n_people)
    most = int(np.bincount(role, minlength=1).max()) if n_people else 0
    scratch = (np.empty(most), np.empty(most, np.int8), np.empty(most, bool))
    for r, a in enumerate(arche):  # a loop over roles
        who = np.flatnonzero(role == r)
        _draw_into(attitude, who, rng, a.attitude, ATTITUDES, ATTITUDE_VALUES, 0.0, scratch)
        _draw_into(coverage, who, rng, a.coverage, COVERAGE_LEVELS, COVERAGE_VALUES, 0.0,
                   scratch)
    del scratch
    r_infl = np.array([a.influence for a in arche])
    influence = r_infl[role]
    influence += rng.uniform(-INFLUENCE_NOISE, INFLUENCE_NOISE, n_people)
    np.clip(influence, 0.0, 1.0, out=influence)
    months = rng.uniform(0.0, MONTHS_IN_POST_MAX, n_people)

    # edges: an account's edges depend only on its template, so each template's edges are
    # listed once, already in the sorted and deduplicated order, and repeated per account
    # with the account's first person added (accounts' people are consecutive, so this is
    # the order sort_edges would give, without sorting millions of edges)
    def edges(reports: bool) -> tuple[np.ndarray, ...]:
        loc = _local_edges(pats, rules, rix, reports)
        count = np.array([len(x) for x in loc], np.int64)
        flat = [x for per in loc for x in per]
        t_src = np.array([s for s, _, _ in flat], np.int64)
        t_dst = np.array([d for _, d, _ in flat], np.int64)
        t_rule = np.array([i for _, _, i in flat], np.intp)
        entry = _entries(count[tmpl], (np.cumsum(count) - count)[tmpl])
        base = np.repeat(offsets[:-1], count[tmpl])  # first person of each edge's account
        src = t_src[entry]
        src += base
        dst = t_dst[entry]
        dst += base
        return src, dst, entry, t_rule  # entry: of each edge, into the table of rules t_rule

    src, dst, entry, t_rule = edges(False)
    rule_weight = np.array([e.weight for e in rules.edges], np.float64)
    rule_sign = np.array([1 if e.sign == "support" else -1 for e in rules.edges], np.int8)
    weight, sign = rule_weight[t_rule][entry], rule_sign[t_rule][entry]
    del entry
    r_src, r_dst, _, _ = edges(True)
    return Units(
        role_names=role_names, offsets=offsets, account=account, role=role,
        influence=influence, attitude=attitude, coverage=coverage,
        held_by=np.array([HOLDERS.index(a.held_by) for a in arche], np.int8)[role],
        seniority=np.array([a.seniority for a in arche], np.int8)[role],
        months_in_post=months,
        price_focus=np.array([a.price_focus for a in arche], np.float64)[role],
        person_id=person_id, edge_src=src, edge_dst=dst, edge_weight=weight,
        edge_sign=sign, reports_src=r_src, reports_dst=r_dst,
    )


def explicit_graph(rules: StakeholderRules, account_id: str, unit: ExplicitUnit) -> nx.DiGraph:
    """The DiGraph of one explicit map, with the role defaults filled in.

    Raises InputError for an unknown role, a repeated person id, a ``reports_to`` or influence
    end that names no other person of the unit, a weight outside -1..1 or an influence given
    twice; all problems at once, located at ``accounts.<id>...``. The same checks
    (:func:`~kamsim.spec.models.unit_checks`) run when a stakeholders file is loaded, at the
    file's lines; here they guard maps given in Python (``build_units(explicit=...)``).
    """
    import networkx as nx

    found = unit_checks(list(rules.roles), account_id, unit.model_dump())
    if found:
        raise InputError([Problem(Location(_dotted(("accounts", account_id, *e.path))),
                                  str(e), e.expected) for e in found])
    g = nx.DiGraph()
    for p in unit.people:
        a = rules.roles[p.role]
        g.add_node(p.id, role=p.role,
                   influence=float(a.influence if p.influence is None else p.influence),
                   attitude=attitude_value(p.attitude), coverage=coverage_value(p.coverage),
                   held_by=p.held_by or a.held_by, seniority=a.seniority,
                   months_in_post=float(p.months_in_post), price_focus=a.price_focus)
    for p in unit.people:
        if p.reports_to is not None:
            g.add_edge(p.id, p.reports_to, kind=REPORTS, weight=0.0, sign=0)
    for s, d, w in unit.influences:
        kind = f"{REPORTS}+{INFLUENCES}" if g.has_edge(s, d) else INFLUENCES
        g.add_edge(s, d, kind=kind, weight=abs(float(w)), sign=-1 if w < 0 else 1)
    return g


def _dotted(path: tuple[str | int, ...]) -> str:
    """``accounts.A1.people[2].role``: where a problem of a map given in Python is."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _as_text(values: Any, copy: bool = False) -> np.ndarray:
    """``values`` as an array of str, or as an object array (of strs, or of objects whose
    str() is meant): the one given, or with ``copy`` a copy of it (the same objects)."""
    arr = np.asarray(values)
    if arr.dtype != object:
        return arr.astype(str)
    return arr.copy() if copy else arr


def build_units(rules: StakeholderRules, segments: np.ndarray, account_ids: np.ndarray,
                rng: np.random.Generator, *,
                explicit: Mapping[str, ExplicitUnit] | None = None) -> Units:
    """The decision units of all accounts; account i has ``segments[i]`` and ``account_ids[i]``.

    Deterministic given the state of ``rng`` (explicit maps draw nothing). Explicit maps are
    ``rules.accounts`` updated with ``explicit``; their keys are compared with ``str(id)``.
    """
    # an object array (what a portfolio holds) is used as it is: its entries are compared with
    # the template names and become the person ids' prefixes (through str()), which is what
    # converting it to a fixed-width str array first gave, at a cost of 0.2 s per 1M accounts
    segments = _as_text(segments)
    ids = _as_text(account_ids, copy=True)  # kept by the person ids: not the caller's array
    if segments.shape != ids.shape or segments.ndim != 1:
        raise ValueError(f"segments {segments.shape} and account_ids {ids.shape} must be 1-d "
                         "and of equal length")
    maps: dict[str, ExplicitUnit] = dict(rules.accounts)
    maps.update(explicit or {})
    if not maps:
        return _template_units(rules, segments, ids, rng)
    segments, ids = segments.astype(str), ids.astype(str)
    is_explicit = np.isin(ids, np.array(list(maps), dtype=str))
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
