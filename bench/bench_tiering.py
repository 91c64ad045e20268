"""Tiering speed: compile the baseline's tiering rules and assign tiers (scorecard,
decision table, quadrants) to a generated portfolio of N accounts.

``python bench/bench_tiering.py [accounts]`` prints the timed part (compile + assign +
quadrant; the portfolio is generated before the clock starts). Target: 1M accounts < 1 s.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"


def time_tiering(accounts: int) -> dict[str, object]:
    import numpy as np

    from kamsim.portfolio import build_portfolio
    from kamsim.spec.load import load_scenario
    from kamsim.tiering import compile_tiering

    spec = load_scenario(BASELINE, [f"portfolio.generate.accounts={accounts}"])
    # (the baseline's tiering reads portfolio fields only: the starting state is not needed)
    env = build_portfolio(spec).env()
    mask = np.ones(accounts, dtype=bool)
    t0 = time.perf_counter()
    tiering = compile_tiering(spec.tiering)
    t1 = time.perf_counter()
    tier, _score, _quadrant = tiering.classify(env, mask)  # assign + quadrant
    t2 = time.perf_counter()
    counts = np.bincount(tier, minlength=len(tiering.tiers)).tolist()
    return {"seconds": t2 - t0, "work": accounts,
            "note": f"compile {t1 - t0:.3f} s + assign {t2 - t1:.3f} s; tiers {counts}"}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    out = time_tiering(n)
    print(f"tiering {n:,} accounts: {out['seconds']:.3f} s ({out['note']})")
