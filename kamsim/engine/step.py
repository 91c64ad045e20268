"""One period of the model for all accounts at once (docs/model.md, "One period").

Order within a period: re-tier if due; service asked and allocated; complaints answered
since the last period; decision-unit dynamics; trust; events (competitor offers, the
account's own strategy change, supplier consolidation, financial failure, payment default,
trust-driven leaving); money; share and wallet; stages; word of mouth and new accounts;
then the accounts lost this period leave.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from kamsim import lanes
from kamsim.dmu import StepInput
from kamsim.dmu.arrays import people_of
from kamsim.dmu.structure import structure
from kamsim.engine.allocation import ServiceOrder, allocate, demand
from kamsim.engine.complaints import FluidDesk, work_hours
from kamsim.spec.models import CHURN_CAUSES
from kamsim.ufuncs import clip as _clip

if TYPE_CHECKING:
    from collections.abc import Callable

    from kamsim.dmu import Units
    from kamsim.engine.core import Simulation

__all__ = ["period_step"]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 1e-12``, else 1."""
    # a plain division, then 1 where den is not above 1e-12: a masked division (where=)
    # runs value-run by value-run, about twice as slow
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(num, den)
    np.putmask(out, np.logical_not(den > 1e-12), 1.0)
    return out


def _allocated(asked: np.ndarray, order: ServiceOrder, capacity: float,
               kernels: bool) -> tuple[np.ndarray, float]:
    """``allocate(asked, order, capacity, kernels)`` and the sum of what it delivers. When all
    of it is served (most periods) that is ``asked`` itself, not a copy (neither is changed in
    place: a copy would be a pass over every slot for nothing), and its sum the one taken to
    know it (the same pairwise sum of the same values as ``.sum()`` of what is delivered)."""
    total = float(asked.sum())
    if total <= capacity:
        return asked, total
    delivered = allocate(asked, order, capacity, kernels)
    return delivered, float(delivered.sum())


def _count(index: tuple[np.ndarray, ...], shape: tuple[int, ...]) -> np.ndarray:
    """How many times each cell of an array of ``shape`` is named by ``index`` (one array
    per axis, each within its axis), as ``np.add.at(np.zeros(shape), index, 1.0)`` would
    count."""
    # the flat cell worked out by hand (the callers' indices are within their axes by
    # construction): ravel_multi_index checks every index and costs twice as much
    flat = index[0].astype(np.intp)
    for i, size in zip(index[1:], shape[1:], strict=True):
        flat *= size
        flat += i
    return np.bincount(flat, minlength=math.prod(shape)).reshape(shape)


def _event_reach(sim: Simulation, p_offer: float,
                 h_uncoupled: float) -> tuple[float, float]:
    """Values above every slot's upper bound of the five events (see ``period_step``) plus
    its hazard of leaving for lack of trust this period: the first for a slot not uncoupled
    at the period's start, the second for an uncoupled one, whose hazard is the uncoupled
    stage's (NaN if a trust or a bound is NaN). A slot whose uniform is at or above its
    value has no event and does not leave."""
    mk = sim.market
    # the highest trust hazard is that of the trust farthest from 1 (a hazard grows with
    # ``(1 - trust)**2``; trust is not yet clipped to 0-1 here); worked out as _p does, in
    # plain floats, with a margin far above any rounding
    t_lo, t_hi = float(sim.trust.min(initial=1.0)), float(sim.trust.max(initial=1.0))
    r_top = min(max(mk.base_churn_per_year * 4.0 * max(1.0 - t_lo, t_hi - 1.0) ** 2, 0.0),
                1.0 - 1e-12)
    h_top = 1.0 - (1.0 - r_top) ** (sim.dt / 12.0)
    events = sim.event_reach + p_offer
    # (the uncoupled hazard is mostly far above the trust's: 0.15 a month against 0.03 in
    # the baseline, so a bound for both would take in 21% of a run's slots instead of 9%,
    # for the few accounts uncoupled)
    return (float(events + h_top + 1e-9),
            float(events + max(h_top, h_uncoupled) + 1e-9))


def _event_slots(u: np.ndarray, stage: np.ndarray, reach: float, reach_uncoupled: float,
                 uncoupled: int, kernels: bool) -> np.ndarray:
    """The slots (ascending) whose uniform ``u`` lies below ``reach``, or below
    ``reach_uncoupled`` for those whose ``stage`` is ``uncoupled``: those that may have an
    event or leave this period (see ``_event_reach``; ``u`` and ``stage`` are the slots'
    that have been in the portfolio)."""
    if not (np.isfinite(reach) and np.isfinite(reach_uncoupled)):
        return np.arange(u.shape[0])  # no bound: every slot is worked out
    if reach_uncoupled <= reach:
        return (u < reach).nonzero()[0]
    if kernels:
        from kamsim.engine import events_kernel as ek

        return ek.slots_below(u, stage, reach, reach_uncoupled, uncoupled)
    near = (u < reach_uncoupled).nonzero()[0]
    return near[(u[near] < reach) | (stage[near] == uncoupled)]


def _stage_frac(st: Any, stage: np.ndarray) -> np.ndarray:
    """How far up the ladder each of ``stage`` is, 0 to 1 (uncoupled counts as the bottom)."""
    return np.where(stage == st.uncoupled, 0.0,
                    np.minimum(stage, st.ladder - 1) / max(1, st.ladder - 1))


