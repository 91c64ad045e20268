"""What surrounds the replications: the numpy columns the run store writes (the same tables
as the DataFrames), replications sharing the prepared decision-unit structure read-only,
and a store write that needs no pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kamsim.dmu.structure import STRUCTURAL_FIELDS, structure
from kamsim.engine.core import SHARED_UNIT_FIELDS, EngineOptions, Simulation
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.experiment import prepared, simulate
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SMALL = ["portfolio.generate.accounts=150", "horizon_months=12", "replications=2"]

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def spec() -> Any:
    return load_scenario(ROOT / "scenarios/baseline.yaml", SMALL)


@pytest.mark.parametrize("events", [True, False])
def test_table_columns_are_the_frames(spec: Any, events: bool) -> None:
    result = simulate(spec, workers=1, record_events=events)
    frames = result.to_frames()
    columns = result.table_columns()
    assert list(columns) == list(frames)
    for name, cols in columns.items():
        if cols is None:
            assert name == "events" and not events and len(frames[name]) == 0
            continue
        pd.testing.assert_frame_equal(pd.DataFrame(cols), frames[name], check_exact=True)


def test_replications_share_the_structure_read_only(spec: Any) -> None:
    prep = prepared(spec)
    before = {f: getattr(prep.units, f).copy() for f in ("attitude", "coverage")}
    sim = Simulation(prep, Streams(replication_seeds(1, 1)[0]), EngineOptions(False))
    u = sim.units
    for name in STRUCTURAL_FIELDS:
        assert name in SHARED_UNIT_FIELDS
        arr = getattr(u, name)
        assert not arr.flags.writeable and np.shares_memory(arr, getattr(prep.units, name))
    # what a run changes is the replication's own
    assert u.attitude.flags.writeable and not np.shares_memory(u.attitude, prep.units.attitude)
    assert structure(u).sum_influence is structure(prep.units).sum_influence
    sim.run()
    for name, arr in before.items():  # the shared starting point is untouched
        np.testing.assert_array_equal(getattr(prep.units, name), arr)


def test_store_write_needs_no_pandas(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from kamsim.experiment import simulate\n"
        "from kamsim.spec.load import load_scenario\n"
        "from kamsim.store import record_run\n"
        f"spec = load_scenario({str(ROOT / 'scenarios/baseline.yaml')!r}, {SMALL!r})\n"
        f"record_run(simulate(spec, workers=1), {str(tmp_path / 's.duckdb')!r})\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
