"""kamsim's speed and scale benchmark (a script, not a test): every case runs in a fresh
interpreter, several times; the table shows the median, the peak memory of the slowest-
memory run, the target and PASS/MISS. Figures are whatever this machine measures today.

    python bench/run.py            # the full bench: 5 runs of every case or more (about
                                   # 50 minutes on 2 cores, 40 of them the naive SimPy
                                   # version at 100k and 1M accounts)
    python bench/run.py --quick    # one run per slow case, shorter time limits, and not
                                   # the naive version at 100k and 1M
    python bench/run.py --only model_10k --only naive_10k --only floor_10k
    python bench/run.py --kernels off --only model_10k   # the numpy code (kamsim.jit)
    python bench/run.py --set capacity.support.event_level_max=0   # extra overrides for
                                                                    # the full-model cases

A case that runs past its time limit is reported as "> limit" and counts as a MISS.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CASES = HERE / "cases.py"


@dataclass
class Case:
    name: str
    what: str
    argv: list[str]  # a command; "{py}" is this interpreter
    runs: int = 5
    limit: float = 120.0  # seconds per run
    target_s: float | None = None
    target_mb: float | None = None
    timed_here: bool = False  # the wall time of the whole process is the figure
    model: bool = False  # receives --set overrides
    seconds: list[float] = field(default_factory=list)
    maxrss_mb: float = 0.0
    work: int = 0
    note: str = ""
    timed_out: bool = False
    error: str = ""


def _run_once(argv: list[str], limit: float) -> tuple[float, dict[str, object] | None, float,
                                                       str]:
    """(wall seconds, the case's JSON line or None, peak RSS in MB, error text). The child's
    own rusage (``wait4``) gives its peak memory; a timer kills it at ``limit``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            start_new_session=True)
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(limit, kill)
    timer.start()
    # read the pipes in threads so a chatty child never blocks; wait4 returns at exit
    chunks: dict[str, bytes] = {}
    readers = [threading.Thread(target=lambda n=n, s=s: chunks.__setitem__(n, s.read()))
               for n, s in (("out", proc.stdout), ("err", proc.stderr))]
    for r in readers:
        r.start()
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    for r in readers:
        r.join()
    mb = usage.ru_maxrss / 1024.0
    if killed.is_set():
        return wall, None, mb, "timeout"
    if proc.returncode != 0:
        err = chunks.get("err", b"").decode(errors="replace").strip().splitlines()
        return wall, None, mb, (err[-1] if err else f"exit {proc.returncode}")
    lines = chunks.get("out", b"").decode().strip().splitlines()
    data = None
    if lines and lines[-1].startswith("{"):
        data = json.loads(lines[-1])
    return wall, data, mb, ""


def measure(case: Case, budget: float) -> None:
    """Run ``case`` up to ``case.runs`` times, stopping early once ``budget`` seconds were
    spent on it (the table says how many runs the median is of)."""
    py = sys.executable
    argv = [py if a == "{py}" else a for a in case.argv]
    spent = 0.0
    for _ in range(case.runs):
        wall, data, mb, err = _run_once(argv, case.limit)
        spent += wall
        case.maxrss_mb = max(case.maxrss_mb, mb)
        if err:
            case.timed_out = err == "timeout"
            case.error = err
            return
        if case.timed_here or data is None:
            case.seconds.append(wall)
        else:
            case.seconds.append(float(data["seconds"]))  # type: ignore[arg-type]
            case.work = int(data.get("work", 0))  # type: ignore[call-overload]
            case.note = str(data.get("note", ""))
            case.maxrss_mb = max(case.maxrss_mb, float(data.get("maxrss_mb", 0.0)))  # type: ignore[arg-type]
        if spent > budget:
            return


def _scratch_store() -> Path:
    """A throwaway run store, so the default command is timed as a strategist types it
    (the run recorded too) without touching anyone's ./kamsim.duckdb."""
    import atexit
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="kamsim-bench-"))
    atexit.register(shutil.rmtree, d, True)
    return d / "bench.duckdb"


