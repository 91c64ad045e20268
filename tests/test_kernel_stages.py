"""The compiled bookkeeping of the stages section (kamsim/engine/stages_kernel.py) gives the
numpy path's values to the bit: each kernel against the numpy lines it fuses (copied here
from ``kamsim/engine/step.py``) on arrays with NaN, signed zeros, inactive accounts and empty
portfolios; and whole runs of every shipped scenario, and of the baseline with rules that
overlap, uncouple and recover, with ``KAMSIM_KERNELS=on`` against ``off``, stages, tenure and
months in stage after every period.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kamsim import jit
from kamsim.engine.core import EngineOptions, Simulation
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.experiment import prepared
from kamsim.fields import field_types
from kamsim.rules.expr import compile_expr
from kamsim.spec.load import load_scenario

stk = pytest.importorskip("kamsim.engine.stages_kernel", reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[1]


def _same(a: Any, b: Any) -> bool:
    """Bit for bit: same dtype, shape and bytes (NaN payloads and signed zeros count)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# -- the kernels against the numpy lines, value by value

FLOATS = st.one_of(st.sampled_from([0.0, -0.0, 1.0, 2.0, 3.0, 2.9999999999999996, np.nan,
                                    np.inf, -1.0, 5e-324]),
                   st.floats(-5.0, 50.0))
DTS = st.sampled_from([1.0, 12.0 / 52.0, 0.5])


@st.composite
def portfolios(draw: st.DrawFn) -> dict[str, Any]:
    """A portfolio's state at the stages section and what its rules said: ``ladder`` stages
    and the uncoupled one (index ``ladder``), some rules missing, dwell times with a NaN
    now and then (a NaN dwell lets no one move, as numpy's comparison says)."""
    ladder = draw(st.integers(1, 5))
    n = draw(st.integers(0, 40))
    stage = draw(arrays(np.int64, n, elements=st.integers(0, ladder)))
    dwell = draw(arrays(np.float64, ladder + 1, elements=st.sampled_from([0.0, 1.0, 3.0,
                                                                          np.nan])))
    dwell[ladder] = 0.0
    said = arrays(np.bool_, (ladder, n))
    return {
        "ladder": ladder, "n": n, "stage": stage, "min_dwell": dwell,
        "act": draw(arrays(np.bool_, n)),
        "tenure": draw(arrays(np.float64, n, elements=FLOATS)),
        "months": draw(arrays(np.float64, n, elements=FLOATS)),
        "dt": draw(DTS),
        "up_said": draw(said), "down_said": draw(said),
        "has_up": draw(arrays(np.bool_, ladder)), "has_down": draw(arrays(np.bool_, ladder)),
        "unc_said": draw(arrays(np.bool_, n)), "rec_said": draw(arrays(np.bool_, n)),
        "recover": draw(st.booleans()),
    }


def _numpy_stages(p: dict[str, Any]) -> dict[str, Any]:
    """The numpy path's lines of section "stages" (rules answered by ``p``'s arrays)."""
    act, stage, ladder, n, dt = p["act"], p["stage"], p["ladder"], p["n"], p["dt"]
    uncoupled = ladder
    asked: list[tuple[str, int]] = []
    in_portfolio = np.where(act, dt, 0.0)
    tenure = p["tenure"] + in_portfolio
    months_in_stage = p["months"] + in_portfolio
    may_move = act & (months_in_stage >= p["min_dwell"].take(stage))
    ups, downs = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for s in range(ladder):
        here = may_move & (stage == s)
        if not here.any():
            continue
        if p["has_up"][s] and s + 1 < ladder:
            asked.append(("up", s))
            up = here & p["up_said"][s]
            ups |= up
            np.greater(here, up, out=here)
        if p["has_down"][s] and s > 0:
            asked.append(("down", s))
            here &= p["down_said"][s]
            downs |= here
    new_stage = stage + (ups.view(np.int8) - downs.view(np.int8))
    unc = act & (stage != uncoupled) & p["unc_said"]
    np.putmask(new_stage, unc, uncoupled)
    if p["recover"]:
        rec = act & (stage == uncoupled)
        if rec.any():
            asked.append(("recover", uncoupled))
            rec &= p["rec_said"]
            np.putmask(new_stage, rec, 0)
    changed = np.flatnonzero(new_stage != stage)
    months_in_stage[changed] = 0.0
    return {"tenure": tenure, "months_in_stage": months_in_stage, "stage": new_stage,
            "changed": changed, "asked": asked}


def _compiled_stages(p: dict[str, Any]) -> dict[str, Any]:
    """The compiled path's lines of section "stages" (as in period_step)."""
    act, stage, ladder, n = p["act"], p["stage"], p["ladder"], p["n"]
    uncoupled = ladder
    asked: list[tuple[str, int]] = []
    tenure, months_in_stage, movers, starts, n_uncoupled = stk.stages_age(
        act, p["tenure"], p["months"], p["dt"], stage, p["min_dwell"], ladder)
    assert n_uncoupled == np.count_nonzero(act & (stage == uncoupled))
    said = np.zeros(n, dtype=np.int8)
    for s in range(ladder):
        rows = movers[starts[s]:starts[s + 1]]
        assert np.all(np.diff(rows) > 0) and np.all(stage[rows] == s)
        if not rows.size:
            continue
        up = down = None
        if p["has_up"][s] and s + 1 < ladder:
            asked.append(("up", s))
            up = p["up_said"][s][rows]
        if p["has_down"][s] and s > 0:
            asked.append(("down", s))
            down = p["down_said"][s][rows]
        if down is not None:
            said[rows[down]] = 2
        if up is not None:
            said[rows[up]] = 1
    rec, rec_asked = p["unc_said"], False
    if p["recover"] and n_uncoupled:
        rec = act & (stage == uncoupled)
        rec_asked = True
        asked.append(("recover", uncoupled))
        rec &= p["rec_said"]
    new_stage, changed = stk.stages_move(act, stage, said, p["unc_said"], rec, rec_asked,
                                         uncoupled, months_in_stage)
    return {"tenure": tenure, "months_in_stage": months_in_stage, "stage": new_stage,
            "changed": changed, "asked": asked}


