"""A contact export's rows for an account not in the starting portfolio are located problems
(their unit used to be dropped silently, and the template shown for the account meant)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kamsim.errors import InputError
from kamsim.examples import copy_examples


def _crm_scenario(tmp_path: Path) -> Path:
    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    return tmp_path / "scenarios" / "crm_import.yaml"


def test_a_case_variant_of_an_imported_id_is_located_with_did_you_mean(tmp_path: Path) -> None:
    from kamsim.spec.load import load_scenario

    scenario = _crm_scenario(tmp_path)
    contacts = scenario.parent / "data" / "contacts.csv"
    lines = contacts.read_text().splitlines()
    assert lines[1].startswith("C1005,")
    lines[1] = "c1005" + lines[1][5:]
    lines[2] = "Z7" + lines[2][5:]
    contacts.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        load_scenario(scenario)
    said = [p.format() for p in err.value.problems]
    assert said[0].startswith(f"{scenario.parent / 'data' / 'contacts.csv'}:2:1: account "
                              "'c1005' is not in the portfolio (did you mean 'C1005'?")
    assert said[1].endswith(":3:1: account 'Z7' is not in the portfolio (the id of a starting "
                            "account, as the portfolio spells it)")


def test_a_generated_portfolio_checks_its_ids_too(tmp_path: Path) -> None:
    from kamsim.spec.load import load_scenario

    scenario = _crm_scenario(tmp_path)
    text = scenario.read_text()
    start = text.index("  import:")
    end = text.index("contacts:")
    scenario.write_text(text[:start] + "  generate: {accounts: 50}\n" + text[end:])
    contacts = scenario.parent / "data" / "contacts.csv"
    body = contacts.read_text().replace("C1005,", "A07,").replace("C1012,", "a12 ,")
    contacts.write_text(body)
    with pytest.raises(InputError) as err:
        load_scenario(scenario)
    said = {p.message for p in err.value.problems}
    assert "account 'a12' is not in the portfolio" in said  # (cells are stripped)
    assert "account 'A07' is not in the portfolio" not in said
    hints = {p.expected for p in err.value.problems if "a12" in p.message}
    assert hints == {"did you mean 'A12'? the id of a starting account, as the portfolio "
                     "spells it"}
