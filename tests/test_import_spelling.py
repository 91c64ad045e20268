"""A CRM accounts export is read like the contact export: column names and segment/industry
labels without case, spaces or '-'; a near miss of a field is a problem (the field would be
drawn at random instead); kamsim validate names the fields it draws."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from kamsim.errors import InputError
from kamsim.examples import copy_examples

ROOT = Path(__file__).resolve().parents[1]


def _crm(tmp_path: Path, edit_header: dict[str, str], edit_row2: dict[str, str] | None = None
         ) -> Path:
    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    acc = tmp_path / "scenarios" / "data" / "accounts.csv"
    lines = acc.read_text().splitlines()
    for old, new in edit_header.items():
        assert old in lines[0]
        lines[0] = lines[0].replace(old, new)
    for old, new in (edit_row2 or {}).items():
        assert old in lines[1]
        lines[1] = lines[1].replace(old, new)
    acc.write_text("\n".join(lines) + "\n")
    return tmp_path / "scenarios" / "crm_import.yaml"


def test_headers_and_segments_differing_in_case_or_spaces_are_read(tmp_path: Path) -> None:
    from kamsim.portfolio import build_portfolio
    from kamsim.spec.load import load_scenario

    plain = build_portfolio(load_scenario(ROOT / "scenarios" / "crm_import.yaml"))
    scenario = _crm(tmp_path, {"loyalty": "Loyalty", "payment_risk": "payment risk",
                               "margin": " Margin ", "annual_spend": "Annual-Spend"},
                    {",small,manufacturing,": ",Small , Manufacturing,"})
    acc = build_portfolio(load_scenario(scenario))
    for name in ("loyalty", "payment_risk", "margin", "wallet"):
        assert acc.numbers[name].tolist() == plain.numbers[name].tolist(), name
    assert acc.segment[0] == "small" and acc.industry[0] == "manufacturing"


def test_the_small_segment_gets_the_small_units(tmp_path: Path) -> None:
    from kamsim.experiment import prepared
    from kamsim.spec.load import load_scenario

    scenario = _crm(tmp_path, {}, {",small,": ",SMALL,"})
    prep = prepared(load_scenario(scenario))
    plain = prepared(load_scenario(ROOT / "scenarios" / "crm_import.yaml"))
    assert prep.units.offsets[1] == plain.units.offsets[1]  # C1001's people: the small unit


def test_a_near_miss_of_a_field_is_located(tmp_path: Path) -> None:
    from kamsim.spec.load import load_scenario

    scenario = _crm(tmp_path, {"loyalty": "loyality"})
    with pytest.raises(InputError) as err:
        load_scenario(scenario)
    [problem] = err.value.problems
    assert problem.loc.line == 1 and problem.loc.col == 8
    assert problem.message == ("column 'loyality' is not a kamsim field, so loyalty would be "
                               "drawn at random")
    assert problem.expected is not None and problem.expected.startswith(
        "did you mean 'loyalty'?")


def test_validate_names_the_fields_it_draws() -> None:
    from kamsim.cli.main import cli

    result = CliRunner().invoke(cli, ["validate", str(ROOT / "scenarios" / "crm_import.yaml")])
    assert result.exit_code == 0
    assert result.output.rstrip().endswith(
        "ok, scenario (with 6 rule/data files; drawn, not in the CSV: purchase_frequency, "
        "purchase_regularity, influence, feedback, price_sensitivity)")
