"""Compiled kernels (numba) for the complaints of a period (``step.period_step``): those that
arrive (which slots' clocks are due, the next clocks, and what the desk is handed of those of
accounts in the portfolio: one pass to find them, the draws in numpy, one pass over them, in
place of some thirteen numpy calls on a few hundred values), and those answered: how many
each account had answered in time and late, and the support hours they took.

The numpy code makes a pass over the slots for each of three bincounts and two casts to
float, and two masked copies of the answers; here the answers are gone through once, added
in the same order from +0.0 as ``np.bincount`` adds them (see :mod:`kamsim.jit`), so the
figures are the same to the bit. Imported only when :func:`kamsim.jit.wanted` says yes (it
compiles the kernel, so it imports numba).
"""

from __future__ import annotations

import numpy as np

from kamsim.jit import kernel

__all__ = ["answered", "arrivals_due", "queued"]


@kernel
def answered(account, ok, hours, resolved, unresolved, support_hours):
    """``period_step``'s

    ``resolved = np.bincount(o_acc[o_ok], minlength=n).astype(np.float64)``,
    ``unresolved = np.bincount(o_acc[~o_ok], minlength=n).astype(np.float64)`` and
    ``support_hours = np.bincount(o_acc, weights=o_hours, minlength=n)``

    into ``resolved``, ``unresolved`` and ``support_hours``, zeros made by numpy (a count is
    exact in a float64, so adding ones gives the cast counts)."""
    for j in range(account.shape[0]):
        a = account[j]
        if ok[j]:
            resolved[a] += 1.0
        else:
            unresolved[a] += 1.0
        support_hours[a] += hours[j]
    return resolved, unresolved, support_hours


def arrivals_due(next_complaint: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """``(due, arrivals)`` of period_step's

        due = np.flatnonzero(sim.next_complaint < t + dt)      (limit: t + dt)
        arrivals = sim.next_complaint[due]

    (views of buffers of one value a slot: only the first values are written)."""
    n = next_complaint.shape[0]
    due, arrivals = np.empty(n, np.intp), np.empty(n)
    k = _arrivals_due(next_complaint, limit, due, arrivals)
    return due[:k], arrivals[:k]


@kernel
def _arrivals_due(next_complaint, limit, due, arrivals):
    k = 0
    for a in range(next_complaint.shape[0]):
        at = next_complaint[a]
        if at < limit:  # (a branch: ~one slot in twenty is due a month)
            due[k] = a
            arrivals[k] = at
            k += 1
    return k


def queued(next_complaint: np.ndarray, due: np.ndarray, arrivals: np.ndarray,
           gaps: np.ndarray, limit: float, act: np.ndarray, u_work: np.ndarray,
           level: np.ndarray, priority: np.ndarray, response_days: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The next complaint of each slot ``due`` set (in place), and ``(c_acc, arrivals[live],
    u_work[live], priority, response days)`` of the complaints of accounts in the portfolio:
    period_step's

        sim.next_complaint[due] = np.maximum(arrivals + gaps, t + dt)    (limit: t + dt)
        live = act[due]
        c_acc = due[live]
        lvl = d.level[c_acc]
        ... arrivals[live], u_work[live], sv.priority[lvl], sv.response_days[lvl]

    ``gaps`` and ``u_work`` being the draws made for ``due`` (``complaint_gaps`` and the
    ``complaint_work`` stream's uniforms)."""
    k = due.shape[0]
    c_acc, arr_live, u_live = np.empty(k, np.intp), np.empty(k), np.empty(k, u_work.dtype)
    prio, target = np.empty(k, priority.dtype), np.empty(k, response_days.dtype)
    m = _queued(next_complaint, due, arrivals, gaps, limit, act, u_work, level, priority,
                response_days, c_acc, arr_live, u_live, prio, target)
    return c_acc[:m], arr_live[:m], u_live[:m], prio[:m], target[:m]


@kernel
def _queued(next_complaint, due, arrivals, gaps, limit, act, u_work, level, priority,
            response_days, c_acc, arr_live, u_live, prio, target):
    m = 0
    for j in range(due.shape[0]):
        a = due[j]
        x = arrivals[j] + gaps[j]
        # np.maximum(x, limit): x unless it is below, NaN comes through (each slot is due
        # once, so the gather, sum and scatter are these values)
        next_complaint[a] = x if (x >= limit or x != x) else limit
        if act[a]:
            c_acc[m] = a
            arr_live[m] = arrivals[j]
            u_live[m] = u_work[j]
            lvl = level[a]
            prio[m] = priority[lvl]
            target[m] = response_days[lvl]
            m += 1
    return m
