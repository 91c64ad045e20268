"""The run store (kamsim.store) and ``kamsim runs``: record, list, show, export, query,
delete; and the ways a store can be wrong (unknown id, missing file, corrupt file, locked)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import kamsim.store as store_mod
from kamsim.errors import RunError
from kamsim.store import RESULT_TABLES, record_run, scenario_hash

ROOT = Path(__file__).resolve().parents[1]
# `python -m kamsim.cli.main` runs main.py as __main__, a second copy of the module whose
# `cli` group the command modules never register on; call main() of the real module.
KAMSIM = [sys.executable, "-c", "from kamsim.cli.main import main; main()"]
SMALL = ["portfolio.generate.accounts=150", "horizon_months=12", "replications=3"]

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def result() -> Any:
    from kamsim.experiment import simulate
    from kamsim.spec.load import load_scenario

    return simulate(load_scenario(ROOT / "scenarios/baseline.yaml", SMALL), workers=1)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "runs.duckdb"


def _cli(*args: str) -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers `runs`)
    from kamsim.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def _same_frames(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal as tables: same columns and values (string/object and int widths may differ)."""
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    for col in want.columns:
        g, w = got[col].to_numpy(), want[col].to_numpy()
        if w.dtype.kind in "if" or g.dtype.kind in "if":
            np.testing.assert_allclose(g.astype(float), w.astype(float), rtol=1e-12,
                                       err_msg=col)
        else:
            assert [str(x) for x in g] == [str(x) for x in w], col


def _row_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
                for t in sorted(names)}
    finally:
        con.close()


# ------------------------------------------------------------------ library


def test_record_then_list_get_and_tables_round_trip(result: Any, store_path: Path) -> None:
    rid = record_run(result, store_path, label="first")
    assert re.fullmatch(r"r[0-9a-f]{8}", rid)
    with store_mod.open(store_path) as st:
        runs = st.runs()
        assert list(runs["id"]) == [rid]
        row = runs.iloc[0]
        assert row["scenario"] == result.scenario == "baseline"
        assert row["hash"] == scenario_hash(result.resolved)
        assert row["seed"] == result.seed and row["replications"] == result.replications
        assert row["profit"] == pytest.approx(result.summary()["profit"]["mean"], rel=1e-12)
        rec = st.get(rid)
        assert rec.meta["label"] == "first"
        assert rec.meta["table_rows"]["accounts"] == len(result.accounts())
        assert rec.summary == json.loads(json.dumps(result.summary()))
        assert rec.resolved == json.loads(json.dumps(result.resolved, default=str))
        tables = rec.tables()
    frames = result.to_frames()
    assert set(tables) == set(frames) == set(RESULT_TABLES)
    # a record read after its store was closed loads its tables and lets the file go
    assert len(rec.tables()["accounts"]) == len(frames["accounts"])
    assert record_run(result, store_path) != rid
    for name, df in frames.items():
        _same_frames(tables[name], df)


def test_hash_is_the_resolved_scenario_not_the_seed(result: Any) -> None:
    resolved = json.loads(json.dumps(result.resolved, default=str))
    assert scenario_hash(resolved) == scenario_hash(dict(reversed(list(resolved.items()))))
    resolved["scenario"]["horizon_months"] = 13
    assert scenario_hash(resolved) != scenario_hash(result.resolved)


def test_group_and_prefix(result: Any, store_path: Path) -> None:
    a = record_run(result, store_path, group="g1")
    b = record_run(result, store_path, group="g1")
    c = record_run(result, store_path)
    assert len({a, b, c}) == 3
    with store_mod.open(store_path) as st:
        assert sorted(r.run_id for r in st.group("g1")) == sorted([a, b])
        with pytest.raises(RunError, match="no group 'nope'"):
            st.group("nope")
        assert st.get(a[:7]).run_id == a or st.get(a).run_id == a
        with pytest.raises(RunError, match="ambiguous"):
            st.get("r")


