"""The compiled kernels against the numpy code, in one process (a script, not a test).

    python bench/kernels.py ACCOUNTS MONTHS [PAIRS]     # e.g. 100000 60 3

Loads numba and the kernels first (a tiny run), prepares the scenario once, then runs one
replication of the baseline (the bench's team-per-size, event log off) with
KAMSIM_KERNELS=off and on in turn, PAIRS times, and prints each time and the medians. The
two give the same figures to the bit (tests/test_kernel_*.py), so only the time differs; the
start-up a process pays for numba is printed apart (bench/run.py's cases include it).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))


def main(argv: list[str]) -> None:
    import cases

    from kamsim.experiment import prepared, simulate

    accounts, months = int(argv[0]), int(argv[1])
    pairs = int(argv[2]) if len(argv) > 2 else 3
    t0 = time.perf_counter()
    os.environ["KAMSIM_KERNELS"] = "on"
    simulate(cases._spec(200, 2, 1, []), replications=1, workers=1, record_events=False)
    print(f"numba start-up (import, kernels loaded, a 200-account run): "
          f"{time.perf_counter() - t0:.3f} s")
    spec = cases._spec(accounts, months, 1, [])
    prepared(spec)
    times: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(pairs):
        for mode in ("off", "on"):
            os.environ["KAMSIM_KERNELS"] = mode
            t = time.perf_counter()
            simulate(spec, replications=1, workers=1, record_events=False)
            times[mode].append(time.perf_counter() - t)
    for mode, label in (("off", "numpy"), ("on", "kernels")):
        runs = ", ".join(f"{x:.3f}" for x in times[mode])
        print(f"{label:8s} {accounts:,} x {months}: median {statistics.median(times[mode]):.3f} s"
              f"  [{runs}]")
    print(f"speed-up {statistics.median(times['off']) / statistics.median(times['on']):.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
