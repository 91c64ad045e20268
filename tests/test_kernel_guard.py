"""The engine's kernels run only on the arrays they are written for (kamsim.engine.step's
``_kernels_fit``, worked out once a replication): a state array of another dtype, or an id
the period does not make itself out of range, and the whole replication runs the numpy
code, with the numpy path's figures, or its error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _identical import differences

from kamsim import jit
from kamsim.engine.core import EngineOptions, Simulation
from kamsim.engine.prepare import Prepared
from kamsim.engine.record import ReplicationOutput
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.experiment import prepared
from kamsim.spec.load import load_scenario

pytest.importorskip("numba", reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "scenarios" / "baseline.yaml"

#: the engine's kernel modules and the entry points period_step calls
ENTRIES = {
    "kamsim.engine.step_kernels": ("trust_toward_target", "complaints_age", "money",
                                   "share_toward_target", "wallet_grown", "word_of_mouth"),
    "kamsim.engine.allocation_kernel": ("list_revenue", "asked", "allocated", "ratios"),
    "kamsim.engine.events_kernel": ("events",),
    "kamsim.engine.tally_kernel": ("referrals", "tally"),
    "kamsim.engine.stages_kernel": ("stages_age", "stages_move"),
    "kamsim.engine.complaints_kernel": ("answered",),
}


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The engine kernels called (each entry point wrapped to note its name)."""
    import importlib

    names: set[str] = set()

    def noting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def noted(*args: Any, **kwargs: Any) -> Any:
            names.add(name)
            return fn(*args, **kwargs)
        return noted

    for mod_name, entries in ENTRIES.items():
        mod = importlib.import_module(mod_name)
        for name in entries:
            monkeypatch.setattr(mod, name, noting(name, getattr(mod, name)))
    return names


def _prep() -> Prepared:
    spec = load_scenario(BASELINE, ["horizon_months=12", "replications=1", "seed=20261124",
                                    "portfolio.generate.accounts=300"])
    return prepared(spec)


def _run(monkeypatch: pytest.MonkeyPatch, mode: str, prep: Prepared,
         change: Callable[[Simulation], None] = lambda sim: None) -> ReplicationOutput:
    monkeypatch.setenv(jit.ENV, mode)
    sim = Simulation(prep, Streams(replication_seeds(prep.model.spec.scenario.seed, 1)[0]),
                     EngineOptions())
    change(sim)
    return sim.run()


def test_the_kernels_run_on_the_engines_own_arrays(monkeypatch: pytest.MonkeyPatch,
                                                   ran: set[str]) -> None:
    prep = _prep()
    want = _run(monkeypatch, "off", prep)
    assert not ran
    assert not differences(want, _run(monkeypatch, "on", prep))
    # (all but the allocation of a short capacity: the baseline's suffices)
    assert ran == {name for names in ENTRIES.values() for name in names} - {"allocated"}


@pytest.mark.parametrize("name", ["wallet", "share", "trust", "since_unresolved",
                                  "months_in_stage", "cost_share", "p_default"])
def test_a_float32_state_runs_the_numpy_path(monkeypatch: pytest.MonkeyPatch, ran: set[str],
                                             name: str) -> None:
    # numpy works float32 values by its own rules (NEP 50: float32 / 12.0 stays float32), a
    # kernel compiled for them would not: the numpy path runs, and gives its own figures
    def float32(sim: Simulation) -> None:
        setattr(sim, name, getattr(sim, name).astype(np.float32))

    prep = _prep()
    want = _run(monkeypatch, "off", prep, float32)
    got = _run(monkeypatch, "on", prep, float32)
    assert not ran
    diffs = differences(want, got)
    assert not diffs, "\n".join(diffs[:20])


def test_an_int32_stage_runs_the_numpy_path(monkeypatch: pytest.MonkeyPatch,
                                            ran: set[str]) -> None:
    def int32(sim: Simulation) -> None:
        sim.stage = sim.stage.astype(np.int32)

    prep = _prep()
    want = _run(monkeypatch, "off", prep, int32)
    assert not differences(want, _run(monkeypatch, "on", prep, int32))
    assert not ran


def _edges(prep: Prepared, end: str, value: int) -> Prepared:
    ids = getattr(prep, end).copy()
    ids[len(ids) // 2] = value
    return dataclasses.replace(prep, **{end: ids})


@pytest.mark.parametrize("end, value, error", [
    ("wom_src", -1, None),  # numpy's indexing counts it from the end: the numpy path's figures
    ("wom_dst", -1, ValueError),  # a bincount of a negative id
    ("wom_src", 10**6, IndexError),
    ("wom_dst", 10**6, ValueError),  # the sums come out too long
])
def test_an_edge_out_of_range_runs_the_numpy_path(monkeypatch: pytest.MonkeyPatch,
                                                  ran: set[str], end: str, value: int,
                                                  error: type[Exception] | None) -> None:
    prep = _edges(_prep(), end, value)
    if error is None:
        want = _run(monkeypatch, "off", prep)
        assert not differences(want, _run(monkeypatch, "on", prep))
    else:
        with pytest.raises(error):
            _run(monkeypatch, "off", prep)
        with pytest.raises(error):
            _run(monkeypatch, "on", prep)
    assert not ran


@pytest.mark.parametrize("name, value", [("stage", 99), ("stage", -1), ("tier", 7),
                                         ("tier", -1)])
def test_a_starting_id_out_of_range_runs_the_numpy_path(monkeypatch: pytest.MonkeyPatch,
                                                        ran: set[str], name: str,
                                                        value: int) -> None:
    def bad(sim: Simulation) -> None:
        ids = getattr(sim, name).copy()
        ids[3] = value
        setattr(sim, name, ids)

    prep = _prep()
    try:
        want: Any = _run(monkeypatch, "off", prep, bad)
    except Exception as e:  # noqa: BLE001 - the numpy path's error, whichever
        want = e
    try:
        got: Any = _run(monkeypatch, "on", prep, bad)
    except Exception as e:  # noqa: BLE001
        got = e
    if isinstance(want, Exception):
        assert type(got) is type(want) and str(got) == str(want)
    else:
        assert not differences(want, got)
    assert not ran
