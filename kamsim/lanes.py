"""Work on two cores from one process: threads that numpy lets run side by side.

numpy lets go of the GIL inside its loops (sorts, gathers, arithmetic on big arrays), and so
do the compiled kernels (kamsim.jit), so a second thread working on other arrays runs on the
other core. Three users: the tiering indicators' ranks (kamsim.rules.functions) and the two
halves of a large portfolio's decision units (kamsim.dmu), which keep per-thread scratch
buffers keyed by :func:`lane`; and the work of a large replication that does not wait for
the rest of it (kamsim.engine: its first clocks, a period's departures, draws and money, word
of mouth's second lane, the late sums by tier; :func:`aside`). Each result is the one the
work gives alone, so figures never depend on the threads. In a replication all take their
thread count from ``EngineOptions.threads`` (1 in a worker process: a second thread there
would fight the other worker for its core).
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar, copy_context
from typing import Any, TypeVar

__all__ = ["CORES", "lane", "side_by_side", "aside", "aside_each"]

#: The cores this process may run on.
CORES = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1)

#: Which of side_by_side's threads runs this code (0: the caller's).
_LANE: ContextVar[int] = ContextVar("kamsim_lane", default=0)

_T = TypeVar("_T")
_R = TypeVar("_R")


def lane() -> int:
    """The side_by_side thread running this code (0: the caller's): the key of its scratch
    buffers, so that two threads never write into the same one."""
    return _LANE.get()


def side_by_side(fn: Callable[[_T], _R], items: Sequence[_T], threads: int = 2
                 ) -> Iterator[_R]:
    """``fn(item) for item in items``, worked off by this thread and up to ``threads`` - 1
    more (no more than the machine has cores).

    For independent work on big arrays, e.g. the rank of each tiering indicator: numpy lets
    go of the GIL while it sorts, gathers and computes, so the other thread's sort runs on
    the other core. Each thread takes the next item not yet taken; this one
    also takes the items whose result is asked for next, so it never waits while there is
    work. The second thread runs in a copy of the caller's context (so it uses and fills the
    caller's shared_sorts block, for one), with scratch buffers of its own (:func:`lane`). Each result is the one
    ``fn(item)`` gives alone and they come in the order of ``items``, so the figures never
    depend on the threads; a result is let go of as soon as the caller has taken it. The
    big arrays this thread makes come from memory the process already has, where a new
    thread's would be fresh pages: one helper thread rather than a pool of two.
    """
    count = len(items)
    threads = min(threads, CORES, count)
    if threads < 2:
        yield from map(fn, items)
        return
    results: list[tuple[bool, Any] | None] = [None] * count
    done = [threading.Event() for _ in items]
    claim = itertools.count()  # next() is atomic under the GIL: each index goes to one thread

    def run(i: int) -> None:
        try:
            results[i] = (True, fn(items[i]))
        except BaseException as error:  # raised again in the caller, at its place
            results[i] = (False, error)
        done[i].set()

    def work(lane: int) -> None:
        _LANE.set(lane)
        for i in claim:
            if i >= count:
                return
            run(i)

    # the copies are taken here, in the caller's thread: a new thread has an empty context
    helpers = [threading.Thread(target=copy_context().run, args=(work, lane),
                                name=f"kamsim-lane-{lane}", daemon=True)
               for lane in range(1, threads)]
    for helper in helpers:
        helper.start()
    try:
        for i in range(count):
            while not done[i].is_set():
                j = next(claim)
                if j < count:
                    run(j)
                else:
                    done[i].wait()
            ok, value = results[i]  # type: ignore[misc]
            results[i] = None
            if not ok:
                raise value
            yield value
    finally:
        for j in claim:  # take what is left, so that the helpers stop
            if j >= count:
                break
        for helper in helpers:
            helper.join()


def aside(threads: int, fn: Callable[..., _R], *args: Any) -> Callable[[], _R]:
    """Start ``fn(*args)`` on a helper thread and go on; the function returned waits for it and
    gives its result (or raises its exception, in the caller). With ``threads`` < 2 or one
    core, ``fn(*args)`` runs now, in this thread.

    For work that does not depend on what the caller does meanwhile and that the caller does
    not read or write until it asks for the result: numpy and the kernels let go of the GIL,
    so both run at once, on the two cores. The arguments are taken now (not names the caller
    may bind again meanwhile, as a closure's would be). ``fn`` gives what it gives alone, so
    the figures never depend on the threads. The helper is lane 1 (:func:`lane`): the caller
    asks for the result before it starts a :func:`side_by_side`, whose helper is lane 1 too,
    so the two never share scratch buffers or the cores.
    """
    return aside_each(threads, (fn, *args))[0]


def aside_each(threads: int, *calls: tuple[Any, ...]) -> list[Callable[[], Any]]:
    """:func:`aside` of several calls ``(fn, *args)``, one after the other on one helper
    thread: a function a call, each waiting for its own call only (the caller can take the
    first result while the helper works on the next). With ``threads`` < 2 or one core they
    run now, in order."""
    if min(threads, CORES) < 2:
        return [functools.partial(_given, call[0](*call[1:])) for call in calls]
    boxes: list[list[tuple[bool, Any]]] = [[] for _ in calls]
    done = [threading.Event() for _ in calls]

    def work() -> None:
        _LANE.set(1)
        for call, box, finished in zip(calls, boxes, done, strict=True):
            try:
                box.append((True, call[0](*call[1:])))
            except BaseException as error:  # raised again in the caller, when it asks
                box.append((False, error))
            finished.set()

    helper = threading.Thread(target=copy_context().run, args=(work,),
                              name="kamsim-aside", daemon=True)
    helper.start()

    def result(i: int) -> Any:
        if i == len(calls) - 1:
            helper.join()
        else:
            done[i].wait()
        ok, value = boxes[i][0]
        if not ok:
            raise value
        return value

    return [functools.partial(result, i) for i in range(len(calls))]


def _given(value: _R) -> _R:
    return value
