"""docs/rules.md lists every field a rule may read: its table is kamsim/fields.py's catalogue,
word for word (regenerate it with kamsim.fields.markdown_table() when a field changes)."""

from __future__ import annotations

from pathlib import Path

from kamsim.fields import ACCOUNT_FIELDS, markdown_table

RULES_MD = Path(__file__).resolve().parents[1] / "docs" / "rules.md"


def test_the_field_table_of_rules_md_is_the_catalogue() -> None:
    text = RULES_MD.read_text(encoding="utf-8")
    start = text.index("<!-- generated from kamsim/fields.py")
    end = text.index("<!-- end of the generated table -->")
    table = text[start:end].split("\n", 1)[1].rstrip("\n")
    assert table == markdown_table()
    assert all(f"| `{name}` |" in table for name in ACCOUNT_FIELDS)


def test_complaints_open_says_how_it_decays() -> None:
    # the engine halves it every 3 months (step.py); it said "last 6 months"
    assert "halving every 3 months" in ACCOUNT_FIELDS["complaints_open"][1]


def test_the_imported_number_ranges_are_the_reader_s() -> None:
    """The sentence on imported numbers names the fields the CSV reader lets go negative and
    those it holds to at most 1 (it said every number must be >= 0, but a negative
    growth_potential is accepted, as generated ones are)."""
    import re

    from kamsim.portfolio import _SIGNED_FIELDS, _UNIT_FIELDS

    text = " ".join(RULES_MD.read_text(encoding="utf-8").split())
    m = re.search(r"Numbers must be finite and ≥ 0, except (.*?), which may be negative.*?"
                  r"fractions \((.*?)\) at most 1", text)
    assert m, "the imported-numbers sentence of docs/rules.md"
    assert set(re.findall(r"`(\w+)`", m.group(1))) == _SIGNED_FIELDS
    assert {f.strip() for f in m.group(2).split(",")} == _UNIT_FIELDS
