"""The bad-input corpus (tests/bad/): every broken file gives exit 2, exactly located lines,
no traceback and no file written, both in-process (CliRunner) and as a real process.

Each corpus file names what is wrong in a header comment and lists what it expects:

    # expect: LINE:COL substring of the message            (in this file)
    # expect @REL/PATH: LINE:COL substring                  (in a file it names)

Files that cannot hold a comment (an empty file, a CSV) keep their header in
``<name>.expect`` beside them. Files under tests/bad/_support/ are helpers, not cases.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from kamsim.cli.main import cli

BAD = Path(__file__).parent / "bad"
ROOT = Path(__file__).resolve().parents[1]
_EXPECT = re.compile(rb"^#\s*expect(?:\s+@(?P<file>\S+?))?:\s*(?P<line>\d+):(?P<col>\d+)\s+(?P<text>.*)$")


@dataclass(frozen=True)
class Expected:
    path: str  # as kamsim shows it
    line: int
    col: int
    text: str

    @property
    def prefix(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: "


def corpus() -> list[Path]:
    return sorted(p for p in BAD.iterdir()
                  if p.is_file() and p.suffix != ".expect" and not p.name.startswith("."))


def expectations(case: Path) -> list[Expected]:
    """The expected located lines of one case, from its header and its .expect file."""
    raw = case.read_bytes()
    side = case.with_name(case.name + ".expect")
    if side.exists():
        raw += b"\n" + side.read_bytes()
    out = []
    for line in raw.splitlines():
        m = _EXPECT.match(line.strip())
        if not m:
            continue
        rel = m["file"].decode() if m["file"] else None
        shown = str(case.parent / rel) if rel else str(case)
        out.append(Expected(shown, int(m["line"]), int(m["col"]),
                            m["text"].decode("latin-1").strip()))
    return out


def _snapshot(*folders: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for f in folders for p in f.rglob("*")}


def check_output(case: Path, code: int, stdout: str, stderr: str) -> None:
    expected = expectations(case)
    assert expected, f"{case.name}: no '# expect:' lines"
    assert code == 2, f"{case.name}: exit {code}\n{stdout}\n{stderr}"
    assert "Traceback" not in stdout + stderr
    lines = stderr.splitlines()
    found = []
    for exp in expected:
        hits = [i for i, ln in enumerate(lines) if ln.startswith(exp.prefix)]
        assert hits, f"{case.name}: no line starting {exp.prefix!r}\n{stderr}"
        assert any(exp.text in lines[i] for i in hits), (
            f"{case.name}: {exp.prefix} lacks {exp.text!r}\n{stderr}")
        found.append((exp.path, exp.line, exp.col, hits[0]))
    # all problems at once, in file order
    order = [i for *_k, i in sorted(found)]
    assert order == sorted(order), f"{case.name}: problems not in file order\n{stderr}"
    # every problem line is located: path:line:col: message
    for ln in lines[:-1]:
        assert re.match(r"^\S.*?:\d+:\d+: \S", ln), f"unlocated line {ln!r}"
    assert lines[-1].endswith("nothing was written.")


CASES = corpus()


def test_corpus_is_rich() -> None:
    assert len(CASES) >= 25
    for case in CASES:
        assert expectations(case), f"{case.name} has no expectations"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_file_in_process(case: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                             ) -> None:
    monkeypatch.chdir(tmp_path)
    before = _snapshot(BAD)
    result = CliRunner().invoke(cli, ["validate", str(case)])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        result.exc_info)
    check_output(case, result.exit_code, result.stdout, result.stderr)
    assert list(tmp_path.iterdir()) == []
    assert _snapshot(BAD) == before


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_file_subprocess(case: Path, tmp_path: Path) -> None:
    before = _snapshot(BAD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "kamsim.cli.main", "validate", str(case)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=20)
    check_output(case, proc.returncode, proc.stdout, proc.stderr)
    assert list(tmp_path.iterdir()) == []
    assert _snapshot(BAD) == before


def test_python_tags_construct_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The !!python/object/apply tag in the corpus would write pwned.txt if it ran."""
    monkeypatch.chdir(tmp_path)
    CliRunner().invoke(cli, ["validate", str(BAD / "python_tags.yaml")])
    assert not (tmp_path / "pwned.txt").exists()


