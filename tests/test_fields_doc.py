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
