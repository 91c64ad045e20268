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
               ladder: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The new tenure and months in stage, who may move and, a stage of the ladder, whether
    anyone may move from it, as the lines

        in_portfolio = np.where(act, dt, 0.0)
        sim.tenure = sim.tenure + in_portfolio
        sim.months_in_stage = sim.months_in_stage + in_portfolio
        may_move = act & (sim.months_in_stage >= st.min_dwell.take(stage))
        here = may_move & (stage == s); here.any()       (a stage s of the ladder)

    give them (new arrays, as numpy's; ``min_dwell`` has one value a stage, uncoupled too)."""
    n = act.shape[0]
    new_tenure = np.empty(n)
    new_months = np.empty(n)
    may_move = np.empty(n, dtype=np.bool_)
    movable = np.zeros(ladder, dtype=np.bool_)
    _stages_age(act, tenure, months_in_stage, dt, stage, min_dwell, new_tenure, new_months,
                may_move, movable)
    return new_tenure, new_months, may_move, movable


@kernel
def _stages_age(act: np.ndarray, tenure: np.ndarray, months_in_stage: np.ndarray, dt: float,
                stage: np.ndarray, min_dwell: np.ndarray, new_tenure: np.ndarray,
                new_months: np.ndarray, may_move: np.ndarray, movable: np.ndarray) -> None:
    for i in range(act.shape[0]):
        in_portfolio = dt if act[i] else 0.0
        new_tenure[i] = tenure[i] + in_portfolio
        months = months_in_stage[i] + in_portfolio
        new_months[i] = months
        may_move[i] = act[i] and months >= min_dwell[stage[i]]
    # whether anyone may move from a stage: up to the first of each, in a second pass (a
    # tally a stage in the pass above would keep it from running several accounts at once:
    # it costs as much as the pass itself)
    ladder = movable.shape[0]
    left = ladder
    for i in range(act.shape[0]):
        if may_move[i]:
            s = stage[i]
            if s < ladder and not movable[s]:
                movable[s] = True
                left -= 1
                if left == 0:
                    break


def stages_move(act: np.ndarray, stage: np.ndarray, may_move: np.ndarray, up_said: np.ndarray,
                up_asked: np.ndarray, down_said: np.ndarray, down_asked: np.ndarray,
                unc_said: np.ndarray, rec: np.ndarray, rec_asked: bool, uncoupled: int,
                months_in_stage: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The new stages and the accounts whose stage changed; their months in stage set to 0
    in ``months_in_stage`` (in place). ``up_said[s]`` / ``down_said[s]`` is what stage
    ``s``'s up / down rule said of every account, read only where ``up_asked[s]`` /
    ``down_asked[s]`` (the rule was evaluated: it exists, leads somewhere and someone may
    move from the stage); ``unc_said`` the uncouple rule's answer; ``rec`` the accounts that
    recover (read only if ``rec_asked``). As the lines

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
    n_changed = _stages_move(act, stage, may_move, up_said, up_asked, down_said, down_asked,
                             unc_said, rec, rec_asked, uncoupled, months_in_stage, new_stage,
                             changed)
    return new_stage, changed[:n_changed]


@kernel
def _stages_move(act: np.ndarray, stage: np.ndarray, may_move: np.ndarray, up_said: np.ndarray,
                 up_asked: np.ndarray, down_said: np.ndarray, down_asked: np.ndarray,
                 unc_said: np.ndarray, rec: np.ndarray, rec_asked: bool, uncoupled: int,
                 months_in_stage: np.ndarray, new_stage: np.ndarray, changed: np.ndarray) -> int:
    ladder = up_asked.shape[0]
    n_changed = 0
    for i in range(act.shape[0]):
        s = stage[i]
        to = s
        if may_move[i] and s < ladder:
            if up_asked[s] and up_said[s, i]:
                to = s + 1
            elif down_asked[s] and down_said[s, i]:
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
