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