def test_good_and_bad_together_report_only_the_bad(tmp_path: Path) -> None:
    good = ROOT / "rules" / "tiering.yaml"
    bad = BAD / "unknown_key.yaml"
    result = CliRunner().invoke(cli, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert f"{good}: ok, tiering" in result.stdout
    assert f"{bad}:8:5: unknown key 'min_dwel_months'" in result.stderr


# ------------------------------------------------------------------ --set on the command line


@pytest.mark.parametrize("sets, expected", [
    (["portfolio.generate.accounts=-5"],
     ["--set[0]:1:29: portfolio.generate.accounts: Input should be greater than or equal to 1"]),
    (["horizon_months=abc"], ["--set[0]:1:16: horizon_months: Input should be a valid integer"]),
    (["portfolio.generate.acounts=5"],
     ["--set[0]:1:20: unknown key 'acounts' (did you mean 'accounts'?"]),
    (["rules.tiering=../../../etc/passwd"], ["--set[0]:1:15: path '../../../etc/passwd' leads"]),
    (["strategy.name.x=1"], ["--set[0]:1:10: strategy.name is not a mapping"]),
    # every bad override at once, not only the first
    (["portfolio.generate.accounts=200", "foo", "seed=[", "market.price_gap=2"],
     ["--set[1]:1:1: override 'foo' has no '='", "--set[2]:1:7: YAML syntax error"]),
    (["strategy.name=custom", "strategy.priority=revenu * 2"],
     ["--set[1]:1:19: unknown name 'revenu'; did you mean 'revenue'?"]),
    # a part the override created is the override's: located there, not in the file
    (["nokey.x=1"], ["--set[0]:1:1: unknown key 'nokey'"]),
    # a number after a missing key starts a list; the new shock then lacks its kind
    (["shocks.0.at_month=3"], ["--set[0]:1:8: missing key 'kind'"]),
    (["shocks.0.at_month=3", "shocks.0.kind=recession", "shocks.2.kind=recession"],
     ["--set[2]:1:8: shocks has 1 entry, so there is no entry 2"]),
    # a value that cannot be read does not hide the range errors of the others
    (["seed=[", "market.price_gap=2"],
     ["--set[0]:1:7:", "--set[1]:1:18: market.price_gap: Input should be less than or equal to 1"]),
    (["portfolio.generate.wallet.median=-1"],
     ["--set[0]:1:34: portfolio.generate.wallet.median: Input should be greater than 0"]),
    (["portfolio.generate.wallet.median=0"],
     ["--set[0]:1:34: portfolio.generate.wallet.median: Input should be greater than 0"]),
    (["portfolio.generate.wallet={dist: pareto, alpha: 2, minimum: 0}"],
     ["--set[0]:1:61: portfolio.generate.wallet.minimum: pareto needs minimum > 0"]),
    (["portfolio.generate.share={dist: beta, alpha: 2, beta: 3, clip: [0.9, 0.1]}"],
     ["--set[0]:1:64: portfolio.generate.share.clip: clip [0.9, 0.1] has low > high"]),
    (["rules.stages=../rules"], ["--set[0]:1:14: '../rules' is a folder, not a file"]),
    # inside a structured value, at the entry it is about (not at the file's former shocks)
    (["shocks=[{at_month: 3, kind: recesion}]"], ["--set[0]:1:29: shocks.0.kind: Input should"]),
    # whole-object checks of values from --set: each at its --set, all in one round, though
    # another --set breaks a field of the same object
    (["portfolio.generate.segments={enterprise: 0.2, midmarket: 0.5, small: 0.2}",
      "portfolio.generate.industries={retail: 0.5}", "portfolio.generate.wallet.sigma=-1"],
     ["--set[0]:1:29: portfolio.generate.segments: segments shares sum to 0.9",
      "--set[1]:1:31: portfolio.generate.industries: industries shares sum to 0.5",
      "--set[2]:1:33: portfolio.generate.wallet.sigma: Input should be greater than or equal"]),
])
def test_set_errors_are_located(sets: list[str], expected: list[str], tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["tier", str(ROOT / "scenarios" / "baseline.yaml")]
    for s in sets:
        args += ["--set", s]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_set_error_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from kamsim.cli.main import main; main()", "tier",
         str(ROOT / "scenarios" / "baseline.yaml"), "--set", "portfolio.generate.accounts=-5",
         "--out", "x.csv"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("--set[0]:1:29: portfolio.generate.accounts:")
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ several kinds of mistakes


@pytest.mark.parametrize("name, count", [
    ("several_kinds_tiering.yaml", 9), ("several_kinds_stakeholders.yaml", 4),
    ("several_kinds_scenario.yaml", 5),
])
def test_several_kinds_without_follow_on_noise(name: str, count: int) -> None:
    """Every expected line is there (the corpus tests check which) and nothing more: a name
    with a schema problem of its own is not reported again as an unknown name."""
    result = CliRunner().invoke(cli, ["validate", str(BAD / name)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()[:-1]
    assert len(lines) == count, result.stderr
    assert len({ln.split(": ")[0] for ln in lines}) == count, result.stderr


def test_compare_reports_every_bad_scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    from kamsim.cli import commands  # noqa: F401  (registers `compare`)

    monkeypatch.chdir(tmp_path)
    good = ROOT / "scenarios" / "baseline.yaml"
    bad1, bad2 = BAD / "several_kinds_scenario.yaml", BAD / "unknown_key_top.yaml"
    result = CliRunner().invoke(cli, ["compare", str(good), str(bad1), str(bad2), "--no-store"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for case in (bad1, bad2):
        for exp in expectations(case):
            assert any(ln.startswith(exp.prefix) and exp.text in ln
                       for ln in result.stderr.splitlines()), (exp, result.stderr)
    assert list(tmp_path.iterdir()) == []
