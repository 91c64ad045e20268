"""What the kernel tests share: counting a kernel module's entry points (so that no test
passes on two numpy runs) and one shipped scenario run short with the kernels off, then on."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kamsim import jit
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario


def count_calls(monkeypatch: pytest.MonkeyPatch,
                entries: Iterable[tuple[str, str]]) -> dict[str, int]:
    """How many times each entry point ``(module, name)`` of ``kamsim.engine`` ran, by
    name, from now on (wrapped in its module, where the engine looks it up at each call)."""
    count: dict[str, int] = {}
    for module, name in entries:
        kernel = importlib.import_module(f"kamsim.engine.{module}")
        fn = getattr(kernel, name)
        count[name] = 0

        def counted(*args: Any, _fn: Any = fn, _name: str = name) -> Any:
            count[_name] += 1
            return _fn(*args)

        monkeypatch.setattr(kernel, name, counted)
    return count


def off_and_on(monkeypatch: pytest.MonkeyPatch, path: Path, seed: int) -> dict[str, Any]:
    """The figures and outputs of scenario ``path`` (one replication of 13 months, at most
    300 generated accounts, event log on) with ``KAMSIM_KERNELS`` off and on, by value."""
    over = ["replications=1", "horizon_months=13", f"seed={seed}"]
    gen = load_scenario(path).scenario.portfolio.generate
    if gen is not None and gen.accounts > 300:
        over.append("portfolio.generate.accounts=300")
    out = {}
    for value in ("off", "on"):
        monkeypatch.setenv(jit.ENV, value)
        res = simulate(load_scenario(path, over), workers=1, record_events=True)
        out[value] = (res.per_replication(), res.outputs)
    return out


#: a short run of a shipped scenario, for the whole-run comparisons
SMALL = ["horizon_months=12", "replications=1", "seed=20261124"]


def run_noting(path: Path, over: list[str], options: Any, state: tuple[str, ...],
               table: str) -> tuple[list[dict[str, Any]], Any]:
    """Scenario ``path`` run short (:data:`SMALL` and ``over``, at most 300 generated
    accounts) as one Simulation with ``options``: after every period, copies of the
    simulation's arrays named in ``state`` and of its dict of arrays ``table`` (``acc``,
    ``ts``); and the run's output."""
    from kamsim.engine.core import Simulation
    from kamsim.engine.rng import Streams, replication_seeds
    from kamsim.experiment import prepared

    spec = load_scenario(path, SMALL + over)
    gen = spec.scenario.portfolio.generate
    if gen is not None and gen.accounts > 300:
        spec = load_scenario(path, [*SMALL, *over, "portfolio.generate.accounts=300"])
    sim = Simulation(prepared(spec), Streams(replication_seeds(spec.scenario.seed, 1)[0]),
                     options)
    states: list[dict[str, Any]] = []
    step = sim.step

    def noting(k: int) -> None:
        step(k)
        states.append({**{name: np.copy(getattr(sim, name)) for name in state},
                       **{f"{table}.{key}": v.copy() for key, v in getattr(sim, table).items()}})

    sim.step = noting  # type: ignore[method-assign]
    return states, sim.run()


def same_bits(a: Any, b: Any, nan_bits: bool = True) -> bool:
    """Bit for bit: same dtype, shape and bytes (NaN payloads and signed zeros count); with
    ``nan_bits`` false a NaN only has to meet a NaN (where a sum of two NaNs may come out as
    either, whichever order the compiler chose)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if not nan_bits and a.dtype.kind == "f":
        nan = np.isnan(a)
        if not np.array_equal(nan, np.isnan(b)):
            return False
        a, b = np.where(nan, 0.0, a), np.where(nan, 0.0, b)
    return a.tobytes() == b.tobytes()
