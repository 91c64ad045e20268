"""Compiled kernel (numba) for the sort behind the portfolio helpers (``rank_pct``,
``cum_share`` and their moved versions): ``functions._ascending``'s order by one LSD radix
sort of the value keys.

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

__all__ = ["ascending"]


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
