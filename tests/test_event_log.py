"""The event log agrees with the time series (docs/model.md, "Event log"): it logs as
``key_person_left`` the departures the time series counts as key-person departures
(influence >= 0.5 or coverage >= 1/3), and the other departures as ``other_person_left``,
with the role in ``detail`` and our coverage of the person who left in ``value``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kamsim.dmu.context import Context
from kamsim.engine.record import EVENT_KINDS
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]


def test_key_person_left_events_are_the_key_person_departures() -> None:
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", [
        "portfolio.generate.accounts=200", "horizon_months=12", "replications=2"])
    result = simulate(spec, workers=1, record_events=True)
    ev = result.events()
    kp = ev[ev["kind"] == "key_person_left"]
    for o in result.outputs:
        mine = kp[kp["replication"] == o.replication]
        per_period = np.bincount(mine["period"], minlength=o.periods)
        counted = o.ts["key_person_departures"].sum(axis=1)
        assert counted.sum() > 50
        np.testing.assert_array_equal(per_period, counted)
    roles = list(spec.stakeholders.roles)
    assert kp["detail"].isin(roles).all()
    assert (kp["detail"] == [roles[c] for c in kp["code"]]).all()
    assert kp["value"].between(0.0, 1.0).all()
    # someone we barely covered counts only by influence: a low-influence role with coverage
    # below 1/3 is never logged
    low = [r for r, spec_role in spec.stakeholders.roles.items() if spec_role.influence < 0.45]
    assert low and not (kp["detail"].isin(low) & (kp["value"] < 1 / 3 - 1e-9)).any()


def test_tier_change_events_name_the_tiers_moved_from_and_to() -> None:
    """``detail`` says the move in words, as the other kinds say their code (it was empty)."""
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", [
        "portfolio.generate.accounts=200", "horizon_months=24", "replications=1"])
    result = simulate(spec, workers=1, record_events=True)
    ev = result.events()
    moved = ev[ev["kind"] == "tier_change"]
    assert len(moved) > 0
    tiers = result.tiers
    assert (moved["detail"] == [f"{tiers[int(v)]} -> {tiers[c]}"
                                for v, c in zip(moved["value"], moved["code"], strict=True)]).all()
    assert (moved["code"] != moved["value"]).all()


def test_every_departure_is_logged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The departures that are not key-person ones are logged as ``other_person_left`` (the
    lesson measures after a departure need every one), the key ones stay ``key_person_left``
    only: together, each departure the decision units made, once."""
    made: list[np.ndarray] = []
    step = Context.step

    def spy(self: Context, *args: Any, **kwargs: Any) -> Any:
        out = step(self, *args, **kwargs)
        made.append(np.sort(out.departed_account))
        return out

    monkeypatch.setattr(Context, "step", spy)
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", [
        "portfolio.generate.accounts=200", "horizon_months=12", "replications=1"])
    result = simulate(spec, workers=1, record_events=True)
    e = result.outputs[0].events
    assert e is not None
    people = np.isin(e["kind"], [EVENT_KINDS.index("key_person_left"),
                                 EVENT_KINDS.index("other_person_left")])
    logged = [np.sort(e["account"][people & (e["period"] == k)]) for k in range(len(made))]
    assert sum(map(len, made)) > 100
    assert all(np.array_equal(a, b) for a, b in zip(made, logged, strict=True))
    ev = result.events()
    other = ev[ev["kind"] == "other_person_left"]
    roles = spec.stakeholders.roles
    assert len(other) and (other["detail"] == [list(roles)[c] for c in other["code"]]).all()
    assert (other["value"] < 1 / 3).all()  # not key: covered below 1/3 (and of less influence)
