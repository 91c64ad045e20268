"""User and data text is printed as written, never read as Rich markup or emoji codes.

A description ``Q3 plan [draft] for 2027 [bold]budget`` lost ``[draft]`` and turned bold in
``kamsim runs show``; a ``[/x]`` in a description, a CRM account id, a person id or a query
result ended the command in a MarkupError traceback; ``C:x:1006`` was shown as ``C❌1006``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kamsim.examples import copy_examples

SMALL = ["-r", "2", "-w", "1", "-q"]
CLOSE_TAG, BOLD, EMOJI = "[/x]C1005", "[bold]C1007", "C:x:1006"
PERSON = "[bold]ingrid:x:[/x]"
DESCRIPTION = "Q3 plan [draft] for 2027 [bold]budget [/x] :x:"

pytestmark = pytest.mark.timeout(300)


def kamsim(*args: str) -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers the command groups)
    from kamsim.cli.main import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CRM import scenario with account ids, a person id and a lesson title that look
    like markup and emoji codes."""
    tmp = tmp_path_factory.mktemp("literal")
    copy_examples(tmp)  # (the shipped rules/ and scenarios/)
    data = tmp / "scenarios" / "data"
    for name in ("accounts.csv", "contacts.csv"):
        text = (data / name).read_text()
        for old, new in (("C1005,", f"{CLOSE_TAG},"), ("C1006,", f"{EMOJI},"),
                         ("C1007,", f"{BOLD},"), ("ingrid.holm", PERSON)):
            text = text.replace(old, new)
        (data / name).write_text(text)
    lesson = tmp / "scenarios" / "lessons" / "champion_leaves.lesson.yaml"
    lesson.write_text(lesson.read_text().replace(
        "title: When the champion leaves", "title: \"When [bold]the[/x] champion :x: leaves\""))
    return tmp / "scenarios" / "crm_import.yaml"


def clean(res: Any) -> str:
    """The output, after checking the command ended well and showed no emoji."""
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output and "❌" not in res.output
    return str(res.output)


@pytest.mark.parametrize("account", [CLOSE_TAG, EMOJI, BOLD])
def test_dmu_show_prints_ids_as_written(crm: Path, account: str) -> None:
    out = clean(kamsim("dmu", "show", str(crm), "--account", account))
    assert out.splitlines()[0].strip().startswith(f"{account} (")
    if account == CLOSE_TAG:
        assert PERSON in out


def test_trace_prints_the_account_as_written(crm: Path) -> None:
    out = clean(kamsim("trace", str(crm), "--account", CLOSE_TAG))
    first, second = out.splitlines()[:2]
    assert first.startswith(f"{CLOSE_TAG} in crm_import (seed ")
    assert second.startswith(f"month 0: {CLOSE_TAG} starts as")


def test_tier_and_dmu_stats_accept_the_data(crm: Path) -> None:
    clean(kamsim("tier", str(crm)))
    clean(kamsim("dmu", "stats", str(crm)))


def test_runs_show_list_and_query_print_text_as_written(crm: Path, tmp_path: Path) -> None:
    folder = tmp_path / "[bold]stores:x:"  # the store's path is in the list's title
    folder.mkdir()
    store = str(folder / "s.duckdb")
    res = kamsim("run", str(crm), *SMALL, "--set", f"description='{DESCRIPTION}'",
                 "--store", store, "--json")
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.stdout)["run_id"]
    assert f"overrides: description='{DESCRIPTION}'" in clean(
        kamsim("runs", "show", run_id, "--store", store))
    assert f"runs in {folder}" in clean(kamsim("runs", "list", "--store", store))
    out = clean(kamsim("runs", "query", "select '[/x]' as a, 'postgres:x:101' as b, "
                       "'[bold]c' as c", "--store", store))
    assert "│ [/x] │ postgres:x:101 │ [bold]c │" in out


def test_lesson_list_prints_titles_as_written(crm: Path) -> None:
    out = clean(kamsim("lesson", "list", "--dir", str(crm.parent / "lessons")))
    assert "When [bold]the[/x] champion :x: leaves" in " ".join(out.split())
