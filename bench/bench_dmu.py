"""Benchmark of the decision-unit arrays (a script, not a test): python bench/bench_dmu.py

Prints the time to build + compute metrics for 10k and 100k accounts on the shipped rules,
then one ``step`` + ``metrics`` for 100k accounts, twice, interleaved run by run: with the
structure cache (what a simulation does from its second period on) and with the cache dropped
before every period (the work done before the cache existed). On a shared machine the
minimum is the steadier figure; the median is printed too. Times are CPU time of this process
(time.process_time), so other jobs disturb them less. ``--runs N`` sets the repeats. Page faults
of large temporaries are a big, allocator-dependent share; to compare code rather than
allocator luck, also run with MALLOC_MMAP_THRESHOLD_=2000000000 MALLOC_TRIM_THRESHOLD_=2000000000.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kamsim.dmu import StepInput, StepParams, build_units, metrics, step  # noqa: E402
from kamsim.spec.load import load_rule_file  # noqa: E402


def busy_units(n: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """(units, rules, roles, a busy month's StepInput) for ``n`` accounts built from the
    shipped stakeholder rules: the set-up shared by this script and ``bench/cases.py dmu``."""
    rules, _ = load_rule_file(ROOT / "rules" / "stakeholders.yaml", "stakeholders")
    segs = rng.choice(np.array(["enterprise", "midmarket", "small", "other"]), n,
                      p=[0.2, 0.5, 0.2, 0.1])
    units = build_units(rules, segs, np.arange(n), np.random.default_rng(2))
    inp = StepInput.idle(n)
    inp.am_hours[:] = rng.uniform(0, 12, n)
    inp.exec_hours[:] = rng.uniform(0, 2, n)
    inp.specialist_hours[:] = rng.uniform(0, 4, n)
    inp.quality[:] = rng.uniform(-0.2, 0.8, n)
    inp.complaints_unresolved[:] = rng.random(n) < 0.03
    return units, rules, list(rules.roles.values()), inp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    runs = ap.parse_args().runs
    for n in (10_000, 100_000):
        rng = np.random.default_rng(1)
        t0 = time.process_time()
        units, rules, roles, inp = busy_units(n, rng)
        t1 = time.process_time()
        metrics(units, rules.influence_threshold)
        t2 = time.process_time()
        print(f"{n:>7} accounts, {units.n_people:>7} people: build {t1 - t0:.3f} s, "
              f"metrics (first call, builds the cache) {1000 * (t2 - t1):.1f} ms")
    params = StepParams()
    times: dict[str, list[float]] = {"cached": [], "uncached": []}
    for _ in range(runs):
        for mode in times:  # interleaved, so both modes see the same machine load
            u = rng.random(units.n_people)
            if mode == "uncached":
                units.invalidate()
            t0 = time.process_time()
            step(units, inp, params, roles, u)
            if mode == "uncached":
                units.invalidate()
            metrics(units, rules.influence_threshold)
            times[mode].append(time.process_time() - t0)
    for mode, ts in times.items():
        print(f"step + metrics, 100k accounts, {mode:>8}: min {1000 * min(ts):.1f} ms, "
              f"median of {runs} {1000 * float(np.median(ts)):.1f} ms")


if __name__ == "__main__":
    main()
