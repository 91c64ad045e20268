"""When the compiled kernels run (kamsim.jit), and that numba stays out of light work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kamsim import jit
from kamsim.errors import RunError

BASELINE = Path(__file__).resolve().parent.parent / "scenarios" / "baseline.yaml"


@pytest.mark.parametrize(("value", "expected"), [
    (None, "auto"), ("auto", "auto"), ("on", "on"), ("OFF", "off"), (" on ", "on"),
    ("", "auto"),
])
def test_mode_reads_the_environment(monkeypatch: pytest.MonkeyPatch, value: str | None,
                                    expected: str) -> None:
    if value is None:
        monkeypatch.delenv(jit.ENV, raising=False)
    else:
        monkeypatch.setenv(jit.ENV, value)
    assert jit.mode() == expected


def test_a_misspelt_mode_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(jit.ENV, "of")
    with pytest.raises(RunError, match=r"KAMSIM_KERNELS is 'of' \(expected auto, on or off\)"):
        jit.mode()


def test_the_cli_says_so_in_one_line_before_any_work(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "kamsim", "run", str(BASELINE), "-r", "1",
                          "--no-store", "--out", str(tmp_path / "res")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "KAMSIM_KERNELS": "yes"})
    assert out.returncode == 2
    assert out.stderr.strip() == "error: KAMSIM_KERNELS is 'yes' (expected auto, on or off)"
    assert not (tmp_path / "res").exists()


def test_wanted_follows_the_mode_and_the_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jit, "available", lambda: True)
    monkeypatch.setenv(jit.ENV, "auto")
    assert not jit.wanted(jit.MIN_PEOPLE - 1)
    assert jit.wanted(jit.MIN_PEOPLE)
    monkeypatch.setenv(jit.ENV, "on")
    assert jit.wanted(1)
    assert jit.wanted(1, 1, 1)
    monkeypatch.setenv(jit.ENV, "off")
    assert not jit.wanted(10 * jit.MIN_PEOPLE)
    assert not jit.wanted(10 * jit.MIN_PEOPLE, 120, 100)


def test_a_simulation_decides_by_the_work_of_its_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # people x periods x the replications the process runs, against MIN_PERSON_PERIODS: a
    # portfolio too small for one replication repays numba's start-up over a study's share
    monkeypatch.setattr(jit, "available", lambda: True)
    monkeypatch.setenv(jit.ENV, "auto")
    bar = jit.MIN_PERSON_PERIODS
    people = 85_000  # ~10,000 accounts: above MIN_PEOPLE, so the size alone would say yes
    assert jit.wanted(people)
    assert not jit.wanted(people, 60)  # one replication x 60 months: 5.1M
    assert not jit.wanted(people, 60, 1)
    assert jit.wanted(people, 60, 50)  # half of 100 replications: 255M
    assert not jit.wanted(bar // 60 - 1, 60)
    assert jit.wanted(bar // 60, 60)
    assert jit.wanted(bar // 600, 60, 10)
    assert not jit.wanted(bar // 600 - 1, 60, 10)
    assert not jit.wanted(people, 60, 0)  # (no fewer than one replication)


@pytest.mark.parametrize(("reps", "workers", "share"), [(1, 1, 2), (20, 1, 40), (20, 2, 20),
                                                        (5, 2, 5), (7, 4, 4), (3, 8, 1)])
def test_the_study_tells_each_replication_its_process_share(
        monkeypatch: pytest.MonkeyPatch, reps: int, workers: int, share: int) -> None:
    from kamsim import experiment
    from kamsim.spec.load import load_scenario

    seen: list[int] = []

    def pool(specs, seed, reps, options, n_workers, progress):  # type: ignore[no-untyped-def]
        seen.extend(o.runs_here for o in options)
        return [[] for _ in specs]

    def inline(prep, seq, r, options, on_period=None):  # type: ignore[no-untyped-def]
        seen.append(options.runs_here)
        return None

    monkeypatch.setattr(experiment, "_run_local_pool", pool)
    monkeypatch.setattr(experiment, "run_replication", inline)
    spec = load_scenario(BASELINE, ["portfolio.generate.accounts=50"])
    experiment._run_study([spec, spec], 1, reps, [experiment.EngineOptions()] * 2, workers,
                          None, None)
    # two scenarios (a sweep's points share one pool): twice the replications to share out
    assert seen and set(seen) == {share}


def test_without_numba_nothing_is_wanted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jit, "available", lambda: False)
    monkeypatch.setenv(jit.ENV, "on")
    assert not jit.wanted(10 * jit.MIN_PEOPLE)


def test_available_when_numba_cannot_be_imported() -> None:
    # a process where importing numba fails reads as "not available" (the numpy code runs)
    code = ("import sys; sys.modules['numba'] = None\n"
            "from kamsim import jit; print(jit.available(), jit.wanted(10**7))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "KAMSIM_KERNELS": "on"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("overrides", [
    ["portfolio.generate.accounts=200", "horizon_months=3", "replications=1"],
    # the default scenario's share of a two-core machine: 10 of its 20 replications
    ["replications=10"],
])
def test_a_small_run_never_imports_numba(overrides: list[str]) -> None:
    # numba's start-up (~0.3 s a process, ~7.5 s the first time, compiling) would cost the
    # default scenario more than the kernels save on 2,000 accounts: under auto, a small
    # run stays with numpy
    code = ("import sys\n"
            "from kamsim.spec.load import load_scenario\n"
            "from kamsim.experiment import simulate\n"
            f"spec = load_scenario({str(BASELINE)!r}, {overrides!r})\n"
            "simulate(spec, workers=1)\n"
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "KAMSIM_KERNELS": "auto"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_kernel_without_a_cache_folder_is_compiled_all_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # numba raises when it finds no writable folder to cache in (a read-only install): the
    # kernel is then compiled without the cache, not a traceback
    numba = pytest.importorskip("numba")
    real = numba.njit

    def njit(*args: object, **options: object) -> object:
        if options.get("cache"):
            raise RuntimeError("cannot cache function 'f': no locator available for file 'x'")
        return real(*args, **options)

    monkeypatch.setattr(numba, "njit", njit)

    def twice(x: float) -> float:
        return 2.0 * x

    assert jit.kernel(twice)(1.5) == 3.0


@pytest.mark.parametrize(("accounts", "runs_here", "imported"), [
    (10_000, 1, False),  # 85,000 people (the size alone would say yes) x 3 months
    (200, 10**6, True),  # 1,700 people, but a process that is to run a million of them
])
def test_a_replication_asks_for_the_work_of_its_process(accounts: int, runs_here: int,
                                                        imported: bool) -> None:
    code = ("import sys\n"
            "from kamsim.spec.load import load_scenario\n"
            "from kamsim.experiment import prepared\n"
            "from kamsim.engine.core import EngineOptions, run_replication\n"
            "from kamsim.engine.rng import replication_seeds\n"
            f"spec = load_scenario({str(BASELINE)!r}, ['portfolio.generate.accounts="
            f"{accounts}', 'horizon_months=3'])\n"
            "prep = prepared(spec)\n"
            f"run_replication(prep, replication_seeds(1, 1)[0], 0, EngineOptions("
            f"record_events=False, runs_here={runs_here}))\n"
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=180, env={**os.environ, "KAMSIM_KERNELS": "auto"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(imported and jit.available())
