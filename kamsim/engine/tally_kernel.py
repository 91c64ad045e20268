"""Compiled kernels (numba, see :mod:`kamsim.jit`) for the tallies of
:func:`kamsim.engine.step.period_step`: the referrals won (section "new accounts") and the
aggregates by tier with the leaving of the lost (sections "the accounts lost this period
leave" and "aggregates by tier").

The numpy code counts and sums with some thirty calls a period (fifteen weighted bincounts,
a dozen bincounts of counts, three ``_count``, the gathers that feed them); at 10,000
accounts each costs more in its call than in its work. Here one pass over the slots does it
all. The sums are a bincount's to the bit: each tier's sum of a quantity is added in slot
order from +0.0, a value converted to float64 first (what a bincount does with its weights).
The counts are integers, added to the float64 rows as numpy adds an integer count. Imported
only once :func:`kamsim.jit.wanted` said yes.
"""

from __future__ import annotations

import numpy as np

from kamsim import lanes
from kamsim.engine.step import SUMS
from kamsim.jit import kernel

__all__ = ["SUMS", "referrals", "tally"]


#: the counts by tier of ``sim.ts`` that ``tally`` writes, each ``np.bincount(tier_start[x])``
#: of an array of accounts ``x`` (``new`` is of ``tier``)
_COUNTS = ("complaints", "offers", "offers_defect", "offers_trim", "key_person_departures")


@kernel
def referrals(act: np.ndarray, churn: np.ndarray, u_ref: np.ndarray,
              referral_rate: np.ndarray, stage: np.ndarray, influence: np.ndarray,
              trust: np.ndarray) -> int:
    """How many accounts refer a new one this period, section "new accounts" of
    period_step:

        p_ref = (sim.referral_rate[sim.stage] * sim.influence
                 * np.maximum(0.0, 2.0 * sim.trust - 1.0))
        referrals = int(np.count_nonzero(act & ~churn & (u_ref < p_ref)))
    """
    count = 0
    for i in range(act.shape[0]):
        if act[i] and not churn[i]:
            x = 2.0 * trust[i] - 1.0
            # np.maximum(0.0, x): 0.0 where it is above x, else x (so NaN, and -0.0 from
            # np.maximum(0.0, -0.0))
            lift = 0.0 if 0.0 > x else x
            p_ref = referral_rate[stage[i]] * influence[i] * lift
            if u_ref[i] < p_ref:
                count += 1
    return count


def tally(k: int, ts: dict[str, np.ndarray], stage_counts: np.ndarray,
          transitions: np.ndarray, causes: np.ndarray, act: np.ndarray, churn: np.ndarray,
          cause: np.ndarray, tier_start: np.ndarray, tier: np.ndarray,
          stage_start: np.ndarray, stage: np.ndarray, values: tuple[np.ndarray, ...],
          o_acc: np.ndarray, o_ok: np.ndarray, new_idx: np.ndarray, acq: np.ndarray,
          offered: np.ndarray, defected: np.ndarray, trimmed: np.ndarray,
          kp_acc: np.ndarray, active: np.ndarray, churn_period: np.ndarray,
          churn_cause: np.ndarray, threads: int = 1, top: int | None = None) -> None:
    """:func:`kamsim.engine.step.tally_numpy` (period ``k``'s row of every aggregate by tier,
    and the lost leave), in a few compiled passes over the slots, to the bit. With ``threads``
    2, the counts (and the leaving of the lost) are made on the other core while this one
    adds the sums (each tier's sum of a quantity still added in slot order from +0.0, by one
    thread: the same sums). ``top``: the slots from it on have never been in the portfolio,
    this period's arrivals included (so none of them is active, lost or new): the passes
    stop there."""
    if top is not None:
        # (views of the first ``top`` slots: what the passes read of the others is that
        # they are out of the portfolio, which adds nothing to any sum or count)
        act, churn, cause, tier_start, tier, stage_start, stage, active, churn_period, \
            churn_cause = (a[:top] for a in (act, churn, cause, tier_start, tier, stage_start,
                                             stage, active, churn_period, churn_cause))
        values = tuple(v[:top] for v in values)
    # (the values go in one by one: numba's call takes a few tens of nanoseconds an array,
    # and a tuple of them indexed in the loop runs the sums three times slower. ``acq`` as a
    # bincount's weights, float64: integers when the acquisition cost is one)
    (list_rev, disc, cogs, cts, bad_debt, profit, am_asked, am, exec_asked, ex,
     specialist_asked, sp, trust, coverage, service_ratio) = values
    nt = stage_counts.shape[1]
    # (the counts read and write nothing the sums read: ``act`` is the period's start, the
    # lost leave in ``active``)
    counted = lanes.aside(threads, _counts, k, act, churn, cause, tier_start, tier,
                          stage_start, stage, o_acc, o_ok, new_idx,
                          np.asarray(acq, dtype=np.float64), tuple(ts[name] for name in _COUNTS),
                          offered, defected, trimmed, kp_acc, ts["complaints_unresolved"],
                          ts["active"], ts["new"], ts["acquisition"], ts["churned"],
                          stage_counts, transitions, causes, active, churn_period, churn_cause,
                          np.zeros(nt))
    _sums(k, act, tier_start, list_rev, disc, cogs, cts, bad_debt, profit, am_asked, am,
          exec_asked, ex, specialist_asked, sp, trust, coverage, service_ratio,
          np.zeros((nt, _FIRST)), np.zeros((nt, len(SUMS) - _FIRST)),
          tuple(ts[name] for name in SUMS))
    acquisition = counted()
    if new_idx.size:
        # the arrivals' acquisition comes off the profit by the tier they arrive in
        ts["profit"][k] -= acquisition


