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

The kernels themselves are in :mod:`kamsim.dmu.step_kernel`, with the step's: a simulation's
period asks for the step and then the metrics of the same stretch (``Context.step_metrics``,
:func:`step_metrics_part`), and the step kernel works out each block's metrics right after the
block's step, while its people are in cache (a kernel may call only kernels of its own file:
numba renews a kernel's on-disk cache only when that file changes). This module passes them
their arguments.
"""

from __future__ import annotations

import numpy as np

from kamsim.dmu.arrays import Units
from kamsim.dmu.dynamics import StepInput, StepOutcome, StepParams, _Constants
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
from kamsim.dmu.step_kernel import _metrics_kernel, _propagated_kernel, step_part
from kamsim.dmu.structure import Structure

__all__ = ["metrics_part", "propagated", "step_metrics_part"]

#: the metrics kernel's arguments from ``lam`` to ``brief`` (:func:`_levels`)
_Levels = tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float,
                float, float, float, float]


def metrics_part(units: Units, st: Structure, threshold: float, sp: Span, buf: Scratch,
                 blocks: _Blocks) -> None:
    """:func:`kamsim.dmu.metrics._metrics_part` of the accounts of ``sp``, compiled: their
    columns of ``blocks``, bit for bit, with the scratch buffers ``buf`` (a float and a byte a
    person, the slots the numpy path uses too)."""
    _metrics_kernel(sp.a0, sp.a1, sp.p0, sp.p1, sp.e0, sp.e1, units.offsets, units.influence,
                    units.coverage, units.attitude, units.months_in_post, units.edge_src,
                    units.edge_dst, st.signed_weight, st.in_weight_or_1, st.has_in,
                    *_levels(units, st, threshold), buf.rows("f", 3, sp)[1],
                    buf.get("bits", sp, np.uint8), blocks.f, blocks.b, blocks.red)


def step_metrics_part(units: Units, st: Structure, c: _Constants, inp: StepInput,
                      params: StepParams, u_depart: np.ndarray, active: np.ndarray, sp: Span,
                      buf: Scratch, below: np.ndarray | None, threshold: float,
                      blocks: _Blocks) -> StepOutcome:
    """:func:`kamsim.dmu.step_kernel.step_part` of ``sp``, then :func:`metrics_part` of its
    accounts, in one pass: the step kernel works out each block's metrics right after its
    step, while its people are in cache (one lane over a 1M-account run's stretch: ~78 ms
    apart, ~70 ms so). The same outcome, units and result blocks, bit for bit."""
    return step_part(units, st, c, inp, params, u_depart, active, sp, buf, below,
                     (*_levels(units, st, threshold), blocks.f, blocks.b, blocks.red))


def _levels(units: Units, st: Structure, threshold: float) -> _Levels:
    """The metrics kernel's arguments from ``lam`` to ``brief``: the propagation's rate, the
    people's fixed mark bits (kept with the structure), the accounts' influence sums and
    the levels of the marks (the numpy path's, passed in: compared as float64 there and
    here)."""
    fixed = st.extra(("mark_bytes", float(threshold)),
                     lambda: _mark_bytes(units, st, threshold))
    return (float(PROPAGATION_LAMBDA), fixed[0], fixed[1], fixed[2], st.sum_influence,
            st.sum_influence_or_1, float(NEWCOMER_MONTHS), _HOSTILE, _SUPPORTER, _MENTOR,
            _BRIEF)


def propagated(units: Units, st: Structure, sp: Span, lam: float,
               out: np.ndarray) -> np.ndarray:
    """:func:`kamsim.dmu.metrics._propagated` of the span's people, compiled, into ``out``."""
    _propagated_kernel(sp.p0, sp.p1, sp.e0, sp.e1, units.attitude, units.edge_src,
                       units.edge_dst, st.signed_weight, st.in_weight_or_1,
                       st.has_in, float(lam), out)
    return out
