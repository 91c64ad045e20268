"""A rule set of the user's own names (tests/own_rules: a reviewer's, written from scratch):
what kamsim would silently ignore or misread in it is a located problem, and the messages
speak of the names the user gave (not of the shipped ones)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kamsim.errors import InputError
from kamsim.spec.load import load_rule_file, load_scenario

OWN = Path(__file__).resolve().parent / "own_rules"


def _copy(tmp_path: Path, *edits: tuple[str, str, str]) -> Path:
    """The own rule set in ``tmp_path``, each (file, old, new) text replaced everywhere;
    returns the scenario's path."""
    shutil.copytree(OWN, tmp_path / "own")
    for name, old, new in edits:
        f = tmp_path / "own" / name
        text = f.read_text()
        assert old in text, (name, old)
        f.write_text(text.replace(old, new))
    return tmp_path / "own" / "plan.yaml"


def _lines(path: Path, sets: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(InputError) as exc:
        load_scenario(path, list(sets))
    return [p.format() for p in exc.value.problems]


def _at(path: Path, text: str, nth: int = 1) -> str:
    """``path:line:col`` of the ``nth`` line holding ``text``, at the text."""
    found = [(i, line.index(text) + 1)
             for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]
    line, col = found[nth - 1]
    return f"{path}:{line}:{col}"


def test_the_own_rule_set_loads() -> None:
    spec = load_scenario(OWN / "plan.yaml")
    assert spec.stages.uncoupled.name == "estranged"


def test_move_rules_past_the_ends_of_the_ladder_are_refused(tmp_path: Path) -> None:
    plan = _copy(tmp_path, (
        "rules/stages.yaml", "  - name: prospect\n",
        "  - name: prospect\n    down_when: \"trust < 0.3\"\n"), (
        "rules/stages.yaml", "  - name: ally\n",
        "  - name: ally\n    up_when: \"trust > 0.9\"\n"))
    stages = plan.parent / "rules" / "stages.yaml"
    assert _lines(plan) == [
        f"{_at(stages, 'down_when', 1)}: `down_when` on the first stage 'prospect' would "
        "never apply: there is no stage below it (leave it out; `uncoupled.when` breaks the "
        "relationship down from any stage)",
        f"{_at(stages, 'up_when', 3)}: `up_when` on the top stage 'ally' would never apply: "
        "there is no stage above it (leave it out)"]