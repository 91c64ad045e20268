"""The crash test: ``kamsim run`` killed with SIGKILL part-way leaves the run store readable
with every earlier run intact and no trace of the killed run, and no results folder.

The kill is made to land at a known point with test hooks, not by guessing times:
``KAMSIM_TEST_PAUSE_IN_STORE_WRITE`` (honoured by kamsim.store.record_run: it sleeps inside
the open transaction, after every row is inserted and before COMMIT) and, for the results
folder, a wrapper around kamsim.io._write_frame installed in the child process only."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

import kamsim.store as store_mod
from kamsim.store import RESULT_TABLES

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
# `python -m kamsim.cli.main` runs a second copy of main.py whose `cli` group has no
# command modules registered; call the real module's main() instead.
KAMSIM = [sys.executable, "-c", "from kamsim.cli.main import main; main()"]
SMALL = ["--set", "portfolio.generate.accounts=100", "--set", "horizon_months=12", "-r", "2",
         "-w", "1", "-q"]
MEDIUM = ["--set", "portfolio.generate.accounts=400", "--set", "horizon_months=24", "-r", "4",
          "-w", "1", "-q"]
WAIT_S = 180  # upper bound on any wait for a child (a busy 2-core machine is slow)

pytestmark = pytest.mark.timeout(600)


def run_ok(*args: str) -> dict[str, Any]:
    """A complete ``kamsim run --json`` in a child process; its summary."""
    out = subprocess.run([*KAMSIM, "run", *args, "--json"], capture_output=True, text=True,
                         timeout=WAIT_S)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


class Child:
    """A child process whose stderr lines are collected by a thread, so waiting for a
    marker line never blocks past its timeout."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env={**os.environ, **(env or {})})
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, marker: str, timeout: float = WAIT_S) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if marker in line:
                return
        self.kill()
        pytest.fail(f"child never printed {marker!r} (exit {self.proc.returncode}); "
                    f"stderr: {self.seen[-20:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)


def stored_ids(store: Path) -> tuple[list[str], dict[str, set[str]]]:
    """The run ids in ``runs`` and those found in each results table."""
    with store_mod.open(store) as st:
        ids = list(st.runs()["id"])
        in_tables = {}
        for t in RESULT_TABLES:
            try:
                df = st.query(f"SELECT DISTINCT run_id FROM {t}")
            except Exception:  # a table no complete run had rows in
                continue
            in_tables[t] = set(df["run_id"])
    return ids, in_tables


def leftovers(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


@pytest.fixture(scope="module")
def killed_in_store_write(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("kill_store")
    store, out = tmp / "store.duckdb", tmp / "results"
    earlier = run_ok(BASELINE, *SMALL, "--store", str(store))["run_id"]
    child = Child([*KAMSIM, "run", BASELINE, *MEDIUM, "--store", str(store), "--out", str(out)],
                  env={store_mod.PAUSE_ENV: "120"})
    child.wait_for("paused in store write")
    child.kill()
    return {"store": store, "out": out, "earlier": earlier, "returncode": child.proc.returncode}


def test_kill_in_store_write_keeps_store_readable(killed_in_store_write: dict[str, Any]
                                                  ) -> None:
    k = killed_in_store_write
    assert k["returncode"] == -signal.SIGKILL
    ids, in_tables = stored_ids(k["store"])
    assert ids == [k["earlier"]]  # the earlier run is there, the killed one is not
    assert in_tables and all(found <= {k["earlier"]} for found in in_tables.values())
    with store_mod.open(k["store"]) as st:
        rec = st.get(k["earlier"])
        assert rec.summary["replications"] == 2 and len(rec.tables()["accounts"]) > 0


def test_store_is_writable_after_the_kill(killed_in_store_write: dict[str, Any],
                                          tmp_path: Path) -> None:
    k = killed_in_store_write
    store = tmp_path / "copy.duckdb"  # the other tests read the store as the kill left it
    store.write_bytes(k["store"].read_bytes())
    wal = k["store"].with_name(k["store"].name + ".wal")
    if wal.exists():
        store.with_name(store.name + ".wal").write_bytes(wal.read_bytes())
    later = run_ok(BASELINE, *SMALL, "--store", str(store))["run_id"]
    ids, in_tables = stored_ids(store)
    assert sorted(ids) == sorted([k["earlier"], later])
    assert in_tables["accounts"] == {k["earlier"], later}


def test_kill_in_store_write_leaves_no_partial_folder(killed_in_store_write: dict[str, Any]
                                                      ) -> None:
    out = killed_in_store_write["out"]
    assert not leftovers(out), leftovers(out)
    if out.exists():  # written completely before the store write began (see next test)
        assert (out / "summary.json").is_file() and (out / "accounts.parquet").is_file()


def test_kill_in_store_write_leaves_no_results_folder(killed_in_store_write: dict[str, Any]
                                                      ) -> None:
    assert not killed_in_store_write["out"].exists()


def test_kill_mid_simulation(tmp_path: Path) -> None:
    store, out = tmp_path / "store.duckdb", tmp_path / "results"
    earlier = run_ok(BASELINE, *SMALL, "--store", str(store))["run_id"]
    before = store.read_bytes()
    # The full baseline (2000 accounts, 60 months, 20 replications) takes several seconds;
    # a pause in the store write keeps the child alive even on a fast machine, so the kill
    # below can only land before or in the store write, never after it.
    child = Child([*KAMSIM, "run", BASELINE, "-w", "1", "-q", "--store", str(store),
                   "--out", str(out)], env={store_mod.PAUSE_ENV: "120"})
    try:
        child.proc.wait(timeout=3.0)
    except subprocess.TimeoutExpired:
        pass
    assert child.proc.poll() is None, f"child ended early: {child.seen}"
    child.kill()
    assert not out.exists() or (out / "summary.json").is_file()
    assert not leftovers(out), leftovers(out)
    if not out.exists():
        assert store.read_bytes() == before  # killed before any writing: the store untouched
    ids, _ = stored_ids(store)
    assert ids == [earlier]


_SLOW_WRITE = textwrap.dedent("""
    import sys, time
    import kamsim.io as io
    real, calls = io._write_frame, []
    def slow(df, path):
        calls.append(path)
        if len(calls) == 3:
            print("kamsim-test: paused in write_results", file=sys.stderr, flush=True)
            time.sleep(120)
        real(df, path)
    io._write_frame = slow
    from kamsim.cli.main import main
    main()
""")


def test_kill_in_results_write(tmp_path: Path) -> None:
    store, out = tmp_path / "store.duckdb", tmp_path / "results"
    earlier = run_ok(BASELINE, *SMALL, "--store", str(store))["run_id"]
    child = Child([sys.executable, "-c", _SLOW_WRITE, "run", BASELINE, *SMALL,
                   "--store", str(store), "--out", str(out)])
    child.wait_for("paused in write_results")
    child.kill()
    assert not out.exists()  # no results folder, complete or not
    ids, _ = stored_ids(store)
    # the run is recorded before its folder is written, so it is complete in the store
    assert len(ids) == 2 and ids[0] == earlier
    # SIGKILL gives kamsim.io no chance to remove its temporary folder: the next write does
    run_ok(BASELINE, *SMALL, "--store", str(store), "--out", str(out))
    assert (out / "summary.json").is_file()
    assert not leftovers(out), leftovers(out)


def test_store_file_is_a_duckdb_database_after_kill(killed_in_store_write: dict[str, Any]
                                                    ) -> None:
    con = duckdb.connect(str(killed_in_store_write["store"]), read_only=True)
    try:
        assert con.execute("SELECT max(version) FROM kamsim_schema").fetchone()[0] == 1
    finally:
        con.close()
