"""Compiled kernels (numba, see :mod:`kamsim.jit`) for the people who left in a period of
:func:`kamsim.engine.step.period_step` (sections "decision units" and "trust"): which of them
were key persons, and the trust hit of the accounts they leave without a thread.

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

__all__ = ["key_people", "orphaned_hit"]


def key_people(influence: np.ndarray, coverage: np.ndarray, account: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(key, kp_acc)`` of period_step's

        key = (out.departed_influence >= 0.5) | (out.departed_coverage >= 1 / 3 - 1e-9)
        kp_acc = out.departed_account[key]

    (``influence``, ``coverage`` and ``account``: the outcome's departed_ ones)."""
    k = account.shape[0]
    key, kp_acc = np.empty(k, np.bool_), np.empty(k, account.dtype)
    m = _key_people(influence, coverage, account, 1 / 3 - 1e-9, key, kp_acc)
    return key, kp_acc[:m]


@kernel
def _key_people(influence, coverage, account, covered, key, kp_acc):
    m = 0
    for j in range(account.shape[0]):
        is_key = influence[j] >= 0.5 or coverage[j] >= covered
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
