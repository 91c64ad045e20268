"""Experiments: replications of a scenario (in worker processes or on a Dask cluster),
and scenarios compared on the same random futures (common random numbers).

Replication ``r`` always uses the r-th child of ``SeedSequence(seed)``, and results are put
back in replication order, so the numbers do not depend on how many workers ran them or
where.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kamsim import jit, lanes
from kamsim.engine.core import EngineOptions, run_replication
from kamsim.engine.record import ReplicationOutput
from kamsim.engine.rng import replication_seeds
from kamsim.results import Result
from kamsim.spec.load import ScenarioSpec, load_scenario

__all__ = ["simulate", "simulate_many", "run_chunk", "prepared", "default_workers", "starting_account"]

_CACHE: dict[str, Any] = {}


def default_workers() -> int:
    """Worker processes when none are asked for: one per core this process may run on."""
    return lanes.CORES


def prepared(spec: ScenarioSpec) -> Any:
    """The compiled model and shared starting point of ``spec``, cached per process."""
    from kamsim.compile import compile_model
    from kamsim.engine.prepare import prepare

    key = spec.digest()
    if key not in _CACHE:
        _CACHE.clear()  # keep one scenario: a study's workers run one at a time
        _CACHE[key] = prepare(compile_model(spec))
    return _CACHE[key]


def starting_account(prep: Any, account: str, scenario: str) -> int:
    """The slot of ``account`` in the starting portfolio of ``prep`` (what ``kamsim trace``,
    a run's ``focus`` and ``kamsim dmu show`` follow). Raises RunError naming the starting ids
    otherwise, and saying so when ``account`` is the slot of an account won during the run:
    whether and when that one is won (and so what it is) depends on the replication, so it
    has no story or map of its own to show."""
    from kamsim.errors import RunError

    ids = prep.accounts.account_id.astype(str)
    hits = np.flatnonzero(ids[: prep.n_start] == str(account))
    if hits.size:
        return int(hits[0])
    first, last = ids[0], ids[prep.n_start - 1]
    if (ids[prep.n_start:] == str(account)).any():
        raise RunError(f"{account!r} in scenario {scenario!r} names an account won during "
                       f"the run (new accounts take the ids from {ids[prep.n_start]} on as they "
                       f"arrive; whether "
                       f"and when this one arrives depends on the replication), not one of the "
                       f"starting portfolio: only the starting accounts ({first} to {last}, "
                       f"{prep.n_start} accounts) can be followed")
    raise RunError(f"no account {account!r} in scenario {scenario!r} (ids run from {first} "
                   f"to {last}, {prep.n_start} accounts)")


def run_chunk(spec: ScenarioSpec, seed: int, reps: Sequence[int], total: int,
              options: EngineOptions) -> list[ReplicationOutput]:
    """Run the replications ``reps`` of ``spec`` (out of ``total``); a pure function of its
    arguments, so it can run in any process or on any Dask worker."""
    prep = prepared(spec)
    seqs = replication_seeds(seed, total)
    return [run_replication(prep, seqs[r], r, options) for r in reps]


def _worker(conn: Any, specs: Sequence[ScenarioSpec]) -> None:
    """A local worker process: runs the replications ``conn`` sends (scenario number, seed
    sequence, replication number, options), one at a time, and sends back ``("ok", task,
    output)`` or ``("error", task, exception)``; ``None`` or the parent's end closing ends
    it."""
    # Ctrl-C reaches the whole process group. The parent alone answers it (it ends these
    # workers); a worker that took it too would die with a traceback mid-task. The worker
    # starts with SIGINT blocked (see _run_local_pool), so none lands before this line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    import multiprocessing as mp
    from multiprocessing.connection import wait

    # The parent's end of this pipe may live on in a sibling forked after it, so the end of
    # the parent itself is watched too: a worker never outlives it, whatever ended it.
    parent = mp.parent_process()
    watched = [conn] + ([parent.sentinel] if parent is not None else [])
    while True:
        if conn not in wait(watched):
            return
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        i, seq, r, options = task
        try:
            # (tasks come scenario by scenario, so the one-scenario cache of ``prepared``
            # builds each scenario's starting point at most once per worker)
            reply: tuple[str, tuple[int, int], Any] = (
                "ok", (i, r), run_replication(prepared(specs[i]), seq, r, options))
        except Exception as exc:  # noqa: BLE001 - raised again in the parent
            reply = ("error", (i, r), _sendable(exc))
        try:
            conn.send(reply)
        except OSError:  # the parent is gone (or stopped listening): nobody to tell
            return


def _sendable(exc: Exception) -> Exception:
    """What a worker sends back for ``exc``, built so that it unpickles in the parent:
    InputError, RunError and Python's built-in exceptions as they are (rebuilt from their
    args; an InputError from its problems); any other kamsim error as a RunError with its
    message (one line for the user, exit 2; a subclass may not be rebuildable from its
    pickle); anything else as a RuntimeError with the worker's traceback, for whoever has to
    fix it. No trial unpickling in the worker."""
    from kamsim.errors import InputError, KamsimError, RunError

    if type(exc) in (InputError, RunError) or type(exc).__module__ == "builtins":
        return exc
    if isinstance(exc, KamsimError):
        return RunError(str(exc))
    import traceback

    return RuntimeError("".join(traceback.format_exception(exc)))


def _run_local_pool(specs: Sequence[ScenarioSpec], seed: int, reps: int,
                    options: Sequence[EngineOptions], n_workers: int,
                    progress: Callable[[int, int], None] | None
                    ) -> list[list[ReplicationOutput]]:
    """Replications ``0 .. reps-1`` of every scenario in ``specs`` on ``n_workers`` local
    processes, one replication per task; the outputs per scenario, in replication order.
    Replication ``r`` of every scenario draws from the same seed sequence (common random
    numbers), and ``options[i]`` are scenario ``i``'s.

    Single-replication tasks keep both workers busy to the end (with chunks of several
    replications one worker could sit idle while the other finished its last chunk: up to
    a chunk's time lost at the end of every study) and hold one output per worker at a
    time. All the scenarios of a study share one pool, for the same reason: a sweep of few
    replications per point run point by point would leave a core idle at the end of each
    point. The scenarios go to each worker once, with its start (with fork, the prepared
    starting point built in this process before the workers started is shared
    copy-on-write; spawned workers build their own).

    Each worker has a pipe of its own, and this process does all the waiting itself (no
    helper threads, unlike concurrent.futures): a worker that dies mid-message shows as
    the end of its pipe, and a Ctrl-C ends every worker at once, whatever they are doing,
    without anything left to wait for."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx: Any = mp.get_context("spawn" if os.environ.get("KAMSIM_SPAWN") else "fork")
    outputs: list[list[ReplicationOutput | None]] = [[None] * reps for _ in specs]
    # (each scenario's replication r is sent the same seed sequence: pickled as it is, here
    # unused, so every worker spawns the same streams from it)
    seqs = replication_seeds(seed, reps)
    # scenario by scenario: each worker meets each scenario once (see _worker)
    todo = ((i, r, seq) for i in range(len(specs)) for r, seq in enumerate(seqs))
    total = reps * len(specs)
    workers: dict[Any, Any] = {}  # this process's end of each worker's pipe -> the worker
    try:
        with _ctrl_c_deferred():
            for _ in range(n_workers):
                mine, theirs = ctx.Pipe()
                proc = ctx.Process(target=_worker, args=(theirs, list(specs)), daemon=True,
                                   name="kamsim-worker")
                proc.start()
                theirs.close()  # (so that a dead worker's pipe reads as ended)
                workers[mine] = proc
        running: dict[Any, tuple[int, int]] = {}

        def give(conn: Any) -> None:
            task = next(todo, None)
            if task is None:
                conn.send(None)
                return
            i, r, seq = task
            conn.send((i, seq, r, options[i]))
            running[conn] = (i, r)

        for conn in workers:
            give(conn)
        done = 0
        while running:
            ready: list[Any] = wait(list(running))
            for conn in ready:
                i, r = running.pop(conn)
                try:
                    kind, _, value = conn.recv()  # (value: an output, or an exception)
                except EOFError:
                    from kamsim.errors import RunError

                    proc = workers[conn]
                    proc.join(5)
                    which = "" if len(specs) == 1 else f" of scenario {i + 1} of {len(specs)}"
                    # (a process killed from outside, e.g. by the system when memory ran out:
                    # a line for the user, exit 2, not a traceback)
                    raise RunError(f"a worker process ended unexpectedly (exit code "
                                   f"{proc.exitcode}) while running replication {r}{which}"
                                   ) from None
                if kind == "error":
                    raise value
                outputs[i][r] = value
                done += 1
                if progress:
                    progress(done, total)
                give(conn)
        for proc in workers.values():
            proc.join()
    except BaseException:
        # Ctrl-C (or a failed replication): stop now, not after the queued replications.
        _stop_workers(list(workers.values()))
        raise
    finally:
        for conn in workers:
            conn.close()
    return [[o for o in outs if o is not None] for outs in outputs]


@contextlib.contextmanager
def _ctrl_c_deferred() -> Iterator[None]:
    """Hold a Ctrl-C until the block is done (then raise KeyboardInterrupt), in this process
    and in the processes started in it: started with SIGINT blocked, a worker takes none
    before it ignores them (fork and spawn both keep the signal mask), and this process
    never stops half-way through starting one (a worker it would not know to end). The
    mask alone is not enough here: another thread (a numeric library's) may take the
    signal, and Python then raises it in this thread all the same."""
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    except ValueError:  # not the main thread: no Ctrl-C comes here
        yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def _stop_workers(procs: Sequence[Any]) -> None:
    """End the worker processes ``procs`` (terminate, then kill), waiting a bounded time
    for each."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def _chunks(n: int, parts: int) -> list[list[int]]:
    parts = max(1, min(parts, n))
    return [c.tolist() for c in np.array_split(np.arange(n), parts) if len(c)]


def simulate(scenario: ScenarioSpec | str | Path, *, replications: int | None = None,
             seed: int | None = None, workers: int | None = None, dask: str | None = None,
             record_events: bool | None = None, focus: str | None = None,
             progress: Callable[[float, int], None] | None = None) -> Result:
    """Run a scenario's replications and return a :class:`~kamsim.results.Result`.

    ``workers`` local processes (default: all cores; 1 runs in this process), or a Dask
    cluster at address ``dask`` (``tcp://host:port``; also ``KAMSIM_DASK``). ``focus`` names
    an account to trace period by period in every replication. ``progress(done, total)``
    counts finished replications; in this process (one worker, or one replication) it also
    counts the periods of the running one, as fractions (``done`` 2.5: two replications and
    half of the third), so that a long single replication shows it is moving."""
    spec = scenario if isinstance(scenario, ScenarioSpec) else load_scenario(scenario)
    if seed is not None:
        # `seed` is the scenario's seed (portfolio and decision units too), not only the
        # replications' (docs/model.md, Random numbers)
        spec = spec.with_seed(seed)
    sc = spec.scenario
    reps = replications if replications is not None else sc.replications
    seed = sc.seed
    if reps < 1:
        raise ValueError(f"replications ({reps}) must be at least 1")
    prep = prepared(spec)
    focus_slot = None
    if focus is not None:
        focus_slot = starting_account(prep, focus, sc.name)
    options = EngineOptions(record_events=sc.event_log if record_events is None
                            else record_events, focus=focus_slot)
    started = time.perf_counter()
    [outputs] = _run_study([spec], seed, reps, [options], workers, dask, progress)
    return _result(spec, _about(prep), seed, reps, outputs, time.perf_counter() - started)


def simulate_many(specs: Sequence[ScenarioSpec], *, replications: int | None = None,
                  seed: int | None = None, workers: int | None = None,
                  dask: str | None = None, record_events: bool | None = None,
                  progress: Callable[[float, int], None] | None = None) -> list[Result]:
    """Run several scenarios as one study (a sweep's points, compare's fresh runs): the same
    ``seed`` and ``replications`` for all (default: the first scenario's; the seed is each
    scenario's own, as ``simulate(seed=...)`` makes it), so replication ``r`` of each sees the
    same random futures, and each Result is bit-identical to
    ``simulate(spec, replications=..., seed=...)``. Every replication of every scenario
    goes to one pool of ``workers`` processes (or one Dask submission), so that all the
    cores stay busy to the end however few replications each scenario has.
    ``progress(done, total)`` counts replications over all the scenarios. Each Result's
    ``elapsed`` is its share of the study's wall time (they ran together)."""
    if not specs:
        raise ValueError("simulate_many needs at least one scenario")
    first = specs[0].scenario
    reps = replications if replications is not None else first.replications
    seed = first.seed if seed is None else seed
    if reps < 1:
        raise ValueError(f"replications ({reps}) must be at least 1")
    # the seed is each scenario's own, as in simulate(): it builds the portfolios too
    specs = [spec.with_seed(seed) for spec in specs]
    # what each Result needs of its scenario's starting point (cheap to build next to the
    # runs; only these few fields are kept, not every point's starting point). The last
    # one prepared stays cached for the workers forked below.
    preps = [_about(prepared(spec)) for spec in specs]
    options = [EngineOptions(record_events=spec.scenario.event_log if record_events is None
                             else record_events) for spec in specs]
    started = time.perf_counter()
    outputs = _run_study(specs, seed, reps, options, workers, dask, progress)
    share = (time.perf_counter() - started) / len(specs)
    return [_result(spec, prep, seed, reps, outs, share)
            for spec, prep, outs in zip(specs, preps, outputs, strict=True)]


def _run_study(specs: Sequence[ScenarioSpec], seed: int, reps: int,
               options: Sequence[EngineOptions], workers: int | None, dask: str | None,
               progress: Callable[[float, int], None] | None
               ) -> list[list[ReplicationOutput]]:
    """Replications ``0 .. reps-1`` of every scenario in ``specs``, on a Dask cluster, in
    worker processes or in this process; the outputs per scenario, in replication order."""
    dask = dask or os.environ.get("KAMSIM_DASK") or None
    jit.mode()  # a bad KAMSIM_KERNELS stops the study before any work, not in a worker
    if dask:
        from kamsim.cluster import run_on_dask

        return run_on_dask(dask, specs, seed, reps, options, progress)
    total = reps * len(specs)
    n_workers = default_workers() if workers is None else max(1, workers)
    n_workers = min(n_workers, total)
    # each process's share of the study, for whether the kernels repay numba's start-up
    options = [o.sharing(total, n_workers) for o in options]
    if n_workers > 1:
        return _run_local_pool(specs, seed, reps, options, n_workers, progress)
    # in this process, one replication at a time: a second core, if there is one, works on
    # half of a large portfolio's decision units (same results)
    outputs: list[list[ReplicationOutput]] = []
    for i, spec in enumerate(specs):
        inline = replace(options[i], threads=min(2, default_workers()))
        prep = prepared(spec)
        # fresh for each scenario: a replication spawns its streams from its seed sequence,
        # which counts the children it gave (the next scenario would get others)
        seqs = replication_seeds(seed, reps)
        outs = []
        for r in range(reps):
            done = i * reps + r
            tick = None
            if progress:
                def tick(k: int, periods: int, done: int = done) -> None:
                    if k < periods:  # (the whole replication is told below)
                        progress(done + k / periods, total)
            outs.append(run_replication(prep, seqs[r], r, inline, on_period=tick))
            if progress:
                progress(done + 1, total)
        outputs.append(outs)
    return outputs


def _about(prep: Any) -> dict[str, Any]:
    """What a Result takes from a prepared starting point."""
    return {"tiers": prep.model.tiers, "stages": prep.model.stages.names,
            "currency": prep.model.service.currency, "account_ids": prep.accounts.account_id,
            "n_start": prep.n_start, "roles": prep.units.role_names,
            "portfolio": prep.fingerprint}


def _result(spec: ScenarioSpec, about: dict[str, Any], seed: int, reps: int,
            outputs: list[ReplicationOutput], elapsed: float) -> Result:
    sc = spec.scenario
    return Result(scenario=sc.name, seed=seed, replications=reps, outputs=outputs,
                  confidence=sc.confidence, resolved=spec.resolved(), elapsed=elapsed,
                  **about)