def cases(quick: bool, sets: list[str]) -> list[Case]:
    c = ["{py}", str(CASES)]
    # the console script next to this interpreter (a pyenv/asdf shim on PATH would add its
    # own start-up, which is not kamsim's)
    script = Path(sys.executable).with_name("kamsim")
    kamsim = [str(script)] if script.exists() else \
        ["{py}", "-c", "from kamsim.cli.main import main; main()"]
    slow = 1 if quick else 5
    lim = (lambda s: min(s, 60.0)) if quick else (lambda s: s)
    out = [
        Case("model_10k", "full model, 10k accounts x 60 months, 1 rep",
             [*c, "model", "10000", "60"], slow, lim(180), model=True),
        Case("model_100k", "full model, 100k accounts x 60 months, 1 rep",
             [*c, "model", "100000", "60"], slow, lim(300), model=True),
        Case("model_1m", "full model, 1M accounts x 60 months, 1 rep",
             [*c, "model", "1000000", "60"], slow, lim(300), model=True),
        Case("model_1m_120", "full model, 1M accounts x 120 months, 1 rep",
             [*c, "model", "1000000", "120"], slow, lim(400), target_s=20.0,
             target_mb=4096.0, model=True),
        Case("study_100x10k", "100 reps x 10k accounts x 60 months, workers=2",
             [*c, "study", "100", "10000", "60", "2"], slow, lim(300),
             target_s=15.0, model=True),
        Case("cli_baseline", "kamsim run scenarios/baseline.yaml (table + run recorded)",
             [*kamsim, "run", "scenarios/baseline.yaml", "--store", str(_scratch_store())],
             slow, lim(120), target_s=3.0, timed_here=True),
        Case("cli_help", "kamsim --help (process start to exit)",
             [*kamsim, "--help"], 7, 30, target_s=0.3, timed_here=True),
        Case("tiering_1m", "compile_tiering + assign + quadrant, 1M accounts",
             [*c, "tiering", "1000000"], 5, lim(120), target_s=1.0),
        Case("retiering_1m", "yearly re-tiering with hysteresis, 1M accounts",
             [*c, "retiering", "1000000"], 5, lim(120)),
        Case("dmu_100k", "one decision-unit step + metrics, 100k accounts",
             [*c, "dmu", "100000"], 5, lim(120), target_s=0.05),
        Case("naive_10k", "naive SimPy reduced model, 10k x 60 (bench/naive_simpy.py)",
             [*c, "naive", "10000", "60"], slow, lim(120)),
        Case("floor_10k", "numpy floor of the reduced model, 10k x 60",
             [*c, "floor", "10000", "60"], 7, lim(60)),
        Case("naive_core_10k", "naive SimPy domain's core (decision units as networkx "
             "graphs, stages), 10k x 60", [*c, "naive_core", "10000", "60"], slow, lim(180)),
        Case("floor_core_10k", "numpy floor of the domain's core, 10k x 60",
             [*c, "floor_core", "10000", "60"], 7, lim(60)),
        Case("floor_core_100k", "numpy floor of the domain's core, 100k x 60",
             [*c, "floor_core", "100000", "60"], slow, lim(60)),
        # the ratios at a million accounts: a year (the naive version takes ~6 minutes and
        # ~7 GB a run there, ~20 minutes for 60 months), the three on the same work
        Case("model_1m_12", "full model, 1M accounts x 12 months, 1 rep",
             [*c, "model", "1000000", "12"], slow, lim(300), model=True),
        Case("floor_core_1m_12", "numpy floor of the domain's core, 1M x 12",
             [*c, "floor_core", "1000000", "12"], slow, lim(60)),
    ]
    if not quick:  # the naive version at scale: ~9 and ~30 minutes of the full bench
        out += [
            Case("naive_core_100k", "naive SimPy domain's core, 100k x 60",
                 [*c, "naive_core", "100000", "60"], slow, 600),
            Case("naive_core_1m_12", "naive SimPy domain's core, 1M x 12",
                 [*c, "naive_core", "1000000", "12"], slow, 1500),
        ]
    for case in out:
        if case.model and sets:
            case.argv = case.argv + sets
            case.what += " + " + " ".join(sets)
    return out


