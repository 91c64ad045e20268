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

__all__ = ["ascending", "packed_keys", "rows_of_packed", "kept_rows", "put_ranks", "ranks_moved"]


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


#: a run of clashing keys is put in order in place up to this long (longer: sort otherwise)
_RUN_MAX = 64
_LOW63 = 0x7FFFFFFFFFFFFFFF


@kernel
def _signed_key(b):
    """A value's key as a signed integer in the value's order, from its bits ``b`` (float64
    as int64): -0.0 is 0.0's key, a negative value's bits below the sign flipped."""
    if b == -_LOW63 - 1:  # (-0.0)
        b = 0
    return b ^ ((b >> 63) & _LOW63)


@kernel
def packed_keys(bits, selected, everyone, shift, packed):
    """Each population row's key (the ``selected`` rows, every row if ``everyone``;
    ``bits``: the float64 values as int64, no NaN among the population) with the row in its
    low ``shift`` bits, which hold any row, into ``packed[:m]`` as unsigned integers in the
    values' order (those bits of the key given up): returns m. Sorted, they give the rows
    in ascending order of value, equal values by row, but for keys that differ only in the
    bits given up (:func:`rows_of_packed`)."""
    low = (1 << shift) - 1
    top = -_LOW63 - 1  # (the sign bit: the unsigned order is the signed one with it flipped)
    m = 0
    for i in range(bits.shape[0]):
        if everyone or selected[i]:
            packed[m] = ((_signed_key(bits[i]) ^ top) & ~low) | i
            m += 1
    return m


@kernel
def rows_of_packed(packed, shift, bits, rows, ties):
    """The rows of the sorted :func:`packed_keys` into ``rows``, and the positions along
    them whose value equals the next one's into ``ties[:t]``: returns t, or -1 when a run
    of clashing keys is too long and out of order (then sort with :func:`ascending`).

    Keys that agree above the rows' bits but differ in the bits given up (a clash) come in
    row order; each such run is put in order by the whole key (in place, by insertion:
    equal keys keep their row order). Only in such a run can two values be equal."""
    m = packed.shape[0]
    low = (1 << shift) - 1
    for j in range(m):
        rows[j] = packed[j] & low
    t = 0
    full = np.empty(_RUN_MAX, np.int64)
    held = np.empty(_RUN_MAX, np.int64)
    j = 0
    while j < m - 1:
        if (packed[j] ^ packed[j + 1]) & ~low:
            j += 1
            continue
        e = j + 2
        while e < m and not (packed[e - 1] ^ packed[e]) & ~low:
            e += 1
        in_order = True
        for q in range(j, e - 1):
            if _signed_key(bits[rows[q]]) > _signed_key(bits[rows[q + 1]]):
                in_order = False
                break
        if not in_order:
            if e - j > _RUN_MAX:
                return -1
            for q in range(j, e):
                r = rows[q]
                k = _signed_key(bits[r])
                at = q - j
                while at > 0 and full[at - 1] > k:
                    full[at] = full[at - 1]
                    held[at] = held[at - 1]
                    at -= 1
                full[at] = k
                held[at] = r
            for q in range(j, e):
                rows[q] = held[q - j]
        for q in range(j, e - 1):
            if _signed_key(bits[rows[q]]) == _signed_key(bits[rows[q + 1]]):
                ties[t] = q
                t += 1
        j = e
    return t


@kernel
def kept_rows(order, run, selected, rows, ties):
    """``functions._kept_rows`` in one pass along a kept order of every row: the
    ``selected`` rows in that order into ``rows``, and the positions along them whose run
    of equal values (``run``, one a place of the order; empty: every value differs) is the
    previous one's, less one, into ``ties[:t]``: returns t. ``rows`` and ``ties`` have room
    for one more than the selected rows: each place is written whether or not its row is
    selected, and counted only if it is (a branch on a row's mark, true for about half of
    them, mispredicts half the time and took twice as long)."""
    has_run = run.shape[0] > 0
    m = np.int64(0)
    t = np.int64(0)
    last = np.int64(-1)
    for p in range(order.shape[0]):
        r = order[p]
        s = np.int64(selected[r])
        rows[m] = r
        if has_run:
            g = np.int64(run[p])
            ties[t] = m - 1
            t += s & np.int64(g == last)
            last += (g - last) * s
        m += s
    return t


@kernel
def put_ranks(rows, run_start, run_end, out):
    """``out[rows] = _SortedPopulation.average_rank()`` without the array of ranks: each
    place's average 1-based rank over its run of equal values (``run_start``/``run_end``
    along ``rows``; empty: every value differs), divided by the population's size, worked
    out as numpy works it out (``run_start + (count + 1) / 2.0``, then the division; without
    ties, ``(p + 1) / m``)."""
    m = rows.shape[0]
    if run_start.shape[0] == 0:
        for p in range(m):
            out[rows[p]] = (p + 1) / m
        return
    for i in range(run_start.shape[0]):
        s = run_start[i]
        e = run_end[i]
        value = (s + (e - s + 1) / 2.0) / m
        for p in range(s, e):
            out[rows[p]] = value


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

