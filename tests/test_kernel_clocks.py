"""What a simulation decides once for its run (whether the kernels run, the decision units'
step constants) is what asking every period gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kamsim import jit
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"

needs_numba = pytest.mark.skipif(not jit.available(), reason="numba is not installed")

def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit (a NaN's payload, the sign of a zero), in the same dtype and shape."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_a_simulation_asks_whether_the_kernels_run_once(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """Once for its run, not every period (nor twice more a period for its decision units):
    reading the environment costs ~10 µs a call in a period's cold cache."""
    asked = []
    real = jit.wanted
    monkeypatch.setattr(jit, "wanted", lambda people: asked.append(people) or real(people))
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=60", "horizon_months=12",
                                    "replications=1"])
    simulate(spec, workers=1)
    assert len(asked) == 1


def test_a_context_follows_its_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Context keeps its step's constants, but takes new ones when its parameters' values
    change (in place too): the same step as kamsim.dmu.step's, which works them out on
    every call."""
    from kamsim.dmu import StepInput, StepParams, metrics, step
    from kamsim.dmu.context import Context
    from kamsim.engine.core import replication_units
    from kamsim.experiment import prepared

    monkeypatch.setenv(jit.ENV, "off")
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=40", "replications=1"])
    roles = spec.stakeholders.roles
    units = replication_units(prepared(spec).units)
    na, n = units.n_accounts, units.n_people
    rng = np.random.default_rng(3)
    params = StepParams()
    ctx, twin = Context(units.copy(), params, roles, 0.3), units.copy()
    for period in range(4):
        if period == 2:
            params.attitude_speed *= 3.0  # (in place: the same object)
        hours = [rng.random(na) * 10 for _ in range(3)]
        inp = StepInput(am_hours=hours[0], exec_hours=hours[1], specialist_hours=hours[2],
                        quality=rng.random(na) * 2 - 1, complaints_resolved=np.zeros(na),
                        complaints_unresolved=np.zeros(na), active=rng.random(na) < 0.9)
        u = rng.random(n)
        got, want = ctx.step(inp, u), step(twin, inp, params, roles, u)
        assert same(got.departed, want.departed)
        for name in ("coverage", "attitude", "months_in_post"):
            assert same(getattr(ctx.units, name), getattr(twin, name))
    assert same(ctx.metrics().coverage, metrics(twin, 0.3).coverage)


@needs_numba
@pytest.mark.parametrize("kernels, runs", [(None, True), (True, True), (False, False)])
def test_a_context_runs_the_kernels_as_told(monkeypatch: pytest.MonkeyPatch,
                                            kernels: bool | None, runs: bool) -> None:
    """``kernels``: what the simulation decided for its run; None asks kamsim.jit.wanted
    (here: on)."""
    from kamsim.dmu import StepInput, StepParams, metrics_kernel, step_kernel
    from kamsim.dmu.context import Context
    from kamsim.engine.core import replication_units
    from kamsim.experiment import prepared

    monkeypatch.setenv(jit.ENV, "on")
    ran = []
    for module, name in ((step_kernel, "step_part"), (metrics_kernel, "metrics_part")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _name=name: ran.append(_name) or _real(*a))
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=40", "replications=1"])
    units = replication_units(prepared(spec).units)
    ctx = Context(units, StepParams(), spec.stakeholders.roles, 0.3, kernels=kernels)
    before = ctx.metrics()
    ctx.step(StepInput.idle(units.n_accounts), np.ones(units.n_people))
    ctx.metrics(before)
    assert ran == (["metrics_part", "step_part", "metrics_part"] if runs else [])
