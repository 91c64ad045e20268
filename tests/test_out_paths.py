"""Every ``--out`` refuses a place it cannot write with one line and exit status 2, before
the work, and leaves nothing behind: a parent that is a file, a parent that is missing, a
folder nobody can write in (``/sys``, also for root, whom ``os.access`` lets through), and a
folder where a file is expected. These gave NotADirectoryError / PermissionError tracebacks
(exit 1), or ``cannot write ...: None``."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from kamsim.errors import RunError

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
SMALL = ["--set", "portfolio.generate.accounts=60", "--set", "horizon_months=6",
         "-r", "2", "-w", "1", "-q"]
UNWRITABLE = Path("/sys")  # sysfs: no one creates files there, root included

pytestmark = pytest.mark.timeout(300)


def kamsim(*args: str) -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers the command groups)
    from kamsim.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(run id, store) of one small stored run, for export, report and plot."""
    store = tmp_path_factory.mktemp("stored") / "store.duckdb"
    res = kamsim("run", BASELINE, *SMALL, "--store", str(store), "--json")
    assert res.exit_code == 0, res.output
    import json

    return json.loads(res.stdout)["run_id"], store


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulations fail if they start: a bad --out must be refused before them."""
    import kamsim.cli.trainer_cmd as trainer
    import kamsim.experiment as experiment

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the work started before --out was checked")

    monkeypatch.setattr(experiment, "simulate", refuse)
    monkeypatch.setattr(trainer, "_run", refuse)


def commands(out: Path, stored: tuple[str, Path]) -> dict[str, list[str]]:
    """Each command with ``out`` as its --out (a folder or a file, as the command wants)."""
    run_id, store = stored
    return {
        "run": ["run", BASELINE, *SMALL, "--no-store", "--out", str(out)],
        "tier": ["tier", BASELINE, "--out", f"{out}.csv"],
        "runs export": ["runs", "export", run_id, "--store", str(store), "--out", str(out)],
        "report": ["report", run_id, "--store", str(store), "--out", f"{out}.html"],
        "plot": ["plot", run_id, "--store", str(store), "--out", str(out)],
        "dmu show": ["dmu", "show", BASELINE, "--account", "A0001", "--out", f"{out}.svg"],
        "schema": ["schema", "--out", str(out)],
        "lesson page": ["lesson", "page", "champion_leaves", "--out", f"{out}.html"],
    }


CASES = ["parent is a file", "parent is missing", "folder not writable"]
COMMANDS = list(commands(Path("x"), ("r", Path("s"))))


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", COMMANDS)
def test_bad_out_is_one_line_and_exit_2(tmp_path: Path, stored: tuple[str, Path],
                                        no_work: None, command: str, case: str) -> None:
    if case == "folder not writable" and not UNWRITABLE.is_dir():
        pytest.skip("no /sys here")
    (tmp_path / "f").write_text("keep me")
    out = {"parent is a file": tmp_path / "f" / "x",
           "parent is missing": tmp_path / "nope" / "x",
           "folder not writable": UNWRITABLE / "kamsim-test-x"}[case]
    before = listing(tmp_path)
    res = kamsim(*commands(out, stored)[command])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "None" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out "), res.stderr
    assert listing(tmp_path) == before and (tmp_path / "f").read_text() == "keep me"


@pytest.mark.parametrize("command", ["tier", "report", "dmu show", "lesson page"])
def test_folder_where_a_file_is_expected(tmp_path: Path, stored: tuple[str, Path],
                                         no_work: None, command: str) -> None:
    """click refuses these (dir_okay=False) with its usage message and status 2."""
    args = commands(tmp_path / "x", stored)[command]
    folder = Path(args[-1])
    folder.mkdir()
    res = kamsim(*args)
    assert res.exit_code == 2 and "is a directory" in res.output
    assert "Traceback" not in res.output and listing(tmp_path) == [folder.name]


# the checks themselves, as the commands and the API use them


def test_require_folder_refuses_a_folder_and_a_file_parent(tmp_path: Path) -> None:
    from kamsim.io import require_folder

    (tmp_path / "f").write_text("")
    with pytest.raises(RunError, match="is a folder"):
        require_folder(tmp_path)
    with pytest.raises(RunError, match=f"{tmp_path / 'f'} is not a folder"):
        require_folder(tmp_path / "f" / "x.csv")
    with pytest.raises(RunError, match="is not a folder"):  # deeper: the file is named
        require_folder(tmp_path / "f" / "sub" / "x.csv")
    require_folder(tmp_path / "ok.csv")
    assert listing(tmp_path) == ["f"]  # the trial file is gone


def test_root_is_not_taken_at_its_word(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       refuse_files_in: Any) -> None:
    """os.access says yes to root for any folder; the check tries to create a file."""
    import kamsim.io as kio

    monkeypatch.setattr(os, "access", lambda *a, **k: True)
    refuse_files_in(tmp_path)
    for check, name in ((kio.check_writable_target, "results"), (kio.require_folder, "a.csv")):
        with pytest.raises(RunError, match="cannot write in folder .*Permission denied"):
            check(tmp_path / name)


def test_writers_turn_system_errors_into_run_errors(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the checks (disk full, a folder renamed away) is a RunError naming
    the file, never a second error from the clean-up, and leaves no temporary behind."""
    import kamsim.io as kio

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(kio, "_write_frame", full)
    frame = pd.DataFrame({"x": [1]})
    with pytest.raises(RunError, match=r"cannot write .*t\.csv: No space left on device"):
        kio.write_table(frame, tmp_path / "t.csv")
    result = SimpleNamespace(to_frames=lambda: {"kpis": frame}, summary=lambda: {},
                             resolved={})
    with pytest.raises(RunError, match="cannot write .*results: No space left on device"):
        kio.write_results(result, tmp_path / "results")
    assert listing(tmp_path) == []


def test_write_table_still_writes(tmp_path: Path) -> None:
    from kamsim.io import write_table

    frame = pd.DataFrame({"x": [1, 2]})
    write_table(frame, tmp_path / "t.csv")
    write_table(frame, tmp_path / "t.parquet")
    assert (tmp_path / "t.csv").read_text() == "x\n1\n2\n"
    import duckdb

    rows = duckdb.sql(f"SELECT x FROM '{tmp_path / 't.parquet'}'").fetchall()
    assert rows == [(1,), (2,)]
    assert listing(tmp_path) == ["t.csv", "t.parquet"]
