"""``kamsim report`` (one self-contained HTML file) and ``kamsim plot`` (the same charts as
files), for stored runs, comparison groups or results folders."""

from __future__ import annotations

from pathlib import Path

import click

from kamsim.cli.main import cli, handles_errors

_STORE = click.option("--store", type=click.Path(dir_okay=False), default=None,
                      help="Run store (DuckDB file; default ./kamsim.duckdb or $KAMSIM_STORE).")


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False), default="report.html",
              show_default=True, help="HTML file to write (atomically).")
@_STORE
@handles_errors
def report(runs: tuple[str, ...], out: str, store: str | None) -> None:
    """Write an HTML report on RUNS: run ids, a group id (a comparison, side by side) or
    folders written by ``kamsim run --out``. Several runs are compared with the first.

    The file is self-contained: it works offline and loads nothing."""
    from kamsim.io import require_folder
    from kamsim.report.html import write_report
    from kamsim.report.runs import load_runs

    require_folder(Path(out))  # before the runs are read
    loaded = load_runs(list(runs), store)
    path = write_report(loaded, Path(out))
    click.echo(f"wrote {path} ({len(loaded)} run{'s' if len(loaded) != 1 else ''})")


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), required=True,
              help="Folder to write one file per chart into (created if missing; its parent "
                   "must exist).")
@click.option("--format", "fmt", type=click.Choice(["png", "svg"]), default="png",
              show_default=True)
@_STORE
@handles_errors
def plot(runs: tuple[str, ...], out: str, fmt: str, store: str | None) -> None:
    """Write the report's charts for RUNS as PNG or SVG files, one per chart."""
    from kamsim.report.figfiles import write_charts
    from kamsim.report.runs import load_runs

    loaded = load_runs(list(runs), store)
    write_charts(loaded, Path(out), fmt, written=lambda path: click.echo(f"wrote {path}"))
