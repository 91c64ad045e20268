"""Run by tests/test_kernel_bounds.py in a process of its own, with numba's bounds checking on
(NUMBA_BOUNDSCHECK=1), an empty NUMBA_CACHE_DIR and KAMSIM_KERNELS=on: every shipped scenario
and the baseline variants that take the kernels' other branches, short, the event log on.
Prints, as JSON, what the test asserts on: the boundscheck setting numba read, the calls of
each kernel module's entry points, the kernels numba compiled here (every kernel of every
module, or the name of one it did not) and the kinds of events the runs logged.

numba's on-disk cache does not key its entries by the boundscheck setting (its index key is
the signature, the CPU and the function's bytecode), so a kernel compiled without checks and
cached would be loaded and run unchecked: hence the empty cache folder, which the test makes.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba.core.registry import CPUDispatcher

from kamsim.dmu.metrics import propagated_attitude
from kamsim.engine.core import EngineOptions, Simulation
from kamsim.engine.record import EVENT_KINDS
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.experiment import prepared
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]

#: every module of compiled kernels (kamsim.jit), and metrics_kernel, for its entry points
MODULES = ("kamsim.engine.step_kernels", "kamsim.engine.allocation_kernel",
           "kamsim.engine.events_kernel", "kamsim.engine.tally_kernel",
           "kamsim.engine.stages_kernel", "kamsim.engine.complaints_kernel",
           "kamsim.engine.departures_kernel",
           "kamsim.rules.sort_kernel", "kamsim.dmu.step_kernel", "kamsim.dmu.metrics_kernel")

SMALL = ["replications=1", "seed=20261124"]

#: the baseline's variants that take the kernels' other branches (as
#: tests/test_kernel_period.py runs them): weekly periods, each strategy, the fluid
#: complaint desk; 24 months, so that the yearly re-tiering happens
VARIANTS = [["horizon_months=24"], ["horizon_months=12", "period=week"],
            ["horizon_months=12", "strategy.name=equal"],
            ["horizon_months=12", "strategy.name=value_based", "strategy.by=clv"],
            ["horizon_months=12", "strategy.name=cultivate"],
            ["horizon_months=12", "strategy.name=custom", "strategy.priority=revenue * 2"],
            ["horizon_months=12", "capacity.support.event_level_max=0"]]


def _scenarios() -> list[Path]:
    import yaml

    paths = [*(ROOT / "scenarios").glob("*.yaml"),
             *(ROOT / "scenarios" / "lessons").glob("*.yaml")]
    return sorted(p for p in paths
                  if (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("kind")
                  == "scenario")


def _counting(calls: Counter[str], name: str, fn: Any) -> Any:
    def counted(*args: Any, **kw: Any) -> Any:
        calls[name] += 1
        return fn(*args, **kw)
    return counted


def main() -> None:
    calls: Counter[str] = Counter()
    dispatchers: dict[str, Any] = {}
    for mod_name in MODULES:
        mod = importlib.import_module(mod_name)
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod_name:
                dispatchers[f"{mod_name}.{name}"] = obj
        # the entry points the engine calls from Python (looked up in their module at each
        # call, so a wrapper here counts them); the kernels they call are the dispatchers'
        for name in mod.__all__:
            fn = getattr(mod, name)
            if callable(fn) and not isinstance(fn, type):
                setattr(mod, name, _counting(calls, f"{mod_name}.{name}", fn))
    kinds: set[str] = set()
    for path in _scenarios():
        for over in VARIANTS if path.stem == "baseline" else [["horizon_months=12"]]:
            spec = load_scenario(path, SMALL + over)
            gen = spec.scenario.portfolio.generate
            if gen is not None and gen.accounts > 300:
                spec = load_scenario(path, [*SMALL, *over, "portfolio.generate.accounts=300"])
            sim = Simulation(prepared(spec), Streams(replication_seeds(spec.scenario.seed, 1)[0]),
                             EngineOptions(record_events=True))
            out = sim.run()
            assert out.events is not None
            kinds |= {EVENT_KINDS[k] for k in np.unique(out.events["kind"])}
    # the attitudes after one step of propagation (kamsim.dmu.metrics, not the engine's)
    propagated_attitude(sim.units)
    # the compiled sort's other branches: keys that clash below the rows' bits, in runs
    # short enough to be put in order in place (10 values) and one too long (1,000 values,
    # runs of 256: the radix sort of whole keys)
    from kamsim.rules import functions

    with functions.compiled_sorts(True):
        for size in (10, 1000):
            functions._sorted_rows(1.0 + np.arange(size)[::-1] * 2.0**-50, None)
    print(json.dumps({
        "boundscheck": numba.config.BOUNDSCHECK,
        "cache_dir": os.environ.get("NUMBA_CACHE_DIR"),
        "calls": dict(calls),
        "compiled": sorted(name for name, d in dispatchers.items() if d.signatures),
        "kernels": sorted(dispatchers),
        "events": sorted(kinds),
    }))


if __name__ == "__main__":
    sys.exit(main())
