"""kamsim installed from a wheel has its example rules, scenarios and lessons (they were left
out: `kamsim run scenarios/baseline.yaml` from --help could not be followed, `kamsim lesson
list` was empty), and `kamsim examples` copies them out without overwriting anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kamsim.examples import bundled_files, copy_examples
from kamsim.lessons import default_lessons_dir

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(300)


def kamsim(*args: str, **kwargs: Any) -> Any:
    from kamsim.cli import commands  # noqa: F401  (registers the command groups)
    from kamsim.cli.main import cli

    return CliRunner().invoke(cli, list(args), **kwargs)


def _example_files(root: Path) -> set[str]:
    """What the examples are: the YAML and CSV files of root's rules/ and scenarios/."""
    return {str(p.relative_to(root)) for name in ("rules", "scenarios")
            for p in (root / name).rglob("*") if p.suffix in (".yaml", ".csv")}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a wheel of the repository carries, laid out as pip installs them.

    setuptools' build_py, run on a copy of the repository (a build writes next to its
    sources), does what a wheel build does up to the zip: the venv has no `wheel` package,
    so `pip wheel --no-build-isolation` cannot run here, and with isolation it needs the
    network. pyproject.toml's package list and package data are what is tested."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("kamsim", "rules", "scenarios"):
        shutil.copytree(REPO / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    res = subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q",
                          "build_py", "--build-lib", str(out)], cwd=src, capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


def test_the_wheel_carries_every_module_and_the_examples_side_by_side(built: Path) -> None:
    modules = {str(p.relative_to(REPO)) for p in (REPO / "kamsim").rglob("*.py")}
    assert {str(p.relative_to(built)) for p in (built / "kamsim").rglob("*.py")} == modules
    assert (built / "kamsim" / "py.typed").is_file()
    assert (built / "kamsim" / "report" / "templates" / "report.html.j2").is_file()
    assert _example_files(built / "kamsim" / "_bundled") == _example_files(REPO)
    assert "scenarios/lessons/maps/multi_threaded.yaml" in _example_files(REPO)


def _fresh(code: str, built: Path, cwd: Path) -> str:
    """``code`` run where kamsim is the built one and the current folder has no scenarios/."""
    env = {**os.environ, "PYTHONPATH": str(built)}
    env.pop("KAMSIM_LESSONS", None)
    res = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_an_installed_kamsim_reads_its_own_examples(built: Path, tmp_path: Path) -> None:
    code = ("import kamsim, kamsim.examples, kamsim.lessons\n"
            "print(kamsim.__file__)\n"
            "print(kamsim.examples.bundled('scenarios'))\n"
            "print(kamsim.lessons.default_lessons_dir())\n"
            "print(*sorted(les.name for les in kamsim.lessons.list_lessons()))\n"
            # a bundled scenario's ../rules/*.yaml resolves among the bundled files
            "kind, spec = kamsim.spec.load.load_any(kamsim.examples.bundled('scenarios') "
            "/ 'baseline.yaml')\n"
            "print(kind)\n")
    package, scenarios, lessons, names, kind = _fresh(code, built, tmp_path).splitlines()
    assert Path(package) == built / "kamsim" / "__init__.py"
    assert Path(scenarios) == built / "kamsim" / "_bundled" / "scenarios"
    assert Path(lessons) == built / "kamsim" / "_bundled" / "scenarios" / "lessons"
    assert names.split() == sorted(p.name.removesuffix(".lesson.yaml")
                                   for p in (REPO / "scenarios/lessons").glob("*.lesson.yaml"))
    assert kind == "scenario"


def test_a_checkout_reads_the_repository_s_own_examples(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A checkout, or `pip install -e .`, has no kamsim/_bundled: an edit to the repository's
    rules/ and scenarios/ is what kamsim reads."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAMSIM_LESSONS", raising=False)
    assert default_lessons_dir() == REPO / "scenarios" / "lessons"
    assert {src.parent for src, _ in bundled_files()} >= {REPO / "rules", REPO / "scenarios"}


