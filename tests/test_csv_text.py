"""CRM exports that are not comma-separated UTF-8 text are told as such, one located line each:
';' or tabs between fields, another encoding, a workbook (kamsim/csvtext.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kamsim.errors import InputError
from kamsim.examples import copy_examples

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "scenarios" / "data"


def _problems(path: Path) -> list[str]:
    from kamsim.spec.load import load_any

    with pytest.raises(InputError) as err:
        load_any(path)
    return [p.format() for p in err.value.problems]


@pytest.mark.parametrize("name", ["accounts.csv", "contacts.csv"])
@pytest.mark.parametrize(("sep", "said"), [(";", "';'"), ("\t", "tabs")])
def test_semicolon_or_tab_separated_file_is_one_line(tmp_path: Path, name: str, sep: str,
                                                     said: str) -> None:
    path = tmp_path / name
    path.write_text((DATA / name).read_text().replace(",", sep))
    [line] = _problems(path)
    assert line.startswith(f"{path}:1:11: the file separates its fields with {said}; kamsim "
                           "reads comma-separated files")


@pytest.mark.parametrize("name", ["accounts.csv", "contacts.csv"])
def test_latin1_byte_is_located_with_advice(tmp_path: Path, name: str) -> None:
    lines = (DATA / name).read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b",", "\u00fc,".encode("latin-1"), 2)  # ends fields 1, 2
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines))
    col = lines[3].index(b"\xfc") + 1  # (ASCII before it: a byte is a character)
    [line] = _problems(path)
    assert line.startswith(f"{path}:4:{col}: byte 0xfc is not UTF-8 text")
    assert "save the file as UTF-8" in line


@pytest.mark.parametrize("name", ["accounts.csv", "contacts.csv"])
def test_workbook_is_not_a_csv_text_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml\x00\x00binary")
    [line] = _problems(path)
    assert line.startswith(f"{path}:1:1: a spreadsheet workbook (.xlsx/.xls), not a CSV text "
                           "file")


def test_the_scenario_that_names_the_file_says_the_same(tmp_path: Path) -> None:

    from kamsim.spec.load import load_scenario

    copy_examples(tmp_path)  # (the shipped rules/ and scenarios/)
    acc = tmp_path / "scenarios" / "data" / "accounts.csv"
    acc.write_text(acc.read_text().replace(",", ";"))
    con = tmp_path / "scenarios" / "data" / "contacts.csv"
    con.write_bytes(b"PK\x03\x04binary")
    with pytest.raises(InputError) as err:
        load_scenario(tmp_path / "scenarios" / "crm_import.yaml")
    said = [p.message for p in err.value.problems]
    assert len(said) == 2 and "';'" in said[0] and "workbook" in said[1]
