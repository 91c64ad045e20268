"""Compiled kernels (numba, see :mod:`kamsim.jit`) for the events of
:func:`kamsim.engine.step.period_step`: competing risks on one uniform per slot.

The numpy code works on the few hundred slots ``c`` whose uniform lies below the events'
reach, in some sixty calls a period (gathers, masks, the people's bincount of the offers, the
writes of each event): at 10,000 accounts their per-call cost is the section's. Here the
slots are worked out in two passes, each slot once, with the numpy lines' operations in
their order (see :mod:`kamsim.jit`), so the figures are the same to the bit:

* :func:`_slots`, from ``bounds = ...`` to the logits: which interval each slot's uniform
  lies in, the upper bound of the last, the consolidation's ``keep_logit`` and the offers'
  ``u_defect``/``u_trim`` (with the price focus of the offered accounts' people, summed in
  person order from +0.0 as the bincount adds them), and the trust hazard's yearly rate;
* then numpy, as in the numpy path: ``np.exp`` of the logits and ``_p`` of the rate (the exp
  and the power with a non-integer exponent are numpy's SIMD code, whose last bits differ
  from a compiled libm's);
* :func:`_decide`, the decisions and every write (churn, cause, bad debt, wallet, share),
  slot by slot in the order of the events. A slot is written only at its own index, so the
  numpy path's event-by-event order over all slots and this slot-by-slot one give the same
  arrays (a slot in two intervals, were the bounds ever to fall, sees its writes in the
  events' order all the same).

Imported only once :func:`kamsim.jit.wanted` said yes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kamsim.engine.core import CAUSE, _p
from kamsim.jit import kernel

__all__ = ["Events", "events", "slots_below"]

#: which intervals a slot's uniform lies in (a bit each): failure, strategy change,
#: consolidation, an offer, a payment default (the account active or not)
FAIL, STRAT, CONS, OFFER, DEFAULT = 1, 2, 4, 8, 16

#: the causes the decisions write, in the order ``_decide`` reads them
_CODES = np.array([CAUSE[name] for name in (
    "financial_failure", "strategy_change", "supplier_consolidation", "competitor_unfair",
    "stronger_competitor", "unresolved_complaints", "key_person_or_trust")], dtype=np.int64)


class Events(NamedTuple):
    """What the rest of the period (and the event log) reads of the events."""

    offered: np.ndarray  # intp: the offers to accounts active at the period's start
    defected: np.ndarray  # intp: of them, those that defected
    trimmed: np.ndarray  # intp: and those that trimmed our share
    outcome: np.ndarray  # int64, one per offered: 2 defected, 1 trimmed, 0 stayed
    dflt: np.ndarray  # intp: the payment defaults (of active accounts)


# (each kernel module has its own copy of the one-value helpers, on purpose: numba's on-disk
# cache of a kernel is renewed only when the kernel's own file changes, so a kernel calling a
# helper from another file could keep running an old version of it)
@kernel
def _minimum(a: float, b: float) -> float:
    """``np.minimum`` of one pair: a NaN in ``a`` comes through (the callers' ``b`` is a
    constant)."""
    return a if (a <= b or np.isnan(a)) else b


@kernel
def _stage_frac(stage: int, uncoupled: int, top: int, den: int) -> float:
    """``step._stage_frac`` of one stage (``top`` is ``st.ladder - 1``, ``den``
    ``max(1, st.ladder - 1)``): numpy's true division of two integers divides their
    doubles."""
    if stage == uncoupled:
        return 0.0
    return float(min(stage, top)) / float(den)


def slots_below(u: np.ndarray, stage: np.ndarray, reach: float, reach_uncoupled: float,
                uncoupled: int) -> np.ndarray:
    """The slots whose uniform lies below ``reach``, or below ``reach_uncoupled`` where the
    stage is ``uncoupled``, ascending, as the lines

        near = (u < reach_uncoupled).nonzero()[0]
        near[(u[near] < reach) | (stage[near] == uncoupled)]

    give them (``step._event_slots``), in one pass over the slots."""
    out = np.empty(u.shape[0], dtype=np.intp)
    return out[:_slots_below(u, stage, reach, reach_uncoupled, uncoupled, out)]


@kernel
def _slots_below(u, stage, reach, reach_uncoupled, uncoupled, out):
    # (without branches: a branch a slot, taken for one in ten, cost twice the pass)
    m = 0
    for i in range(u.shape[0]):
        x = u[i]
        out[m] = i
        m += (x < reach) | ((x < reach_uncoupled) & (stage[i] == uncoupled))
    return m


def events(c: np.ndarray, u: np.ndarray, v: np.ndarray, g_off: np.ndarray, act: np.ndarray,
           event_bounds: tuple[np.ndarray, ...], p_offer: float, p_default: np.ndarray,
           trust: np.ndarray, stage: np.ndarray, dm_covered: np.ndarray, uncoupled: int,
           ladder: int, base_churn_per_year: float, dt: float, h_unc: float,
           price_gap: float, discount_rate: np.ndarray, money_ratio: np.ndarray,
           offsets: np.ndarray, price_focus: np.ndarray, influence: np.ndarray,
           sum_influence: np.ndarray, price_sensitivity: np.ndarray, stage_ps: np.ndarray,
           multithreading: np.ndarray, champion: np.ndarray, since_unresolved: np.ndarray,
           loss_given_default: float, unfair_share: float, wallet: np.ndarray,
           share: np.ndarray, churn: np.ndarray, cause: np.ndarray,
           bad_debt: np.ndarray) -> Events:
    """The events of the slots ``c`` (ascending), section "events" of period_step from
    ``uc = u[c]`` to the lost's causes: ``wallet``, ``share``, ``churn``, ``cause`` and
    ``bad_debt`` are written in place, the offers and defaults returned. The arguments are
    the numpy lines' (``stage_ps`` is ``st.price_sensitivity``, ``offsets`` the units' and
    ``sum_influence`` their structure's)."""
    m = c.shape[0]
    kind = np.empty(m, dtype=np.uint8)
    b_top, rate, keep_logit, u_defect, u_trim = (np.empty(m) for _ in range(5))
    n_cons, n_off = _slots(
        c, u, event_bounds[0], event_bounds[1], event_bounds[2], p_offer, p_default, trust,
        stage, dm_covered, uncoupled, ladder - 1, max(1, ladder - 1),
        base_churn_per_year * 4.0, price_gap, g_off, discount_rate, money_ratio, offsets,
        price_focus, influence, sum_influence, price_sensitivity, stage_ps, multithreading,
        champion, kind, b_top, rate, keep_logit, u_defect, u_trim)
    # numpy's exp and _p, on arrays of the numpy path's sizes and values
    exp_keep = np.exp(keep_logit[:n_cons])
    exp_defect, exp_trim = np.exp(u_defect[:n_off]), np.exp(u_trim[:n_off])
    h = _p(rate, dt)
    offered, defected, trimmed, dflt = (np.empty(m, dtype=np.intp) for _ in range(4))
    outcome = np.empty(m, dtype=np.int64)
    counts = _decide(
        c, kind, b_top, u, v, g_off, act, stage, since_unresolved, exp_keep, exp_defect,
        exp_trim, h, h_unc, uncoupled, loss_given_default, dt, 1.0 - unfair_share, _CODES,
        wallet, share, churn, cause, bad_debt, offered, defected, trimmed, outcome, dflt)
    n_offered, n_defected, n_trimmed, n_dflt = counts
    return Events(offered[:n_offered], defected[:n_defected], trimmed[:n_trimmed],
                  outcome[:n_offered], dflt[:n_dflt])


