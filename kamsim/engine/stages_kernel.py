"""Compiled kernels (numba, see :mod:`kamsim.jit`) for the bookkeeping of section "stages" of
:func:`kamsim.engine.step.period_step`: the ageing of the accounts before the stage rules are
evaluated, and the moves the rules' answers make after.

At 10,000 accounts that section is some forty numpy calls a period around the rules (masks a
stage, ors, nots, puts, the changed accounts): their calls cost more than their work. The
rules themselves stay as they are (compiled expressions, evaluated over every account by
numpy, in the same order and on the same condition as the numpy path); a kernel here only
does the masks' logic value by value, so stages, tenure and months in stage are the numpy
path's to the bit. Imported only once :func:`kamsim.jit.wanted` said yes.

The arrays a kernel fills are made by numpy and handed to it (see
:mod:`kamsim.engine.step_kernels`).
"""

from __future__ import annotations

import numpy as np

from kamsim.jit import kernel

__all__ = ["stages_age", "stages_move"]


def stages_age(act: np.ndarray, tenure: np.ndarray, months_in_stage: np.ndarray, dt: float,
               stage: np.ndarray, min_dwell: np.ndarray,
               ladder: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The new tenure and months in stage, the accounts that may move from a stage of the
    ladder, and how many accounts in the portfolio are uncoupled, as the lines

        in_portfolio = np.where(act, dt, 0.0)
        sim.tenure = sim.tenure + in_portfolio
        sim.months_in_stage = sim.months_in_stage + in_portfolio
        may_move = act & (sim.months_in_stage >= st.min_dwell.take(stage))
        here = may_move & (stage == s)                     (a stage s of the ladder)
        np.count_nonzero(act & (stage == ladder))          (uncoupled: the stage past it)

    give them (new arrays, as numpy's; ``min_dwell`` has one value a stage, uncoupled too):
    ``movers``, the accounts of every ``here`` one stage after the other (each stage's in
    ascending order), and ``starts`` (``ladder + 1``), where each stage's begin:
    ``movers[starts[s]:starts[s + 1]]`` is ``np.flatnonzero(here)``."""
    n = act.shape[0]
    new_tenure = np.empty(n)
    new_months = np.empty(n)
    starts = np.zeros(ladder + 1, dtype=np.intp)
    movers, uncoupled = _stages_age(act, tenure, months_in_stage, dt, stage, min_dwell,
                                    new_tenure, new_months, np.empty(n, dtype=np.intp), starts)
    return new_tenure, new_months, movers, starts, int(uncoupled)


@kernel
def _stages_age(act: np.ndarray, tenure: np.ndarray, months_in_stage: np.ndarray, dt: float,
                stage: np.ndarray, min_dwell: np.ndarray, new_tenure: np.ndarray,
                new_months: np.ndarray, ascending: np.ndarray,
                starts: np.ndarray) -> tuple[np.ndarray, int]:
    ladder = starts.shape[0] - 1
    m = 0
    uncoupled = 0
    for i in range(act.shape[0]):
        in_portfolio = dt if act[i] else 0.0
        new_tenure[i] = tenure[i] + in_portfolio
        months = months_in_stage[i] + in_portfolio
        new_months[i] = months
        s = stage[i]
        # (every slot written at the next place, which moves on if the slot may move: no
        # branch on the answer, which is yes for one slot in three)
        ascending[m] = i
        m += act[i] & (months >= min_dwell[s]) & (s < ladder)
        uncoupled += act[i] & (s == ladder)
    # then grouped by stage, each stage's in ascending order (a counting sort)
    count = np.zeros(ladder, dtype=np.intp)
    for j in range(m):
        count[stage[ascending[j]]] += 1
    at = np.empty(ladder, dtype=np.intp)
    total = 0
    for s in range(ladder):
        starts[s] = at[s] = total
        total += count[s]
    starts[ladder] = total
    movers = np.empty(m, dtype=np.intp)
    for j in range(m):
        i = ascending[j]
        s = stage[i]
        movers[at[s]] = i
        at[s] += 1
    return movers, uncoupled


def stages_move(act: np.ndarray, stage: np.ndarray, said: np.ndarray, unc_said: np.ndarray,
                rec: np.ndarray, rec_asked: bool, uncoupled: int,
                months_in_stage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The new stages and the accounts whose stage changed; their months in stage set to 0
    in ``months_in_stage`` (in place). ``said`` is what the stage rules said of each account
    that may move (``stages_age``'s movers; 0 elsewhere): 1 up, 2 down (up first: an
    account both rules move goes up), 0 neither; ``unc_said`` the uncouple rule's answer;
    ``rec`` the accounts that recover (read only if ``rec_asked``). As the lines

        up = here & st.up[s](env, n, act); ups |= up; here = here and not up
        here &= st.down[s](env, n, act); downs |= here     (a stage s: up first)
        new_stage = stage + (ups.view(np.int8) - downs.view(np.int8))
        unc = act & (stage != st.uncoupled) & st.uncouple(env, n, act)
        np.putmask(new_stage, unc, st.uncoupled)
        np.putmask(new_stage, rec, 0)
        changed = np.flatnonzero(new_stage != stage)
        sim.months_in_stage[changed] = 0.0

    give them."""
    n = act.shape[0]
    new_stage = np.empty_like(stage)
    changed = np.empty(n, dtype=np.intp)
    n_changed = _stages_move(act, stage, said, unc_said, rec, rec_asked, uncoupled,
                             months_in_stage, new_stage, changed)
    return new_stage, changed[:n_changed]


@kernel
def _stages_move(act: np.ndarray, stage: np.ndarray, said: np.ndarray, unc_said: np.ndarray,
                 rec: np.ndarray, rec_asked: bool, uncoupled: int,
                 months_in_stage: np.ndarray, new_stage: np.ndarray, changed: np.ndarray) -> int:
    n_changed = 0
    for i in range(act.shape[0]):
        s = stage[i]
        to = s
        told = said[i]
        if told == 1:
            to = s + 1
        elif told == 2:
            to = s - 1
        if act[i] and s != uncoupled and unc_said[i]:
            to = uncoupled
        if rec_asked and rec[i]:
            to = 0
        new_stage[i] = to
        if to != s:
            months_in_stage[i] = 0.0
            changed[n_changed] = i
            n_changed += 1
    return n_changed