def _fmt_s(case: Case) -> str:
    if case.timed_out:
        return f"> {case.limit:.0f} s"
    if case.error:
        return "error"
    return f"{statistics.median(case.seconds):.3f} s"


def _median(case: Case) -> float | None:
    return None if not case.seconds else statistics.median(case.seconds)


def verdict(case: Case) -> str:
    if case.target_s is None and case.target_mb is None:
        return ""
    if case.error:
        return "MISS"
    ok = (case.target_s is None or (_median(case) or 1e99) < case.target_s) and \
        (case.target_mb is None or case.maxrss_mb < case.target_mb)
    return "PASS" if ok else "MISS"


def _target(case: Case) -> str:
    parts = []
    if case.target_s is not None:
        parts.append(f"< {case.target_s:g} s")
    if case.target_mb is not None:
        parts.append(f"< {case.target_mb / 1024:g} GB")
    return ", ".join(parts)


#: the ratios: (what is compared, the full-model case, the naive case, the floor case), per
#: account-month on the same work. They change with the size, each way: the full model's
#: fixed costs (start-up, prepare, a few hundred numpy calls a period) weigh less per
#: account the more accounts there are, and so do the floor's; the naive version's cost per
#: account-month grows (at 100k and 1M its event heap is deeper, and CPython's cyclic
#: garbage collector walks every account's graph again and again), so the table gives them
#: at 10k, 100k and 1M
COMPARED = [("minimal reduced model, 10k x 60", "model_10k", "naive_10k", "floor_10k"),
            ("domain's core, 10k x 60", "model_10k", "naive_core_10k", "floor_core_10k"),
            ("domain's core, 100k x 60", "model_100k", "naive_core_100k", "floor_core_100k"),
            ("domain's core, 1M x 12", "model_1m_12", "naive_core_1m_12", "floor_core_1m_12")]


def ratios(by: dict[str, Case]) -> list[tuple[str, str, str, str]]:
    """Per account-month, for each pair of reduced implementations in :data:`COMPARED`: the
    full model against the naive SimPy version (target: at least 100x faster) and against
    the numpy floor (target: within 8x), and the naive version against its own floor: the
    product of the other two, so both targets hold only where it is at least 100 times the
    full model's ratio to the floor (what its target column says)."""
    rows = []

    def per_am(c: Case) -> float | None:  # seconds per account-month; None if unknown
        m = _median(c)
        return None if m is None or not c.work else m / c.work

    def bound(c: Case) -> float:  # at least this, a case that timed out
        return c.limit / _work_of(c)

    for label, f_name, n_name, fl_name in COMPARED:
        full, naive = by.get(f_name), by.get(n_name) if n_name else None
        floor = by.get(fl_name)
        if full is None:
            continue
        f = per_am(full)
        late = f is None and full.timed_out  # (then only a bound is known: a MISS)

        def judged(what: str, text: str, target: str, ok: bool, label: str = label) -> None:
            rows.append((f"{what} ({label})", text, target, "PASS" if ok else "MISS"))

        if naive is not None and (n := per_am(naive)) is not None and (f or late):
            judged("speed-up over naive SimPy", f"< {n / bound(full):.2f}x" if f is None
                   else f"{n / f:.2f}x", ">= 100x", f is not None and n / f >= 100)
        if floor is not None and (fl := per_am(floor)) is not None:
            if f or late:
                judged("full model / numpy floor", f"> {bound(full) / fl:.0f}x" if f is None
                       else f"{f / fl:.1f}x", "<= 8x", f is not None and f / fl <= 8)
            if naive is not None and (n := per_am(naive)) is not None and f:
                rows.append((f"naive SimPy / numpy floor ({label})", f"{n / fl:.0f}x",
                             f"(both: >= {100 * f / fl:.0f}x)", ""))
    return rows


