"""``kamsim run`` end to end (click's CliRunner): the summary table, ``--json``, the
``--out`` results folder, ``--set`` overrides, bad scenarios, unwritable output folders,
the run store, and reproducibility."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
SMALL = ["--set", "portfolio.generate.accounts=150", "--set", "horizon_months=12",
         "-r", "3", "-w", "1", "-q"]
HEADLINES = ("retention", "profit", "revenue", "cost_to_serve", "clv")
TABLES = ("timeseries", "accounts", "events", "stage_mix", "stage_flows", "churn",
          "utilisation")

pytestmark = pytest.mark.timeout(300)


def kamsim(*args: str) -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers the command groups)
    from kamsim.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def n_runs(store: Path) -> int:
    if not store.exists():
        return 0
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.duckdb"


@pytest.fixture(scope="module")
def out_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], Path]:
    """One run with --out and --json: (results folder, printed summary, store)."""
    tmp = tmp_path_factory.mktemp("out_run")
    out, store = tmp / "results", tmp / "store.duckdb"
    res = kamsim("run", BASELINE, *SMALL, "--out", str(out), "--json", "--store", str(store))
    assert res.exit_code == 0, res.output
    return out, json.loads(res.stdout), store


def test_summary_table_is_printed(store: Path) -> None:
    res = kamsim("run", BASELINE, *SMALL, "--store", str(store))
    assert res.exit_code == 0, res.output
    assert "baseline: 3 replications, 12 months" in res.output
    for col in ("tier", "retention", "revenue", "profit", "cost to serve"):
        assert col in res.output
    for tier in ("key", "important", "general", "all accounts"):
        assert tier in res.output
    run_id = re.search(r"run (r[0-9a-f]{8}) recorded", res.output)
    assert run_id, res.output
    assert n_runs(store) == 1


def test_json_summary_keys(out_run: tuple[Path, dict[str, Any], Path]) -> None:
    _, summary, _ = out_run
    for name in HEADLINES:
        s = summary[name]
        assert set(s) >= {"mean", "ci_low", "ci_high"}
        assert s["ci_low"] <= s["mean"] <= s["ci_high"]
    assert 0.0 <= summary["retention"]["mean"] <= 1.0
    assert summary["replications"] == 3 and summary["horizon_months"] == 12
    assert set(summary["by_tier"]) == {"key", "important", "general"}
    for tier in summary["by_tier"].values():
        for name in HEADLINES:
            assert set(tier[name]) >= {"mean", "ci_low", "ci_high"}
    # money adds up over tiers: by_tier groups every account by its starting tier
    for name in ("revenue", "profit", "cost_to_serve"):
        total = sum(t[name]["mean"] for t in summary["by_tier"].values())
        assert total == pytest.approx(summary[name]["mean"], rel=1e-9)
    assert re.fullmatch(r"r[0-9a-f]{8}", summary["run_id"])


def test_out_folder_is_complete_and_consistent(
        out_run: tuple[Path, dict[str, Any], Path]) -> None:
    out, summary, store = out_run
    for name in TABLES:
        assert (out / f"{name}.parquet").is_file() and (out / f"{name}.csv").is_file(), name
    written = json.loads((out / "summary.json").read_text())
    assert written == {k: v for k, v in summary.items() if k != "run_id"}
    assert not list(out.parent.glob(".results.partial-*"))

    acc_pq = duckdb.sql(f"SELECT * FROM '{out / 'accounts.parquet'}'").df()
    acc_csv = pd.read_csv(out / "accounts.csv", keep_default_na=False)
    assert len(acc_pq) == len(acc_csv) and list(acc_pq.columns) == list(acc_csv.columns)
    np.testing.assert_allclose(acc_csv["profit"], acc_pq["profit"], rtol=1e-12)
    assert sorted(acc_pq["replication"].unique()) == [0, 1, 2]

    # the summary is the mean over replications of the per-account totals
    per_rep = acc_pq.groupby("replication")["profit"].sum()
    assert per_rep.mean() == pytest.approx(summary["profit"]["mean"], rel=1e-9)
    starting = acc_pq[acc_pq["starting"]]
    retention = starting.groupby("replication")["active"].mean().mean()
    assert retention == pytest.approx(summary["retention"]["mean"], rel=1e-9)
    by_tier = acc_pq.groupby(["initial_tier", "replication"])["revenue"].sum()
    for tier, s in summary["by_tier"].items():
        assert by_tier[tier].mean() == pytest.approx(s["revenue"]["mean"], rel=1e-9)
    # the time series sums to the same money
    ts = duckdb.sql(f"SELECT replication, sum(revenue) AS revenue FROM "
                    f"'{out / 'timeseries.parquet'}' GROUP BY replication").df()
    assert ts["revenue"].mean() == pytest.approx(summary["revenue"]["mean"], rel=1e-9)
    ts_csv = pd.read_csv(out / "timeseries.csv")
    assert ts_csv.groupby("replication")["revenue"].sum().mean() == pytest.approx(
        summary["revenue"]["mean"], rel=1e-9)

    # the run in the store holds the same numbers
    con = duckdb.connect(str(store), read_only=True)
    stored = json.loads(con.execute("SELECT summary FROM runs WHERE run_id = ?",
                                    [summary["run_id"]]).fetchone()[0])
    con.close()
    assert stored == written


def test_set_overrides_are_applied_and_recorded(
        out_run: tuple[Path, dict[str, Any], Path]) -> None:
    out, summary, _ = out_run
    resolved = json.loads((out / "scenario.resolved.json").read_text())
    assert resolved["overrides"] == ["portfolio.generate.accounts=150", "horizon_months=12"]
    assert resolved["scenario"]["horizon_months"] == 12
    assert resolved["scenario"]["portfolio"]["generate"]["accounts"] == 150
    accounts = pd.read_csv(out / "accounts.csv", keep_default_na=False)
    assert accounts[accounts["starting"]].groupby("replication").size().eq(150).all()
    assert summary["horizon_months"] == 12


def _broken_copy(tmp_path: Path) -> Path:
    text = Path(BASELINE).read_text()
    text = text.replace("../rules/", f"{ROOT / 'rules'}/")  # the rule files still resolve
    text = text.replace("horizon_months: 60", "horizn_months: 60")
    text = text.replace("replications: 20", "replications: twenty")
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    return path


def test_scenario_with_errors_exit_2_nothing_written(tmp_path: Path, store: Path) -> None:
    kamsim("run", BASELINE, *SMALL, "--store", str(store))
    assert n_runs(store) == 1
    broken, out = _broken_copy(tmp_path), tmp_path / "out"
    res = kamsim("run", str(broken), *SMALL, "--out", str(out), "--store", str(store))
    assert res.exit_code == 2
    located = [ln for ln in res.stderr.splitlines()
               if re.match(rf"{re.escape(str(broken))}:\d+:\d+: ", ln)]
    assert len(located) >= 2, res.stderr
    assert any("horizn_months" in ln for ln in located)
    assert any("twenty" in ln or "replications" in ln for ln in located)
    assert "Traceback" not in res.output
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    assert n_runs(store) == 1


def test_out_under_missing_folder(tmp_path: Path, store: Path) -> None:
    out = tmp_path / "no" / "such" / "results"
    res = kamsim("run", BASELINE, *SMALL, "--out", str(out), "--store", str(store))
    assert res.exit_code == 2
    assert res.stderr.strip().startswith("error: --out ") and "does not exist" in res.stderr
    assert "Traceback" not in res.output
    assert not (tmp_path / "no").exists() and not store.exists()


def test_out_in_read_only_folder(tmp_path: Path, store: Path, refuse_files_in: Any) -> None:
    """An unwritable folder is refused before the run. Tests may run as root, who writes
    through chmod, so creating a file in the folder is made to fail as it would for others."""
    ro = tmp_path / "ro"
    ro.mkdir()
    refuse_files_in(ro)
    res = kamsim("run", BASELINE, *SMALL, "--out", str(ro / "results"), "--store", str(store))
    assert res.exit_code == 2 and "cannot write in folder" in res.stderr
    assert list(ro.iterdir()) == [] and not store.exists()


def test_out_that_is_a_file(tmp_path: Path, store: Path) -> None:
    target = tmp_path / "results"
    target.write_text("keep me")
    res = kamsim("run", BASELINE, *SMALL, "--out", str(target), "--store", str(store))
    assert res.exit_code == 2 and re.search("not a folder|is a file", res.stderr)
    assert target.read_text() == "keep me" and not store.exists()


def test_out_folder_of_other_files_is_not_replaced(tmp_path: Path, store: Path) -> None:
    """--out replaces a folder whole: a folder of the user's own files is refused before the
    run and keeps every file; an earlier results folder and an empty one are replaced."""
    mine = tmp_path / "Documents"
    mine.mkdir()
    (mine / "plan.docx").write_text("keep me")
    res = kamsim("run", BASELINE, *SMALL, "--out", str(mine), "--store", str(store))
    assert res.exit_code == 2 and "not a kamsim results folder" in res.stderr
    assert "Traceback" not in res.output
    assert [p.name for p in mine.iterdir()] == ["plan.docx"] and not store.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (empty, empty):  # empty, then an earlier results folder: both replaced
        res = kamsim("run", BASELINE, *SMALL, "--out", str(out), "--no-store")
        assert res.exit_code == 0, res.output
        assert (out / "scenario.resolved.json").is_file()


def test_export_into_a_folder_of_other_files_is_refused(
        out_run: tuple[Path, dict[str, Any], Path], tmp_path: Path) -> None:
    _, summary, store = out_run
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    res = kamsim("runs", "export", summary["run_id"], "--out", str(mine), "--store", str(store))
    assert res.exit_code == 2 and "not a kamsim results folder" in res.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_no_store_records_nothing(tmp_path: Path, store: Path) -> None:
    res = kamsim("run", BASELINE, *SMALL, "--json", "--no-store", "--store", str(store))
    assert res.exit_code == 0
    assert "run_id" not in json.loads(res.stdout) and not store.exists()


def test_store_env_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KAMSIM_STORE", str(tmp_path / "env.duckdb"))
    assert kamsim("run", BASELINE, *SMALL).exit_code == 0
    assert n_runs(tmp_path / "env.duckdb") == 1 and not (tmp_path / "kamsim.duckdb").exists()


def _numbers(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k != "run_id"}


def test_same_seed_same_numbers(tmp_path: Path, store: Path) -> None:
    runs = [kamsim("run", BASELINE, *SMALL, "--seed", "7", "--json", "--store", str(store))
            for _ in range(2)]
    assert all(r.exit_code == 0 for r in runs)
    first, second = (json.loads(r.stdout) for r in runs)
    assert first["run_id"] != second["run_id"]
    assert _numbers(first) == _numbers(second)
    other = kamsim("run", BASELINE, *SMALL, "--seed", "8", "--json", "--no-store")
    assert _numbers(json.loads(other.stdout))["profit"] != _numbers(first)["profit"]
    # the same with two worker processes
    two = kamsim("run", BASELINE, *[a if a != "1" else "2" for a in SMALL], "--seed", "7",
                 "--json", "--no-store")
    assert two.exit_code == 0 and _numbers(json.loads(two.stdout)) == _numbers(first)
