"""The decision-unit step of a stretch of accounts, compiled (numba), and the kernels of the
metrics (:mod:`kamsim.dmu.metrics_kernel` says what they compute), which the step can run
on each block of people right after its step.

:func:`kamsim.dmu.dynamics._step_part` runs this instead of its numpy passes when
:func:`kamsim.jit.wanted` says so (imported only then: importing it imports numba). The numpy
code makes about thirty passes over the stretch's people, each through memory; here the
accounts are taken in blocks of about two thousand people, and a block's few passes run
while it is in cache. The values are the numpy path's to the bit, because every value is
computed with the same operations, on the same operands, in the same order (docs/dmu.md,
"Dynamics"):

* each person's hours, coverage and drifted attitude are the numpy expressions written out
  for one person, operand for operand (numba adds no fused multiply-add and reorders
  nothing);
* the two things the numpy code decides once for its whole part, not per account, are
  decided once for the part here too, in a first pass over its accounts: whether any
  account has a complaint kick (only then is the exposure added, to everyone: adding a
  +0.0 turns an attitude of -0.0 into +0.0, and a NaN coverage makes NaN) and whether any
  account without account-manager people has hours to split over its people (only then is
  the orphan share added, to everyone);
* the neighbours' pull sums each person's in-edges in edge order starting from +0.0, as
  ``np.bincount`` does (the edges are sorted by target, so a person's in-edges are one run);
* the clips compare as numpy's ``clip`` does: NaN passes, a value is replaced only if it is
  strictly outside (so -0.0 stays -0.0 against a bound of 0.0).

The people of the stretch's lost accounts are skipped, nothing of theirs is written (nobody
leaves there): the numpy code works them out with the others and puts them back as they
were, and no account reads another's people. Only the two part-wide decisions above read
lost accounts, as the numpy code's do.

One thing is not the numpy path's to the bit, nor can be: which NaN comes out where two NaNs
of different bits meet in an addition or a multiplication (np.nan is 0x7ff8..., the NaN x86
makes of inf * 0, inf - inf or 0 / 0 is 0xfff8...; e.g. a NaN attitude drifting with the
effort of a person of infinite influence). x86 returns the first operand's, and which one is
first is the compiler's choice (both operations commute): numpy's own loops give the first
or the second operand's by the array's length, the value's place in it and the SIMD level
numpy dispatches to, numba's by how LLVM ordered the operands. A NaN is a NaN on both paths
(only its sign or payload can differ), and no such NaN arises in a simulation (attitudes and
coverage stay finite and clipped); tests/test_kernel_step.py compares NaNs as NaNs where it
mixes the two kinds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import uint64 as U

from kamsim.dmu import dynamics
from kamsim.dmu.arrays import Units
from kamsim.dmu.dynamics import (
    StepInput,
    StepOutcome,
    StepParams,
    _Constants,
)
from kamsim.dmu.metrics import _Blocks
from kamsim.dmu.span import Scratch, Span
from kamsim.dmu.structure import Structure
from kamsim.jit import kernel

__all__ = ["step_part"]


@kernel
def _part_flags(a0, a1, am, ex, spec, resolved, unresolved, group_has, gain, hit):
    """(some account of ``a0:a1`` has a complaint kick, some account without account-manager
    people has hours for its account-manager group), lost accounts included: what the numpy
    code finds with ``kick.any()`` and ``groups.take(am).any()`` over its whole part."""
    kick_any = False
    orphan_any = False
    for a in range(a0, a1):
        if not kick_any:
            kick = gain * resolved[a] - hit * unresolved[a]
            kick_any = kick != 0.0  # (NaN counts, as in any())
        if not orphan_any and not group_has[a, 0]:
            g0 = am[a]
            if not group_has[a, 1]:
                g0 = g0 + ex[a]
            if not group_has[a, 2]:
                g0 = g0 + spec[a]
            orphan_any = g0 != 0.0
        if kick_any and orphan_any:
            break
    return kick_any, orphan_any


# (each kernel module has its own copy of this one-value helper, on purpose: numba's on-disk
# cache of a kernel is renewed only when the kernel's own file changes, so a kernel calling a
# helper from another file could keep running an old version of it)
@kernel
def _clip(x, lo, hi):
    """numpy's clip of one value: NaN passes, a bound replaces only a value strictly beyond it."""
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


#: ``below`` when the draws are compared one by one
_NONE = np.zeros(0, np.int64)

