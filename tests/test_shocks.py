"""Shocks: a capacity multiplier of 0 empties what its kind cuts while the shock lasts (the
account managers' hours, the budget), and everything is back after until_month."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kamsim.engine.core import run_replication
from kamsim.experiment import prepared
from kamsim.spec.load import load_scenario

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
SMALL = ["portfolio.generate.accounts=200", "horizon_months=6", "capacity.budget_per_year=1e6"]


def _run(kind: str) -> dict[str, np.ndarray]:
    spec = load_scenario(BASELINE, [*SMALL, f"shocks=[{{at_month: 2, until_month: 4, kind: {kind},"
                                    " capacity_multiplier: 0}]"])
    out = run_replication(prepared(spec), np.random.SeedSequence(1).spawn(1)[0])
    return {k: v.sum(axis=1) for k, v in out.ts.items()}


@pytest.mark.parametrize(("kind", "field"), [("budget_cut", "discounts"),
                                             ("am_attrition", "am_delivered")])
def test_a_zero_multiplier_empties_what_its_kind_cuts_while_it_lasts(kind: str, field: str
                                                                      ) -> None:
    # (a budget_cut of 0 used to leave the budget whole: 0 was skipped as "no change")
    ts = _run(kind)
    assert (ts[field][:2] > 0).all() and (ts[field][4:] > 0).all(), ts[field]
    assert (ts[field][2:4] == 0).all(), ts[field]
