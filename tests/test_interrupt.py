"""Ctrl-C: ``kamsim run`` and ``kamsim compare`` interrupted at any moment exit 130 promptly
(no hang, no worker traceback), leave the store with the whole run (or group) or none of
it, and say which.

Ctrl-C is sent as a terminal sends it: SIGINT to the whole process group (the worker
processes too). The moments are found with marker lines the child prints, not by guessing
times: a wrapper around ``kamsim.experiment.simulate`` prints each finished replication (and
one around the local pool its start),
``KAMSIM_TEST_PAUSE_IN_STORE_WRITE`` holds the store write open just before COMMIT, and a
wrapper around ``kamsim.io._write_frame`` holds the results folder's write, and one around
``kamsim.store._connect`` tells when the store write starts opening the store. The timeouts
below only catch a hang; nothing here asserts how long anything takes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

import kamsim.store as store_mod
from kamsim.store import RESULT_TABLES

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
# replications of a few tenths of a second each, on two worker processes (the local pool)
POOL = ["--set", "portfolio.generate.accounts=300", "--set", "horizon_months=24", "-r", "6",
        "-w", "2", "-q"]
WAIT_S = 120  # generous bound on the exit after Ctrl-C: only a hang exceeds it

pytestmark = pytest.mark.timeout(900)

# The CLI with markers on stderr: each finished replication, and (when asked by
# KAMSIM_TEST_SLOW_FOLDER) a pause in the results folder's write.
_CHILD = textwrap.dedent("""
    import os, sys, time
    # (imported first: CPython can lose a SIGINT that lands inside some imports)
    import multiprocessing.connection, multiprocessing.popen_fork, pickle
    import kamsim.experiment as ex
    import kamsim.io as io
    real_simulate, real_write, real_pool = ex.simulate, io._write_frame, ex._run_local_pool
    def pool(*args, **kw):
        print("kamsim-test: starting workers", file=sys.stderr, flush=True)
        return real_pool(*args, **kw)
    def simulate(*args, progress=None, **kw):
        def tell(done, total):
            if done == int(done):
                print(f"kamsim-test: done {int(done)}/{total}", file=sys.stderr, flush=True)
            if progress:
                progress(done, total)
        return real_simulate(*args, progress=tell, **kw)
    def slow(df, path):
        if os.environ.get("KAMSIM_TEST_SLOW_FOLDER"):
            print("kamsim-test: paused in write_results", file=sys.stderr, flush=True)
            time.sleep(120)
        real_write(df, path)
    ex.simulate, io._write_frame, ex._run_local_pool = simulate, slow, pool
    import kamsim.store as st
    real_connect = st._connect
    def connect(path, read_only, *args, **kw):
        if not read_only:
            print("kamsim-test: opening the store to write", file=sys.stderr, flush=True)
        return real_connect(path, read_only, *args, **kw)
    st._connect = connect
    from kamsim.cli.main import main
    main()