def table(done: list[Case], quick: bool) -> str:
    head = ("case", "runs", "median", "acct-months/s", "peak RSS", "target", "result")
    rows = []
    for c in done:
        m = _median(c)
        rate = f"{c.work / m:,.0f}" if m and c.work and c.name.startswith(
            ("model", "study", "naive", "floor")) else ""
        if c.timed_out and c.name.startswith(("model", "study")):
            work = _work_of(c)
            rate = f"< {work / c.limit:,.0f}" if work else ""
        runs = f"{len(c.seconds)}" + ("" if not c.timed_out else "+timeout")
        rows.append((c.name, runs, _fmt_s(c), rate, f"{c.maxrss_mb:,.0f} MB", _target(c),
                     verdict(c)))
    rows += [(n, "", v, "", "", t, r) for n, v, t, r in ratios({c.name: c for c in done})]
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*head), line.format(*["-" * w for w in widths])]
    out += [line.format(*r) for r in rows]
    out.append("")
    out += [f"{c.name}: {c.what}" + (f" [{c.note}]" if c.note else "")
            + (f" ERROR: {c.error}" if c.error and not c.timed_out else "") for c in done]
    out.append("median of the runs shown" + (" (--quick: one run per slow case, a case stops "
                                              "repeating after 20 s)" if quick else ""))
    return "\n".join(out)


def _work_of(c: Case) -> int:
    """Account-months of a model/study case from its command line (when it timed out)."""
    nums = [int(a) for a in c.argv if a.isdigit()]
    if {"model", "naive", "floor", "naive_core", "floor_core"} & set(c.argv):
        return nums[0] * nums[1]
    if "study" in c.argv:
        return nums[0] * nums[1] * nums[2]
    return 0


def kernels() -> str:
    """Which decision-unit code the cases ran (kamsim.jit): the compiled kernels from
    kamsim.jit.MIN_PERSON_PERIODS person-months a process on (KAMSIM_KERNELS=auto), always
    (on) or never (off)."""
    from kamsim import jit

    if not jit.available():
        return "kernels: none (numba not installed)"
    import numba

    return (f"kernels: {jit.mode()} (numba {numba.__version__}, from "
            f"{jit.MIN_PERSON_PERIODS / 1e6:g}M person-months a process)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer runs, shorter limits")
    ap.add_argument("--only", action="append", default=[], help="run only these cases")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="extra scenario override for the full-model cases")
    ap.add_argument("--json", dest="json_out", default=None, help="also write figures here")
    ap.add_argument("--kernels", choices=("auto", "on", "off"), default=None,
                    help="KAMSIM_KERNELS for every case (default: as set, else auto)")
    args = ap.parse_args()
    if args.kernels:
        os.environ["KAMSIM_KERNELS"] = args.kernels  # the cases' processes inherit it
    todo = [c for c in cases(args.quick, args.sets) if not args.only or c.name in args.only]
    # the full bench runs every case all its times (at least 5); --quick stops repeating a
    # case once 20 s went into it
    budget = 20.0 if args.quick else float("inf")
    done = []
    for c in todo:
        print(f"... {c.name}: {c.what}", file=sys.stderr, flush=True)
        measure(c, budget)
        done.append(c)
    print(f"kamsim bench ({'quick' if args.quick else 'full'}), python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores, {kernels()}")
    print(table(done, args.quick))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            [{"name": c.name, "seconds": c.seconds, "maxrss_mb": c.maxrss_mb,
              "work": c.work, "timed_out": c.timed_out, "error": c.error,
              "verdict": verdict(c)} for c in done], indent=2))


if __name__ == "__main__":
    main()
