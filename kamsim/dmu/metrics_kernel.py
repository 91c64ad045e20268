"""The decision-unit metrics of a stretch of accounts, compiled (:mod:`kamsim.jit`): what
:func:`kamsim.dmu.metrics._metrics_part` works out in some forty numpy passes over the people
(products, a gather and a bincount over the edges, three bincounts or the rank layout, a
reduceat, the mark bytes and their running sums), here in three: one over the edges (each
person's in-sum), one over the people (propagated attitude times influence, and the marks;
no person depends on another, so it is vectorised) and one an account (its sums, largest ic,
counts and results, written straight into its columns of the result blocks).

The figures are the numpy path's to the bit (tests/test_kernel_metrics.py): every value is
worked out by the same operations on the same operands in the same order. All but one
thing, which neither path fixes: which NaN comes out where two NaNs of different bits
(np.nan, 0x7ff8..., and the 0xfff8... x86 makes of inf * 0 or inf - inf) meet in an addition
or a multiplication. x86 returns the first operand's and the compiler picks which one is
first (both operations commute): numpy's loops give either by the array's length, the value's
place in it and the SIMD level numpy dispatches to. A NaN is a NaN on both paths.

* A person's in-sum adds its in-edges' ``attitude[src] * signed_weight`` in edge order from
  +0.0, as the numpy path's ``np.bincount(edge_dst, weights=pulled)`` does (one pass over
  the edges, each added to its target's sum, the sums starting at +0.0); its propagated
  attitude is then ``((in_s / in_weight_or_1 - att) * lam_has_in) + att``, step by step as
  :func:`~kamsim.dmu.metrics._propagated` computes it.
* An account's sums add its people's values in their order from +0.0, as ``np.bincount``
  does (and ``_by_rank``, documented to give bincount's sums to the bit): ic = infl * cov,
  propagated * infl and ``((att + 1) * ic) * 0.5`` (numba does not contract a product and a
  sum into a fused multiply-add, nor reorder a sum without ``fastmath``).
* Its largest ic is taken as ``np.maximum`` takes it (the first value, then any value the
  largest so far is not at least, unless that is NaN). It is read only by spof_share where
  the sum of ic is positive, that is where some ic is positive and none is NaN, and there
  every way of taking the largest gives the same value (reduceat's and the rank layout's too).
* spof_share is :func:`~kamsim.dmu.metrics._ratio`'s ``max / sum`` where the sum is
  positive, else 1; coverage and sentiment are the sums divided by ``sum_influence_or_1``,
  then 0 where the influence sum is not positive (``Structure.no_influence``); strength is
  the sum itself.
* The marks are the numpy path's comparisons with the same levels (passed in, computed in
  Python as there: a kernel loaded from numba's cache never holds an old constant) and the
  same per-person bits (``_mark_bytes``, from the structure's cache). Counted per account
  they are exact integers; the flags need only whether a count is positive, so all but the
  threads are or-ed.

:func:`kamsim.dmu.span.compiled` says when this runs: influence edges sorted by target
(as :class:`~kamsim.dmu.arrays.Units` keeps them) with both ends in range, and float64
people (a float32 attitude would be compared with a level in float32 by numpy, in float64
here).
"""

from __future__ import annotations

import numpy as np
from numba import uint64 as U

from kamsim.dmu.arrays import Units
from kamsim.dmu.metrics import (
    _BRIEF,
    _HOSTILE,
    _MENTOR,
    _SUPPORTER,
    NEWCOMER_MONTHS,
    PROPAGATION_LAMBDA,
    _Blocks,
    _mark_bytes,
)
from kamsim.dmu.span import Scratch, Span
from kamsim.dmu.structure import Structure
from kamsim.jit import kernel

__all__ = ["metrics_part", "propagated"]


@kernel
def _pulled(p0, p1, e0, e1, attitude, edge_src, edge_dst, signed_weight, out):
    """Into ``out`` (the people ``p0:p1``), each person's in-sum: its in-edges'
    ``attitude[src] * signed_weight`` added in edge order from +0.0, which is what
    ``np.bincount(edge_dst, weights=pulled)`` does (one pass over the edges, value by value,
    into sums that start at +0.0). No branch a person: the in-degrees are as good as random."""
    for k in range(U(p1 - p0)):
        out[k] = 0.0
    base = U(p0)
    for e in range(U(e0), U(e1)):
        out[U(edge_dst[e]) - base] += attitude[U(edge_src[e])] * signed_weight[e]


@kernel
def _lam(lam, has_in):
    """A person's ``lam_has_in`` (:func:`~kamsim.dmu.metrics._lam_has_in`: ``lam * has_in``,
    numpy's product of a float and a boolean), from the person's byte: the per-person array
    is 8 bytes a person read every period, ~70 MB at a million accounts."""
    return lam * np.float64(has_in)


@kernel
def _propagate(in_s, att, in_weight_or_1, lam_has_in):
    """A person's propagated attitude from its in-sum, step by step as
    :func:`~kamsim.dmu.metrics._propagated` computes it (a person without in-edges has
    in_s = +0.0, divides by 1 and is pulled by 0: s = att, but +0.0 for -0.0)."""
    s = in_s / in_weight_or_1
    s -= att
    s *= lam_has_in
    s += att
    return s


@kernel
def _propagated_kernel(p0, p1, e0, e1, attitude, edge_src, edge_dst, signed_weight,
                       in_weight_or_1, has_in, lam, out):
    _pulled(p0, p1, e0, e1, attitude, edge_src, edge_dst, signed_weight, out)
    for k in range(U(p1 - p0)):
        p = U(p0) + k
        out[k] = _propagate(out[k], attitude[p], in_weight_or_1[p], _lam(lam, has_in[p]))