#: the result blocks when the step works out no metrics (the metrics' own, of no account)
_NO_BLOCKS = _Blocks(0)

#: people a block of accounts holds at most (unless one account alone has more): the block's
#: buffers stay in the core's cache between the passes over it
_BLOCK = 2048


@kernel
def _step_accounts(a0, a1, e0, e1, offsets, active, u_depart, p_leave, p_leave_max,
                   coverage, attitude, months_in_post, price_focus, account, role, influence,
                   held_by, split_weight, all_split_weight, group_has, group_weight, edge_src,
                   edge_dst, signed_weight, in_weight_or_1, has_in, pull_rate,
                   newcomer_price_focus,
                   am, ex, spec, quality, resolved, unresolved, hours_per_effort, gain, keep,
                   speed, dt, resolved_gain, complaint_hit, quality_weight, contact_bonus,
                   largest, dep, dep_coverage, scan, below_1, with_metrics, lam, on_cov,
                   on_champ, on_key, sum_influence, sum_influence_or_1, newcomer, hostile,
                   supporter, mentor, brief, f, b_metrics, red):
    """The step of the active accounts of ``a0:a1`` (the edges into their people are
    ``e0:e1``), in place, and who left: the outcome's arrays (departed, departed_account,
    departed_role, departed_coverage, departed_influence), in person order. ``largest`` is
    the most people an account has; ``dep`` and ``dep_coverage`` are per-person buffers.
    Without ``scan``, ``below_1`` lists (ascending) every person whose draw is below 1.0, and
    the highest leaving probability is at most 1.0: only those can leave, and only they are
    looked at. ``with_metrics``: each block's accounts' metrics are then worked out into
    ``f``, ``b_metrics`` and ``red`` (the result blocks) right after its step, while its
    people are in cache, by :func:`_metrics_kernel` with the arguments from ``lam`` on (what
    :func:`kamsim.dmu.metrics_kernel.metrics_part` passes it): the metrics of the stepped
    units, as a metrics pass after the whole step finds them (no block reads another's
    people, and the step's last lines touch only the price focus, which the metrics do not
    read).

    The accounts are worked on in blocks of about :data:`_BLOCK` people, each in four passes
    that stay in cache: the accounts' own values (group rates, target, kick), who leaves,
    every person's contact and drift, the neighbours' pull. Each pass is a plain loop over the
    block (no loop an account: with six people an account, a loop's start and end cost more
    than its work), and a person's account values are looked up by their account.
    """
    kick_any, orphan_any = _part_flags(a0, a1, am, ex, spec, resolved, unresolved, group_has,
                                       resolved_gain, complaint_hit)
    size = _BLOCK + largest
    # per person of a block: the drifted attitude, the sum of the pulls, active or not, and
    # the people whose draw is below the highest leaving probability
    drifted = np.empty(size)
    in_s = np.empty(size)
    alive = np.empty(size, np.bool_)
    below = np.empty(size, np.int64)
    # per account of a block: active, the three group rates, the orphan hours, the sum of
    # the split weights, the complaint kick and the attitude target
    act_a = np.empty(_BLOCK, np.bool_)
    rates = np.empty(3 * _BLOCK)
    orphan = np.empty(_BLOCK)
    split_all = np.empty(_BLOCK)
    kick = np.empty(_BLOCK)
    target = np.empty(_BLOCK)
    # per person of a block, the metrics' propagated attitudes and marks
    weighted = np.empty(size if with_metrics else 0)
    marks = np.empty(size if with_metrics else 0, np.uint8)
    k = 0
    e = e0
    # (the people below 1.0 of this stretch: from the first of its first account's people)
    c = np.searchsorted(below_1, offsets[a0])
    c1 = below_1.shape[0]
    a = a0
    while a < a1:
        # the block: accounts a:b, people q0:q1 (at least one account)
        q0 = offsets[a]
        b = a + 1
        while b < a1 and b - a < _BLOCK and offsets[b + 1] - q0 <= _BLOCK:
            b += 1
        q1 = offsets[b]
        m = q1 - q0
        for j in range(b - a):
            ac = a + j
            act_a[j] = active[ac]
            # the (account, holder) group hours: a holder the unit has nobody for gives its
            # hours to the account-manager group (executive first, then specialist, as the
            # numpy code adds them) and keeps 0 (read only by the people of an "unclean"
            # group: people whose influences add up to no positive weight)
            g0, g1, g2 = am[ac], ex[ac], spec[ac]
            if not group_has[ac, 1]:
                g0 = g0 + g1
                g1 = 0.0
            if not group_has[ac, 2]:
                g0 = g0 + g2
                g2 = 0.0
            # the part's orphan hours are 0 in an account that has account-manager people
            orphan[j] = g0 if orphan_any and not group_has[ac, 0] else 0.0
            # hours per unit of weight (the rate of a group that has nobody is never read)
            rates[3 * j] = g0 / group_weight[3 * ac]
            rates[3 * j + 1] = g1 / group_weight[3 * ac + 1]
            rates[3 * j + 2] = g2 / group_weight[3 * ac + 2]
            split_all[j] = all_split_weight[ac]
            kick[j] = resolved_gain * resolved[ac] - complaint_hit * unresolved[ac]
            target[j] = quality_weight * quality[ac]
        # (views of the block: indices from 0 need no check for negative ones, which
        # costs a person's loop a good part of its time)
        draws = u_depart[q0:q1]
        accs = account[q0:q1]
        holder = held_by[q0:q1]
        weight = split_weight[q0:q1]
        cov_b = coverage[q0:q1]
        att_b = attitude[q0:q1]
        mip_b = months_in_post[q0:q1]
        # 1. departures, before anything reads the people: only a draw below the highest
        # leaving probability can be below the person's own (both compared in float64, as
        # numpy compares a float32 draw with a float64 probability). The few such people
        # are listed without a branch, then looked at one by one
        n_below = 0
        if scan:
            for i in range(m):
                below[n_below] = i
                n_below += np.float64(draws[i]) < p_leave_max
        else:
            # (the others' draws are 1.0 or more: not below any leaving probability)
            while c < c1 and below_1[c] < q1:
                below[n_below] = below_1[c] - q0
                n_below += 1
                c += 1
        for t in range(n_below):
            i = below[t]
            if act_a[accs[i] - a] and np.float64(draws[i]) < p_leave[role[q0 + i]]:
                dep[k] = q0 + i
                dep_coverage[k] = cov_b[i]
                k += 1
                cov_b[i] = 0.0
                att_b[i] = 0.0
                mip_b[i] = 0.0
        # 2.-3. contact, coverage, drift and complaints. A lost account's people are left
        # as they were, and not worked out: nothing of theirs is written, and the pull below
        # reaches them only from their own account's people (~15% of a 10,000-account
        # run's stretch over 60 months: lost accounts stay in it)
        for i in range(m):
            j = accs[i] - a
            act = act_a[j]
            in_s[i] = 0.0
            alive[i] = act
            if not act:
                drifted[i] = 0.0  # (read by the pull into its own account's people only)
                continue
            cov = cov_b[i]
            att = att_b[i]
            wt = weight[i]
            per = rates[3 * j + holder[i]] * wt
            if orphan_any:
                per = per + orphan[j] * wt / split_all[j]
            effort = _clip(per / hours_per_effort, 0.0, 1.0)
            # (both worked out, one kept, as np.putmask keeps one)
            raised = effort * gain * (1.0 - cov) + cov
            decayed = cov * keep
            new_cov = _clip(raised if per > 0.0 else decayed, 0.0, 1.0)
            new_att = (target[j] + effort * contact_bonus - att) * speed + att
            if kick_any:
                new_att = new_att + (new_cov * 0.5 + 0.5) * kick[j]
            drifted[i] = new_att
            cov_b[i] = new_cov
            mip_b[i] = mip_b[i] + dt
        e_block = e
        # 3. one Jacobi step of the in-neighbours' pull, on the drifted values: each
        # person's in-edges added in edge order from +0.0, as np.bincount adds them (the
        # edges are sorted by target and join people of one account, so the edges into the
        # block are the next run of them)
        while e < e1 and edge_dst[e] < q1:
            in_s[edge_dst[e] - q0] += drifted[edge_src[e] - q0] * signed_weight[e]
            e += 1
        w_in = in_weight_or_1[q0:q1]
        pulled = has_in[q0:q1]
        for i in range(m):
            new_att = drifted[i]
            # the person's rate: has_in times the pull's rate, the product numpy makes of a
            # boolean and a float (0 without in-edges)
            rate = np.float64(pulled[i]) * pull_rate
            new_att = new_att + (in_s[i] / w_in[i] - new_att) * rate
            att = att_b[i]
            att_b[i] = _clip(new_att, -1.0, 1.0) if alive[i] else att
        if with_metrics:
            _metrics_kernel(a, b, q0, q1, e_block, e, offsets, influence, coverage, attitude,
                            months_in_post, edge_src, edge_dst, signed_weight, in_weight_or_1,
                            has_in, lam, on_cov, on_champ, on_key, sum_influence,
                            sum_influence_or_1, newcomer, hostile, supporter, mentor, brief,
                            weighted, marks, f, b_metrics, red)
        a = b
    # the outcome, and the newcomers' price focus by role (the numpy lines after the
    # departures: out = StepOutcome(...); units.price_focus[dep] = newcomer[departed_role])
    departed = dep[:k].copy()
    departed_account = np.empty(k, account.dtype)
    departed_role = np.empty(k, role.dtype)
    departed_influence = np.empty(k)
    for t in range(k):
        p = departed[t]
        departed_account[t] = account[p]
        departed_role[t] = role[p]
        departed_influence[t] = influence[p]
        price_focus[p] = newcomer_price_focus[role[p]]
    return (departed, departed_account, departed_role, dep_coverage[:k].copy(),
            departed_influence)


