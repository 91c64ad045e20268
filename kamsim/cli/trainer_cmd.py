"""The trainer's commands: ``kamsim trace`` (one account's story) and ``kamsim lesson``
(list, run, page). Each parses its arguments and calls :mod:`kamsim.trace`,
:mod:`kamsim.lessons` or :mod:`kamsim.report.lesson_page`."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from kamsim.cli.main import SEED_MAX, _console, cli, handles_errors

_MONTH = re.compile(r"^(month [0-9.]+):")


def _print_story(sentences: list[str]) -> None:
    from rich.text import Text

    con = _console()
    for s in sentences:
        m = _MONTH.match(s)
        line = Text()
        if m:
            line.append(m.group(1), style="bold cyan")
            line.append(s[m.end(1):])
        else:
            line.append(s)
        con.print(line)


@cli.command("trace")
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--account", "-a", required=True,
              help="Account id to follow (e.g. A01), of the starting portfolio.")
@click.option("--seed", type=click.IntRange(0, SEED_MAX), default=None,
              help="The scenario's seed, as `seed:` in its file (default: the scenario's).")
@click.option("--replication", "-r", type=click.IntRange(0), default=0,
              help="Which random future (the same as replication R of `kamsim run`).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a scenario value by its dotted path (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the timeline as JSON.")
@handles_errors
def trace_cmd(scenario: str, account: str, seed: int | None, replication: int,
              sets: tuple[str, ...], as_json: bool) -> None:
    """Tell one account's story month by month: stages, people leaving, complaints,
    competitor offers, trust, and how it ends."""
    from kamsim.trace import trace

    t = trace(scenario, account, seed=seed, replication=replication, overrides=sets)
    if as_json:
        click.echo(json.dumps({"scenario": t.scenario, "account": t.account, "seed": t.seed,
                               "replication": t.replication, "timeline": t.to_json()},
                              indent=2))
        return
    from rich.text import Text

    _console().print(Text.assemble((t.account, "bold"), f" in {t.scenario} (seed {t.seed}, "
                                   f"replication {t.replication})"))
    _print_story(t.sentences())


@cli.group()
def lesson() -> None:
    """Lessons for trainers: a question, two variants on the same random futures, the answer
    and one account's story."""


def _dir_option(fn: Any) -> Any:
    return click.option("--dir", "folder", type=click.Path(file_okay=False), default=None,
                        help="Folder of *.lesson.yaml files (default: $KAMSIM_LESSONS, else "
                             "./scenarios/lessons if there is one, else the lessons shipped "
                             "with kamsim).")(fn)


@lesson.command("list")
@_dir_option
@handles_errors
def lesson_list(folder: str | None) -> None:
    """List the lessons (validating every lesson file)."""
    from rich.table import Table

    from kamsim.lessons import list_lessons

    table = Table("name", "title", "question", show_lines=True)
    for les in list_lessons(folder):
        table.add_row(les.name, les.title, " ".join(les.question.split()))
    _console().print(table)


def _run(name: str, replications: int | None, seed: int | None, workers: int | None,
         dask: str | None, folder: str | None) -> Any:
    import sys

    from kamsim.lessons import run_lesson

    def say(label: str) -> None:
        if sys.stderr.isatty():
            click.echo(f"running {label} ...", err=True)

    return run_lesson(name, replications=replications, seed=seed, workers=workers,
                      dask=dask, folder=folder, progress=say)


_run_opts = [
    click.option("--replications", "-r", type=click.IntRange(2), default=None,
                 help="Random futures per variant (default: the scenario's)."),
    click.option("--seed", type=click.IntRange(0, SEED_MAX), default=None,
                 help="The scenario's seed, as `seed:` in its file, shared by the variants "
                      "(default: the scenario's)."),
    click.option("--workers", "-w", type=click.IntRange(1), default=None,
                 help="Worker processes (default: all cores)."),
    # the variants' replications, as `kamsim run` sends them (KAMSIM_DASK was already read)
    click.option("--dask", default=None, metavar="tcp://HOST:PORT",
                 help="Run on a Dask cluster (or set KAMSIM_DASK)."),
]


def _with_run_opts(fn: Any) -> Any:
    for opt in reversed(_run_opts):
        fn = opt(fn)
    return fn


@lesson.command("run")
@click.argument("name")
@_with_run_opts
@_dir_option
@handles_errors
def lesson_run(name: str, replications: int | None, seed: int | None, workers: int | None,
               dask: str | None, folder: str | None) -> None:
    """Run a lesson: the question, the answer table with intervals, what the model found,
    and the story of the lesson's focus account."""
    from rich.table import Table
    from rich.text import Text

    from kamsim.lessons import format_value

    run = _run(name, replications, seed, workers, dask, folder)
    les = run.lesson
    con = _console()
    con.print(Text(les.title, style="bold"))
    con.print(Text.assemble(("Question:", "bold"), f" {' '.join(les.question.split())}"))
    table = Table("figure", *les.variants, title=f"{run.replications} replications per "
                  f"variant, seed {run.seed}, same random futures")
    for fig, per in run.table().items():
        label = les.figure(fig).label or fig
        cells = []
        for v in les.variants:
            s = per[v]
            cell = format_value(run, fig, s["mean"])
            if s["n"] >= 2:
                cell += (f" ({format_value(run, fig, s['ci_low'])} to "
                         f"{format_value(run, fig, s['ci_high'])})")
            cells.append(cell)
        table.add_row(label, *cells)
    con.print(table)
    for s in run.sentences():
        con.print(f"- {s}")
    # three ways, as the page says it: a check without enough replications cannot be told
    verdict = (("The model agrees:", "green") if run.holds
               else ("The model cannot tell all of this here:", "yellow") if run.holds is None
               else ("The model does not show all of this here:", "red"))
    con.print(Text.assemble(verdict, f" {' '.join(les.answer.split())}"))
    con.print(Text.assemble("\n", ("A typical account", "bold"),
                            f": {les.focus} in {les.main} (replication 0)"))
    _print_story(run.trace.sentences())


@lesson.command("page")
@click.argument("name")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="The HTML file to write (one self-contained page).")
@_with_run_opts
@_dir_option
@handles_errors
def lesson_page(name: str, out: str, replications: int | None, seed: int | None,
                workers: int | None, dask: str | None, folder: str | None) -> None:
    """Write an interactive, offline lesson page: a month slider over the focus account's
    decision unit, trust and stage, the portfolio's stage flows and the story so far."""
    from kamsim.io import require_folder
    from kamsim.report.lesson_page import write_lesson_page

    require_folder(Path(out))  # before the lesson's simulations, not after
    run = _run(name, replications, seed, workers, dask, folder)
    path = write_lesson_page(run, Path(out))
    click.echo(f"wrote {path}")
