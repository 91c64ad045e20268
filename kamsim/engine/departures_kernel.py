"""Compiled kernels (numba, see :mod:`kamsim.jit`) for the people who leave in a period of
:func:`kamsim.engine.step.period_step` (sections "decision units" and "trust"): whose clock
is due and their next one, which of them leave (those of accounts in the portfolio), which of
those who left were key persons, and the trust hit of the accounts they leave without a
thread.

The clocks: once numpy has found those due (its comparison and ``nonzero`` over the ~85,000
people of 10,000 accounts beat a compiled loop) and drawn their uniforms (and their
``log1p``), the numpy lines make a gather of the rates, a division, a gather, sum, maximum
and scatter of the clocks, and two gathers, a mask and a scatter for who leaves, on the
~1,000 people due a month; here one pass over them does it.

The numpy lines make three comparisons and a gather for the key persons, and two gathers,
two comparisons, a mask and a gather, subtraction and scatter for the hit, each on the ~100
people who left in a month at 10,000 accounts: their calls cost more than their work. The
values are the numpy lines' to the bit (the same comparisons; each hit worked out from the
trust before any is written, as numpy's gather does before its scatter). Imported only once
:func:`kamsim.jit.wanted` said yes.
"""

from __future__ import annotations

import numpy as np

from kamsim.jit import kernel

__all__ = ["leaving", "key_people", "orphaned_hit"]


def leaving(idx_p: np.ndarray, log_stay: np.ndarray, next_departure: np.ndarray,
            departure_lam: np.ndarray, role: np.ndarray, account: np.ndarray,
            act: np.ndarray, limit: float, u_depart: np.ndarray) -> np.ndarray:
    """The next clock of each person ``idx_p`` names (in place), and ``leave_now``, whose
    ``u_depart`` are set to 0 (in place): period_step's

        lam_p = sim.departure_lam[sim.units.role[idx_p]]
        sim.next_departure[idx_p] = np.maximum(
            sim.next_departure[idx_p] + sim._exp_times(sim.rng["departures"], lam_p), t + dt)
        leave_now = idx_p[act[sim.units.account[idx_p]]]
        sim.u_depart[leave_now] = 0.0

    ``log_stay`` being ``np.log1p(-u)`` of the uniforms ``_exp_times`` draws (one a person
    due; the log stays numpy's)."""
    leave_now = np.empty(idx_p.shape[0], np.intp)
    return leave_now[:_leaving(idx_p, log_stay, next_departure, departure_lam, role, account,
                               act, limit, u_depart, leave_now)]


@kernel
def _leaving(idx_p, log_stay, next_departure, departure_lam, role, account, act, limit,
             u_depart, leave_now):
    m = 0
    for j in range(idx_p.shape[0]):
        p = idx_p[j]
        lam = departure_lam[role[p]]
        # _exp_times: -np.log1p(-u) / lam where lam > 0, else inf (np.where; the same
        # quotient when every rate is positive)
        gap = -log_stay[j] / lam if lam > 0 else np.inf
        x = next_departure[p] + gap
        # np.maximum(x, limit): x unless it is below, NaN comes through (each person is due
        # once, so the gather, sum and scatter are these values)
        next_departure[p] = x if (x >= limit or x != x) else limit
        if act[account[p]]:
            leave_now[m] = p
            u_depart[p] = 0.0
            m += 1
    return m


def key_people(influence: np.ndarray, coverage: np.ndarray, account: np.ndarray,
               influential: float, covered: float) -> tuple[np.ndarray, np.ndarray]:
    """``(key, kp_acc)`` of period_step's

        key = ((out.departed_influence >= KEY_INFLUENCE)
               | (out.departed_coverage >= KEY_COVERAGE))
        kp_acc = out.departed_account[key]

    (``influence``, ``coverage`` and ``account``: the outcome's departed_ ones;
    ``influential`` and ``covered``: the two levels)."""
    k = account.shape[0]
    key, kp_acc = np.empty(k, np.bool_), np.empty(k, account.dtype)
    m = _key_people(influence, coverage, account, influential, covered, key, kp_acc)
    return key, kp_acc[:m]


@kernel
def _key_people(influence, coverage, account, influential, covered, key, kp_acc):
    m = 0
    for j in range(account.shape[0]):
        is_key = influence[j] >= influential or coverage[j] >= covered
        key[j] = is_key
        if is_key:
            kp_acc[m] = account[j]
            m += 1
    return m


@kernel
def orphaned_hit(left, threads_before, threads_after, trust, hit):
    """period_step's

        orphaned = left[(before.multithreading[left] > 0) & (mt.multithreading[left] == 0)]
        sim.trust[orphaned] = sim.trust[orphaned] - mk.orphaned_trust_hit

    in place (``left``: the accounts of the people who left, an account once for each).
    Every value is worked out from the trust before any is written, as numpy's gather does
    before its scatter: an account that lost two people is hit once."""
    hits = np.empty(left.shape[0])
    for j in range(left.shape[0]):
        a = left[j]
        hits[j] = trust[a] - hit
    for j in range(left.shape[0]):
        a = left[j]
        if threads_before[a] > 0 and threads_after[a] == 0:
            trust[a] = hits[j]
