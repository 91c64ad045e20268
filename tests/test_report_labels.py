"""The words and marks of the report and its charts: confidence levels as they are (97.5%,
not 98%), differences coloured only when their interval excludes zero, percent ticks as they
are, and which tier (starting or current) each table and chart groups by."""

from __future__ import annotations

import pytest

from kamsim.report import charts
from kamsim.report.terminal import percent_label, summary_table


@pytest.mark.parametrize(("level", "label"), [(0.95, "95%"), (0.99, "99%"), (0.999, "99.9%"),
                                              (0.975, "97.5%"), (0.8, "80%"), (0.0, "0%"),
                                              (-0.0, "0%"), (0.125, "12.5%")])
def test_a_percent_label_has_the_decimals_the_level_has(level, label):
    assert percent_label(level) == label


def test_tables_and_captions_say_the_level_unrounded(small_baseline_result):
    from rich.console import Console

    summary = dict(small_baseline_result.summary(), confidence=0.975)
    console = Console(width=300, record=True)
    console.print(summary_table(summary))
    assert "97.5% interval" in console.export_text()
    assert "99.9% interval" in charts.caption("retention", 0.999)[1]