#: the quantities of ``SUMS`` added in the first of the two passes (revenue to am_delivered);
#: the other seven (exec_asked to service_ratio_sum) in the second
_FIRST = 8


@kernel
def _sums(k, act, tier_start, list_rev, disc, cogs, cts, bad_debt, profit,  # noqa: PLR0913
          am_asked, am, exec_asked, ex, specialist_asked, sp, trust, coverage, service_ratio,
          first, late, sums):
    """Row ``k`` of each of ``sums`` (``SUMS``' order): each tier's sum of a quantity over
    the slots active at the period's start, added in slot order from +0.0 (as a bincount by
    tier adds them), in two passes (``first`` and ``late``, a row a tier): one pass over
    all fifteen took 60% longer at 1M slots (numpy's large arrays all start at the same
    offset in a page, see step_kernels' money) and no less at 10,000."""
    nt = first.shape[0]
    for i in range(act.shape[0]):
        if act[i]:
            r = first[tier_start[i]]
            r[0] += list_rev[i]
            r[1] += disc[i]
            r[2] += cogs[i]
            r[3] += cts[i]
            r[4] += bad_debt[i]
            r[5] += profit[i]
            r[6] += am_asked[i]
            r[7] += am[i]
    for i in range(act.shape[0]):
        if act[i]:
            r = late[tier_start[i]]
            r[0] += exec_asked[i]
            r[1] += ex[i]
            r[2] += specialist_asked[i]
            r[3] += sp[i]
            r[4] += trust[i]
            r[5] += coverage[i]
            r[6] += service_ratio[i]
    for j in range(first.shape[1]):
        for t in range(nt):
            sums[j][k, t] = first[t, j]
    for j in range(late.shape[1]):
        for t in range(nt):
            sums[first.shape[1] + j][k, t] = late[t, j]


@kernel
def _by_tier(out: np.ndarray, k: int, tier: np.ndarray, accounts: np.ndarray) -> None:
    """``out[k] = np.bincount(tier[accounts], minlength=nt)``."""
    counts = np.zeros(out.shape[1], dtype=np.int64)
    for a in accounts:
        counts[tier[a]] += 1
    for t in range(out.shape[1]):
        out[k, t] = counts[t]


@kernel
def _counts(k, act, churn, cause, tier_start, tier, stage_start, stage,  # noqa: PLR0913
            o_acc, o_ok, new_idx, acq, counts, offered, defected, trimmed, kp_acc,
            ts_unresolved, ts_active, ts_new, ts_acquisition, ts_churned,
            stage_counts, transitions, causes, active, churn_period, churn_cause,
            acquisition):
    """Period ``k``'s counts by tier, flat as ``_count`` makes them (the cell worked out by
    hand), and the lost leave (``active``, ``churn_period``, ``churn_cause``); the
    arrivals' acquisition by the tier they arrive in into ``acquisition`` (returned: the
    caller takes it off the profit once the sums are in)."""
    nt = ts_active.shape[1]
    ns = stage_counts.shape[2]
    nc = causes.shape[2]
    n_active = np.zeros(nt, dtype=np.int64)
    n_churned = np.zeros(nt, dtype=np.int64)
    n_stage = np.zeros(nt * ns, dtype=np.int64)
    n_moved = np.zeros(nt * (ns + 1) * (ns + 1), dtype=np.int64)
    n_cause = np.zeros(nt * nc, dtype=np.int64)
    for i in range(act.shape[0]):
        if churn[i]:
            # the lost leave; counted by the tier at the period's start
            active[i] = False
            churn_period[i] = k
            churn_cause[i] = cause[i]
            n_churned[tier_start[i]] += 1
            n_cause[tier_start[i] * nc + cause[i]] += 1
        if act[i]:
            t = tier_start[i]
            n_active[t] += 1
            n_stage[t * ns + stage_start[i]] += 1
            # the transitions of ``live`` (act is true): from the stage at the start
            to = ns if churn[i] else stage[i]
            n_moved[(tier[i] * (ns + 1) + stage_start[i]) * (ns + 1) + to] += 1
    # and of ``new_idx``
    for i in new_idx:
        frm = stage_start[i] if act[i] else ns
        to = ns if churn[i] else stage[i]
        n_moved[(tier[i] * (ns + 1) + frm) * (ns + 1) + to] += 1
    for t in range(nt):
        ts_active[k, t] = n_active[t]
        ts_churned[k, t] = n_churned[t]
    # the arrivals, and their acquisition by the tier they arrive in
    _by_tier(ts_new, k, tier, new_idx)
    if new_idx.size:
        for a in range(new_idx.size):
            acquisition[tier[new_idx[a]]] += acq[a]
        for t in range(nt):
            ts_acquisition[k, t] = acquisition[t]
    # the complaints answered, those unresolved, offers, trims, key-person departures
    _by_tier(counts[0], k, tier_start, o_acc)
    unresolved = np.zeros(nt, dtype=np.int64)
    for a in range(o_acc.size):
        if not o_ok[a]:
            unresolved[tier_start[o_acc[a]]] += 1
    for t in range(nt):
        ts_unresolved[k, t] = unresolved[t]
    _by_tier(counts[1], k, tier_start, offered)
    _by_tier(counts[2], k, tier_start, defected)
    _by_tier(counts[3], k, tier_start, trimmed)
    _by_tier(counts[4], k, tier_start, kp_acc)
    for t in range(nt):
        for s in range(ns):
            stage_counts[k, t, s] += n_stage[t * ns + s]
        for c in range(nc):
            causes[k, t, c] += n_cause[t * nc + c]
        for a in range(ns + 1):
            for b in range(ns + 1):
                transitions[k, t, a, b] += n_moved[(t * (ns + 1) + a) * (ns + 1) + b]
    return acquisition
