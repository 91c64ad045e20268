"""`kamsim validate`: ok lines on stdout for good files, located problems on stderr and exit 2
for bad ones (all files checked, all problems listed), and `kamsim schema`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kamsim.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
BAD = Path(__file__).parent / "bad"


def test_validate_all_shipped_files() -> None:
    files = sorted(str(p) for p in (ROOT / "rules").glob("*.yaml"))
    files += sorted(str(p) for p in (ROOT / "scenarios").glob("*.yaml"))
    result = CliRunner().invoke(cli, ["validate", *files])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == len(files)
    assert all(": ok, " in ln for ln in lines)
    assert any("ok, scenario (with 4 rule/data files)" in ln for ln in lines)


def test_validate_subprocess_exit_codes(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "kamsim.cli.main", "validate",
                           str(ROOT / "scenarios" / "baseline.yaml")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert good.returncode == 0 and "ok, scenario" in good.stdout
    bad = subprocess.run([sys.executable, "-m", "kamsim.cli.main", "validate",
                          str(BAD / "unknown_key.yaml"), str(BAD / "nonfinite.yaml")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 6 + 1  # 1 + 5 problems, then the closing line
    assert bad.stderr.splitlines()[-1] == "6 problems found; nothing was written."
    assert list(tmp_path.iterdir()) == []


def test_validate_every_file_even_after_a_bad_one() -> None:
    result = CliRunner().invoke(cli, ["validate", str(BAD / "missing_kind.yaml"),
                                      str(ROOT / "rules" / "stages.yaml")])
    assert result.exit_code == 2
    assert "stages.yaml: ok, stages" in result.stdout
    assert "missing_kind.yaml:3:1: missing key 'kind'" in result.stderr


def test_validate_missing_file() -> None:
    result = CliRunner().invoke(cli, ["validate", "no/such/file.yaml"])
    assert result.exit_code == 2
    assert result.stderr.startswith("no/such/file.yaml:1:1: cannot read file")
    assert "Traceback" not in result.output


def test_validate_a_portfolio_csv(tmp_path: Path) -> None:
    f = tmp_path / "accounts.csv"
    f.write_text("account_id,wallet,share\nA1,100,0.5\nA2,200,0.25\n")
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 0, result.output
    assert f"{f}: ok, portfolio" in result.stdout


def test_validate_needs_a_path() -> None:
    result = CliRunner().invoke(cli, ["validate"])
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_schema_out_writes_one_file_per_kind(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema", "--out", str(tmp_path / "s"),
                                      "--kind", "stages"])
    assert result.exit_code == 0
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["stages.schema.json"]


def test_validate_recognises_a_contact_export() -> None:
    # the shipped contacts file was read as a portfolio: 31 false problems, exit 2
    contacts = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "contacts.csv"
    result = CliRunner().invoke(cli, ["validate", str(contacts)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{contacts}: ok, contacts")


def test_validate_locates_a_bad_contact_export(tmp_path: Path) -> None:
    f = tmp_path / "contacts.csv"
    f.write_text("account_id,person,role,reports_to,attitude,coverage\n"
                 "A1,ann,champion,,fan,brief\n")
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"{f}:2:5: unknown attitude 'fan'")


def test_validate_refuses_a_csv_of_unknown_kind(tmp_path: Path) -> None:
    f = tmp_path / "numbers.csv"
    f.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (f"{f}:1:1: cannot tell which kind of CSV this is (a portfolio (CRM "
                        "accounts export) with an account_id column, or a contact export "
                        "with account_id and person columns)")
    assert len(lines) == 2 and "Traceback" not in result.output


def _refuse_reading(monkeypatch: pytest.MonkeyPatch, refused: Path) -> None:
    """Opening ``refused`` fails with "Permission denied", as for a user without read
    permission (chmod 000 does not stop root, who may run the tests)."""
    real_open = Path.open

    def fake_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self.resolve() == refused.resolve():
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", fake_open)


def test_validate_an_unreadable_csv_is_one_located_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the header sniff that tells a portfolio from a contact export let the PermissionError
    # through: a traceback instead of a problem
    f = tmp_path / "accounts.csv"
    f.write_text("account_id,wallet,share\nA1,100,0.5\n")
    _refuse_reading(monkeypatch, f)
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"{f}:1:1: cannot read file: Permission denied (an existing, readable file)",
        "1 problem found; nothing was written."]
    assert "Traceback" not in result.output


def test_a_scenario_importing_an_unreadable_csv_is_one_located_problem(
        monkeypatch: pytest.MonkeyPatch) -> None:
    scenario = ROOT / "scenarios" / "crm_import.yaml"
    _refuse_reading(monkeypatch, ROOT / "scenarios" / "data" / "accounts.csv")
    result = CliRunner().invoke(cli, ["validate", str(scenario)])
    assert result.exit_code == 2, result.output
    shown = scenario.parent / "data" / "accounts.csv"
    assert result.stderr.splitlines() == [
        f"{shown}:1:1: cannot read file: Permission denied (an existing, readable file)",
        "1 problem found; nothing was written."]
    assert "Traceback" not in result.output


def test_validate_locates_a_reporting_cycle_in_a_contact_export(tmp_path: Path) -> None:
    # a cycle in the CSV passed `kamsim validate` ("ok"); `kamsim run` then stopped at
    # accounts.C1005.people[0].reports_to, a place in no file
    f = tmp_path / "contacts.csv"
    f.write_text("account_id,person,role,reports_to,attitude,coverage\n"
                 "A1,ann,economic_buyer,bob,,\n"
                 "A1,bob,user,cid,,\n"
                 "A1,cid,user,ann,,\n"
                 "A1,dan,user,anx,,\n"
                 "A1,dan,user,,,\n")
    result = CliRunner().invoke(cli, ["validate", str(f)])
    assert result.exit_code == 2
    assert result.stderr.splitlines()[:3] == [
        f"{f}:4:4: reports_to 'ann' closes a cycle: cid -> ann -> bob -> cid (reporting "
        "lines that end at a person who reports to no one)",
        f"{f}:5:4: reports_to 'anx' is no other person of account 'A1' (did you mean "
        "'ann'? one of: ann, bob, cid)",
        f"{f}:6:2: person 'dan' repeats in account 'A1' (one row per person)",
    ]


def test_did_you_mean_words_every_near_miss_alike() -> None:
    from kamsim.errors import did_you_mean

    assert did_you_mean("tierng", ("stages", "tiering")) == "did you mean 'tiering'? "
    assert did_you_mean("zzz", ["tiering"]) == ""
