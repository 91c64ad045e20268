"""Compiled kernels (numba, see :mod:`kamsim.jit`) for runs of elementwise passes of
:func:`kamsim.engine.step.period_step`.

Each numpy line of those runs makes a fresh array over every slot (8 MB at 1M accounts) and
reads its inputs again; a kernel does the whole run in one pass an account. It does the numpy
lines' arithmetic value by value in their order (Python evaluates ``a * b * c`` as
``(a * b) * c``: so does the kernel; a product of Python floats is worked out by the caller,
as numpy gets it), so the results are the numpy path's to the bit. What a kernel leaves out
stays in numpy, before or after it: ``np.exp`` (numpy's SIMD exp differs from libm in the last
bits) and the random draws. Imported only once :func:`kamsim.jit.wanted` said yes.

The arrays a kernel fills are made by numpy and handed to it: an array numba allocates is
page-faulted afresh on every call (several at once cost a kernel ten times its arithmetic at
100k accounts), numpy's come from its allocator (huge pages from 4 MB on), as the numpy
path's do.
"""

from __future__ import annotations

import threading

import numpy as np

from kamsim import lanes
from kamsim.engine.prepare import wom_speakers
from kamsim.jit import kernel

__all__ = ["trust_toward_target", "complaints_age", "money", "share_toward_target",
           "wallet_grown", "word_of_mouth"]


# (each kernel module has its own copy of this one-value helper, on purpose: numba's on-disk
# cache of a kernel is renewed only when the kernel's own file changes, so a kernel calling a
# helper from another file could keep running an old version of it)
@kernel
def _clip(x: float, lo: float, hi: float) -> float:
    """``kamsim.ufuncs.clip`` of one value: ``lo`` if below it, ``hi`` if above, else ``x``
    itself (NaN stays NaN, -0.0 stays -0.0: what numpy's clip loop gives)."""
    x = lo if x < lo else x
    return hi if x > hi else x


@kernel
def _minimum(a: float, b: float) -> float:
    """``np.minimum`` of one pair: a NaN in ``a`` comes through (the callers' ``b`` is a
    constant)."""
    return a if (a <= b or np.isnan(a)) else b


def trust_toward_target(trust: np.ndarray, service_ratio: np.ndarray, sentiment: np.ndarray,
                        coverage: np.ndarray, tenure: np.ndarray, unresolved: np.ndarray,
                        resolved: np.ndarray, speed: float, penalty: float,
                        recovery: float) -> np.ndarray:
    """The new trust of every slot, section "trust" of period_step (``speed`` is
    ``mk.trust_speed * dt``, ``penalty`` and ``recovery`` the market's complaint ones):

        target = (0.10 + 0.30 * sim.service_ratio + 0.30 * (mt.sentiment + 1.0) / 2.0
                  + 0.20 * mt.coverage + 0.10 * np.minimum(sim.tenure / 60.0, 1.0))
        _clip(target, 0.0, 1.0, out=target)
        sim.trust = sim.trust + mk.trust_speed * dt * (target - sim.trust)
        sim.trust = sim.trust - mk.complaint_penalty * unresolved + mk.complaint_recovery * resolved
    """
    out = np.empty(trust.shape[0])
    _trust_toward_target(trust, service_ratio, sentiment, coverage, tenure, unresolved,
                         resolved, speed, penalty, recovery, out)
    return out


@kernel
def _trust_toward_target(trust: np.ndarray, service_ratio: np.ndarray, sentiment: np.ndarray,
                         coverage: np.ndarray, tenure: np.ndarray, unresolved: np.ndarray,
                         resolved: np.ndarray, speed: float, penalty: float, recovery: float,
                         out: np.ndarray) -> None:
    for i in range(trust.shape[0]):
        target = (0.10 + 0.30 * service_ratio[i] + 0.30 * (sentiment[i] + 1.0) / 2.0
                  + 0.20 * coverage[i] + 0.10 * _minimum(tenure[i] / 60.0, 1.0))
        target = _clip(target, 0.0, 1.0)
        moved = trust[i] + speed * (target - trust[i])
        out[i] = moved - penalty * unresolved[i] + recovery * resolved[i]


def complaints_age(since_unresolved: np.ndarray, complaints_open: np.ndarray,
                   unresolved: np.ndarray, dt: float, decay: float) -> np.ndarray:
    """``since_unresolved`` aged in place and the new ``complaints_open`` (``decay`` is
    ``0.5 ** (dt / 3.0)``), section "trust" of period_step:

        sim.since_unresolved += dt
        sim.since_unresolved[unresolved > 0] = 0.0
        sim.complaints_open = sim.complaints_open * 0.5 ** (dt / 3.0) + unresolved
    """
    out = np.empty(complaints_open.shape[0])
    _complaints_age(since_unresolved, complaints_open, unresolved, dt, decay, out)
    return out


