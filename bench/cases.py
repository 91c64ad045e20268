"""One benchmark case, run in a fresh interpreter by bench/run.py so that its peak memory
(``ru_maxrss``) and its imports are its own. Prints one JSON line:
``{"seconds": ..., "work": ..., "maxrss_mb": ..., "note": ...}``; ``seconds`` is the timed
part only (what the case's name says), ``work`` the account-months it played.

``python bench/cases.py model ACCOUNTS MONTHS [KEY=VALUE ...]``
``python bench/cases.py study REPLICATIONS ACCOUNTS MONTHS WORKERS [KEY=VALUE ...]``
``python bench/cases.py naive ACCOUNTS MONTHS`` / ``floor ACCOUNTS MONTHS`` (the minimal
reduced model; ``naive_core`` / ``floor_core``: the domain's core, bench/reduced.py)
``python bench/cases.py tiering ACCOUNTS`` / ``retiering ACCOUNTS`` (the yearly re-tiering, hysteresis on)
``python bench/cases.py dmu ACCOUNTS`` (one decision-unit step + metrics, median of 7)
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# the kamsim of this checkout, not whichever is installed (an A/B of two checkouts with one
# virtual environment would otherwise time the installed one twice)
sys.path.insert(0, str(REPO))
BASELINE = REPO / "scenarios" / "baseline.yaml"


def _maxrss_mb() -> float:
    """Peak resident memory of this process and of any worker it waited for (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024.0


def _spec(accounts: int, months: int, replications: int, extra: list[str]):  # type: ignore[no-untyped-def]
    from kamsim.spec.load import load_scenario

    # the team grows with the portfolio (the baseline's team serves 2,000 accounts), so every
    # size runs the same regime rather than an ever more overloaded one
    f = accounts / 2000.0
    team = [f"capacity.account_managers={22 * f}", f"capacity.executives={7 * f}",
            f"capacity.specialists={21 * f}", f"capacity.support.agents={max(1, round(8 * f))}"]
    return load_scenario(BASELINE, [f"portfolio.generate.accounts={accounts}",
                                    f"horizon_months={months}",
                                    f"replications={replications}", "event_log=false",
                                    *team, *extra])


def model(accounts: int, months: int, extra: list[str]) -> dict[str, object]:
    """One replication of the full default model; timed: prepare + simulate (the scenario
    file is loaded before the clock starts). The note splits the run: its first period,
    the periods that re-tier (the yearly re-tiering at their start), the median of the
    others (a steady month) and the rest (the replication's set-up and output)."""
    import statistics

    from kamsim.engine import core
    from kamsim.experiment import prepared, simulate

    spec = _spec(accounts, months, 1, extra)
    periods: list[tuple[int, bool, float]] = []  # (period, re-tiered, seconds)
    step = core.Simulation.step

    def timed(sim: core.Simulation, k: int) -> None:
        retier = sim._pending_retier
        t = time.perf_counter()
        step(sim, k)
        periods.append((k, retier, time.perf_counter() - t))

    core.Simulation.step = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    prepared(spec)
    t1 = time.perf_counter()
    simulate(spec, replications=1, workers=1, record_events=False)
    t2 = time.perf_counter()
    first = sum(s for k, _r, s in periods if k == 0)
    retiered = [s for k, r, s in periods if r and k > 0]
    steady = [s for k, r, s in periods if not r and k > 0]
    rest = t2 - t1 - sum(s for _k, _r, s in periods)
    return {"seconds": t2 - t0, "work": accounts * months,
            "note": f"prepare {t1 - t0:.2f} s + run {t2 - t1:.2f} s: first period "
                    f"{first:.2f} s, {len(retiered)} re-tiering periods "
                    f"{sum(retiered):.2f} s, steady month "
                    f"{statistics.median(steady) * 1000 if steady else 0.0:.0f} ms, "
                    f"set-up and output {rest:.2f} s"}


def study(reps: int, accounts: int, months: int, workers: int,
          extra: list[str]) -> dict[str, object]:
    """A study of ``reps`` replications on ``workers`` local processes, prepare included."""
    from kamsim.experiment import simulate

    spec = _spec(accounts, months, reps, extra)
    t0 = time.perf_counter()
    simulate(spec, workers=workers, record_events=False)
    return {"seconds": time.perf_counter() - t0, "work": reps * accounts * months}


def reduced(kind: str, accounts: int, months: int) -> dict[str, object]:
    """A reduced model (bench/reduced.py) played by its naive SimPy version or its numpy
    floor: ``kind`` naive, floor, naive_core or floor_core."""
    sys.path.insert(0, str(HERE))
    import naive_simpy
    import numpy_floor
    from reduced import play

    way = naive_simpy if kind.startswith("naive") else numpy_floor
    t0 = time.perf_counter()
    play(way, kind.endswith("_core"), accounts, months)
    return {"seconds": time.perf_counter() - t0, "work": accounts * months}


def tiering(accounts: int, retier: bool = False) -> dict[str, object]:
    sys.path.insert(0, str(HERE))
    from bench_tiering import time_tiering

    return time_tiering(accounts, retier)


def dmu(accounts: int) -> dict[str, object]:
    """One decision-unit update (``step`` + ``metrics``) for every account of a portfolio
    built from the shipped stakeholder rules, median of 7 after one warm-up period (the
    engine's steady state: structure cache built)."""
    import statistics

    import numpy as np

    sys.path.insert(0, str(HERE))
    from bench_dmu import busy_units

    from kamsim.dmu import StepParams, metrics, step

    rng = np.random.default_rng(1)
    units, rules, roles, inp = busy_units(accounts, rng)
    params = StepParams()
    times = []
    for i in range(8):
        u = rng.random(units.n_people)
        t0 = time.perf_counter()
        step(units, inp, params, roles, u)
        metrics(units, rules.influence_threshold)
        if i:  # the first period builds the structure cache
            times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "work": accounts,
            "note": f"{units.n_people:,} people"}


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        raise SystemExit(__doc__)
    kind, args = argv[0], argv[1:]
    ints = [int(a) for a in args if "=" not in a]
    extra = [a for a in args if "=" in a]
    if kind == "model":
        out = model(ints[0], ints[1], extra)
    elif kind == "study":
        out = study(ints[0], ints[1], ints[2], ints[3], extra)
    elif kind in ("naive", "floor", "naive_core", "floor_core"):
        out = reduced(kind, ints[0], ints[1])
    elif kind == "tiering":
        out = tiering(ints[0])
    elif kind == "retiering":
        out = tiering(ints[0], retier=True)
    elif kind == "dmu":
        out = dmu(ints[0])
    else:
        raise SystemExit(f"unknown case kind {kind!r}")
    out["maxrss_mb"] = _maxrss_mb()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
