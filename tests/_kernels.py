"""What the kernel tests share: counting a kernel module's entry points (so that no test
passes on two numpy runs) and one shipped scenario run short with the kernels off, then on."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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