@settings(max_examples=400, deadline=None)
@given(portfolios())
def test_the_compiled_stages_are_numpys(p: dict[str, Any]) -> None:
    """Same tenure, months in stage, stages and changed accounts (same dtypes), and the same
    rules asked, in the same order."""
    want, got = _numpy_stages(p), _compiled_stages(p)
    for name in ("tenure", "months_in_stage", "stage", "changed"):
        assert _same(got[name], want[name]), name
    assert got["asked"] == want["asked"]


def test_the_compiled_stages_of_no_accounts() -> None:
    none = np.zeros(0)
    p = {"ladder": 3, "n": 0, "stage": np.zeros(0, dtype=np.int64), "act": none > 0,
         "min_dwell": np.array([3.0, 3.0, 3.0, 0.0]), "tenure": none, "months": none,
         "dt": 1.0, "up_said": np.zeros((3, 0), dtype=bool),
         "down_said": np.zeros((3, 0), dtype=bool), "has_up": np.ones(3, dtype=bool),
         "has_down": np.ones(3, dtype=bool), "unc_said": none > 0, "rec_said": none > 0,
         "recover": True}
    want, got = _numpy_stages(p), _compiled_stages(p)
    for name in ("tenure", "months_in_stage", "stage", "changed"):
        assert _same(got[name], want[name]), name
    assert got["asked"] == want["asked"] == []


# -- whole runs, kernels on against off

SCENARIOS = sorted(p for p in [*(ROOT / "scenarios").glob("*.yaml"),
                               *(ROOT / "scenarios" / "lessons").glob("*.yaml")]
                   if (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("kind")
                   == "scenario")
SMALL = ["horizon_months=18", "replications=1", "seed=20261124"]
#: the state the stages section writes, compared after every period
STATE = ("stage", "tenure", "months_in_stage")


def _run(path: Path, overlap: bool) -> tuple[list[dict[str, np.ndarray]], Any, int]:
    """Every period's stages, tenure and months in stage; the run's output; how many
    periods the compiled stages ran."""
    spec = load_scenario(path, SMALL)
    gen = spec.scenario.portfolio.generate
    if gen is not None and gen.accounts > 300:
        spec = load_scenario(path, [*SMALL, "portfolio.generate.accounts=300"])
    sim = Simulation(prepared(spec), Streams(replication_seeds(spec.scenario.seed, 1)[0]),
                     EngineOptions())
    if overlap:  # rules whose up and down overlap (up wins), that uncouple and recover often
        fields = field_types()
        stages = sim.model.stages
        stages = dataclasses.replace(
            stages, down=tuple(None if rule is None else compile_expr("trust < 0.9", fields)
                               for rule in stages.down),
            uncouple=compile_expr("trust < 0.45 and coverage < 0.5", fields),
            recover=compile_expr("trust >= 0.3", fields))
        sim.model = dataclasses.replace(sim.model, stages=stages)
    states: list[dict[str, np.ndarray]] = []
    step = sim.step
    moved = stk.stages_move
    ran = 0

    def noting(*args: Any) -> Any:
        nonlocal ran
        ran += 1
        return moved(*args)

    def stepping(k: int) -> None:
        step(k)
        states.append({name: getattr(sim, name).copy() for name in STATE})

    sim.step = stepping  # type: ignore[method-assign]
    stk.stages_move = noting
    try:
        out = sim.run()
    finally:
        stk.stages_move = moved
    return states, out, ran


@pytest.mark.parametrize(("path", "overlap"), [*((p, False) for p in SCENARIOS),
                                               (ROOT / "scenarios" / "baseline.yaml", True)],
                         ids=lambda p: p.stem if isinstance(p, Path) else str(p))
def test_every_scenario_moves_the_same_stages_with_kernels(monkeypatch: pytest.MonkeyPatch,
                                                           path: Path, overlap: bool) -> None:
    from _identical import differences

    monkeypatch.setenv(jit.ENV, "off")
    numpy_states, numpy_out, numpy_ran = _run(path, overlap)
    monkeypatch.setenv(jit.ENV, "on")
    kernel_states, kernel_out, kernel_ran = _run(path, overlap)
    assert numpy_ran == 0
    for k, (a, b) in enumerate(zip(numpy_states, kernel_states, strict=True)):
        for name in STATE:
            assert _same(a[name], b[name]), f"{name} after period {k}"
    diffs = differences(numpy_out, kernel_out, "output")
    assert not diffs, "kernels change the run:\n" + "\n".join(diffs[:20])
    if path.stem != "trainer_single_account" or overlap:
        assert kernel_ran > 0