@kernel
def _slots(c, u, b_fail, b_strat, b_cons, p_offer, p_default, trust,  # noqa: PLR0913
           stage, dm_covered, uncoupled, top, den, base4, price_gap, g_off, discount_rate,
           money_ratio, offsets, price_focus, influence, sum_influence, price_sensitivity,
           stage_ps, multithreading, champion, kind, b_top, rate, keep_logit, u_defect,
           u_trim):
    """Section "events" from ``uc = u[c]`` to ``u_trim = u_defect + 1.0`` in two loops over
    the slots, and the rate of the trust hazard (``base4`` is ``mk.base_churn_per_year * 4.0``); the numbers of the
    consolidations and of the offers (``keep_logit`` and ``u_defect``/``u_trim`` hold theirs
    in slot order)."""
    # first every slot's intervals and hazard rate, in a short loop without branches (the
    # slots are scattered over the arrays: a short loop keeps many of their reads in flight)
    for j in range(c.shape[0]):
        i = c[j]
        uc = u[i]
        # bounds = [b[c] for b in sim.event_bounds]; bounds.append(bounds[-1] + p_offer);
        # bounds.append(bounds[-1] + sim.p_default[c])
        b0, b1, b2 = b_fail[i], b_strat[i], b_cons[i]
        b3 = b2 + p_offer
        b4 = b3 + p_default[i]
        b_top[j] = b4
        kind[j] = ((uc < b0) * FAIL | ((uc >= b0) & (uc < b1)) * STRAT
                   | ((uc >= b1) & (uc < b2)) * CONS | ((uc >= b2) & (uc < b3)) * OFFER
                   | ((uc >= b3) & (uc < b4)) * DEFAULT)
        # h = _p(mk.base_churn_per_year * 4.0 * (1.0 - sim.trust[c]) ** 2, dt) (numpy's
        # square of the power of 2: a product)
        d = 1.0 - trust[i]
        rate[j] = base4 * (d * d)
    # then the logits of the few consolidations and offers
    n_cons = 0
    n_off = 0
    for j in range(c.shape[0]):
        k = kind[j]
        if not k & (CONS | OFFER):
            continue
        i = c[j]
        if k & CONS:
            # keep_logit = (-1.0 + 4.0 * sim.trust[cons] + 1.5 * _stage_frac(st, ...)
            #               + 0.5 * mt.dm_covered[cons])
            keep_logit[n_cons] = (-1.0 + 4.0 * trust[i]
                                  + 1.5 * _stage_frac(stage[i], uncoupled, top, den)
                                  + 0.5 * dm_covered[i])
            n_cons += 1
        if k & OFFER:
            # gap = sim.price_gap * (0.5 + g_off)
            # gap_eff = np.maximum(0.0, gap[off] - d.discount_rate[off] * money_ratio[off])
            # (numpy's maximum: the first where it is above the second, else the second: so
            # NaN, and -0.0 from np.maximum(0.0, -0.0))
            x = price_gap * (0.5 + g_off[i]) - discount_rate[i] * money_ratio[i]
            gap_eff = 0.0 if 0.0 > x else x
            # focus = np.bincount(owner, weights=sim.units.price_focus[people]
            #                     * sim.units.influence[people], minlength=off.size)
            focus = 0.0
            for p in range(offsets[i], offsets[i + 1]):
                focus += price_focus[p] * influence[p]
            # price_focus = _ratio(focus, weight[off])
            w = sum_influence[i]
            pf = focus / w if w > 1e-12 else 1.0
            # ps = (sim.price_sensitivity[off] * st.price_sensitivity[sim.stage[off]]
            #       * (0.5 + price_focus))
            ps = price_sensitivity[i] * stage_ps[stage[i]] * (0.5 + pf)
            # mt_frac = np.minimum(mt.multithreading[off], 3.0) / 3.0
            mt_frac = _minimum(multithreading[i], 3.0) / 3.0
            # u_defect = (1.0 + 12.0 * gap_eff * ps - 4.0 * sim.trust[off]
            #             - 0.8 * _stage_frac(st, sim.stage[off]) - 0.6 * mt_frac
            #             - 0.4 * mt.champion[off])
            ud = (1.0 + 12.0 * gap_eff * ps - 4.0 * trust[i]
                  - 0.8 * _stage_frac(stage[i], uncoupled, top, den) - 0.6 * mt_frac
                  - 0.4 * champion[i])
            u_defect[n_off] = ud
            u_trim[n_off] = ud + 1.0
            n_off += 1
    return n_cons, n_off


