"""The decision-unit step of a stretch of accounts, compiled (numba).

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

import numpy as np

from kamsim.dmu import dynamics
from kamsim.dmu.arrays import Units
from kamsim.dmu.dynamics import (
    StepInput,
    StepOutcome,
    StepParams,
    _Constants,
)
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
                   largest, dep, dep_coverage, scan, below_1):
    """The step of the active accounts of ``a0:a1`` (the edges into their people are
    ``e0:e1``), in place, and who left: the outcome's arrays (departed, departed_account,
    departed_role, departed_coverage, departed_influence), in person order. ``largest`` is
    the most people an account has; ``dep`` and ``dep_coverage`` are per-person buffers.
    Without ``scan``, ``below_1`` lists (ascending) every person whose draw is below 1.0, and
    the highest leaving probability is at most 1.0: only those can leave, and only they are
    looked at.

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


def step_part(units: Units, st: Structure, c: _Constants, inp: StepInput, params: StepParams,
              u_depart: np.ndarray, active: np.ndarray, sp: Span, buf: Scratch,
              below: np.ndarray | None = None) -> StepOutcome:
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
        f0.view(np.int64), f1, scan, _NONE if scan else below))
