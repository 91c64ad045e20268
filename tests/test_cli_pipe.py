"""A closed standard output (`kamsim trace ... | head -11`, the README's own example) drops
what follows, and the command does all its work and ends with its own status, saying nothing
more: it exited 1, which fails the pipeline under `set -o pipefail`, and then (caught around
the command) 0, with the command abandoned at its first line: a validate with problems said
"ok" and exited 0, a plot wrote 3 of its 8 charts. A standard output closed outright
(`kamsim run ... >&-`) ended in a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _unread(*args: str) -> subprocess.CompletedProcess[str]:
    """`kamsim ARGS | head -1` whose reader is gone before the first write (its end of the
    pipe is closed before the command starts), so every write to stdout fails."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([sys.executable, "-m", "kamsim", *args], cwd=REPO, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=240,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [
    ["--help"],                         # click, while the arguments are parsed
    ["schema"],                         # click.echo in a command
    ["trace", "scenarios/trainer_single_account.yaml", "--account", "A03"],  # rich
], ids=["help", "echo", "rich"])
def test_a_closed_stdout_ends_the_command_quietly(args: list[str]) -> None:
    """`kamsim trace ... | head -1`: the reader is gone before the first write (its end of
    the pipe is closed before the command starts), so the write fails every time."""
    res = _unread(*args)
    assert (res.returncode, res.stderr) == (0, "")


def test_validate_whose_ok_lines_nobody_reads_still_tells_its_problems(tmp_path: Path) -> None:
    """`kamsim validate rules/*.yaml bad.yaml | head -1`: the ok line of the first file
    failed, and the command ended there with status 0, the bad file never told."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: tiering\nfoo: [\n")
    res = _unread("validate", "rules/tiering.yaml", str(bad))
    assert res.returncode == 2
    lines = res.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{bad}:3:1: YAML syntax error"), lines
    assert lines[1] == "1 problem found; nothing was written."


def test_plot_whose_lines_nobody_reads_writes_every_chart(small_baseline_result,
                                                          tmp_path: Path) -> None:
    """`kamsim plot RUN --out charts | head -1`: each "wrote" line is told as its chart is
    written, and the first that failed ended the plot with 3 of its 8 charts written."""
    from kamsim.io import write_results
    from kamsim.report.charts import CHARTS

    folder = write_results(small_baseline_result, tmp_path / "results")
    res = _unread("plot", str(folder), "--out", str(tmp_path / "charts"), "--format", "svg")
    assert (res.returncode, res.stderr) == (0, "")
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == sorted(
        f"{name}.svg" for name in CHARTS)


def test_a_run_whose_table_nobody_reads_is_still_recorded_and_written(tmp_path: Path) -> None:
    """`kamsim run ... | head -3`: the table is printed before the run is recorded and its
    folder written; a closed output drops the rest of what it prints, not what it records."""
    store, out = tmp_path / "s.duckdb", tmp_path / "out"
    res = _unread("run", "scenarios/baseline.yaml", "-r", "2", "-w", "1",
                  "--set", "portfolio.generate.accounts=100", "--set", "horizon_months=6",
                  "--store", str(store), "--out", str(out))
    assert (res.returncode, res.stderr) == (0, "")
    assert (out / "summary.json").exists()
    from kamsim import store as runs

    with runs.open(store) as st:
        assert len(st.runs()) == 1


def test_a_run_with_stdout_closed_outright_is_recorded(tmp_path: Path) -> None:
    """`kamsim run ... >&-`: Python starts with no sys.stdout (None), and printing the table
    failed with an AttributeError, before the run was recorded."""
    store = tmp_path / "s.duckdb"
    res = subprocess.run(
        [sys.executable, "-m", "kamsim", "run", "scenarios/baseline.yaml", "-r", "2", "-w", "1",
         "--set", "portfolio.generate.accounts=100", "--set", "horizon_months=6",
         "--store", str(store)],
        cwd=REPO, preexec_fn=lambda: os.close(1), stderr=subprocess.PIPE, text=True,
        timeout=240, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert (res.returncode, res.stderr) == (0, "")
    from kamsim import store as runs

    with runs.open(store) as st:
        assert len(st.runs()) == 1


def _closed(fds: tuple[int, ...], *args: str) -> subprocess.CompletedProcess[str]:
    """`kamsim ARGS 2>&-` (or `>&-`, or both): the descriptors ``fds`` closed outright before
    the command starts; what of stdout and stderr is left open is captured."""
    return subprocess.run(
        [sys.executable, "-m", "kamsim", *args], cwd=REPO,
        preexec_fn=lambda: [os.close(fd) for fd in fds],  # type: ignore[func-returns-value]
        stdout=None if 1 in fds else subprocess.PIPE, stderr=None if 2 in fds else subprocess.PIPE,
        text=True, timeout=240, env={**os.environ, "PYTHONPATH": str(REPO)})


SMALL_RUN = ["-r", "2", "-w", "1", "--set", "portfolio.generate.accounts=100",
             "--set", "horizon_months=6"]


@pytest.mark.parametrize("fds", [(2,), (1, 2)], ids=["stderr", "stdout-and-stderr"])
def test_a_run_with_stderr_closed_outright_is_recorded_and_written(
        fds: tuple[int, ...], tmp_path: Path) -> None:
    """`kamsim run ... 2>&-`: Python starts with no sys.stderr (None), and asking whether
    it is a terminal (for the progress bar) failed with an AttributeError, status 1, before
    the simulation: nothing recorded, no folder, and nothing said."""
    store, out = tmp_path / "s.duckdb", tmp_path / "out"
    res = _closed(fds, "run", "scenarios/baseline.yaml", *SMALL_RUN, "--store", str(store),
                  "--out", str(out))
    assert res.returncode == 0
    if 1 not in fds:
        assert res.stdout.splitlines()[-1].startswith("run r")
    assert (out / "summary.json").exists()
    from kamsim import store as runs

    with runs.open(store) as st:
        assert len(st.runs()) == 1


def test_problems_told_to_a_closed_stderr_keep_their_status(tmp_path: Path) -> None:
    """`kamsim run bad.yaml 2>&-` and `kamsim validate ... 2>&1 | head -1`: the problems
    cannot be seen, and the status still says there were some (2). Told to a pipe whose
    reader had left, they ended in status 1."""
    res = _closed((2,), "run", "scenarios/baseline.yaml", "--set", "nosuch=1", "--store",
                  str(tmp_path / "s.duckdb"))
    assert (res.returncode, res.stdout) == (2, "")
    assert not (tmp_path / "s.duckdb").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: tiering\nfoo: [\n")
    read, write = os.pipe()
    os.close(read)
    try:
        res = subprocess.run([sys.executable, "-m", "kamsim", "validate", str(bad)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=write, text=True, timeout=240,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    finally:
        os.close(write)
    assert (res.returncode, res.stdout) == (2, "")