# -- the decision-unit metrics' kernels (kamsim.dmu.metrics_kernel tells what they compute):
# here, so that the step can work out each block's metrics while the block is in cache (a
# kernel calls kernels of its own file only: numba renews a kernel's on-disk cache only
# when its own file changes)


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


def step_part(units: Units, st: Structure, c: _Constants, inp: StepInput, params: StepParams,
              u_depart: np.ndarray, active: np.ndarray, sp: Span, buf: Scratch,
              below: np.ndarray | None = None, metrics: tuple[Any, ...] | None = None
              ) -> StepOutcome:
    """:func:`kamsim.dmu.dynamics._step_part` in the kernels (the influence edges sorted by
    target): the same changes to the units and the same outcome, to the bit. One kernel call
    does it all (the part-wide flags, the step, the outcome and the newcomers' price focus):
    at 10,000 accounts a period's step takes ~0.5 ms, and each numpy call around it a few
    microseconds more."""
    f64 = np.float64
    # the people below 1.0 are all that may leave only if no leaving probability is above
    # 1.0 (NaN included: the draws are then compared one by one, as numpy does)
    scan = below is None or not float(c.p_leave_max) <= 1.0
    # person buffers for who left (as int64) and their coverage
    f0, f1, _ = buf.rows("f", 3, sp)
    largest = st.value("largest_account", lambda: int(units.sizes.max(initial=0)))
    return StepOutcome(*_step_accounts(
        sp.a0, sp.a1, sp.e0, sp.e1, units.offsets, active, u_depart, c.p_leave,
        float(c.p_leave_max), units.coverage, units.attitude, units.months_in_post,
        units.price_focus, units.account, units.role, units.influence, units.held_by,
        st.split_weight, st.all_split_weight, st.group_has, st.group_weight, units.edge_src,
        units.edge_dst, st.signed_weight, st.in_weight_or_1, st.has_in, float(c.pull_rate),
        c.newcomer_price_focus, np.asarray(inp.am_hours, f64), np.asarray(inp.exec_hours, f64),
        np.asarray(inp.specialist_hours, f64), np.asarray(inp.quality, f64),
        np.asarray(inp.complaints_resolved, f64), np.asarray(inp.complaints_unresolved, f64),
        float(c.hours_per_effort), float(c.gain), float(c.keep), float(c.speed),
        float(params.dt_months), float(params.resolved_attitude_gain),
        float(params.complaint_attitude_hit),
        # (arguments, not globals: numba compiles a global in as a constant and its on-disk
        # cache is renewed only when this file changes)
        float(dynamics.QUALITY_WEIGHT), float(dynamics.CONTACT_BONUS), largest,
        f0.view(np.int64), f1, scan, _NONE if scan else below,
        *(_no_metrics(st) if metrics is None else (True, *metrics))))


def _no_metrics(st: Structure) -> tuple[Any, ...]:
    """The step kernel's metrics arguments when it works out none: of the types
    :func:`kamsim.dmu.metrics_kernel.step_metrics_part` passes (one compiled version
    serves both), empty result blocks."""
    marks = st.has_in.view(np.uint8)  # (read-only bytes, as the marks are)
    return (False, 0.0, marks, marks, marks, st.sum_influence, st.sum_influence_or_1, 0.0,
            0.0, 0.0, 0.0, 0.0, _NO_BLOCKS.f, _NO_BLOCKS.b, _NO_BLOCKS.red)
