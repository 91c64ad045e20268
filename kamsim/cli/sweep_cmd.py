"""``kamsim sweep``: one scenario at several values of one or two settings, on the same
random futures."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from kamsim.cli import main
from kamsim.cli.compare_cmd import print_outcome, record_group
from kamsim.cli.main import _progress, _run_options, _store_options, cli, handles_errors


def sweep_table(sw: Any) -> Any:
    """A rich Table: one row per point (the varied values first) with the headlines of all
    accounts as ``kamsim run`` shows them, and profit's paired difference from the best
    point (the point's minus the best's, as the verdict gives it); the best row in bold."""
    from rich.table import Table

    from kamsim.report.terminal import (
        MEASURE_NAMES,
        NOTE_NO_INTERVAL,
        difference,
        interval,
        money,
        pct,
        percent_label,
        signed_money,
    )

    cur = sw.currency
    conf = percent_label(sw.confidence)
    best = sw.best_index("profit")
    t = Table(title=f"{sw.scenario}: {len(sw.points)} points x {sw.replications} "
                    f"replications, seed {sw.seed}, all accounts (mean and {conf} interval; "
                    "differences paired by replication)", title_justify="left")
    for key in sw.keys:
        # the last part of the key: the title of a narrow column (the verdict says it whole)
        short = key.rsplit(".", 1)[-1]
        t.add_column(short if [k.rsplit(".", 1)[-1] for k in sw.keys].count(short) == 1
                     else key, justify="right")
    for col in (*MEASURE_NAMES.values(), "profit − best"):
        t.add_column(col, justify="right")
    rows = sw.table().query("tier == 'all' and metric == 'profit'")

    def vs(row: Any) -> str:
        """The difference as ``mean ± half-width`` (a paired interval of money is
        symmetric), narrower than ``mean (low to high)``."""
        half = (row.diff_high - row.diff_low) / 2
        if half != half:
            return difference(row.diff, row.diff_low, row.diff_high,
                              lambda v: signed_money(v, cur))
        return f"{signed_money(row.diff, cur)} ± {money(half, cur)}"

    for i, (point, result, row) in enumerate(zip(sw.points, sw.results,
                                                 rows.itertuples(index=False), strict=True)):
        s = result.summary()
        vs_best = ("best" if i == best else "same" if sw.same_as_best(i, "profit")
                   else vs(row))
        t.add_row(*(_shown(point[k]) for k in sw.keys),
                  interval(s["retention"], pct),
                  interval(s["revenue"], lambda v: money(v, cur)),
                  interval(s["profit"], lambda v: money(v, cur)),
                  interval(s["cost_to_serve"], lambda v: money(v, cur)),
                  interval(s["clv"], lambda v: money(v, cur)), vs_best,
                  style="bold" if i == best else None)
    if sw.replications < 2:
        t.caption, t.caption_justify = NOTE_NO_INTERVAL, "left"
    return t


def _shown(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--vary", "vary", multiple=True, required=True,
              metavar="KEY=V1,V2,...|KEY=START:STOP:STEP",
              help="A scenario value to vary, by its dotted path (as --set takes it): a list "
                   "of values, or a range (STOP included when on the grid). Twice makes a "
                   "grid of both.")
@_run_options  # -r, --seed, -w, --dask, --set: the same for every point, as for a run
@click.option("--json", "as_json", is_flag=True, help="Print the sweep as JSON.")
@_store_options
@handles_errors
def sweep(scenario: str, vary: tuple[str, ...], replications: int | None, seed: int | None,
          workers: int | None, dask: str | None, sets: tuple[str, ...], as_json: bool,
          store: str | None, no_store: bool, quiet: bool) -> None:
    """Play a scenario at several values of one or two settings, on the same random futures.

    Every point uses the same seed and replications, so the differences between points are
    paired: the table shows where profit peaks (and each point's profit minus the best's)
    and the verdict whether the best point is clearly ahead of every other point. Every
    point (at most 200) is checked before any of them runs, and all are recorded in the
    store in one group (kamsim report GROUP). Settings of the run (seed, replications,
    confidence) are the same for every point: give them with --seed, -r, --set.

    \b
    kamsim sweep scenarios/baseline.yaml --vary capacity.account_managers=20:30:2 -r 10
    kamsim sweep scenarios/baseline.yaml --vary capacity.executives=5,7,9 \\
        --vary capacity.exec_hours_per_month=30,40
    """
    from kamsim.sweep import sweep as run_sweep

    main._WRITTEN.track()
    store_path = None
    if not no_store:
        # the points will be recorded: a store they cannot go to is told before they run,
        # and the path checked is the one they are recorded in
        from kamsim.store import check_target

        store_path = check_target(store)
    with _progress(not quiet and not as_json and sys.stderr.isatty(), "sweep") as prog:
        task = prog.add_task("sweep", total=None) if prog else None
        sw = run_sweep(scenario, list(vary), replications=replications, seed=seed,
                       workers=workers, dask=dask, overrides=list(sets),
                       progress=(lambda d, t: prog.update(task, completed=d, total=t))
                       if prog else None)
    group = None
    if store_path is not None:
        # every point a run, labelled by its point, in one group
        group, ids = record_group(sw.results, store_path, sw.labels)
        sw.run_ids = list(ids)
    print_outcome(sw, None if as_json else sweep_table(sw), group, as_json, "points")
