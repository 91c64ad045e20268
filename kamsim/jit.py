"""Compiled kernels (numba) for the loops no numpy call fuses, and when to use them.

A kernel does exactly the arithmetic of the numpy code it stands in for, value by value and
in the same order (sums added in the same order, no fused multiply-adds, no reordering:
numba without ``fastmath``), so a run gives the same figures to the bit with or without it.
``tests/test_kernel_step.py``, ``test_kernel_metrics.py`` and the others check that on
every kind of decision unit and every shipped scenario, so whether numba is
installed, or which machine of a Dask cluster runs a replication, never changes a result.

What a kernel costs: a process that uses one imports numba (~0.15 s) and loads the compiled
kernel from numba's on-disk cache (~0.1 s a kernel; compiling it the first time on a machine
takes a few seconds), ~0.3 s in all. That pays only on enough work, so by default
(``KAMSIM_KERNELS=auto``) a simulation uses the kernels when the work its process is to do
reaches :data:`MIN_PERSON_PERIODS` person-periods (people in the decision units x periods x
the replications the process runs), and a decision-unit step called on its own from
:data:`MIN_PEOPLE` people on; ``on`` uses them whatever the size (the tests do), ``off``
never. Without numba the numpy code runs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["MIN_PEOPLE", "MIN_PERSON_PERIODS", "ENV", "mode", "available", "wanted", "kernel"]

#: the environment variable that chooses: auto (default), on or off
ENV = "KAMSIM_KERNELS"

#: from this many people in the decision units on, ``auto`` uses the kernels for a
#: decision-unit step called on its own (outside a simulation, which decides by its work:
#: :data:`MIN_PERSON_PERIODS`)
MIN_PEOPLE = 50_000

#: from this much work on (people x periods x replications in one process), ``auto`` uses the
#: kernels for a simulation. Loaded from numba's cache they save ~27 ns a person-period and
#: cost ~0.3 s a process, so they break even near 10M (one replication of 20,000 accounts x
#: 60 months, 8.6 people an account, is as fast either way; one of 10,000 is 0.15 s faster
#: without them, 0.29 against 0.44 s). The bar is higher, 15M, because a process that finds
#: them not yet compiled on its machine spends ~7.5 s compiling them: the default scenario
#: (20 replications of 2,000 accounts, 10.3M person-months a worker, ~0.08 s to gain) stays
#: with numpy, and a newcomer's first run takes 1.5 s, not 9 (docs/scale.md, item 28)
MIN_PERSON_PERIODS = 15_000_000

_F = TypeVar("_F", bound=Callable[..., Any])


def mode() -> str:
    """``auto``, ``on`` or ``off``, from :data:`ENV` (unset or empty: ``auto``); any other
    value is a :class:`~kamsim.errors.RunError` (a misspelt ``of`` must not pass for auto)."""
    value = os.environ.get(ENV, "").strip().lower() or "auto"
    if value not in ("auto", "on", "off"):
        from kamsim.errors import RunError

        raise RunError(f"{ENV} is {os.environ[ENV]!r} (expected auto, on or off)")
    return value


@functools.cache
def available() -> bool:
    """Whether numba can be imported here (checked once a process)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def wanted(people: int, periods: int | None = None, runs: int = 1) -> bool:
    """Whether work on decision units of ``people`` people runs in the kernels: for a
    simulation of ``periods`` periods, one of ``runs`` replications its process is to run
    (what numba's start-up is spread over); with ``periods`` None (a step called on its
    own, its number of calls unknown), by the size alone."""
    m = mode()
    # the size first: asking whether numba is installed imports it, which a small run must
    # not pay for
    if m == "off":
        return False
    if m == "auto":
        if periods is None:
            if people < MIN_PEOPLE:
                return False
        elif people * periods * max(1, runs) < MIN_PERSON_PERIODS:
            return False
    return available()


def kernel(fn: _F) -> _F:
    """``fn`` compiled by numba: cached on disk, without the GIL (two lanes of
    :func:`kamsim.lanes.side_by_side` run side by side) and with numpy's division rules (a
    division by zero gives inf or NaN, as numpy's does, instead of raising). Only modules
    imported once :func:`wanted` said yes use it, so numba is imported only then."""
    import numba

    try:
        return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)  # type: ignore[return-value]
    except RuntimeError:
        # numba found no folder to cache in (an install in a read-only place, with no writable
        # home or NUMBA_CACHE_DIR): the same kernel, compiled in each process that uses it
        return numba.njit(nogil=True, error_model="numpy")(fn)  # type: ignore[return-value]