@kernel
def _complaints_age(since_unresolved: np.ndarray, complaints_open: np.ndarray,
                    unresolved: np.ndarray, dt: float, decay: float, out: np.ndarray) -> None:
    for i in range(since_unresolved.shape[0]):
        since_unresolved[i] += dt
        if unresolved[i] > 0:
            since_unresolved[i] = 0.0
        out[i] = complaints_open[i] * decay + unresolved[i]


def money(act: np.ndarray, list_rev: np.ndarray, discount_rate: np.ndarray,
          money_ratio: np.ndarray, cost_share: np.ndarray, am: np.ndarray, ex: np.ndarray,
          sp: np.ndarray, support_hours: np.ndarray, level: np.ndarray,
          fixed_cost: np.ndarray, vip_joint: np.ndarray, rate_am: float, rate_exec: float,
          rate_specialist: float, rate_support: float, dt: float, bad_debt: np.ndarray,
          factor: float, acc_revenue: np.ndarray, acc_discounts: np.ndarray,
          acc_cogs: np.ndarray, acc_cost_to_serve: np.ndarray, acc_bad_debt: np.ndarray,
          acc_profit: np.ndarray, acc_clv: np.ndarray, out: np.ndarray | None = None,
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``disc, cogs, cts, bad_debt, profit`` of the period, added to the running totals
    ``sim.acc[...]`` in place, section "money of the period" of period_step (``vip_joint``
    is ``sv.vip_cost + sv.joint_dev``, ``factor`` the period's discount factor):

        disc = list_rev * d.discount_rate * money_ratio
        cogs = list_rev * sim.cost_share
        cts = (am * sv.rate_am + ex * sv.rate_exec + sp * sv.rate_specialist
               + support_hours * sv.rate_support
               + np.where(act, sv.fixed_cost[d.level] * dt, 0.0)
               + np.where(act, (sv.vip_cost + sv.joint_dev)[d.level] * dt * money_ratio, 0.0))
        bad_debt = np.where(act, bad_debt, 0.0)
        profit = list_rev - disc - cogs - cts - bad_debt
        sim.acc[name] += val  (revenue, discounts, cogs, cost_to_serve, bad_debt, profit)
        sim.acc["clv"] += profit * factor

    ``out`` (5, n): the rows to write the five into (new arrays if None).
    """
    n = act.shape[0]
    disc, cogs, cts, bad, profit = (np.empty(n) for _ in range(5)) if out is None else out
    _money(act, list_rev, discount_rate, money_ratio, cost_share, am, ex, sp, support_hours,
           level, fixed_cost, vip_joint, rate_am, rate_exec, rate_specialist, rate_support, dt,
           bad_debt, factor, acc_revenue, acc_discounts, acc_cogs, acc_cost_to_serve,
           acc_bad_debt, acc_profit, acc_clv, disc, cogs, cts, bad, profit)
    return disc, cogs, cts, bad, profit


@kernel
def _money(act: np.ndarray, list_rev: np.ndarray, discount_rate: np.ndarray,
           money_ratio: np.ndarray, cost_share: np.ndarray, am: np.ndarray, ex: np.ndarray,
           sp: np.ndarray, support_hours: np.ndarray, level: np.ndarray,
           fixed_cost: np.ndarray, vip_joint: np.ndarray, rate_am: float, rate_exec: float,
           rate_specialist: float, rate_support: float, dt: float, bad_debt: np.ndarray,
           factor: float, acc_revenue: np.ndarray, acc_discounts: np.ndarray,
           acc_cogs: np.ndarray, acc_cost_to_serve: np.ndarray, acc_bad_debt: np.ndarray,
           acc_profit: np.ndarray, acc_clv: np.ndarray, disc: np.ndarray, cogs: np.ndarray,
           cts: np.ndarray, bad: np.ndarray, profit: np.ndarray) -> None:
    # four passes, not one: a loop over some thirty arrays that all start at the same offset
    # in a page (numpy's large arrays do) thrashes the cache, at twice numpy's time; a few
    # arrays a loop run at twice numpy's speed
    n = act.shape[0]
    for i in range(n):
        rev = list_rev[i]
        disc[i] = rev * discount_rate[i] * money_ratio[i]
        cogs[i] = rev * cost_share[i]
        acc_revenue[i] += rev
        acc_discounts[i] += disc[i]
        acc_cogs[i] += cogs[i]
    for i in range(n):
        fixed = fixed_cost[level[i]] * dt if act[i] else 0.0
        vip = vip_joint[level[i]] * dt * money_ratio[i] if act[i] else 0.0
        cts[i] = (am[i] * rate_am + ex[i] * rate_exec + sp[i] * rate_specialist
                  + support_hours[i] * rate_support + fixed + vip)
        acc_cost_to_serve[i] += cts[i]
    for i in range(n):
        bad[i] = bad_debt[i] if act[i] else 0.0
        profit[i] = list_rev[i] - disc[i] - cogs[i] - cts[i] - bad[i]
    for i in range(n):
        acc_bad_debt[i] += bad[i]
        acc_profit[i] += profit[i]
        acc_clv[i] += profit[i] * factor


def share_toward_target(act: np.ndarray, share: np.ndarray, stage: np.ndarray,
                        target_share: np.ndarray, service_ratio: np.ndarray,
                        speed: float) -> np.ndarray:
    """The new share of every slot (``speed`` is ``mk.share_speed * dt``), section "share of
    wallet" of period_step:

        pull = st.target_share[sim.stage] * (0.6 + 0.4 * sim.service_ratio)
        moved = sim.share + mk.share_speed * dt * (pull - sim.share)
        _clip(moved, 0.0, 1.0, out=moved)
        sim.share = np.where(act, moved, sim.share)
    """
    out = np.empty(share.shape[0])
    _share_toward_target(act, share, stage, target_share, service_ratio, speed, out)
    return out


@kernel
def _share_toward_target(act: np.ndarray, share: np.ndarray, stage: np.ndarray,
                         target_share: np.ndarray, service_ratio: np.ndarray, speed: float,
                         out: np.ndarray) -> None:
    for i in range(share.shape[0]):
        if act[i]:
            pull = target_share[stage[i]] * (0.6 + 0.4 * service_ratio[i])
            moved = share[i] + speed * (pull - share[i])
            out[i] = _clip(moved, 0.0, 1.0)
        else:
            out[i] = share[i]


def wallet_grown(wallet: np.ndarray, growth: np.ndarray, churn_period: np.ndarray,
                 ) -> np.ndarray:
    """The new wallets, ``growth`` being ``np.exp(sim.wallet_drift + sim.wallet_sigma * z)``
    (worked out by numpy), section "share of wallet" of period_step:

        grown = sim.wallet * np.exp(sim.wallet_drift + sim.wallet_sigma * z)
        sim.wallet = np.where(sim.churn_period < 0, grown, sim.wallet)
    """
    out = np.empty(wallet.shape[0])
    _wallet_grown(wallet, growth, churn_period, out)
    return out


@kernel
def _wallet_grown(wallet: np.ndarray, growth: np.ndarray, churn_period: np.ndarray,
                  out: np.ndarray) -> None:
    for i in range(wallet.shape[0]):
        out[i] = wallet[i] * growth[i] if churn_period[i] < 0 else wallet[i]


def word_of_mouth(act: np.ndarray, trust: np.ndarray, trust_start: np.ndarray,
                  churn: np.ndarray, cause: np.ndarray, angry_cause: np.ndarray,
                  negative_weight: float, src: np.ndarray, dst: np.ndarray, w: np.ndarray,
                  rate: float, split: int | None = None, top: int | None = None,
                  speakers: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """The trust of every slot after word of mouth and settling (``angry_cause`` is
    ``_ANGRY``, ``rate`` is ``mk.word_of_mouth * dt``), section "word of mouth" of
    period_step:

        signal = np.where(act, sim.trust - 0.5, 0.0)
        angry = np.zeros(n, dtype=bool)
        lost_now = churn.nonzero()[0]
        angry[lost_now] = _ANGRY[cause[lost_now]]
        signal = np.where(angry, -0.5, signal)
        signal = np.where(signal < 0, signal * mk.negative_weight, signal)
        live_edge = (act | angry)[src]
        num = np.bincount(dst, weights=w * signal[src], minlength=n)
        den = np.bincount(dst, weights=w * live_edge, minlength=n)
        sim.trust = sim.trust + mk.word_of_mouth * dt * _ratio(num, den) * (den > 0)
        sim.trust = np.where(act, _clip(sim.trust, 0.0, 1.0), trust_start)

    The edges are added in their order, from +0.0, as the bincounts add them. ``top``: the
    slots from it on have never been in the portfolio (``act`` is false there, and nobody of
    them is lost); the edges into them are passed over, their followers' sums being read by
    nothing (such a slot settles to its ``trust_start``). In a large run a quarter to a
    third of the slots wait for an arrival, and with them as many of the edges.

    With ``split`` (an edge index from :func:`kamsim.engine.prepare.wom_split`: no follower has
    edges on both sides of it), two threads share the work: each the edges on one side of
    ``split`` (each follower's sums added by one thread, in the edges' order, so the same
    sums), then each the settling of half the slots.

    Only the edges' sources' signals are read, so only theirs are worked out (the leaders, a
    twentieth of the slots), into arrays the edges then read in cache rather than across
    every slot's: ``speakers`` are those slots and each edge's place among them
    (:func:`kamsim.engine.prepare.wom_speakers`, kept as ``Prepared.wom_speakers``; found
    here if not given).
    """
    n, edges = act.shape[0], src.shape[0]
    top = n if top is None else top
    num, den, out = np.zeros(n), np.zeros(n), np.empty(n)
    slots, place = wom_speakers(src) if speakers is None else speakers
    # (speaks: act | angry)
    signal, speaks = np.empty(slots.shape[0]), np.empty(slots.shape[0], dtype=bool)
    _wom_signal(slots, act, trust, churn, cause, angry_cause, negative_weight, signal, speaks)
    if split is None or lanes.CORES < 2:  # (one core: the two lanes would wait on each other)
        _wom_edges(place, dst, w, signal, speaks, num, den, 0, edges, top)
        _wom_settle(act, trust, trust_start, num, den, rate, out, 0, n)
        return out
    between = threading.Barrier(2)

    def lane(i: int) -> None:
        lo, hi = (0, n // 2) if i == 0 else (n // 2, n)
        try:
            e0, e1 = (0, split) if i == 0 else (split, edges)
            _wom_edges(place, dst, w, signal, speaks, num, den, e0, e1, top)
            between.wait()  # every follower's sums, before any is settled
            _wom_settle(act, trust, trust_start, num, den, rate, out, lo, hi)
        except BaseException:
            between.abort()  # (the other thread stops waiting: BrokenBarrierError)
            raise

    other = lanes.aside(2, lane, 1)
    errors = []
    for work in (lambda: lane(0), other):
        try:
            work()
        except BaseException as error:  # noqa: PERF203 - two calls, each waited for
            errors.append(error)
    if errors:  # the error itself, not the other lane's broken wait
        raise next((e for e in errors if not isinstance(e, threading.BrokenBarrierError)),
                   errors[0])
    return out


@kernel
def _wom_signal(slots: np.ndarray, act: np.ndarray, trust: np.ndarray, churn: np.ndarray,
                cause: np.ndarray, angry_cause: np.ndarray, negative_weight: float,
                signal: np.ndarray, speaks: np.ndarray) -> None:
    """The signal of each slot of ``slots`` and whether it speaks (``act | angry``), into its
    place in ``signal`` and ``speaks``."""
    for j in range(slots.shape[0]):
        i = slots[j]
        angry = churn[i] and angry_cause[cause[i]]
        s = trust[i] - 0.5 if act[i] else 0.0
        if angry:
            s = -0.5
        if s < 0:
            s = s * negative_weight
        signal[j] = s
        speaks[j] = act[i] or angry


@kernel
def _wom_edges(src: np.ndarray, dst: np.ndarray, w: np.ndarray, signal: np.ndarray,
               speaks: np.ndarray, num: np.ndarray, den: np.ndarray, e0: int, e1: int,
               top: int) -> None:
    # a follower's edges come one after the other (prepare.industry_network writes each
    # follower's links together): its two sums are kept in registers over its run of edges
    # and stored once, not each addition waiting on the store of the one before (the same
    # additions in the same order, so the same sums, whatever the order of the edges)
    if e1 <= e0:
        return
    cur = dst[e0]
    a, b = num[cur], den[cur]
    for e in range(e0, e1):
        to = dst[e]
        if to >= top:
            continue  # (a slot never in the portfolio yet: its sums are not read)
        if to != cur:
            num[cur], den[cur] = a, b
            cur = to
            a, b = num[cur], den[cur]
        a += w[e] * signal[src[e]]
        # (the bool as numpy multiplies it: 1.0 or 0.0, so a NaN or negative weight of a
        # silent leader adds what numpy's product adds)
        b += w[e] * (1.0 if speaks[src[e]] else 0.0)
    num[cur], den[cur] = a, b


@kernel
def _wom_settle(act: np.ndarray, trust: np.ndarray, trust_start: np.ndarray, num: np.ndarray,
                den: np.ndarray, rate: float, out: np.ndarray, lo: int, hi: int) -> None:
    for i in range(lo, hi):
        if act[i]:
            # _ratio: num / den where den > 1e-12, else 1
            ratio = num[i] / den[i]
            if not den[i] > 1e-12:
                ratio = 1.0
            moved = trust[i] + rate * ratio * (1.0 if den[i] > 0 else 0.0)
            out[i] = _clip(moved, 0.0, 1.0)
        else:
            out[i] = trust_start[i]
