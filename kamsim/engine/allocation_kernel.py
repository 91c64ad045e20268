"""Compiled kernels (numba) for the service a period asks and delivers: the list revenue it
starts from, ``allocation.demand``, ``allocation.allocate`` and the two ratios
``step.period_step`` takes of them.

The numpy code makes one pass over the accounts, and a fresh array, for every gather, product
and mask (some twenty-five passes for the asked service, four for each allocation, seven for
the ratios); here each account is worked out once, with the same operations in the same order
(see :mod:`kamsim.jit`), so the figures are the same to the bit. Each kernel names the numpy
lines it stands in for. Imported only when :func:`kamsim.jit.wanted` says yes (it compiles the
kernels, so it imports numba).

What stays in numpy: the per-level tables (a handful of values), the total asked
(``asked.sum()`` adds pairwise) and sorting the priorities into classes (``ServiceOrder``).
"""

from __future__ import annotations

import numpy as np

from kamsim.jit import kernel

__all__ = ["PLAIN", "TIERED", "CULTIVATE", "list_revenue", "asked", "allocated", "ratios"]

#: what ``asked`` works out besides the hours, money and need: nothing (equal, value_based,
#: custom), the priority of the level and its class (tiered, as ``ServiceOrder.by_level``),
#: or the cultivate quadrant's extra effort and priority
PLAIN, TIERED, CULTIVATE = 0, 1, 2


@kernel
def list_revenue(active, wallet, share, dt, out):
    """``period_step``'s ``np.where(act, sim.wallet / 12.0 * sim.share * dt, 0.0)``: the
    period's revenue at list price, 0 out of the portfolio (the same products in the same
    order), into ``out`` (made by numpy). Four passes over the slots in numpy, one here."""
    for i in range(active.shape[0]):
        out[i] = wallet[i] / 12.0 * share[i] * dt if active[i] else 0.0
    return out


@kernel
def asked(level, tier, stage, list_revenue, active, quadrant, cost_to_serve,  # noqa: PLR0913
          am_hours, exec_hours, specialist_hours, discount, vip_joint, need_hours, dt,
          strategy, extra_effort, priority_table, top, table_class, n_ranks,
          am, ex, sp, money, discount_rate, need, priority, klass):
    """``allocation.demand`` from ``stage_cost = ...`` to the ``putmask`` of the accounts out
    of the portfolio, one account at a time. ``vip_joint`` is ``sv.vip_cost + sv.joint_dev``
    and ``need_hours`` ``sv.am_hours + sv.exec_hours + sv.specialist_hours`` (the per-level
    sums, worked out in numpy as ``demand`` does). ``priority`` and ``klass`` are written only
    for TIERED (``klass``: ``ServiceOrder.by_level``'s classes among ``active``) and
    ``priority`` for CULTIVATE."""
    for i in range(level.shape[0]):
        lv = level[i]
        stage_cost = cost_to_serve[stage[i]]
        mult = stage_cost * dt
        a = am_hours[lv] * mult
        e = exec_hours[lv] * mult
        s = specialist_hours[lv] * mult
        rate = discount[lv]
        discount_rate[i] = rate
        mo = rate * list_revenue[i] + vip_joint[lv] * dt
        if strategy == TIERED:
            # ServiceOrder.by_level: table[level]; np.where(among, table_class[level], n_ranks)
            priority[i] = priority_table[lv]
            klass[i] = table_class[lv] if active[i] else n_ranks
        elif strategy == CULTIVATE:
            # boost = 1.0 + extra_effort * cultivate (the mask as a float); am = am * boost
            cultivate = quadrant[i] == 2
            a = a * (1.0 + extra_effort * (1.0 if cultivate else 0.0))
            # priority = sv.priority[level] + np.where(cultivate, 0.5, 0.0), then where
            # cultivate np.minimum(priority, top - 0.5) (numpy's minimum: the first unless
            # the second is smaller or NaN)
            p = priority_table[lv] + (0.5 if cultivate else 0.0)
            if cultivate:
                cap = top - 0.5
                if not (p <= cap or p != p):
                    p = cap
            priority[i] = p
        nd = need_hours[tier[i]] * stage_cost * dt
        if active[i]:
            am[i] = a
            ex[i] = e
            sp[i] = s
            money[i] = mo
            need[i] = nd
        else:  # np.putmask(a, off, 0.0)
            am[i] = 0.0
            ex[i] = 0.0
            sp[i] = 0.0
            money[i] = 0.0
            need[i] = 0.0


@kernel
def allocated(asked, inverse, n_classes, capacity, out):
    """``allocation.allocate`` once it is known that capacity runs short (its total, and its
    two early returns, stay in numpy): the demand of each class (as ``np.bincount`` adds, in
    account order from +0.0), the demand of the classes served before each (``np.cumsum(demand)
    - demand``), each class's ratio (``np.clip``: NaN passes, else the bounds) and each
    account's share of what it asked, into ``out`` (made by numpy, as the other kernels'
    outputs are: see kamsim.engine.step_kernels)."""
    demand = np.zeros(n_classes)
    for i in range(asked.shape[0]):
        demand[inverse[i]] += asked[i]
    ratio = np.empty(n_classes)
    running = 0.0
    for c in range(n_classes):
        running = demand[c] if c == 0 else running + demand[c]
        before = running - demand[c]
        x = (capacity - before) / (demand[c] if demand[c] > 0 else 1.0)
        # np.clip(x, 0.0, 1.0): the larger of x and 0, then the smaller of that and 1,
        # each keeping a NaN
        if not (x != x):
            x = x if x > 0.0 else 0.0
            x = x if x < 1.0 else 1.0
        ratio[c] = x
    for i in range(asked.shape[0]):
        out[i] = asked[i] * ratio[inverse[i]]
    return out


@kernel
def ratios(money, money_asked, am, ex, sp, need, active, service_ratio, money_ratio,
           new_ratio, quality):
    """``period_step``'s ``money_ratio = _ratio(money, d.money)``, the new service ratio,
    ``np.where(act, np.minimum(1.0, _ratio(am + ex + sp, d.need)), sim.service_ratio)``
    (``_ratio``: the quotient, 1 where the denominator is not above 1e-12), and the quality
    of service the decision units see, ``quality = 2.0 * sim.service_ratio - 1.0`` clipped to
    -1 to 1 (section "decision units", of the new ratio), into ``money_ratio``, ``new_ratio``
    and ``quality`` (made by numpy)."""
    for i in range(money.shape[0]):
        den = money_asked[i]
        r = money[i] / den
        money_ratio[i] = r if den > 1e-12 else 1.0  # (np.putmask where not den > 1e-12)
        if active[i]:
            den = need[i]
            r = (am[i] + ex[i] + sp[i]) / den
            if not (den > 1e-12):
                r = 1.0
            # np.minimum(1.0, r): 1.0 unless r is smaller or NaN
            new_ratio[i] = 1.0 if 1.0 <= r else r
        else:
            new_ratio[i] = service_ratio[i]
        # _clip(quality, -1.0, 1.0): the larger of the value and -1, then the smaller of that
        # and 1, each keeping a NaN
        q = 2.0 * new_ratio[i] - 1.0
        if not (q != q):
            q = q if q > -1.0 else -1.0
            q = q if q < 1.0 else 1.0
        quality[i] = q
    return money_ratio, new_ratio, quality
