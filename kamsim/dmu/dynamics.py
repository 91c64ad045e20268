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
from dataclasses import dataclass
from functools import partial

import numpy as np

from kamsim.dmu.arrays import Units
from kamsim.dmu.span import Span, scratch, span
from kamsim.dmu.structure import SPLIT_EPS, structure
from kamsim.spec.models import RoleArchetype

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


def _role_arrays(units: Units, roles: Sequence[RoleArchetype] | Mapping[str, RoleArchetype]
                 ) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(roles, Mapping):
        missing = [r for r in units.role_names if r not in roles]
        if missing:
            raise ValueError(f"no archetype for roles: {', '.join(missing)}")
        seq = [roles[r] for r in units.role_names]
    else:
        seq = list(roles)
        if len(seq) != len(units.role_names):
            raise ValueError(f"{len(seq)} archetypes for {len(units.role_names)} roles")
    return (np.array([a.turnover_per_year for a in seq]),
            np.array([a.price_focus for a in seq]))


def _per_period(rate: float, dt: float) -> float:
    return 1.0 - (1.0 - rate) ** dt


def _lacking(group_has: np.ndarray, h: int) -> np.ndarray:
    return np.flatnonzero(~group_has[:, h])


def _hours_per_person(units: Units, inp: StepInput, sp: Span, out: np.ndarray) -> np.ndarray:
    """Hours each person of the span got (into ``out``): by holder, split by influence; orphan
    hours go to the AM group.

    Executive/specialist hours of an account with nobody of that holder go to its
    account_manager people; if it has no account_manager people either, those hours are split
    over the whole unit.
    """
    a0, a1 = sp.a0, sp.a1
    st = structure(units)  # groups and their weights do not change between periods
    wt, key = st.split_weight[sp.people], st.group_key[sp.people]
    # hours of each (account, holder) group of the span, in a full-length per-group buffer
    # (groups 3*a0 .. 3*a1) so that a person's group key indexes it directly
    hours = scratch(units).accounts("a3", sp, np.float64, 3).reshape(a1 - a0, 3)
    hours[:, 0] = inp.am_hours[a0:a1]
    hours[:, 1] = inp.exec_hours[a0:a1]
    hours[:, 2] = inp.specialist_hours[a0:a1]
    for h in (1, 2):  # a loop over holder kinds
        # the span's accounts with nobody of holder h (fixed: kept as indices, not a mask)
        lacking = st.extra(("lacking", h), partial(_lacking, st.group_has, h))
        miss = lacking[slice(*np.searchsorted(lacking, (a0, a1)))] - a0
        hours[miss, 0] += hours[miss, h]
        hours[miss, h] = 0.0
    # accounts with no account_manager people: their AM hours are split over everyone
    lacking = st.extra(("lacking", 0), partial(_lacking, st.group_has, 0))
    no_am = lacking[slice(*np.searchsorted(lacking, (a0, a1)))] - a0
    orphan = None
    if no_am.size and hours[no_am, 0].any():
        orphan = np.zeros(units.n_accounts)
        orphan[no_am + a0] = hours[no_am, 0]
    # hours per unit of weight in each group (in place: ``hours`` becomes the rate); a group
    # with nobody has weight 0 and a rate nobody reads
    with np.errstate(divide="ignore", invalid="ignore"):
        hours /= st.group_weight[3 * a0:3 * a1].reshape(a1 - a0, 3)
    # (mode="clip": the keys are in range, and take() buffers ``out`` under the default mode)
    per = np.take(scratch(units).whole("a3"), key, out=out, mode="clip")
    per *= wt
    if orphan is not None:
        acc = units.account[sp.people]
        per += orphan[acc] * wt / st.all_split_weight[acc]
    return per


