"""A closed standard output (`kamsim trace ... | head -11`, the README's own example) ends
every command quietly with status 0: it exited 1, which fails the pipeline under `set -o
pipefail`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("args", [
    ["--help"],                         # click, while the arguments are parsed
    ["schema"],                         # click.echo in a command
    ["trace", "scenarios/trainer_single_account.yaml", "--account", "A03"],  # rich
], ids=["help", "echo", "rich"])
def test_a_closed_stdout_ends_the_command_quietly(args: list[str]) -> None:
    """`kamsim trace ... | head -1`: the reader is gone before the first write (its end of
    the pipe is closed before the command starts), so the write fails every time."""
    read, write = os.pipe()
    os.close(read)
    try:
        res = subprocess.run([sys.executable, "-m", "kamsim", *args], cwd=REPO, stdout=write,
                             stderr=subprocess.PIPE, text=True, timeout=240,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write)
    assert (res.returncode, res.stderr) == (0, "")


def test_a_run_whose_table_nobody_reads_is_still_recorded_and_written(tmp_path: Path) -> None:
    """`kamsim run ... | head -3`: the table is printed before the run is recorded and its
    folder written; a closed output drops the rest of what it prints, not what it records."""
    read, write = os.pipe()
    os.close(read)
    store, out = tmp_path / "s.duckdb", tmp_path / "out"
    try:
        res = subprocess.run(
            [sys.executable, "-m", "kamsim", "run", "scenarios/baseline.yaml", "-r", "2", "-w", "1",
             "--set", "portfolio.generate.accounts=100", "--set", "horizon_months=6",
             "--store", str(store), "--out", str(out)],
            cwd=REPO, stdout=write, stderr=subprocess.PIPE, text=True, timeout=240,
            env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write)
    assert (res.returncode, res.stderr) == (0, "")
    assert (out / "summary.json").exists()
    from kamsim import store as runs

    with runs.open(store) as st:
        assert len(st.runs()) == 1
