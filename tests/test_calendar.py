"""The engine's calendar (docs/model.md, Time): period k runs at exactly month k·dt, and a
shock or re-tiering at month M applies from the first period that starts at or after M on,
with weeks as with months (month 12 of a weekly run is period 52)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kamsim.engine.core import EngineOptions, Simulation
from kamsim.engine.record import EVENT_KINDS
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.experiment import prepared
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def _steps(over: list[str]) -> tuple[Simulation, list[dict[str, Any]]]:
    """Run one replication of a small baseline and note, as each step starts, its period,
    the SimPy time, whether a re-tiering is due and the AM capacity multiplier."""
    spec = load_scenario(ROOT / "scenarios/baseline.yaml",
                         ["portfolio.generate.accounts=60", *over])
    sim = Simulation(prepared(spec), Streams(replication_seeds(1, 1)[0]), EngineOptions())
    seen: list[dict[str, Any]] = []
    step = sim.step

    def noting(k: int) -> None:
        seen.append({"k": k, "now": sim.env.now, "retier": sim._pending_retier,
                     "capacity": sim.capacity_mult})
        step(k)

    sim.step = noting  # type: ignore[method-assign]
    sim.run()
    return sim, seen


def test_weekly_month_12_is_period_52() -> None:
    sim, seen = _steps(["horizon_months=14", "period=week",
                        "shocks=[{at_month: 12, kind: am_attrition, capacity_multiplier: 0}]"])
    assert len(seen) == sim.periods == 61
    # on the grid, not a sum of dt's (52 of them add up to 11.999999999999988)
    assert [s["now"] for s in seen] == [k * sim.dt for k in range(sim.periods)]
    # the yearly re-tiering and the shock both apply from period 52 on
    assert [s["k"] for s in seen if s["retier"]] == [52]
    assert [s["capacity"] for s in seen[50:54]] == [1.0, 1.0, 0.0, 0.0]
    ev = sim.log.arrays()  # type: ignore[union-attr]
    assert ev["period"][ev["kind"] == EVENT_KINDS.index("shock")].tolist() == [52]


@pytest.mark.parametrize("period, at, until, on, off", [
    ("month", 3, 5, 3, 5),
    ("week", 1, 3, 5, 13),  # month 1 falls in week 4 (0.92-1.15): week 5 is the first after
    ("month", 0, None, 0, None),  # a shock at month 0 applies from the first period on
])
def test_a_shock_applies_from_the_first_period_at_or_after_its_month(
        period: str, at: int, until: int | None, on: int, off: int | None) -> None:
    end = "" if until is None else f", until_month: {until}"
    sim, seen = _steps(["horizon_months=6", f"period={period}",
                        f"shocks=[{{at_month: {at}{end}, kind: am_attrition, "
                        "capacity_multiplier: 0}]"])
    cut = [s["k"] for s in seen if s["capacity"] == 0.0]
    assert cut[0] == on
    assert cut[-1] + 1 == (off if off is not None else sim.periods)
    assert np.all(np.diff(cut) == 1)
