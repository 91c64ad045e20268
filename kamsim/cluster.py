"""Running a study's replications on a Dask cluster (``dask scheduler`` / ``dask worker``).

Each chunk of replications is one task: ``kamsim.experiment.run_chunk`` is a pure function
of (scenario, seed, replication numbers), and replication ``r`` always draws from the r-th
child of ``SeedSequence(seed)``, so the results are bit-identical to a local run whatever
the number of workers, and whichever worker ran (or re-ran) a chunk.

Workers must be able to import the same version of kamsim (same environment); see
docs/scale.md. ``distributed`` is imported only when a cluster is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kamsim.errors import RunError

if TYPE_CHECKING:
    from kamsim.engine.core import EngineOptions
    from kamsim.engine.record import ReplicationOutput
    from kamsim.spec.load import ScenarioSpec

__all__ = ["run_on_dask", "platform", "CONNECT_TIMEOUT", "RETRIES"]

#: seconds to wait for the scheduler before giving up
CONNECT_TIMEOUT = 10.0
#: times a chunk is re-run after it raised on a worker (a lost worker is rescheduled anyway)
RETRIES = 3


def chunk_plan(reps: int, n_workers: int, scenarios: int = 1) -> list[list[int]]:
    """Replication numbers per task of each of ``scenarios`` scenarios: about four tasks
    per worker over the whole study (so a slow or lost worker costs little), at least one
    per scenario, never more tasks than replications, in replication order."""
    from kamsim.experiment import _chunks

    parts = -(-max(1, n_workers) * 4 // max(1, scenarios))  # (rounded up)
    # plain ints: the replication numbers end up in ReplicationOutput.replication
    return [[int(r) for r in chunk] for chunk in _chunks(reps, parts)]


def _connect(address: str) -> Any:
    """A ``distributed.Client`` on ``address``, or a RunError that names it."""
    try:
        from distributed import Client
        from distributed.comm.addressing import get_address_host_port
    except ImportError as exc:  # an optional dependency: say how to get it
        raise RunError(f"running on a Dask cluster ({address}) needs the 'distributed' "
                       "package: pip install 'dask[distributed]'") from exc
    # An address that cannot name a scheduler is refused before a Client exists: a Client
    # whose constructor fails on the address is left half-built, and its __del__ then waits
    # 20 s for an event loop that is gone and prints a TimeoutError traceback after our error.
    try:
        get_address_host_port(address)
    except ValueError as exc:
        raise RunError(f"{address!r} is not a Dask scheduler address ({exc}); point --dask / "
                       "KAMSIM_DASK at the tcp://HOST:PORT address that `dask scheduler` "
                       "prints") from None
    try:
        return Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise RunError(f"cannot reach the Dask scheduler at {address} within "
                       f"{CONNECT_TIMEOUT:.0f} s ({type(exc).__name__}: {exc}); start it with "
                       "`dask scheduler` and point --dask / KAMSIM_DASK at its tcp:// "
                       "address") from exc


def platform() -> tuple[str, ...]:
    """What fixes the last bits of this process's figures: the numpy version and the SIMD
    kernel sets numpy dispatches to on this CPU (``exp``, ``log`` and sorts are picked by
    instruction set, and round differently)."""
    import importlib

    import numpy as np

    um = importlib.import_module("numpy._core._multiarray_umath")
    features = getattr(um, "__cpu_features__", {})
    kernels = [f for f in getattr(um, "__cpu_dispatch__", ()) if features.get(f)]
    return (f"numpy {np.__version__}", *kernels)


def _check_platforms(client: Any, address: str) -> None:
    """Warn when the workers cannot give reproducible figures: workers that differ among
    themselves (a chunk's figures would depend on which worker ran it), or that all differ
    from this machine (identical from run to run, but not bit for bit to a local run)."""
    import warnings

    from kamsim.errors import KamsimWarning

    theirs = client.run(platform)  # worker address -> platform
    kinds = sorted(set(theirs.values()))
    here = platform()
    if len(kinds) > 1:
        counts = {k: sum(v == k for v in theirs.values()) for k in kinds}
        listed = "; ".join(f"{' '.join(k)} ({c} worker{'s' if c > 1 else ''})"
                           for k, c in counts.items())
        warnings.warn(f"the Dask workers at {address} differ in numpy build or CPU kernels "
                      f"({listed}): a replication's figures depend on the worker that runs it, "
                      "so this study is not reproducible bit for bit", KamsimWarning,
                      stacklevel=3)
    elif kinds and kinds[0] != here:
        warnings.warn(f"the Dask workers at {address} use {' '.join(kinds[0])}, this machine "
                      f"{' '.join(here)}: the figures repeat from run to run on this cluster "
                      "but differ in the last bits from a local run", KamsimWarning,
                      stacklevel=3)


def run_on_dask(address: str, specs: Sequence[ScenarioSpec], seed: int, reps: int,
                options: Sequence[EngineOptions],
                progress: Callable[[int, int], None] | None = None
                ) -> list[list[ReplicationOutput]]:
    """Run replications ``0 .. reps-1`` of every scenario in ``specs`` (with its
    ``options``) on the cluster at ``address``, all in one submission, and return their
    outputs per scenario in replication order, identical to a local run with the same seed.

    Chunks are submitted with ``pure=False`` (never served from a cache of another study)
    and ``retries=RETRIES``; a worker that dies mid-study has its chunks rescheduled by the
    scheduler. ``progress(done, total)`` is called as chunks finish, in any order, over
    the replications of all the scenarios. Raises RunError if the scheduler cannot be
    reached or the cluster has no workers left to run a chunk."""
    from kamsim.experiment import run_chunk

    client = _connect(address)
    try:
        _check_platforms(client, address)
        n_workers = len(client.scheduler_info().get("workers", {})) or 1
        chunks = chunk_plan(reps, n_workers, len(specs))
        # each worker's share of the study, for whether the kernels repay numba's start-up
        options = [o.sharing(reps * len(specs), n_workers) for o in options]
        # each scenario is sent once and shared by its tasks instead of pickled per chunk
        spec_fs = client.scatter(list(specs), broadcast=False, hash=False)
        token = _token()
        tasks = [(i, chunk) for i in range(len(specs)) for chunk in chunks]
        futures = [client.submit(run_chunk, spec_fs[i], seed, chunk, reps, options[i],
                                 pure=False, retries=RETRIES,
                                 key=f"kamsim-chunk-{i}-{j}-{token}")
                   for j, (i, chunk) in enumerate(tasks)]
        index = {f.key: j for j, f in enumerate(futures)}
        parts: dict[int, list[ReplicationOutput]] = {}
        done, total = 0, reps * len(specs)
        from concurrent.futures import CancelledError

        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        try:
            for fut in as_completed(futures, loop=client.loop):
                j = index[fut.key]
                parts[j] = fut.result()
                done += len(parts[j])
                if progress:
                    progress(done, total)
        # a chunk that raised inside kamsim propagates as it would locally; these are the
        # cluster's own failures (workers dying repeatedly, the scheduler going away)
        except (KilledWorker, CancelledError, OSError, TimeoutError) as exc:
            raise RunError(f"the study on the Dask cluster at {address} failed: "
                           f"{type(exc).__name__}: {exc}") from exc
        outputs: list[list[ReplicationOutput]] = [[] for _ in specs]
        for j, (i, _) in enumerate(tasks):
            outputs[i] += parts[j]
        return outputs
    finally:
        client.close()


def _token() -> str:
    """A unique suffix: two studies on one cluster never share task keys."""
    import uuid

    return uuid.uuid4().hex[:12]
