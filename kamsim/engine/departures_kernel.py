"""Compiled kernels (numba, see :mod:`kamsim.jit`) for the key-person clocks of
:func:`kamsim.engine.step.period_step` (section "decision units"): who is due to leave this
period, and their next clock.

The numpy lines make a comparison over every person, a list of the due, four gathers, a sum,
a maximum and two scatters a period; at 10,000 accounts (~85,000 people, ~1,000 due a
month) their calls cost more than their work. Here one pass over the people lists the due,
their rates and those whose account is in the portfolio, and a pass over the due sets their
clocks; the random draw of their waiting times stays where it was, between the two, in
numpy (``Simulation._exp_times``: the draw and numpy's log1p). The values are the numpy
lines' to the bit: the same comparisons, the same sums, the maximum taken as ``np.maximum``
takes it (a NaN comes through). Imported only once :func:`kamsim.jit.wanted` said yes.
"""

from __future__ import annotations

import numpy as np

from kamsim.jit import kernel

__all__ = ["due", "set_clocks"]


def due(next_departure: np.ndarray, limit: float, role: np.ndarray, departure_lam: np.ndarray,
        account: np.ndarray, act: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(idx_p, lam_p, leave_now)`` of period_step's

        due_p = sim.next_departure < t + dt                    (limit: t + dt)
        idx_p = due_p.nonzero()[0]
        lam_p = sim.departure_lam[sim.units.role[idx_p]]
        leave_now = idx_p[act[sim.units.account[idx_p]]]

    (views of buffers of one value a person: only the first values are ever written, so
    only their pages are touched)."""
    n = next_departure.shape[0]
    idx, lam, leave = np.empty(n, np.intp), np.empty(n), np.empty(n, np.intp)
    k, n_leave = _due(next_departure, limit, role, departure_lam, account, act, idx, lam,
                      leave)
    return idx[:k], lam[:k], leave[:n_leave]


@kernel
def _due(next_departure, limit, role, departure_lam, account, act, idx, lam, leave):
    k = 0
    for p in range(next_departure.shape[0]):
        # (a branch: a person is due about once in seven years, so it is all but always
        # taken the same way, and only the due are written)
        if next_departure[p] < limit:
            idx[k] = p
            k += 1
    n_leave = 0
    for j in range(k):
        p = idx[j]
        # (a role of -1 takes the last rate, as numpy's index does)
        lam[j] = departure_lam[role[p]]
        leave[n_leave] = p
        n_leave += act[account[p]]
    return k, n_leave


@kernel
def set_clocks(next_departure, idx, gaps, limit, u_depart, leave):
    """period_step's

        sim.next_departure[idx_p] = np.maximum(sim.next_departure[idx_p] + gaps, t + dt)
        sim.u_depart[leave_now] = 0.0

    in place (``gaps``: the waiting times drawn for ``idx_p``, ``limit``: t + dt; the people
    due are each listed once, so the gather, sum and scatter are these values)."""
    for j in range(idx.shape[0]):
        p = idx[j]
        x = next_departure[p] + gaps[j]
        # np.maximum(x, limit): x unless it is below, NaN comes through
        next_departure[p] = x if (x >= limit or x != x) else limit
    for j in range(leave.shape[0]):
        u_depart[leave[j]] = 0.0