@kernel
def _decide(c, kind, b_top, u, v, g_off, act, stage, since_unresolved,  # noqa: PLR0913
            exp_keep, exp_defect, exp_trim, h, h_unc, uncoupled, lgd, dt, unfair_from,
            codes, wallet, share, churn, cause, bad_debt, offered, defected, trimmed,
            outcome, dflt):
    """Section "events" from ``monthly_rev = ...`` (read before the slot's own writes, as
    numpy reads it before all of them) to the lost's causes, slot by slot and, in each, event
    by event (``unfair_from`` is ``1.0 - sim.unfair_share``, ``codes`` the causes in the
    order ``_CODES`` names them); the numbers of the offered, the defected, the trimmed and
    the defaults."""
    n_cons = 0
    n_off = 0
    n_offered = 0
    n_defected = 0
    n_trimmed = 0
    n_dflt = 0
    for j in range(c.shape[0]):
        i = c[j]
        k = kind[j]
        # monthly_rev = sim.wallet[c] / 12.0 * sim.share[c]
        monthly_rev = wallet[i] / 12.0 * share[i]
        if k & FAIL:
            # financial failure: churn, cause; bad_debt[fail] += 2.0 * monthly_rev[at] * lgd
            churn[i] = True
            cause[i] = codes[0]
            bad_debt[i] += 2.0 * monthly_rev * lgd
        if k & STRAT:
            # at = v[strat] < 0.5: leave; the others shrink (sim.wallet[...] *= 0.6) if active
            if v[i] < 0.5:
                churn[i] = True
                cause[i] = codes[1]
            elif act[i]:
                wallet[i] *= 0.6
        if k & CONS:
            # at = v[cons] < 1.0 / (1.0 + np.exp(keep_logit)): dropped; the others, if
            # active, kept: sim.share[kept] = np.minimum(1.0, sim.share[kept] * 1.25) (the
            # product unless it is not below 1.0 and not NaN)
            if v[i] < 1.0 / (1.0 + exp_keep[n_cons]):
                churn[i] = True
                cause[i] = codes[2]
            elif act[i]:
                x = share[i] * 1.25
                share[i] = x if (x < 1.0 or np.isnan(x)) else 1.0
            n_cons += 1
        if k & OFFER:
            # denom = 1.0 + exp_defect + exp_trim; p_d = exp_defect / denom;
            # p_t = exp_trim / denom
            denom = 1.0 + exp_defect[n_off] + exp_trim[n_off]
            p_d = exp_defect[n_off] / denom
            p_t = exp_trim[n_off] / denom
            n_off += 1
            # defect_off = (v_off < p_d) & ~churn[off];
            # trim_off = (v_off >= p_d) & (v_off < p_d + p_t)
            v_off = v[i]
            defect = v_off < p_d and not churn[i]
            trim = v_off >= p_d and v_off < p_d + p_t
            if defect:
                # churn[off[defect_off]] = True; unfair = g_off[...] > 1.0 - sim.unfair_share
                churn[i] = True
                cause[i] = codes[3] if g_off[i] > unfair_from else codes[4]
            # offered, defected, trimmed = off[off_act], off[defect_off & off_act], ...;
            # sim.share[trimmed] *= 0.7 (after the kept's writes: this slot's came above)
            if act[i]:
                offered[n_offered] = i
                outcome[n_offered] = 2 if defect else (1 if trim else 0)
                n_offered += 1
                if defect:
                    defected[n_defected] = i
                    n_defected += 1
                if trim:
                    trimmed[n_trimmed] = i
                    n_trimmed += 1
                    share[i] *= 0.7
        if k & DEFAULT and act[i]:
            # bad_debt[dflt] += monthly_rev[at] * mk.loss_given_default * dt
            dflt[n_dflt] = i
            n_dflt += 1
            bad_debt[i] += monthly_rev * lgd * dt
        # h = np.where(sim.stage[c] == st.uncoupled, h_unc, h);
        # lost = c[(uc >= bounds[4]) & (uc < bounds[4] + h) & ~churn[c]]
        hj = h_unc if stage[i] == uncoupled else h[j]
        uc = u[i]
        if uc >= b_top[j] and uc < b_top[j] + hj and not churn[i]:
            churn[i] = True
            # cause[lost] = np.where(sim.since_unresolved[lost] <= 6.0, ...)
            cause[i] = codes[5] if since_unresolved[i] <= 6.0 else codes[6]
    return n_offered, n_defected, n_trimmed, n_dflt
