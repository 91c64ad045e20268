"""The account fields that rule expressions may read: one catalogue for the whole project.

Portfolio fields come from the portfolio (generated or imported); state fields are kept by
the engine and have their real value at the start of the run too, so rules may use any of them;
a tiering file all but the tiering's own results (``tier``, ``quadrant``, and ``score`` outside
its table). ``docs/model.md`` describes each in full.
"""

from __future__ import annotations

from typing import Literal

FieldType = Literal["number", "bool", "str"]

#: name -> (type, one-line meaning)
PORTFOLIO_FIELDS: dict[str, tuple[FieldType, str]] = {
    "wallet": ("number", "the account's annual spend in our category (currency/year)"),
    "share": ("number", "our share of that wallet (0-1)"),
    "revenue": ("number", "our annual revenue from the account = wallet x share"),
    "margin": ("number", "gross margin rate on what we sell it (0-1)"),
    "gross_profit": ("number", "annual gross profit = revenue x margin"),
    "purchase_frequency": ("number", "orders per month"),
    "purchase_regularity": ("number", "evenness of purchasing (0-1, 1 = perfectly even)"),
    "tenure_months": ("number", "months since the relationship began"),
    "loyalty": ("number", "loyalty (0-1)"),
    "growth_potential": ("number", "expected yearly growth of the wallet (fraction)"),
    "influence": ("number", "industry influence (0-1): leaders are imitated"),
    "feedback": ("number", "market/product feedback the account gives us (0-1)"),
    "payment_risk": ("number", "payment risk (0-1): arrears, default likelihood"),
    "strategic_fit": ("number", "fit with our strategy (0-1)"),
    "price_sensitivity": ("number", "price sensitivity (0-1)"),
    "segment": ("str", "segment name (decides decision-unit size)"),
    "industry": ("str", "industry name (word of mouth spreads within an industry)"),
}

STATE_FIELDS: dict[str, tuple[FieldType, str]] = {
    "trust": ("number", "trust in us (0-1)"),
    "stage": ("str", "relationship stage name"),
    "stage_index": ("number", "position of the stage in the ordered list (0 = first)"),
    "months_in_stage": ("number", "months since the last stage change"),
    "service_ratio": ("number", "delivered service / what its own tier needs, last period (0-1)"),
    "coverage": ("number", "influence-weighted coverage of the decision unit (0-1)"),
    "sentiment": ("number", "influence-weighted attitude of the decision unit (-1..1)"),
    "multithreading": ("number", "covered people with influence above the threshold"),
    "champion": ("bool", "a supportive coach/champion is present"),
    "dm_covered": ("bool", "the economic buyer / decision maker is covered"),
    "spof_share": ("number", "share of relationship strength held by one person (0-1)"),
    "red_flags": ("number", "number of decision-unit red flags"),
    "complaints_open": ("number", "complaints not answered within target, each halving every 3 "
                        "months (a count that decays; docs/model.md)"),
    "tier": ("str", "current tier name"),
    "score": ("number", "tiering score (0-1)"),
    "quadrant": ("str", "value-matrix quadrant: protect, manage_risk, cultivate, reduce"),
}

#: the names `quadrant` can hold (kamsim.tiering.QUADRANTS gives them in this order): the
#: loader checks a quadrant name a rule compares with against them
QUADRANT_NAMES: tuple[str, ...] = ("protect", "manage_risk", "cultivate", "reduce")

ACCOUNT_FIELDS: dict[str, tuple[FieldType, str]] = {**PORTFOLIO_FIELDS, **STATE_FIELDS}


def field_types(names: dict[str, tuple[FieldType, str]] | None = None) -> dict[str, FieldType]:
    """``{name: type}`` for the expression compiler."""
    return {k: v[0] for k, v in (names or ACCOUNT_FIELDS).items()}


_TYPE_WORDS = {"number": "number", "bool": "true/false", "str": "text"}


def markdown_table() -> str:
    """The table of fields in docs/rules.md ("Fields a rule reads"), made from this
    catalogue so the two cannot drift apart (tests/test_fields_doc.py compares them)."""
    lines = ["| field | type | kind | meaning |", "|---|---|---|---|"]
    for kind, fields in (("portfolio", PORTFOLIO_FIELDS), ("state", STATE_FIELDS)):
        for name, (ftype, meaning) in fields.items():
            lines.append(f"| `{name}` | {_TYPE_WORDS[ftype]} | {kind} | {meaning} |")
    return "\n".join(lines)