def test_examples_copies_the_shipped_files_and_they_run_there(tmp_path: Path) -> None:
    res = kamsim("examples", str(tmp_path / "mine"))
    assert res.exit_code == 0, res.output
    assert res.stdout == (f"copied {len(_example_files(REPO))} files into "
                          f"{tmp_path / 'mine' / 'rules'}/ and {tmp_path / 'mine' / 'scenarios'}/\n")
    assert _example_files(tmp_path / "mine") == _example_files(REPO)
    for rel in _example_files(REPO):
        assert (tmp_path / "mine" / rel).read_bytes() == (REPO / rel).read_bytes()
    res = kamsim("validate", str(tmp_path / "mine" / "scenarios" / "baseline.yaml"))
    assert res.exit_code == 0, res.output


def test_examples_never_overwrites_and_then_copies_nothing(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "tiering.yaml").write_text("mine\n")
    (tmp_path / "scenarios").write_text("a file where the folder would go\n")
    before = sorted(tmp_path.rglob("*"))
    res = kamsim("examples", str(tmp_path))
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr.splitlines() == [
        f"{tmp_path / 'rules' / 'tiering.yaml'}: exists (kamsim examples never overwrites a "
        "file: move it away, or copy into another folder)",
        f"{tmp_path / 'scenarios'}: is a file (a folder, for the bundled scenarios/)",
        "2 problems found; nothing was written.",
    ]
    assert sorted(tmp_path.rglob("*")) == before
    assert (tmp_path / "rules" / "tiering.yaml").read_text() == "mine\n"


def test_examples_names_a_dangling_link_where_a_folder_is_to_go(tmp_path: Path) -> None:
    """A symbolic link to nowhere where rules/ is to go: exists() does not see it, the
    folder could not be made, and the message was "cannot copy the examples into d (File
    exists)", naming no path. It is now a clash like the others, told before any copy."""
    dest, nowhere = tmp_path / "d", tmp_path / "nowhere"
    dest.mkdir()
    (dest / "rules").symlink_to(nowhere)
    res = kamsim("examples", str(dest))
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [
        f"{dest / 'rules'}: is a symbolic link to {nowhere}, which does not exist (a folder, "
        "for the bundled rules/)",
        "1 problem found; nothing was written.",
    ]
    assert [p.name for p in dest.iterdir()] == ["rules"] and not nowhere.exists()
    (tmp_path / "e").symlink_to(nowhere)  # the examples folder itself
    res = kamsim("examples", str(tmp_path / "e"))
    assert res.exit_code == 2
    assert res.stderr == (f"error: {tmp_path / 'e'}: is a symbolic link to {nowhere}, which "
                          "does not exist (a folder to copy into)\n")
    assert not nowhere.exists()


def test_a_copy_the_system_refuses_names_the_path(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from kamsim.errors import RunError

    def refused(fin: Any, fout: Any) -> None:
        raise PermissionError(13, "Permission denied", fout.name)

    monkeypatch.setattr(shutil, "copyfileobj", refused)
    first = tmp_path / bundled_files()[0][1]
    with pytest.raises(RunError) as exc:
        copy_examples(tmp_path)
    assert str(exc.value) == (f"cannot copy the examples into {tmp_path} ({first}: Permission "
                              "denied); nothing was copied")


def test_examples_into_the_current_folder_by_default(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert kamsim("examples").exit_code == 0
    assert (tmp_path / "scenarios" / "baseline.yaml").is_file()
    res = kamsim("examples")  # a second time: every file clashes, one line each
    assert res.exit_code == 2
    assert len(res.stderr.splitlines()) == len(_example_files(REPO)) + 1


def test_a_copy_that_fails_midway_leaves_the_folder_as_it_was(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kamsim.errors import RunError

    calls = []

    def full_disk(fin: Any, fout: Any) -> None:
        calls.append(fout.name)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        fout.write(fin.read())

    monkeypatch.setattr(shutil, "copyfileobj", full_disk)
    (tmp_path / "rules").mkdir()  # a folder that was there stays
    with pytest.raises(RunError, match="No space left on device"):
        copy_examples(tmp_path)
    assert len(calls) == 5
    assert sorted(tmp_path.rglob("*")) == [tmp_path / "rules"]
