"""Tiering speed: compile the baseline's tiering rules and assign tiers (scorecard,
decision table, quadrants) to a generated portfolio of N accounts.

``python bench/bench_tiering.py [accounts] [--retier]`` prints the timed part (compile +
assign + quadrant; the portfolio is generated before the clock starts). Target: 1M accounts
< 1 s. ``--retier`` times the yearly re-tiering a run does instead: every account already
has a tier, so the shipped hysteresis (``retier.hysteresis``) moves each account's own score
against the others' unmoved ones before the table is read again (docs/model.md).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

BASELINE = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"


def time_tiering(accounts: int, retier: bool = False) -> dict[str, object]:
    import numpy as np

    from kamsim.portfolio import build_portfolio
    from kamsim.spec.load import load_scenario
    from kamsim.tiering import compile_tiering

    spec = load_scenario(BASELINE, [f"portfolio.generate.accounts={accounts}"])
    # (the baseline's tiering reads portfolio fields only: the starting state is not needed)
    accounts_ = build_portfolio(spec)
    env = accounts_.env()
    mask = np.ones(accounts, dtype=bool)
    current = ids = None
    if retier:
        # the tiers of the year before: the first tiering (untimed), so the hysteresis has
        # accounts on both sides of every cut
        current = compile_tiering(spec.tiering).classify(env, mask)[0]
        ids = accounts_.account_id  # (named in a hit-policy problem only)
    t0 = time.perf_counter()
    tiering = compile_tiering(spec.tiering)
    t1 = time.perf_counter()
    tier, _score, _quadrant = tiering.classify(env, mask, current=current, ids=ids)
    t2 = time.perf_counter()
    counts = np.bincount(tier, minlength=len(tiering.tiers)).tolist()
    what = (f"re-tier with hysteresis {tiering.hysteresis:g}" if retier else "assign")
    return {"seconds": t2 - t0, "work": accounts,
            "note": f"compile {t1 - t0:.3f} s + {what} {t2 - t1:.3f} s; tiers {counts}"}


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--retier"]
    n = int(args[0]) if args else 1_000_000
    out = time_tiering(n, retier="--retier" in sys.argv[1:])
    print(f"tiering {n:,} accounts: {out['seconds']:.3f} s ({out['note']})")