def _people_of(units: Units, accounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The people of ``accounts`` in person order (people are grouped by account, in account
    order, see ``Units.offsets``) and, for each, the position of their account in
    ``accounts``: a bincount over them sums each account's people in the same order as one
    over every person would."""
    people, sizes = people_of(units, accounts)
    return people, np.arange(accounts.size).repeat(sizes)


def _within(ids: np.ndarray, size: int) -> bool:
    """Whether ``ids`` are integers from 0 to ``size - 1`` (none is also within)."""
    return ids.dtype.kind in "iu" and (not ids.size or (int(ids.min()) >= 0
                                                        and int(ids.max()) < size))


def _kernels_fit(sim: Simulation) -> bool:
    """Whether the engine's kernels can take ``sim``'s state, worked out once a replication
    (at its first period with kernels; kept on ``sim``). Else every period runs the numpy
    code, which raises on a bad id or works a float32 array by numpy's rules: so a run's
    result, or its error, is the same with numba or without.

    * The arrays the kernels take have the dtypes the kernels are written for, those
      :class:`~kamsim.engine.core.Simulation` and the compiled rules make: a float32 array
      would make numba compile another version, whose arithmetic is not numpy's float32
      (NEP 50: ``float32 / 12.0`` stays float32 in numpy; in numba it is float64).
    * The ids the kernels index with and that the period does not make itself are in range:
      the starting stages and tiers (the period moves a stage by one step on the ladder, or
      to uncoupled or back to its first stage, and the re-tiering takes its tiers from the
      rules, so in range they stay) with the per-stage and per-tier tables as long as their
      names, the word-of-mouth edges' ends and the decision units' offsets, and their
      people's roles (with the departure rates) and accounts. numba checks no
      index (tests/test_kernel_bounds.py runs the kernels with its checks on) and counts a
      negative one from the end, as numpy's indexing does, where a bincount raises."""
    fit = sim._kernels_fit
    if fit is None:
        fit = sim._kernels_fit = _dtypes_fit(sim) and _ids_fit(sim)
    return fit


def _dtypes_fit(sim: Simulation) -> bool:
    m, mt = sim.model, sim.metrics
    st, sv, units = m.stages, m.service, sim.units
    floats = (sim.wallet, sim.share, sim.trust, sim.tenure, sim.months_in_stage,
              sim.service_ratio, sim.complaints_open, sim.since_unresolved, sim.cost_share,
              sim.next_complaint, sv.response_days,
              sim.price_sensitivity, sim.influence, sim.p_default, sim.referral_rate,
              *sim.event_bounds, *sim.acc.values(), *sim.ts.values(), sim.stage_counts,
              sim.transitions, sim.causes, sim.prep.wom_weight, st.target_share, st.min_dwell,
              st.price_sensitivity, st.cost_to_serve, sv.am_hours, sv.exec_hours,
              sv.specialist_hours, sv.discount, sv.vip_cost, sv.joint_dev, sv.fixed_cost,
              sv.priority, units.price_focus, units.influence,
              structure(units).sum_influence, mt.coverage, mt.sentiment, mt.multithreading,
              sim.next_departure, sim.departure_lam)
    exact = ((sim.active, np.bool_), (mt.dm_covered, np.bool_), (mt.champion, np.bool_),
             (sim.u_depart, np.float32),
             (sim.stage, np.int64), (sim.tier, np.int64), (sim.quadrant, np.int64),
             (sim.churn_period, np.int32), (sim.churn_cause, np.int8))
    return (all(a.dtype == np.float64 for a in floats)
            and all(a.dtype == dtype for a, dtype in exact))


def _departures(sim: Simulation, act: np.ndarray, end: float,
                kernels: bool) -> tuple[np.ndarray, np.ndarray]:
    """The people due to leave their post by ``end`` (the period's end): their next
    departure drawn (from the ``departures`` stream) and, of accounts in the portfolio
    (``act``), a draw of 0 in ``sim.u_depart``: they leave in this period's step. Returns
    those due and those leaving."""
    idx_p = (sim.next_departure < end).nonzero()[0]
    if kernels:
        # the lines below in a pass over those due (departures_kernel), the draws as
        # _exp_times makes them, with numpy's log1p
        from kamsim.engine import departures_kernel as dk

        return idx_p, dk.leaving(idx_p, np.log1p(-sim.rng["departures"].random(idx_p.shape[0])),
                                 sim.next_departure, sim.departure_lam, sim.units.role,
                                 sim.units.account, act, end, sim.u_depart)
    lam_p = sim.departure_lam[sim.units.role[idx_p]]
    sim.next_departure[idx_p] = np.maximum(
        sim.next_departure[idx_p] + sim._exp_times(sim.rng["departures"], lam_p), end)
    leave_now = idx_p[act[sim.units.account[idx_p]]]
    sim.u_depart[leave_now] = 0.0
    return idx_p, leave_now


def _complaints_due(sim: Simulation, end: float) -> tuple[np.ndarray, ...]:
    """The slots whose complaint arrives before ``end`` (the period's end) and when
    (``complaints_kernel.arrivals_due``), then, for those, the gaps to their next complaint
    (the ``complaints`` stream) and the work's uniforms (``complaint_work``): what the
    complaints section reads before it queues them. Nothing before it changes the clocks."""
    from kamsim.engine import complaints_kernel as ck

    due, arrivals = ck.arrivals_due(sim.next_complaint, end)
    gaps = sim.complaint_gaps(len(due))
    return due, arrivals, gaps, sim.rng["complaint_work"].random(len(due))


def _ahead(sim: Simulation, act: np.ndarray, end: float, kernels: bool
           ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, ...]]:
    """The work of a period that does not wait for the rest of it: :func:`_departures`, then
    :func:`_event_draws`."""
    return _departures(sim, act, end, kernels), _event_draws(sim)


