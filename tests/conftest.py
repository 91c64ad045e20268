"""Shared, generic fixtures: a small baseline run (computed once per session) and a
throwaway run-store path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

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


@pytest.fixture
def refuse_files_in(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """``refuse_files_in(folder)``: creating a temporary file in ``folder`` then fails with
    "Permission denied", as it does for a user without write permission there (tests may run
    as root, who writes through any mode)."""
    import kamsim.io as kio

    real_mkstemp = kio.tempfile.mkstemp

    def refuse(folder: Path) -> None:
        def mkstemp(*args: Any, dir: Any = None, **kwargs: Any) -> Any:  # noqa: A002
            if dir is not None and Path(dir) == folder:
                raise PermissionError(13, "Permission denied")
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(kio.tempfile, "mkstemp", mkstemp)

    return refuse
