"""The compiled kernels index only within their arrays: every shipped scenario, and the
baseline's variants that take the kernels' other branches, run with numba's bounds checking
on (tests/_bounds_run.py, in a process of its own).

numba does not check an index by default: a kernel handed an id out of range (an account
slot, a tier, a stage, a cause, an edge's end, a person) would read or write past its array
without a word, where the numpy path raises. With ``NUMBA_BOUNDSCHECK=1`` every array access
of a kernel is checked (an index out of range raises IndexError; a negative one still counts
from the end, as numpy's does, which is why the engine checks the ids it is handed for a sign
too, see ``kamsim.engine.step._kernels_fit``). numba's on-disk cache does not key its entries by that
setting, so the run compiles every kernel afresh into an empty cache folder (~15 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba", reason="numba is not installed")

ROOT = Path(__file__).resolve().parents[1]


def test_every_kernel_runs_within_its_arrays(tmp_path: Path) -> None:
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
           "KAMSIM_KERNELS": "on",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "_bounds_run.py")], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["boundscheck"] == 1
    assert got["cache_dir"] == str(tmp_path / "numba")
    # every kernel of every module was compiled in that process (so with the checks), and
    # every entry point the engine calls was called
    assert got["kernels"] and got["compiled"] == got["kernels"]
    assert set(got["calls"]) == {
        "kamsim.engine.step_kernels." + n for n in (
            "trust_toward_target", "complaints_age", "money", "share_toward_target",
            "wallet_grown", "word_of_mouth")} | {
        "kamsim.engine.allocation_kernel." + n for n in (
            "list_revenue", "asked", "allocated", "ratios")} | {
        "kamsim.engine.events_kernel.events", "kamsim.engine.events_kernel.slots_below",
        "kamsim.engine.tally_kernel.referrals",
        "kamsim.engine.tally_kernel.tally", "kamsim.engine.stages_kernel.stages_age",
        "kamsim.engine.stages_kernel.stages_move", "kamsim.engine.complaints_kernel.answered",
        "kamsim.engine.complaints_kernel.arrivals_due", "kamsim.engine.complaints_kernel.queued",
        "kamsim.engine.departures_kernel.leaving",
        "kamsim.engine.departures_kernel.key_people",
        "kamsim.engine.departures_kernel.orphaned_hit"} | {
        "kamsim.rules.sort_kernel." + n for n in (
            "ascending", "packed_keys", "rows_of_packed", "kept_rows", "put_ranks",
            "ranks_moved")} | {
        "kamsim.dmu.step_kernel.step_part",
        "kamsim.dmu.metrics_kernel.metrics_part", "kamsim.dmu.metrics_kernel.propagated",
        "kamsim.dmu.metrics_kernel.step_metrics_part"}
    # and the runs re-tiered, won and lost accounts (the ids that change during a run)
    assert {"tier_change", "new_account", "churn", "stage_change", "offer",
            "complaint"} <= set(got["events"])


def test_every_kernel_module_is_run_with_the_checks() -> None:
    # a new module of kernels must join _bounds_run.MODULES, else its kernels would run
    # unchecked here without a word
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from _bounds_run import MODULES
    finally:
        sys.path.remove(str(ROOT / "tests"))
    with_kernels = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "kamsim").rglob("*.py")
        if any(line.startswith("@kernel") for line in path.read_text(encoding="utf-8").splitlines())}
    # (a module may be there for its entry points alone: metrics_kernel's kernels live in
    # step_kernel, which works out each block's metrics right after its step)
    assert with_kernels <= set(MODULES)
    assert set(MODULES) - with_kernels == {"kamsim.dmu.metrics_kernel"}
