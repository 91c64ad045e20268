"""One period of decision-unit dynamics for all accounts at once (docs/dmu.md, "Dynamics").

Order within a period: 1. key-person departures (replaced in place by a neutral, uncovered
newcomer), 2. contact raises coverage of the people who get hours and the others' coverage
decays, 3. attitudes drift toward a target set by service quality and contact, complaints move
them, then in-neighbours pull them. Randomness is an argument: ``u_depart`` is drawn by the
caller. Rates given "per period" are for a one-month period; other ``dt_months`` compound them
(``1-(1-r)**dt``) so that a year of weeks and a year of months agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from operator import attrgetter
from typing import Any

import numpy as np

from kamsim.dmu.arrays import Units, people_of
from kamsim.dmu.span import Scratch, Span, compiled, scratch, span, split
from kamsim.dmu.structure import SPLIT_EPS, Structure, structure
from kamsim.lanes import lane, side_by_side
from kamsim.spec.models import RoleArchetype
from kamsim.ufuncs import clip as _clip

__all__ = ["StepInput", "StepParams", "StepOutcome", "step", "QUALITY_WEIGHT", "CONTACT_BONUS"]

#: attitude target = QUALITY_WEIGHT * quality + CONTACT_BONUS * effort (assumption)
QUALITY_WEIGHT = 0.6
CONTACT_BONUS = 0.2
_SPLIT_EPS = SPLIT_EPS  # kept for callers of the old private name


@dataclass
class StepInput:
    """What happened to each account this period (arrays of length n_accounts)."""

    am_hours: np.ndarray
    exec_hours: np.ndarray
    specialist_hours: np.ndarray
    quality: np.ndarray  # service quality signal in [-1, 1]
    complaints_resolved: np.ndarray
    complaints_unresolved: np.ndarray
    active: np.ndarray  # bool; inactive accounts are not updated

    @classmethod
    def idle(cls, n_accounts: int) -> StepInput:
        """No contact, neutral quality, no complaints, every account active."""
        z = np.zeros(n_accounts)
        return cls(z, z.copy(), z.copy(), z.copy(), z.copy(), z.copy(),
                   np.ones(n_accounts, bool))


@dataclass
class StepParams:
    """Parameters of the dynamics; every default is an assumption (docs/dmu.md)."""

    dt_months: float = 1.0
    hours_for_full_coverage: float = 6.0
    coverage_gain: float = 0.35
    coverage_decay: float = 0.06
    attitude_speed: float = 0.1
    neighbour_weight: float = 0.3
    complaint_attitude_hit: float = 0.25
    resolved_attitude_gain: float = 0.05
    newcomer_price_focus: float = 0.15


@dataclass
class StepOutcome:
    """Who left this period (already replaced in place), with what they held."""

    departed: np.ndarray  # int64 person indices
    departed_account: np.ndarray
    departed_role: np.ndarray
    departed_coverage: np.ndarray  # coverage before leaving
    departed_influence: np.ndarray


#: the values of a StepParams, as one tuple (a key of the constants derived from them)
_PARAM_VALUES = attrgetter(*(f.name for f in fields(StepParams)))


def _role_values(units: Units, roles: Sequence[RoleArchetype] | Mapping[str, RoleArchetype]
                 ) -> tuple[tuple[float, float], ...]:
    """(turnover per year, price focus) of each role, in ``units.role_names`` order."""
    if isinstance(roles, Mapping):
        missing = [r for r in units.role_names if r not in roles]
        if missing:
            raise ValueError(f"no archetype for roles: {', '.join(missing)}")
        seq = [roles[r] for r in units.role_names]
    else:
        seq = list(roles)
        if len(seq) != len(units.role_names):
            raise ValueError(f"{len(seq)} archetypes for {len(units.role_names)} roles")
    return tuple((a.turnover_per_year, a.price_focus) for a in seq)


def _per_period(rate: float, dt: float) -> float:
    return 1.0 - (1.0 - rate) ** dt


@dataclass(frozen=True)
class _Constants:
    """What a step derives from the roles and the parameters alone (made once, kept with the
    structure of the units it steps)."""

    p_leave: np.ndarray  # per role: the period's leaving probability
    # the highest of any role (NaN left out; -inf with no roles), a float64 scalar: a
    # Python float would be compared with float32 draws in float32 (NEP 50), rounded
    p_leave_max: np.float64
    newcomer_price_focus: np.ndarray  # per role
    hours_per_effort: float  # hours of a period that make full effort
    gain: float
    keep: float  # 1 - the period's coverage decay
    speed: float
    # neighbour weight * speed: the pull's rate of a person with in-edges; a person's rate is
    # ``has_in * pull_rate`` (0 without in-edges), worked out where it is read rather than
    # kept per person (at 1M accounts these two per-person arrays were 137 MB of the peak
    # and read by every step)
    pull_rate: float


def _constants(role_values: tuple[tuple[float, float], ...], params: StepParams
               ) -> _Constants:
    dt = params.dt_months
    turnover = np.array([t for t, _ in role_values])
    role_pf = np.array([pf for _, pf in role_values])
    speed = _per_period(params.attitude_speed, dt)
    rate = params.neighbour_weight * speed
    per_role = 1.0 - (1.0 - turnover) ** (dt / 12.0)
    per_role.flags.writeable = False
    newcomer = np.minimum(1.0, role_pf + params.newcomer_price_focus)
    newcomer.flags.writeable = False
    return _Constants(per_role, np.float64(np.fmax.reduce(per_role, initial=-np.inf)), newcomer,
                      params.hours_for_full_coverage * dt,
                      _per_period(params.coverage_gain, dt),
                      1.0 - _per_period(params.coverage_decay, dt), speed, rate)


def _lacking(group_has: np.ndarray, h: int) -> np.ndarray:
    return np.flatnonzero(~group_has[:, h])


def _hours_fixed(units: Units, st: Structure) -> tuple[Any, ...]:
    # per holder, the accounts lacking it (ascending) as (account, holder) group keys: their
    # own group's and their account_manager group's; the group weights with 1 for the groups
    # that have nobody (their rate is never read); and whether "nobody" and "weight not
    # positive" are the same groups (always, unless influences are negative)
    lacking = []
    for h in range(3):
        accounts = _lacking(st.group_has, h)
        lacking.append((accounts, 3 * accounts + h, 3 * accounts))
    people = np.bincount(st.group_key, minlength=st.group_weight.size) > 0
    clean = bool(np.array_equal(people, st.group_has.ravel()))
    weight = np.where(st.group_weight > 0, st.group_weight, 1.0)
    weight.flags.writeable = False
    return (*lacking, weight, clean)


def _hours_per_person(units: Units, st: Structure, inp: StepInput, sp: Span, buf: Scratch,
                      out: np.ndarray) -> np.ndarray:
    """Hours each person of the span got (into ``out``): by holder, split by influence; orphan
    hours go to the AM group.

    Executive/specialist hours of an account with nobody of that holder go to its
    account_manager people; if it has no account_manager people either, those hours are split
    over the whole unit.
    """
    a0, a1 = sp.a0, sp.a1
    # groups and their weights do not change between periods
    lack_am, lack_ex, lack_sp, weight, clean = st.value("hours_fixed",
                                                        lambda: _hours_fixed(units, st))
    # hours of each (account, holder) group of the span, in a full-length per-group buffer
    # (groups 3*a0 .. 3*a1) so that a person's group key indexes it directly
    groups = buf.array("a3", 3 * units.n_accounts)
    hours = groups[3 * a0:3 * a1].reshape(a1 - a0, 3)
    hours[:, 0] = inp.am_hours[a0:a1]
    hours[:, 1] = inp.exec_hours[a0:a1]
    hours[:, 2] = inp.specialist_hours[a0:a1]
    # (the lists of accounts lacking a holder are often empty: then nothing is looked up)
    for accounts, own, am in (lack_ex, lack_sp):  # a loop over holder kinds
        # the span's accounts with nobody of that holder (fixed: kept as group keys)
        i0, i1 = accounts.searchsorted((a0, a1)) if accounts.size else (0, 0)
        if i1 > i0:
            own, am = own[i0:i1], am[i0:i1]
            # (a plain assignment: put() runs about twice as slow)
            groups[am] = groups.take(am) + groups.take(own)
            if not clean:
                groups[own] = 0.0
    # accounts with no account_manager people: their AM hours are split over everyone
    accounts, _, am = lack_am
    i0, i1 = accounts.searchsorted((a0, a1)) if accounts.size else (0, 0)
    orphan = None
    if i1 > i0 and groups.take(am[i0:i1]).any():
        orphan = np.zeros(units.n_accounts)
        orphan[accounts[i0:i1]] = groups.take(am[i0:i1])
    # hours per unit of weight in each group (in place: ``hours`` becomes the rate)
    if clean:
        hours /= weight[3 * a0:3 * a1].reshape(a1 - a0, 3)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            hours /= st.group_weight[3 * a0:3 * a1].reshape(a1 - a0, 3)
    # (mode="wrap": the keys are in range, so any mode gathers the same; take() buffers
    # ``out`` under the default mode, and "wrap" runs a little faster than "clip")
    ppl = sp.people
    wt = st.split_weight[ppl]
    per = groups.take(st.group_key[ppl], out=out, mode="wrap")
    per *= wt
    if orphan is not None:
        acc = units.account[ppl]
        per += orphan[acc] * wt / st.all_split_weight[acc]
    return per


def step(units: Units, inp: StepInput, params: StepParams,
         roles: Sequence[RoleArchetype] | Mapping[str, RoleArchetype],
         u_depart: np.ndarray, *, threads: int = 1) -> StepOutcome:
    """Advance all decision units one period IN PLACE; inactive accounts' people are untouched.

    ``roles`` are the archetypes in ``units.role_names`` order (or a mapping by name);
    ``u_depart`` is one uniform(0, 1) number per person (a person leaves if it is below the
    period's leaving probability of their role). With ``threads`` 2, a large stretch of
    accounts is worked on in two halves at once (decision units do not reach across
    accounts, so every value is the one a single pass gives). A simulation that steps the
    same units period after period can use a :class:`kamsim.dmu.context.Context` instead,
    which does the set-up once.
    """
    _check_draws(units, u_depart)
    st = structure(units)
    c = _step_constants(st, _role_values(units, roles), params)
    active = np.asarray(inp.active, bool)
    # only the stretch from the first to the last active account is worked on (kamsim.dmu.span)
    return _step_span(units, st, c, inp, params, u_depart, active, span(units, st, active),
                      threads)


def _check_draws(units: Units, u_depart: np.ndarray) -> None:
    n = units.n_people
    if u_depart.shape != (n,):
        raise ValueError(f"u_depart has shape {u_depart.shape}, expected ({n},)")


def _step_constants(st: Structure, role_values: tuple[tuple[float, float], ...],
                    params: StepParams) -> _Constants:
    """The step's constants for these roles and parameters (made once, kept with ``st``)."""
    return st.value(("step", role_values, _PARAM_VALUES(params)),
                    lambda: _constants(role_values, params))


def _step_span(units: Units, st: Structure, c: _Constants, inp: StepInput,
               params: StepParams, u_depart: np.ndarray, active: np.ndarray, sp: Span,
               threads: int, kernels: bool | None = None,
               below: np.ndarray | None = None) -> StepOutcome:
    """:func:`step` of the accounts of the stretch ``sp`` (in parts with ``threads`` > 1;
    ``kernels`` as :func:`kamsim.dmu.span.compiled` takes it; ``below`` as
    :meth:`kamsim.dmu.context.Context.step` takes it)."""
    parts = split(units, st, sp, threads)
    outs = list(side_by_side(lambda part: _step_part(units, st, c, inp, params, u_depart,
                                                     active, part, scratch(units, lane()),
                                                     kernels, below),
                             parts, threads))
    return _joined(outs)


def _joined(outs: list[StepOutcome]) -> StepOutcome:
    """The outcome of the parts ``outs`` of a stretch, as one pass over it lists it."""
    if len(outs) == 1:
        return outs[0]
    # people are in account order and the parts in turn: one after the other is the order
    # a single pass lists them in
    return StepOutcome(*(np.concatenate([getattr(o, f.name) for o in outs])
                         for f in fields(StepOutcome)))


def _step_part(units: Units, st: Structure, c: _Constants, inp: StepInput, params: StepParams,
               u_depart: np.ndarray, active: np.ndarray, sp: Span, buf: Scratch,
               kernels: bool | None = None, below: np.ndarray | None = None) -> StepOutcome:
    """:func:`step` of the accounts of ``sp``, with the scratch buffers ``buf`` (``below``:
    read by the compiled step only, see :meth:`kamsim.dmu.context.Context.step`)."""
    # a large portfolio's step runs compiled, with the same values (kamsim.dmu.step_kernel;
    # it takes the edges into a block of people as one run, so it needs them sorted by
    # target, and float64 values, as every builder makes them: span.compiled)
    if compiled(units, st, kernels):
        from kamsim.dmu.step_kernel import step_part

        return step_part(units, st, c, inp, params, u_depart, active, sp, buf, below)
    dt = params.dt_months
    ppl, p0, a0, a1 = sp.people, sp.p0, sp.a0, sp.a1
    f0, f1, f2 = buf.rows("f", 3, sp)
    acc, role = units.account[ppl], units.role
    cov, att, mip = units.coverage[ppl], units.attitude[ppl], units.months_in_post[ppl]
    # the people of lost accounts inside the stretch must not change: they are worked on with
    # the others (no masks: a masked pass costs several plain ones) and put back as they were
    # at the end. Nobody else reads them: influence edges stay inside an account.
    lost = kept = None
    if not active[a0:a1].all():
        lost_accounts = (~active[a0:a1]).nonzero()[0]
        lost_accounts += a0
        lost = people_of(units, lost_accounts)[0]
        # (take(mode="wrap"): a plain gather, ~40% cheaper than indexing with the array)
        kept = (units.coverage.take(lost, mode="wrap"), units.attitude.take(lost, mode="wrap"),
                units.months_in_post.take(lost, mode="wrap"))

    # 1. departures: the post is refilled at once by a newcomer (same id, same role). Only
    # a person below the highest leaving probability can be below their own: those few are
    # found with one comparison with a number, then compared with their own probability
    # (the same people, in the same order, as comparing everyone with their own)
    u = u_depart[ppl]
    dep = np.less(u, c.p_leave_max, out=buf.get("b1", sp, np.bool_)).nonzero()[0]
    dep = dep[u.take(dep, mode="wrap") < c.p_leave[role[ppl].take(dep, mode="wrap")]]
    dep += p0
    if lost is not None and dep.size:
        dep = dep[active[units.account[dep]]]
    out = StepOutcome(departed=dep, departed_account=units.account[dep],
                      departed_role=role[dep], departed_coverage=units.coverage[dep],
                      departed_influence=units.influence[dep])
    units.attitude[dep] = 0.0
    units.coverage[dep] = 0.0
    units.months_in_post[dep] = 0.0
    units.price_focus[dep] = c.newcomer_price_focus[out.departed_role]

    # 2. contact; every temporary is a reused buffer (no fresh pages to fault in)
    effort = _hours_per_person(units, st, inp, sp, buf, f0)
    contacted = np.greater(effort, 0.0, out=buf.get("b2", sp, np.bool_))
    effort /= c.hours_per_effort  # hours -> effort
    _clip(effort, 0.0, 1.0, out=effort)
    raised = np.multiply(effort, c.gain, out=f1)
    raised *= np.subtract(1.0, cov, out=f2)
    raised += cov  # cov + gain * effort * (1 - cov)
    new_cov = np.multiply(cov, c.keep, out=f2)  # no contact: decay
    # (putmask, not copyto(where=): a masked copy runs value-run by value-run, 2-3x slower)
    np.putmask(new_cov, contacted, raised)
    # coverage is final (kept for exposure)
    new_cov = _clip(new_cov, 0.0, 1.0, out=cov)

    # 3. attitudes: drift toward the target, complaints, then one Jacobi step of neighbours
    # per-account complaint kick and target of the span's accounts, in rows of the account
    # buffer the hours are done with, so that a person's account indexes them
    rows = buf.array("a3", 3 * units.n_accounts).reshape(3, units.n_accounts)
    kick = np.multiply(params.resolved_attitude_gain,
                       np.asarray(inp.complaints_resolved, float)[a0:a1], out=rows[0, a0:a1])
    kick -= np.multiply(params.complaint_attitude_hit,
                        np.asarray(inp.complaints_unresolved, float)[a0:a1], out=rows[1, a0:a1])
    np.multiply(QUALITY_WEIGHT, np.asarray(inp.quality, float)[a0:a1], out=rows[1, a0:a1])
    # people we are close to hear more of the complaint story (exposure 0.5..1); made first,
    # in the f2 buffer (new_cov's), so that three buffers do
    exposure = None
    if kick.any():
        exposure = np.multiply(new_cov, 0.5, out=f2)
        exposure += 0.5
        exposure *= rows[0].take(acc, out=f1, mode="wrap")
    new_att = rows[1].take(acc, out=f1, mode="wrap")
    effort *= CONTACT_BONUS  # effort is used up
    new_att += effort
    new_att -= att
    new_att *= c.speed
    new_att += att  # att + speed * (target + CONTACT_BONUS * effort - att)
    if exposure is not None:
        new_att += exposure
    # edges into the span's people come from them too: gather from the whole buffer
    src, dst = units.edge_src[sp.edges], units.edge_dst[sp.edges]
    pulled = buf.whole("f")[1].take(src, out=buf.edges("e0", sp), mode="wrap")
    pulled *= st.signed_weight[sp.edges]
    in_s = np.bincount(dst, weights=pulled, minlength=sp.p1)[ppl]
    # mean of the in-neighbours; people without in-edges have in_s = 0 and divide by 1
    pull = np.divide(in_s, st.in_weight_or_1[ppl], out=f0)
    pull -= new_att
    # people without in-edges are not pulled: by has_in (0 or 1) times the rate, the product
    # numpy makes of the boolean and the float (f2, the exposure's buffer, is free again)
    pull *= np.multiply(st.has_in[ppl], c.pull_rate, out=f2)
    new_att += pull
    _clip(new_att, -1.0, 1.0, out=att)
    mip += dt
    if lost is not None and kept is not None:
        units.coverage[lost], units.attitude[lost], units.months_in_post[lost] = kept
    return out
