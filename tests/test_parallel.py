"""Determinism across processes: the same scenario and seed give bit-identical results
whatever the number of local worker processes; a different seed gives a different future."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _identical import assert_identical_results, differences

from kamsim.errors import KamsimError
from kamsim.experiment import simulate
from kamsim.spec.load import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
#: small enough for seconds; 5 replications so that chunks come out uneven
SMALL = ["portfolio.generate.accounts=200", "horizon_months=18", "replications=5"]


@pytest.fixture(scope="module")
def spec():  # type: ignore[no-untyped-def]
    return load_scenario(SCENARIOS / "baseline.yaml", SMALL)


@pytest.fixture(scope="module")
def serial(spec):  # type: ignore[no-untyped-def]
    return simulate(spec, workers=1, record_events=True)


def test_comparison_can_fail(serial) -> None:  # type: ignore[no-untyped-def]
    """The checker used below does see a one-ulp change deep inside an output."""
    import copy

    other = copy.deepcopy(serial)
    arr = other.outputs[-1].ts["revenue"]
    arr[-1, 0] = np.nextafter(arr[-1, 0], np.inf)
    assert differences(serial.outputs, other.outputs)
    with pytest.raises(AssertionError):
        from _identical import assert_identical_results as check

        check(serial, other)


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_do_not_change_results(spec, serial, workers: int) -> None:  # type: ignore[no-untyped-def]
    parallel = simulate(spec, workers=workers, record_events=True)
    assert [o.replication for o in parallel.outputs] == list(range(5))
    assert_identical_results(serial, parallel)


def test_spawned_workers_give_the_same_results(spec, serial, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Fresh interpreters (spawn, as on macOS/Windows) rebuild the scenario themselves."""
    monkeypatch.setenv("KAMSIM_SPAWN", "1")
    assert_identical_results(serial, simulate(spec, workers=2, record_events=True))


