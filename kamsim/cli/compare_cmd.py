"""``kamsim compare``: scenarios side by side on the same random futures."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from kamsim.cli import main
from kamsim.cli.main import _console, _progress, _sets, _store_options, cli, handles_errors


def difference_table(cmp: Any) -> Any:
    """A rich Table of the paired differences: one row per scenario x tier x headline."""
    from rich.table import Table

    from kamsim.report.terminal import (
        difference_cells,
        difference_notes,
        money,
        pct,
        percent_label,
    )

    cur = cmp.runs[0].currency
    conf = percent_label(cmp.confidence)
    # paired or not as compare decided (the verdict says why a scenario is not)
    unpaired = [n for n, p in zip(cmp.names[1:], cmp.paired[1:], strict=True) if not p]
    how = ("paired by replication" if not unpaired
           else "not paired: two independent means" if len(unpaired) == len(cmp.names) - 1
           else f"paired by replication, except {', '.join(unpaired)}: two independent means")
    t = Table(title=f"Differences against {cmp.names[0]} (mean and {conf} interval, {how})",
              title_justify="left")
    for col in ("scenario", "tier", "measure", "reference", "scenario value", "difference",
                "relative"):
        text = col in ("scenario", "tier", "measure")
        # the names wrap before a figure does: a figure split over two lines is misread
        t.add_column(col, justify="left" if text else "right", no_wrap=not text)

    def value(v: float, f: Any) -> str:
        return "no accounts" if v != v else f(v)  # a share of a tier with no accounts

    table = cmp.table()
    for r in table.itertuples(index=False):
        fmt = pct if r.metric == "retention" else lambda v: money(v, cur)
        tier, measure, diff, rel, clear = difference_cells(r, cur)
        t.add_row(r.scenario, tier, measure, value(r.reference_mean, fmt), value(r.mean, fmt),
                  diff, rel, style=None if clear and cmp.judged(r.scenario, r.metric)
                  else "dim", end_section=(r.metric == "clv"))
    notes = difference_notes(cmp, table)
    if notes:
        t.caption, t.caption_justify = "; ".join(notes), "left"
    return t


@cli.command()
@click.argument("scenarios", nargs=-1, required=True)
@click.option("--replications", "-r", type=click.IntRange(1), default=None,
              help="Random futures per scenario (default: the first scenario's).")
@click.option("--seed", type=click.IntRange(0, main.SEED_MAX), default=None,
              help="The seed of every scenario compared, as `seed:` in its file: it seeds "
                   "the random futures and builds generated portfolios and decision units "
                   "(default: the first scenario's, or the first stored run's).")
@click.option("--workers", "-w", type=click.IntRange(1), default=None,
              help="Worker processes (default: all cores).")
@click.option("--dask", default=None, metavar="tcp://HOST:PORT",
              help="Run on a Dask cluster (or set KAMSIM_DASK).")
@_sets
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@_store_options
@handles_errors
def compare(scenarios: tuple[str, ...], replications: int | None, seed: int | None,
            workers: int | None, dask: str | None, sets: tuple[str, ...], as_json: bool,
            store: str | None, no_store: bool, quiet: bool) -> None:
    """Compare scenarios (files, stored run ids, or a group id: its runs) on the same
    random futures.

    The first is the reference; every other is compared with it replication by
    replication, per headline and per starting tier, and summed up in a verdict."""
    from kamsim.compare import _is_scenario
    from kamsim.compare import compare as run_compare
    from kamsim.errors import RunError

    main._WRITTEN.track()
    given = [opt for opt, v in (("--seed", seed is not None), ("-r", replications is not None),
                                ("--set", bool(sets))) if v]
    if given and not any(_is_scenario(s) for s in scenarios):
        # said before anything is loaded, rather than ignored without a word
        raise RunError(f"{', '.join(given)}: every run compared is a stored run, which keeps "
                       "its own seed, replications and scenario (these options apply to "
                       "scenario files only)")
    store_path = None
    if not no_store and any(Path(s).is_file() for s in scenarios):
        # fresh runs will be recorded: a store they cannot go to is told before they run,
        # and the path checked is the one they are recorded in
        from kamsim.store import check_target

        store_path = check_target(store)
    with _progress(not quiet and not as_json and sys.stderr.isatty(), "compare") as prog:
        task = prog.add_task("compare", total=None) if prog else None
        cmp = run_compare(list(scenarios), replications=replications, seed=seed,
                          workers=workers, dask=dask, overrides=list(sets), store=store,
                          progress=(lambda d, t: prog.update(task, completed=d, total=t))
                          if prog else None)
    group = None if store_path is None else _record(cmp, store_path)
    print_outcome(cmp, None if as_json else difference_table(cmp), group, as_json, "runs")


def _record(cmp: Any, store: Path) -> str | None:
    """Record every fresh run of a comparison as one group in ``store`` (stored runs are
    already there)."""
    fresh = [r for r in cmp.runs if r.run_id is None and hasattr(r.source, "per_replication")]
    if not fresh:
        return None
    group, ids = record_group([r.source for r in fresh], store)
    for r, rid in zip(fresh, ids, strict=True):
        r.run_id = rid
    return group


def record_group(results: list[Any], store: Path, labels: list[str] | None = None
                 ) -> tuple[str, list[str]]:
    """Record ``results`` under one new group id in one transaction (a Ctrl-C leaves the
    whole group or none of it) in ``store``, the path the early check returned (told to the
    Ctrl-C handler first); the group and the run ids."""
    import uuid

    from kamsim.store import new_run_id, record_runs

    group = "g" + uuid.uuid4().hex[:8]
    ids = [new_run_id() for _ in results]
    main._WRITTEN.recording(store, ids, group)
    record_runs(results, store, group=group, labels=labels, run_ids=ids)
    return group, ids


def print_outcome(outcome: Any, table: Any, group: str | None, as_json: bool,
                  recorded: str) -> None:
    """What compare and sweep print once they have run: their JSON (with the group), or the
    table, the verdict lines and where the runs were recorded (``recorded``: "runs",
    "points")."""
    if as_json:
        out = outcome.to_json()
        out["group"] = group
        click.echo(json.dumps(out, indent=2))
        return
    con = _console()
    con.print(table)
    for line in outcome.verdict():
        con.print(line, markup=False, highlight=False)
    if group:
        con.print(f"{recorded} recorded as group {group} (kamsim report {group})", style="dim")