@kernel
def _metrics_kernel(a0, a1, p0, p1, e0, e1, offsets, influence, coverage, attitude, months,
                    edge_src, edge_dst, signed_weight, in_weight_or_1, has_in, lam, on_cov,
                    on_champ, on_key, sum_influence, sum_influence_or_1, newcomer, hostile,
                    supporter, mentor, brief, weighted, marks, f, b, red):
    """The metrics of the accounts ``a0:a1`` (people ``p0:p1``, the edges into them
    ``e0:e1``) into their columns of ``f``, ``b`` and ``red`` (the result blocks), with the
    per-person buffers ``weighted`` and ``marks`` (the span's people)."""
    # (indices are unsigned: numba then leaves out the wrap-around of negative ones, a third
    # of the time of the account loop)
    base = U(p0)
    # 1. each person's propagated attitude times influence, and marks (a byte, bit i =
    # _MARKS[i]): one pass, vectorised (no person depends on another)
    _pulled(p0, p1, e0, e1, attitude, edge_src, edge_dst, signed_weight, weighted)
    for k in range(U(p1 - p0)):
        p = base + k
        att, cov = attitude[p], coverage[p]
        s = _propagate(weighted[k], att, in_weight_or_1[p], _lam(lam, has_in[p]))
        weighted[k] = s * influence[p]  # (weighted *= infl)
        # a covered thread / economic buyer (on_cov: bits 0, 1), a supportive champion
        # (on_champ: bit 2) or a mentor, a hostile key person (on_key: bit 3), a newcomer in
        # a key role (bit 4)
        key = on_key[p]
        marks[k] = ((on_cov[p] * U(cov >= brief)) | (on_champ[p] * U(att >= supporter))
                    | (U(4) * U(att >= mentor)) | (key * U(att <= hostile))
                    | (U(2) * key * U(months[p] < newcomer)))
    # 2. per account
    for a in range(U(a0), U(a1)):
        q0, q1 = U(offsets[a]), U(offsets[a + 1])
        s_ic = 0.0
        s_weighted = 0.0
        s_strength = 0.0
        top = influence[q0] * coverage[q0] if q1 > q0 else 0.0  # (the first ic)
        threads = U(0)
        seen = U(0)
        for p in range(q0, q1):
            att = attitude[p]
            ic = influence[p] * coverage[p]
            s_ic += ic
            s_weighted += weighted[p - base]
            s_strength += (att + 1.0) * ic * 0.5
            # np.maximum: the largest so far stays unless it is smaller than ic (a NaN
            # stays); a select, not a branch (which values win is as good as random)
            keep = (top >= ic) | (top != top)
            top = top if keep else ic
            m = U(marks[p - base])
            threads += m & U(1)
            seen |= m
        # spof_share: _ratio(max, sum, 1)
        f[4, a] = top / s_ic if s_ic > 0 else 1.0
        if sum_influence[a] > 0:
            f[0, a] = s_ic / sum_influence_or_1[a]
            f[1, a] = s_weighted / sum_influence_or_1[a]
        else:
            f[0, a] = 0.0
            f[1, a] = 0.0
        f[2, a] = s_strength
        mt = float(threads)
        f[3, a] = mt
        dm, champ = (seen >> U(1)) & U(1), (seen >> U(2)) & U(1)
        hostiles, newcomers = (seen >> U(3)) & U(1), (seen >> U(4)) & U(1)
        single = mt <= 1.0
        b[0, a] = dm != 0
        b[1, a] = champ != 0
        b[2, a] = hostiles != 0
        b[3, a] = newcomers != 0
        b[4, a] = dm == 0
        b[5, a] = champ == 0
        b[6, a] = single
        # red flags: hostile_influencer, newcomer_in_key_role, eb_uncovered, no_champion,
        # single_threaded
        red[a] = hostiles + newcomers + (U(1) - dm) + (U(1) - champ) + U(single)


def metrics_part(units: Units, st: Structure, threshold: float, sp: Span, buf: Scratch,
                 blocks: _Blocks) -> None:
    """:func:`kamsim.dmu.metrics._metrics_part` of the accounts of ``sp``, compiled: their
    columns of ``blocks``, bit for bit, with the scratch buffers ``buf`` (a float and a byte a
    person, the slots the numpy path uses too)."""
    fixed = st.extra(("mark_bytes", float(threshold)),
                     lambda: _mark_bytes(units, st, threshold))
    # (the levels are the numpy path's, passed in: compared as float64 there and here)
    _metrics_kernel(sp.a0, sp.a1, sp.p0, sp.p1, sp.e0, sp.e1, units.offsets, units.influence,
                    units.coverage, units.attitude, units.months_in_post, units.edge_src,
                    units.edge_dst, st.signed_weight, st.in_weight_or_1,
                    st.has_in, float(PROPAGATION_LAMBDA), fixed[0], fixed[1], fixed[2],
                    st.sum_influence, st.sum_influence_or_1, float(NEWCOMER_MONTHS),
                    _HOSTILE, _SUPPORTER, _MENTOR, _BRIEF, buf.rows("f", 3, sp)[1],
                    buf.get("bits", sp, np.uint8), blocks.f, blocks.b, blocks.red)


def propagated(units: Units, st: Structure, sp: Span, lam: float,
               out: np.ndarray) -> np.ndarray:
    """:func:`kamsim.dmu.metrics._propagated` of the span's people, compiled, into ``out``."""
    _propagated_kernel(sp.p0, sp.p1, sp.e0, sp.e1, units.attitude, units.edge_src,
                       units.edge_dst, st.signed_weight, st.in_weight_or_1,
                       st.has_in, float(lam), out)
    return out