""")


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    # its own process group, so that SIGINT to the group reaches it and its workers only
    return subprocess.Popen([sys.executable, "-c", _CHILD, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, **(env or {})})


def _interrupt_at(proc: subprocess.Popen[str], marker: str | None) -> str:
    """Send Ctrl-C when ``marker`` appears on stderr (at once if None, or if the child ends
    first); wait for the child to exit (a hang fails the test) and for its whole process
    group to be gone (no worker left behind). Returns its stderr."""
    assert proc.stderr is not None
    seen = []
    if marker is not None:
        for line in proc.stderr:
            seen.append(line)
            if marker in line:
                break
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        pass
    try:
        _, rest = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"kamsim did not exit after Ctrl-C (marker {marker!r}); "
                    f"stderr: {''.join(seen)[-2000:]}")
    deadline = time.monotonic() + WAIT_S
    while True:  # workers left running would keep the group alive
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("worker processes were left running after Ctrl-C")
        time.sleep(0.1)
    return "".join(seen) + rest


def _runs(store: Path) -> dict[str, Any]:
    """run id -> group, and every run id found in any results table."""
    if not store.exists():
        return {"runs": {}, "in_tables": set()}
    con = duckdb.connect(str(store), read_only=True)
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()"
                                            ).fetchall()}
        runs = dict(con.execute("SELECT run_id, group_id FROM runs").fetchall()
                    ) if "runs" in tables else {}
        in_tables = set()
        for t in set(RESULT_TABLES) & tables:
            in_tables |= {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM {t}"
                                                    ).fetchall()}
    finally:
        con.close()
    return {"runs": runs, "in_tables": in_tables}


def _check_interrupted(err: str, returncode: int) -> str:
    assert returncode == 130, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted; "), err
    return last


def _ctrl_c_at_second_run(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[str]]:
    """A Ctrl-C as the store starts writing the second run's tables (the first run's rows
    already inserted in the same transaction); gives the real insert and the runs it was
    called for."""
    real, calls = store_mod._insert_frame, []

    def interrupted(con: Any, table: str, df: Any, run_id: str) -> None:
        calls.append(run_id)
        if len(set(calls)) == 2:
            raise KeyboardInterrupt
        real(con, table, df, run_id)

    monkeypatch.setattr(store_mod, "_insert_frame", interrupted)
    return real, calls


@pytest.mark.parametrize("marker", [
    "done 1/6",  # workers busy, most replications queued
    "done 4/6",  # the last replications running
    "done 5/6",  # the last one running, the other worker idle on the pool's queue
    "done 6/6",  # the pool shutting down, then the table and the store write
    "paused in store write",  # inside the store's transaction, just before COMMIT
])
def test_ctrl_c_run_exits_130_and_keeps_the_store_whole(marker: str, tmp_path: Path) -> None:
    store = tmp_path / "runs.duckdb"
    env = {store_mod.PAUSE_ENV: "120"} if "store" in marker else None
    proc = _start(["run", BASELINE, *POOL, "--store", str(store)], env)
    last = _check_interrupted(_interrupt_at(proc, marker), proc.returncode)
    got = _runs(store)
    said = re.search(r"run (r[0-9a-f]{8}) was recorded", last)
    if said:  # the whole run, and the line names it
        assert list(got["runs"]) == [said.group(1)] and got["in_tables"] == {said.group(1)}
    else:  # none of it: and no empty store file made by the write
        assert last == "interrupted; nothing was written.", last
        assert not store.exists() and not Path(f"{store}.wal").exists()
    if "store" in marker:
        assert not said


def test_ctrl_c_as_the_workers_start(tmp_path: Path) -> None:
    store = tmp_path / "runs.duckdb"
    proc = _start(["run", BASELINE, *POOL, "--store", str(store)])
    last = _check_interrupted(_interrupt_at(proc, "starting workers"), proc.returncode)
    assert last == "interrupted; nothing was written."
    assert not store.exists()


def test_ctrl_c_after_the_run_is_recorded_says_so(tmp_path: Path) -> None:
    store, out = tmp_path / "runs.duckdb", tmp_path / "results"
    proc = _start(["run", BASELINE, *POOL, "--store", str(store), "--out", str(out)],
                  {"KAMSIM_TEST_SLOW_FOLDER": "1"})
    last = _check_interrupted(_interrupt_at(proc, "paused in write_results"),
                              proc.returncode)
    got = _runs(store)
    assert len(got["runs"]) == 1, got
    (rid,) = got["runs"]
    assert last == f"interrupted; run {rid} was recorded in {store}; nothing else was written."
    assert not out.exists()


def test_ctrl_c_while_another_process_holds_the_store(tmp_path: Path) -> None:
    """A Ctrl-C while the write waits for a store another process holds ends the wait at
    once (it waited out the whole KAMSIM_STORE_LOCK_WAIT, here far longer than the hang
    bound) and says that the run was not recorded and why, instead of "could not tell"."""
    store = tmp_path / "runs.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(store)!r}); "
                               "print('locked', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = _start(["run", BASELINE, "--set", "portfolio.generate.accounts=100", "--set",
                       "horizon_months=6", "-r", "2", "-w", "1", "-q", "--store", str(store)],
                      {"KAMSIM_STORE_LOCK_WAIT": str(10 * WAIT_S)})
        last = _check_interrupted(_interrupt_at(proc, "opening the store to write"),
                                  proc.returncode)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    said = re.fullmatch(r"interrupted; run (r[0-9a-f]{8}) was not recorded: (.*) is in use "
                        r"by another process; nothing else was written\.", last)
    assert said and said.group(2) == str(store), last
    assert _runs(store) == {"runs": {}, "in_tables": set()}


COMPARE = ["compare", str(ROOT / "scenarios" / "equal_treatment.yaml"),
           str(ROOT / "scenarios" / "tiered.yaml"), "--set", "portfolio.generate.accounts=200",
           "--set", "horizon_months=12", "-r", "4", "-w", "2", "-q"]


def test_ctrl_c_in_compare_store_write_records_no_part_of_the_group(tmp_path: Path) -> None:
    store = tmp_path / "runs.duckdb"
    proc = _start([*COMPARE, "--store", str(store)], {store_mod.PAUSE_ENV: "120"})
    last = _check_interrupted(_interrupt_at(proc, "paused in store write"), proc.returncode)
    assert last == "interrupted; nothing was written."
    assert not store.exists()  # (the write made it: no empty store is left behind)


def test_an_interrupted_write_to_a_store_that_existed_keeps_it(tmp_path: Path) -> None:
    """Only a file the write made is removed: an existing store (here with a run) stays
    as it was."""
    store = tmp_path / "runs.duckdb"
    subprocess.run([sys.executable, "-m", "kamsim", "run", BASELINE, *POOL, "--store",
                    str(store)], check=True, capture_output=True, cwd=ROOT)
    before = _runs(store)
    assert len(before["runs"]) == 1
    proc = _start([*COMPARE, "--store", str(store)], {store_mod.PAUSE_ENV: "120"})
    last = _check_interrupted(_interrupt_at(proc, "paused in store write"), proc.returncode)
    assert last == "interrupted; nothing was written."
    assert _runs(store) == before


def test_compare_records_its_group_in_one_transaction(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C between the group's two runs (here: raised as the second run's row is
    inserted) leaves none of them."""
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    small = ["portfolio.generate.accounts=100", "horizon_months=12", "replications=2"]
    results = [simulate(load_scenario(ROOT / "scenarios" / name, small), workers=1)
               for name in ("equal_treatment.yaml", "tiered.yaml")]
    store = tmp_path / "runs.duckdb"
    real, calls = _ctrl_c_at_second_run(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        store_mod.record_runs(results, store, group="gtest")
    assert not store.exists()  # (the write made the file: none is left behind)
    monkeypatch.setattr(store_mod, "_insert_frame", real)
    ids = store_mod.record_runs(results, store, group="gtest")
    assert _runs(store)["runs"] == dict.fromkeys(ids, "gtest")


def test_interrupt_after_commit_is_not_replaced_by_the_rollback_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C landing just after COMMIT took effect: nothing to roll back, and the user
    still gets the interrupt (exit 130), not 'cannot rollback - no transaction is active'."""
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    result = simulate(load_scenario(BASELINE, ["portfolio.generate.accounts=100",
                                               "horizon_months=12", "replications=2"]),
                      workers=1)
    real_connect = store_mod._connect

    class Late:
        def __init__(self, con: Any):
            self.con = con

        def execute(self, sql: str, *args: Any) -> Any:
            out = self.con.execute(sql, *args)
            if sql == "COMMIT":
                raise KeyboardInterrupt
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self.con, name)

    monkeypatch.setattr(store_mod, "_connect", lambda *a, **k: Late(real_connect(*a, **k)))
    store = tmp_path / "runs.duckdb"
    with pytest.raises(KeyboardInterrupt):
        store_mod.record_run(result, store, run_id="rdeadbeef")
    monkeypatch.setattr(store_mod, "_connect", real_connect)
    assert store_mod.recorded(store, ["rdeadbeef", "rnothere"]) == ["rdeadbeef"]


def test_ctrl_c_between_the_runs_of_a_compare_leaves_no_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the CLI: Ctrl-C while the second run of the group is written (the first
    already inserted) leaves neither, and says nothing was written."""
    from click.testing import CliRunner

    from kamsim.cli import commands  # noqa: F401  (registers compare)
    from kamsim.cli.main import cli

    store = tmp_path / "runs.duckdb"
    real, calls = _ctrl_c_at_second_run(monkeypatch)
    out = CliRunner().invoke(cli, [
        "compare", str(ROOT / "scenarios" / "equal_treatment.yaml"),
        str(ROOT / "scenarios" / "tiered.yaml"), "--set", "portfolio.generate.accounts=100",
        "--set", "horizon_months=12", "-r", "2", "-w", "1", "-q", "--store", str(store)])
    assert out.exit_code == 130, out.output
    assert out.output.strip().splitlines()[-1] == "interrupted; nothing was written."
    assert len(set(calls)) == 2  # (the first run's rows were inserted before the interrupt)
    assert _runs(store)["runs"] == {}


SWEEP = ["sweep", BASELINE, "--vary", "capacity.account_managers=2,8", "--set",
         "portfolio.generate.accounts=300", "--set", "horizon_months=24", "-r", "4", "-w", "2",
         "-q"]


def test_ctrl_c_in_a_sweep_ends_its_pool_and_writes_nothing(tmp_path: Path) -> None:
    """A sweep's points share the local pool: a Ctrl-C there ends every worker (the
    helper checks that none is left) and nothing is recorded."""
    store = tmp_path / "runs.duckdb"
    proc = _start([*SWEEP, "--store", str(store)])
    last = _check_interrupted(_interrupt_at(proc, "starting workers"), proc.returncode)
    assert last == "interrupted; nothing was written."
    assert not store.exists()


def test_ctrl_c_between_the_points_of_a_sweep_leaves_no_group(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The points are recorded in one transaction: a Ctrl-C as the second point is written
    leaves none of them, and says so."""
    from click.testing import CliRunner

    from kamsim.cli import commands  # noqa: F401  (registers sweep)
    from kamsim.cli.main import cli

    store = tmp_path / "runs.duckdb"
    real, calls = _ctrl_c_at_second_run(monkeypatch)
    out = CliRunner().invoke(cli, [
        "sweep", BASELINE, "--vary", "capacity.account_managers=2,8", "--set",
        "portfolio.generate.accounts=100", "--set", "horizon_months=12", "-r", "2", "-w", "1",
        "-q", "--store", str(store)])
    assert out.exit_code == 130, out.output
    assert out.output.strip().splitlines()[-1] == "interrupted; nothing was written."
    assert len(set(calls)) == 2
    assert _runs(store)["runs"] == {}


@pytest.mark.parametrize("attempt", range(3))
def test_ctrl_c_inside_a_duckdb_statement_is_the_users_interrupt(
        attempt: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that lands while DuckDB runs a statement (here: sent from another thread as
    the insert of the biggest table starts) is held until the statement is done, then rolls
    the write back: a KeyboardInterrupt, not "Query interrupted" or "Current transaction is
    aborted", and nothing in the store."""
    import threading

    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    result = simulate(load_scenario(BASELINE, ["portfolio.generate.accounts=2000",
                                               "horizon_months=24", "replications=1"]),
                      workers=1, record_events=True)
    store = tmp_path / "runs.duckdb"
    starting = threading.Event()
    real = store_mod._insert_frame

    def insert(con: Any, table: str, df: Any, run_id: str) -> None:
        if table == "events":
            starting.set()
        real(con, table, df, run_id)

    def ctrl_c() -> None:
        starting.wait(WAIT_S)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(store_mod, "_insert_frame", insert)
    thread = threading.Thread(target=ctrl_c, daemon=True)
    thread.start()
    with pytest.raises(KeyboardInterrupt):
        store_mod.record_run(result, store)
    thread.join()
    assert _runs(store)["runs"] == {}


def test_a_command_that_does_not_tell_its_writes_claims_nothing() -> None:
    """"nothing was written" is said only by the commands that name everything they write
    (run, compare); `kamsim plot` interrupted after writing a figure said it too."""
    import click
    from click.testing import CliRunner

    from kamsim.cli import main

    @click.command()
    @click.option("--tracked", is_flag=True)
    @main.handles_errors
    def writes_then_stops(tracked: bool) -> None:
        if tracked:
            main._WRITTEN.track()
        raise KeyboardInterrupt

    out = CliRunner().invoke(writes_then_stops, [])
    assert out.exit_code == 130 and out.output.strip() == "interrupted."
    out = CliRunner().invoke(writes_then_stops, ["--tracked"])
    assert out.exit_code == 130 and out.output.strip() == "interrupted; nothing was written."


def test_interrupted_lock_wait_is_told_without_asking_the_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compare's group interrupted in the lock wait: every run is named as not recorded,
    and the store (which the other process still holds) is not asked again."""
    from kamsim.cli import main

    def ask(*args: Any) -> Any:
        raise AssertionError("the store was asked")

    monkeypatch.setattr(store_mod, "recorded", ask)
    store = tmp_path / "runs.duckdb"
    written = main._Written()
    written.track()
    written.recording(store, ["r00000001", "r00000002"], "g00000001")
    assert written.told(store_mod.WaitInterrupted(store)) == (
        f"runs r00000001, r00000002 were not recorded: {store} is in use by another process; "
        "nothing else was written.")