def test_runs_list_in_the_order_they_were_recorded(result: Any, store_path: Path) -> None:
    # several runs within one second (a script, a fast study): ids are random, so only the
    # recording time can order them, and it must tell them apart
    ids = [record_run(result, store_path) for _ in range(6)]
    with store_mod.open(store_path) as st:
        assert list(st.runs()["id"]) == ids


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_reads_back_equal(result: Any, store_path: Path, tmp_path: Path,
                                 fmt: str) -> None:
    rid = record_run(result, store_path)
    record_run(result, store_path)  # a second run whose rows must not leak into the export
    out = tmp_path / "export"
    out.mkdir()  # an earlier results folder (it has the resolved scenario), with a stray file
    (out / "scenario.resolved.json").write_text("{}")
    (out / "stale.txt").write_text("replaced as a whole")
    with store_mod.open(store_path) as st:
        st.export(rid, fmt, out)
        tables = st.get(rid).tables()
    assert not (out / "stale.txt").exists()
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        json.dumps(result.summary()))
    assert json.loads((out / "run.json").read_text())["run_id"] == rid
    for name, df in tables.items():
        path = out / f"{name}.{fmt}"
        back = (duckdb.sql(f"SELECT * FROM '{path}'").df() if fmt == "parquet"
                else pd.read_csv(path, keep_default_na=False))
        _same_frames(back, df)
    assert not list(tmp_path.glob(".export.partial-*"))


def test_export_folder_gets_the_umask_mode(result: Any, store_path: Path,
                                           tmp_path: Path) -> None:
    # the folder was mkdtemp's private 0700 whatever the umask
    rid = record_run(result, store_path)
    old = os.umask(0o022)
    try:
        with store_mod.open(store_path) as st:
            st.export(rid, "csv", tmp_path / "export")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "export").stat().st_mode) == 0o755


def test_export_to_missing_folder_is_a_run_error(result: Any, store_path: Path,
                                                  tmp_path: Path) -> None:
    rid = record_run(result, store_path)
    with store_mod.open(store_path) as st, pytest.raises(RunError, match="does not exist"):
        st.export(rid, "csv", tmp_path / "no" / "such")


def test_query_reads_and_refuses_writes(result: Any, store_path: Path) -> None:
    rid = record_run(result, store_path)
    before = _row_counts(store_path)
    with store_mod.open(store_path) as st:
        df = st.query("SELECT run_id, count(*) AS n FROM accounts GROUP BY run_id")
        assert list(df["run_id"]) == [rid] and df["n"][0] == len(result.accounts())
        for sql in ("INSERT INTO runs (run_id) VALUES ('rx')", "DELETE FROM accounts",
                    "DROP TABLE runs", "CREATE TABLE t (x INTEGER)"):
            with pytest.raises(RunError, match="read-only"):
                st.query(sql)
        with pytest.raises(RunError, match="query failed"):
            st.query("SELEC nonsense")
        for sql in ("", "  ", ";", " ; ; ", "-- a comment"):  # was an AttributeError
            with pytest.raises(RunError, match="no SQL statement"):
                st.query(sql)
    with store_mod.open(store_path, read_only=False) as st:  # a writable store still refuses
        with pytest.raises(RunError, match="read-only"):
            st.query("DELETE FROM runs")
        assert len(st.runs()) == 1  # and reopens itself afterwards
    assert _row_counts(store_path) == before


def test_query_leaves_other_open_stores_of_the_file_alone(result: Any, store_path: Path,
                                                          tmp_path: Path) -> None:
    """A query's file lock-down holds for its own connection only: another Store of the same
    file open in this process (DuckDB shares one database between them) still exports, and
    the query still may not write a file."""
    rid = record_run(result, store_path)
    with store_mod.open(store_path) as first, store_mod.open(store_path) as second:
        assert len(second.runs()) == 1  # (its connection is open during the query)
        assert len(first.query("SELECT * FROM runs")) == 1
        second.export(rid, "csv", tmp_path / "out")
        with pytest.raises(RunError, match="query refused"):
            first.query(f"COPY runs TO '{tmp_path / 'x.csv'}'")
        assert len(second.query("SELECT * FROM runs")) == 1  # the other way round too
        first.export(rid, "parquet", tmp_path / "out2")
    assert not (tmp_path / "x.csv").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [f"{t}.csv" for t in json.loads((tmp_path / "out/run.json").read_text())["table_rows"]]
        + ["run.json", "scenario.resolved.json", "summary.json"])


def test_query_while_the_store_is_open_for_writing_elsewhere(result: Any,
                                                             store_path: Path) -> None:
    record_run(result, store_path)
    with store_mod.open(store_path, read_only=False) as writer, \
            store_mod.open(store_path, read_only=False) as other:
        with pytest.raises(RunError, match="open for writing elsewhere in this process"):
            other.query("SELECT * FROM runs")
        assert len(writer.runs()) == 1


