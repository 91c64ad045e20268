"""Shared, generic fixtures: a small baseline run (computed once per session) and a
throwaway run-store path."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "scenarios"

#: a baseline small enough for unit tests (seconds, not minutes)
SMALL = ["portfolio.generate.accounts=200", "horizon_months=24", "replications=3"]


@pytest.fixture(scope="session")
def small_overrides() -> list[str]:
    """Overrides that shrink any shipped scenario to a few seconds of work."""
    return list(SMALL)


@pytest.fixture(scope="session")
def small_baseline_result():
    """``scenarios/baseline.yaml`` with 200 accounts, 24 months, 3 replications, run once
    in this process (treat it as read-only)."""
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    return simulate(load_scenario(SCENARIOS / "baseline.yaml", SMALL), workers=1)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """A run-store file path in a fresh temporary folder (not created yet)."""
    return tmp_path / "runs.duckdb"