def test_progress_counts_every_replication(spec) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[int, int]] = []
    simulate(spec, workers=2, replications=4, record_events=False,
             progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (4, 4)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_progress_in_this_process_moves_period_by_period(spec) -> None:  # type: ignore[no-untyped-def]
    """Run in this process, a replication tells its periods as fractions, so that one long
    replication (1M accounts: minutes) does not sit at 0 of 1 until it is done."""
    seen: list[tuple[float, int]] = []
    simulate(spec, workers=1, replications=2, record_events=False,
             progress=lambda d, t: seen.append((d, t)))
    months = spec.scenario.horizon_months
    done = [d for d, _ in seen]
    assert all(t == 2 for _, t in seen)
    assert done == sorted(done) and len(set(done)) == len(done)  # always forward
    assert done == [*(k / months for k in range(1, months)), 1,
                    *(1 + k / months for k in range(1, months)), 2]


def test_same_seed_twice_is_identical(spec, serial) -> None:  # type: ignore[no-untyped-def]
    assert_identical_results(serial, simulate(spec, workers=1, record_events=True))


def test_different_seeds_differ(spec, serial) -> None:  # type: ignore[no-untyped-def]
    other = simulate(spec, workers=1, record_events=True, seed=serial.seed + 1)
    a, b = serial.per_replication(), other.per_replication()
    assert not np.array_equal(a["revenue"], b["revenue"])
    assert not np.array_equal(a["profit"], b["profit"])
    # every replication is a different future, not only some of them
    assert np.all(a["revenue"][:, 0] != b["revenue"][:, 0])


def test_replication_r_does_not_depend_on_the_study_size(spec, serial) -> None:  # type: ignore[no-untyped-def]
    """Replication r is the r-th child of the seed: a shorter study is a prefix."""
    short = simulate(spec, workers=2, replications=3, record_events=True)
    assert not differences(serial.outputs[:3], short.outputs)


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_in_a_replication_do_not_change_results(spec, serial, monkeypatch,
                                                        threads: int) -> None:  # type: ignore[no-untyped-def]
    """A replication run in this process may work on its decision units in two threads
    (large portfolios only; here every portfolio, LANE_MIN_PEOPLE 0): the same results, event
    log included, as the serial run made before (which, far below the threshold, split
    nothing), with one thread or two."""
    from kamsim.dmu import span as span_module
    from kamsim.engine import core

    monkeypatch.setattr(span_module, "LANE_MIN_PEOPLE", 0)
    monkeypatch.setattr("kamsim.lanes.CORES", 2)  # two threads even on a one-core machine
    used: list[int] = []
    real = core.Simulation.__init__

    def spy(self, prep, streams, options, *args):  # type: ignore[no-untyped-def]
        used.append(options.threads)
        real(self, prep, streams, options, *args)

    monkeypatch.setattr(core.Simulation, "__init__", spy)
    monkeypatch.setattr("kamsim.experiment.default_workers", lambda: threads)
    threaded = simulate(spec, workers=1, record_events=True)
    assert used == [threads] * 5
    assert_identical_results(serial, threaded)


def test_tiering_ranks_run_on_one_thread_in_worker_processes(spec, serial, monkeypatch,
                                                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Re-tiering ranks its indicators two at a time on a large portfolio (here every
    portfolio: the row threshold set to 0), and reads its table with the two hysteresis
    nudges side by side, only where the replication may use two threads: in this process,
    not in a worker process, whose other core already runs the other worker's replication.
    The forked workers inherit the spy, which writes down the threads each tiering asked
    for, and the results stay bit-identical."""
    import os

    from kamsim import lanes
    from kamsim.rules import functions

    log = tmp_path / "threads.txt"
    real = lanes.side_by_side

    def spy(fn, items, threads=2):  # type: ignore[no-untyped-def]
        with log.open("a") as f:
            f.write(f"{os.getpid()} {threads}\n")
        return real(fn, items, threads)

    monkeypatch.setattr(functions, "_SIDE_BY_SIDE_MIN_ROWS", 0)
    monkeypatch.setattr(lanes, "side_by_side", spy)
    monkeypatch.setattr(lanes, "CORES", 2)  # two threads even on a one-core machine
    monkeypatch.setattr("kamsim.experiment.default_workers", lambda: 2)
    parallel = simulate(spec, workers=2, record_events=True)
    asked = [line.split() for line in log.read_text().splitlines()]
    in_workers = [int(t) for pid, t in asked if int(pid) != os.getpid()]
    # one re-tiering (month 12) per replication: the ranks, then the nudged tables
    assert len(in_workers) == 10
    assert in_workers == [1] * 10
    assert_identical_results(serial, parallel)
    log.unlink()
    simulate(spec, workers=1, replications=1, record_events=True)  # in this process
    assert [line.split()[1] for line in log.read_text().splitlines()] == ["2", "2"]


def test_a_finished_replication_is_freed_without_the_cycle_collector(spec) -> None:  # type: ignore[no-untyped-def]
    """A worker runs replication after replication: each one's simulation (all its arrays)
    must go as soon as its output is made, not wait for Python's cycle collector (SimPy's
    processes, still waiting past the horizon, held it in a reference cycle)."""
    import gc
    import weakref

    from kamsim.engine.core import EngineOptions, Simulation
    from kamsim.engine.rng import Streams, replication_seeds
    from kamsim.experiment import prepared

    prep = prepared(spec)
    (seq,) = replication_seeds(1, 1)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        sim = Simulation(prep, Streams(seq), EngineOptions(), 0, None)
        out = sim.run()
        gone = weakref.ref(sim)
        del sim
        assert gone() is None, "the simulation outlives its run until a cycle collection"
        assert out.ts["revenue"].shape[0] == spec.scenario.horizon_months
    finally:
        if was_enabled:
            gc.enable()


class _TwoArgError(KamsimError):
    """A kamsim error that pickles but cannot be rebuilt from its pickle (its args are the
    message, its __init__ wants two values)."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")


def test_an_input_error_in_a_worker_arrives_whole(spec, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An InputError is rebuilt from its problems: the parent gets the located lines."""
    from kamsim import experiment
    from kamsim.errors import InputError, Location, Problem

    def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise InputError([Problem(Location("x.yaml", 3, 4), "a problem found in a worker")])

    monkeypatch.setattr(experiment, "run_replication", fails)  # forked workers inherit it
    with pytest.raises(InputError) as exc:
        simulate(spec, replications=2, workers=2)
    assert [p.format() for p in exc.value.problems] == ["x.yaml:3:4: a problem found in a worker"]


def test_an_error_a_worker_cannot_send_whole_is_one_line(spec, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """An error that pickles but cannot be rebuilt: the parent got the unpickling error
    instead (a traceback, the real message lost). It now arrives as a RunError with the
    worker's message."""
    from kamsim import experiment
    from kamsim.errors import RunError

    def fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise _TwoArgError("a problem found in a worker", "replication 0")

    monkeypatch.setattr(experiment, "run_replication", fails)
    with pytest.raises(RunError, match="a problem found in a worker at replication 0"):
        simulate(spec, replications=2, workers=2)


def test_a_worker_killed_from_outside_is_one_line(spec, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A worker killed mid-replication (the system's out-of-memory killer, say) is a
    RunError naming the replication, not a bare RuntimeError."""
    import os
    import signal

    from kamsim import experiment
    from kamsim.errors import RunError

    def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(experiment, "run_replication", killed)
    with pytest.raises(RunError, match="ended unexpectedly .* while running replication"):
        simulate(spec, replications=2, workers=2)