def _event_draws(sim: Simulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The period's draws the events read, one a slot, each from its own stream: the events'
    uniform, the decisions' and the offers' gap."""
    rng, rows = sim.rng, sim.draws
    return (rng["events"].random(out=rows[0]), rng["decisions"].random(out=rows[1]),
            rng["offers"].random(out=rows[2]))


def _later_draws(sim: Simulation) -> tuple[np.ndarray, np.ndarray]:
    """The period's draws read after the events, one a slot: the wallets' growth
    (``exp(drift + sigma * z)``, z the ``wallet`` stream's standard normal) and the
    referrals' uniform."""
    rng, rows = sim.rng, sim.draws
    # exp(drift + sigma * z) in place (the same products and sums, a factor at a time)
    growth = rng["wallet"].standard_normal(out=rows[3])
    growth *= sim.wallet_sigma
    np.add(sim.wallet_drift, growth, out=growth)
    np.exp(growth, out=growth)
    return growth, rng["referrals"].random(out=rows[4])


def _share_and_wallet(sim: Simulation, act: np.ndarray, growth: np.ndarray, effects: bool,
                      kernels: bool) -> None:
    """Section "share of wallet": each share toward its stage's target (accounts in the
    portfolio: an arrival starts from its starting share, the lost keep the share they left
    with); wallets move with the market, those of the accounts yet to arrive too (a wallet
    is the account's spend in our category, whether it buys from us or not), but not those
    of the lost."""
    if kernels:
        sim.share, sim.wallet = _moved_compiled(sim, act, sim.share, sim.stage, sim.wallet,
                                                growth, effects)
        return
    st, mk, dt = sim.model.stages, sim.market, sim.dt
    if effects:
        pull = st.target_share[sim.stage] * (0.6 + 0.4 * sim.service_ratio)
        moved = sim.share + mk.share_speed * dt * (pull - sim.share)
        _clip(moved, 0.0, 1.0, out=moved)
        sim.share = np.where(act, moved, sim.share)
        del pull, moved
    grown = sim.wallet * growth
    sim.wallet = np.where(sim.churn_period < 0, grown, sim.wallet)


def _moved_compiled(sim: Simulation, act: np.ndarray, share: np.ndarray, stage: np.ndarray,
                    wallet: np.ndarray, growth: np.ndarray, effects: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_share_and_wallet`'s new shares (if ``effects``) and wallets in the kernels,
    from ``share``, ``stage`` and ``wallet``. (The growth is numpy's exp, made with the
    draws: its last bits differ from a compiled one's.)"""
    from kamsim.engine import step_kernels as sk

    if effects:
        share = sk.share_toward_target(act, share, stage, sim.model.stages.target_share,
                                       sim.service_ratio, sim.market.share_speed * sim.dt)
    return share, sk.wallet_grown(wallet, growth, sim.churn_period)


def _money_and_moves(sim: Simulation, act: np.ndarray, list_rev: np.ndarray, d: Any,
                     money_ratio: np.ndarray, am: np.ndarray, ex: np.ndarray, sp: np.ndarray,
                     support_hours: np.ndarray, bad_debt: np.ndarray, factor: float,
                     effects: bool, share: np.ndarray, stage: np.ndarray, wallet: np.ndarray,
                     growth: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray,
                                                  np.ndarray]:
    """:func:`_money` (compiled), then the new shares and wallets of
    :func:`_share_and_wallet` (compiled) from ``share``, ``stage`` and ``wallet`` as they
    were when the task was started: the same arrays, worked out on the other core while the
    stages move (their rules read neither: ``Simulation.moves_beside``; the stages section
    makes a new array for the stages and leaves the one given here as it was; the service
    ratio and the churn periods are not written before the task's result is taken)."""
    money = _money(sim, act, list_rev, d, money_ratio, am, ex, sp, support_hours, bad_debt,
                   factor, True)
    return (money, *_moved_compiled(sim, act, share, stage, wallet, growth, effects))


def _money(sim: Simulation, act: np.ndarray, list_rev: np.ndarray, d: Any,
           money_ratio: np.ndarray, am: np.ndarray, ex: np.ndarray, sp: np.ndarray,
           support_hours: np.ndarray, bad_debt: np.ndarray, factor: float,
           kernels: bool) -> tuple[np.ndarray, ...]:
    """The period's money of the accounts active at its start (``act``), added to their
    running sums (``sim.acc``; the lifetime value discounted by ``factor``): returns the
    discounts, cost of goods, cost to serve, bad debt and profit of each slot."""
    sv = sim.model.service
    dt = sim.dt
    acc = sim.acc
    if kernels:
        from kamsim.engine import step_kernels as sk

        # (support hours are integers when no complaint was answered: the zeros as floats,
        # as numpy's product turns them, so one compiled kernel serves)
        return sk.money(
            act, list_rev, d.discount_rate, money_ratio, sim.cost_share, am, ex, sp,
            support_hours.astype(np.float64, copy=False), d.level, sv.fixed_cost,
            sv.vip_joint, sv.rate_am, sv.rate_exec, sv.rate_specialist,
            sv.rate_support, dt, bad_debt, factor, acc["revenue"], acc["discounts"],
            acc["cogs"], acc["cost_to_serve"], acc["bad_debt"], acc["profit"], acc["clv"],
            sim.money_rows)
    disc = list_rev * d.discount_rate * money_ratio
    cogs = list_rev * sim.cost_share
    cts = (am * sv.rate_am + ex * sv.rate_exec + sp * sv.rate_specialist
           + support_hours * sv.rate_support
           + np.where(act, sv.fixed_cost[d.level] * dt, 0.0)
           + np.where(act, (sv.vip_cost + sv.joint_dev)[d.level] * dt * money_ratio, 0.0))
    bad_debt = np.where(act, bad_debt, 0.0)
    profit = list_rev - disc - cogs - cts - bad_debt
    for name, val in (("revenue", list_rev), ("discounts", disc), ("cogs", cogs),
                      ("cost_to_serve", cts), ("bad_debt", bad_debt), ("profit", profit)):
        acc[name] += val
    acc["clv"] += profit * factor
    return disc, cogs, cts, bad_debt, profit


def _ids_fit(sim: Simulation) -> bool:
    m, n = sim.model, sim.n
    st, sv, units = m.stages, m.service, sim.units
    ns, nt = len(st.names), len(m.tiers)
    offsets = units.offsets
    return (_within(sim.stage, ns) and _within(sim.tier, nt)
            and all(a.shape == (ns,) for a in (st.target_share, st.min_dwell,
                                               st.price_sensitivity, st.cost_to_serve,
                                               sim.referral_rate))
            and all(a.shape == (nt,) for a in (sv.am_hours, sv.exec_hours,
                                               sv.specialist_hours, sv.discount, sv.vip_cost,
                                               sv.joint_dev, sv.fixed_cost, sv.priority,
                                               sv.response_days))
            and _within(sim.prep.wom_src, n) and _within(sim.prep.wom_dst, n)
            and sim.prep.wom_weight.shape == sim.prep.wom_src.shape == sim.prep.wom_dst.shape
            and offsets.shape == (n + 1,) and _within(offsets, units.n_people + 1)
            and bool(np.all(offsets[1:] >= offsets[:-1]))
            and sim.next_departure.shape == sim.u_depart.shape == (units.n_people,)
            and _within(units.role, sim.departure_lam.shape[0]) and _within(units.account, n))


#: who is a key person among those who leave (``key_person_departures``; docs/model.md:
#: influence >= 0.5 or coverage >= 1/3): an influence of at least the first, or our coverage
#: of them at least the second (a third, with a hair of slack for a coverage that should be
#: a third but rounds just below)
KEY_INFLUENCE = 0.5
KEY_COVERAGE = 1 / 3 - 1e-9


#: the sums by tier of ``sim.ts``, in the order of :func:`tally_numpy`'s ``values``
SUMS = ("revenue", "discounts", "cogs", "cost_to_serve", "bad_debt", "profit", "am_asked",
        "am_delivered", "exec_asked", "exec_delivered", "specialist_asked",
        "specialist_delivered", "trust_sum", "coverage_sum", "service_ratio_sum")


def tally_numpy(k: int, ts: dict[str, np.ndarray], stage_counts: np.ndarray,
                transitions: np.ndarray, causes: np.ndarray, act: np.ndarray,
                churn: np.ndarray, cause: np.ndarray, tier_start: np.ndarray, tier: np.ndarray,
                stage_start: np.ndarray, stage: np.ndarray, values: tuple[np.ndarray, ...],
                o_acc: np.ndarray, o_ok: np.ndarray, new_idx: np.ndarray, acq: np.ndarray,
                offered: np.ndarray, defected: np.ndarray, trimmed: np.ndarray,
                kp_acc: np.ndarray, active: np.ndarray, churn_period: np.ndarray,
                churn_cause: np.ndarray) -> None:
    """Period ``k``'s row of every aggregate by tier (the tier at the period's start) and the
    leaving of the accounts lost in it (``active``, ``churn_period`` and ``churn_cause`` are
    the simulation's, written in place; ``values`` the arrays of :data:`SUMS`, in its order).
    kamsim.engine.tally_kernel.tally does the same in compiled passes, to the bit."""
    nt, ns = stage_counts.shape[1], stage_counts.shape[2]
    lost_idx = churn.nonzero()[0]
    active[lost_idx] = False
    churn_period[lost_idx] = k
    churn_cause[lost_idx] = cause[lost_idx]
    # the accounts active at the period's start and their tiers. The sums by tier go over
    # the slots up to the last active one (the slots after it are all inactive: accounts are
    # filled in slot order; a third of the slots are never filled in a default run), with the
    # inactive ones in a bin of their own (nt) that is dropped: a bin's values are added in
    # slot order either way, so the sums are those of a bincount over the active slots only,
    # without gathering each array's active values first
    live = act.nonzero()[0]
    top = int(live[-1]) + 1 if live.size else 0
    tier_live = tier_start[live]
    bins = np.where(act[:top], tier_start[:top], nt)
    for name, val in zip(SUMS, values, strict=True):
        ts[name][k] = np.bincount(bins, weights=val[:top], minlength=nt + 1)[:nt]
    # the complaints answered this period, of accounts active at its start (o_acc): counted
    # by tier, the integer sums of the per-account counts
    ts["complaints"][k] = np.bincount(tier_start[o_acc], minlength=nt)
    ts["complaints_unresolved"][k] = np.bincount(tier_start[o_acc[~o_ok]], minlength=nt)
    ts["active"][k] = np.bincount(tier_live, minlength=nt)
    ts["new"][k] = np.bincount(tier[new_idx], minlength=nt)
    # the arrivals' acquisition, by the tier they arrive in (as they are counted as new)
    if new_idx.size:
        ts["acquisition"][k] = np.bincount(tier[new_idx], weights=acq, minlength=nt)
        ts["profit"][k] -= ts["acquisition"][k]
    # churn, offers and trims are of accounts active at the period's start
    for name, accounts in (("churned", lost_idx), ("offers", offered),
                           ("offers_defect", defected), ("offers_trim", trimmed)):
        ts[name][k] = np.bincount(tier_start[accounts], minlength=nt)
    ts["key_person_departures"][k] = np.bincount(tier_start[kp_acc], minlength=nt)
    stage_counts[k] += _count((tier_live, stage_start[live]), (nt, ns))
    # transitions: from the stage at the start (or "new") to the stage at the end (or "lost")
    moving = live if new_idx.size == 0 else np.concatenate([live, new_idx])
    frm = np.where(act[moving], stage_start[moving], ns)
    to = np.where(churn[moving], ns, stage[moving])
    transitions[k] += _count((tier[moving], frm, to), (nt, ns + 1, ns + 1))
    causes[k] += _count((tier_start[lost_idx], cause[lost_idx]), (nt, len(CHURN_CAUSES)))


def _filled(sim: Simulation) -> int:
    """How many slots have been in the portfolio: accounts arrive in slot order, so every
    slot from this one on is out of it (never filled; the arrivals of a period are booked at
    its end). The passes that only act on accounts in the portfolio stop here: a quarter to
    a third of a large run's slots wait for an arrival."""
    return sim.next_free


def period_step(sim: Simulation, k: int) -> None:  # noqa: C901 - one straight sequence
    from kamsim.engine.core import _ANGRY, CAUSE, _p

    m = sim.model
    mk = sim.market
    sv = m.service
    st = m.stages
    dt = sim.dt
    t = k * dt
    act = sim.active.copy()
    trust_start = sim.trust.copy()
    n = sim.n
    top = _filled(sim)
    nt = len(m.tiers)
    log = sim.log
    # compiled kernels (kamsim.jit) for the service asked and delivered (allocation_kernel)
    # and the elementwise runs of trust, money, share of wallet and word of mouth
    # (step_kernels), one pass an account each: the same values as the numpy lines they stand
    # in for, to the bit. The decision units decide alike, from the same size (the
    # simulation asked kamsim.jit.wanted once for its run). Only if the kernels can take
    # this replication's arrays (checked once, see _kernels_fit)
    kernels = sim.kernels and _kernels_fit(sim)
    if kernels:
        from kamsim.engine import departures_kernel as dk
        from kamsim.engine import step_kernels as sk

    # -- re-tiering on schedule (with hysteresis)
    if sim._pending_retier:
        sim._pending_retier = False
        env = sim.fields()
        # (in a worker process one thread: the other core runs another worker; the sorts
        # compiled when the period's kernels are, numba being loaded for them)
        new_tier, score, quadrant = m.tiering.classify(env, act, current=sim.tier,
                                                       ids=sim.prep.accounts.account_id,
                                                       threads=sim.options.threads,
                                                       kernels=kernels)
        # (only accounts in the portfolio are re-tiered: the others keep their tier, score and
        # quadrant, the lost as they left, the arrivals as they will start)
        sim.score = np.where(act, score, sim.score)
        sim.quadrant = np.where(act, quadrant, sim.quadrant)
        del score, quadrant
        if log is not None:
            moved = np.flatnonzero(act & (new_tier != sim.tier))
            log.add(k, moved, "tier_change", new_tier[moved], sim.tier[moved])
        sim.tier = new_tier
    tier = sim.tier
    # the tiers and stages at the period's start: the arrays themselves, not copies (a
    # period never writes into them: the stages section makes a new array for sim.stage,
    # and nothing after the re-tiering above changes sim.tier)
    tier_start = tier
    stage_start = sim.stage

    # -- what does not wait for the rest of the period: the departures due and the events'
    # draws for every slot, each from its own stream. They read and write nothing that the
    # service and complaints sections below touch, so with two threads they run on the other
    # core meanwhile (a large portfolio in a process of its own; kamsim.lanes.aside), and
    # are taken before the decision units' step, which uses both cores. Same values either way
    # With the kernels, the complaints due this period and their draws go first there
    # (_complaints_due: the main thread takes them once the service is worked out)
    if kernels:
        complaints_due, ahead = lanes.aside_each(sim.aside_threads,
                                                 (_complaints_due, sim, t + dt),
                                                 (_ahead, sim, act, t + dt, kernels))
    else:
        ahead = lanes.aside(sim.aside_threads, _ahead, sim, act, t + dt, kernels)

    # -- service asked and delivered
    if kernels:
        from kamsim.engine import allocation_kernel as ak

        list_rev = ak.list_revenue(act, sim.wallet, sim.share, dt, np.empty(n))
    else:
        list_rev = np.where(act, sim.wallet / 12.0 * sim.share * dt, 0.0)
    strategy = m.spec.scenario.strategy
    if strategy.name == "value_based" and strategy.by != "score":
        # the expected lifetime value ranks the accounts (only the value-based strategy reads it)
        contribution = list_rev * sim.margin / dt
        hazard = np.maximum(1e-3, 1.0 - (1.0 - mk.base_churn_per_year) ** (1 / 12)
                            + 0.02 * (1.0 - sim.trust))
        clv_rank = contribution / (hazard + sim.d_month)
    else:
        clv_rank = sim.score
    need_env = m.priority is not None
    d = demand(m, tier, act, sim.stage, list_rev, sim.fields() if need_env else {},
               sim.quadrant, clv_rank, dt, kernels)
    cap = m.spec.scenario.capacity
    c_am = cap.account_managers * cap.am_hours_per_month * dt * sim.capacity_mult
    c_ex = cap.executives * cap.exec_hours_per_month * dt
    c_sp = cap.specialists * cap.specialist_hours_per_month * dt
    # one order of service for all four resources; accounts out of the portfolio ask nothing
    order = d.order
    am, am_used = _allocated(d.am, order, c_am, kernels)
    ex, ex_used = _allocated(d.exec, order, c_ex, kernels)
    sp, sp_used = _allocated(d.specialist, order, c_sp, kernels)
    if cap.budget_per_year is None:
        money = d.money
    else:
        money = allocate(d.money, order, cap.budget_per_year / 12.0 * dt * sim.budget_mult,
                         kernels)
    if kernels:
        # (with the quality of service the decision units see, section "decision units")
        money_ratio, sim.service_ratio, quality = ak.ratios(
            money, d.money, am, ex, sp, d.need, act, sim.service_ratio, np.empty(n),
            np.empty(n), np.empty(n))
    else:
        money_ratio = _ratio(money, d.money)
        # service ratio: delivered against the account's need (its own tier's level), capped
        # at 1
        sim.service_ratio = np.where(act, np.minimum(1.0, _ratio(am + ex + sp, d.need)),
                                     sim.service_ratio)
    sim.util[k, :3] = [am_used / c_am if c_am else 0.0, ex_used / c_ex if c_ex else 0.0,
                       sp_used / c_sp if c_sp else 0.0]

    # -- complaints: those arriving this period join the queue; outcomes answered so far
    if kernels:
        # the lines below in a pass over the slots and one over those due (complaints_kernel),
        # the draws between them in the same order
        from kamsim.engine import complaints_kernel as ck

        due, arrivals, gaps, u_work = complaints_due()
        del complaints_due
        c_acc, arr_live, u_live, c_priority, c_target = ck.queued(
            sim.next_complaint, due, arrivals, gaps, t + dt, act, u_work, d.level, sv.priority,
            sv.response_days)
        del gaps
    else:
        due = np.flatnonzero(sim.next_complaint < t + dt)
        arrivals = sim.next_complaint[due]
        # the next one; a second complaint of the same account in the same period waits for
        # the next period
        sim.next_complaint[due] = np.maximum(arrivals + sim.complaint_gaps(due.shape[0]),
                                             t + dt)
        u_work = sim.rng["complaint_work"].random(due.shape[0])
        live = act[due]
        c_acc = due[live]
        lvl = d.level[c_acc]
        arr_live, u_live = arrivals[live], u_work[live]
        c_priority, c_target = sv.priority[lvl], sv.response_days[lvl]
        del live, lvl
    hours = work_hours(m.spec.scenario.capacity.support, u_live)
    if isinstance(sim.desk, FluidDesk):
        sim.desk.submit(c_acc, np.clip((arr_live - t) / dt, 0, 1), c_priority, c_target, hours,
                        dt)
    else:
        sim.desk.submit(c_acc, np.maximum(arr_live, t), c_priority, c_target, hours)
    del due, arrivals, u_work, arr_live, u_live
    o_acc, o_days, o_hours, o_ok = sim.desk.collect()
    # an account lost since its complaint was raised no longer counts (nor costs) anything
    keep = act[o_acc]
    o_acc, o_days, o_hours, o_ok = o_acc[keep], o_days[keep], o_hours[keep], o_ok[keep]
    if kernels:
        from kamsim.engine.complaints_kernel import answered

        resolved, unresolved, support_hours = answered(o_acc, o_ok, o_hours, np.zeros(n),
                                                       np.zeros(n), np.zeros(n))
    else:
        resolved = np.bincount(o_acc[o_ok], minlength=n).astype(np.float64)
        unresolved = np.bincount(o_acc[~o_ok], minlength=n).astype(np.float64)
        support_hours = np.bincount(o_acc, weights=o_hours, minlength=n)
    support_cap = cap.support.agents * cap.support.hours_per_month * dt
    sim.util[k, 3] = float(o_hours.sum()) / support_cap if support_cap else 0.0
    if log is not None and o_acc.size:
        # only late complaints: the in-time ones are counted in the time series and would
        # make most of the log
        late = ~o_ok
        log.add(k, o_acc[late], "complaint", 0, np.minimum(o_days[late], 1e6))

    # -- decision units: contact, attitudes, key-person departures
    (idx_p, leave_now), (u, v, g_off) = ahead()
    del ahead
    if not kernels:
        # (with the kernels, the quality came with the service ratio: allocation_kernel.ratios)
        quality = 2.0 * sim.service_ratio - 1.0
        _clip(quality, -1.0, 1.0, out=quality)
    # the trace's opening tells the focus account's unit as it was before the run's first
    # step (the step changes attitudes and coverage and replaces who leaves, in place)
    people_start = (_people(sim, sim.options.focus) if sim.trace is not None and not sim.trace
                    and sim.options.focus is not None else None)
    # the step and the metrics of its stretch of active accounts (the others kept from
    # before), in one pass over the people where they run compiled
    before = sim.metrics
    out, mt = sim.dmu.step_metrics(StepInput(am_hours=am, exec_hours=ex, specialist_hours=sp,
                                             quality=quality, complaints_resolved=resolved,
                                             complaints_unresolved=unresolved, active=act),
                                   sim.u_depart, before,
                                   # (whose draw is below 1.0: 0 for those leaving now, 1.0
                                   # for the rest)
                                   leave_now)
    sim.metrics = mt
    sim.u_depart[leave_now] = 1.0
    # (the big temporaries are dropped once dead, to keep the peak low at 1M accounts)
    del leave_now, idx_p, quality
    if kernels:
        # the two lines below and the orphaned accounts' trust hit (section "trust") in a
        # pass over those who left each (departures_kernel)
        key, kp_acc = dk.key_people(out.departed_influence, out.departed_coverage,
                                    out.departed_account, KEY_INFLUENCE, KEY_COVERAGE)
    else:
        key = ((out.departed_influence >= KEY_INFLUENCE)
               | (out.departed_coverage >= KEY_COVERAGE))
        kp_acc = out.departed_account[key]
    if log is not None and out.departed_account.size:
        # the role, and our coverage of the person who left: the key-person departures as
        # key_person_left (what the time series counts), the others as other_person_left, so
        # the log holds every departure once. The lesson measures after a departure need
        # them all: whether a person of little influence is key depends on our coverage of
        # them, which the strategies a lesson compares differ in
        log.add(k, kp_acc, "key_person_left", out.departed_role[key], out.departed_coverage[key])
        other = ~key
        log.add(k, out.departed_account[other], "other_person_left", out.departed_role[other],
                out.departed_coverage[other])
        del other

    # the draws read after the events, on the other core while trust moves and the events
    # happen (taken before the money goes there)
    later = lanes.aside(sim.aside_threads, _later_draws, sim)

    # -- trust: toward a target set by service, the decision unit and time
    effects = mk.churn_effects
    if effects:
        if kernels:
            sim.trust = sk.trust_toward_target(
                sim.trust, sim.service_ratio, mt.sentiment, mt.coverage, sim.tenure, unresolved,
                resolved, mk.trust_speed * dt, mk.complaint_penalty, mk.complaint_recovery)
        else:
            target = (0.10 + 0.30 * sim.service_ratio + 0.30 * (mt.sentiment + 1.0) / 2.0
                      + 0.20 * mt.coverage + 0.10 * np.minimum(sim.tenure / 60.0, 1.0))
            _clip(target, 0.0, 1.0, out=target)
            sim.trust = sim.trust + mk.trust_speed * dt * (target - sim.trust)
            sim.trust = (sim.trust - mk.complaint_penalty * unresolved
                         + mk.complaint_recovery * resolved)
            del target
        # a relationship that hung on the person who just left breaks [003]: the account had
        # a thread before the departures and has none after (the others lose hit * 0 = +0.0,
        # which leaves them as they are; sim.trust is this period's own array by now)
        if kernels:
            dk.orphaned_hit(out.departed_account, before.multithreading, mt.multithreading,
                            sim.trust, mk.orphaned_trust_hit)
        else:
            left = out.departed_account
            orphaned = left[(before.multithreading[left] > 0)
                            & (mt.multithreading[left] == 0)]
            sim.trust[orphaned] = sim.trust[orphaned] - mk.orphaned_trust_hit
            del left, orphaned
    if kernels:
        sim.complaints_open = sk.complaints_age(sim.since_unresolved, sim.complaints_open,
                                                unresolved, dt, 0.5 ** (dt / 3.0))
    else:
        sim.since_unresolved += dt
        sim.since_unresolved[unresolved > 0] = 0.0
        sim.complaints_open = sim.complaints_open * 0.5 ** (dt / 3.0) + unresolved

    # -- events: one uniform per slot; competing risks on disjoint intervals. Every slot
    # draws (common random numbers), but an event happens only to an account in the portfolio:
    # a slot not yet filled or already lost loses nothing and has its wallet and share kept
    # (u, v and g_off were drawn with the departures, at the period's start; the wallets'
    # growth and the referrals' uniforms are being drawn beside trust and the events)
    churn = np.zeros(n, dtype=bool)
    cause = np.full(n, -1, dtype=np.int8)  # (a byte: a handful of causes, -1 for none)
    bad_debt = np.zeros(n)
    if effects:
        p_offer = 1.0 - np.exp(-mk.offer_rate_per_year * sim.offer_mult * dt / 12.0)
        h_unc = 1 - (1 - st.uncoupled_churn) ** dt  # the uncoupled accounts' hazard
        # The five events take up the bottom of a slot's uniform, up to their running sum of
        # probabilities (``bounds``), and leaving for lack of trust the hazard above it: all
        # of it is a few in a hundred, so the intervals are worked out only for the slots
        # whose uniform lies below a bound of all of it (one comparison each; an uncoupled
        # slot's bound takes in the uncoupled hazard, the others' the trust's), with the
        # same operations as over every slot, so the same values
        reach, reach_unc = _event_reach(sim, p_offer, h_unc)
        # (and only for the slots that have been in the portfolio: an event to one that
        # has never been changes nothing, and a quarter of a large run's slots wait for an
        # arrival)
        c = _event_slots(u[:top], sim.stage[:top], reach, reach_unc, st.uncoupled, kernels)
    if effects and kernels:
        # the lines below, from ``uc = u[c]`` on, in two compiled passes over the slots ``c``
        # with numpy's exp and _p between them (events_kernel)
        from kamsim.engine import events_kernel as ek

        ev = ek.events(
            c, u, v, g_off, act, sim.event_bounds, p_offer, sim.p_default, sim.trust,
            sim.stage, mt.dm_covered, st.uncoupled, st.ladder, mk.base_churn_per_year, dt,
            h_unc, sim.price_gap, d.discount_rate, money_ratio, sim.units.offsets,
            sim.units.price_focus, sim.units.influence, structure(sim.units).sum_influence,
            sim.price_sensitivity, st.price_sensitivity, mt.multithreading, mt.champion,
            sim.since_unresolved, mk.loss_given_default, sim.unfair_share, sim.wallet,
            sim.share, churn, cause, bad_debt)
        offered, defected, trimmed = ev.offered, ev.defected, ev.trimmed
        outcome, dflt = ev.outcome, ev.dflt
        if log is not None or sim.trace is not None:
            # (the trace reads every slot's gap from the step's locals)
            gap = sim.price_gap * (0.5 + g_off)
        del p_offer, c, ev
    elif effects:
        uc = u[c]
        # upper bounds of the five intervals for the slots ``c``; those of failure, strategy
        # change and consolidation do not change from period to period
        bounds = [b[c] for b in sim.event_bounds]
        bounds.append(bounds[-1] + p_offer)
        bounds.append(bounds[-1] + sim.p_default[c])
        monthly_rev = sim.wallet[c] / 12.0 * sim.share[c]
        # financial failure: lost, with two months of receivables written off
        at = uc < bounds[0]
        fail = c[at]
        churn[fail] = True
        cause[fail] = CAUSE["financial_failure"]
        bad_debt[fail] += 2.0 * monthly_rev[at] * mk.loss_given_default
        # the account's own strategy changes: half leave the line, half shrink it
        strat = c[(uc >= bounds[0]) & (uc < bounds[1])]
        at = v[strat] < 0.5
        leave = strat[at]
        churn[leave] = True
        cause[leave] = CAUSE["strategy_change"]
        shrink = strat[~at]
        sim.wallet[shrink[act[shrink]]] *= 0.6
        # supplier consolidation: dropped unless trusted, deep and covered
        cons = c[(uc >= bounds[1]) & (uc < bounds[2])]
        keep_logit = (-1.0 + 4.0 * sim.trust[cons] + 1.5 * _stage_frac(st, sim.stage[cons])
                      + 0.5 * mt.dm_covered[cons])
        at = v[cons] < 1.0 / (1.0 + np.exp(keep_logit))
        dropped = cons[at]
        churn[dropped] = True
        cause[dropped] = CAUSE["supplier_consolidation"]
        kept = cons[~at & act[cons]]
        sim.share[kept] = np.minimum(1.0, sim.share[kept] * 1.25)
        # competitor offers: defect, trim our share, or stay (multinomial logit)
        gap = sim.price_gap * (0.5 + g_off)
        off = c[(uc >= bounds[2]) & (uc < bounds[3])]
        gap_eff = np.maximum(0.0, gap[off] - d.discount_rate[off] * money_ratio[off])
        people, owner = _people_of(sim.units, off)
        focus = np.bincount(owner, weights=sim.units.price_focus[people]
                            * sim.units.influence[people], minlength=off.size)
        focus = focus.astype(np.float64, copy=False)  # bincount of nothing gives integers
        weight = structure(sim.units).sum_influence
        price_focus = _ratio(focus, weight[off])
        ps = (sim.price_sensitivity[off] * st.price_sensitivity[sim.stage[off]]
              * (0.5 + price_focus))
        mt_frac = np.minimum(mt.multithreading[off], 3.0) / 3.0
        u_defect = (1.0 + 12.0 * gap_eff * ps - 4.0 * sim.trust[off]
                    - 0.8 * _stage_frac(st, sim.stage[off]) - 0.6 * mt_frac
                    - 0.4 * mt.champion[off])
        u_trim = u_defect + 1.0
        exp_defect, exp_trim = np.exp(u_defect), np.exp(u_trim)
        denom = 1.0 + exp_defect + exp_trim
        p_d = exp_defect / denom
        p_t = exp_trim / denom
        v_off = v[off]
        defect_off = (v_off < p_d) & ~churn[off]
        trim_off = (v_off >= p_d) & (v_off < p_d + p_t)
        churn[off[defect_off]] = True
        unfair = g_off[off[defect_off]] > 1.0 - sim.unfair_share
        cause[off[defect_off]] = np.where(unfair, CAUSE["competitor_unfair"],
                                          CAUSE["stronger_competitor"])
        # the offers to accounts active at the period's start, and which of them defected or
        # trimmed (for the log and the aggregates)
        off_act = act[off]
        offered, defected, trimmed = off[off_act], off[defect_off & off_act], off[trim_off & off_act]
        sim.share[trimmed] *= 0.7
        # payment default: a month of revenue partly lost; the account stays
        at = (uc >= bounds[3]) & (uc < bounds[4]) & act[c]
        dflt = c[at]
        bad_debt[dflt] += monthly_rev[at] * mk.loss_given_default * dt
        # leaving for lack of trust (and once uncoupled): blamed on unresolved complaints or
        # a key-person change when one happened in the last six months
        h = _p(mk.base_churn_per_year * 4.0 * (1.0 - sim.trust[c]) ** 2, dt)
        h = np.where(sim.stage[c] == st.uncoupled, h_unc, h)
        lost = c[(uc >= bounds[4]) & (uc < bounds[4] + h) & ~churn[c]]
        churn[lost] = True
        cause[lost] = np.where(sim.since_unresolved[lost] <= 6.0,
                               CAUSE["unresolved_complaints"], CAUSE["key_person_or_trust"])
        if log is not None:  # (each offer's outcome: only the log reads them)
            outcome = np.where(defect_off, 2, np.where(trim_off, 1, 0))[off_act]
        del (p_offer, c, uc, bounds, at, fail, strat, leave, shrink, cons, dropped, kept,
             monthly_rev, h, lost)
    else:
        # degenerate setting: a constant hazard is the only way to leave
        h = _p(mk.base_churn_per_year, dt)
        lost = u < h
        churn |= lost
        cause[lost] = CAUSE["key_person_or_trust"]
        offered = defected = trimmed = np.zeros(0, dtype=np.intp)
    if effects:
        if log is not None:
            log.add(k, offered, "offer", outcome, gap[offered])
            log.add(k, dflt, "default", 0, bad_debt[dflt])
            del outcome
        del dflt
    churn &= act
    del u, v, g_off

    # -- money of the period (accounts active at its start)
    # (acquisition is booked with the arrivals, below: an account is paid for when won)
    factor = (1.0 + sim.d_month) ** (-t)
    growth, u_ref = later()
    del later
    # (on the other core while the shares, wallets and stages move: it writes only the
    # accounts' running sums, which nothing reads before the arrivals are booked). With the
    # kernels, and if no stage rule reads a share or a wallet, the shares and wallets move
    # there too, after the money (_money_and_moves), from the arrays of this moment
    beside = kernels and sim.moves_beside
    money_done: Callable[[], Any]
    if beside:
        money_done = lanes.aside(sim.aside_threads, _money_and_moves, sim, act, list_rev, d,
                                 money_ratio, am, ex, sp, support_hours, bad_debt, factor,
                                 effects, sim.share, sim.stage, sim.wallet, growth)
    else:
        money_done = lanes.aside(sim.aside_threads, _money, sim, act, list_rev, d,
                                 money_ratio, am, ex, sp, support_hours, bad_debt, factor,
                                 kernels)
        _share_and_wallet(sim, act, growth, effects, kernels)
    del growth

    # -- stages: up or down one step after the minimum dwell; uncouple from any stage
    # (only accounts in the portfolio age: an arrival starts its first stage at 0 months, so
    # it stays the stage's min_dwell_months like any other account)
    if kernels and effects:
        # the lines below in two passes around the rules (stages_kernel): the masks a stage,
        # their ors and puts, and the changed accounts are some forty numpy calls a period;
        # the rules are asked as below, in the same order and on the same conditions, each
        # at the accounts its answer decides for (Expr's rows: the values the evaluation
        # over every account gives there)
        from kamsim.engine import stages_kernel as stk

        stage = sim.stage
        sim.tenure, sim.months_in_stage, movers, starts, n_uncoupled = stk.stages_age(
            act, sim.tenure, sim.months_in_stage, dt, stage, st.min_dwell, st.ladder)
        env = sim.fields()
        # what the up and down rules said of the accounts that may move, a stage's rules
        # at its own accounts (rows): a third of the slots, where every rule over every slot
        # read all of them (some 8 ms a 1M month). 1 up, 2 down (up first), 0 neither
        said = np.zeros(n, dtype=np.int8)
        for s in range(st.ladder):  # a loop over stages, not accounts
            rows = movers[starts[s]:starts[s + 1]]
            if not rows.size:
                continue
            up = down = None
            if st.up[s] is not None and s + 1 < st.ladder:
                up = st.up[s](env, n, act, rows=rows)  # type: ignore[misc]
            if st.down[s] is not None and s > 0:
                down = st.down[s](env, n, act, rows=rows)  # type: ignore[misc]
            if down is not None:
                said[rows[down]] = 2
            if up is not None:  # (written last: up first)
                said[rows[up]] = 1
        unc_said = st.uncouple(env, n, act)
        rec, rec_asked = unc_said, False
        if st.recover is not None and n_uncoupled:  # (none uncoupled, mostly)
            rec = act & (stage == st.uncoupled)
            rec_asked = True
            rec &= st.recover(env, n, act)
        new_stage, changed = stk.stages_move(act, stage, said, unc_said, rec, rec_asked,
                                             st.uncoupled, sim.months_in_stage)
        if log is not None:
            log.add(k, changed, "stage_change", new_stage[changed], stage[changed])
        sim.stage = new_stage
        del env, stage, new_stage, movers, said, unc_said, rec
    else:
        in_portfolio = np.where(act, dt, 0.0)
        sim.tenure = sim.tenure + in_portfolio
        sim.months_in_stage = sim.months_in_stage + in_portfolio
        del in_portfolio
    if effects and not kernels:
        env = sim.fields()
        stage = sim.stage
        may_move = act & (sim.months_in_stage >= st.min_dwell.take(stage))
        # who goes a step up and who a step down, added to the stages at the end (one pass,
        # not two writes through a boolean index a stage)
        ups, downs = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        for s in range(st.ladder):  # a loop over stages, not accounts
            here = may_move & (stage == s)
            if not here.any():
                continue
            if st.up[s] is not None and s + 1 < st.ladder:
                up = here & st.up[s](env, n, act)  # type: ignore[misc]
                ups |= up
                np.greater(here, up, out=here)  # here and not up: up first
            if st.down[s] is not None and s > 0:
                here &= st.down[s](env, n, act)  # type: ignore[misc]
                downs |= here
        new_stage = stage + (ups.view(np.int8) - downs.view(np.int8))
        unc = act & (stage != st.uncoupled) & st.uncouple(env, n, act)
        np.putmask(new_stage, unc, st.uncoupled)
        if st.recover is not None:
            rec = act & (stage == st.uncoupled)
            if rec.any():  # (none uncoupled, mostly)
                rec &= st.recover(env, n, act)
                np.putmask(new_stage, rec, 0)
        changed = np.flatnonzero(new_stage != stage)
        if log is not None:
            log.add(k, changed, "stage_change", new_stage[changed], sim.stage[changed])
        sim.months_in_stage[changed] = 0.0
        sim.stage = new_stage
        del env, stage, new_stage, may_move, ups, downs

    if beside:
        (disc, cogs, cts, bad_debt, profit), sim.share, sim.wallet = money_done()
    else:
        disc, cogs, cts, bad_debt, profit = money_done()
    del money_done, money_ratio

    # -- word of mouth: leaders' satisfaction and anger reach their followers
    new_idx = np.zeros(0, dtype=np.int64)
    wom = bool(effects and sim.prep.wom_src.size and mk.word_of_mouth > 0)
    if wom and kernels:
        # the lines below, the settling of trust included: a pass over the leaders (the
        # edges' sources, wom_speakers), one over the edges (in their order, as the
        # bincounts add them) and one to settle (with two threads, in two lanes cut where
        # prepare found they can be: wom_cut)
        sim.trust = sk.word_of_mouth(act, sim.trust, trust_start, churn, cause, _ANGRY,
                                     mk.negative_weight, sim.prep.wom_src, sim.prep.wom_dst,
                                     sim.prep.wom_weight, mk.word_of_mouth * dt,
                                     sim.prep.wom_cut if sim.aside_threads > 1 else None, top,
                                     sim.prep.wom_speakers)
    else:
        if wom:
            src, dst, w = sim.prep.wom_src, sim.prep.wom_dst, sim.prep.wom_weight
            signal = np.where(act, sim.trust - 0.5, 0.0)
            angry = np.zeros(n, dtype=bool)
            lost_now = churn.nonzero()[0]
            angry[lost_now] = _ANGRY[cause[lost_now]]  # (every lost account has a cause)
            signal = np.where(angry, -0.5, signal)
            signal = np.where(signal < 0, signal * mk.negative_weight, signal)
            # only leaders in the portfolio or leaving angry speak; the others' signal is 0
            live_edge = (act | angry)[src]
            num = np.bincount(dst, weights=w * signal[src], minlength=n)
            den = np.bincount(dst, weights=w * live_edge, minlength=n)
            sim.trust = sim.trust + mk.word_of_mouth * dt * _ratio(num, den) * (den > 0)
            del signal, angry, live_edge, num, den
        # only accounts in the portfolio this period move: the lost keep the trust they left
        # with, and those yet to arrive start from their own starting trust
        sim.trust = np.where(act, _clip(sim.trust, 0.0, 1.0), trust_start)

    # -- new accounts: referrals from satisfied accounts, and cold acquisition
    if effects:
        if kernels:
            from kamsim.engine import tally_kernel as tk

            # (over the slots that have been in the portfolio: only those are active)
            referrals = tk.referrals(act[:top], churn[:top], u_ref[:top], sim.referral_rate,
                                     sim.stage[:top], sim.influence[:top], sim.trust[:top])
        else:
            p_ref = (sim.referral_rate[sim.stage] * sim.influence
                     * np.maximum(0.0, 2.0 * sim.trust - 1.0))
            referrals = int(np.count_nonzero(act & ~churn & (u_ref < p_ref)))
        sim.cold_accumulator += sim.prep.n_start * mk.cold_acquisition_per_year / 12.0 * dt
        cold = int(sim.cold_accumulator)
        sim.cold_accumulator -= cold
        total = min(referrals + cold, sim.n - sim.next_free)
        if total > 0:
            new_idx = np.arange(sim.next_free, sim.next_free + total)
            sim.next_free += total
            n_ref = min(referrals, total)
            # the cost of winning them is booked now, in the period they are won (what the
            # new_account event says), not in their first active period: an account won in
            # the last period was counted as new but its cost fell past the horizon
            acq = np.full(total, mk.acquisition_cost)
            acq[:n_ref] = mk.acquisition_cost * mk.referral_cost_ratio
            # (the arrivals are the next slots in a row: written through a slice, which is
            # new_idx's values without gathering and scattering them)
            won = slice(sim.next_free - total, sim.next_free)
            sim.acc["acquisition"][won] += acq
            sim.acc["profit"][won] -= acq
            sim.acc["clv"][won] -= acq * factor
            sim.trust[won][:n_ref] += 0.1  # a referral arrives with some trust
            sim.active[won] = True
            sim.born[won] = k + 1
            if log is not None:
                log.add(k, new_idx, "new_account", np.r_[np.ones(n_ref), np.zeros(total - n_ref)]
                        .astype(np.int64), acq)

    # -- the accounts lost this period leave, and the aggregates by tier (tier at the
    # period's start)
    if log is not None:
        lost_idx = churn.nonzero()[0]
        log.add(k, lost_idx, "churn", cause[lost_idx], list_rev[lost_idx])
    tally: Callable[..., None]
    if kernels:
        # in a few compiled passes over the slots (some thirty numpy calls a period: at
        # 10,000 accounts their calls cost more than their work); the same sums, each added
        # in slot order from +0.0, the counts on the other core with two threads; up to
        # the slots never in the portfolio, past this period's arrivals
        from kamsim.engine import tally_kernel

        tally = functools.partial(tally_kernel.tally, threads=sim.aside_threads,
                                  top=_filled(sim))
    else:
        tally = tally_numpy
    tally(k, sim.ts, sim.stage_counts, sim.transitions, sim.causes, act, churn, cause,
          tier_start, tier, stage_start, sim.stage,
          (list_rev, disc, cogs, cts, bad_debt, profit, d.am, am, d.exec, ex, d.specialist, sp,
           sim.trust, mt.coverage, sim.service_ratio),
          o_acc, o_ok, new_idx, acq if new_idx.size else new_idx, offered, defected, trimmed,
          kp_acc, sim.active, sim.churn_period, sim.churn_cause)

    if sim.trace is not None:
        _trace(sim, k, locals())
    del before


def _trace(sim: Simulation, k: int, ns: dict[str, Any]) -> None:
    """Record everything about the focus account in this period (for ``kamsim trace``)."""
    f = sim.options.focus
    assert f is not None and sim.trace is not None
    act = ns["act"]
    if not act[f] and sim.churn_period[f] != k:
        return
    u = sim.units
    lo, hi = int(u.offsets[f]), int(u.offsets[f + 1])
    out = ns["out"]
    left = np.flatnonzero(out.departed_account == f)
    mt = sim.metrics
    mine = (u.edge_src >= lo) & (u.edge_src < hi)
    # (the account is active at the period's start here: its offers are among ``offered``)
    offered = bool((ns["offered"] == f).any())
    dem = ns["d"]
    rec = {
        "period": k, "month": round(k * sim.dt, 3),
        "tier": sim.model.tiers[int(ns["tier_start"][f])],
        "stage_start": sim.model.stages.names[int(ns["stage_start"][f])],
        "stage": sim.model.stages.names[int(sim.stage[f])],
        "trust": float(sim.trust[f]), "coverage": float(mt.coverage[f]),
        "sentiment": float(mt.sentiment[f]), "multithreading": float(mt.multithreading[f]),
        "champion": bool(mt.champion[f]), "dm_covered": bool(mt.dm_covered[f]),
        "red_flags": int(mt.red_flags[f]),
        "coverage_before": float(ns["before"].coverage[f]),
        "service_ratio": float(sim.service_ratio[f]),
        # the contact the account's own tier needs (what service_ratio is measured against),
        # what the strategy asks for it (at the level it offers) and what the team delivered:
        # the narration tells a strategy that offers less than the need from a stretched team
        "hours_needed": float(dem.need[f]),
        "level": sim.model.tiers[int(dem.level[f])],
        "hours_asked": float(dem.am[f] + dem.exec[f] + dem.specialist[f]),
        "hours_delivered": float(ns["am"][f] + ns["ex"][f] + ns["sp"][f]),
        "revenue": float(ns["list_rev"][f]), "profit": float(ns["profit"][f]),
        "cost_to_serve": float(ns["cts"][f]), "share": float(sim.share[f]),
        "complaints_resolved": int(ns["resolved"][f]),
        "complaints_unresolved": int(ns["unresolved"][f]),
        "offer": bool(offered),
        "offer_gap": float(ns["gap"][f]) if "gap" in ns else 0.0,
        "offer_outcome": ("defect" if ns["churn"][f] else "trim" if (ns["trimmed"] == f).any()
                          else "stay") if offered else None,
        "departed": [{"person": str(u.person_id[int(out.departed[i])]),
                      "role": u.role_names[int(out.departed_role[i])],
                      "coverage": float(out.departed_coverage[i]),
                      "influence": float(out.departed_influence[i])} for i in left],
        "churned": bool(ns["churn"][f]),
        "cause": CHURN_CAUSES[int(ns["cause"][f])] if ns["churn"][f] else None,
        "people": _people(sim, f),
        "edges": [(str(u.person_id[s]), str(u.person_id[d]), float(w), int(sg))
                  for s, d, w, sg in zip(u.edge_src[mine], u.edge_dst[mine],
                                         u.edge_weight[mine], u.edge_sign[mine], strict=True)],
    }
    if ns["people_start"] is not None:
        # the first record: the account before this period's events, one moment for the
        # opening sentence (the metrics, trust, stage and tier at the period's start)
        before = ns["before"]
        rec["start"] = {
            "tier": rec["tier"], "stage": rec["stage_start"],
            "trust": float(ns["trust_start"][f]), "coverage": float(before.coverage[f]),
            "sentiment": float(before.sentiment[f]),
            "multithreading": float(before.multithreading[f]),
            "champion": bool(before.champion[f]), "dm_covered": bool(before.dm_covered[f]),
            "red_flags": int(before.red_flags[f]), "people": ns["people_start"]}
    sim.trace.append(rec)


def _people(sim: Simulation, f: int) -> list[dict[str, Any]]:
    """The people of account ``f``'s decision unit as they are now."""
    u = sim.units
    return [{"id": str(u.person_id[p]), "role": u.role_names[int(u.role[p])],
             "influence": float(u.influence[p]), "attitude": float(u.attitude[p]),
             "coverage": float(u.coverage[p]), "months_in_post": float(u.months_in_post[p])}
            for p in range(int(u.offsets[f]), int(u.offsets[f + 1]))]
