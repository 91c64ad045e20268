"""One replication as a study worker plays it, timed in one process (a script, not a test).

    python bench/replication.py [ACCOUNTS] [MONTHS] [RUNS]     # default 10000 60 7

A study's time is about its replications' time over the workers, so this is the figure to
move for the study case of bench/run.py (100 x 10k x 60 on two workers), without the noise of
two processes and their start-up. Prepares the bench's scenario once, plays one replication
to load everything (numba and its kernels included, when they run), then RUNS more, each on
its own seed, with one thread and no event log as a worker does. Prints the median (and the
least) CPU time of a replication and how much of it is ``period_step``; the rest is the
replication's set-up, the SimPy calendar and support desk, and its output. CPU time, not
wall time: on a shared machine it moves less when another process takes the core.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str]) -> None:
    import cases

    from kamsim.engine import core
    from kamsim.engine.core import EngineOptions, run_replication
    from kamsim.experiment import prepared, replication_seeds

    accounts = int(argv[0]) if argv else 10_000
    months = int(argv[1]) if len(argv) > 1 else 60
    runs = int(argv[2]) if len(argv) > 2 else 7
    prep = prepared(cases._spec(accounts, months, 1, []))
    # (this process plays runs + 1 replications: whether the kernels run depends on it)
    options = EngineOptions(record_events=False, threads=1, runs_here=runs + 1)
    seeds = replication_seeds(0, runs + 1)
    in_step = [0.0]
    kernels = [False]  # whether the replications ran the kernels (as they decided)
    step = core.Simulation.step

    def timed(sim: core.Simulation, k: int) -> None:
        kernels[0] = sim.kernels
        t0 = time.process_time()
        step(sim, k)
        in_step[0] += time.process_time() - t0

    core.Simulation.step = timed  # type: ignore[method-assign]
    run_replication(prep, seeds[0], 0, options)  # loads what a first replication loads
    total, steps = [], []
    for r in range(1, runs + 1):
        in_step[0] = 0.0
        t0 = time.process_time()
        run_replication(prep, seeds[r], r, options)
        total.append(time.process_time() - t0)
        steps.append(in_step[0])
    med = statistics.median(total)
    print(f"{accounts:,} accounts x {months} months, one thread, "
          f"{'kernels' if kernels[0] else 'numpy'}, {runs} runs: "
          f"replication {med * 1000:.1f} ms CPU (least {min(total) * 1000:.1f}), "
          f"of which period_step {statistics.median(steps) * 1000:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
