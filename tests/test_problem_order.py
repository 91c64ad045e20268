"""Several problems are listed in the order a reader looks for them: by file, then line and
column as numbers, and ``--set[i]`` by i as a number (sorted as text, ``--set[10]`` came
before ``--set[2]``, and ``f10.yaml`` before ``f2.yaml``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kamsim.cli.main import cli
from kamsim.errors import InputError
from kamsim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]
BASELINE = str(ROOT / "scenarios" / "baseline.yaml")
#: twelve overrides, each naming a key the scenario does not have
UNKNOWN = [f"nosuch{i}=1" for i in range(12)]


def _where(lines: list[str]) -> list[str]:
    """The location of each problem line (``--set[3]:1:1``), without the summary line."""
    return [line.split(": ", 1)[0] for line in lines if not line.endswith("nothing was written.")]


def test_overrides_are_listed_by_their_number_through_the_api() -> None:
    with pytest.raises(InputError) as exc:
        load_scenario(BASELINE, UNKNOWN)
    assert [p.loc.path for p in exc.value.problems] == [f"--set[{i}]" for i in range(12)]


def test_overrides_are_listed_by_their_number_on_the_command_line(tmp_path: Path) -> None:
    args = [a for item in UNKNOWN for a in ("--set", item)]
    res = CliRunner().invoke(cli, ["run", BASELINE, *args, "--store", str(tmp_path / "s.duckdb")])
    assert res.exit_code == 2, res.output
    assert _where(res.stderr.splitlines()) == [f"--set[{i}]:1:1" for i in range(12)]


def test_files_then_lines_are_listed_as_numbers(tmp_path: Path) -> None:
    """Two files whose names differ by a number, each with problems on lines 9 and 10."""
    text = "kind: scenario\nname: x\n" + "# a comment\n" * 6 + "bogus9: 1\nbogus10: 2\n"
    for name in ("f10.yaml", "f2.yaml"):
        (tmp_path / name).write_text(text)
    res = CliRunner().invoke(cli, ["validate", str(tmp_path / "f10.yaml"),
                                   str(tmp_path / "f2.yaml")])
    assert res.exit_code == 2, res.output
    where = [w.removeprefix(f"{tmp_path}/") for w in _where(res.stderr.splitlines())]
    assert where == [f"{f}:{line}:1" for f in ("f2.yaml", "f10.yaml") for line in (1, 1, 1, 9, 10)]
