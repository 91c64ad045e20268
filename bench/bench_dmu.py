"""Benchmark of the decision-unit arrays (a script, not a test): python bench/bench_dmu.py

Prints the time to build + compute metrics for 10k and 100k accounts on the shipped rules,
and the median of 5 runs of one ``step`` + ``metrics`` for 100k accounts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kamsim.dmu import StepInput, StepParams, build_units, metrics, step  # noqa: E402
from kamsim.spec.load import load_rule_file  # noqa: E402


def main() -> None:
    rules, _ = load_rule_file(ROOT / "rules" / "stakeholders.yaml", "stakeholders")
    roles = list(rules.roles.values())
    for n in (10_000, 100_000):
        rng = np.random.default_rng(1)
        segs = rng.choice(np.array(["enterprise", "midmarket", "small", "other"]), n,
                          p=[0.2, 0.5, 0.2, 0.1])
        ids = np.arange(n)
        t0 = time.perf_counter()
        units = build_units(rules, segs, ids, np.random.default_rng(2))
        t1 = time.perf_counter()
        metrics(units, rules.influence_threshold)
        t2 = time.perf_counter()
        print(f"{n:>7} accounts, {units.n_people:>7} people: build {t1 - t0:.3f} s, "
              f"metrics {1000 * (t2 - t1):.1f} ms")
    inp = StepInput.idle(n)
    inp.am_hours[:] = rng.uniform(0, 12, n)
    inp.exec_hours[:] = rng.uniform(0, 2, n)
    inp.specialist_hours[:] = rng.uniform(0, 4, n)
    inp.quality[:] = rng.uniform(-0.2, 0.8, n)
    inp.complaints_unresolved[:] = rng.random(n) < 0.03
    times = []
    for _ in range(5):
        u = rng.random(units.n_people)
        t0 = time.perf_counter()
        step(units, inp, StepParams(), roles, u)
        metrics(units, rules.influence_threshold)
        times.append(time.perf_counter() - t0)
    print(f"step + metrics, 100k accounts: median of 5 = {1000 * float(np.median(times)):.1f} ms")


if __name__ == "__main__":
    main()
