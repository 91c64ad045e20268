"""Numbers in tables: a difference that rounds to zero is shown as zero, never as -0.0% or
-€0 (a sign the figure cannot show), in the terminal's compare table, the report's and the
verdict's text alike."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
from rich.console import Console

from kamsim.cli.compare_cmd import difference_table
from kamsim.compare import _num
from kamsim.report.html import _diff_rows
from kamsim.report.terminal import money, pct, signed_money


def test_what_rounds_to_zero_has_no_sign() -> None:
    from kamsim.report.terminal import decimal

    assert pct(-0.00001) == pct(0.0) == pct(-0.0) == "0.0%"
    assert pct(-0.00001, sign=True) == pct(0.00001, sign=True) == "0.0%"
    assert decimal(-0.04, sign=True) == "0.0" and decimal(-0.05001) == "-0.1"
    assert money(-0.3) == signed_money(-0.3) == signed_money(0.2) == "€0"
    assert _num(-0.01, True) == "0.0"
    # what does not round to zero keeps its sign (a typographic minus in the verdict's text)
    assert pct(0.001, sign=True) == "+0.1%" and pct(-0.001) == "-0.1%"
    assert signed_money(-0.6) == "-€1" and signed_money(1234.0) == "+€1.2k"
    assert _num(-0.2, True) == "\u22120.2" and _num(0.2, True) == "+0.2"
    assert decimal(math.nan, sign=True) == "nan"


def _table() -> pd.DataFrame:
    row = dict(scenario="b", tier="all", reference_mean=0.9, mean=0.9, n=3)
    return pd.DataFrame([
        {**row, "metric": "retention", "diff": -2e-6, "diff_low": -0.01, "diff_high": -1e-6,
         "rel": -1e-4, "rel_low": -1.0, "rel_high": -1e-3},
        {**row, "metric": "profit", "reference_mean": 1e6, "mean": 1e6, "diff": -0.2,
         "diff_low": -900.0, "diff_high": -0.1, "rel": -1e-5, "rel_low": -0.09,
         "rel_high": -1e-5}])


def test_the_compare_tables_show_no_negative_zero() -> None:
    run = SimpleNamespace(currency="EUR", model_version=2, horizon_months=60, period="month",
                          discount_rate=0.1)
    cmp = SimpleNamespace(runs=[run, run], confidence=0.95,
                          names=["a", "b"], paired=[True, True], table=_table,
                          judged=lambda scenario, metric: True, caveats={"b": ([], "")})
    console = Console(width=200, record=True)
    console.print(difference_table(cmp))
    text = console.export_text()
    assert "0.0 pts (-1.0 to 0.0)" in text and "0.0% (-1.0 to 0.0)" in text
    assert "€0 (-€900 to €0)" in text and "0.0% (-0.1 to 0.0)" in text
    html = _diff_rows(_table(), "EUR")
    assert [(r["diff"], r["rel"]) for r in html] == [  # (the cells compare prints)
        ("0.0 pts (-1.0 to 0.0)", "0.0% (-1.0 to 0.0)"),
        ("€0 (-€900 to €0)", "0.0% (-0.1 to 0.0)")]
