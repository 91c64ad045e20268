"""Compiled kernels (numba) for the sort behind the portfolio helpers (``rank_pct``,
``cum_share`` and their moved versions): ``functions._ascending``'s order by one LSD radix
sort of the value keys; and, in the same blocks, the moved ranks of a re-tiering's
hysteresis (``ranks_moved``, for ``functions.rank_pct_moved``): one pass over the moved
rows where numpy makes several.

A radix sort is stable, so equal keys keep their row order: the order is the one
``np.argsort(keys, kind="stable")`` gives, the only order ``_ascending`` may give, whatever
the way to it. numpy's own sort of the packed keys runs on this machine's CPU (AMD Zen 4)
at about 25 ns a value at 10k and 55 ns at 1M (its AVX-512 sort is slow there, see
docs/scale.md); this one at 10-15 and 12-28, and it needs no second pass for keys that
clash. Imported only inside ``functions.compiled_sorts()``, which the engine's re-tiering
opens when :func:`kamsim.jit.wanted` says yes (it compiles the kernel, so it imports numba).
"""

from __future__ import annotations

import numpy as np

from kamsim.jit import kernel

__all__ = ["ascending", "ranks_moved"]


@kernel
def ascending(keys, order, spare_keys, spare_order):
    """``order`` = the rows in ascending order of ``keys`` (``functions._sort_keys`` of the
    values, as int64: each byte is read unsigned), equal keys by row; ``keys`` sorted in
    place. ``spare_keys`` and ``spare_order`` (same size) are overwritten. One pass counts
    the eight bytes of every key, then one pass a byte, lowest first, moves the keys into
    place by that byte; a byte all keys share is skipped."""
    m = keys.shape[0]
    for i in range(m):
        order[i] = i
    if m < 2:
        return
    counts = np.zeros((8, 256), np.int64)
    for i in range(m):
        k = keys[i]
        for d in range(8):
            counts[d, (k >> (8 * d)) & 255] += 1
    src_keys, src_order, dst_keys, dst_order = keys, order, spare_keys, spare_order
    in_spare = False
    first = keys[0]
    start = np.empty(256, np.int64)
    for d in range(8):
        if counts[d, (first >> (8 * d)) & 255] == m:
            continue
        total = 0
        for b in range(256):
            start[b] = total
            total += counts[d, b]
        for i in range(m):
            k = src_keys[i]
            b = (k >> (8 * d)) & 255
            p = start[b]
            start[b] = p + 1
            dst_keys[p] = k
            dst_order[p] = src_order[i]
        src_keys, src_order, dst_keys, dst_order = dst_keys, dst_order, src_keys, src_order
        in_spare = not in_spare
    if in_spare:
        for i in range(m):
            keys[i] = src_keys[i]
            order[i] = src_order[i]


@kernel
def _before(x, value, right):
    """Whether ``x`` comes before where ``value`` goes: below it (side "left"), or at most
    it (side "right")."""
    return x <= value if right else x < value


@kernel
def _search(ascending, value, lo, right):
    """``np.searchsorted(ascending, value, "right" if right else "left")`` given that every
    value before ``lo`` comes before it (see :func:`_before`): a gallop from ``lo`` (a few
    steps when the answer is near), then a binary search."""
    m = ascending.shape[0]
    step = 1
    hi = lo
    while hi < m and _before(ascending[hi], value, right):
        lo = hi + 1
        hi = lo + step
        step *= 2
    if hi > m:
        hi = m
    while lo < hi:
        mid = (lo + hi) >> 1
        if _before(ascending[mid], value, right):
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def ranks_moved(ascending, rows, values, moved_to, out, every):
    """``functions.rank_pct_moved``'s lines from its search on, one moved row at a time:
    ``value, own = moved_to[rows], values[rows]`` (``every``: the rows are the whole
    population's, so ``own`` is ``ascending``); ``below = _count_below(ascending,
    value)``; the others equal to the moved value counted (``equal``); ``below -= own <
    value``; ``out[rows] = (below + (equal + 2) / 2.0) / pop.size``. ``ascending``: the
    population's values sorted (no NaN, nor in the moved values). Each search starts where
    the one before ended when the moved values come in ascending order (the rows come in
    the population's order and a hysteresis nudge keeps it: one merge-like pass), from the
    start when not."""
    m = ascending.shape[0]
    below = 0
    previous = 0.0
    for j in range(rows.shape[0]):
        r = rows[j]
        value = moved_to[r]
        own = ascending[j] if every else values[r]
        # every value before the last search's answer is below the last value, so below
        # this one too if it is not smaller (-0.0 and 0.0 compare equal, as in numpy)
        start = below if j > 0 and value >= previous else 0
        below = _search(ascending, value, start, False)
        previous = value
        equal = 0
        if below < m and ascending[below] == value:
            equal = _search(ascending, value, below, True) - below
        counted = below
        if own < value:
            counted -= 1
        out[r] = (counted + (equal + 2) / 2.0) / m

