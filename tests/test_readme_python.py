"""The Python API as the docs give it: every ``kamsim.<...>`` name in README.md and docs/*.md
resolves after a bare ``import kamsim`` (``kamsim.dmu.report.describe_unit`` and others
raised AttributeError without an explicit submodule import), and the README's "From Python"
section has a call for every command of the CLI and runs as written, so it cannot go stale.
Both in a fresh interpreter: what an earlier test imported would hide a missing import."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
#: dotted words of the docs that are file names, not Python names
_FILES = {"duckdb", "yaml", "py", "md", "html", "json", "csv"}


def _fresh(code: str, cwd: Path, env: dict[str, str] | None = None,
           timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _doc_names() -> set[str]:
    names = set()
    for doc in DOCS:
        for name in re.findall(r"\bkamsim(?:\.[A-Za-z_]\w*)+", doc.read_text(encoding="utf-8")):
            if name.rsplit(".", 1)[1] not in _FILES:
                names.add(name)
    return names


def test_every_name_the_docs_give_resolves_after_import_kamsim() -> None:
    names = sorted(_doc_names())
    assert "kamsim.dmu.report.describe_unit" in names  # the walk finds what it should
    code = ("import functools, json, sys, kamsim\n"
            "heavy = sorted(m for m in ('numpy', 'pandas', 'pydantic', 'duckdb') "
            "if m in sys.modules)\n"
            "bad = []\n"
            f"for name in {names!r}:\n"
            "    try:\n"
            "        functools.reduce(getattr, name.split('.')[1:], kamsim)\n"
            "    except AttributeError as exc:\n"
            "        bad.append(f'{name}: {exc}')\n"
            "print(json.dumps({'heavy': heavy, 'bad': bad}))\n")
    out = _fresh(code, REPO)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["heavy"] == []  # `import kamsim` alone imports nothing heavy
    assert got["bad"] == []


def test_import_kamsim_and_help_stay_light() -> None:
    code = ("import sys, kamsim; names = dir(kamsim), dir(kamsim.report); "
            "from kamsim.cli import commands; "
            "print(sorted(m for m in ('numpy', 'pandas', 'pydantic', 'matplotlib', 'jinja2') "
            "if m in sys.modules))")
    out = _fresh(code, REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def _section() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## From Python")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", _section(), flags=re.S)


def test_the_from_python_section_has_a_call_for_every_command() -> None:
    import click

    from kamsim.cli import commands  # noqa: F401  (registers the commands)
    from kamsim.cli.main import cli

    said = [line for s in _snippets() for line in s.splitlines()
            if line.lstrip().startswith("# kamsim ")]
    missing = []
    for name, cmd in cli.commands.items():
        lines = [line for line in said if re.search(rf"# kamsim {name}\b", line)]
        if not lines:
            missing.append(name)
        elif isinstance(cmd, click.Group):
            missing += [f"{name} {sub}" for sub in cmd.commands
                        if not any(re.search(rf"\b{sub}\b", line) for line in lines)]
    assert missing == []


@pytest.mark.timeout(600)
def test_the_from_python_section_runs_as_written(tmp_path: Path) -> None:
    """In a copy of the shipped rules and scenarios (the snippets write files where they
    run), every snippet in order, as one session."""
    for folder in ("rules", "scenarios"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    snippets = _snippets()
    assert len(snippets) >= 4 and snippets[0].startswith("import kamsim\n")
    code = "\n".join(snippets)
    out = _fresh(code, tmp_path, {"KAMSIM_STORE": str(tmp_path / "store.duckdb"),
                                  "KAMSIM_LESSONS": ""}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for written in ("schemas/scenario.schema.json", "results/summary.json", "report.html",
                    "charts", "exported/summary.json", "lesson.html", "A0007.svg"):
        assert (tmp_path / written).exists(), written
