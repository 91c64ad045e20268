"""One simulation's decision-unit step and metrics, with part of the set-up done once.

:func:`kamsim.dmu.step` and :func:`kamsim.dmu.metrics` take everything as arguments and work
out on every call the roles' values, and the stretch of active accounts (once for the step and
again for the metrics of the same period). A :class:`Context` is made once per simulation of
one :class:`~kamsim.dmu.arrays.Units` (the engine makes one per replication): it keeps the
roles' values, and the metrics that follow a step work on that step's stretch. The step's
constants are kept with the structure and parameters they come from (the structure is
looked up on every call, so changed units are never worked on with old constants), and a
simulation tells whether the kernels run once for its run (``kernels``). The values are those of the two functions, to the bit: both run the same
code on the same stretch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kamsim.dmu.arrays import Units
from kamsim.dmu.dynamics import (
    _PARAM_VALUES,
    StepInput,
    StepOutcome,
    StepParams,
    _check_draws,
    _Constants,
    _joined,
    _role_values,
    _step_constants,
    _step_span,
)
from kamsim.dmu.metrics import Metrics, _Blocks, _blocks_for, _metrics_span
from kamsim.dmu.span import Span, compiled, scratch, span, split
from kamsim.dmu.structure import Structure, structure
from kamsim.lanes import lane, side_by_side
from kamsim.spec.models import RoleArchetype

__all__ = ["Context"]


class Context:
    """The step and metrics of ``units`` period after period (see the module docstring).

    ``params`` and ``roles`` are read as :func:`kamsim.dmu.step` reads them (the roles' values
    once, here: change a role and make a new context); ``threshold`` is the influence of a
    "thread" for :func:`kamsim.dmu.metrics`. The structure is still looked up on every call
    (one identity check), so that units whose structure changed are never worked on with the
    old one.
    """

    __slots__ = ("units", "params", "threshold", "threads", "kernels", "_roles", "_span",
                 "_constants", "_made")

    def __init__(self, units: Units, params: StepParams,
                 roles: Sequence[RoleArchetype] | Mapping[str, RoleArchetype],
                 threshold: float, *, threads: int = 1, kernels: bool | None = None) -> None:
        self.units = units
        self.params = params
        self.threshold = threshold
        self.threads = threads
        # whether the step and metrics run compiled as far as the caller goes (a simulation
        # decides it once for its run, kamsim.jit.wanted); None: asked on every call
        self.kernels = kernels
        self._roles = _role_values(units, roles)
        self._span: Span | None = None  # the stretch of the last step
        # the step's constants, with the structure and the parameters' values they were taken
        # from (looked up again only when either changed: the structure's cache key is a
        # tuple of some twenty values to hash, ~10 µs a period)
        self._constants: tuple[Structure, tuple[Any, ...], _Constants] | None = None
        # the result blocks of the last two metrics after a step, the newest last
        # (:meth:`_spare`)
        self._made: list[_Blocks] = []

    def step(self, inp: StepInput, u_depart: np.ndarray,
             below: np.ndarray | None = None) -> StepOutcome:
        """:func:`kamsim.dmu.step` of this context's units, parameters and roles. ``below``,
        if given, lists in ascending order every person whose draw is below 1.0 (a
        simulation's clocks say who leaves: their draw is 0, everyone else's 1.0); the
        compiled step then looks at those only instead of comparing every draw."""
        st = structure(self.units)
        c, active, sp = self._stretch(inp, u_depart, st)
        return _step_span(self.units, st, c, inp, self.params, u_depart, active, sp,
                          self.threads, self.kernels, below)

    def step_metrics(self, inp: StepInput, u_depart: np.ndarray, previous: Metrics,
                     below: np.ndarray | None = None) -> tuple[StepOutcome, Metrics]:
        """``step(inp, u_depart, below)`` then ``metrics(previous)``: the same outcome, units
        and metrics. Where the step runs compiled, each block of people's metrics are worked
        out right after its step, while the block is in cache (at a million accounts the
        step and metrics read ~1.3 GB a period; this reads the people once)."""
        units = self.units
        st = structure(units)
        if not compiled(units, st, self.kernels):
            out = self.step(inp, u_depart, below)
            return out, self.metrics(previous)
        from kamsim.dmu.metrics_kernel import step_metrics_part

        c, active, sp = self._stretch(inp, u_depart, st)
        blocks = _blocks_for(units.n_accounts, sp, previous, self._spare())
        params, threshold = self.params, self.threshold
        outs = list(side_by_side(
            lambda part: step_metrics_part(units, st, c, inp, params, u_depart, active, part,
                                           scratch(units, lane()), below, threshold, blocks),
            split(units, st, sp, self.threads), self.threads))
        self._made.append(blocks)
        return _joined(outs), blocks.metrics()

    def _spare(self) -> _Blocks | None:
        """The result blocks made two metrics ago, if nothing holds them or their arrays any
        more, to be written over. A simulation keeps a period's metrics and the period
        before's, and drops the older as the next begins: without this, each period's new
        blocks (~80 MB at 1M accounts, 57 of them beyond glibc's threshold for its own
        mmap) were fresh pages the kernel zeroed, ~57 MB a period."""
        made = self._made
        if len(made) < 2:
            return None
        spare = made.pop(0)
        # (a Metrics of theirs still alive holds their rows)
        return spare if spare.unheld() else None

    def _stretch(self, inp: StepInput, u_depart: np.ndarray, st: Structure
                 ) -> tuple[_Constants, np.ndarray, Span]:
        """A step's constants (kept), its accounts active and its stretch (kept for the
        metrics that follow)."""
        _check_draws(self.units, u_depart)
        kept, values = self._constants, _PARAM_VALUES(self.params)
        if kept is None or kept[0] is not st or kept[1] != values:
            kept = self._constants = (st, values,
                                      _step_constants(st, self._roles, self.params))
        active = np.asarray(inp.active, bool)
        self._span = sp = span(self.units, st, active)
        return kept[2], active, sp

    def metrics(self, previous: Metrics | None = None) -> Metrics:
        """:func:`kamsim.dmu.metrics` of the units as they are now: every account if
        ``previous`` is None; else, after a step, only the accounts of that step's stretch
        (the others keep ``previous``'s values: nothing changed their people since), which is
        ``metrics(units, threshold, active=that step's active, previous=previous)``."""
        units = self.units
        st = structure(units)
        if previous is None:
            sp = span(units, st, None)
        elif self._span is None:
            raise ValueError("metrics with previous values follow a step")
        else:
            sp = self._span
        out = _metrics_span(units, st, self.threshold, sp, previous, self.threads,
                            self.kernels, self._spare() if previous is not None else None)
        if previous is not None:
            self._made.append(out._blocks)
        return out