def test_delete_removes_every_row_of_one_run(result: Any, store_path: Path) -> None:
    keep = record_run(result, store_path)
    gone = record_run(result, store_path)
    with store_mod.open(store_path) as st, pytest.raises(RunError, match="read-only"):
        st.delete(gone)
    with store_mod.open(store_path, read_only=False) as st:
        assert st.delete(gone) == gone
        assert list(st.runs()["id"]) == [keep]
    con = duckdb.connect(str(store_path), read_only=True)
    for t in RESULT_TABLES:
        ids = {r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM {t}").fetchall()}
        assert ids <= {keep}, t
    con.close()


def test_failed_write_leaves_store_unchanged(result: Any, store_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    record_run(result, store_path)
    before = _row_counts(store_path)
    real = store_mod._insert_frame
    calls = []

    def failing(con: Any, table: str, df: Any, run_id: str) -> None:
        calls.append(table)
        if len(calls) == 3:
            raise OSError("disk full (simulated)")
        real(con, table, df, run_id)

    monkeypatch.setattr(store_mod, "_insert_frame", failing)
    with pytest.raises(OSError, match="simulated"):
        record_run(result, store_path)
    assert len(calls) == 3
    assert _row_counts(store_path) == before


@dataclass
class FakeResult:
    """Just what record_run reads from a Result, for schema edge cases."""

    frames: dict[str, pd.DataFrame]
    scenario: str = "fake"
    seed: int = 1
    replications: int = 1
    elapsed: float = 0.0
    resolved: dict[str, Any] = field(default_factory=lambda: {"scenario": {"name": "fake"}})

    def summary(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "profit": {"mean": 1.0}, "retention": {"mean": 0.5}}

    def to_frames(self) -> dict[str, pd.DataFrame]:
        return self.frames


def test_empty_tables_and_new_columns(store_path: Path) -> None:
    empty_events = pd.DataFrame(columns=["replication", "account_id", "kind"])
    first = FakeResult({"events": empty_events, "churn": pd.DataFrame({"accounts": [1.0]})})
    r1 = record_run(first, store_path)
    # a later model adds a column and finally has events
    second = FakeResult({"events": pd.DataFrame({"replication": [0], "account_id": ["A1"],
                                                 "kind": ["churn"]}),
                         "churn": pd.DataFrame({"accounts": [2.0], "cause": ["price"]})})
    r2 = record_run(second, store_path)
    with store_mod.open(store_path) as st:
        t1, t2 = st.get(r1).tables(), st.get(r2).tables()
    assert len(t1["events"]) == 0 and list(t2["events"]["account_id"]) == ["A1"]
    assert list(t2["churn"]["cause"]) == ["price"]
    assert t1["churn"]["cause"].isna().all()


# ------------------------------------------------------------------ broken stores


def test_unknown_id(result: Any, store_path: Path) -> None:
    record_run(result, store_path)
    with store_mod.open(store_path) as st, pytest.raises(RunError) as err:
        st.get("rdeadbeef")
    assert str(err.value) == (f"no run 'rdeadbeef' in store {store_path} "
                              "(kamsim runs list shows the runs)")


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none.duckdb"
    for read_only in (True, False):
        with pytest.raises(RunError, match=re.escape(str(path))):
            store_mod.open(path, read_only=read_only)
    assert not path.exists()


def test_corrupt_store(tmp_path: Path, result: Any) -> None:
    path = tmp_path / "bad.duckdb"
    path.write_bytes(b"\x00garbage, not a database\xff" * 400)
    with pytest.raises(RunError, match=f"not a kamsim run store: {re.escape(str(path))}"):
        store_mod.open(path)
    with pytest.raises(RunError, match="not a kamsim run store"):
        record_run(result, path)
    assert path.read_bytes().startswith(b"\x00garbage")


def test_empty_file_is_not_a_store(tmp_path: Path, result: Any) -> None:
    """DuckDB refuses an empty file ("not a valid DuckDB database file"), so kamsim says of
    it what it says of any other file that is not a store, and leaves it alone."""
    path = tmp_path / "empty.duckdb"
    path.touch()
    line = f"not a kamsim run store: {path} (the file is not a DuckDB database)"
    for call in (lambda: store_mod.open(path), lambda: record_run(result, path),
                 lambda: store_mod.check_target(path)):
        with pytest.raises(RunError) as err:
            call()
        assert str(err.value) == line
    assert path.read_bytes() == b""


def test_duckdb_file_that_is_not_a_store(tmp_path: Path, result: Any) -> None:
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE mine (x INTEGER)")
    con.close()
    with pytest.raises(RunError, match="not a kamsim run store"):
        store_mod.open(path)
    with pytest.raises(RunError, match="not a kamsim run store"):
        record_run(result, path)


def test_newer_schema_is_refused(tmp_path: Path, result: Any) -> None:
    path = tmp_path / "s.duckdb"
    record_run(result, path)
    con = duckdb.connect(str(path))
    con.execute("UPDATE kamsim_schema SET version = version + 1")
    con.close()
    with pytest.raises(RunError, match="schema version 2"):
        store_mod.open(path)


def _hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_locked_store_waits_then_fails_clearly(result: Any, store_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    record_run(result, store_path)
    monkeypatch.setattr(store_mod, "LOCK_WAIT_S", 0.5)
    holder = _hold_lock(store_path, 60)
    try:
        with pytest.raises(RunError, match="in use by another process"):
            record_run(result, store_path)
        with pytest.raises(RunError, match="in use by another process"):
            store_mod.open(store_path)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with store_mod.open(store_path) as st:
        assert len(st.runs()) == 1


def test_a_path_saying_lock_is_not_a_locked_store(result: Any, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """"In use" is told by DuckDB's lock message, not by the word "lock" anywhere in it: the
    message quotes the path, and a broken store under /tmp/blocks/ was waited on and called
    "in use by another process"."""
    folder = tmp_path / "blocks"
    folder.mkdir()
    broken = folder / "clock.duckdb"  # DuckDB's magic bytes, then too short to read
    broken.write_bytes(b"\0" * 8 + b"DUCK" + b"\0" * 100)
    for opening in (lambda: store_mod.open(broken), lambda: record_run(result, broken)):
        with pytest.raises(RunError, match="cannot open run store") as err:
            opening()
        assert not isinstance(err.value, store_mod.StoreInUse)
    held = folder / "lock.duckdb"  # and a real lock on such a path is still one
    record_run(result, held)
    monkeypatch.setattr(store_mod, "LOCK_WAIT_S", 0.2)
    holder = _hold_lock(held, 60)
    try:
        with pytest.raises(store_mod.StoreInUse, match="in use by another process"):
            store_mod.open(held)
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_locked_store_passes_the_early_check(result: Any, store_path: Path) -> None:
    """A store another process holds is not a reason to refuse a run before simulating it:
    the write waits for it."""
    record_run(result, store_path)
    holder = _hold_lock(store_path, 60)
    try:
        assert store_mod.check_target(store_path) == store_path
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_ctrl_c_while_waiting_for_a_locked_store_is_an_interrupt(
        result: Any, store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that comes while the write waits for a locked store is the user's
    interrupt (exit 130), even when the wait then ends in "in use by another process"."""
    import signal

    def locked(path: Path, *args: Any, **kwargs: Any) -> Any:
        signal.raise_signal(signal.SIGINT)  # held by the store write's handler
        raise store_mod.StoreInUse(f"run store {path} is in use by another process")

    monkeypatch.setattr(store_mod, "_connect", locked)
    with pytest.raises(KeyboardInterrupt):
        record_run(result, store_path)


def test_locked_store_is_retried(result: Any, store_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    record_run(result, store_path)
    monkeypatch.setattr(store_mod, "LOCK_WAIT_S", 30)
    holder = _hold_lock(store_path, 1.0)
    try:
        record_run(result, store_path)  # waits for the holder, then writes
    finally:
        holder.wait(timeout=30)
    with store_mod.open(store_path) as st:
        assert len(st.runs()) == 2


def test_reachable_from_import_kamsim_and_light() -> None:
    code = ("import sys, kamsim.store, kamsim.cli.runs_cmd; "
            "print(sorted({'duckdb', 'pandas'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr  # heavy modules wait until used
    code = "import kamsim; print(kamsim.store.open.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "kamsim.store", out.stderr


# ------------------------------------------------------------------ CLI


def test_cli_list_show_export_query_delete(result: Any, store_path: Path,
                                           tmp_path: Path) -> None:
    rid = record_run(result, store_path, label="cli")
    s = ["--store", str(store_path)]
    out = _cli("runs", "list", *s)
    assert out.exit_code == 0 and rid in out.output and "baseline" in out.output
    out = _cli("runs", "show", rid[:6], *s)
    assert out.exit_code == 0, out.output
    assert rid in out.output and "all accounts" in out.output and "retention" in out.output
    for tier in result.summary()["by_tier"]:
        assert tier in out.output
    out = _cli("runs", "export", rid, "--format", "csv", "--out", str(tmp_path / "e"), *s)
    assert out.exit_code == 0 and (tmp_path / "e" / "accounts.csv").is_file()
    out = _cli("runs", "query", "SELECT run_id, label FROM runs", "--json", *s)
    assert out.exit_code == 0 and json.loads(out.output) == [{"run_id": rid, "label": "cli"}]
    out = _cli("runs", "query", "SELECT count(*) AS n FROM timeseries", *s)
    assert out.exit_code == 0 and str(len(result.timeseries())) in out.output
    out = _cli("runs", "query", "DELETE FROM runs", *s)
    assert out.exit_code == 2 and "read-only" in out.output
    out = _cli("runs", "delete", rid, *s)
    assert out.exit_code == 0 and f"deleted run {rid}" in out.output
    out = _cli("runs", "list", *s)
    assert out.exit_code == 0 and "no runs" in out.output


@pytest.mark.parametrize("case", ["unknown", "missing", "corrupt"])
def test_cli_errors_are_one_line_exit_2(case: str, result: Any, store_path: Path) -> None:
    if case == "unknown":
        record_run(result, store_path)
    elif case == "corrupt":
        store_path.write_bytes(b"definitely not duckdb" * 300)
    for args in (["runs", "show", "rzzzz"], ["runs", "list"], ["runs", "delete", "rzzzz"],
                 ["runs", "export", "rzzzz", "--out", str(store_path.parent / "x")],
                 ["runs", "query", "SELECT 1"]):
        if case == "unknown" and args[1] in ("list", "query"):
            continue
        out = _cli(*args, "--store", str(store_path))
        assert out.exit_code == 2, (args, out.output)
        lines = out.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), out.output
        assert str(store_path) in lines[0] and "Traceback" not in out.output
    assert (case == "missing") == (not store_path.exists())
    assert not (store_path.parent / "x").exists()


def test_cli_subprocess_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"garbage" * 500)
    out = subprocess.run([*KAMSIM, "runs", "list", "--store", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"error: not a kamsim run store: {bad} "
                                  "(the file is not a DuckDB database)")
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.parametrize("case", ["no folder", "folder as store", "csv", "parquet",
                                  "other duckdb", "cannot create"])
@pytest.mark.parametrize("command", ["run", "compare"])
def test_bad_store_is_refused_before_the_simulation(case: str, command: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A store a run cannot be recorded in is one line and exit 2 at once, not after the
    whole simulation; a .csv/.parquet/.json file is never taken for a store (DuckDB would
    open it as an empty in-memory database and the run would be lost)."""
    import kamsim.compare
    import kamsim.experiment

    def no_simulation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("simulated before checking the store")

    monkeypatch.setattr(kamsim.experiment, "simulate", no_simulation)
    monkeypatch.setattr(kamsim.compare, "compare", no_simulation)
    env: dict[str, str] = {}
    store: Path | None = None
    if case == "no folder":
        store = tmp_path / "nodir" / "s.duckdb"
    elif case == "folder as store":
        monkeypatch.setenv("KAMSIM_STORE", str(tmp_path))
        env = {"KAMSIM_STORE": str(tmp_path)}
    elif case in ("csv", "parquet"):
        store = tmp_path / f"existing.{case}"
        store.write_text("a,b\n1,2\n") if case == "csv" else \
            duckdb.sql(f"COPY (SELECT 1 AS a) TO '{store}' (FORMAT PARQUET)")
    elif case == "other duckdb":
        store = tmp_path / "other.duckdb"
        con = duckdb.connect(str(store))
        con.execute("CREATE TABLE t (x INTEGER)")
        con.close()
    else:
        if not Path("/proc").is_dir():
            pytest.skip("needs /proc (a folder no file can be created in, even by root)")
        store = Path("/proc") / "kamsim-test.duckdb"
    before = store.read_bytes() if store is not None and store.is_file() else None
    out_dir = tmp_path / "results"
    scen = ["scenarios/baseline.yaml"] if command == "run" else \
        ["scenarios/equal_treatment.yaml", "scenarios/tiered.yaml"]
    args = [command, *(str(ROOT / s) for s in scen), "-q"]
    if command == "run":
        args += ["--out", str(out_dir)]
    if store is not None:
        args += ["--store", str(store)]
    out = _cli(*args)
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.output
    assert str(store if store is not None else env["KAMSIM_STORE"]) in lines[0]
    if case in ("csv", "parquet"):
        assert lines[0].endswith("(the file is not a DuckDB database)")
        assert store is not None and store.read_bytes() == before  # untouched
        out = _cli("runs", "list", "--store", str(store))  # and said as plainly when read
        assert out.exit_code == 2 and out.output.strip() == lines[0], out.output
    assert not out_dir.exists()
    assert not list(tmp_path.glob(".*check*"))


def test_query_cannot_touch_files(result: Any, store_path: Path, tmp_path: Path) -> None:
    """`runs query` is read-only for every file, not only for the store: no COPY TO, EXPORT,
    ATTACH, reading other files or switching that back on."""
    rid = record_run(result, store_path)
    other = tmp_path / "other.csv"
    other.write_text("a\n1\n")
    with store_mod.open(store_path) as st:
        for sql in (f"COPY runs TO '{tmp_path / 'x.csv'}'",
                    f"EXPORT DATABASE '{tmp_path / 'exported'}'",
                    f"ATTACH '{tmp_path / 'new.duckdb'}' AS other",
                    f"SELECT * FROM read_csv('{other}')",
                    "SET enable_external_access = true"):
            with pytest.raises(RunError, match="query refused"):
                st.query(sql)
        # the same Store still exports (with file access) after a query
        st.export(rid, "csv", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.csv", "out", "runs.duckdb"]
    out = _cli("runs", "query", f"COPY runs TO '{tmp_path / 'y.csv'}'", "--store",
               str(store_path))
    assert out.exit_code == 2 and out.output.startswith("error: query refused"), out.output
    assert not (tmp_path / "y.csv").exists()


def test_cli_tables_cut_no_label_money_or_query_cell(result: Any, store_path: Path) -> None:
    """Printed to a pipe (140 characters), ``runs list`` cut a sweep's label to
    "capacity.a..." and its profit to "339,517,3...", and ``runs query 'select * from
    accounts'`` every column to 2 or 3 characters: now the columns that do not fit go to
    a further table (each led by the row's id), and only a hash is shortened."""
    label = "capacity.account_managers=20,capacity.executives=7"
    rid = record_run(result, store_path, label=label)
    s = ["--store", str(store_path)]
    out = _cli("runs", "list", *s)
    assert out.exit_code == 0, out.output
    profit = f"{result.summary()['profit']['mean']:,.0f}"
    assert label in out.output and profit in out.output
    assert max(map(len, out.output.splitlines())) <= 140
    out = _cli("runs", "query", "SELECT * FROM accounts", *s)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert max(map(len, lines)) <= 140 and "…" not in out.output
    accounts = result.accounts()
    for name in ["run_id", *accounts.columns]:  # every header whole
        assert re.search(rf"┃ +{name} +┃", out.output), name
    first = accounts.iloc[0]
    assert re.search(rf"│ {rid} │ +0 │ {first['account_id']} +│", out.output)
    assert lines[-1].startswith(f"{len(accounts)} rows, {1 + len(accounts.columns)} columns in ")


def test_cli_table_titles_are_whole_lines(result: Any, store_path: Path) -> None:
    """A sweep's labels put `runs list`'s last columns in a further table narrower than its
    title, which was wrapped to that table's width: "runs in PATH (part " and then "2 of 2)"
    on the next line. Each title is now a line of its own, whole."""
    label = "capacity.account_managers=20,capacity.executives=7"
    record_run(result, store_path, label=label)
    out = _cli("runs", "list", "--store", str(store_path))
    assert out.exit_code == 0, out.output
    titles = [ln.rstrip() for ln in out.output.splitlines() if not ln.startswith(tuple("┏┃┡│└"))]
    assert titles == [f"runs in {store_path} (part {k} of 2)" for k in (1, 2)]
