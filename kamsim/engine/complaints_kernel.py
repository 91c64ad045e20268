"""Compiled kernel (numba) for the complaints a period hands out: how many each account had
answered in time and late, and the support hours they took (``step.period_step``).

The numpy code makes a pass over the slots for each of three bincounts and two casts to
float, and two masked copies of the answers; here the answers are gone through once, added
in the same order from +0.0 as ``np.bincount`` adds them (see :mod:`kamsim.jit`), so the
figures are the same to the bit. Imported only when :func:`kamsim.jit.wanted` says yes (it
compiles the kernel, so it imports numba).
"""

from __future__ import annotations

from kamsim.jit import kernel

__all__ = ["answered"]


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
