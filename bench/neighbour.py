"""What a second process on the other core costs a study replication (a script, not a test).

    python bench/neighbour.py [ACCOUNTS] [MONTHS] [RUNS] [ROUNDS]   # default 10000 60 7 2

A study runs two workers side by side on a machine shared with others. This tells which
resource a neighbour on the other core takes from a replication: it times
``bench/replication.py`` (CPU time of one replication as a worker plays it) alone and next to
four neighbours, each a process of its own that runs until the timing is done:

* ``compute``: a Python loop that touches almost no memory (takes the core's neighbour only);
* ``l3``: a copy between two 20 MB arrays, over and over (they live in the shared L3 cache);
* ``memory``: a copy between two 64 MB arrays (streams from memory: takes bandwidth);
* ``twin``: the same replications, over and over (what a study's other worker does).

The rounds alternate the five, so that a drift of the machine's speed falls on all of them.
Prints the median replication CPU time of each round. Also prints this machine's copy
bandwidth, one process and two side by side, and into fresh pages (docs/scale.md, "What the
targets would need", uses these figures).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

NEIGHBOURS = {
    "compute": "import time\nend = time.time() + {secs}\nx = 0\nwhile time.time() < end:\n"
               "    for i in range(10000): x += i\n",
    "l3": "import numpy as np, time\nend = time.time() + {secs}\n"
          "a = np.ones(2_500_000); b = np.empty_like(a)\n"
          "while time.time() < end: np.copyto(b, a)\n",
    "memory": "import numpy as np, time\nend = time.time() + {secs}\n"
              "a = np.ones(8_000_000); b = np.empty_like(a)\n"
              "while time.time() < end: np.copyto(b, a)\n",
}

BANDWIDTH = """
import numpy as np, time
a = np.ones(62_500_000)
t = time.perf_counter(); b = a.copy(); fresh = time.perf_counter() - t
runs = []
for _ in range(5):
    t = time.perf_counter(); np.copyto(b, a); runs.append(time.perf_counter() - t)
runs.sort()
print(2 * a.nbytes / runs[2] / 1e9, 2 * a.nbytes / fresh / 1e9)
"""


def _replication(argv: list[str]) -> float:
    out = subprocess.run([sys.executable, str(HERE / "replication.py"), *argv], check=True,
                         capture_output=True, text=True).stdout
    # "... replication 243.2 ms CPU (least ...)"
    return float(out.split("replication ")[1].split(" ms")[0])


def _next_to(kind: str | None, argv: list[str]) -> float:
    if kind is None:
        return _replication(argv)
    # long enough for any replication run; ended as soon as the timing is done
    if kind == "twin":
        cmd = [sys.executable, str(HERE / "replication.py"), argv[0], argv[1], "100000"]
    else:
        cmd = [sys.executable, "-c", NEIGHBOURS[kind].format(secs=600)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.5 if kind != "twin" else 3.0)  # (its arrays allocated and touched)
        return _replication(argv)
    finally:
        proc.kill()
        proc.wait()


def _bandwidth() -> tuple[float, float, float]:
    """GB/s copied (read + write) by one process, by two side by side (their sum), and into
    freshly allocated pages."""
    one = subprocess.run([sys.executable, "-c", BANDWIDTH], check=True, capture_output=True,
                         text=True).stdout.split()
    pair = [subprocess.Popen([sys.executable, "-c", BANDWIDTH], stdout=subprocess.PIPE,
                             text=True) for _ in range(2)]
    both = sum(float(p.communicate()[0].split()[0]) for p in pair)
    return float(one[0]), both, float(one[1])


def main(argv: list[str]) -> None:
    accounts = argv[0] if argv else "10000"
    months = argv[1] if len(argv) > 1 else "60"
    runs = argv[2] if len(argv) > 2 else "7"
    rounds = int(argv[3]) if len(argv) > 3 else 2
    rep = [accounts, months, runs]
    kinds: list[str | None] = [None, *NEIGHBOURS, "twin"]
    figures: dict[str | None, list[float]] = {k: [] for k in kinds}
    for _ in range(rounds):
        for kind in kinds:
            figures[kind].append(_next_to(kind, rep))
    print(f"one replication, {int(accounts):,} accounts x {months} months, median CPU of "
          f"{runs} (bench/replication.py), {rounds} rounds")
    print(f"{'next to':<9} {'ms per round':<24} median")
    for kind in kinds:
        vals = figures[kind]
        print(f"{kind or 'nothing':<9} {' / '.join(f'{v:.1f}' for v in vals):<24} "
              f"{statistics.median(vals):.1f}")
    one, both, fresh = _bandwidth()
    print(f"copy bandwidth: {one:.1f} GB/s one process, {both:.1f} GB/s two side by side, "
          f"{fresh:.1f} GB/s into fresh pages (read + write counted)")


if __name__ == "__main__":
    main(sys.argv[1:])