def step(units: Units, inp: StepInput, params: StepParams,
         roles: Sequence[RoleArchetype] | Mapping[str, RoleArchetype],
         u_depart: np.ndarray) -> StepOutcome:
    """Advance all decision units one period IN PLACE; inactive accounts' people are untouched.

    ``roles`` are the archetypes in ``units.role_names`` order (or a mapping by name);
    ``u_depart`` is one uniform(0, 1) number per person (a person leaves if it is below the
    period's leaving probability of their role).
    """
    n, dt = units.n_people, params.dt_months
    if u_depart.shape != (n,):
        raise ValueError(f"u_depart has shape {u_depart.shape}, expected ({n},)")
    turnover, role_pf = _role_arrays(units, roles)
    st = structure(units)
    active = np.asarray(inp.active, bool)
    # only the stretch from the first to the last active account is worked on (kamsim.dmu.span)
    sp = span(units, st, active)
    ppl, a0, a1 = sp.people, sp.a0, sp.a1
    buf = scratch(units)
    acc, role = units.account[ppl], units.role
    # the people of lost accounts inside the stretch must not change; ``live`` marks the
    # others, and is None when every account of the stretch is active (no masks needed)
    live = None
    if not active[a0:a1].all():
        live = np.take(active, acc, out=buf.get("b0", sp, np.bool_), mode="clip")

    # 1. departures: the post is refilled at once by a newcomer (same id, same role)
    p_leave = st.extra(("p_leave", turnover.tobytes(), float(dt)),
                       lambda: (1.0 - (1.0 - turnover) ** (dt / 12.0))[role])
    leaving = np.less(u_depart[ppl], p_leave[ppl], out=buf.get("b1", sp, np.bool_))
    if live is not None:
        leaving &= live
    dep = np.flatnonzero(leaving)
    dep += sp.p0
    out = StepOutcome(departed=dep, departed_account=units.account[dep],
                      departed_role=role[dep], departed_coverage=units.coverage[dep],
                      departed_influence=units.influence[dep])
    units.attitude[dep] = 0.0
    units.coverage[dep] = 0.0
    units.months_in_post[dep] = 0.0
    units.price_focus[dep] = np.minimum(1.0, role_pf[role[dep]] + params.newcomer_price_focus)

    # 2. contact; every temporary is a reused buffer (no fresh pages to fault in)
    effort = _hours_per_person(units, inp, sp, buf.get("f0", sp))
    contacted = np.greater(effort, 0.0, out=buf.get("b2", sp, np.bool_))
    effort /= params.hours_for_full_coverage * dt  # hours -> effort
    np.clip(effort, 0.0, 1.0, out=effort)
    cov = units.coverage[ppl]
    gain = _per_period(params.coverage_gain, dt)
    decay = _per_period(params.coverage_decay, dt)
    raised = np.multiply(effort, gain, out=buf.get("f1", sp))
    raised *= np.subtract(1.0, cov, out=buf.get("f2", sp))
    raised += cov  # cov + gain * effort * (1 - cov)
    new_cov = np.multiply(cov, 1.0 - decay, out=buf.get("f2", sp))  # no contact: decay
    np.copyto(new_cov, raised, where=contacted)
    # coverage is final (clipped straight into it when every person is live); new_cov is kept
    # for exposure
    if live is None:
        new_cov = np.clip(new_cov, 0.0, 1.0, out=cov)
    else:
        np.clip(new_cov, 0.0, 1.0, out=new_cov)
        np.copyto(cov, new_cov, where=live)

    # 3. attitudes: drift toward the target, complaints, then one Jacobi step of neighbours
    speed = _per_period(params.attitude_speed, dt)
    att = units.attitude[ppl]
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
        exposure = np.multiply(new_cov, 0.5, out=buf.get("f2", sp))
        exposure += 0.5
        exposure *= np.take(rows[0], acc, out=buf.get("f1", sp), mode="clip")
    new_att = np.take(rows[1], acc, out=buf.get("f1", sp), mode="clip")
    effort *= CONTACT_BONUS  # effort is used up
    new_att += effort
    new_att -= att
    new_att *= speed
    new_att += att  # att + speed * (target + CONTACT_BONUS * effort - att)
    if exposure is not None:
        new_att += exposure
    # edges into the span's people come from them too: gather from the whole buffer
    src, dst = units.edge_src[sp.edges], units.edge_dst[sp.edges]
    pulled = np.take(buf.whole("f1"), src, out=buf.edges("e0", sp), mode="clip")
    pulled *= st.signed_weight[sp.edges]
    in_s = np.bincount(dst, weights=pulled, minlength=sp.p1)[ppl]
    # mean of the in-neighbours; people without in-edges have in_s = 0 and divide by 1
    pull = np.divide(in_s, st.in_weight_or_1[ppl], out=buf.get("f0", sp))
    pull -= new_att
    # people without in-edges are not pulled: one product by has_in * weight * speed, which
    # is exactly the two products by has_in (0 or 1) and by weight * speed in turn
    rate = params.neighbour_weight * speed
    pull *= st.extra(("pull_rate", rate), lambda: st.has_in * rate)[ppl]
    new_att += pull
    mip = units.months_in_post[ppl]
    if live is None:
        np.clip(new_att, -1.0, 1.0, out=att)
        mip += dt
    else:
        np.clip(new_att, -1.0, 1.0, out=new_att)
        np.copyto(att, new_att, where=live)
        np.add(mip, dt, out=mip, where=live)
    return out
