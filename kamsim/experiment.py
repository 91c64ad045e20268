"""Experiments: replications of a scenario (in worker processes or on a Dask cluster),
and scenarios compared on the same random futures (common random numbers).

Replication ``r`` always uses the r-th child of ``SeedSequence(seed)``, and results are put
back in replication order, so the numbers do not depend on how many workers ran them or
where.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from kamsim import lanes
from kamsim.engine.core import EngineOptions, run_replication
from kamsim.engine.record import ReplicationOutput
from kamsim.engine.rng import replication_seeds
from kamsim.results import Result
from kamsim.spec.load import ScenarioSpec, load_scenario

__all__ = ["simulate", "run_chunk", "prepared", "default_workers", "starting_account"]

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


#: the scenario of this worker process (set once by the pool's initializer)
_WORKER_SPEC: ScenarioSpec | None = None


def _init_worker(spec: ScenarioSpec) -> None:
    global _WORKER_SPEC
    _WORKER_SPEC = spec


def _run_one(seq: np.random.SeedSequence, r: int, options: EngineOptions) -> ReplicationOutput:
    """Replication ``r`` of the worker's scenario, from its seed sequence (one task of the
    local pool)."""
    assert _WORKER_SPEC is not None, "worker started without its scenario"
    return run_replication(prepared(_WORKER_SPEC), seq, r, options)


def _run_local_pool(spec: ScenarioSpec, seed: int, reps: int, options: EngineOptions,
                    n_workers: int, progress: Callable[[int, int], None] | None
                    ) -> list[ReplicationOutput]:
    """Replications on ``n_workers`` local processes, one replication per task.

    Single-replication tasks keep both workers busy to the end (with chunks of several
    replications one worker could sit idle while the other finished its last chunk: up to
    a chunk's time lost at the end of every study) and hold one output per worker at a
    time. The scenario goes to each worker once, with its start (with fork, the prepared
    starting point built in this process before the pool started is shared copy-on-write;
    spawned workers build their own)."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = mp.get_context("spawn" if os.environ.get("KAMSIM_SPAWN") else "fork")
    outputs: list[ReplicationOutput | None] = [None] * reps
    with ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(spec,)) as pool:
        futs = {pool.submit(_run_one, seq, r, options): r
                for r, seq in enumerate(replication_seeds(seed, reps))}
        for done, fut in enumerate(as_completed(futs), start=1):
            outputs[futs[fut]] = fut.result()
            if progress:
                progress(done, reps)
    return [o for o in outputs if o is not None]


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
    sc = spec.scenario
    reps = replications if replications is not None else sc.replications
    seed = sc.seed if seed is None else seed
    if reps < 1:
        raise ValueError(f"replications ({reps}) must be at least 1")
    prep = prepared(spec)
    focus_slot = None
    if focus is not None:
        focus_slot = starting_account(prep, focus, sc.name)
    options = EngineOptions(record_events=sc.event_log if record_events is None
                            else record_events, focus=focus_slot)
    dask = dask or os.environ.get("KAMSIM_DASK") or None
    started = time.perf_counter()
    outputs: list[ReplicationOutput] = []
    if dask:
        from kamsim.cluster import run_on_dask

        outputs = run_on_dask(dask, spec, seed, reps, options, progress)
    else:
        n_workers = default_workers() if workers is None else max(1, workers)
        n_workers = min(n_workers, reps)
        if n_workers == 1:
            # in this process, one replication at a time: a second core, if there is one,
            # works on half of a large portfolio's decision units (same results)
            inline = replace(options, threads=min(2, default_workers()))
            seqs = replication_seeds(seed, reps)
            for r in range(reps):
                tick = None
                if progress:
                    def tick(k: int, periods: int, r: int = r) -> None:
                        if k < periods:  # (the whole replication is told below)
                            progress(r + k / periods, reps)
                outputs.append(run_replication(prep, seqs[r], r, inline, on_period=tick))
                if progress:
                    progress(r + 1, reps)
        else:
            outputs = _run_local_pool(spec, seed, reps, options, n_workers, progress)
    return Result(scenario=sc.name, seed=seed, replications=reps, tiers=prep.model.tiers,
                  stages=prep.model.stages.names, currency=prep.model.service.currency,
                  account_ids=prep.accounts.account_id, n_start=prep.n_start, outputs=outputs,
                  confidence=sc.confidence, resolved=spec.resolved(),
                  elapsed=time.perf_counter() - started)
