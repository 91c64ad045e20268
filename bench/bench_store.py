"""Benchmark of the run store (a script, not a test): python bench/bench_store.py

Simulates the shipped baseline once (2000 accounts, 60 months; ``--replications`` to change),
then times, into a fresh store in a temporary folder: record_run (first run creates the
tables, later runs append), Store.runs(), Store.get(...).tables(), export as Parquet and CSV,
a query, and delete; and prints the store's size on disk per run. Times are wall-clock
seconds (DuckDB works in its own threads); the minimum of ``--runs`` repeats is the steadier
figure on a shared machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import kamsim.store as store  # noqa: E402
from kamsim.experiment import simulate  # noqa: E402
from kamsim.spec.load import load_scenario  # noqa: E402


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    best, value = float("inf"), None
    for _ in range(runs):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replications", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    spec = load_scenario(ROOT / "scenarios/baseline.yaml")
    t0 = time.perf_counter()
    result = simulate(spec, replications=args.replications)
    print(f"simulate baseline, {args.replications} replications: "
          f"{time.perf_counter() - t0:.2f} s")
    t, frames = timed(result.to_frames, 1)
    rows = {k: len(v) for k, v in frames.items()}
    print(f"to_frames: {t:.2f} s, rows {rows}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        t0 = time.perf_counter()
        first = store.record_run(result, path)
        print(f"record_run, first (creates tables): {time.perf_counter() - t0:.2f} s")
        t, _ = timed(lambda: store.record_run(result, path), args.runs)
        n = 1 + args.runs
        size = path.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("*.wal"))
        print(f"record_run, appending: {t:.2f} s (min of {args.runs}); "
              f"store {size / 1e6:.1f} MB for {n} runs ({size / 1e6 / n:.1f} MB per run)")
        with store.open(path) as st:
            t, _ = timed(st.runs, args.runs)
            print(f"Store.runs(): {1000 * t:.1f} ms")
            t, _ = timed(lambda: st.get(first).tables(), args.runs)
            print(f"Store.get(id).tables(): {t:.2f} s")
            t, _ = timed(lambda: st.query("SELECT run_id, tier, sum(profit) FROM accounts "
                                          "GROUP BY ALL"), args.runs)
            print(f"query (profit by run and tier over every run): {1000 * t:.1f} ms")
            for fmt in ("parquet", "csv"):
                t, _ = timed(lambda fmt=fmt: st.export(first, fmt, Path(tmp) / fmt), args.runs)
                print(f"export {fmt}: {t:.2f} s")
        with store.open(path, read_only=False) as st:
            t0 = time.perf_counter()
            st.delete(first)
            print(f"delete one run: {time.perf_counter() - t0:.2f} s")


if __name__ == "__main__":
    main()
